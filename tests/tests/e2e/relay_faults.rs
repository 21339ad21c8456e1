//! The relay's guarantees, each proven by injecting the fault: relays killed with
//! `kill -9` at chosen moments and at random, several relays sharing the outbox, the
//! broker down, frozen and started late, poison rows, a transaction that commits
//! late, a transaction rolled back, SIGTERM, replays, and wake-up by NOTIFY.
//!
//! Every test ends with [`check_delivery`]: every committed event reached Kafka at
//! least once, nothing else did, and each order's events are in version order once
//! redeliveries (same eventId) are dropped.

use std::sync::Arc;
use std::time::Duration;

use application::{EventEnvelope, EventMetadata, EventStore};
use chrono::Utc;
use domain::{
    Address, AddressLine, City, CountryCode, Currency, CustomerId, CustomerInfo, CustomerName,
    DiscountTable, OrderFactory, OrderId, OrderLine, PhoneNumber, PlaceOrder, ProductId, Quantity,
    UnitPrice,
};
use e2e::processes::{free_port, relay_cli, Broker, RelayProcess};
use e2e::System;
use order_postgres::PgEventStore;
use serde_json::Value;
use uuid::Uuid;

use super::{all_seen, check_delivery, lifecycle};

async fn outbox_rows(system: &System) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&system.pool)
        .await
        .expect("count")
}

pub(super) fn spawn_relay(system: &System, extra_env: &[(&str, &str)]) -> RelayProcess {
    RelayProcess::spawn(
        &system.database_url,
        &e2e::brokers(),
        &system.topic,
        extra_env,
    )
}

/// The events of a new order, as the use case would record them, not yet stored.
fn placed_order_events() -> (OrderId, Vec<EventEnvelope>) {
    let id = OrderId::from_uuid(Uuid::now_v7());
    let address = Address::new(
        AddressLine::parse("1 Lê Lợi").expect("line1"),
        None,
        City::parse("Huế").expect("city"),
        None,
        CountryCode::parse("VN").expect("country"),
    );
    let customer = CustomerInfo::new(
        CustomerId::parse("c-late").expect("id"),
        CustomerName::parse("Late").expect("name"),
        PhoneNumber::parse("1").expect("phone"),
        address,
    );
    let line = OrderLine::new(
        ProductId::parse("sku-1").expect("sku"),
        Quantity::new(1).expect("qty"),
        UnitPrice::new(100).expect("price"),
    );
    let factory = OrderFactory::new(Arc::new(DiscountTable::default()));
    let mut order = factory
        .place(
            PlaceOrder {
                id,
                customer,
                currency: Currency::parse("VND").expect("currency"),
                items: vec![line],
                discount_codes: vec![],
            },
            Utc::now(),
        )
        .expect("place");
    let metadata = EventMetadata {
        user_id: None,
        correlation_id: "late".into(),
        causation_id: "late".into(),
    };
    let events = order
        .take_events()
        .into_iter()
        .map(|e| EventEnvelope::new(id, e, metadata.clone(), None))
        .collect();
    (id, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_whose_transaction_commits_late_with_a_lower_id_is_still_published() {
    let system = System::start(1).await;
    // A transaction takes its outbox id now and stays open...
    let (late, tx) = open_late_transaction(&system).await;
    let late_id: i64 = sqlx::query_scalar("SELECT last_value FROM outbox_id_seq")
        .fetch_one(&system.pool)
        .await
        .expect("seq");

    // ...while later transactions commit and are published, with higher ids.
    for n in 0..5 {
        lifecycle(&system, n).await;
    }
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let highest: i64 = sqlx::query_scalar("SELECT last_value FROM outbox_id_seq")
        .fetch_one(&system.pool)
        .await
        .expect("seq");
    assert!(
        highest > late_id,
        "rows after the open transaction's were published first"
    );

    // A relay that kept a cursor (id > last published) would now skip it.
    tx.commit().await.expect("commit");
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    assert!(
        received.iter().any(|m| m.key == late.to_string()),
        "the late row was published"
    );
    system.stop().await;
}

/// Opens a transaction that writes a new order's first event and outbox row (taking
/// an outbox id now) and stays open: a writer whose commit is slow (written by hand,
/// the service's own unit of work is one statement).
async fn open_late_transaction(
    system: &System,
) -> (OrderId, sqlx::Transaction<'static, sqlx::Postgres>) {
    let (late, events) = placed_order_events();
    let mut tx = system.pool.begin().await.expect("begin");
    for event in &events {
        sqlx::query(
            "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, \
                                 schema_version, payload, metadata, occurred_at) \
             VALUES ($1, $2, 'Order', $3, $4, $5, $6, $7, $8)",
        )
        .bind(event.event_id)
        .bind(late.as_uuid())
        .bind(event.version as i64)
        .bind(event.event_type())
        .bind(event.schema_version() as i32)
        .bind(event.payload())
        .bind(serde_json::to_value(&event.metadata).expect("metadata"))
        .bind(event.occurred_at)
        .execute(&mut *tx)
        .await
        .expect("insert the event");
    }
    order_postgres::outbox::insert(&mut tx, &events)
        .await
        .expect("insert the outbox row");
    (late, tx)
}

/// Rows committed while a batch waits for the broker must not be claimed past a row
/// that committed late with a lower id (a claim reading after a cursor past the batch
/// in flight would): here the late row commits, and its order's next event is committed
/// and wakes the relay, while the batch is held in flight by a frozen broker. The
/// serial cycle claims them after the batch; a pipelined one (ADR 011) claimed them at
/// once, skipping the rows in flight, and failed this test when given a cursor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_made_while_a_batch_is_in_flight_does_not_pass_over_a_late_commit() {
    let system = System::start(0).await;
    let (broker, relay) = relay_on_own_broker(
        &system,
        &[
            ("RELAY_MESSAGE_TIMEOUT_MS", "60000"),
            ("RELAY_POLL_INTERVAL_MS", "1000"),
        ],
    )
    .await;
    lifecycle(&system, 0).await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    // The late row takes its id first; then an order is created while the broker is
    // frozen, so its batch (higher ids) is claimed and stays in flight.
    let (late, tx) = open_late_transaction(&system).await;
    broker.freeze();
    lifecycle_start(&system, "c-in-flight").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The late row commits below the batch in flight, and its order's next event is
    // committed (a higher id again), which wakes the relay during its cycle.
    tx.commit().await.expect("commit the late transaction");
    let (status, body) = system
        .send(
            reqwest::Method::POST,
            &format!("/orders/{late}/items"),
            Some(serde_json::json!({"productId": "sku-2", "quantity": 1, "unitPrice": 5})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        outbox_rows(&system).await >= 3,
        "nothing is deleted while the broker does not acknowledge"
    );
    broker.thaw();

    let received = drained_and_delivered(&system, &broker, &relay).await;
    let late_versions: Vec<i64> = received
        .iter()
        .filter(|m| m.key == late.to_string())
        .filter_map(|m| m.value["version"].as_i64())
        .collect();
    assert_eq!(
        late_versions.first(),
        Some(&1),
        "the late order's first event came first: {late_versions:?}"
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolled_back_transaction_is_never_published() {
    let system = System::start(1).await;
    let store = PgEventStore::new(system.pool.clone());
    let (rolled_back, events) = placed_order_events();
    {
        let mut uow = store.begin().await.expect("begin");
        uow.append(rolled_back, 0, &events).await.expect("append");
        uow.enqueue(&events).await.expect("enqueue");
        // Dropped without commit: rolled back.
    }
    lifecycle(&system, 1).await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    assert!(
        received.iter().all(|m| m.key != rolled_back.to_string()),
        "a rolled-back event was published"
    );
    system.stop().await;
}

/// Kills a relay with `kill -9` while it pauses at `phase`, then checks that nothing
/// was deleted and that a new relay delivers everything.
async fn kill_during(phase: &str) -> (Vec<(Uuid, i64, Uuid)>, Vec<e2e::Received>) {
    let system = System::start(0).await;
    for n in 0..6 {
        lifecycle(&system, n).await;
    }
    let committed = system.committed_events().await;
    let waiting = outbox_rows(&system).await;
    let mut relay = spawn_relay(&system, &[("RELAY_FAULT_PAUSE", &format!("{phase}:30000"))]);
    relay
        .wait_for_log("fault-injection pause", Duration::from_secs(30))
        .await;
    relay.kill9();
    assert_eq!(
        outbox_rows(&system).await,
        waiting,
        "a relay killed before its commit deleted nothing"
    );

    let _successor = spawn_relay(&system, &[]);
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    // Read until every event was seen, and its repeats too when the batch was acknowledged.
    let repeats = if phase == "after-ack" { 2 } else { 1 };
    let received = {
        let seen = all_seen(&committed);
        system
            .consume(Duration::from_secs(30), |r| {
                seen(r) && r.len() >= repeats * committed.len()
            })
            .await
    };
    check_delivery(&committed, &received);
    system.stop().await;
    (committed, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_produce_and_acknowledgment_loses_nothing() {
    kill_during("after-produce").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_between_acknowledgment_and_delete_loses_nothing_and_only_repeats_its_batch()
{
    let (committed, received) = kill_during("after-ack").await;
    // The killed relay's batch was acknowledged, then sent again by its successor.
    assert!(
        received.len() >= 2 * committed.len(),
        "{} messages for {} events",
        received.len(),
        committed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_killed_at_random_while_commands_flow_lose_nothing_and_keep_order() {
    let system = Arc::new(System::start(0).await);
    let mut relays: Vec<RelayProcess> = (0..3).map(|_| spawn_relay(&system, &[])).collect();
    let load = {
        let system = system.clone();
        tokio::spawn(async move {
            for round in 0..8 {
                futures::future::join_all((0..4).map(|n| lifecycle(&system, round * 4 + n))).await;
            }
        })
    };
    for kill in 0..6 {
        tokio::time::sleep(Duration::from_millis(400 + 150 * kill)).await;
        let victim = (kill as usize * 7 + 1) % relays.len();
        relays[victim].kill9();
        relays[victim] = spawn_relay(&system, &[]);
    }
    load.await.expect("load");
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let committed = system.committed_events().await;
    let expected: usize = (0..32).map(|n| if n % 3 == 0 { 6 } else { 7 }).sum();
    assert_eq!(committed.len(), expected, "every lifecycle committed");
    let received = system
        .consume(Duration::from_secs(60), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    drop(relays);
    if let Ok(system) = Arc::try_unwrap(system) {
        system.stop().await;
    }
}

fn status(system: &System) -> Value {
    let output = relay_cli(&system.database_url, &["status"]);
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

fn partitions_per_relay(status: &Value) -> Vec<usize> {
    status["relays"]
        .as_array()
        .map(|relays| {
            relays
                .iter()
                .map(|r| r["partitions"].as_array().map_or(0, Vec::len))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_status(system: &System, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = status(system);
        if done(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never saw {what}; last status: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relays_split_the_partitions_and_a_dead_relays_partitions_are_taken_over() {
    let system = System::start(0).await;
    let mut first = spawn_relay(&system, &[]);
    let second = spawn_relay(&system, &[]);
    wait_for_status(&system, "two relays with 32 partitions each", |s| {
        partitions_per_relay(s) == vec![32, 32]
    })
    .await;
    let third = spawn_relay(&system, &[]);
    let spread = wait_for_status(&system, "three relays sharing 64 partitions", |s| {
        let mut sizes = partitions_per_relay(s);
        sizes.sort_unstable();
        sizes == vec![21, 21, 22]
    })
    .await;
    assert_eq!(spread["relays"].as_array().map(Vec::len), Some(3));

    first.kill9();
    wait_for_status(&system, "the dead relay's partitions taken over", |s| {
        partitions_per_relay(s) == vec![32, 32]
    })
    .await;
    for n in 0..6 {
        lifecycle(&system, n).await;
    }
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    assert_eq!(
        second.metric("relay_owned_partitions").await
            + third.metric("relay_owned_partitions").await,
        64.0
    );
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

/// Waits until `relay` says it owns `partitions` partitions, for at most `within`.
async fn wait_for_owned(relay: &RelayProcess, partitions: f64, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    while relay.metric("relay_owned_partitions").await != partitions {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never owned {partitions} partitions within {within:?}; log:\n{}",
            relay.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_relays_partitions_are_taken_over_without_waiting_for_its_time_out() {
    // A member time-out far longer than the wait below: the survivor can only take the
    // dead relay's partitions in time because the dead relay's member lock was released
    // when its connection closed (the heartbeat alone would keep it alive for 60 s).
    let ttl = [("RELAY_MEMBER_TTL_MS", "60000")];
    let system = System::start(0).await;
    let mut first = spawn_relay(&system, &ttl);
    first
        .wait_for_log("relay partitions assigned", Duration::from_secs(20))
        .await;
    let second = spawn_relay(&system, &ttl);
    // The heartbeat runs every TTL / 5 = 12 s, so both see each other within 12 s.
    wait_for_owned(&second, 32.0, Duration::from_secs(30)).await;
    wait_for_owned(&first, 32.0, Duration::from_secs(30)).await;

    first.kill9();
    wait_for_owned(&second, 64.0, Duration::from_secs(30)).await;
    for n in 0..6 {
        lifecycle(&system, n).await;
    }
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_broker_down_the_relay_backs_off_keeps_every_row_and_resumes_by_itself() {
    let system = System::start(0).await;
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let relay = RelayProcess::spawn(
        &system.database_url,
        &brokers,
        &system.topic,
        &[
            ("RELAY_MESSAGE_TIMEOUT_MS", "500"),
            ("RELAY_MAX_BACKOFF_MS", "1000"),
        ],
    );
    for n in 0..4 {
        lifecycle(&system, n).await;
    }
    let committed = system.committed_events().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        relay.readyz().await,
        503,
        "not ready while it cannot publish"
    );
    let failures = relay
        .metric("relay_failures_total{kind=\"delivery\"}")
        .await;
    assert!(
        (1.0..=20.0).contains(&failures),
        "backs off instead of spinning: {failures} failed cycles in 5 s"
    );
    assert_eq!(
        outbox_rows(&system).await,
        committed.len() as i64,
        "no row dropped"
    );

    let broker = Broker::start(port);
    create_topic_on(&broker.addr, &system.topic).await;
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    assert_eq!(relay.readyz().await, 200, "ready again once it publishes");
    let received = system
        .consume_on(&broker.addr, Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

async fn create_topic_on(brokers: &str, topic: &str) {
    e2e::system::create_topic_at(brokers, topic, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_broker_delays_publishing_but_loses_nothing() {
    let system = System::start(0).await;
    let (broker, relay) = relay_on_own_broker(
        &system,
        &[
            ("RELAY_MESSAGE_TIMEOUT_MS", "1000"),
            ("RELAY_MAX_BACKOFF_MS", "1000"),
        ],
    )
    .await;
    lifecycle(&system, 0).await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    broker.freeze();
    for n in 1..4 {
        lifecycle(&system, n).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        outbox_rows(&system).await > 0,
        "nothing is deleted while the broker does not acknowledge"
    );
    assert_eq!(relay.readyz().await, 503);
    broker.thaw();

    drained_and_delivered(&system, &broker, &relay).await;
    system.stop().await;
}

/// A broker of the test's own (so it can be frozen) with the system's topic, and a
/// relay publishing to it.
async fn relay_on_own_broker(system: &System, env: &[(&str, &str)]) -> (Broker, RelayProcess) {
    let broker = Broker::start(free_port());
    create_topic_on(&broker.addr, &system.topic).await;
    let relay = RelayProcess::spawn(&system.database_url, &broker.addr, &system.topic, env);
    (broker, relay)
}

/// After a thaw: waits (60 s at most) until the outbox is empty, then reads the topic
/// until every committed event was seen and checks the delivery; returns what was read.
async fn drained_and_delivered(
    system: &System,
    broker: &Broker,
    relay: &RelayProcess,
) -> Vec<e2e::Received> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while outbox_rows(system).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never resumed after the broker thawed; relay log:\n{}",
            relay.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let committed = system.committed_events().await;
    let received = system
        .consume_on(&broker.addr, Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_row_is_parked_and_holds_back_only_its_own_order_until_an_operator_acts() {
    let system = System::start(0).await;
    let poisoned = lifecycle_start(&system, "c-poison").await;
    let broken = lifecycle_start(&system, "c-broken").await;
    let healthy = lifecycle_start(&system, "c-healthy").await;
    // Too large for the producer (1 MB), yet valid JSON; and a row that is not JSON.
    sqlx::query(
        "UPDATE outbox SET message = message || repeat(' ', 2000000) WHERE aggregate_id = $1",
    )
    .bind(poisoned)
    .execute(&system.pool)
    .await
    .expect("poison");
    let original: String = sqlx::query_scalar("SELECT message FROM outbox WHERE aggregate_id = $1")
        .bind(broken)
        .fetch_one(&system.pool)
        .await
        .expect("message");
    sqlx::query("UPDATE outbox SET message = '{not json' WHERE aggregate_id = $1")
        .bind(broken)
        .execute(&system.pool)
        .await
        .expect("break");
    for order in [poisoned, broken, healthy] {
        let (status, _) = system
            .send(
                reqwest::Method::POST,
                &format!("/orders/{order}/items"),
                Some(serde_json::json!({"productId": "sku-9", "quantity": 1, "unitPrice": 5})),
                &[],
            )
            .await;
        assert_eq!(status, 200);
    }

    let relay = spawn_relay(
        &system,
        &[("RELAY_MAX_ATTEMPTS", "3"), ("RELAY_MAX_BACKOFF_MS", "200")],
    );
    let parked = wait_for_status(&system, "two parked rows", |s| s["parked"] == 2).await;
    let parked_orders: Vec<&str> = parked["parkedRows"]
        .as_array()
        .expect("parked")
        .iter()
        .filter_map(|p| p["orderId"].as_str())
        .collect();
    assert!(
        parked_orders.contains(&poisoned.to_string().as_str())
            && parked_orders.contains(&broken.to_string().as_str())
    );
    assert!(parked["parkedRows"][0]["lastError"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(parked["parkedRows"][0]["attempts"], 3);
    // Only the healthy order flowed; each parked order's second event is held back.
    wait_until_rows(&system, 4).await;
    assert!(
        relay.log_text().contains("cannot be published"),
        "the failure is logged with its event id"
    );

    // The operator gives up on the poison row: it and the event held back behind it go
    // to the dead letters with the reason (a gap, by choice), and the order flows again.
    relay_cli(
        &system.database_url,
        &[
            "skip-parked",
            "--order",
            &poisoned.to_string(),
            "--reason",
            "too large for the broker",
        ],
    );
    // The broken row is repaired and retried: both its events flow, in order.
    sqlx::query("UPDATE outbox SET message = $2 WHERE aggregate_id = $1 AND version = 1")
        .bind(broken)
        .bind(&original)
        .execute(&system.pool)
        .await
        .expect("repair");
    relay_cli(&system.database_url, &["retry-parked", "--all"]);
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let dead_letters: Vec<(uuid::Uuid, i64, Option<String>)> =
        sqlx::query_as("SELECT aggregate_id, version, reason FROM outbox_dead_letters ORDER BY id")
            .fetch_all(&system.pool)
            .await
            .expect("dead letters");
    let reason = Some("too large for the broker".to_owned());
    assert_eq!(
        dead_letters,
        vec![(poisoned, 1, reason.clone()), (poisoned, 2, reason)]
    );
    let recorded: Vec<(String, String)> =
        sqlx::query_as("SELECT action, user_id FROM admin_actions ORDER BY id")
            .fetch_all(&system.pool)
            .await
            .expect("actions");
    assert_eq!(
        recorded.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["outbox.skip", "outbox.retry"],
        "each subcommand is recorded"
    );
    assert!(recorded.iter().all(|(_, user)| user.starts_with("cli:")));

    let committed: Vec<_> = system
        .committed_events()
        .await
        .into_iter()
        .filter(|(order, _, _)| *order != poisoned)
        .collect();
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    // The skipped events are the one gap, which the operator chose.
    assert!(
        received.iter().all(|m| m.key != poisoned.to_string()),
        "nothing of the skipped order was published"
    );
    check_delivery(&committed, &received);
    system.stop().await;
}

async fn lifecycle_start(system: &System, customer: &str) -> Uuid {
    let (status, body) = system
        .send(
            reqwest::Method::POST,
            "/orders",
            Some(super::new_order(customer)),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["orderId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("orderId")
}

async fn wait_until_rows(system: &System, rows: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while outbox_rows(system).await != rows {
        assert!(
            std::time::Instant::now() < deadline,
            "outbox never held exactly {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_a_relay_cleanly_and_it_leaves_the_membership() {
    let system = System::start(0).await;
    let mut relay = spawn_relay(&system, &[]);
    wait_for_status(&system, "one relay", |s| {
        partitions_per_relay(s) == vec![64]
    })
    .await;
    for n in 0..3 {
        lifecycle(&system, n).await;
    }
    let status = relay
        .terminate(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        relay.log_text()
    );
    assert!(relay.log_text().contains("outbox-relay stopped"));
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM relay_members")
        .fetch_one(&system.pool)
        .await
        .expect("count");
    assert_eq!(
        members, 0,
        "a stopped relay gives its partitions up at once"
    );

    let _successor = spawn_relay(&system, &[]);
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let committed = system.committed_events().await;
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_re_enqueues_an_orders_events_with_their_own_ids() {
    let system = System::start(1).await;
    let order = lifecycle(&system, 1).await;
    lifecycle(&system, 2).await;
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let output = relay_cli(&system.database_url, &["replay", "--order", &order]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "7 events re-enqueued"
    );
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;

    let committed = system.committed_events().await;
    let expected = committed.len() + 7;
    let received = system
        .consume(Duration::from_secs(30), |r| r.len() >= expected)
        .await;
    check_delivery(&committed, &received);
    let replayed = received.iter().filter(|m| m.key == order).count();
    assert_eq!(
        replayed, 14,
        "each of the order's 7 events twice, with the same eventId"
    );
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_wakes_an_idle_relay_without_waiting_for_its_poll() {
    let system = System::start(0).await;
    let relay = spawn_relay(&system, &[("RELAY_POLL_INTERVAL_MS", "120000")]);
    wait_for_status(&system, "the relay running", |s| {
        partitions_per_relay(s) == vec![64]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    lifecycle_start(&system, "c-wake").await;
    // The poll is two minutes away: only the NOTIFY of the commit can wake it.
    system.wait_for_empty_outbox(Duration::from_secs(20)).await;
    assert!(relay.metric("relay_published_total").await >= 1.0);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_that_wakes_the_relay_during_a_cycle_is_published_right_after_it() {
    let system = System::start(0).await;
    // Each cycle that publishes pauses 1.5 s after queueing its batch; the poll is two
    // minutes away, so only a kept wake-up can start the next cycle.
    let relay = spawn_relay(
        &system,
        &[
            ("RELAY_POLL_INTERVAL_MS", "120000"),
            ("RELAY_FAULT_PAUSE", "after-produce:1500"),
        ],
    );
    wait_for_status(&system, "the relay running", |s| {
        partitions_per_relay(s) == vec![64]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    lifecycle_start(&system, "c-first").await;
    // The first order's cycle is paused: its claim was read before the second commit.
    relay
        .wait_for_log("fault-injection pause", Duration::from_secs(20))
        .await;
    let second = lifecycle_start(&system, "c-second").await;
    assert_eq!(
        outbox_rows(&system).await,
        2,
        "both rows wait while the cycle runs"
    );
    system.wait_for_empty_outbox(Duration::from_secs(20)).await;
    assert_eq!(relay.metric("relay_published_total").await, 2.0);
    let received = system
        .consume(Duration::from_secs(20), |r| r.len() >= 2)
        .await;
    assert!(
        received.iter().any(|m| m.key == second.to_string()),
        "the order committed during the cycle was published"
    );
    system.stop().await;
}
