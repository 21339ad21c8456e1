//! A transactional inbox in the consumer's own PostgreSQL (feature `postgres`): the
//! last applied version of each order, per consumer, updated in the same transaction
//! as the consumer's effect. Commit that transaction, then the Kafka offsets: a crash
//! between the two redelivers events the inbox already holds, which it reports as
//! [`Verdict::Duplicate`], so the effect happens once.
//!
//! ```ignore
//! let mut tx = pool.begin().await?;
//! match inbox.check_in(&mut tx, &event).await? {
//!     Verdict::Apply => apply(&mut tx, &event).await?, // your effect, same transaction
//!     Verdict::Duplicate => {}                         // seen: nothing to do
//!     Verdict::Gap { expected, got } => return Err(gap(expected, got)), // hold, report
//! }
//! tx.commit().await?; // then commit the offset
//! ```
//!
//! The statements are plain `sqlx::query` (checked by this module's tests, not at
//! compile time): the table lives in the consumer's database, not the service's.

use sqlx::{PgConnection, PgPool};

use crate::sequence::{verdict, Verdict};
use crate::Envelope;

/// The inbox of one consumer (its name tells consumers sharing a database apart).
#[derive(Debug, Clone)]
pub struct PgInbox {
    consumer: String,
}

impl PgInbox {
    pub fn new(consumer: impl Into<String>) -> Self {
        Self {
            consumer: consumer.into(),
        }
    }

    /// Creates the inbox table when it is missing.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn create_table(pool: &PgPool) -> sqlx::Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS order_events_inbox (
                 consumer     text        NOT NULL,
                 aggregate_id uuid        NOT NULL,
                 version      bigint      NOT NULL CHECK (version >= 0),
                 event_id     uuid        NOT NULL,
                 applied_at   timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (consumer, aggregate_id)
             )",
        )
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Whether to apply `event`, in the caller's transaction `tx`; on
    /// [`Verdict::Apply`] it is recorded as applied (rolled back with `tx`). The order's
    /// row is locked until `tx` ends, so two consumers never apply one event twice.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn check_in(&self, tx: &mut PgConnection, event: &Envelope) -> sqlx::Result<Verdict> {
        let last = self.last_applied(tx, event).await?;
        let decided = verdict(last, event.version);
        if decided != Verdict::Apply {
            return Ok(decided);
        }
        Ok(if self.advance(tx, event, last).await? {
            Verdict::Apply
        } else {
            // Another transaction applied it first.
            Verdict::Duplicate
        })
    }

    /// Accepts a gap on purpose (the events before `event` were skipped by an
    /// operator): records `event` as applied, in `tx`, whatever came before.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn skip_to(&self, tx: &mut PgConnection, event: &Envelope) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO order_events_inbox (consumer, aggregate_id, version, event_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (consumer, aggregate_id)
             DO UPDATE SET version = EXCLUDED.version, event_id = EXCLUDED.event_id, applied_at = now()",
        )
        .bind(&self.consumer)
        .bind(event.aggregate_id)
        .bind(as_bigint(event.version)?)
        .bind(event.event_id)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn last_applied(&self, tx: &mut PgConnection, event: &Envelope) -> sqlx::Result<u64> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM order_events_inbox
             WHERE consumer = $1 AND aggregate_id = $2 FOR UPDATE",
        )
        .bind(&self.consumer)
        .bind(event.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        version
            .map(|v| u64::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Moves the order from `last` to `event.version`; false when it is no longer at
    /// `last` (a concurrent transaction got there first).
    async fn advance(
        &self,
        tx: &mut PgConnection,
        event: &Envelope,
        last: u64,
    ) -> sqlx::Result<bool> {
        let moved = sqlx::query(
            "INSERT INTO order_events_inbox (consumer, aggregate_id, version, event_id)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (consumer, aggregate_id)
             DO UPDATE SET version = EXCLUDED.version, event_id = EXCLUDED.event_id, applied_at = now()
             WHERE order_events_inbox.version = $5",
        )
        .bind(&self.consumer)
        .bind(event.aggregate_id)
        .bind(as_bigint(event.version)?)
        .bind(event.event_id)
        .bind(as_bigint(last)?)
        .execute(&mut *tx)
        .await?;
        Ok(moved.rows_affected() == 1)
    }
}

fn as_bigint(version: u64) -> sqlx::Result<i64> {
    i64::try_from(version).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}
