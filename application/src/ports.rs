//! Ports: what the use cases need from the outside, as `async-trait` traits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use thiserror::Error;

use crate::envelope::EventEnvelope;

/// A failure of the event store or its transaction.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The stream's version is no longer the expected one: another writer appended
    /// first. Nothing of this unit of work was written.
    #[error("the stream was changed by another writer")]
    VersionConflict,
    /// The idempotency key was stored by a concurrent request first.
    #[error("the idempotency key was taken by a concurrent request")]
    IdempotencyKeyTaken,
    /// The database cannot be reached (connection refused, pool timed out, restart);
    /// nothing was written.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored event cannot be read back (unknown type, bad payload): a bug or a
    /// damaged store.
    #[error("a stored event is unreadable: {0}")]
    Corrupt(String),
    /// Any other failure; nothing of this unit of work was committed.
    #[error("the event store failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The answer a command gave, kept under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Whose key it is: the acting user when authentication is on, `""` otherwise.
    pub scope: String,
    pub key: String,
    /// A digest of method, path and body, so a reuse with another request is detected.
    pub fingerprint: String,
    pub order_id: OrderId,
    pub version: u64,
}

/// The event store: the order streams, the source of truth.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The events of one order in version order, with `recorded_at` and `position` set;
    /// empty when the order does not exist.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached; `Corrupt` when a stored event
    /// cannot be decoded.
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError>;

    /// The events of one order after version `after`, in version order (all of them
    /// for `after` 0). The default filters [`EventStore::load`]; stores override it to
    /// read only the tail.
    ///
    /// # Errors
    /// As [`EventStore::load`].
    async fn load_from(&self, id: OrderId, after: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut events = self.load(id).await?;
        events.retain(|e| e.version > after);
        Ok(events)
    }

    /// The idempotency record of `key` in `scope`, if one is kept.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Opens a unit of work (a database transaction).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError>;
}

/// One transaction: everything written through it commits together or not at all.
/// Dropping it without [`UnitOfWork::commit`] rolls it back.
///
/// A store may send the writes as they are made or collect them and write them all at
/// commit (the PostgreSQL store does: one statement, one round trip). So a refusal that
/// needs the database (`VersionConflict`, `IdempotencyKeyTaken`) may come from the call
/// that made the write or from [`UnitOfWork::commit`]; either way nothing was written.
#[async_trait]
pub trait UnitOfWork: Send {
    /// Appends `events` (versions `expected_version + 1 ..`) to the order's stream.
    ///
    /// # Errors
    /// `VersionConflict` when the stream is not at `expected_version` (for a new order,
    /// `expected_version` 0: when the stream exists already).
    async fn append(
        &mut self,
        id: OrderId,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError>;

    /// Writes `events` to the outbox, to be published by the relay after commit.
    ///
    /// # Errors
    /// `Unavailable` or `Other`; the unit of work must then be dropped.
    async fn enqueue(&mut self, events: &[EventEnvelope]) -> Result<(), StoreError>;

    /// Keeps the answer of an idempotent command.
    ///
    /// # Errors
    /// `IdempotencyKeyTaken` when the key was stored by a concurrent request.
    async fn remember(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError>;

    /// Stores a snapshot of the order's state at `snapshot.version` (which this unit
    /// of work appended or which is already stored).
    ///
    /// # Errors
    /// `Unavailable` or `Other`; the unit of work must then be dropped.
    async fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError>;

    /// Commits everything written through this unit of work.
    ///
    /// # Errors
    /// `VersionConflict` or `IdempotencyKeyTaken` as for the writes, `Unavailable` or
    /// `Other` (also after a refused call on this unit of work): then nothing was written.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// What a collecting [`UnitOfWork`] was asked to write, kept until its commit, with the
/// rules every such store enforces on the calls: one append (whose versions follow
/// `expected_version`), one idempotency record, one snapshot; after a refused call the
/// commit refuses too. `A` is the store's own form of the append (the events as they
/// are, or already encoded for its statement).
#[derive(Debug)]
pub struct PendingWrites<A> {
    pub append: Option<A>,
    pub outbox: Vec<EventEnvelope>,
    pub idempotency: Option<IdempotencyRecord>,
    pub snapshot: Option<StoredSnapshot>,
    failed: bool,
}

impl<A> Default for PendingWrites<A> {
    fn default() -> Self {
        Self {
            append: None,
            outbox: Vec::new(),
            idempotency: None,
            snapshot: None,
            failed: false,
        }
    }
}

impl<A> PendingWrites<A> {
    /// Keeps the append that `prepare` makes of `events`, once the versions were checked
    /// to follow `expected_version`.
    ///
    /// # Errors
    /// `Other` for a second append, `Corrupt` for versions that do not follow, or what
    /// `prepare` refuses; each makes the commit refuse.
    pub fn append(
        &mut self,
        expected_version: u64,
        events: &[EventEnvelope],
        prepare: impl FnOnce() -> Result<A, StoreError>,
    ) -> Result<(), StoreError> {
        if self.append.is_some() {
            return Err(self.fail(StoreError::Other(
                "a unit of work appends to one stream, once".into(),
            )));
        }
        for (offset, event) in (1..).zip(events) {
            if event.version != expected_version + offset {
                return Err(self.fail(StoreError::Corrupt(format!(
                    "event version {} does not follow {expected_version}",
                    event.version
                ))));
            }
        }
        let append = prepare().map_err(|e| self.fail(e))?;
        self.append = Some(append);
        Ok(())
    }

    /// Keeps `events` for the outbox.
    pub fn enqueue(&mut self, events: &[EventEnvelope]) {
        self.outbox.extend_from_slice(events);
    }

    /// Keeps the idempotency record.
    ///
    /// # Errors
    /// `Other` for a second one (the commit then refuses).
    pub fn remember(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        if self.idempotency.is_some() {
            return Err(self.fail(StoreError::Other(
                "a unit of work keeps one idempotency record".into(),
            )));
        }
        self.idempotency = Some(record.clone());
        Ok(())
    }

    /// Keeps the snapshot.
    ///
    /// # Errors
    /// `Other` for a second one (the commit then refuses).
    pub fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        if self.snapshot.is_some() {
            return Err(self.fail(StoreError::Other(
                "a unit of work stores one snapshot".into(),
            )));
        }
        self.snapshot = Some(snapshot.clone());
        Ok(())
    }

    /// Whether the commit has anything to write.
    ///
    /// # Errors
    /// `Other` when a call on this unit of work was refused: nothing of it may be written.
    pub fn committable(&self) -> Result<bool, StoreError> {
        if self.failed {
            return Err(StoreError::Other(
                "a call on this unit of work was refused; nothing of it was written".into(),
            ));
        }
        Ok(self.append.is_some()
            || !self.outbox.is_empty()
            || self.idempotency.is_some()
            || self.snapshot.is_some())
    }

    fn fail(&mut self, error: StoreError) -> StoreError {
        self.failed = true;
        error
    }
}

/// A snapshot of an order's state as stored: a cache of replaying its stream up to
/// `version` (see [`domain::OrderSnapshot`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    pub order_id: OrderId,
    pub version: u64,
    /// The shape of `state`: [`domain::OrderSnapshot::STATE_SCHEMA_VERSION`] when written.
    pub state_schema: u32,
    /// The serialized [`domain::OrderSnapshot`].
    pub state: serde_json::Value,
    /// The latest `occurred_at` of the events up to `version`: a query as of an
    /// earlier instant must not use this snapshot. Filled by the store on save.
    pub last_occurred_at: DateTime<Utc>,
}

/// Where snapshots are read.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The latest snapshot of the order whose `state_schema` is `state_schema` and,
    /// with `as_of`, whose `last_occurred_at` is not later than it.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn latest_snapshot(
        &self,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<StoredSnapshot>, StoreError>;

    /// The latest snapshot, as [`SnapshotStore::latest_snapshot`] finds it, and the
    /// order's events after it (all of them without a snapshot), in version order, read
    /// together. The default asks `events` for them after the snapshot; a store that
    /// holds both overrides it to read them in one round trip.
    ///
    /// # Errors
    /// As [`SnapshotStore::latest_snapshot`] and [`EventStore::load_from`].
    async fn latest_snapshot_and_events(
        &self,
        events: &dyn EventStore,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(Option<StoredSnapshot>, Vec<EventEnvelope>), StoreError> {
        let snapshot = self.latest_snapshot(id, state_schema, as_of).await?;
        let after = snapshot.as_ref().map_or(0, |s| s.version);
        Ok((snapshot, events.load_from(id, after).await?))
    }
}

/// Whether the service can serve requests: its store answers. The APIs' readiness
/// probes (`/readyz`) ask it.
#[async_trait]
pub trait Readiness: Send + Sync + std::fmt::Debug {
    /// `true` when the store answered a trivial request just now. The caller bounds
    /// how long it waits.
    async fn is_ready(&self) -> bool;
}

/// Where the use cases read the time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, to the microsecond (what PostgreSQL keeps), so a reload compares equal.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, truncated to microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }
}
