//! The HTTP API of `shared/API.md` on `axum`: the wire of the API core (`order-api`),
//! which decides what is accepted and refused; this crate maps JSON bodies, paths and
//! headers onto it and its answers onto statuses and problem+json.
//!
//! # Layout
//! - `auth`: the authentication middleware (bearer JWT, or the trusted user header).
//! - `handlers`: one function per route; each parses, calls one use case, answers.
//! - `admin`: the administration routes (`/admin/...`) and their bodies.
//! - `extract`: JSON bodies and command headers.
//! - `dto`: request bodies (converted with `try_into_domain`) and response bodies.
//! - `problem`: [`ApiError`], the problem+json answer of every error, and the status of
//!   each problem kind.
//! - `metrics`: request counters and latencies for `/metrics`.
//! - `trace`: the server span of each request, when traces are exported.
//! - `openapi`: the route table and the OpenAPI 3.1 document served at `/openapi.json`.
//! - `console`: the operator console page, `GET /console` (`console/console.html`).

mod admin;
mod auth;
mod console;
mod dto;
mod extract;
mod handlers;
mod metrics;
mod openapi;
mod problem;
mod trace;

use std::ops::Deref;
use std::sync::Arc;

use application::{Administration, OrderCommands, OrderQueries, Readiness, SummaryQueries};
use axum::{Extension, Router};
use order_api::{Authenticator, Guard, RequestLimits};

pub use metrics::HttpMetrics;
pub use openapi::document;
pub use problem::{status, ApiError};

/// What every handler shares, behind one pointer: axum clones the state for every
/// request and for each middleware that reads it, so a clone is a reference count,
/// not a copy of the use cases, the authenticator and the topic's name.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> AppState {
        AppState(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The use cases and settings behind [`AppState`].
#[derive(Debug)]
pub struct Services {
    pub commands: OrderCommands,
    pub queries: OrderQueries,
    /// The read model (`GET /orders`).
    pub summaries: SummaryQueries,
    /// The administration routes (`/admin/...`).
    pub administration: Administration,
    /// Whether the database answers (`/readyz`).
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Arc<HttpMetrics>,
    /// How requests are authenticated.
    pub auth: Authenticator,
    /// The largest accepted request body, in bytes.
    pub body_limit: usize,
    /// The topic the events are published on (`ORDERS_TOPIC`), named by `/asyncapi.json`.
    pub orders_topic: String,
}

/// The router with every route of API.md.
pub fn router(state: AppState, limits: RequestLimits) -> Router {
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
            Guard::from(limits),
            handlers::guard,
        ))
        .layer(axum::middleware::from_fn(trace::server_span))
        .layer(Extension(openapi::DocumentJson::new(&document)))
        .layer(Extension(openapi::AsyncApiJson::new(&state.orders_topic)))
        .layer(Extension(console::ConsolePage::new()))
        .with_state(state)
}
