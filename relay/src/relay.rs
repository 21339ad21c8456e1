//! The publishing loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use adapters::kafka::KafkaPublisher;
use chrono::Utc;
use rand::Rng;
use sqlx::PgPool;

use crate::metrics::RelayMetrics;
use crate::outbox;

/// How the loop paces itself.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    pub batch_size: u32,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
}

/// What one cycle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// Another relay holds the lock; this one stands by.
    Standby,
    /// Published and deleted this many rows.
    Published(usize),
}

/// Why a cycle failed; its rows stay in the outbox and are retried.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the producer refused event {event_id}: {error}")]
    Produce {
        event_id: uuid::Uuid,
        error: rdkafka::error::KafkaError,
    },
    #[error("event {event_id} was not acknowledged: {error}")]
    Delivery {
        event_id: uuid::Uuid,
        error: rdkafka::error::KafkaError,
    },
}

impl CycleError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Database(_) => "database",
            Self::Produce { .. } => "produce",
            Self::Delivery { .. } => "delivery",
        }
    }
}

/// The relay: a pool, a producer, metrics.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    publisher: KafkaPublisher,
    metrics: Arc<RelayMetrics>,
    settings: RelaySettings,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        publisher: KafkaPublisher,
        metrics: Arc<RelayMetrics>,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            publisher,
            metrics,
            settings,
        }
    }

    /// Runs cycles until `shutdown` resolves. A cycle in progress is finished (its
    /// rows are published and deleted, or left for the next run) before returning.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.cycle().await {
                Ok(Cycle::Published(n)) if n as u64 >= u64::from(self.settings.batch_size) => {
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
                    tracing::warn!(%error, attempt = failures, retry_in_ms = pause.as_millis() as u64, "relay cycle failed; rows kept for retry");
                    pause
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        self.metrics.set_ready(false);
        self.metrics.lock_held.set(0);
    }

    /// One cycle: lock, read, publish, await acknowledgments, delete, commit.
    ///
    /// # Errors
    /// [`CycleError`] when the database or the broker failed; the acknowledged prefix of
    /// the batch was deleted only if the error came after it and the commit succeeded.
    #[tracing::instrument(skip_all, err)]
    pub async fn cycle(&self) -> Result<Cycle, CycleError> {
        let mut tx = self.pool.begin().await?;
        if !outbox::try_lock(&mut tx).await? {
            tx.commit().await?;
            self.metrics.lock_held.set(0);
            self.metrics.set_ready(true);
            return Ok(Cycle::Standby);
        }
        self.metrics.lock_held.set(1);
        let rows = outbox::oldest(&mut tx, self.settings.batch_size).await?;
        if rows.is_empty() {
            tx.commit().await?;
            self.refresh_backlog().await;
            self.metrics.set_ready(true);
            return Ok(Cycle::Published(0));
        }

        // Queue everything first (pipelining), stopping at the first refusal so no row
        // after a failed one is sent ahead of it.
        let mut pending = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            match self.publisher.enqueue(&row.event) {
                Ok(delivery) => pending.push((row, delivery)),
                Err(error) => {
                    failure = Some(CycleError::Produce {
                        event_id: row.event.event_id,
                        error,
                    });
                    break;
                }
            }
        }
        // Await the acknowledgments in order; keep the acknowledged prefix.
        let mut acknowledged = Vec::with_capacity(pending.len());
        for (row, delivery) in pending {
            let outcome = match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((error, _))) => Err(error),
                Err(_canceled) => Err(rdkafka::error::KafkaError::Canceled),
            };
            match outcome {
                Ok(()) if failure.is_none() => acknowledged.push(row),
                Ok(()) => {}
                Err(error) => {
                    if failure.is_none() {
                        failure = Some(CycleError::Delivery {
                            event_id: row.event.event_id,
                            error,
                        });
                    }
                }
            }
        }
        let acked_at = Utc::now();
        if !acknowledged.is_empty() {
            let ids: Vec<i64> = acknowledged.iter().map(|row| row.id).collect();
            outbox::delete(&mut tx, &ids).await?;
        }
        tx.commit().await?;
        for row in &acknowledged {
            let latency = (acked_at - row.created_at)
                .num_microseconds()
                .unwrap_or(0)
                .max(0);
            self.metrics.publish_latency.observe(latency as f64 / 1e6);
        }
        self.metrics.published.inc_by(acknowledged.len() as u64);
        self.metrics.batch_size.observe(acknowledged.len() as f64);
        match failure {
            Some(error) => Err(error),
            None => {
                self.metrics.set_ready(true);
                if acknowledged.len() < rows.len()
                    || (acknowledged.len() as u64) < u64::from(self.settings.batch_size)
                {
                    self.refresh_backlog().await;
                }
                Ok(Cycle::Published(acknowledged.len()))
            }
        }
    }

    async fn refresh_backlog(&self) {
        if let Ok((waiting, oldest_age)) = outbox::backlog(&self.pool).await {
            self.metrics.backlog.set(waiting);
            self.metrics.oldest_age.set(oldest_age);
        }
    }
}

/// Exponential back-off from 100 ms, doubled per failure, capped, with full jitter
/// in its upper half (so several relays do not retry in step).
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
}
