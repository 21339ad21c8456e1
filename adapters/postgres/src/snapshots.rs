//! Every statement on `snapshots`: the latest usable snapshot of an order, alone or
//! with the events after it in one statement (which also reads `events`). Snapshots
//! are written by the command's statement ([`crate::unit_of_work`]).

use application::{EventEnvelope, StoreError, StoredSnapshot};
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::convert::{from_column, to_column};
use crate::events::EventRow;
use crate::store_error;

/// A stored snapshot.
#[derive(Debug)]
struct SnapshotRow {
    version: i64,
    state_schema: i32,
    state: serde_json::Value,
    last_occurred_at: DateTime<Utc>,
}

impl SnapshotRow {
    fn decode(self, id: OrderId) -> Result<StoredSnapshot, StoreError> {
        Ok(StoredSnapshot {
            order_id: id,
            version: from_column("snapshots.version", self.version)?,
            state_schema: from_column("snapshots.state_schema", self.state_schema)?,
            state: self.state,
            last_occurred_at: self.last_occurred_at,
        })
    }
}

/// The latest snapshot of order `id` in shape `state_schema`, not later than `as_of`.
///
/// # Errors
/// When the database fails or the stored snapshot does not decode.
pub(crate) async fn latest(
    pool: &PgPool,
    id: OrderId,
    state_schema: u32,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<StoredSnapshot>, StoreError> {
    let state_schema: i32 = to_column("snapshots.state_schema", state_schema)?;
    let row = sqlx::query_as!(
        SnapshotRow,
        "SELECT version, state_schema, state, last_occurred_at FROM snapshots \
         WHERE stream_id = $1 AND state_schema = $2 \
           AND ($3::timestamptz IS NULL OR last_occurred_at <= $3) \
         ORDER BY version DESC LIMIT 1",
        id.as_uuid(),
        state_schema,
        as_of,
    )
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    row.map(|row| row.decode(id)).transpose()
}

/// One row of [`latest_and_events`]: the snapshot's columns (on the first row only)
/// beside one event's, every one NULL where the outer joins found nothing.
#[derive(Debug)]
struct SnapshotAndEventRow {
    snapshot_version: Option<i64>,
    snapshot_state: Option<serde_json::Value>,
    snapshot_last_occurred_at: Option<DateTime<Utc>>,
    global_position: Option<i64>,
    event_id: Option<Uuid>,
    version: Option<i64>,
    event_type: Option<String>,
    schema_version: Option<i32>,
    payload: Option<serde_json::Value>,
    metadata: Option<serde_json::Value>,
    traceparent: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    recorded_at: Option<DateTime<Utc>>,
}

/// A column the outer join may leave NULL but a found row never does.
fn present<T>(column: &str, value: Option<T>) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Corrupt(format!("{column} is NULL")))
}

impl SnapshotAndEventRow {
    /// The snapshot, when this (first) row carries one.
    fn snapshot(
        &self,
        id: OrderId,
        state_schema: u32,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(version) = self.snapshot_version else {
            return Ok(None);
        };
        Ok(Some(StoredSnapshot {
            order_id: id,
            version: from_column("snapshots.version", version)?,
            state_schema,
            state: present("snapshots.state", self.snapshot_state.clone())?,
            last_occurred_at: present(
                "snapshots.last_occurred_at",
                self.snapshot_last_occurred_at,
            )?,
        }))
    }

    /// The event, when the row carries one.
    fn event(self, id: OrderId) -> Result<Option<EventEnvelope>, StoreError> {
        let Some(event_id) = self.event_id else {
            return Ok(None);
        };
        EventEnvelope::try_from(EventRow {
            global_position: present("events.global_position", self.global_position)?,
            event_id,
            stream_id: id.as_uuid(),
            version: present("events.version", self.version)?,
            event_type: present("events.event_type", self.event_type)?,
            schema_version: present("events.schema_version", self.schema_version)?,
            payload: present("events.payload", self.payload)?,
            metadata: present("events.metadata", self.metadata)?,
            traceparent: self.traceparent,
            occurred_at: present("events.occurred_at", self.occurred_at)?,
            recorded_at: present("events.recorded_at", self.recorded_at)?,
        })
        .map(Some)
    }
}

/// The latest snapshot of order `id` (as [`latest`]) and the events after it, in one
/// statement: the snapshot left-joined with the events after it (its columns on the
/// first row only); no snapshot and no event gives one row of NULLs.
///
/// # Errors
/// When the database fails or a stored row does not decode.
pub(crate) async fn latest_and_events(
    pool: &PgPool,
    id: OrderId,
    state_schema: u32,
    as_of: Option<DateTime<Utc>>,
) -> Result<(Option<StoredSnapshot>, Vec<EventEnvelope>), StoreError> {
    let schema: i32 = to_column("snapshots.state_schema", state_schema)?;
    let rows = sqlx::query_as!(
        SnapshotAndEventRow,
        r#"WITH snapshot AS (
               SELECT version, state, last_occurred_at FROM snapshots
               WHERE stream_id = $1 AND state_schema = $2
                 AND ($3::timestamptz IS NULL OR last_occurred_at <= $3)
               ORDER BY version DESC LIMIT 1)
           SELECT s.version AS "snapshot_version?",
                  CASE WHEN e.version IS NULL OR e.version = min(e.version) OVER () THEN s.state END
                      AS "snapshot_state?",
                  s.last_occurred_at AS "snapshot_last_occurred_at?",
                  e.global_position AS "global_position?", e.event_id AS "event_id?",
                  e.version AS "version?", e.event_type AS "event_type?",
                  e.schema_version AS "schema_version?", e.payload AS "payload?",
                  e.metadata AS "metadata?", e.traceparent AS "traceparent?",
                  e.occurred_at AS "occurred_at?", e.recorded_at AS "recorded_at?"
           FROM (SELECT 1) AS one
           LEFT JOIN snapshot s ON true
           LEFT JOIN events e ON e.stream_id = $1 AND e.version > coalesce(s.version, 0)
           ORDER BY e.version"#,
        id.as_uuid(),
        schema,
        as_of,
    )
    .fetch_all(pool)
    .await
    .map_err(store_error)?;
    let snapshot = match rows.first() {
        Some(row) => row.snapshot(id, state_schema)?,
        None => None,
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.extend(row.event(id)?);
    }
    Ok((snapshot, events))
}
