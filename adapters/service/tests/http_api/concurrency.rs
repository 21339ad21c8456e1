//! Concurrent commands on one order, and an unreachable database (503).

use super::*;

/// `n` item additions sent at once on one order.
async fn add_concurrently(api: &Api, id: &str, n: usize) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let router = api.router.clone();
            let call = Call::post(
                format!("/orders/{id}/items"),
                &item(&format!("sku-c{i}"), 1, 1_000),
            );
            tokio::spawn(send(router, call))
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("the task ends"));
    }
    replies
}

/// The stream has versions 1..=n without a gap, and the outbox one row per event.
async fn assert_gapless_with_one_outbox_row_per_event(api: &Api, id: &str, n: i64) {
    let id = Uuid::parse_str(id).expect("a UUID");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM events WHERE stream_id = $1 ORDER BY version")
            .bind(id)
            .fetch_all(&api.pool)
            .await
            .expect("versions");
    assert_eq!(versions, (1..=n).collect::<Vec<_>>());
    let outboxed: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM outbox WHERE aggregate_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&api.pool)
            .await
            .expect("outbox versions");
    assert_eq!(
        outboxed, versions,
        "one outbox row per event, in version order"
    );
    let unmatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e FULL JOIN outbox o USING (event_id) \
         WHERE e.event_id IS NULL OR o.event_id IS NULL",
    )
    .fetch_one(&api.pool)
    .await
    .expect("a count");
    assert_eq!(unmatched, 0);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn concurrent_commands_on_one_order_are_re_run_and_all_succeed_without_a_gap(pool: PgPool) {
    const N: usize = 10;
    // A command that lost the race is re-run on the new state; with N racers the last
    // one may lose N - 1 times, so the budget is N attempts (the default is 5, which
    // the next test covers).
    let settings = ServiceSettings {
        max_attempts: N as u32,
        ..ServiceSettings::default()
    };
    let api = Api::with_settings(pool, &settings);
    let id = api.place().await;

    let replies = add_concurrently(&api, &id, N).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let mut versions: Vec<u64> = replies
        .iter()
        .map(|r| r.json["version"].as_u64().expect("a version"))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (2..=N as u64 + 1).collect::<Vec<_>>());

    let order = api.order(&id).await;
    assert_eq!(order["version"], json!(N + 1));
    assert_eq!(order["items"].as_array().map(Vec::len), Some(N + 2));
    assert_gapless_with_one_outbox_row_per_event(&api, &id, N as i64 + 1).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn under_heavy_contention_a_command_either_wins_or_answers_409_and_writes_nothing(
    pool: PgPool,
) {
    const N: usize = 12;
    let api = Api::new(pool);
    let id = api.place().await;

    let replies = add_concurrently(&api, &id, N).await;
    let mut won = 0;
    for reply in &replies {
        match reply.status {
            StatusCode::OK => won += 1,
            StatusCode::CONFLICT => assert_problem(reply, 409, "concurrency-conflict"),
            other => panic!("unexpected {other}: {}", reply.text()),
        }
    }
    assert!(won >= 1);
    let order = api.order(&id).await;
    assert_eq!(order["version"], json!(won + 1));
    assert_gapless_with_one_outbox_row_per_event(&api, &id, won as i64 + 1).await;
}

#[tokio::test]
async fn an_unreachable_database_answers_503_with_retry_after() {
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .expect("a valid URL");
    let router = build_router(pool, &ServiceSettings::default()).expect("the router builds");
    let id = Uuid::now_v7();

    for call in [
        Call::post("/orders", &order_body()),
        Call::post("/orders", &order_body()).header("idempotency-key", "k"),
        Call::post(format!("/orders/{id}/items"), &item("sku-1", 1, 1)),
        Call::get(format!("/orders/{id}")),
        Call::get(format!("/orders/{id}/history")),
        Call::get("/readyz"),
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
        let detail = reply.json["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("127.0.0.1"), "nothing internal: {detail}");
    }
    // Alive all the same.
    let health = send(router.clone(), Call::get("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
}
