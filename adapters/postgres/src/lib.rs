//! PostgreSQL through `sqlx`: the connection pool, the migrations, the event store
//! (with snapshots) and its unit of work, the outbox, the idempotency keys and the
//! order-summary read model. The service and the relay reach the database only
//! through this crate.
//!
//! # Layout
//! One module per table, the only one with statements on it. A statement that spans
//! tables lives with the table it is about, and the other tables' modules point to it.
//! Every static statement is checked at compile time (`sqlx::query!` and its kin,
//! against the offline data in the workspace's `.sqlx/`); the few dynamic ones say why
//! where they stand. A row decodes through a conversion that fails on a value that does
//! not fit (`convert.rs`), never a default.
//!
//! - [`events`]: `events` — a stream's events, reads in global order (replay,
//!   rebuild), the decoding of a stored event.
//! - `snapshots.rs`: `snapshots` — the latest snapshot, alone or with the later events.
//! - `idempotency_keys.rs`: `idempotency_keys` — lookups and
//!   [`purge_idempotency_keys`].
//! - [`outbox`]: `outbox` — writing rows and waking the relays, the relay's cycle,
//!   parked rows for operators.
//! - [`outbox_dead_letters`]: `outbox_dead_letters` — skipping parked rows (and the
//!   rows held back behind them).
//! - `admin_actions.rs`: `admin_actions` — the record of administrative actions.
//! - `admin_jobs.rs`: `admin_jobs` — replays and rebuilds, their progress, their
//!   runners' locks.
//! - [`PgAdministration`] (`admin.rs`): the application's `AdminStore` port on the
//!   modules above (no SQL of its own).
//! - [`relay_members`]: `relay_members` — the live relays, heartbeats and member locks.
//! - [`order_summaries`]: `order_summaries` — [`PgReadModel`] and its [`rebuild`].
//! - `unit_of_work.rs`: a command's writes (`events`, `outbox`, `idempotency_keys`,
//!   `snapshots`) in one statement, `unit_of_work/commit.sql`.
//! - [`PgEventStore`] (`event_store.rs`): the application's `EventStore`,
//!   `SnapshotStore` and `UnitOfWork` ports, on the modules above (no SQL of its own).
//! - `convert.rs`: integer conversions between columns and ports, failing on misfits.
//! - this file: the pool, the migrations, [`ping`], and the mapping of database errors.

mod admin;
mod admin_actions;
mod admin_jobs;
mod convert;
mod event_store;
pub mod events;
mod idempotency_keys;
pub mod order_summaries;
pub mod outbox;
pub mod outbox_dead_letters;
pub mod relay_members;
mod snapshots;
mod unit_of_work;

use std::time::Duration;

use anyhow::Context;
use application::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use admin::{PgAdministration, DEFAULT_MEMBER_TTL};
pub use event_store::PgEventStore;
pub use idempotency_keys::purge_idempotency_keys;
pub use order_summaries::{rebuild, rebuild_reporting, PgReadModel, RebuildReport};

/// The migrations of `migrations/`, embedded in the binaries.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Opens a pool on `url`. Connections are made lazily, so a database that is down at
/// start makes requests answer 503 instead of the process failing.
///
/// # Errors
/// When `url` is not a valid PostgreSQL URL.
pub fn connect_lazy(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

/// Applies the pending migrations.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// Whether the database answers a trivial statement (the service's readiness).
///
/// # Errors
/// When the database cannot be reached or fails.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("SELECT 1 AS one")
        .fetch_one(pool)
        .await?;
    Ok(())
}

/// Whether an error means the database could not be reached (as opposed to a query
/// that failed): connection errors, pool time-outs, server shutting down.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code == "57P01" || code == "57P02" || code == "57P03"
        }),
        _ => false,
    }
}

/// Maps a database error to the port's error, naming constraints as use-case errors.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        match db.constraint() {
            Some("events_stream_version_key") => return StoreError::VersionConflict,
            Some("idempotency_keys_pkey") => return StoreError::IdempotencyKeyTaken,
            _ => {}
        }
    }
    if is_unavailable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Other(Box::new(error))
    }
}

/// The database answers a trivial statement: what `/readyz` asks.
#[derive(Debug, Clone)]
pub struct PgReadiness(pub PgPool);

#[async_trait::async_trait]
impl application::Readiness for PgReadiness {
    async fn is_ready(&self) -> bool {
        ping(&self.0).await.is_ok()
    }
}
