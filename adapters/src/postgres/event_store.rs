//! The event store, outbox and idempotency keys on PostgreSQL. All SQL on the
//! `events`, `outbox` and `idempotency_keys` tables of the write side is here.

use application::envelope::decode_event;
use application::{
    EventEnvelope, EventMetadata, EventStore, IdempotencyRecord, SnapshotStore, StoreError,
    StoredSnapshot, UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::is_unavailable;

/// The event store on a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
}

impl PgEventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Maps a database error to the port's error, naming constraints as use-case errors.
fn store_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        match db.constraint() {
            Some("events_stream_version_key") => return StoreError::VersionConflict,
            Some("idempotency_keys_pkey") => return StoreError::IdempotencyKeyTaken,
            _ => {}
        }
    }
    if is_unavailable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Other(Box::new(error))
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("version {value} out of range")))
}

impl PgEventStore {
    /// The events of one order after version `after`, decoded (upcast) to the current shapes.
    async fn events_after(
        &self,
        id: OrderId,
        after: u64,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, version, event_type, schema_version, payload, metadata, traceparent, \
                    occurred_at, recorded_at \
             FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version",
        )
        .bind(id.as_uuid())
        .bind(to_i64(after)?)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|row| decode_row(id, row)).collect()
    }
}

/// One `events` row as an envelope.
pub(super) fn decode_row(
    id: OrderId,
    row: &sqlx::postgres::PgRow,
) -> Result<EventEnvelope, StoreError> {
    let event_type: String = row.get("event_type");
    let schema_version: i32 = row.get("schema_version");
    let version: i64 = row.get("version");
    let event = decode_event(
        &event_type,
        u32::try_from(schema_version).unwrap_or(0),
        row.get::<serde_json::Value, _>("payload"),
    )
    .map_err(|e| StoreError::Corrupt(format!("order {id} version {version}: {e}")))?;
    let metadata: EventMetadata = serde_json::from_value(row.get("metadata"))
        .map_err(|e| StoreError::Corrupt(format!("order {id} version {version} metadata: {e}")))?;
    Ok(EventEnvelope {
        event_id: row.get("event_id"),
        aggregate_id: id,
        version: u64::try_from(version).unwrap_or_default(),
        occurred_at: row.get("occurred_at"),
        event,
        metadata,
        traceparent: row.get("traceparent"),
        recorded_at: Some(row.get("recorded_at")),
    })
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError> {
        self.events_after(id, 0).await
    }

    async fn load_from(&self, id: OrderId, after: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        self.events_after(id, after).await
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, order_id, version FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.map(|row| IdempotencyRecord {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: row.get("fingerprint"),
            order_id: OrderId::from_uuid(row.get("order_id")),
            version: u64::try_from(row.get::<i64, _>("version")).unwrap_or_default(),
        }))
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        let tx = self.pool.begin().await.map_err(store_error)?;
        Ok(Box::new(PgUnitOfWork { tx, failed: false }))
    }
}

#[async_trait]
impl SnapshotStore for PgEventStore {
    async fn latest_snapshot(
        &self,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT version, state_schema, state, last_occurred_at FROM snapshots \
             WHERE stream_id = $1 AND state_schema = $2 \
               AND ($3::timestamptz IS NULL OR last_occurred_at <= $3) \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(id.as_uuid())
        .bind(i32::try_from(state_schema).unwrap_or(i32::MAX))
        .bind(as_of)
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(row.map(|row| StoredSnapshot {
            order_id: id,
            version: u64::try_from(row.get::<i64, _>("version")).unwrap_or_default(),
            state_schema: u32::try_from(row.get::<i32, _>("state_schema")).unwrap_or_default(),
            state: row.get("state"),
            last_occurred_at: row.get("last_occurred_at"),
        }))
    }
}

/// One PostgreSQL transaction; dropped without commit, it rolls back.
#[derive(Debug)]
struct PgUnitOfWork {
    tx: Transaction<'static, Postgres>,
    /// A write failed: the transaction must not report a commit.
    failed: bool,
}

impl PgUnitOfWork {
    /// Notes a failed write. PostgreSQL answers the COMMIT of a transaction aborted by
    /// an error with a silent ROLLBACK, and an append refused for its version wrote
    /// nothing but left the transaction open: either way, commit must refuse.
    fn fail(&mut self, error: StoreError) -> StoreError {
        self.failed = true;
        error
    }
}

#[async_trait]
impl UnitOfWork for PgUnitOfWork {
    async fn append(
        &mut self,
        id: OrderId,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        // Versions are contiguous from expected_version + 1; the unique constraint
        // (stream_id, version) refuses the append when another writer got there first,
        // and the insert writes nothing when the stream is not at expected_version
        // (behind it: a gap would be written).
        for (offset, event) in events.iter().enumerate() {
            if event.version != expected_version + 1 + offset as u64 {
                return Err(StoreError::Corrupt(format!(
                    "event version {} does not follow {expected_version}",
                    event.version
                )));
            }
        }
        let mut event_ids = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut schemas = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadata = Vec::with_capacity(events.len());
        let mut traceparents: Vec<Option<String>> = Vec::with_capacity(events.len());
        let mut occurred: Vec<DateTime<Utc>> = Vec::with_capacity(events.len());
        for event in events {
            event_ids.push(event.event_id);
            versions.push(to_i64(event.version)?);
            types.push(event.event_type().to_owned());
            schemas.push(i32::try_from(event.schema_version()).unwrap_or(i32::MAX));
            payloads.push(event.payload());
            metadata.push(
                serde_json::to_value(&event.metadata)
                    .map_err(|e| StoreError::Other(Box::new(e)))?,
            );
            traceparents.push(event.traceparent.clone());
            occurred.push(event.occurred_at);
        }
        let inserted = sqlx::query(
            "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, schema_version, \
                                 payload, metadata, traceparent, occurred_at) \
             SELECT e.event_id, $2, 'Order', e.version, e.event_type, e.schema_version, e.payload, \
                    e.metadata, e.traceparent, e.occurred_at \
             FROM UNNEST($1::uuid[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[], \
                         $8::text[], $9::timestamptz[]) \
                  AS e(event_id, version, event_type, schema_version, payload, metadata, traceparent, occurred_at) \
             WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $2) = $10",
        )
        .bind(&event_ids)
        .bind(id.as_uuid())
        .bind(&versions)
        .bind(&types)
        .bind(&schemas)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&traceparents)
        .bind(&occurred)
        .bind(to_i64(expected_version)?)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| self.fail(store_error(e)))?;
        if inserted.rows_affected() != events.len() as u64 {
            return Err(self.fail(StoreError::VersionConflict));
        }
        Ok(())
    }

    async fn enqueue(&mut self, events: &[EventEnvelope]) -> Result<(), StoreError> {
        super::outbox::insert(&mut self.tx, events)
            .await
            .map_err(|e| self.fail(store_error(e)))
    }

    async fn remember(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, version) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.scope)
        .bind(&record.key)
        .bind(&record.fingerprint)
        .bind(record.order_id.as_uuid())
        .bind(to_i64(record.version)?)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| self.fail(store_error(e)))?;
        Ok(())
    }

    async fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        // `last_occurred_at` is the latest occurred_at of the events up to the version
        // (usually the last one's; clocks may step back): the previous snapshot's value
        // and the events after it, so only the stream's tail is read.
        sqlx::query(
            "WITH previous AS ( \
                 SELECT version, last_occurred_at FROM snapshots \
                 WHERE stream_id = $1 AND version < $2 ORDER BY version DESC LIMIT 1) \
             INSERT INTO snapshots (stream_id, version, state_schema, state, last_occurred_at) \
             SELECT $1, $2, $3, $4, GREATEST($5, \
                    (SELECT last_occurred_at FROM previous), \
                    (SELECT max(occurred_at) FROM events WHERE stream_id = $1 AND version <= $2 \
                       AND version > coalesce((SELECT version FROM previous), 0))) \
             ON CONFLICT (stream_id, version) DO NOTHING",
        )
        .bind(snapshot.order_id.as_uuid())
        .bind(to_i64(snapshot.version)?)
        .bind(i32::try_from(snapshot.state_schema).unwrap_or(i32::MAX))
        .bind(&snapshot.state)
        .bind(snapshot.last_occurred_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| self.fail(store_error(e)))?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if self.failed {
            self.tx.rollback().await.map_err(store_error)?;
            return Err(StoreError::Other(
                "a write of this unit of work failed; it was rolled back".into(),
            ));
        }
        self.tx.commit().await.map_err(store_error)
    }
}

/// Deletes idempotency records older than `max_age_hours` (they are kept at least 24 h).
///
/// # Errors
/// When the database fails.
pub async fn purge_idempotency_keys(pool: &PgPool, max_age_hours: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
    )
    .bind(max_age_hours)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
