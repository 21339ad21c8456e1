//! [`PgAdministration`]: the application's `AdminStore` port on the outbox, the dead
//! letters, the relays' membership, the event store, the read model's rebuild and the
//! records of actions and jobs (no SQL of its own: each table's module has it).
//!
//! A job runs in whichever process started it: the service (in the background) or a
//! subcommand (in the foreground). While it runs, its runner holds a session-level
//! advisory lock ([`crate::admin_jobs::lock_runner`]); a `running` job without it has
//! lost its runner and is marked `failed` the next time jobs are read or started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use application::admin::{
    ActionRecord, AdminError, AdminStore, Job, JobSpec, OutboxStatus, Outcome, ParkedRow,
    ParkedTarget, PartitionStatus, Progress, RecordedAction, RelayStatus, ReplayFilter, RunningJob,
};
use application::StoreError;
use async_trait::async_trait;
use domain::OrderId;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

use crate::outbox::ParkedSelection;
use crate::{admin_actions, admin_jobs, events, order_summaries, outbox, outbox_dead_letters};
use crate::{relay_members, store_error};

/// How long a relay may be silent before the administration shows it gone (the
/// relays' default `RELAY_MEMBER_TTL_MS`).
pub const DEFAULT_MEMBER_TTL: Duration = Duration::from_secs(5);

/// Events re-enqueued per transaction by a replay.
const REPLAY_PAGE: i64 = 1000;

/// How often a running job's progress is written to its row.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The administration's store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgAdministration {
    pool: PgPool,
    member_ttl: Duration,
}

impl PgAdministration {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            member_ttl: DEFAULT_MEMBER_TTL,
        }
    }

    /// Relays silent for longer than `ttl` are shown gone (the relays' own
    /// `RELAY_MEMBER_TTL_MS`).
    pub fn with_member_ttl(mut self, ttl: Duration) -> Self {
        self.member_ttl = ttl;
        self
    }

    /// Ends an operator's change to the outbox: records `action` with its outcome for
    /// `rows` (or rolls back on the refusal `outcome` gives), commits, and wakes the
    /// relays when rows became due.
    async fn settle(
        &self,
        mut tx: sqlx::Transaction<'_, Postgres>,
        action: &ActionRecord,
        outcome: Outcome<'_>,
        rows: u64,
    ) -> Result<u64, AdminError> {
        admin_actions::record(&mut tx, action, &outcome(rows)?)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        wake_relays(&self.pool, rows).await;
        Ok(rows)
    }

    /// Marks `failed` the jobs whose runner stopped (the service calls it at start, so a
    /// restart says what it interrupted); returns their ids.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn fail_abandoned_jobs(&self) -> Result<Vec<Uuid>, StoreError> {
        admin_jobs::fail_abandoned(&self.pool)
            .await
            .map_err(store_error)
    }
}

fn selection(target: ParkedTarget) -> ParkedSelection {
    match target {
        ParkedTarget::Row(id) => ParkedSelection::Row(id),
        ParkedTarget::Order(order) => ParkedSelection::Order(order.as_uuid()),
        ParkedTarget::All => ParkedSelection::All,
    }
}

fn filter(filter: ReplayFilter) -> Result<events::ReplayFilter, AdminError> {
    let from_position = filter
        .from_position
        .map(|p| {
            i64::try_from(p)
                .map_err(|_| AdminError::NotFound(format!("no event at or after position {p}")))
        })
        .transpose()?;
    Ok(events::ReplayFilter {
        order: filter.order.map(|o| o.as_uuid()),
        from_position,
        since: filter.since,
    })
}

fn failed(error: sqlx::Error) -> AdminError {
    AdminError::Store(store_error(error))
}

#[async_trait]
impl AdminStore for PgAdministration {
    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let ttl = i64::try_from(self.member_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut conn = self.pool.acquire().await.map_err(store_error)?;
        let backlog = outbox::backlog_by_partition(&mut *conn)
            .await
            .map_err(store_error)?;
        let members = relay_members::live_members(&mut *conn, ttl)
            .await
            .map_err(store_error)?;
        let relays: Vec<RelayStatus> = members
            .iter()
            .enumerate()
            .map(|(index, member)| RelayStatus {
                relay_id: member.relay_id,
                host: member.host.clone(),
                last_seen_at: member.heartbeat_at,
                partitions: relay_members::assigned_partitions(index, members.len()),
            })
            .collect();
        let owner = |partition: i32| {
            relays
                .iter()
                .find(|relay| relay.partitions.contains(&partition))
                .map(|relay| relay.relay_id)
        };
        let partitions: Vec<PartitionStatus> = backlog
            .iter()
            .map(|p| PartitionStatus {
                partition: p.partition,
                waiting: p.waiting,
                parked: p.parked,
                oldest_age_seconds: p.oldest_age_seconds,
                owner: owner(p.partition),
            })
            .collect();
        Ok(OutboxStatus {
            backlog: partitions.iter().map(|p| p.waiting).sum(),
            parked: partitions.iter().map(|p| p.parked).sum(),
            oldest_age_seconds: partitions
                .iter()
                .map(|p| p.oldest_age_seconds)
                .fold(0.0, f64::max),
            partitions,
            relays,
        })
    }

    async fn parked(
        &self,
        order: Option<OrderId>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ParkedRow>, StoreError> {
        let rows = outbox::parked(
            &self.pool,
            order.map(|o| o.as_uuid()),
            after,
            i64::from(limit),
        )
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|row| ParkedRow {
                outbox_id: row.id,
                event_id: row.event_id,
                order_id: row.aggregate_id,
                version: row.version,
                event_type: row.event_type,
                attempts: row.attempts,
                last_error: row.last_error,
                parked_at: row.parked_at,
            })
            .collect())
    }

    async fn retry(
        &self,
        target: ParkedTarget,
        action: &ActionRecord,
        outcome: Outcome<'_>,
    ) -> Result<u64, AdminError> {
        let mut tx = self.pool.begin().await.map_err(failed)?;
        let done = outbox::retry_parked(&mut tx, selection(target))
            .await
            .map_err(failed)?;
        self.settle(tx, action, outcome, done).await
    }

    async fn skip(
        &self,
        target: ParkedTarget,
        reason: &str,
        action: &ActionRecord,
        outcome: Outcome<'_>,
    ) -> Result<u64, AdminError> {
        let mut tx = self.pool.begin().await.map_err(failed)?;
        let done = outbox_dead_letters::skip_parked(&mut tx, selection(target), reason)
            .await
            .map_err(failed)?;
        self.settle(tx, action, outcome, done).await
    }

    async fn start_job(
        &self,
        spec: JobSpec,
        action: &ActionRecord,
    ) -> Result<Box<dyn RunningJob>, AdminError> {
        admin_jobs::fail_abandoned(&self.pool)
            .await
            .map_err(failed)?;
        let (work, total, description) = match spec {
            JobSpec::Replay(replay) => {
                let events_filter = filter(replay)?;
                let matching = events::count_matching(&self.pool, events_filter)
                    .await
                    .map_err(failed)?;
                if matching == 0 {
                    if let Some(order) = replay.order {
                        return Err(AdminError::NotFound(format!("order {order} has no events")));
                    }
                }
                (
                    Work::Replay(events_filter),
                    matching,
                    serde_json::json!({
                        "orderId": replay.order,
                        "fromPosition": replay.from_position,
                        "since": replay.since,
                    }),
                )
            }
            JobSpec::Rebuild => {
                let all = events::count_matching(&self.pool, events::ReplayFilter::default())
                    .await
                    .map_err(failed)?;
                (Work::Rebuild, all, serde_json::json!({}))
            }
        };
        let (mut lock, lock_key) = admin_jobs::lock_runner(&self.pool).await.map_err(failed)?;
        // However the job ends (a refusal below, a runner dropped before it ran, the
        // process stopping), the connection closes and the lock goes with it.
        lock.close_on_drop();
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await.map_err(failed)?;
        let inserted =
            admin_jobs::insert(&mut tx, id, spec.kind(), &description, total, lock_key).await;
        if let Err(error) = inserted {
            let one_rebuild = matches!(&error, sqlx::Error::Database(db)
                if db.constraint() == Some("admin_jobs_one_rebuild_idx"));
            drop(tx);
            if one_rebuild {
                let running = admin_jobs::running_rebuild(&self.pool)
                    .await
                    .map_err(failed)?;
                return Err(AdminError::JobRunning(running.unwrap_or_default()));
            }
            return Err(failed(error));
        }
        admin_actions::record(&mut tx, action, &format!("started job {id}"))
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(Box::new(PgJob {
            id,
            work,
            total,
            pool: self.pool.clone(),
            lock,
            lock_key,
        }))
    }

    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError> {
        admin_jobs::fail_abandoned(&self.pool)
            .await
            .map_err(store_error)?;
        admin_jobs::get(&self.pool, id).await.map_err(store_error)
    }

    async fn actions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RecordedAction>, StoreError> {
        admin_actions::newest(&self.pool, before, i64::from(limit))
            .await
            .map_err(store_error)
    }
}

/// Wakes the relays after rows became due (a lost wake-up costs one poll interval).
async fn wake_relays(pool: &PgPool, rows: u64) {
    if rows > 0 {
        if let Err(error) = outbox::notify(pool).await {
            tracing::debug!(%error, "cannot wake the relays; they will poll");
        }
    }
}

/// What a recorded job does, its filter already in the event store's terms.
#[derive(Debug, Clone, Copy)]
enum Work {
    Replay(events::ReplayFilter),
    Rebuild,
}

/// A recorded job, holding its runner's lock until it ends.
struct PgJob {
    id: Uuid,
    work: Work,
    /// The events counted when it was recorded.
    total: u64,
    pool: PgPool,
    lock: PoolConnection<Postgres>,
    lock_key: i32,
}

/// A running job's progress, shared by the work and the task that records it.
#[derive(Default)]
struct Counters {
    processed: AtomicU64,
    total: AtomicU64,
}

impl Counters {
    fn get(&self) -> (u64, u64) {
        let processed = self.processed.load(Ordering::Relaxed);
        (processed, self.total.load(Ordering::Relaxed).max(processed))
    }
}

#[async_trait]
impl RunningJob for PgJob {
    fn id(&self) -> Uuid {
        self.id
    }

    async fn run(self: Box<Self>, progress: Progress<'_>) -> Result<Job, StoreError> {
        let PgJob {
            id,
            work,
            total,
            pool,
            mut lock,
            lock_key,
        } = *self;
        let counters = Arc::new(Counters::default());
        counters.total.store(total, Ordering::Relaxed);
        let report = |processed: u64, total: u64| {
            counters.processed.store(processed, Ordering::Relaxed);
            counters.total.store(total, Ordering::Relaxed);
            let (processed, total) = counters.get();
            progress(processed, total);
        };
        progress(0, total);
        let work = async {
            match work {
                Work::Replay(filter) => replay_events(&pool, filter, total, &report).await,
                Work::Rebuild => {
                    order_summaries::rebuild_reporting(&pool, total, &mut |p, t| report(p, t))
                        .await
                        .map(|done| done.events)
                        .map_err(|e| format!("{e:#}"))
                }
            }
        };
        let recorder = async {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let (processed, total) = counters.get();
                if let Err(error) = admin_jobs::progress(&pool, id, processed, total).await {
                    tracing::debug!(%error, job_id = %id, "cannot record the job's progress");
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            () = recorder => unreachable!("the recorder never ends"),
        };
        let (mut processed, total) = counters.get();
        let error = match result {
            Ok(done) => {
                processed = done;
                None
            }
            Err(error) => {
                tracing::warn!(job_id = %id, %error, "job failed");
                Some(error)
            }
        };
        let total = total.max(processed);
        progress(processed, total);
        admin_jobs::finish(&pool, id, processed, total, error.as_deref())
            .await
            .map_err(store_error)?;
        if let Err(error) = admin_jobs::unlock_runner(&mut lock, lock_key).await {
            tracing::debug!(%error, "cannot release the job's lock; it goes with the connection");
        }
        admin_jobs::get(&pool, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))
    }
}

/// Re-enqueues the events `filter` matches (with their `eventId`; `total` of them when
/// the job was recorded), in global order, [`REPLAY_PAGE`] per transaction, behind
/// anything of their orders still in the outbox; returns how many.
async fn replay_events(
    pool: &PgPool,
    filter: events::ReplayFilter,
    total: u64,
    report: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, String> {
    let mut after = 0;
    let mut done = 0;
    loop {
        report(done, total);
        let page = events::in_global_order(pool, filter, after, REPLAY_PAGE)
            .await
            .map_err(|e| format!("reading the event store: {e}"))?;
        let Some((last, _)) = page.last() else {
            return Ok(done);
        };
        after = *last;
        let envelopes: Vec<_> = page.into_iter().map(|(_, event)| event).collect();
        let written = async {
            let mut tx = pool.begin().await?;
            outbox::insert(&mut tx, &envelopes).await?;
            tx.commit().await
        };
        written
            .await
            .map_err(|e| format!("writing the outbox: {e}"))?;
        wake_relays(pool, envelopes.len() as u64).await;
        done += envelopes.len() as u64;
    }
}
