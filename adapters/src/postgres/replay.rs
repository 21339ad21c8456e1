//! Reading the event store in global order, for replays.

use application::envelope::decode_event;
use application::{EventEnvelope, EventMetadata};
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::{PgPool, Row};
use uuid::Uuid;

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
            let decode = |e: String| sqlx::Error::Decode(e.into());
            let event = decode_event(
                row.get("event_type"),
                u32::try_from(row.get::<i32, _>("schema_version")).unwrap_or(0),
                row.get("payload"),
            )
            .map_err(|e| decode(e.to_string()))?;
            let metadata: EventMetadata =
                serde_json::from_value(row.get("metadata")).map_err(|e| decode(e.to_string()))?;
            Ok((
                row.get("global_position"),
                EventEnvelope {
                    event_id: row.get("event_id"),
                    aggregate_id: OrderId::from_uuid(row.get("stream_id")),
                    version: u64::try_from(row.get::<i64, _>("version")).unwrap_or_default(),
                    occurred_at: row.get("occurred_at"),
                    event,
                    metadata,
                    traceparent: row.get("traceparent"),
                    recorded_at: Some(row.get("recorded_at")),
                },
            ))
        })
        .collect()
}
