//! Kafka through `rdkafka`: the producer the relay publishes outbox rows with, and the
//! message format of API.md (key = order id, value = envelope JSON, CloudEvents headers).

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use uuid::Uuid;

/// One event to publish, as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    pub event_id: Uuid,
    pub aggregate_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub traceparent: Option<String>,
    /// The envelope JSON, published byte for byte.
    pub value: String,
}

impl OutgoingEvent {
    /// The CloudEvents Kafka-binding headers of API.md, plus `traceparent` when known.
    pub fn headers(&self) -> OwnedHeaders {
        self.headers_with(self.traceparent.as_deref())
    }

    /// The same headers with another `traceparent` (the producer span's).
    fn headers_with(&self, traceparent: Option<&str>) -> OwnedHeaders {
        let id = self.event_id.to_string();
        let subject = self.aggregate_id.to_string();
        let time = self
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        let mut headers = OwnedHeaders::new_with_capacity(8)
            .insert(Header {
                key: "ce_specversion",
                value: Some("1.0"),
            })
            .insert(Header {
                key: "ce_id",
                value: Some(&id),
            })
            .insert(Header {
                key: "ce_type",
                value: Some(&self.event_type),
            })
            .insert(Header {
                key: "ce_source",
                value: Some("/orders"),
            })
            .insert(Header {
                key: "ce_subject",
                value: Some(&subject),
            })
            .insert(Header {
                key: "ce_time",
                value: Some(&time),
            })
            .insert(Header {
                key: "content-type",
                value: Some("application/json"),
            });
        if let Some(traceparent) = traceparent {
            headers = headers.insert(Header {
                key: "traceparent",
                value: Some(traceparent),
            });
        }
        headers
    }
}

/// Producer settings. Idempotence is always on and `acks=all`: a retried send is never
/// written twice by the broker and messages of a partition keep their order.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub brokers: String,
    /// How long librdkafka keeps trying to deliver one message before failing it.
    pub message_timeout: Duration,
    pub linger: Duration,
}

/// The Kafka producer of order events.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
    settings: ProducerSettings,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// Creates the producer (it connects in the background).
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(settings: &ProducerSettings, topic: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set(
                "message.timeout.ms",
                settings.message_timeout.as_millis().to_string(),
            )
            .set("linger.ms", settings.linger.as_millis().to_string())
            .set("partitioner", "murmur2_random")
            .create()
            .context("creating the Kafka producer")?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
            settings: settings.clone(),
        })
    }

    /// A new producer with the same settings, to replace one in a fatal state.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn renew(&self) -> anyhow::Result<Self> {
        Self::new(&self.settings, &self.topic)
    }

    /// Whether the producer hit a fatal error and can send nothing more. An idempotent
    /// producer does when in-flight messages time out and the broker then fences it
    /// (a frozen broker, for one); it must be replaced.
    pub fn is_fatal(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one event for sending, without waiting; the returned future resolves when
    /// the broker acknowledged it (or librdkafka gave up).
    ///
    /// # Errors
    /// When librdkafka refuses the message at once (queue full, message too large).
    pub fn enqueue(&self, event: &OutgoingEvent) -> Result<DeliveryFuture, KafkaError> {
        self.send(event, event.headers())
    }

    /// [`KafkaPublisher::enqueue`], with `traceparent` (the producer span's context) as
    /// the message's `traceparent` header instead of the stored one.
    ///
    /// # Errors
    /// As [`KafkaPublisher::enqueue`].
    pub fn enqueue_traced(
        &self,
        event: &OutgoingEvent,
        traceparent: Option<&str>,
    ) -> Result<DeliveryFuture, KafkaError> {
        let traceparent = traceparent.or(event.traceparent.as_deref());
        self.send(event, event.headers_with(traceparent))
    }

    fn send(
        &self,
        event: &OutgoingEvent,
        headers: OwnedHeaders,
    ) -> Result<DeliveryFuture, KafkaError> {
        let key = event.aggregate_id.to_string();
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&event.value)
            .headers(headers);
        self.producer
            .send_result(record)
            .map_err(|(error, _)| error)
    }

    /// Whether the broker answers a metadata request for the topic within `timeout`.
    pub fn is_reachable(&self, timeout: Duration) -> bool {
        self.producer
            .client()
            .fetch_metadata(Some(&self.topic), timeout)
            .is_ok()
    }

    /// Waits up to `timeout` for every queued message to be delivered.
    ///
    /// # Errors
    /// When messages are still queued at the deadline.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}
