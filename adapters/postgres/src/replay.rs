//! Reading the event store in global order, for replays.

use application::EventEnvelope;
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::event_store::decode_row;

/// Which events a replay takes (filters combine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub order: Option<Uuid>,
    pub from_position: Option<i64>,
    pub since: Option<DateTime<Utc>>,
}

/// Up to `limit` events after global position `after`, matching `filter`, in global
/// order, each with its position.
///
/// # Errors
/// When the database fails or a stored event cannot be decoded (`sqlx::Error::Decode`).
pub async fn events_after(
    pool: &PgPool,
    filter: ReplayFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, EventEnvelope)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT global_position, event_id, stream_id, version, event_type, schema_version, payload, metadata, \
                traceparent, occurred_at, recorded_at \
         FROM events \
         WHERE global_position > $1 \
           AND ($2::uuid IS NULL OR stream_id = $2) \
           AND ($3::bigint IS NULL OR global_position >= $3) \
           AND ($4::timestamptz IS NULL OR recorded_at >= $4) \
         ORDER BY global_position LIMIT $5",
    )
    .bind(after)
    .bind(filter.order)
    .bind(filter.from_position)
    .bind(filter.since)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let envelope = decode_row(OrderId::from_uuid(row.get("stream_id")), row)
                .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
            Ok((row.get("global_position"), envelope))
        })
        .collect()
}
