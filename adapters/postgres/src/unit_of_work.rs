//! The command's unit of work: everything a command writes, in one statement. It is
//! the one statement that writes several tables (`events`, `outbox`,
//! `idempotency_keys`, `snapshots`), so a command costs one round trip and one commit;
//! each of those tables' modules points here.

use application::{
    EventEnvelope, IdempotencyRecord, PendingWrites, StoreError, StoredSnapshot, UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::PgPool;

use crate::convert::to_column;
use crate::outbox::{OutboxColumns, OutboxWaker};
use crate::store_error;

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
pub(crate) struct PgUnitOfWork {
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
            expected_version: to_column("events.version", expected_version)?,
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
            append
                .versions
                .push(to_column("events.version", event.version)?);
            append.types.push(event.event_type());
            append
                .schemas
                .push(to_column("events.schema_version", event.schema_version())?);
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

impl PgUnitOfWork {
    pub(crate) fn new(pool: PgPool, waker: OutboxWaker) -> Self {
        Self {
            pool,
            waker,
            pending: PendingWrites::default(),
        }
    }

    /// Writes everything in one statement; returns whether the append was complete
    /// and how many outbox rows were written.
    ///
    /// The statement and the meaning of its parameters: `unit_of_work/commit.sql`.
    async fn write(&self) -> Result<(bool, i64), StoreError> {
        let append = self.pending.append.as_ref();
        let outbox = OutboxColumns::of(&self.pending.outbox)?;
        let record = self.pending.idempotency.as_ref();
        let record_version: Option<i64> = record
            .map(|r| to_column("idempotency_keys.version", r.version))
            .transpose()?;
        let snapshot = self.pending.snapshot.as_ref();
        let snapshot_version: Option<i64> = snapshot
            .map(|s| to_column("snapshots.version", s.version))
            .transpose()?;
        let snapshot_schema: Option<i32> = snapshot
            .map(|s| to_column("snapshots.state_schema", s.state_schema))
            .transpose()?;
        let row = sqlx::query_file!(
            "src/unit_of_work/commit.sql",
            append.map(|a| a.event_ids.as_slice()),
            append.map(|a| a.stream.as_uuid()),
            append.map(|a| a.versions.as_slice()),
            // `as _`: arrays of `&str` and of NULLable text are encoded as text[], which
            // the macro's check (`&[String]` only) does not know.
            append.map(|a| a.types.as_slice()) as _,
            append.map(|a| a.schemas.as_slice()),
            append.map(|a| a.payloads.as_slice()),
            append.map(|a| a.metadata.as_slice()),
            append.map(|a| a.traceparents.as_slice()) as _,
            append.map(|a| a.occurred.as_slice()),
            append.map_or(0, |a| a.expected_version),
            &outbox.event_ids,
            &outbox.aggregate_ids,
            &outbox.versions,
            &outbox.types as _,
            &outbox.messages,
            &outbox.occurred,
            &outbox.traceparents as _,
            record.map(|r| r.scope.as_str()),
            record.map(|r| r.key.as_str()),
            record.map(|r| r.fingerprint.as_str()),
            record.map(|r| r.order_id.as_uuid()),
            record_version,
            snapshot.map(|s| s.order_id.as_uuid()),
            snapshot_version,
            snapshot_schema,
            snapshot.map(|s| &s.state),
            snapshot.map(|s| s.last_occurred_at),
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok((row.complete, row.outboxed))
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
