//! OpenTelemetry traces (API.md, Tracing): with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the
//! `tracing` spans the adapters mark for it are exported over OTLP/HTTP with protobuf
//! bodies (`POST <endpoint>/v1/traces`), under the resource attribute `service.name`.
//! Unset, no OpenTelemetry layer is installed at all and [`is_enabled`] is false, so
//! the callers skip every span they would only make for it.
//!
//! A slow or dead collector never slows a command: spans end into a bounded queue
//! ([`QUEUE_CAPACITY`]) that a background thread of the SDK's `BatchSpanProcessor`
//! exports in batches; a span that finds the queue full is dropped, and a batch the
//! collector refuses is lost. Both are counted ([`spans_lost`]) and logged: the first
//! failure when it happens, the totals at shutdown.
//!
//! The trace context crosses process boundaries as W3C `traceparent` text only
//! ([`set_parent`], [`traceparent`]), so the adapters need no OpenTelemetry types.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Most spans waiting for export unless `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise;
/// beyond it new spans are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 2048;

/// The queue's capacity: `OTEL_BSP_MAX_QUEUE_SIZE` (the SDK's variable) when it is a
/// positive integer, [`QUEUE_CAPACITY`] otherwise.
fn queue_capacity(setting: Option<&str>) -> usize {
    setting
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|capacity| *capacity > 0)
        .unwrap_or(QUEUE_CAPACITY)
}

/// How long a stopping process waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// The crates whose spans are exported: the server spans (HTTP, gRPC), the use cases
/// and their transactions, the producer and consumer spans. Everything else (the
/// relay's cycles, sqlx) stays in the logs only.
const EXPORTED_SPAN_TARGETS: [&str; 4] = ["order_http", "order_grpc", "application", "order_kafka"];

/// What the global filter enables, with export on, so the exported spans exist.
pub(crate) const SPAN_DIRECTIVES: [&str; 5] = [
    "order_http=info",
    "order_grpc=info",
    "application=info",
    "order_kafka=info",
    "application[transaction]=debug",
];

/// Where the traces go: `OTEL_EXPORTER_OTLP_ENDPOINT` (none: tracing off) and the
/// `service.name` to export under (`OTEL_SERVICE_NAME`, else the binary's name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceExport {
    pub endpoint: Option<String>,
    pub service_name: String,
}

/// The tracing settings of both binaries' command lines (flattened into each).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TraceArgs {
    /// OTLP/HTTP endpoint traces are exported to (`POST <endpoint>/v1/traces`, protobuf),
    /// e.g. `http://127.0.0.1:4318`. Unset: no traces, at no cost.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// The `service.name` the traces are exported under (default: the binary's name).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
}

impl TraceArgs {
    /// Where to export, named `binary` unless `OTEL_SERVICE_NAME` says otherwise.
    pub fn export(&self, binary: &str) -> TraceExport {
        TraceExport {
            endpoint: self
                .otel_exporter_otlp_endpoint
                .clone()
                .filter(|endpoint| !endpoint.trim().is_empty()),
            service_name: self
                .otel_service_name
                .clone()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| binary.to_owned()),
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static LEDGER: OnceLock<Arc<Ledger>> = OnceLock::new();

/// Whether spans are exported (the process was started with an OTLP endpoint).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Spans lost so far: dropped because the queue was full, plus those of batches the
/// collector did not take (down, slow past `OTEL_EXPORTER_OTLP_TIMEOUT`, refusing).
pub fn spans_lost() -> u64 {
    LEDGER.get().map_or(0, |ledger| ledger.lost())
}

/// Makes `span` continue the W3C `traceparent` (a remote parent); with `None`, or a
/// value that does not parse, `span` starts a trace of its own. Does nothing when
/// tracing is off.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if !is_enabled() {
        return;
    }
    let parent = traceparent
        .and_then(parse_traceparent)
        .map(|remote| opentelemetry::Context::new().with_remote_span_context(remote))
        .unwrap_or_default();
    let _ = span.set_parent(parent);
}

/// Adds a link from `span` to the span of a W3C `traceparent` (a batch consumer's span
/// to each message's producer). Does nothing when tracing is off.
pub fn add_link(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent
        .filter(|_| is_enabled())
        .and_then(parse_traceparent)
    {
        span.add_link(remote);
    }
}

/// The W3C `traceparent` of `span`: what a message or event sent under it carries.
/// `None` when tracing is off (or the span is not exported).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !is_enabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| format_traceparent(&span_context))
}

/// The W3C `traceparent` of the current span (see [`traceparent`]).
pub fn current_traceparent() -> Option<String> {
    if !is_enabled() {
        return None;
    }
    traceparent(&tracing::Span::current())
}

fn parse_traceparent(text: &str) -> Option<SpanContext> {
    let mut parts = text.split('-');
    let (Some("00"), Some(trace), Some(span), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

fn format_traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Keeps the tracer provider of a process that exports spans; [`Telemetry::shutdown`]
/// (or dropping it) exports what is left, within two seconds, and logs what was lost.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans ended so far, waiting for the collector's answer (tests and
    /// benchmarks read their traces after it). Nothing to do when tracing is off.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }

    /// Exports the spans still queued (within two seconds) and stops exporting; logs
    /// how many spans were exported and lost. Nothing to do when tracing is off.
    pub fn shutdown(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        if let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(target: "order_runtime::telemetry", %error, "the last spans could not all be exported");
        }
        if let Some(ledger) = LEDGER.get() {
            tracing::info!(
                target: "order_runtime::telemetry",
                exported = ledger.exported.load(Ordering::Relaxed),
                dropped_queue_full = ledger.dropped.load(Ordering::Relaxed),
                lost_export_failed = ledger.failed.load(Ordering::Relaxed),
                "span export stopped"
            );
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The provider exporting to `endpoint` under `service_name`, and the layer that
/// bridges `tracing` spans to it (only the exported crates' spans, and warnings and
/// errors as span events).
///
/// # Errors
/// When the endpoint is not a URL the exporter accepts.
pub(crate) fn layer<S>(
    export: &TraceExport,
    endpoint: &str,
) -> Result<(impl tracing_subscriber::Layer<S>, Telemetry), opentelemetry_otlp::ExporterBuildError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use tracing_subscriber::Layer as _;

    // reqwest's blocking client (the crate's feature): the batch processor's own thread
    // drives exports with a plain executor, outside the Tokio runtime.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()?;
    let ledger = LEDGER.get_or_init(|| Arc::new(Ledger::default())).clone();
    let capacity = queue_capacity(std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").ok().as_deref());
    let batches = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        ledger: ledger.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(capacity)
            .build(),
    )
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Bounded {
            inner: batches,
            ledger,
            capacity,
        })
        .with_resource(
            Resource::builder_empty()
                .with_service_name(export.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer(export.service_name.clone());
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_filter(tracing_subscriber::filter::filter_fn(exported));
    ENABLED.store(true, Ordering::Relaxed);
    Ok((
        layer,
        Telemetry {
            provider: Some(provider),
        },
    ))
}

/// Whether the OpenTelemetry layer sees this span or event.
fn exported(metadata: &Metadata<'_>) -> bool {
    if metadata.is_event() {
        // Never the exporter's own chatter (it would feed itself).
        let target = metadata.target();
        return *metadata.level() <= Level::WARN
            && ![
                "opentelemetry",
                "reqwest",
                "hyper",
                "order_runtime::telemetry",
            ]
            .iter()
            .any(|quiet| target.starts_with(quiet));
    }
    EXPORTED_SPAN_TARGETS
        .iter()
        .any(|crate_name| is_in(metadata.target(), crate_name))
}

fn is_in(target: &str, crate_name: &str) -> bool {
    target
        .strip_prefix(crate_name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// What became of the spans: exported, dropped at a full queue, or lost with a batch
/// the collector did not take; and how many wait in the queue.
#[derive(Debug, Default)]
struct Ledger {
    queued: AtomicUsize,
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Whether the last export failed (the first failure of a run is logged).
    failing: AtomicBool,
}

impl Ledger {
    fn lost(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// The batch processor behind a bounded queue of our own, so that every dropped span
/// is counted here (the SDK only logs its own count at shutdown).
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    ledger: Arc<Ledger>,
    capacity: usize,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.ledger.queued.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.ledger.queued.fetch_sub(1, Ordering::Relaxed);
            if self.ledger.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    target: "order_runtime::telemetry",
                    capacity = self.capacity,
                    "span export queue full (collector slow or down); spans are dropped and counted"
                );
            }
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what it exports and loses.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    ledger: Arc<Ledger>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        self.ledger.queued.fetch_sub(spans, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.ledger
                    .exported
                    .fetch_add(spans as u64, Ordering::Relaxed);
                if self.ledger.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "order_runtime::telemetry", "span export works again");
                }
            }
            Err(error) => {
                self.ledger
                    .failed
                    .fetch_add(spans as u64, Ordering::Relaxed);
                if !self.ledger.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "order_runtime::telemetry",
                        %error,
                        spans,
                        "span export failed; spans are lost and counted until the collector answers"
                    );
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_queue_capacity_is_the_sdks_variable_when_it_is_a_positive_integer() {
        assert_eq!(super::queue_capacity(None), super::QUEUE_CAPACITY);
        assert_eq!(super::queue_capacity(Some("512")), 512);
        assert_eq!(super::queue_capacity(Some(" 64 ")), 64);
        for ignored in ["0", "-1", "many", ""] {
            assert_eq!(super::queue_capacity(Some(ignored)), super::QUEUE_CAPACITY);
        }
    }

    use super::*;

    #[test]
    fn a_traceparent_survives_parsing_and_formatting() {
        let text = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let context = parse_traceparent(text).expect("valid");
        assert!(context.is_remote());
        assert_eq!(format_traceparent(&context), text);
    }

    #[test]
    fn a_malformed_traceparent_is_no_parent() {
        for text in [
            "garbage",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert!(parse_traceparent(text).is_none(), "{text}");
        }
    }

    #[test]
    fn only_the_marked_crates_spans_are_exported() {
        assert!(is_in("order_http", "order_http"));
        assert!(is_in("order_kafka::trace", "order_kafka"));
        assert!(!is_in("order_httpx", "order_http"));
        assert!(!is_in("relay::relay", "order_kafka"));
    }

    #[test]
    fn with_tracing_off_nothing_is_made() {
        let span = tracing::info_span!("anything");
        set_parent(
            &span,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        assert_eq!(traceparent(&span), None);
        assert_eq!(spans_lost(), 0);
    }
}
