//! Section 5: what exporting traces costs a command. HTTP creations (16 clients) on
//! three systems side by side, each its own `order-service` and `outbox-relay`: tracing
//! off; exporting to a live OTLP receiver (this process's, [`e2e::otlp`]); exporting to
//! a port where nothing listens (a dead collector). The phases run off, live, dead,
//! dead, live, off, so drift on the machine weighs on every mode alike; the ratios to
//! "off" are printed, nothing is asserted.

use std::time::Duration;

use e2e::otlp::OtlpReceiver;
use e2e::processes::free_port;

use crate::cpu::{self, Usage};
use crate::figures::{p50_p99, report, section};
use crate::load::{create_in_closed_loop, create_orders, Limit, Tally};
use crate::stack::Stack;

/// The three ways the systems run.
const MODES: [&str; 3] = ["off", "live collector", "dead collector"];

pub(crate) async fn run(clients: usize, seconds: usize) {
    section(&format!(
        "5. tracing: {clients} HTTP clients creating orders, {seconds} s per mode in two \
         halves (off, live, dead, dead, live, off); service and relay per mode, projector off"
    ));
    let receiver = OtlpReceiver::start();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut stacks = Vec::new();
    for endpoint in [None, Some(receiver.endpoint.clone()), Some(dead)] {
        let mut stack = Stack::create().await;
        if let Some(endpoint) = endpoint {
            stack.child_env = vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "500".to_owned()),
            ];
        }
        stack.start_service(false).await;
        stack.start_relay();
        stack.wait_relay_ready(Duration::from_secs(60)).await;
        create_orders(&stack.client, &stack.http, 10 * clients).await;
        stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
        stacks.push(stack);
    }

    let half = Limit::Seconds(seconds as f64 / 2.0);
    let mut tallies: Vec<Tally> = (0..3).map(|_| Tally::default()).collect();
    let mut usages: Vec<Option<Usage>> = vec![None; 3];
    let spans_before = receiver.count();
    for mode in [0, 1, 2, 2, 1, 0] {
        let (tally, usage) = creations(&stacks[mode], clients, half).await;
        tallies[mode].merge(tally);
        usages[mode] = Some(match usages[mode] {
            Some(earlier) => earlier.plus(&usage),
            None => usage,
        });
    }
    // The last spans of the live mode reach the receiver within its export delay.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spans = receiver.count() - spans_before;

    let off_rate = tallies[0].rate();
    for (mode, tally) in tallies.iter_mut().enumerate() {
        let Some(usage) = usages[mode] else { continue };
        let count = tally.ok().max(1) as f64;
        let per = |ms: f64| ms / count;
        report(
            &format!("tracing {}: HTTP POST /orders", MODES[mode]),
            &format!(
                "{:.0} /s ({} ok, {} failed), latency {}, ratio to off {:.2}",
                tally.rate(),
                tally.ok(),
                tally.failed,
                p50_p99(&mut tally.latencies),
                tally.rate() / off_rate.max(1e-9),
            ),
        );
        report(
            &format!("tracing {}: CPU per creation", MODES[mode]),
            &format!(
                "service {:.3} ms, relay {:.3} ms, this process {:.3} ms",
                per(usage.service),
                per(usage.relay),
                per(usage.bench),
            ),
        );
    }
    report(
        "tracing live collector: spans received per creation",
        &format!(
            "{:.2} ({spans} spans for {} creations; each: server, use case, transaction, producer)",
            spans as f64 / tallies[1].ok().max(1) as f64,
            tallies[1].ok()
        ),
    );
    for stack in stacks {
        stack.stop().await;
    }
}

/// Order creations on `stack` until `limit`, then its outbox drained; their CPU.
async fn creations(stack: &Stack, clients: usize, limit: Limit) -> (Tally, Usage) {
    let pids = stack.pids();
    let before = cpu::sample(&pids);
    let tally =
        create_in_closed_loop(&stack.client, &stack.http, clients, limit, 0xC000_0000).await;
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    // Through the drain, so the relay's publishing of these commands is in its CPU.
    let usage = Usage::between(&before, &cpu::sample(&pids));
    (tally, usage)
}
