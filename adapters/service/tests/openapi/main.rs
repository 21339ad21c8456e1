//! The OpenAPI document (`GET /openapi.json`) against API.md and against the service's
//! real answers, driven in-process (`tower::ServiceExt::oneshot`) on a real PostgreSQL
//! with a throwaway database per test.
//!
//! Run with `scripts/test.sh -p order-service --test openapi`.
//!
//! - The document describes exactly API.md's routes ([`ROUTES`]), each of them is routed,
//!   and no route can be served undocumented.
//! - Every body and every error is described.
//! - A scripted lifecycle checks every request and answer against the document's schemas
//!   (JSON Schema draft 2020-12, which OpenAPI 3.1 uses): a status the document does not
//!   give for the operation, or a body that breaks its schema, fails.
//! - With bearer authentication the document requires it on every route but the open ones.
//! - Every limit the code enforces is in the document, and `null` means what it says
//!   (`limits`).

use std::collections::BTreeSet;
use std::sync::Arc;

use application::envelope::from_wire;
use application::Projector;
use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{SecondsFormat, Utc};
use order_postgres::events::{in_global_order, ReplayFilter};
use order_postgres::{PgEventStore, PgReadModel};
use order_service::{build_router, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

#[path = "../support/mod.rs"]
mod support;

use support::{item, order_body, payment};

// ---------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------

/// Every route of API.md ("HTTP commands", "HTTP queries", "Administration", with `/console`), as method
/// and path template: the document must describe these, no more and no less.
const ROUTES: [(&str, &str); 25] = [
    ("POST", "/orders"),
    ("POST", "/orders/{id}/items"),
    ("DELETE", "/orders/{id}/items/{productId}"),
    ("PUT", "/orders/{id}/delivery-address"),
    ("POST", "/orders/{id}/payment"),
    ("POST", "/orders/{id}/shipment"),
    ("POST", "/orders/{id}/cancellation"),
    ("GET", "/orders/{id}"),
    ("GET", "/orders/{id}/history"),
    ("GET", "/orders"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/asyncapi.json"),
    ("GET", "/admin/outbox"),
    ("GET", "/admin/outbox/parked"),
    ("POST", "/admin/outbox/parked/{outboxId}/retry"),
    ("POST", "/admin/orders/{id}/outbox/retry"),
    ("POST", "/admin/orders/{id}/outbox/skip"),
    ("POST", "/admin/replay"),
    ("POST", "/admin/projections/rebuild"),
    ("GET", "/admin/jobs/{jobId}"),
    ("GET", "/admin/actions"),
    ("GET", "/console"),
];

/// The routes that need no authentication.
const OPEN: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
    "/console",
];

/// The commands that take a JSON body.
const WITH_BODY: [(&str, &str); 6] = [
    ("POST", "/orders"),
    ("POST", "/orders/{id}/items"),
    ("PUT", "/orders/{id}/delivery-address"),
    ("POST", "/orders/{id}/payment"),
    ("POST", "/orders/{id}/shipment"),
    ("POST", "/orders/{id}/cancellation"),
];

/// The administration routes with a JSON body.
const ADMIN_WITH_BODY: [(&str, &str); 2] = [
    ("POST", "/admin/orders/{id}/outbox/skip"),
    ("POST", "/admin/replay"),
];

/// Response headers documented but sent only sometimes.
const OCCASIONAL_HEADERS: [&str; 1] = ["Idempotent-Replayed"];

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

/// What a request body is expected to be, against its documented schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Valid: the schema must accept it.
    Valid,
    /// Invalid in shape (a missing or out-of-range field): the schema must reject it.
    Invalid,
    /// Not JSON, or not even meant to be read (framing errors): not checked.
    Unchecked,
}

/// One request.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    shape: Shape,
}

impl Call {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            shape: Shape::Valid,
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// A JSON body with `Content-Type: application/json`.
    fn json(method: Method, path: impl Into<String>, body: &Value) -> Self {
        Self::new(method, path)
            .header("content-type", "application/json")
            .raw(body.to_string())
    }

    fn post(path: impl Into<String>, body: &Value) -> Self {
        Self::json(Method::POST, path, body)
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn into_request(self) -> Request<Body> {
        let mut builder = Request::builder().method(self.method).uri(self.path);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Body::from(self.body))
            .expect("a valid request")
    }
}

/// A response, its body read.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

async fn send(router: &Router, call: Call) -> Reply {
    let response = router
        .clone()
        .oneshot(call.into_request())
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body can be read");
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn app(pool: &PgPool) -> Router {
    build_router(pool.clone(), &ServiceSettings::default()).expect("the router builds")
}

/// `GET /openapi.json`, checked as served.
async fn served_document(router: &Router) -> Value {
    let reply = send(router, Call::get("/openapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    reply.json
}

/// The document of `order_http::document`, as JSON.
fn built_document(bearer_auth: bool) -> Value {
    serde_json::to_value(order_http::document(bearer_auth)).expect("the document serializes")
}

// ---------------------------------------------------------------------------------------
// The document, and checks against it
// ---------------------------------------------------------------------------------------

/// An OpenAPI document, read as JSON.
#[derive(Debug)]
struct Spec {
    doc: Value,
}

/// One operation of the document.
#[derive(Debug, Clone, Copy)]
struct Operation<'a> {
    method: &'a str,
    template: &'a str,
    value: &'a Value,
}

impl Operation<'_> {
    fn describe(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    fn responses(&self) -> &serde_json::Map<String, Value> {
        self.value["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no responses", self.describe()))
    }

    fn statuses(&self) -> BTreeSet<u16> {
        self.responses()
            .keys()
            .map(|s| s.parse().expect("a status code"))
            .collect()
    }

    fn is_public(&self) -> bool {
        OPEN.contains(&self.template)
    }
}

/// `application/problem+json; charset=...` → `application/problem+json`.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Whether a path template (`/orders/{id}`) matches a concrete path.
fn matches(template: &str, path: &str) -> bool {
    let (template, path): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
}

impl Spec {
    fn new(doc: Value) -> Self {
        Self { doc }
    }

    fn operations(&self) -> Vec<Operation<'_>> {
        let paths = self.doc["paths"].as_object().expect("paths is an object");
        paths
            .iter()
            .flat_map(|(template, item)| {
                item.as_object()
                    .expect("a path item is an object")
                    .iter()
                    .filter(|(key, _)| {
                        [
                            "get", "put", "post", "delete", "options", "head", "patch", "trace",
                        ]
                        .contains(&key.as_str())
                    })
                    .map(move |(method, value)| Operation {
                        method: match method.as_str() {
                            "get" => "GET",
                            "put" => "PUT",
                            "post" => "POST",
                            "delete" => "DELETE",
                            "patch" => "PATCH",
                            "head" => "HEAD",
                            "options" => "OPTIONS",
                            _ => "TRACE",
                        },
                        template: template.as_str(),
                        value,
                    })
            })
            .collect()
    }

    /// The operation that answers `method` on `path` (query string ignored).
    fn operation(&self, method: &Method, path: &str) -> Result<Operation<'_>, String> {
        let path = path.split('?').next().unwrap_or_default();
        let found: Vec<Operation<'_>> = self
            .operations()
            .into_iter()
            .filter(|op| op.method == method.as_str() && matches(op.template, path))
            .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("{method} {path} is not documented")),
            many => Err(format!("{method} {path} matches {} operations", many.len())),
        }
    }

    /// `value`, or what its `$ref` points to in this document.
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("{reference} is not local"));
                self.doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve"))
            }
            None => value,
        }
    }

    /// Validates `instance` against `schema` (draft 2020-12, formats checked), with every
    /// `#/components/...` reference resolved against this document.
    fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let mut root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
        });
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the schema {schema} does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{e} (at {:?})", e.instance_path().to_string()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The JSON schema of `op`'s request body.
    fn request_schema<'a>(&'a self, op: &Operation<'a>) -> Option<&'a Value> {
        let body = self.resolve(op.value.get("requestBody")?);
        body.pointer("/content/application~1json/schema")
    }

    /// Checks a request body against the operation's `requestBody`.
    fn check_request(&self, op: &Operation<'_>, body: &[u8]) -> Result<(), String> {
        let Some(schema) = self.request_schema(op) else {
            return if body.is_empty() {
                Ok(())
            } else {
                Err(format!("{} takes no documented body", op.describe()))
            };
        };
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| format!("{}: the request body is not JSON: {e}", op.describe()))?;
        self.validate(schema, &value)
            .map_err(|e| format!("{} request body {value}: {e}", op.describe()))
    }

    /// Checks an answer against what the document gives for the operation and status:
    /// the status is documented, the content type is one documented for it, the body
    /// matches its schema, and every documented header (but the occasional ones) is sent.
    fn check_response(&self, op: &Operation<'_>, reply: &Reply) -> Result<(), String> {
        let status = reply.status.as_str();
        let context = format!("{} answered {status}", op.describe());
        let documented = op
            .responses()
            .get(status)
            .ok_or_else(|| format!("{context}, which the document does not give"))?;
        let documented = self.resolve(documented);
        let content_type = reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(media_type);
        let content = documented["content"].as_object();
        match (content_type, content) {
            (None, None) => {}
            (Some(content_type), Some(content)) => {
                let media = content.get(content_type).ok_or_else(|| {
                    format!(
                        "{context} as {content_type}; documented: {:?}",
                        content.keys().collect::<Vec<_>>()
                    )
                })?;
                let schema = media
                    .get("schema")
                    .ok_or_else(|| format!("{context}: {content_type} has no schema"))?;
                let body = if content_type.ends_with("json") {
                    serde_json::from_str(&reply.text)
                        .map_err(|e| format!("{context}: the body is not JSON: {e}"))?
                } else {
                    Value::String(reply.text.clone())
                };
                self.validate(schema, &body)
                    .map_err(|e| format!("{context} with {body}: {e}"))?;
            }
            (content_type, _) => {
                return Err(format!(
                    "{context} with content type {content_type:?}, documented {content:?}"
                ))
            }
        }
        if let Some(headers) = documented["headers"].as_object() {
            for name in headers.keys() {
                if !OCCASIONAL_HEADERS.contains(&name.as_str())
                    && !reply.headers.contains_key(name.as_str())
                {
                    return Err(format!("{context} without its documented {name} header"));
                }
            }
        }
        Ok(())
    }
}

/// The service under test, every exchange checked against the document it serves.
struct Checked {
    router: Router,
    spec: Spec,
    /// `(method, template, status)` of every exchange.
    seen: BTreeSet<(String, String, u16)>,
}

impl Checked {
    async fn new(pool: &PgPool) -> Self {
        let router = app(pool);
        let spec = Spec::new(served_document(&router).await);
        Self {
            router,
            spec,
            seen: BTreeSet::new(),
        }
    }

    /// Sends `call`, expects `status`, and checks request and answer against the
    /// document.
    async fn expect(&mut self, call: Call, status: u16) -> Reply {
        let description = call.describe();
        let op = self
            .spec
            .operation(&call.method, &call.path)
            .unwrap_or_else(|e| panic!("{e}"));
        let request_check = self.spec.check_request(&op, &call.body);
        match call.shape {
            Shape::Valid => request_check.unwrap_or_else(|e| panic!("{e}")),
            Shape::Invalid => assert!(
                request_check.is_err(),
                "{description}: the document accepts a body the service must reject"
            ),
            Shape::Unchecked => {}
        }
        let reply = send(&self.router, call).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{description}: {}",
            reply.text
        );
        self.spec
            .check_response(&op, &reply)
            .unwrap_or_else(|e| panic!("{e}"));
        self.seen.insert((
            op.method.to_owned(),
            op.template.to_owned(),
            reply.status.as_u16(),
        ));
        reply
    }
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Feeds every stored event to the read model's projector, as the Kafka consumer would.
async fn project(pool: &PgPool) {
    let events: Vec<_> = in_global_order(pool, ReplayFilter::default(), 0, 1_000_000)
        .await
        .expect("the events can be read")
        .into_iter()
        .map(|(_, e)| from_wire(&e.to_wire()).expect("a published event decodes"))
        .collect();
    Projector::new(
        Arc::new(PgReadModel::new(pool.clone())),
        Arc::new(PgEventStore::new(pool.clone())),
    )
    .apply(&events)
    .await
    .expect("the read model takes the events");
}

mod answers;
mod bearer;
mod limits;
mod routes;
mod schemas;
