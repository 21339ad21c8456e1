//! Query use cases that must be current: they replay the order's event stream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Order, OrderId};
use thiserror::Error;

use crate::commands::CommandError;
use crate::envelope::EventEnvelope;
use crate::ports::{EventStore, StoreError};

/// Why a query has no answer.
#[derive(Debug, Error)]
pub enum QueryError {
    /// No such order (or, as of an instant, not yet).
    #[error("order {0} does not exist")]
    NotFound(OrderId),
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

/// The strongly consistent queries.
#[derive(Clone)]
pub struct OrderQueries {
    store: Arc<dyn EventStore>,
}

impl std::fmt::Debug for OrderQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderQueries").finish_non_exhaustive()
    }
}

impl OrderQueries {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    /// The order now, or as it was at `as_of` (the events that occurred until then).
    ///
    /// # Errors
    /// `NotFound` when it does not exist (or did not yet at `as_of`).
    #[tracing::instrument(skip_all, fields(order_id = %id), err)]
    pub async fn get(
        &self,
        id: OrderId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Order, QueryError> {
        let mut history = self.store.load(id).await?;
        if let Some(as_of) = as_of {
            let upto = history
                .iter()
                .take_while(|e| e.occurred_at <= as_of)
                .count();
            history.truncate(upto);
        }
        rebuild(id, &history)?.ok_or(QueryError::NotFound(id))
    }

    /// Every event of the order, in version order, with `recorded_at`.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    #[tracing::instrument(skip_all, fields(order_id = %id), err)]
    pub async fn history(&self, id: OrderId) -> Result<Vec<EventEnvelope>, QueryError> {
        let history = self.store.load(id).await?;
        if history.is_empty() {
            return Err(QueryError::NotFound(id));
        }
        Ok(history)
    }
}
