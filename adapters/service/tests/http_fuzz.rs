//! Fuzzing the HTTP API with property-based inputs: random and mutated bodies, random
//! headers (tokens, content types, idempotency keys, `If-Match`, …), random methods,
//! paths and query strings, thrown at the real router on a real PostgreSQL, with
//! authentication on and off. For every request:
//! - no 5xx;
//! - every 4xx is `application/problem+json` with `{type, title, status, detail}`
//!   (`status` matching the response's);
//! - a rejected request writes nothing (no event, outbox row or idempotency record).
//!
//! The cases are drawn with proptest from a fixed seed (`FUZZ_SEED` to change it,
//! `FUZZ_CASES` for how many) and run in order in one async test, because each needs the
//! database; a failure prints the request that caused it. The outcome counts are
//! printed at the end (`--nocapture` shows them).
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test http_fuzz -- --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::Router;
use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_service::{build_router, ServiceSettings};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;

const SECRET: &str = "a-fuzzing-secret-that-is-32-bytes-or-more";
const DEFAULT_CASES: usize = 3000;

fn authenticator() -> Authenticator {
    Authenticator::jwt(SECRET.as_bytes()).expect("a long enough secret")
}

fn token(sub: &str, roles: &[&str], customer_id: Option<&str>, ttl: i64) -> String {
    let exp = if ttl >= 0 {
        expiry_in(Duration::from_secs(ttl.unsigned_abs()))
    } else {
        now_seconds() - ttl.unsigned_abs()
    };
    authenticator()
        .mint(&Claims {
            sub: sub.to_owned(),
            exp,
            iat: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            customer_id: customer_id.map(str::to_owned),
        })
        .expect("a token")
}

// ---------------------------------------------------------------------------------------
// What a case is made of
// ---------------------------------------------------------------------------------------

/// Which order a path names.
#[derive(Debug, Clone)]
enum Target {
    /// Alice's (`cust-1`) order, still `created`.
    Alices,
    /// Bob's (`cust-2`) order.
    Bobs,
    /// Alice's order that is paid.
    Paid,
    /// An id no order has.
    Missing(u128),
    /// Anything, percent-encoded.
    Raw(String),
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// The valid body of command `command` (the route's own when `None`), with
    /// mutations applied.
    Mutated {
        command: Option<usize>,
        mutations: Vec<Mutation>,
    },
    Json(Value),
    Bytes(Vec<u8>),
    /// The valid body of a command, cut short.
    Truncated {
        command: usize,
        keep: usize,
    },
}

#[derive(Debug, Clone)]
enum Mutation {
    Remove(Vec<usize>),
    Replace(Vec<usize>, Value),
    AddMember(Vec<usize>, String, Value),
}

#[derive(Debug, Clone)]
struct Case {
    authenticated: bool,
    /// Another method than the route's.
    method: Option<Method>,
    route: usize,
    target: Target,
    product: String,
    query: Vec<(String, String)>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Body,
}

/// Routes: method, path template (`{id}` and `{product}` are filled in) and the index
/// of the route's valid body in [`valid_bodies`].
const ROUTES: &[(&str, &str, Option<usize>)] = &[
    ("POST", "/orders", Some(0)),
    ("POST", "/orders", Some(7)),
    ("GET", "/orders", None),
    ("GET", "/orders/{id}", None),
    ("GET", "/orders/{id}/history", None),
    ("POST", "/orders/{id}/items", Some(1)),
    ("POST", "/orders/{id}/items", Some(2)),
    ("DELETE", "/orders/{id}/items/{product}", None),
    ("PUT", "/orders/{id}/delivery-address", Some(3)),
    ("POST", "/orders/{id}/payment", Some(4)),
    ("POST", "/orders/{id}/shipment", Some(5)),
    ("POST", "/orders/{id}/cancellation", Some(6)),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
    ("GET", "/{product}", None),
    ("POST", "/orders/{id}/{product}", Some(1)),
];

const FIELD_NAMES: &[&str] = &[
    "orderId",
    "customer",
    "customerId",
    "name",
    "phone",
    "address",
    "line1",
    "line2",
    "city",
    "postalCode",
    "country",
    "currency",
    "items",
    "productId",
    "quantity",
    "unitPrice",
    "discountCodes",
    "paymentId",
    "amount",
    "method",
    "trackingNumber",
    "carrier",
    "reason",
];

fn valid_bodies() -> Vec<Value> {
    vec![
        order_body(),
        item("sku-1", 1, 100_000),
        item("sku-9", 3, 7),
        new_address(),
        payment(TOTAL),
        shipment(),
        cancellation(),
        with(order_body(), "/orderId", json!(uuid::Uuid::now_v7())),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[a-zA-Z0-9_-]{1,16}",
        "[\\x00-\\x1f\\x7f]{1,4}",
        (0usize..300).prop_map(|n| "x".repeat(n)),
        Just(String::new()),
        Just("VND".to_owned()),
        Just("USD".to_owned()),
        Just("VN".to_owned()),
        Just("card".to_owned()),
        Just("cash_on_delivery".to_owned()),
        Just("WELCOME10".to_owned()),
        Just("sku-1".to_owned()),
        Just("cust-1".to_owned()),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-10i64..1_000_001).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(1_000_000_000_000_001u64)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        text().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(field_name(), inner, 0..5)
                .prop_map(|map: BTreeMap<String, Value>| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn pointer() -> impl Strategy<Value = Vec<usize>> {
    vec(any::<usize>(), 0..4)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        pointer().prop_map(Mutation::Remove),
        (pointer(), json_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        (pointer(), field_name(), json_value())
            .prop_map(|(at, name, value)| Mutation::AddMember(at, name, value)),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    let commands = valid_bodies().len();
    prop_oneof![
        1 => Just(Body::None),
        3 => Just(Body::Mutated { command: None, mutations: Vec::new() }),
        6 => vec(mutation(), 1..4)
            .prop_map(|mutations| Body::Mutated { command: None, mutations }),
        2 => (0..commands, vec(mutation(), 0..4))
            .prop_map(|(command, mutations)| Body::Mutated { command: Some(command), mutations }),
        2 => json_value().prop_map(Body::Json),
        1 => vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        1 => (0..commands, any::<usize>()).prop_map(|(command, keep)| Body::Truncated { command, keep }),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => Just(Target::Alices),
        2 => Just(Target::Bobs),
        2 => Just(Target::Paid),
        1 => any::<u128>().prop_map(Target::Missing),
        1 => ".{0,20}".prop_map(Target::Raw),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[\\x20-\\x7e]{0,40}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..20),
        (250usize..300).prop_map(|n| vec![b'k'; n]),
        Just(b"\"1\"".to_vec()),
        Just(b"\"2\"".to_vec()),
        Just(b"*".to_vec()),
        Just(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec()),
    ]
}

fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    let alice = token("alice", &["customer"], Some("cust-1"), 600);
    let bob = token("bob", &["customer"], Some("cust-2"), 600);
    let operator = token("olga", &["operator"], None, 600);
    let admin = token("ada", &["admin"], None, 600);
    let nobody = token("nobody", &[], None, 600);
    let expired = token("olga", &["operator"], None, -3600);
    let forged = Authenticator::jwt(b"not-the-secret-but-just-as-long-as-it")
        .expect("a secret")
        .mint(&Claims {
            sub: "olga".to_owned(),
            exp: expiry_in(Duration::from_secs(600)),
            iat: None,
            roles: vec!["admin".to_owned()],
            customer_id: None,
        })
        .expect("a token");
    let bearer = |t: &str| Some(format!("Bearer {t}").into_bytes());
    prop_oneof![
        1 => Just(None),
        3 => Just(bearer(&alice)),
        1 => Just(bearer(&bob)),
        3 => Just(bearer(&operator)),
        1 => Just(bearer(&admin)),
        1 => Just(bearer(&nobody)),
        1 => Just(bearer(&expired)),
        1 => Just(bearer(&forged)),
        1 => header_value().prop_map(Some),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let content_type = prop_oneof![
        6 => Just(Some(b"application/json".to_vec())),
        1 => Just(Some(b"application/json; charset=utf-8".to_vec())),
        1 => Just(None),
        1 => Just(Some(b"text/plain".to_vec())),
        1 => header_value().prop_map(Some),
    ];
    let optional = || proptest::option::weighted(0.15, header_value());
    (
        authorization(),
        content_type,
        optional(),
        optional(),
        optional(),
        optional(),
        optional(),
    )
        .prop_map(
            |(authorization, content_type, key, if_match, correlation, trace, user)| {
                [
                    ("authorization", authorization),
                    ("content-type", content_type),
                    ("idempotency-key", key),
                    ("if-match", if_match),
                    ("x-correlation-id", correlation),
                    ("traceparent", trace),
                    ("x-user-id", user),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect()
            },
        )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        Just("asOf".to_owned()),
        Just("customerId".to_owned()),
        Just("status".to_owned()),
        Just("limit".to_owned()),
        Just("cursor".to_owned()),
        ".{0,6}",
    ];
    let value = prop_oneof![
        text(),
        Just("2100-01-01T00:00:00Z".to_owned()),
        Just("2000-01-01T00:00:00Z".to_owned()),
        Just("paid".to_owned()),
        (0u32..200).prop_map(|n| n.to_string()),
    ];
    proptest::option::weighted(0.3, vec((key, value), 1..3)).prop_map(Option::unwrap_or_default)
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::bool::weighted(0.85),
        proptest::option::weighted(0.1, method()),
        0..ROUTES.len(),
        target(),
        prop_oneof![
            Just("sku-1".to_owned()),
            Just("sku-2".to_owned()),
            ".{0,10}"
        ],
        query(),
        headers(),
        body(),
    )
        .prop_map(
            |(authenticated, method, route, target, product, query, headers, body)| Case {
                authenticated,
                method,
                route,
                target,
                product,
                query,
                headers,
                body,
            },
        )
}

// ---------------------------------------------------------------------------------------
// Turning a case into a request
// ---------------------------------------------------------------------------------------

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The child of `value` that `selector` picks, mutably.
fn child(value: &mut Value, selector: usize) -> Option<&mut Value> {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let n = selector % map.len();
            map.values_mut().nth(n)
        }
        Value::Array(items) if !items.is_empty() => {
            let n = selector % items.len();
            items.get_mut(n)
        }
        _ => None,
    }
}

fn descend<'a>(mut value: &'a mut Value, path: &[usize]) -> &'a mut Value {
    for selector in path {
        let is_container = matches!(value, Value::Object(m) if !m.is_empty())
            || matches!(value, Value::Array(a) if !a.is_empty());
        if !is_container {
            break;
        }
        value = child(value, *selector).expect("a container has a child");
    }
    value
}

fn mutate(mut body: Value, mutations: &[Mutation]) -> Value {
    for mutation in mutations {
        match mutation {
            Mutation::Remove(path) if !path.is_empty() => {
                let (last, parent) = path.split_last().expect("not empty");
                match descend(&mut body, parent) {
                    Value::Object(map) if !map.is_empty() => {
                        let key = map.keys().nth(last % map.len()).cloned();
                        if let Some(key) = key {
                            map.remove(&key);
                        }
                    }
                    Value::Array(items) if !items.is_empty() => {
                        let n = last % items.len();
                        items.remove(n);
                    }
                    _ => {}
                }
            }
            Mutation::Remove(_) => {}
            Mutation::Replace(path, value) => *descend(&mut body, path) = value.clone(),
            Mutation::AddMember(path, name, value) => {
                if let Value::Object(map) = descend(&mut body, path) {
                    map.insert(name.clone(), value.clone());
                }
            }
        }
    }
    body
}

struct Orders {
    alices: String,
    bobs: String,
    paid: String,
}

fn call(case: &Case, orders: &Orders) -> Option<Call> {
    let id = match &case.target {
        Target::Alices => orders.alices.clone(),
        Target::Bobs => orders.bobs.clone(),
        Target::Paid => orders.paid.clone(),
        Target::Missing(n) => uuid::Uuid::from_u128(*n).to_string(),
        Target::Raw(text) => encode(text),
    };
    let (route_method, template, own_body) = ROUTES[case.route];
    let method = case
        .method
        .clone()
        .unwrap_or_else(|| route_method.parse().expect("a method"));
    let mut path = template
        .replace("{id}", &id)
        .replace("{product}", &encode(&case.product));
    if !case.query.is_empty() {
        let pairs: Vec<String> = case
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    let bodies = valid_bodies();
    let bytes = match &case.body {
        Body::None => Vec::new(),
        Body::Mutated { command, mutations } => {
            let command = command.or(own_body).unwrap_or(0);
            serde_json::to_vec(&mutate(bodies[command].clone(), mutations)).expect("JSON")
        }
        Body::Json(value) => serde_json::to_vec(value).expect("JSON"),
        Body::Bytes(bytes) => bytes.clone(),
        Body::Truncated { command, keep } => {
            let full = serde_json::to_vec(&bodies[*command]).expect("JSON");
            let keep = keep % full.len().max(1);
            full[..keep].to_vec()
        }
    };
    let mut call = Call::new(method, path);
    call.body = bytes;
    for (name, value) in &case.headers {
        // Values HTTP cannot carry (a line break, say) never reach a server.
        HeaderValue::from_bytes(value).ok()?;
        call = call.header_bytes(name, value);
    }
    Some(call)
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

async fn seed(api: &Api) -> Orders {
    let operator = token("olga", &["operator"], None, 600);
    let place = |body: Value| {
        let call = Call::post("/orders", &body).bearer(&operator);
        async move {
            api.ok(call).await.json["orderId"]
                .as_str()
                .expect("an id")
                .to_owned()
        }
    };
    let alices = place(order_body()).await;
    let bobs = place(with(order_body(), "/customer/customerId", json!("cust-2"))).await;
    let paid = place(order_body()).await;
    api.ok(Call::post(format!("/orders/{paid}/payment"), &payment(TOTAL)).bearer(&operator))
        .await;
    Orders { alices, bobs, paid }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::print_stderr)] // the outcome counts are the point of a fuzzing run
#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn random_and_mutated_requests_never_fail_the_server_nor_write_when_rejected(pool: PgPool) {
    let with_jwt = Api::with_settings(
        pool.clone(),
        &ServiceSettings {
            auth: authenticator(),
            ..ServiceSettings::default()
        },
    );
    let without: Router =
        build_router(pool.clone(), &ServiceSettings::default()).expect("a router");
    let orders = seed(&with_jwt).await;

    let cases = env_number("FUZZ_CASES", DEFAULT_CASES);
    let seed = env_number("FUZZ_SEED", 20261123) as u64;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = case();
    let mut outcomes: BTreeMap<u16, usize> = BTreeMap::new();
    let mut sent = 0;
    for n in 0..cases {
        let case = strategy
            .new_tree(&mut runner)
            .expect("a case can be drawn")
            .current();
        let Some(call) = call(&case, &orders) else {
            continue;
        };
        let router = if case.authenticated {
            with_jwt.router.clone()
        } else {
            without.clone()
        };
        let described = format!("case {n} (seed {seed}): {case:?}");
        let is_head = call.method == Method::HEAD;
        let before = counts(&pool).await;
        let reply = send(router, call).await;
        sent += 1;
        *outcomes.entry(reply.status.as_u16()).or_default() += 1;
        assert!(
            !reply.status.is_server_error(),
            "{described}\nanswered {}: {}",
            reply.status,
            reply.text()
        );
        if reply.status.is_client_error() {
            assert_eq!(
                reply.header("content-type"),
                Some("application/problem+json"),
                "{described}"
            );
            if !is_head {
                let problem = &reply.json;
                assert_eq!(
                    problem["status"],
                    json!(reply.status.as_u16()),
                    "{described}"
                );
                for member in ["type", "title", "detail"] {
                    assert!(problem[member].is_string(), "{described}: {problem}");
                }
            }
            assert_eq!(
                counts(&pool).await,
                before,
                "{described}\nanswered {} but wrote something",
                reply.status
            );
        }
        if reply.status == StatusCode::UNAUTHORIZED {
            assert!(reply.header("www-authenticate").is_some(), "{described}");
        }
    }
    eprintln!("HTTP fuzzing: {sent} requests (seed {seed}); answers by status: {outcomes:?}");
    // The run explored more than one outcome: it is not stuck on one rejection.
    for expected in [200, 201, 400, 401, 403, 404, 409, 415, 422] {
        assert!(
            outcomes.contains_key(&expected),
            "no request answered {expected}: {outcomes:?}"
        );
    }
}
