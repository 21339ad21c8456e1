//! The HTTP test harness shared by the test binaries that drive the API in-process
//! (`tower::ServiceExt::oneshot`) on a real PostgreSQL: requests, replies, problem
//! checks, row counts and the standard bodies.
#![allow(dead_code, unreachable_pub)]

use axum::body::{to_bytes, Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use order_service::{build_router, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// One HTTP request, cloneable so a test can send it twice.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

impl Call {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A request with a JSON body and `Content-Type: application/json`.
    pub fn json(method: Method, path: impl Into<String>, body: &Value) -> Self {
        Self::new(method, path).raw(
            Some("application/json"),
            serde_json::to_vec(body).expect("a JSON value serializes"),
        )
    }

    pub fn post(path: impl Into<String>, body: &Value) -> Self {
        Self::json(Method::POST, path, body)
    }

    pub fn put(path: impl Into<String>, body: &Value) -> Self {
        Self::json(Method::PUT, path, body)
    }

    /// Replaces the body with `bytes`, with the given content type (or none).
    pub fn raw(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Self {
        self.headers
            .retain(|(name, _)| name != header::CONTENT_TYPE);
        if let Some(content_type) = content_type {
            self = self.header("content-type", content_type);
        }
        self.body = bytes.into();
        self
    }

    /// With `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        self.header_bytes(name, value.as_bytes())
    }

    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
        let value = HeaderValue::from_bytes(value).expect("a valid header value");
        self.headers.push((name, value));
        self
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn into_request(self) -> Request<Body> {
        let mut builder = Request::builder().method(self.method).uri(self.path);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Body::from(self.body))
            .expect("a valid request")
    }
}

/// A response, its body read and parsed as JSON when it is JSON (else `Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Sends one request through the router, in-process.
pub async fn send(router: Router, call: Call) -> Reply {
    let response = router
        .oneshot(call.into_request())
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body can be read");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        bytes,
        json,
    }
}

/// Rows in `events`, `outbox` and `idempotency_keys`.
pub async fn counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox), \
                (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(pool)
    .await
    .expect("the tables can be counted")
}

/// The `global_position` of every stored event of order `id`, in version order.
pub async fn stored_positions(pool: &PgPool, id: &str) -> Vec<i64> {
    let id = uuid::Uuid::parse_str(id).expect("an order id is a UUID");
    sqlx::query_scalar("SELECT global_position FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("the positions can be read")
}

/// Checks an RFC 9457 body: content type, `{type, title, status, detail}`, the type's
/// last segment, and `errors[{field, message}]` for validation problems.
pub fn assert_problem(reply: &Reply, status: u16, kind: &str) {
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    let problem = &reply.json;
    let problem_type = problem["type"].as_str().expect("type is a string");
    assert!(
        problem_type.ends_with(kind),
        "type {problem_type:?} should end with {kind:?}"
    );
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(problem["status"], json!(status));
    assert!(problem["detail"].as_str().is_some(), "{problem}");
    if status == 422 {
        let errors = problem["errors"].as_array().expect("422 lists its errors");
        assert!(!errors.is_empty(), "{problem}");
        for error in errors {
            assert!(error["field"].as_str().is_some_and(|f| !f.is_empty()));
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}

/// The fields named in a validation problem.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn assert_names(problem: &Value, field: &str) {
    let named = fields(problem);
    assert!(
        named.iter().any(|f| f == field),
        "{field:?} should be named among {named:?}: {problem}"
    );
}

/// The service under test and its database.
pub struct Api {
    pub router: Router,
    pub pool: PgPool,
}

impl Api {
    pub fn new(pool: PgPool) -> Self {
        Self::with_settings(pool, &ServiceSettings::default())
    }

    pub fn with_settings(pool: PgPool, settings: &ServiceSettings) -> Self {
        let router = build_router(pool.clone(), settings).expect("the router builds");
        Self { router, pool }
    }

    pub async fn send(&self, call: Call) -> Reply {
        send(self.router.clone(), call).await
    }

    /// Sends `call`, expects a 2xx, returns the reply.
    pub async fn ok(&self, call: Call) -> Reply {
        let description = call.describe();
        let reply = self.send(call).await;
        assert!(
            reply.status.is_success(),
            "{description} answered {}: {}",
            reply.status,
            reply.text()
        );
        reply
    }

    /// Sends `call`, expects `status` with a problem whose type ends in `kind`, and
    /// checks that nothing at all was written. Returns the problem.
    pub async fn assert_rejected_without_writes(
        &self,
        call: Call,
        status: u16,
        kind: &str,
    ) -> Value {
        self.rejected_without_writes(call, status, kind).await.json
    }

    /// Sends `call`, expects 401 with a problem whose type ends in `kind`, a
    /// `WWW-Authenticate: Bearer` challenge, and nothing written. Returns the problem.
    pub async fn assert_unauthenticated(&self, call: Call, kind: &str) -> Value {
        let description = call.describe();
        let reply = self.rejected_without_writes(call, 401, kind).await;
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{description}: WWW-Authenticate {challenge:?}"
        );
        reply.json
    }

    async fn rejected_without_writes(&self, call: Call, status: u16, kind: &str) -> Reply {
        let before = counts(&self.pool).await;
        let description = call.describe();
        let reply = self.send(call).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{description}: {}",
            reply.text()
        );
        assert_problem(&reply, status, kind);
        assert_eq!(
            counts(&self.pool).await,
            before,
            "{description} answered {status} but wrote something"
        );
        reply
    }

    /// A 422 naming `field`, with nothing written.
    pub async fn assert_invalid(&self, call: Call, field: &str) -> Value {
        let problem = self
            .assert_rejected_without_writes(call, 422, "validation")
            .await;
        assert_names(&problem, field);
        problem
    }

    /// Places `body` and returns the new order's id.
    pub async fn place_with(&self, body: &Value) -> String {
        let reply = self.send(Call::post("/orders", body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json["orderId"]
            .as_str()
            .expect("orderId is a string")
            .to_owned()
    }

    /// Places `body` with the bearer `token` and returns the new order's id.
    pub async fn place_as(&self, token: &str, body: &Value) -> String {
        let reply = self.send(Call::post("/orders", body).bearer(token)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        reply.json["orderId"]
            .as_str()
            .expect("orderId is a string")
            .to_owned()
    }

    /// Places the standard order (see [`order_body`]).
    pub async fn place(&self) -> String {
        self.place_with(&order_body()).await
    }

    pub async fn order(&self, id: &str) -> Value {
        self.ok(Call::get(format!("/orders/{id}"))).await.json
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        let reply = self.ok(Call::get(format!("/orders/{id}/history"))).await;
        reply.json["events"]
            .as_array()
            .expect("events is an array")
            .clone()
    }

    pub async fn pay(&self, id: &str, amount: u64) {
        self.ok(Call::post(
            format!("/orders/{id}/payment"),
            &payment(amount),
        ))
        .await;
    }

    pub async fn ship(&self, id: &str) {
        self.ok(Call::post(format!("/orders/{id}/shipment"), &shipment()))
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

/// Subtotal 2 × 100,000 + 1 × 50,000 = 250,000 VND; `WELCOME10` takes 10%:
/// discount 25,000, total 225,000.
pub const TOTAL: u64 = 225_000;

pub fn address() -> Value {
    json!({"line1": "1 Lê Lợi", "city": "Hồ Chí Minh", "postalCode": "700000", "country": "VN"})
}

pub fn order_body() -> Value {
    json!({
        "customer": {
            "customerId": "cust-1",
            "name": "Nguyễn Văn A",
            "phone": "+84 90 123 4567",
            "address": address(),
        },
        "currency": "VND",
        "items": [
            {"productId": "sku-1", "quantity": 2, "unitPrice": 100_000},
            {"productId": "sku-2", "quantity": 1, "unitPrice": 50_000},
        ],
        "discountCodes": ["WELCOME10"],
    })
}

pub fn item(product: &str, quantity: u64, unit_price: u64) -> Value {
    json!({"productId": product, "quantity": quantity, "unitPrice": unit_price})
}

pub fn payment(amount: u64) -> Value {
    json!({"paymentId": "pay-1", "amount": amount, "method": "bank_transfer"})
}

pub fn shipment() -> Value {
    json!({"trackingNumber": "TRK-1", "carrier": "VNPost"})
}

pub fn cancellation() -> Value {
    json!({"reason": "changed my mind"})
}

pub fn new_address() -> Value {
    json!({"line1": "2 Tràng Tiền", "line2": "Floor 3", "city": "Hà Nội", "country": "VN"})
}

/// `body` with the value at a JSON pointer replaced (the parent must exist).
pub fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let parent = body
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("{pointer} has no parent"));
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
        }
        Value::Array(items) => {
            items[key.parse::<usize>().expect("an index")] = value;
        }
        _ => panic!("{pointer} is not in an object or array"),
    }
    body
}

/// `body` without the member at a JSON pointer.
pub fn without(mut body: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let removed = body
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|map| map.remove(key));
    assert!(removed.is_some(), "{pointer} was not there");
    body
}

/// Every command route of an order, with a valid body.
pub fn commands_on(id: &str) -> Vec<Call> {
    vec![
        Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, 10)),
        Call::delete(format!("/orders/{id}/items/sku-1")),
        Call::put(format!("/orders/{id}/delivery-address"), &new_address()),
        Call::post(format!("/orders/{id}/payment"), &payment(TOTAL)),
        Call::post(format!("/orders/{id}/shipment"), &shipment()),
        Call::post(format!("/orders/{id}/cancellation"), &cancellation()),
    ]
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}
