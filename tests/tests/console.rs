//! The operator console (`GET /console`) in a real browser: headless Chromium driven
//! over WebDriver (`fantoccini`; the test starts `chromedriver` on a free port and stops
//! it at the end), on the real service with authentication on (`JWT_SECRET`), three
//! real `outbox-relay` processes, the broker and a consumer reading the topic back.
//!
//! One scenario, as an operator lives it: a refused token and a non-admin token are
//! shown as refused; an admin token shows the backlog per partition and the relays;
//! rows parked for real (their messages larger than the producer's 1 MB limit) appear
//! with their errors; one is repaired and retried from the page, and its order's
//! events reach the topic in order; a replay and a rebuild run with their progress;
//! another order is skipped through the confirmation dialog (its rows go to the dead
//! letters with the reason); every action is listed; signing out forgets the token;
//! a service that stops answering is shown as unreachable.
//!
//! A binary of its own, so it can run alone: `scripts/test.sh -p e2e -- from_the_console`
//! (the script passes `--tests`, so the name filters; it installs Debian's chromium and
//! chromium-driver when missing and exports `CHROMEDRIVER`), or `cargo test -p e2e
//! --test console` with a broker in `KAFKA_BROKERS`. It saves a screenshot of the page
//! at 1280 px to `target/console.png`,
//! and to `docs/console.png` (the README's) with `UPDATE_SCREENSHOT=1`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::processes::{free_port, repo_root, RelayProcess};
use e2e::System;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt as _;
use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_service::ServiceSettings;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const SECRET: &str = "a-console-test-secret-of-at-least-32-bytes";

/// How long any one wait of the test may take.
const PATIENCE: Duration = Duration::from_secs(45);

/// The page's own refresh period is 2 s; state is polled a little faster.
const POLL: Duration = Duration::from_millis(200);

fn authenticator() -> Authenticator {
    Authenticator::jwt(SECRET.as_bytes()).expect("a long enough secret")
}

fn token(sub: &str, role: &str) -> String {
    authenticator()
        .mint(&Claims {
            sub: sub.to_owned(),
            exp: expiry_in(Duration::from_secs(3600)),
            iat: Some(now_seconds()),
            roles: vec![role.to_owned()],
            customer_id: None,
        })
        .expect("a token")
}

// ---------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------

/// `chromedriver` on a free port, killed when dropped.
#[derive(Debug)]
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: run with scripts/test.sh, which installs chromium-driver"
        );
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let driver = Driver { child, url };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = reqwest::get(format!("{}/status", driver.url))
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(status) = ready {
                if status.await.is_ok_and(|s| s["value"]["ready"] == true) {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A headless Chromium session. `--no-sandbox`: CI runs as root; the background
    /// services are off because this machine reaches no outside host.
    async fn session(&self) -> Client {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-extensions", "--no-first-run",
                    "--hide-scrollbars", "--window-size=1280,900", "--lang=en-US",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's state, read in one script: what the operator sees, by `data-testid`.
const PAGE_STATE: &str = r#"
const all = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];
const text = (id) => { const e = document.querySelector(`[data-testid="${id}"]`); return e && !e.hidden ? e.textContent.trim() : ""; };
return {
  connection: document.querySelector('[data-testid="connection"]').dataset.state,
  banner: text("banner"),
  notice: text("notice-text"),
  backlog: text("total-backlog"),
  parkedTotal: text("total-parked"),
  oldest: text("total-oldest"),
  lag: text("read-model-lag"),
  bars: all("partition-bar").map((b) => ({ partition: +b.dataset.partition, waiting: +b.dataset.waiting, parked: +b.dataset.parked, owner: b.dataset.owner, title: b.title })),
  relays: all("relay-row").map((r) => ({ relayId: r.dataset.relayId, partitions: +r.dataset.partitions })),
  parked: all("parked-row").map((r) => ({ outboxId: r.dataset.outboxId, orderId: r.dataset.orderId, lastError: r.querySelector('[data-testid="last-error"]').title })),
  actions: all("action-row").map((r) => [...r.cells].map((c) => c.title || c.textContent)),
  jobs: all("job").map((j) => ({ jobId: j.dataset.jobId, state: j.dataset.state, processed: +j.dataset.processed, total: j.dataset.total === "" ? null : +j.dataset.total, error: (j.querySelector('[data-testid="job-error"]') || {}).textContent || null })),
  dialogOpen: document.querySelector('[data-testid="confirm-dialog"]').open,
  signedIn: !document.querySelector('[data-testid="session"]').hidden,
};
"#;

/// The browser on the console page.
struct Console {
    client: Client,
}

impl Console {
    async fn state(&self) -> Value {
        self.client
            .execute(PAGE_STATE, vec![])
            .await
            .expect("the page state")
    }

    /// Polls the page until `done` holds, for at most [`PATIENCE`]; returns that state.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let state = self.state().await;
            if done(&state) {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "the console never showed {what}; it shows {state:#}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn by_id(&self, test_id: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(&format!("[data-testid=\"{test_id}\"]")))
            .await
            .unwrap_or_else(|e| panic!("no {test_id} on the page: {e}"))
    }

    /// Clicks the element with `data-testid` `test_id`.
    async fn press(&self, test_id: &str) {
        self.by_id(test_id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("could not click {test_id}: {e}"));
    }

    async fn sign_in(&self, token: &str) {
        let input = self.by_id("token-input").await;
        input.clear().await.expect("clear the token field");
        input.send_keys(token).await.expect("type the token");
        self.press("sign-in").await;
    }

    /// Clicks the button `button` (`retry`, `skip`) of the parked row of `order`.
    async fn press_on_row(&self, order: Uuid, button: &str) {
        let selector = format!(
            "[data-testid=\"parked-row\"][data-order-id=\"{order}\"] [data-testid=\"{button}\"]"
        );
        self.client
            .find(Locator::Css(&selector))
            .await
            .unwrap_or_else(|e| panic!("no {button} button on {order}'s row: {e}"))
            .click()
            .await
            .expect("press the button");
    }

    /// Sets the window so the page's viewport is 1280 px wide and `height` tall.
    async fn set_viewport(&self, height: u32) {
        self.client
            .set_window_size(1280, height)
            .await
            .expect("resize");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("the viewport");
        let (width, inner_height) = (
            inner[0].as_u64().unwrap_or(1280),
            inner[1].as_u64().unwrap_or(0),
        );
        let chrome_width = 1280 - width.min(1280) as u32;
        let chrome_height = height.saturating_sub(inner_height as u32);
        self.client
            .set_window_size(1280 + chrome_width, height + chrome_height)
            .await
            .expect("resize");
    }

    /// Saves a PNG of the page, 1280 px wide and as tall as it is (900 to 1000 px), to
    /// `target/console.png`, and to `docs/console.png` with `UPDATE_SCREENSHOT=1`.
    async fn screenshot(&self) {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .expect("the page's height")
            .as_u64()
            .unwrap_or(900);
        self.set_viewport(height.clamp(900, 1000) as u32).await;
        let png = self.client.screenshot().await.expect("a screenshot");
        let target = target_dir().join("console.png");
        std::fs::write(&target, &png).expect("write target/console.png");
        if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
            let docs = repo_root().join("docs/console.png");
            std::fs::write(&docs, &png).expect("write docs/console.png");
        }
    }
}

/// `target/` (of `target/debug/deps/console-<hash>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .expect("the target directory")
}

// ---------------------------------------------------------------------------------------
// The system
// ---------------------------------------------------------------------------------------

/// Places an order as `bearer`; returns its id.
async fn place(system: &System, bearer: &str, customer: &str) -> Uuid {
    let auth = format!("Bearer {bearer}");
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(e2e::order_body(customer)),
            &[("Authorization", &auth)],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["orderId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("orderId")
}

/// Adds `count` lines to `order`: `count` more events, held back while its first is parked.
async fn add_items(system: &System, bearer: &str, order: Uuid, count: usize) {
    let auth = format!("Bearer {bearer}");
    for n in 0..count {
        let (status, body) = system
            .send(
                Method::POST,
                &format!("/orders/{order}/items"),
                Some(json!({"productId": format!("sku-extra-{n}"), "quantity": 1, "unitPrice": 5000})),
                &[("Authorization", &auth)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn outbox_rows_of(system: &System, order: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate_id = $1")
        .bind(order)
        .fetch_one(&system.pool)
        .await
        .expect("count")
}

async fn wait_until_drained(system: &System, order: Uuid) {
    let deadline = Instant::now() + PATIENCE;
    while outbox_rows_of(system, order).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox still holds rows of {order}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The committed versions of `order`, in order.
async fn versions_of(system: &System, order: Uuid) -> Vec<i64> {
    system
        .committed_events()
        .await
        .into_iter()
        .filter(|(id, _, _)| *id == order)
        .map(|(_, version, _)| version)
        .collect()
}

/// The versions of `order` read from the topic, in the order they arrived.
fn received_versions(received: &[e2e::Received], order: Uuid) -> Vec<i64> {
    let key = order.to_string();
    received
        .iter()
        .filter(|m| m.key == key)
        .filter_map(|m| m.value["version"].as_i64())
        .collect()
}

async fn wait_until_outbox_holds(system: &System, rows: i64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&system.pool)
            .await
            .expect("count");
        if held == rows {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox holds {held} rows, not {rows}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /admin/outbox`, as the admin.
async fn admin_outbox(system: &System, admin: &str) -> Value {
    let response = system
        .client
        .get(format!("{}/admin/outbox", system.http))
        .bearer_auth(admin)
        .send()
        .await
        .expect("GET /admin/outbox");
    assert_eq!(response.status(), 200);
    response.json().await.expect("the outbox JSON")
}

/// What the service answers `GET /admin/outbox` with `bearer`: status and problem detail.
async fn refusal(system: &System, bearer: &str) -> (u16, String) {
    let response = system
        .client
        .get(format!("{}/admin/outbox", system.http))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("GET /admin/outbox");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `versions` without repeats, each where it first arrived.
fn first_arrivals(versions: &[i64]) -> Vec<i64> {
    let mut first = Vec::new();
    for version in versions {
        if !first.contains(version) {
            first.push(*version);
        }
    }
    first
}

/// The rows of the page state's `key`, each as its JSON text (to look for words in).
fn texts(state: &Value, key: &str) -> Vec<String> {
    state[key]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| row.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_sees_the_outbox_and_repairs_a_parked_row_from_the_console() {
    let settings = ServiceSettings {
        auth: authenticator(),
        ..ServiceSettings::default()
    };
    let system = System::launch(0, &settings, true).await;
    let operator = token("olga", "operator");
    let admin = token("ada", "admin");

    // Before any relay runs: three orders whose first row will be parked (each with
    // later rows held back behind it), and healthy orders that flow.
    let repaired = place(&system, &operator, "c-repaired").await;
    let skipped = place(&system, &operator, "c-skipped").await;
    let waiting = place(&system, &operator, "c-waiting").await;
    let mut healthy = Vec::new();
    for n in 0..6 {
        healthy.push(place(&system, &operator, &format!("c-healthy-{n}")).await);
    }
    add_items(&system, &operator, repaired, 2).await;
    add_items(&system, &operator, skipped, 3).await;
    add_items(&system, &operator, waiting, 4).await;
    let original = system.poison_first_row(repaired).await;
    system.poison_first_row(skipped).await;
    let waiting_original = system.poison_first_row(waiting).await;

    let relays: Vec<RelayProcess> = (0..3)
        .map(|_| {
            RelayProcess::spawn(
                &system.database_url,
                &e2e::brokers(),
                &system.topic,
                &[("RELAY_MAX_ATTEMPTS", "3"), ("RELAY_MAX_BACKOFF_MS", "200")],
            )
        })
        .collect();

    let driver = Driver::start().await;
    let console = Console {
        client: driver.session().await,
    };
    let orders = Orders {
        operator: &operator,
        admin: &admin,
        repaired,
        original: &original,
        skipped,
        waiting,
        waiting_original: &waiting_original,
        healthy: &healthy,
    };
    let outcome = AssertUnwindSafe(scenario(&system, &console, orders))
        .catch_unwind()
        .await;
    // The service stops (the relays first): the page says it no longer answers.
    drop(relays);
    system.stop().await;
    let outcome = match outcome {
        Ok(()) => {
            AssertUnwindSafe(shows_the_service_unreachable(&console))
                .catch_unwind()
                .await
        }
        failed => failed,
    };
    if outcome.is_err() {
        if let Ok(png) = console.client.screenshot().await {
            let _ = std::fs::write(target_dir().join("console-failure.png"), png);
        }
    }
    let _ = console.client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn shows_the_service_unreachable(console: &Console) {
    let state = console
        .wait_for("the service unreachable", |s| {
            s["connection"] == "unreachable"
        })
        .await;
    assert!(
        state["banner"]
            .as_str()
            .is_some_and(|b| b.contains("does not answer")),
        "{state:#}"
    );
}

/// The orders and tokens the scenario works on.
struct Orders<'a> {
    operator: &'a str,
    admin: &'a str,
    /// Parked, repaired in the database and retried from the page.
    repaired: Uuid,
    original: &'a str,
    /// Parked, skipped from the page.
    skipped: Uuid,
    /// Parked, still parked in the screenshot; repaired and retried at the end.
    waiting: Uuid,
    waiting_original: &'a str,
    healthy: &'a [Uuid],
}

async fn scenario(system: &System, console: &Console, orders: Orders<'_>) {
    console
        .client
        .goto(&format!("{}/console", system.http))
        .await
        .expect("open the console");
    console.set_viewport(900).await;
    // The page's script runs only if the Content-Security-Policy names its hash.
    let state = console
        .wait_for("the sign-in form", |s| s["connection"] == "signed-out")
        .await;
    assert_eq!(state["signedIn"], false);

    // A token that is no JWT, then an operator's: each refused, with the service's detail.
    for (bearer, status) in [("not-a-jwt", 401), (orders.operator, 403)] {
        let (expected_status, detail) = refusal(system, bearer).await;
        assert_eq!(expected_status, status, "the service refuses the token");
        console.sign_in(bearer).await;
        let state = console
            .wait_for(&format!("the {status} refusal"), |s| {
                s["connection"] == "refused"
            })
            .await;
        let banner = state["banner"].as_str().unwrap_or_default();
        assert!(
            banner.contains(&format!("Token refused ({status})")) && banner.contains(&detail),
            "the banner shows the refusal and the service's detail {detail:?}: {banner:?}"
        );
        assert_eq!(state["signedIn"], false, "a refused token is forgotten");
    }

    // The admin token: the backlog per partition, the relays, the parked rows.
    console.sign_in(orders.admin).await;
    let state = console
        .wait_for(
            "three relays sharing the 64 partitions and three parked rows",
            |s| {
                s["connection"] == "ok"
                    && s["bars"].as_array().map(Vec::len) == Some(64)
                    && s["relays"].as_array().is_some_and(|r| {
                        r.len() == 3
                            && r.iter()
                                .map(|r| r["partitions"].as_u64().unwrap_or(0))
                                .sum::<u64>()
                                == 64
                    })
                    && s["parked"].as_array().map(Vec::len) == Some(3)
            },
        )
        .await;
    let parked_errors: HashMap<String, String> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT aggregate_id, last_error FROM outbox WHERE parked_at IS NOT NULL",
    )
    .fetch_all(&system.pool)
    .await
    .expect("parked rows")
    .into_iter()
    .map(|(order, error)| (order.to_string(), error))
    .collect();
    for row in state["parked"].as_array().expect("parked rows") {
        let order = row["orderId"].as_str().expect("orderId");
        let error = row["lastError"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "{order}'s row shows its error");
        assert_eq!(
            Some(&error.to_owned()),
            parked_errors.get(order),
            "the row's own error"
        );
    }
    for order in [orders.repaired, orders.skipped, orders.waiting] {
        let partition: i32 =
            sqlx::query_scalar("SELECT partition FROM outbox WHERE aggregate_id = $1 LIMIT 1")
                .bind(order)
                .fetch_one(&system.pool)
                .await
                .expect("partition");
        let bar = &state["bars"][partition as usize];
        assert!(
            bar["parked"].as_u64() >= Some(1) && bar["waiting"].as_u64() >= Some(1),
            "partition {partition} is drawn with its parked and waiting rows: {bar}"
        );
        assert!(
            bar["title"].as_str().is_some_and(|t| t.contains("oldest")),
            "{bar}"
        );
    }
    // Once the healthy orders are out, the totals are still: the page shows the
    // service's figures.
    wait_until_outbox_holds(system, 3 + 2 + 3 + 4).await;
    let outbox = admin_outbox(system, orders.admin).await;
    console
        .wait_for("the service's totals", |s| {
            s["backlog"].as_str() == Some(outbox["backlog"].to_string().as_str())
                && s["parkedTotal"].as_str() == Some(outbox["parked"].to_string().as_str())
        })
        .await;

    // Repaired in the database, retried from the page: the row leaves the list, its
    // order's rows drain, and its events reach the topic in version order.
    system
        .repair_first_row(orders.repaired, orders.original)
        .await;
    console.press_on_row(orders.repaired, "retry").await;
    let repaired = orders.repaired.to_string();
    console
        .wait_for("the retried row gone", |s| {
            s["parked"].as_array().is_some_and(|rows| {
                rows.len() == 2 && rows.iter().all(|r| r["orderId"] != repaired.as_str())
            })
        })
        .await;
    wait_until_drained(system, orders.repaired).await;
    let versions = versions_of(system, orders.repaired).await;
    assert_eq!(versions, vec![1, 2, 3]);
    let received = system
        .consume(PATIENCE, |r| {
            received_versions(r, orders.repaired).len() >= 3
        })
        .await;
    assert_eq!(
        received_versions(&received, orders.repaired),
        versions,
        "the retried order's events arrive once each, in order"
    );
    let outbox_id = state["parked"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["orderId"] == repaired.as_str()))
        .and_then(|r| r["outboxId"].as_str())
        .expect("the retried row's outboxId")
        .to_owned();
    let state = console
        .wait_for("the retry among the recent actions", |s| {
            texts(s, "actions").iter().any(|a| {
                a.contains("outbox.retry") && a.contains(&format!("\"outbox row {outbox_id}\""))
            })
        })
        .await;
    assert!(
        texts(&state, "actions").iter().any(|a| a.contains("ada")),
        "the acting admin is recorded"
    );

    // A replay of one healthy order: its job runs to the end, and its events come again
    // with their original eventId.
    let replayed = orders.healthy[0];
    console
        .by_id("replay-by")
        .await
        .select_by_value("orderId")
        .await
        .expect("replay by order");
    console
        .by_id("replay-value")
        .await
        .send_keys(&replayed.to_string())
        .await
        .expect("type the order id");
    console.press("replay-submit").await;
    let state = console
        .wait_for("the replay job finished", |s| {
            s["jobs"].as_array().is_some_and(|jobs| {
                jobs.iter().any(|j| {
                    j["state"] == "succeeded"
                        && j["total"].as_u64() >= Some(1)
                        && j["processed"] == j["total"]
                })
            })
        })
        .await;
    assert!(state["notice"]
        .as_str()
        .is_some_and(|n| n.contains("Replay started")));
    let received = system
        .consume(PATIENCE, |r| received_versions(r, replayed).len() >= 2)
        .await;
    let ids: Vec<&str> = received
        .iter()
        .filter(|m| m.key == replayed.to_string())
        .filter_map(|m| m.value["eventId"].as_str())
        .collect();
    assert!(
        ids.len() == 2 && ids[0] == ids[1],
        "the replayed event keeps its eventId: {ids:?}"
    );

    // A rebuild, confirmed in the dialog: its job runs to the end.
    console.press("rebuild").await;
    console
        .wait_for("the confirmation dialog", |s| s["dialogOpen"] == true)
        .await;
    console.press("confirm-ok").await;
    console
        .wait_for("the rebuild job finished", |s| {
            s["jobs"].as_array().is_some_and(|jobs| {
                jobs.len() == 2 && jobs.iter().all(|j| j["state"] == "succeeded")
            })
        })
        .await;

    // The screenshot: parked rows, three relays, their backlog, the actions, the jobs.
    let state = console
        .wait_for("the replay and rebuild among the actions", |s| {
            s["actions"].as_array().is_some_and(|a| a.len() >= 3) && s["connection"] == "ok"
        })
        .await;
    assert_eq!(state["parked"].as_array().map(Vec::len), Some(2));
    console
        .by_id("notice")
        .await
        .find(Locator::Css("button"))
        .await
        .expect("dismiss")
        .click()
        .await
        .expect("dismiss");
    console.screenshot().await;

    // Skip an order: the dialog asks for a reason, and its rows go to the dead letters.
    console.press_on_row(orders.skipped, "skip").await;
    console
        .wait_for("the skip dialog", |s| s["dialogOpen"] == true)
        .await;
    console.press("confirm-ok").await;
    let error = console
        .by_id("confirm-error")
        .await
        .text()
        .await
        .expect("the dialog's error");
    assert!(
        error.contains("reason"),
        "a skip without a reason is refused: {error:?}"
    );
    let reason = "the customer's address overflows the message; re-sent by hand";
    console
        .by_id("confirm-reason")
        .await
        .send_keys(reason)
        .await
        .expect("type the reason");
    console.press("confirm-ok").await;
    let skipped = orders.skipped.to_string();
    console
        .wait_for("the skipped order gone", |s| {
            s["dialogOpen"] == false
                && s["parked"]
                    .as_array()
                    .is_some_and(|rows| rows.iter().all(|r| r["orderId"] != skipped.as_str()))
        })
        .await;
    wait_until_drained(system, orders.skipped).await;
    let dead: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT version, reason FROM outbox_dead_letters WHERE aggregate_id = $1 ORDER BY version",
    )
    .bind(orders.skipped)
    .fetch_all(&system.pool)
    .await
    .expect("dead letters");
    assert_eq!(
        dead,
        (1..=4)
            .map(|v| (v, Some(reason.to_owned())))
            .collect::<Vec<_>>(),
        "the parked row and the three held back behind it, with the reason"
    );
    console
        .wait_for("the skip among the actions", |s| {
            texts(s, "actions")
                .iter()
                .any(|a| a.contains("outbox.skip") && a.contains(&format!("\"order {skipped}\"")))
        })
        .await;

    // The last parked order, repaired and retried: the whole outbox drains, and every
    // committed event but the skipped order's reached the topic, in order.
    system
        .repair_first_row(orders.waiting, orders.waiting_original)
        .await;
    console.press_on_row(orders.waiting, "retry").await;
    console
        .wait_for("no parked row", |s| {
            s["parked"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    system.wait_for_empty_outbox(PATIENCE).await;
    let committed: Vec<(Uuid, i64, Uuid)> = system
        .committed_events()
        .await
        .into_iter()
        .filter(|(order, _, _)| *order != orders.skipped)
        .collect();
    let received = system
        .consume(PATIENCE, |r| {
            committed
                .iter()
                .all(|(_, _, id)| r.iter().any(|m| m.value["eventId"] == id.to_string()))
        })
        .await;
    for order in orders
        .healthy
        .iter()
        .chain([&orders.repaired, &orders.waiting])
    {
        // The replayed order's event comes twice: published, then replayed.
        assert_eq!(
            first_arrivals(&received_versions(&received, *order)),
            versions_of(system, *order).await,
            "{order}'s events, in version order"
        );
    }
    assert!(
        received_versions(&received, orders.skipped).is_empty(),
        "the skipped order's events were never published"
    );
    console
        .wait_for("the backlog empty", |s| {
            s["backlog"] == "0" && s["parkedTotal"] == "0"
        })
        .await;

    // Sign out: the token is gone from the tab, and was never anywhere else.
    let storage = console
        .client
        .execute(
            "return {session: sessionStorage.getItem('orderConsole.token'), local: localStorage.length, cookie: document.cookie};",
            vec![],
        )
        .await
        .expect("storage");
    assert_eq!(
        storage["session"], orders.admin,
        "the token is in sessionStorage"
    );
    assert_eq!(storage["local"], 0);
    assert_eq!(storage["cookie"], "");
    console.press("sign-out").await;
    console
        .wait_for("signed out", |s| {
            s["connection"] == "signed-out"
                && s["parked"].as_array().is_some_and(Vec::is_empty)
                && s["relays"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
    let storage = console
        .client
        .execute(
            "return sessionStorage.getItem('orderConsole.token');",
            vec![],
        )
        .await
        .expect("storage");
    assert_eq!(storage, Value::Null, "signing out forgets the token");

    // Signed in again, for the last check (the service stopping).
    console.sign_in(orders.admin).await;
    console
        .wait_for("connected again", |s| s["connection"] == "ok")
        .await;
}
