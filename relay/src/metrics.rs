//! The relay's Prometheus metrics and readiness.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Everything `/metrics` shows, and whether the relay can publish (`/readyz`).
#[derive(Debug)]
pub struct RelayMetrics {
    registry: Registry,
    pub published: IntCounter,
    pub failures: IntCounterVec,
    pub backlog: IntGauge,
    pub oldest_age: Gauge,
    pub publish_latency: Histogram,
    pub batch_size: Histogram,
    pub owned_partitions: IntGauge,
    pub parked: IntGauge,
    /// Spans the trace export lost (see [`order_runtime::telemetry::spans_lost`]),
    /// brought up to date when rendered.
    spans_lost: IntCounter,
    ready: AtomicBool,
}

impl RelayMetrics {
    /// # Errors
    /// Never in practice (fixed, valid names).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let published =
            IntCounter::new("relay_published_total", "Events acknowledged by the broker")?;
        let failures = IntCounterVec::new(
            Opts::new(
                "relay_failures_total",
                "Failed relay cycles, by kind (database, produce, delivery)",
            ),
            &["kind"],
        )?;
        let backlog = IntGauge::new("relay_backlog", "Outbox rows waiting to be published")?;
        let oldest_age = Gauge::new(
            "relay_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox row",
        )?;
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "relay_publish_latency_seconds",
                "Outbox insert to broker acknowledgment",
            )
            // Fine below 100 ms, where a healthy relay lives, so a 25 ms p99 can be read.
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("relay_batch_size", "Rows published per cycle").buckets(vec![
                1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
            ]),
        )?;
        let owned_partitions = IntGauge::new(
            "relay_owned_partitions",
            "Outbox partitions this relay publishes",
        )?;
        let parked = IntGauge::new(
            "relay_parked",
            "Outbox rows parked after too many failed attempts",
        )?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(backlog.clone()))?;
        registry.register(Box::new(oldest_age.clone()))?;
        registry.register(Box::new(publish_latency.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(owned_partitions.clone()))?;
        let spans_lost = IntCounter::new(
            "trace_spans_lost_total",
            "Spans the trace export lost: dropped at its full queue or with a batch the collector refused",
        )?;
        registry.register(Box::new(parked.clone()))?;
        registry.register(Box::new(spans_lost.clone()))?;
        Ok(Self {
            registry,
            published,
            failures,
            backlog,
            oldest_age,
            publish_latency,
            batch_size,
            owned_partitions,
            parked,
            spans_lost,
            ready: AtomicBool::new(false),
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let lost = order_runtime::telemetry::spans_lost();
        self.spans_lost
            .inc_by(lost.saturating_sub(self.spans_lost.get()));
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
