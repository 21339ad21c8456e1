//! The HTTP API of `shared/API.md` on `axum`.
//!
//! # Layout
//! - `auth`: the authentication middleware (bearer JWT, or the trusted user header).
//! - `handlers`: one function per route; each parses, calls one use case, answers.
//! - `extract`: JSON bodies and command headers.
//! - `dto`: request bodies (converted with `try_into_domain`) and response bodies.
//! - `problem`: [`ApiError`], the problem+json answer of every error.
//! - `metrics`: request counters and latencies for `/metrics`.
//! - `openapi`: the route table and the OpenAPI 3.1 document served at `/openapi.json`.

mod auth;
mod dto;
mod extract;
mod guard;
mod handlers;
mod metrics;
mod openapi;
mod problem;

use std::sync::Arc;
use std::time::Duration;

use application::{OrderCommands, OrderQueries, SummaryQueries};
use axum::{Extension, Router};
use sqlx::PgPool;

use crate::auth::Authenticator;

pub(crate) use guard::{Guard, Refusal};
pub use metrics::HttpMetrics;
pub use openapi::document;
pub use problem::{ApiError, FieldError};

// Shared with the gRPC API, so that both accept and refuse the same requests.
pub(crate) use dto::from_grpc;
pub(crate) use extract::{command_context, fingerprint, CorrelationId, MalformedIdempotencyKey};
pub(crate) use handlers::cursor;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub commands: OrderCommands,
    pub queries: OrderQueries,
    /// The read model (`GET /orders`).
    pub summaries: SummaryQueries,
    pub pool: PgPool,
    pub metrics: Arc<HttpMetrics>,
    /// How requests are authenticated.
    pub auth: Authenticator,
    /// The largest accepted request body, in bytes.
    pub body_limit: usize,
}

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

/// The router with every route of API.md.
pub fn router(state: AppState, limits: HttpLimits) -> Router {
    use handlers::*;
    // The routes come only from `openapi::routes`, each with its documentation: never
    // add one here with `Router::route`, it would be served undocumented.
    let (routes, document) = openapi::routes().split_for_parts();
    let document = openapi::with_security(document, state.auth.is_required());
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(handlers::correlate))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard::Guard::from(limits),
            handlers::guard,
        ))
        .layer(Extension(openapi::DocumentJson::new(&document)))
        .with_state(state)
}
