//! Overload and shutdown: a saturated database pool, too many requests in flight and
//! requests over the time limit answer 503 with `Retry-After` at once (instead of
//! queueing without bound) and write nothing; on shutdown, in-flight requests finish.
//!
//! The database pool is made "saturated" for real: the test holds the only connection
//! of a one-connection pool, so every request has to wait for it.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test http_overload`.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use order_api::RequestLimits;
use order_service::{build_router, run, ServiceSettings};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use support::*;

/// A pool of one connection on the test's database, waiting `acquire` for it.
fn one_connection(pool: &PgPool, acquire: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(acquire)
        .connect_lazy_with((*pool.connect_options()).clone())
}

fn settings(limits: RequestLimits) -> ServiceSettings {
    ServiceSettings {
        limits,
        ..ServiceSettings::default()
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_saturated_pool_answers_503_with_retry_after_and_writes_nothing(pool: PgPool) {
    let small = one_connection(&pool, Duration::from_millis(300));
    let router = build_router(small.clone(), &ServiceSettings::default()).expect("a router");
    let held = small.acquire().await.expect("the only connection");
    let before = counts(&pool).await;

    for call in [
        Call::post("/orders", &order_body()),
        Call::post("/orders", &order_body()).header("idempotency-key", "saturated"),
        Call::get(format!("/orders/{}", uuid::Uuid::now_v7())),
    ] {
        let description = call.describe();
        let reply = send(router.clone(), call).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{description}: {}",
            reply.text()
        );
        assert_problem(&reply, 503, "unavailable");
        assert!(reply.header("retry-after").is_some(), "{description}");
    }
    drop(held);
    assert_eq!(counts(&pool).await, before, "a 503 wrote something");

    // Once a connection is free again, the same request succeeds.
    let reply = send(
        router,
        Call::post("/orders", &order_body()).header("idempotency-key", "saturated"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn requests_beyond_the_concurrency_bound_answer_503_at_once(pool: PgPool) {
    let small = one_connection(&pool, Duration::from_secs(20));
    let limits = RequestLimits {
        request_timeout: Duration::from_secs(30),
        max_concurrent_requests: 2,
    };
    let router = build_router(small.clone(), &settings(limits)).expect("a router");
    let held = small.acquire().await.expect("the only connection");

    // Two requests fill the bound, both waiting for the held connection.
    let in_flight: Vec<_> = (0..2)
        .map(|_| tokio::spawn(send(router.clone(), Call::post("/orders", &order_body()))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = counts(&pool).await;

    let reply = send(router.clone(), Call::post("/orders", &order_body())).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_problem(&reply, 503, "overloaded");
    assert!(reply.header("retry-after").is_some());
    // Refused while the two before it still wait: it did not queue behind them.
    assert!(in_flight.iter().all(|request| !request.is_finished()));
    drop(held);
    for request in in_flight {
        let reply = request.await.expect("the request task");
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    }
    assert_eq!(
        counts(&pool).await.0,
        before.0 + 2,
        "only the two admitted wrote"
    );
    let reply = send(router, Call::get("/healthz")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_request_over_the_time_limit_answers_503_and_writes_nothing(pool: PgPool) {
    let small = one_connection(&pool, Duration::from_secs(20));
    let limits = RequestLimits {
        request_timeout: Duration::from_millis(300),
        max_concurrent_requests: 16,
    };
    let router = build_router(small.clone(), &settings(limits)).expect("a router");
    let held = small.acquire().await.expect("the only connection");
    let before = counts(&pool).await;

    let reply = send(router.clone(), Call::post("/orders", &order_body())).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert_problem(&reply, 503, "timeout");
    assert!(reply.header("retry-after").is_some());

    // The abandoned request must not complete later on its own.
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        counts(&pool).await,
        before,
        "a timed-out request wrote something"
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn on_shutdown_in_flight_requests_finish_and_new_connections_are_refused(pool: PgPool) {
    let small = one_connection(&pool, Duration::from_secs(20));
    let router = build_router(small.clone(), &ServiceSettings::default()).expect("a router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(router, listener, async move {
        let _ = stopped.await;
    }));

    let held = small.acquire().await.expect("the only connection");
    let client = reqwest::Client::new();
    let request = tokio::spawn(
        client
            .post(format!("http://{addr}/orders"))
            .json(&order_body())
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !request.is_finished(),
        "the request waits for the held connection"
    );

    stop.send(()).expect("the server listens for shutdown");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a shutting-down server accepts no new connection"
    );
    assert!(
        !server.is_finished(),
        "the server waits for the request in flight"
    );

    drop(held);
    let response = request
        .await
        .expect("the request task")
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once drained")
        .expect("the server task")
        .expect("the server stops cleanly");
    assert_eq!(
        counts(&pool).await.0,
        1,
        "the drained request's event is there"
    );
}
