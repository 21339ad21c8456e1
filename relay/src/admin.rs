//! The relay's admin side: the HTTP endpoints (`/metrics`, `/healthz` alive, `/readyz`
//! its last cycle reached the database and the broker) and the operator subcommands
//! (`status`, `retry-parked`, `skip-parked`, `replay`).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use order_postgres::events::{in_global_order, ReplayFilter};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::metrics::RelayMetrics;
use crate::outbox::{self, ParkedSelection};

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` (HTTP/1.1) until the
/// future is dropped. Each connection is served by a task of its own.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(listener: TcpListener, metrics: Arc<RelayMetrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let metrics = metrics.clone();
                async move {
                    Ok::<_, Infallible>(answer(request.method(), request.uri().path(), &metrics))
                }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

/// The answer to one admin request.
fn answer(method: &Method, path: &str, metrics: &RelayMetrics) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    match path {
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics.render());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if metrics.is_ready() => text(StatusCode::OK, "ready"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cannot reach the database or the broker",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
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
        let page = in_global_order(pool, filter, after, 1000).await?;
        let Some((last, _)) = page.last() else {
            return Ok(total);
        };
        after = *last;
        let events: Vec<_> = page.into_iter().map(|(_, event)| event).collect();
        let mut tx = pool.begin().await?;
        order_postgres::outbox::insert(&mut tx, &events).await?;
        tx.commit().await?;
        order_postgres::outbox::notify(pool).await?;
        total += events.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_routes_answer_by_path_method_and_readiness() {
        let metrics = RelayMetrics::new().unwrap();
        assert_eq!(
            answer(&Method::GET, "/healthz", &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            answer(&Method::GET, "/readyz", &metrics).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        metrics.set_ready(true);
        assert_eq!(
            answer(&Method::GET, "/readyz", &metrics).status(),
            StatusCode::OK
        );
        let rendered = answer(&Method::GET, "/metrics", &metrics);
        assert_eq!(rendered.status(), StatusCode::OK);
        assert_eq!(
            rendered.headers()[CONTENT_TYPE],
            "text/plain; version=0.0.4"
        );
        assert_eq!(
            answer(&Method::GET, "/nope", &metrics).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            answer(&Method::POST, "/healthz", &metrics).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
