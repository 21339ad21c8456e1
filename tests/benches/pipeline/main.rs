//! Figures of the whole pipeline on this machine, printed (nothing is asserted), in one
//! run so that the ratios compare runs made under the same conditions. The real
//! `order-service` and `outbox-relay` binaries run as child processes, configured only
//! through their environment, on a fresh database and a fresh 3-partition topic per
//! section, so their CPU is read apart from this load generator's.
//!
//! 1. `commands`: order creations and item additions over HTTP (16 clients), `pgbench`
//!    doing a creation's two inserts, and the cqrs-es peer; CPU per command of the
//!    service, PostgreSQL and the machine; the ratios between them;
//! 2. `steady`: 500 and 1,000 commands/s on a fresh system: `occurredAt` → consumer
//!    receipt, the read model's lag, the relay's commit → ack histogram; before each
//!    rate, the broker's floor: a plain producer's messages to the same consumer;
//! 3. `drain`: a backlog written through the API while the relay is off, drained by a
//!    new relay, beside raw `rdkafka` produce of the same messages;
//! 4. `restart`: relay killed, a new one spawned: time to ready and to the next event;
//! 5. `tracing`: creations with tracing off, exporting to a live OTLP receiver, and
//!    exporting to a dead port, side by side (`BENCH_TRACING_SECONDS`, 10 per mode).
//!
//! Run with `scripts/bench.sh` (it starts PostgreSQL and a broker and builds the
//! binaries). Sizes: `BENCH_SECTIONS` (commands,steady,drain,restart,tracing), `BENCH_CLIENTS`
//! (16), `BENCH_COMMAND_SECONDS` (10) or `BENCH_COMMANDS` (commands per phase, instead
//! of seconds), `BENCH_RATES` (500,1000), `BENCH_STEADY_SECONDS` (23), `BENCH_FLOOR_SECONDS` (10),
//! `BENCH_DRAIN_CREATIONS` (25000), `BENCH_DRAIN_ADDITIONS` (15000),
//! `BENCH_RESTARTS` (3); `BENCH_PEER_DIR` (../shared/peers/cqrs-es-bench);
//! `BENCH_CHILD_LOG` (the children's `RUST_LOG`; their logs are kept when set);
//! `BENCH_SERVICE_BINARY` and `BENCH_RELAY_BINARY` (another `order-service` or
//! `outbox-relay` build to run instead of this one, to compare two versions in one
//! sitting).

mod commands;
mod cpu;
mod drain;
mod figures;
mod load;
mod restart;
mod stack;
mod steady;
mod traces;

use figures::{report, setting, setting_list};
use load::Limit;

#[tokio::main]
async fn main() {
    let _telemetry = order_runtime::init(false, &order_runtime::TraceExport::default());
    report("machine", &machine());
    let sections = std::env::var("BENCH_SECTIONS")
        .unwrap_or_else(|_| "commands,steady,drain,restart,tracing".to_owned());
    let wanted = |name: &str| sections.split(',').any(|s| s.trim() == name);

    if wanted("commands") {
        let seconds = setting("BENCH_COMMAND_SECONDS", 10);
        let limit = match setting("BENCH_COMMANDS", 0) {
            0 => Limit::Seconds(seconds as f64),
            total => Limit::Total(total),
        };
        commands::run(setting("BENCH_CLIENTS", 16).max(1), limit, seconds).await;
    }
    if wanted("steady") {
        for rate in setting_list("BENCH_RATES", &[500, 1000]) {
            steady::broker_floor(rate, setting("BENCH_FLOOR_SECONDS", 10)).await;
            steady::run(rate, setting("BENCH_STEADY_SECONDS", 23)).await;
        }
    }
    if wanted("drain") {
        drain::run(
            setting("BENCH_DRAIN_CREATIONS", 25_000),
            setting("BENCH_DRAIN_ADDITIONS", 15_000),
        )
        .await;
    }
    if wanted("restart") {
        restart::run(setting("BENCH_RESTARTS", 3)).await;
    }
    if wanted("tracing") {
        traces::run(
            setting("BENCH_CLIENTS", 16).max(1),
            setting("BENCH_TRACING_SECONDS", 10).max(2),
        )
        .await;
    }
}

/// Cores, memory and processor model.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kb: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores, {:.1} GiB memory{}",
        memory_kb / 1024.0 / 1024.0,
        if model.is_empty() {
            String::new()
        } else {
            format!(", {model}")
        }
    )
}
