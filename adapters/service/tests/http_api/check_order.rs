//! The order in which API.md checks a request: the first failing check answers.

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn framing_is_checked_first_413_then_415_then_400(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let big = oversized_order();

    // Too large and the wrong type: 413, declared or not.
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders")
            .raw(Some("text/plain"), big.clone())
            .header("content-length", &big.len().to_string()),
        413,
        "payload-too-large",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders").raw(Some("text/plain"), big.clone()),
        413,
        "payload-too-large",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::POST, format!("/orders/{id}/items")).raw(None, big),
        413,
        "payload-too-large",
    )
    .await;
    // The wrong type and not JSON: 415.
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders").raw(Some("text/plain"), "{"),
        415,
        "unsupported-media-type",
    )
    .await;
    // The wrong type and a malformed order id or header: 415.
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders/nope/items")
            .raw(Some("text/plain"), "{}")
            .header("if-match", "nope"),
        415,
        "unsupported-media-type",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn malformed_parameters_answer_400_before_the_body_is_validated(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let invalid = json!({"productId": "", "quantity": -1});

    api.assert_rejected_without_writes(
        Call::post("/orders/nope/items", &invalid),
        400,
        "bad-request",
    )
    .await;
    for (name, value) in [("if-match", "nope"), ("idempotency-key", "has space")] {
        api.assert_rejected_without_writes(
            Call::post(format!("/orders/{id}/items"), &invalid).header(name, value),
            400,
            "bad-request",
        )
        .await;
        api.assert_rejected_without_writes(
            Call::post("/orders", &json!({})).header(name, value),
            400,
            "bad-request",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_invalid_request_answers_422_before_an_unknown_order_404(pool: PgPool) {
    let api = Api::new(pool);
    api.place().await;
    let unknown = Uuid::now_v7();

    let invalid = [
        Call::post(format!("/orders/{unknown}/items"), &item("sku-1", 0, 1)),
        Call::put(
            format!("/orders/{unknown}/delivery-address"),
            &json!({"line1": "x"}),
        ),
        Call::post(
            format!("/orders/{unknown}/payment"),
            &with(payment(TOTAL), "/method", json!("bitcoin")),
        ),
        Call::post(
            format!("/orders/{unknown}/shipment"),
            &json!({"carrier": "x"}),
        ),
        Call::post(
            format!("/orders/{unknown}/cancellation"),
            &json!({"reason": ""}),
        ),
    ];
    for call in invalid {
        api.assert_rejected_without_writes(call, 422, "validation")
            .await;
    }
    // The same routes with valid bodies: 404.
    for call in commands_on(&unknown.to_string()) {
        api.assert_rejected_without_writes(call, 404, "not-found")
            .await;
    }
    // 404 comes before If-Match.
    api.assert_rejected_without_writes(
        Call::post(format!("/orders/{unknown}/items"), &item("sku-1", 1, 1))
            .header("if-match", "\"1\""),
        404,
        "not-found",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn if_match_is_checked_before_the_state_and_the_state_before_the_content(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    api.pay(&id, TOTAL).await;
    api.ship(&id).await;

    // A stale If-Match on an order in the wrong state: 412, not 409.
    for call in commands_on(&id) {
        api.assert_rejected_without_writes(
            call.header("if-match", "\"1\""),
            412,
            "precondition-failed",
        )
        .await;
    }
    // The wrong state and a content problem: 409, not 422.
    api.assert_rejected_without_writes(
        Call::post(format!("/orders/{id}/payment"), &payment(1)),
        409,
        "invalid-state",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::post(format!("/orders/{id}/payment"), &payment(1)).header("if-match", "\"3\""),
        409,
        "invalid-state",
    )
    .await;

    let paid = api.place().await;
    api.pay(&paid, TOTAL).await;
    for call in [
        Call::post(format!("/orders/{paid}/items"), &item("sku-1", 1, 1)),
        Call::post(
            format!("/orders/{paid}/items"),
            &item("sku-1", 1_000_000, 100_000),
        ),
    ] {
        api.assert_rejected_without_writes(call, 409, "invalid-state")
            .await;
    }
}
