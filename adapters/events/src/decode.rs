//! A Kafka message into an [`Envelope`]: the value's JSON, checked against its
//! CloudEvents headers, with older schema versions upcast to the current shape.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::payloads::{self, v1};
use crate::{Envelope, Event, Metadata};

/// Why a message is not an order event this crate understands. A consumer sends such
/// a message to its dead-letter topic (with this error as a header) and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the value is not an event envelope: {0}")]
    NotAnEnvelope(String),
    #[error("unknown eventType {0:?}")]
    UnknownEventType(String),
    #[error("{event_type} schemaVersion {version} is not one this crate knows (upgrade it)")]
    UnknownSchemaVersion { event_type: String, version: u32 },
    #[error("{event_type} v{version} payload does not match its schema: {reason}")]
    BadPayload {
        event_type: String,
        version: u32,
        reason: String,
    },
    #[error("header {header} is {found:?}, but the value says {expected:?}")]
    HeaderMismatch {
        header: &'static str,
        found: String,
        expected: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    event_id: Uuid,
    aggregate_type: String,
    aggregate_id: Uuid,
    event_type: String,
    version: u64,
    schema_version: u32,
    occurred_at: DateTime<Utc>,
    payload: Value,
    metadata: Metadata,
}

/// Decodes a message's value, and checks the CloudEvents headers it came with
/// (`(name, value)` pairs; `ce_id` and `ce_type` must agree with the value when
/// present). `traceparent` is kept.
///
/// # Errors
/// [`DecodeError`], naming what does not parse.
pub fn decode<'a>(
    value: &[u8],
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Envelope, DecodeError> {
    let raw: Raw = serde_json::from_slice(value)
        .map_err(|error| DecodeError::NotAnEnvelope(error.to_string()))?;
    if raw.aggregate_type != "Order" {
        return Err(DecodeError::NotAnEnvelope(format!(
            "aggregateType is {:?}, not \"Order\"",
            raw.aggregate_type
        )));
    }
    let mut traceparent = None;
    for (name, bytes) in headers {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let expected = match name {
            "ce_id" => raw.event_id.to_string(),
            "ce_type" => raw.event_type.clone(),
            "traceparent" => {
                traceparent = Some(text);
                continue;
            }
            _ => continue,
        };
        if text != expected {
            return Err(DecodeError::HeaderMismatch {
                header: if name == "ce_id" { "ce_id" } else { "ce_type" },
                found: text,
                expected,
            });
        }
    }
    let event = event(&raw.event_type, raw.schema_version, raw.payload)?;
    Ok(Envelope {
        event_id: raw.event_id,
        aggregate_id: raw.aggregate_id,
        version: raw.version,
        schema_version: raw.schema_version,
        occurred_at: raw.occurred_at,
        event,
        metadata: raw.metadata,
        traceparent,
    })
}

/// The payload of `event_type` at `version`, in the current shape.
fn event(event_type: &str, version: u32, payload: Value) -> Result<Event, DecodeError> {
    fn parse<T: serde::de::DeserializeOwned>(
        event_type: &str,
        version: u32,
        payload: Value,
    ) -> Result<T, DecodeError> {
        serde_json::from_value(payload).map_err(|error| DecodeError::BadPayload {
            event_type: event_type.to_owned(),
            version,
            reason: error.to_string(),
        })
    }
    let (t, v) = (event_type, version);
    Ok(match (event_type, version) {
        ("OrderCreated", 1) => Event::OrderCreated(parse(t, v, payload)?),
        ("ItemAdded", 1) => Event::ItemAdded(parse(t, v, payload)?),
        ("ItemRemoved", 1) => Event::ItemRemoved(parse(t, v, payload)?),
        ("DeliveryAddressChanged", 1) => Event::DeliveryAddressChanged(parse(t, v, payload)?),
        ("PaymentProcessed", 1) => Event::PaymentProcessed(parse(t, v, payload)?),
        ("OrderShipped", 1) => Event::OrderShipped(parse(t, v, payload)?),
        ("OrderCancelled", 1) => {
            Event::OrderCancelled(parse::<v1::OrderCancelled>(t, v, payload)?.into())
        }
        ("OrderCancelled", 2) => {
            Event::OrderCancelled(parse::<payloads::OrderCancelled>(t, v, payload)?)
        }
        (known, version) if crate::EVENT_TYPES.contains(&known) => {
            return Err(DecodeError::UnknownSchemaVersion {
                event_type: known.to_owned(),
                version,
            })
        }
        (unknown, _) => return Err(DecodeError::UnknownEventType(unknown.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(event_type: &str, version: u32, payload: Value) -> Vec<u8> {
        json!({
            "eventId": "0190b5e4-0000-7000-8000-000000000001", "aggregateType": "Order",
            "aggregateId": "0190b5e3-0000-7000-8000-000000000002", "eventType": event_type,
            "version": 4, "schemaVersion": version, "occurredAt": "2026-01-15T10:30:00.123456Z",
            "payload": payload,
            "metadata": {"userId": null, "correlationId": "c-1", "causationId": "k-1"},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn an_old_cancellation_is_upcast_to_the_current_shape() {
        let old = envelope(
            "OrderCancelled",
            1,
            json!({"reason": "late", "refund": 500}),
        );
        let new = envelope(
            "OrderCancelled",
            2,
            json!({"reason": "late", "refundAmount": 500}),
        );
        let (old, new) = (decode(&old, []).unwrap(), decode(&new, []).unwrap());
        assert_eq!(old.event, new.event);
        assert_eq!((old.schema_version, new.schema_version), (1, 2));
    }

    #[test]
    fn what_does_not_parse_is_named() {
        let cases = [
            (b"not json".to_vec(), "not an event envelope"),
            (envelope("OrderExploded", 1, json!({})), "unknown eventType"),
            (envelope("OrderShipped", 9, json!({})), "schemaVersion 9"),
            (
                envelope("OrderShipped", 1, json!({"carrier": "DHL"})),
                "trackingNumber",
            ),
        ];
        for (value, named) in cases {
            let error = decode(&value, []).unwrap_err().to_string();
            assert!(error.contains(named), "{error:?} names {named:?}");
        }
    }

    #[test]
    fn headers_must_agree_with_the_value_and_traceparent_is_kept() {
        let value = envelope(
            "OrderShipped",
            1,
            json!({"trackingNumber": "T", "carrier": "DHL"}),
        );
        let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let decoded = decode(
            &value,
            [
                ("ce_type", &b"OrderShipped"[..]),
                ("traceparent", trace.as_bytes()),
            ],
        )
        .unwrap();
        assert_eq!(decoded.traceparent.as_deref(), Some(trace));
        let error = decode(&value, [("ce_type", &b"ItemAdded"[..])]).unwrap_err();
        assert!(matches!(
            error,
            DecodeError::HeaderMismatch {
                header: "ce_type",
                ..
            }
        ));
    }
}
