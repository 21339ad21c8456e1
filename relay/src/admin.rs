//! The relay's admin endpoints: `/metrics`, `/healthz` (alive), `/readyz` (its last
//! cycle reached the database and the broker).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::RelayMetrics;

/// The admin router.
pub fn router(metrics: Arc<RelayMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok") }))
        .route("/readyz", get(ready))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<RelayMetrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        metrics.render(),
    )
        .into_response()
}

async fn ready(State(metrics): State<Arc<RelayMetrics>>) -> Response {
    if metrics.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cannot reach the database or the broker",
        )
            .into_response()
    }
}
