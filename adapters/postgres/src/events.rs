//! Every statement on `events`, the append-only event store: one order's stream (the
//! event store's loads), reads across orders in global order (the relay's `replay`, the
//! read model's rebuild), and the decoding of a stored row into an envelope (upcasting
//! older schema versions). A stored value that does not fit its type is reported as
//! corruption, never clamped.
//!
//! Statements spanning tables that also touch `events` live with the table they are
//! about: the command's append (`unit_of_work.rs`), the latest snapshot with the
//! events after it (`snapshots.rs`), the read model's lag and commit times
//! ([`crate::order_summaries`]).

use application::envelope::decode_event;
use application::{EventEnvelope, EventMetadata, StoreError};
use chrono::{DateTime, Utc};
use domain::{OrderEvent, OrderId};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::convert::{from_column, to_column};
use crate::store_error;

/// One stored event, every column but `aggregate_type` (always `Order`).
#[derive(Debug)]
pub(crate) struct EventRow {
    pub(crate) global_position: i64,
    pub(crate) event_id: Uuid,
    pub(crate) stream_id: Uuid,
    pub(crate) version: i64,
    pub(crate) event_type: String,
    pub(crate) schema_version: i32,
    pub(crate) payload: serde_json::Value,
    pub(crate) metadata: serde_json::Value,
    pub(crate) traceparent: Option<String>,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) recorded_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for EventEnvelope {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let at = Position::of(row.stream_id, row.version);
        let event = at.event(&row.event_type, row.schema_version, row.payload)?;
        let metadata: EventMetadata = serde_json::from_value(row.metadata)
            .map_err(|e| at.corrupt(format!("events.metadata: {e}")))?;
        Ok(EventEnvelope {
            event_id: row.event_id,
            aggregate_id: OrderId::from_uuid(row.stream_id),
            version: at.version()?,
            occurred_at: row.occurred_at,
            event,
            metadata,
            traceparent: row.traceparent,
            recorded_at: Some(row.recorded_at),
            position: Some(at.global_position(row.global_position)?),
        })
    }
}

/// A stored event folded into summaries: neither its metadata nor its `traceparent`
/// (the summaries use neither), which keeps the rebuild's reads small.
#[derive(Debug)]
struct FoldRow {
    global_position: i64,
    event_id: Uuid,
    stream_id: Uuid,
    version: i64,
    event_type: String,
    schema_version: i32,
    payload: serde_json::Value,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
}

impl TryFrom<FoldRow> for EventEnvelope {
    type Error = StoreError;

    fn try_from(row: FoldRow) -> Result<Self, StoreError> {
        let at = Position::of(row.stream_id, row.version);
        Ok(EventEnvelope {
            event_id: row.event_id,
            aggregate_id: OrderId::from_uuid(row.stream_id),
            version: at.version()?,
            occurred_at: row.occurred_at,
            event: at.event(&row.event_type, row.schema_version, row.payload)?,
            metadata: EventMetadata {
                user_id: None,
                correlation_id: String::new(),
                causation_id: String::new(),
            },
            traceparent: None,
            recorded_at: Some(row.recorded_at),
            position: Some(at.global_position(row.global_position)?),
        })
    }
}

/// Where a stored event sits, for the messages of its decoding errors.
#[derive(Debug, Clone, Copy)]
struct Position {
    stream: Uuid,
    version: i64,
}

impl Position {
    fn of(stream: Uuid, version: i64) -> Self {
        Self { stream, version }
    }

    fn corrupt(self, what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!(
            "order {} version {}: {what}",
            self.stream, self.version
        ))
    }

    fn version(self) -> Result<u64, StoreError> {
        from_column("events.version", self.version).map_err(|e| self.corrupt(e))
    }

    /// The event's `global_position`, as the envelope's `position`.
    fn global_position(self, global_position: i64) -> Result<u64, StoreError> {
        from_column("events.global_position", global_position).map_err(|e| self.corrupt(e))
    }

    /// The payload, upcast to the current shape of its type.
    fn event(
        self,
        event_type: &str,
        schema_version: i32,
        payload: serde_json::Value,
    ) -> Result<OrderEvent, StoreError> {
        let schema_version =
            from_column("events.schema_version", schema_version).map_err(|e| self.corrupt(e))?;
        decode_event(event_type, schema_version, payload).map_err(|e| self.corrupt(e))
    }
}

/// The events of order `id` after version `after`, decoded (upcast) to the current shapes.
///
/// # Errors
/// When the database fails or a stored event cannot be decoded.
pub(crate) async fn of_stream(
    pool: &PgPool,
    id: OrderId,
    after: u64,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let after: i64 = to_column("events.version", after)?;
    let rows = sqlx::query_as!(
        EventRow,
        "SELECT global_position, event_id, stream_id, version, event_type, schema_version, \
                payload, metadata, traceparent, occurred_at, recorded_at \
         FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
        id.as_uuid(),
        after,
    )
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    rows.into_iter().map(EventEnvelope::try_from).collect()
}

/// Which events a replay takes (filters combine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub order: Option<Uuid>,
    pub from_position: Option<i64>,
    pub since: Option<DateTime<Utc>>,
}

/// How many events `filter` matches now (a replay's total).
///
/// # Errors
/// When the database fails.
pub async fn count_matching<'c>(
    executor: impl PgExecutor<'c>,
    filter: ReplayFilter,
) -> Result<u64, sqlx::Error> {
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM events
           WHERE ($1::uuid IS NULL OR stream_id = $1)
             AND ($2::bigint IS NULL OR global_position >= $2)
             AND ($3::timestamptz IS NULL OR recorded_at >= $3)"#,
        filter.order,
        filter.from_position,
        filter.since,
    )
    .fetch_one(executor)
    .await?;
    Ok(from_column("count(events)", count)?)
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
    let rows = sqlx::query_as!(
        EventRow,
        "SELECT global_position, event_id, stream_id, version, event_type, schema_version, \
                payload, metadata, traceparent, occurred_at, recorded_at \
         FROM events \
         WHERE global_position > $1 \
           AND ($2::uuid IS NULL OR stream_id = $2) \
           AND ($3::bigint IS NULL OR global_position >= $3) \
           AND ($4::timestamptz IS NULL OR recorded_at >= $4) \
         ORDER BY global_position LIMIT $5",
        after,
        filter.order,
        filter.from_position,
        filter.since,
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let position = row.global_position;
            let envelope =
                EventEnvelope::try_from(row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok((position, envelope))
        })
        .collect()
}

/// Up to `limit` events after global position `after`, in global order, each with its
/// position, decoded for folding into summaries (see [`FoldRow`]).
///
/// # Errors
/// When the database fails or a stored event cannot be decoded.
pub(crate) async fn for_fold(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<(i64, EventEnvelope)>> {
    let rows = sqlx::query_as!(
        FoldRow,
        "SELECT global_position, event_id, stream_id, version, event_type, schema_version, \
                payload, occurred_at, recorded_at \
         FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2",
        after,
        limit,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let position = row.global_position;
            Ok((position, EventEnvelope::try_from(row)?))
        })
        .collect()
}
