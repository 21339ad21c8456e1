//! Tokens from an identity provider (`JWT_JWKS_URL`), as API.md says, with real keys:
//! an RSA and a P-256 key generated here, published as a JWKS by a local HTTP server
//! that plays the identity provider (and can rotate its keys, or go down). RS256 and
//! ES256 tokens of its keys get in; a wrong `alg` for the key, HS256, `none`, an
//! unknown `kid`, another issuer or a missing audience answer 401; a rotated key works
//! without a restart, and unknown `kid`s refetch the set at most once per interval;
//! until the set has been fetched the service is not ready and answers 503.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test http_jwks`.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Parser;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use order_api::auth::{now_seconds, Authenticator};
use order_service::{Cli, ServiceSettings};
use rsa::rand_core::OsRng;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::*;

const ISSUER: &str = "https://id.example.com/realms/shop";
const AUDIENCE: &str = "order-service";

/// A signing key of the identity provider: its private half signs tokens, its public
/// half is published as a JWK.
struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key for RS256.
    fn rsa(kid: &str) -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("an RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64(&private.n().to_bytes_be()),
                "e": b64(&private.e().to_bytes_be()),
            }),
        }
    }

    /// A fresh P-256 key for ES256 (published without `alg`, as some providers do).
    fn p256(kid: &str) -> Self {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut OsRng);
        let der = secret.to_pkcs8_der().expect("PKCS#8 DER");
        let point = secret.public_key().to_encoded_point(false);
        Self {
            kid: kid.to_owned(),
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk: json!({
                "kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                "x": b64(point.x().expect("x")),
                "y": b64(point.y().expect("y")),
            }),
        }
    }

    /// A token for `claims`, signed with this key and naming it.
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(claims, self.algorithm, Some(&self.kid))
    }

    /// A token for `claims` signed with this key under another `alg` or `kid`.
    fn sign_as(&self, claims: &Value, algorithm: Algorithm, kid: Option<&str>) -> String {
        let header = Header {
            kid: kid.map(str::to_owned),
            ..Header::new(algorithm)
        };
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signs")
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the identity provider publishes, and how often it was asked.
#[derive(Default)]
struct Published {
    keys: Vec<Value>,
    up: bool,
    fetches: usize,
}

/// A local identity provider serving its key set at `/keys`.
struct Idp {
    addr: SocketAddr,
    published: Arc<Mutex<Published>>,
}

impl Idp {
    async fn start(keys: &[&SigningKey], up: bool) -> Self {
        let published = Arc::new(Mutex::new(Published {
            keys: keys.iter().map(|key| key.jwk.clone()).collect(),
            up,
            fetches: 0,
        }));
        let router = axum::Router::new()
            .route("/keys", get(serve_keys))
            .with_state(published.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, published }
    }

    fn url(&self) -> String {
        format!("http://{}/keys", self.addr)
    }

    fn publish(&self, keys: &[&SigningKey]) {
        self.published.lock().unwrap().keys = keys.iter().map(|key| key.jwk.clone()).collect();
    }

    fn set_up(&self, up: bool) {
        self.published.lock().unwrap().up = up;
    }

    fn fetches(&self) -> usize {
        self.published.lock().unwrap().fetches
    }
}

async fn serve_keys(State(published): State<Arc<Mutex<Published>>>) -> Response {
    let mut published = published.lock().unwrap();
    published.fetches += 1;
    if published.up {
        axum::Json(json!({ "keys": published.keys })).into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

/// The service with tokens of `idp`, from `iss` [`ISSUER`] for [`AUDIENCE`],
/// refetching on unknown `kid`s at most every `refetch_every`.
fn service(pool: PgPool, idp: &Idp, refetch_every: Duration) -> Api {
    let auth = Authenticator::jwks_refetching_every(&idp.url(), refetch_every)
        .expect("an http URL")
        .with_issuer_and_audience(Some(ISSUER.to_owned()), Some(AUDIENCE.to_owned()))
        .expect("an issuer and an audience");
    Api::with_settings(
        pool,
        &ServiceSettings {
            auth,
            ..ServiceSettings::default()
        },
    )
}

/// Valid claims of an operator: `iss` and `aud` as the service wants them.
fn operator() -> Value {
    json!({
        "sub": "olga", "exp": now_seconds() + 600, "roles": ["operator"],
        "iss": ISSUER, "aud": AUDIENCE,
    })
}

/// Waits until `/readyz` answers 200 (the key set has been fetched).
async fn ready(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = api.send(Call::get("/readyz")).await;
        if reply.status == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts `token` gets a 401 with a bearer challenge and a problem naming why (the
/// detail contains `why`), on a read and on a command, and that nothing is written.
async fn assert_refused(api: &Api, case: &str, token: &str, why: &str) {
    for call in [
        Call::get("/orders").bearer(token),
        Call::post("/orders", &order_body()).bearer(token),
    ] {
        let problem = api.assert_unauthenticated(call, "invalid-token").await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(why), "{case}: {detail:?} names {why:?}");
    }
}

async fn status(api: &Api, token: &str) -> StatusCode {
    api.send(Call::get("/orders").bearer(token)).await.status
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn rs256_and_es256_tokens_of_the_published_keys_get_in(pool: PgPool) {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::p256("ec-1");
    let idp = Idp::start(&[&rsa, &ec], true).await;
    let api = service(pool, &idp, Duration::from_secs(30));
    ready(&api).await;

    for key in [&rsa, &ec] {
        let token = key.sign(&operator());
        assert_eq!(
            status(&api, &token).await,
            StatusCode::OK,
            "{:?}",
            key.algorithm
        );
    }
    // The token's subject is the acting user, recorded on the event.
    let customer = json!({
        "sub": "alice", "exp": now_seconds() + 600, "roles": ["customer"],
        "customerId": "cust-1", "iss": ISSUER, "aud": [AUDIENCE, "billing"],
    });
    let id = api.place_as(&ec.sign(&customer), &order_body()).await;
    let history = api
        .ok(Call::get(format!("/orders/{id}/history")).bearer(&rsa.sign(&operator())))
        .await;
    assert_eq!(
        history.json["events"][0]["metadata"]["userId"],
        "alice",
        "{}",
        history.text()
    );
    assert_eq!(idp.fetches(), 1, "known keys need no refetch");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_token_the_key_set_does_not_vouch_for_answers_401(pool: PgPool) {
    let rsa = SigningKey::rsa("rsa-1");
    let ec = SigningKey::p256("ec-1");
    let impostor = SigningKey::rsa("rsa-1");
    let idp = Idp::start(&[&rsa, &ec], true).await;
    let api = service(pool, &idp, Duration::from_secs(30));
    ready(&api).await;

    let valid = operator();
    let with = |key: &str, value: Value| {
        let mut claims = valid.clone();
        claims[key] = value;
        claims
    };
    let without = |key: &str| {
        let mut claims = valid.clone();
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    let hs256 = jsonwebtoken::encode(
        &Header {
            kid: Some("rsa-1".to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &valid,
        &EncodingKey::from_secret(b"a-shared-secret-that-is-long-enough-for-hs256"),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#),
        b64(valid.to_string().as_bytes())
    );
    let cases = [
        (
            "an ES256 token naming the RSA key",
            ec.sign_as(&valid, Algorithm::ES256, Some("rsa-1")),
            "its key",
        ),
        (
            "an RS256 token naming the P-256 key",
            rsa.sign_as(&valid, Algorithm::RS256, Some("ec-1")),
            "its key",
        ),
        ("HS256 under JWKS", hs256, "HS256"),
        ("alg none", none, "none"),
        ("no kid", rsa.sign_as(&valid, Algorithm::RS256, None), "kid"),
        (
            "an unknown kid",
            rsa.sign_as(&valid, Algorithm::RS256, Some("rsa-9")),
            "not in the identity provider's key set",
        ),
        (
            "another key under a published kid",
            impostor.sign(&valid),
            "signature",
        ),
        (
            "another issuer",
            rsa.sign(&with("iss", json!("https://evil.example.com"))),
            "iss",
        ),
        ("no audience", ec.sign(&without("aud")), "aud"),
        (
            "another audience",
            ec.sign(&with("aud", json!("billing"))),
            "aud",
        ),
        (
            "expired",
            rsa.sign(&with("exp", json!(now_seconds() - 3600))),
            "expired",
        ),
    ];
    for (case, token, why) in cases {
        assert_refused(&api, case, &token, why).await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rotated_key_works_without_a_restart_and_unknown_kids_refetch_at_most_once_per_interval(
    pool: PgPool,
) {
    const INTERVAL: Duration = Duration::from_millis(800);
    let old = SigningKey::rsa("2026-11");
    let new = SigningKey::p256("2026-12");
    let idp = Idp::start(&[&old], true).await;
    let api = service(pool, &idp, INTERVAL);
    ready(&api).await;
    assert_eq!(status(&api, &old.sign(&operator())).await, StatusCode::OK);
    assert_eq!(idp.fetches(), 1);

    // The provider rotates; once the last fetch is an interval old, the first token
    // naming the new key refetches the set, and gets in.
    idp.publish(&[&new]);
    tokio::time::sleep(INTERVAL).await;
    assert_eq!(status(&api, &new.sign(&operator())).await, StatusCode::OK);
    assert_eq!(idp.fetches(), 2, "one refetch for the new kid");
    assert_eq!(
        status(&api, &old.sign(&operator())).await,
        StatusCode::UNAUTHORIZED,
        "the retired key is gone with the set it was dropped from"
    );

    // A kid that stays unknown: refused, and asking again within the interval does
    // not fetch again (a flood of bad tokens cannot hammer the provider).
    let stranger = new.sign_as(&operator(), Algorithm::ES256, Some("nobody"));
    for _ in 0..5 {
        assert_eq!(status(&api, &stranger).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(idp.fetches(), 2, "no refetch within the interval");
    tokio::time::sleep(INTERVAL).await;
    assert_eq!(status(&api, &stranger).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.fetches(), 3, "one refetch once the interval has passed");
    assert_eq!(status(&api, &new.sign(&operator())).await, StatusCode::OK);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn until_the_key_set_is_fetched_the_service_is_not_ready_and_answers_503(pool: PgPool) {
    let key = SigningKey::rsa("rsa-1");
    let idp = Idp::start(&[&key], false).await;
    let api = service(pool, &idp, Duration::from_secs(30));
    let token = key.sign(&operator());

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        idp.fetches() >= 2,
        "the fetch is retried: {}",
        idp.fetches()
    );
    assert_eq!(
        api.send(Call::get("/readyz")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(api.send(Call::get("/healthz")).await.status, StatusCode::OK);
    let before = counts(&api.pool).await;
    for call in [
        Call::get("/orders").bearer(&token),
        Call::post("/orders", &order_body()).bearer(&token),
    ] {
        let reply = api.send(call).await;
        assert_problem(&reply, 503, "unavailable");
    }
    assert_eq!(counts(&api.pool).await, before, "nothing written");
    // A request without a token is still a 401: nothing to check it against is needed.
    assert_eq!(
        api.send(Call::get("/orders")).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The provider comes up: the back-off (capped at 5 s) fetches the set soon after.
    idp.set_up(true);
    ready(&api).await;
    assert_eq!(status(&api, &token).await, StatusCode::OK);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn with_the_key_set_server_down_later_the_keys_fetched_keep_working(pool: PgPool) {
    const INTERVAL: Duration = Duration::from_millis(300);
    let key = SigningKey::p256("ec-1");
    let idp = Idp::start(&[&key], true).await;
    let api = service(pool, &idp, INTERVAL);
    ready(&api).await;

    idp.set_up(false);
    tokio::time::sleep(INTERVAL).await;
    assert_eq!(status(&api, &key.sign(&operator())).await, StatusCode::OK);
    let stranger = key.sign_as(&operator(), Algorithm::ES256, Some("ec-2"));
    assert_eq!(status(&api, &stranger).await, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.fetches(), 2, "the unknown kid tried a refetch");
    assert_eq!(
        api.send(Call::get("/readyz")).await.status,
        StatusCode::OK,
        "a set fetched once keeps the service ready"
    );
    assert_eq!(status(&api, &key.sign(&operator())).await, StatusCode::OK);
}

fn cli(args: &[&str]) -> Cli {
    let mut argv = vec!["order-service"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("the arguments parse")
}

#[test]
fn jwt_jwks_url_is_one_of_the_three_ways_and_an_http_url() {
    const URL: &str = "https://id.example.com/realms/shop/protocol/openid-connect/certs";
    const SECRET: &str = "an-http-test-secret-of-at-least-32-bytes";
    let settings = cli(&["--jwt-jwks-url", URL, "--jwt-issuer", ISSUER])
        .settings()
        .expect("a JWKS URL alone");
    assert!(settings.auth.is_required());
    assert!(!settings.auth.is_ready(), "nothing fetched yet");
    for both in [
        vec!["--jwt-jwks-url", URL, "--jwt-secret", SECRET],
        vec!["--jwt-jwks-url", URL, "--auth-mode", "none"],
    ] {
        let refused = cli(&both).settings().expect_err("two ways at once");
        assert!(
            format!("{refused:#}").contains("exactly one"),
            "{refused:#}"
        );
    }
    let refused = cli(&["--jwt-jwks-url", "file:///etc/keys.json"])
        .settings()
        .expect_err("not http");
    assert!(format!("{refused:#}").contains("http"), "{refused:#}");
    let refused = settings
        .auth
        .mint(&order_api::Claims {
            sub: "olga".to_owned(),
            exp: now_seconds() + 60,
            iat: None,
            roles: vec!["operator".to_owned()],
            customer_id: None,
        })
        .expect_err("no secret to sign with");
    assert!(format!("{refused:#}").contains("JWT_SECRET"), "{refused:#}");
}
