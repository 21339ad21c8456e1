//! Throughput of the pipeline on this machine, printed (nothing is asserted):
//!
//! 1. order creations per second through the HTTP API (concurrent clients, relay
//!    running), with p50/p99, beside `pgbench` running the same inserts (one event row
//!    and one outbox row per transaction) on the same database in the same run;
//! 2. a mixed lifecycle (create, then items added to a growing order) per second;
//! 3. latency at a steady 1,000 events/s through the HTTP API: commit to broker
//!    acknowledgment as the relay measures it (`relay_publish_latency_seconds`), and
//!    command sent to consumer receipt, measured by a consumer in this process;
//! 4. relay drain: a backlog of realistic outbox rows published and deleted, in events
//!    per second, beside raw `rdkafka` produce of the same messages to the same broker.
//!
//! Run with `scripts/bench.sh` (it starts PostgreSQL and a broker). Sizes:
//! `BENCH_COMMANDS` (default 20000, 0 skips 1–3), `BENCH_CLIENTS` (32),
//! `BENCH_RATE` (1000 events/s), `BENCH_SECONDS` (10), `BENCH_BACKLOG` (100000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::kafka::{KafkaPublisher, OutgoingEvent, ProducerSettings};
use chrono::Utc;
use e2e::{brokers, create_topic, System};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    adapters::telemetry::init(false);
    let commands = setting("BENCH_COMMANDS", 20_000);
    let clients = setting("BENCH_CLIENTS", 32);
    let backlog = setting("BENCH_BACKLOG", 100_000);
    report(
        "machine",
        &format!(
            "{} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    );
    if commands > 0 {
        bench_creations(commands, clients).await;
        bench_commands(commands, clients).await;
        bench_latency(setting("BENCH_RATE", 1000), setting("BENCH_SECONDS", 10)).await;
    }
    bench_drain(backlog).await;
}

fn report(what: &str, figure: &str) {
    #[allow(clippy::print_stdout)]
    {
        println!("{what:<44} {figure}");
    }
}

/// Each client places an order, then adds items to it, one command after another.
async fn bench_commands(commands: usize, clients: usize) {
    let system = Arc::new(System::start(1).await);
    let per_client = commands.div_ceil(clients);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let system = system.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                let mut order = String::new();
                for i in 0..per_client {
                    let sent = Instant::now();
                    if i % 50 == 0 {
                        let (status, body) = system
                            .send(
                                Method::POST,
                                "/orders",
                                Some(json!({
                                    "customer": {"customerId": format!("c-{c}"), "name": "Bench", "phone": "1",
                                                 "address": {"line1": "1 Street", "city": "Hanoi", "country": "VN"}},
                                    "currency": "VND",
                                    "items": [{"productId": "sku-0", "quantity": 1, "unitPrice": 1000}]
                                })),
                                &[],
                            )
                            .await;
                        assert_eq!(status, 201, "{body}");
                        order = body["orderId"].as_str().unwrap_or_default().to_owned();
                    } else {
                        let (status, body) = system
                            .send(
                                Method::POST,
                                &format!("/orders/{order}/items"),
                                Some(json!({"productId": format!("sku-{}", i % 40), "quantity": 1, "unitPrice": 1000})),
                                &[],
                            )
                            .await;
                        assert_eq!(status, 200, "{body}");
                    }
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(commands);
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    report(
        "HTTP commands",
        &format!(
            "{} commands, {clients} clients, {:.2} s",
            latencies.len(),
            elapsed.as_secs_f64()
        ),
    );
    report(
        "HTTP commands per second",
        &format!("{:.0}", latencies.len() as f64 / elapsed.as_secs_f64()),
    );
    report(
        "HTTP command latency p50 / p99",
        &format!(
            "{:.1} ms / {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99))
        ),
    );
    system.wait_for_empty_outbox(Duration::from_secs(120)).await;
    if let Ok(system) = Arc::try_unwrap(system) {
        system.stop().await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Realistic outbox rows: 10 events per order, ~500-byte envelopes.
fn backlog_events(count: usize) -> Vec<(OutgoingEvent, i64)> {
    let mut events = Vec::with_capacity(count);
    let mut order = Uuid::now_v7();
    for i in 0..count {
        let version = (i % 10) as i64 + 1;
        if version == 1 {
            order = Uuid::now_v7();
        }
        let event_id = Uuid::now_v7();
        let value = json!({
            "eventId": event_id, "aggregateType": "Order", "aggregateId": order, "eventType": "ItemAdded",
            "version": version, "schemaVersion": 1, "occurredAt": "2026-11-23T10:30:00.123456Z",
            "payload": {"productId": format!("sku-{i:08}"), "quantity": 3, "unitPrice": 150000,
                        "subtotal": 450000, "discount": 45000, "total": 405000},
            "metadata": {"userId": "user-456", "correlationId": format!("corr-{}", Uuid::now_v7()),
                         "causationId": Uuid::now_v7()}
        })
        .to_string();
        events.push((
            OutgoingEvent {
                event_id,
                aggregate_id: order,
                event_type: "ItemAdded".to_owned(),
                occurred_at: Utc::now(),
                traceparent: None,
                value,
            },
            version,
        ));
    }
    events
}

async fn bench_drain(count: usize) {
    let events = backlog_events(count);
    let average = events.iter().map(|(e, _)| e.value.len()).sum::<usize>() / count.max(1);

    // Raw produce of the same messages, as the ceiling.
    let topic = format!("bench.raw.{}", Uuid::now_v7().simple());
    create_topic(&topic, 3).await;
    let publisher = KafkaPublisher::new(
        &ProducerSettings {
            brokers: brokers(),
            message_timeout: Duration::from_secs(60),
            linger: Duration::from_millis(5),
        },
        &topic,
    )
    .expect("producer");
    // Warm up: connect and fetch metadata before the clock starts, as the relay does.
    let warm_up = backlog_events(1);
    let _ = publisher.enqueue(&warm_up[0].0).expect("warm-up").await;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(count);
    for (event, _) in &events {
        loop {
            match publisher.enqueue(event) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }
    let mut failed = 0;
    for delivery in deliveries {
        if !matches!(delivery.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    let raw = count as f64 / started.elapsed().as_secs_f64();
    report(
        "raw rdkafka produce",
        &format!("{count} messages of ~{average} bytes, {failed} failed"),
    );
    report("raw rdkafka produce per second", &format!("{raw:.0}"));

    // The relay draining the same messages from the outbox: it runs (connected, idle)
    // while the backlog is written in one transaction; the clock starts at the commit.
    let system = System::start(1).await;
    fill_outbox(&system, &backlog_events(10)).await;
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let started = fill_outbox(&system, &events).await;
    system.wait_for_empty_outbox(Duration::from_secs(600)).await;
    let drained = count as f64 / started.elapsed().as_secs_f64();
    report(
        "relay drain",
        &format!(
            "{count} outbox rows, {:.2} s",
            started.elapsed().as_secs_f64()
        ),
    );
    report(
        "relay drain events per second",
        &format!(
            "{drained:.0} ({:.0}% of raw produce)",
            100.0 * drained / raw
        ),
    );
    system.stop().await;
}

/// Writes `events` to the outbox in one transaction; returns when it committed.
async fn fill_outbox(system: &System, events: &[(OutgoingEvent, i64)]) -> Instant {
    let mut tx = system.pool.begin().await.expect("begin");
    for chunk in events.chunks(5_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|(e, _)| e.event_id).collect();
        let aggregates: Vec<Uuid> = chunk.iter().map(|(e, _)| e.aggregate_id).collect();
        let versions: Vec<i64> = chunk.iter().map(|(_, v)| *v).collect();
        let messages: Vec<String> = chunk.iter().map(|(e, _)| e.value.clone()).collect();
        sqlx::query(
            "INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at) \
             SELECT e.id, e.agg, e.v, 'ItemAdded', e.m, now() \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[]) WITH ORDINALITY AS e(id, agg, v, m, n) ORDER BY e.n",
        )
        .bind(&ids)
        .bind(&aggregates)
        .bind(&versions)
        .bind(&messages)
        .execute(&mut *tx)
        .await
        .expect("fill the outbox");
    }
    tx.commit().await.expect("commit");
    Instant::now()
}

fn new_order_body(customer: usize) -> serde_json::Value {
    json!({
        "customer": {"customerId": format!("c-{customer}"), "name": "Bench", "phone": "1",
                     "address": {"line1": "1 Street", "city": "Hanoi", "country": "VN"}},
        "currency": "VND",
        "items": [{"productId": "sku-0", "quantity": 1, "unitPrice": 1000}]
    })
}

/// Order creations through HTTP (one event and one outbox row each), then `pgbench`
/// doing the same two inserts per transaction with the same number of clients.
async fn bench_creations(commands: usize, clients: usize) {
    let system = Arc::new(System::start(1).await);
    let per_client = commands.div_ceil(clients);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let system = system.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let sent = Instant::now();
                    let (status, body) = system
                        .send(Method::POST, "/orders", Some(new_order_body(c)), &[])
                        .await;
                    assert_eq!(status, 201, "{body}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(commands);
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let http_rate = latencies.len() as f64 / elapsed.as_secs_f64();
    report(
        "HTTP order creations per second",
        &format!(
            "{http_rate:.0} ({} with {clients} clients)",
            latencies.len()
        ),
    );
    report(
        "HTTP order creation latency p50 / p99",
        &format!(
            "{:.1} ms / {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99))
        ),
    );
    system.wait_for_empty_outbox(Duration::from_secs(120)).await;

    match pgbench(&system.database_url, clients) {
        Some(tps) => {
            report(
                "pgbench, same inserts, transactions per second",
                &format!("{tps:.0}"),
            );
            report(
                "HTTP creations / pgbench",
                &format!("{:.0}%", 100.0 * http_rate / tps),
            );
        }
        None => report("pgbench", "not available"),
    }
    if let Ok(system) = Arc::try_unwrap(system) {
        system.stop().await;
    }
}

/// Runs pgbench for 10 s with a script inserting what `POST /orders` inserts: one
/// `OrderCreated` event and its outbox row, in one transaction. Returns its TPS.
fn pgbench(database_url: &str, clients: usize) -> Option<f64> {
    let script = std::env::temp_dir().join(format!("pgbench-{}.sql", Uuid::now_v7().simple()));
    let payload = r#"{"customer":{"customerId":"c-1","name":"Bench","phone":"1","address":{"line1":"1 Street","city":"Hanoi","country":"VN"}},"currency":"VND","items":[{"productId":"sku-0","quantity":1,"unitPrice":1000}],"discountCodes":[],"discountPercent":0,"subtotal":1000,"discount":0,"total":1000}"#;
    let metadata = r#"{"userId":null,"correlationId":"bench","causationId":"bench"}"#;
    let sql = format!(
        "BEGIN;\n\
         INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, schema_version, payload, metadata, occurred_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 'Order', 1, 'OrderCreated', 1, '{payload}', '{metadata}', now());\n\
         INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 1, 'OrderCreated', '{{\"eventId\":\"x\",\"payload\":{payload}}}', now());\n\
         END;\n"
    );
    std::fs::write(&script, sql).ok()?;
    let output = std::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            "10",
            "-f",
        ])
        .arg(&script)
        .arg(database_url)
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| {
            line.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

/// A steady rate of commands through HTTP (order creations and items added, each one
/// event), with the relay publishing and a consumer reading the topic.
async fn bench_latency(rate: usize, seconds: usize) {
    let system = Arc::new(System::start(1).await);
    let total = rate * seconds;
    let sent_at = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        (String, i64),
        Instant,
    >::new()));
    let consumer = {
        let system = system.clone();
        let expected = Arc::new(std::sync::atomic::AtomicUsize::new(total));
        let done = expected.clone();
        (
            expected,
            tokio::spawn(async move {
                let received = system
                    .consume(Duration::from_secs(seconds as u64 + 60), |r| {
                        r.len() >= done.load(std::sync::atomic::Ordering::Relaxed)
                    })
                    .await;
                received
                    .into_iter()
                    .map(|m| {
                        (
                            (m.key, m.value["version"].as_i64().unwrap_or_default()),
                            m.at,
                        )
                    })
                    .collect::<Vec<_>>()
            }),
        )
    };
    let (expected, consumer) = consumer;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Each slot holds one order (id and version), advanced one command at a time.
    type Slot = tokio::sync::Mutex<Option<(String, i64)>>;
    let orders: Arc<Vec<Slot>> = Arc::new(
        (0..rate / 10)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let system = system.clone();
        let sent_at = sent_at.clone();
        let orders = orders.clone();
        tasks.push(tokio::spawn(async move {
            // Each slot is one order: created, then items added, one command at a time.
            let mut slot = orders[i % orders.len()].lock().await;
            let sent = Instant::now();
            let (order, version) = match slot.as_ref() {
                Some((order, version)) if *version < 40 => {
                    let (status, body) = system
                        .send(
                            Method::POST,
                            &format!("/orders/{order}/items"),
                            Some(json!({"productId": format!("sku-{version}"), "quantity": 1, "unitPrice": 1000})),
                            &[],
                        )
                        .await;
                    if status != 200 {
                        return false; // shed (503) or failed: nothing was written
                    }
                    (order.clone(), body["version"].as_i64().unwrap_or_default())
                }
                _ => {
                    let (status, body) = system.send(Method::POST, "/orders", Some(new_order_body(i)), &[]).await;
                    if status != 201 {
                        return false;
                    }
                    (body["orderId"].as_str().unwrap_or_default().to_owned(), 1)
                }
            };
            sent_at.lock().unwrap_or_else(|e| e.into_inner()).insert((order.clone(), version), sent);
            *slot = Some((order, version));
            true
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap_or(false));
    }
    expected.store(accepted, std::sync::atomic::Ordering::Relaxed);
    let offered = total as f64 / started.elapsed().as_secs_f64();
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let arrivals = consumer.await.unwrap_or_default();
    let mut latencies: Vec<Duration> = {
        let sent_at = sent_at.lock().unwrap_or_else(|e| e.into_inner());
        arrivals
            .iter()
            .filter_map(|(key, at)| {
                sent_at
                    .get(key)
                    .map(|sent| at.saturating_duration_since(*sent))
            })
            .collect()
    };
    latencies.sort();
    report(
        "steady load",
        &format!(
            "{offered:.0} commands/s offered for {seconds} s, {accepted} accepted, {} received",
            latencies.len()
        ),
    );
    report(
        "command sent -> consumer receipt p50/p99/max",
        &format!(
            "{:.1} / {:.1} / {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default())
        ),
    );
    let text = system.relay_metrics_text();
    let (p50, p99) = histogram_percentiles(&text, "relay_publish_latency_seconds");
    report(
        "commit -> broker ack p50/p99 (relay histogram)",
        &format!("<= {:.1} / <= {:.1} ms", p50 * 1e3, p99 * 1e3),
    );
    if let Ok(system) = Arc::try_unwrap(system) {
        system.stop().await;
    }
}

/// The upper bounds of the buckets holding the 50th and 99th percentiles of a
/// Prometheus histogram in text form.
fn histogram_percentiles(text: &str, name: &str) -> (f64, f64) {
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}_bucket")))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, line.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    let quantile = |q: f64| {
        buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map_or(f64::NAN, |(bound, _)| *bound)
    };
    (quantile(0.5), quantile(0.99))
}
