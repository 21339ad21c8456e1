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

/// The JSON of an envelope as published (`recordedAt` only on the history endpoint).
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

    /// The envelope with `recordedAt`, as the history endpoint shows it.
    pub fn to_wire_with_recorded_at(&self) -> Value {
        self.wire(true)
    }

    fn wire(&self, with_recorded_at: bool) -> Value {
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
            recorded_at: self
                .recorded_at
                .filter(|_| with_recorded_at)
                .map(format_time),
        };
        serde_json::to_value(wire).unwrap_or(Value::Null)
    }
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
    if !OrderEvent::TYPES.contains(&event_type) {
        return Err(DecodeError::UnknownType(event_type.to_owned()));
    }
    // Every event type is at schema version 1 today: the upcaster chain is empty.
    // An evolution adds a step here that maps `(type, n, payload)` to `(type, n + 1, payload)`.
    if schema_version != 1 {
        return Err(DecodeError::UnknownSchemaVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    serde_json::from_value(serde_json::json!({ "eventType": event_type, "payload": payload }))
        .map_err(|e| DecodeError::BadPayload {
            event_type: event_type.to_owned(),
            reason: e.to_string(),
        })
}
