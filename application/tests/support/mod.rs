//! What the use-case tests share: the building blocks (orders, actors, contexts), what a
//! store holds after a command ([`Written`]), and [`RacingStore`], which makes a command
//! lose the race for its order.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use application::{
    Actor, CommandContext, EventEnvelope, EventStore, IdempotencyRecord, IdempotencyRequest,
    MemoryEventStore, OrderCommands, PublicationPolicy, PublishAll, Role, StoreError,
    StoredSnapshot, SystemClock, UnitOfWork,
};
use async_trait::async_trait;
use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountCode, DiscountTable, OrderFactory, OrderId,
    OrderLine, PaymentId, PaymentMethod, PhoneNumber, PlaceOrder, ProductId, Quantity,
    TrackingNumber, UnitPrice,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------

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

pub(crate) fn customer_id(id: &str) -> CustomerId {
    CustomerId::parse(id).unwrap()
}

pub(crate) fn customer(id: &str) -> CustomerInfo {
    CustomerInfo::new(
        customer_id(id),
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

/// `customer`'s order: two units of `sku-1` at 150,000 VND with `WELCOME10`, total 270,000.
pub(crate) fn place_order(id: OrderId, customer_id: &str) -> PlaceOrder {
    PlaceOrder {
        id,
        customer: customer(customer_id),
        currency: Currency::parse("VND").unwrap(),
        items: vec![line("sku-1", 2, 150_000)],
        discount_codes: vec![DiscountCode::parse("WELCOME10").unwrap()],
    }
}

pub(crate) const TOTAL: u64 = 270_000;

pub(crate) fn amount(minor_units: u64) -> Amount {
    Amount::new(minor_units).unwrap()
}

pub(crate) fn payment_id(id: &str) -> PaymentId {
    PaymentId::parse(id).unwrap()
}

pub(crate) fn card() -> PaymentMethod {
    PaymentMethod::parse("card").unwrap()
}

pub(crate) fn tracking() -> (TrackingNumber, Carrier) {
    (
        TrackingNumber::parse("VN123").unwrap(),
        Carrier::parse("VNPost").unwrap(),
    )
}

pub(crate) fn reason() -> CancellationReason {
    CancellationReason::parse("changed my mind").unwrap()
}

pub(crate) fn factory() -> OrderFactory {
    OrderFactory::new(Arc::new(
        DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap(),
    ))
}

pub(crate) fn commands_with(
    store: Arc<dyn EventStore>,
    policy: Arc<dyn PublicationPolicy>,
) -> OrderCommands {
    OrderCommands::new(store, factory(), policy, Arc::new(SystemClock))
}

/// The use cases as the service builds them (every event published), on `store`.
pub(crate) fn commands_on(store: Arc<dyn EventStore>) -> OrderCommands {
    commands_with(store, Arc::new(PublishAll))
}

pub(crate) fn anonymous() -> CommandContext {
    CommandContext::anonymous()
}

/// A signed-in customer acting for `customer_id`.
pub(crate) fn customer_actor(customer_id_: &str) -> CommandContext {
    let actor = Actor::authenticated(
        format!("user-{customer_id_}"),
        &[Role::Customer],
        Some(customer_id(customer_id_)),
    )
    .unwrap();
    CommandContext::new(actor)
}

pub(crate) fn operator() -> CommandContext {
    CommandContext::new(Actor::authenticated("op-1".to_owned(), &[Role::Operator], None).unwrap())
}

/// `ctx` with an `Idempotency-Key` in its actor's scope.
pub(crate) fn with_key(mut ctx: CommandContext, key: &str, fingerprint: &str) -> CommandContext {
    ctx.idempotency = Some(IdempotencyRequest {
        scope: ctx.actor.idempotency_scope().to_owned(),
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
    });
    ctx
}

/// Everything a command could have written, to compare before and after.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Written {
    events: usize,
    outbox: Vec<Uuid>,
    idempotency: usize,
    commits: u64,
}

pub(crate) fn written(store: &MemoryEventStore) -> Written {
    Written {
        events: store.event_count(),
        outbox: store.outbox().iter().map(|e| e.event_id).collect(),
        idempotency: store.idempotency_records().len(),
        commits: store.commits(),
    }
}

pub(crate) fn types(events: &[EventEnvelope]) -> Vec<&'static str> {
    events.iter().map(EventEnvelope::event_type).collect()
}

pub(crate) fn ids(events: &[EventEnvelope]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

/// A store with a placed order of `customer_id`, and the use cases on it.
pub(crate) async fn placed(customer_id: &str) -> (MemoryEventStore, OrderCommands, OrderId) {
    let store = MemoryEventStore::new();
    let commands = commands_on(Arc::new(store.clone()));
    let id = new_order_id();
    commands
        .place(&anonymous(), place_order(id, customer_id))
        .await
        .expect("the order is placed");
    (store, commands, id)
}

// ---------------------------------------------------------------------------------
// Races: the conflict injection
// ---------------------------------------------------------------------------------

/// Another command, run on an order while a command on it is between load and commit.
pub(crate) type Rival =
    Arc<dyn Fn(OrderId) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub(crate) fn rival<F, Fut>(run: F) -> Rival
where
    F: Fn(OrderId) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |id| Box::pin(run(id)))
}

/// The memory store, except that each of its first `races` units of work loses the
/// race: when the command appends to an order, `rival` first runs another command on
/// that order, on the inner store, and commits it. The command loaded the order before,
/// so its commit finds the stream moved on.
pub(crate) struct RacingStore {
    inner: MemoryEventStore,
    races: AtomicU32,
    /// How many units of work were opened: the command's attempts.
    pub(crate) begun: Arc<AtomicU32>,
    rival: Rival,
}

impl RacingStore {
    pub(crate) fn new(inner: &MemoryEventStore, races: u32, rival: Rival) -> Self {
        Self {
            inner: inner.clone(),
            races: AtomicU32::new(races),
            begun: Arc::new(AtomicU32::new(0)),
            rival,
        }
    }
}

#[async_trait]
impl EventStore for RacingStore {
    async fn load(&self, id: OrderId) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.load(id).await
    }

    async fn find_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.find_idempotency(scope, key).await
    }

    async fn begin(&self) -> Result<Box<dyn UnitOfWork>, StoreError> {
        self.begun.fetch_add(1, Ordering::SeqCst);
        let loses = self
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Ok(Box::new(RacingUnitOfWork {
            inner: self.inner.begin().await?,
            rival: loses.then(|| self.rival.clone()),
        }))
    }
}

pub(crate) struct RacingUnitOfWork {
    inner: Box<dyn UnitOfWork>,
    /// Runs (once) at the append when this unit of work is to lose the race.
    rival: Option<Rival>,
}

#[async_trait]
impl UnitOfWork for RacingUnitOfWork {
    async fn append(
        &mut self,
        id: OrderId,
        expected_version: u64,
        events: &[EventEnvelope],
    ) -> Result<(), StoreError> {
        if let Some(rival) = self.rival.take() {
            rival(id).await;
        }
        self.inner.append(id, expected_version, events).await
    }

    async fn enqueue(&mut self, events: &[EventEnvelope]) -> Result<(), StoreError> {
        self.inner.enqueue(events).await
    }

    async fn remember(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.inner.remember(record).await
    }

    async fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), StoreError> {
        self.inner.save_snapshot(snapshot).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit().await
    }
}

/// A rival that changes the delivery address (valid until shipped).
pub(crate) fn address_changer(store: &MemoryEventStore) -> Rival {
    let commands = commands_on(Arc::new(store.clone()));
    rival(move |id| {
        let commands = commands.clone();
        async move {
            commands
                .change_delivery_address(&anonymous(), id, address("2 Hàng Bài"))
                .await
                .expect("the rival commits");
        }
    })
}
