//! Every SQL statement the relay runs on `outbox`, `outbox_dead_letters` and
//! `relay_members`.

use chrono::{DateTime, Utc};
use order_kafka::OutgoingEvent;
use sqlx::{Connection, PgConnection, PgExecutor, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

/// How many partitions the outbox is split into (fixed by the migration's expression).
pub const PARTITIONS: i32 = 64;

/// First key of the relays' two-key advisory locks; the second is the partition.
pub const LOCK_CLASS: i32 = 0x6f62_7872; // "obxr"

/// One outbox row due for publishing.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub partition: i32,
    pub attempts: i32,
    pub event: OutgoingEvent,
    /// When the row was written (≈ when its transaction committed), for the latency metric.
    pub created_at: DateTime<Utc>,
}

/// Opens a cycle's transaction, planned for a queue: walk the primary key in `id` order
/// and stop after a batch. Without the settings, stale statistics after a burst of
/// inserts (before autovacuum analyzes the table) make the planner sort the whole table
/// on every cycle, and JIT compilation alone costs more than a whole cycle. They are
/// sent with `BEGIN` in one message, so they cost no round trip of their own.
///
/// # Errors
/// When the database fails.
pub async fn begin_cycle(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(
        "BEGIN; SET LOCAL jit = off; SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off",
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
    sqlx::query_scalar(
        "SELECT p FROM unnest($1::int[]) AS p WHERE pg_try_advisory_xact_lock($2, p) ORDER BY p",
    )
    .bind(partitions)
    .bind(LOCK_CLASS)
    .fetch_all(conn)
    .await
}

/// The oldest due rows of `partitions`, in `id` order. A row is due unless it is parked
/// or waiting for its next attempt, and unless an earlier row of the same order is
/// parked or waiting (its successors are held back so no consumer sees a gap).
///
/// # Errors
/// When the database fails.
pub async fn due(
    conn: &mut PgConnection,
    partitions: &[i32],
    limit: u32,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT o.id, o.partition, o.attempts, o.event_id, o.aggregate_id, o.event_type, o.message, \
                o.occurred_at, o.traceparent, o.created_at \
         FROM outbox o \
         WHERE o.partition = ANY($1) \
           AND o.parked_at IS NULL \
           AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= clock_timestamp()) \
           AND NOT EXISTS ( \
               SELECT 1 FROM outbox b \
               WHERE b.attempts > 0 AND b.aggregate_id = o.aggregate_id AND b.id < o.id \
                 AND (b.parked_at IS NOT NULL OR b.next_attempt_at > clock_timestamp())) \
         ORDER BY o.id \
         LIMIT $2",
    )
    .bind(partitions)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxRow {
            id: row.get("id"),
            partition: row.get("partition"),
            attempts: row.get("attempts"),
            created_at: row.get("created_at"),
            event: OutgoingEvent {
                event_id: row.get("event_id"),
                aggregate_id: row.get("aggregate_id"),
                event_type: row.get("event_type"),
                occurred_at: row.get("occurred_at"),
                traceparent: row.get("traceparent"),
                value: row.get("message"),
            },
        })
        .collect())
}

/// Deletes published rows.
///
/// # Errors
/// When the database fails.
pub async fn delete(conn: &mut PgConnection, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(ids)
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
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, \
             next_attempt_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000), \
             parked_at = CASE WHEN attempts + 1 >= $4 THEN clock_timestamp() END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in_ms as f64)
    .bind(max_attempts)
    .execute(conn)
    .await?;
    Ok(())
}

/// Backlog figures for `/metrics`: rows waiting, age of the oldest in seconds, parked rows.
///
/// # Errors
/// When the database fails.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS waiting, \
                COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8 AS oldest_age, \
                count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked \
         FROM outbox",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.get("waiting"), row.get("oldest_age"), row.get("parked")))
}

/// Backlog of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionBacklog {
    pub partition: i32,
    pub waiting: i64,
    pub oldest_age_seconds: f64,
}

/// Rows waiting per partition (partitions with none are left out).
///
/// # Errors
/// When the database fails.
pub async fn backlog_by_partition(pool: &PgPool) -> Result<Vec<PartitionBacklog>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT partition, count(*) AS waiting, \
                EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 AS oldest_age \
         FROM outbox GROUP BY partition ORDER BY partition",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| PartitionBacklog {
            partition: row.get("partition"),
            waiting: row.get("waiting"),
            oldest_age_seconds: row.get("oldest_age"),
        })
        .collect())
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

/// Every parked row, oldest first.
///
/// # Errors
/// When the database fails.
pub async fn parked(pool: &PgPool) -> Result<Vec<ParkedRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, event_id, aggregate_id, version, event_type, attempts, last_error, parked_at \
         FROM outbox WHERE parked_at IS NOT NULL ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ParkedRow {
            id: row.get("id"),
            event_id: row.get("event_id"),
            aggregate_id: row.get("aggregate_id"),
            version: row.get("version"),
            event_type: row.get("event_type"),
            attempts: row.get("attempts"),
            last_error: row.get("last_error"),
            parked_at: row.get("parked_at"),
        })
        .collect())
}

/// Which parked rows an operator command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedSelection {
    All,
    Row(i64),
    Order(Uuid),
}

impl ParkedSelection {
    fn bind(self) -> (Option<i64>, Option<Uuid>) {
        match self {
            Self::All => (None, None),
            Self::Row(id) => (Some(id), None),
            Self::Order(order) => (None, Some(order)),
        }
    }
}

/// Makes parked rows due again, with a fresh count of attempts.
///
/// # Errors
/// When the database fails.
pub async fn retry_parked(pool: &PgPool, selection: ParkedSelection) -> Result<u64, sqlx::Error> {
    let (id, order) = selection.bind();
    let done = sqlx::query(
        "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = NULL, last_error = NULL \
         WHERE parked_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1) AND ($2::uuid IS NULL OR aggregate_id = $2)",
    )
    .bind(id)
    .bind(order)
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        order_postgres::outbox::notify(pool).await?;
    }
    Ok(done.rows_affected())
}

/// Moves parked rows to `outbox_dead_letters`: they will never be published, and the
/// later rows of their orders flow again.
///
/// # Errors
/// When the database fails.
pub async fn skip_parked(pool: &PgPool, selection: ParkedSelection) -> Result<u64, sqlx::Error> {
    let (id, order) = selection.bind();
    let done = sqlx::query(
        "WITH skipped AS ( \
             DELETE FROM outbox \
             WHERE parked_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1) AND ($2::uuid IS NULL OR aggregate_id = $2) \
             RETURNING id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at) \
         INSERT INTO outbox_dead_letters (id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at) \
         SELECT id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at FROM skipped",
    )
    .bind(id)
    .bind(order)
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        order_postgres::outbox::notify(pool).await?;
    }
    Ok(done.rows_affected())
}

/// First key of the session-level advisory lock each relay holds for its lifetime on
/// its member connection; the second is the member's `session_key`.
pub const MEMBER_LOCK_CLASS: i32 = 0x6f62_786d; // "obxm"

/// Whether member `m` (an alias in the query) is alive: heard from within `$ttl`
/// milliseconds and, when it registered a session key, still holding its lock (which
/// PostgreSQL drops the moment the relay's connection closes, so a killed relay is
/// dead at once rather than after the time-out).
const LIVE_MEMBER: &str =
    "m.heartbeat_at >= clock_timestamp() - make_interval(secs => $1::float8 / 1000) \
     AND (m.session_key IS NULL OR EXISTS ( \
         SELECT 1 FROM pg_locks l \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND l.classid = $2::oid AND l.objid = m.session_key::oid))";

/// A relay's own connection, holding its member lock for as long as it is open.
#[derive(Debug)]
pub struct MemberSession {
    conn: PgConnection,
    key: i32,
}

impl MemberSession {
    /// Opens a connection of its own (never one of the pool's, which come and go) and
    /// takes the member lock under a fresh random key.
    ///
    /// # Errors
    /// When the database fails, or no free key was found in a few tries.
    pub async fn open(pool: &PgPool) -> Result<MemberSession, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
        for _ in 0..8 {
            let key = rand::random_range(1..i32::MAX);
            let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(MEMBER_LOCK_CLASS)
                .bind(key)
                .fetch_one(&mut conn)
                .await?;
            if taken {
                return Ok(MemberSession { conn, key });
            }
        }
        Err(sqlx::Error::Protocol(
            "no free relay member lock key after 8 tries".into(),
        ))
    }

    /// Closes the connection, which releases the member lock.
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

/// Refreshes this relay's heartbeat on its member session (registering it when new),
/// forgets members that are long dead or whose session is gone, and returns the live
/// members, sorted by id.
///
/// # Errors
/// When the database fails; the session should then be reopened.
pub async fn heartbeat(
    session: &mut MemberSession,
    relay_id: Uuid,
    host: &str,
    ttl_ms: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO relay_members (relay_id, host, session_key) VALUES ($1, $2, $3) \
         ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = clock_timestamp(), session_key = EXCLUDED.session_key",
    )
    .bind(relay_id)
    .bind(host)
    .bind(session.key)
    .execute(&mut session.conn)
    .await?;
    sqlx::query(&format!(
        "DELETE FROM relay_members m WHERE m.heartbeat_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000 * 10) \
         OR (m.session_key IS NOT NULL AND NOT ({LIVE_MEMBER}))"
    ))
    .bind(ttl_ms as f64)
    .bind(MEMBER_LOCK_CLASS)
    .execute(&mut session.conn)
    .await?;
    live_members(&mut session.conn, ttl_ms)
        .await
        .map(|members| members.into_iter().map(|m| m.relay_id).collect())
}

/// A relay that has a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub relay_id: Uuid,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

/// The live relays (see [`LIVE_MEMBER`]), sorted by id.
///
/// # Errors
/// When the database fails.
pub async fn live_members<'c>(
    executor: impl PgExecutor<'c>,
    ttl_ms: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT relay_id, host, started_at, heartbeat_at FROM relay_members m \
         WHERE {LIVE_MEMBER} ORDER BY relay_id"
    ))
    .bind(ttl_ms as f64)
    .bind(MEMBER_LOCK_CLASS)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Member {
            relay_id: row.get("relay_id"),
            host: row.get("host"),
            started_at: row.get("started_at"),
            heartbeat_at: row.get("heartbeat_at"),
        })
        .collect())
}

/// Removes this relay from the members (on a clean stop), so the others take its
/// partitions at once.
///
/// # Errors
/// When the database fails.
pub async fn leave(pool: &PgPool, relay_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM relay_members WHERE relay_id = $1")
        .bind(relay_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The partitions member `index` of `count` live members publishes: every
/// `count`-th partition from `index`. All relays compute the same split.
pub fn assigned_partitions(index: usize, count: usize) -> Vec<i32> {
    let count = count.max(1);
    (0..PARTITIONS)
        .filter(|p| *p as usize % count == index % count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partitions_are_split_without_overlap_or_gap() {
        for count in 1..=7 {
            let mut all: Vec<i32> = (0..count)
                .flat_map(|i| assigned_partitions(i, count))
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..PARTITIONS).collect::<Vec<_>>());
            let sizes: Vec<usize> = (0..count)
                .map(|i| assigned_partitions(i, count).len())
                .collect();
            assert!(
                sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 1,
                "{sizes:?}"
            );
        }
    }
}
