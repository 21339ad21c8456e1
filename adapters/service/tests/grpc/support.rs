//! The shared harness: the server, the client, calls and answers, and the messages.

use std::time::Duration;

use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_grpc::proto::{self, order_service_client::OrderServiceClient};
use order_service::{build_grpc, run_grpc, ServiceSettings};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;
use uuid::Uuid;

const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

type Client = OrderServiceClient<Channel>;

/// One request message of any rpc.
#[derive(Debug, Clone)]
pub(crate) enum Rpc {
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

/// Every rpc of `orders.v1.OrderService`, in the proto's order.
pub(crate) const RPC_NAMES: [&str; 10] = [
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

impl Rpc {
    pub(crate) fn name(&self) -> &'static str {
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
pub(crate) enum Answer {
    Ack(proto::CommandAck),
    Order(Box<proto::Order>),
    History(proto::History),
    List(proto::ListOrdersResponse),
}

impl Answer {
    pub(crate) fn ack(self) -> proto::CommandAck {
        match self {
            Self::Ack(ack) => ack,
            other => panic!("not an acknowledgment: {other:?}"),
        }
    }
}

/// One call: a message and its metadata (ASCII values).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) rpc: Rpc,
    pub(crate) metadata: Vec<(&'static str, String)>,
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
    pub(crate) fn meta(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    pub(crate) fn bearer(self, token: &str) -> Self {
        self.meta("authorization", format!("Bearer {token}"))
    }

    pub(crate) fn key(self, key: &str) -> Self {
        self.meta("idempotency-key", key)
    }

    pub(crate) fn describe(&self) -> String {
        format!("{} {:?} {:?}", self.rpc.name(), self.rpc, self.metadata)
    }

    pub(crate) fn request<M>(&self, message: M) -> tonic::Request<M> {
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
pub(crate) async fn send(client: &Client, call: &Call) -> Result<(Answer, MetadataMap), Status> {
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
pub(crate) async fn counts(pool: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox), \
                (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(pool)
    .await
    .expect("the tables can be counted")
}

/// The `global_position` of every stored event of order `id`, in version order.
pub(crate) async fn stored_positions(pool: &PgPool, id: &str) -> Vec<i64> {
    let id = Uuid::parse_str(id).expect("an order id is a UUID");
    sqlx::query_scalar("SELECT global_position FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("the positions can be read")
}

/// The fields a status's `google.rpc.BadRequest` names.
pub(crate) fn violations(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// A gRPC server on 127.0.0.1:0, a client connected to it, and its database.
pub(crate) struct Server {
    pub(crate) client: Client,
    pub(crate) channel: Channel,
    pub(crate) pool: PgPool,
    /// Dropping it stops the server.
    _stop: oneshot::Sender<()>,
}

impl Server {
    pub(crate) async fn start(pool: PgPool) -> Self {
        Self::with_settings(pool, &ServiceSettings::default()).await
    }

    pub(crate) async fn with_settings(pool: PgPool, settings: &ServiceSettings) -> Self {
        let api = build_grpc(pool.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(run_grpc(api, listener, async move {
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

    pub(crate) async fn send(&self, call: impl Into<Call>) -> Result<Answer, Status> {
        send(&self.client, &call.into())
            .await
            .map(|(answer, _)| answer)
    }

    /// Sends `call` and expects it to succeed.
    pub(crate) async fn ok(&self, call: impl Into<Call>) -> Answer {
        let call = call.into();
        let description = call.describe();
        self.send(call)
            .await
            .unwrap_or_else(|status| panic!("{description} answered {status:?}"))
    }

    pub(crate) async fn ack(&self, call: impl Into<Call>) -> proto::CommandAck {
        self.ok(call).await.ack()
    }

    /// Sends `call`, expects `code`, and checks that nothing at all was written.
    pub(crate) async fn assert_rejected_without_writes(
        &self,
        call: impl Into<Call>,
        code: Code,
    ) -> Status {
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
    pub(crate) async fn assert_invalid(&self, call: impl Into<Call>, field: &str) -> Status {
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
    pub(crate) async fn place(&self) -> String {
        self.ack(Rpc::Create(order())).await.order_id
    }

    pub(crate) async fn order(&self, id: &str) -> proto::Order {
        match self.ok(get(id)).await {
            Answer::Order(order) => *order,
            other => panic!("not an order: {other:?}"),
        }
    }

    pub(crate) async fn history(&self, id: &str) -> Vec<proto::Event> {
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
pub(crate) const TOTAL: u64 = 225_000;

pub(crate) fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

pub(crate) fn address() -> proto::Address {
    proto::Address {
        line1: some("1 Lê Lợi"),
        line2: None,
        city: some("Hồ Chí Minh"),
        postal_code: some("700000"),
        country: some("VN"),
    }
}

pub(crate) fn new_address() -> proto::Address {
    proto::Address {
        line1: some("2 Tràng Tiền"),
        line2: some("Floor 3"),
        city: some("Hà Nội"),
        postal_code: None,
        country: some("VN"),
    }
}

pub(crate) fn customer(customer_id: &str) -> proto::Customer {
    proto::Customer {
        customer_id: some(customer_id),
        name: some("Nguyễn Văn A"),
        phone: some("+84 90 123 4567"),
        address: Some(address()),
    }
}

pub(crate) fn line(product: &str, quantity: u64, unit_price: u64) -> proto::Item {
    proto::Item {
        product_id: some(product),
        quantity: Some(quantity),
        unit_price: Some(unit_price),
    }
}

/// The standard order of customer `cust-1`.
pub(crate) fn order() -> proto::CreateOrderRequest {
    proto::CreateOrderRequest {
        order_id: None,
        customer: Some(customer("cust-1")),
        currency: some("VND"),
        items: vec![line("sku-1", 2, 100_000), line("sku-2", 1, 50_000)],
        discount_codes: vec!["WELCOME10".to_owned()],
    }
}

pub(crate) fn order_for(customer_id: &str) -> proto::CreateOrderRequest {
    proto::CreateOrderRequest {
        customer: Some(customer(customer_id)),
        ..order()
    }
}

pub(crate) fn add_item(id: &str, product: &str, quantity: u64, unit_price: u64) -> Rpc {
    Rpc::AddItem(proto::AddItemRequest {
        order_id: id.to_owned(),
        expected_version: None,
        product_id: some(product),
        quantity: Some(quantity),
        unit_price: Some(unit_price),
    })
}

pub(crate) fn remove_item(id: &str, product: &str) -> Rpc {
    Rpc::RemoveItem(proto::RemoveItemRequest {
        order_id: id.to_owned(),
        expected_version: None,
        product_id: product.to_owned(),
    })
}

pub(crate) fn change_address(id: &str) -> Rpc {
    Rpc::ChangeAddress(proto::ChangeDeliveryAddressRequest {
        order_id: id.to_owned(),
        expected_version: None,
        address: Some(new_address()),
    })
}

pub(crate) fn pay(id: &str, amount: u64) -> Rpc {
    Rpc::Pay(proto::PayRequest {
        order_id: id.to_owned(),
        expected_version: None,
        payment_id: some("pay-1"),
        amount: Some(amount),
        method: proto::PaymentMethod::BankTransfer.into(),
    })
}

pub(crate) fn ship(id: &str) -> Rpc {
    Rpc::Ship(proto::ShipRequest {
        order_id: id.to_owned(),
        expected_version: None,
        tracking_number: some("TRK-1"),
        carrier: some("VNPost"),
    })
}

pub(crate) fn cancel(id: &str) -> Rpc {
    Rpc::Cancel(proto::CancelRequest {
        order_id: id.to_owned(),
        expected_version: None,
        reason: some("changed my mind"),
    })
}

pub(crate) fn get(id: &str) -> Rpc {
    Rpc::Get(proto::GetOrderRequest {
        order_id: id.to_owned(),
        as_of: None,
    })
}

pub(crate) fn history(id: &str) -> Rpc {
    Rpc::History(proto::GetHistoryRequest {
        order_id: id.to_owned(),
    })
}

pub(crate) fn list(customer_id: Option<&str>) -> Rpc {
    Rpc::List(proto::ListOrdersRequest {
        customer_id: customer_id.map(str::to_owned),
        status: 0,
        limit: None,
        cursor: None,
    })
}

/// `rpc` with `expected_version` set (commands on an existing order only).
pub(crate) fn expecting(rpc: Rpc, version: u64) -> Rpc {
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
pub(crate) fn commands_on(id: &str) -> Vec<Rpc> {
    vec![
        add_item(id, "sku-9", 1, 10),
        remove_item(id, "sku-1"),
        change_address(id),
        pay(id, TOTAL),
        ship(id),
        cancel(id),
    ]
}

pub(crate) fn token(roles: &[&str], customer_id: Option<&str>) -> String {
    token_for(
        "user-1",
        roles,
        customer_id,
        expiry_in(Duration::from_secs(600)),
    )
}

pub(crate) fn token_for(sub: &str, roles: &[&str], customer_id: Option<&str>, exp: u64) -> String {
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

pub(crate) fn jwt_settings() -> ServiceSettings {
    ServiceSettings {
        auth: Authenticator::jwt(SECRET).expect("a long enough secret"),
        ..ServiceSettings::default()
    }
}

/// The state an order is put in before a parity case runs on it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Prep {
    /// No order: the id is unknown.
    Unknown,
    Created,
    /// Created, then `sku-2` removed: one line left.
    OneLine,
    Paid,
    Shipped,
}

pub(crate) async fn prepare(
    server: &Server,
    prep: Prep,
    auth: &[(&'static str, String)],
) -> String {
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
