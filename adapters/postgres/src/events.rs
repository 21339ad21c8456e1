//! Reads of `events` across orders, in global order: replays (the relay's `replay`)
//! and the read model's rebuild, and the decoding of a stored row into an envelope
//! (upcasting older schema versions), shared with the event store's stream loads. A
//! stored value that does not fit its type is reported as corruption, never clamped.

use application::envelope::decode_event;
use application::{EventEnvelope, EventMetadata, StoreError};
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// One `events` row as an envelope.
pub(crate) fn decode_row(
    id: OrderId,
    row: &sqlx::postgres::PgRow,
) -> Result<EventEnvelope, StoreError> {
    let event_type: String = row.get("event_type");
    let schema_version: i32 = row.get("schema_version");
    let version: i64 = row.get("version");
    let event = decode_event(
        &event_type,
        u32::try_from(schema_version).map_err(|_| {
            StoreError::Corrupt(format!(
                "order {id} version {version}: schema_version {schema_version}"
            ))
        })?,
        row.get::<serde_json::Value, _>("payload"),
    )
    .map_err(|e| StoreError::Corrupt(format!("order {id} version {version}: {e}")))?;
    let metadata: EventMetadata = serde_json::from_value(row.get("metadata"))
        .map_err(|e| StoreError::Corrupt(format!("order {id} version {version} metadata: {e}")))?;
    Ok(EventEnvelope {
        event_id: row.get("event_id"),
        aggregate_id: id,
        version: u64::try_from(version)
            .map_err(|_| StoreError::Corrupt(format!("order {id}: version {version}")))?,
        occurred_at: row.get("occurred_at"),
        event,
        metadata,
        traceparent: row.get("traceparent"),
        recorded_at: Some(row.get("recorded_at")),
    })
}

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
pub async fn in_global_order(
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

/// Up to `limit` events after global position `after`, in global order, each with its
/// position, decoded for folding into summaries: the metadata and `traceparent` are
/// not read (the summaries use neither), which keeps the rebuild's reads small.
///
/// # Errors
/// When the database fails or a stored event cannot be decoded.
pub(crate) async fn for_fold(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<(i64, EventEnvelope)>> {
    use anyhow::Context;
    let rows = sqlx::query(
        "SELECT global_position, event_id, stream_id, version, event_type, schema_version, payload, \
                occurred_at, recorded_at \
         FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let stream: Uuid = row.get("stream_id");
            let version: i64 = row.get("version");
            let schema_version: i32 = row.get("schema_version");
            let context = || format!("order {stream} version {version}");
            let event = decode_event(
                row.get("event_type"),
                u32::try_from(schema_version)
                    .with_context(|| format!("{}: schema_version {schema_version}", context()))?,
                row.get("payload"),
            )
            .with_context(context)?;
            let envelope = EventEnvelope {
                event_id: row.get("event_id"),
                aggregate_id: OrderId::from_uuid(stream),
                version: u64::try_from(version).with_context(context)?,
                occurred_at: row.get("occurred_at"),
                event,
                metadata: EventMetadata {
                    user_id: None,
                    correlation_id: String::new(),
                    causation_id: String::new(),
                },
                traceparent: None,
                recorded_at: Some(row.get("recorded_at")),
            };
            Ok((row.get("global_position"), envelope))
        })
        .collect()
}
