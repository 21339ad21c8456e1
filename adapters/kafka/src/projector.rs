//! The projector's Kafka side: consumes the orders topic in consumer group
//! `PROJECTOR_GROUP_ID`, hands batches of envelopes to the application's
//! [`Projector`], and commits the consumer offsets only after the read model's
//! transaction committed. A crash in between redelivers the batch, which the projector
//! skips (it is idempotent), so the read model is built at least once and never twice.
//!
//! It consumes through the consumer crate `order-events`, as any downstream team does:
//! every message is decoded, checked against its headers and upcast by
//! [`order_events::decode`]. Dedupe and ordering are the read model's own: each
//! summary keeps its order's version in the same transaction as its content (the
//! inbox pattern of `order_events::PgInbox`, per row), and a gap is filled from the
//! event store, which only the service can read.
//!
//! When traces are exported, each message gets a consumer span (a child of its
//! `traceparent` header) that lasts until its batch is applied; the batch is applied
//! under that span, or, for several messages, under a span linked to each of theirs.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use application::envelope::decode_event;
use application::{EventEnvelope, EventMetadata, Projector};
use domain::OrderId;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::Instrument;

use crate::trace;

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
    let consumer = subscribe(&settings)?;
    tracing::info!(topic = %settings.topic, group = %settings.group_id, "projector started");
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let first = tokio::select! {
            () = &mut shutdown => break,
            message = consumer.recv() => message,
        };
        let traced = order_runtime::telemetry::is_enabled().then(|| Traced {
            settings: &settings,
            spans: Vec::new(),
        });
        let (batch, offsets, traced) = next_batch(&consumer, first, settings.max_batch, traced);
        let applied = match traced.as_ref().map(|t| t.spans.as_slice()) {
            None | Some([]) => apply_until_done(&projector, &batch, &mut shutdown).await,
            Some([one]) => {
                apply_until_done(&projector, &batch, &mut shutdown)
                    .instrument(one.clone())
                    .await
            }
            Some(many) => {
                apply_until_done(&projector, &batch, &mut shutdown)
                    .instrument(trace::batch_span(&settings.topic, many))
                    .await
            }
        };
        // The consumer spans end here, their messages applied.
        drop(traced);
        if !applied {
            return Ok(());
        }
        commit_offsets(&consumer, &settings.topic, offsets)?;
    }
    tracing::info!("projector stopped");
    Ok(())
}

/// The consumer of `settings.group_id`, subscribed to the topic, committing by hand.
fn subscribe(settings: &ProjectorSettings) -> anyhow::Result<StreamConsumer> {
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
    Ok(consumer)
}

/// The consumer spans of a batch, when traces are exported.
struct Traced<'a> {
    settings: &'a ProjectorSettings,
    spans: Vec<tracing::Span>,
}

impl Traced<'_> {
    /// Starts the consumer span of a received message, continuing its `traceparent`.
    fn receive(&mut self, message: &rdkafka::message::BorrowedMessage<'_>) -> &tracing::Span {
        let traceparent = message
            .headers()
            .and_then(|headers| headers.iter().find(|header| header.key == "traceparent"))
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok());
        self.spans.push(trace::consumer_span(
            &self.settings.topic,
            &self.settings.group_id,
            message.partition(),
            message.offset(),
            traceparent,
        ));
        &self.spans[self.spans.len() - 1]
    }
}

/// The batch that starts with `first`: whatever else is already fetched joins it, up to
/// `max_batch`; with the next offset to commit per partition (and, traced, the
/// messages' consumer spans).
fn next_batch<'a>(
    consumer: &StreamConsumer,
    first: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
    max_batch: usize,
    mut traced: Option<Traced<'a>>,
) -> (Vec<EventEnvelope>, HashMap<i32, i64>, Option<Traced<'a>>) {
    let mut batch = Vec::new();
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    take(first, &mut batch, &mut offsets, traced.as_mut());
    while batch.len() < max_batch {
        match consumer.recv().now_or_never() {
            Some(message) => take(message, &mut batch, &mut offsets, traced.as_mut()),
            None => break,
        }
    }
    (batch, offsets, traced)
}

/// Applies the batch, retrying with back-off (100 ms doubling to 5 s) until it
/// succeeds; false when the shutdown came first (the offsets are then not committed).
async fn apply_until_done(
    projector: &Projector,
    batch: &[EventEnvelope],
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match projector.apply(batch).await {
            Ok(applied) => {
                tracing::debug!(?applied, "batch projected");
                return true;
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{:#}", anyhow::Error::from(error)),
                    "projecting a batch failed; retrying"
                );
                tokio::select! {
                    () = &mut *shutdown => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Commits the next offset of each partition of an applied batch.
fn commit_offsets(
    consumer: &StreamConsumer,
    topic: &str,
    offsets: HashMap<i32, i64>,
) -> anyhow::Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let mut list = TopicPartitionList::new();
    for (partition, next) in offsets {
        list.add_partition_offset(topic, partition, Offset::Offset(next))
            .context("building the offsets to commit")?;
    }
    // Async: a lost commit only means a redelivery, which the projector skips.
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        tracing::warn!(%error, "committing the projector's offsets failed; the batch may be redelivered");
    }
    Ok(())
}

/// Adds a received message to the batch (when it is an envelope) and notes the offset
/// to commit for its partition.
fn take(
    message: rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'_>>,
    batch: &mut Vec<EventEnvelope>,
    offsets: &mut HashMap<i32, i64>,
    traced: Option<&mut Traced<'_>>,
) {
    match message {
        Ok(message) => {
            offsets.insert(message.partition(), message.offset() + 1);
            let span = traced.map(|traced| traced.receive(&message));
            match decode(&message) {
                Ok(envelope) => {
                    if let Some(span) = span {
                        span.record(
                            "messaging.message.id",
                            tracing::field::display(envelope.event_id),
                        );
                    }
                    batch.push(envelope);
                }
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

/// The message as the application's envelope, through the consumer crate: decoded,
/// checked against its CloudEvents headers, upcast to the current shape.
fn decode(message: &BorrowedMessage<'_>) -> anyhow::Result<EventEnvelope> {
    let decoded = order_events::decode_message(message)?;
    let event_type = decoded.event.event_type();
    let schema_version = order_events::current_schema_version(event_type).unwrap_or(1);
    Ok(EventEnvelope {
        event_id: decoded.event_id,
        aggregate_id: OrderId::from_uuid(decoded.aggregate_id),
        version: decoded.version,
        occurred_at: decoded.occurred_at,
        event: decode_event(event_type, schema_version, decoded.event.payload())?,
        metadata: EventMetadata {
            user_id: decoded.metadata.user_id,
            correlation_id: decoded.metadata.correlation_id,
            causation_id: decoded.metadata.causation_id,
        },
        traceparent: decoded.traceparent,
        recorded_at: None,
        position: None,
    })
}
