//! The administration routes over HTTP (API.md, "Administration"), in process on a
//! real PostgreSQL: the admin role on every route (403 for operators and customers,
//! whatever the path or body, with nothing recorded), the outbox's status with its
//! partitions and owners, parked rows with their paging, retry and skip with their
//! records in the same transaction (and nothing recorded for a refused call), replay and
//! rebuild as jobs with progress, one rebuild at a time, and a job whose runner died
//! answered as failed. Rows are parked here by the relay's own statement
//! (`record_failure`); `tests/tests/e2e/admin.rs` parks them for real, through the
//! relay and the broker.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test http_admin`.

mod support;

use std::time::Duration;

use axum::http::Method;
use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_service::ServiceSettings;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;

const SECRET: &str = "an-admin-test-secret-of-at-least-32-bytes";

fn authenticator() -> Authenticator {
    Authenticator::jwt(SECRET.as_bytes()).expect("a long enough secret")
}

fn api(pool: PgPool) -> Api {
    Api::with_settings(
        pool,
        &ServiceSettings {
            auth: authenticator(),
            ..ServiceSettings::default()
        },
    )
}

fn token(sub: &str, roles: &[&str], customer_id: Option<&str>) -> String {
    authenticator()
        .mint(&Claims {
            sub: sub.to_owned(),
            exp: expiry_in(Duration::from_secs(600)),
            iat: Some(now_seconds()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            customer_id: customer_id.map(str::to_owned),
        })
        .expect("a token")
}

fn admin() -> String {
    token("ada", &["admin"], None)
}

/// Every administration route, with a body that would be accepted.
fn admin_calls(order: &str) -> Vec<Call> {
    vec![
        Call::get("/admin/outbox"),
        Call::get("/admin/outbox/parked"),
        Call::post("/admin/outbox/parked/1/retry", &json!({})),
        Call::post(format!("/admin/orders/{order}/outbox/retry"), &json!({})),
        Call::post(
            format!("/admin/orders/{order}/outbox/skip"),
            &json!({"reason": "broken"}),
        ),
        Call::post("/admin/replay", &json!({"orderId": order})),
        Call::post("/admin/projections/rebuild", &json!({})),
        Call::get(format!("/admin/jobs/{}", uuid::Uuid::now_v7())),
        Call::get("/admin/actions"),
        // Whatever the path or body.
        Call::get("/admin/nothing-here"),
        Call::post("/admin/replay", &json!({"nonsense": true})),
    ]
}

async fn recorded_actions(pool: &PgPool) -> Vec<(Option<String>, String, String, String)> {
    sqlx::query_as("SELECT user_id, action, target, outcome FROM admin_actions ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("actions")
}

/// Parks every outbox row of `order` as the relay does after its last attempt.
async fn park(pool: &PgPool, order: &str, error: &str) -> Vec<i64> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM outbox WHERE aggregate_id = $1::uuid ORDER BY id")
            .bind(order)
            .fetch_all(pool)
            .await
            .expect("rows");
    let first = ids[0];
    let mut conn = pool.acquire().await.expect("conn");
    order_postgres::outbox::record_failure(&mut conn, first, error, 0, 1)
        .await
        .expect("parks");
    ids
}

async fn outbox_of(pool: &PgPool, order: &str) -> Vec<(i64, bool)> {
    sqlx::query_as(
        "SELECT version, parked_at IS NOT NULL FROM outbox WHERE aggregate_id = $1::uuid ORDER BY id",
    )
    .bind(order)
    .fetch_all(pool)
    .await
    .expect("rows")
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn only_admins_reach_the_administration_and_refusals_record_nothing(pool: PgPool) {
    let api = api(pool.clone());
    let order = api.place_as(&admin(), &order_body()).await;
    park(&pool, &order, "refused").await;
    let before = outbox_of(&pool, &order).await;
    for refused in [
        token("olga", &["operator"], None),
        token("alice", &["customer"], Some("cust-1")),
        token("nobody", &[], None),
    ] {
        for call in admin_calls(&order) {
            let description = call.describe();
            let reply = api.send(call.bearer(&refused)).await;
            assert_eq!(
                reply.status.as_u16(),
                403,
                "{description}: {}",
                reply.text()
            );
            assert_problem(&reply, 403, "forbidden");
        }
    }
    for call in admin_calls(&order) {
        api.assert_unauthenticated(call, "unauthenticated").await;
    }
    assert!(recorded_actions(&pool).await.is_empty());
    assert_eq!(outbox_of(&pool, &order).await, before, "nothing changed");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_outbox_status_shows_every_partition_its_backlog_and_owner(pool: PgPool) {
    let api = api(pool.clone());
    let empty = api
        .ok(Call::get("/admin/outbox").bearer(&admin()))
        .await
        .json;
    assert_eq!(empty["backlog"], 0);
    assert_eq!(empty["oldestAgeSeconds"], 0.0);
    assert_eq!(empty["partitions"].as_array().unwrap().len(), 64);
    assert!(empty["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["owner"].is_null()));

    api.place_as(&admin(), &order_body()).await;
    let second = api.place_as(&admin(), &order_body()).await;
    api.ok(Call::post(format!("/orders/{second}/items"), &item("sku-77", 1, 5)).bearer(&admin()))
        .await;
    park(&pool, &second, "message too large").await;
    // A live relay (heartbeat now, no member lock: judged by its heartbeat alone).
    let relay = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO relay_members (relay_id, host) VALUES ($1, 'relay-host-1')")
        .bind(relay)
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let status = api
        .ok(Call::get("/admin/outbox").bearer(&admin()))
        .await
        .json;
    assert_eq!(status["backlog"], 3);
    assert_eq!(status["parked"], 1);
    assert!(status["oldestAgeSeconds"].as_f64().unwrap() > 0.0);
    let partitions = status["partitions"].as_array().unwrap();
    let numbers: Vec<i64> = partitions
        .iter()
        .map(|p| p["partition"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (0..64).collect::<Vec<_>>());
    let waiting: i64 = partitions
        .iter()
        .map(|p| p["waiting"].as_i64().unwrap())
        .sum();
    assert_eq!(waiting, 3);
    assert_eq!(
        partitions
            .iter()
            .map(|p| p["parked"].as_i64().unwrap())
            .sum::<i64>(),
        1
    );
    assert!(partitions
        .iter()
        .all(|p| p["owner"] == json!(relay.to_string())));
    let relays = status["relays"].as_array().unwrap();
    assert_eq!(relays.len(), 1);
    assert_eq!(relays[0]["relayId"], json!(relay.to_string()));
    assert_eq!(relays[0]["host"], "relay-host-1");
    assert_eq!(relays[0]["partitions"].as_array().unwrap().len(), 64);
    assert!(relays[0]["lastSeenAt"].as_str().is_some());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn parked_rows_page_oldest_first_and_filter_by_order(pool: PgPool) {
    let api = api(pool.clone());
    let mut orders = Vec::new();
    for _ in 0..3 {
        let order = api.place_as(&admin(), &order_body()).await;
        park(&pool, &order, "too large").await;
        orders.push(order);
    }
    let first = api
        .ok(Call::get("/admin/outbox/parked?limit=2").bearer(&admin()))
        .await
        .json;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["orderId"], json!(orders[0]));
    assert_eq!(items[1]["orderId"], json!(orders[1]));
    assert_eq!(items[0]["lastError"], "too large");
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["version"], 1);
    assert_eq!(items[0]["eventType"], "OrderCreated");
    assert!(items[0]["outboxId"].as_i64().unwrap() < items[1]["outboxId"].as_i64().unwrap());
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let rest = api
        .ok(Call::get(format!("/admin/outbox/parked?limit=2&cursor={cursor}")).bearer(&admin()))
        .await
        .json;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["orderId"], json!(orders[2]));
    assert!(rest["nextCursor"].is_null());

    let one = api
        .ok(Call::get(format!("/admin/outbox/parked?orderId={}", orders[1])).bearer(&admin()))
        .await
        .json;
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["orderId"], json!(orders[1]));

    for bad in [
        "/admin/outbox/parked?limit=0",
        "/admin/outbox/parked?limit=101",
        "/admin/outbox/parked?cursor=abc",
        "/admin/outbox/parked?cursor=-1",
        "/admin/outbox/parked?orderId=nope",
        "/admin/actions?limit=x",
    ] {
        let reply = api.send(Call::get(bad).bearer(&admin())).await;
        assert_eq!(reply.status.as_u16(), 400, "{bad}: {}", reply.text());
        assert_problem(&reply, 400, "bad-request");
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_retry_makes_parked_rows_due_and_is_recorded_with_them(pool: PgPool) {
    let api = api(pool.clone());
    let order = api.place_as(&admin(), &order_body()).await;
    api.ok(Call::post(format!("/orders/{order}/items"), &item("sku-77", 1, 5)).bearer(&admin()))
        .await;
    let ids = park(&pool, &order, "refused").await;

    // A row that is not parked (the held-back one), or none at all: 404, nothing recorded.
    for missing in [ids[1], 999_999] {
        let reply = api
            .send(
                Call::post(format!("/admin/outbox/parked/{missing}/retry"), &json!({}))
                    .bearer(&admin()),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 404, "{}", reply.text());
        assert_problem(&reply, 404, "not-found");
    }
    for malformed in ["0", "abc", "-3"] {
        let reply = api
            .send(
                Call::post(
                    format!("/admin/outbox/parked/{malformed}/retry"),
                    &json!({}),
                )
                .bearer(&admin()),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 400, "{malformed}: {}", reply.text());
    }
    assert!(recorded_actions(&pool).await.is_empty());

    let reply = api
        .ok(
            Call::post(format!("/admin/outbox/parked/{}/retry", ids[0]), &json!({}))
                .bearer(&admin()),
        )
        .await;
    assert_eq!(reply.json, json!({"retried": 1}));
    assert_eq!(outbox_of(&pool, &order).await, vec![(1, false), (2, false)]);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1")
        .bind(ids[0])
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0, "a fresh count of attempts");

    park(&pool, &order, "refused again").await;
    let reply = api
        .ok(Call::post(format!("/admin/orders/{order}/outbox/retry"), &json!({})).bearer(&admin()))
        .await;
    assert_eq!(reply.json, json!({"retried": 1}));
    // An order with nothing parked: nothing to do, still recorded (it was asked).
    let reply = api
        .ok(Call::post(format!("/admin/orders/{order}/outbox/retry"), &json!({})).bearer(&admin()))
        .await;
    assert_eq!(reply.json, json!({"retried": 0}));

    let actions = recorded_actions(&pool).await;
    assert_eq!(
        actions,
        vec![
            (
                Some("ada".to_owned()),
                "outbox.retry".to_owned(),
                format!("outbox row {}", ids[0]),
                "retried 1 row".to_owned()
            ),
            (
                Some("ada".to_owned()),
                "outbox.retry".to_owned(),
                format!("order {order}"),
                "retried 1 row".to_owned()
            ),
            (
                Some("ada".to_owned()),
                "outbox.retry".to_owned(),
                format!("order {order}"),
                "retried 0 rows".to_owned()
            ),
        ]
    );
    let listed = api
        .ok(Call::get("/admin/actions?limit=2").bearer(&admin()))
        .await
        .json;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["outcome"], "retried 0 rows", "newest first");
    assert_eq!(items[0]["userId"], "ada");
    assert_eq!(items[0]["action"], "outbox.retry");
    assert!(items[0]["at"].as_str().is_some());
    let cursor = listed["nextCursor"].as_str().unwrap();
    let older = api
        .ok(Call::get(format!("/admin/actions?cursor={cursor}")).bearer(&admin()))
        .await
        .json;
    assert_eq!(older["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        older["items"][0]["target"],
        json!(format!("outbox row {}", ids[0]))
    );
    assert!(older["nextCursor"].is_null());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_skip_moves_the_parked_and_held_back_rows_to_the_dead_letters_with_its_reason(
    pool: PgPool,
) {
    let api = api(pool.clone());
    let order = api.place_as(&admin(), &order_body()).await;
    api.ok(Call::post(format!("/orders/{order}/items"), &item("sku-77", 1, 5)).bearer(&admin()))
        .await;
    let other = api.place_as(&admin(), &order_body()).await;
    park(&pool, &order, "refused").await;
    park(&pool, &other, "refused").await;
    let path = format!("/admin/orders/{order}/outbox/skip");

    for (body, field) in [
        (json!({}), "reason"),
        (json!({"reason": ""}), "reason"),
        (json!({"reason": "x".repeat(201)}), "reason"),
        (json!({"reason": "line\nbreak"}), "reason"),
        (json!({"reason": 7}), "reason"),
    ] {
        let reply = api.send(Call::post(&path, &body).bearer(&admin())).await;
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text());
        assert_problem(&reply, 422, "validation");
        assert_names(&reply.json, field);
    }
    let reply = api
        .send(
            Call::post(&path, &json!({}))
                .raw(Some("text/plain"), "reason")
                .bearer(&admin()),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 415);
    let reply = api
        .send(
            Call::post(
                "/admin/orders/not-a-uuid/outbox/skip",
                &json!({"reason": "r"}),
            )
            .bearer(&admin()),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400);
    assert!(recorded_actions(&pool).await.is_empty());
    assert_eq!(outbox_of(&pool, &order).await, vec![(1, true), (2, false)]);

    let reply = api
        .ok(Call::post(&path, &json!({"reason": "customer data fixed by hand"})).bearer(&admin()))
        .await;
    assert_eq!(reply.json, json!({"skipped": 2}));
    assert!(outbox_of(&pool, &order).await.is_empty());
    assert_eq!(
        outbox_of(&pool, &other).await,
        vec![(1, true)],
        "other orders untouched"
    );
    let dead: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT version, reason FROM outbox_dead_letters WHERE aggregate_id = $1::uuid ORDER BY id",
    )
    .bind(&order)
    .fetch_all(&pool)
    .await
    .unwrap();
    let reason = Some("customer data fixed by hand".to_owned());
    assert_eq!(dead, vec![(1, reason.clone()), (2, reason)]);
    assert_eq!(
        recorded_actions(&pool).await,
        vec![(
            Some("ada".to_owned()),
            "outbox.skip".to_owned(),
            format!("order {order}"),
            "moved 2 rows to the dead letters: customer data fixed by hand".to_owned()
        )]
    );
}

/// Polls the job at `location` until it is no longer running.
async fn finished_job(api: &Api, location: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = api.ok(Call::get(location).bearer(&admin())).await.json;
        if job["state"] != "running" {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job never ended: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_replay_is_a_job_that_re_enqueues_events_with_their_event_ids(pool: PgPool) {
    let api = api(pool.clone());
    let order = api.place_as(&admin(), &order_body()).await;
    api.ok(Call::post(format!("/orders/{order}/items"), &item("sku-77", 1, 5)).bearer(&admin()))
        .await;
    let other = api.place_as(&admin(), &order_body()).await;
    sqlx::query("DELETE FROM outbox")
        .execute(&pool)
        .await
        .unwrap();

    for (body, field) in [
        (json!({}), "body"),
        (json!({"orderId": order, "fromPosition": 1}), "fromPosition"),
        (json!({"orderId": "nope"}), "orderId"),
        (json!({"fromPosition": 0}), "fromPosition"),
        (json!({"fromPosition": "1"}), "fromPosition"),
        (json!({"since": "yesterday"}), "since"),
    ] {
        let reply = api
            .send(Call::post("/admin/replay", &body).bearer(&admin()))
            .await;
        assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text());
        assert_names(&reply.json, field);
    }
    let unknown = uuid::Uuid::now_v7();
    let reply = api
        .send(Call::post("/admin/replay", &json!({"orderId": unknown})).bearer(&admin()))
        .await;
    assert_eq!(reply.status.as_u16(), 404, "{}", reply.text());
    assert!(recorded_actions(&pool).await.is_empty());

    let reply = api
        .send(Call::post("/admin/replay", &json!({"orderId": order})).bearer(&admin()))
        .await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text());
    let job_id = reply.json["jobId"].as_str().unwrap().to_owned();
    let location = reply.header("location").unwrap().to_owned();
    assert_eq!(location, format!("/admin/jobs/{job_id}"));
    let job = finished_job(&api, &location).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "replay");
    assert_eq!(
        (job["processed"].clone(), job["total"].clone()),
        (json!(2), json!(2))
    );
    assert!(job["finishedAt"].as_str().is_some() && job["error"].is_null());

    let replayed: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT event_id, version FROM outbox ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let stored: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT event_id, version FROM events WHERE stream_id = $1::uuid ORDER BY version",
    )
    .bind(&order)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        replayed, stored,
        "the order's events, with their own eventIds, in order"
    );

    // From a position: the other order's creation and what follows.
    let position: i64 =
        sqlx::query_scalar("SELECT global_position FROM events WHERE stream_id = $1::uuid")
            .bind(&other)
            .fetch_one(&pool)
            .await
            .unwrap();
    let reply = api
        .ok(Call::post("/admin/replay", &json!({"fromPosition": position})).bearer(&admin()))
        .await;
    let job = finished_job(&api, reply.header("location").unwrap()).await;
    assert_eq!(job["processed"], 1);

    let actions = recorded_actions(&pool).await;
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].1, "replay");
    assert_eq!(actions[0].2, format!("order {order}"));
    assert_eq!(actions[0].3, format!("started job {job_id}"));
    assert_eq!(actions[1].2, format!("from position {position}"));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rebuild_is_a_job_one_at_a_time_and_a_dead_runners_job_is_failed(pool: PgPool) {
    let api = api(pool.clone());
    for _ in 0..3 {
        api.place_as(&admin(), &order_body()).await;
    }
    // A rebuild that is "running" in a process that died: its runner's lock is free.
    let dead = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO admin_jobs (job_id, kind, spec, lock_key) VALUES ($1, 'rebuild', '{}', 12345)",
    )
    .bind(dead)
    .execute(&pool)
    .await
    .unwrap();
    let job = api
        .ok(Call::get(format!("/admin/jobs/{dead}")).bearer(&admin()))
        .await
        .json;
    assert_eq!(job["state"], "failed");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("stopped before it finished"),
        "{job}"
    );

    // A rebuild running in a live process (its runner holds the lock) blocks another.
    let mut runner = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(1868720738, 777)")
        .execute(&mut *runner)
        .await
        .unwrap();
    let live = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO admin_jobs (job_id, kind, spec, lock_key) VALUES ($1, 'rebuild', '{}', 777)",
    )
    .bind(live)
    .execute(&pool)
    .await
    .unwrap();
    let reply = api
        .send(Call::post("/admin/projections/rebuild", &json!({})).bearer(&admin()))
        .await;
    assert_eq!(reply.status.as_u16(), 409, "{}", reply.text());
    assert_problem(&reply, 409, "invalid-state");
    assert!(reply.json["detail"]
        .as_str()
        .unwrap()
        .contains(&live.to_string()));
    assert!(
        recorded_actions(&pool).await.is_empty(),
        "a refused call records nothing"
    );
    // Nor keeps a runner's lock: only the test's own is held.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stray: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND classid = 1868720738 AND objid <> 777 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if stray == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a refused rebuild kept its lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.close().await.unwrap();

    // Its process died (the connection closed): the next rebuild runs.
    let reply = api
        .send(Call::post("/admin/projections/rebuild", &json!({})).bearer(&admin()))
        .await;
    assert_eq!(reply.status.as_u16(), 202, "{}", reply.text());
    let job = finished_job(&api, reply.header("location").unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "rebuild");
    assert_eq!(job["processed"], 3);
    assert_eq!(job["total"], 3);
    let summaries: i64 = sqlx::query_scalar("SELECT count(*) FROM order_summaries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(summaries, 3);
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM admin_jobs WHERE job_id = $1")
        .bind(live)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(states, ["failed"]);
    let actions = recorded_actions(&pool).await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].1, "projections.rebuild");

    let unknown = api
        .send(Call::get(format!("/admin/jobs/{}", uuid::Uuid::now_v7())).bearer(&admin()))
        .await;
    assert_eq!(unknown.status.as_u16(), 404);
    let malformed = api
        .send(Call::get("/admin/jobs/not-a-job").bearer(&admin()))
        .await;
    assert_eq!(malformed.status.as_u16(), 400);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn without_authentication_everyone_administers_and_the_user_header_is_recorded(pool: PgPool) {
    let api = Api::new(pool.clone());
    let order = api.place().await;
    park(&pool, &order, "refused").await;
    let reply = api
        .ok(
            Call::new(Method::POST, format!("/admin/orders/{order}/outbox/retry"))
                .header("x-user-id", "dev-1"),
        )
        .await;
    assert_eq!(reply.json, json!({"retried": 1}));
    let actions = recorded_actions(&pool).await;
    assert_eq!(actions[0].0.as_deref(), Some("dev-1"));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_replayed_order_waits_behind_its_rows_still_in_the_outbox(pool: PgPool) {
    let api = api(pool.clone());
    let order = api.place_as(&admin(), &order_body()).await;
    let ids = park(&pool, &order, "refused").await;
    let reply = api
        .ok(Call::post("/admin/replay", &json!({"orderId": order})).bearer(&admin()))
        .await;
    let job = finished_job(&api, reply.header("location").expect("a location")).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // The replayed row comes after the parked one, and is held back behind it.
    let rows: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM outbox WHERE aggregate_id = $1::uuid ORDER BY id")
            .bind(&order)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], ids[0]);
    let partitions: Vec<i32> = (0..order_postgres::outbox::PARTITIONS).collect();
    let mut conn = pool.acquire().await.unwrap();
    let due = order_postgres::outbox::due(&mut conn, &partitions, 100)
        .await
        .unwrap();
    assert!(
        due.iter().all(|row| row.aggregate_id.to_string() != order),
        "nothing of the parked order is due"
    );
    // Retried, both flow in order: the original, then the replay.
    api.ok(Call::post(format!("/admin/orders/{order}/outbox/retry"), &json!({})).bearer(&admin()))
        .await;
    let due = order_postgres::outbox::due(&mut conn, &partitions, 100)
        .await
        .unwrap();
    let of_order: Vec<i64> = due
        .iter()
        .filter(|row| row.aggregate_id.to_string() == order)
        .map(|row| row.id)
        .collect();
    assert_eq!(of_order, rows);
}
