//! The projector's Kafka side: consumes the orders topic in consumer group
//! `PROJECTOR_GROUP_ID`, hands batches of envelopes to the application's
//! [`Projector`], and commits the consumer offsets only after the read model's
//! transaction committed. A crash in between redelivers the batch, which the projector
//! skips (it is idempotent), so the read model is built at least once and never twice.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use application::envelope::from_wire;
use application::{EventEnvelope, Projector};
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Where the projector reads.
#[derive(Debug, Clone)]
pub struct ProjectorSettings {
    pub brokers: String,
    pub topic: String,
    pub group_id: String,
    /// Most messages applied in one read-model transaction.
    pub max_batch: usize,
}

/// Consumes the topic until `shutdown` resolves. A batch whose read-model write fails
/// is retried (with back-off) until it succeeds, without committing its offsets; a
/// message that is not an event envelope is logged and skipped.
///
/// # Errors
/// When the consumer cannot be created or subscribed.
pub async fn run(
    settings: ProjectorSettings,
    projector: Projector,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Short fetch waits: the read model's lag, not the broker's batching, matters.
        .set("fetch.wait.max.ms", "10")
        .set("fetch.error.backoff.ms", "10")
        .create()
        .context("creating the projector's Kafka consumer")?;
    consumer
        .subscribe(&[&settings.topic])
        .with_context(|| format!("subscribing to {}", settings.topic))?;
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "projector started");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let first = tokio::select! {
            () = &mut shutdown => break,
            message = consumer.recv() => message,
        };
        let mut batch = Vec::new();
        let mut offsets: HashMap<i32, i64> = HashMap::new();
        take(first, &mut batch, &mut offsets);
        // Whatever else is already fetched joins the batch.
        while batch.len() < settings.max_batch {
            match consumer.recv().now_or_never() {
                Some(message) => take(message, &mut batch, &mut offsets),
                None => break,
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match projector.apply(&batch).await {
                Ok(applied) => {
                    tracing::debug!(?applied, "batch projected");
                    break;
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{:#}", anyhow::Error::from(error)),
                        "projecting a batch failed; retrying"
                    );
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if !offsets.is_empty() {
            let mut list = TopicPartitionList::new();
            for (partition, next) in offsets {
                list.add_partition_offset(&settings.topic, partition, Offset::Offset(next))
                    .context("building the offsets to commit")?;
            }
            // Async: a lost commit only means a redelivery, which the projector skips.
            if let Err(error) = consumer.commit(&list, CommitMode::Async) {
                tracing::warn!(%error, "committing the projector's offsets failed; the batch may be redelivered");
            }
        }
    }
    tracing::info!("projector stopped");
    Ok(())
}

/// Adds a received message to the batch (when it is an envelope) and notes the offset
/// to commit for its partition.
fn take(
    message: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
    batch: &mut Vec<EventEnvelope>,
    offsets: &mut HashMap<i32, i64>,
) {
    match message {
        Ok(message) => {
            offsets.insert(message.partition(), message.offset() + 1);
            match decode(message.payload().unwrap_or_default()) {
                Ok(envelope) => batch.push(envelope),
                Err(error) => tracing::error!(
                    partition = message.partition(),
                    offset = message.offset(),
                    error = format!("{error:#}"),
                    "not an order event envelope; skipped"
                ),
            }
        }
        Err(error) => tracing::warn!(%error, "projector consumer error"),
    }
}

fn decode(payload: &[u8]) -> anyhow::Result<EventEnvelope> {
    let value: serde_json::Value = serde_json::from_slice(payload).context("not JSON")?;
    Ok(from_wire(&value)?)
}
