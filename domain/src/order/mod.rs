//! The `Order` aggregate root.
//!
//! An order is created only by [`OrderFactory::place`] and changed only by its
//! behaviours. A behaviour checks the rules against the current state, then records
//! one event; recording applies the event, and applying is the only code that changes
//! state. So [`Order::from_history`] over the recorded events rebuilds an equal order.
//!
//! # Layout
//! - `events`: [`OrderEvent`] and its payloads.
//! - `error`: [`OrderError`] (rules) and [`HistoryError`] (a stream that is no order).
//! - `status`: [`OrderStatus`] and its lifecycle.
//! - `discount`: the [`DiscountPolicy`] domain service and its default, [`DiscountTable`].
//! - `snapshot`: [`OrderSnapshot`], the state as a storable value, and `Order::from_snapshot`.

mod discount;
mod error;
pub mod events;
pub mod snapshot;
mod status;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use discount::{DiscountPolicy, DiscountTable, DiscountTableError};
pub use error::{ApplyError, HistoryError, OrderError};
pub use events::{OrderEvent, RecordedEvent};
pub use snapshot::OrderSnapshot;
pub use status::OrderStatus;

use crate::values::{
    Address, Amount, Cancellation, CancellationReason, Carrier, Currency, CustomerInfo,
    DiscountCode, DiscountPercent, OrderId, OrderLine, Payment, PaymentId, PaymentMethod,
    ProductId, Shipment, TrackingNumber,
};
use events::{
    DeliveryAddressChanged, ItemAdded, ItemRemoved, OrderCancelled, OrderCreated, OrderShipped,
    PaymentProcessed,
};

/// The most lines one order may hold.
pub const MAX_LINES: usize = 100;
/// The most discount codes one order may be placed with.
pub const MAX_DISCOUNT_CODES: usize = 3;

/// What it takes to place an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    pub id: OrderId,
    pub customer: CustomerInfo,
    pub currency: Currency,
    pub items: Vec<OrderLine>,
    pub discount_codes: Vec<DiscountCode>,
}

/// The only way to create an order: checks every rule of a new order, prices it
/// through the discount policy and records `OrderCreated`.
#[derive(Debug, Clone)]
pub struct OrderFactory {
    policy: Arc<dyn DiscountPolicy>,
}

impl OrderFactory {
    /// A factory pricing orders with `policy`.
    pub fn new(policy: Arc<dyn DiscountPolicy>) -> Self {
        Self { policy }
    }

    /// Places a new order, holding one pending `OrderCreated` event (version 1).
    ///
    /// # Errors
    /// [`OrderError`] for no lines or too many, a product on two lines, an amount that
    /// overflows, or discount codes that are unknown, repeated or too many.
    pub fn place(&self, command: PlaceOrder, now: DateTime<Utc>) -> Result<Order, OrderError> {
        let PlaceOrder {
            id,
            customer,
            currency,
            items,
            discount_codes,
        } = command;
        if items.is_empty() {
            return Err(OrderError::NoLines);
        }
        if items.len() > MAX_LINES {
            return Err(OrderError::TooManyLines { max: MAX_LINES });
        }
        for (i, line) in items.iter().enumerate() {
            if items[..i]
                .iter()
                .any(|earlier| earlier.product_id() == line.product_id())
            {
                return Err(OrderError::DuplicateProduct(line.product_id().clone()));
            }
        }
        if discount_codes.len() > MAX_DISCOUNT_CODES {
            return Err(OrderError::TooManyDiscountCodes {
                max: MAX_DISCOUNT_CODES,
            });
        }
        let mut percent = DiscountPercent::default();
        for (i, code) in discount_codes.iter().enumerate() {
            if discount_codes[..i].contains(code) {
                return Err(OrderError::DuplicateDiscountCode(code.clone()));
            }
            let share = self
                .policy
                .percent_for(code)
                .ok_or_else(|| OrderError::UnknownDiscountCode(code.clone()))?;
            percent = percent.saturating_add(share);
        }
        let totals = Totals::of(&items, percent)?;
        let created = OrderCreated {
            customer,
            currency,
            items,
            discount_codes,
            discount_percent: percent,
            subtotal: totals.subtotal,
            discount: totals.discount,
            total: totals.total,
        };
        let mut order = Order::created(id, &created, now);
        order.pending.push(RecordedEvent {
            version: 1,
            occurred_at: now,
            event: OrderEvent::OrderCreated(created),
        });
        Ok(order)
    }
}

/// Subtotal, discount and total of a set of lines at a discount percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Totals {
    subtotal: Amount,
    discount: Amount,
    total: Amount,
}

impl Totals {
    fn of(lines: &[OrderLine], percent: DiscountPercent) -> Result<Self, OrderError> {
        let subtotal = lines.iter().try_fold(Amount::ZERO, |sum, line| {
            line.line_total()
                .and_then(|t| sum.checked_add(t))
                .ok_or(OrderError::AmountOverflow)
        })?;
        let discount = subtotal.percent(percent.value());
        let total = subtotal
            .checked_sub(discount)
            .ok_or(OrderError::AmountOverflow)?;
        Ok(Self {
            subtotal,
            discount,
            total,
        })
    }
}

/// The order aggregate: a customer's order, its lines, its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    id: OrderId,
    version: u64,
    customer: CustomerInfo,
    currency: Currency,
    lines: Vec<OrderLine>,
    discount_codes: Vec<DiscountCode>,
    discount_percent: DiscountPercent,
    subtotal: Amount,
    discount: Amount,
    total: Amount,
    delivery_address: Address,
    status: OrderStatus,
    payment: Option<Payment>,
    shipment: Option<Shipment>,
    cancellation: Option<Cancellation>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pending: Vec<RecordedEvent>,
}

impl Order {
    /// Rebuilds an order from its recorded events, in version order. `Ok(None)` for an
    /// empty stream (no such order).
    ///
    /// # Errors
    /// [`HistoryError`] when the events cannot be an order's history.
    pub fn from_history(
        id: OrderId,
        events: impl IntoIterator<Item = RecordedEvent>,
    ) -> Result<Option<Order>, HistoryError> {
        let mut order: Option<Order> = None;
        for recorded in events {
            match (&mut order, &recorded.event) {
                (None, OrderEvent::OrderCreated(created)) if recorded.version == 1 => {
                    order = Some(Order::created(id, created, recorded.occurred_at));
                }
                (None, OrderEvent::OrderCreated(_)) => {
                    return Err(HistoryError::VersionGap {
                        expected: 1,
                        found: recorded.version,
                    })
                }
                (None, _) => return Err(HistoryError::NotStartedByCreation),
                (Some(_), OrderEvent::OrderCreated(_)) => {
                    return Err(HistoryError::CreatedTwice(recorded.version))
                }
                (Some(order), event) => {
                    let expected = order.version + 1;
                    if recorded.version != expected {
                        return Err(HistoryError::VersionGap {
                            expected,
                            found: recorded.version,
                        });
                    }
                    order
                        .apply(event, recorded.version, recorded.occurred_at)
                        .map_err(|reason| HistoryError::Inapplicable {
                            version: recorded.version,
                            reason,
                        })?;
                }
            }
        }
        Ok(order)
    }

    /// The events recorded since the order was loaded or last drained, oldest first.
    pub fn take_events(&mut self) -> Vec<RecordedEvent> {
        std::mem::take(&mut self.pending)
    }

    /// The events recorded and not yet taken.
    pub fn pending_events(&self) -> &[RecordedEvent] {
        &self.pending
    }

    /// Adds units of a product: to its line when it has one (same unit price only),
    /// else as a new line.
    ///
    /// # Errors
    /// `InvalidState` unless created; `PriceMismatch`, `QuantityLimit`,
    /// `TooManyLines` or `AmountOverflow` for the content rules.
    pub fn add_item(&mut self, line: OrderLine, now: DateTime<Utc>) -> Result<(), OrderError> {
        self.require(&[OrderStatus::Created], "add an item to")?;
        let mut lines = self.lines.clone();
        let line_count = lines.len();
        match lines
            .iter_mut()
            .find(|l| l.product_id() == line.product_id())
        {
            Some(existing) => {
                if existing.unit_price() != line.unit_price() {
                    return Err(OrderError::PriceMismatch {
                        product: line.product_id().clone(),
                        existing: existing.unit_price().into(),
                        requested: line.unit_price().into(),
                    });
                }
                let merged = existing
                    .quantity()
                    .checked_add(line.quantity())
                    .ok_or_else(|| OrderError::QuantityLimit(line.product_id().clone()))?;
                *existing = existing.with_quantity(merged);
            }
            None if line_count >= MAX_LINES => {
                return Err(OrderError::TooManyLines { max: MAX_LINES })
            }
            None => lines.push(line.clone()),
        }
        let totals = Totals::of(&lines, self.discount_percent)?;
        self.record(
            OrderEvent::ItemAdded(ItemAdded {
                product_id: line.product_id().clone(),
                quantity: line.quantity(),
                unit_price: line.unit_price(),
                subtotal: totals.subtotal,
                discount: totals.discount,
                total: totals.total,
            }),
            now,
        )
    }

    /// Removes the whole line of a product.
    ///
    /// # Errors
    /// `InvalidState` unless created; `LineNotFound`; `LastLine` for the only line.
    pub fn remove_item(
        &mut self,
        product_id: &ProductId,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.require(&[OrderStatus::Created], "remove an item from")?;
        let line = self
            .lines
            .iter()
            .find(|l| l.product_id() == product_id)
            .ok_or_else(|| OrderError::LineNotFound(product_id.clone()))?;
        if self.lines.len() == 1 {
            return Err(OrderError::LastLine);
        }
        let quantity = line.quantity();
        let rest: Vec<OrderLine> = self
            .lines
            .iter()
            .filter(|l| l.product_id() != product_id)
            .cloned()
            .collect();
        let totals = Totals::of(&rest, self.discount_percent)?;
        self.record(
            OrderEvent::ItemRemoved(ItemRemoved {
                product_id: product_id.clone(),
                quantity,
                subtotal: totals.subtotal,
                discount: totals.discount,
                total: totals.total,
            }),
            now,
        )
    }

    /// Replaces the delivery address.
    ///
    /// # Errors
    /// `InvalidState` once shipped or cancelled.
    pub fn change_delivery_address(
        &mut self,
        address: Address,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.require(
            &[OrderStatus::Created, OrderStatus::Paid],
            "change the delivery address of",
        )?;
        self.record(
            OrderEvent::DeliveryAddressChanged(DeliveryAddressChanged { address }),
            now,
        )
    }

    /// Records a payment that covers the total (more is accepted and recorded).
    ///
    /// # Errors
    /// `InvalidState` unless created; `PaymentBelowTotal`.
    pub fn pay(
        &mut self,
        payment_id: PaymentId,
        amount: Amount,
        method: PaymentMethod,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.require(&[OrderStatus::Created], "pay")?;
        if amount < self.total {
            return Err(OrderError::PaymentBelowTotal {
                amount,
                total: self.total,
            });
        }
        self.record(
            OrderEvent::PaymentProcessed(PaymentProcessed {
                payment_id,
                amount,
                method,
            }),
            now,
        )
    }

    /// Records that the order left with a carrier.
    ///
    /// # Errors
    /// `InvalidState` unless paid.
    pub fn ship(
        &mut self,
        tracking_number: TrackingNumber,
        carrier: Carrier,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.require(&[OrderStatus::Paid], "ship")?;
        self.record(
            OrderEvent::OrderShipped(OrderShipped {
                tracking_number,
                carrier,
            }),
            now,
        )
    }

    /// Cancels the order, refunding what was paid.
    ///
    /// # Errors
    /// `InvalidState` once shipped or cancelled.
    pub fn cancel(
        &mut self,
        reason: CancellationReason,
        now: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.require(&[OrderStatus::Created, OrderStatus::Paid], "cancel")?;
        let refund_amount = self.payment.as_ref().map_or(Amount::ZERO, |p| p.amount);
        self.record(
            OrderEvent::OrderCancelled(OrderCancelled {
                reason,
                refund_amount,
            }),
            now,
        )
    }

    fn require(&self, allowed: &[OrderStatus], action: &'static str) -> Result<(), OrderError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(OrderError::InvalidState {
                action,
                status: self.status,
            })
        }
    }

    /// Applies `event` as the next version and keeps it for the unit of work.
    fn record(&mut self, event: OrderEvent, now: DateTime<Utc>) -> Result<(), OrderError> {
        let version = self.version + 1;
        // Behaviours check every rule before recording, so applying does not fail; if it
        // ever did, the command is refused with the rule the event broke, and nothing is
        // recorded or changed.
        self.apply(&event, version, now)
            .map_err(|error| match error {
                ApplyError::CreatedAgain => OrderError::InvalidState {
                    action: "create",
                    status: self.status,
                },
                ApplyError::QuantityOverLimit(product) => OrderError::QuantityLimit(product),
                ApplyError::NoLine(product) => OrderError::LineNotFound(product),
            })?;
        self.pending.push(RecordedEvent {
            version,
            occurred_at: now,
            event,
        });
        Ok(())
    }

    fn created(id: OrderId, event: &OrderCreated, at: DateTime<Utc>) -> Order {
        Order {
            id,
            version: 1,
            delivery_address: event.customer.address().clone(),
            customer: event.customer.clone(),
            currency: event.currency,
            lines: event.items.clone(),
            discount_codes: event.discount_codes.clone(),
            discount_percent: event.discount_percent,
            subtotal: event.subtotal,
            discount: event.discount,
            total: event.total,
            status: OrderStatus::Created,
            payment: None,
            shipment: None,
            cancellation: None,
            created_at: at,
            updated_at: at,
            pending: Vec::new(),
        }
    }

    /// Applies an event after `OrderCreated`. The only code that changes state.
    fn apply(
        &mut self,
        event: &OrderEvent,
        version: u64,
        at: DateTime<Utc>,
    ) -> Result<(), ApplyError> {
        match event {
            OrderEvent::OrderCreated(_) => return Err(ApplyError::CreatedAgain),
            OrderEvent::ItemAdded(e) => {
                match self
                    .lines
                    .iter_mut()
                    .find(|l| l.product_id() == &e.product_id)
                {
                    Some(line) => {
                        let merged = line
                            .quantity()
                            .checked_add(e.quantity)
                            .ok_or_else(|| ApplyError::QuantityOverLimit(e.product_id.clone()))?;
                        *line = line.with_quantity(merged);
                    }
                    None => self.lines.push(OrderLine::new(
                        e.product_id.clone(),
                        e.quantity,
                        e.unit_price,
                    )),
                }
                (self.subtotal, self.discount, self.total) = (e.subtotal, e.discount, e.total);
            }
            OrderEvent::ItemRemoved(e) => {
                let before = self.lines.len();
                self.lines.retain(|l| l.product_id() != &e.product_id);
                if self.lines.len() == before {
                    return Err(ApplyError::NoLine(e.product_id.clone()));
                }
                (self.subtotal, self.discount, self.total) = (e.subtotal, e.discount, e.total);
            }
            OrderEvent::DeliveryAddressChanged(e) => self.delivery_address = e.address.clone(),
            OrderEvent::PaymentProcessed(e) => {
                self.status = OrderStatus::Paid;
                self.payment = Some(Payment {
                    payment_id: e.payment_id.clone(),
                    amount: e.amount,
                    method: e.method,
                });
            }
            OrderEvent::OrderShipped(e) => {
                self.status = OrderStatus::Shipped;
                self.shipment = Some(Shipment {
                    tracking_number: e.tracking_number.clone(),
                    carrier: e.carrier.clone(),
                });
            }
            OrderEvent::OrderCancelled(e) => {
                self.status = OrderStatus::Cancelled;
                self.cancellation = Some(Cancellation {
                    reason: e.reason.clone(),
                    refund_amount: e.refund_amount,
                });
            }
        }
        self.version = version;
        self.updated_at = at;
        Ok(())
    }

    pub fn id(&self) -> OrderId {
        self.id
    }
    /// The version of the last event applied or recorded (1 after creation).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The version the order had when it was loaded (before its pending events).
    pub fn loaded_version(&self) -> u64 {
        self.version - self.pending.len() as u64
    }
    pub fn customer(&self) -> &CustomerInfo {
        &self.customer
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    pub fn discount_codes(&self) -> &[DiscountCode] {
        &self.discount_codes
    }
    pub fn discount_percent(&self) -> DiscountPercent {
        self.discount_percent
    }
    pub fn subtotal(&self) -> Amount {
        self.subtotal
    }
    pub fn discount(&self) -> Amount {
        self.discount
    }
    pub fn total(&self) -> Amount {
        self.total
    }
    pub fn delivery_address(&self) -> &Address {
        &self.delivery_address
    }
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    pub fn payment(&self) -> Option<&Payment> {
        self.payment.as_ref()
    }
    pub fn shipment(&self) -> Option<&Shipment> {
        self.shipment.as_ref()
    }
    pub fn cancellation(&self) -> Option<&Cancellation> {
        self.cancellation.as_ref()
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}
