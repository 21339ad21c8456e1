//! The administration: what operators see of the outbox and do to it (retry and skip
//! parked rows, replay events, rebuild the read model), each state-changing action
//! recorded with who, when, what, the target and the outcome in the same transaction as
//! its effect. Every way in (the HTTP routes under `/admin`, the `outbox-relay` and
//! `order-service` subcommands) goes through [`Administration`], so they share one
//! implementation and one rule: only an actor that [`Actor::check_administer`]s.
//!
//! Replays and rebuilds are jobs: [`Administration::start_replay`] and
//! [`Administration::start_rebuild`] record the job (state `running`) and the action,
//! and hand back a [`RunningJob`] that the caller runs, in the background (the service)
//! or in the foreground with a progress bar (the command line). A job whose runner
//! stops before it ends (a restart, a crash) is found and marked `failed` by the store,
//! saying so; nothing survives a restart.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::OrderId;
use uuid::Uuid;

use crate::access::{Actor, Forbidden};
use crate::ports::StoreError;

/// The outbox as operators see it: totals, every partition, the live relays.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxStatus {
    /// Rows not yet published, parked ones included.
    pub backlog: i64,
    pub parked: i64,
    /// Age of the oldest row not yet published, in seconds; 0 when there is none.
    pub oldest_age_seconds: f64,
    /// Every partition of the outbox, in order.
    pub partitions: Vec<PartitionStatus>,
    pub relays: Vec<RelayStatus>,
}

/// One partition of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionStatus {
    pub partition: i32,
    /// Rows not yet published, parked ones included.
    pub waiting: i64,
    pub parked: i64,
    pub oldest_age_seconds: f64,
    /// The live relay that publishes it, if any.
    pub owner: Option<Uuid>,
}

/// A live relay and the partitions it publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStatus {
    pub relay_id: Uuid,
    pub host: String,
    pub last_seen_at: DateTime<Utc>,
    pub partitions: Vec<i32>,
}

/// A parked outbox row: one the broker refused too often, holding back its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRow {
    pub outbox_id: i64,
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub version: i64,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub parked_at: DateTime<Utc>,
}

/// A page of parked rows, oldest first; `next` is the `outbox_id` to continue after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedPage {
    pub items: Vec<ParkedRow>,
    pub next: Option<i64>,
}

/// Which parked rows a retry or a skip applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParkedTarget {
    /// One parked row, by outbox id.
    Row(i64),
    /// Every parked row of one order.
    Order(OrderId),
    /// Every parked row (the command line's `--all`).
    All,
}

impl fmt::Display for ParkedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Row(id) => write!(f, "outbox row {id}"),
            Self::Order(order) => write!(f, "order {order}"),
            Self::All => f.write_str("every parked row"),
        }
    }
}

/// Which events a replay re-enqueues (the filters combine; none: every event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    pub order: Option<OrderId>,
    /// Events at or after this global position.
    pub from_position: Option<u64>,
    /// Events recorded at or after this instant.
    pub since: Option<DateTime<Utc>>,
}

impl fmt::Display for ReplayFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(order) = self.order {
            parts.push(format!("order {order}"));
        }
        if let Some(position) = self.from_position {
            parts.push(format!("from position {position}"));
        }
        if let Some(since) = self.since {
            parts.push(format!("since {}", since.to_rfc3339()));
        }
        if parts.is_empty() {
            f.write_str("every event")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSpec {
    /// Re-enqueue events from the event store into the outbox, with their `eventId`.
    Replay(ReplayFilter),
    /// Rebuild the read model from the event store.
    Rebuild,
}

impl JobSpec {
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Replay(_) => JobKind::Replay,
            Self::Rebuild => JobKind::Rebuild,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Replay,
    Rebuild,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Rebuild => "rebuild",
        }
    }

    /// The kind named `text`, as stored.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "replay" => Some(Self::Replay),
            "rebuild" => Some(Self::Rebuild),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The state named `text`, as stored.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A job as recorded: its progress, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub job_id: Uuid,
    pub kind: JobKind,
    pub state: JobState,
    pub processed: u64,
    pub total: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// A recorded administrative action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAction {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<String>,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

/// A page of recorded actions, newest first; `next` is the id to continue before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPage {
    pub items: Vec<RecordedAction>,
    pub next: Option<i64>,
}

/// An action about to be recorded (the store adds when, and the outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub user_id: Option<String>,
    /// What was done: `outbox.retry`, `outbox.skip`, `replay`, `projections.rebuild`.
    pub action: &'static str,
    /// What it was done to, in words (`order 0190…`, `outbox row 17`).
    pub target: String,
}

/// The outcome to record for an effect of `n` rows, or the refusal that undoes it
/// (the store then rolls back and records nothing).
pub type Outcome<'a> = &'a (dyn Fn(u64) -> Result<String, AdminError> + Send + Sync);

/// The store behind the administration (the outbox, the event store, the read model,
/// the records of actions and jobs).
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Every partition's backlog and owner, and the live relays.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn outbox_status(&self) -> Result<OutboxStatus, StoreError>;

    /// Up to `limit` parked rows after outbox id `after` (of `order` only, when given),
    /// oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn parked(
        &self,
        order: Option<OrderId>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ParkedRow>, StoreError>;

    /// Makes the parked rows of `target` due again and records `action` with
    /// `outcome(rows)`, in one transaction.
    ///
    /// # Errors
    /// The refusal `outcome` returns (nothing done, nothing recorded);
    /// `AdminError::Store` when the database fails.
    async fn retry(
        &self,
        target: ParkedTarget,
        action: &ActionRecord,
        outcome: Outcome<'_>,
    ) -> Result<u64, AdminError>;

    /// Moves the parked rows of `target` and the rows held back behind them to the dead
    /// letters with `reason`, and records `action` with `outcome(rows)`, in one
    /// transaction.
    ///
    /// # Errors
    /// As [`AdminStore::retry`].
    async fn skip(
        &self,
        target: ParkedTarget,
        reason: &str,
        action: &ActionRecord,
        outcome: Outcome<'_>,
    ) -> Result<u64, AdminError>;

    /// Records a new job (state `running`) and `action`, in one transaction, and hands
    /// it back to be run.
    ///
    /// # Errors
    /// `JobRunning` for a rebuild while another runs; `NotFound` for a replay of an
    /// order with no events; `Store` when the database fails. Nothing is recorded then.
    async fn start_job(
        &self,
        spec: JobSpec,
        action: &ActionRecord,
    ) -> Result<Box<dyn RunningJob>, AdminError>;

    /// The job `id`, if there is one. A job still `running` whose runner is gone is
    /// answered (and recorded) as `failed`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn job(&self, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// Up to `limit` recorded actions before id `before`, newest first.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    async fn actions(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RecordedAction>, StoreError>;
}

/// Progress of a running job: `(processed, total)`.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A job that was recorded as `running`, to be run once.
#[async_trait]
pub trait RunningJob: Send + Sync {
    fn id(&self) -> Uuid;

    /// Runs the job to its end, recording its progress as it goes and then
    /// `succeeded` or `failed` (with the error); reports progress to `progress` too.
    /// Returns the job as recorded at its end.
    ///
    /// # Errors
    /// `Unavailable` or `Other` when even the end could not be recorded.
    async fn run(self: Box<Self>, progress: Progress<'_>) -> Result<Job, StoreError>;
}

/// Why an administrative call was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The actor is not an admin.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No such parked row, order or job.
    #[error("{0}")]
    NotFound(String),
    /// A rebuild is running; one runs at a time.
    #[error("a rebuild is running (job {0}); one runs at a time")]
    JobRunning(Uuid),
    /// The store failed; nothing was done.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The administrative use cases, shared by every way in.
#[derive(Clone)]
pub struct Administration {
    store: std::sync::Arc<dyn AdminStore>,
}

impl fmt::Debug for Administration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Administration").finish_non_exhaustive()
    }
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

impl Administration {
    pub fn new(store: std::sync::Arc<dyn AdminStore>) -> Self {
        Self { store }
    }

    fn record(actor: &Actor, action: &'static str, target: String) -> ActionRecord {
        ActionRecord {
            user_id: actor.user_id().map(str::to_owned),
            action,
            target,
        }
    }

    /// The outbox: backlog per partition, owners, relays.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `Store` when the database fails.
    #[tracing::instrument(skip_all, err)]
    pub async fn outbox_status(&self, actor: &Actor) -> Result<OutboxStatus, AdminError> {
        actor.check_administer()?;
        Ok(self.store.outbox_status().await?)
    }

    /// A page of parked rows (of `order` only, when given), oldest first, after outbox
    /// id `after`.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `Store` when the database fails.
    #[tracing::instrument(skip_all, err)]
    pub async fn parked(
        &self,
        actor: &Actor,
        order: Option<OrderId>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<ParkedPage, AdminError> {
        actor.check_administer()?;
        let limit = limit.max(1);
        let mut items = self.store.parked(order, after, limit + 1).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|row| row.outbox_id)
        } else {
            None
        };
        Ok(ParkedPage { items, next })
    }

    /// Makes parked rows due again (with a fresh count of attempts); returns how many.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `NotFound` for a row that is not parked;
    /// `Store` when the database fails.
    #[tracing::instrument(skip_all, fields(target = %target), err)]
    pub async fn retry(&self, actor: &Actor, target: ParkedTarget) -> Result<u64, AdminError> {
        actor.check_administer()?;
        let record = Self::record(actor, "outbox.retry", target.to_string());
        let outcome = move |n: u64| match target {
            ParkedTarget::Row(id) if n == 0 => {
                Err(AdminError::NotFound(format!("no parked outbox row {id}")))
            }
            _ => Ok(format!("retried {}", rows(n))),
        };
        self.store.retry(target, &record, &outcome).await
    }

    /// Gives up on parked rows: they and the rows of their orders held back behind
    /// them move to the dead letters with `reason`, and the orders flow again (their
    /// consumers see a gap). Returns how many rows moved.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `NotFound` for a row that is not parked;
    /// `Store` when the database fails.
    #[tracing::instrument(skip_all, fields(target = %target), err)]
    pub async fn skip(
        &self,
        actor: &Actor,
        target: ParkedTarget,
        reason: &str,
    ) -> Result<u64, AdminError> {
        actor.check_administer()?;
        let record = Self::record(actor, "outbox.skip", target.to_string());
        let outcome = move |n: u64| match target {
            ParkedTarget::Row(id) if n == 0 => {
                Err(AdminError::NotFound(format!("no parked outbox row {id}")))
            }
            _ => Ok(format!("moved {} to the dead letters: {reason}", rows(n))),
        };
        self.store.skip(target, reason, &record, &outcome).await
    }

    /// Records a replay job of the events `filter` matches; run it with
    /// [`RunningJob::run`].
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `NotFound` for an order with no events; `Store`
    /// when the database fails.
    #[tracing::instrument(skip_all, fields(filter = %filter), err)]
    pub async fn start_replay(
        &self,
        actor: &Actor,
        filter: ReplayFilter,
    ) -> Result<Box<dyn RunningJob>, AdminError> {
        actor.check_administer()?;
        let record = Self::record(actor, "replay", filter.to_string());
        self.store.start_job(JobSpec::Replay(filter), &record).await
    }

    /// Records a rebuild job of the read model; run it with [`RunningJob::run`].
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `JobRunning` while another rebuild runs; `Store`
    /// when the database fails.
    #[tracing::instrument(skip_all, err)]
    pub async fn start_rebuild(&self, actor: &Actor) -> Result<Box<dyn RunningJob>, AdminError> {
        actor.check_administer()?;
        let record = Self::record(actor, "projections.rebuild", "the read model".to_owned());
        self.store.start_job(JobSpec::Rebuild, &record).await
    }

    /// The job `id`.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `NotFound` for an unknown job; `Store` when the
    /// database fails.
    #[tracing::instrument(skip_all, fields(job_id = %id), err)]
    pub async fn job(&self, actor: &Actor, id: Uuid) -> Result<Job, AdminError> {
        actor.check_administer()?;
        self.store
            .job(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no job {id}")))
    }

    /// A page of recorded actions, newest first, before id `before`.
    ///
    /// # Errors
    /// `Forbidden` for a non-admin; `Store` when the database fails.
    #[tracing::instrument(skip_all, err)]
    pub async fn actions(
        &self,
        actor: &Actor,
        before: Option<i64>,
        limit: u32,
    ) -> Result<ActionPage, AdminError> {
        actor.check_administer()?;
        let limit = limit.max(1);
        let mut items = self.store.actions(before, limit + 1).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|action| action.id)
        } else {
            None
        };
        Ok(ActionPage { items, next })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::access::Role;

    /// A store whose retry and skip affect `rows` rows, answering what the use case's
    /// outcome says; with `None`, or for any other call, reaching it fails the test.
    struct Stub {
        rows: Option<u64>,
    }

    impl Stub {
        fn settle(&self, outcome: Outcome<'_>) -> Result<u64, AdminError> {
            let rows = self.rows.expect("reached the store");
            outcome(rows).map(|_| rows)
        }
    }

    #[async_trait]
    impl AdminStore for Stub {
        async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
            panic!("reached the store")
        }
        async fn parked(
            &self,
            _: Option<OrderId>,
            _: Option<i64>,
            _: u32,
        ) -> Result<Vec<ParkedRow>, StoreError> {
            panic!("reached the store")
        }
        async fn retry(
            &self,
            _: ParkedTarget,
            _: &ActionRecord,
            outcome: Outcome<'_>,
        ) -> Result<u64, AdminError> {
            self.settle(outcome)
        }
        async fn skip(
            &self,
            _: ParkedTarget,
            _: &str,
            _: &ActionRecord,
            outcome: Outcome<'_>,
        ) -> Result<u64, AdminError> {
            self.settle(outcome)
        }
        async fn start_job(
            &self,
            _: JobSpec,
            _: &ActionRecord,
        ) -> Result<Box<dyn RunningJob>, AdminError> {
            panic!("reached the store")
        }
        async fn job(&self, _: Uuid) -> Result<Option<Job>, StoreError> {
            panic!("reached the store")
        }
        async fn actions(&self, _: Option<i64>, _: u32) -> Result<Vec<RecordedAction>, StoreError> {
            panic!("reached the store")
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn every_administrative_call_of_a_non_admin_is_forbidden_before_the_store() {
        let administration = Administration::new(Arc::new(Stub { rows: None }));
        let order = OrderId::from_uuid(Uuid::now_v7());
        for roles in [&[Role::Operator][..], &[Role::Customer], &[]] {
            let actor = Actor::authenticated(
                "u".to_owned(),
                roles,
                Some(domain::CustomerId::parse("c").expect("id")),
            )
            .expect("an actor");
            block_on(async {
                let forbidden = |result: Result<(), AdminError>| {
                    assert!(matches!(result, Err(AdminError::Forbidden(_))), "{roles:?}");
                };
                forbidden(administration.outbox_status(&actor).await.map(drop));
                forbidden(administration.parked(&actor, None, None, 5).await.map(drop));
                forbidden(
                    administration
                        .retry(&actor, ParkedTarget::Row(1))
                        .await
                        .map(drop),
                );
                forbidden(
                    administration
                        .skip(&actor, ParkedTarget::Order(order), "r")
                        .await
                        .map(drop),
                );
                forbidden(
                    administration
                        .start_replay(&actor, ReplayFilter::default())
                        .await
                        .map(drop),
                );
                forbidden(administration.start_rebuild(&actor).await.map(drop));
                forbidden(administration.job(&actor, Uuid::now_v7()).await.map(drop));
                forbidden(administration.actions(&actor, None, 5).await.map(drop));
            });
        }
    }

    #[test]
    fn a_missing_parked_row_refuses_the_retry_and_a_count_is_worded() {
        let record = |target: ParkedTarget| async move {
            let administration = Administration::new(Arc::new(Stub { rows: Some(0) }));
            administration
                .retry(&Actor::unrestricted(None), target)
                .await
        };
        block_on(async {
            assert!(matches!(
                record(ParkedTarget::Row(7)).await,
                Err(AdminError::NotFound(_))
            ));
            assert_eq!(record(ParkedTarget::All).await.ok(), Some(0));
        });
        assert_eq!(rows(1), "1 row");
        assert_eq!(rows(3), "3 rows");
    }
}
