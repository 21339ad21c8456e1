//! The server span of every request (API.md, Tracing), when traces are exported: it
//! continues the caller's `traceparent` (or starts a trace), so the use case, its
//! transaction and the events it writes belong to the caller's trace. The probes and
//! `/metrics` get none. With tracing off this middleware only passes the request on.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use order_runtime::telemetry;
use tracing::field::Empty;
use tracing::Instrument;

/// Paths scraped or probed every few seconds: no span, they would bury the commands.
const UNTRACED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Middleware: runs the request inside its server span.
pub(super) async fn server_span(request: Request, next: Next) -> Response {
    if !telemetry::is_enabled() || UNTRACED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let name = match &route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = Empty,
        url.path = %request.uri().path(),
        http.response.status_code = Empty,
    );
    if let Some(route) = &route {
        span.record("http.route", route.as_str());
    }
    let caller = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    telemetry::set_parent(&span, caller);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}
