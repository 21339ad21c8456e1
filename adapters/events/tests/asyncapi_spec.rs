//! The generated document is valid AsyncAPI 3.0: checked against the specification's
//! own JSON Schema, from the npm package `@asyncapi/specs` that `scripts/test.sh`
//! installs into `.local/` (nothing of it is committed) and names in `ASYNCAPI_SPEC`.
//!
//! Run alone: `scripts/test.sh -p order-events`.

use order_events::asyncapi;
use serde_json::{json, Value};

fn specification() -> jsonschema::Validator {
    let path = std::env::var("ASYNCAPI_SPEC").unwrap_or_else(|_| {
        panic!(
            "ASYNCAPI_SPEC names the AsyncAPI 3.0.0 JSON Schema of @asyncapi/specs; \
             scripts/test.sh installs it and sets it (run this test through it)"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: Value = serde_json::from_str(&text).expect("the specification is JSON");
    jsonschema::validator_for(&schema).expect("the specification's schema compiles")
}

#[test]
fn the_document_is_valid_asyncapi_3_0() {
    let specification = specification();
    let document = asyncapi::document(asyncapi::DEFAULT_TOPIC, env!("CARGO_PKG_VERSION"));
    let errors: Vec<String> = specification
        .iter_errors(&document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_specification_check_refuses_a_broken_document() {
    let specification = specification();
    let mut document = asyncapi::document(asyncapi::DEFAULT_TOPIC, "1.0.0");
    document["operations"]["publishOrderEvents"]["action"] = json!("publish");
    assert!(
        !specification.is_valid(&document),
        "AsyncAPI 3 has send and receive only"
    );
    let mut document = asyncapi::document(asyncapi::DEFAULT_TOPIC, "1.0.0");
    document["channels"]["orderEvents"]["unknown"] = json!(true);
    assert!(!specification.is_valid(&document), "no other channel field");
}
