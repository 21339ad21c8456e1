//! The gRPC API (`orders.v1.OrderService`) against `shared/API.md`: a real tonic server
//! on 127.0.0.1:0, driven with the generated client, on a real PostgreSQL with a
//! throwaway database per test.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p adapters --test grpc`.
//!
//! Every rejected call goes through [`Server::assert_rejected_without_writes`], which
//! checks the code and that no event, outbox row or idempotency record was written.
//! The parity test sends the same inputs over HTTP (in-process router) and gRPC and
//! checks that the HTTP status and the gRPC code agree; the fuzz test throws a few
//! hundred random and mutated messages at every rpc.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::auth::{expiry_in, now_seconds, Authenticator, Claims};
use adapters::grpc::proto::{self, order_service_client::OrderServiceClient};
use adapters::http::HttpLimits;
use adapters::service::{build_grpc, build_router, run_grpc, ServiceSettings};
use application::{EventStore, Projector};
use axum::body::{to_bytes, Body};
use axum::http::{Method, Request as HttpRequest};
use domain::OrderId;
use order_postgres::{PgEventStore, PgReadModel};
use prost::bytes::{Buf, BufMut};
use prost::Message;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::codec::{DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tower::ServiceExt;
use uuid::Uuid;

const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

type Client = OrderServiceClient<Channel>;

/// One request message of any rpc.
#[derive(Debug, Clone)]
enum Rpc {
    Create(proto::CreateOrderRequest),
    AddItem(proto::AddItemRequest),
    RemoveItem(proto::RemoveItemRequest),
    ChangeAddress(proto::ChangeDeliveryAddressRequest),
    Pay(proto::PayRequest),
    Ship(proto::ShipRequest),
    Cancel(proto::CancelRequest),
    Get(proto::GetOrderRequest),
    History(proto::GetHistoryRequest),
    List(proto::ListOrdersRequest),
}

impl Rpc {
    fn name(&self) -> &'static str {
        match self {
            Self::Create(_) => "CreateOrder",
            Self::AddItem(_) => "AddItem",
            Self::RemoveItem(_) => "RemoveItem",
            Self::ChangeAddress(_) => "ChangeDeliveryAddress",
            Self::Pay(_) => "Pay",
            Self::Ship(_) => "Ship",
            Self::Cancel(_) => "Cancel",
            Self::Get(_) => "GetOrder",
            Self::History(_) => "GetHistory",
            Self::List(_) => "ListOrders",
        }
    }
}

/// What an rpc answered.
#[derive(Debug, Clone)]
enum Answer {
    Ack(proto::CommandAck),
    Order(Box<proto::Order>),
    History(proto::History),
    List(proto::ListOrdersResponse),
}

impl Answer {
    fn ack(self) -> proto::CommandAck {
        match self {
            Self::Ack(ack) => ack,
            other => panic!("not an acknowledgment: {other:?}"),
        }
    }
}

/// One call: a message and its metadata (ASCII values).
#[derive(Debug, Clone)]
struct Call {
    rpc: Rpc,
    metadata: Vec<(&'static str, String)>,
}

impl From<Rpc> for Call {
    fn from(rpc: Rpc) -> Self {
        Self {
            rpc,
            metadata: Vec::new(),
        }
    }
}

impl Call {
    fn meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.meta("authorization", format!("Bearer {token}"))
    }

    fn key(self, key: &str) -> Self {
        self.meta("idempotency-key", key)
    }

    fn describe(&self) -> String {
        format!("{} {:?} {:?}", self.rpc.name(), self.rpc, self.metadata)
    }

    fn request<M>(&self, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        for (key, value) in &self.metadata {
            if let Ok(value) = MetadataValue::try_from(value.as_str()) {
                request.metadata_mut().append(*key, value);
            }
        }
        request
    }
}

/// Sends one call with the generated client.
async fn send(client: &Client, call: &Call) -> Result<(Answer, MetadataMap), Status> {
    let mut client = client.clone();
    fn split<T>(response: tonic::Response<T>, wrap: fn(T) -> Answer) -> (Answer, MetadataMap) {
        let metadata = response.metadata().clone();
        (wrap(response.into_inner()), metadata)
    }
    Ok(match call.rpc.clone() {
        Rpc::Create(m) => split(client.create_order(call.request(m)).await?, Answer::Ack),
        Rpc::AddItem(m) => split(client.add_item(call.request(m)).await?, Answer::Ack),
        Rpc::RemoveItem(m) => split(client.remove_item(call.request(m)).await?, Answer::Ack),
        Rpc::ChangeAddress(m) => split(
            client.change_delivery_address(call.request(m)).await?,
            Answer::Ack,
        ),
        Rpc::Pay(m) => split(client.pay(call.request(m)).await?, Answer::Ack),
        Rpc::Ship(m) => split(client.ship(call.request(m)).await?, Answer::Ack),
        Rpc::Cancel(m) => split(client.cancel(call.request(m)).await?, Answer::Ack),
        Rpc::Get(m) => split(client.get_order(call.request(m)).await?, |order| {
            Answer::Order(Box::new(order))
        }),
        Rpc::History(m) => split(client.get_history(call.request(m)).await?, Answer::History),
        Rpc::List(m) => split(client.list_orders(call.request(m)).await?, Answer::List),
    })
}

/// Rows in `events`, `outbox` and `idempotency_keys`.
async fn counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox), \
                (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(pool)
    .await
    .expect("the tables can be counted")
}

/// The fields a status's `google.rpc.BadRequest` names.
fn violations(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A gRPC server on 127.0.0.1:0, a client connected to it, and its database.
struct Server {
    client: Client,
    channel: Channel,
    pool: PgPool,
    /// Dropping it stops the server.
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start(pool: PgPool) -> Self {
        Self::with_settings(pool, &ServiceSettings::default()).await
    }

    async fn with_settings(pool: PgPool, settings: &ServiceSettings) -> Self {
        let routes = build_grpc(pool.clone(), settings).expect("the gRPC service builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(run_grpc(routes, listener, async move {
            let _ = stopped.await;
        }));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a valid endpoint")
            .connect()
            .await
            .expect("the server accepts connections");
        Self {
            client: OrderServiceClient::new(channel.clone()),
            channel,
            pool,
            _stop: stop,
        }
    }

    async fn send(&self, call: impl Into<Call>) -> Result<Answer, Status> {
        send(&self.client, &call.into())
            .await
            .map(|(answer, _)| answer)
    }

    /// Sends `call` and expects it to succeed.
    async fn ok(&self, call: impl Into<Call>) -> Answer {
        let call = call.into();
        let description = call.describe();
        self.send(call)
            .await
            .unwrap_or_else(|status| panic!("{description} answered {status:?}"))
    }

    async fn ack(&self, call: impl Into<Call>) -> proto::CommandAck {
        self.ok(call).await.ack()
    }

    /// Sends `call`, expects `code`, and checks that nothing at all was written.
    async fn assert_rejected_without_writes(&self, call: impl Into<Call>, code: Code) -> Status {
        let call = call.into();
        let before = counts(&self.pool).await;
        let description = call.describe();
        let status = match self.send(call).await {
            Ok(answer) => panic!("{description} succeeded: {answer:?}"),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{description}: {status:?}");
        assert!(!status.message().is_empty(), "{description}: no message");
        assert_eq!(
            counts(&self.pool).await,
            before,
            "{description} answered {code:?} but wrote something"
        );
        status
    }

    /// INVALID_ARGUMENT naming `field`, with nothing written.
    async fn assert_invalid(&self, call: impl Into<Call>, field: &str) -> Status {
        let status = self
            .assert_rejected_without_writes(call, Code::InvalidArgument)
            .await;
        let named = violations(&status);
        assert!(
            named.iter().any(|f| f == field),
            "{field} should be named in {named:?} ({})",
            status.message()
        );
        status
    }

    /// Places the standard order and returns its id.
    async fn place(&self) -> String {
        self.ack(Rpc::Create(order())).await.order_id
    }

    async fn order(&self, id: &str) -> proto::Order {
        match self.ok(get(id)).await {
            Answer::Order(order) => *order,
            other => panic!("not an order: {other:?}"),
        }
    }

    async fn history(&self, id: &str) -> Vec<proto::Event> {
        match self.ok(history(id)).await {
            Answer::History(history) => history.events,
            other => panic!("not a history: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------

/// Subtotal 2 × 100,000 + 1 × 50,000 = 250,000 VND; `WELCOME10` takes 10%:
/// discount 25,000, total 225,000 (the HTTP tests' standard order).
const TOTAL: u64 = 225_000;

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn address() -> proto::Address {
    proto::Address {
        line1: some("1 Lê Lợi"),
        line2: None,
        city: some("Hồ Chí Minh"),
        postal_code: some("700000"),
        country: some("VN"),
    }
}

fn new_address() -> proto::Address {
    proto::Address {
        line1: some("2 Tràng Tiền"),
        line2: some("Floor 3"),
        city: some("Hà Nội"),
        postal_code: None,
        country: some("VN"),
    }
}

fn customer(customer_id: &str) -> proto::Customer {
    proto::Customer {
        customer_id: some(customer_id),
        name: some("Nguyễn Văn A"),
        phone: some("+84 90 123 4567"),
        address: Some(address()),
    }
}

fn line(product: &str, quantity: u64, unit_price: u64) -> proto::Item {
    proto::Item {
        product_id: some(product),
        quantity: Some(quantity),
        unit_price: Some(unit_price),
    }
}

/// The standard order of customer `cust-1`.
fn order() -> proto::CreateOrderRequest {
    proto::CreateOrderRequest {
        order_id: None,
        customer: Some(customer("cust-1")),
        currency: some("VND"),
        items: vec![line("sku-1", 2, 100_000), line("sku-2", 1, 50_000)],
        discount_codes: vec!["WELCOME10".to_owned()],
    }
}

fn order_for(customer_id: &str) -> proto::CreateOrderRequest {
    proto::CreateOrderRequest {
        customer: Some(customer(customer_id)),
        ..order()
    }
}

fn add_item(id: &str, product: &str, quantity: u64, unit_price: u64) -> Rpc {
    Rpc::AddItem(proto::AddItemRequest {
        order_id: id.to_owned(),
        expected_version: None,
        product_id: some(product),
        quantity: Some(quantity),
        unit_price: Some(unit_price),
    })
}

fn remove_item(id: &str, product: &str) -> Rpc {
    Rpc::RemoveItem(proto::RemoveItemRequest {
        order_id: id.to_owned(),
        expected_version: None,
        product_id: product.to_owned(),
    })
}

fn change_address(id: &str) -> Rpc {
    Rpc::ChangeAddress(proto::ChangeDeliveryAddressRequest {
        order_id: id.to_owned(),
        expected_version: None,
        address: Some(new_address()),
    })
}

fn pay(id: &str, amount: u64) -> Rpc {
    Rpc::Pay(proto::PayRequest {
        order_id: id.to_owned(),
        expected_version: None,
        payment_id: some("pay-1"),
        amount: Some(amount),
        method: proto::PaymentMethod::BankTransfer.into(),
    })
}

fn ship(id: &str) -> Rpc {
    Rpc::Ship(proto::ShipRequest {
        order_id: id.to_owned(),
        expected_version: None,
        tracking_number: some("TRK-1"),
        carrier: some("VNPost"),
    })
}

fn cancel(id: &str) -> Rpc {
    Rpc::Cancel(proto::CancelRequest {
        order_id: id.to_owned(),
        expected_version: None,
        reason: some("changed my mind"),
    })
}

fn get(id: &str) -> Rpc {
    Rpc::Get(proto::GetOrderRequest {
        order_id: id.to_owned(),
        as_of: None,
    })
}

fn history(id: &str) -> Rpc {
    Rpc::History(proto::GetHistoryRequest {
        order_id: id.to_owned(),
    })
}

fn list(customer_id: Option<&str>) -> Rpc {
    Rpc::List(proto::ListOrdersRequest {
        customer_id: customer_id.map(str::to_owned),
        status: 0,
        limit: None,
        cursor: None,
    })
}

/// `rpc` with `expected_version` set (commands on an existing order only).
fn expecting(rpc: Rpc, version: u64) -> Rpc {
    let mut rpc = rpc;
    let slot = match &mut rpc {
        Rpc::AddItem(m) => &mut m.expected_version,
        Rpc::RemoveItem(m) => &mut m.expected_version,
        Rpc::ChangeAddress(m) => &mut m.expected_version,
        Rpc::Pay(m) => &mut m.expected_version,
        Rpc::Ship(m) => &mut m.expected_version,
        Rpc::Cancel(m) => &mut m.expected_version,
        other => panic!("{} has no expected_version", other.name()),
    };
    *slot = Some(version);
    rpc
}

/// Every command on an existing order, with a valid message.
fn commands_on(id: &str) -> Vec<Rpc> {
    vec![
        add_item(id, "sku-9", 1, 10),
        remove_item(id, "sku-1"),
        change_address(id),
        pay(id, TOTAL),
        ship(id),
        cancel(id),
    ]
}

fn token(roles: &[&str], customer_id: Option<&str>) -> String {
    token_for(
        "user-1",
        roles,
        customer_id,
        expiry_in(Duration::from_secs(600)),
    )
}

fn token_for(sub: &str, roles: &[&str], customer_id: Option<&str>, exp: u64) -> String {
    Authenticator::jwt(SECRET)
        .expect("a long enough secret")
        .mint(&Claims {
            sub: sub.to_owned(),
            exp,
            iat: Some(now_seconds()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            customer_id: customer_id.map(str::to_owned),
        })
        .expect("a token")
}

fn jwt_settings() -> ServiceSettings {
    ServiceSettings {
        auth: Authenticator::jwt(SECRET).expect("a long enough secret"),
        ..ServiceSettings::default()
    }
}

// ---------------------------------------------------------------------------------------
// Commands and queries
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_command_answers_its_acknowledgment_with_the_new_version(pool: PgPool) {
    let server = Server::start(pool).await;
    let created = server.ack(Rpc::Create(order())).await;
    assert_eq!(created.version, 1);
    assert!(!created.replayed);
    let id = created.order_id;
    OrderId::parse(&id).expect("the server made a UUID");

    let steps = [
        add_item(&id, "sku-3", 1, 10_000),
        remove_item(&id, "sku-3"),
        change_address(&id),
        pay(&id, TOTAL),
        ship(&id),
    ];
    for (step, version) in steps.into_iter().zip(2..) {
        let name = step.name();
        let ack = server.ack(step).await;
        assert_eq!(
            (ack.order_id.as_str(), ack.version),
            (id.as_str(), version),
            "{name}"
        );
    }
    let other = server.place().await;
    assert_eq!(server.ack(cancel(&other)).await.version, 2);

    let shipped = server.order(&id).await;
    assert_eq!(shipped.version, 6);
    assert_eq!(shipped.status(), proto::OrderStatus::Shipped);
    assert_eq!(
        (shipped.subtotal, shipped.discount, shipped.total),
        (250_000, 25_000, TOTAL)
    );
    assert_eq!(shipped.delivery_address, Some(new_address()));
    assert_eq!(shipped.customer.and_then(|c| c.address), Some(address()));
    let payment = shipped.payment.expect("paid");
    assert_eq!(
        (payment.amount, payment.method()),
        (TOTAL, proto::PaymentMethod::BankTransfer)
    );
    assert_eq!(shipped.shipment.map(|s| s.carrier), some("VNPost"));
    let cancelled = server.order(&other).await;
    assert_eq!(cancelled.status(), proto::OrderStatus::Cancelled);
    assert_eq!(cancelled.cancellation.map(|c| c.refund_amount), Some(0));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_client_order_id_is_kept_and_a_second_create_with_it_already_exists(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = Uuid::now_v7().to_string();
    let mut create = order();
    create.order_id = Some(id.clone());
    let ack = server.ack(Rpc::Create(create.clone())).await;
    assert_eq!((ack.order_id.as_str(), ack.version), (id.as_str(), 1));
    server
        .assert_rejected_without_writes(Rpc::Create(create.clone()), Code::AlreadyExists)
        .await;
    // Whatever its message.
    create.currency = some("USD");
    server
        .assert_rejected_without_writes(Rpc::Create(create), Code::AlreadyExists)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_queries_answer_the_order_its_history_as_of_an_instant_and_the_list(pool: PgPool) {
    let server = Server::start(pool.clone()).await;
    let id = server.place().await;
    server.ack(pay(&id, TOTAL)).await;

    let order = server.order(&id).await;
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].line_total, 200_000);
    assert_eq!(order.discount_codes, ["WELCOME10"]);
    assert_eq!(order.discount_percent, 10);

    let events = server.history(&id).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["OrderCreated", "PaymentProcessed"]);
    let paid = &events[1];
    assert_eq!((paid.version, paid.schema_version), (2, 1));
    assert_eq!(paid.aggregate_type, "Order");
    assert!(!paid.recorded_at.is_empty());
    let payload: Value = serde_json::from_str(&paid.payload_json).expect("JSON text");
    assert_eq!(
        payload,
        json!({"paymentId": "pay-1", "amount": TOTAL, "method": "bank_transfer"})
    );

    // As of the creation: created, not yet paid; before it: not found.
    let created_at = events[0].occurred_at.clone();
    let mut as_of = proto::GetOrderRequest {
        order_id: id.clone(),
        as_of: Some(created_at),
    };
    match server.ok(Rpc::Get(as_of.clone())).await {
        Answer::Order(then) => assert_eq!(then.status(), proto::OrderStatus::Created),
        other => panic!("{other:?}"),
    }
    as_of.as_of = some("2000-01-01T00:00:00Z");
    server
        .assert_rejected_without_writes(Rpc::Get(as_of.clone()), Code::NotFound)
        .await;
    as_of.as_of = some("yesterday");
    server.assert_invalid(Rpc::Get(as_of), "as_of").await;

    // The read model, fed as the projector would be.
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let projector = Projector::new(Arc::new(PgReadModel::new(pool.clone())), store.clone());
    let stream = store.load(OrderId::parse(&id).unwrap()).await.unwrap();
    projector.apply(&stream).await.expect("projected");
    let Answer::List(page) = server.ok(list(Some("cust-1"))).await else {
        panic!("not a list")
    };
    assert_eq!(page.items.len(), 1);
    let summary = &page.items[0];
    assert_eq!(summary.order_id, id);
    assert_eq!(summary.status(), proto::OrderStatus::Paid);
    assert_eq!(
        (summary.total, summary.item_count, summary.version),
        (TOTAL, 2, 2)
    );
    assert_eq!(page.next_cursor, None);
    let mut malformed = proto::ListOrdersRequest {
        limit: Some(0),
        ..Default::default()
    };
    server
        .assert_invalid(Rpc::List(malformed.clone()), "limit")
        .await;
    malformed.limit = None;
    malformed.status = 99;
    server
        .assert_invalid(Rpc::List(malformed.clone()), "status")
        .await;
    malformed.status = 0;
    malformed.cursor = some("zz");
    server.assert_invalid(Rpc::List(malformed), "cursor").await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_correlation_id_is_echoed_and_recorded_and_a_malformed_one_is_invalid(pool: PgPool) {
    let server = Server::start(pool).await;
    let call = Call::from(Rpc::Create(order()))
        .meta("x-correlation-id", "txn-42")
        .meta(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .meta("x-user-id", "dev-user");
    let (answer, metadata) = send(&server.client, &call).await.expect("created");
    assert_eq!(
        metadata
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok()),
        Some("txn-42")
    );
    let id = answer.ack().order_id;
    let events = server.history(&id).await;
    let metadata = events[0].metadata.clone().expect("metadata");
    assert_eq!(metadata.correlation_id, "txn-42");
    assert_eq!(metadata.user_id.as_deref(), Some("dev-user"));

    let (_, generated) = send(&server.client, &Call::from(get(&id)))
        .await
        .expect("read");
    assert!(generated.get("x-correlation-id").is_some());

    let status = server
        .assert_rejected_without_writes(
            Call::from(Rpc::Create(order())).meta("x-correlation-id", "has space"),
            Code::InvalidArgument,
        )
        .await;
    assert_eq!(violations(&status), ["x-correlation-id"]);
}

// ---------------------------------------------------------------------------------------
// Every error code, provoked for real
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn invalid_input_is_invalid_argument_naming_each_field_as_http_does(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = server.place().await;

    // Missing fields, each named with HTTP's JSON path.
    let status = server
        .assert_rejected_without_writes(
            Rpc::Create(proto::CreateOrderRequest::default()),
            Code::InvalidArgument,
        )
        .await;
    assert_eq!(violations(&status), ["customer", "currency", "items"]);
    let mut create = order();
    create.customer = Some(proto::Customer {
        name: None,
        address: Some(proto::Address {
            city: None,
            ..address()
        }),
        ..customer("cust-1")
    });
    create.items[1].quantity = Some(0);
    let status = server
        .assert_rejected_without_writes(Rpc::Create(create), Code::InvalidArgument)
        .await;
    assert_eq!(
        violations(&status),
        [
            "customer.name",
            "customer.address.city",
            "items[1].quantity"
        ]
    );
    assert!(
        status.message().contains("customer.address.city"),
        "{}",
        status.message()
    );

    // Out of range, malformed, control characters, unknown codes.
    let mut create = order();
    create.currency = some("XYZ");
    server.assert_invalid(Rpc::Create(create), "currency").await;
    let mut create = order();
    create.items[0].unit_price = Some(1_000_000_000_000_001);
    server
        .assert_invalid(Rpc::Create(create), "items[0].unitPrice")
        .await;
    let mut create = order();
    create.customer.as_mut().unwrap().name = some("bad\u{7}name");
    server
        .assert_invalid(Rpc::Create(create), "customer.name")
        .await;
    let mut create = order();
    create.discount_codes = vec!["NOPE".to_owned()];
    server
        .assert_invalid(Rpc::Create(create), "discountCodes")
        .await;
    let mut create = order();
    create.items.push(line("sku-1", 1, 100_000));
    server.assert_invalid(Rpc::Create(create), "items").await;
    let mut create = order();
    create.order_id = some("not-a-uuid");
    server.assert_invalid(Rpc::Create(create), "orderId").await;

    // Commands: a malformed order id, missing fields, an unknown payment method.
    server
        .assert_invalid(add_item("not-a-uuid", "sku-9", 1, 1), "order_id")
        .await;
    server
        .assert_invalid(remove_item(&id, ""), "product_id")
        .await;
    let Rpc::Pay(mut payment) = pay(&id, TOTAL) else {
        unreachable!()
    };
    payment.method = 0;
    server
        .assert_invalid(Rpc::Pay(payment.clone()), "method")
        .await;
    payment.method = 42;
    server.assert_invalid(Rpc::Pay(payment), "method").await;
    let mut address = proto::ChangeDeliveryAddressRequest {
        order_id: id.clone(),
        expected_version: None,
        address: None,
    };
    let status = server
        .assert_rejected_without_writes(Rpc::ChangeAddress(address.clone()), Code::InvalidArgument)
        .await;
    assert_eq!(violations(&status), ["line1", "city", "country"]);
    address.address = Some(proto::Address {
        country: some("Vietnam"),
        ..new_address()
    });
    server
        .assert_invalid(Rpc::ChangeAddress(address), "country")
        .await;
    let Rpc::Ship(mut shipment) = ship(&id) else {
        unreachable!()
    };
    shipment.tracking_number = Some("x".repeat(65));
    server
        .assert_invalid(Rpc::Ship(shipment), "trackingNumber")
        .await;
    let Rpc::Cancel(mut cancellation) = cancel(&id) else {
        unreachable!()
    };
    cancellation.reason = None;
    server
        .assert_invalid(Rpc::Cancel(cancellation), "reason")
        .await;

    // Rules on the order's content (HTTP's 422 after the state).
    server.assert_invalid(pay(&id, TOTAL - 1), "amount").await;
    let status = server
        .assert_rejected_without_writes(add_item(&id, "sku-1", 1, 99), Code::InvalidArgument)
        .await;
    assert!(!violations(&status).is_empty());
    server.ack(remove_item(&id, "sku-2")).await;
    server
        .assert_rejected_without_writes(remove_item(&id, "sku-1"), Code::InvalidArgument)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_order_or_line_is_not_found(pool: PgPool) {
    let server = Server::start(pool).await;
    let unknown = Uuid::now_v7().to_string();
    for rpc in commands_on(&unknown)
        .into_iter()
        .chain([get(&unknown), history(&unknown)])
    {
        server
            .assert_rejected_without_writes(rpc, Code::NotFound)
            .await;
    }
    let id = server.place().await;
    server
        .assert_rejected_without_writes(remove_item(&id, "sku-404"), Code::NotFound)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_the_state_does_not_allow_is_failed_precondition(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = server.place().await;
    server
        .assert_rejected_without_writes(ship(&id), Code::FailedPrecondition)
        .await;
    server.ack(pay(&id, TOTAL)).await;
    for rpc in [
        add_item(&id, "sku-9", 1, 1),
        remove_item(&id, "sku-1"),
        pay(&id, TOTAL),
    ] {
        server
            .assert_rejected_without_writes(rpc, Code::FailedPrecondition)
            .await;
    }
    server.ack(ship(&id)).await;
    for rpc in [cancel(&id), change_address(&id)] {
        server
            .assert_rejected_without_writes(rpc, Code::FailedPrecondition)
            .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_expected_version_mismatch_is_aborted_and_writes_nothing_while_a_match_succeeds(
    pool: PgPool,
) {
    let server = Server::start(pool).await;
    let id = server.place().await;
    for rpc in commands_on(&id) {
        for stale in [0, 2, 99] {
            let status = server
                .assert_rejected_without_writes(expecting(rpc.clone(), stale), Code::Aborted)
                .await;
            assert!(
                status.message().contains("expected_version"),
                "{}",
                status.message()
            );
        }
    }
    let ack = server
        .ack(expecting(add_item(&id, "sku-9", 1, 10), 1))
        .await;
    assert_eq!(ack.version, 2);
    assert_eq!(
        server.ack(expecting(pay(&id, TOTAL + 10), 2)).await.version,
        3
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_concurrency_conflict_that_retries_do_not_resolve_is_aborted(pool: PgPool) {
    const N: usize = 12;
    let settings = ServiceSettings {
        max_attempts: 1,
        ..ServiceSettings::default()
    };
    let server = Server::with_settings(pool, &settings).await;
    let id = server.place().await;
    let racers = (0..N).map(|i| {
        let client = server.client.clone();
        let call = Call::from(add_item(&id, &format!("sku-r{i}"), 1, 10));
        tokio::spawn(async move { send(&client, &call).await.map(|(answer, _)| answer) })
    });
    let mut won = 0;
    let mut aborted = 0;
    for racer in futures::future::join_all(racers).await {
        match racer.expect("the racer ran") {
            Ok(_) => won += 1,
            Err(status) if status.code() == Code::Aborted => aborted += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert!(won >= 1 && aborted >= 1, "won {won}, aborted {aborted}");
    assert_eq!(server.order(&id).await.version, 1 + won);
    assert_eq!(
        counts(&server.pool).await.0,
        1 + i64::try_from(won).unwrap()
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .expect("a valid URL");
    let server = Server::start(pool).await;
    let id = Uuid::now_v7().to_string();
    for call in [
        Call::from(Rpc::Create(order())),
        Call::from(Rpc::Create(order())).key("k"),
        Call::from(add_item(&id, "sku-1", 1, 1)),
        Call::from(get(&id)),
        Call::from(history(&id)),
        Call::from(list(None)),
    ] {
        let description = call.describe();
        let status = server.send(call).await.expect_err(&description);
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "{description}: {status:?}"
        );
        assert!(
            !status.message().contains("127.0.0.1"),
            "nothing internal: {status:?}"
        );
    }
}

#[tokio::test]
async fn overload_is_resource_exhausted_at_once_and_a_slow_request_unavailable() {
    // Every request waits for the unreachable database for up to 2 s; the guard allows
    // one request in flight and 500 ms each.
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_secs(2),
    )
    .expect("a valid URL");
    let settings = ServiceSettings {
        limits: HttpLimits {
            request_timeout: Duration::from_millis(500),
            max_concurrent_requests: 1,
        },
        ..ServiceSettings::default()
    };
    let server = Server::with_settings(pool, &settings).await;
    let id = Uuid::now_v7().to_string();
    let slow = {
        let client = server.client.clone();
        let call = Call::from(get(&id));
        tokio::spawn(async move { send(&client, &call).await.map(|(answer, _)| answer) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let status = server.send(get(&id)).await.expect_err("overloaded");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "answered at once"
    );
    let status = slow.await.unwrap().expect_err("timed out");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_bug_is_internal_and_says_nothing_internal(pool: PgPool) {
    // A damaged store: an event of a type this code does not know.
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, \
                             schema_version, payload, metadata, occurred_at) \
         VALUES ($1, $2, 'Order', 1, 'OrderTeleported', 1, '{}', '{}', now())",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .execute(&pool)
    .await
    .expect("inserted");
    let server = Server::start(pool).await;
    for rpc in [
        get(&id.to_string()),
        add_item(&id.to_string(), "sku-1", 1, 1),
    ] {
        let status = server
            .assert_rejected_without_writes(rpc, Code::Internal)
            .await;
        assert!(!status.message().contains("Teleported"), "{status:?}");
        assert!(status.message().contains("logged"), "{status:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_retry_with_the_same_key_replays_the_first_ack_and_writes_nothing(pool: PgPool) {
    let server = Server::start(pool).await;
    let create = Call::from(Rpc::Create(order())).key("create-1");
    let first = server.ack(create.clone()).await;
    assert!(!first.replayed);
    let before = counts(&server.pool).await;
    let again = server.ack(create).await;
    assert_eq!(
        (again.order_id.as_str(), again.version),
        (first.order_id.as_str(), 1)
    );
    assert!(again.replayed);
    assert_eq!(
        counts(&server.pool).await,
        before,
        "a replay writes nothing"
    );

    let id = first.order_id;
    let add = Call::from(add_item(&id, "sku-9", 1, 10)).key("add-1");
    assert_eq!(server.ack(add.clone()).await.version, 2);
    let before = counts(&server.pool).await;
    let replayed = server.ack(add).await;
    assert!(replayed.replayed && replayed.version == 2);
    assert_eq!(counts(&server.pool).await, before);

    // The same key with another message, or on another rpc: refused.
    for call in [
        Call::from(add_item(&id, "sku-9", 2, 10)).key("add-1"),
        Call::from(cancel(&id)).key("add-1"),
        Call::from(Rpc::Create(order_for("cust-2"))).key("create-1"),
    ] {
        let status = server.assert_invalid(call, "idempotency-key").await;
        assert!(status.message().contains("idempotency-key"), "{status:?}");
    }
    // Malformed keys.
    for bad in ["", "has space", &"k".repeat(256), "tab\there"] {
        server
            .assert_invalid(Call::from(cancel(&id)).key(bad), "idempotency-key")
            .await;
    }
}

// ---------------------------------------------------------------------------------------
// Authentication and authorization
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn missing_garbage_expired_or_wrongly_signed_tokens_are_unauthenticated(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let expired = token_for("user-1", &["operator"], None, now_seconds() - 3600);
    let wrong_key = Authenticator::jwt(b"another-secret-that-is-also-long-enough")
        .unwrap()
        .mint(&Claims {
            sub: "user-1".to_owned(),
            exp: expiry_in(Duration::from_secs(600)),
            iat: None,
            roles: vec!["operator".to_owned()],
            customer_id: None,
        })
        .unwrap();
    let id = Uuid::now_v7().to_string();
    let calls = |rpc: Rpc| {
        vec![
            Call::from(rpc.clone()),
            Call::from(rpc.clone()).meta("x-user-id", "mallory"),
            Call::from(rpc.clone()).bearer("not.a.jwt"),
            Call::from(rpc.clone()).meta("authorization", "Basic dXNlcjpwYXNz"),
            Call::from(rpc.clone()).bearer(&expired),
            Call::from(rpc.clone()).bearer(&wrong_key),
            Call::from(rpc).bearer(&token(&["customer"], None)),
        ]
    };
    for rpc in [Rpc::Create(order()), pay(&id, 1), get(&id), list(None)] {
        for call in calls(rpc) {
            server
                .assert_rejected_without_writes(call, Code::Unauthenticated)
                .await;
        }
    }
    // Authentication comes before validation, as 401 comes before 400 and 422.
    server
        .assert_rejected_without_writes(
            Rpc::Create(proto::CreateOrderRequest::default()),
            Code::Unauthenticated,
        )
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn customers_act_only_on_their_own_orders_and_may_not_ship(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let alice = token(&["customer"], Some("cust-1"));
    let bob = token(&["customer"], Some("cust-2"));
    let operator = token(&["operator"], None);

    let id = server
        .ack(Call::from(Rpc::Create(order())).bearer(&alice))
        .await
        .order_id;
    // Another customer's order is not found, whatever the command or query.
    for rpc in commands_on(&id).into_iter().chain([get(&id), history(&id)]) {
        server
            .assert_rejected_without_writes(Call::from(rpc).bearer(&bob), Code::NotFound)
            .await;
    }
    // Creating for another customer, listing another's, shipping: permission denied.
    server
        .assert_rejected_without_writes(
            Call::from(Rpc::Create(order_for("cust-2"))).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server
        .assert_rejected_without_writes(
            Call::from(list(Some("cust-2"))).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server.ack(Call::from(pay(&id, TOTAL)).bearer(&alice)).await;
    server
        .assert_rejected_without_writes(
            Call::from(ship(&id)).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server.ok(Call::from(list(None)).bearer(&alice)).await;
    server.ok(Call::from(get(&id)).bearer(&alice)).await;

    // An operator may do everything to every order.
    server.ack(Call::from(ship(&id)).bearer(&operator)).await;
    let other = server
        .ack(Call::from(Rpc::Create(order_for("cust-9"))).bearer(&operator))
        .await
        .order_id;
    for rpc in [
        add_item(&other, "sku-9", 1, 10),
        remove_item(&other, "sku-9"),
        change_address(&other),
        cancel(&other),
    ] {
        server.ack(Call::from(rpc).bearer(&operator)).await;
    }
    server
        .ok(Call::from(list(Some("cust-1"))).bearer(&operator))
        .await;
    server.ok(Call::from(history(&id)).bearer(&operator)).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_token_subject_is_the_recorded_user_whatever_x_user_id_says(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let token = token_for(
        "alice-login",
        &["customer"],
        Some("cust-1"),
        expiry_in(Duration::from_secs(600)),
    );
    let id = server
        .ack(
            Call::from(Rpc::Create(order()))
                .bearer(&token)
                .meta("x-user-id", "mallory"),
        )
        .await
        .order_id;
    let answer = server.ok(Call::from(history(&id)).bearer(&token)).await;
    let Answer::History(history) = answer else {
        panic!("not a history")
    };
    let metadata = history.events[0].metadata.clone().expect("metadata");
    assert_eq!(metadata.user_id.as_deref(), Some("alice-login"));
}

// ---------------------------------------------------------------------------------------
// Parity with HTTP
// ---------------------------------------------------------------------------------------

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

/// The state an order is put in before a parity case runs on it.
#[derive(Debug, Clone, Copy)]
enum Prep {
    /// No order: the id is unknown.
    Unknown,
    Created,
    /// Created, then `sku-2` removed: one line left.
    OneLine,
    Paid,
    Shipped,
}

async fn prepare(server: &Server, prep: Prep, auth: &[(&'static str, String)]) -> String {
    let with_auth = |rpc: Rpc| {
        let mut call = Call::from(rpc);
        call.metadata.extend(auth.iter().cloned());
        call
    };
    if let Prep::Unknown = prep {
        return Uuid::now_v7().to_string();
    }
    let id = server.ack(with_auth(Rpc::Create(order()))).await.order_id;
    let steps = match prep {
        Prep::Unknown | Prep::Created => vec![],
        Prep::OneLine => vec![remove_item(&id, "sku-2")],
        Prep::Paid => vec![pay(&id, TOTAL)],
        Prep::Shipped => vec![pay(&id, TOTAL), ship(&id)],
    };
    for step in steps {
        server.ack(with_auth(step)).await;
    }
    id
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

// ---------------------------------------------------------------------------------------
// Undecodable messages
// ---------------------------------------------------------------------------------------

/// A codec that sends and receives raw bytes, to send what no generated client would.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        Self
    }

    fn decoder(&mut self) -> Self {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Sends `bytes` as the message of `rpc`, with `call`'s metadata.
async fn send_raw(channel: &Channel, rpc: &str, bytes: Vec<u8>, call: &Call) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("not ready: {e}")))?;
    let path = format!("/orders.v1.OrderService/{rpc}")
        .parse()
        .expect("a path");
    grpc.unary(call.request(bytes), path, RawCodec)
        .await
        .map(drop)
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn undecodable_bytes_are_invalid_argument_and_an_oversized_message_out_of_range(
    pool: PgPool,
) {
    let server = Server::start(pool).await;
    let valid = order().encode_to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a bad tag", vec![0xff, 0xff, 0xff, 0xff]),
        ("a length past the end", vec![0x0a, 0x05, b'a']),
        // Field 1 is a string in every request message here.
        ("a string that is not UTF-8", vec![0x0a, 0x02, 0xff, 0xfe]),
        ("a varint for a string", vec![0x08, 0x01]),
        ("a truncated message", valid[..valid.len() - 3].to_vec()),
    ];
    for (name, bytes) in cases {
        for rpc in ["CreateOrder", "Pay", "GetOrder", "ListOrders"] {
            let before = counts(&server.pool).await;
            let status = send_raw(&server.channel, rpc, bytes.clone(), &Call::from(list(None)))
                .await
                .expect_err(name);
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{name} to {rpc}: {status:?}"
            );
            assert!(
                status.message().contains("not valid protobuf"),
                "{status:?}"
            );
            assert_eq!(counts(&server.pool).await, before, "{name} wrote");
        }
    }
    // The valid encoding goes through.
    send_raw(
        &server.channel,
        "CreateOrder",
        valid,
        &Call::from(list(None)),
    )
    .await
    .expect("a valid message is accepted");

    // A message over the limit (64 KiB by default, HTTP's body limit): OUT_OF_RANGE.
    let mut huge = order();
    huge.customer.as_mut().unwrap().name = Some("x".repeat(70_000));
    server
        .assert_rejected_without_writes(Rpc::Create(huge), Code::OutOfRange)
        .await;
}

// ---------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------

mod fuzz {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::{proto, Call, Rpc};

    /// A string field: mostly `valid`, else missing, empty, any Unicode, control
    /// characters, around the 64- and 200-character limits, or rarely past the
    /// message size limit.
    pub(super) fn text(valid: &'static str) -> BoxedStrategy<Option<String>> {
        prop_oneof![
            50 => Just(Some(valid.to_owned())),
            2 => Just(None),
            1 => Just(Some(String::new())),
            2 => any::<String>().prop_map(Some),
            1 => "[\\x00-\\x1f\\x7f]{1,4}".prop_map(Some),
            1 => "\\PC{195,205}".prop_map(Some),
            1 => "[a-z]{62,66}".prop_map(Some),
            1 => "[ \\t]{1,3}".prop_map(Some),
        ]
        .boxed()
    }

    /// A number field: mostly `valid`, else missing or extreme.
    pub(super) fn number(valid: u64) -> BoxedStrategy<Option<u64>> {
        prop_oneof![
            40 => Just(Some(valid)),
            2 => Just(None),
            3 => select(vec![
                0,
                1,
                1_000_000,
                1_000_001,
                1_000_000_000_000_000,
                1_000_000_000_000_001,
                u64::MAX / 2,
                u64::MAX,
            ])
            .prop_map(Some),
            2 => any::<u64>().prop_map(Some),
        ]
        .boxed()
    }

    /// An enum field: a known value or any number.
    fn enumeration(valid: i32) -> BoxedStrategy<i32> {
        prop_oneof![6 => Just(valid), 3 => 0..5i32, 1 => any::<i32>()].boxed()
    }

    /// An order id: one of `existing` (orders in every state), an unknown UUID, or not
    /// a UUID at all.
    fn order_id(existing: Vec<String>) -> BoxedStrategy<String> {
        prop_oneof![
            8 => select(existing),
            1 => any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
            1 => any::<String>(),
        ]
        .boxed()
    }

    fn expected_version() -> BoxedStrategy<Option<u64>> {
        prop_oneof![6 => Just(None), 3 => (0..8u64).prop_map(Some), 1 => any::<u64>().prop_map(Some)]
    .boxed()
    }

    fn address() -> BoxedStrategy<proto::Address> {
        (
            text("1 Lê Lợi"),
            option::weighted(0.2, text("Floor 3").prop_map(|t| t.unwrap_or_default())),
            text("Hồ Chí Minh"),
            text("700000"),
            text("VN"),
        )
            .prop_map(
                |(line1, line2, city, postal_code, country)| proto::Address {
                    line1,
                    line2,
                    city,
                    postal_code,
                    country,
                },
            )
            .boxed()
    }

    fn item() -> BoxedStrategy<proto::Item> {
        (
            prop_oneof![3 => text("sku-1"), 3 => text("sku-2"), 2 => text("sku-7")],
            number(1),
            prop_oneof![1 => number(100_000), 1 => number(50_000), 1 => number(7)],
        )
            .prop_map(|(product_id, quantity, unit_price)| proto::Item {
                product_id,
                quantity,
                unit_price,
            })
            .boxed()
    }

    fn create(existing: Vec<String>) -> BoxedStrategy<Rpc> {
        let customer = (
            prop_oneof![4 => text("cust-1"), 1 => text("cust-2")],
            text("Nguyễn Văn A"),
            text("+84 90 123 4567"),
            option::weighted(0.9, address()),
        )
            .prop_map(|(customer_id, name, phone, address)| proto::Customer {
                customer_id,
                name,
                phone,
                address,
            });
        (
            option::weighted(0.2, order_id(existing)),
            option::weighted(0.9, customer),
            text("VND"),
            prop_oneof![10 => vec(item(), 0..4), 1 => vec(item(), 99..102)],
            vec(
                prop_oneof![
                    Just("WELCOME10".to_owned()),
                    Just("VIP20".to_owned()),
                    any::<String>()
                ],
                0..5,
            ),
        )
            .prop_map(|(order_id, customer, currency, items, discount_codes)| {
                Rpc::Create(proto::CreateOrderRequest {
                    order_id,
                    customer,
                    currency,
                    items,
                    discount_codes,
                })
            })
            .boxed()
    }

    /// Any rpc with a random or mutated message.
    pub(super) fn rpc(existing: Vec<String>) -> BoxedStrategy<Rpc> {
        let create = create(existing.clone());
        let id = move || order_id(existing.clone());
        prop_oneof![
            create,
            (
                id(),
                expected_version(),
                text("sku-9"),
                number(1),
                number(10)
            )
                .prop_map(
                    |(order_id, expected_version, product_id, quantity, unit_price)| {
                        Rpc::AddItem(proto::AddItemRequest {
                            order_id,
                            expected_version,
                            product_id,
                            quantity,
                            unit_price,
                        })
                    }
                ),
            (id(), expected_version(), text("sku-2")).prop_map(
                |(order_id, expected_version, product_id)| {
                    Rpc::RemoveItem(proto::RemoveItemRequest {
                        order_id,
                        expected_version,
                        product_id: product_id.unwrap_or_default(),
                    })
                }
            ),
            (id(), expected_version(), option::weighted(0.9, address())).prop_map(
                |(order_id, expected_version, address)| {
                    Rpc::ChangeAddress(proto::ChangeDeliveryAddressRequest {
                        order_id,
                        expected_version,
                        address,
                    })
                }
            ),
            (
                id(),
                expected_version(),
                text("pay-1"),
                prop_oneof![number(225_000), number(224_999)],
                enumeration(proto::PaymentMethod::Card.into())
            )
                .prop_map(
                    |(order_id, expected_version, payment_id, amount, method)| {
                        Rpc::Pay(proto::PayRequest {
                            order_id,
                            expected_version,
                            payment_id,
                            amount,
                            method,
                        })
                    }
                ),
            (id(), expected_version(), text("TRK-1"), text("VNPost")).prop_map(
                |(order_id, expected_version, tracking_number, carrier)| {
                    Rpc::Ship(proto::ShipRequest {
                        order_id,
                        expected_version,
                        tracking_number,
                        carrier,
                    })
                }
            ),
            (id(), expected_version(), text("changed my mind")).prop_map(
                |(order_id, expected_version, reason)| {
                    Rpc::Cancel(proto::CancelRequest {
                        order_id,
                        expected_version,
                        reason,
                    })
                }
            ),
            (
                id(),
                option::weighted(
                    0.3,
                    prop_oneof![
                        Just("2000-01-01T00:00:00Z".to_owned()),
                        Just("2999-01-01T00:00:00+07:00".to_owned()),
                        any::<String>()
                    ]
                )
            )
                .prop_map(|(order_id, as_of)| Rpc::Get(proto::GetOrderRequest { order_id, as_of })),
            id().prop_map(|order_id| Rpc::History(proto::GetHistoryRequest { order_id })),
            (
                option::weighted(0.5, text("cust-1").prop_map(|t| t.unwrap_or_default())),
                enumeration(0),
                option::weighted(0.5, prop_oneof![0..120u32, any::<u32>()]),
                option::weighted(0.2, prop_oneof![any::<String>(), "[0-9a-f]{2,80}"]),
            )
                .prop_map(|(customer_id, status, limit, cursor)| {
                    Rpc::List(proto::ListOrdersRequest {
                        customer_id,
                        status,
                        limit,
                        cursor,
                    })
                }),
        ]
        .boxed()
    }

    /// Metadata: mostly a valid operator or customer token, else none, garbage or an
    /// expired one; idempotency keys from a small pool (so replays and reuses
    /// happen) or malformed; random correlation ids, user ids and trace contexts.
    pub(super) fn metadata(
        tokens: Vec<String>,
        expired: String,
    ) -> BoxedStrategy<Vec<(&'static str, String)>> {
        let authorization = prop_oneof![
            16 => select(tokens).prop_map(|t| Some(format!("Bearer {t}"))),
            1 => Just(Some(format!("Bearer {expired}"))),
            1 => Just(None),
            1 => "[ -~]{0,40}".prop_map(Some),
            1 => "Bearer [A-Za-z0-9._-]{0,60}".prop_map(Some),
        ];
        let key = option::weighted(
            0.3,
            prop_oneof![
                4 => select(vec!["fuzz-1", "fuzz-2", "fuzz-3"]).prop_map(str::to_owned),
                1 => "[ -~]{0,260}",
                1 => Just(String::new()),
            ],
        );
        let correlation = option::weighted(0.2, "[ -~]{0,210}");
        let user = option::weighted(0.2, "[ -~]{0,30}");
        let traceparent = option::weighted(
            0.2,
            prop_oneof![
                Just("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
                "[ -~]{0,60}"
            ],
        );
        (authorization, key, correlation, user, traceparent)
            .prop_map(|(authorization, key, correlation, user, traceparent)| {
                [
                    ("authorization", authorization),
                    ("idempotency-key", key),
                    ("x-correlation-id", correlation),
                    ("x-user-id", user),
                    ("traceparent", traceparent),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
            })
            .boxed()
    }

    /// What one fuzz case sends: a message through the generated client, or bytes
    /// (random, or a valid message with a byte changed or cut short) as some rpc's
    /// message.
    #[derive(Debug, Clone)]
    pub(super) enum Input {
        Message(Box<Call>),
        Bytes {
            rpc: &'static str,
            bytes: Vec<u8>,
            metadata: Vec<(&'static str, String)>,
        },
    }

    pub(super) fn input(
        existing: Vec<String>,
        tokens: Vec<String>,
        expired: String,
        valid: Vec<u8>,
    ) -> BoxedStrategy<Input> {
        let len = valid.len();
        let bytes = prop_oneof![
            vec(any::<u8>(), 0..80),
            (0..len, any::<u8>()).prop_map(move |(at, byte)| {
                let mut bytes = valid.clone();
                bytes[at] = byte;
                bytes
            }),
        ];
        let rpcs = vec![
            "CreateOrder",
            "AddItem",
            "RemoveItem",
            "ChangeDeliveryAddress",
            "Pay",
            "Ship",
            "Cancel",
            "GetOrder",
            "GetHistory",
            "ListOrders",
        ];
        prop_oneof![
            9 => (rpc(existing), metadata(tokens.clone(), expired.clone()))
                .prop_map(|(rpc, metadata)| Input::Message(Box::new(Call { rpc, metadata }))),
            1 => (select(rpcs), bytes, metadata(tokens, expired))
                .prop_map(|(rpc, bytes, metadata)| Input::Bytes { rpc, bytes, metadata }),
        ]
        .boxed()
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
#[allow(clippy::print_stdout)]
async fn random_and_mutated_messages_never_fail_internally_and_rejections_write_nothing(
    pool: PgPool,
) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    const CALLS: usize = 400;
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let operator = token(&["operator"], None);
    let alice = token(&["customer"], Some("cust-1"));
    let as_operator = [("authorization", format!("Bearer {operator}"))];
    // Orders in every state, of two customers.
    let mut existing = Vec::new();
    for prep in [
        Prep::Created,
        Prep::Created,
        Prep::OneLine,
        Prep::Paid,
        Prep::Shipped,
    ] {
        existing.push(prepare(&server, prep, &as_operator).await);
    }
    let cancelled = prepare(&server, Prep::Created, &as_operator).await;
    server
        .ack(Call::from(cancel(&cancelled)).bearer(&operator))
        .await;
    existing.push(cancelled);
    let other = Call::from(Rpc::Create(order_for("cust-2"))).bearer(&operator);
    existing.push(server.ack(other).await.order_id);
    let expired = token_for("user-1", &["operator"], None, now_seconds() - 3600);
    let tokens = vec![operator.clone(), operator, alice];

    let strategy = fuzz::input(existing, tokens, expired, order().encode_to_vec());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut by_code = BTreeMap::<String, usize>::new();
    let mut written = 0;
    for case in 0..CALLS {
        let input = strategy
            .new_tree(&mut runner)
            .expect("a case is drawn")
            .current();
        let before = counts(&server.pool).await;
        let outcome = match &input {
            fuzz::Input::Message(call) => {
                // Only a command that is not a replay may write.
                send(&server.client, call)
                    .await
                    .map(|(answer, _)| match answer {
                        Answer::Ack(ack) => !ack.replayed,
                        _ => false,
                    })
            }
            fuzz::Input::Bytes {
                rpc,
                bytes,
                metadata,
            } => {
                let call = Call {
                    rpc: list(None),
                    metadata: metadata.clone(),
                };
                send_raw(&server.channel, rpc, bytes.clone(), &call)
                    .await
                    .map(|()| true)
            }
        };
        let after = counts(&server.pool).await;
        let code = match outcome {
            Ok(may_write) => {
                if !may_write {
                    assert_eq!(
                        after, before,
                        "case {case}: a query or replay wrote: {input:?}"
                    );
                } else if after != before {
                    written += 1;
                }
                Code::Ok
            }
            Err(status) => {
                assert!(
                    !matches!(
                        status.code(),
                        Code::Internal | Code::Unknown | Code::DataLoss
                    ),
                    "case {case}: {status:?} for {input:?}"
                );
                assert_eq!(after, before, "case {case}: {status:?} wrote: {input:?}");
                status.code()
            }
        };
        *by_code.entry(format!("{code:?}")).or_default() += 1;
    }
    println!("gRPC fuzz: {CALLS} calls, {written} of them wrote; by code: {by_code:?}");
    assert_eq!(by_code.values().sum::<usize>(), CALLS);
    // The drawing reaches beyond validation: some calls succeed and some are refused
    // by the order's state or existence.
    for code in ["Ok", "InvalidArgument", "NotFound", "FailedPrecondition"] {
        assert!(by_code.contains_key(code), "{code} in {by_code:?}");
    }
}
