//! Every message the end-to-end tests read from the topic is checked against the
//! event contract (`order-events`): its value against the JSON Schema of its
//! `(eventType, schemaVersion)`, its headers against the AsyncAPI document's, and the
//! consumer crate decodes it. A message that does not fit fails the test that read it.

use std::collections::HashMap;
use std::sync::OnceLock;

use order_events::{asyncapi, schema, RELEASED};
use serde_json::Value;

use crate::system::Received;

struct Validators {
    values: HashMap<(String, u32), jsonschema::Validator>,
    headers: HashMap<String, jsonschema::Validator>,
}

fn build(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the contract's schemas are valid")
}

fn validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let document = asyncapi::document(asyncapi::DEFAULT_TOPIC, "e2e");
        Validators {
            values: RELEASED
                .iter()
                .map(|(event_type, version)| {
                    let schema = schema::message_schema(event_type, *version).expect("released");
                    (((*event_type).to_owned(), *version), build(&schema))
                })
                .collect(),
            headers: document["components"]["messages"]
                .as_object()
                .expect("messages")
                .iter()
                .map(|(event_type, message)| (event_type.clone(), build(&message["headers"])))
                .collect(),
        }
    })
}

/// Panics, saying why, unless `message` fits the contract.
pub fn check(message: &Received) {
    let value = &message.value;
    let event_type = value["eventType"].as_str().unwrap_or_default();
    let version = value["schemaVersion"].as_u64().unwrap_or_default();
    let key = (
        event_type.to_owned(),
        u32::try_from(version).unwrap_or_default(),
    );
    let validators = validators();
    let Some(schema) = validators.values.get(&key) else {
        panic!("a message of no released (eventType, schemaVersion): {value}");
    };
    let errors: Vec<String> = schema
        .iter_errors(value)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{value} does not fit its schema: {errors:?}"
    );
    let headers = serde_json::to_value(&message.headers).expect("headers as JSON");
    let errors: Vec<String> = validators.headers[event_type]
        .iter_errors(&headers)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "headers {headers} do not fit: {errors:?}"
    );
    let bytes = serde_json::to_vec(value).expect("JSON");
    let decoded = order_events::decode(
        &bytes,
        message
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
    .unwrap_or_else(|error| panic!("the consumer crate cannot decode {value}: {error}"));
    assert_eq!(
        decoded.aggregate_id.to_string(),
        message.key,
        "the key is the order id"
    );
}
