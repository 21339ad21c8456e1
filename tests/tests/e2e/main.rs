//! End-to-end: the real order service and outbox relay, on a fresh PostgreSQL database
//! and a real Kafka-protocol broker, read back by a real Kafka consumer.
//!
//! Run with `scripts/test.sh` (it starts the broker and sets `KAFKA_BROKERS`).

mod admin;
mod consumer;
mod grpc;
mod read_side;
mod relay_faults;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use e2e::{Received, System};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// [`e2e::order_body`] with the discount code `WELCOME10`.
fn new_order(customer: &str) -> Value {
    let mut body = e2e::order_body(customer);
    body["discountCodes"] = json!(["WELCOME10"]);
    body
}

/// Runs one order's lifecycle, including commands that must be rejected; returns its id.
async fn lifecycle(system: &System, n: usize) -> String {
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(new_order(&format!("c-{n}"))),
            &[("X-User-Id", "e2e")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["orderId"].as_str().expect("orderId").to_owned();
    let order = format!("/orders/{id}");

    // Rejected: ship before payment (409), a malformed item (422). Nothing may be published.
    let (status, _) = system
        .send(
            Method::POST,
            &format!("{order}/shipment"),
            Some(json!({"trackingNumber": "T", "carrier": "C"})),
            &[],
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = system
        .send(
            Method::POST,
            &format!("{order}/items"),
            Some(json!({"productId": "sku-2", "quantity": 0, "unitPrice": 1})),
            &[],
        )
        .await;
    assert_eq!(status, 422);

    let ok = |(status, body): (u16, Value)| assert_eq!(status, 200, "{body}");
    ok(system
        .send(
            Method::POST,
            &format!("{order}/items"),
            Some(json!({"productId": "sku-2", "quantity": 1, "unitPrice": 50000})),
            &[],
        )
        .await);
    ok(system
        .send(
            Method::POST,
            &format!("{order}/items"),
            Some(json!({"productId": "sku-1", "quantity": 1, "unitPrice": 150000})),
            &[],
        )
        .await);
    ok(system
        .send(
            Method::PUT,
            &format!("{order}/delivery-address"),
            Some(json!({"line1": "2 Hai Bà Trưng", "city": "Hà Nội", "country": "VN"})),
            &[],
        )
        .await);
    ok(system
        .send(Method::DELETE, &format!("{order}/items/sku-2"), None, &[])
        .await);

    // Rejected: a payment below the total (422).
    let (status, _) = system
        .send(
            Method::POST,
            &format!("{order}/payment"),
            Some(json!({"paymentId": "p", "amount": 1, "method": "card"})),
            &[],
        )
        .await;
    assert_eq!(status, 422);

    match n % 3 {
        0 => ok(system
            .send(
                Method::POST,
                &format!("{order}/cancellation"),
                Some(json!({"reason": "changed my mind"})),
                &[],
            )
            .await),
        _ => {
            ok(system.send(Method::POST, &format!("{order}/payment"), Some(json!({"paymentId": format!("pay-{n}"), "amount": 405000, "method": "bank_transfer"})), &[]).await);
            if n % 3 == 1 {
                ok(system
                    .send(
                        Method::POST,
                        &format!("{order}/shipment"),
                        Some(json!({"trackingNumber": format!("VN{n}"), "carrier": "VNPost"})),
                        &[],
                    )
                    .await);
            } else {
                ok(system
                    .send(
                        Method::POST,
                        &format!("{order}/cancellation"),
                        Some(json!({"reason": "out of stock"})),
                        &[],
                    )
                    .await);
            }
        }
    }
    id
}

/// Checks what a consumer read against what was committed: every committed event at
/// least once, nothing else, keyed by order id, each order's events in version order.
fn check_delivery(committed: &[(Uuid, i64, Uuid)], received: &[Received]) {
    let committed_ids: HashSet<Uuid> = committed.iter().map(|(_, _, id)| *id).collect();
    let mut seen = HashSet::new();
    let mut next_version: HashMap<String, i64> = HashMap::new();
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for message in received {
        let event_id: Uuid = message.value["eventId"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("eventId");
        assert!(
            committed_ids.contains(&event_id),
            "event {event_id} on Kafka was never committed"
        );
        let aggregate = message.value["aggregateId"]
            .as_str()
            .expect("aggregateId")
            .to_owned();
        assert_eq!(message.key, aggregate, "the key is the order id");
        let partition = *partition_of
            .entry(aggregate.clone())
            .or_insert(message.partition);
        assert_eq!(
            partition, message.partition,
            "one order's events stay in one partition"
        );
        if !seen.insert(event_id) {
            continue; // a redelivery; consumers drop it by eventId
        }
        let version = message.value["version"].as_i64().expect("version");
        let expected = next_version.entry(aggregate.clone()).or_insert(1);
        assert_eq!(
            version, *expected,
            "order {aggregate}: version {version} arrived when {expected} was next"
        );
        *expected += 1;
    }
    let missing: Vec<_> = committed_ids.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "{} committed events never reached Kafka: {missing:?}",
        missing.len()
    );
}

fn all_seen(committed: &[(Uuid, i64, Uuid)]) -> impl Fn(&[Received]) -> bool + '_ {
    move |received: &[Received]| {
        let seen: HashSet<&str> = received
            .iter()
            .filter_map(|m| m.value["eventId"].as_str())
            .collect();
        committed
            .iter()
            .all(|(_, _, id)| seen.contains(id.to_string().as_str()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_of_many_orders_reaches_kafka_in_order_and_rejected_commands_produce_nothing(
) {
    let system = System::start(1).await;
    let orders = 60;
    let ids = futures::future::join_all((0..orders).map(|n| lifecycle(&system, n))).await;
    assert_eq!(ids.len(), orders);

    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let committed = system.committed_events().await;
    // 6 accepted commands per order, plus one more for those paid then shipped or cancelled.
    let expected: usize = (0..orders).map(|n| if n % 3 == 0 { 6 } else { 7 }).sum();
    assert_eq!(
        committed.len(),
        expected,
        "rejected commands wrote no event"
    );

    let received = system
        .consume(Duration::from_secs(60), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_carry_the_envelope_and_the_cloudevents_headers() {
    let system = System::start(1).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(new_order("c-headers")),
            &[
                ("X-User-Id", "user-456"),
                ("X-Correlation-Id", "txn-xyz"),
                ("traceparent", traceparent),
            ],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["orderId"].as_str().expect("orderId").to_owned();
    let (status, _) = system
        .send(
            Method::POST,
            &format!("/orders/{id}/payment"),
            Some(json!({"paymentId": "p-1", "amount": 270000, "method": "card"})),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    let (status, history) = system
        .send(Method::GET, &format!("/orders/{id}/history"), None, &[])
        .await;
    assert_eq!(status, 200);
    let stored: Vec<Value> = history["events"].as_array().expect("events").clone();
    assert_eq!(stored.len(), 2);

    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);

    for mut expected in stored {
        let event_id = expected["eventId"].as_str().expect("eventId").to_owned();
        let message = received
            .iter()
            .find(|m| m.value["eventId"] == event_id.as_str())
            .expect("published");
        // The history adds where and when the event was stored; Kafka gets neither.
        let fields = expected.as_object_mut().expect("object");
        assert!(fields.remove("recordedAt").is_some());
        assert!(fields.remove("position").is_some());
        assert_eq!(
            message.value, expected,
            "the Kafka value is the stored envelope"
        );
        let h = &message.headers;
        assert_eq!(h["ce_specversion"], "1.0");
        assert_eq!(h["ce_id"], event_id);
        assert_eq!(h["ce_type"], expected["eventType"].as_str().expect("type"));
        assert_eq!(h["ce_source"], "/orders");
        assert_eq!(h["ce_subject"], id);
        assert_eq!(h["ce_time"], expected["occurredAt"].as_str().expect("time"));
        assert_eq!(h["content-type"], "application/json");
        if expected["eventType"] == "OrderCreated" {
            assert_eq!(h["traceparent"], traceparent);
            assert_eq!(message.value["metadata"]["userId"], "user-456");
            assert_eq!(message.value["metadata"]["correlationId"], "txn-xyz");
            assert_eq!(message.value["payload"]["total"], 270000);
            assert_eq!(message.value["schemaVersion"], 1);
            assert_eq!(message.value["aggregateType"], "Order");
        } else {
            assert!(
                !h.contains_key("traceparent"),
                "no traceparent when the command had none"
            );
            assert_eq!(
                message.value["payload"],
                json!({"paymentId": "p-1", "amount": 270000, "method": "card"})
            );
        }
    }
    system.stop().await;
}

/// With authentication on, the user recorded in the events (and so on Kafka) is the
/// token's `sub`, whatever `X-User-Id` says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tokens_subject_is_the_user_in_the_kafka_metadata() {
    use order_api::auth::{expiry_in, Authenticator, Claims};
    let auth = Authenticator::jwt(b"an-e2e-secret-that-is-at-least-32-bytes").expect("a secret");
    let token = |sub: &str, role: &str, customer: Option<&str>| {
        auth.mint(&Claims {
            sub: sub.to_owned(),
            exp: expiry_in(Duration::from_secs(600)),
            iat: None,
            roles: vec![role.to_owned()],
            customer_id: customer.map(str::to_owned),
        })
        .expect("a token")
    };
    let customer = format!("Bearer {}", token("alice", "customer", Some("c-jwt")));
    let operator = format!("Bearer {}", token("olga", "operator", None));
    let settings = order_service::ServiceSettings {
        auth: auth.clone(),
        ..Default::default()
    };
    let system = System::start_with(1, &settings).await;

    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(new_order("c-jwt")),
            &[("Authorization", &customer), ("X-User-Id", "mallory")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["orderId"].as_str().expect("orderId").to_owned();
    let (status, body) = system
        .send(
            Method::POST,
            &format!("/orders/{id}/payment"),
            Some(json!({"paymentId": "p-1", "amount": 270000, "method": "card"})),
            &[("Authorization", &operator), ("X-User-Id", "mallory")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = system
        .send(Method::POST, "/orders", Some(new_order("c-jwt")), &[])
        .await;
    assert_eq!(status, 401, "no token, no order");

    let committed = system.committed_events().await;
    assert_eq!(committed.len(), 2);
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    let users: Vec<(&str, &str)> = received
        .iter()
        .map(|m| {
            (
                m.value["eventType"].as_str().unwrap_or_default(),
                m.value["metadata"]["userId"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [("OrderCreated", "alice"), ("PaymentProcessed", "olga")]
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_relays_share_one_outbox_without_breaking_per_order_order() {
    let system = System::start(3).await;
    let ids = futures::future::join_all((0..30).map(|n| lifecycle(&system, n))).await;
    assert_eq!(ids.len(), 30);
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(60), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_committed_while_the_relay_is_stopped_are_published_when_it_starts() {
    // The relay is not running: events pile up in the outbox and nothing is lost.
    let mut system = System::start(0).await;
    let id = lifecycle(&system, 1).await;
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&system.pool)
        .await
        .expect("count");
    assert_eq!(waiting, 7, "every event of order {id} waits in the outbox");
    let committed = system.committed_events().await;
    system.start_relays(1);
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}
