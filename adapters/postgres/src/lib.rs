//! PostgreSQL through `sqlx`: the connection pool, the migrations, the event store
//! (with snapshots) and its unit of work, the outbox, the idempotency keys and the
//! order-summary read model. The service and the relay reach the database only
//! through this crate.
//!
//! # Layout
//! - [`PgEventStore`] (`event_store.rs`): the application's `EventStore` and
//!   `UnitOfWork` ports: events, snapshots, outbox rows and idempotency keys in one
//!   statement per command.
//! - [`outbox`]: every statement on the outbox and its dead letters: writing rows and
//!   waking the relays, the relay's cycle, parked rows for operators.
//! - [`relay_members`]: the live relays, heartbeats and member locks.
//! - [`events`]: reads of `events` in global order (replay, rebuild) and the decoding
//!   of a stored row, shared with the event store.
//! - [`read_model`]: [`PgReadModel`] (`order_summaries`) and its [`rebuild`].

mod event_store;
pub mod events;
pub mod outbox;
pub mod read_model;
pub mod relay_members;

use std::time::Duration;

use anyhow::Context;
use application::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use event_store::{purge_idempotency_keys, PgEventStore};
pub use read_model::{rebuild, PgReadModel, RebuildReport};

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
        // Dynamic only in name: a constant statement with no table, checked by nothing.
        sqlx::query("SELECT 1").execute(&self.0).await.is_ok()
    }
}
