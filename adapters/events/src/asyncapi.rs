//! The AsyncAPI 3.0 document of the topic: the channel, the key, the CloudEvents
//! headers and `traceparent`, and one message per `eventType` whose payload is the
//! JSON Schema of its current `schemaVersion` (see [`crate::schema`]).
//!
//! `GET /asyncapi.json` serves it; the repository keeps it as `docs/asyncapi.json`, and
//! a test fails when the two differ, so every change to the wire shows in review.

use serde_json::{json, Map, Value};

use crate::schema::message_schema;
use crate::{current_schema_version, EVENT_TYPES};

/// The topic the document names when the service is not told another one.
pub const DEFAULT_TOPIC: &str = "orders.events";

/// The Kafka bindings' version these bindings follow.
const KAFKA_BINDING: &str = "0.5.0";

/// The document for the events published on `topic`, as `version` of the service.
pub fn document(topic: &str, version: &str) -> Value {
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operation_messages = Vec::new();
    for event_type in EVENT_TYPES {
        let schema_version = current_schema_version(event_type).unwrap_or(1);
        let schema = message_schema(event_type, schema_version).unwrap_or(Value::Null);
        messages.insert(
            event_type.to_owned(),
            message(event_type, schema_version, schema),
        );
        channel_messages.insert(
            event_type.to_owned(),
            json!({"$ref": format!("#/components/messages/{event_type}")}),
        );
        operation_messages
            .push(json!({"$ref": format!("#/channels/orderEvents/messages/{event_type}")}));
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Order events",
            "version": version,
            "description": "Every change of an order, as a domain event, published by the outbox relay at least once and in order per order. Key: the order id, so one order's events stay in one partition in `version` order. Dedupe by `eventId` (also the `ce_id` header); a `version` ahead of the next expected one is a gap (an event skipped by an operator), never a reordering. `schemaVersion` changes only with a breaking change; within one, payloads only gain optional fields.",
            "license": {"name": "MIT OR Apache-2.0"}
        },
        "defaultContentType": "application/json",
        "channels": {
            "orderEvents": {
                "address": topic,
                "title": "Order events",
                "description": "The topic of the order events (ORDERS_TOPIC).",
                "messages": channel_messages,
                "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}}
            }
        },
        "operations": {
            "publishOrderEvents": {
                "action": "send",
                "title": "The outbox relay publishes each committed event",
                "channel": {"$ref": "#/channels/orderEvents"},
                "messages": operation_messages
            }
        },
        "components": {"messages": messages}
    })
}

fn message(event_type: &str, schema_version: u32, schema: Value) -> Value {
    json!({
        "name": event_type,
        "title": format!("{event_type} (schemaVersion {schema_version})"),
        "contentType": "application/json",
        "headers": headers(event_type),
        "correlationId": {"location": "$message.header#/ce_id"},
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-2020-12",
            "schema": schema
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "The order id (aggregateId)."},
                "bindingVersion": KAFKA_BINDING
            }
        }
    })
}

/// The CloudEvents Kafka binding headers, and `traceparent` when the command had one.
fn headers(event_type: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": {"type": "string", "format": "uuid", "description": "The eventId."},
            "ce_type": {"const": event_type},
            "ce_source": {"const": "/orders"},
            "ce_subject": {"type": "string", "format": "uuid", "description": "The aggregateId."},
            "ce_time": {"type": "string", "format": "date-time", "description": "The occurredAt."},
            "content-type": {"const": "application/json"},
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": "W3C trace context of the command (or of the relay's producer span when tracing is on)."
            }
        },
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "content-type"]
    })
}
