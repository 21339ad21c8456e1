//! The PostgreSQL adapter against a real database: the event store, the outbox and
//! the idempotency keys, used directly through the ports and through the use cases
//! the way the service builds them.
//!
//! Every test gets a throwaway database with the migrations applied
//! (`#[sqlx::test]`); run with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-postgres --test postgres_store`.
//!
//! Concurrency is real (several connections, several transactions). Where a test
//! needs a race to happen every time, [`support::RendezvousStore`] makes the first
//! readers wait for each other before any of them writes.
//!
//! One test binary with a module per concern, so the dependencies are linked once:
//! - `event_store`: append and load, expected versions, concurrent appends;
//! - `outbox`: rows written if and only if the transaction commits;
//! - `idempotency`: replays, concurrent commands with one key, the purge;
//! - `preconditions`: an id that exists, an If-Match that does not match;
//! - `undecodable`: stored events that cannot be decoded;
//! - `queries`: the order as of an instant, its history;
//! - `unavailable`: an unreachable database;
//! - `support`: the building blocks they share.

mod event_store;
mod idempotency;
mod outbox;
mod preconditions;
mod queries;
mod support;
mod unavailable;
mod undecodable;
