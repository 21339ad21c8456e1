//! The order events on Kafka, for the teams that consume them: the contract of
//! `orders.events` as Rust types, with nothing of the service behind it.
//!
//! A message's key is the order id (one order's events stay in one partition, in
//! `version` order), its value the JSON envelope of API.md, its headers the CloudEvents
//! Kafka binding (`ce_id` = `eventId`, `ce_type` = `eventType`, ...) and `traceparent`.
//! Delivery is at least once: dedupe by `eventId`.
//!
//! # Layout
//! - [`payloads`]: the payload of every `eventType`, per `schemaVersion`.
//! - [`decode`]: a Kafka value and its headers into an [`Envelope`] of the current
//!   shape, upcasting older schema versions, with an error naming what does not parse.
//! - [`schema`]: the JSON Schema (draft 2020-12) of every message, from the types.
//! - [`asyncapi`]: the AsyncAPI 3.0 document of the topic (`GET /asyncapi.json`).
//! - [`compat`]: the compatibility gate between a released schema and the current one.
//! - [`sequence`]: per-order ordering and dedupe in memory ([`Verdict`]: apply, skip a
//!   repeat, or hold a gap).
//! - `inbox` (feature `postgres`): the same in the consumer's database, in the
//!   transaction of its effect.
//! - `kafka` (feature `rdkafka`): `decode_message`, straight from an `rdkafka` message.

pub mod asyncapi;
pub mod compat;
pub mod decode;
#[cfg(feature = "postgres")]
pub mod inbox;
#[cfg(feature = "rdkafka")]
pub mod kafka;
pub mod payloads;
pub mod schema;
pub mod sequence;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use decode::{decode, DecodeError};
#[cfg(feature = "postgres")]
pub use inbox::PgInbox;
#[cfg(feature = "rdkafka")]
pub use kafka::decode_message;
pub use sequence::{Sequencer, Verdict};

/// Every `eventType` on the topic.
pub const EVENT_TYPES: [&str; 7] = [
    "OrderCreated",
    "ItemAdded",
    "ItemRemoved",
    "DeliveryAddressChanged",
    "PaymentProcessed",
    "OrderShipped",
    "OrderCancelled",
];

/// Every released `(eventType, schemaVersion)`; the last of each type is the one
/// published now. A release is never removed from this list.
pub const RELEASED: [(&str, u32); 8] = [
    ("OrderCreated", 1),
    ("ItemAdded", 1),
    ("ItemRemoved", 1),
    ("DeliveryAddressChanged", 1),
    ("PaymentProcessed", 1),
    ("OrderShipped", 1),
    ("OrderCancelled", 1),
    ("OrderCancelled", 2),
];

/// The `schemaVersion` published now for `event_type`.
pub fn current_schema_version(event_type: &str) -> Option<u32> {
    RELEASED
        .iter()
        .filter(|(name, _)| *name == event_type)
        .map(|(_, version)| *version)
        .max()
}

/// Who did it and as part of what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The acting user; always present, `null` when no user is known.
    #[schemars(required, length(min = 1, max = 200), extend("type" = ["string", "null"]))]
    pub user_id: Option<String>,
    /// The request's correlation id.
    #[schemars(length(min = 1))]
    pub correlation_id: String,
    /// The id of the command that caused the event.
    #[schemars(length(min = 1))]
    pub causation_id: String,
}

/// An event of the current shape, whatever `schemaVersion` it was published with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    OrderCreated(payloads::OrderCreated),
    ItemAdded(payloads::ItemAdded),
    ItemRemoved(payloads::ItemRemoved),
    DeliveryAddressChanged(payloads::DeliveryAddressChanged),
    PaymentProcessed(payloads::PaymentProcessed),
    OrderShipped(payloads::OrderShipped),
    OrderCancelled(payloads::OrderCancelled),
}

impl Event {
    /// Its payload's JSON, in the current `schemaVersion`.
    pub fn payload(&self) -> serde_json::Value {
        let payload = match self {
            Self::OrderCreated(p) => serde_json::to_value(p),
            Self::ItemAdded(p) => serde_json::to_value(p),
            Self::ItemRemoved(p) => serde_json::to_value(p),
            Self::DeliveryAddressChanged(p) => serde_json::to_value(p),
            Self::PaymentProcessed(p) => serde_json::to_value(p),
            Self::OrderShipped(p) => serde_json::to_value(p),
            Self::OrderCancelled(p) => serde_json::to_value(p),
        };
        // Plain structs of strings and integers always serialize.
        payload.unwrap_or_default()
    }

    /// Its `eventType`.
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
}

/// A decoded message: the envelope with its event in the current shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The dedupe key: a redelivered event has the same one.
    pub event_id: Uuid,
    /// The order (also the message key).
    pub aggregate_id: Uuid,
    /// 1 for `OrderCreated`, then one more per event of the order, with no gap.
    pub version: u64,
    /// The `schemaVersion` it was published with (the event is upcast from it).
    pub schema_version: u32,
    pub occurred_at: DateTime<Utc>,
    pub event: Event,
    pub metadata: Metadata,
    /// The W3C trace context of the `traceparent` header, when there was one.
    pub traceparent: Option<String>,
}
