//! The messaging spans of API.md's Tracing, made only when traces are exported (the
//! callers check [`order_runtime::telemetry::is_enabled`] once per batch): the relay's
//! producer span per published event, a child of the trace the event was written under
//! (its stored `traceparent`), whose context the message's `traceparent` header then
//! carries; and the projector's consumer span per message, a child of that header.
//! Attributes follow OpenTelemetry's messaging conventions.

use order_runtime::telemetry;
use rdkafka::error::KafkaError;
use tracing::field::Empty;
use tracing::Span;

use crate::producer::OutgoingEvent;

/// The producer span of `event` sent to `topic`, continuing the event's stored
/// `traceparent` (a root span when it has none); it ends when dropped, so the caller
/// keeps it until the broker's acknowledgment.
pub fn producer_span(event: &OutgoingEvent, topic: &str) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "send",
        otel.name = %format_args!("send {topic}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        "messaging.operation.type" = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %topic,
        messaging.message.id = %event.event_id,
        messaging.kafka.message.key = %event.aggregate_id,
        messaging.kafka.offset = Empty,
        messaging.destination.partition.id = Empty,
        "error.type" = Empty,
    );
    telemetry::set_parent(&span, event.traceparent.as_deref());
    span
}

/// Records the broker's answer on a producer span: where the message went, or why not.
pub fn record_delivery(span: &Span, delivered: Result<(i32, i64), &KafkaError>) {
    match delivered {
        Ok((partition, offset)) => {
            span.record("messaging.destination.partition.id", partition.to_string());
            span.record("messaging.kafka.offset", offset);
        }
        Err(error) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", tracing::field::display(error));
        }
    }
}

/// The consumer span of one received message: a child of its `traceparent` header (a
/// root span without one). It ends when dropped, once the message is applied.
pub fn consumer_span(
    topic: &str,
    group: &str,
    partition: i32,
    offset: i64,
    traceparent: Option<&str>,
) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "process",
        otel.name = %format_args!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        "messaging.operation.type" = "process",
        messaging.operation.name = "process",
        messaging.destination.name = %topic,
        messaging.consumer.group.name = %group,
        messaging.destination.partition.id = %partition,
        messaging.kafka.offset = offset,
        messaging.message.id = Empty,
    );
    telemetry::set_parent(&span, traceparent);
    span
}

/// The span a batch of several messages is applied under: linked to each message's
/// consumer span, since it has no single parent.
pub fn batch_span(topic: &str, messages: &[Span]) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "process batch",
        otel.name = %format_args!("process {topic} batch"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        "messaging.operation.type" = "process",
        messaging.destination.name = %topic,
        messaging.batch.message_count = messages.len(),
    );
    for message in messages {
        telemetry::add_link(&span, telemetry::traceparent(message).as_deref());
    }
    span
}
