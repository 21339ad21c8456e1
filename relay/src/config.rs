//! Configuration of `outbox-relay`: every setting is a flag and an environment variable.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::relay::FaultPhase;

/// The producer's default `linger.ms` (see `RELAY_LINGER_MS`).
pub const DEFAULT_LINGER_MS: u64 = 1;

/// Publishes outbox rows to Kafka: at least once, in order per order, safe with several
/// instances, crash-safe. Without a subcommand it runs the relay.
///
/// Every setting is a flag and an environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(name = "outbox-relay", version, about, long_about = None)]
pub struct Config {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// PostgreSQL connection URL (the order service's database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/orders",
        global = true
    )]
    pub database_url: String,

    /// Log format on standard error.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub traces: order_runtime::TraceArgs,

    #[command(flatten)]
    pub run: RunConfig,
}

/// Settings of the relay daemon.
#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Topic the order events are published to.
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders.events")]
    pub orders_topic: String,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "RELAY_ADMIN_ADDR", default_value = "127.0.0.1:9464")]
    pub relay_admin_addr: String,

    /// How often an idle relay looks for rows when no notification woke it, in ms.
    #[arg(long, env = "RELAY_POLL_INTERVAL_MS", default_value_t = 500)]
    pub poll_interval_ms: u64,

    /// Most rows published per cycle.
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = 2000)]
    pub batch_size: u32,

    /// How long the producer waits for more messages before sending a request to the
    /// broker, in ms. Under a backlog the requests fill up anyway while earlier ones are
    /// in flight, so a short wait costs throughput little and saves every event its length.
    #[arg(long, env = "RELAY_LINGER_MS", default_value_t = DEFAULT_LINGER_MS)]
    pub linger_ms: u64,

    /// How long the producer tries to deliver one message before the cycle fails and
    /// its rows are retried, in ms.
    #[arg(long, env = "RELAY_MESSAGE_TIMEOUT_MS", default_value_t = 10_000)]
    pub message_timeout_ms: u64,

    /// Longest pause between retries after a failure, in ms (the pause grows
    /// exponentially from 100 ms, with jitter).
    #[arg(long, env = "RELAY_MAX_BACKOFF_MS", default_value_t = 10_000)]
    pub max_backoff_ms: u64,

    /// Attempts of a row that cannot be published (too large, not JSON) before it is
    /// parked; the later rows of its order wait until an operator retries or skips it.
    #[arg(long, env = "RELAY_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: i32,

    /// A relay not heard from for this long is dead and its partitions are taken
    /// over, in ms.
    #[arg(long, env = "RELAY_MEMBER_TTL_MS", default_value_t = 5000)]
    pub member_ttl_ms: u64,

    /// Fault-injection tests only: pause every cycle at a phase for some ms
    /// (`after-produce:2000`, `after-ack:2000`) so a test can kill the relay there.
    #[arg(long, env = "RELAY_FAULT_PAUSE", hide = true, value_parser = parse_fault)]
    pub fault_pause: Option<(FaultPhase, Duration)>,
}

fn parse_fault(text: &str) -> Result<(FaultPhase, Duration), String> {
    let (phase, ms) = text.split_once(':').ok_or("expected PHASE:MS")?;
    let phase = match phase {
        "after-produce" => FaultPhase::AfterProduce,
        "after-ack" => FaultPhase::AfterAck,
        other => return Err(format!("unknown phase {other:?}")),
    };
    let ms: u64 = ms.parse().map_err(|_| "MS must be a number".to_owned())?;
    Ok((phase, Duration::from_millis(ms)))
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Show the backlog per partition, the oldest unpublished row, parked rows, and the
    /// live relays with their partitions (JSON on standard output).
    Status,
    /// Make parked rows due again (all, one row, or one order's).
    RetryParked(ParkedTarget),
    /// Give up on parked rows: move them, and the rows of their orders held back behind
    /// them, to `outbox_dead_letters` with a reason, so their orders' next events flow
    /// again (consumers will see a gap).
    SkipParked {
        #[command(flatten)]
        target: ParkedTarget,
        /// Why (recorded with the rows and in the administration's actions).
        #[arg(long, value_parser = parse_reason)]
        reason: String,
    },
    /// Re-enqueue events from the event store (they keep their eventId), to refill a
    /// topic or feed a new consumer: all, one order's, or from a position or time.
    Replay(ReplayTarget),
}

/// Which parked rows.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ParkedTarget {
    /// Every parked row.
    #[arg(long)]
    pub all: bool,
    /// The parked row with this outbox id.
    #[arg(long)]
    pub id: Option<i64>,
    /// The parked rows of this order.
    #[arg(long)]
    pub order: Option<Uuid>,
}

impl ParkedTarget {
    /// The rows as the administration names them.
    pub fn selection(&self) -> application::admin::ParkedTarget {
        use application::admin::ParkedTarget as Target;
        match (self.id, self.order) {
            (Some(id), _) => Target::Row(id),
            (None, Some(order)) => Target::Order(domain::OrderId::from_uuid(order)),
            (None, None) => Target::All,
        }
    }
}

fn parse_reason(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err("a reason is 1 to 200 characters without control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// Which events to replay (filters combine).
#[derive(Debug, Clone, Args)]
pub struct ReplayTarget {
    /// Only this order's events.
    #[arg(long)]
    pub order: Option<Uuid>,
    /// Only events at or after this global position (the history's `position`).
    #[arg(long)]
    pub from_position: Option<u64>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl RunConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms.max(1))
    }
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(100))
    }
    pub fn member_ttl(&self) -> Duration {
        Duration::from_millis(self.member_ttl_ms.max(500))
    }
}
