//! CPU time read from `/proc`, so the service, the relay, PostgreSQL, the broker and
//! this load generator can be told apart: sample before and after a phase, subtract.
//!
//! - a process: `utime + stime` of `/proc/<pid>/stat`;
//! - PostgreSQL: the sum over every process whose `comm` is `postgres`, plus the
//!   postmaster's `cutime + cstime` (what its exited backends used: a backend that
//!   ends during the phase, pgbench's for one, is not lost). It is the whole server:
//!   the relay's and any other client's queries are in it;
//! - this process: its own time, and apart its waited-for children (pgbench, the peer);
//! - the machine: the busy time of `/proc/stat` (everything but idle and iowait).

use std::time::Instant;

/// The processes a sample reads besides PostgreSQL, the machine and this process.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pids {
    pub(crate) service: Option<u32>,
    pub(crate) relay: Option<u32>,
    /// The broker, when `scripts/bench.sh` says which it is (`BENCH_BROKER_PID`).
    pub(crate) broker: Option<u32>,
}

impl Pids {
    /// Only the broker, for phases that run no service and no relay.
    pub(crate) fn broker_only() -> Pids {
        Pids {
            broker: broker_pid(),
            ..Pids::default()
        }
    }
}

/// Cumulative CPU ticks at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    at: Instant,
    service: u64,
    relay: u64,
    postgres: u64,
    broker: u64,
    bench: u64,
    children: u64,
    machine: u64,
}

/// CPU milliseconds used between two samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) wall_ms: f64,
    pub(crate) service: f64,
    pub(crate) relay: f64,
    pub(crate) postgres: f64,
    pub(crate) broker: f64,
    pub(crate) bench: f64,
    pub(crate) children: f64,
    pub(crate) machine: f64,
}

fn tick_ms() -> f64 {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICK.get_or_init(|| {
        let hz = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .filter(|hz| *hz > 0.0)
            .unwrap_or(100.0);
        1000.0 / hz
    })
}

/// The fields of `/proc/<pid>/stat` after the command name: `[0]` is the state,
/// `[1]` the parent, `[11]` utime, `[12]` stime, `[13]` cutime, `[14]` cstime.
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// `utime + stime` (and `cutime + cstime`) of a process; zeros when it is gone.
fn process_ticks(pid: &str) -> (u64, u64) {
    match stat_fields(pid) {
        Some(f) if f.len() > 14 => (f[11] + f[12], f[13] + f[14]),
        _ => (0, 0),
    }
}

fn comm(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_default()
}

/// Every `postgres` process's own time, plus the postmaster's children's.
fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str() else { continue };
        if !pid.bytes().all(|b| b.is_ascii_digit()) || comm(pid) != "postgres" {
            continue;
        }
        let Some(f) = stat_fields(pid) else { continue };
        if f.len() <= 14 {
            continue;
        }
        total += f[11] + f[12];
        // The postmaster is the postgres process whose parent is not one.
        if comm(&f[1].to_string()) != "postgres" {
            total += f[13] + f[14];
        }
    }
    total
}

/// Busy ticks of the whole machine (all CPUs) from `/proc/stat`.
fn machine_ticks() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    f.iter().take(8).sum::<u64>() - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0)
}

pub(crate) fn sample(pids: &Pids) -> Sample {
    let one = |pid: Option<u32>| pid.map_or(0, |p| process_ticks(&p.to_string()).0);
    let (bench, children) = process_ticks("self");
    Sample {
        at: Instant::now(),
        service: one(pids.service),
        relay: one(pids.relay),
        postgres: postgres_ticks(),
        broker: one(pids.broker),
        bench,
        children,
        machine: machine_ticks(),
    }
}

impl Usage {
    pub(crate) fn between(before: &Sample, after: &Sample) -> Usage {
        let d = |a: u64, b: u64| b.saturating_sub(a) as f64 * tick_ms();
        Usage {
            wall_ms: after.at.duration_since(before.at).as_secs_f64() * 1000.0,
            service: d(before.service, after.service),
            relay: d(before.relay, after.relay),
            postgres: d(before.postgres, after.postgres),
            broker: d(before.broker, after.broker),
            bench: d(before.bench, after.bench),
            children: d(before.children, after.children),
            machine: d(before.machine, after.machine),
        }
    }

    /// The sum of two measurements (of two halves of one phase).
    pub(crate) fn plus(&self, other: &Usage) -> Usage {
        Usage {
            wall_ms: self.wall_ms + other.wall_ms,
            service: self.service + other.service,
            relay: self.relay + other.relay,
            postgres: self.postgres + other.postgres,
            broker: self.broker + other.broker,
            bench: self.bench + other.bench,
            children: self.children + other.children,
            machine: self.machine + other.machine,
        }
    }

    /// What the machine spent on processes not measured apart (other work on it).
    pub(crate) fn other(&self) -> f64 {
        (self.machine
            - self.service
            - self.relay
            - self.postgres
            - self.broker
            - self.bench
            - self.children)
            .max(0.0)
    }

    /// Cores kept busy on average by `ms` of CPU over the sampled wall time.
    pub(crate) fn cores(&self, ms: f64) -> f64 {
        if self.wall_ms > 0.0 {
            ms / self.wall_ms
        } else {
            0.0
        }
    }
}

/// The broker's pid, when `scripts/bench.sh` exported it.
pub(crate) fn broker_pid() -> Option<u32> {
    std::env::var("BENCH_BROKER_PID")
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p: &u32| std::path::Path::new(&format!("/proc/{p}")).exists())
}

/// Two lines: the CPU per unit of work of the named parts, then of the machine with
/// what it holds besides them.
pub(crate) fn report_cpu(
    what: &str,
    count: usize,
    usage: &Usage,
    parts: &[(&str, f64)],
    children: Option<&str>,
) {
    let per = |ms: f64| ms / count.max(1) as f64;
    let named: Vec<String> = parts
        .iter()
        .map(|(name, ms)| format!("{name} {:.3}", per(*ms)))
        .collect();
    crate::figures::report(&format!("{what}, CPU ms each"), &named.join(", "));
    let mut rest = vec![format!("this bench {:.3}", per(usage.bench))];
    if let Some(label) = children {
        rest.push(format!("{label} {:.3}", per(usage.children)));
    }
    if usage.broker > 0.0 {
        rest.push(format!("broker {:.3}", per(usage.broker)));
    }
    rest.push(format!("other {:.3}", per(usage.other())));
    crate::figures::report(
        &format!("{what}, machine CPU ms each"),
        &format!(
            "{:.3} ({}); {:.2} cores busy",
            per(usage.machine),
            rest.join(", "),
            usage.cores(usage.machine)
        ),
    );
}
