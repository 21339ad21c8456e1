//! An in-memory event store: the ports ([`EventStore`], [`UnitOfWork`], [`SnapshotStore`])
//! on a `Mutex`-protected map of streams, for fast tests of the use cases (cqrs-es's
//! `mem_store.rs` is the model). Nothing is persisted.
//!
//! It keeps the PostgreSQL store's semantics where the use cases can tell:
//! - A unit of work buffers its append, outbox rows, idempotency record and snapshot and
//!   applies them all at [`UnitOfWork::commit`], under one lock, or none of them. Before
//!   the commit nothing is visible; a unit of work dropped without commit wrote nothing.
//! - The append is checked at commit against the stream's version then (optimistic
//!   concurrency): when another commit appended first, the commit answers
//!   [`StoreError::VersionConflict`]; when the stream is right but the idempotency key
//!   was stored meanwhile, [`StoreError::IdempotencyKeyTaken`]. The version is checked
//!   first, as the PostgreSQL statement writes the key only after a complete append.
//! - A refused call (a second append, versions that do not follow) makes the commit
//!   refuse too, with `Other`.
//! - Events load with `recorded_at`, the commit's time (one per commit), and `position`,
//!   counting every event stored, over every stream, from 1; a snapshot's
//!   `last_occurred_at` is the latest `occurred_at` of the events up to its version, and
//!   a snapshot of a version already stored is left as it is.
//!
//! The accessors ([`MemoryEventStore::events`], [`MemoryEventStore::outbox`], ...) show
//! what was committed, so a test can check what a use case wrote, or that it wrote nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;

use crate::envelope::EventEnvelope;
use crate::ports::{
    Clock, EventStore, IdempotencyRecord, PendingWrites, SnapshotStore, StoreError, StoredSnapshot,
    SystemClock, UnitOfWork,
};

/// The event store in memory. Clones share the same streams.
#[derive(Debug, Clone, Default)]
pub struct MemoryEventStore {
    state: Arc<Mutex<State>>,
}

/// Everything committed.
#[derive(Debug, Default)]
struct State {
    streams: HashMap<OrderId, Vec<EventEnvelope>>,
    /// The outbox rows, in commit order (the relay would publish them in this order).
    outbox: Vec<EventEnvelope>,
    /// By (scope, key).
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    /// Per order, by version.
    snapshots: HashMap<OrderId, BTreeMap<u64, StoredSnapshot>>,
    /// Units of work that committed a write.
    commits: u64,
    /// The global position of the last event stored (0 before the first).
    last_position: u64,
}

impl State {
    fn version(&self, id: OrderId) -> u64 {
        self.streams
            .get(&id)
            .and_then(|stream| stream.last())
            .map_or(0, |last| last.version)
    }
}

impl MemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, also after a panic elsewhere: a commit checks everything before it
    /// changes anything, so a lock poisoned by a failing test holds no half commit.
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The committed events of one order, in version order (empty when it does not exist).
    pub fn events(&self, id: OrderId) -> Vec<EventEnvelope> {
        self.state().streams.get(&id).cloned().unwrap_or_default()
    }

    /// How many events are stored, over every stream.
    pub fn event_count(&self) -> usize {
        self.state().streams.values().map(Vec::len).sum()
    }

    /// The outbox rows written, in commit order.
    pub fn outbox(&self) -> Vec<EventEnvelope> {
        self.state().outbox.clone()
    }

    /// The idempotency records kept, in no particular order.
    pub fn idempotency_records(&self) -> Vec<IdempotencyRecord> {
        self.state().idempotency.values().cloned().collect()
    }

    /// The snapshots of one order, in version order.
    pub fn snapshots(&self, id: OrderId) -> Vec<StoredSnapshot> {
        self.state()
            .snapshots
            .get(&id)
            .map(|by_version| by_version.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many units of work committed a write (an empty one does not count).
    pub fn commits(&self) -> u64 {
        self.state().commits
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError> {
        Ok(self.events(id))
    }

    async fn load_from(&self, id: OrderId, after: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        let state = self.state();
        let stream = state.streams.get(&id).map_or(&[][..], Vec::as_slice);
        Ok(stream
            .iter()
            .filter(|e| e.version > after)
            .cloned()
            .collect())
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .state()
            .idempotency
            .get(&(scope.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        Ok(Box::new(MemoryUnitOfWork {
            state: self.state.clone(),
            pending: PendingWrites::default(),
        }))
    }
}

#[async_trait]
impl SnapshotStore for MemoryEventStore {
    async fn latest_snapshot(
        &self,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let state = self.state();
        Ok(state.snapshots.get(&id).and_then(|by_version| {
            by_version
                .values()
                .rev()
                .find(|s| {
                    s.state_schema == state_schema
                        && as_of.is_none_or(|as_of| s.last_occurred_at <= as_of)
                })
                .cloned()
        }))
    }
}

/// A unit of work in memory: the writes wait here until [`UnitOfWork::commit`].
#[derive(Debug)]
struct MemoryUnitOfWork {
    state: Arc<Mutex<State>>,
    pending: PendingWrites<Append>,
}

#[derive(Debug)]
struct Append {
    stream: OrderId,
    expected_version: u64,
    events: Vec<EventEnvelope>,
}

#[async_trait]
impl UnitOfWork for MemoryUnitOfWork {
    async fn append(
        &mut self,
        id: OrderId,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        self.pending.append(expected_version, events, || {
            Ok(Append {
                stream: id,
                expected_version,
                events: events.to_vec(),
            })
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
        self.pending.save_snapshot(snapshot)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if !self.pending.committable()? {
            return Ok(());
        }
        let Self { state, pending } = *self;
        let PendingWrites {
            append,
            outbox,
            idempotency,
            snapshot,
            ..
        } = pending;
        let mut state = lock(&state);

        // Every check before any write: a refused commit leaves the state as it was.
        state.check_commit(append.as_ref(), idempotency.as_ref())?;

        let recorded_at = SystemClock.now();
        if let Some(append) = append {
            state.write_append(append, recorded_at);
        }
        state.outbox.extend(outbox);
        if let Some(record) = idempotency {
            state.write_idempotency(record);
        }
        if let Some(snapshot) = snapshot {
            state.write_snapshot(snapshot);
        }
        state.commits += 1;
        Ok(())
    }
}

/// The steps of [`MemoryUnitOfWork::commit`], under the lock.
impl State {
    /// Refuses a commit whose append no longer follows the stream
    /// ([`StoreError::VersionConflict`]) or whose idempotency key was stored meanwhile
    /// ([`StoreError::IdempotencyKeyTaken`]), in that order. An empty append is complete
    /// whatever the version, as in the SQL statement.
    fn check_commit(
        &self,
        append: Option<&Append>,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<(), StoreError> {
        if let Some(append) = append {
            if !append.events.is_empty() && self.version(append.stream) != append.expected_version {
                return Err(StoreError::VersionConflict);
            }
        }
        if idempotency.is_some_and(|record| self.idempotency.contains_key(&idempotency_key(record)))
        {
            return Err(StoreError::IdempotencyKeyTaken);
        }
        Ok(())
    }

    /// Adds the appended events to their stream, stamped with the commit's time and
    /// the next global positions.
    fn write_append(&mut self, append: Append, recorded_at: DateTime<Utc>) {
        let stream = self.streams.entry(append.stream).or_default();
        for event in append.events {
            self.last_position += 1;
            stream.push(EventEnvelope {
                recorded_at: Some(recorded_at),
                position: Some(self.last_position),
                ..event
            });
        }
    }

    fn write_idempotency(&mut self, record: IdempotencyRecord) {
        self.idempotency.insert(idempotency_key(&record), record);
    }

    /// Stores `snapshot` with its `last_occurred_at` raised to the latest `occurred_at`
    /// of the events up to its version; a snapshot of a version already stored stays.
    fn write_snapshot(&mut self, snapshot: StoredSnapshot) {
        let last_occurred_at = self
            .streams
            .get(&snapshot.order_id)
            .into_iter()
            .flatten()
            .take_while(|e| e.version <= snapshot.version)
            .map(|e| e.occurred_at)
            .fold(snapshot.last_occurred_at, DateTime::max);
        self.snapshots
            .entry(snapshot.order_id)
            .or_default()
            .entry(snapshot.version)
            .or_insert(StoredSnapshot {
                last_occurred_at,
                ..snapshot
            });
    }
}

/// The key of [`State::idempotency`]: (scope, key).
fn idempotency_key(record: &IdempotencyRecord) -> (String, String) {
    (record.scope.clone(), record.key.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;
    use domain::{
        Address, AddressLine, City, CountryCode, Currency, CustomerId, CustomerInfo, CustomerName,
        DiscountTable, OrderFactory, OrderLine, PhoneNumber, PlaceOrder, ProductId, Quantity,
        UnitPrice,
    };
    use uuid::Uuid;

    use super::*;
    use crate::envelope::EventMetadata;

    /// The `OrderCreated` envelope of a new order (version 1).
    fn created(id: OrderId) -> EventEnvelope {
        let address = Address::new(
            AddressLine::parse("1 Tràng Tiền").unwrap(),
            None,
            City::parse("Hanoi").unwrap(),
            None,
            CountryCode::parse("VN").unwrap(),
        );
        let customer = CustomerInfo::new(
            CustomerId::parse("customer-1").unwrap(),
            CustomerName::parse("Nguyễn Văn A").unwrap(),
            PhoneNumber::parse("+84 912 345 678").unwrap(),
            address,
        );
        let line = OrderLine::new(
            ProductId::parse("sku-1").unwrap(),
            Quantity::new(1).unwrap(),
            UnitPrice::new(100).unwrap(),
        );
        let factory = OrderFactory::new(Arc::new(DiscountTable::parse("").unwrap()));
        let mut order = factory
            .place(
                PlaceOrder {
                    id,
                    customer,
                    currency: Currency::parse("VND").unwrap(),
                    items: vec![line],
                    discount_codes: vec![],
                },
                Utc::now(),
            )
            .unwrap();
        let metadata = EventMetadata {
            user_id: None,
            correlation_id: "c".to_owned(),
            causation_id: "c".to_owned(),
        };
        let recorded = order.take_events().remove(0);
        EventEnvelope::new(id, recorded, metadata, None)
    }

    fn new_id() -> OrderId {
        OrderId::from_uuid(Uuid::now_v7())
    }

    fn record(key: &str, id: OrderId) -> IdempotencyRecord {
        IdempotencyRecord {
            scope: String::new(),
            key: key.to_owned(),
            fingerprint: "f".to_owned(),
            order_id: id,
            version: 1,
        }
    }

    #[tokio::test]
    async fn nothing_is_visible_before_commit_and_a_dropped_unit_of_work_writes_nothing() {
        let store = MemoryEventStore::new();
        let id = new_id();
        let mut uow = store.begin().await.unwrap();
        uow.append(id, 0, &[created(id)]).await.unwrap();
        uow.enqueue(&[created(id)]).await.unwrap();
        uow.remember(&record("k", id)).await.unwrap();
        assert!(store.load(id).await.unwrap().is_empty());
        assert!(store.outbox().is_empty());
        assert_eq!(store.find_idempotency("", "k").await.unwrap(), None);
        drop(uow);

        assert_eq!(store.event_count(), 0);
        assert!(store.outbox().is_empty());
        assert!(store.idempotency_records().is_empty());
        assert_eq!(store.commits(), 0);
    }

    #[tokio::test]
    async fn a_commit_writes_everything_with_the_commit_time() {
        let store = MemoryEventStore::new();
        let id = new_id();
        let event = created(id);
        let before = Utc::now();
        let mut uow = store.begin().await.unwrap();
        uow.append(id, 0, std::slice::from_ref(&event))
            .await
            .unwrap();
        uow.enqueue(std::slice::from_ref(&event)).await.unwrap();
        uow.remember(&record("k", id)).await.unwrap();
        uow.commit().await.unwrap();

        let loaded = store.load(id).await.unwrap();
        assert_eq!(loaded.len(), 1);
        let recorded_at = loaded[0].recorded_at.expect("recorded_at is set");
        assert!(recorded_at >= before - chrono::Duration::milliseconds(1));
        assert_eq!(loaded[0].position, Some(1));
        assert_eq!(loaded[0].unstored(), event);
        assert_eq!(store.outbox(), [event]);
        assert_eq!(
            store.find_idempotency("", "k").await.unwrap(),
            Some(record("k", id))
        );
        assert_eq!(store.commits(), 1);
    }

    #[tokio::test]
    async fn events_get_global_positions_in_commit_order_over_every_stream() {
        let store = MemoryEventStore::new();
        let (a, b) = (new_id(), new_id());
        let a_second = EventEnvelope {
            event_id: Uuid::now_v7(),
            version: 2,
            ..created(a)
        };
        let mut uow = store.begin().await.unwrap();
        uow.append(a, 0, &[created(a)]).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = store.begin().await.unwrap();
        uow.append(b, 0, &[created(b)]).await.unwrap();
        uow.commit().await.unwrap();
        let mut uow = store.begin().await.unwrap();
        uow.append(a, 1, &[a_second]).await.unwrap();
        uow.commit().await.unwrap();

        let positions = |id| {
            store
                .events(id)
                .iter()
                .map(|e| e.position)
                .collect::<Vec<_>>()
        };
        assert_eq!(positions(a), [Some(1), Some(3)]);
        assert_eq!(positions(b), [Some(2)]);
    }

    #[tokio::test]
    async fn the_second_of_two_commits_at_the_same_version_is_a_conflict_and_writes_nothing() {
        let store = MemoryEventStore::new();
        let id = new_id();
        let (first, second) = (created(id), created(id));
        let mut winner = store.begin().await.unwrap();
        let mut loser = store.begin().await.unwrap();
        winner
            .append(id, 0, std::slice::from_ref(&first))
            .await
            .unwrap();
        loser
            .append(id, 0, std::slice::from_ref(&second))
            .await
            .unwrap();
        loser.enqueue(&[second]).await.unwrap();
        loser.remember(&record("k", id)).await.unwrap();
        winner.commit().await.unwrap();

        assert!(matches!(
            loser.commit().await,
            Err(StoreError::VersionConflict)
        ));
        let loaded = store.load(id).await.unwrap();
        assert_eq!(
            loaded.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            [first.event_id]
        );
        assert!(store.outbox().is_empty());
        assert!(store.idempotency_records().is_empty());
    }

    #[tokio::test]
    async fn a_key_stored_meanwhile_refuses_the_commit_and_nothing_of_it_is_written() {
        let store = MemoryEventStore::new();
        let (id, other) = (new_id(), new_id());
        let mut first = store.begin().await.unwrap();
        first.remember(&record("k", other)).await.unwrap();
        let mut second = store.begin().await.unwrap();
        second.append(id, 0, &[created(id)]).await.unwrap();
        second.remember(&record("k", id)).await.unwrap();
        first.commit().await.unwrap();

        assert!(matches!(
            second.commit().await,
            Err(StoreError::IdempotencyKeyTaken)
        ));
        assert_eq!(store.event_count(), 0);
        assert_eq!(store.idempotency_records(), [record("k", other)]);
    }

    #[tokio::test]
    async fn a_refused_call_makes_the_commit_refuse() {
        let store = MemoryEventStore::new();
        let id = new_id();
        let mut uow = store.begin().await.unwrap();
        let gap = uow.append(id, 1, &[created(id)]).await;
        assert!(matches!(gap, Err(StoreError::Corrupt(_))));
        uow.enqueue(&[created(id)]).await.unwrap();

        assert!(matches!(uow.commit().await, Err(StoreError::Other(_))));
        assert_eq!(store.event_count(), 0);
        assert!(store.outbox().is_empty());
    }
}
