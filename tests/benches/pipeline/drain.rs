//! Section 3: a realistic backlog written through the API while the relay is off, then
//! drained by a freshly started relay, beside a plain producer sending the same
//! messages with the relay's producer settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use order_kafka::OutgoingEvent;
use uuid::Uuid;

use crate::cpu::{self, report_cpu, Usage};
use crate::figures::{report, section, Rng};
use crate::load::{addition_body, closed_loop, create_order, post, Limit, Outcome};
use crate::stack::{plain_publisher, Stack};

/// An outbox row as the relay reads it: event id, order id, event type, occurred at,
/// traceparent, message.
type OutboxRow = (Uuid, Uuid, String, DateTime<Utc>, Option<String>, String);

/// The orders the additions are spread over.
const ADDITION_ORDERS: usize = 1_000;

pub(crate) async fn run(creations: usize, additions: usize) {
    section(&format!(
        "3. drain: {creations} creations then {additions} item additions over {ADDITION_ORDERS} orders \
         through the API (projector on, relay off), then a relay started"
    ));
    let mut stack = Stack::create().await;
    stack.start_service(true).await;

    // The backlog, written through the API.
    let orders = Arc::new(std::sync::Mutex::new(Vec::with_capacity(ADDITION_ORDERS)));
    let (client, http, sink) = (stack.client.clone(), stack.http.clone(), orders.clone());
    let written = closed_loop(16, Limit::Total(creations), move |n| {
        let (client, http, sink) = (client.clone(), http.clone(), sink.clone());
        async move {
            let mut rng = Rng::new(0xE000_0000 ^ n as u64);
            match create_order(&client, &http, &mut rng).await {
                Ok(id) => {
                    let mut orders = sink.lock().unwrap_or_else(|e| e.into_inner());
                    if orders.len() < ADDITION_ORDERS {
                        orders.push(id);
                    }
                    Outcome::Ok
                }
                Err(why) => Outcome::Failed(why),
            }
        }
    })
    .await;
    let orders = Arc::new(orders.lock().unwrap_or_else(|e| e.into_inner()).clone());
    let (client, http, targets) = (stack.client.clone(), stack.http.clone(), orders.clone());
    let added = closed_loop(16, Limit::Total(additions), move |n| {
        let (client, http, targets) = (client.clone(), http.clone(), targets.clone());
        async move {
            if targets.is_empty() {
                return Outcome::Exhausted;
            }
            // Round robin: with 16 clients, one order never has two commands in flight.
            let url = format!("{http}/orders/{}/items", targets[n % targets.len()]);
            let mut rng = Rng::new(0xF000_0000 ^ n as u64);
            match post(&client, &url, &addition_body(&mut rng)).await {
                Ok((200, _)) => Outcome::Ok,
                Ok((409, _)) => Outcome::Conflict,
                Ok((status, body)) => {
                    Outcome::Failed(format!("POST {url} answered {status}: {body}"))
                }
                Err(why) => Outcome::Failed(why),
            }
        }
    })
    .await;
    report(
        "backlog written through the API (relay off)",
        &format!(
            "{} creations at {:.0}/s, {} additions at {:.0}/s ({} failed, {} conflicts)",
            written.ok(),
            written.rate(),
            added.ok(),
            added.rate(),
            written.failed + added.failed,
            added.conflicts
        ),
    );

    // The messages as the relay will find them.
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT event_id, aggregate_id, event_type, occurred_at, traceparent, message FROM outbox ORDER BY id",
    )
    .fetch_all(&stack.pool)
    .await
    .expect("read the outbox");
    let events: Vec<OutgoingEvent> = rows
        .into_iter()
        .map(
            |(event_id, aggregate_id, event_type, occurred_at, traceparent, value)| OutgoingEvent {
                event_id,
                aggregate_id,
                event_type,
                occurred_at,
                traceparent,
                value,
            },
        )
        .collect();
    let count = events.len();
    let average = events.iter().map(|e| e.value.len()).sum::<usize>() / count.max(1);
    report(
        "outbox backlog",
        &format!("{count} rows, messages of ~{average} bytes"),
    );

    let raw = raw_produce(&events).await;

    // The relay, from its spawn to an empty outbox.
    let pids_before = stack.pids();
    let before = cpu::sample(&pids_before);
    // Watched through the oldest row's id, read from the primary key's head: counting
    // the outbox every 20 ms would scan the table each time and take PostgreSQL's CPU
    // from the drain it measures.
    let oldest = stack.outbox_head().await;
    let spawned = stack.start_relay();
    let pids = stack.pids();
    let mut first_published = None;
    loop {
        let head = stack.outbox_head().await;
        if first_published.is_none() && head != oldest {
            first_published = Some(spawned.elapsed());
        }
        if head.is_none() {
            break;
        }
        if spawned.elapsed() > Duration::from_secs(60) {
            // Slow or stuck: the stack's wait says which, and gives up when stuck.
            stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = spawned.elapsed();
    let usage = Usage::between(&before, &cpu::sample(&pids));
    let drained = count as f64 / elapsed.as_secs_f64();
    let first = first_published.unwrap_or_default();
    report(
        "relay drain, spawn -> empty outbox",
        &format!(
            "{:.2} s ({:.2} s to the first row published)",
            elapsed.as_secs_f64(),
            first.as_secs_f64()
        ),
    );
    let after_first = elapsed.saturating_sub(first).as_secs_f64();
    report(
        "relay drain events per second",
        &if after_first >= 0.1 {
            format!(
                "{drained:.0} ({:.0} from its first published row)",
                count as f64 / after_first
            )
        } else {
            format!("{drained:.0}")
        },
    );
    report_cpu(
        "relay drain event",
        count,
        &usage,
        &[
            ("relay", usage.relay),
            ("PostgreSQL", usage.postgres),
            ("service (projector)", usage.service),
        ],
        None,
    );
    match raw {
        Some(raw) => report(
            "ratio relay drain / raw produce",
            &if after_first >= 0.1 {
                format!(
                    "{:.2} from spawn, {:.2} from its first published row",
                    drained / raw,
                    count as f64 / after_first / raw
                )
            } else {
                format!("{:.2} from spawn", drained / raw)
            },
        ),
        None => report("ratio relay drain / raw produce", "n/a"),
    }
    stack.stop().await;
}

/// Sends `events` with a plain producer with the relay's settings (idempotence,
/// acks=all, 5 in flight, the relay's default linger) to a topic of its own; returns
/// messages/s.
async fn raw_produce(events: &[OutgoingEvent]) -> Option<f64> {
    let first = events.first()?;
    let (_, publisher) = plain_publisher("raw", Duration::from_secs(120)).await;
    // Connect and fetch metadata before the clock starts.
    let _ = publisher.enqueue(first).ok()?.await;
    let before = cpu::sample(&cpu::Pids::broker_only());
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(events.len());
    for event in events {
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
    let elapsed = started.elapsed();
    let usage = Usage::between(&before, &cpu::sample(&cpu::Pids::broker_only()));
    let rate = events.len() as f64 / elapsed.as_secs_f64();
    report(
        "raw rdkafka produce per second",
        &format!(
            "{rate:.0} ({} messages in {:.2} s, {failed} failed)",
            events.len(),
            elapsed.as_secs_f64()
        ),
    );
    report_cpu(
        "raw produce message",
        events.len(),
        &usage,
        &[("producer (this bench)", usage.bench)],
        None,
    );
    Some(rate)
}
