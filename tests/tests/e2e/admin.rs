//! The administration routes on the real system: rows parked for real by the relay
//! binary (a message larger than the producer's 1 MB limit, refused
//! `RELAY_MAX_ATTEMPTS` times), diagnosed with `GET /admin/outbox` and
//! `/admin/outbox/parked`, retried and skipped over HTTP, their orders then flowing in
//! order to a real consumer; a replay reaching the consumer with the original
//! eventIds; a rebuild equal to the read model the projector built incrementally.

use std::time::{Duration, Instant};

use e2e::System;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use super::relay_faults::spawn_relay;
use super::{all_seen, check_delivery, lifecycle};

async fn get(system: &System, path: &str) -> Value {
    let (status, body) = system.send(Method::GET, path, None, &[]).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn post(system: &System, path: &str, body: Value) -> (u16, Value) {
    system
        .send(Method::POST, path, Some(body), &[("X-User-Id", "on-call")])
        .await
}

/// Polls `GET path` until `done` holds.
async fn wait_for(system: &System, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = get(system, path).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn place(system: &System, customer: &str) -> Uuid {
    let (status, body) = post(system, "/orders", e2e::order_body(customer)).await;
    assert_eq!(status, 201, "{body}");
    body["orderId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("orderId")
}

async fn add_item(system: &System, order: Uuid, product: &str) {
    let (status, body) = post(
        system,
        &format!("/orders/{order}/items"),
        json!({"productId": product, "quantity": 1, "unitPrice": 5}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_diagnoses_retries_and_skips_parked_rows_over_http() {
    let system = System::start(0).await;
    let repaired = place(&system, "c-repaired").await;
    let skipped = place(&system, "c-skipped").await;
    let healthy = place(&system, "c-healthy").await;
    let original = system.poison_first_row(repaired).await;
    system.poison_first_row(skipped).await;
    for order in [repaired, skipped, healthy] {
        add_item(&system, order, "sku-9").await;
    }
    let relay = spawn_relay(
        &system,
        &[("RELAY_MAX_ATTEMPTS", "2"), ("RELAY_MAX_BACKOFF_MS", "200")],
    );

    let parked = wait_for(&system, "/admin/outbox/parked", "two parked rows", |p| {
        p["items"].as_array().is_some_and(|items| items.len() == 2)
    })
    .await;
    let items = parked["items"].as_array().expect("items");
    let row_of = |order: Uuid| {
        items
            .iter()
            .find(|i| i["orderId"] == json!(order))
            .unwrap_or_else(|| panic!("{order} is not parked: {parked:#}"))
    };
    let repaired_row = row_of(repaired)["outboxId"].as_i64().expect("outboxId");
    assert_eq!(row_of(skipped)["version"], 1);
    assert_eq!(row_of(skipped)["attempts"], 2);
    assert!(
        row_of(skipped)["lastError"].as_str().is_some_and(
            |e| e.to_lowercase().contains("size") || e.to_lowercase().contains("large")
        ),
        "the producer's refusal is shown: {parked:#}"
    );

    // The healthy order flowed; each parked order's second event is held back behind it.
    let status = wait_for(
        &system,
        "/admin/outbox",
        "only the parked orders left",
        |s| s["backlog"] == 4,
    )
    .await;
    assert_eq!(status["parked"], 2);
    assert!(status["oldestAgeSeconds"].as_f64().expect("age") > 0.0);
    let relays = status["relays"].as_array().expect("relays");
    assert_eq!(relays.len(), 1, "{status:#}");
    let relay_id = relays[0]["relayId"].clone();
    assert_eq!(relays[0]["partitions"].as_array().map(Vec::len), Some(64));
    let partitions = status["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 64);
    assert!(partitions.iter().all(|p| p["owner"] == relay_id));
    assert_eq!(
        partitions
            .iter()
            .map(|p| p["waiting"].as_i64().unwrap_or(0))
            .sum::<i64>(),
        4
    );

    // Retry after repairing the row: both its events flow, in order.
    system.repair_first_row(repaired, &original).await;
    let (code, body) = post(
        &system,
        &format!("/admin/outbox/parked/{repaired_row}/retry"),
        json!({}),
    )
    .await;
    assert_eq!((code, body), (200, json!({"retried": 1})));
    // Skip the other: its parked and held-back rows go to the dead letters; its next
    // event flows.
    let (code, body) = post(
        &system,
        &format!("/admin/orders/{skipped}/outbox/skip"),
        json!({"reason": "payload cannot be fixed"}),
    )
    .await;
    assert_eq!((code, body), (200, json!({"skipped": 2})));
    add_item(&system, skipped, "sku-10").await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    let committed: Vec<_> = system
        .committed_events()
        .await
        .into_iter()
        .filter(|(order, version, _)| !(*order == skipped && *version <= 2))
        .collect();
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    let (gapped, rest): (Vec<_>, Vec<_>) = received
        .into_iter()
        .partition(|m| m.key == skipped.to_string());
    assert_eq!(
        gapped
            .iter()
            .map(|m| m.value["version"].clone())
            .collect::<Vec<_>>(),
        [json!(3)],
        "the skipped order's consumers see the gap, then its next event"
    );
    let committed: Vec<_> = committed
        .into_iter()
        .filter(|(o, _, _)| *o != skipped)
        .collect();
    check_delivery(&committed, &rest);

    let actions = get(&system, "/admin/actions").await;
    let listed: Vec<(&str, &str, &str)> = actions["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or_default(),
                a["userId"].as_str().unwrap_or_default(),
                a["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "outbox.skip",
                "on-call",
                "moved 2 rows to the dead letters: payload cannot be fixed"
            ),
            ("outbox.retry", "on-call", "retried 1 row"),
        ]
    );
    drop(relay);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_over_http_reaches_a_consumer_with_the_original_event_ids() {
    let system = System::start(1).await;
    let order = lifecycle(&system, 1).await;
    lifecycle(&system, 2).await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    let (code, accepted) = post(&system, "/admin/replay", json!({"orderId": order})).await;
    assert_eq!(code, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().expect("jobId");
    let job = wait_for(
        &system,
        &format!("/admin/jobs/{job_id}"),
        "the replay done",
        |j| j["state"] != "running",
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(
        (job["processed"].clone(), job["total"].clone()),
        (json!(7), json!(7))
    );
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    let committed = system.committed_events().await;
    let expected = committed.len() + 7;
    let received = system
        .consume(Duration::from_secs(30), |r| r.len() >= expected)
        .await;
    check_delivery(&committed, &received);
    let ids: Vec<&str> = received
        .iter()
        .filter(|m| m.key == order)
        .filter_map(|m| m.value["eventId"].as_str())
        .collect();
    assert_eq!(ids.len(), 14, "each of the order's 7 events twice");
    assert_eq!(
        ids[..7],
        ids[7..],
        "the replay has the original eventIds, in order"
    );
    system.stop().await;
}

/// The read model's rows, comparable.
async fn summaries(system: &System) -> Vec<Value> {
    let rows: Vec<(Value,)> =
        sqlx::query_as("SELECT to_jsonb(s) FROM order_summaries s ORDER BY order_id")
            .fetch_all(&system.pool)
            .await
            .expect("summaries");
    rows.into_iter().map(|(row,)| row).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_over_http_equals_the_read_model_built_incrementally() {
    let system = System::start_with_projector(1).await;
    for n in 0..4 {
        lifecycle(&system, n).await;
    }
    let events = system.committed_events().await.len();
    let (_, orders) = system
        .send(Method::GET, "/orders?limit=100", None, &[])
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let versions: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(last_version), 0)::bigint FROM order_summaries",
        )
        .fetch_one(&system.pool)
        .await
        .expect("sum");
        if versions == events as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the projector never caught up: {orders}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let incremental = summaries(&system).await;
    assert_eq!(incremental.len(), 4);

    let (code, accepted) = post(&system, "/admin/projections/rebuild", json!({})).await;
    assert_eq!(code, 202, "{accepted}");
    let job_id = accepted["jobId"].as_str().expect("jobId");
    let job = wait_for(
        &system,
        &format!("/admin/jobs/{job_id}"),
        "the rebuild done",
        |j| j["state"] != "running",
    )
    .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["processed"], json!(events));
    assert_eq!(summaries(&system).await, incremental);
    system.stop().await;
}
