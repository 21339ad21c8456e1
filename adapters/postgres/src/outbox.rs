//! Writing the outbox, shared by the command unit of work and the relay's replay, and
//! waking the relays after a commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use application::EventEnvelope;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

/// The channel the relays `LISTEN` on.
pub const CHANNEL: &str = "outbox";

/// Sends one wake-up to every listening relay, in its own statement: call it after the
/// transaction that wrote outbox rows committed, never inside it (the commits of
/// transactions that notified are serialized by PostgreSQL).
///
/// # Errors
/// When the database fails.
pub async fn notify<'c>(executor: impl PgExecutor<'c>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(executor)
        .await?;
    Ok(())
}

/// Wakes the relays after commands committed outbox rows, outside every command's
/// transaction, folding the commits of a moment into one `NOTIFY`.
///
/// [`OutboxWaker::wake`] only raises a flag; one background task (started on the first
/// wake) sends a `NOTIFY` whenever the flag is up, then waits [`OutboxWaker::SPACING`]
/// before the next, so a burst of commits costs one notification per spacing, not one
/// per commit. A wake-up that cannot be sent (database down) is dropped: the relays'
/// poll publishes the rows.
#[derive(Debug, Clone, Default)]
pub struct OutboxWaker {
    inner: Arc<WakerState>,
}

#[derive(Debug, Default)]
struct WakerState {
    pending: AtomicBool,
    signal: Notify,
    task: OnceLock<()>,
}

impl OutboxWaker {
    /// The shortest time between two notifications of one process.
    pub const SPACING: Duration = Duration::from_millis(1);

    /// Raises the flag; the background task notifies the relays soon after. Must be
    /// called inside a tokio runtime.
    pub fn wake(&self, pool: &PgPool) {
        self.inner.pending.store(true, Ordering::Release);
        self.inner.task.get_or_init(|| {
            let state = self.inner.clone();
            let pool = pool.clone();
            tokio::spawn(async move { state.run(pool).await });
        });
        self.inner.signal.notify_one();
    }
}

impl WakerState {
    async fn run(self: Arc<Self>, pool: PgPool) {
        loop {
            self.signal.notified().await;
            if pool.is_closed() {
                return;
            }
            if !self.pending.swap(false, Ordering::AcqRel) {
                continue;
            }
            if let Err(error) = notify(&pool).await {
                tracing::debug!(%error, "cannot wake the relays; they will poll");
            }
            tokio::time::sleep(OutboxWaker::SPACING).await;
        }
    }
}

/// Inserts `events` into the outbox in the given order (their `id` order), each with
/// the exact JSON to publish.
///
/// # Errors
/// When the database fails.
pub async fn insert(conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), sqlx::Error> {
    let columns = OutboxColumns::of(events).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at, traceparent) \
         SELECT e.event_id, e.aggregate_id, e.version, e.event_type, e.message, e.occurred_at, e.traceparent \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) \
              WITH ORDINALITY AS e(event_id, aggregate_id, version, event_type, message, occurred_at, traceparent, n) \
         ORDER BY e.n",
    )
    .bind(&columns.event_ids)
    .bind(&columns.aggregate_ids)
    .bind(&columns.versions)
    .bind(&columns.types)
    .bind(&columns.messages)
    .bind(&columns.occurred)
    .bind(&columns.traceparents)
    .execute(conn)
    .await?;
    Ok(())
}

/// Outbox rows as column arrays for `UNNEST`, each with the exact JSON to publish; shared
/// by [`insert`] and the command unit of work's statement.
pub(super) struct OutboxColumns {
    pub(super) event_ids: Vec<Uuid>,
    pub(super) aggregate_ids: Vec<Uuid>,
    pub(super) versions: Vec<i64>,
    pub(super) types: Vec<&'static str>,
    pub(super) messages: Vec<String>,
    pub(super) occurred: Vec<DateTime<Utc>>,
    pub(super) traceparents: Vec<Option<String>>,
}

impl OutboxColumns {
    /// # Errors
    /// When a version does not fit the column.
    pub(super) fn of(events: &[EventEnvelope]) -> Result<Self, std::num::TryFromIntError> {
        Ok(Self {
            event_ids: events.iter().map(|e| e.event_id).collect(),
            aggregate_ids: events.iter().map(|e| e.aggregate_id.as_uuid()).collect(),
            versions: events
                .iter()
                .map(|e| i64::try_from(e.version))
                .collect::<Result<_, _>>()?,
            types: events.iter().map(|e| e.event_type()).collect(),
            messages: events.iter().map(|e| e.to_wire().to_string()).collect(),
            occurred: events.iter().map(|e| e.occurred_at).collect(),
            traceparents: events.iter().map(|e| e.traceparent.clone()).collect(),
        })
    }
}
