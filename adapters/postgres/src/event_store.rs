//! The application's `EventStore`, `SnapshotStore` and `UnitOfWork` ports on
//! PostgreSQL. The statements live with their tables ([`crate::events`],
//! [`crate::snapshots`], [`crate::idempotency_keys`]); a command's writes are one
//! statement ([`crate::unit_of_work`]).

use application::{
    EventEnvelope, EventStore, IdempotencyRecord, SnapshotStore, StoreError, StoredSnapshot,
    UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use sqlx::PgPool;

use crate::outbox::OutboxWaker;
use crate::unit_of_work::PgUnitOfWork;
use crate::{events, idempotency_keys, snapshots};

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

#[async_trait]
impl EventStore for PgEventStore {
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError> {
        events::of_stream(&self.pool, id, 0).await
    }

    async fn load_from(&self, id: OrderId, after: u64) -> Result<Vec<EventEnvelope>, StoreError> {
        events::of_stream(&self.pool, id, after).await
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        idempotency_keys::find(&self.pool, scope, key).await
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
        snapshots::latest(&self.pool, id, state_schema, as_of).await
    }

    /// One statement: the latest snapshot and the events after it.
    async fn latest_snapshot_and_events(
        &self,
        _events: &dyn EventStore,
        id: OrderId,
        state_schema: u32,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(Option<StoredSnapshot>, Vec<EventEnvelope>), StoreError> {
        snapshots::latest_and_events(&self.pool, id, state_schema, as_of).await
    }
}
