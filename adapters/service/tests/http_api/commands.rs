//! Every command and query on its happy path, and the operational routes.

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creating_an_order_answers_201_with_location_etag_and_the_acknowledgment(pool: PgPool) {
    let api = Api::new(pool);
    let reply = api.send(Call::post("/orders", &order_body())).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let id = reply.json["orderId"].as_str().expect("orderId").to_owned();
    let uuid = Uuid::parse_str(&id).expect("the order id is a UUID");
    assert_eq!(uuid.get_version_num(), 7, "server ids are UUID v7");
    assert_eq!(reply.json, json!({"orderId": id, "version": 1}));
    assert_eq!(reply.header("location"), Some(&*format!("/orders/{id}")));
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(counts(&api.pool).await, (1, 1, 0));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creating_an_order_with_a_client_order_id_keeps_that_id(pool: PgPool) {
    let api = Api::new(pool);
    let id = Uuid::now_v7().to_string();
    let reply = api
        .send(Call::post(
            "/orders",
            &with(order_body(), "/orderId", json!(id)),
        ))
        .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    assert_eq!(reply.json, json!({"orderId": id, "version": 1}));
    assert_eq!(reply.header("location"), Some(&*format!("/orders/{id}")));
    assert_eq!(api.order(&id).await["orderId"], json!(id));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn reading_an_order_returns_every_field_with_line_totals_the_discounted_total_and_its_etag(
    pool: PgPool,
) {
    let api = Api::new(pool);
    let id = api.place().await;
    let reply = api.ok(Call::get(format!("/orders/{id}"))).await;
    let order = &reply.json;

    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert_eq!(order["orderId"], json!(id));
    assert_eq!(order["customer"], order_body()["customer"]);
    assert_eq!(order["currency"], json!("VND"));
    assert_eq!(
        order["items"],
        json!([
            {"productId": "sku-1", "quantity": 2, "unitPrice": 100_000, "lineTotal": 200_000},
            {"productId": "sku-2", "quantity": 1, "unitPrice": 50_000, "lineTotal": 50_000},
        ])
    );
    assert_eq!(order["subtotal"], json!(250_000));
    assert_eq!(order["discount"], json!(25_000));
    assert_eq!(order["total"], json!(TOTAL));
    assert_eq!(order["status"], json!("created"));
    assert_eq!(
        order["deliveryAddress"],
        address(),
        "the delivery address starts as the customer's"
    );
    assert_eq!(order["version"], json!(1));
    for at in ["createdAt", "updatedAt"] {
        let text = order[at].as_str().expect("a time");
        DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    }
    for absent in ["payment", "shipment", "cancellation"] {
        assert!(order.get(absent).is_none(), "{absent} before it happened");
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn adding_an_item_merges_a_product_already_ordered_and_appends_a_new_one(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    let merged = api
        .ok(Call::post(
            format!("/orders/{id}/items"),
            &item("sku-1", 3, 100_000),
        ))
        .await;
    assert_eq!(merged.status, StatusCode::OK);
    assert_eq!(merged.json, json!({"orderId": id, "version": 2}));
    assert_eq!(merged.header("etag"), Some("\"2\""));
    assert!(merged.header("location").is_none());

    let added = api
        .ok(Call::post(
            format!("/orders/{id}/items"),
            &item("sku-3", 1, 10_000),
        ))
        .await;
    assert_eq!(added.json, json!({"orderId": id, "version": 3}));

    let order = api.order(&id).await;
    assert_eq!(
        order["items"],
        json!([
            {"productId": "sku-1", "quantity": 5, "unitPrice": 100_000, "lineTotal": 500_000},
            {"productId": "sku-2", "quantity": 1, "unitPrice": 50_000, "lineTotal": 50_000},
            {"productId": "sku-3", "quantity": 1, "unitPrice": 10_000, "lineTotal": 10_000},
        ])
    );
    assert_eq!(order["subtotal"], json!(560_000));
    assert_eq!(order["discount"], json!(56_000));
    assert_eq!(order["total"], json!(504_000));
    assert_eq!(order["version"], json!(3));

    let history = api.history(&id).await;
    assert_eq!(
        history[1]["payload"],
        json!({"productId": "sku-1", "quantity": 3, "unitPrice": 100_000,
               "subtotal": 550_000, "discount": 55_000, "total": 495_000})
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn removing_an_item_drops_its_whole_line(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    let reply = api
        .ok(Call::delete(format!("/orders/{id}/items/sku-1")))
        .await;
    assert_eq!(reply.json, json!({"orderId": id, "version": 2}));
    assert_eq!(reply.header("etag"), Some("\"2\""));

    let order = api.order(&id).await;
    assert_eq!(
        order["items"],
        json!([{"productId": "sku-2", "quantity": 1, "unitPrice": 50_000, "lineTotal": 50_000}])
    );
    assert_eq!(order["total"], json!(45_000));
    let history = api.history(&id).await;
    assert_eq!(history[1]["eventType"], json!("ItemRemoved"));
    assert_eq!(
        history[1]["payload"],
        json!({"productId": "sku-1", "quantity": 2, "subtotal": 50_000, "discount": 5_000, "total": 45_000})
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn changing_the_delivery_address_replaces_it_and_leaves_the_customer_address(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    let reply = api
        .ok(Call::put(
            format!("/orders/{id}/delivery-address"),
            &new_address(),
        ))
        .await;
    assert_eq!(reply.json, json!({"orderId": id, "version": 2}));

    let order = api.order(&id).await;
    assert_eq!(order["deliveryAddress"], new_address());
    assert_eq!(order["customer"]["address"], address());
    let history = api.history(&id).await;
    assert_eq!(history[1]["eventType"], json!("DeliveryAddressChanged"));
    assert_eq!(history[1]["payload"], json!({"address": new_address()}));

    // Still allowed once paid.
    api.pay(&id, TOTAL).await;
    api.ok(Call::put(
        format!("/orders/{id}/delivery-address"),
        &address(),
    ))
    .await;
    assert_eq!(api.order(&id).await["deliveryAddress"], address());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn paying_then_shipping_moves_the_order_through_its_lifecycle(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    // More than the total is accepted and recorded as paid.
    let paid = api
        .ok(Call::post(
            format!("/orders/{id}/payment"),
            &payment(TOTAL + 1),
        ))
        .await;
    assert_eq!(paid.json, json!({"orderId": id, "version": 2}));
    let order = api.order(&id).await;
    assert_eq!(order["status"], json!("paid"));
    assert_eq!(
        order["payment"],
        json!({"paymentId": "pay-1", "amount": TOTAL + 1, "method": "bank_transfer"})
    );

    let shipped = api
        .ok(Call::post(format!("/orders/{id}/shipment"), &shipment()))
        .await;
    assert_eq!(shipped.json, json!({"orderId": id, "version": 3}));
    assert_eq!(shipped.header("etag"), Some("\"3\""));
    let order = api.order(&id).await;
    assert_eq!(order["status"], json!("shipped"));
    assert_eq!(order["shipment"], shipment());

    let history = api.history(&id).await;
    assert_eq!(history[1]["eventType"], json!("PaymentProcessed"));
    assert_eq!(history[1]["payload"], payment(TOTAL + 1));
    assert_eq!(history[2]["eventType"], json!("OrderShipped"));
    assert_eq!(history[2]["payload"], shipment());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn cancelling_records_the_amount_paid_as_the_refund(pool: PgPool) {
    let api = Api::new(pool);

    let paid = api.place().await;
    api.pay(&paid, TOTAL).await;
    let reply = api
        .ok(Call::post(
            format!("/orders/{paid}/cancellation"),
            &cancellation(),
        ))
        .await;
    assert_eq!(reply.json, json!({"orderId": paid, "version": 3}));
    let order = api.order(&paid).await;
    assert_eq!(order["status"], json!("cancelled"));
    assert_eq!(
        order["cancellation"],
        json!({"reason": "changed my mind", "refundAmount": TOTAL})
    );
    let history = api.history(&paid).await;
    assert_eq!(history[2]["eventType"], json!("OrderCancelled"));
    assert_eq!(
        history[2]["payload"],
        json!({"reason": "changed my mind", "refundAmount": TOTAL})
    );

    let unpaid = api.place().await;
    api.ok(Call::post(
        format!("/orders/{unpaid}/cancellation"),
        &cancellation(),
    ))
    .await;
    let history = api.history(&unpaid).await;
    assert_eq!(
        history[1]["payload"],
        json!({"reason": "changed my mind", "refundAmount": 0})
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_history_lists_every_event_in_version_order_with_its_envelope(pool: PgPool) {
    let api = Api::new(pool);
    let created = api
        .send(
            Call::post("/orders", &order_body())
                .header("x-user-id", "user-456")
                .header("x-correlation-id", "txn-xyz"),
        )
        .await;
    let id = created.json["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    api.ok(
        Call::post(format!("/orders/{id}/items"), &item("sku-3", 1, 1))
            .header("x-correlation-id", "txn-2"),
    )
    .await;
    api.ok(Call::post(
        format!("/orders/{id}/payment"),
        &payment(TOTAL + 1),
    ))
    .await;

    let reply = api.ok(Call::get(format!("/orders/{id}/history"))).await;
    assert_eq!(reply.json["orderId"], json!(id));
    let events = reply.json["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().expect("eventType"))
        .collect();
    assert_eq!(types, ["OrderCreated", "ItemAdded", "PaymentProcessed"]);

    let mut event_ids = Vec::new();
    let mut causations = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut keys: Vec<&str> = event
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut envelope = [
            "eventId",
            "aggregateType",
            "aggregateId",
            "eventType",
            "version",
            "schemaVersion",
            "occurredAt",
            "payload",
            "metadata",
            "recordedAt",
            "position",
        ];
        envelope.sort_unstable();
        assert_eq!(keys, envelope, "exactly the envelope's fields");
        event_ids.push(Uuid::parse_str(event["eventId"].as_str().expect("eventId")).expect("UUID"));
        assert_eq!(event["aggregateType"], json!("Order"));
        assert_eq!(event["aggregateId"], json!(id));
        assert_eq!(event["version"], json!(index + 1));
        assert_eq!(event["schemaVersion"], json!(1));
        let occurred = DateTime::parse_from_rfc3339(event["occurredAt"].as_str().expect("time"))
            .expect("occurredAt is RFC 3339");
        let recorded = DateTime::parse_from_rfc3339(event["recordedAt"].as_str().expect("time"))
            .expect("recordedAt is RFC 3339");
        assert!(recorded >= occurred);
        let causation = event["metadata"]["causationId"]
            .as_str()
            .expect("causationId");
        assert!(!causation.is_empty());
        causations.push(causation.to_owned());
    }
    event_ids.sort_unstable();
    event_ids.dedup();
    assert_eq!(event_ids.len(), 3, "event ids are unique");
    causations.sort_unstable();
    causations.dedup();
    assert_eq!(causations.len(), 3, "one command each");

    assert_eq!(events[0]["metadata"]["userId"], json!("user-456"));
    assert_eq!(events[0]["metadata"]["correlationId"], json!("txn-xyz"));
    assert_eq!(events[1]["metadata"]["userId"], Value::Null);
    assert_eq!(events[1]["metadata"]["correlationId"], json!("txn-2"));
    assert_eq!(
        events[0]["payload"],
        json!({
            "customer": order_body()["customer"],
            "currency": "VND",
            "items": order_body()["items"],
            "discountCodes": ["WELCOME10"],
            "discountPercent": 10,
            "subtotal": 250_000,
            "discount": 25_000,
            "total": TOTAL,
        })
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_history_shows_each_events_global_position_growing_across_orders(pool: PgPool) {
    let api = Api::new(pool);
    let a = api.place().await;
    api.ok(Call::post(
        format!("/orders/{a}/items"),
        &item("sku-3", 1, 1),
    ))
    .await;
    let b = api.place().await;
    api.ok(Call::post(
        format!("/orders/{a}/items"),
        &item("sku-4", 1, 1),
    ))
    .await;

    let positions = |history: Vec<Value>| -> Vec<i64> {
        history
            .iter()
            .map(|e| e["position"].as_i64().expect("position is an integer"))
            .collect()
    };
    let a_positions = positions(api.history(&a).await);
    let b_positions = positions(api.history(&b).await);
    assert_eq!((a_positions.len(), b_positions.len()), (3, 1));
    assert!(a_positions[0] >= 1, "{a_positions:?}");
    assert!(
        a_positions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing in version order: {a_positions:?}"
    );
    // A's creation and first item were stored before B's creation, its second item after.
    assert!(
        a_positions[1] < b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert!(
        a_positions[2] > b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert_eq!(a_positions, stored_positions(&api.pool, &a).await);
    assert_eq!(b_positions, stored_positions(&api.pool, &b).await);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn reading_as_of_an_instant_shows_the_order_as_it_was_then(pool: PgPool) {
    let api = Api::new(pool);
    let before_creation = Utc::now() - chrono::Duration::seconds(1);
    let id = api.place().await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(30)).await;
    api.ok(Call::post(
        format!("/orders/{id}/items"),
        &item("sku-3", 1, 1),
    ))
    .await;

    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{id}?asOf={}", rfc3339(before_creation))),
        404,
        "not-found",
    )
    .await;

    let then = api
        .ok(Call::get(format!("/orders/{id}?asOf={}", rfc3339(between))))
        .await;
    assert_eq!(then.json["version"], json!(1));
    assert_eq!(then.header("etag"), Some("\"1\""));
    assert_eq!(then.json["items"].as_array().map(Vec::len), Some(2));

    // An offset other than Z (`+` percent-encoded in the query).
    let offset = between
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).expect("an offset"))
        .to_rfc3339_opts(SecondsFormat::Micros, false)
        .replace('+', "%2B");
    let then = api
        .ok(Call::get(format!("/orders/{id}?asOf={offset}")))
        .await;
    assert_eq!(then.json["version"], json!(1));

    let now = api
        .ok(Call::get(format!(
            "/orders/{id}?asOf={}",
            rfc3339(Utc::now())
        )))
        .await;
    assert_eq!(now.json["version"], json!(2));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn health_readiness_and_metrics_answer(pool: PgPool) {
    let api = Api::new(pool);

    let health = api.ok(Call::get("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = api.ok(Call::get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK);
    api.place().await;

    let metrics = api.ok(Call::get("/metrics")).await;
    assert!(metrics
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    let text = metrics.text();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(
        text.contains(r#"route="/orders""#) && text.contains(r#"status="201""#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_correlation_id_is_echoed_and_generated_when_absent(pool: PgPool) {
    let api = Api::new(pool);

    let given = api
        .send(Call::post("/orders", &order_body()).header("x-correlation-id", "txn-abc"))
        .await;
    assert_eq!(given.header("x-correlation-id"), Some("txn-abc"));
    let id = given.json["orderId"].as_str().expect("orderId").to_owned();

    let generated = api
        .ok(Call::post(
            format!("/orders/{id}/items"),
            &item("sku-3", 1, 1),
        ))
        .await;
    let echoed = generated
        .header("x-correlation-id")
        .expect("a generated correlation id")
        .to_owned();
    assert!(!echoed.is_empty());
    let history = api.history(&id).await;
    assert_eq!(history[0]["metadata"]["correlationId"], json!("txn-abc"));
    assert_eq!(
        history[1]["metadata"]["correlationId"],
        json!(echoed),
        "the generated id is the one recorded"
    );

    // On queries and on errors too.
    let error = api
        .send(Call::get(format!("/orders/{}", Uuid::now_v7())).header("x-correlation-id", "q-1"))
        .await;
    assert_eq!(error.status, StatusCode::NOT_FOUND);
    assert_eq!(error.header("x-correlation-id"), Some("q-1"));
    let health = api.send(Call::get("/healthz")).await;
    assert!(health.header("x-correlation-id").is_some());
}
