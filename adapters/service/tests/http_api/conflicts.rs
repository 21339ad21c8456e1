//! Commands the state does not allow, existing ids (409) and `If-Match` mismatches (412).

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn commands_the_state_does_not_allow_answer_409_invalid_state(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    // Ship before payment.
    let problem = api
        .assert_rejected_without_writes(
            Call::post(format!("/orders/{id}/shipment"), &shipment()),
            409,
            "invalid-state",
        )
        .await;
    assert!(problem.get("errors").is_none());

    // Once paid: no item changes, no second payment.
    api.pay(&id, TOTAL).await;
    for call in [
        Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, 1)),
        Call::delete(format!("/orders/{id}/items/sku-1")),
        Call::post(format!("/orders/{id}/payment"), &payment(TOTAL)),
    ] {
        api.assert_rejected_without_writes(call, 409, "invalid-state")
            .await;
    }

    // Once shipped: nothing but queries.
    api.ship(&id).await;
    for call in commands_on(&id) {
        api.assert_rejected_without_writes(call, 409, "invalid-state")
            .await;
    }

    // Once cancelled: nothing either.
    let cancelled = api.place().await;
    api.ok(Call::post(
        format!("/orders/{cancelled}/cancellation"),
        &cancellation(),
    ))
    .await;
    for call in commands_on(&cancelled) {
        api.assert_rejected_without_writes(call, 409, "invalid-state")
            .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creating_an_order_with_an_existing_id_answers_409_already_exists_whatever_the_body(
    pool: PgPool,
) {
    let api = Api::new(pool);
    let id = Uuid::now_v7().to_string();
    let body = with(order_body(), "/orderId", json!(id));
    api.place_with(&body).await;

    let problem = api
        .assert_rejected_without_writes(Call::post("/orders", &body), 409, "already-exists")
        .await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains(&id)));
    let other = with(body, "/currency", json!("USD"));
    api.assert_rejected_without_writes(Call::post("/orders", &other), 409, "already-exists")
        .await;
    // Even with an Idempotency-Key never seen: a retry never makes a second order.
    api.assert_rejected_without_writes(
        Call::post("/orders", &other).header("idempotency-key", "fresh"),
        409,
        "already-exists",
    )
    .await;
    assert_eq!(api.history(&id).await.len(), 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_if_match_mismatch_answers_412_and_writes_nothing_while_a_match_succeeds(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    for stale in ["\"0\"", "\"2\"", "W/\"7\"", "3"] {
        for call in commands_on(&id) {
            api.assert_rejected_without_writes(
                call.header("if-match", stale),
                412,
                "precondition-failed",
            )
            .await;
        }
    }

    let reply = api
        .ok(
            Call::post(format!("/orders/{id}/items"), &item("sku-3", 1, 1))
                .header("if-match", "\"1\""),
        )
        .await;
    assert_eq!(reply.json["version"], json!(2));
    // Weak and bare forms, and `*`, are accepted too.
    api.ok(
        Call::put(format!("/orders/{id}/delivery-address"), &new_address())
            .header("if-match", "W/\"2\""),
    )
    .await;
    api.ok(Call::put(format!("/orders/{id}/delivery-address"), &address()).header("if-match", "3"))
        .await;
    let reply = api
        .ok(
            Call::post(format!("/orders/{id}/payment"), &payment(TOTAL + 1))
                .header("if-match", "*"),
        )
        .await;
    assert_eq!(reply.json["version"], json!(5));

    // The ETag of a read is what If-Match takes.
    let etag = api
        .ok(Call::get(format!("/orders/{id}")))
        .await
        .header("etag")
        .expect("an ETag")
        .to_owned();
    api.ok(Call::post(format!("/orders/{id}/shipment"), &shipment()).header("if-match", &etag))
        .await;
}
