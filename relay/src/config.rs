//! Configuration of `outbox-relay`: every setting is a flag and an environment variable.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Publishes outbox rows to Kafka: at least once, in order per order, safe with several
/// instances, crash-safe.
///
/// Every setting is a flag and an environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(name = "outbox-relay", version, about, long_about = None)]
pub struct Config {
    /// PostgreSQL connection URL (the order service's database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/orders"
    )]
    pub database_url: String,

    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Topic the order events are published to.
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders.events")]
    pub orders_topic: String,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "RELAY_ADMIN_ADDR", default_value = "127.0.0.1:9464")]
    pub relay_admin_addr: String,

    /// How often an idle relay looks for new rows, in milliseconds.
    #[arg(long, env = "RELAY_POLL_INTERVAL_MS", default_value_t = 50)]
    pub poll_interval_ms: u64,

    /// Most rows published per cycle.
    #[arg(long, env = "RELAY_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: u32,

    /// How long the producer tries to deliver one message before the cycle fails and
    /// its rows are retried, in milliseconds.
    #[arg(long, env = "RELAY_MESSAGE_TIMEOUT_MS", default_value_t = 10_000)]
    pub message_timeout_ms: u64,

    /// Longest pause between retries after a failure, in milliseconds (the pause grows
    /// exponentially from 100 ms, with jitter).
    #[arg(long, env = "RELAY_MAX_BACKOFF_MS", default_value_t = 10_000)]
    pub max_backoff_ms: u64,

    /// Log format on standard error.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }
    pub fn message_timeout(&self) -> Duration {
        Duration::from_millis(self.message_timeout_ms.max(1))
    }
    pub fn max_backoff(&self) -> Duration {
        Duration::from_millis(self.max_backoff_ms.max(100))
    }
}
