//! The outbox relay: publishes committed outbox rows to Kafka, at least once and in
//! order per order, and deletes them once the broker has acknowledged them.
//!
//! The 64 outbox partitions are split among the live relays (`relay_members`: a
//! heartbeat and a member lock per relay, ADR 006 and ADR 008). One cycle, in one
//! PostgreSQL transaction:
//! 1. lock each of this relay's partitions (`pg_try_advisory_xact_lock`); a partition
//!    another relay holds at the moment is left to it for this cycle;
//! 2. read the oldest due rows of the locked partitions (`ORDER BY id`, no cursor, so a
//!    row whose transaction committed late is still found on the next cycle; rows
//!    behind a parked row of the same order wait);
//! 3. queue them all on the idempotent producer (`acks=all`) and await every
//!    acknowledgment; rows librdkafka refuses count an attempt and park at the limit;
//! 4. delete the acknowledged rows and commit.
//!
//! A crash anywhere before the commit leaves the rows in place: they are sent again
//! (the consumers deduplicate by `eventId`). Within one order, outbox `id` order is
//! version order, so publishing in `id` order keeps each order's events in order.
//!
//! # Layout
//! - [`config`]: the command line and environment of `outbox-relay`.
//! - [`outbox`]: the outbox as the relay sees it (its statements live in `order-postgres`).
//! - [`metrics`]: Prometheus metrics and the readiness flag.
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`, and the operator subcommands.
//! - [`relay`]: the publishing loop.
//! - [`daemon`]: what the binary runs: the daemon with its admin server, or a subcommand.

pub mod admin;
pub mod config;
pub mod daemon;
pub mod metrics;
pub mod outbox;
pub mod relay;

pub use config::Config;
pub use relay::{Relay, RelaySettings};
