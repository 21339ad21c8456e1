//! What both binaries need from their process: logging (`tracing` to standard error,
//! filtered by `RUST_LOG`, default `info`, as JSON when `LOG_FORMAT=json`), traces
//! exported over OTLP when configured, the stop signals, and listen addresses as the
//! configuration writes them.
//!
//! # Layout
//! - [`init`]: the global subscriber: the log layer, and the OpenTelemetry layer when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`telemetry`]: the trace export (bounded, counted) and the W3C `traceparent` glue
//!   the adapters use to continue and hand on traces.
//! - [`jobs`]: the subcommands' actor and their jobs in the foreground, with progress.
//! - [`shutdown_signal`], [`parse_addr`].

pub mod jobs;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub use telemetry::{Telemetry, TraceArgs, TraceExport};

/// Installs the global subscriber: logs, and the export of traces when `traces` names
/// an endpoint (without one, no OpenTelemetry layer exists and tracing costs nothing).
/// Call once, first thing in `main`, and keep the returned [`Telemetry`] until the
/// process ends: dropping it exports the last spans.
///
/// `RUST_LOG` filters globally, as before tracing existed (a per-layer filter on the
/// log layer lost events); with export on, the exported crates are enabled at `info`
/// at least, and the use cases' `transaction` span (debug level, so that the logs at
/// `info` never make it) too.
pub fn init(json: bool, traces: &TraceExport) -> Telemetry {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    let registry = tracing_subscriber::registry().with(text).with(json);
    let Some(endpoint) = traces.endpoint.as_deref().filter(|e| !e.trim().is_empty()) else {
        registry.with(filter()).init();
        return Telemetry::default();
    };
    match telemetry::layer(traces, endpoint) {
        Ok((layer, telemetry)) => {
            // The exported spans exist whatever `RUST_LOG` says (at `warn` they would
            // not): their crates at `info`, and the transaction span.
            let filter = telemetry::SPAN_DIRECTIVES
                .iter()
                .filter_map(|directive| directive.parse().ok())
                .fold(filter(), EnvFilter::add_directive);
            registry.with(layer).with(filter).init();
            tracing::info!(endpoint, service_name = %traces.service_name, "exporting traces over OTLP/HTTP");
            telemetry
        }
        Err(error) => {
            registry.with(filter()).init();
            tracing::error!(%error, endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT is not usable; traces are not exported");
            Telemetry::default()
        }
    }
}

/// Parses `HOST:PORT` (`:PORT` = all interfaces).
///
/// # Errors
/// When it is not an IP address and port.
pub fn parse_addr(text: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    let text = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    let text = text.replace("localhost:", "127.0.0.1:");
    text.parse()
}

/// Resolves on SIGINT or SIGTERM.
///
/// The handlers are installed when this is called (not when the future is first
/// polled), so a signal that arrives while the process is still starting up is not
/// lost to the default action. Call it first thing, inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = (interrupt, terminate) else {
            tracing::warn!("cannot listen for SIGINT/SIGTERM; stop the process with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received; shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received; shutting down"),
        }
    }
}
