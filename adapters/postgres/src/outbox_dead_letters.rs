//! Every statement on `outbox_dead_letters`, the parked rows an operator chose to
//! skip: moving them out of `outbox`, in one statement.

use sqlx::PgPool;

use crate::outbox::{notify, ParkedSelection};

/// Moves parked rows to `outbox_dead_letters`: they will never be published, and the
/// later rows of their orders flow again.
///
/// # Errors
/// When the database fails.
pub async fn skip_parked(pool: &PgPool, selection: ParkedSelection) -> Result<u64, sqlx::Error> {
    let (id, order) = selection.bind();
    let done = sqlx::query!(
        "WITH skipped AS ( \
             DELETE FROM outbox \
             WHERE parked_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1) AND ($2::uuid IS NULL OR aggregate_id = $2) \
             RETURNING id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at) \
         INSERT INTO outbox_dead_letters (id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at) \
         SELECT id, event_id, aggregate_id, version, event_type, message, attempts, last_error, created_at FROM skipped",
        id,
        order,
    )
    .execute(pool)
    .await?;
    if done.rows_affected() > 0 {
        notify(pool).await?;
    }
    Ok(done.rows_affected())
}
