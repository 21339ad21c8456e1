//! The outbox relay: publishes committed outbox rows to Kafka, at least once and in
//! order per order, and deletes them once the broker has acknowledged them.
//!
//! One cycle, in one PostgreSQL transaction:
//! 1. take the relay's transaction-level advisory lock (`pg_try_advisory_xact_lock`);
//!    if another relay holds it, this one stands by (several instances are safe: one
//!    publishes at a time, and a crashed one's lock dies with its connection);
//! 2. read the oldest rows (`ORDER BY id`, no cursor, so a row whose transaction
//!    committed late is still found on the next cycle);
//! 3. queue them all on the idempotent producer (`acks=all`), stopping at the first
//!    row librdkafka refuses, and await every acknowledgment;
//! 4. delete the acknowledged prefix and commit.
//!
//! A crash anywhere before the commit leaves the rows in place: they are sent again
//! (the consumers deduplicate by `eventId`). Within one order, outbox `id` order is
//! version order, so publishing in `id` order keeps each order's events in order.
//!
//! # Layout
//! - [`config`]: the command line and environment of `outbox-relay`.
//! - [`outbox`]: every SQL statement on the `outbox` table the relay runs.
//! - [`metrics`]: Prometheus metrics and the readiness flag.
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`.
//! - [`relay`]: the publishing loop.

pub mod admin;
pub mod config;
pub mod metrics;
pub mod outbox;
pub mod relay;

pub use config::Config;
pub use relay::{Relay, RelaySettings};
