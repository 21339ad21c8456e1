//! The read side on a real PostgreSQL: the projector (fed envelopes exactly as a Kafka
//! consumer decodes them), `GET /orders` and the rebuild.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test read_model`.

use std::sync::Arc;
use std::time::Duration;

use application::envelope::from_wire;
use application::{Applied, EventEnvelope, Projector, ReadModel};
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::Router;
use domain::OrderId;
use order_postgres::events::{in_global_order, ReplayFilter};
use order_postgres::{rebuild, PgEventStore, PgReadModel};
use order_service::{build_router, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tower::ServiceExt;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-user-id", "tester");
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn app(pool: &PgPool) -> Router {
    build_router(pool.clone(), &ServiceSettings::default()).unwrap()
}

fn new_order(customer: &str) -> Value {
    json!({
        "customer": {
            "customerId": customer, "name": "Nguyễn Văn A", "phone": "+84 900 000 000",
            "address": {"line1": "1 Lê Lợi", "city": "Hồ Chí Minh", "country": "VN"}
        },
        "currency": "VND",
        "items": [{"productId": "sku-1", "quantity": 2, "unitPrice": 150000}],
        "discountCodes": ["WELCOME10"]
    })
}

async fn place(app: &Router, customer: &str) -> String {
    let reply = call(app, "POST", "/orders", Some(new_order(customer))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["orderId"].as_str().unwrap().to_owned()
}

async fn ok(app: &Router, method: &str, path: &str, body: Value) {
    let reply = call(app, method, path, Some(body)).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
}

/// Every stored event as a Kafka consumer decodes it (no `recordedAt`), in global order.
async fn published(pool: &PgPool) -> Vec<EventEnvelope> {
    in_global_order(pool, ReplayFilter::default(), 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, e)| from_wire(&e.to_wire()).unwrap())
        .collect()
}

fn projector(pool: &PgPool) -> Projector {
    Projector::new(
        Arc::new(PgReadModel::new(pool.clone())),
        Arc::new(PgEventStore::new(pool.clone())),
    )
}

/// The whole read model, comparable row by row.
async fn read_model_rows(pool: &PgPool) -> Vec<Value> {
    sqlx::query_scalar("SELECT to_jsonb(s) FROM order_summaries s ORDER BY order_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A few orders through their lifecycles: paid, shipped, cancelled, with lines added,
/// merged and removed.
async fn some_history(app: &Router) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..4 {
        let id = place(app, &format!("c-{}", n % 2)).await;
        let order = format!("/orders/{id}");
        ok(
            app,
            "POST",
            &format!("{order}/items"),
            json!({"productId": "sku-2", "quantity": 1, "unitPrice": 50000}),
        )
        .await;
        ok(
            app,
            "POST",
            &format!("{order}/items"),
            json!({"productId": "sku-1", "quantity": 1, "unitPrice": 150000}),
        )
        .await;
        if n >= 1 {
            let reply = call(app, "DELETE", &format!("{order}/items/sku-2"), None).await;
            assert_eq!(reply.status, StatusCode::OK);
            ok(
                app,
                "POST",
                &format!("{order}/payment"),
                json!({"paymentId": "p", "amount": 405000, "method": "card"}),
            )
            .await;
        }
        if n == 2 {
            ok(
                app,
                "POST",
                &format!("{order}/shipment"),
                json!({"trackingNumber": "T", "carrier": "C"}),
            )
            .await;
        }
        if n == 3 {
            ok(
                app,
                "POST",
                &format!("{order}/cancellation"),
                json!({"reason": "no"}),
            )
            .await;
        }
        ids.push(id);
    }
    ids
}

// ---------------------------------------------------------------------------------
// Projector
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_projector_builds_one_summary_per_order_from_published_events(pool: PgPool) {
    let app = app(&pool);
    let ids = some_history(&app).await;
    let events = published(&pool).await;
    let applied = projector(&pool).apply(&events).await.unwrap();
    assert_eq!(
        applied,
        Applied {
            applied: events.len(),
            skipped: 0,
            fetched: 0
        }
    );

    let summaries = PgReadModel::new(pool.clone())
        .summaries(
            &ids.iter()
                .map(|id| OrderId::parse(id).unwrap())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let by_id = |id: &str| {
        summaries
            .iter()
            .find(|s| s.order_id.to_string() == id)
            .unwrap()
    };
    let first = by_id(&ids[0]);
    assert_eq!(
        (first.status.as_str(), first.version, first.item_count()),
        ("created", 3, 2)
    );
    assert_eq!(
        (
            first.total,
            first.currency.as_str(),
            first.customer_id.as_str()
        ),
        (450_000, "VND", "c-0")
    );
    let paid = by_id(&ids[1]);
    assert_eq!(
        (
            paid.status.as_str(),
            paid.version,
            paid.item_count(),
            paid.total
        ),
        ("paid", 5, 1, 405_000)
    );
    assert_eq!(by_id(&ids[2]).status.as_str(), "shipped");
    assert_eq!(by_id(&ids[3]).status.as_str(), "cancelled");
    assert!(summaries.iter().all(|s| s.last_recorded_at.is_some()));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn redelivered_and_older_events_change_nothing(pool: PgPool) {
    let app = app(&pool);
    some_history(&app).await;
    let events = published(&pool).await;
    let projector = projector(&pool);
    projector.apply(&events).await.unwrap();
    let before = read_model_rows(&pool).await;

    // The whole topic again, then old events in reverse order.
    let again = projector.apply(&events).await.unwrap();
    assert_eq!(
        again,
        Applied {
            applied: 0,
            skipped: events.len(),
            fetched: 0
        }
    );
    let mut reversed = events.clone();
    reversed.reverse();
    assert_eq!(projector.apply(&reversed).await.unwrap().applied, 0);
    assert_eq!(read_model_rows(&pool).await, before);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_event_ahead_of_the_read_model_has_the_missing_ones_fetched_from_the_store_first(
    pool: PgPool,
) {
    let app = app(&pool);
    let ids = some_history(&app).await;
    let events = published(&pool).await;
    let projector = projector(&pool);
    // Only the first order's creation, then its version 3 (2 is lost on the way).
    let of_first: Vec<&EventEnvelope> = events
        .iter()
        .filter(|e| e.aggregate_id.to_string() == ids[0])
        .collect();
    projector.apply(&[of_first[0].clone()]).await.unwrap();
    let applied = projector.apply(&[of_first[2].clone()]).await.unwrap();
    assert_eq!(
        applied,
        Applied {
            applied: 2,
            skipped: 0,
            fetched: 1
        }
    );
    // An order never seen, starting at its last event: fetched from version 1.
    let of_last: Vec<&EventEnvelope> = events
        .iter()
        .filter(|e| e.aggregate_id.to_string() == ids[3])
        .collect();
    let applied = projector
        .apply(&[of_last.last().copied().unwrap().clone()])
        .await
        .unwrap();
    assert_eq!(applied.applied, of_last.len());
    assert_eq!(applied.fetched, of_last.len() - 1);

    // Then everything, in order: the result is the read model of a clean run.
    projector.apply(&events).await.unwrap();
    let gapped = read_model_rows(&pool).await;
    sqlx::query("DELETE FROM order_summaries")
        .execute(&pool)
        .await
        .unwrap();
    projector.apply(&events).await.unwrap();
    assert_eq!(read_model_rows(&pool).await, gapped);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_slow_writer_never_moves_a_summary_back(pool: PgPool) {
    let app = app(&pool);
    let ids = some_history(&app).await;
    let events = published(&pool).await;
    projector(&pool).apply(&events).await.unwrap();
    let read_model = PgReadModel::new(pool.clone());
    let id = OrderId::parse(&ids[1]).unwrap();
    let mut stale = read_model.summaries(&[id]).await.unwrap().remove(0);
    stale.version = 2;
    stale.status = domain::OrderStatus::Created;
    read_model.save(&[stale]).await.unwrap();
    let kept = read_model.summaries(&[id]).await.unwrap().remove(0);
    assert_eq!((kept.version, kept.status.as_str()), (5, "paid"));
}

// ---------------------------------------------------------------------------------
// GET /orders
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_list_pages_newest_first_with_a_cursor_until_it_is_null(pool: PgPool) {
    let app = app(&pool);
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(place(&app, &format!("c-{n}")).await);
    }
    projector(&pool)
        .apply(&published(&pool).await)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut path = "/orders?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let reply = call(&app, "GET", &path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.headers["x-read-model-lag-ms"], "0");
        pages += 1;
        for item in reply.body["items"].as_array().unwrap() {
            seen.push(item["orderId"].as_str().unwrap().to_owned());
        }
        match reply.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/orders?limit=2&cursor={cursor}"),
            None => {
                assert!(reply.body["nextCursor"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");

    let reply = call(&app, "GET", "/orders", None).await;
    let item = &reply.body["items"][0];
    let mut keys: Vec<&str> = item
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "currency",
            "customerId",
            "itemCount",
            "orderId",
            "status",
            "total",
            "updatedAt",
            "version"
        ]
    );
    assert_eq!(item["total"], 270_000);
    assert_eq!(item["itemCount"], 1);
    assert_eq!(item["version"], 1);
    assert_eq!(item["status"], "created");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_list_filters_by_customer_and_status(pool: PgPool) {
    let app = app(&pool);
    let ids = some_history(&app).await;
    projector(&pool)
        .apply(&published(&pool).await)
        .await
        .unwrap();
    let ids_of = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["orderId"].as_str().unwrap().to_owned())
            .collect()
    };
    let reply = call(&app, "GET", "/orders?customerId=c-0", None).await;
    assert_eq!(ids_of(&reply), [ids[2].clone(), ids[0].clone()]);
    let reply = call(&app, "GET", "/orders?status=paid", None).await;
    assert_eq!(ids_of(&reply), [ids[1].clone()]);
    let reply = call(&app, "GET", "/orders?customerId=c-1&status=cancelled", None).await;
    assert_eq!(ids_of(&reply), [ids[3].clone()]);
    let reply = call(&app, "GET", "/orders?customerId=nobody", None).await;
    assert_eq!(ids_of(&reply), Vec::<String>::new());
    assert!(reply.body["nextCursor"].is_null());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn malformed_list_parameters_answer_400(pool: PgPool) {
    let app = app(&pool);
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=-1",
        "status=lost",
        "status=PAID",
        "cursor=zz",
        "cursor=abc",
        "cursor=3132333a6e6f742d61",
    ] {
        let reply = call(&app, "GET", &format!("/orders?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
        assert_eq!(reply.body["status"], 400);
    }
    for query in ["limit=1", "limit=100", "status=shipped", ""] {
        let reply = call(&app, "GET", &format!("/orders?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_lag_header_and_metric_show_how_far_the_read_model_is_behind(pool: PgPool) {
    let app = app(&pool);
    place(&app, "c-1").await;
    projector(&pool)
        .apply(&published(&pool).await)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = place(&app, "c-1").await;
    ok(
        &app,
        "POST",
        &format!("/orders/{id}/items"),
        json!({"productId": "sku-2", "quantity": 1, "unitPrice": 1}),
    )
    .await;

    let reply = call(&app, "GET", "/orders", None).await;
    let lag: u64 = reply.headers["x-read-model-lag-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(lag >= 50, "{lag}");
    assert_eq!(
        reply.body["items"].as_array().unwrap().len(),
        1,
        "not projected yet"
    );
    let metrics = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        to_bytes(metrics.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    let gauge: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("read_model_lag_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(gauge >= 0.05, "{text}");

    projector(&pool)
        .apply(&published(&pool).await)
        .await
        .unwrap();
    let reply = call(&app, "GET", "/orders", None).await;
    assert_eq!(reply.headers["x-read-model-lag-ms"], "0");
    assert_eq!(reply.body["items"][0]["version"], 2);
}

// ---------------------------------------------------------------------------------
// Rebuild
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rebuild_from_the_event_store_equals_the_incrementally_built_read_model(pool: PgPool) {
    let app = app(&pool);
    some_history(&app).await;
    // Incrementally, as a consumer sees the topic: small batches, with redeliveries.
    let events = published(&pool).await;
    let projector = projector(&pool);
    for chunk in events.chunks(3) {
        projector.apply(chunk).await.unwrap();
        projector.apply(&chunk[..1]).await.unwrap();
    }
    let incremental = read_model_rows(&pool).await;
    assert_eq!(incremental.len(), 4);

    let report = rebuild(&pool).await.unwrap();
    assert_eq!(report.events, events.len() as u64);
    assert_eq!(report.orders, 4);
    assert_eq!(read_model_rows(&pool).await, incremental);

    // Again (the rebuilt table's names are the live ones), and the projector keeps
    // working on the swapped-in table.
    rebuild(&pool).await.unwrap();
    assert_eq!(read_model_rows(&pool).await, incremental);
    let id = place(&app, "c-9").await;
    projector.apply(&published(&pool).await).await.unwrap();
    let reply = call(&app, "GET", "/orders?customerId=c-9", None).await;
    assert_eq!(reply.body["items"][0]["orderId"], json!(id));
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'order_summaries' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "order_summaries_customer_idx",
            "order_summaries_newest_idx",
            "order_summaries_pkey",
            "order_summaries_recorded_idx",
            "order_summaries_status_idx"
        ]
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rebuild_of_an_empty_store_leaves_an_empty_read_model(pool: PgPool) {
    let report = rebuild(&pool).await.unwrap();
    assert_eq!((report.events, report.orders), (0, 0));
    assert!(read_model_rows(&pool).await.is_empty());
}
