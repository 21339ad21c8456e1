//! Every statement on `relay_members`: the live relays, their heartbeats and the
//! member lock each holds on a connection of its own (ADR 008).

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// First key of the session-level advisory lock each relay holds for its lifetime on
/// its member connection; the second is the member's `session_key`.
pub const MEMBER_LOCK_CLASS: i32 = 0x6f62_786d; // "obxm"

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
            let taken = sqlx::query_scalar!(
                r#"SELECT pg_try_advisory_lock($1, $2) AS "taken!""#,
                MEMBER_LOCK_CLASS,
                key,
            )
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
    sqlx::query!(
        "INSERT INTO relay_members (relay_id, host, session_key) VALUES ($1, $2, $3) \
         ON CONFLICT (relay_id) DO UPDATE SET heartbeat_at = clock_timestamp(), session_key = EXCLUDED.session_key",
        relay_id,
        host,
        session.key,
    )
    .execute(&mut session.conn)
    .await?;
    // A member with a session key that is not alive by the test of `live_members` is
    // forgotten (a macro takes one literal, so both statements spell the test out).
    sqlx::query!(
        "DELETE FROM relay_members m \
         WHERE m.heartbeat_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000 * 10) \
            OR (m.session_key IS NOT NULL AND NOT ( \
                m.heartbeat_at >= clock_timestamp() - make_interval(secs => $1::float8 / 1000) \
                AND (m.session_key IS NULL OR EXISTS ( \
                    SELECT 1 FROM pg_locks l \
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                      AND l.classid = $2::integer::oid AND l.objid = m.session_key::oid))))",
        ttl_ms as f64,
        MEMBER_LOCK_CLASS,
    )
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

/// The live relays, sorted by id. A member is alive when heard from within `ttl_ms`
/// and, when it registered a session key, still holding its lock (which PostgreSQL
/// drops the moment the relay's connection closes, so a killed relay is dead at once
/// rather than after the time-out).
///
/// # Errors
/// When the database fails.
pub async fn live_members<'c>(
    executor: impl PgExecutor<'c>,
    ttl_ms: i64,
) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query_as!(
        Member,
        "SELECT relay_id, host, started_at, heartbeat_at FROM relay_members m \
         WHERE m.heartbeat_at >= clock_timestamp() - make_interval(secs => $1::float8 / 1000) \
           AND (m.session_key IS NULL OR EXISTS ( \
               SELECT 1 FROM pg_locks l \
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND l.classid = $2::integer::oid AND l.objid = m.session_key::oid)) \
         ORDER BY relay_id",
        ttl_ms as f64,
        MEMBER_LOCK_CLASS,
    )
    .fetch_all(executor)
    .await
}

/// Removes this relay from the members (on a clean stop), so the others take its
/// partitions at once.
///
/// # Errors
/// When the database fails.
pub async fn leave(pool: &PgPool, relay_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM relay_members WHERE relay_id = $1", relay_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The partitions member `index` of `count` live members publishes: every
/// `count`-th partition from `index`. All relays compute the same split (and the
/// administration shows it).
pub fn assigned_partitions(index: usize, count: usize) -> Vec<i32> {
    let count = count.max(1);
    (0..crate::outbox::PARTITIONS)
        .filter(|p| *p as usize % count == index % count)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::PARTITIONS;

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
