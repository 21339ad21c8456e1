//! Section 2: a steady rate of commands on a freshly started system (service with its
//! projector, relay, an independent consumer listening before the first command):
//! `occurredAt` → consumer receipt for every message, the read model's lag, and the
//! relay's own commit → acknowledgment histogram; the first seconds apart. Before each
//! rate, the broker's floor: the same consumer reading a plain producer's messages.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use order_kafka::OutgoingEvent;
use tokio::time::Instant as TokioInstant;
use uuid::Uuid;

use crate::cpu::{self, report_cpu, Usage};
use crate::figures::{p50_p99, p50_p99_max, report, section, Histogram, Rng};
use crate::load::{addition_body, creation_body, post};
use crate::stack::{plain_publisher, Listener, Stack};

/// The start-up window reported apart.
const FIRST: Duration = Duration::from_secs(3);
/// Commands per order: one creation, then additions.
const COMMANDS_PER_ORDER: i64 = 10;

/// What one scheduled command came to.
enum Sent {
    Accepted {
        order: String,
        version: i64,
        latency: Duration,
    },
    Shed,
    Failed(String),
}

/// The broker's floor at `rate`, before the system's run: a plain producer with the
/// relay's settings sends one small message at each due time straight to a fresh
/// topic, nothing else running, and the same independent consumer reads them:
/// `occurredAt` → receipt with no database, service or relay in the path.
pub(crate) async fn broker_floor(rate: usize, seconds: usize) {
    let rate = rate.max(1);
    let (topic, publisher) = plain_publisher("floor", Duration::from_secs(30)).await;
    let message = |version: i64| {
        let now = Utc::now();
        OutgoingEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::now_v7(),
            event_type: "BenchFloor".to_owned(),
            occurred_at: now,
            traceparent: None,
            value: serde_json::json!({
                "version": version,
                "occurredAt": now.to_rfc3339_opts(SecondsFormat::Micros, true),
            })
            .to_string(),
        }
    };
    // Connected, with metadata and a producer id, before the first timed message (the
    // consumer skips this one: version 0).
    let warm = publisher
        .enqueue(&message(0))
        .expect("warm-up message")
        .await;
    assert!(
        matches!(warm, Ok(Ok(_))),
        "the broker took no warm-up message"
    );
    let mut listener = Listener::start(&topic).await;
    let pids = cpu::Pids::broker_only();
    let before = cpu::sample(&pids);
    let total = rate * seconds;
    let started = TokioInstant::now();
    let (mut deliveries, mut failed) = (Vec::with_capacity(total), 0);
    for i in 0..total {
        tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        match publisher.enqueue(&message(1)) {
            Ok(delivery) => deliveries.push(delivery),
            Err(_) => failed += 1,
        }
    }
    for delivery in deliveries {
        if !matches!(delivery.await, Ok(Ok(_))) {
            failed += 1;
        }
    }
    let usage = Usage::between(&before, &cpu::sample(&pids));
    let mut arrivals: Vec<_> = listener
        .take_all()
        .into_iter()
        .filter(|a| a.version == 1)
        .collect();
    while arrivals.len() < total - failed {
        match listener.next(Duration::from_secs(10)).await {
            Some(arrival) if arrival.version == 1 => arrivals.push(arrival),
            Some(_) => {}
            None => break,
        }
    }
    listener.stop().await;
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .filter_map(|a| {
            let occurred = a.occurred_at?;
            Some((a.wall - occurred).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    let what = format!("broker floor {rate}/s (plain producer, no service or relay)");
    report(
        &format!("{what}: occurredAt -> receipt"),
        &format!(
            "{} ({} of {total} messages, {failed} failed)",
            p50_p99_max(&mut latencies),
            latencies.len()
        ),
    );
    report_cpu(
        "broker floor message",
        total,
        &usage,
        &[("producer and consumer (this bench)", usage.bench)],
        None,
    );
}

pub(crate) async fn run(rate: usize, seconds: usize) {
    let rate = rate.max(1);
    section(&format!(
        "2. steady {rate} commands/s for {seconds} s (creations and item additions, one event each): \
         fresh service with projector, relay, independent consumer"
    ));
    let mut stack = Stack::create().await;
    stack.start_service(true).await;
    stack.start_relay();
    stack.wait_relay_ready(Duration::from_secs(60)).await;
    let mut listener = Listener::start(&stack.topic).await;
    let pids = stack.pids();

    let total = rate * seconds;
    let started = TokioInstant::now();
    let started_wall = Utc::now();
    let first_end = started + FIRST;

    // Read-model lag every 100 ms after the first seconds, until the commands end.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (client, http, sampling) = (stack.client.clone(), stack.http.clone(), sampling.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(first_end).await;
            let mut lags = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_millis(100));
            while sampling.load(Ordering::Relaxed) {
                ticker.tick().await;
                let Ok(response) = client.get(format!("{http}/orders?limit=1")).send().await else {
                    continue;
                };
                if let Some(lag) = response
                    .headers()
                    .get("x-read-model-lag-ms")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                {
                    lags.push(lag);
                }
            }
            lags
        })
    };
    // CPU and the relay's histogram at the end of the first seconds.
    let midpoint = {
        let (client, admin) = (stack.client.clone(), stack.relay_admin.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(first_end).await;
            let cpu = cpu::sample(&pids);
            let text = match client.get(format!("{admin}/metrics")).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            (
                cpu,
                Histogram::parse(&text, "relay_publish_latency_seconds"),
            )
        })
    };

    // Open loop: command i is due at started + i / rate, whatever came before.
    type Slot = tokio::sync::Mutex<Option<(String, i64)>>;
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..(rate / 10).max(1))
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
    );
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due).await;
        let (client, http, slots) = (stack.client.clone(), stack.http.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(0xD000_0000 ^ i as u64);
            let mut slot = slots[i % slots.len()].lock().await;
            let (url, body, expected) = match slot.as_ref() {
                Some((order, version)) if *version < COMMANDS_PER_ORDER => (
                    format!("{http}/orders/{order}/items"),
                    addition_body(&mut rng),
                    200,
                ),
                _ => (format!("{http}/orders"), creation_body(&mut rng), 201),
            };
            let sent = match post(&client, &url, &body).await {
                Ok((status, body)) if status == expected => {
                    let order = body["orderId"].as_str().unwrap_or_default().to_owned();
                    let version = body["version"].as_i64().unwrap_or(1);
                    *slot = Some((order.clone(), version));
                    Sent::Accepted {
                        order,
                        version,
                        latency: due.elapsed(),
                    }
                }
                Ok((503, _)) => Sent::Shed,
                Ok((status, body)) => Sent::Failed(format!("{url} answered {status}: {body}")),
                Err(why) => Sent::Failed(why),
            };
            (i, sent)
        }));
    }
    let offered = total as f64 / started.elapsed().as_secs_f64();
    let mut accepted: HashSet<(String, i64)> = HashSet::with_capacity(total);
    let mut latencies = Vec::with_capacity(total);
    let (mut shed, mut failed, mut first_failure, mut accepted_late) = (0, 0, None, 0);
    let first_commands = (FIRST.as_secs_f64() * rate as f64) as usize;
    for task in tasks {
        match task.await {
            Ok((
                i,
                Sent::Accepted {
                    order,
                    version,
                    latency,
                },
            )) => {
                accepted.insert((order, version));
                latencies.push(latency);
                accepted_late += usize::from(i >= first_commands);
            }
            Ok((_, Sent::Shed)) => shed += 1,
            Ok((_, Sent::Failed(why))) => {
                failed += 1;
                first_failure.get_or_insert(why);
            }
            Err(error) => {
                failed += 1;
                first_failure.get_or_insert(error.to_string());
            }
        }
    }
    let completed = started.elapsed();
    let end_cpu = cpu::sample(&pids);
    sampling.store(false, Ordering::Relaxed);
    let mut lags = sampler.await.unwrap_or_default();
    let (mid_cpu, mid_histogram) = midpoint.await.expect("midpoint");

    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let end_histogram = Histogram::parse(
        &stack.relay_metrics().await,
        "relay_publish_latency_seconds",
    );

    // Everything the consumer got; wait for stragglers while it keeps bringing some.
    let mut arrivals = listener.take_all();
    loop {
        let got: HashSet<(&str, i64)> = arrivals
            .iter()
            .map(|a| (a.key.as_str(), a.version))
            .collect();
        if accepted
            .iter()
            .all(|(k, v)| got.contains(&(k.as_str(), *v)))
        {
            break;
        }
        match listener.next(Duration::from_secs(10)).await {
            Some(arrival) => {
                arrivals.push(arrival);
                arrivals.extend(listener.take_all());
            }
            None => break,
        }
    }
    listener.stop().await;
    stack.stop().await;

    let split = started_wall + chrono::Duration::from_std(FIRST).unwrap_or_default();
    let (mut early, mut late) = (Vec::new(), Vec::new());
    let mut seen: HashMap<(String, i64), usize> = HashMap::with_capacity(arrivals.len());
    for arrival in &arrivals {
        *seen
            .entry((arrival.key.clone(), arrival.version))
            .or_default() += 1;
        let Some(occurred) = arrival.occurred_at else {
            continue;
        };
        let ms = (arrival.wall - occurred)
            .num_microseconds()
            .unwrap_or_default() as f64
            / 1000.0;
        if occurred < split {
            early.push(ms);
        } else {
            late.push(ms);
        }
    }
    let duplicates = arrivals.len() - seen.len();
    let missing = accepted
        .iter()
        .filter(|key| !seen.contains_key(*key))
        .count();

    let what = format!("steady {rate}/s");
    report(
        &format!("{what}: commands"),
        &format!(
            "{total} due at {offered:.0}/s, all answered after {:.1} s ({:.0}/s achieved); \
             {} accepted, {shed} shed (503), {failed} failed",
            completed.as_secs_f64(),
            total as f64 / completed.as_secs_f64(),
            accepted.len()
        ),
    );
    report(
        &format!("{what}: command latency from due time p50 / p99"),
        &p50_p99(&mut latencies),
    );
    if let Some(why) = first_failure {
        report(&format!("{what}: first failure"), &why);
    }
    report(
        &format!("{what}: occurredAt -> receipt, first {} s", FIRST.as_secs()),
        &format!("{} ({} messages)", p50_p99_max(&mut early), early.len()),
    );
    report(
        &format!("{what}: occurredAt -> receipt, after {} s", FIRST.as_secs()),
        &format!("{} ({} messages)", p50_p99_max(&mut late), late.len()),
    );
    report(
        &format!("{what}: messages"),
        &format!(
            "{} received ({duplicates} duplicates), {missing} accepted never received",
            arrivals.len()
        ),
    );
    report(
        &format!("{what}: X-Read-Model-Lag-Ms after {} s", FIRST.as_secs()),
        &format!("{} ({} samples)", p50_p99_max(&mut lags), lags.len()),
    );
    report(
        &format!("{what}: relay commit -> ack, first {} s", FIRST.as_secs()),
        &mid_histogram.summary_ms(),
    );
    report(
        &format!("{what}: relay commit -> ack, after {} s", FIRST.as_secs()),
        &end_histogram.since(&mid_histogram).summary_ms(),
    );
    let usage = Usage::between(&mid_cpu, &end_cpu);
    report_cpu(
        &format!("{what}: command after {} s", FIRST.as_secs()),
        accepted_late,
        &usage,
        &[
            ("service", usage.service),
            ("PostgreSQL", usage.postgres),
            ("relay", usage.relay),
        ],
        None,
    );
}
