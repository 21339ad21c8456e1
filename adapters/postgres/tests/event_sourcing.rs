//! The event store's guarantees on a real PostgreSQL: stored events are immutable,
//! old schema versions are upcast when read (never rewritten), and snapshots change how
//! fast an order loads, never what it loads to.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test event_sourcing`.

use std::sync::{Arc, Mutex};

use application::{
    Actor, Clock, CommandContext, EventStore, OrderCommands, OrderQueries, PublishAll, SystemClock,
};
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountTable, Order, OrderFactory, OrderId, OrderLine,
    OrderSnapshot, PaymentId, PaymentMethod, PhoneNumber, PlaceOrder, ProductId, Quantity,
    TrackingNumber, UnitPrice,
};
use order_postgres::PgEventStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

// ---------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------

fn address(line1: &str) -> Address {
    Address::new(
        AddressLine::parse(line1).unwrap(),
        None,
        City::parse("Hanoi").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    )
}

fn place_order(id: OrderId) -> PlaceOrder {
    PlaceOrder {
        id,
        customer: CustomerInfo::new(
            CustomerId::parse("customer-1").unwrap(),
            CustomerName::parse("Nguyễn Văn A").unwrap(),
            PhoneNumber::parse("+84 912 345 678").unwrap(),
            address("1 Tràng Tiền"),
        ),
        currency: Currency::parse("VND").unwrap(),
        items: vec![line("sku-1", 2, 150_000)],
        discount_codes: vec![],
    }
}

fn line(product: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(
        ProductId::parse(product).unwrap(),
        Quantity::new(quantity).unwrap(),
        UnitPrice::new(unit_price).unwrap(),
    )
}

fn ctx() -> CommandContext {
    CommandContext::anonymous()
}

/// A clock one second later at every reading, so every event has its own instant.
#[derive(Debug)]
struct SteppingClock(Mutex<DateTime<Utc>>);

impl SteppingClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap(),
        )))
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> DateTime<Utc> {
        let mut now = self.0.lock().unwrap();
        *now += chrono::Duration::seconds(1);
        *now
    }
}

/// The use cases as the service builds them, snapshotting every `interval` events.
fn commands(pool: &PgPool, clock: Arc<dyn Clock>, interval: u64) -> OrderCommands {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    OrderCommands::new(
        store.clone(),
        OrderFactory::new(Arc::new(
            DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap(),
        )),
        Arc::new(PublishAll),
        clock,
    )
    .with_snapshots(store, interval)
}

/// Queries that replay whole streams.
fn replaying(pool: &PgPool) -> OrderQueries {
    OrderQueries::new(Arc::new(PgEventStore::new(pool.clone())))
}

/// Queries that start from the latest usable snapshot.
fn snapshotting(pool: &PgPool) -> OrderQueries {
    let store = Arc::new(PgEventStore::new(pool.clone()));
    OrderQueries::new(store.clone()).with_snapshots(store)
}

async fn place(commands: &OrderCommands) -> OrderId {
    let id = OrderId::from_uuid(Uuid::now_v7());
    commands.place(&ctx(), place_order(id)).await.unwrap();
    id
}

async fn change_address(commands: &OrderCommands, id: OrderId, n: usize) {
    commands
        .change_delivery_address(&ctx(), id, address(&format!("{n} Hàng Bài")))
        .await
        .unwrap();
}

async fn snapshot_versions(pool: &PgPool, id: OrderId) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM snapshots WHERE stream_id = $1 ORDER BY version")
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

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
    .bind(json!({"userId": "legacy", "correlationId": "c-1", "causationId": "c-1"}))
    .execute(pool)
    .await
    .unwrap();
}

/// Stores a snapshot row behind the store's back.
async fn insert_snapshot(pool: &PgPool, id: OrderId, version: i64, schema: i32, state: Value) {
    sqlx::query(
        "INSERT INTO snapshots (stream_id, version, state_schema, state, last_occurred_at) \
         SELECT $1, $2, $3, $4, max(occurred_at) FROM events WHERE stream_id = $1 AND version <= $2",
    )
    .bind(id.as_uuid())
    .bind(version)
    .bind(schema)
    .bind(state)
    .execute(pool)
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------
// Immutable event store
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_database_refuses_to_update_delete_or_truncate_events(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let id = place(&commands).await;
    change_address(&commands, id, 2).await;
    let before: Vec<(i64, Value)> =
        sqlx::query_as("SELECT global_position, payload FROM events ORDER BY global_position")
            .fetch_all(&pool)
            .await
            .unwrap();

    for statement in [
        "UPDATE events SET payload = '{}'::jsonb",
        "UPDATE events SET recorded_at = now() WHERE version = 2",
        "DELETE FROM events",
        "DELETE FROM events WHERE version = 2",
        "TRUNCATE events",
        "TRUNCATE events CASCADE",
    ] {
        let error = sqlx::query(statement).execute(&pool).await.unwrap_err();
        assert!(
            error.to_string().contains("events are immutable"),
            "{statement}: {error}"
        );
    }

    let after: Vec<(i64, Value)> =
        sqlx::query_as("SELECT global_position, payload FROM events ORDER BY global_position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(before, after);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn events_keep_an_increasing_global_position_and_their_recording_time(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let first = place(&commands).await;
    let second = place(&commands).await;
    change_address(&commands, first, 2).await;
    let rows: Vec<(Uuid, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT stream_id, global_position, recorded_at FROM events ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let streams: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        streams,
        [first.as_uuid(), second.as_uuid(), first.as_uuid()]
    );
    assert!(rows.windows(2).all(|w| w[0].2 <= w[1].2));
    let history = replaying(&pool)
        .history(&Actor::unrestricted(None), first)
        .await
        .unwrap();
    assert!(history.iter().all(|e| e.recorded_at.is_some()));
    // The history's positions are the rows' `global_position`: the first order's
    // creation, then (after the second's creation) its address change.
    let stored: Vec<Option<u64>> = rows
        .iter()
        .filter(|r| r.0 == first.as_uuid())
        .map(|r| u64::try_from(r.1).ok())
        .collect();
    let shown: Vec<Option<u64>> = history.iter().map(|e| e.position).collect();
    assert_eq!(shown, stored);
}

// ---------------------------------------------------------------------------------
// Upcasting
// ---------------------------------------------------------------------------------

/// Two unpaid orders cancelled by rows of each schema: `OrderCancelled` v1 (`refund`,
/// as an older release wrote it) and v2 (`refundAmount`, as this code writes it).
async fn orders_cancelled_in_both_schemas(pool: &PgPool) -> (OrderId, OrderId) {
    let commands = commands(pool, Arc::new(SystemClock), 0);
    let old = place(&commands).await;
    let new = place(&commands).await;
    insert_raw_event(
        pool,
        old,
        2,
        "OrderCancelled",
        1,
        json!({"reason": "changed my mind", "refund": 0}),
    )
    .await;
    insert_raw_event(
        pool,
        new,
        2,
        "OrderCancelled",
        2,
        json!({"reason": "changed my mind", "refundAmount": 0}),
    )
    .await;
    (old, new)
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_schema_1_order_cancelled_row_loads_to_the_same_state_as_a_schema_2_row(pool: PgPool) {
    let (old, new) = orders_cancelled_in_both_schemas(&pool).await;
    let queries = replaying(&pool);
    let old_order = queries
        .get(&Actor::unrestricted(None), old, None)
        .await
        .unwrap();
    let new_order = queries
        .get(&Actor::unrestricted(None), new, None)
        .await
        .unwrap();
    assert_eq!(old_order.status(), domain::OrderStatus::Cancelled);
    assert_eq!(old_order.cancellation(), new_order.cancellation());
    assert_eq!(old_order.version(), new_order.version());

    // The stored row is untouched.
    let stored: (i32, Value) = sqlx::query_as(
        "SELECT schema_version, payload FROM events WHERE stream_id = $1 AND version = 2",
    )
    .bind(old.as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (1, json!({"reason": "changed my mind", "refund": 0}))
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_upcast_event_is_shown_and_published_in_the_current_schema_only(pool: PgPool) {
    let (old, new) = orders_cancelled_in_both_schemas(&pool).await;
    let queries = replaying(&pool);
    let current = json!({"reason": "changed my mind", "refundAmount": 0});
    for id in [old, new] {
        let history = queries
            .history(&Actor::unrestricted(None), id)
            .await
            .unwrap();
        let wire = history[1].to_history_wire();
        assert_eq!(wire["schemaVersion"], 2);
        assert_eq!(wire["payload"], current);
    }

    // Published: what the relay's replay writes to the outbox for the old row.
    let history = queries
        .history(&Actor::unrestricted(None), old)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    order_postgres::outbox::insert(&mut conn, &history[1..])
        .await
        .unwrap();
    let message: String = sqlx::query_scalar("SELECT message FROM outbox WHERE version = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["schemaVersion"], 2);
    assert_eq!(message["payload"], current);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_cancellation_is_written_in_schema_2(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let id = place(&commands).await;
    commands
        .pay(
            &ctx(),
            id,
            PaymentId::parse("p-1").unwrap(),
            Amount::new(300_000).unwrap(),
            PaymentMethod::parse("card").unwrap(),
        )
        .await
        .unwrap();
    commands
        .cancel(&ctx(), id, CancellationReason::parse("late").unwrap())
        .await
        .unwrap();
    let row = sqlx::query(
        "SELECT schema_version, payload FROM events WHERE stream_id = $1 AND version = 3",
    )
    .bind(id.as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<i32, _>("schema_version"), 2);
    assert_eq!(
        row.get::<Value, _>("payload"),
        json!({"reason": "late", "refundAmount": 300_000})
    );
    let message: String = sqlx::query_scalar("SELECT message FROM outbox WHERE version = 3")
        .fetch_one(&pool)
        .await
        .unwrap();
    let message: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(message["schemaVersion"], 2);
}

// ---------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_snapshot_is_stored_every_n_events_with_the_state_at_its_version(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 3);
    let id = place(&commands).await;
    for n in 2..=7 {
        change_address(&commands, id, n).await;
    }
    assert_eq!(snapshot_versions(&pool, id).await, [3, 6]);
    let row = sqlx::query(
        "SELECT state_schema, state FROM snapshots WHERE stream_id = $1 AND version = 6",
    )
    .bind(id.as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        row.get::<i32, _>("state_schema") as u32,
        OrderSnapshot::STATE_SCHEMA_VERSION
    );
    let snapshot: OrderSnapshot = serde_json::from_value(row.get("state")).unwrap();
    let history = replaying(&pool)
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap();
    let at_six = Order::from_history(id, history[..6].iter().map(|e| e.recorded()))
        .unwrap()
        .unwrap();
    assert_eq!(snapshot, at_six.snapshot());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn no_snapshot_is_stored_when_the_interval_is_zero(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let id = place(&commands).await;
    for n in 2..=7 {
        change_address(&commands, id, n).await;
    }
    assert!(snapshot_versions(&pool, id).await.is_empty());
}

/// The snapshot at version 6, with the delivery address changed to `line1`: an order
/// loaded from it shows that address, which proves the snapshot was used.
async fn doctor_snapshot(pool: &PgPool, id: OrderId, schema: i32, line1: &str) {
    let history = replaying(pool)
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap();
    let at_six = Order::from_history(id, history[..6].iter().map(|e| e.recorded()))
        .unwrap()
        .unwrap();
    let mut state = serde_json::to_value(at_six.snapshot()).unwrap();
    state["deliveryAddress"]["line1"] = json!(line1);
    insert_snapshot(pool, id, 6, schema, state).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_load_starts_from_the_latest_snapshot_and_applies_only_later_events(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let id = place(&commands).await;
    for n in 2..=6 {
        change_address(&commands, id, n).await;
    }
    doctor_snapshot(
        &pool,
        id,
        OrderSnapshot::STATE_SCHEMA_VERSION as i32,
        "from the snapshot",
    )
    .await;
    let order = snapshotting(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(
        order.delivery_address().line1().as_str(),
        "from the snapshot"
    );

    // A later event applies on top of it.
    commands
        .add_item(&ctx(), id, line("sku-2", 1, 1_000))
        .await
        .unwrap();
    let order = snapshotting(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.version(), 7);
    assert_eq!(order.lines().len(), 2);
    assert_eq!(
        order.delivery_address().line1().as_str(),
        "from the snapshot"
    );
    // The history still has every event.
    assert_eq!(
        snapshotting(&pool)
            .history(&Actor::unrestricted(None), id)
            .await
            .unwrap()
            .len(),
        7
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_snapshot_of_an_older_state_schema_or_unreadable_is_ignored(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 0);
    let id = place(&commands).await;
    for n in 2..=7 {
        change_address(&commands, id, n).await;
    }
    let expected = replaying(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    // Written by an older release, in an older shape.
    doctor_snapshot(
        &pool,
        id,
        OrderSnapshot::STATE_SCHEMA_VERSION as i32 - 1,
        "old shape",
    )
    .await;
    insert_snapshot(
        &pool,
        id,
        5,
        OrderSnapshot::STATE_SCHEMA_VERSION as i32 - 1,
        json!({"v": 0}),
    )
    .await;
    assert_eq!(
        snapshotting(&pool)
            .get(&Actor::unrestricted(None), id, None)
            .await
            .unwrap(),
        expected
    );
    // Current schema, unreadable state: replayed too.
    insert_snapshot(
        &pool,
        id,
        7,
        OrderSnapshot::STATE_SCHEMA_VERSION as i32,
        json!({"garbage": true}),
    )
    .await;
    assert_eq!(
        snapshotting(&pool)
            .get(&Actor::unrestricted(None), id, None)
            .await
            .unwrap(),
        expected
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_query_as_of_an_instant_uses_no_snapshot_later_than_it(pool: PgPool) {
    let commands = commands(&pool, SteppingClock::new(), 0);
    let id = place(&commands).await;
    for n in 2..=8 {
        change_address(&commands, id, n).await;
    }
    doctor_snapshot(
        &pool,
        id,
        OrderSnapshot::STATE_SCHEMA_VERSION as i32,
        "from the snapshot",
    )
    .await;
    let history = replaying(&pool)
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap();

    // Before version 6 occurred: the snapshot is later, the stream is replayed.
    let as_of = history[4].occurred_at;
    let order = snapshotting(&pool)
        .get(&Actor::unrestricted(None), id, Some(as_of))
        .await
        .unwrap();
    assert_eq!(
        order,
        replaying(&pool)
            .get(&Actor::unrestricted(None), id, Some(as_of))
            .await
            .unwrap()
    );
    assert_eq!(order.version(), 5);
    // At version 7: the snapshot is not later, it is used.
    let as_of = history[6].occurred_at;
    let order = snapshotting(&pool)
        .get(&Actor::unrestricted(None), id, Some(as_of))
        .await
        .unwrap();
    assert_eq!(order.version(), 7);
    assert_eq!(order.delivery_address().line1().as_str(), "7 Hàng Bài");
    let as_of = history[5].occurred_at;
    let order = snapshotting(&pool)
        .get(&Actor::unrestricted(None), id, Some(as_of))
        .await
        .unwrap();
    assert_eq!(order.version(), 6);
    assert_eq!(
        order.delivery_address().line1().as_str(),
        "from the snapshot"
    );
}

// ---------------------------------------------------------------------------------
// Property: snapshots never change what a load returns
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Add(usize, u64),
    Remove(usize),
    Address(u8),
    Pay,
    Ship,
    Cancel,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4usize, 1..5u64).prop_map(|(p, q)| Step::Add(p, q)),
        2 => (0..4usize).prop_map(Step::Remove),
        3 => any::<u8>().prop_map(Step::Address),
        1 => Just(Step::Pay),
        1 => Just(Step::Ship),
        1 => Just(Step::Cancel),
    ]
}

async fn run_step(commands: &OrderCommands, queries: &OrderQueries, id: OrderId, step: &Step) {
    const PRODUCTS: [&str; 4] = ["sku-1", "sku-2", "sku-3", "sku-4"];
    // Rejections (a paid order taking items, the last line...) are part of the property.
    let _ = match step {
        Step::Add(p, q) => {
            commands
                .add_item(&ctx(), id, line(PRODUCTS[*p], *q, 150_000))
                .await
        }
        Step::Remove(p) => {
            commands
                .remove_item(&ctx(), id, ProductId::parse(PRODUCTS[*p]).unwrap())
                .await
        }
        Step::Address(n) => {
            commands
                .change_delivery_address(&ctx(), id, address(&format!("{n} Lê Lợi")))
                .await
        }
        Step::Pay => {
            let total = queries
                .get(&Actor::unrestricted(None), id, None)
                .await
                .unwrap()
                .total();
            commands
                .pay(
                    &ctx(),
                    id,
                    PaymentId::parse("p-1").unwrap(),
                    total,
                    PaymentMethod::parse("card").unwrap(),
                )
                .await
        }
        Step::Ship => {
            commands
                .ship(
                    &ctx(),
                    id,
                    TrackingNumber::parse("T-1").unwrap(),
                    Carrier::parse("VNPost").unwrap(),
                )
                .await
        }
        Step::Cancel => {
            commands
                .cancel(&ctx(), id, CancellationReason::parse("no").unwrap())
                .await
        }
    };
}

/// A throwaway database for a test that is not an `sqlx::test` (proptest drives it).
async fn throwaway_database() -> (PgPool, String) {
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("es_prop_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{}/{name}", &admin_url[..admin_url.rfind('/').unwrap()]);
    let pool = PgPool::connect(&url).await.unwrap();
    order_postgres::migrate(&pool).await.unwrap();
    (pool, name)
}

async fn drop_database(pool: PgPool, name: &str) {
    pool.close().await;
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}

#[test]
fn loads_with_and_without_snapshots_are_equal_now_and_as_of_every_event() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (pool, name) = runtime.block_on(throwaway_database());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    let result = runner.run(&proptest::collection::vec(step(), 0..25), |steps| {
        runtime.block_on(async {
            // Snapshots every 3 events, so most loads start from one.
            let commands = commands(&pool, SteppingClock::new(), 3);
            let (with, without) = (snapshotting(&pool), replaying(&pool));
            let id = place(&commands).await;
            for step in &steps {
                run_step(&commands, &without, id, step).await;
                let (a, b) = (
                    with.get(&Actor::unrestricted(None), id, None).await,
                    without.get(&Actor::unrestricted(None), id, None).await,
                );
                prop_assert_eq!(a.unwrap(), b.unwrap());
            }
            for event in without
                .history(&Actor::unrestricted(None), id)
                .await
                .unwrap()
            {
                for as_of in [
                    event.occurred_at,
                    event.occurred_at - chrono::Duration::microseconds(1),
                ] {
                    let a = with
                        .get(&Actor::unrestricted(None), id, Some(as_of))
                        .await
                        .ok();
                    let b = without
                        .get(&Actor::unrestricted(None), id, Some(as_of))
                        .await
                        .ok();
                    prop_assert_eq!(a, b, "as of {}", as_of);
                }
            }
            Ok(())
        })
    });
    runtime.block_on(drop_database(pool, &name));
    result.unwrap();
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn commands_running_on_a_snapshot_keep_the_stream_gapless(pool: PgPool) {
    let commands = commands(&pool, Arc::new(SystemClock), 2);
    let id = place(&commands).await;
    for n in 2..=9 {
        change_address(&commands, id, n).await;
    }
    let store = PgEventStore::new(pool.clone());
    let versions: Vec<u64> = store
        .load(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=9).collect::<Vec<_>>());
    assert_eq!(snapshot_versions(&pool, id).await, [2, 4, 6, 8]);
    assert_eq!(store.load_from(id, 7).await.unwrap().len(), 2);
}
