//! Every statement on `outbox`: writing rows (the relay's replay; a command's rows are
//! written by its statement, `unit_of_work.rs`, from `OutboxColumns`) and
//! waking the relays after a commit; the relay's cycle (lock partitions, read due
//! rows, delete, record failures); and what operators see and do (backlog, parked
//! rows, retry). Skipping parked rows moves them to `outbox_dead_letters`
//! ([`crate::outbox_dead_letters`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use application::EventEnvelope;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::convert::{from_column, to_column, Misfit};

/// The channel the relays `LISTEN` on.
pub const CHANNEL: &str = "outbox";

/// Sends one wake-up to every listening relay, in its own statement: call it after the
/// transaction that wrote outbox rows committed, never inside it (the commits of
/// transactions that notified are serialized by PostgreSQL).
///
/// # Errors
/// When the database fails.
pub async fn notify<'c>(executor: impl PgExecutor<'c>) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify($1, '')", CHANNEL)
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
    sqlx::query!(
        "INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at, traceparent) \
         SELECT e.event_id, e.aggregate_id, e.version, e.event_type, e.message, e.occurred_at, e.traceparent \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) \
              WITH ORDINALITY AS e(event_id, aggregate_id, version, event_type, message, occurred_at, traceparent, n) \
         ORDER BY e.n",
        &columns.event_ids,
        &columns.aggregate_ids,
        &columns.versions,
        // `as _`: arrays of `&str` and of NULLable text are encoded as text[], which the
        // macro's check (`&[String]` only) does not know.
        &columns.types as _,
        &columns.messages,
        &columns.occurred,
        &columns.traceparents as _,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Outbox rows as column arrays for `UNNEST`, each with the exact JSON to publish; shared
/// by [`insert`] and the command unit of work's statement.
#[derive(Debug)]
pub(crate) struct OutboxColumns {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) aggregate_ids: Vec<Uuid>,
    pub(crate) versions: Vec<i64>,
    pub(crate) types: Vec<&'static str>,
    pub(crate) messages: Vec<String>,
    pub(crate) occurred: Vec<DateTime<Utc>>,
    pub(crate) traceparents: Vec<Option<String>>,
}

impl OutboxColumns {
    /// # Errors
    /// When a version does not fit the column.
    pub(crate) fn of(events: &[EventEnvelope]) -> Result<Self, Misfit> {
        Ok(Self {
            event_ids: events.iter().map(|e| e.event_id).collect(),
            aggregate_ids: events.iter().map(|e| e.aggregate_id.as_uuid()).collect(),
            versions: events
                .iter()
                .map(|e| to_column("outbox.version", e.version))
                .collect::<Result<_, _>>()?,
            types: events.iter().map(|e| e.event_type()).collect(),
            messages: events.iter().map(|e| e.to_wire().to_string()).collect(),
            occurred: events.iter().map(|e| e.occurred_at).collect(),
            traceparents: events.iter().map(|e| e.traceparent.clone()).collect(),
        })
    }
}

/// How many partitions the outbox is split into (fixed by the migration's expression).
pub const PARTITIONS: i32 = 64;

/// First key of the relays' two-key advisory locks; the second is the partition.
pub const LOCK_CLASS: i32 = 0x6f62_7872; // "obxr"

/// One outbox row due for publishing, with the exact message to send.
#[derive(Debug, Clone)]
pub struct DueRow {
    pub id: i64,
    pub partition: i32,
    /// The failed attempts so far.
    pub attempts: u32,
    pub event_id: Uuid,
    pub aggregate_id: Uuid,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub traceparent: Option<String>,
    /// The envelope's JSON, as written by the command.
    pub message: String,
    /// When the row was written (≈ when its transaction committed), for the latency metric.
    pub created_at: DateTime<Utc>,
}

/// Opens a cycle's transaction, planned for a queue: walk the primary key in `id` order
/// and stop after a batch. Without the settings, stale statistics after a burst of
/// inserts (before autovacuum analyzes the table) make the planner sort the whole table
/// on every cycle, and JIT compilation alone costs more than a whole cycle. They are
/// sent with `BEGIN` in one message, so they cost no round trip of their own.
///
/// The cycle commits asynchronously (`synchronous_commit = off`): its commit returns
/// without waiting for the WAL flush, which was most of a cycle's commit (5–13 ms for a
/// batch of 2,000 deletions here). This is safe for what a cycle writes: the deletion
/// of rows the broker already acknowledged, and failed attempts. A database crash may
/// lose the last few hundred milliseconds of them, and then those rows are published
/// again: duplicates, which at-least-once delivery allows, never a lost event. The
/// commands' own transactions stay synchronous.
///
/// # Errors
/// When the database fails.
pub async fn begin_cycle(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    // Not a query (no macro applies): the statement that opens the transaction.
    pool.begin_with(
        "BEGIN; SET LOCAL jit = off; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off; \
         SET LOCAL synchronous_commit = off",
    )
    .await
}

/// Takes the advisory lock of each of `partitions` that no other relay holds, for the
/// rest of the transaction; returns the ones taken.
///
/// # Errors
/// When the database fails.
pub async fn lock_partitions(
    conn: &mut PgConnection,
    partitions: &[i32],
) -> Result<Vec<i32>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT p AS "p!" FROM unnest($1::int[]) AS p WHERE pg_try_advisory_xact_lock($2, p) ORDER BY p"#,
        partitions,
        LOCK_CLASS,
    )
    .fetch_all(conn)
    .await
}

/// The oldest due rows of `partitions`, in `id` order. A row is due unless it is parked
/// or waiting for its next attempt, and unless an earlier row of the same order is
/// parked or waiting (its successors are held back so no consumer sees a gap).
///
/// "Now" is `statement_timestamp()`, not `clock_timestamp()`: a volatile function in
/// the `NOT EXISTS` keeps PostgreSQL from turning it into an anti-join, and it then
/// probes the failing rows' index once per candidate row (2,000 probes per batch, about
/// half of the read's time); as an anti-join the failing rows are read once.
///
/// # Errors
/// When the database fails.
pub async fn due(
    conn: &mut PgConnection,
    partitions: &[i32],
    limit: u32,
) -> Result<Vec<DueRow>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT o.id, o.partition AS "partition!", o.attempts, o.event_id, o.aggregate_id,
                  o.event_type, o.message, o.occurred_at, o.traceparent, o.created_at
           FROM outbox o
           WHERE o.partition = ANY($1)
             AND o.parked_at IS NULL
             AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= statement_timestamp())
             AND NOT EXISTS (
                 SELECT 1 FROM outbox b
                 WHERE b.attempts > 0 AND b.aggregate_id = o.aggregate_id AND b.id < o.id
                   AND (b.parked_at IS NOT NULL OR b.next_attempt_at > statement_timestamp()))
           ORDER BY o.id
           LIMIT $2"#,
        partitions,
        i64::from(limit),
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(DueRow {
                id: row.id,
                partition: row.partition,
                attempts: from_column("outbox.attempts", row.attempts)?,
                event_id: row.event_id,
                aggregate_id: row.aggregate_id,
                event_type: row.event_type,
                occurred_at: row.occurred_at,
                traceparent: row.traceparent,
                message: row.message,
                created_at: row.created_at,
            })
        })
        .collect()
}

/// Deletes published rows.
///
/// # Errors
/// When the database fails.
pub async fn delete(conn: &mut PgConnection, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM outbox WHERE id = ANY($1)", ids)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Records a failed attempt: the row waits `retry_in_ms`, or is parked when it has
/// used up `max_attempts`.
///
/// # Errors
/// When the database fails.
pub async fn record_failure(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
    retry_in_ms: i64,
    max_attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
             next_attempt_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000), \
             parked_at = CASE WHEN attempts + 1 >= $4 THEN clock_timestamp() END \
         WHERE id = $1",
        id,
        error,
        retry_in_ms as f64,
        max_attempts,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Backlog figures for `/metrics`: rows waiting, age of the oldest in seconds, parked rows.
///
/// # Errors
/// When the database fails.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64, i64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "waiting!",
                  COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8
                      AS "oldest_age!",
                  count(*) FILTER (WHERE parked_at IS NOT NULL) AS "parked!"
           FROM outbox"#,
    )
    .fetch_one(pool)
    .await?;
    Ok((row.waiting, row.oldest_age, row.parked))
}

/// Backlog of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionBacklog {
    pub partition: i32,
    /// Rows not yet published, parked ones included.
    pub waiting: i64,
    pub parked: i64,
    /// Age of the oldest row not yet published; 0 when there is none.
    pub oldest_age_seconds: f64,
}

/// The backlog of every partition, `0..PARTITIONS` in order (empty ones included).
///
/// # Errors
/// When the database fails.
pub async fn backlog_by_partition<'c>(
    executor: impl PgExecutor<'c>,
) -> Result<Vec<PartitionBacklog>, sqlx::Error> {
    sqlx::query_as!(
        PartitionBacklog,
        r#"SELECT p AS "partition!", count(o.id) AS "waiting!",
                  count(o.id) FILTER (WHERE o.parked_at IS NOT NULL) AS "parked!",
                  COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(o.created_at)), 0)::float8
                      AS "oldest_age_seconds!"
           FROM generate_series(0, $1::integer - 1) AS p
           LEFT JOIN outbox o ON o.partition = p
           GROUP BY p ORDER BY p"#,
        PARTITIONS,
    )
    .fetch_all(executor)
    .await
}

/// A parked row, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRow {
    pub id: i64,
    pub event_id: Uuid,
    pub aggregate_id: Uuid,
    pub version: i64,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub parked_at: DateTime<Utc>,
}

/// Up to `limit` parked rows after outbox id `after` (of order `order` only, when
/// given), oldest (lowest id) first.
///
/// # Errors
/// When the database fails.
pub async fn parked<'c>(
    executor: impl PgExecutor<'c>,
    order: Option<Uuid>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ParkedRow>, sqlx::Error> {
    sqlx::query_as!(
        ParkedRow,
        r#"SELECT id, event_id, aggregate_id, version, event_type, attempts, last_error,
                  parked_at AS "parked_at!"
           FROM outbox
           WHERE parked_at IS NOT NULL AND id > $1 AND ($2::uuid IS NULL OR aggregate_id = $2)
           ORDER BY id LIMIT $3"#,
        after.unwrap_or(0),
        order,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// Which parked rows an operator command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedSelection {
    All,
    Row(i64),
    Order(Uuid),
}

impl ParkedSelection {
    /// The selection as the statements' parameters: a row id, an order id (NULL: any).
    pub(crate) fn bind(self) -> (Option<i64>, Option<Uuid>) {
        match self {
            Self::All => (None, None),
            Self::Row(id) => (Some(id), None),
            Self::Order(order) => (None, Some(order)),
        }
    }
}

/// Makes parked rows due again, with a fresh count of attempts. Wake the relays
/// ([`notify`]) once the transaction committed.
///
/// # Errors
/// When the database fails.
pub async fn retry_parked(
    conn: &mut PgConnection,
    selection: ParkedSelection,
) -> Result<u64, sqlx::Error> {
    let (id, order) = selection.bind();
    let done = sqlx::query!(
        "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = NULL, last_error = NULL \
         WHERE parked_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1) AND ($2::uuid IS NULL OR aggregate_id = $2)",
        id,
        order,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
