//! The building blocks of the PostgreSQL adapter's tests: orders, contexts, the use
//! cases as the service builds them, counts of what was written, raw rows, and
//! [`RendezvousStore`], which makes concurrent readers decide on the same state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use application::{
    CommandContext, EventEnvelope, EventMetadata, EventStore, IdempotencyRecord,
    IdempotencyRequest, OrderCommands, OrderQueries, PublishAll, StoreError, SystemClock,
    UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    Address, AddressLine, Amount, City, CountryCode, Currency, CustomerId, CustomerInfo,
    CustomerName, DiscountCode, DiscountTable, OrderFactory, OrderId, OrderLine, PaymentId,
    PaymentMethod, PhoneNumber, PlaceOrder, ProductId, Quantity, UnitPrice,
};
use order_postgres::PgEventStore;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use tokio::sync::Barrier;
use uuid::Uuid;

pub(crate) const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

pub(crate) fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

pub(crate) fn address(line1: &str) -> Address {
    Address::new(
        AddressLine::parse(line1).unwrap(),
        None,
        City::parse("Hanoi").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    )
}

pub(crate) fn customer() -> CustomerInfo {
    CustomerInfo::new(
        CustomerId::parse("customer-1").unwrap(),
        CustomerName::parse("Nguyễn Văn A").unwrap(),
        PhoneNumber::parse("+84 912 345 678").unwrap(),
        address("1 Tràng Tiền"),
    )
}

pub(crate) fn line(product: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(
        ProductId::parse(product).unwrap(),
        Quantity::new(quantity).unwrap(),
        UnitPrice::new(unit_price).unwrap(),
    )
}

/// Two units of `sku-1` at 150,000 VND with `WELCOME10`: total 270,000.
pub(crate) fn place_order(id: OrderId) -> PlaceOrder {
    PlaceOrder {
        id,
        customer: customer(),
        currency: Currency::parse("VND").unwrap(),
        items: vec![line("sku-1", 2, 150_000)],
        discount_codes: vec![DiscountCode::parse("WELCOME10").unwrap()],
    }
}

pub(crate) fn amount(minor_units: u64) -> Amount {
    Amount::new(minor_units).unwrap()
}

pub(crate) fn card() -> PaymentMethod {
    PaymentMethod::parse("card").unwrap()
}

pub(crate) fn factory() -> OrderFactory {
    OrderFactory::new(Arc::new(
        DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap(),
    ))
}

pub(crate) fn pg_store(pool: &PgPool) -> Arc<PgEventStore> {
    Arc::new(PgEventStore::new(pool.clone()))
}

/// The use cases as the service builds them.
pub(crate) fn commands_on(store: Arc<dyn EventStore>) -> OrderCommands {
    OrderCommands::new(
        store,
        factory(),
        Arc::new(PublishAll),
        Arc::new(SystemClock),
    )
}

pub(crate) fn commands(pool: &PgPool) -> OrderCommands {
    commands_on(pg_store(pool))
}

pub(crate) fn queries(pool: &PgPool) -> OrderQueries {
    OrderQueries::new(pg_store(pool))
}

pub(crate) fn ctx() -> CommandContext {
    CommandContext::anonymous()
}

pub(crate) fn ctx_with_key(scope: &str, key: &str, fingerprint: &str) -> CommandContext {
    CommandContext {
        idempotency: Some(IdempotencyRequest {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
        }),
        ..CommandContext::anonymous()
    }
}

pub(crate) fn ctx_expecting(version: u64) -> CommandContext {
    CommandContext {
        expected_version: Some(version),
        ..CommandContext::anonymous()
    }
}

/// An instant with microseconds, as PostgreSQL keeps them.
pub(crate) fn at(second: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, second).unwrap()
        + chrono::Duration::microseconds(micros)
}

/// The envelopes of an order that was placed, took an item and was paid (versions
/// 1 to 3), with user, correlation and trace context; fresh event ids on every call.
pub(crate) fn paid_order_history(id: OrderId) -> Vec<EventEnvelope> {
    let mut order = factory().place(place_order(id), at(0, 123_456)).unwrap();
    order
        .add_item(line("sku-2", 1, 50_000), at(1, 654_321))
        .unwrap();
    order
        .pay(
            PaymentId::parse("pay-1").unwrap(),
            amount(315_000),
            PaymentMethod::parse("bank_transfer").unwrap(),
            at(2, 1),
        )
        .unwrap();
    let metadata = EventMetadata {
        user_id: Some("user-456".to_owned()),
        correlation_id: "txn-xyz".to_owned(),
        causation_id: Uuid::now_v7().to_string(),
    };
    order
        .take_events()
        .into_iter()
        .map(|recorded| {
            EventEnvelope::new(id, recorded, metadata.clone(), Some(TRACEPARENT.to_owned()))
        })
        .collect()
}

pub(crate) async fn append_and_commit(
    store: &PgEventStore,
    id: OrderId,
    expected_version: u64,
    events: &[EventEnvelope],
) -> Result<(), StoreError> {
    let uow = store.begin().await?;
    append_enqueue_commit(uow, id, expected_version, events).await
}

/// What a command's unit of work does: append, enqueue, commit.
pub(crate) async fn append_enqueue_commit(
    mut uow: Box<dyn UnitOfWork>,
    id: OrderId,
    expected_version: u64,
    events: &[EventEnvelope],
) -> Result<(), StoreError> {
    uow.append(id, expected_version, events).await?;
    uow.enqueue(events).await?;
    uow.commit().await
}

/// How many rows each write-side table holds: "nothing written" means this is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) events: i64,
    pub(crate) outbox: i64,
    pub(crate) idempotency_keys: i64,
}

pub(crate) async fn written(pool: &PgPool) -> Written {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM events) AS events, \
                (SELECT count(*) FROM outbox) AS outbox, \
                (SELECT count(*) FROM idempotency_keys) AS idempotency_keys",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    Written {
        events: row.get("events"),
        outbox: row.get("outbox"),
        idempotency_keys: row.get("idempotency_keys"),
    }
}

pub(crate) const NOTHING: Written = Written {
    events: 0,
    outbox: 0,
    idempotency_keys: 0,
};

pub(crate) async fn stream_versions(pool: &PgPool, id: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

pub(crate) async fn outbox_versions(pool: &PgPool, id: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM outbox WHERE aggregate_id = $1 ORDER BY id")
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Writes an event row behind the store's back, as a damaged store or a newer
/// release would have left it.
pub(crate) async fn insert_raw_event(
    pool: &PgPool,
    id: OrderId,
    version: i64,
    event_type: &str,
    schema_version: i32,
    payload: Value,
) {
    sqlx::query(
        "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, \
                             schema_version, payload, metadata, occurred_at) \
         VALUES ($1, $2, 'Order', $3, $4, $5, $6, $7, now())",
    )
    .bind(Uuid::now_v7())
    .bind(id.as_uuid())
    .bind(version)
    .bind(event_type)
    .bind(schema_version)
    .bind(payload)
    .bind(json!({"userId": null, "correlationId": "c-1", "causationId": "c-1"}))
    .execute(pool)
    .await
    .unwrap();
}

/// The first `parties` arrivals wait for each other; later ones pass straight through.
#[derive(Debug)]
pub(crate) struct Gate {
    parties: usize,
    arrivals: AtomicUsize,
    barrier: Barrier,
}

impl Gate {
    pub(crate) fn new(parties: usize) -> Self {
        Self {
            parties,
            arrivals: AtomicUsize::new(0),
            barrier: Barrier::new(parties),
        }
    }

    pub(crate) async fn pass(&self) {
        if self.arrivals.fetch_add(1, Ordering::SeqCst) < self.parties {
            self.barrier.wait().await;
        }
    }
}

/// The PostgreSQL store, except that the first concurrent reads (`load` or
/// `find_idempotency`) return only once all of them have read: every racer then
/// decides on the same state, so the race is lost by all but one every time.
#[derive(Debug)]
pub(crate) struct RendezvousStore {
    pub(crate) inner: PgEventStore,
    pub(crate) load: Option<Gate>,
    pub(crate) find_idempotency: Option<Gate>,
}

#[async_trait]
impl EventStore for RendezvousStore {
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError> {
        let loaded = self.inner.load(id).await;
        if let Some(gate) = &self.load {
            gate.pass().await;
        }
        loaded
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let found = self.inner.find_idempotency(scope, key).await;
        if let Some(gate) = &self.find_idempotency {
            gate.pass().await;
        }
        found
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        self.inner.begin().await
    }
}
