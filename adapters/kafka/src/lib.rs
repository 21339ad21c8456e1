//! Kafka through `rdkafka`, both ways: the producer the relay publishes outbox rows
//! with (and the message format of API.md: key = order id, value = envelope JSON,
//! CloudEvents headers), and the consumer that feeds the read model's projector.
//!
//! # Layout
//! - [`producer`]: [`KafkaPublisher`], [`OutgoingEvent`], [`ProducerSettings`].
//! - [`projector`]: [`projector::run`], the projector's consumer loop.
//! - [`trace`]: the producer and consumer spans, when traces are exported.

pub mod producer;
pub mod projector;
pub mod trace;

pub use producer::{KafkaPublisher, OutgoingEvent, ProducerSettings};
pub use projector::ProjectorSettings;
