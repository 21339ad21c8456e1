//! The OpenAPI document (`GET /openapi.json`) against API.md and against the service's
//! real answers, driven in-process (`tower::ServiceExt::oneshot`) on a real PostgreSQL
//! with a throwaway database per test.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p adapters --test openapi`.
//!
//! - The document describes exactly API.md's routes ([`ROUTES`]), each of them is routed,
//!   and no route can be served undocumented.
//! - Every body and every error is described.
//! - A scripted lifecycle checks every request and answer against the document's schemas
//!   (JSON Schema draft 2020-12, which OpenAPI 3.1 uses): a status the document does not
//!   give for the operation, or a body that breaks its schema, fails.
//! - With bearer authentication the document requires it on every route but the open four.

use std::collections::BTreeSet;
use std::sync::Arc;

use adapters::service::{build_router, ServiceSettings};
use application::envelope::from_wire;
use application::Projector;
use axum::body::{to_bytes, Body};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{SecondsFormat, Utc};
use order_postgres::events::{in_global_order, ReplayFilter};
use order_postgres::{PgEventStore, PgReadModel};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;
use uuid::Uuid;

mod support;

use support::{item, order_body, payment};

// ---------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------

/// Every route of API.md ("HTTP commands", "HTTP queries"), as method and path template:
/// the document must describe these, no more and no less.
const ROUTES: [(&str, &str); 14] = [
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
];

/// The routes that need no authentication.
const OPEN: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// The commands that take a JSON body.
const WITH_BODY: [(&str, &str); 6] = [
    ("POST", "/orders"),
    ("POST", "/orders/{id}/items"),
    ("PUT", "/orders/{id}/delivery-address"),
    ("POST", "/orders/{id}/payment"),
    ("POST", "/orders/{id}/shipment"),
    ("POST", "/orders/{id}/cancellation"),
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

// ---------------------------------------------------------------------------------------
// The routes
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_served_document_is_openapi_3_1_and_describes_exactly_the_routes_of_api_md(
    pool: PgPool,
) {
    let doc = served_document(&app(&pool)).await;

    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(
        doc,
        built_document(false),
        "the service serves `document(false)`"
    );

    let spec = Spec::new(doc);
    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .iter()
        .map(|op| (op.method.to_owned(), op.template.to_owned()))
        .collect();
    let contract: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&contract).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in API.md"
    );
    assert_eq!(
        contract.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in API.md but not documented"
    );
}

/// A route answered by the router itself rather than a handler: the fallback's 404
/// ("no route for ...") or 405.
fn answered_by_the_router(reply: &Reply) -> bool {
    reply.status == StatusCode::METHOD_NOT_ALLOWED
        || (reply.status == StatusCode::NOT_FOUND
            && reply.json["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no route for")))
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_documented_operation_is_routed_and_no_other_method_is(pool: PgPool) {
    let router = app(&pool);
    let spec = Spec::new(served_document(&router).await);
    let order = Uuid::now_v7();
    let concrete = |template: &str| {
        template
            .replace("{id}", &order.to_string())
            .replace("{productId}", "sku-1")
    };

    for op in spec.operations() {
        let method = Method::from_bytes(op.method.as_bytes()).expect("a method");
        let call = Call::new(method, concrete(op.template))
            .header("content-type", "application/json")
            .raw("{}");
        let reply = send(&router, call).await;
        assert!(
            !answered_by_the_router(&reply),
            "{} is documented but not routed: {} {}",
            op.describe(),
            reply.status,
            reply.text
        );
    }

    // Every other method on a documented path is refused by the router: no handler is
    // reachable there that the document does not describe.
    let paths: BTreeSet<&str> = spec.operations().iter().map(|op| op.template).collect();
    for template in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if spec
                .operations()
                .iter()
                .any(|op| op.template == template && op.method == method.as_str())
            {
                continue;
            }
            let reply = send(&router, Call::new(method.clone(), concrete(template))).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {template} is served but not documented: {}",
                reply.text
            );
        }
    }
}

/// Routes are added only through `utoipa-axum`'s `OpenApiRouter::routes(routes!(...))`,
/// which takes nothing but `#[utoipa::path]` handlers, so a route cannot be served
/// without being documented (and the tests above compare the document with API.md).
/// The ways around it (`Router::route`, `OpenApiRouter::route`, nesting or merging a
/// plain router) must not appear anywhere in the crate's code.
#[test]
fn no_route_is_added_around_the_documented_route_table() {
    let forbidden = [
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        ".merge(",
        "Router::new(",
    ];
    let mut found = Vec::new();
    let mut folders = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the source folder can be read") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for (number, line) in text.lines().enumerate() {
                    for pattern in forbidden.iter().filter(|p| line.contains(*p)) {
                        found.push(format!("{}:{}: {pattern}", path.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "register routes only with `.routes(routes!(...))` in http/openapi: {found:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Bodies and errors
// ---------------------------------------------------------------------------------------

#[test]
fn every_body_and_every_error_is_described() {
    let spec = Spec::new(built_document(false));
    for op in spec.operations() {
        let name = op.describe();
        let key = (op.method, op.template);

        // Request bodies.
        if WITH_BODY.contains(&key) {
            let body = spec.resolve(&op.value["requestBody"]);
            assert_eq!(
                body["required"],
                json!(true),
                "{name}: the body is required"
            );
            let schema = spec
                .request_schema(&op)
                .unwrap_or_else(|| panic!("{name} has no application/json body schema"));
            assert!(schema.get("$ref").is_some(), "{name}: a named body schema");
        } else {
            assert!(
                op.value.get("requestBody").is_none(),
                "{name} takes no body"
            );
        }

        // Success answers have a body schema.
        let statuses = op.statuses();
        let successes: Vec<u16> = statuses.iter().copied().filter(|s| *s < 400).collect();
        assert_eq!(successes.len(), 1, "{name}: one success answer");
        let success = spec.resolve(&op.responses()[&successes[0].to_string()]);
        let content = success["content"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: the success answer has content"));
        assert!(
            content.values().all(|m| m.get("schema").is_some()),
            "{name}"
        );

        // Every error is a problem.
        for status in statuses.iter().filter(|s| **s >= 400) {
            let response = spec.resolve(&op.responses()[&status.to_string()]);
            assert_eq!(
                response.pointer("/content/application~1problem+json/schema/$ref"),
                Some(&json!("#/components/schemas/Problem")),
                "{name} {status} is a problem"
            );
            assert_eq!(
                response["content"].as_object().map(|c| c.len()),
                Some(1),
                "{name} {status}: only problem+json"
            );
        }

        // The errors each route can give, per API.md's "Errors" table.
        let mut expected = BTreeSet::from([400, 503]);
        if !op.is_public() {
            expected.extend([401, 403, 500]);
        }
        if op.template.contains("{id}") {
            expected.insert(404);
        }
        if op.method != "GET" {
            expected.extend([409, 422]);
        }
        if op.method != "GET" && op.template != "/orders" {
            expected.insert(412);
        }
        if WITH_BODY.contains(&key) {
            expected.extend([413, 415]);
        }
        let errors: BTreeSet<u16> = statuses.into_iter().filter(|s| *s >= 400).collect();
        assert_eq!(errors, expected, "{name}: its errors");

        let problem_503 = spec.resolve(&op.responses()["503"]);
        assert!(
            problem_503["headers"].get("Retry-After").is_some(),
            "{name}: 503 gives Retry-After"
        );
    }

    let problem = &spec.doc["components"]["schemas"]["Problem"];
    assert_eq!(
        problem["required"],
        json!(["type", "title", "status", "detail"])
    );
    assert_eq!(
        spec.resolve(&problem["properties"]["errors"]["items"])["required"],
        json!(["field", "message"])
    );
}

#[test]
fn the_schemas_mark_what_the_api_requires_and_its_enums() {
    let spec = Spec::new(built_document(false));
    let schemas = &spec.doc["components"]["schemas"];
    let required = |name: &str| schemas[name]["required"].clone();
    // Request fields are `Option` in Rust only so every missing one can be named.
    assert_eq!(
        required("CreateOrder"),
        json!(["customer", "currency", "items"])
    );
    assert_eq!(
        required("Customer"),
        json!(["customerId", "name", "phone", "address"])
    );
    assert_eq!(required("Address"), json!(["line1", "city", "country"]));
    assert_eq!(
        required("OrderLine"),
        json!(["productId", "quantity", "unitPrice"])
    );
    assert_eq!(
        required("PaymentRequest"),
        json!(["paymentId", "amount", "method"])
    );
    assert_eq!(
        required("ShipmentRequest"),
        json!(["trackingNumber", "carrier"])
    );
    assert_eq!(required("CancellationRequest"), json!(["reason"]));
    assert_eq!(required("Ack"), json!(["orderId", "version"]));
    assert_eq!(
        schemas["PaymentMethod"]["enum"],
        json!(["card", "bank_transfer", "cash_on_delivery"])
    );
    assert_eq!(
        schemas["OrderStatus"]["enum"],
        json!(["created", "paid", "shipped", "cancelled"])
    );
    let line = &schemas["OrderLine"]["properties"];
    assert_eq!(line["quantity"]["type"], json!("integer"));
    assert_eq!(line["quantity"]["format"], json!("int64"));
    assert_eq!(
        schemas["Ack"]["properties"]["orderId"]["format"],
        json!("uuid")
    );
}

// ---------------------------------------------------------------------------------------
// Real answers against the schemas
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_whole_lifecycle_and_its_errors_match_the_documented_schemas(pool: PgPool) {
    let mut api = Checked::new(&pool).await;

    // One order through its whole lifecycle.
    let created = api.expect(Call::post("/orders", &order_body()), 201).await;
    let a = created.json["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    api.expect(
        Call::post(format!("/orders/{a}/items"), &item("sku-3", 3, 20_000)),
        200,
    )
    .await;
    api.expect(
        Call::new(Method::DELETE, format!("/orders/{a}/items/sku-2")),
        200,
    )
    .await;
    api.expect(
        Call::json(
            Method::PUT,
            format!("/orders/{a}/delivery-address"),
            &json!({"line1": "2 Tràng Tiền", "line2": "Floor 3", "city": "Hà Nội", "country": "VN"}),
        )
        .header("if-match", "\"3\"")
        .header("idempotency-key", "change-address-1")
        .header("x-correlation-id", "txn-42")
        .header("x-user-id", "user-456")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        200,
    )
    .await;
    let order = api.expect(Call::get(format!("/orders/{a}")), 200).await;
    let total = order.json["total"].as_u64().expect("total");
    api.expect(
        Call::post(format!("/orders/{a}/payment"), &payment(total)),
        200,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{a}/shipment"),
            &json!({"trackingNumber": "TRK-1", "carrier": "VNPost"}),
        ),
        200,
    )
    .await;
    let shipped = api.expect(Call::get(format!("/orders/{a}")), 200).await;
    assert!(shipped.json.get("payment").is_some() && shipped.json.get("shipment").is_some());

    // Another, with the client's id, paid then cancelled (a refund).
    let b = Uuid::now_v7().to_string();
    let mut with_id = order_body();
    with_id["orderId"] = json!(b);
    api.expect(Call::post("/orders", &with_id), 201).await;
    api.expect(
        Call::post(format!("/orders/{b}/payment"), &payment(10_000_000)),
        200,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{b}/cancellation"),
            &json!({"reason": "changed my mind"}),
        ),
        200,
    )
    .await;
    let cancelled = api.expect(Call::get(format!("/orders/{b}")), 200).await;
    assert!(cancelled.json.get("cancellation").is_some());

    // A third one, left created, for the errors.
    let before = now();
    let created = api.expect(Call::post("/orders", &order_body()), 201).await;
    let c = created.json["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();

    // Queries.
    api.expect(Call::get(format!("/orders/{c}?asOf={}", now())), 200)
        .await;
    api.expect(Call::get(format!("/orders/{c}?asOf={before}")), 404)
        .await;
    for id in [&a, &b, &c] {
        let history = api
            .expect(Call::get(format!("/orders/{id}/history")), 200)
            .await;
        assert!(!history.json["events"]
            .as_array()
            .expect("events")
            .is_empty());
    }
    project(&pool).await;
    let page = api
        .expect(Call::get("/orders?customerId=cust-1&limit=2"), 200)
        .await;
    assert_eq!(page.json["items"].as_array().map(Vec::len), Some(2));
    let cursor = page.json["nextCursor"].as_str().expect("a next page");
    let last = api
        .expect(Call::get(format!("/orders?limit=2&cursor={cursor}")), 200)
        .await;
    assert_eq!(last.json["nextCursor"], Value::Null);
    api.expect(Call::get("/orders?status=shipped"), 200).await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        api.expect(Call::get(path), 200).await;
    }

    // 400: a malformed path, query or header parameter, or a body that is not JSON.
    api.expect(Call::get("/orders/not-a-uuid"), 400).await;
    api.expect(Call::get("/orders?limit=0"), 400).await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &item("sku-9", 1, 1)).header("if-match", "v1"),
        400,
    )
    .await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &json!(null))
            .raw("{\"productId\":")
            .shape(Shape::Unchecked),
        400,
    )
    .await;
    // 404: no such order, no such line.
    api.expect(Call::get(format!("/orders/{}", Uuid::now_v7())), 404)
        .await;
    api.expect(
        Call::post(format!("/orders/{}/payment", Uuid::now_v7()), &payment(1)),
        404,
    )
    .await;
    api.expect(
        Call::new(Method::DELETE, format!("/orders/{c}/items/sku-404")),
        404,
    )
    .await;
    // 409: the state does not allow it; the id exists.
    api.expect(
        Call::post(format!("/orders/{a}/items"), &item("sku-9", 1, 1)),
        409,
    )
    .await;
    api.expect(Call::post("/orders", &with_id), 409).await;
    // 412: If-Match does not match.
    api.expect(
        Call::post(format!("/orders/{c}/payment"), &payment(total)).header("if-match", "\"9\""),
        412,
    )
    .await;
    // 413 and 415: framing.
    api.expect(
        Call::post(format!("/orders/{c}/items"), &json!(null))
            .raw(format!("\"{}\"", "x".repeat(70 * 1024)))
            .shape(Shape::Unchecked),
        413,
    )
    .await;
    api.expect(
        Call::new(Method::POST, "/orders")
            .header("content-type", "text/plain")
            .raw(order_body().to_string())
            .shape(Shape::Unchecked),
        415,
    )
    .await;
    // 422: shapes the schema refuses too, and a rule on the order's content.
    let mut no_customer = order_body();
    no_customer
        .as_object_mut()
        .expect("an object")
        .remove("customer");
    api.expect(
        Call::post("/orders", &no_customer).shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &item("sku-9", 0, 1)).shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{c}/payment"),
            &json!({"paymentId": "pay-2", "amount": 1, "method": "cheque"}),
        )
        .shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(Call::post(format!("/orders/{c}/payment"), &payment(1)), 422)
        .await;

    // Every route of API.md answered with success, and each error status came up.
    for (method, template) in ROUTES {
        assert!(
            api.seen
                .iter()
                .any(|(m, t, s)| m == method && t == template && *s < 300),
            "{method} {template} was never answered with success"
        );
    }
    let errors: BTreeSet<u16> = api
        .seen
        .iter()
        .map(|(_, _, s)| *s)
        .filter(|s| *s >= 400)
        .collect();
    assert_eq!(errors, BTreeSet::from([400, 404, 409, 412, 413, 415, 422]));
}

#[test]
fn the_checks_refuse_a_wrong_body_and_an_undocumented_status() {
    let spec = Spec::new(built_document(false));
    let create = spec
        .operation(&Method::POST, "/orders")
        .expect("POST /orders");

    // Requests.
    let body = order_body();
    let check = |body: &Value| spec.check_request(&create, body.to_string().as_bytes());
    assert_eq!(check(&body), Ok(()));
    let mut missing = body.clone();
    missing
        .as_object_mut()
        .expect("an object")
        .remove("currency");
    assert!(check(&missing).is_err(), "a missing required field");
    let mut negative = body.clone();
    negative["items"][0]["quantity"] = json!(-1);
    assert!(check(&negative).is_err(), "a quantity below 1");
    let mut fractional = body.clone();
    fractional["items"][0]["unitPrice"] = json!(1.5);
    assert!(
        check(&fractional).is_err(),
        "an amount that is not an integer"
    );
    let mut bad_id = body.clone();
    bad_id["orderId"] = json!("not-a-uuid");
    assert!(check(&bad_id).is_err(), "an orderId that is not a UUID");
    let mut too_long = body;
    too_long["customer"]["address"]["city"] = json!("x".repeat(201));
    assert!(
        check(&too_long).is_err(),
        "a string over its limit (through $refs)"
    );

    // Answers.
    let reply = |status: StatusCode, content_type: &str, body: Value| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            content_type.parse().expect("a header value"),
        );
        for name in ["etag", "location", "x-correlation-id"] {
            headers.insert(name, "\"1\"".parse().expect("a header value"));
        }
        Reply {
            status,
            headers,
            text: body.to_string(),
            json: body,
        }
    };
    let ack = json!({"orderId": Uuid::now_v7(), "version": 1});
    assert_eq!(
        spec.check_response(
            &create,
            &reply(StatusCode::CREATED, "application/json", ack)
        ),
        Ok(())
    );
    let no_version = json!({"orderId": Uuid::now_v7()});
    assert!(spec
        .check_response(
            &create,
            &reply(StatusCode::CREATED, "application/json", no_version)
        )
        .is_err());
    let problem =
        json!({"type": "/problems/x", "title": "I'm a teapot", "status": 418, "detail": ""});
    let teapot = reply(StatusCode::IM_A_TEAPOT, "application/problem+json", problem);
    let refused = spec.check_response(&create, &teapot);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("does not give")),
        "{refused:?}"
    );
    let untitled = json!({"type": "/problems/x", "status": 409, "detail": ""});
    assert!(spec
        .check_response(
            &create,
            &reply(StatusCode::CONFLICT, "application/problem+json", untitled)
        )
        .is_err());
    let as_json = json!({"type": "/problems/x", "title": "Conflict", "status": 409, "detail": ""});
    assert!(
        spec.check_response(
            &create,
            &reply(StatusCode::CONFLICT, "application/json", as_json)
        )
        .is_err(),
        "a problem must be application/problem+json"
    );
}

// ---------------------------------------------------------------------------------------
// Bearer authentication
// ---------------------------------------------------------------------------------------

#[test]
fn with_bearer_auth_every_route_but_the_open_four_requires_a_bearer_token() {
    let spec = Spec::new(built_document(true));
    assert_eq!(
        spec.doc["components"]["securitySchemes"]["bearer"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": spec.doc["components"]["securitySchemes"]["bearer"]["description"],
        })
    );
    for op in spec.operations() {
        if op.is_public() {
            assert!(
                op.value.get("security").is_none(),
                "{} needs no authentication",
                op.describe()
            );
        } else {
            assert_eq!(
                op.value["security"],
                json!([{"bearer": []}]),
                "{} requires the bearer token",
                op.describe()
            );
            let unauthorized = spec.resolve(&op.responses()["401"]);
            assert!(unauthorized["headers"].get("WWW-Authenticate").is_some());
        }
    }

    let open = Spec::new(built_document(false));
    assert!(open.doc["components"].get("securitySchemes").is_none());
    assert!(open.doc.get("security").is_none());
    assert!(open
        .operations()
        .iter()
        .all(|op| op.value.get("security").is_none()));
}
