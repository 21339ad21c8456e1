//! Parity with HTTP: the same inputs over both APIs answer alike.

use std::collections::BTreeMap;

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request as HttpRequest};
use order_api::auth::now_seconds;
use order_grpc::proto;
use order_service::{build_router, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tonic::Code;
use tower::ServiceExt;

use crate::support::{
    add_item, cancel, change_address, counts, expecting, get, history, jwt_settings, list, order,
    order_for, pay, prepare, remove_item, ship, some, token, token_for, violations, Call, Prep,
    Rpc, Server, TOTAL,
};

/// API.md's mapping of HTTP error statuses (and problem types) to gRPC codes.
fn grpc_code_for(status: u16, problem_type: &str) -> Code {
    match status {
        200..=299 => Code::Ok,
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 if problem_type.ends_with("already-exists") => Code::AlreadyExists,
        409 if problem_type.ends_with("concurrency-conflict") => Code::Aborted,
        409 => Code::FailedPrecondition,
        412 => Code::Aborted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// One HTTP request of a parity case.
#[derive(Debug, Clone)]
struct Http {
    method: Method,
    path: String,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Http {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            headers: Vec::new(),
        }
    }

    fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, None)
    }

    fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path, Some(body))
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends it through the router in-process: the status, the problem type and the
    /// fields a validation problem names.
    async fn send(self, router: &axum::Router) -> (u16, String, Vec<String>) {
        let mut request = HttpRequest::builder().method(self.method).uri(self.path);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let body = match self.body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&body).expect("JSON"))
            }
            None => Body::empty(),
        };
        let response = router
            .clone()
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("the router is infallible");
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let kind = problem["type"].as_str().unwrap_or_default().to_owned();
        let fields = problem["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (status, kind, fields)
    }
}

/// A parity case: the same input over HTTP and over gRPC, on an order prepared alike.
struct Case {
    name: &'static str,
    prep: Prep,
    http: fn(&str) -> Http,
    grpc: fn(&str) -> Call,
}

fn standard_order_json() -> Value {
    json!({
        "customer": {
            "customerId": "cust-1",
            "name": "Nguyễn Văn A",
            "phone": "+84 90 123 4567",
            "address": {"line1": "1 Lê Lợi", "city": "Hồ Chí Minh", "postalCode": "700000", "country": "VN"},
        },
        "currency": "VND",
        "items": [
            {"productId": "sku-1", "quantity": 2, "unitPrice": 100_000},
            {"productId": "sku-2", "quantity": 1, "unitPrice": 50_000},
        ],
        "discountCodes": ["WELCOME10"],
    })
}

fn with_rpc(rpc: Rpc, change: impl FnOnce(&mut Rpc)) -> Call {
    let mut rpc = rpc;
    change(&mut rpc);
    Call::from(rpc)
}

fn parity_cases() -> Vec<Case> {
    fn create(change: fn(&mut proto::CreateOrderRequest)) -> Call {
        let mut message = order();
        change(&mut message);
        Call::from(Rpc::Create(message))
    }
    fn create_json(pointer: &str, value: Value) -> Http {
        let mut body = standard_order_json();
        *body.pointer_mut(pointer).expect("the member exists") = value;
        Http::post("/orders", body)
    }
    vec![
        Case {
            name: "create",
            prep: Prep::Unknown,
            http: |_| Http::post("/orders", standard_order_json()),
            grpc: |_| Call::from(Rpc::Create(order())),
        },
        Case {
            name: "create with nothing",
            prep: Prep::Unknown,
            http: |_| Http::post("/orders", json!({})),
            grpc: |_| Call::from(Rpc::Create(proto::CreateOrderRequest::default())),
        },
        Case {
            name: "create with an unknown currency",
            prep: Prep::Unknown,
            http: |_| create_json("/currency", json!("XYZ")),
            grpc: |_| create(|m| m.currency = some("XYZ")),
        },
        Case {
            name: "create with quantity 0",
            prep: Prep::Unknown,
            http: |_| create_json("/items/0/quantity", json!(0)),
            grpc: |_| create(|m| m.items[0].quantity = Some(0)),
        },
        Case {
            name: "create with a control character in the name",
            prep: Prep::Unknown,
            http: |_| create_json("/customer/name", json!("a\u{1}b")),
            grpc: |_| create(|m| m.customer.as_mut().unwrap().name = some("a\u{1}b")),
        },
        Case {
            name: "create with a unit price over 10^15",
            prep: Prep::Unknown,
            http: |_| create_json("/items/1/unitPrice", json!(1_000_000_000_000_001_u64)),
            grpc: |_| create(|m| m.items[1].unit_price = Some(1_000_000_000_000_001)),
        },
        Case {
            name: "create with an unknown discount code",
            prep: Prep::Unknown,
            http: |_| create_json("/discountCodes", json!(["NOPE"])),
            grpc: |_| create(|m| m.discount_codes = vec!["NOPE".to_owned()]),
        },
        Case {
            name: "create with one product twice",
            prep: Prep::Unknown,
            http: |_| create_json("/items/1/productId", json!("sku-1")),
            grpc: |_| create(|m| m.items[1].product_id = some("sku-1")),
        },
        Case {
            name: "create with an existing id",
            prep: Prep::Created,
            http: |id| create_json("/discountCodes", json!([])).with_order_id(id),
            grpc: |id| {
                let mut message = order();
                message.order_id = some(id);
                Call::from(Rpc::Create(message))
            },
        },
        Case {
            name: "add an item",
            prep: Prep::Created,
            http: |id| Http::post(format!("/orders/{id}/items"), item_json("sku-9", 1, 10)),
            grpc: |id| Call::from(add_item(id, "sku-9", 1, 10)),
        },
        Case {
            name: "add an item at another price",
            prep: Prep::Created,
            http: |id| Http::post(format!("/orders/{id}/items"), item_json("sku-1", 1, 99)),
            grpc: |id| Call::from(add_item(id, "sku-1", 1, 99)),
        },
        Case {
            name: "add an item without quantity",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/items"),
                    json!({"productId": "sku-9", "unitPrice": 10}),
                )
            },
            grpc: |id| {
                with_rpc(add_item(id, "sku-9", 1, 10), |rpc| {
                    if let Rpc::AddItem(m) = rpc {
                        m.quantity = None;
                    }
                })
            },
        },
        Case {
            name: "add an item after payment",
            prep: Prep::Paid,
            http: |id| Http::post(format!("/orders/{id}/items"), item_json("sku-9", 1, 10)),
            grpc: |id| Call::from(add_item(id, "sku-9", 1, 10)),
        },
        Case {
            name: "add an item to an unknown order",
            prep: Prep::Unknown,
            http: |id| Http::post(format!("/orders/{id}/items"), item_json("sku-9", 1, 10)),
            grpc: |id| Call::from(add_item(id, "sku-9", 1, 10)),
        },
        Case {
            name: "add an item to a malformed order id",
            prep: Prep::Unknown,
            http: |_| Http::post("/orders/not-a-uuid/items", item_json("sku-9", 1, 10)),
            grpc: |_| Call::from(add_item("not-a-uuid", "sku-9", 1, 10)),
        },
        Case {
            name: "remove an item",
            prep: Prep::Created,
            http: |id| Http::new(Method::DELETE, format!("/orders/{id}/items/sku-2"), None),
            grpc: |id| Call::from(remove_item(id, "sku-2")),
        },
        Case {
            name: "remove an unknown line",
            prep: Prep::Created,
            http: |id| Http::new(Method::DELETE, format!("/orders/{id}/items/sku-404"), None),
            grpc: |id| Call::from(remove_item(id, "sku-404")),
        },
        Case {
            name: "remove the last line",
            prep: Prep::OneLine,
            http: |id| Http::new(Method::DELETE, format!("/orders/{id}/items/sku-1"), None),
            grpc: |id| Call::from(remove_item(id, "sku-1")),
        },
        Case {
            name: "change the delivery address",
            prep: Prep::Paid,
            http: |id| {
                Http::new(
                    Method::PUT,
                    format!("/orders/{id}/delivery-address"),
                    Some(
                        json!({"line1": "2 Tràng Tiền", "line2": "Floor 3", "city": "Hà Nội", "country": "VN"}),
                    ),
                )
            },
            grpc: |id| Call::from(change_address(id)),
        },
        Case {
            name: "change the delivery address to nothing",
            prep: Prep::Created,
            http: |id| {
                Http::new(
                    Method::PUT,
                    format!("/orders/{id}/delivery-address"),
                    Some(json!({})),
                )
            },
            grpc: |id| {
                Call::from(Rpc::ChangeAddress(proto::ChangeDeliveryAddressRequest {
                    order_id: id.to_owned(),
                    expected_version: None,
                    address: None,
                }))
            },
        },
        Case {
            name: "pay",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/payment"),
                    payment_json(TOTAL, "bank_transfer"),
                )
            },
            grpc: |id| Call::from(pay(id, TOTAL)),
        },
        Case {
            name: "pay below the total",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/payment"),
                    payment_json(TOTAL - 1, "bank_transfer"),
                )
            },
            grpc: |id| Call::from(pay(id, TOTAL - 1)),
        },
        Case {
            name: "pay with an unknown method",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/payment"),
                    payment_json(TOTAL, "paypal"),
                )
            },
            grpc: |id| {
                with_rpc(pay(id, TOTAL), |rpc| {
                    if let Rpc::Pay(m) = rpc {
                        m.method = 42;
                    }
                })
            },
        },
        Case {
            name: "pay twice",
            prep: Prep::Paid,
            http: |id| Http::post(format!("/orders/{id}/payment"), payment_json(TOTAL, "card")),
            grpc: |id| Call::from(pay(id, TOTAL)),
        },
        Case {
            name: "ship before payment",
            prep: Prep::Created,
            http: |id| Http::post(format!("/orders/{id}/shipment"), shipment_json()),
            grpc: |id| Call::from(ship(id)),
        },
        Case {
            name: "ship",
            prep: Prep::Paid,
            http: |id| Http::post(format!("/orders/{id}/shipment"), shipment_json()),
            grpc: |id| Call::from(ship(id)),
        },
        Case {
            name: "cancel",
            prep: Prep::Paid,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/cancellation"),
                    json!({"reason": "changed my mind"}),
                )
            },
            grpc: |id| Call::from(cancel(id)),
        },
        Case {
            name: "cancel without a reason",
            prep: Prep::Created,
            http: |id| Http::post(format!("/orders/{id}/cancellation"), json!({})),
            grpc: |id| {
                with_rpc(cancel(id), |rpc| {
                    if let Rpc::Cancel(m) = rpc {
                        m.reason = None;
                    }
                })
            },
        },
        Case {
            name: "cancel a shipped order",
            prep: Prep::Shipped,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/cancellation"),
                    json!({"reason": "late"}),
                )
            },
            grpc: |id| Call::from(cancel(id)),
        },
        Case {
            name: "a version mismatch",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/cancellation"),
                    json!({"reason": "late"}),
                )
                .header("if-match", "\"9\"")
            },
            grpc: |id| Call::from(expecting(cancel(id), 9)),
        },
        Case {
            name: "a version match",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/cancellation"),
                    json!({"reason": "late"}),
                )
                .header("if-match", "\"1\"")
            },
            grpc: |id| Call::from(expecting(cancel(id), 1)),
        },
        Case {
            name: "a malformed idempotency key",
            prep: Prep::Created,
            http: |id| {
                Http::post(
                    format!("/orders/{id}/cancellation"),
                    json!({"reason": "late"}),
                )
                .header("idempotency-key", "has space")
            },
            grpc: |id| Call::from(cancel(id)).key("has space"),
        },
        Case {
            name: "a malformed correlation id",
            prep: Prep::Created,
            http: |id| Http::get(format!("/orders/{id}")).header("x-correlation-id", "has space"),
            grpc: |id| Call::from(get(id)).meta("x-correlation-id", "has space"),
        },
        Case {
            name: "get",
            prep: Prep::Shipped,
            http: |id| Http::get(format!("/orders/{id}")),
            grpc: |id| Call::from(get(id)),
        },
        Case {
            name: "get an unknown order",
            prep: Prep::Unknown,
            http: |id| Http::get(format!("/orders/{id}")),
            grpc: |id| Call::from(get(id)),
        },
        Case {
            name: "get as of a malformed instant",
            prep: Prep::Created,
            http: |id| Http::get(format!("/orders/{id}?asOf=yesterday")),
            grpc: |id| {
                Call::from(Rpc::Get(proto::GetOrderRequest {
                    order_id: id.to_owned(),
                    as_of: some("yesterday"),
                }))
            },
        },
        Case {
            name: "get as of before creation",
            prep: Prep::Created,
            http: |id| Http::get(format!("/orders/{id}?asOf=2000-01-01T00:00:00Z")),
            grpc: |id| {
                Call::from(Rpc::Get(proto::GetOrderRequest {
                    order_id: id.to_owned(),
                    as_of: some("2000-01-01T00:00:00Z"),
                }))
            },
        },
        Case {
            name: "history",
            prep: Prep::Paid,
            http: |id| Http::get(format!("/orders/{id}/history")),
            grpc: |id| Call::from(history(id)),
        },
        Case {
            name: "history of an unknown order",
            prep: Prep::Unknown,
            http: |id| Http::get(format!("/orders/{id}/history")),
            grpc: |id| Call::from(history(id)),
        },
        Case {
            name: "list",
            prep: Prep::Unknown,
            http: |_| Http::get("/orders?customerId=cust-1&status=paid&limit=5"),
            grpc: |_| {
                Call::from(Rpc::List(proto::ListOrdersRequest {
                    customer_id: some("cust-1"),
                    status: proto::OrderStatus::Paid.into(),
                    limit: Some(5),
                    cursor: None,
                }))
            },
        },
        Case {
            name: "list 101",
            prep: Prep::Unknown,
            http: |_| Http::get("/orders?limit=101"),
            grpc: |_| {
                Call::from(Rpc::List(proto::ListOrdersRequest {
                    limit: Some(101),
                    ..Default::default()
                }))
            },
        },
        Case {
            name: "list with a malformed cursor",
            prep: Prep::Unknown,
            http: |_| Http::get("/orders?cursor=zz"),
            grpc: |_| {
                Call::from(Rpc::List(proto::ListOrdersRequest {
                    cursor: some("zz"),
                    ..Default::default()
                }))
            },
        },
    ]
}

impl Http {
    /// `POST /orders` with `orderId`.
    fn with_order_id(mut self, id: &str) -> Self {
        if let Some(Value::Object(body)) = &mut self.body {
            body.insert("orderId".to_owned(), json!(id));
        }
        self
    }
}

fn item_json(product: &str, quantity: u64, unit_price: u64) -> Value {
    json!({"productId": product, "quantity": quantity, "unitPrice": unit_price})
}

fn payment_json(amount: u64, method: &str) -> Value {
    json!({"paymentId": "pay-1", "amount": amount, "method": method})
}

fn shipment_json() -> Value {
    json!({"trackingNumber": "TRK-1", "carrier": "VNPost"})
}

/// Runs `case` over both APIs (each on its own, identically prepared order) and checks
/// that the answers agree, and that a rejection wrote nothing on either side.
async fn assert_parity(
    server: &Server,
    router: &axum::Router,
    name: &str,
    prep: Prep,
    http: Http,
    grpc: Call,
) -> (u16, Code) {
    let before = counts(&server.pool).await;
    let (status, kind, http_fields) = http.send(router).await;
    if !(200..300).contains(&status) {
        assert_eq!(
            counts(&server.pool).await,
            before,
            "{name}: HTTP {status} wrote"
        );
    }
    let before = counts(&server.pool).await;
    let code = match server.send(grpc).await {
        Ok(_) => Code::Ok,
        Err(rejected) => {
            assert_eq!(
                counts(&server.pool).await,
                before,
                "{name}: gRPC {rejected:?} wrote"
            );
            if status == 422 {
                // Header names are metadata keys (lower case) over gRPC.
                let sorted = |fields: Vec<String>| {
                    let mut fields: Vec<String> = fields.iter().map(|f| f.to_lowercase()).collect();
                    fields.sort();
                    fields
                };
                assert_eq!(
                    sorted(violations(&rejected)),
                    sorted(http_fields),
                    "{name}: the same fields"
                );
            }
            rejected.code()
        }
    };
    assert_eq!(
        code,
        grpc_code_for(status, &kind),
        "{name} ({prep:?}): HTTP {status} {kind} but gRPC {code:?}"
    );
    (status, code)
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_command_and_error_answers_alike_over_http_and_grpc(pool: PgPool) {
    let settings = ServiceSettings::default();
    let server = Server::with_settings(pool.clone(), &settings).await;
    let router = build_router(pool, &settings).expect("the router builds");
    let mut seen = BTreeMap::<(u16, String), usize>::new();
    for case in parity_cases() {
        let http_id = prepare(&server, case.prep, &[]).await;
        let grpc_id = prepare(&server, case.prep, &[]).await;
        let (status, code) = assert_parity(
            &server,
            &router,
            case.name,
            case.prep,
            (case.http)(&http_id),
            (case.grpc)(&grpc_id),
        )
        .await;
        *seen.entry((status, format!("{code:?}"))).or_default() += 1;
    }
    // The same idempotency key with another body or message, after a first request.
    let http_id = prepare(&server, Prep::Created, &[]).await;
    let grpc_id = prepare(&server, Prep::Created, &[]).await;
    let cancel_http = |reason: &str| {
        Http::post(
            format!("/orders/{http_id}/cancellation"),
            json!({ "reason": reason }),
        )
        .header("idempotency-key", "parity-http")
    };
    let cancel_grpc = |reason: &str| {
        with_rpc(cancel(&grpc_id), |rpc| {
            if let Rpc::Cancel(m) = rpc {
                m.reason = some(reason);
            }
        })
        .key("parity-grpc")
    };
    for (name, reason) in [
        ("idempotent first", "late"),
        ("idempotent replay", "late"),
        ("key reused", "other"),
    ] {
        let (status, code) = assert_parity(
            &server,
            &router,
            name,
            Prep::Created,
            cancel_http(reason),
            cancel_grpc(reason),
        )
        .await;
        *seen.entry((status, format!("{code:?}"))).or_default() += 1;
    }
    // Every status of the mapping that a valid token cannot get around was seen.
    let statuses: std::collections::BTreeSet<u16> = seen.keys().map(|(s, _)| *s).collect();
    for status in [200, 201, 400, 404, 409, 412, 422] {
        assert!(statuses.contains(&status), "{status} in {seen:?}");
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn authentication_and_authorization_answer_alike_over_http_and_grpc(pool: PgPool) {
    let settings = jwt_settings();
    let server = Server::with_settings(pool.clone(), &settings).await;
    let router = build_router(pool, &settings).expect("the router builds");
    let alice = token(&["customer"], Some("cust-1"));
    let bob = token(&["customer"], Some("cust-2"));
    let operator = token(&["operator"], None);
    let expired = token_for("user-1", &["operator"], None, now_seconds() - 3600);
    let as_alice = [("authorization", format!("Bearer {alice}"))];
    let bearer = |token: &str| format!("Bearer {token}");
    let cases: Vec<AuthCase> = vec![
        (
            "no token",
            None,
            Prep::Created,
            |id| Http::get(format!("/orders/{id}")),
            |id| Call::from(get(id)),
        ),
        (
            "garbage token",
            Some("Bearer not.a.jwt".to_owned()),
            Prep::Created,
            |id| Http::get(format!("/orders/{id}")),
            |id| Call::from(get(id)),
        ),
        (
            "expired token",
            Some(bearer(&expired)),
            Prep::Created,
            |id| Http::post(format!("/orders/{id}/shipment"), shipment_json()),
            |id| Call::from(ship(id)),
        ),
        (
            "another customer's order",
            Some(bearer(&bob)),
            Prep::Created,
            |id| Http::post(format!("/orders/{id}/payment"), payment_json(TOTAL, "card")),
            |id| Call::from(pay(id, TOTAL)),
        ),
        (
            "a customer ships",
            Some(bearer(&alice)),
            Prep::Paid,
            |id| Http::post(format!("/orders/{id}/shipment"), shipment_json()),
            |id| Call::from(ship(id)),
        ),
        (
            "a customer creates for another",
            Some(bearer(&alice)),
            Prep::Unknown,
            |_| create_for_json("cust-2"),
            |_| Call::from(Rpc::Create(order_for("cust-2"))),
        ),
        (
            "a customer lists another's",
            Some(bearer(&alice)),
            Prep::Unknown,
            |_| Http::get("/orders?customerId=cust-2"),
            |_| Call::from(list(Some("cust-2"))),
        ),
        (
            "a customer pays its own",
            Some(bearer(&alice)),
            Prep::Created,
            |id| Http::post(format!("/orders/{id}/payment"), payment_json(TOTAL, "card")),
            |id| Call::from(pay(id, TOTAL)),
        ),
        (
            "an operator ships",
            Some(bearer(&operator)),
            Prep::Paid,
            |id| Http::post(format!("/orders/{id}/shipment"), shipment_json()),
            |id| Call::from(ship(id)),
        ),
    ];
    let mut codes = Vec::new();
    for (name, authorization, prep, http, grpc) in cases {
        let http_id = prepare(&server, prep, &as_alice).await;
        let grpc_id = prepare(&server, prep, &as_alice).await;
        let mut http = http(&http_id);
        let mut grpc = grpc(&grpc_id);
        if let Some(value) = authorization {
            http = http.header("authorization", value.clone());
            grpc = grpc.meta("authorization", value);
        }
        let (_, code) = assert_parity(&server, &router, name, prep, http, grpc).await;
        codes.push(code);
    }
    for code in [
        Code::Unauthenticated,
        Code::NotFound,
        Code::PermissionDenied,
        Code::Ok,
    ] {
        assert!(codes.contains(&code), "{code:?} in {codes:?}");
    }
}

/// A parity case with a credential: name, `authorization`, preparation, requests.
type AuthCase = (
    &'static str,
    Option<String>,
    Prep,
    fn(&str) -> Http,
    fn(&str) -> Call,
);

fn create_for_json(customer_id: &str) -> Http {
    let mut body = standard_order_json();
    body["customer"]["customerId"] = json!(customer_id);
    Http::post("/orders", body)
}
