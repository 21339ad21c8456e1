//! The event store, outbox and idempotency keys on PostgreSQL. All SQL on the
//! `events`, `outbox` and `idempotency_keys` tables of the write side is here: a
//! command's unit of work is one statement (see [`PgUnitOfWork`]).

use application::{
    EventEnvelope, EventStore, IdempotencyRecord, PendingWrites, SnapshotStore, StoreError,
    StoredSnapshot, UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::{PgPool, Row};

use super::outbox::{OutboxColumns, OutboxWaker};
use crate::events::decode_row;
use crate::store_error;

/// The event store on a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    waker: OutboxWaker,
}

impl PgEventStore {
    /// The store on `pool`; after a commit that wrote outbox rows it wakes the relays.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            waker: OutboxWaker::default(),
        }
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
        Ok(Box::new(PgUnitOfWork::new(
            self.pool.clone(),
            self.waker.clone(),
        )))
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

    /// One statement: the latest snapshot (its columns on the first row only) left-joined
    /// with the events after it; no snapshot and no event gives one row of NULLs.
    async fn latest_snapshot_and_events(
        &self,
        _events: &dyn EventStore,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(Option<StoredSnapshot>, Vec<EventEnvelope>), StoreError> {
        let rows = sqlx::query(
            "WITH snapshot AS ( \
                 SELECT version, state, last_occurred_at FROM snapshots \
                 WHERE stream_id = $1 AND state_schema = $2 \
                   AND ($3::timestamptz IS NULL OR last_occurred_at <= $3) \
                 ORDER BY version DESC LIMIT 1) \
             SELECT s.version AS snapshot_version, \
                    CASE WHEN e.version IS NULL OR e.version = min(e.version) OVER () THEN s.state END \
                        AS snapshot_state, \
                    s.last_occurred_at AS snapshot_last_occurred_at, \
                    e.event_id, e.version, e.event_type, e.schema_version, e.payload, e.metadata, \
                    e.traceparent, e.occurred_at, e.recorded_at \
             FROM (SELECT 1) AS one \
             LEFT JOIN snapshot s ON true \
             LEFT JOIN events e ON e.stream_id = $1 AND e.version > coalesce(s.version, 0) \
             ORDER BY e.version",
        )
        .bind(id.as_uuid())
        .bind(i32::try_from(state_schema).unwrap_or(i32::MAX))
        .bind(as_of)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let snapshot = match rows.first() {
            Some(row) => match row.get::<Option<i64>, _>("snapshot_version") {
                Some(version) => Some(StoredSnapshot {
                    order_id: id,
                    version: u64::try_from(version).map_err(|_| {
                        StoreError::Corrupt(format!("order {id} snapshot version {version}"))
                    })?,
                    state_schema,
                    state: row
                        .get::<Option<serde_json::Value>, _>("snapshot_state")
                        .ok_or_else(|| StoreError::Corrupt(format!("order {id} snapshot state")))?,
                    last_occurred_at: row.get("snapshot_last_occurred_at"),
                }),
                None => None,
            },
            None => None,
        };
        let events = rows
            .iter()
            .filter(|row| row.get::<Option<uuid::Uuid>, _>("event_id").is_some())
            .map(|row| decode_row(id, row))
            .collect::<Result<_, _>>()?;
        Ok((snapshot, events))
    }
}

/// A unit of work on PostgreSQL: what the command writes is collected in memory and
/// written at [`UnitOfWork::commit`] by one statement (its own implicit transaction),
/// so a command costs the database one round trip and one commit, and holds no
/// connection while it runs. Dropped without commit, nothing was ever sent.
///
/// Every part of the statement is conditional on the append: when the stream is not at
/// the expected version, nothing at all is written (`VersionConflict`); a unique
/// violation (a racing writer's version, a taken idempotency key) aborts the whole
/// statement.
#[derive(Debug)]
struct PgUnitOfWork {
    pool: PgPool,
    waker: OutboxWaker,
    pending: PendingWrites<Append>,
}

/// The events appended to one stream, as the statement's column arrays.
#[derive(Debug)]
struct Append {
    stream: OrderId,
    expected_version: i64,
    event_ids: Vec<uuid::Uuid>,
    versions: Vec<i64>,
    types: Vec<&'static str>,
    schemas: Vec<i32>,
    payloads: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
    traceparents: Vec<Option<String>>,
    occurred: Vec<DateTime<Utc>>,
}

impl Append {
    /// Encodes the columns (the versions were checked by [`PendingWrites::append`]).
    fn new(
        stream: OrderId,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<Self, StoreError> {
        let mut append = Self {
            stream,
            expected_version: to_i64(expected_version)?,
            event_ids: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            schemas: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            metadata: Vec::with_capacity(events.len()),
            traceparents: Vec::with_capacity(events.len()),
            occurred: Vec::with_capacity(events.len()),
        };
        for event in events {
            append.event_ids.push(event.event_id);
            append.versions.push(to_i64(event.version)?);
            append.types.push(event.event_type());
            append.schemas.push(
                i32::try_from(event.schema_version())
                    .map_err(|_| StoreError::Corrupt("schema version out of range".into()))?,
            );
            append.payloads.push(event.payload());
            append.metadata.push(
                serde_json::to_value(&event.metadata)
                    .map_err(|e| StoreError::Other(Box::new(e)))?,
            );
            append.traceparents.push(event.traceparent.clone());
            append.occurred.push(event.occurred_at);
        }
        Ok(append)
    }
}

/// The whole unit of work in one statement. `$1`–`$10` append the events (the insert
/// writes nothing unless the stream is at `$10`), `$11`–`$17` the outbox rows, `$18`–`$22`
/// the idempotency record, `$23`–`$27` the snapshot; every later part is written only when
/// the append wrote all its events (`$1`'s length), and an absent part is NULL.
const COMMIT_SQL: &str = "\
WITH appended AS ( \
    INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, schema_version, \
                        payload, metadata, traceparent, occurred_at) \
    SELECT e.event_id, $2, 'Order', e.version, e.event_type, e.schema_version, e.payload, \
           e.metadata, e.traceparent, e.occurred_at \
    FROM UNNEST($1::uuid[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[], \
                $8::text[], $9::timestamptz[]) \
         AS e(event_id, version, event_type, schema_version, payload, metadata, traceparent, occurred_at) \
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $2) = $10 \
    RETURNING 1), \
complete AS ( \
    SELECT (SELECT count(*) FROM appended) = coalesce(cardinality($1::uuid[]), 0) AS ok), \
outboxed AS ( \
    INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at, traceparent) \
    SELECT o.event_id, o.aggregate_id, o.version, o.event_type, o.message, o.occurred_at, o.traceparent \
    FROM UNNEST($11::uuid[], $12::uuid[], $13::bigint[], $14::text[], $15::text[], $16::timestamptz[], \
                $17::text[]) \
         WITH ORDINALITY AS o(event_id, aggregate_id, version, event_type, message, occurred_at, traceparent, n) \
    WHERE (SELECT ok FROM complete) \
    ORDER BY o.n \
    RETURNING 1), \
remembered AS ( \
    INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, version) \
    SELECT $18, $19, $20, $21, $22 \
    WHERE $18::text IS NOT NULL AND (SELECT ok FROM complete) \
    RETURNING 1), \
previous AS ( \
    SELECT version, last_occurred_at FROM snapshots \
    WHERE $23::uuid IS NOT NULL AND stream_id = $23 AND version < $24 \
    ORDER BY version DESC LIMIT 1), \
snapshotted AS ( \
    INSERT INTO snapshots (stream_id, version, state_schema, state, last_occurred_at) \
    SELECT $23, $24, $25, $26, GREATEST($27, \
           (SELECT last_occurred_at FROM previous), \
           (SELECT max(occurred_at) FROM events WHERE stream_id = $23 AND version <= $24 \
              AND version > coalesce((SELECT version FROM previous), 0)), \
           (SELECT max(t) FROM UNNEST($9::timestamptz[]) AS t)) \
    WHERE $23::uuid IS NOT NULL AND (SELECT ok FROM complete) \
    ON CONFLICT (stream_id, version) DO NOTHING \
    RETURNING 1) \
SELECT (SELECT ok FROM complete) AS complete, (SELECT count(*) FROM outboxed) AS outboxed";

impl PgUnitOfWork {
    fn new(pool: PgPool, waker: OutboxWaker) -> Self {
        Self {
            pool,
            waker,
            pending: PendingWrites::default(),
        }
    }

    /// Writes everything in one statement; returns whether the append was complete
    /// and how many outbox rows were written.
    async fn write(&self) -> Result<(bool, i64), StoreError> {
        let append = self.pending.append.as_ref();
        let outbox = OutboxColumns::of(&self.pending.outbox)
            .map_err(|_| StoreError::Corrupt("outbox version out of range".into()))?;
        let record = self.pending.idempotency.as_ref();
        let snapshot = self.pending.snapshot.as_ref();
        let row = sqlx::query(COMMIT_SQL)
            .bind(append.map(|a| &a.event_ids))
            .bind(append.map(|a| a.stream.as_uuid()))
            .bind(append.map(|a| &a.versions))
            .bind(append.map(|a| &a.types))
            .bind(append.map(|a| &a.schemas))
            .bind(append.map(|a| &a.payloads))
            .bind(append.map(|a| &a.metadata))
            .bind(append.map(|a| &a.traceparents))
            .bind(append.map(|a| &a.occurred))
            .bind(append.map_or(0, |a| a.expected_version))
            .bind(&outbox.event_ids)
            .bind(&outbox.aggregate_ids)
            .bind(&outbox.versions)
            .bind(&outbox.types)
            .bind(&outbox.messages)
            .bind(&outbox.occurred)
            .bind(&outbox.traceparents)
            .bind(record.map(|r| &r.scope))
            .bind(record.map(|r| &r.key))
            .bind(record.map(|r| &r.fingerprint))
            .bind(record.map(|r| r.order_id.as_uuid()))
            .bind(record.map(|r| to_i64(r.version)).transpose()?)
            .bind(snapshot.map(|s| s.order_id.as_uuid()))
            .bind(snapshot.map(|s| to_i64(s.version)).transpose()?)
            .bind(
                snapshot
                    .map(|s| {
                        i32::try_from(s.state_schema)
                            .map_err(|_| StoreError::Corrupt("state schema out of range".into()))
                    })
                    .transpose()?,
            )
            .bind(snapshot.map(|s| &s.state))
            .bind(snapshot.map(|s| s.last_occurred_at))
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok((row.get("complete"), row.get("outboxed")))
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
        self.pending.append(expected_version, events, || {
            Append::new(id, expected_version, events)
        })
    }

    async fn enqueue(&mut self, events: &[EventEnvelope]) -> Result<(), StoreError> {
        self.pending.enqueue(events);
        Ok(())
    }

    async fn remember(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.pending.remember(record)
    }

    async fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        // `last_occurred_at` is the latest occurred_at of the events up to the version
        // (usually the last one's; clocks may step back): the previous snapshot's value,
        // the stored events after it and the appended ones, so only the tail is read.
        self.pending.save_snapshot(snapshot)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if !self.pending.committable()? {
            return Ok(());
        }
        let (complete, outboxed) = self.write().await?;
        if !complete {
            return Err(StoreError::VersionConflict);
        }
        if outboxed > 0 {
            self.waker.wake(&self.pool);
        }
        Ok(())
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
