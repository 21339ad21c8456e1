//! What both binaries need from their process: logging (`tracing` to standard error,
//! filtered by `RUST_LOG`, default `info`, as JSON when `LOG_FORMAT=json`), the stop
//! signals, and listen addresses as the configuration writes them.

use std::future::Future;
use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
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
