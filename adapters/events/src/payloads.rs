//! The payload of every `eventType`, one type per `schemaVersion`, as consumers
//! receive them: camelCase, amounts in minor units (API.md, "Events on Kafka").
//!
//! These types are the contract. Their JSON Schemas (see [`crate::schema`]) are derived
//! from them; the service's domain events are checked against those schemas by tests,
//! never the other way round. Within one `schemaVersion` a payload may only gain
//! optional fields; anything else is a new version here, a new module, and an upcaster
//! in [`crate::decode`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Text: no control characters (U+0000–U+001F, U+007F).
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F]*$";

/// The largest amount, in minor units (what a PostgreSQL `BIGINT` holds).
pub const AMOUNT_MAX: u64 = i64::MAX as u64;

/// The largest unit price, in minor units.
pub const UNIT_PRICE_MAX: u64 = 1_000_000_000_000_000;

/// The largest quantity of a line.
pub const QUANTITY_MAX: u64 = 1_000_000;

/// A postal address; `line2` and `postalCode` are left out when there are none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub line2: Option<String>,
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schemars(regex(pattern = r"^[A-Z]{2}$"))]
    pub country: String,
}

/// Who the order is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub customer_id: String,
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub name: String,
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub phone: String,
    pub address: Address,
}

/// A line of the order: a product, how many, at what price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub product_id: String,
    #[schemars(range(min = 1, max = QUANTITY_MAX))]
    pub quantity: u64,
    /// Minor units of the order's currency.
    #[schemars(range(max = UNIT_PRICE_MAX))]
    pub unit_price: u64,
}

/// How a payment was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    BankTransfer,
    CashOnDelivery,
}

/// `OrderCreated`, schema version 1: the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    pub customer: Customer,
    /// ISO 4217.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    #[schemars(length(min = 1, max = 100))]
    pub items: Vec<Line>,
    #[schemars(
        length(max = 3),
        inner(
            length(min = 1, max = 64),
            regex(pattern = TEXT_PATTERN)
        )
    )]
    pub discount_codes: Vec<String>,
    #[schemars(range(max = 100))]
    pub discount_percent: u8,
    #[schemars(range(max = AMOUNT_MAX))]
    pub subtotal: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub discount: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub total: u64,
}

/// `ItemAdded`, schema version 1: `quantity` units were added; totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemAdded {
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub product_id: String,
    #[schemars(range(min = 1, max = QUANTITY_MAX))]
    pub quantity: u64,
    #[schemars(range(max = UNIT_PRICE_MAX))]
    pub unit_price: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub subtotal: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub discount: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub total: u64,
}

/// `ItemRemoved`, schema version 1: the whole line went (`quantity` is what it held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemRemoved {
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub product_id: String,
    #[schemars(range(min = 1, max = QUANTITY_MAX))]
    pub quantity: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub subtotal: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub discount: u64,
    #[schemars(range(max = AMOUNT_MAX))]
    pub total: u64,
}

/// `DeliveryAddressChanged`, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAddressChanged {
    pub address: Address,
}

/// `PaymentProcessed`, schema version 1: the order is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentProcessed {
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub payment_id: String,
    #[schemars(range(max = AMOUNT_MAX))]
    pub amount: u64,
    pub method: PaymentMethod,
}

/// `OrderShipped`, schema version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub tracking_number: String,
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = TEXT_PATTERN)
    )]
    pub carrier: String,
}

/// `OrderCancelled`, schema version 2: `refundAmount` is what had been paid (0 if
/// nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = TEXT_PATTERN)
    )]
    pub reason: String,
    #[schemars(range(max = AMOUNT_MAX))]
    pub refund_amount: u64,
}

/// Released shapes that are no longer written; [`crate::decode`] upcasts them.
pub mod v1 {
    use super::*;

    /// `OrderCancelled`, schema version 1: the refund was named `refund`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OrderCancelled {
        #[schemars(
            length(min = 1, max = 200),
            regex(pattern = TEXT_PATTERN)
        )]
        pub reason: String,
        #[schemars(range(max = AMOUNT_MAX))]
        pub refund: u64,
    }

    impl From<OrderCancelled> for super::OrderCancelled {
        fn from(old: OrderCancelled) -> Self {
            Self {
                reason: old.reason,
                refund_amount: old.refund,
            }
        }
    }
}
