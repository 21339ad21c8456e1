//! The PostgreSQL adapter against a real database: the event store, the outbox and
//! the idempotency keys, used directly through the ports and through the use cases
//! the way the service builds them.
//!
//! Every test gets a throwaway database with the migrations applied
//! (`#[sqlx::test]`); run with
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p adapters --test postgres_store`.
//!
//! Concurrency is real (several connections, several transactions). Where a test
//! needs a race to happen every time, [`RendezvousStore`] makes the first readers wait
//! for each other before any of them writes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use application::envelope::format_time;
use application::{
    Actor, CommandAck, CommandContext, CommandError, CommandOutcome, EventEnvelope, EventMetadata,
    EventStore, IdempotencyRecord, IdempotencyRequest, OrderCommands, OrderQueries, PublishAll,
    QueryError, StoreError, SystemClock, UnitOfWork,
};
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountCode, DiscountTable, OrderError, OrderFactory,
    OrderId, OrderLine, OrderStatus, PaymentId, PaymentMethod, PhoneNumber, PlaceOrder, ProductId,
    Quantity, TrackingNumber, UnitPrice,
};
use order_postgres::{connect_lazy, purge_idempotency_keys, PgEventStore};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use tokio::sync::Barrier;
use uuid::Uuid;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// ---------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------

fn new_order_id() -> OrderId {
    OrderId::from_uuid(Uuid::now_v7())
}

fn address(line1: &str) -> Address {
    Address::new(
        AddressLine::parse(line1).unwrap(),
        None,
        City::parse("Hanoi").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    )
}

fn customer() -> CustomerInfo {
    CustomerInfo::new(
        CustomerId::parse("customer-1").unwrap(),
        CustomerName::parse("Nguyễn Văn A").unwrap(),
        PhoneNumber::parse("+84 912 345 678").unwrap(),
        address("1 Tràng Tiền"),
    )
}

fn line(product: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(
        ProductId::parse(product).unwrap(),
        Quantity::new(quantity).unwrap(),
        UnitPrice::new(unit_price).unwrap(),
    )
}

/// Two units of `sku-1` at 150,000 VND with `WELCOME10`: total 270,000.
fn place_order(id: OrderId) -> PlaceOrder {
    PlaceOrder {
        id,
        customer: customer(),
        currency: Currency::parse("VND").unwrap(),
        items: vec![line("sku-1", 2, 150_000)],
        discount_codes: vec![DiscountCode::parse("WELCOME10").unwrap()],
    }
}

fn amount(minor_units: u64) -> Amount {
    Amount::new(minor_units).unwrap()
}

fn card() -> PaymentMethod {
    PaymentMethod::parse("card").unwrap()
}

fn factory() -> OrderFactory {
    OrderFactory::new(Arc::new(
        DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap(),
    ))
}

fn pg_store(pool: &PgPool) -> Arc<PgEventStore> {
    Arc::new(PgEventStore::new(pool.clone()))
}

/// The use cases as the service builds them.
fn commands_on(store: Arc<dyn EventStore>) -> OrderCommands {
    OrderCommands::new(
        store,
        factory(),
        Arc::new(PublishAll),
        Arc::new(SystemClock),
    )
}

fn commands(pool: &PgPool) -> OrderCommands {
    commands_on(pg_store(pool))
}

fn queries(pool: &PgPool) -> OrderQueries {
    OrderQueries::new(pg_store(pool))
}

fn ctx() -> CommandContext {
    CommandContext::anonymous()
}

fn ctx_with_key(scope: &str, key: &str, fingerprint: &str) -> CommandContext {
    CommandContext {
        idempotency: Some(IdempotencyRequest {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
        }),
        ..CommandContext::anonymous()
    }
}

fn ctx_expecting(version: u64) -> CommandContext {
    CommandContext {
        expected_version: Some(version),
        ..CommandContext::anonymous()
    }
}

/// An instant with microseconds, as PostgreSQL keeps them.
fn at(second: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, second).unwrap()
        + chrono::Duration::microseconds(micros)
}

/// The envelopes of an order that was placed, took an item and was paid (versions
/// 1 to 3), with user, correlation and trace context; fresh event ids on every call.
fn paid_order_history(id: OrderId) -> Vec<EventEnvelope> {
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

async fn append_and_commit(
    store: &PgEventStore,
    id: OrderId,
    expected_version: u64,
    events: &[EventEnvelope],
) -> Result<(), StoreError> {
    let uow = store.begin().await?;
    append_enqueue_commit(uow, id, expected_version, events).await
}

/// What a command's unit of work does: append, enqueue, commit.
async fn append_enqueue_commit(
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
struct Written {
    events: i64,
    outbox: i64,
    idempotency_keys: i64,
}

async fn written(pool: &PgPool) -> Written {
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

const NOTHING: Written = Written {
    events: 0,
    outbox: 0,
    idempotency_keys: 0,
};

async fn stream_versions(pool: &PgPool, id: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn outbox_versions(pool: &PgPool, id: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM outbox WHERE aggregate_id = $1 ORDER BY id")
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Writes an event row behind the store's back, as a damaged store or a newer
/// release would have left it.
async fn insert_raw_event(
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
struct Gate {
    parties: usize,
    arrivals: AtomicUsize,
    barrier: Barrier,
}

impl Gate {
    fn new(parties: usize) -> Self {
        Self {
            parties,
            arrivals: AtomicUsize::new(0),
            barrier: Barrier::new(parties),
        }
    }

    async fn pass(&self) {
        if self.arrivals.fetch_add(1, Ordering::SeqCst) < self.parties {
            self.barrier.wait().await;
        }
    }
}

/// The PostgreSQL store, except that the first concurrent reads (`load` or
/// `find_idempotency`) return only once all of them have read: every racer then
/// decides on the same state, so the race is lost by all but one every time.
#[derive(Debug)]
struct RendezvousStore {
    inner: PgEventStore,
    load: Option<Gate>,
    find_idempotency: Option<Gate>,
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

// ---------------------------------------------------------------------------------
// Event store: append and load
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appended_envelopes_load_back_equal_in_version_order_with_recorded_at(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let other = new_order_id();
    let events = paid_order_history(id);
    let before = Utc::now();

    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.commit().await.unwrap();
    append_and_commit(&store, other, 0, &paid_order_history(other)[..1])
        .await
        .unwrap();

    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.len(), 3);
    assert_eq!(
        loaded.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (stored, original) in loaded.iter().zip(&events) {
        let recorded_at = stored.recorded_at.expect("recorded_at is set on load");
        assert!(recorded_at >= before - chrono::Duration::seconds(5));
        assert!(recorded_at <= Utc::now());
        // event_id, aggregate_id, version, occurred_at (to the microsecond), event,
        // metadata and traceparent all come back as they went in.
        let without_recorded_at = EventEnvelope {
            recorded_at: None,
            ..stored.clone()
        };
        assert_eq!(&without_recorded_at, original);
    }
    assert_eq!(loaded[0].occurred_at, at(0, 123_456));
    assert_eq!(loaded[2].metadata.user_id.as_deref(), Some("user-456"));
    assert_eq!(loaded[2].traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(store.load(other).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn loading_an_order_that_does_not_exist_returns_no_events(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    assert!(store.load(new_order_id()).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------
// Event store: expected versions
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appending_at_a_stale_expected_version_is_a_conflict_and_writes_nothing(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let first = paid_order_history(id);
    append_and_commit(&store, id, 0, &first[..1]).await.unwrap();
    let before = written(&pool).await;

    // Another writer's versions 1 and 2, appended as if the stream were still empty.
    let rival = paid_order_history(id);
    let error = append_and_commit(&store, id, 0, &rival[..2])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");

    assert_eq!(written(&pool).await, before);
    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].event_id, first[0].event_id);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appending_ahead_of_the_stream_is_a_conflict_and_leaves_no_gap(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let events = paid_order_history(id);
    append_and_commit(&store, id, 0, &events[..1])
        .await
        .unwrap();
    let before = written(&pool).await;

    // Version 3 after version 1: the stream is not at the expected version 2.
    let error = append_and_commit(&store, id, 2, &events[2..])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");
    // An order that does not exist is at version 0.
    let unknown = new_order_id();
    let error = append_and_commit(&store, unknown, 1, &paid_order_history(unknown)[1..2])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");

    assert_eq!(written(&pool).await, before);
    assert_eq!(stream_versions(&pool, id).await, [1]);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_units_of_work_appending_the_same_next_version_let_exactly_one_commit(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let a = paid_order_history(id);
    let b = paid_order_history(id);
    append_and_commit(&store, id, 0, &a[..1]).await.unwrap();

    let uow_a = store.begin().await.unwrap();
    let uow_b = store.begin().await.unwrap();
    let (result_a, result_b) = tokio::join!(
        append_enqueue_commit(uow_a, id, 1, &a[1..2]),
        append_enqueue_commit(uow_b, id, 1, &b[1..2]),
    );

    let (winner, loser) = match (&result_a, &result_b) {
        (Ok(()), Err(StoreError::VersionConflict)) => (&a[1], &b[1]),
        (Err(StoreError::VersionConflict), Ok(())) => (&b[1], &a[1]),
        other => panic!("expected exactly one commit and one conflict, got {other:?}"),
    };
    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(loaded[1].event_id, winner.event_id);
    let outboxed: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(outboxed, [a[0].event_id, winner.event_id]);
    assert!(!outboxed.contains(&loser.event_id));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn twenty_concurrent_add_items_all_succeed_through_retries_with_no_gap(pool: PgPool) {
    let id = new_order_id();
    // A command loses a race only to another command's commit, so with as many
    // attempts as racers every one of them gets through.
    let commands = commands(&pool).with_max_attempts(20);
    commands.place(&ctx(), place_order(id)).await.unwrap();

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut acked: Vec<u64> = results
        .into_iter()
        .map(|result| {
            let outcome = result.unwrap();
            assert!(!outcome.replayed);
            assert_eq!(outcome.ack.order_id, id);
            outcome.ack.version
        })
        .collect();
    acked.sort_unstable();
    assert_eq!(acked, (2..=21).collect::<Vec<u64>>());
    assert_eq!(
        stream_versions(&pool, id).await,
        (1..=21).collect::<Vec<i64>>()
    );
    assert_eq!(
        outbox_versions(&pool, id).await,
        (1..=21).collect::<Vec<i64>>()
    );
    // No lost update: every unit added is in the line.
    let order = queries(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.lines()[0].quantity().units(), 22);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn twenty_add_items_racing_on_one_version_with_one_attempt_let_one_win_and_answer_conflict_to_the_rest(
    pool: PgPool,
) {
    let id = new_order_id();
    commands(&pool)
        .place(&ctx(), place_order(id))
        .await
        .unwrap();
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: Some(Gate::new(20)),
        find_idempotency: None,
    });
    let commands = commands_on(store).with_max_attempts(1);

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut wins = Vec::new();
    for result in results {
        match result {
            Ok(outcome) => wins.push(outcome.ack.version),
            Err(CommandError::Conflict { attempts: 1 }) => {}
            Err(other) => panic!("expected success or Conflict, got {other:?}"),
        }
    }
    assert_eq!(wins, [2]);
    assert_eq!(stream_versions(&pool, id).await, [1, 2]);
    assert_eq!(outbox_versions(&pool, id).await, [1, 2]);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn concurrent_add_items_without_retries_keep_the_stream_gapless_and_acks_unique(
    pool: PgPool,
) {
    let id = new_order_id();
    let commands = commands(&pool).with_max_attempts(1);
    commands.place(&ctx(), place_order(id)).await.unwrap();

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut acked = Vec::new();
    for result in results {
        match result {
            Ok(outcome) => acked.push(outcome.ack.version),
            Err(CommandError::Conflict { attempts: 1 }) => {}
            Err(other) => panic!("expected success or Conflict, got {other:?}"),
        }
    }
    let unique: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "two successes acked one version");
    acked.sort_unstable();
    let n = 1 + acked.len() as u64;
    assert_eq!(acked, (2..=n).collect::<Vec<u64>>());
    let expected: Vec<i64> = (1..=n as i64).collect();
    assert_eq!(stream_versions(&pool, id).await, expected);
    assert_eq!(outbox_versions(&pool, id).await, expected);
}

// ---------------------------------------------------------------------------------
// Outbox: written if and only if the transaction commits
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_dropped_without_commit_leaves_no_event_and_no_outbox_row(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let events = paid_order_history(id);

    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.enqueue(&events).await.unwrap();
    drop(uow);

    assert_eq!(written(&pool).await, NOTHING);
    assert!(store.load(id).await.unwrap().is_empty());
    // The rollback released the stream: the same versions can be appended now.
    append_and_commit(&store, id, 0, &events).await.unwrap();
    assert_eq!(store.load(id).await.unwrap().len(), 3);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rejected_command_writes_no_event_and_no_outbox_row(pool: PgPool) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let before = written(&pool).await;

    let below_total = commands
        .pay(
            &ctx(),
            id,
            PaymentId::parse("pay-1").unwrap(),
            amount(269_999),
            card(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            below_total,
            CommandError::Rejected(OrderError::PaymentBelowTotal { .. })
        ),
        "{below_total:?}"
    );
    let not_paid = commands
        .ship(
            &ctx(),
            id,
            TrackingNumber::parse("VN123").unwrap(),
            Carrier::parse("VNPost").unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            not_paid,
            CommandError::Rejected(OrderError::InvalidState { .. })
        ),
        "{not_paid:?}"
    );
    let unknown = new_order_id();
    let missing = commands
        .add_item(
            &ctx_with_key("", "key-1", "fp-1"),
            unknown,
            line("sku-2", 1, 1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, CommandError::NotFound(o) if o == unknown),
        "{missing:?}"
    );

    assert_eq!(written(&pool).await, before);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn each_committed_event_has_one_outbox_row_holding_its_envelope_in_version_order(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let traced = CommandContext {
        traceparent: Some(TRACEPARENT.to_owned()),
        actor: Actor::unrestricted(Some("user-456".to_owned())),
        ..CommandContext::anonymous()
    };
    let a = new_order_id();
    let b = new_order_id();
    // Two orders, their commands interleaved.
    commands.place(&traced, place_order(a)).await.unwrap();
    commands.place(&traced, place_order(b)).await.unwrap();
    commands
        .add_item(&traced, a, line("sku-2", 3, 10_000))
        .await
        .unwrap();
    commands
        .cancel(
            &traced,
            b,
            CancellationReason::parse("changed mind").unwrap(),
        )
        .await
        .unwrap();
    commands
        .change_delivery_address(&traced, a, address("2 Hàng Bài"))
        .await
        .unwrap();
    commands
        .pay(
            &traced,
            a,
            PaymentId::parse("pay-1").unwrap(),
            amount(297_000),
            card(),
        )
        .await
        .unwrap();
    commands
        .ship(
            &traced,
            a,
            TrackingNumber::parse("VN123").unwrap(),
            Carrier::parse("VNPost").unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(outbox_versions(&pool, a).await, [1, 2, 3, 4, 5]);
    assert_eq!(outbox_versions(&pool, b).await, [1, 2]);
    assert_eq!(written(&pool).await.outbox, 7);

    let store = PgEventStore::new(pool.clone());
    for id in [a, b] {
        let loaded = store.load(id).await.unwrap();
        let events = sqlx::query(
            "SELECT event_id, version, event_type, schema_version, payload, metadata, \
                    occurred_at, traceparent \
             FROM events WHERE stream_id = $1 ORDER BY version",
        )
        .bind(id.as_uuid())
        .fetch_all(&pool)
        .await
        .unwrap();
        let outbox = sqlx::query(
            "SELECT event_id, aggregate_id, version, event_type, message, occurred_at, traceparent \
             FROM outbox WHERE aggregate_id = $1 ORDER BY id",
        )
        .bind(id.as_uuid())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(outbox.len(), events.len());
        assert_eq!(loaded.len(), events.len());

        for ((row, event), envelope) in outbox.iter().zip(&events).zip(&loaded) {
            let event_id: Uuid = event.get("event_id");
            let version: i64 = event.get("version");
            let event_type: String = event.get("event_type");
            let occurred_at: DateTime<Utc> = event.get("occurred_at");
            assert_eq!(row.get::<Uuid, _>("event_id"), event_id);
            assert_eq!(row.get::<Uuid, _>("aggregate_id"), id.as_uuid());
            assert_eq!(row.get::<i64, _>("version"), version);
            assert_eq!(row.get::<String, _>("event_type"), event_type);
            assert_eq!(row.get::<DateTime<Utc>, _>("occurred_at"), occurred_at);
            assert_eq!(
                row.get::<Option<String>, _>("traceparent").as_deref(),
                Some(TRACEPARENT)
            );

            let message: Value = serde_json::from_str(row.get("message")).unwrap();
            assert_eq!(message["eventId"], json!(event_id.to_string()));
            assert_eq!(message["aggregateType"], json!("Order"));
            assert_eq!(message["aggregateId"], json!(id.to_string()));
            assert_eq!(message["version"], json!(version));
            assert_eq!(message["eventType"], json!(event_type));
            assert_eq!(
                message["schemaVersion"],
                json!(event.get::<i32, _>("schema_version"))
            );
            assert_eq!(message["occurredAt"], json!(format_time(occurred_at)));
            assert_eq!(message["payload"], event.get::<Value, _>("payload"));
            assert_eq!(message["metadata"], event.get::<Value, _>("metadata"));
            assert_eq!(message["metadata"]["userId"], json!("user-456"));
            assert!(message.get("recordedAt").is_none());
            // The whole message is the envelope's wire form.
            assert_eq!(message, envelope.to_wire());
        }
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_failing_half_way_leaves_neither_events_nor_outbox_rows(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let earlier = new_order_id();
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, version) \
         VALUES ('', 'key-1', 'fp-1', $1, 1)",
    )
    .bind(earlier.as_uuid())
    .execute(&pool)
    .await
    .unwrap();
    let before = written(&pool).await;

    let id = new_order_id();
    let events = paid_order_history(id);
    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.enqueue(&events).await.unwrap();
    uow.remember(&IdempotencyRecord {
        scope: String::new(),
        key: "key-1".to_owned(),
        fingerprint: "fp-2".to_owned(),
        order_id: id,
        version: 3,
    })
    .await
    .unwrap();
    // The unit of work writes at commit, in one statement: the taken key refuses it all.
    let error = uow.commit().await.unwrap_err();
    assert!(
        matches!(error, StoreError::IdempotencyKeyTaken),
        "{error:?}"
    );

    assert_eq!(written(&pool).await, before);
    assert!(store.load(id).await.unwrap().is_empty());
    let kept = store.find_idempotency("", "key-1").await.unwrap().unwrap();
    assert_eq!(kept.order_id, earlier);
    assert_eq!(kept.fingerprint, "fp-1");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_committed_after_a_failed_write_refuses_and_writes_nothing(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    append_and_commit(&store, id, 0, &paid_order_history(id)[..1])
        .await
        .unwrap();
    let before = written(&pool).await;

    // A unit of work appends to one stream: a second append (stale or ahead, on
    // another order) is refused, after a good append and its outbox rows.
    for (expected_version, range) in [(0, 0..1), (2, 2..3)] {
        let other = new_order_id();
        let other_events = paid_order_history(other);
        let mut uow = store.begin().await.unwrap();
        uow.append(other, 0, &other_events).await.unwrap();
        uow.enqueue(&other_events).await.unwrap();
        let error = uow
            .append(id, expected_version, &paid_order_history(id)[range])
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Other(_)), "{error:?}");
        let error = uow.commit().await.unwrap_err();
        assert!(matches!(error, StoreError::Other(_)), "{error:?}");
        assert_eq!(written(&pool).await, before);
    }
    // A version that does not follow the expected one is refused at once, too.
    let mut uow = store.begin().await.unwrap();
    let error = uow
        .append(id, 1, &paid_order_history(id)[2..3])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = uow.commit().await.unwrap_err();
    assert!(matches!(error, StoreError::Other(_)), "{error:?}");
    assert_eq!(written(&pool).await, before);
}

// ---------------------------------------------------------------------------------
// Idempotency keys
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_retried_with_its_idempotency_key_replays_the_first_answer_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();

    let first = commands
        .place(&ctx_with_key("", "place-1", "fp-place"), place_order(id))
        .await
        .unwrap();
    assert_eq!(
        first,
        CommandOutcome {
            ack: CommandAck {
                order_id: id,
                version: 1
            },
            replayed: false
        }
    );
    let after_first = written(&pool).await;
    assert_eq!(
        after_first,
        Written {
            events: 1,
            outbox: 1,
            idempotency_keys: 1
        }
    );

    // The retry of a request without `orderId`: the server made a new id for it.
    let retry = commands
        .place(
            &ctx_with_key("", "place-1", "fp-place"),
            place_order(new_order_id()),
        )
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.ack, first.ack);
    assert_eq!(written(&pool).await, after_first);

    let reused = commands
        .place(
            &ctx_with_key("", "place-1", "another-body"),
            place_order(new_order_id()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reused, CommandError::IdempotencyKeyReused),
        "{reused:?}"
    );
    assert_eq!(written(&pool).await, after_first);

    // A change command, then its retry.
    let added = commands
        .add_item(
            &ctx_with_key("", "add-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap();
    assert_eq!(added.ack.version, 2);
    assert!(!added.replayed);
    let after_add = written(&pool).await;
    let added_again = commands
        .add_item(
            &ctx_with_key("", "add-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap();
    assert!(added_again.replayed);
    assert_eq!(added_again.ack, added.ack);
    let reused_on_change = commands
        .add_item(
            &ctx_with_key("", "place-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reused_on_change, CommandError::IdempotencyKeyReused),
        "{reused_on_change:?}"
    );
    assert_eq!(written(&pool).await, after_add);
    assert_eq!(stream_versions(&pool, id).await, [1, 2]);

    // Keys are per scope (per acting user): another user's equal key is a new request.
    let other_user = commands
        .place(
            &ctx_with_key("user-b", "place-1", "fp-place"),
            place_order(new_order_id()),
        )
        .await
        .unwrap();
    assert!(!other_user.replayed);
    assert_ne!(other_user.ack.order_id, id);
}

/// Two places with one key and body racing: both read "no such key" before either
/// writes. `same_order_id` says whether the body carries the `orderId` (else the
/// server makes a new id for each).
async fn race_two_places_with_one_key(pool: &PgPool, same_order_id: bool) {
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: None,
        find_idempotency: Some(Gate::new(2)),
    });
    let commands = commands_on(store);
    let first_id = new_order_id();
    let second_id = if same_order_id {
        first_id
    } else {
        new_order_id()
    };

    let (first_ctx, second_ctx) = (
        ctx_with_key("", "key-1", "fp-1"),
        ctx_with_key("", "key-1", "fp-1"),
    );
    let (first, second) = tokio::join!(
        commands.place(&first_ctx, place_order(first_id)),
        commands.place(&second_ctx, place_order(second_id)),
    );
    let first = first.unwrap();
    let second = second.unwrap();

    assert_eq!(first.ack, second.ack);
    assert_eq!(first.ack.version, 1);
    assert!(
        first.replayed != second.replayed,
        "exactly one of them is a replay: {first:?} {second:?}"
    );
    assert_eq!(
        written(pool).await,
        Written {
            events: 1,
            outbox: 1,
            idempotency_keys: 1
        }
    );
    let streams: i64 = sqlx::query_scalar("SELECT count(DISTINCT stream_id) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(streams, 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_places_with_one_key_make_one_order_and_answer_the_same_ack(pool: PgPool) {
    race_two_places_with_one_key(&pool, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_places_with_one_key_and_one_order_id_answer_the_same_ack(pool: PgPool) {
    race_two_places_with_one_key(&pool, true).await;
}

/// A change command sent twice at once with one idempotency key.
#[derive(Debug, Clone, Copy)]
enum Retried {
    AddItem,
    /// Allowed once only: the second run of the behaviour is refused by the state.
    Pay,
}

/// Two equal change commands with one key racing: both read "no such key" before
/// either writes; `if_match` sends them with `If-Match: "1"`. However the race goes,
/// one writes and the other answers the same ack, replayed.
async fn race_two_changes_with_one_key(pool: &PgPool, command: Retried, if_match: bool) {
    let id = new_order_id();
    commands(pool).place(&ctx(), place_order(id)).await.unwrap();
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: None,
        find_idempotency: Some(Gate::new(2)),
    });
    let commands = commands_on(store);
    let request = || CommandContext {
        expected_version: if_match.then_some(1),
        ..ctx_with_key("", "key-1", "fp-1")
    };
    let send = |ctx: CommandContext| {
        let commands = commands.clone();
        async move {
            match command {
                Retried::AddItem => commands.add_item(&ctx, id, line("sku-2", 1, 10_000)).await,
                Retried::Pay => {
                    commands
                        .pay(
                            &ctx,
                            id,
                            PaymentId::parse("pay-1").unwrap(),
                            amount(270_000),
                            card(),
                        )
                        .await
                }
            }
        }
    };

    let (first, second) = tokio::join!(send(request()), send(request()));
    let first = first.unwrap();
    let second = second.unwrap();

    assert_eq!(first.ack, second.ack);
    assert_eq!(first.ack.version, 2);
    assert!(
        first.replayed != second.replayed,
        "exactly one of them is a replay: {first:?} {second:?}"
    );
    assert_eq!(stream_versions(pool, id).await, [1, 2]);
    assert_eq!(outbox_versions(pool, id).await, [1, 2]);
    assert_eq!(written(pool).await.idempotency_keys, 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_changes_with_one_key_write_once_and_answer_the_same_ack(pool: PgPool) {
    race_two_changes_with_one_key(&pool, Retried::AddItem, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_changes_with_one_key_and_if_match_write_once_and_answer_the_same_ack(
    pool: PgPool,
) {
    race_two_changes_with_one_key(&pool, Retried::AddItem, true).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_payments_with_one_key_pay_once_and_answer_the_same_ack(pool: PgPool) {
    race_two_changes_with_one_key(&pool, Retried::Pay, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn purging_idempotency_keys_deletes_only_those_older_than_the_age(pool: PgPool) {
    let commands = commands(&pool);
    for key in ["old", "recent", "fresh"] {
        commands
            .place(&ctx_with_key("", key, "fp"), place_order(new_order_id()))
            .await
            .unwrap();
    }
    for (key, age) in [("old", "25 hours"), ("recent", "23 hours")] {
        sqlx::query("UPDATE idempotency_keys SET created_at = now() - $2::interval WHERE key = $1")
            .bind(key)
            .bind(age)
            .execute(&pool)
            .await
            .unwrap();
    }

    assert_eq!(purge_idempotency_keys(&pool, 24).await.unwrap(), 1);

    let mut kept: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    kept.sort();
    assert_eq!(kept, ["fresh", "recent"]);
    assert_eq!(written(&pool).await.events, 3);
    assert_eq!(purge_idempotency_keys(&pool, 24).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------
// Existing ids and If-Match
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn placing_an_order_with_an_id_that_exists_is_already_exists_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let before = written(&pool).await;

    let mut other_body = place_order(id);
    other_body.items = vec![line("sku-9", 1, 5)];
    other_body.discount_codes.clear();
    for context in [ctx(), ctx_with_key("", "key-1", "fp-1")] {
        let error = commands
            .place(&context, other_body.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::AlreadyExists(existing) if existing == id),
            "{error:?}"
        );
    }

    assert_eq!(written(&pool).await, before);
    let order = queries(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.lines()[0].product_id().as_str(), "sku-1");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_whose_if_match_version_is_not_the_orders_is_a_mismatch_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let matched = commands
        .add_item(&ctx_expecting(1), id, line("sku-2", 1, 10_000))
        .await
        .unwrap();
    assert_eq!(matched.ack.version, 2);
    let before = written(&pool).await;

    for stale_or_ahead in [1, 5] {
        let error = commands
            .cancel(
                &ctx_expecting(stale_or_ahead),
                id,
                CancellationReason::parse("changed mind").unwrap(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                CommandError::VersionMismatch { expected, actual: 2 } if expected == stale_or_ahead
            ),
            "{error:?}"
        );
    }

    assert_eq!(written(&pool).await, before);
    assert_eq!(
        queries(&pool)
            .get(&Actor::unrestricted(None), id, None)
            .await
            .unwrap()
            .status(),
        OrderStatus::Created
    );
}

// ---------------------------------------------------------------------------------
// Stored events that cannot be decoded
// ---------------------------------------------------------------------------------

/// Places an order, then appends `(event_type, schema_version, payload)` at version 2
/// by SQL; `load` must refuse the stream and the use cases answer `Internal`.
async fn assert_undecodable(pool: &PgPool, event_type: &str, schema_version: i32, payload: Value) {
    let id = new_order_id();
    commands(pool).place(&ctx(), place_order(id)).await.unwrap();
    insert_raw_event(pool, id, 2, event_type, schema_version, payload).await;

    let error = pg_store(pool).load(id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");

    let queries = queries(pool);
    let error = queries
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    let error = queries
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    let before = written(pool).await;
    let error = commands(pool)
        .add_item(&ctx(), id, line("sku-2", 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    assert_eq!(written(pool).await, before);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_event_of_an_unknown_type_is_corrupt_and_queries_answer_internal(pool: PgPool) {
    assert_undecodable(&pool, "OrderTeleported", 1, json!({"to": "Mars"})).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_event_of_a_future_schema_version_is_corrupt_and_queries_answer_internal(
    pool: PgPool,
) {
    let payload = json!({
        "productId": "sku-2", "quantity": 1, "unitPrice": 10000,
        "subtotal": 310000, "discount": 31000, "total": 279000
    });
    assert_undecodable(&pool, "ItemAdded", 99, payload).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_payload_that_breaks_its_schema_is_corrupt_and_queries_answer_internal(
    pool: PgPool,
) {
    assert_undecodable(
        &pool,
        "ItemAdded",
        1,
        json!({"productId": "", "quantity": 0}),
    )
    .await;
}

// ---------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_order_as_of_an_instant_is_its_state_then_and_history_has_every_event(pool: PgPool) {
    let commands = commands(&pool);
    let queries = queries(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    commands
        .add_item(&ctx(), id, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    commands
        .pay(
            &ctx(),
            id,
            PaymentId::parse("pay-1").unwrap(),
            amount(297_000),
            card(),
        )
        .await
        .unwrap();

    let history = queries
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        history.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["OrderCreated", "ItemAdded", "PaymentProcessed"]
    );
    assert!(history.iter().all(|e| e.recorded_at.is_some()));
    assert_eq!(history, pg_store(&pool).load(id).await.unwrap());

    let created = history[0].occurred_at;
    let item_added = history[1].occurred_at;
    let before_creation = created - chrono::Duration::microseconds(1);
    let error = queries
        .get(&Actor::unrestricted(None), id, Some(before_creation))
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::NotFound(o) if o == id),
        "{error:?}"
    );

    let at_creation = queries
        .get(&Actor::unrestricted(None), id, Some(created))
        .await
        .unwrap();
    assert_eq!(at_creation.version(), 1);
    assert_eq!(at_creation.lines().len(), 1);
    assert_eq!(at_creation.total(), amount(270_000));

    let after_item = queries
        .get(&Actor::unrestricted(None), id, Some(item_added))
        .await
        .unwrap();
    assert_eq!(after_item.version(), 2);
    assert_eq!(after_item.status(), OrderStatus::Created);
    assert_eq!(after_item.lines().len(), 2);
    assert_eq!(after_item.total(), amount(297_000));
    assert!(after_item.payment().is_none());

    let now = queries
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(now.version(), 3);
    assert_eq!(now.status(), OrderStatus::Paid);
    assert_eq!(
        now,
        queries
            .get(&Actor::unrestricted(None), id, Some(Utc::now()))
            .await
            .unwrap()
    );

    let unknown = new_order_id();
    let error = queries
        .history(&Actor::unrestricted(None), unknown)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::NotFound(o) if o == unknown),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------
// Database unavailable
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_store_on_an_unreachable_database_is_unavailable_and_so_are_the_use_cases() {
    let pool = connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .unwrap();
    let store = pg_store(&pool);
    let id = new_order_id();

    let error = store.load(id).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let error = store.find_idempotency("", "key-1").await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // A unit of work writes at commit: that is where the database is missed.
    let error = append_and_commit(&store, id, 0, &paid_order_history(id))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    let commands = commands_on(store.clone());
    let error = commands.place(&ctx(), place_order(id)).await.unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");
    let error = commands
        .add_item(&ctx(), id, line("sku-2", 1, 1))
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");
    let error = commands
        .place(&ctx_with_key("", "key-1", "fp-1"), place_order(id))
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");

    let error = OrderQueries::new(store)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap_err();
    assert!(matches!(error, QueryError::Unavailable(_)), "{error:?}");
}
