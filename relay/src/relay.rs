//! The publishing loop: membership, wake-ups, and one cycle at a time.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use order_kafka::KafkaPublisher;
use rand::Rng;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::DeliveryFuture;
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::metrics::RelayMetrics;
use crate::outbox::{self, OutboxRow};

/// How long the warm-up waits for the broker before leaving it to the cycles.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// How the loop paces itself and when it gives up on a row.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// Most rows per cycle.
    pub batch_size: u32,
    /// How often an idle relay looks for rows when no notification woke it.
    pub poll_interval: Duration,
    /// Cap of the back-off after failed cycles.
    pub max_backoff: Duration,
    /// Attempts of a poison row before it is parked.
    pub max_attempts: i32,
    /// A relay whose heartbeat is older is dead; its partitions are taken over.
    pub member_ttl: Duration,
    /// Test hook: pause at a phase of every cycle, so a test can kill the relay there.
    pub fault_pause: Option<(FaultPhase, Duration)>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            max_attempts: 5,
            member_ttl: Duration::from_secs(5),
            fault_pause: None,
        }
    }
}

/// Where a fault-injection pause happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPhase {
    /// Every message of the batch is queued on the producer, none awaited yet.
    AfterProduce,
    /// Every acknowledgment arrived; the rows are not deleted yet.
    AfterAck,
}

/// What one cycle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// This relay publishes no partition right now (others hold them all).
    Standby,
    /// Published and deleted this many rows; `full` when the batch was full.
    Published { rows: usize, full: bool },
}

/// Why a cycle failed; its unpublished rows stay in the outbox and are retried.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event {event_id} was not acknowledged: {error}")]
    Delivery { event_id: Uuid, error: KafkaError },
}

impl CycleError {
    /// Whether the producer's idempotence state is broken (fenced, epoch or sequence
    /// lost), so that only a new producer can send again.
    fn is_producer_state(&self) -> bool {
        let Self::Delivery { error, .. } = self else {
            return false;
        };
        matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::InvalidProducerIdMapping
            )
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Database(_) => "database",
            Self::Delivery { .. } => "delivery",
        }
    }
}

/// Whether an error means this message can never be published (as opposed to the
/// broker being unreachable or slow, which every message suffers alike).
fn is_poison(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::BadMessage
        )
    )
}

/// The relay: a pool, a producer, metrics, and its share of the partitions.
#[derive(Debug, Clone)]
pub struct Relay {
    id: Uuid,
    pool: PgPool,
    publisher: Arc<RwLock<KafkaPublisher>>,
    metrics: Arc<RelayMetrics>,
    settings: RelaySettings,
    partitions: Arc<RwLock<Vec<i32>>>,
    wake: Arc<Notify>,
    /// The connection holding this relay's member lock; reopened when it breaks.
    session: Arc<tokio::sync::Mutex<Option<outbox::MemberSession>>>,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        publisher: KafkaPublisher,
        metrics: Arc<RelayMetrics>,
        settings: RelaySettings,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            pool,
            publisher: Arc::new(RwLock::new(publisher)),
            metrics,
            settings,
            partitions: Arc::new(RwLock::new(Vec::new())),
            wake: Arc::new(Notify::new()),
            session: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// This relay's member id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The partitions this relay publishes now.
    pub fn partitions(&self) -> Vec<i32> {
        self.partitions
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Runs until `shutdown` resolves: a membership task, a `LISTEN outbox` task, and
    /// the cycles. A cycle in progress is finished before returning (its rows are
    /// published and deleted, or left for the next run), then the relay leaves the
    /// membership so the others take its partitions at once.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let membership = tokio::spawn(self.clone().keep_membership());
        let listener = tokio::spawn(listen(self.pool.clone(), self.wake.clone()));
        self.warm_up().await;
        self.refresh_membership().await;
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.cycle().await {
                Ok(Cycle::Published { full: true, .. }) => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(_) => {
                    failures = 0;
                    self.settings.poll_interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    self.metrics
                        .failures
                        .with_label_values(&[error.kind()])
                        .inc();
                    self.metrics.set_ready(false);
                    let pause = backoff(failures, self.settings.max_backoff);
                    tracing::warn!(%error, attempt = failures, retry_in_ms = pause.as_millis() as u64,
                        "relay cycle failed; unpublished rows are kept for retry");
                    pause
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
                () = self.wake.notified(), if failures == 0 => {}
            }
        }
        membership.abort();
        listener.abort();
        if let Err(error) = outbox::leave(&self.pool, self.id).await {
            tracing::warn!(%error, "could not leave the relay membership; others take over when its member session closes");
        }
        if let Some(session) = self.session.lock().await.take() {
            session.close().await;
        }
        self.metrics.set_ready(false);
        self.metrics.owned_partitions.set(0);
    }

    /// Makes the first cycle as fast as the others: opens the pool's connections and
    /// connects the producer to the brokers with the topic's metadata (which also gets
    /// the idempotent producer its id), before the relay takes partitions and says ready.
    /// Bounded: a database or broker that is down is left to the cycles' back-off.
    async fn warm_up(&self) {
        let started = std::time::Instant::now();
        // A cycle, the heartbeat and the backlog gauges use a connection each; opened
        // together, then handed back at once (the pool may be shared).
        let connections = self.pool.options().get_max_connections().min(3);
        let held = futures::future::join_all((0..connections).map(|_| self.pool.acquire())).await;
        let opened = held.iter().filter(|c| c.is_ok()).count();
        drop(held);
        let publisher = self.publisher();
        let reachable =
            tokio::task::spawn_blocking(move || publisher.is_reachable(WARM_UP_TIMEOUT))
                .await
                .unwrap_or(false);
        tracing::info!(
            connections = opened,
            broker = reachable,
            took_ms = started.elapsed().as_millis() as u64,
            "relay warmed up"
        );
    }

    /// Heartbeats, and refreshes the backlog gauges at the same pace (off the
    /// publishing path, which would otherwise count the outbox after every cycle).
    async fn keep_membership(self) {
        let every = (self.settings.member_ttl / 5).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            self.refresh_membership().await;
            self.refresh_backlog().await;
        }
    }

    /// Heartbeats on the member session (opening it first when there is none, or when
    /// the last heartbeat broke it) and takes this relay's share of the partitions.
    async fn refresh_membership(&self) {
        let ttl = i64::try_from(self.settings.member_ttl.as_millis()).unwrap_or(i64::MAX);
        let host =
            std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid-{}", std::process::id()));
        let mut session = self.session.lock().await;
        if session.is_none() {
            match outbox::MemberSession::open(&self.pool).await {
                Ok(opened) => *session = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "could not open the relay member session");
                    return;
                }
            }
        }
        let Some(open) = session.as_mut() else {
            return;
        };
        let heartbeat = outbox::heartbeat(open, self.id, &host, ttl).await;
        if heartbeat.is_err() {
            // A broken connection has lost the lock: open a new one next time.
            *session = None;
        }
        drop(session);
        match heartbeat {
            Ok(members) => {
                let index = members.iter().position(|m| *m == self.id).unwrap_or(0);
                let mine = outbox::assigned_partitions(index, members.len());
                self.metrics.owned_partitions.set(mine.len() as i64);
                let changed = {
                    let mut current = self.partitions.write().unwrap_or_else(|e| e.into_inner());
                    let changed = *current != mine;
                    *current = mine;
                    changed
                };
                if changed {
                    tracing::info!(members = members.len(), partitions = ?self.partitions(), "relay partitions assigned");
                    self.wake.notify_one();
                }
            }
            Err(error) => tracing::warn!(%error, "relay heartbeat failed"),
        }
    }

    /// One cycle, in one transaction: lock this relay's partitions, read their due
    /// rows, produce them all, await the acknowledgments, delete what was acknowledged,
    /// record failures, commit.
    ///
    /// # Errors
    /// [`CycleError`] when the database failed (nothing of the cycle was committed) or
    /// the broker did not acknowledge a message (the acknowledged rows before it were
    /// deleted; the rest stay).
    #[tracing::instrument(skip_all, err)]
    pub async fn cycle(&self) -> Result<Cycle, CycleError> {
        let mine = self.partitions();
        if mine.is_empty() {
            self.metrics.set_ready(true);
            return Ok(Cycle::Standby);
        }
        let started = std::time::Instant::now();
        let (tx, rows) = match self.claim(&mine).await? {
            Claim::Rows(tx, rows) => (tx, rows),
            Claim::Nothing(cycle) => {
                self.metrics.set_ready(true);
                return Ok(cycle);
            }
        };
        let full = rows.len() as u64 >= u64::from(self.settings.batch_size);
        let publisher = self.publisher();
        let read_ms = started.elapsed().as_millis();

        let produced = produce(&publisher, &rows);
        let produced_ms = started.elapsed().as_millis();
        self.pause_for_fault(FaultPhase::AfterProduce).await;

        let outcome = await_acknowledgments(produced).await;
        let acked_ms = started.elapsed().as_millis();
        self.pause_for_fault(FaultPhase::AfterAck).await;

        let acked_at = self.settle(tx, &outcome).await?;
        tracing::debug!(
            rows = rows.len(),
            read_ms,
            produced_ms,
            acked_ms,
            committed_ms = started.elapsed().as_millis(),
            "cycle"
        );

        self.record_published(&outcome.acknowledged, acked_at);
        if let Some(error) = outcome.transient {
            if publisher.is_fatal() || error.is_producer_state() {
                self.renew_publisher(&publisher);
            }
            return Err(error);
        }
        self.metrics.set_ready(true);
        Ok(Cycle::Published {
            rows: outcome.acknowledged.len(),
            full,
        })
    }

    /// Claim: opens the cycle's transaction, locks the partitions of `mine` that no
    /// other relay holds, and reads their due rows. When there is nothing to publish,
    /// the transaction is committed and the cycle's outcome returned.
    async fn claim(&self, mine: &[i32]) -> Result<Claim, sqlx::Error> {
        let mut tx = outbox::begin_cycle(&self.pool).await?;
        let locked = outbox::lock_partitions(&mut tx, mine).await?;
        if locked.is_empty() {
            tx.commit().await?;
            return Ok(Claim::Nothing(Cycle::Standby));
        }
        let rows = outbox::due(&mut tx, &locked, self.settings.batch_size).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Claim::Nothing(Cycle::Published {
                rows: 0,
                full: false,
            }));
        }
        Ok(Claim::Rows(tx, rows))
    }

    /// Settle: deletes the acknowledged rows, records the poison rows' failures (parking
    /// those out of attempts), and commits. Returns the time taken as the
    /// acknowledgments' arrival, for the latency metric.
    async fn settle(
        &self,
        mut tx: Transaction<'static, Postgres>,
        outcome: &Acknowledgments<'_>,
    ) -> Result<DateTime<Utc>, sqlx::Error> {
        let acked_at = Utc::now();
        if !outcome.acknowledged.is_empty() {
            let ids: Vec<i64> = outcome.acknowledged.iter().map(|row| row.id).collect();
            outbox::delete(&mut tx, &ids).await?;
        }
        for (row, error) in &outcome.poison {
            self.record_poison(&mut tx, row, error).await?;
        }
        tx.commit().await?;
        Ok(acked_at)
    }

    /// Records one failed attempt of a row that can never be published, parking it
    /// once it is out of attempts; logs and counts it.
    async fn record_poison(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        row: &OutboxRow,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let attempt = row.attempts + 1;
        let retry_in = backoff(attempt, self.settings.max_backoff);
        outbox::record_failure(
            tx,
            row.id,
            error,
            retry_in.as_millis() as i64,
            self.settings.max_attempts,
        )
        .await?;
        let parked = i64::from(attempt) >= i64::from(self.settings.max_attempts);
        tracing::error!(
            event_id = %row.event.event_id, order_id = %row.event.aggregate_id, outbox_id = row.id,
            attempt, parked, error = %error,
            "event cannot be published; the order's later events are held back"
        );
        self.metrics
            .failures
            .with_label_values(&[if parked { "parked" } else { "poison" }])
            .inc();
        Ok(())
    }

    /// The metrics of the rows a committed cycle published.
    fn record_published(&self, acknowledged: &[&OutboxRow], acked_at: DateTime<Utc>) {
        for row in acknowledged {
            let latency = (acked_at - row.created_at)
                .num_microseconds()
                .unwrap_or(0)
                .max(0);
            self.metrics.publish_latency.observe(latency as f64 / 1e6);
        }
        self.metrics.published.inc_by(acknowledged.len() as u64);
        self.metrics.batch_size.observe(acknowledged.len() as f64);
    }

    fn publisher(&self) -> KafkaPublisher {
        self.publisher
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces a producer in a fatal state; the failed rows are sent again by the new one.
    fn renew_publisher(&self, failed: &KafkaPublisher) {
        match failed.renew() {
            Ok(fresh) => {
                *self.publisher.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                self.metrics
                    .failures
                    .with_label_values(&["producer_renewed"])
                    .inc();
                tracing::warn!("the Kafka producer hit a fatal error; replaced it with a new one");
            }
            Err(error) => tracing::error!(
                error = format!("{error:#}"),
                "could not replace the failed Kafka producer"
            ),
        }
    }

    async fn pause_for_fault(&self, phase: FaultPhase) {
        if let Some((at, pause)) = self.settings.fault_pause {
            if at == phase {
                tracing::warn!(
                    ?phase,
                    pause_ms = pause.as_millis() as u64,
                    "fault-injection pause"
                );
                tokio::time::sleep(pause).await;
            }
        }
    }

    async fn refresh_backlog(&self) {
        if let Ok((waiting, oldest_age, parked)) = outbox::backlog(&self.pool).await {
            self.metrics.backlog.set(waiting);
            self.metrics.oldest_age.set(oldest_age);
            self.metrics.parked.set(parked);
        }
    }
}

/// What a cycle's claim found.
enum Claim {
    /// Nothing to publish; the transaction is committed and this is the cycle's outcome.
    Nothing(Cycle),
    /// Due rows, in the transaction that holds their partitions' locks.
    Rows(Transaction<'static, Postgres>, Vec<OutboxRow>),
}

/// The rows of a batch the producer took, and those it will never take.
struct Produced<'a> {
    /// Queued rows, in batch order, with their acknowledgments to come.
    pending: Vec<(&'a OutboxRow, DeliveryFuture)>,
    /// When traces are exported, the producer span of each pending row (same order),
    /// ended at its acknowledgment; empty otherwise.
    spans: Vec<tracing::Span>,
    /// Rows that can never be published, with why.
    poison: Vec<(&'a OutboxRow, String)>,
    /// Orders with a poison row: none of their later rows was sent.
    blocked: HashSet<Uuid>,
}

/// How a batch's acknowledgments came out.
struct Acknowledgments<'a> {
    /// Rows acknowledged with no earlier row of their order failed in this cycle.
    acknowledged: Vec<&'a OutboxRow>,
    /// Rows that can never be published (found when producing or when acknowledged).
    poison: Vec<(&'a OutboxRow, String)>,
    /// The first delivery failure that may pass (the broker unreachable or slow).
    transient: Option<CycleError>,
}

/// Produce: queues every row on the producer (pipelining), none awaited. Once a row of
/// an order fails, the order's later rows are not sent in this cycle, so they can never
/// overtake it. Stops at the first row the producer refuses for its own trouble.
///
/// When traces are exported, each row is sent under a producer span that continues the
/// row's stored `traceparent`, and the message carries the span's context instead.
fn produce<'a>(publisher: &KafkaPublisher, rows: &'a [OutboxRow]) -> Produced<'a> {
    let traced = order_runtime::telemetry::is_enabled();
    let mut blocked: HashSet<Uuid> = HashSet::new();
    let mut poison: Vec<(&OutboxRow, String)> = Vec::new();
    let mut pending = Vec::with_capacity(rows.len());
    let mut spans = Vec::new();
    for row in rows {
        if blocked.contains(&row.event.aggregate_id) {
            continue;
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&row.event.value).is_err() {
            blocked.insert(row.event.aggregate_id);
            poison.push((row, "the outbox message is not valid JSON".to_owned()));
            continue;
        }
        let (queued, span) = if traced {
            let span = order_kafka::trace::producer_span(&row.event, publisher.topic());
            let traceparent = order_runtime::telemetry::traceparent(&span);
            let queued = publisher.enqueue_traced(&row.event, traceparent.as_deref());
            (queued, Some(span))
        } else {
            (publisher.enqueue(&row.event), None)
        };
        if let (Err(error), Some(span)) = (&queued, &span) {
            order_kafka::trace::record_delivery(span, Err(error));
        }
        match queued {
            Ok(delivery) => {
                pending.push((row, delivery));
                spans.extend(span);
            }
            Err(error) if is_poison(&error) => {
                blocked.insert(row.event.aggregate_id);
                poison.push((row, error.to_string()));
            }
            Err(error) => {
                // Queue full or producer trouble: send the rest next cycle.
                tracing::debug!(%error, "producer refused a message; the rest of the batch waits");
                break;
            }
        }
    }
    Produced {
        pending,
        spans,
        poison,
        blocked,
    }
}

/// Await acknowledgments: every queued row's, in batch order.
async fn await_acknowledgments(produced: Produced<'_>) -> Acknowledgments<'_> {
    let Produced {
        pending,
        spans,
        mut poison,
        blocked,
    } = produced;
    let mut acknowledged = Vec::with_capacity(pending.len());
    let mut failed: HashSet<Uuid> = blocked;
    let mut transient = None;
    let mut spans = spans.into_iter();
    for (row, delivery) in pending {
        let outcome = match delivery.await {
            Ok(Ok(delivered)) => Ok(delivered),
            Ok(Err((error, _))) => Err(error),
            Err(_canceled) => Err(KafkaError::Canceled),
        };
        // The producer span (when traced) ends here, at the broker's answer.
        if let Some(span) = spans.next() {
            let answer = outcome.as_ref().map(|d| (d.partition, d.offset));
            order_kafka::trace::record_delivery(&span, answer);
        }
        let outcome = outcome.map(|_| ());
        match outcome {
            // A row is done only if no earlier row of its order failed in this cycle.
            Ok(()) if !failed.contains(&row.event.aggregate_id) => acknowledged.push(row),
            Ok(()) => {}
            Err(error) => {
                failed.insert(row.event.aggregate_id);
                if is_poison(&error) {
                    poison.push((row, error.to_string()));
                } else if transient.is_none() {
                    transient = Some(CycleError::Delivery {
                        event_id: row.event.event_id,
                        error,
                    });
                }
            }
        }
    }
    Acknowledgments {
        acknowledged,
        poison,
        transient,
    }
}

/// Wakes the loop on every `NOTIFY outbox` (sent by the order service after commands
/// committed outbox rows, and by the operator commands). A notification that arrives
/// while a cycle runs is kept (a [`Notify`] permit), so the next cycle starts as soon as
/// this one ends. Reconnects after a failure; the poll interval covers the gap.
async fn listen(pool: PgPool, wake: Arc<Notify>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen(order_postgres::outbox::CHANNEL).await {
                    tracing::warn!(%error, "LISTEN outbox failed");
                } else {
                    loop {
                        match listener.recv().await {
                            Ok(_) => wake.notify_one(),
                            Err(error) => {
                                tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "cannot LISTEN for outbox inserts yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        wake.notify_one();
    }
}

/// Exponential back-off from 100 ms, doubled per failure, capped, with jitter in its
/// upper half (so several relays do not retry in step).
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = Duration::from_millis(100)
        .saturating_mul(1 << exponent)
        .min(cap);
    let half = base / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(10);
        for failures in 1..40 {
            let pause = backoff(failures, cap);
            assert!(pause <= cap, "{pause:?}");
            let exponent = failures.saturating_sub(1).min(16);
            let base = Duration::from_millis(100)
                .saturating_mul(1 << exponent)
                .min(cap);
            assert!(pause >= base / 2, "{pause:?} < half of {base:?}");
        }
    }

    #[test]
    fn only_message_errors_are_poison() {
        let too_large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown);
        assert!(is_poison(&too_large));
        assert!(!is_poison(&timed_out));
        assert!(!is_poison(&down));
    }
}
