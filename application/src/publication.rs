//! Which domain events leave the service (become outbox rows and Kafka messages).

use domain::OrderEvent;

/// Chooses the events that are published. Every event is stored in the stream; only
/// the chosen ones are written to the outbox.
pub trait PublicationPolicy: Send + Sync + std::fmt::Debug {
    fn publishes(&self, event: &OrderEvent) -> bool;
}

/// The default policy: every order event is published.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishAll;

impl PublicationPolicy for PublishAll {
    fn publishes(&self, _event: &OrderEvent) -> bool {
        true
    }
}
