//! Authentication and authorization over HTTP, as API.md says: every 401 cause, every
//! 403 rule, the 404 for another customer's order, the token's identity in the
//! history, `X-User-Id` ignored under JWT, idempotency keys per user; and the
//! start-up rules of `order-service` (one of `JWT_SECRET` and `AUTH_MODE=none`); and
//! `JWT_ISSUER` / `JWT_AUDIENCE`.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test http_auth`.

mod support;

use axum::http::{Method, StatusCode};
use clap::Parser;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_service::{Cli, ServiceSettings};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;
use support::*;
use uuid::Uuid;

const SECRET: &str = "an-http-test-secret-of-at-least-32-bytes";

fn authenticator() -> Authenticator {
    Authenticator::jwt(SECRET.as_bytes()).expect("a long enough secret")
}

fn jwt_api(pool: PgPool) -> Api {
    Api::with_settings(
        pool,
        &ServiceSettings {
            auth: authenticator(),
            ..ServiceSettings::default()
        },
    )
}

fn claims(sub: &str, roles: &[&str], customer_id: Option<&str>) -> Claims {
    Claims {
        sub: sub.to_owned(),
        exp: expiry_in(Duration::from_secs(600)),
        iat: Some(now_seconds()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        customer_id: customer_id.map(str::to_owned),
    }
}

fn token(sub: &str, roles: &[&str], customer_id: Option<&str>) -> String {
    authenticator()
        .mint(&claims(sub, roles, customer_id))
        .expect("a token")
}

/// A customer acting for `cust-1`, the customer of [`order_body`].
fn alice() -> String {
    token("alice", &["customer"], Some("cust-1"))
}

/// A customer acting for `cust-2`.
fn bob() -> String {
    token("bob", &["customer"], Some("cust-2"))
}

fn operator() -> String {
    token("olga", &["operator"], None)
}

/// Signs arbitrary claims (any JSON) with `algorithm` and `secret`.
fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

/// `claims` with `key` set to `value`.
fn with_claim(claims: &Value, key: &str, value: Value) -> Value {
    let mut claims = claims.clone();
    claims[key] = value;
    claims
}

/// `claims` without `key`.
fn without_claim(claims: &Value, key: &str) -> Value {
    let mut claims = claims.clone();
    claims.as_object_mut().expect("an object").remove(key);
    claims
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Every route that needs a token, with a valid body, on order `id`.
fn protected_calls(id: &str) -> Vec<Call> {
    let mut calls = vec![
        Call::post("/orders", &order_body()),
        Call::get("/orders"),
        Call::get(format!("/orders/{id}")),
        Call::get(format!("/orders/{id}/history")),
    ];
    calls.extend(commands_on(id));
    calls
}

// ---------------------------------------------------------------------------------------
// 401
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_route_but_the_open_ones_answers_401_without_a_token(pool: PgPool) {
    let api = jwt_api(pool);
    let id = api.place_as(&operator(), &order_body()).await;
    for call in protected_calls(&id) {
        api.assert_unauthenticated(call, "unauthenticated").await;
    }
    // X-User-Id is no credential.
    api.assert_unauthenticated(
        Call::post("/orders", &order_body()).header("x-user-id", "cust-1"),
        "unauthenticated",
    )
    .await;
    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/asyncapi.json",
        "/console",
    ] {
        let reply = api.send(Call::get(open)).await;
        assert_eq!(reply.status, StatusCode::OK, "{open}: {}", reply.text());
    }
    // The served document declares the bearer scheme once authentication is on.
    let document = api.send(Call::get("/openapi.json")).await.json;
    let schemes = &document["components"]["securitySchemes"];
    assert!(
        schemes
            .as_object()
            .is_some_and(|s| s.values().any(|scheme| scheme["scheme"] == "bearer")),
        "{schemes}"
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_invalid_token_answers_401_with_a_bearer_challenge(pool: PgPool) {
    let api = jwt_api(pool);
    let now = now_seconds();
    let valid = json!({"sub": "olga", "exp": now + 600, "roles": ["operator"]});
    let with = |key: &str, value: Value| with_claim(&valid, key, value);
    let without = |key: &str| without_claim(&valid, key);
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(valid.to_string().as_bytes())
    );
    let good = sign(&valid, Algorithm::HS256, SECRET);
    let (head, rest) = good.split_once('.').expect("a JWT");
    let (_, signature) = rest.split_once('.').expect("a JWT");
    let tampered = format!(
        "{head}.{}.{signature}",
        b64(with("roles", json!(["admin"])).to_string().as_bytes())
    );
    let cases: Vec<(&str, String)> = vec![
        ("scheme not Bearer", "Basic b2xnYTpwYXNz".to_owned()),
        ("no token after Bearer", "Bearer ".to_owned()),
        ("not a JWT", "Bearer not-a-jwt".to_owned()),
        ("three parts of garbage", "Bearer a.b.c".to_owned()),
        (
            "signed with another secret",
            format!(
                "Bearer {}",
                sign(
                    &valid,
                    Algorithm::HS256,
                    "another-secret-also-32-bytes-long!!"
                )
            ),
        ),
        (
            "payload changed after signing",
            format!("Bearer {tampered}"),
        ),
        ("alg none", format!("Bearer {unsigned}")),
        (
            "HS512 instead of HS256",
            format!("Bearer {}", sign(&valid, Algorithm::HS512, SECRET)),
        ),
        (
            "expired an hour ago",
            format!(
                "Bearer {}",
                sign(&with("exp", json!(now - 3600)), Algorithm::HS256, SECRET)
            ),
        ),
        (
            "not valid for another hour (nbf)",
            format!(
                "Bearer {}",
                sign(&with("nbf", json!(now + 3600)), Algorithm::HS256, SECRET)
            ),
        ),
        (
            "without exp",
            format!("Bearer {}", sign(&without("exp"), Algorithm::HS256, SECRET)),
        ),
        (
            "without sub",
            format!("Bearer {}", sign(&without("sub"), Algorithm::HS256, SECRET)),
        ),
        (
            "sub with a control character",
            format!(
                "Bearer {}",
                sign(&with("sub", json!("ol\u{1}ga")), Algorithm::HS256, SECRET)
            ),
        ),
        (
            "roles not an array",
            format!(
                "Bearer {}",
                sign(&with("roles", json!("operator")), Algorithm::HS256, SECRET)
            ),
        ),
        (
            "a customer without customerId",
            format!(
                "Bearer {}",
                sign(
                    &with("roles", json!(["customer"])),
                    Algorithm::HS256,
                    SECRET
                )
            ),
        ),
    ];
    for (case, authorization) in cases {
        let call = Call::post("/orders", &order_body()).header("authorization", &authorization);
        let before = counts(&api.pool).await;
        let reply = api.send(call).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            reply.text()
        );
        assert_problem(&reply, 401, "invalid-token");
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer")),
            "{case}: a bearer challenge"
        );
        assert_eq!(counts(&api.pool).await, before, "{case}: wrote something");
    }
    // The same claims, properly signed, pass.
    let reply = api
        .send(
            Call::post("/orders", &order_body()).header("authorization", &format!("Bearer {good}")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    // Claims API.md does not name (an audience, an issuer) do not get in the way.
    let mut extras = with("aud", json!("orders"));
    extras["iss"] = json!("https://issuer.example");
    let with_extras = sign(&extras, Algorithm::HS256, SECRET);
    let reply = api
        .send(Call::post("/orders", &order_body()).bearer(&with_extras))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn authentication_is_checked_before_the_body_framing(pool: PgPool) {
    let api = jwt_api(pool);
    let huge = vec![b' '; 70 * 1024];
    for call in [
        Call::new(Method::POST, "/orders").raw(Some("application/json"), huge),
        Call::new(Method::POST, "/orders").raw(Some("text/plain"), "{}"),
        Call::new(Method::POST, "/orders").raw(Some("application/json"), "{"),
        Call::post("/orders", &json!({})),
        Call::get("/orders/not-a-uuid"),
    ] {
        api.assert_unauthenticated(call, "unauthenticated").await;
    }
}

// ---------------------------------------------------------------------------------------
// 403 and 404
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_customer_creates_orders_only_for_its_own_customer_id(pool: PgPool) {
    let api = jwt_api(pool);
    let created = api
        .ok(Call::post("/orders", &order_body()).bearer(&alice()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let problem = api
        .assert_rejected_without_writes(
            Call::post("/orders", &order_body()).bearer(&bob()),
            403,
            "forbidden",
        )
        .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("customerId"));

    // Validation of the request alone (422) comes before the role (403).
    let invalid = with(order_body(), "/items/0/quantity", json!(0));
    api.assert_invalid(
        Call::post("/orders", &invalid).bearer(&bob()),
        "items[0].quantity",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn another_customers_order_is_indistinguishable_from_a_missing_one(pool: PgPool) {
    let api = jwt_api(pool);
    let alices = api.place_as(&alice(), &order_body()).await;
    let missing = Uuid::now_v7().to_string();

    let mut probes: Vec<(Call, Call)> = vec![
        (
            Call::get(format!("/orders/{alices}")),
            Call::get(format!("/orders/{missing}")),
        ),
        (
            Call::get(format!("/orders/{alices}?asOf=2100-01-01T00:00:00Z")),
            Call::get(format!("/orders/{missing}?asOf=2100-01-01T00:00:00Z")),
        ),
        (
            Call::get(format!("/orders/{alices}/history")),
            Call::get(format!("/orders/{missing}/history")),
        ),
    ];
    probes.extend(commands_on(&alices).into_iter().zip(commands_on(&missing)));
    for (theirs, nobodys) in probes {
        let description = theirs.describe();
        let theirs = api
            .assert_rejected_without_writes(theirs.bearer(&bob()), 404, "not-found")
            .await;
        let nobodys = api
            .assert_rejected_without_writes(nobodys.bearer(&bob()), 404, "not-found")
            .await;
        // The same answer, but for the id in the detail.
        let detail = |problem: &Value, id: &str| {
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .replace(id, "<id>")
        };
        assert_eq!(
            detail(&theirs, &alices),
            detail(&nobodys, &missing),
            "{description}"
        );
        assert_eq!(theirs["title"], nobodys["title"], "{description}");
    }
    // Even shipping (which a customer may never do) is a 404, not a 403: existence and
    // ownership are checked before the role.
    api.assert_rejected_without_writes(
        Call::post(format!("/orders/{alices}/shipment"), &shipment()).bearer(&bob()),
        404,
        "not-found",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_customer_changes_pays_and_cancels_its_own_orders_but_may_not_ship(pool: PgPool) {
    let api = jwt_api(pool);
    let place = || async { api.place_as(&alice(), &order_body()).await };
    let id = place().await;
    api.ok(Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, 10)).bearer(&alice()))
        .await;
    api.ok(Call::delete(format!("/orders/{id}/items/sku-9")).bearer(&alice()))
        .await;
    api.ok(Call::put(format!("/orders/{id}/delivery-address"), &new_address()).bearer(&alice()))
        .await;
    api.ok(Call::post(format!("/orders/{id}/payment"), &payment(TOTAL)).bearer(&alice()))
        .await;
    api.ok(Call::get(format!("/orders/{id}")).bearer(&alice()))
        .await;
    api.ok(Call::get(format!("/orders/{id}/history")).bearer(&alice()))
        .await;

    let problem = api
        .assert_rejected_without_writes(
            Call::post(format!("/orders/{id}/shipment"), &shipment()).bearer(&alice()),
            403,
            "forbidden",
        )
        .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("ship"));
    // The role (403) is checked before If-Match (412).
    api.assert_rejected_without_writes(
        Call::post(format!("/orders/{id}/shipment"), &shipment())
            .bearer(&alice())
            .header("if-match", "\"99\""),
        403,
        "forbidden",
    )
    .await;

    let other = place().await;
    api.ok(Call::post(format!("/orders/{other}/cancellation"), &cancellation()).bearer(&alice()))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn operators_and_admins_may_do_everything_to_every_order(pool: PgPool) {
    let api = jwt_api(pool);
    let id = api.place_as(&alice(), &order_body()).await;
    for staff in [operator(), token("ada", &["admin"], None)] {
        api.ok(Call::get(format!("/orders/{id}")).bearer(&staff))
            .await;
        api.ok(Call::get(format!("/orders/{id}/history")).bearer(&staff))
            .await;
        api.ok(Call::get("/orders?customerId=cust-2").bearer(&staff))
            .await;
    }
    api.ok(Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, 10)).bearer(&operator()))
        .await;
    let total = api
        .ok(Call::get(format!("/orders/{id}")).bearer(&operator()))
        .await
        .json["total"]
        .as_u64()
        .expect("a total");
    api.ok(Call::post(format!("/orders/{id}/payment"), &payment(total)).bearer(&operator()))
        .await;
    api.ok(Call::post(format!("/orders/{id}/shipment"), &shipment()).bearer(&operator()))
        .await;
    // An operator places orders for any customer.
    api.ok(Call::post("/orders", &order_body()).bearer(&operator()))
        .await;
    let for_bob = with(order_body(), "/customer/customerId", json!("cust-2"));
    api.ok(Call::post("/orders", &for_bob).bearer(&token("ada", &["admin"], None)))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_user_without_a_role_may_do_nothing(pool: PgPool) {
    let api = jwt_api(pool);
    let nobody = token("nobody", &[], None);
    let unknown_role = token("nobody", &["superuser"], None);
    let id = api.place_as(&alice(), &order_body()).await;
    for who in [&nobody, &unknown_role] {
        api.assert_rejected_without_writes(
            Call::post("/orders", &order_body()).bearer(who),
            403,
            "forbidden",
        )
        .await;
        api.assert_rejected_without_writes(Call::get("/orders").bearer(who), 403, "forbidden")
            .await;
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{id}")).bearer(who),
            404,
            "not-found",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_customer_lists_only_its_own_orders(pool: PgPool) {
    let api = jwt_api(pool.clone());
    let alices = api
        .ok(Call::post("/orders", &order_body()).bearer(&alice()))
        .await
        .json["orderId"]
        .clone();
    let for_bob = with(order_body(), "/customer/customerId", json!("cust-2"));
    let bobs = api
        .ok(Call::post("/orders", &for_bob).bearer(&bob()))
        .await
        .json["orderId"]
        .clone();
    order_postgres::rebuild(&pool)
        .await
        .expect("the read model rebuilds");

    let ids = |reply: Reply| -> Vec<Value> {
        reply.json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["orderId"].clone())
            .collect()
    };
    // customerId defaults to the customer's own.
    assert_eq!(
        ids(api.ok(Call::get("/orders").bearer(&alice())).await),
        vec![alices.clone()]
    );
    assert_eq!(
        ids(api
            .ok(Call::get("/orders?customerId=cust-1").bearer(&alice()))
            .await),
        vec![alices.clone()]
    );
    assert_eq!(
        ids(api.ok(Call::get("/orders").bearer(&bob())).await),
        vec![bobs.clone()]
    );
    api.assert_rejected_without_writes(
        Call::get("/orders?customerId=cust-2").bearer(&alice()),
        403,
        "forbidden",
    )
    .await;
    // Staff see every customer's orders.
    let all = ids(api.ok(Call::get("/orders").bearer(&operator())).await);
    assert_eq!(all.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_tokens_subject_is_the_acting_user_and_x_user_id_is_ignored(pool: PgPool) {
    let api = jwt_api(pool);
    let id = api
        .ok(Call::post("/orders", &order_body())
            .bearer(&alice())
            .header("x-user-id", "mallory"))
        .await
        .json["orderId"]
        .as_str()
        .expect("an id")
        .to_owned();
    api.ok(Call::post(format!("/orders/{id}/payment"), &payment(TOTAL))
        .bearer(&operator())
        .header("x-user-id", "mallory"))
        .await;
    // Even a malformed X-User-Id is ignored, not refused, under JWT.
    api.ok(Call::post(format!("/orders/{id}/shipment"), &shipment())
        .bearer(&operator())
        .header_bytes("x-user-id", b"bad\xffvalue"))
        .await;
    let history = api
        .ok(Call::get(format!("/orders/{id}/history")).bearer(&operator()))
        .await
        .json["events"]
        .clone();
    let users: Vec<&str> = history
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["metadata"]["userId"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(users, ["alice", "olga", "olga"]);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn idempotency_keys_are_kept_per_user(pool: PgPool) {
    let api = jwt_api(pool);
    let first = api
        .ok(Call::post("/orders", &order_body())
            .bearer(&alice())
            .header("idempotency-key", "same-key"))
        .await;
    let again = api
        .ok(Call::post("/orders", &order_body())
            .bearer(&alice())
            .header("idempotency-key", "same-key"))
        .await;
    assert_eq!(again.json, first.json, "alice's retry replays her answer");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    // Another user's identical request with the same key is a request of its own.
    let theirs = api
        .ok(Call::post("/orders", &order_body())
            .bearer(&operator())
            .header("idempotency-key", "same-key"))
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.json["orderId"], first.json["orderId"]);
    assert_eq!(theirs.header("idempotent-replayed"), None);
}

// ---------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------

fn cli(args: &[&str]) -> Cli {
    let mut argv = vec!["order-service"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("the arguments parse")
}

#[test]
fn the_service_starts_with_exactly_one_of_jwt_secret_and_auth_mode_none() {
    // Flags, so that the test does not depend on the environment's variables.
    let neither = cli(&[]);
    if std::env::var_os("JWT_SECRET").is_none() && std::env::var_os("AUTH_MODE").is_none() {
        let refused = neither
            .settings()
            .expect_err("no authentication configured");
        assert!(format!("{refused:#}").contains("JWT_SECRET"), "{refused:#}");
    }
    let both = cli(&["--jwt-secret", SECRET, "--auth-mode", "none"]);
    assert!(both.settings().is_err(), "both set");
    let short = cli(&["--jwt-secret", "too-short"]);
    let refused = short.settings().expect_err("a short secret");
    assert!(format!("{refused:#}").contains("32 bytes"), "{refused:#}");
    assert!(cli(&["--jwt-secret", SECRET])
        .settings()
        .expect("JWT")
        .auth
        .is_required());
    assert!(!cli(&["--auth-mode", "none"])
        .settings()
        .expect("none")
        .auth
        .is_required());
}

#[tokio::test]
async fn the_binary_refuses_to_start_without_authentication_and_mints_tokens() {
    let binary = env!("CARGO_BIN_EXE_order-service");
    let refused = std::process::Command::new(binary)
        .env_remove("JWT_SECRET")
        .env_remove("JWT_JWKS_URL")
        .env_remove("AUTH_MODE")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .output()
        .expect("the binary runs");
    assert!(!refused.status.success());
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(log.contains("no authentication configured"), "{log}");

    let minted = std::process::Command::new(binary)
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "customer",
            "--customer-id",
            "cust-1",
        ])
        .env("JWT_SECRET", SECRET)
        .env_remove("AUTH_MODE")
        .output()
        .expect("the binary runs");
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).expect("text");
    let actor = authenticator()
        .authenticate(Some(format!("Bearer {}", token.trim()).as_bytes()), None)
        .await
        .expect("the minted token authenticates");
    assert_eq!(actor.user_id(), Some("alice"));
    assert_eq!(actor.own_customer().map(|c| c.as_str()), Some("cust-1"));

    let help = std::process::Command::new(binary)
        .arg("--help")
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for setting in [
        "JWT_SECRET",
        "JWT_JWKS_URL",
        "AUTH_MODE",
        "HTTP_BODY_LIMIT",
        "HTTP_MAX_CONCURRENT_REQUESTS",
        "DB_ACQUIRE_TIMEOUT_MS",
    ] {
        assert!(help.contains(setting), "--help lists {setting}");
    }
}

// ---------------------------------------------------------------------------------------
// JWT_ISSUER and JWT_AUDIENCE
// ---------------------------------------------------------------------------------------

const ISSUER: &str = "https://id.example.com/realms/shop";
const AUDIENCE: &str = "order-service";

fn checked_authenticator() -> Authenticator {
    authenticator()
        .with_issuer_and_audience(Some(ISSUER.to_owned()), Some(AUDIENCE.to_owned()))
        .expect("an issuer and an audience")
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn with_an_issuer_and_an_audience_only_tokens_naming_both_get_in(pool: PgPool) {
    let api = Api::with_settings(
        pool,
        &ServiceSettings {
            auth: checked_authenticator(),
            ..ServiceSettings::default()
        },
    );
    let now = now_seconds();
    let valid = json!({
        "sub": "olga", "exp": now + 600, "roles": ["operator"],
        "iss": ISSUER, "aud": AUDIENCE,
    });
    let with = |key: &str, value: Value| with_claim(&valid, key, value);
    let without = |key: &str| without_claim(&valid, key);
    let accepted = [
        ("iss and aud as configured", valid.clone()),
        (
            "aud an array containing the audience",
            with("aud", json!(["billing", AUDIENCE])),
        ),
    ];
    for (case, claims) in accepted {
        let reply = api
            .send(Call::get("/orders").bearer(&sign(&claims, Algorithm::HS256, SECRET)))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{case}: {}", reply.text());
    }
    let minted = checked_authenticator()
        .mint(&claims("olga", &["operator"], None))
        .expect("a token");
    let reply = api.send(Call::get("/orders").bearer(&minted)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a minted token carries iss and aud"
    );

    let refused = [
        (
            "another issuer",
            with("iss", json!("https://evil.example.com")),
        ),
        ("no issuer", without("iss")),
        ("another audience", with("aud", json!("billing"))),
        (
            "an array without the audience",
            with("aud", json!(["billing"])),
        ),
        ("no audience", without("aud")),
    ];
    for (case, claims) in refused {
        let token = sign(&claims, Algorithm::HS256, SECRET);
        api.assert_unauthenticated(
            Call::post("/orders", &order_body()).bearer(&token),
            "invalid-token",
        )
        .await;
        let reply = api.send(Call::get("/orders").bearer(&token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            reply.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("iss") || d.contains("aud")),
            "{case}: the detail names the claim: {}",
            reply.text()
        );
    }
    // Without them configured, tokens with any iss and aud keep working.
    let open = authenticator();
    let any = sign(&with("aud", json!("billing")), Algorithm::HS256, SECRET);
    assert!(open
        .authenticate(Some(format!("Bearer {any}").as_bytes()), None)
        .await
        .is_ok());
}

#[test]
fn an_issuer_or_audience_needs_a_secret_and_a_value() {
    let refused = cli(&["--auth-mode", "none", "--jwt-issuer", ISSUER])
        .settings()
        .expect_err("an issuer without tokens");
    assert!(format!("{refused:#}").contains("JWT_SECRET"), "{refused:#}");
    let refused = cli(&["--jwt-secret", SECRET, "--jwt-audience", ""])
        .settings()
        .expect_err("an empty audience");
    assert!(format!("{refused:#}").contains("empty"), "{refused:#}");
    let settings = cli(&[
        "--jwt-secret",
        SECRET,
        "--jwt-issuer",
        ISSUER,
        "--jwt-audience",
        AUDIENCE,
    ])
    .settings()
    .expect("both with a secret");
    let minted = settings
        .auth
        .mint(&claims("olga", &["operator"], None))
        .expect("a token");
    // Decoded with the secret alone, so the claims are read as minted.
    let mut read = jsonwebtoken::Validation::new(Algorithm::HS256);
    read.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        &minted,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &read,
    )
    .expect("a token signed with the secret")
    .claims;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
}
