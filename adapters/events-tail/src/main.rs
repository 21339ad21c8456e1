//! `order-events tail`: follows `ORDERS_TOPIC` (or reads it `--from-beginning`,
//! optionally one `--order`) and prints each message as one line: JSON
//! (`--format json`, the default) or a readable line (`--format text`), with the
//! consumer crate's verdict: `apply`, `duplicate` (seen before: a redelivery or a
//! replay) or `gap` (ahead of the next expected version), and what does not decode.
//! It joins no consumer group and commits nothing: it never disturbs real consumers.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use order_events::{decode_message, Sequencer, Verdict};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "order-events",
    version,
    about = "Tools for the order events on Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print each event of the topic as it arrives, with dedupe and gap reports.
    Tail(Tail),
}

#[derive(Debug, clap::Args)]
struct Tail {
    /// Bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Topic of the order events.
    #[arg(long, env = "ORDERS_TOPIC", default_value = order_events::asyncapi::DEFAULT_TOPIC)]
    topic: String,
    /// Read the whole topic first (default: only what arrives from now on).
    #[arg(long)]
    from_beginning: bool,
    /// Only the events of this order (its id, the message key).
    #[arg(long)]
    order: Option<Uuid>,
    /// One line of JSON per message, or a readable line.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Stop after printing this many messages (default: follow until interrupted).
    #[arg(long)]
    limit: Option<u64>,
    /// Stop when nothing arrives for this many seconds (default: never).
    #[arg(long)]
    idle_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

fn main() -> anyhow::Result<()> {
    let Command::Tail(tail) = Cli::parse().command;
    tail.run()
}

impl Tail {
    fn run(&self) -> anyhow::Result<()> {
        let consumer = self.assign()?;
        let mut sequencer = Sequencer::new();
        let mut printed = 0;
        let mut out = std::io::stdout().lock();
        let mut last_seen = Instant::now();
        while self.limit.is_none_or(|limit| printed < limit) {
            if self
                .idle_seconds
                .is_some_and(|idle| last_seen.elapsed() >= Duration::from_secs(idle))
            {
                break;
            }
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = message.context("reading the topic")?;
            last_seen = Instant::now();
            let key = message.key().map(String::from_utf8_lossy);
            if let Some(order) = self.order {
                if key.as_deref() != Some(order.to_string().as_str()) {
                    continue;
                }
            }
            let line = self.line(&message, &mut sequencer);
            writeln!(out, "{line}").context("writing to standard output")?;
            printed += 1;
        }
        Ok(())
    }

    /// Every partition of the topic, from its start or its end; no group, no commits.
    fn assign(&self) -> anyhow::Result<BaseConsumer> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("order-events-tail-{}", Uuid::now_v7()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .context("creating the Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .with_context(|| {
                format!("reading the metadata of {} on {}", self.topic, self.brokers)
            })?;
        let partitions = metadata
            .topics()
            .first()
            .map(|topic| topic.partitions().len())
            .filter(|count| *count > 0)
            .with_context(|| format!("topic {} has no partitions (does it exist?)", self.topic))?;
        let start = if self.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            let partition = i32::try_from(partition).context("partition number")?;
            assignment.add_partition_offset(&self.topic, partition, start)?;
        }
        consumer
            .assign(&assignment)
            .context("assigning the partitions")?;
        Ok(consumer)
    }

    fn line(
        &self,
        message: &rdkafka::message::BorrowedMessage<'_>,
        sequencer: &mut Sequencer,
    ) -> String {
        let value = message.payload().unwrap_or_default();
        let at = json!({"partition": message.partition(), "offset": message.offset()});
        let event = match decode_message(message) {
            Ok(event) => event,
            Err(error) => {
                return match self.format {
                    Format::Json => json!({"at": at, "error": error.to_string()}).to_string(),
                    Format::Text => format!(
                        "partition {} offset {}: UNDECODABLE: {error}",
                        message.partition(),
                        message.offset()
                    ),
                };
            }
        };
        let verdict = sequencer.check(&event);
        if verdict == Verdict::Apply {
            sequencer.applied(&event);
        }
        match self.format {
            Format::Json => {
                let mut line = json!({
                    "at": at,
                    "verdict": match verdict {
                        Verdict::Apply => "apply",
                        Verdict::Duplicate => "duplicate",
                        Verdict::Gap { .. } => "gap",
                    },
                    "event": serde_json::from_slice::<Value>(value).unwrap_or(Value::Null),
                });
                if let Verdict::Gap { expected, got } = verdict {
                    line["gap"] = json!({"expected": expected, "got": got});
                }
                line.to_string()
            }
            Format::Text => {
                let note = match verdict {
                    Verdict::Apply => String::new(),
                    Verdict::Duplicate => "  (duplicate: seen before, skip)".to_owned(),
                    Verdict::Gap { expected, got } => {
                        format!("  (GAP: expected v{expected}, got v{got})")
                    }
                };
                format!(
                    "{} {} order={} v{} user={}{note}",
                    event.occurred_at.to_rfc3339(),
                    event.event.event_type(),
                    event.aggregate_id,
                    event.version,
                    event.metadata.user_id.as_deref().unwrap_or("-"),
                )
            }
        }
    }
}
