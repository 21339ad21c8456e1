//! The JSON Schema (draft 2020-12) of every message: the envelope with one
//! `eventType`'s payload at one `schemaVersion`, derived from [`crate::payloads`] by
//! `schemars`, every subschema inlined (one self-contained document per message).
//!
//! The schemas of every release are kept in the repository
//! (`adapters/events/schemas/<eventType>.v<schemaVersion>.json`); a test fails when
//! the code's schema of a release differs from the kept one, and [`crate::compat`]
//! says whether the change would break a consumer.

use chrono::{DateTime, Utc};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::payloads::{self, v1};
use crate::Metadata;

/// The envelope, generic in its payload (the shape of the schema only).
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Message<P> {
    /// UUID v7; the dedupe key.
    event_id: Uuid,
    aggregate_type: String,
    /// The order; also the message key.
    aggregate_id: Uuid,
    event_type: String,
    /// 1 for `OrderCreated`, then one more per event of the order.
    #[schemars(range(min = 1))]
    version: u64,
    schema_version: u32,
    /// RFC 3339, microseconds, UTC.
    occurred_at: DateTime<Utc>,
    payload: P,
    metadata: Metadata,
}

/// The schema of a `(eventType, schemaVersion)` release, `None` for one never released.
pub fn message_schema(event_type: &str, schema_version: u32) -> Option<Value> {
    let schema = match (event_type, schema_version) {
        ("OrderCreated", 1) => generate::<payloads::OrderCreated>(),
        ("ItemAdded", 1) => generate::<payloads::ItemAdded>(),
        ("ItemRemoved", 1) => generate::<payloads::ItemRemoved>(),
        ("DeliveryAddressChanged", 1) => generate::<payloads::DeliveryAddressChanged>(),
        ("PaymentProcessed", 1) => generate::<payloads::PaymentProcessed>(),
        ("OrderShipped", 1) => generate::<payloads::OrderShipped>(),
        ("OrderCancelled", 1) => generate::<v1::OrderCancelled>(),
        ("OrderCancelled", 2) => generate::<payloads::OrderCancelled>(),
        _ => return None,
    };
    Some(pin(schema, event_type, schema_version))
}

fn generate<P: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<Message<P>>()
        .to_value()
}

/// Fixes what one message's envelope holds: its type, version and aggregate type.
fn pin(mut schema: Value, event_type: &str, schema_version: u32) -> Value {
    schema["title"] = json!(format!("{event_type} v{schema_version}"));
    let properties = &mut schema["properties"];
    properties["aggregateType"] = json!({"const": "Order"});
    properties["eventType"] = json!({"const": event_type});
    properties["schemaVersion"] = json!({"const": schema_version});
    schema
}

/// The file a release's schema is kept in, under `adapters/events/schemas/`.
pub fn file_name(event_type: &str, schema_version: u32) -> String {
    format!("{event_type}.v{schema_version}.json")
}
