//! Prometheus metrics of the HTTP API.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use super::AppState;

/// Request counters and latencies, by method, route and status.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    read_model_lag: Gauge,
    /// Spans the trace export lost (see [`order_runtime::telemetry::spans_lost`]),
    /// brought up to date when rendered.
    spans_lost: IntCounter,
}

impl HttpMetrics {
    /// Registers the metrics in a fresh registry.
    ///
    /// # Errors
    /// Never in practice (the names are fixed and valid).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let read_model_lag = Gauge::new(
            "read_model_lag_seconds",
            "Time between the newest committed event and the newest event applied to the read model",
        )?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(read_model_lag.clone()))?;
        let spans_lost = IntCounter::new(
            "trace_spans_lost_total",
            "Spans the trace export lost: dropped at its full queue or with a batch the collector refused",
        )?;
        registry.register(Box::new(spans_lost.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            read_model_lag,
            spans_lost,
        })
    }

    /// Records the read model's lag (read when `/metrics` is scraped or a list is served).
    pub fn set_read_model_lag(&self, lag: std::time::Duration) {
        self.read_model_lag.set(lag.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let lost = order_runtime::telemetry::spans_lost();
        self.spans_lost
            .inc_by(lost.saturating_sub(self.spans_lost.get()));
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// Middleware: counts and times every request by its route template.
pub(super) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .latency
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    response
}
