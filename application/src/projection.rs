//! The read side: the order-summary read model, the projector that keeps it up to
//! date from published events, and the list query it answers.
//!
//! The projector is fed events as a downstream consumer sees them: at least once, in
//! version order per order, possibly with repeats and, after a failure elsewhere, with
//! gaps. It is idempotent (an event at or below a summary's `version` changes nothing)
//! and gap-aware (an event ahead of `version + 1` first has the missing events fetched
//! from the event store and applied in order). The rebuild folds the event store with
//! the same [`OrderSummary::apply`], so both build the same rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{CustomerId, OrderEvent, OrderId, OrderStatus};
use uuid::Uuid;

use crate::access::Actor;
use crate::envelope::EventEnvelope;
use crate::ports::{EventStore, StoreError};
use crate::queries::QueryError;

/// One order as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub order_id: OrderId,
    pub customer_id: String,
    pub status: OrderStatus,
    pub total: u64,
    pub currency: String,
    /// The products of the order's lines; `itemCount` is their number.
    pub product_ids: Vec<String>,
    /// The version of the last event applied.
    pub version: u64,
    pub last_event_id: Uuid,
    /// When the last applied event was committed, when known (the Kafka envelope does
    /// not carry it; the read model then looks it up).
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OrderSummary {
    /// The summary a stream starts with: `None` unless `event` is its `OrderCreated`.
    pub fn start(event: &EventEnvelope) -> Option<Self> {
        let OrderEvent::OrderCreated(created) = &event.event else {
            return None;
        };
        (event.version == 1).then(|| Self {
            order_id: event.aggregate_id,
            customer_id: created.customer.customer_id().as_str().to_owned(),
            status: OrderStatus::Created,
            total: created.total.minor_units(),
            currency: created.currency.to_string(),
            product_ids: created
                .items
                .iter()
                .map(|l| l.product_id().as_str().to_owned())
                .collect(),
            version: 1,
            last_event_id: event.event_id,
            last_recorded_at: event.recorded_at,
            created_at: event.occurred_at,
            updated_at: event.occurred_at,
        })
    }

    /// Applies the next event of the stream (`version + 1`; the caller checks).
    pub fn apply(&mut self, event: &EventEnvelope) {
        match &event.event {
            OrderEvent::OrderCreated(_) | OrderEvent::DeliveryAddressChanged(_) => {}
            OrderEvent::ItemAdded(e) => {
                let product = e.product_id.as_str();
                if !self.product_ids.iter().any(|p| p == product) {
                    self.product_ids.push(product.to_owned());
                }
                self.total = e.total.minor_units();
            }
            OrderEvent::ItemRemoved(e) => {
                self.product_ids.retain(|p| p != e.product_id.as_str());
                self.total = e.total.minor_units();
            }
            OrderEvent::PaymentProcessed(_) => self.status = OrderStatus::Paid,
            OrderEvent::OrderShipped(_) => self.status = OrderStatus::Shipped,
            OrderEvent::OrderCancelled(_) => self.status = OrderStatus::Cancelled,
        }
        self.version = event.version;
        self.last_event_id = event.event_id;
        self.last_recorded_at = event.recorded_at;
        self.updated_at = event.occurred_at;
    }

    /// The number of lines.
    pub fn item_count(&self) -> usize {
        self.product_ids.len()
    }
}

/// Folds one event into a stream's summary when it is the next one (`version + 1`).
/// Returns whether it was applied.
pub fn fold(summary: &mut Option<OrderSummary>, event: &EventEnvelope) -> bool {
    match summary {
        None => {
            *summary = OrderSummary::start(event);
            summary.is_some()
        }
        Some(s) if event.version == s.version + 1 => {
            s.apply(event);
            true
        }
        Some(_) => false,
    }
}

/// Which summaries a page holds; newest first by `(created_at, order_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryFilter {
    pub customer_id: Option<CustomerId>,
    pub status: Option<OrderStatus>,
    /// 1 to 100.
    pub limit: u32,
    /// Only summaries strictly after this key (the previous page's last) in page order.
    pub after: Option<(DateTime<Utc>, OrderId)>,
}

/// The read model's storage.
#[async_trait]
pub trait ReadModel: Send + Sync {
    /// The stored summaries of these orders (absent ones are missing).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached; `Other` otherwise.
    async fn summaries(&self, ids: &[OrderId]) -> Result<Vec<OrderSummary>, StoreError>;

    /// Stores the summaries in one transaction; a stored summary at the same or a
    /// later version is kept (so a slow writer never moves one back).
    ///
    /// # Errors
    /// `Unavailable` or `Other`: then nothing was written.
    async fn save(&self, summaries: &[OrderSummary]) -> Result<(), StoreError>;

    /// Up to `filter.limit` summaries, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Other`.
    async fn page(&self, filter: &SummaryFilter) -> Result<Vec<OrderSummary>, StoreError>;

    /// How far the read model is behind the event store: the time between the newest
    /// committed event and the newest applied one; zero when caught up.
    ///
    /// # Errors
    /// `Unavailable` or `Other`.
    async fn lag(&self) -> Result<Duration, StoreError>;
}

/// What one call of [`Projector::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied (given or fetched).
    pub applied: usize,
    /// Events given that were already applied (redeliveries, older events).
    pub skipped: usize,
    /// Missing events fetched from the event store to close a gap.
    pub fetched: usize,
}

/// Keeps the read model up to date from events as they are published.
#[derive(Clone)]
pub struct Projector {
    read_model: Arc<dyn ReadModel>,
    store: Arc<dyn EventStore>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").finish_non_exhaustive()
    }
}

impl Projector {
    pub fn new(read_model: Arc<dyn ReadModel>, store: Arc<dyn EventStore>) -> Self {
        Self { read_model, store }
    }

    /// Applies a batch of published events, in the given order, then saves every
    /// changed summary in one transaction. Per order: an event at or below the stored
    /// version is skipped; the next one is applied; one further ahead first has the
    /// missing events read from the event store and applied in order.
    ///
    /// # Errors
    /// A [`StoreError`] when the read model or the event store fails: then nothing was
    /// saved and the same batch may be applied again.
    #[tracing::instrument(skip_all, fields(events = events.len()), err)]
    pub async fn apply(&self, events: &[EventEnvelope]) -> Result<Applied, StoreError> {
        let mut ids: Vec<OrderId> = events.iter().map(|e| e.aggregate_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut summaries: HashMap<OrderId, Option<OrderSummary>> = ids
            .iter()
            .map(|id| (*id, None))
            .chain(
                self.read_model
                    .summaries(&ids)
                    .await?
                    .into_iter()
                    .map(|s| (s.order_id, Some(s))),
            )
            .collect();
        let mut changed = HashSet::new();
        let mut done = Applied::default();
        for event in events {
            let id = event.aggregate_id;
            let summary = summaries.entry(id).or_default();
            let next = summary.as_ref().map_or(1, |s| s.version + 1);
            if event.version < next {
                done.skipped += 1;
                continue;
            }
            if event.version > next {
                let missing = self.store.load_from(id, next - 1).await?;
                tracing::debug!(order_id = %id, from = next, to = event.version, "gap: applying events read from the store");
                for m in missing.iter().take_while(|m| m.version < event.version) {
                    if fold(summary, m) {
                        done.fetched += 1;
                        done.applied += 1;
                        changed.insert(id);
                    }
                }
            }
            if fold(summary, event) {
                done.applied += 1;
                changed.insert(id);
            } else {
                tracing::warn!(order_id = %id, version = event.version, "event does not follow the read model's summary; skipped");
                done.skipped += 1;
            }
        }
        let dirty: Vec<OrderSummary> = changed
            .iter()
            .filter_map(|id| summaries.get(id).cloned().flatten())
            .collect();
        if !dirty.is_empty() {
            self.read_model.save(&dirty).await?;
        }
        Ok(done)
    }
}

/// A page of summaries and how to ask for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryPage {
    pub items: Vec<OrderSummary>,
    /// The key of the last item when more may follow.
    pub next: Option<(DateTime<Utc>, OrderId)>,
    /// [`ReadModel::lag`] when the page was read.
    pub lag: Duration,
}

/// The eventually consistent list query.
#[derive(Clone)]
pub struct SummaryQueries {
    read_model: Arc<dyn ReadModel>,
}

impl std::fmt::Debug for SummaryQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryQueries").finish_non_exhaustive()
    }
}

impl SummaryQueries {
    pub fn new(read_model: Arc<dyn ReadModel>) -> Self {
        Self { read_model }
    }

    /// A page of summaries (newest first) with the read model's lag. A customer sees
    /// its own orders: its `customerId` is the filter's when the filter has none.
    ///
    /// # Errors
    /// `Forbidden` when `actor` may not list the asked customer's orders;
    /// `Unavailable` or `Internal`.
    #[tracing::instrument(skip_all, err)]
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &SummaryFilter,
    ) -> Result<SummaryPage, QueryError> {
        let mut asked = filter.clone();
        asked.customer_id = actor.list_scope(filter.customer_id.clone())?;
        let lag = self.read_model.lag().await?;
        asked.limit = filter.limit.saturating_add(1);
        let mut items = self.read_model.page(&asked).await?;
        let more = items.len() > filter.limit as usize;
        items.truncate(filter.limit as usize);
        let next = items
            .last()
            .filter(|_| more)
            .map(|s| (s.created_at, s.order_id));
        Ok(SummaryPage { items, next, lag })
    }

    /// [`ReadModel::lag`].
    ///
    /// # Errors
    /// `Unavailable` or `Internal`.
    pub async fn lag(&self) -> Result<Duration, QueryError> {
        Ok(self.read_model.lag().await?)
    }
}
