//! The order's domain events: past-tense facts, the only way its state changes.
//!
//! The serialized form (`eventType` + camelCase `payload`) is the public contract of
//! API.md, shared by the event store and Kafka. Never rename an event type or change a
//! payload within a schema version; add a new schema version and an upcaster instead.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::values::{
    Address, Amount, CancellationReason, Carrier, Currency, CustomerInfo, DiscountCode,
    DiscountPercent, OrderLine, PaymentId, PaymentMethod, ProductId, Quantity, TrackingNumber,
    UnitPrice,
};

/// Something that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "payload")]
pub enum OrderEvent {
    OrderCreated(OrderCreated),
    ItemAdded(ItemAdded),
    ItemRemoved(ItemRemoved),
    DeliveryAddressChanged(DeliveryAddressChanged),
    PaymentProcessed(PaymentProcessed),
    OrderShipped(OrderShipped),
    OrderCancelled(OrderCancelled),
}

impl OrderEvent {
    /// Every event type this aggregate records, as stored and published.
    pub const TYPES: [&'static str; 7] = [
        "OrderCreated",
        "ItemAdded",
        "ItemRemoved",
        "DeliveryAddressChanged",
        "PaymentProcessed",
        "OrderShipped",
        "OrderCancelled",
    ];

    /// The stable event type name (`eventType` on the wire).
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OrderCreated(_) => "OrderCreated",
            Self::ItemAdded(_) => "ItemAdded",
            Self::ItemRemoved(_) => "ItemRemoved",
            Self::DeliveryAddressChanged(_) => "DeliveryAddressChanged",
            Self::PaymentProcessed(_) => "PaymentProcessed",
            Self::OrderShipped(_) => "OrderShipped",
            Self::OrderCancelled(_) => "OrderCancelled",
        }
    }

    /// The schema version of the payload shape this code writes.
    pub fn schema_version(&self) -> u32 {
        Self::current_schema_version(self.event_type()).unwrap_or(1)
    }

    /// The schema version this code writes for `event_type` (`None` for an unknown type).
    ///
    /// History: `OrderCancelled` 1 → 2 renamed `refund` to `refundAmount`; every other
    /// type is at 1.
    pub fn current_schema_version(event_type: &str) -> Option<u32> {
        match event_type {
            "OrderCancelled" => Some(2),
            other if Self::TYPES.contains(&other) => Some(1),
            _ => None,
        }
    }
}

/// An event as recorded in the aggregate's stream: its position and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// 1 for `OrderCreated`, then one more per event, with no gap.
    pub version: u64,
    /// When the behaviour that recorded it ran.
    pub occurred_at: DateTime<Utc>,
    pub event: OrderEvent,
}

/// The order was placed (by the factory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub customer: CustomerInfo,
    pub currency: Currency,
    pub items: Vec<OrderLine>,
    pub discount_codes: Vec<DiscountCode>,
    pub discount_percent: DiscountPercent,
    pub subtotal: Amount,
    pub discount: Amount,
    pub total: Amount,
}

/// Units of a product were added (`quantity` is the number added); totals after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemAdded {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub unit_price: UnitPrice,
    pub subtotal: Amount,
    pub discount: Amount,
    pub total: Amount,
}

/// A whole line was removed (`quantity` is what it held); totals after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemRemoved {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub subtotal: Amount,
    pub discount: Amount,
    pub total: Amount,
}

/// The delivery address was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAddressChanged {
    pub address: Address,
}

/// A payment covering the total was recorded; the order is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProcessed {
    pub payment_id: PaymentId,
    pub amount: Amount,
    pub method: PaymentMethod,
}

/// The order left with a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    pub tracking_number: TrackingNumber,
    pub carrier: Carrier,
}

/// The order was cancelled; `refund_amount` is what had been paid (0 if nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub reason: CancellationReason,
    pub refund_amount: Amount,
}
