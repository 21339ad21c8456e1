//! Section 1: commands through the HTTP API beside `pgbench` doing a creation's two
//! inserts and the cqrs-es peer, with the CPU each takes per command.
//!
//! Order: creations (first half), pgbench, creations (second half), `GET /healthz` (the
//! floor of any request: same server, middleware and clients, no body, no database),
//! additions (first half), the peer, additions (second half). Each HTTP phase surrounds what it is
//! compared with (A B A), so other work on the machine that grows or fades during the
//! run weighs on both sides of a ratio alike. CPU per command, the other ratios
//! printed, does not depend on how much of the machine others took at all.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cpu::{self, report_cpu, Usage};
use crate::figures::{hold, p50_p99, print_held, report, section, take_held, Rng};
use crate::load::{
    addition_body, closed_loop, create_in_closed_loop, create_orders, post, Limit, Outcome, Tally,
};
use crate::stack::{status, Stack};

/// Pre-created orders the additions go to, as the peer's phase B.
const ADDITION_ORDERS: usize = 1_000;
/// An order holds at most this many events (1 creation + 49 additions), as the peer's.
const MAX_EVENTS_PER_ORDER: u32 = 50;

/// A phase's rate and the CPU it took.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Commands (or transactions) per second.
    rate: f64,
    count: usize,
    usage: Usage,
}

impl Measured {
    /// CPU ms per command of `ms` (part of `usage`).
    fn per(&self, ms: f64) -> f64 {
        ms / self.count.max(1) as f64
    }
}

pub(crate) async fn run(clients: usize, limit: Limit, seconds: usize) {
    section(&format!(
        "1. commands: {clients} HTTP clients, {}, each HTTP phase in two halves around \
         pgbench / the peer; outbox-relay running (as in production), projector off",
        match limit {
            Limit::Seconds(s) => format!("{s:.0} s per phase"),
            Limit::Total(n) => format!("{n} commands per phase"),
        }
    ));
    let mut stack = Stack::create().await;
    stack.start_service(false).await;

    // Warm-up with the relay off, leaving a real creation's rows to copy for pgbench.
    create_orders(&stack.client, &stack.http, 10 * clients).await;
    let script = pgbench_script(&stack).await;
    stack.start_relay();
    stack.wait_relay_ready(Duration::from_secs(60)).await;
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let [first_half, second_half] = limit.halves();

    // Creations, pgbench, creations.
    let (mut creations, mut usage) = run_creations(&stack, clients, first_half).await;
    hold();
    let pgbench = run_pgbench(&stack, &script, clients, limit, seconds).await;
    let pgbench_lines = take_held();
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let (more, more_usage) = run_creations(&stack, clients, second_half).await;
    creations.merge(more);
    usage = usage.plus(&more_usage);
    let created = Measured {
        rate: creations.rate(),
        count: creations.ok(),
        usage,
    };
    report_commands("HTTP POST /orders", &mut creations);
    report_service_cpu("HTTP POST /orders", creations.ok(), &usage);

    // The floor of any request: `GET /healthz` through the same server, middleware and
    // clients, with no body and no database.
    let (mut probes, probe_usage) = run_probes(&stack, clients, first_half).await;
    report_commands("HTTP GET /healthz (the floor)", &mut probes);
    report_service_cpu("HTTP GET /healthz (the floor)", probes.ok(), &probe_usage);

    // Additions to 1,000 orders picked at random, each capped at 50 events; the peer
    // (on its own database, the service and relay idle) between the two halves.
    let orders = Arc::new(create_orders(&stack.client, &stack.http, ADDITION_ORDERS).await);
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    let counts: Arc<Vec<AtomicU32>> = Arc::new(orders.iter().map(|_| AtomicU32::new(1)).collect());
    let (mut additions, mut usage) =
        run_additions(&stack, clients, first_half, &orders, &counts).await;
    hold();
    let peer = run_peer(clients, seconds).await;
    let peer_lines = take_held();
    let (more, more_usage) = run_additions(&stack, clients, second_half, &orders, &counts).await;
    additions.merge(more);
    usage = usage.plus(&more_usage);
    let added = Measured {
        rate: additions.rate(),
        count: additions.ok(),
        usage,
    };
    report_commands("HTTP POST /orders/{id}/items", &mut additions);
    if additions.exhausted {
        report(
            "HTTP POST /orders/{id}/items",
            "WARNING: every order reached 50 events; the phase ended early",
        );
    }
    report_service_cpu("HTTP POST /orders/{id}/items", additions.ok(), &usage);
    stack.stop().await;
    print_held(&pgbench_lines);
    print_held(&peer_lines);

    let ratio = |a: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".to_owned(),
    };
    report(
        "ratio HTTP creations / pgbench",
        &ratio(created.rate, pgbench.map(|p| p.rate)),
    );
    report(
        "ratio HTTP creations / cqrs-es create",
        &ratio(created.rate, peer.map(|p| p.create)),
    );
    report(
        "ratio HTTP additions / cqrs-es append",
        &ratio(added.rate, peer.map(|p| p.append)),
    );
    // CPU per command does not depend on how much of the machine others took.
    report(
        "ratio CPU per creation / per pgbench tx",
        &format!(
            "{} (service, relay, PostgreSQL, broker, clients; other work left out)",
            ratio(
                created.per(created.usage.machine - created.usage.other()),
                pgbench.map(|p| p.per(p.usage.machine - p.usage.other())),
            )
        ),
    );
    report(
        "ratio PostgreSQL CPU per creation / per pgbench tx",
        &ratio(
            created.per(created.usage.postgres),
            pgbench.map(|p| p.per(p.usage.postgres)),
        ),
    );
    let ours = (created.usage.service
        + created.usage.postgres
        + added.usage.service
        + added.usage.postgres)
        / (created.count + added.count).max(1) as f64;
    report(
        "ratio service+PostgreSQL CPU per command / cqrs-es",
        &format!(
            "{} (ours: creations and additions; cqrs-es: process+PostgreSQL, whole run)",
            ratio(
                ours,
                peer.map(|p| p
                    .measured
                    .per(p.measured.usage.children + p.measured.usage.postgres))
            )
        ),
    );
}

/// Order creations with `clients` clients until `limit`; the CPU they took.
async fn run_creations(stack: &Stack, clients: usize, limit: Limit) -> (Tally, Usage) {
    let pids = stack.pids();
    let before = cpu::sample(&pids);
    let tally =
        create_in_closed_loop(&stack.client, &stack.http, clients, limit, 0xA000_0000).await;
    let usage = Usage::between(&before, &cpu::sample(&pids));
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    (tally, usage)
}

/// `GET /healthz` with `clients` clients until `limit`; the CPU it took.
async fn run_probes(stack: &Stack, clients: usize, limit: Limit) -> (Tally, Usage) {
    let pids = stack.pids();
    let before = cpu::sample(&pids);
    let (client, url) = (stack.client.clone(), format!("{}/healthz", stack.http));
    let tally = closed_loop(clients, limit, move |_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            match status(&client, &url).await {
                200 => Outcome::Ok,
                other => Outcome::Failed(format!("GET {url} answered {other}")),
            }
        }
    })
    .await;
    (tally, Usage::between(&before, &cpu::sample(&pids)))
}

/// Item additions to random `orders` below the cap (`counts`: events per order).
async fn run_additions(
    stack: &Stack,
    clients: usize,
    limit: Limit,
    orders: &Arc<Vec<String>>,
    counts: &Arc<Vec<AtomicU32>>,
) -> (Tally, Usage) {
    let pids = stack.pids();
    let before = cpu::sample(&pids);
    let (client, http, orders, counts) = (
        stack.client.clone(),
        stack.http.clone(),
        orders.clone(),
        counts.clone(),
    );
    let tally = closed_loop(clients, limit, move |n| {
        let (client, http, orders, counts) =
            (client.clone(), http.clone(), orders.clone(), counts.clone());
        async move {
            let mut rng = Rng::new(0xB000_0000 ^ n as u64);
            let Some(slot) = reserve(&counts, &mut rng) else {
                return Outcome::Exhausted;
            };
            let url = format!("{http}/orders/{}/items", orders[slot]);
            let outcome = match post(&client, &url, &addition_body(&mut rng)).await {
                Ok((200, _)) => Outcome::Ok,
                Ok((409, _)) => Outcome::Conflict,
                Ok((status, body)) => {
                    Outcome::Failed(format!("POST {url} answered {status}: {body}"))
                }
                Err(why) => Outcome::Failed(why),
            };
            if !matches!(outcome, Outcome::Ok) {
                counts[slot].fetch_sub(1, Ordering::Relaxed);
            }
            outcome
        }
    })
    .await;
    let usage = Usage::between(&before, &cpu::sample(&pids));
    stack.wait_for_empty_outbox(Duration::from_secs(60)).await;
    (tally, usage)
}

/// Reserves one more event on a random order below the cap; `None` when all are full.
fn reserve(counts: &[AtomicU32], rng: &mut Rng) -> Option<usize> {
    for _ in 0..10_000 {
        let slot = rng.below(counts.len());
        if counts[slot].fetch_add(1, Ordering::Relaxed) < MAX_EVENTS_PER_ORDER {
            return Some(slot);
        }
        counts[slot].fetch_sub(1, Ordering::Relaxed);
    }
    None
}

fn report_commands(what: &str, tally: &mut Tally) {
    report(
        &format!("{what} per second"),
        &format!(
            "{:.0} ({} in {:.1} s; {} conflicts answered 409, {} failed)",
            tally.rate(),
            tally.ok(),
            tally.elapsed.as_secs_f64(),
            tally.conflicts,
            tally.failed
        ),
    );
    report(
        &format!("{what} latency p50 / p99"),
        &p50_p99(&mut tally.latencies),
    );
    if let Some(why) = &tally.first_failure {
        report(&format!("{what} first failure"), why);
    }
}

fn report_service_cpu(what: &str, count: usize, usage: &Usage) {
    report_cpu(
        what,
        count,
        usage,
        &[
            ("service", usage.service),
            ("PostgreSQL", usage.postgres),
            ("relay", usage.relay),
        ],
        None,
    );
}

/// A pgbench script inserting what `POST /orders` inserts, one `events` row and one
/// `outbox` row in one transaction, with the bytes of a real creation's rows.
async fn pgbench_script(stack: &Stack) -> String {
    let (message, payload, metadata): (String, String, String) = sqlx::query_as(
        "SELECT o.message, e.payload::text, e.metadata::text \
         FROM outbox o JOIN events e USING (event_id) WHERE e.event_type = 'OrderCreated' LIMIT 1",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("a creation's rows");
    let quote = |text: &str| text.replace('\'', "''");
    format!(
        "BEGIN;\n\
         INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, schema_version, payload, metadata, occurred_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 'Order', 1, 'OrderCreated', 1, '{}', '{}', now());\n\
         INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at) \
         VALUES (gen_random_uuid(), gen_random_uuid(), 1, 'OrderCreated', '{}', now());\n\
         END;\n",
        quote(&payload),
        quote(&metadata),
        quote(&message)
    )
}

/// Runs pgbench with `clients` clients on the stack's database; reports and returns
/// its transactions per second.
async fn run_pgbench(
    stack: &Stack,
    script: &str,
    clients: usize,
    limit: Limit,
    seconds: usize,
) -> Option<Measured> {
    let path = std::env::temp_dir().join(format!(
        "bench-pgbench-{}.sql",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&path, script).ok()?;
    let mut command = std::process::Command::new("pgbench");
    command.args(["-n", "-c", &clients.to_string(), "-j", "2"]);
    match limit {
        Limit::Seconds(_) => command.args(["-T", &seconds.max(1).to_string()]),
        Limit::Total(total) => command.args(["-t", &total.div_ceil(clients).to_string()]),
    };
    command.arg("-f").arg(&path).arg(&stack.database_url);
    // Plain TCP, as the service and the peer connect (sqlx without TLS): libpq's default
    // `prefer` would encrypt pgbench's connections, and PostgreSQL's side of that TLS
    // (about 5 % of the machine's samples in a profile) would lower the ceiling.
    command.env("PGSSLMODE", "disable");
    let pids = stack.pids();
    let before = cpu::sample(&pids);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .ok()?;
    let usage = Usage::between(&before, &cpu::sample(&pids));
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            report(
                "pgbench",
                &format!("failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
            );
            return None;
        }
        Err(error) => {
            report("pgbench", &format!("not available: {error}"));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| {
                line.trim_start_matches(prefix)
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
    };
    let tps = field("tps = ")?;
    // "…processed: 2000/2000" with -t, "…processed: 21840" with -T.
    let transactions = text
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split('/').next()?.trim().parse::<usize>().ok())
        .unwrap_or(0);
    report(
        "pgbench, same two inserts, transactions per second",
        &format!(
            "{tps:.0} ({transactions} with {clients} clients; latency average {:.1} ms)",
            field("latency average = ").unwrap_or(f64::NAN)
        ),
    );
    report_cpu(
        "pgbench transaction",
        transactions,
        &usage,
        &[("PostgreSQL", usage.postgres), ("relay", usage.relay)],
        Some("pgbench"),
    );
    Some(Measured {
        rate: tps,
        count: transactions,
        usage,
    })
}

/// The peer's figures.
#[derive(Debug, Clone, Copy)]
struct Peer {
    create: f64,
    append: f64,
    /// Every command of the run (creations, pre-creations, additions) and its CPU.
    measured: Measured,
}

fn peer_dir() -> PathBuf {
    match std::env::var("BENCH_PEER_DIR") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => e2e::processes::repo_root().join("../shared/peers/cqrs-es-bench"),
    }
}

/// Runs the cqrs-es peer (`run.sh --clients N --seconds S`) and reports its figures.
async fn run_peer(clients: usize, seconds: usize) -> Option<Peer> {
    let run = peer_dir().join("run.sh");
    if !run.exists() {
        report(
            "cqrs-es peer",
            &format!("not available: {} is missing", run.display()),
        );
        return None;
    }
    let mut command = std::process::Command::new(&run);
    command
        .args([
            "--clients",
            &clients.to_string(),
            "--seconds",
            &seconds.max(1).to_string(),
        ])
        // Its own default target directory, not this workspace's.
        .env_remove("CARGO_TARGET_DIR");
    let pids = cpu::Pids::default();
    let before = cpu::sample(&pids);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .ok()?;
    let usage = Usage::between(&before, &cpu::sample(&pids));
    let output = match output {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            report(
                "cqrs-es peer",
                &format!(
                    "failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                ),
            );
            return None;
        }
        Err(error) => {
            report("cqrs-es peer", &format!("not available: {error}"));
            return None;
        }
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let last = text
        .lines()
        .rev()
        .find(|l| l.starts_with("cqrs-es create "))?;
    // cqrs-es create <X>/s p99 <Y> ms; append <Z>/s p99 <W> ms
    let numbers: Vec<f64> = last
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter_map(|w| w.trim_end_matches("/s").parse().ok())
        .collect();
    let &[create, create_p99, append, append_p99] = numbers.as_slice() else {
        report("cqrs-es peer", &format!("unexpected last line: {last}"));
        return None;
    };
    let phase = |tag: &str, key: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(tag))?;
        let at = line.find(key)? + key.len();
        line[at..]
            .split(|c: char| c.is_whitespace() || c == '|')
            .find(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    let p50 = |tag| phase(tag, "p50 ").map_or("?".to_owned(), |v| format!("{v:.1}"));
    report(
        "cqrs-es create per second",
        &format!(
            "{create:.0} (p50 / p99 {} / {create_p99:.1} ms)",
            p50("[A create]")
        ),
    );
    report(
        "cqrs-es append per second",
        &format!(
            "{append:.0} (p50 / p99 {} / {append_p99:.1} ms; {} conflicts)",
            p50("[B append]"),
            phase("[B append]", "conflicts=").map_or("?".to_owned(), |v| format!("{v:.0}"))
        ),
    );
    let commands = phase("[A create]", "ok=").unwrap_or(0.0)
        + phase("[B setup]", "pre-created ").unwrap_or(0.0)
        + phase("[B append]", "ok=").unwrap_or(0.0);
    report_cpu(
        "cqrs-es command (whole run)",
        commands as usize,
        &usage,
        &[("cqrs-es", usage.children), ("PostgreSQL", usage.postgres)],
        None,
    );
    Some(Peer {
        create,
        append,
        measured: Measured {
            rate: create,
            count: commands as usize,
            usage,
        },
    })
}
