//! Every statement on `admin_actions`, the record of administrative actions: writing
//! one in the transaction of its effect, and reading them newest first.

use application::admin::{ActionRecord, RecordedAction};
use sqlx::{PgConnection, PgExecutor};

/// Records `action` with `outcome`, in the caller's transaction (the one of its effect).
///
/// # Errors
/// When the database fails.
pub(crate) async fn record(
    conn: &mut PgConnection,
    action: &ActionRecord,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO admin_actions (user_id, action, target, outcome) VALUES ($1, $2, $3, $4)",
        action.user_id,
        action.action,
        action.target,
        outcome,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Up to `limit` recorded actions with an id below `before`, newest first.
///
/// # Errors
/// When the database fails.
pub(crate) async fn newest<'c>(
    executor: impl PgExecutor<'c>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<RecordedAction>, sqlx::Error> {
    sqlx::query_as!(
        RecordedAction,
        "SELECT id, at, user_id, action, target, outcome FROM admin_actions \
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
        before.unwrap_or(i64::MAX),
        limit,
    )
    .fetch_all(executor)
    .await
}
