//! Every statement on `idempotency_keys`: looking a key up and purging old ones. A
//! record is written by the command's statement ([`crate::unit_of_work`]), so it is
//! stored if and only if the command's events are.

use application::{IdempotencyRecord, StoreError};
use domain::OrderId;
use sqlx::PgPool;

use crate::convert::from_column;
use crate::store_error;

/// The record stored under `key` in `scope`, if any.
///
/// # Errors
/// When the database fails or the stored record does not decode.
pub(crate) async fn find(
    pool: &PgPool,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = sqlx::query!(
        "SELECT fingerprint, order_id, version FROM idempotency_keys WHERE scope = $1 AND key = $2",
        scope,
        key,
    )
    .fetch_optional(pool)
    .await
    .map_err(store_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(IdempotencyRecord {
        scope: scope.to_owned(),
        key: key.to_owned(),
        fingerprint: row.fingerprint,
        order_id: OrderId::from_uuid(row.order_id),
        version: from_column("idempotency_keys.version", row.version)?,
    }))
}

/// Deletes idempotency records older than `max_age_hours` (they are kept at least 24 h).
///
/// # Errors
/// When the database fails.
pub async fn purge_idempotency_keys(pool: &PgPool, max_age_hours: i32) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        max_age_hours,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
