//! Every statement on `outbox_dead_letters`, the rows an operator chose to give up on:
//! moving parked rows, and the rows of their orders held back behind them, out of
//! `outbox`, in one statement.

use sqlx::PgConnection;

use crate::outbox::ParkedSelection;

/// Moves the selected parked rows, and the later rows of their orders (held back
/// behind them), to `outbox_dead_letters` with `reason`: they will never be published,
/// and their orders' next rows flow again. Wake the relays
/// ([`crate::outbox::notify`]) once the transaction committed.
///
/// # Errors
/// When the database fails.
pub async fn skip_parked(
    conn: &mut PgConnection,
    selection: ParkedSelection,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let (id, order) = selection.bind();
    let done = sqlx::query!(
        "WITH parked AS ( \
             SELECT aggregate_id, min(id) AS first FROM outbox \
             WHERE parked_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1) AND ($2::uuid IS NULL OR aggregate_id = $2) \
             GROUP BY aggregate_id), \
         skipped AS ( \
             DELETE FROM outbox o USING parked p \
             WHERE o.aggregate_id = p.aggregate_id AND o.id >= p.first \
             RETURNING o.id, o.event_id, o.aggregate_id, o.version, o.event_type, o.message, o.attempts, o.last_error, o.created_at) \
         INSERT INTO outbox_dead_letters (id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at, reason) \
         SELECT id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at, $3 FROM skipped",
        id,
        order,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
