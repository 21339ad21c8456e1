//! The relay's admin side: the HTTP endpoints (`/metrics`, `/healthz` alive, `/readyz`
//! its last cycle reached the database and the broker) and the operator subcommands
//! (`status`, `retry-parked`, `skip-parked`, `replay`).

use std::sync::Arc;

use adapters::postgres::replay::{events_after, ReplayFilter};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::metrics::RelayMetrics;
use crate::outbox::{self, ParkedSelection};

/// The admin router.
pub fn router(metrics: Arc<RelayMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/readyz", get(ready))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<RelayMetrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        metrics.render(),
    )
        .into_response()
}

async fn ready(State(metrics): State<Arc<RelayMetrics>>) -> Response {
    if metrics.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cannot reach the database or the broker",
        )
            .into_response()
    }
}

/// `outbox-relay status`: backlog per partition, oldest unpublished row, parked rows,
/// live relays and the partitions each publishes.
///
/// # Errors
/// When the database fails.
pub async fn status(pool: &PgPool, member_ttl_ms: i64) -> Result<Value, sqlx::Error> {
    let (waiting, oldest_age, parked_count) = outbox::backlog(pool).await?;
    let partitions = outbox::backlog_by_partition(pool).await?;
    let parked = outbox::parked(pool).await?;
    let members = outbox::live_members(pool, member_ttl_ms).await?;
    let count = members.len();
    Ok(json!({
        "backlog": waiting,
        "oldestUnpublishedAgeSeconds": oldest_age,
        "parkedCount": parked_count,
        "partitions": partitions.iter().map(|p| json!({
            "partition": p.partition, "waiting": p.waiting, "oldestAgeSeconds": p.oldest_age_seconds,
        })).collect::<Vec<_>>(),
        "parked": parked.iter().map(|p| json!({
            "id": p.id, "eventId": p.event_id, "orderId": p.aggregate_id, "version": p.version,
            "eventType": p.event_type, "attempts": p.attempts, "lastError": p.last_error,
            "parkedAt": p.parked_at,
        })).collect::<Vec<_>>(),
        "relays": members.iter().enumerate().map(|(index, m)| json!({
            "relayId": m.relay_id, "host": m.host, "startedAt": m.started_at, "heartbeatAt": m.heartbeat_at,
            "partitions": outbox::assigned_partitions(index, count),
        })).collect::<Vec<_>>(),
    }))
}

/// `outbox-relay retry-parked`: how many rows were made due again.
///
/// # Errors
/// When the database fails.
pub async fn retry_parked(pool: &PgPool, selection: ParkedSelection) -> Result<u64, sqlx::Error> {
    outbox::retry_parked(pool, selection).await
}

/// `outbox-relay skip-parked`: how many rows were moved to the dead letters.
///
/// # Errors
/// When the database fails.
pub async fn skip_parked(pool: &PgPool, selection: ParkedSelection) -> Result<u64, sqlx::Error> {
    outbox::skip_parked(pool, selection).await
}

/// `outbox-relay replay`: re-enqueues the matching events (with their own eventId),
/// in global order, 1,000 per transaction; returns how many.
///
/// # Errors
/// When the database fails or a stored event cannot be decoded.
pub async fn replay(pool: &PgPool, filter: ReplayFilter) -> Result<u64, sqlx::Error> {
    let mut after = 0;
    let mut total = 0;
    loop {
        let page = events_after(pool, filter, after, 1000).await?;
        let Some((last, _)) = page.last() else {
            return Ok(total);
        };
        after = *last;
        let events: Vec<_> = page.into_iter().map(|(_, event)| event).collect();
        let mut tx = pool.begin().await?;
        adapters::postgres::outbox::insert(&mut tx, &events).await?;
        tx.commit().await?;
        adapters::postgres::outbox::notify(pool).await?;
        total += events.len() as u64;
    }
}
