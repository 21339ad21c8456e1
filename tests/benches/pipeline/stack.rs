//! The system under test as real processes: a fresh database and topic, the
//! `order-service` and `outbox-relay` binaries built beside this bench (configured only
//! through their environment: addresses, topic, database), and an independent Kafka
//! consumer reading the topic in this process.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use e2e::processes::free_port;
use e2e::{brokers, create_topic};
use order_kafka::{KafkaPublisher, ProducerSettings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::cpu::{broker_pid, Pids};

/// Partitions of every topic the bench creates.
pub(crate) const PARTITIONS: i32 = 3;

/// A binary of the workspace built beside this bench: `target/<profile>/deps/pipeline-<hash>`
/// → `target/<profile>/<name>`, whatever the target directory.
pub(crate) fn binary(name: &str) -> PathBuf {
    // Another build of the service or the relay, to compare two versions side by side.
    let other = match name {
        "order-service" => std::env::var_os("BENCH_SERVICE_BINARY"),
        "outbox-relay" => std::env::var_os("BENCH_RELAY_BINARY"),
        _ => None,
    };
    if let Some(other) = other {
        return PathBuf::from(other);
    }
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it first (scripts/bench.sh runs cargo build --release --bins)",
        binary.display()
    );
    binary
}

/// The maintenance database URL (`scripts/bench.sh` exports it).
fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A connection to the maintenance database that logs no slow statements (dropping a
/// database takes a checkpoint).
async fn admin_connection() -> Result<PgConnection, sqlx::Error> {
    let options: PgConnectOptions = admin_url().parse()?;
    PgConnection::connect_with(&options.disable_statement_logging()).await
}

fn database_url(database: &str) -> String {
    let admin = admin_url();
    match admin.rfind('/') {
        Some(slash) if slash > "postgres://".len() => format!("{}/{database}", &admin[..slash]),
        _ => format!("postgres://postgres@127.0.0.1:5432/{database}"),
    }
}

/// `BENCH_CHILD_LOG`: the children's `RUST_LOG` (default `warn`); when set, their logs
/// are kept and named in the report, for reading a relay's per-cycle timings
/// (`BENCH_CHILD_LOG=warn,relay=debug`).
fn child_log() -> Option<String> {
    std::env::var("BENCH_CHILD_LOG")
        .ok()
        .filter(|v| !v.is_empty())
}

/// A child process, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub(crate) struct Child {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
}

impl Child {
    fn spawn(name: &'static str, mut command: Command) -> Child {
        let log =
            std::env::temp_dir().join(format!("bench-{name}-{}.log", Uuid::now_v7().simple()));
        let file = std::fs::File::create(&log).expect("log file");
        command
            .env("RUST_LOG", child_log().unwrap_or_else(|| "warn".to_owned()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Child { name, child, log }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics, with the end of its log, when the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{} exited ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                tail.join("\n")
            );
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it still runs (not exited, not a zombie waiting to be reaped); needs no
    /// `&mut`, so a stack shared by reference can check its relay.
    fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                let state = stat[stat.rfind(')')? + 1..]
                    .split_whitespace()
                    .next()?
                    .to_owned();
                Some(state != "Z" && state != "X")
            })
            .unwrap_or(false)
    }

    /// Kills it; when it had exited on its own or logged errors or a panic, says so and
    /// keeps its log.
    fn finish(mut self) {
        let exited = self.child.try_wait().ok().flatten();
        self.kill();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let errors = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("panicked"))
            .count();
        if child_log().is_some() {
            crate::figures::report(
                &format!("{} log (BENCH_CHILD_LOG)", self.name),
                &format!("kept: {}", self.log.display()),
            );
            self.log = PathBuf::new();
        } else if let Some(status) = exited {
            crate::figures::report(
                &format!("WARNING: {} had exited ({status})", self.name),
                &format!("log kept: {}", self.log.display()),
            );
            self.log = PathBuf::new();
        } else if errors > 0 {
            crate::figures::report(
                &format!("WARNING: {} logged {errors} errors", self.name),
                &format!("log kept: {}", self.log.display()),
            );
            self.log = PathBuf::new();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
        if !self.log.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// One section's system: its own database and topic, the service and the relay as
/// child processes.
#[derive(Debug)]
pub(crate) struct Stack {
    pub(crate) database_url: String,
    database: String,
    pub(crate) topic: String,
    /// A small pool of the bench's own, for counting and reading rows.
    pub(crate) pool: PgPool,
    /// Up to 16 idle connections to the service kept open.
    pub(crate) client: reqwest::Client,
    /// `http://127.0.0.1:PORT` of the service.
    pub(crate) http: String,
    /// `http://127.0.0.1:PORT` of the running relay's admin endpoints.
    pub(crate) relay_admin: String,
    /// More environment for both children (the tracing section's OTLP settings).
    pub(crate) child_env: Vec<(String, String)>,
    service: Option<Child>,
    relay: Option<Child>,
}

/// The HTTP client of the load generators: 16 pooled connections.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

impl Stack {
    /// A fresh database (migrated by `order-service migrate`) and a fresh topic.
    pub(crate) async fn create() -> Stack {
        let database = format!("bench_{}", Uuid::now_v7().simple());
        let mut admin = admin_connection().await.expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let database_url = database_url(&database);
        let migrated = Command::new(binary("order-service"))
            .arg("migrate")
            .env("DATABASE_URL", &database_url)
            .env("AUTH_MODE", "none")
            .env("RUST_LOG", child_log().unwrap_or_else(|| "warn".to_owned()))
            .output()
            .expect("run order-service migrate");
        assert!(
            migrated.status.success(),
            "order-service migrate failed: {}",
            String::from_utf8_lossy(&migrated.stderr)
        );
        let pool =
            order_postgres::connect_lazy(&database_url, 4, Duration::from_secs(10)).expect("pool");
        let topic = format!("orders.bench.{}", Uuid::now_v7().simple());
        create_topic(&topic, PARTITIONS).await;
        Stack {
            database_url,
            database,
            topic,
            pool,
            client: http_client(),
            http: String::new(),
            relay_admin: String::new(),
            child_env: Vec::new(),
            service: None,
            relay: None,
        }
    }

    /// Starts `order-service` (no authentication, its own HTTP and gRPC ports, the
    /// projector on or off) and waits until `/readyz` answers 200.
    pub(crate) async fn start_service(&mut self, projector: bool) {
        let http_port = free_port();
        let grpc_port = free_port();
        let mut command = Command::new(binary("order-service"));
        command
            .env("DATABASE_URL", &self.database_url)
            .env("HTTP_ADDR", format!("127.0.0.1:{http_port}"))
            .env("GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
            .env("AUTH_MODE", "none")
            .env("PROJECTOR_ENABLED", projector.to_string())
            .env("KAFKA_BROKERS", brokers())
            .env("ORDERS_TOPIC", &self.topic)
            .env(
                "PROJECTOR_GROUP_ID",
                format!("bench-projector-{}", Uuid::now_v7().simple()),
            )
            .envs(self.child_env.iter().cloned());
        self.service = Some(Child::spawn("order-service", command));
        self.http = format!("http://127.0.0.1:{http_port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(service) = self.service.as_mut() {
                service.assert_running();
            }
            if status(&self.client, &format!("{}/readyz", self.http)).await == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "order-service not ready after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Spawns `outbox-relay` with only the database, the broker, the topic and its admin
    /// address (its tuning is its own defaults); returns when it was spawned.
    pub(crate) fn start_relay(&mut self) -> Instant {
        let port = free_port();
        let mut command = Command::new(binary("outbox-relay"));
        command
            .env("DATABASE_URL", &self.database_url)
            .env("KAFKA_BROKERS", brokers())
            .env("ORDERS_TOPIC", &self.topic)
            .env("RELAY_ADMIN_ADDR", format!("127.0.0.1:{port}"))
            .envs(self.child_env.iter().cloned());
        self.relay_admin = format!("http://127.0.0.1:{port}");
        let spawned = Instant::now();
        self.relay = Some(Child::spawn("outbox-relay", command));
        spawned
    }

    /// Polls the relay's `/readyz` every 5 ms until it answers 200; returns when it did.
    pub(crate) async fn wait_relay_ready(&mut self, timeout: Duration) -> Instant {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/readyz", self.relay_admin);
        loop {
            if let Some(relay) = self.relay.as_mut() {
                relay.assert_running();
            }
            if status(&self.client, &url).await == 200 {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "outbox-relay not ready after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Panics, with the end of its log, when the service has exited.
    pub(crate) fn assert_service_running(&mut self) {
        if let Some(service) = self.service.as_mut() {
            service.assert_running();
        }
    }

    /// SIGKILL to the relay.
    pub(crate) fn kill_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.finish();
        }
    }

    /// The relay's `/metrics` text (empty when it does not answer).
    pub(crate) async fn relay_metrics(&self) -> String {
        match self
            .client
            .get(format!("{}/metrics", self.relay_admin))
            .send()
            .await
        {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub(crate) fn pids(&self) -> Pids {
        Pids {
            service: self.service.as_ref().map(Child::pid),
            relay: self.relay.as_ref().map(Child::pid),
            broker: broker_pid(),
        }
    }

    pub(crate) async fn outbox_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .expect("count the outbox")
    }

    /// The id of the oldest outbox row, none when the outbox is empty: the primary key's
    /// first live entry, cheap however long the outbox is.
    pub(crate) async fn outbox_head(&self) -> Option<i64> {
        sqlx::query_scalar("SELECT min(id) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .expect("read the outbox's oldest row")
    }

    /// Waits until the outbox is empty (everything acknowledged by the broker). Gives up,
    /// says so and returns false when the relay is gone or the backlog has not shrunk
    /// for `stalled` (then a copy of the relay's log is kept).
    pub(crate) async fn wait_for_empty_outbox(&self, stalled: Duration) -> bool {
        let mut last = i64::MAX;
        let mut progressed = Instant::now();
        loop {
            let waiting = self.outbox_count().await;
            if waiting == 0 {
                return true;
            }
            if waiting < last {
                last = waiting;
                progressed = Instant::now();
            }
            let relay = self.relay.as_ref();
            let problem = match relay {
                None => Some("no outbox-relay is running".to_owned()),
                Some(relay) if !relay.alive() => {
                    Some(format!("outbox-relay (pid {}) is gone", relay.pid()))
                }
                Some(_) if progressed.elapsed() >= stalled => {
                    Some(format!("the outbox has not shrunk for {stalled:?}"))
                }
                Some(_) => None,
            };
            if let Some(problem) = problem {
                let kept = relay.map_or(String::new(), |relay| {
                    let copy = relay.log.with_extension("stalled.log");
                    let _ = std::fs::copy(&relay.log, &copy);
                    format!("; relay log copied to {}", copy.display())
                });
                crate::figures::report(
                    "WARNING",
                    &format!("{problem}, {waiting} outbox rows unpublished{kept}"),
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the service and the relay and drops the database.
    pub(crate) async fn stop(mut self) {
        self.kill_relay();
        if let Some(service) = self.service.take() {
            service.finish();
        }
        self.pool.close().await;
        if let Ok(mut admin) = admin_connection().await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut admin)
            .await;
            admin.close().await.ok();
        }
    }
}

/// A plain producer with the relay's settings (idempotence, acks=all, 5 in flight, the
/// relay's default linger) on a fresh topic `bench.<kind>.<uuid>`: the baselines the
/// relay is measured beside. Returns the topic and the producer.
pub(crate) async fn plain_publisher(
    kind: &str,
    message_timeout: Duration,
) -> (String, KafkaPublisher) {
    let topic = format!("bench.{kind}.{}", Uuid::now_v7().simple());
    create_topic(&topic, PARTITIONS).await;
    let publisher = KafkaPublisher::new(
        &ProducerSettings {
            brokers: brokers(),
            message_timeout,
            linger: Duration::from_millis(relay::config::DEFAULT_LINGER_MS),
        },
        &topic,
    )
    .expect("producer");
    (topic, publisher)
}

/// The status of `GET url` (0 when nothing answers).
pub(crate) async fn status(client: &reqwest::Client, url: &str) -> u16 {
    match client.get(url).timeout(Duration::from_secs(2)).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

/// A message the independent consumer received.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    /// The order id.
    pub(crate) key: String,
    pub(crate) version: i64,
    /// The envelope's `occurredAt`.
    pub(crate) occurred_at: Option<DateTime<Utc>>,
    /// Wall clock at receipt.
    pub(crate) wall: DateTime<Utc>,
    /// Monotonic clock at receipt.
    pub(crate) at: Instant,
}

/// An independent consumer of a topic (no group: assigned every partition from the
/// beginning, `fetch.wait.max.ms=5`), polling on a thread of its own.
#[derive(Debug)]
pub(crate) struct Listener {
    arrivals: tokio::sync::mpsc::UnboundedReceiver<Arrival>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    /// Starts it; returns once it is assigned every partition and has been fetching
    /// for a moment, so it is listening before the first command.
    pub(crate) async fn start(topic: &str) -> Listener {
        let (tx, arrivals) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let topic = topic.to_owned();
        let thread = std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", brokers())
                .set(
                    "group.id",
                    format!("bench-listener-{}", Uuid::now_v7().simple()),
                )
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "5")
                .create()
                .expect("consumer");
            consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("topic metadata");
            let mut assignment = TopicPartitionList::new();
            for partition in 0..PARTITIONS {
                assignment
                    .add_partition_offset(&topic, partition, Offset::Beginning)
                    .expect("offset");
            }
            consumer.assign(&assignment).expect("assign");
            let mut ready = Some((ready_tx, Instant::now() + Duration::from_millis(500)));
            while !stopping.load(Ordering::Relaxed) {
                if let Some((_, when)) = &ready {
                    if Instant::now() >= *when {
                        if let Some((tx, _)) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                }
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(message)) => {
                        let wall = Utc::now();
                        let at = Instant::now();
                        let value: Value =
                            serde_json::from_slice(message.payload().unwrap_or_default())
                                .unwrap_or(Value::Null);
                        let arrival = Arrival {
                            key: String::from_utf8_lossy(message.key().unwrap_or_default())
                                .into_owned(),
                            version: value["version"].as_i64().unwrap_or_default(),
                            occurred_at: value["occurredAt"]
                                .as_str()
                                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                                .map(|t| t.with_timezone(&Utc)),
                            wall,
                            at,
                        };
                        if tx.send(arrival).is_err() {
                            return;
                        }
                    }
                    Some(Err(error)) => tracing::warn!(%error, "bench consumer error"),
                    None => {}
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(30), ready_rx).await;
        Listener {
            arrivals,
            stop,
            thread: Some(thread),
        }
    }

    /// The next arrival, or `None` when nothing came within `timeout`.
    pub(crate) async fn next(&mut self, timeout: Duration) -> Option<Arrival> {
        tokio::time::timeout(timeout, self.arrivals.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every arrival received so far.
    pub(crate) fn take_all(&mut self) -> Vec<Arrival> {
        let mut all = Vec::new();
        while let Ok(arrival) = self.arrivals.try_recv() {
            all.push(arrival);
        }
        all
    }

    pub(crate) async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}
