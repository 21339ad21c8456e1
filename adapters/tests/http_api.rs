//! The HTTP API against `shared/API.md`, driven in-process (`tower::ServiceExt::oneshot`)
//! on a real PostgreSQL with a throwaway database per test.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p adapters --test http_api`.
//!
//! Every rejected request goes through [`Api::assert_rejected_without_writes`], which
//! checks the status, the problem+json body and that no event, outbox row or
//! idempotency record was written.

use std::time::Duration;

use adapters::service::{build_router, ServiceSettings};
use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

mod support;

use support::*;

// ---------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// 400
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_that_are_not_json_answer_400_and_write_nothing(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let json = Some("application/json");

    for bytes in [
        &b"{"[..],
        b"",
        b"not json",
        b"{\"currency\": }",
        b"{} trailing garbage",
        b"{}{}",
        // Invalid JSON is 400 even when what precedes the error has the wrong shape.
        b"{\"customer\": 1, \"currency\": \"VND\"",
        b"\xff\xfe",
    ] {
        api.assert_rejected_without_writes(
            Call::new(Method::POST, "/orders").raw(json, bytes),
            400,
            "bad-request",
        )
        .await;
    }
    for call in commands_on(&id)
        .into_iter()
        .filter(|c| c.method != Method::DELETE)
    {
        api.assert_rejected_without_writes(
            call.clone().raw(json, "{\"x\": 1,}"),
            400,
            "bad-request",
        )
        .await;
        api.assert_rejected_without_writes(
            call.raw(json, "{\"quantity\": -1, \"amount\": \"x\"} trailing"),
            400,
            "bad-request",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn malformed_path_query_and_header_parameters_answer_400(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    // A malformed order id in the path, on every route that takes one.
    for bad in ["not-a-uuid", "1234", "%20"] {
        api.assert_rejected_without_writes(Call::get(format!("/orders/{bad}")), 400, "bad-request")
            .await;
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{bad}/history")),
            400,
            "bad-request",
        )
        .await;
        for call in commands_on(bad) {
            api.assert_rejected_without_writes(call, 400, "bad-request")
                .await;
        }
    }
    // A product id in the path that no product id can be (65 characters).
    api.assert_rejected_without_writes(
        Call::delete(format!("/orders/{id}/items/{}", "p".repeat(65))),
        400,
        "bad-request",
    )
    .await;

    // Malformed asOf.
    for bad in ["yesterday", "2026-01-15", "2026-13-01T00:00:00Z", ""] {
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{id}?asOf={bad}")),
            400,
            "bad-request",
        )
        .await;
    }

    // Malformed If-Match, on every command.
    for bad in [
        "abc",
        "\"x\"",
        "\"\"",
        "\"-1\"",
        "\"99999999999999999999999\"",
    ] {
        for call in commands_on(&id) {
            api.assert_rejected_without_writes(call.header("if-match", bad), 400, "bad-request")
                .await;
        }
    }

    // Malformed Idempotency-Key: empty, 256 characters, a space, non-ASCII.
    let too_long = "k".repeat(256);
    let bad_keys: [&[u8]; 5] = [
        b"",
        too_long.as_bytes(),
        b"has space",
        "clé".as_bytes(),
        b"tab\there",
    ];
    for key in bad_keys {
        api.assert_rejected_without_writes(
            Call::post("/orders", &order_body()).header_bytes("idempotency-key", key),
            400,
            "bad-request",
        )
        .await;
        for call in commands_on(&id) {
            api.assert_rejected_without_writes(
                call.header_bytes("idempotency-key", key),
                400,
                "bad-request",
            )
            .await;
        }
    }
    // 255 visible ASCII characters are a valid key.
    api.ok(Call::post("/orders", &order_body()).header("idempotency-key", &"k".repeat(255)))
        .await;

    // Malformed X-Correlation-Id: checked on every route, even queries.
    let too_long = "c".repeat(201);
    let bad_ids: [&[u8]; 4] = [b"", b"has space", too_long.as_bytes(), "tương".as_bytes()];
    for bad in bad_ids {
        api.assert_rejected_without_writes(
            Call::post("/orders", &order_body()).header_bytes("x-correlation-id", bad),
            400,
            "bad-request",
        )
        .await;
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{id}")).header_bytes("x-correlation-id", bad),
            400,
            "bad-request",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// 404, 405
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_order_answers_404_on_queries_and_on_every_command(pool: PgPool) {
    let api = Api::new(pool);
    api.place().await;
    let unknown = Uuid::now_v7().to_string();

    api.assert_rejected_without_writes(Call::get(format!("/orders/{unknown}")), 404, "not-found")
        .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{unknown}/history")),
        404,
        "not-found",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{unknown}?asOf={}", rfc3339(Utc::now()))),
        404,
        "not-found",
    )
    .await;
    for call in commands_on(&unknown) {
        api.assert_rejected_without_writes(call.clone(), 404, "not-found")
            .await;
        // With an Idempotency-Key: no key is kept for a rejected command.
        api.assert_rejected_without_writes(
            call.header("idempotency-key", "k-404"),
            404,
            "not-found",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_line_or_route_answers_404_and_a_wrong_method_405(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    api.assert_rejected_without_writes(
        Call::delete(format!("/orders/{id}/items/sku-404")),
        404,
        "not-found",
    )
    .await;
    for path in ["/", "/nope", "/orders/x/y/z", "/order"] {
        api.assert_rejected_without_writes(Call::get(path), 404, "not-found")
            .await;
    }
    api.assert_rejected_without_writes(Call::post("/nope", &order_body()), 404, "not-found")
        .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{id}/payment")),
        405,
        "method-not-allowed",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::PATCH, format!("/orders/{id}")),
        405,
        "method-not-allowed",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 409
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// 412
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// 413, 415
// ---------------------------------------------------------------------------------------

/// A valid creation body padded past 64 KiB with a long (but ignored) field.
fn oversized_order() -> Vec<u8> {
    let body = with(order_body(), "/padding", json!("x".repeat(64 * 1024)));
    serde_json::to_vec(&body).expect("serializes")
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_over_64_kib_answer_413(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let big = oversized_order();
    let length = big.len().to_string();
    let json = Some("application/json");

    // Declared in Content-Length, and only found while reading (no Content-Length).
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders")
            .raw(json, big.clone())
            .header("content-length", &length),
        413,
        "payload-too-large",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders").raw(json, big.clone()),
        413,
        "payload-too-large",
    )
    .await;
    for call in commands_on(&id)
        .into_iter()
        .filter(|c| c.method != Method::DELETE)
    {
        api.assert_rejected_without_writes(call.raw(json, big.clone()), 413, "payload-too-large")
            .await;
    }

    // Exactly at the limit is accepted (spaces are valid JSON padding).
    let mut at_limit = serde_json::to_vec(&order_body()).expect("serializes");
    at_limit.resize(64 * 1024, b' ');
    api.ok(Call::new(Method::POST, "/orders").raw(json, at_limit))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_that_are_not_application_json_answer_415(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let valid = serde_json::to_vec(&order_body()).expect("serializes");

    for content_type in [
        Some("text/plain"),
        None,
        Some("application/xml"),
        Some("application/jsonx"),
        Some("multipart/form-data"),
    ] {
        api.assert_rejected_without_writes(
            Call::new(Method::POST, "/orders").raw(content_type, valid.clone()),
            415,
            "unsupported-media-type",
        )
        .await;
        for call in commands_on(&id)
            .into_iter()
            .filter(|c| c.method != Method::DELETE)
        {
            let body = call.body.clone();
            api.assert_rejected_without_writes(
                call.raw(content_type, body),
                415,
                "unsupported-media-type",
            )
            .await;
        }
    }

    // Parameters and case do not matter.
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        api.ok(Call::new(Method::POST, "/orders").raw(Some(content_type), valid.clone()))
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// 422
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn missing_fields_answer_422_naming_each_of_them(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    let problem = api
        .assert_invalid(Call::post("/orders", &json!({})), "currency")
        .await;
    for field in ["customer", "items"] {
        assert_names(&problem, field);
    }
    for (pointer, field) in [
        ("/currency", "currency"),
        ("/customer/customerId", "customer.customerId"),
        ("/customer/name", "customer.name"),
        ("/customer/phone", "customer.phone"),
        ("/customer/address", "customer.address"),
        ("/customer/address/country", "customer.address.country"),
        ("/customer/address/line1", "customer.address.line1"),
        ("/customer/address/city", "customer.address.city"),
        ("/items/0/quantity", "items[0].quantity"),
        ("/items/1/productId", "items[1].productId"),
        ("/items/1/unitPrice", "items[1].unitPrice"),
    ] {
        let problem = api
            .assert_invalid(
                Call::post("/orders", &without(order_body(), pointer)),
                field,
            )
            .await;
        assert_eq!(fields(&problem), [field], "only {field} is at fault");
    }
    // Optional fields may be left out.
    api.place_with(&without(
        without(order_body(), "/discountCodes"),
        "/customer/address/postalCode",
    ))
    .await;

    // Several at once are all named.
    let problem = api
        .assert_invalid(
            Call::post(
                "/orders",
                &without(without(order_body(), "/currency"), "/items/0/unitPrice"),
            ),
            "currency",
        )
        .await;
    assert_names(&problem, "items[0].unitPrice");

    let commands = [
        ("items", &["productId", "quantity", "unitPrice"][..]),
        ("payment", &["paymentId", "amount", "method"][..]),
        ("shipment", &["trackingNumber", "carrier"][..]),
        ("cancellation", &["reason"][..]),
    ];
    for (route, named) in commands {
        let problem = api
            .assert_invalid(
                Call::post(format!("/orders/{id}/{route}"), &json!({})),
                named[0],
            )
            .await;
        for field in named {
            assert_names(&problem, field);
        }
    }
    let problem = api
        .assert_invalid(
            Call::put(format!("/orders/{id}/delivery-address"), &json!({})),
            "line1",
        )
        .await;
    assert_names(&problem, "city");
    assert_names(&problem, "country");
    // A body of another JSON type altogether.
    for body in [json!([]), json!("order"), json!(null), json!(1)] {
        api.assert_rejected_without_writes(Call::post("/orders", &body), 422, "validation")
            .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn quantities_out_of_range_or_not_integers_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let create = serde_json::to_string(&order_body()).expect("serializes");
    let add = format!("/orders/{id}/items");
    let json = Some("application/json");

    for bad in [
        "0",
        "1000001",
        "-1",
        "1.5",
        "1e30",
        "10000000000000000000000000",
        "\"2\"",
        "null",
    ] {
        let body = create.replacen("\"quantity\":2", &format!("\"quantity\":{bad}"), 1);
        assert_ne!(body, create);
        api.assert_invalid(
            Call::new(Method::POST, "/orders").raw(json, body),
            "items[0].quantity",
        )
        .await;
        api.assert_invalid(
            Call::new(Method::POST, add.clone()).raw(
                json,
                format!("{{\"productId\":\"sku-9\",\"quantity\":{bad},\"unitPrice\":1}}"),
            ),
            "quantity",
        )
        .await;
    }
    // The bounds themselves are accepted.
    api.ok(Call::post(add.clone(), &item("sku-min", 1, 1)))
        .await;
    api.ok(Call::post(add, &item("sku-max", 1_000_000, 1)))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn amounts_out_of_range_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let limit: u64 = 1_000_000_000_000_000;

    api.assert_invalid(
        Call::post(
            "/orders",
            &with(order_body(), "/items/1/unitPrice", json!(limit + 1)),
        ),
        "items[1].unitPrice",
    )
    .await;
    api.assert_invalid(
        Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, limit + 1)),
        "unitPrice",
    )
    .await;
    for bad in [json!(-1), json!(1.5), json!("100")] {
        api.assert_invalid(
            Call::post(
                format!("/orders/{id}/items"),
                &with(item("sku-9", 1, 1), "/unitPrice", bad.clone()),
            ),
            "unitPrice",
        )
        .await;
        api.assert_invalid(
            Call::post(
                format!("/orders/{id}/payment"),
                &with(payment(TOTAL), "/amount", bad),
            ),
            "amount",
        )
        .await;
    }
    // 10^15 itself is a valid unit price; 0 too.
    api.ok(Call::post(
        format!("/orders/{id}/items"),
        &item("sku-free", 1, 0),
    ))
    .await;
    api.ok(Call::post(
        format!("/orders/{id}/items"),
        &item("sku-dear", 1, limit),
    ))
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn unknown_codes_and_malformed_strings_answer_422_naming_the_field(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let create =
        |pointer: &str, value: Value| Call::post("/orders", &with(order_body(), pointer, value));

    for (pointer, value, field) in [
        ("/currency", json!("XXX"), "currency"),
        ("/currency", json!("usd"), "currency"),
        ("/currency", json!(""), "currency"),
        (
            "/customer/address/country",
            json!("ZZ"),
            "customer.address.country",
        ),
        (
            "/customer/address/country",
            json!("vn"),
            "customer.address.country",
        ),
        (
            "/customer/address/country",
            json!("VNM"),
            "customer.address.country",
        ),
        ("/customer/name", json!("Nul\u{0}byte"), "customer.name"),
        ("/customer/phone", json!("del\u{7f}"), "customer.phone"),
        (
            "/customer/customerId",
            json!("line\nbreak"),
            "customer.customerId",
        ),
        ("/customer/name", json!("n".repeat(201)), "customer.name"),
        (
            "/customer/address/city",
            json!("é".repeat(201)),
            "customer.address.city",
        ),
        ("/customer/name", json!("   "), "customer.name"),
        (
            "/items/0/productId",
            json!("p".repeat(65)),
            "items[0].productId",
        ),
        ("/items/0/productId", json!(""), "items[0].productId"),
        ("/orderId", json!("not-a-uuid"), "orderId"),
        ("/discountCodes", json!(["NOPE"]), "discountCodes"),
        (
            "/discountCodes",
            json!(["WELCOME10", "WELCOME10"]),
            "discountCodes",
        ),
        (
            "/discountCodes",
            json!(["WELCOME10", "VIP20", "A", "B"]),
            "discountCodes",
        ),
        ("/discountCodes", json!([""]), "discountCodes[0]"),
        ("/customer", json!("cust-1"), "customer"),
    ] {
        api.assert_invalid(create(pointer, value), field).await;
    }
    // At the limits: 200 characters (not bytes), a 64-character product id, 3 codes.
    let mut at_limits = with(order_body(), "/customer/name", json!("é".repeat(200)));
    at_limits = with(at_limits, "/items/0/productId", json!("p".repeat(64)));
    at_limits = with(at_limits, "/discountCodes", json!(["WELCOME10", "VIP20"]));
    api.place_with(&at_limits).await;

    let commands = [
        (Method::POST, "items", item("a\u{0}b", 1, 1), "productId"),
        (
            Method::POST,
            "items",
            item(&"p".repeat(65), 1, 1),
            "productId",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/country", json!("XX")),
            "country",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/line2", json!("l".repeat(201))),
            "line2",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/postalCode", json!("\u{0}")),
            "postalCode",
        ),
        (
            Method::POST,
            "payment",
            with(payment(TOTAL), "/method", json!("bitcoin")),
            "method",
        ),
        (
            Method::POST,
            "payment",
            with(payment(TOTAL), "/paymentId", json!("p".repeat(65))),
            "paymentId",
        ),
        (
            Method::POST,
            "shipment",
            with(shipment(), "/trackingNumber", json!("t".repeat(65))),
            "trackingNumber",
        ),
        (
            Method::POST,
            "shipment",
            with(shipment(), "/carrier", json!("\u{0}")),
            "carrier",
        ),
        (
            Method::POST,
            "cancellation",
            json!({"reason": "r".repeat(201)}),
            "reason",
        ),
        (
            Method::POST,
            "cancellation",
            json!({"reason": "nul\u{0}"}),
            "reason",
        ),
    ];
    for (method, route, body, field) in commands {
        api.assert_invalid(
            Call::json(method, format!("/orders/{id}/{route}"), &body),
            field,
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creation_rules_answer_422(pool: PgPool) {
    let api = Api::new(pool);

    // A product on two lines.
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(order_body(), "/items/1/productId", json!("sku-1")),
        ),
        "items",
    )
    .await;
    // No line, and 101 lines.
    api.assert_invalid(
        Call::post("/orders", &with(order_body(), "/items", json!([]))),
        "items",
    )
    .await;
    let lines = |n: usize| -> Value {
        (0..n)
            .map(|i| item(&format!("sku-{i}"), 1, 1))
            .collect::<Vec<_>>()
            .into()
    };
    api.assert_invalid(
        Call::post("/orders", &with(order_body(), "/items", lines(101))),
        "items",
    )
    .await;
    api.place_with(&with(order_body(), "/items", lines(100)))
        .await;
    // A line total that overflows (10^15 × 10^6), and a sum that does.
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(
                order_body(),
                "/items",
                json!([item("sku-1", 1_000_000, 1_000_000_000_000_000)]),
            ),
        ),
        "items",
    )
    .await;
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(
                order_body(),
                "/items",
                json!([
                    item("sku-1", 5_000, 1_000_000_000_000_000),
                    item("sku-2", 5_000, 1_000_000_000_000_000)
                ]),
            ),
        ),
        "items",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn rules_on_the_order_content_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let items = format!("/orders/{id}/items");

    // A payment below the total.
    api.assert_invalid(
        Call::post(format!("/orders/{id}/payment"), &payment(TOTAL - 1)),
        "amount",
    )
    .await;
    // The same product at another price.
    api.assert_invalid(
        Call::post(items.clone(), &item("sku-1", 1, 99_999)),
        "unitPrice",
    )
    .await;
    // A merged quantity over 1,000,000 (2 + 999,999); 2 + 999,998 is fine.
    api.assert_invalid(
        Call::post(items.clone(), &item("sku-1", 999_999, 100_000)),
        "quantity",
    )
    .await;
    // A sum that overflows.
    api.assert_invalid(
        Call::post(
            items.clone(),
            &item("sku-big", 1_000_000, 1_000_000_000_000_000),
        ),
        "items",
    )
    .await;
    api.ok(Call::post(items.clone(), &item("sku-1", 999_998, 100_000)))
        .await;
    // Removing the last line.
    let single = api
        .place_with(&with(order_body(), "/items", json!([item("only", 1, 1)])))
        .await;
    api.assert_invalid(
        Call::delete(format!("/orders/{single}/items/only")),
        "productId",
    )
    .await;

    // A 101st line.
    let full = api
        .place_with(&with(
            order_body(),
            "/items",
            (0..100)
                .map(|i| item(&format!("sku-{i}"), 1, 1))
                .collect::<Vec<_>>()
                .into(),
        ))
        .await;
    api.assert_invalid(
        Call::post(format!("/orders/{full}/items"), &item("sku-100", 1, 1)),
        "items",
    )
    .await;
    // ... while adding to an existing line of a full order is fine.
    api.ok(Call::post(
        format!("/orders/{full}/items"),
        &item("sku-0", 1, 1),
    ))
    .await;
}

// ---------------------------------------------------------------------------------------
// Check order (API.md, "Errors")
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

/// `n` item additions sent at once on one order.
async fn add_concurrently(api: &Api, id: &str, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let router = api.router.clone();
            let call = Call::post(
                format!("/orders/{id}/items"),
                &item(&format!("sku-c{i}"), 1, 1_000),
            );
            tokio::spawn(send(router, call))
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("the task ends"));
    }
    replies
}

/// The stream has versions 1..=n without a gap, and the outbox one row per event.
async fn assert_gapless_with_one_outbox_row_per_event(api: &Api, id: &str, n: i64) {
    let id = Uuid::parse_str(id).expect("a UUID");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
            .bind(id)
            .fetch_all(&api.pool)
            .await
            .expect("versions");
    assert_eq!(versions, (1..=n).collect::<Vec<_>>());
    let outboxed: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM outbox WHERE aggregate_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&api.pool)
            .await
            .expect("outbox versions");
    assert_eq!(
        outboxed, versions,
        "one outbox row per event, in version order"
    );
    let unmatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e FULL JOIN outbox o USING (event_id) \
         WHERE e.event_id IS NULL OR o.event_id IS NULL",
    )
    .fetch_one(&api.pool)
    .await
    .expect("a count");
    assert_eq!(unmatched, 0);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn concurrent_commands_on_one_order_are_re_run_and_all_succeed_without_a_gap(pool: PgPool) {
    const N: usize = 10;
    // A command that lost the race is re-run on the new state; with N racers the last
    // one may lose N - 1 times, so the budget is N attempts (the default is 5, which
    // the next test covers).
    let settings = ServiceSettings {
        max_attempts: N as u32,
        ..ServiceSettings::default()
    };
    let api = Api::with_settings(pool, &settings);
    let id = api.place().await;

    let replies = add_concurrently(&api, &id, N).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let mut versions: Vec<u64> = replies
        .iter()
        .map(|r| r.json["version"].as_u64().expect("a version"))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=N as u64 + 1).collect::<Vec<_>>());

    let order = api.order(&id).await;
    assert_eq!(order["version"], json!(N + 1));
    assert_eq!(order["items"].as_array().map(Vec::len), Some(N + 2));
    assert_gapless_with_one_outbox_row_per_event(&api, &id, N as i64 + 1).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn under_heavy_contention_a_command_either_wins_or_answers_409_and_writes_nothing(
    pool: PgPool,
) {
    const N: usize = 12;
    let api = Api::new(pool);
    let id = api.place().await;

    let replies = add_concurrently(&api, &id, N).await;
    let mut won = 0;
    for reply in &replies {
        match reply.status {
            StatusCode::OK => won += 1,
            StatusCode::CONFLICT => assert_problem(reply, 409, "concurrency-conflict"),
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert!(won >= 1);
    let order = api.order(&id).await;
    assert_eq!(order["version"], json!(won + 1));
    assert_gapless_with_one_outbox_row_per_event(&api, &id, won as i64 + 1).await;
}

// ---------------------------------------------------------------------------------------
// 503
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_database_answers_503_with_retry_after() {
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .expect("a valid URL");
    let router = build_router(pool, &ServiceSettings::default()).expect("the router builds");
    let id = Uuid::now_v7();

    for call in [
        Call::post("/orders", &order_body()),
        Call::post("/orders", &order_body()).header("idempotency-key", "k"),
        Call::post(format!("/orders/{id}/items"), &item("sku-1", 1, 1)),
        Call::get(format!("/orders/{id}")),
        Call::get(format!("/orders/{id}/history")),
        Call::get("/readyz"),
    ] {
        let description = call.describe();
        let reply = send(router.clone(), call).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{description}: {}",
            reply.text()
        );
        assert_problem(&reply, 503, "unavailable");
        assert!(reply.header("retry-after").is_some(), "{description}");
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("127.0.0.1"), "nothing internal: {detail}");
    }
    // Alive all the same.
    let health = send(router.clone(), Call::get("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
}
