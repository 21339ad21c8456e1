//! The order service's use cases and the ports they need.
//!
//! A command use case loads the order's event stream, rebuilds the aggregate, runs one
//! behaviour, wraps the new events in envelopes (ids, metadata, trace context), and
//! saves them through an explicit [`ports::UnitOfWork`]: the events are appended with
//! the expected version, the events the [`PublicationPolicy`] chooses go to the outbox,
//! and the idempotency record is stored, all in one transaction that commits or
//! leaves nothing. A lost race (another command appended first) is re-run on the fresh
//! state a few times, then reported as a conflict.
//!
//! Use cases log their refusals at debug level (a refused command is the client's
//! business); the adapters log infrastructure failures and bugs at warn and error.
//!
//! Ports are `async-trait` traits used as `Arc<dyn Port>` throughout the codebase.
//!
//! # Layout
//! - [`access`]: [`Actor`], who acts and what their roles allow (API.md's authorization
//!   rules, shared by every adapter).
//! - [`ports`]: the traits adapters implement ([`EventStore`], [`UnitOfWork`], [`Clock`]).
//! - [`envelope`]: [`EventEnvelope`], the event with its metadata, and its wire form.
//! - [`commands`]: [`OrderCommands`], one method per command, and [`CommandError`].
//! - [`queries`]: [`OrderQueries`]: the current order, the order as of an instant, its
//!   history; loaded from the latest usable snapshot ([`SnapshotStore`]) when there is one.
//! - [`projection`]: the read side: [`OrderSummary`], the [`ReadModel`] port, the
//!   idempotent, gap-aware [`Projector`] and the list query [`SummaryQueries`].
//! - [`publication`]: which events become outbox messages.
//! - [`admin`]: [`Administration`], what operators see of the outbox and do to it
//!   (retry, skip, replay, rebuild as jobs), every action recorded; the [`AdminStore`]
//!   port.
//! - [`memory`]: [`MemoryEventStore`], the ports in memory, for fast tests of the use
//!   cases (`tests/use_cases.rs`).

pub mod access;
pub mod admin;
pub mod commands;
pub mod envelope;
pub mod memory;
pub mod ports;
pub mod projection;
pub mod publication;
pub mod queries;

pub use access::{Action, Actor, Forbidden, MissingCustomerId, Role};
pub use admin::{AdminError, AdminStore, Administration, RunningJob};
pub use commands::{
    CommandAck, CommandContext, CommandError, CommandOutcome, IdempotencyRequest, OrderCommands,
};
pub use envelope::{DecodeError, EventEnvelope, EventMetadata};
pub use memory::MemoryEventStore;
pub use ports::{
    Clock, EventStore, IdempotencyRecord, PendingWrites, Readiness, SnapshotStore, StoreError,
    StoredSnapshot, SystemClock, UnitOfWork,
};
pub use projection::{
    Applied, OrderSummary, Projector, ReadModel, SummaryFilter, SummaryPage, SummaryQueries,
};
pub use publication::{PublicationPolicy, PublishAll};
pub use queries::{OrderQueries, QueryError};
