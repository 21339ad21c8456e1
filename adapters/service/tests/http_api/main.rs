//! The HTTP API against `shared/API.md`, driven in-process (`tower::ServiceExt::oneshot`)
//! on a real PostgreSQL with a throwaway database per test; one module per concern.
//!
//! Run with `scripts/test.sh -p order-service --test http_api`.
//!
//! Every rejected request goes through [`Api::assert_rejected_without_writes`], which
//! checks the status, the problem+json body and that no event, outbox row or
//! idempotency record was written.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, SecondsFormat, Utc};
use order_service::{build_router, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

#[path = "../support/mod.rs"]
mod support;

use support::*;

/// A valid creation body padded past 64 KiB with a long (but ignored) field.
fn oversized_order() -> Vec<u8> {
    let body = with(order_body(), "/padding", json!("x".repeat(64 * 1024)));
    serde_json::to_vec(&body).expect("serializes")
}

mod check_order;
mod commands;
mod concurrency;
mod conflicts;
mod idempotency;
mod malformed;
mod validation;
