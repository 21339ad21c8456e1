//! Middleware in front of every rpc, run on the request's metadata before its message
//! is decoded: the server span (when traces are exported), then, in the order API.md
//! gives for every request, the guard (bounded concurrency and time), authentication
//! (UNAUTHENTICATED comes first, as 401 does), then the correlation id.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tonic::Status;

use order_api::{Authenticator, CorrelationId, Guard, Refusal};
use order_runtime::telemetry;
use tracing::field::Empty;
use tracing::Instrument;

fn answer(status: Status) -> Response {
    status.into_http()
}

/// Runs the rpc inside its server span (API.md, Tracing), continuing the caller's
/// `traceparent` metadata (or starting a trace). With tracing off it only passes the
/// request on.
pub(crate) async fn server_span(request: Request, next: Next) -> Response {
    if !telemetry::is_enabled() {
        return next.run(request).await;
    }
    // The path is `/package.Service/Method`.
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
    let span = tracing::info_span!(
        "gRPC request",
        otel.name = %path,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = Empty,
    );
    let caller = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    telemetry::set_parent(&span, caller);
    let response = next.run(request).instrument(span.clone()).await;
    // A refusal answers "trailers only": its status is in the headers. A call that
    // streams a message has its status in the trailers, which come later: OK then.
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .unwrap_or(0);
    span.record("rpc.grpc.status_code", code);
    // As OpenTelemetry's conventions ask of servers: the codes that mean a fault here.
    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// Bounds concurrent requests and their duration (the core's [`Guard`], with a budget
/// of its own): when saturated it answers RESOURCE_EXHAUSTED at once instead of
/// queueing; a request that takes too long answers UNAVAILABLE (and, its work dropped
/// before committing, writes nothing).
pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    guard
        .run(next.run(request))
        .await
        .unwrap_or_else(|refusal| match refusal {
            Refusal::Overloaded => answer(Status::resource_exhausted(
                "too many requests in flight; retry later",
            )),
            Refusal::TimedOut => answer(Status::unavailable(
                "the request took too long; retry later",
            )),
        })
}

/// Authenticates the request from its `authorization` (and, with authentication off,
/// `x-user-id`) metadata and hands the [`application::Actor`] to the rpc.
pub(crate) async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    let actor = auth.authenticate_headers(request.headers()).await;
    match actor {
        Ok(actor) => {
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Err(error) => answer(super::status::from_auth(error)),
    }
}

/// Reads or makes the correlation id (the core's [`CorrelationId`]; malformed is
/// INVALID_ARGUMENT), hands it to the rpc and echoes it in the response metadata.
pub(crate) async fn correlate(mut request: Request, next: Next) -> Response {
    match CorrelationId::from_headers(request.headers()) {
        Some(correlation) => {
            let echo = HeaderValue::from_str(&correlation.0).ok();
            request.extensions_mut().insert(correlation);
            let mut response = next.run(request).await;
            if let Some(echo) = echo {
                response.headers_mut().insert("x-correlation-id", echo);
            }
            response
        }
        None => answer(super::status::invalid(
            "x-correlation-id",
            CorrelationId::RULE,
        )),
    }
}
