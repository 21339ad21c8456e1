//! Event store and read side figures on this machine, printed (nothing is asserted):
//!
//! 1. load time of one order with 100 to 100,000 events, replaying the stream and from
//!    the latest snapshot (one every 100 events);
//! 2. rebuild speed of the read model from 1,000,000 events, in events per second;
//! 3. read-model lag (p50/p99/max) while commands append a steady 1,000 events/s, with
//!    the service's projector consuming the topic the relay publishes to.
//!
//! Run with `scripts/bench.sh` (it starts PostgreSQL and a broker). Sizes:
//! `BENCH_LOAD_MAX` (100000), `BENCH_REBUILD_EVENTS` (1000000), `BENCH_LAG_SECONDS` (20),
//! `BENCH_LAG_RATE` (1000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use application::{
    Actor, EventEnvelope, EventMetadata, EventStore, OrderQueries, ReadModel, StoredSnapshot,
};
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    Address, AddressLine, City, CountryCode, Currency, CustomerId, CustomerInfo, CustomerName,
    DiscountTable, Order, OrderFactory, OrderId, OrderLine, OrderSnapshot, PhoneNumber, PlaceOrder,
    ProductId, Quantity, UnitPrice,
};
use e2e::System;
use order_postgres::{rebuild, PgEventStore, PgReadModel};
use reqwest::Method;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(what: &str, figure: &str) {
    #[allow(clippy::print_stdout)]
    {
        println!("{what:<52} {figure}");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let _telemetry = order_runtime::init(false, &order_runtime::TraceExport::default());
    report(
        "machine",
        &format!(
            "{} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    );
    let (pool, database) = fresh_database().await;
    let max = setting("BENCH_LOAD_MAX", 100_000);
    for n in [100, 1_000, 10_000, 100_000]
        .into_iter()
        .filter(|n| *n <= max)
    {
        bench_load(&pool, n).await;
    }
    let events = setting("BENCH_REBUILD_EVENTS", 1_000_000);
    if events > 0 {
        bench_rebuild(&pool, events).await;
    }
    drop_database(pool, &database).await;
    let seconds = setting("BENCH_LAG_SECONDS", 20);
    if seconds > 0 {
        bench_lag(seconds, setting("BENCH_LAG_RATE", 1_000)).await;
    }
}

// ---------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------

fn address(n: usize) -> Address {
    Address::new(
        AddressLine::parse(format!("{n} Lê Lợi")).unwrap(),
        None,
        City::parse("Hồ Chí Minh").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    )
}

fn placement(id: OrderId, customer: usize) -> PlaceOrder {
    PlaceOrder {
        id,
        customer: CustomerInfo::new(
            CustomerId::parse(format!("c-{customer}")).unwrap(),
            CustomerName::parse("Nguyễn Văn A").unwrap(),
            PhoneNumber::parse("+84 900 000 000").unwrap(),
            address(0),
        ),
        currency: Currency::parse("VND").unwrap(),
        items: vec![line(0)],
        discount_codes: vec![],
    }
}

fn line(product: usize) -> OrderLine {
    OrderLine::new(
        ProductId::parse(format!("sku-{product}")).unwrap(),
        Quantity::new(1).unwrap(),
        UnitPrice::new(1_000).unwrap(),
    )
}

/// The events of one order with `n` events: created, then items added (50 products)
/// and address changes, alternately, one second apart; and its snapshots every 100.
fn order_stream(
    id: OrderId,
    customer: usize,
    n: usize,
    snapshot_every: usize,
) -> (Vec<EventEnvelope>, Vec<StoredSnapshot>) {
    let start: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let factory = OrderFactory::new(Arc::new(DiscountTable::parse("WELCOME10=10").unwrap()));
    let mut order = factory.place(placement(id, customer), start).unwrap();
    let mut snapshots = Vec::new();
    for i in 1..n {
        let at = start + chrono::Duration::seconds(i as i64);
        if i % 2 == 0 {
            order.add_item(line(i % 50), at).unwrap();
        } else {
            order.change_delivery_address(address(i), at).unwrap();
        }
        if snapshot_every > 0 && (i + 1) % snapshot_every == 0 {
            snapshots.push(StoredSnapshot {
                order_id: id,
                version: order.version(),
                state_schema: OrderSnapshot::STATE_SCHEMA_VERSION,
                state: serde_json::to_value(order.snapshot()).unwrap(),
                last_occurred_at: at,
            });
        }
    }
    let metadata = EventMetadata {
        user_id: Some("bench".to_owned()),
        correlation_id: "bench".to_owned(),
        causation_id: "bench".to_owned(),
    };
    let events = order
        .take_events()
        .into_iter()
        .map(|e| EventEnvelope::new(id, e, metadata.clone(), None))
        .collect();
    (events, snapshots)
}

/// Appends events of many orders with one statement per chunk (the command path's
/// `INSERT ... UNNEST`, without its per-stream version check).
async fn bulk_insert(pool: &PgPool, events: &[EventEnvelope]) {
    for chunk in events.chunks(10_000) {
        let ids: Vec<Uuid> = chunk.iter().map(|e| e.event_id).collect();
        let streams: Vec<Uuid> = chunk.iter().map(|e| e.aggregate_id.as_uuid()).collect();
        let versions: Vec<i64> = chunk.iter().map(|e| e.version as i64).collect();
        let types: Vec<&str> = chunk.iter().map(|e| e.event_type()).collect();
        let schemas: Vec<i32> = chunk.iter().map(|e| e.schema_version() as i32).collect();
        let payloads: Vec<serde_json::Value> = chunk.iter().map(|e| e.payload()).collect();
        let metadata: Vec<serde_json::Value> = chunk
            .iter()
            .map(|e| serde_json::to_value(&e.metadata).unwrap())
            .collect();
        let occurred: Vec<DateTime<Utc>> = chunk.iter().map(|e| e.occurred_at).collect();
        sqlx::query(
            "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, schema_version, \
                                 payload, metadata, occurred_at) \
             SELECT e.event_id, e.stream_id, 'Order', e.version, e.event_type, e.schema_version, e.payload, \
                    e.metadata, e.occurred_at \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[], \
                         $7::jsonb[], $8::timestamptz[]) \
                  AS e(event_id, stream_id, version, event_type, schema_version, payload, metadata, occurred_at)",
        )
        .bind(&ids)
        .bind(&streams)
        .bind(&versions)
        .bind(&types)
        .bind(&schemas)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&occurred)
        .execute(pool)
        .await
        .expect("insert events");
    }
}

// ---------------------------------------------------------------------------------
// 1. Load time
// ---------------------------------------------------------------------------------

async fn bench_load(pool: &PgPool, n: usize) {
    let id = OrderId::from_uuid(Uuid::now_v7());
    let (events, snapshots) = order_stream(id, 0, n, 100);
    bulk_insert(pool, &events).await;
    let store = Arc::new(PgEventStore::new(pool.clone()));
    // Through the unit of work, as commands store them.
    for snapshot in &snapshots {
        let mut uow = store.begin().await.unwrap();
        uow.save_snapshot(snapshot).await.unwrap();
        uow.commit().await.unwrap();
    }
    sqlx::query("ANALYZE events").execute(pool).await.unwrap();

    let replaying = OrderQueries::new(store.clone());
    let snapshotting = OrderQueries::new(store.clone()).with_snapshots(store.clone());
    let expected: Order = replaying
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(
        snapshotting
            .get(&Actor::unrestricted(None), id, None)
            .await
            .unwrap(),
        expected
    );
    for (name, queries, runs) in [
        (
            "replaying the stream",
            &replaying,
            if n >= 100_000 { 3 } else { 15 },
        ),
        ("from a snapshot every 100", &snapshotting, 50),
    ] {
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let order = queries
                .get(&Actor::unrestricted(None), id, None)
                .await
                .unwrap();
            times.push(started.elapsed());
            assert_eq!(order.version(), n as u64);
        }
        times.sort();
        report(
            &format!("load {n:>7} events, {name}"),
            &format!(
                "median {}  (min {})",
                ms(percentile(&times, 0.5)),
                ms(times[0])
            ),
        );
    }
}

// ---------------------------------------------------------------------------------
// 2. Rebuild
// ---------------------------------------------------------------------------------

async fn bench_rebuild(pool: &PgPool, total: usize) {
    const PER_ORDER: usize = 10;
    let orders = total / PER_ORDER;
    let started = Instant::now();
    let mut batch = Vec::with_capacity(100_000);
    for o in 0..orders {
        let (events, _) = order_stream(OrderId::from_uuid(Uuid::now_v7()), o % 1000, PER_ORDER, 0);
        batch.extend(events);
        if batch.len() >= 100_000 {
            bulk_insert(pool, &batch).await;
            batch.clear();
        }
    }
    bulk_insert(pool, &batch).await;
    sqlx::query("ANALYZE events").execute(pool).await.unwrap();
    report(
        &format!("rebuild: {} events written in", orders * PER_ORDER),
        &format!("{:.1} s (set-up)", started.elapsed().as_secs_f64()),
    );
    let result = rebuild(pool).await.expect("rebuild");
    report(
        &format!(
            "rebuild {} events ({} orders)",
            result.events, result.orders
        ),
        &format!(
            "{:.1} s, {:.0} events/s",
            result.elapsed.as_secs_f64(),
            result.events_per_second()
        ),
    );
}

// ---------------------------------------------------------------------------------
// 3. Read-model lag under a steady load
// ---------------------------------------------------------------------------------

async fn bench_lag(seconds: usize, rate: usize) {
    let system = System::start_with_projector(1).await;
    // Its own connections, so the samples do not queue behind the service's.
    let read_model = PgReadModel::new(
        order_postgres::connect_lazy(&system.database_url, 2, Duration::from_secs(5)).unwrap(),
    );
    let system = Arc::new(system);

    // Warm-up: the consumer group forms (a few seconds on tansu).
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(order_body(0)),
            &[("X-User-Id", "bench")],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_model.lag().await.unwrap() > Duration::ZERO
        || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM order_summaries")
            .fetch_one(&system.pool)
            .await
            .unwrap()
            == 0
    {
        assert!(Instant::now() < deadline, "the projector did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Open loop: one command every 1/rate s; a fifth create orders, the rest change
    // the address of an existing one (one event each).
    let ids = Arc::new(std::sync::Mutex::new(vec![body["orderId"]
        .as_str()
        .unwrap()
        .to_owned()]));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let read_model = read_model.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(lag) = read_model.lag().await {
                    samples.push(lag);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = seconds * rate;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let system = system.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            if n % 5 == 0 {
                let (status, body) = system
                    .send(Method::POST, "/orders", Some(order_body(n)), &[("X-User-Id", "bench")])
                    .await;
                if status == 201 {
                    ids.lock().unwrap().push(body["orderId"].as_str().unwrap().to_owned());
                }
                status
            } else {
                // Spread over every order so far: concurrent commands rarely meet.
                let id = {
                    let ids = ids.lock().unwrap();
                    ids[(n.wrapping_mul(2_654_435_761)) % ids.len()].clone()
                };
                system
                    .send(
                        Method::PUT,
                        &format!("/orders/{id}/delivery-address"),
                        Some(json!({"line1": format!("{n} Hàng Bài"), "city": "Hà Nội", "country": "VN"})),
                        &[],
                    )
                    .await
                    .0
            }
        }));
    }
    let mut failed = 0;
    for task in tasks {
        if !matches!(task.await, Ok(200 | 201)) {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut samples = sampler.await.unwrap();
    samples.sort();
    report(
        &format!("lag: {total} commands in"),
        &format!(
            "{:.1} s ({:.0} events/s offered, {failed} failed)",
            elapsed.as_secs_f64(),
            (total - failed) as f64 / elapsed.as_secs_f64()
        ),
    );
    report(
        &format!("read-model lag, {} samples", samples.len()),
        &format!(
            "p50 {}  p99 {}  max {}",
            ms(percentile(&samples, 0.5)),
            ms(percentile(&samples, 0.99)),
            ms(samples.last().copied().unwrap_or_default())
        ),
    );
    if let Ok(system) = Arc::try_unwrap(system) {
        system.stop().await;
    }
}

fn order_body(n: usize) -> serde_json::Value {
    json!({
        "customer": {
            "customerId": format!("c-{}", n % 100), "name": "Nguyễn Văn A", "phone": "+84 900 000 000",
            "address": {"line1": "1 Lê Lợi", "city": "Hồ Chí Minh", "country": "VN"}
        },
        "currency": "VND",
        "items": [{"productId": "sku-1", "quantity": 2, "unitPrice": 150000}]
    })
}

// ---------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn fresh_database() -> (PgPool, String) {
    let name = format!("bench_es_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = admin_url();
    let url = format!("{}/{name}", &url[..url.rfind('/').unwrap()]);
    let pool = order_postgres::connect_lazy(&url, 8, Duration::from_secs(30)).unwrap();
    order_postgres::migrate(&pool).await.unwrap();
    (pool, name)
}

async fn drop_database(pool: PgPool, name: &str) {
    pool.close().await;
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}
