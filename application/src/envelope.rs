//! The event envelope: a domain event with its identity, position and metadata, and
//! its wire form (API.md, "Events on Kafka"), shared by the outbox, Kafka and the
//! history endpoint.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::{OrderEvent, OrderId, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

/// The aggregate type of every event here.
pub const AGGREGATE_TYPE: &str = "Order";

/// Who did it and as part of what: copied into every event a command records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// The acting user, `None` when nobody said.
    pub user_id: Option<String>,
    /// The request's correlation id (`X-Correlation-Id`, or generated).
    pub correlation_id: String,
    /// The id of the command that caused the event.
    pub causation_id: String,
}

/// A domain event with everything needed to store and publish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    /// UUID v7; the consumers' deduplication key.
    pub event_id: Uuid,
    pub aggregate_id: OrderId,
    pub version: u64,
    pub occurred_at: DateTime<Utc>,
    pub event: OrderEvent,
    pub metadata: EventMetadata,
    /// The W3C trace context of the command, carried to the Kafka headers.
    pub traceparent: Option<String>,
    /// When the store committed it; `None` until stored.
    pub recorded_at: Option<DateTime<Utc>>,
    /// Its global position in the event store, over all orders: grows with every event
    /// stored (from 1; a write that rolled back may leave a gap); `None` until stored.
    pub position: Option<u64>,
}

/// Why a stored event could not be turned back into a domain event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} schema version {version} is newer than this code understands")]
    UnknownSchemaVersion { event_type: String, version: u32 },
    #[error("{event_type} payload does not match its schema: {reason}")]
    BadPayload { event_type: String, reason: String },
}

/// The JSON of an envelope as published (`recordedAt` and `position` only on the
/// history endpoint).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    event_id: Uuid,
    aggregate_type: &'a str,
    aggregate_id: OrderId,
    event_type: &'a str,
    version: u64,
    schema_version: u32,
    occurred_at: String,
    payload: Value,
    metadata: &'a EventMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
}

/// RFC 3339 with microseconds and `Z`, as in API.md.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl EventEnvelope {
    /// Wraps an event the aggregate recorded.
    pub fn new(
        aggregate_id: OrderId,
        recorded: RecordedEvent,
        metadata: EventMetadata,
        traceparent: Option<String>,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            aggregate_id,
            version: recorded.version,
            occurred_at: recorded.occurred_at,
            event: recorded.event,
            metadata,
            traceparent,
            recorded_at: None,
            position: None,
        }
    }

    /// The envelope as it was before the store stamped it: without `recorded_at` and
    /// `position`, as appended and as written to the outbox.
    pub fn unstored(&self) -> Self {
        Self {
            recorded_at: None,
            position: None,
            ..self.clone()
        }
    }

    /// The event as the aggregate recorded it.
    pub fn recorded(&self) -> RecordedEvent {
        RecordedEvent {
            version: self.version,
            occurred_at: self.occurred_at,
            event: self.event.clone(),
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }

    pub fn schema_version(&self) -> u32 {
        self.event.schema_version()
    }

    /// The payload in its current schema (camelCase JSON).
    pub fn payload(&self) -> Value {
        encode_payload(&self.event)
    }

    /// The envelope as published on Kafka.
    pub fn to_wire(&self) -> Value {
        self.wire(false)
    }

    /// The envelope with where and when the store put it (`recordedAt`, `position`),
    /// as the history endpoint shows it.
    pub fn to_history_wire(&self) -> Value {
        self.wire(true)
    }

    fn wire(&self, as_stored: bool) -> Value {
        let wire = Wire {
            event_id: self.event_id,
            aggregate_type: AGGREGATE_TYPE,
            aggregate_id: self.aggregate_id,
            event_type: self.event_type(),
            version: self.version,
            schema_version: self.schema_version(),
            occurred_at: format_time(self.occurred_at),
            payload: self.payload(),
            metadata: &self.metadata,
            recorded_at: self.recorded_at.filter(|_| as_stored).map(format_time),
            position: self.position.filter(|_| as_stored),
        };
        serde_json::to_value(wire).unwrap_or(Value::Null)
    }
}

/// The envelope as a consumer reads it off the topic (`to_wire`'s shape), with its
/// payload upcast to the current schema. `recorded_at` and `position` are `None` (they
/// are not published) and so is `traceparent` (it travels as a header).
///
/// # Errors
/// [`DecodeError::BadPayload`] when a field is missing or malformed, or as [`decode_event`].
pub fn from_wire(value: &Value) -> Result<EventEnvelope, DecodeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Incoming {
        event_id: Uuid,
        aggregate_id: OrderId,
        event_type: String,
        version: u64,
        schema_version: u32,
        occurred_at: DateTime<Utc>,
        payload: Value,
        metadata: EventMetadata,
    }
    let incoming = Incoming::deserialize(value).map_err(|e| DecodeError::BadPayload {
        event_type: value["eventType"].as_str().unwrap_or("?").to_owned(),
        reason: format!("envelope: {e}"),
    })?;
    let event = decode_event(
        &incoming.event_type,
        incoming.schema_version,
        incoming.payload,
    )?;
    Ok(EventEnvelope {
        event_id: incoming.event_id,
        aggregate_id: incoming.aggregate_id,
        version: incoming.version,
        occurred_at: incoming.occurred_at,
        event,
        metadata: incoming.metadata,
        traceparent: None,
        recorded_at: None,
        position: None,
    })
}

/// The payload JSON of an event.
pub fn encode_payload(event: &OrderEvent) -> Value {
    match serde_json::to_value(event) {
        Ok(Value::Object(mut tagged)) => tagged.remove("payload").unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Turns a stored `(event type, schema version, payload)` into the current domain
/// event, upcasting older schema versions first. Stored rows are never rewritten.
///
/// # Errors
/// [`DecodeError`] for an unknown type, a schema version from the future, or a payload
/// that does not match its schema.
pub fn decode_event(
    event_type: &str,
    schema_version: u32,
    payload: Value,
) -> Result<OrderEvent, DecodeError> {
    let current = OrderEvent::current_schema_version(event_type)
        .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
    if schema_version == 0 || schema_version > current {
        return Err(DecodeError::UnknownSchemaVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    let payload = upcast(event_type, schema_version, payload)?;
    serde_json::from_value(serde_json::json!({ "eventType": event_type, "payload": payload }))
        .map_err(|e| DecodeError::BadPayload {
            event_type: event_type.to_owned(),
            reason: e.to_string(),
        })
}

/// The upcaster chain: applies one step at a time, from `version` up to the current
/// schema version of `event_type`. Each step is a function from the JSON payload of
/// schema `n` to that of `n + 1`; they only ever read the stored payload.
fn upcast(event_type: &str, mut version: u32, mut payload: Value) -> Result<Value, DecodeError> {
    type Step = fn(Value) -> Result<Value, String>;
    // (event type, from schema version, step to version + 1)
    const STEPS: &[(&str, u32, Step)] = &[("OrderCancelled", 1, order_cancelled_v1_to_v2)];
    while let Some((_, _, step)) = STEPS
        .iter()
        .find(|(t, from, _)| *t == event_type && *from == version)
    {
        payload = step(payload).map_err(|reason| DecodeError::BadPayload {
            event_type: event_type.to_owned(),
            reason: format!("upcasting schema {version}: {reason}"),
        })?;
        version += 1;
    }
    Ok(payload)
}

/// `OrderCancelled` 1 → 2: the amount paid back was stored as `refund`; schema 2 (and
/// API.md) name it `refundAmount`.
fn order_cancelled_v1_to_v2(payload: Value) -> Result<Value, String> {
    let Value::Object(mut fields) = payload else {
        return Err("the payload is not an object".to_owned());
    };
    let refund = fields
        .remove("refund")
        .ok_or_else(|| "missing field `refund`".to_owned())?;
    fields.insert("refundAmount".to_owned(), refund);
    Ok(Value::Object(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_cancelled_of_schema_1_is_upcast_to_refund_amount() {
        let old = decode_event(
            "OrderCancelled",
            1,
            json!({"reason": "late", "refund": 500}),
        );
        let new = decode_event(
            "OrderCancelled",
            2,
            json!({"reason": "late", "refundAmount": 500}),
        );
        assert_eq!(old, new);
        let event = new.unwrap();
        assert_eq!(event.schema_version(), 2);
        assert_eq!(
            encode_payload(&event),
            json!({"reason": "late", "refundAmount": 500})
        );
    }

    #[test]
    fn a_schema_1_order_cancelled_without_refund_is_a_bad_payload() {
        assert!(matches!(
            decode_event("OrderCancelled", 1, json!({"reason": "late"})),
            Err(DecodeError::BadPayload { .. })
        ));
    }

    #[test]
    fn schema_versions_newer_than_the_code_or_zero_are_refused() {
        for version in [0, 3] {
            assert!(matches!(
                decode_event(
                    "OrderCancelled",
                    version,
                    json!({"reason": "late", "refundAmount": 0})
                ),
                Err(DecodeError::UnknownSchemaVersion { .. })
            ));
        }
        assert!(matches!(
            decode_event("ItemRemoved", 2, json!({})),
            Err(DecodeError::UnknownSchemaVersion { .. })
        ));
    }

    #[test]
    fn the_published_form_leaves_out_where_and_when_it_was_stored_and_the_history_shows_both() {
        let event = decode_event(
            "OrderCancelled",
            2,
            json!({"reason": "late", "refundAmount": 0}),
        )
        .unwrap();
        let recorded_at = DateTime::parse_from_rfc3339("2026-01-15T10:30:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let stored = EventEnvelope {
            event_id: Uuid::now_v7(),
            aggregate_id: OrderId::from_uuid(Uuid::now_v7()),
            version: 2,
            occurred_at: recorded_at,
            event,
            metadata: EventMetadata {
                user_id: None,
                correlation_id: "c".to_owned(),
                causation_id: "c".to_owned(),
            },
            traceparent: None,
            recorded_at: Some(recorded_at),
            position: Some(42),
        };

        let published = stored.to_wire();
        assert_eq!(published.get("recordedAt"), None);
        assert_eq!(published.get("position"), None);
        assert_eq!(published, stored.unstored().to_history_wire());
        let history = stored.to_history_wire();
        assert_eq!(history["recordedAt"], json!("2026-01-15T10:30:00.123456Z"));
        assert_eq!(history["position"], json!(42));
        assert_eq!(from_wire(&published), Ok(stored.unstored()));
    }

    #[test]
    fn unknown_event_types_are_refused() {
        assert_eq!(
            decode_event("OrderTeleported", 1, json!({})),
            Err(DecodeError::UnknownType("OrderTeleported".to_owned()))
        );
    }
}
