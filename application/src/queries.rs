//! Query use cases that must be current: they load the order from its event stream
//! (from the latest usable snapshot and the later events, when snapshots are on).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Order, OrderId, OrderSnapshot};
use thiserror::Error;

use crate::access::{Action, Actor, Forbidden};
use crate::commands::CommandError;
use crate::envelope::EventEnvelope;
use crate::ports::{EventStore, SnapshotStore, StoreError};

/// Why a query has no answer.
#[derive(Debug, Error)]
pub enum QueryError {
    /// No such order (or, as of an instant, not yet).
    #[error("order {0} does not exist")]
    NotFound(OrderId),
    /// The actor's role does not allow the query.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("the event store is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal failure")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            _ => Self::Internal(error),
        }
    }
}

impl From<CommandError> for QueryError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Unavailable(e) => Self::Unavailable(e),
            CommandError::Internal(e) => Self::Internal(e),
            other => Self::Internal(StoreError::Corrupt(other.to_string())),
        }
    }
}

/// Rebuilds an order from stored envelopes.
pub(crate) fn rebuild(
    id: OrderId,
    history: &[EventEnvelope],
) -> Result<Option<Order>, CommandError> {
    Order::from_history(id, history.iter().map(EventEnvelope::recorded))
        .map_err(|e| CommandError::Internal(StoreError::Corrupt(format!("order {id}: {e}"))))
}

/// Loads orders: from the latest usable snapshot plus the later events, or by
/// replaying the whole stream. Both give the same order; snapshots only save time.
#[derive(Clone)]
pub(crate) struct Loader {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) snapshots: Option<Arc<dyn SnapshotStore>>,
}

impl Loader {
    pub(crate) fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            snapshots: None,
        }
    }

    /// The order now, or as of an instant (its events that occurred until then, in
    /// version order, up to the first that occurred later). `None`: no such order.
    ///
    /// A snapshot is used only when its state schema is this code's and, with `as_of`,
    /// when every event it includes occurred by then; an unreadable snapshot is
    /// skipped (logged) and the stream replayed.
    pub(crate) async fn load(
        &self,
        id: OrderId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<Order>, CommandError> {
        if let Some(snapshots) = &self.snapshots {
            let (latest, later) = snapshots
                .latest_snapshot_and_events(
                    self.store.as_ref(),
                    id,
                    OrderSnapshot::STATE_SCHEMA_VERSION,
                    as_of,
                )
                .await?;
            let Some(stored) = latest else {
                return rebuild(id, &until(later, as_of));
            };
            match serde_json::from_value::<OrderSnapshot>(stored.state) {
                Ok(snapshot) if snapshot.id == id && snapshot.version == stored.version => {
                    return Order::from_snapshot(
                        snapshot,
                        until(later, as_of).iter().map(EventEnvelope::recorded),
                    )
                    .map(Some)
                    .map_err(|e| {
                        CommandError::Internal(StoreError::Corrupt(format!(
                            "order {id} after snapshot {}: {e}",
                            stored.version
                        )))
                    });
                }
                Ok(_) => {
                    tracing::warn!(order_id = %id, version = stored.version, "snapshot of another order or version; replaying the stream")
                }
                Err(error) => {
                    tracing::warn!(order_id = %id, version = stored.version, %error, "unreadable snapshot; replaying the stream")
                }
            }
        }
        let history = until(self.store.load(id).await?, as_of);
        rebuild(id, &history)
    }
}

/// The events that occurred until `as_of` (all without it): the prefix up to the
/// first that occurred later.
fn until(mut events: Vec<EventEnvelope>, as_of: Option<DateTime<Utc>>) -> Vec<EventEnvelope> {
    if let Some(as_of) = as_of {
        let upto = events.iter().take_while(|e| e.occurred_at <= as_of).count();
        events.truncate(upto);
    }
    events
}

/// The strongly consistent queries.
#[derive(Clone)]
pub struct OrderQueries {
    store: Arc<dyn EventStore>,
    loader: Loader,
}

impl std::fmt::Debug for OrderQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderQueries").finish_non_exhaustive()
    }
}

impl OrderQueries {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            loader: Loader::new(store.clone()),
            store,
        }
    }

    /// Loads orders from their latest usable snapshot in `snapshots` and the later events.
    pub fn with_snapshots(mut self, snapshots: Arc<dyn SnapshotStore>) -> Self {
        self.loader.snapshots = Some(snapshots);
        self
    }

    /// The order now, or as it was at `as_of` (the events that occurred until then).
    ///
    /// # Errors
    /// `NotFound` when it does not exist (or did not yet at `as_of`), or `actor` may not
    /// see it; `Forbidden` when `actor` may not read orders.
    #[tracing::instrument(skip_all, fields(order_id = %id), err(level = "debug"))]
    pub async fn get(
        &self,
        actor: &Actor,
        id: OrderId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Order, QueryError> {
        let order = self
            .loader
            .load(id, as_of)
            .await?
            .filter(|order| actor.may_see(order.customer().customer_id()))
            .ok_or(QueryError::NotFound(id))?;
        actor.check(Action::Read)?;
        Ok(order)
    }

    /// Every event of the order, in version order, with `recorded_at` and `position`.
    ///
    /// # Errors
    /// As [`OrderQueries::get`].
    #[tracing::instrument(skip_all, fields(order_id = %id), err(level = "debug"))]
    pub async fn history(
        &self,
        actor: &Actor,
        id: OrderId,
    ) -> Result<Vec<EventEnvelope>, QueryError> {
        let history = self.store.load(id).await?;
        let owner = history.first().and_then(|first| match &first.event {
            domain::OrderEvent::OrderCreated(created) => {
                Some(created.customer.customer_id().clone())
            }
            _ => None,
        });
        if !owner.is_some_and(|owner| actor.may_see(&owner)) {
            return Err(QueryError::NotFound(id));
        }
        actor.check(Action::Read)?;
        Ok(history)
    }
}
