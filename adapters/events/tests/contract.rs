//! The contract as the repository keeps it: the schema of every release, and the
//! AsyncAPI document, equal to what the code generates; the gate between a kept
//! schema and the code's; every message schema a valid draft 2020-12 schema that
//! accepts what the payload types write.
//!
//! After an intended, compatible change (an optional field added), keep the new files
//! with `UPDATE_CONTRACT=1 cargo test -p order-events --test contract`, and commit them.

use std::path::PathBuf;

use order_events::compat::breaking_changes;
use order_events::schema::{file_name, message_schema};
use order_events::{asyncapi, payloads, RELEASED};
use serde_json::{json, Value};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_CONTRACT").is_some_and(|v| v == "1")
}

/// Compares `generated` with the file at `path`; with `UPDATE_CONTRACT=1` writes it.
fn check_kept(path: &PathBuf, generated: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
    let kept = std::fs::read_to_string(path).unwrap_or_default();
    if kept == text {
        return Ok(());
    }
    if updating() {
        std::fs::write(path, text).unwrap();
        return Ok(());
    }
    Err(format!(
        "{} differs from what the code generates",
        path.display()
    ))
}

#[test]
fn every_released_schema_is_kept_and_unchanged_or_changed_compatibly() {
    let mut problems = Vec::new();
    for (event_type, version) in RELEASED {
        let generated = message_schema(event_type, version).expect("a released schema");
        let path = crate_dir()
            .join("schemas")
            .join(file_name(event_type, version));
        let kept: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .map(|text| serde_json::from_str(&text).expect("a kept schema is JSON"));
        if let Some(kept) = &kept {
            let breaking = breaking_changes(kept, &generated);
            if !breaking.is_empty() {
                problems.push(format!(
                    "{event_type} v{version} changed in a way that breaks consumers; add schemaVersion {} and an upcaster instead:\n  {}",
                    version + 1,
                    breaking.join("\n  ")
                ));
                continue;
            }
        }
        if let Err(problem) = check_kept(&path, &generated) {
            problems.push(format!(
                "{problem}: a compatible change; keep it with UPDATE_CONTRACT=1 and commit it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_committed_asyncapi_document_is_the_generated_one() {
    let path = crate_dir().join("../../docs/asyncapi.json");
    let document = asyncapi::document(asyncapi::DEFAULT_TOPIC, env!("CARGO_PKG_VERSION"));
    if let Err(problem) = check_kept(&path, &document) {
        panic!("{problem}; run UPDATE_CONTRACT=1 cargo test -p order-events --test contract and commit docs/asyncapi.json");
    }
}

#[test]
fn the_document_names_the_topic_the_key_the_headers_and_every_current_message() {
    let document = asyncapi::document("shop.orders", "1.2.3");
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(
        document["channels"]["orderEvents"]["address"],
        "shop.orders"
    );
    let messages = document["components"]["messages"].as_object().unwrap();
    assert_eq!(messages.len(), order_events::EVENT_TYPES.len());
    let cancelled = &messages["OrderCancelled"];
    assert_eq!(
        cancelled["payload"]["schema"]["properties"]["schemaVersion"]["const"],
        2
    );
    assert_eq!(cancelled["bindings"]["kafka"]["key"]["format"], "uuid");
    let headers = cancelled["headers"]["required"].as_array().unwrap();
    assert!(headers.contains(&json!("ce_id")) && headers.contains(&json!("ce_type")));
    assert!(cancelled["headers"]["properties"]["traceparent"].is_object());
}

/// An `OrderCreated` message as the service writes it.
fn order_created() -> Value {
    let payload = payloads::OrderCreated {
        customer: payloads::Customer {
            customer_id: "cust-1".into(),
            name: "An".into(),
            phone: "+84 90 000 0000".into(),
            address: payloads::Address {
                line1: "1 Lê Lợi".into(),
                line2: None,
                city: "Huế".into(),
                postal_code: Some("530000".into()),
                country: "VN".into(),
            },
        },
        currency: "VND".into(),
        items: vec![payloads::Line {
            product_id: "p-1".into(),
            quantity: 2,
            unit_price: 150_000,
        }],
        discount_codes: vec!["WELCOME10".into()],
        discount_percent: 10,
        subtotal: 300_000,
        discount: 30_000,
        total: 270_000,
    };
    json!({
        "eventId": "0190b5e4-0000-7000-8000-000000000001", "aggregateType": "Order",
        "aggregateId": "0190b5e3-0000-7000-8000-000000000002", "eventType": "OrderCreated",
        "version": 1, "schemaVersion": 1, "occurredAt": "2026-01-15T10:30:00.123456Z",
        "payload": payload,
        "metadata": {"userId": null, "correlationId": "c-1", "causationId": "k-1"},
    })
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid draft 2020-12 schema")
}

#[test]
fn every_schema_is_valid_and_holds_the_limits_of_the_contract() {
    for (event_type, version) in RELEASED {
        validator(&message_schema(event_type, version).unwrap());
    }
    let schema = validator(&message_schema("OrderCreated", 1).unwrap());
    let valid = order_created();
    assert!(
        schema.is_valid(&valid),
        "{:?}",
        schema
            .iter_errors(&valid)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let with = |pointer: &str, value: Value| {
        let mut message = valid.clone();
        *message
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer}")) = value;
        message
    };
    let refused = [
        with("/payload/items/0/quantity", json!(0)),
        with("/payload/items/0/quantity", json!(1_000_001)),
        with(
            "/payload/items/0/unitPrice",
            json!(1_000_000_000_000_001u64),
        ),
        with("/payload/items/0/productId", json!("x".repeat(65))),
        with("/payload/customer/name", json!("bad\u{1}name")),
        with("/payload/currency", json!("dong")),
        with("/payload/discountPercent", json!(101)),
        with("/payload/discountCodes", json!(["A", "B", "C", "D"])),
        with("/payload/items", json!([])),
        with("/eventType", json!("ItemAdded")),
        with("/schemaVersion", json!(2)),
        with("/eventId", json!("not-a-uuid")),
        with("/occurredAt", json!("yesterday")),
    ];
    for message in refused {
        assert!(!schema.is_valid(&message), "accepted {message}");
    }
    let mut no_user = valid.clone();
    no_user["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("userId");
    assert!(
        !schema.is_valid(&no_user),
        "metadata.userId is always present"
    );
}

/// An edit of a payload's schema.
type Change = dyn Fn(&mut Value);

#[test]
fn the_gate_catches_every_breaking_change_and_lets_an_added_optional_field_through() {
    let kept = message_schema("PaymentProcessed", 1).unwrap();
    let changed = |change: &Change| {
        let mut schema = kept.clone();
        change(&mut schema["properties"]["payload"]);
        breaking_changes(&kept, &schema)
    };
    let breaking: [(&str, &Change); 6] = [
        ("removed", &|p| {
            p["properties"].as_object_mut().unwrap().remove("paymentId");
        }),
        ("renamed", &|p| {
            let field = p["properties"]
                .as_object_mut()
                .unwrap()
                .remove("amount")
                .unwrap();
            p["properties"]["amountMinor"] = field;
            p["required"] = json!(["paymentId", "amountMinor", "method"]);
        }),
        ("retyped", &|p| {
            p["properties"]["amount"]["type"] = json!("string")
        }),
        ("enum value removed", &|p| {
            p["properties"]["method"]["enum"] = json!(["card", "bank_transfer"]);
        }),
        ("a required field added", &|p| {
            p["properties"]["currency"] = json!({"type": "string"});
            p["required"]
                .as_array_mut()
                .unwrap()
                .push(json!("currency"));
        }),
        ("a limit widened", &|p| {
            p["properties"]["paymentId"]["maxLength"] = json!(65)
        }),
    ];
    for (case, change) in breaking {
        assert!(!changed(change).is_empty(), "{case} passed the gate");
    }
    let optional_added = changed(&|p| p["properties"]["note"] = json!({"type": "string"}));
    assert!(optional_added.is_empty(), "{optional_added:?}");
    let required_made = {
        let mut address_kept = message_schema("DeliveryAddressChanged", 1).unwrap();
        let before = address_kept.clone();
        address_kept["properties"]["payload"]["properties"]["address"]["required"]
            .as_array_mut()
            .unwrap()
            .push(json!("line2"));
        breaking_changes(&before, &address_kept)
    };
    assert!(
        required_made
            .iter()
            .any(|c| c.contains("line2: made required")),
        "{required_made:?}"
    );
}
