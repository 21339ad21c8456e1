//! Schemas of the bodies that no Rust type of the HTTP layer describes on its own: the
//! problem body, the string enums, the history's event envelope and the health answer.
//! These types are documentation only (never built); each mirrors what the code writes,
//! and the schema test of `adapters/service/tests/openapi/` checks real answers against them.

#![allow(dead_code, reason = "schema-only types: described, never built")]

use std::borrow::Cow;

use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::dto::{AddressRequest, CustomerRequest, ItemRequest};

/// How an order was paid.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum PaymentMethod {
    Card,
    BankTransfer,
    CashOnDelivery,
}

/// Where an order is in its lifecycle: `created` → `paid` → `shipped`, and `created` or
/// `paid` → `cancelled`.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub(crate) enum OrderStatus {
    Created,
    Paid,
    Shipped,
    Cancelled,
}

/// An RFC 9457 problem (`application/problem+json`): the body of every 4xx and 5xx.
#[derive(Debug, ToSchema)]
pub(crate) struct Problem {
    /// `/problems/<kind>`; the kind tells errors of one status apart, e.g. 409's
    /// `invalid-state`, `concurrency-conflict` and `already-exists`.
    #[schema(rename = "type", example = "/problems/invalid-state")]
    kind: String,
    /// The status's reason phrase.
    #[schema(example = "Conflict")]
    title: String,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599, example = 409)]
    status: u16,
    /// For a human; a 5xx says nothing internal.
    detail: String,
    /// The invalid fields, on validation problems (422) only.
    #[schema(nullable = false, min_items = 1)]
    errors: Option<Vec<FieldError>>,
}

/// One invalid field of a request.
#[derive(Debug, ToSchema)]
pub(crate) struct FieldError {
    /// A path into the body (`items[0].quantity`), or a header's name.
    #[schema(example = "items[0].quantity")]
    field: String,
    #[schema(example = "must be from 1 to 1000000")]
    message: String,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, ToSchema)]
pub(crate) struct Health {
    #[schema(value_type = String, pattern = "^(ok|ready)$")]
    status: String,
}

/// `GET /orders/{id}/history`: every event of the order, in version order.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderHistory)]
pub(crate) struct History {
    #[schema(value_type = String, format = Uuid)]
    order_id: String,
    #[schema(min_items = 1)]
    events: Vec<EventEnvelope>,
}

/// Who did it and as part of what.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventMetadata {
    /// The acting user; `null` when nobody said.
    #[schema(required = true)]
    user_id: Option<String>,
    correlation_id: String,
    /// The id of the command that caused the event.
    causation_id: String,
}

/// One event as stored and published (API.md, "Events on Kafka"), with `recordedAt` and
/// `position`: the envelope's fields, and the payload whose shape `eventType` names.
///
/// Its schema is written out below rather than derived, because the pairing of
/// `eventType` with its payload is a `oneOf` that a derive cannot express.
#[derive(Debug)]
pub(crate) struct EventEnvelope;

/// Every event type with its payload's schema.
fn payloads() -> [(&'static str, Cow<'static, str>); 7] {
    [
        ("OrderCreated", OrderCreated::name()),
        ("ItemAdded", ItemAdded::name()),
        ("ItemRemoved", ItemRemoved::name()),
        ("DeliveryAddressChanged", DeliveryAddressChanged::name()),
        ("PaymentProcessed", PaymentProcessed::name()),
        ("OrderShipped", OrderShipped::name()),
        ("OrderCancelled", OrderCancelled::name()),
    ]
}

fn string(format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
}

fn integer(minimum: u64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
}

impl PartialSchema for EventEnvelope {
    fn schema() -> RefOr<Schema> {
        let types: Vec<&str> = payloads()
            .iter()
            .map(|(event_type, _)| *event_type)
            .collect();
        let envelope = ObjectBuilder::new()
            .property("eventId", string(Some(KnownFormat::Uuid)))
            .property("aggregateType", string(None).enum_values(Some(["Order"])))
            .property("aggregateId", string(Some(KnownFormat::Uuid)))
            .property("eventType", string(None).enum_values(Some(types)))
            .property(
                "version",
                integer(1).description(Some("1 for `OrderCreated`, then one more per event")),
            )
            .property(
                "schemaVersion",
                integer(1).description(Some("The payload's schema version")),
            )
            .property("occurredAt", string(Some(KnownFormat::DateTime)))
            .property(
                "recordedAt",
                string(Some(KnownFormat::DateTime))
                    .description(Some("When the event store committed it")),
            )
            .property(
                "position",
                integer(1).description(Some(
                    "Its global position in the event store: greater for every event stored \
                     later, over all orders (the admin replay's `fromPosition`)",
                )),
            )
            .property(
                "payload",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(
                        "camelCase; amounts in minor units; its shape depends on `eventType`",
                    )),
            )
            .property("metadata", Ref::from_schema_name(EventMetadata::name()));
        let envelope = [
            "eventId",
            "aggregateType",
            "aggregateId",
            "eventType",
            "version",
            "schemaVersion",
            "occurredAt",
            "recordedAt",
            "position",
            "payload",
            "metadata",
        ]
        .into_iter()
        .fold(envelope, ObjectBuilder::required);
        let by_type =
            payloads()
                .into_iter()
                .fold(OneOfBuilder::new(), |one_of, (event_type, payload)| {
                    one_of.item(
                        ObjectBuilder::new()
                            .property("eventType", string(None).enum_values(Some([event_type])))
                            .property("payload", Ref::from_schema_name(payload)),
                    )
                });
        AllOfBuilder::new()
            .item(envelope)
            .item(by_type)
            .description(Some(
                "An event of the order's stream, as published on Kafka, with `recordedAt` and \
                 `position`",
            ))
            .into()
    }
}

impl ToSchema for EventEnvelope {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((EventMetadata::name().into(), EventMetadata::schema()));
        EventMetadata::schemas(schemas);
        macro_rules! collect {
            ($($payload:ty),*) => {$(
                schemas.push((<$payload>::name().into(), <$payload>::schema()));
                <$payload>::schemas(schemas);
            )*};
        }
        collect!(
            OrderCreated,
            ItemAdded,
            ItemRemoved,
            DeliveryAddressChanged,
            PaymentProcessed,
            OrderShipped,
            OrderCancelled
        );
    }
}

// The payloads of API.md's "Events on Kafka" (current schema versions).

/// `OrderCreated` (schema version 1).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderCreated {
    customer: CustomerRequest,
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<ItemRequest>,
    #[schema(max_items = 3)]
    discount_codes: Vec<String>,
    #[schema(maximum = 100)]
    discount_percent: u8,
    subtotal: u64,
    discount: u64,
    total: u64,
}

/// `ItemAdded` (schema version 1): `quantity` is the number added; totals after the change.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemAdded {
    product_id: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: u64,
    unit_price: u64,
    subtotal: u64,
    discount: u64,
    total: u64,
}

/// `ItemRemoved` (schema version 1): `quantity` is what the line held; totals after the
/// change.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemRemoved {
    product_id: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: u64,
    subtotal: u64,
    discount: u64,
    total: u64,
}

/// `DeliveryAddressChanged` (schema version 1).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryAddressChanged {
    address: AddressRequest,
}

/// `PaymentProcessed` (schema version 1).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentProcessed {
    payment_id: String,
    amount: u64,
    method: PaymentMethod,
}

/// `OrderShipped` (schema version 1).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderShipped {
    tracking_number: String,
    carrier: String,
}

/// `OrderCancelled` (schema version 2): `refundAmount` is what had been paid (0 if
/// nothing).
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderCancelled {
    reason: String,
    refund_amount: u64,
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::PartialSchema;

    /// The `enum` values of a string-enum schema.
    fn values(schema: RefOr<Schema>) -> Vec<String> {
        let RefOr::T(Schema::Object(object)) = schema else {
            panic!("a string enum is an inline object schema");
        };
        object
            .enum_values
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    }

    #[test]
    fn the_documented_enums_are_the_domain_s_wire_names() {
        let methods = values(super::PaymentMethod::schema());
        assert_eq!(methods, ["card", "bank_transfer", "cash_on_delivery"]);
        for method in &methods {
            let parsed = domain::PaymentMethod::parse(method).expect("a method");
            assert_eq!(parsed.as_str(), method);
        }
        let statuses = values(super::OrderStatus::schema());
        assert_eq!(statuses, ["created", "paid", "shipped", "cancelled"]);
        for status in &statuses {
            let parsed = domain::OrderStatus::parse(status).expect("a status");
            assert_eq!(parsed.as_str(), status);
        }
        let types: Vec<&str> = super::payloads().iter().map(|(t, _)| *t).collect();
        assert_eq!(types, domain::OrderEvent::TYPES);
    }
}
