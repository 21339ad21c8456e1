//! `Idempotency-Key`: replays, and a key reused with another request.

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_retry_with_the_same_idempotency_key_replays_the_first_answer_and_writes_nothing(
    pool: PgPool,
) {
    let api = Api::new(pool);
    let id = api.place().await;
    let call = Call::post(format!("/orders/{id}/items"), &item("sku-3", 1, 1))
        .header("idempotency-key", "add-sku-3");

    let first = api.ok(call.clone()).await;
    assert_eq!(first.json, json!({"orderId": id, "version": 2}));
    assert_eq!(counts(&api.pool).await, (2, 2, 1));

    // The order moves on; the retry still gets the first answer.
    api.pay(&id, 1_000_000).await;
    let before = counts(&api.pool).await;
    for _ in 0..3 {
        let again = api.send(call.clone()).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.bytes, first.bytes, "the body byte for byte");
        assert_eq!(again.header("etag"), Some("\"2\""));
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(counts(&api.pool).await, before, "a replay writes nothing");
    assert_eq!(api.history(&id).await.len(), 3);

    // Every command replays alike.
    let other = api.place().await;
    for (index, call) in commands_on(&other).into_iter().enumerate() {
        if call.path.ends_with("/shipment") {
            continue; // needs the payment first; covered by the sequence below
        }
        let keyed = call.header("idempotency-key", &format!("cmd-{index}"));
        let first = api.send(keyed.clone()).await;
        assert!(first.status.is_success(), "{}", first.text());
        let before = counts(&api.pool).await;
        let again = api.send(keyed).await;
        assert_eq!((again.status, &again.bytes), (first.status, &first.bytes));
        assert_eq!(counts(&api.pool).await, before);
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_idempotency_key_reused_with_another_body_path_or_method_answers_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let other = api.place().await;
    api.ok(
        Call::post(format!("/orders/{id}/items"), &item("sku-3", 1, 1))
            .header("idempotency-key", "k1"),
    )
    .await;

    for call in [
        // Another body (even one that means the same).
        Call::post(format!("/orders/{id}/items"), &item("sku-3", 2, 1)),
        Call::new(Method::POST, format!("/orders/{id}/items")).raw(
            Some("application/json"),
            "{\"productId\": \"sku-3\", \"quantity\": 1, \"unitPrice\": 1}",
        ),
        // Another path.
        Call::post(format!("/orders/{other}/items"), &item("sku-3", 1, 1)),
        Call::post(format!("/orders/{id}/cancellation"), &cancellation()),
        Call::post("/orders", &order_body()),
        // Another method.
        Call::delete(format!("/orders/{id}/items/sku-3")),
    ] {
        api.assert_invalid(call.header("idempotency-key", "k1"), "Idempotency-Key")
            .await;
    }
    // Another key is a new request.
    api.ok(
        Call::post(format!("/orders/{id}/items"), &item("sku-3", 2, 1))
            .header("idempotency-key", "k2"),
    )
    .await;

    // A rejected request keeps no key: once fixed, the same key is a new request.
    let pay = format!("/orders/{id}/payment");
    api.assert_invalid(
        Call::post(pay.clone(), &payment(1)).header("idempotency-key", "k-pay"),
        "amount",
    )
    .await;
    api.ok(Call::post(pay, &payment(1_000_000)).header("idempotency-key", "k-pay"))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creating_an_order_with_an_idempotency_key_replays_201_with_the_same_order_id(
    pool: PgPool,
) {
    let api = Api::new(pool);
    let call = Call::post("/orders", &order_body()).header("idempotency-key", "create-1");

    let first = api.send(call.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let id = first.json["orderId"].as_str().expect("orderId").to_owned();
    assert_eq!(counts(&api.pool).await, (1, 1, 1));

    let again = api.send(call.clone()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.bytes, first.bytes);
    assert_eq!(again.header("location"), Some(&*format!("/orders/{id}")));
    assert_eq!(again.header("etag"), Some("\"1\""));
    assert_eq!(counts(&api.pool).await, (1, 1, 1), "no second order");

    // With a client id too: the replay wins over already-exists.
    let client_id = Uuid::now_v7().to_string();
    let keyed = Call::post("/orders", &with(order_body(), "/orderId", json!(client_id)))
        .header("idempotency-key", "create-2");
    let first = api.send(keyed.clone()).await;
    let again = api.send(keyed).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!((&again.json, &again.bytes), (&first.json, &first.bytes));
    assert_eq!(again.json["orderId"], json!(client_id));
    assert_eq!(counts(&api.pool).await, (2, 2, 2));
}
