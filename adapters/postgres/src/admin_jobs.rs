//! Every statement on `admin_jobs`, the replays and rebuilds with their progress:
//! the runner's lock, recording a job, its progress and its end, and failing the jobs
//! whose runner is gone.

use application::admin::{Job, JobKind, JobState};
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres};
use uuid::Uuid;

use crate::convert::{from_column, to_column};

/// First key of the runners' session-level advisory locks; the second is the job's
/// `lock_key`.
pub(crate) const JOB_LOCK_CLASS: i32 = 0x6f62_6a62; // "objb"

/// What a job whose runner stopped is recorded with.
pub(crate) const ABANDONED: &str = "the process running it stopped before it finished (a restart or a crash); nothing resumes it: start it again";

/// Takes a lock key no other runner holds, on a connection of the runner's own, held
/// until the job ends (or the connection closes, which is the runner dying).
///
/// # Errors
/// When the database fails.
pub(crate) async fn lock_runner(
    pool: &PgPool,
) -> Result<(PoolConnection<Postgres>, i32), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    loop {
        let key = rand::random_range(0..i32::MAX);
        let taken = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_lock($1, $2) AS "taken!""#,
            JOB_LOCK_CLASS,
            key
        )
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            return Ok((conn, key));
        }
    }
}

/// Releases the runner's lock (the job has ended and its end is recorded).
///
/// # Errors
/// When the database fails.
pub(crate) async fn unlock_runner(conn: &mut PgConnection, key: i32) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT pg_advisory_unlock($1, $2) AS "released!""#,
        JOB_LOCK_CLASS,
        key
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Records a new `running` job, in the caller's transaction.
///
/// # Errors
/// When the database fails; a rebuild while another runs fails on the constraint
/// `admin_jobs_one_rebuild_idx`.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    kind: JobKind,
    spec: &serde_json::Value,
    total: u64,
    lock_key: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO admin_jobs (job_id, kind, spec, total, lock_key) VALUES ($1, $2, $3, $4, $5)",
        id,
        kind.as_str(),
        spec,
        to_column::<i64, _>("admin_jobs.total", total)?,
        lock_key,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The running rebuild, if one runs.
///
/// # Errors
/// When the database fails.
pub(crate) async fn running_rebuild<'c>(
    executor: impl PgExecutor<'c>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT job_id FROM admin_jobs WHERE kind = 'rebuild' AND state = 'running' LIMIT 1"
    )
    .fetch_optional(executor)
    .await
}

/// Records a running job's progress.
///
/// # Errors
/// When the database fails.
pub(crate) async fn progress<'c>(
    executor: impl PgExecutor<'c>,
    id: Uuid,
    processed: u64,
    total: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE admin_jobs SET processed = $2, total = $3 WHERE job_id = $1 AND state = 'running'",
        id,
        to_column::<i64, _>("admin_jobs.processed", processed)?,
        to_column::<i64, _>("admin_jobs.total", total)?,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Records a job's end: `succeeded`, or `failed` with `error`.
///
/// # Errors
/// When the database fails.
pub(crate) async fn finish<'c>(
    executor: impl PgExecutor<'c>,
    id: Uuid,
    processed: u64,
    total: u64,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let state = if error.is_some() {
        JobState::Failed
    } else {
        JobState::Succeeded
    };
    sqlx::query!(
        "UPDATE admin_jobs SET state = $2, processed = $3, total = $4, error = $5, \
             finished_at = clock_timestamp() \
         WHERE job_id = $1 AND state = 'running'",
        id,
        state.as_str(),
        to_column::<i64, _>("admin_jobs.processed", processed)?,
        to_column::<i64, _>("admin_jobs.total", total)?,
        error,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Marks `failed` every running job whose runner's lock nobody holds (its process
/// stopped); returns their ids.
///
/// # Errors
/// When the database fails.
pub(crate) async fn fail_abandoned<'c>(
    executor: impl PgExecutor<'c>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE admin_jobs j SET state = 'failed', error = $2, finished_at = clock_timestamp() \
         WHERE j.state = 'running' AND NOT EXISTS ( \
             SELECT 1 FROM pg_locks l \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND l.classid = $1::integer::oid AND l.objid = j.lock_key::oid) \
         RETURNING j.job_id",
        JOB_LOCK_CLASS,
        ABANDONED,
    )
    .fetch_all(executor)
    .await
}

struct JobRow {
    job_id: Uuid,
    kind: String,
    state: String,
    processed: i64,
    total: i64,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

/// The job `id`, if there is one.
///
/// # Errors
/// When the database fails or the row does not decode (`sqlx::Error::Decode`).
pub(crate) async fn get<'c>(
    executor: impl PgExecutor<'c>,
    id: Uuid,
) -> Result<Option<Job>, sqlx::Error> {
    let row = sqlx::query_as!(
        JobRow,
        "SELECT job_id, kind, state, processed, total, started_at, finished_at, error \
         FROM admin_jobs WHERE job_id = $1",
        id,
    )
    .fetch_optional(executor)
    .await?;
    row.map(|row| {
        let misfit = |what: &str, text: &str| {
            sqlx::Error::Decode(format!("admin_jobs.{what} {text:?} is unknown").into())
        };
        Ok(Job {
            job_id: row.job_id,
            kind: JobKind::parse(&row.kind).ok_or_else(|| misfit("kind", &row.kind))?,
            state: JobState::parse(&row.state).ok_or_else(|| misfit("state", &row.state))?,
            processed: from_column("admin_jobs.processed", row.processed)?,
            total: from_column("admin_jobs.total", row.total)?,
            started_at: row.started_at,
            finished_at: row.finished_at,
            error: row.error,
        })
    })
    .transpose()
}
