//! The consumer side of the contract, on a real broker and a real PostgreSQL: the
//! transactional inbox of `order-events` keeps a consumer's effect exactly once across
//! a crash between its database commit and its offset commit, and `order-events tail`
//! prints every event with the crate's dedupe and gap verdicts.

use std::collections::HashMap;
use std::time::Duration;

use e2e::processes::workspace_binary;
use e2e::{brokers, Received, System};
use order_events::{PgInbox, Verdict};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Places an order and adds an item: two events. Returns the order id.
async fn two_events(system: &System, customer: &str) -> Uuid {
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(super::new_order(customer)),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id: Uuid = body["orderId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("orderId");
    let (status, body) = system
        .send(
            Method::POST,
            &format!("/orders/{id}/items"),
            Some(json!({"productId": "sku-2", "quantity": 1, "unitPrice": 150000})),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    id
}

/// The messages of `orders`, read from the topic once `count` of them are there.
async fn messages_of(system: &System, orders: &[Uuid], count: usize) -> Vec<Received> {
    let keys: Vec<String> = orders.iter().map(Uuid::to_string).collect();
    let mine = |m: &Received| keys.contains(&m.key);
    let received = system
        .consume(Duration::from_secs(30), |r| {
            r.iter().filter(|m| mine(m)).count() >= count
        })
        .await;
    let mine: Vec<Received> = received.into_iter().filter(|m| mine(m)).collect();
    assert_eq!(mine.len(), count, "{mine:#?}");
    mine
}

/// One consumer process of group `group`: reads `count` messages of `orders`, and for
/// each applies its effect (one more event counted for the order: not idempotent by
/// itself) through the inbox, in one transaction per message; commits its offsets
/// only when `commit_offsets`. Returns the verdicts.
async fn consume_once(
    system: &System,
    group: &str,
    orders: &[Uuid],
    count: usize,
    commit_offsets: bool,
) -> Vec<Verdict> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[&system.topic]).expect("subscribed");
    let inbox = PgInbox::new("totals");
    let mut verdicts = Vec::new();
    while verdicts.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("messages within 30 s")
            .expect("a message");
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        if !orders.iter().any(|order| order.to_string() == key) {
            continue;
        }
        let event = order_events::decode_message(&message).expect("an order event");
        let mut tx = system.pool.begin().await.expect("a transaction");
        let verdict = inbox
            .check_in(&mut tx, &event)
            .await
            .expect("the inbox answers");
        if verdict == Verdict::Apply {
            sqlx::query(
                "INSERT INTO consumer_totals (order_id, events) VALUES ($1, 1)
                 ON CONFLICT (order_id) DO UPDATE SET events = consumer_totals.events + 1",
            )
            .bind(event.aggregate_id)
            .execute(&mut *tx)
            .await
            .expect("the effect");
        }
        tx.commit().await.expect("committed");
        if commit_offsets {
            consumer
                .commit_message(&message, rdkafka::consumer::CommitMode::Sync)
                .expect("offset committed");
        }
        verdicts.push(verdict);
    }
    verdicts
}

async fn totals(system: &System) -> HashMap<Uuid, i64> {
    sqlx::query_as::<_, (Uuid, i64)>("SELECT order_id, events FROM consumer_totals")
        .fetch_all(&system.pool)
        .await
        .expect("totals")
        .into_iter()
        .collect()
}

#[tokio::test]
async fn a_consumer_killed_between_its_effect_and_its_offset_commit_changes_nothing_on_redelivery()
{
    let system = System::start(1).await;
    // The consumer's tables; in production they live in the consumer's own database.
    PgInbox::create_table(&system.pool)
        .await
        .expect("the inbox table");
    sqlx::query("CREATE TABLE consumer_totals (order_id uuid PRIMARY KEY, events bigint NOT NULL)")
        .execute(&system.pool)
        .await
        .expect("the effect's table");
    let orders = [
        two_events(&system, "c-in-1").await,
        two_events(&system, "c-in-2").await,
    ];
    messages_of(&system, &orders, 4).await;
    let group = format!("inbox-{}", Uuid::now_v7());

    // Applies all four, commits its database work, and dies before committing offsets.
    let first = consume_once(&system, &group, &orders, 4, false).await;
    assert_eq!(first, [Verdict::Apply; 4]);
    let after_first = totals(&system).await;
    assert_eq!(after_first.values().copied().collect::<Vec<_>>(), [2, 2]);

    // Its successor in the group gets the same four again: the inbox knows them all.
    let second = consume_once(&system, &group, &orders, 4, true).await;
    assert_eq!(second, [Verdict::Duplicate; 4]);
    assert_eq!(
        totals(&system).await,
        after_first,
        "the redelivery changed nothing"
    );
    system.stop().await;
}

#[tokio::test]
async fn order_events_tail_prints_each_event_with_dedupe_and_gap_reports() {
    let system = System::start(1).await;
    let order = two_events(&system, "c-tail").await;
    let published = messages_of(&system, &[order], 2).await;

    // A redelivery of the second event, and an event three versions ahead (a gap).
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("a producer");
    let second = &published[1];
    let mut ahead = second.value.clone();
    let ahead_id = Uuid::now_v7().to_string();
    ahead["version"] = json!(5);
    ahead["eventId"] = json!(ahead_id);
    for (value, event_id) in [
        (second.value.clone(), second.headers["ce_id"].clone()),
        (ahead, ahead_id),
    ] {
        let mut headers = OwnedHeaders::new();
        for (name, header) in &second.headers {
            let header = if name == "ce_id" { &event_id } else { header };
            headers = headers.insert(Header {
                key: name,
                value: Some(header.as_str()),
            });
        }
        let payload = value.to_string();
        producer
            .send(
                // The order's own partition, as the relay published it there.
                FutureRecord::to(&system.topic)
                    .partition(second.partition)
                    .key(&second.key)
                    .payload(&payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }

    let tail = |format: &str| {
        std::process::Command::new(workspace_binary("order-events"))
            .args([
                "tail",
                "--from-beginning",
                "--limit",
                "4",
                "--idle-seconds",
                "20",
            ])
            .args(["--order", &order.to_string(), "--format", format])
            .env("KAFKA_BROKERS", brokers())
            .env("ORDERS_TOPIC", &system.topic)
            .output()
            .expect("order-events runs")
    };
    let json = tail("json");
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let verdicts: Vec<(&str, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap_or_default(),
                l["event"]["version"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [("apply", 1), ("apply", 2), ("duplicate", 2), ("gap", 5)]
    );
    assert_eq!(lines[3]["gap"], json!({"expected": 3, "got": 5}));
    assert_eq!(
        lines[0]["event"], published[0].value,
        "the event as published"
    );

    let text = tail("text");
    let text = String::from_utf8_lossy(&text.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("OrderCreated") && lines[0].contains(&order.to_string()),
        "{text}"
    );
    assert!(lines[2].contains("duplicate"), "{text}");
    assert!(lines[3].contains("GAP: expected v3, got v5"), "{text}");
    system.stop().await;
}
