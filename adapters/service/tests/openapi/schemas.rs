//! Every body and every error is described, with what the API requires.

use super::*;

#[test]
fn every_body_and_every_error_is_described() {
    let spec = Spec::new(built_document(false));
    for op in spec.operations() {
        let name = op.describe();
        let key = (op.method, op.template);

        // Request bodies.
        if WITH_BODY.contains(&key) || ADMIN_WITH_BODY.contains(&key) {
            let body = spec.resolve(&op.value["requestBody"]);
            assert_eq!(
                body["required"],
                json!(true),
                "{name}: the body is required"
            );
            let schema = spec
                .request_schema(&op)
                .unwrap_or_else(|| panic!("{name} has no application/json body schema"));
            assert!(schema.get("$ref").is_some(), "{name}: a named body schema");
        } else {
            assert!(
                op.value.get("requestBody").is_none(),
                "{name} takes no body"
            );
        }

        // Success answers have a body schema.
        let statuses = op.statuses();
        let successes: Vec<u16> = statuses.iter().copied().filter(|s| *s < 400).collect();
        assert_eq!(successes.len(), 1, "{name}: one success answer");
        let success = spec.resolve(&op.responses()[&successes[0].to_string()]);
        let content = success["content"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: the success answer has content"));
        assert!(
            content.values().all(|m| m.get("schema").is_some()),
            "{name}"
        );

        // Every error is a problem.
        for status in statuses.iter().filter(|s| **s >= 400) {
            let response = spec.resolve(&op.responses()[&status.to_string()]);
            assert_eq!(
                response.pointer("/content/application~1problem+json/schema/$ref"),
                Some(&json!("#/components/schemas/Problem")),
                "{name} {status} is a problem"
            );
            assert_eq!(
                response["content"].as_object().map(|c| c.len()),
                Some(1),
                "{name} {status}: only problem+json"
            );
        }

        // The errors each route can give, per API.md's "Errors" table; the
        // administration's: 404 for a missing row, order or job, 409 for a second
        // rebuild, and no 412 (no `If-Match`).
        let errors: BTreeSet<u16> = statuses.iter().copied().filter(|s| *s >= 400).collect();
        if op.template.starts_with("/admin/") {
            let mut expected = BTreeSet::from([400, 401, 403, 500, 503]);
            if op.template.contains('{') || op.template == "/admin/replay" {
                expected.insert(404);
            }
            if op.template == "/admin/projections/rebuild" {
                expected.insert(409);
            }
            if ADMIN_WITH_BODY.contains(&key) {
                expected.extend([413, 415, 422]);
            }
            assert_eq!(errors, expected, "{name}: its errors");
            continue;
        }
        let mut expected = BTreeSet::from([400, 503]);
        if !op.is_public() {
            expected.extend([401, 403, 500]);
        }
        if op.template.contains("{id}") {
            expected.insert(404);
        }
        if op.method != "GET" {
            expected.extend([409, 422]);
        }
        if op.method != "GET" && op.template != "/orders" {
            expected.insert(412);
        }
        if WITH_BODY.contains(&key) {
            expected.extend([413, 415]);
        }
        assert_eq!(errors, expected, "{name}: its errors");

        let problem_503 = spec.resolve(&op.responses()["503"]);
        assert!(
            problem_503["headers"].get("Retry-After").is_some(),
            "{name}: 503 gives Retry-After"
        );
    }

    let problem = &spec.doc["components"]["schemas"]["Problem"];
    assert_eq!(
        problem["required"],
        json!(["type", "title", "status", "detail"])
    );
    assert_eq!(
        spec.resolve(&problem["properties"]["errors"]["items"])["required"],
        json!(["field", "message"])
    );
}

#[test]
fn the_schemas_mark_what_the_api_requires_and_its_enums() {
    let spec = Spec::new(built_document(false));
    let schemas = &spec.doc["components"]["schemas"];
    let required = |name: &str| schemas[name]["required"].clone();
    // Request fields are `Option` in Rust only so every missing one can be named.
    assert_eq!(
        required("CreateOrder"),
        json!(["customer", "currency", "items"])
    );
    assert_eq!(
        required("Customer"),
        json!(["customerId", "name", "phone", "address"])
    );
    assert_eq!(required("Address"), json!(["line1", "city", "country"]));
    assert_eq!(
        required("OrderLine"),
        json!(["productId", "quantity", "unitPrice"])
    );
    assert_eq!(
        required("PaymentRequest"),
        json!(["paymentId", "amount", "method"])
    );
    assert_eq!(
        required("ShipmentRequest"),
        json!(["trackingNumber", "carrier"])
    );
    assert_eq!(required("CancellationRequest"), json!(["reason"]));
    assert_eq!(required("Ack"), json!(["orderId", "version"]));
    assert_eq!(
        schemas["PaymentMethod"]["enum"],
        json!(["card", "bank_transfer", "cash_on_delivery"])
    );
    assert_eq!(
        schemas["OrderStatus"]["enum"],
        json!(["created", "paid", "shipped", "cancelled"])
    );
    let line = &schemas["OrderLine"]["properties"];
    assert_eq!(line["quantity"]["type"], json!("integer"));
    assert_eq!(line["quantity"]["format"], json!("int64"));
    assert_eq!(
        schemas["Ack"]["properties"]["orderId"]["format"],
        json!("uuid")
    );
    // A history event's envelope: `recordedAt` and `position` are always there.
    let envelope = &schemas["EventEnvelope"]["allOf"][0];
    let envelope_required = envelope["required"].as_array().expect("required");
    for field in ["recordedAt", "position"] {
        assert!(envelope_required.contains(&json!(field)), "{field}");
    }
    let position = &envelope["properties"]["position"];
    assert_eq!(position["type"], json!("integer"));
    assert_eq!(position["minimum"], json!(1));
}

#[test]
fn every_acknowledgment_links_to_every_operation_on_its_order() {
    let spec = Spec::new(built_document(false));
    let ids: BTreeSet<&str> = spec
        .operations()
        .iter()
        .filter_map(|op| op.value["operationId"].as_str())
        .collect();
    let on_an_order: BTreeSet<&str> = spec
        .operations()
        .iter()
        .filter(|op| op.template.starts_with("/orders/{id}"))
        .filter_map(|op| op.value["operationId"].as_str())
        .collect();
    assert_eq!(on_an_order.len(), 8, "{on_an_order:?}");
    for op in spec.operations() {
        let Some(ack) = ["200", "201"]
            .into_iter()
            .find_map(|s| op.responses().get(s))
            .map(|r| spec.resolve(r))
            .filter(|r| {
                r.pointer("/content/application~1json/schema/$ref")
                    == Some(&json!("#/components/schemas/Ack"))
            })
        else {
            continue;
        };
        let links = ack["links"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: its acknowledgment has links", op.describe()));
        let targets: BTreeSet<&str> = links
            .values()
            .map(|link| {
                assert_eq!(link["parameters"]["id"], json!("$response.body#/orderId"));
                link["operationId"].as_str().expect("an operationId")
            })
            .collect();
        assert!(targets.iter().all(|t| ids.contains(t)), "{targets:?}");
        let mut expected = on_an_order.clone();
        if op.template != "/orders" {
            // Only the creation's request names a product of the order.
            expected.remove("remove_item");
        }
        assert_eq!(targets, expected, "{}", op.describe());
    }
    let create = spec.doc["paths"]["/orders"]["post"]["responses"]["201"]["links"]["RemoveItem"]
        ["parameters"]["productId"]
        .clone();
    assert_eq!(create, json!("$request.body#/items/0/productId"));
}
