//! The order's state as a value that can be stored: a snapshot.
//!
//! A snapshot is a cache of `Order::from_history` over the events up to its version:
//! loading the snapshot and applying the later events rebuilds exactly the order that
//! replaying the whole stream would. Its serialized shape is versioned by
//! [`OrderSnapshot::STATE_SCHEMA_VERSION`]; a reader ignores a snapshot of another shape
//! and replays the stream instead, so changing the shape only costs speed.
//!
//! Like events, it deserializes only through the validating constructors of the value
//! objects it holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{HistoryError, Order, OrderEvent, OrderStatus, RecordedEvent};
use crate::values::{
    Address, Amount, Cancellation, CancellationReason, Carrier, Currency, CustomerInfo,
    DiscountCode, DiscountPercent, OrderId, OrderLine, Payment, PaymentId, PaymentMethod, Shipment,
    TrackingNumber,
};

/// Every field of an [`Order`] but its pending events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSnapshot {
    pub id: OrderId,
    /// The version of the last event the state includes.
    pub version: u64,
    pub customer: CustomerInfo,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub discount_codes: Vec<DiscountCode>,
    pub discount_percent: DiscountPercent,
    pub subtotal: Amount,
    pub discount: Amount,
    pub total: Amount,
    pub delivery_address: Address,
    pub status: OrderStatus,
    pub payment: Option<PaymentState>,
    pub shipment: Option<ShipmentState>,
    pub cancellation: Option<CancellationState>,
    pub created_at: DateTime<Utc>,
    /// When the event at `version` occurred.
    pub updated_at: DateTime<Utc>,
}

/// A recorded payment, as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentState {
    pub payment_id: PaymentId,
    pub amount: Amount,
    pub method: PaymentMethod,
}

/// A recorded shipment, as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentState {
    pub tracking_number: TrackingNumber,
    pub carrier: Carrier,
}

/// A recorded cancellation, as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancellationState {
    pub reason: CancellationReason,
    pub refund_amount: Amount,
}

impl OrderSnapshot {
    /// The shape of the serialized state this code writes and reads. Bump it whenever
    /// a field of [`OrderSnapshot`] (or of a value object in it) changes shape.
    pub const STATE_SCHEMA_VERSION: u32 = 1;
}

impl Order {
    /// The order's state, without its pending events (their effect is included).
    pub fn snapshot(&self) -> OrderSnapshot {
        OrderSnapshot {
            id: self.id,
            version: self.version,
            customer: self.customer.clone(),
            currency: self.currency,
            lines: self.lines.clone(),
            discount_codes: self.discount_codes.clone(),
            discount_percent: self.discount_percent,
            subtotal: self.subtotal,
            discount: self.discount,
            total: self.total,
            delivery_address: self.delivery_address.clone(),
            status: self.status,
            payment: self.payment.as_ref().map(|p| PaymentState {
                payment_id: p.payment_id.clone(),
                amount: p.amount,
                method: p.method,
            }),
            shipment: self.shipment.as_ref().map(|s| ShipmentState {
                tracking_number: s.tracking_number.clone(),
                carrier: s.carrier.clone(),
            }),
            cancellation: self.cancellation.as_ref().map(|c| CancellationState {
                reason: c.reason.clone(),
                refund_amount: c.refund_amount,
            }),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Rebuilds an order from a snapshot and the events recorded after it, in version
    /// order (the first at `snapshot.version + 1`).
    ///
    /// # Errors
    /// [`HistoryError`] when the events do not follow the snapshot or do not apply.
    pub fn from_snapshot(
        snapshot: OrderSnapshot,
        later: impl IntoIterator<Item = RecordedEvent>,
    ) -> Result<Order, HistoryError> {
        let mut order = Order {
            id: snapshot.id,
            version: snapshot.version,
            customer: snapshot.customer,
            currency: snapshot.currency,
            lines: snapshot.lines,
            discount_codes: snapshot.discount_codes,
            discount_percent: snapshot.discount_percent,
            subtotal: snapshot.subtotal,
            discount: snapshot.discount,
            total: snapshot.total,
            delivery_address: snapshot.delivery_address,
            status: snapshot.status,
            payment: snapshot.payment.map(|p| Payment {
                payment_id: p.payment_id,
                amount: p.amount,
                method: p.method,
            }),
            shipment: snapshot.shipment.map(|s| Shipment {
                tracking_number: s.tracking_number,
                carrier: s.carrier,
            }),
            cancellation: snapshot.cancellation.map(|c| Cancellation {
                reason: c.reason,
                refund_amount: c.refund_amount,
            }),
            created_at: snapshot.created_at,
            updated_at: snapshot.updated_at,
            pending: Vec::new(),
        };
        for recorded in later {
            if let OrderEvent::OrderCreated(_) = recorded.event {
                return Err(HistoryError::CreatedTwice(recorded.version));
            }
            let expected = order.version + 1;
            if recorded.version != expected {
                return Err(HistoryError::VersionGap {
                    expected,
                    found: recorded.version,
                });
            }
            order
                .apply(&recorded.event, recorded.version, recorded.occurred_at)
                .map_err(|reason| HistoryError::Inapplicable {
                    version: recorded.version,
                    reason,
                })?;
        }
        Ok(order)
    }
}
