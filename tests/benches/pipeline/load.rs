//! The load generators' side: command bodies like the peer's (a customer, an address,
//! two or three lines; an added line), HTTP calls, and a closed loop of clients.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use uuid::Uuid;

use crate::figures::Rng;

const FIRST: &[&str] = &[
    "Amelia", "Jonas", "Priya", "Mateo", "Sofia", "Kenji", "Fatima", "Lukas",
];
const LAST: &[&str] = &[
    "Schneider",
    "Okafor",
    "Fernandez",
    "Nakamura",
    "Johansson",
    "Kowalski",
];
const STREETS: &[&str] = &[
    "Lindenstrasse",
    "Harbour Road",
    "Rue des Lilas",
    "Calle Mayor",
    "Elm Avenue",
];
const CITIES: &[(&str, &str)] = &[
    ("Berlin", "DE"),
    ("Dublin", "IE"),
    ("Lyon", "FR"),
    ("Madrid", "ES"),
    ("Portland", "US"),
];

fn line(rng: &mut Rng) -> Value {
    json!({
        "productId": Uuid::now_v7().to_string(),
        "quantity": 1 + rng.below(4),
        "unitPrice": 199 + rng.below(20_000),
    })
}

/// `POST /orders`: a new customer, an address, two or three lines (one event).
pub(crate) fn creation_body(rng: &mut Rng) -> Value {
    let (city, country) = CITIES[rng.below(CITIES.len())];
    let lines: Vec<Value> = (0..2 + rng.below(2)).map(|_| line(rng)).collect();
    json!({
        "customer": {
            "customerId": Uuid::now_v7().to_string(),
            "name": format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
            "phone": format!("+49 30 {:07}", rng.below(10_000_000)),
            "address": {
                "line1": format!("{} {}", rng.pick(STREETS), 1 + rng.below(200)),
                "city": city,
                "postalCode": format!("{:05}", rng.below(100_000)),
                "country": country,
            },
        },
        "currency": "EUR",
        "items": lines,
    })
}

/// `POST /orders/{id}/items`: a new line (one event).
pub(crate) fn addition_body(rng: &mut Rng) -> Value {
    line(rng)
}

/// Sends a JSON command; the status and the body (`Null` when it is not JSON), or the
/// transport error.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// An error with its sources: `a: b: c`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What one command came to.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Ok,
    /// 409: a conflict the service did not resolve (not retried here).
    Conflict,
    Failed(String),
    /// Nothing left to do for this client.
    Exhausted,
}

/// How long a closed loop runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    Seconds(f64),
    /// Commands in all, shared by the clients.
    Total(usize),
}

impl Limit {
    /// The two halves of this limit.
    pub(crate) fn halves(self) -> [Limit; 2] {
        match self {
            Limit::Seconds(s) => [Limit::Seconds(s / 2.0), Limit::Seconds(s / 2.0)],
            Limit::Total(n) => [Limit::Total(n / 2), Limit::Total(n - n / 2)],
        }
    }
}

/// The figures of a closed loop.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Of the successful commands.
    pub(crate) latencies: Vec<Duration>,
    pub(crate) conflicts: usize,
    pub(crate) failed: usize,
    pub(crate) first_failure: Option<String>,
    pub(crate) exhausted: bool,
    pub(crate) elapsed: Duration,
}

impl Tally {
    pub(crate) fn ok(&self) -> usize {
        self.latencies.len()
    }

    pub(crate) fn rate(&self) -> f64 {
        self.ok() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds another run's (or client's) figures to these; elapsed times add up.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.conflicts += other.conflicts;
        self.failed += other.failed;
        self.exhausted |= other.exhausted;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        self.elapsed += other.elapsed;
    }
}

/// `clients` clients, each sending one command after another until the limit:
/// `command(n)` is the `n`-th command of the run (numbered across the clients).
pub(crate) async fn closed_loop<F, Fut>(clients: usize, limit: Limit, command: F) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let command = Arc::new(command);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = match limit {
        Limit::Seconds(s) => Some(started + Duration::from_secs_f64(s)),
        Limit::Total(_) => None,
    };
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let command = command.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if let Limit::Total(total) = limit {
                        if n >= total {
                            break;
                        }
                    }
                    let sent = Instant::now();
                    match command(n).await {
                        Outcome::Ok => tally.latencies.push(sent.elapsed()),
                        Outcome::Conflict => tally.conflicts += 1,
                        Outcome::Failed(why) => {
                            tally.failed += 1;
                            tally.first_failure.get_or_insert(why);
                        }
                        Outcome::Exhausted => {
                            tally.exhausted = true;
                            break;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        if let Ok(tally) = task.await {
            all.merge(tally);
        }
    }
    all.elapsed = started.elapsed();
    all
}

/// Creates one order; `Ok(id)` or why not.
pub(crate) async fn create_order(
    client: &reqwest::Client,
    http: &str,
    rng: &mut Rng,
) -> Result<String, String> {
    let body = creation_body(rng);
    match post(client, &format!("{http}/orders"), &body).await? {
        (201, body) => Ok(body["orderId"].as_str().unwrap_or_default().to_owned()),
        (status, body) => Err(format!("POST /orders answered {status}: {body}")),
    }
}

/// Order creations by `clients` closed-loop clients until `limit`, each client's
/// orders drawn from `seed` and its number.
pub(crate) async fn create_in_closed_loop(
    client: &reqwest::Client,
    http: &str,
    clients: usize,
    limit: Limit,
    seed: u64,
) -> Tally {
    let (client, http) = (client.clone(), http.to_owned());
    closed_loop(clients, limit, move |n| {
        let (client, http) = (client.clone(), http.clone());
        async move {
            let mut rng = Rng::new(seed ^ n as u64);
            match create_order(&client, &http, &mut rng).await {
                Ok(_) => Outcome::Ok,
                Err(why) => Outcome::Failed(why),
            }
        }
    })
    .await
}

/// Creates `count` orders with 16 clients; their ids.
pub(crate) async fn create_orders(
    client: &reqwest::Client,
    http: &str,
    count: usize,
) -> Vec<String> {
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let (client, http, sink) = (client.clone(), http.to_owned(), ids.clone());
    let tally = closed_loop(16, Limit::Total(count), move |n| {
        let (client, http, sink) = (client.clone(), http.clone(), sink.clone());
        async move {
            let mut rng = Rng::new(0xC0FFEE ^ n as u64);
            match create_order(&client, &http, &mut rng).await {
                Ok(id) => {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                    Outcome::Ok
                }
                Err(why) => Outcome::Failed(why),
            }
        }
    })
    .await;
    assert_eq!(
        tally.failed, 0,
        "creating orders failed: {:?}",
        tally.first_failure
    );
    let ids = ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ids
}
