//! Every SQL statement the relay runs on the `outbox` table.

use adapters::kafka::OutgoingEvent;
use sqlx::{PgConnection, PgPool, Row};

/// The advisory lock key of the relays (`hashtext('outbox-relay')` would do as well;
/// a constant keeps it visible in `pg_locks`).
pub const RELAY_LOCK_KEY: i64 = 0x6f75_7462_6f78; // "outbox"

/// One outbox row.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event: OutgoingEvent,
    /// When the row was written (≈ when its transaction ran), for the latency metric.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Takes the relays' lock for the rest of the transaction; `false` when another relay
/// holds it.
///
/// # Errors
/// When the database fails.
pub async fn try_lock(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK_KEY)
        .fetch_one(conn)
        .await
}

/// The oldest `limit` rows, in `id` order.
///
/// # Errors
/// When the database fails.
pub async fn oldest(conn: &mut PgConnection, limit: u32) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, event_id, aggregate_id, event_type, message, occurred_at, traceparent, created_at \
         FROM outbox ORDER BY id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| OutboxRow {
            id: row.get("id"),
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

/// Rows waiting, and the age in seconds of the oldest (0 when none).
///
/// # Errors
/// When the database fails.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS waiting, \
                COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at)), 0)::float8 AS oldest_age \
         FROM outbox",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.get("waiting"), row.get("oldest_age")))
}
