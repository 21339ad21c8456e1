//! The running system for one test: a fresh database, a fresh topic, the real
//! `order-service` [`App`] (HTTP and gRPC, the projector when asked) and `outbox-relay`
//! loop on them, and a Kafka consumer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use order_kafka::{KafkaPublisher, ProducerSettings};
use order_service::{App, Listeners, ServiceSettings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use relay::metrics::RelayMetrics;
use relay::{Relay, RelaySettings};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

/// The broker the suite runs against (`scripts/test.sh` starts one and sets this).
pub fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").expect(
        "KAFKA_BROKERS is not set: run the suite with scripts/test.sh, which starts PostgreSQL and a broker",
    )
}

fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A message read back from the topic.
#[derive(Debug, Clone)]
pub struct Received {
    pub partition: i32,
    pub key: String,
    pub value: Value,
    pub headers: HashMap<String, String>,
    /// When this process received it.
    pub at: Instant,
}

/// One system under test. Dropping it does not clean up; call [`System::stop`].
#[derive(Debug)]
pub struct System {
    /// The HTTP API's base URL (`http://127.0.0.1:PORT`).
    pub http: String,
    /// The gRPC API's endpoint (`http://127.0.0.1:PORT`).
    pub grpc: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// The URL of the system's own database.
    pub database_url: String,
    pub topic: String,
    database: String,
    stop: watch::Sender<bool>,
    stopped: watch::Receiver<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    relay_metrics: Vec<Arc<RelayMetrics>>,
}

impl System {
    /// Creates a database and a topic, and starts the service (authentication off)
    /// and `relays` relays.
    pub async fn start(relays: usize) -> System {
        Self::start_with(relays, &ServiceSettings::default()).await
    }

    /// As [`System::start`], with the service built from `settings`.
    pub async fn start_with(relays: usize, settings: &ServiceSettings) -> System {
        Self::launch(relays, settings, false).await
    }

    /// As [`System::start`], with the read model's projector running in the service,
    /// as `order-service` runs it, in a consumer group of its own.
    pub async fn start_with_projector(relays: usize) -> System {
        Self::launch(relays, &ServiceSettings::default(), true).await
    }

    /// `relays` in-process relays and the service built from `settings`, with the
    /// read model's projector when `projector` (as [`System::start_with_projector`]).
    pub async fn launch(relays: usize, settings: &ServiceSettings, projector: bool) -> System {
        let database = format!("e2e_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_database_url())
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.ok();
        let url = database_url(&database);
        let pool = order_postgres::connect_lazy(&url, 16, Duration::from_secs(5)).expect("pool");
        order_postgres::migrate(&pool).await.expect("migrate");

        let topic = format!("orders.e2e.{}", Uuid::now_v7().simple());
        create_topic(&topic, 3).await;

        let (stop, stopped) = watch::channel(false);
        let listeners = Listeners {
            http: bind_any().await,
            grpc: bind_any().await,
        };
        let projector = projector.then(|| order_kafka::projector::ProjectorSettings {
            brokers: brokers(),
            topic: topic.clone(),
            group_id: format!("order-service-projector-{}", Uuid::now_v7().simple()),
            max_batch: 500,
        });
        let app = App::build(pool.clone(), settings, listeners, projector).expect("the app builds");
        let http = format!("http://{}", app.http_addr().expect("HTTP address"));
        let grpc = format!("http://{}", app.grpc_addr().expect("gRPC address"));
        let shutdown = wait_for(stopped.clone());
        let tasks = vec![tokio::spawn(async move {
            app.run(shutdown).await.expect("order-service");
        })];

        let mut system = System {
            http,
            grpc,
            client: reqwest::Client::new(),
            pool,
            database_url: url,
            topic,
            database,
            stop,
            stopped,
            tasks,
            relay_metrics: Vec::new(),
        };
        system.start_relays(relays);
        system
    }

    /// The Prometheus text of every in-process relay's metrics.
    pub fn relay_metrics_text(&self) -> String {
        self.relay_metrics.iter().map(|m| m.render()).collect()
    }

    /// Starts `count` more relays on the system's database and topic.
    pub fn start_relays(&mut self, count: usize) {
        for _ in 0..count {
            let publisher = KafkaPublisher::new(
                &ProducerSettings {
                    brokers: brokers(),
                    message_timeout: Duration::from_secs(10),
                    linger: Duration::from_millis(relay::config::DEFAULT_LINGER_MS),
                },
                &self.topic,
            )
            .expect("producer");
            let metrics = Arc::new(RelayMetrics::new().expect("metrics"));
            self.relay_metrics.push(metrics.clone());
            let relay = Relay::new(
                self.pool.clone(),
                publisher,
                metrics,
                RelaySettings {
                    batch_size: 2000,
                    poll_interval: Duration::from_millis(20),
                    max_backoff: Duration::from_secs(1),
                    ..RelaySettings::default()
                },
            );
            let shutdown = wait_for(self.stopped.clone());
            self.tasks
                .push(tokio::spawn(async move { relay.run(shutdown).await }));
        }
    }

    /// Sends a JSON command; returns the status and the body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.http));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Every committed event, as `(aggregate id, version, event id)`, in store order.
    pub async fn committed_events(&self) -> Vec<(Uuid, i64, Uuid)> {
        sqlx::query_as("SELECT stream_id, version, event_id FROM events ORDER BY global_position")
            .fetch_all(&self.pool)
            .await
            .expect("read events")
    }

    /// Makes the outbox row of `order`'s first event larger than the producer's 1 MB
    /// limit (still valid JSON), so the relay parks it for real; returns the message as
    /// written, for [`System::repair_first_row`].
    pub async fn poison_first_row(&self, order: Uuid) -> String {
        let original: String = sqlx::query_scalar(
            "SELECT message FROM outbox WHERE aggregate_id = $1 AND version = 1",
        )
        .bind(order)
        .fetch_one(&self.pool)
        .await
        .expect("the first row");
        sqlx::query(
            "UPDATE outbox SET message = message || repeat(' ', 2000000) \
             WHERE aggregate_id = $1 AND version = 1",
        )
        .bind(order)
        .execute(&self.pool)
        .await
        .expect("poison");
        original
    }

    /// Puts back the message [`System::poison_first_row`] replaced.
    pub async fn repair_first_row(&self, order: Uuid, original: &str) {
        sqlx::query("UPDATE outbox SET message = $2 WHERE aggregate_id = $1 AND version = 1")
            .bind(order)
            .bind(original)
            .execute(&self.pool)
            .await
            .expect("repair");
    }

    /// Waits until the outbox is empty (everything acknowledged by the broker).
    pub async fn wait_for_empty_outbox(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                .fetch_one(&self.pool)
                .await
                .expect("count");
            if waiting == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} outbox rows still unpublished after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads the whole topic from the beginning on the suite's broker; see [`System::consume_on`].
    pub async fn consume(
        &self,
        timeout: Duration,
        until: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        self.consume_on(&brokers(), timeout, until).await
    }

    /// Reads the whole topic on `brokers` from the beginning until `until` says it has
    /// enough, or the time is up.
    pub async fn consume_on(
        &self,
        brokers: &str,
        timeout: Duration,
        until: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let topic = self.topic.clone();
        let brokers = brokers.to_owned();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader_done = done.clone();
        let reader = std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", format!("e2e-{}", Uuid::now_v7()))
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "5")
                .create()
                .expect("consumer");
            let metadata = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("metadata");
            let partitions = metadata.topics()[0].partitions().len() as i32;
            let mut assignment = TopicPartitionList::new();
            for partition in 0..partitions {
                assignment
                    .add_partition_offset(&topic, partition, Offset::Beginning)
                    .expect("offset");
            }
            consumer.assign(&assignment).expect("assign");
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline
                && !reader_done.load(std::sync::atomic::Ordering::Relaxed)
            {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(message)) => {
                        let headers = message
                            .headers()
                            .map(|headers| {
                                headers
                                    .iter()
                                    .map(|h| {
                                        (
                                            h.key.to_owned(),
                                            String::from_utf8_lossy(h.value.unwrap_or_default())
                                                .into_owned(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        let received = Received {
                            partition: message.partition(),
                            key: String::from_utf8_lossy(message.key().unwrap_or_default())
                                .into_owned(),
                            value: serde_json::from_slice(message.payload().unwrap_or_default())
                                .unwrap_or(Value::Null),
                            headers,
                            at: Instant::now(),
                        };
                        if tx.send(received).is_err() {
                            return;
                        }
                    }
                    Some(Err(error)) => tracing::warn!(%error, "consumer error"),
                    None => {}
                }
            }
        });
        let mut received = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            crate::contract::check(&message);
            received.push(message);
            if until(&received) {
                break;
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(rx);
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        received
    }

    /// Stops the service and the relays and drops the database.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        self.pool.close().await;
        if let Ok(mut admin) = PgConnection::connect(&admin_database_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut admin)
            .await;
        }
    }
}

fn database_url(database: &str) -> String {
    let admin = admin_database_url();
    match admin.rfind('/') {
        Some(slash) => format!("{}/{database}", &admin[..slash]),
        None => format!("postgres://postgres@127.0.0.1:5432/{database}"),
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Creates a topic through the Kafka admin API.
pub async fn create_topic(topic: &str, partitions: i32) {
    create_topic_at(&brokers(), topic, partitions).await;
}

/// Creates a topic on `brokers` through the Kafka admin API.
pub async fn create_topic_at(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topic");
    for result in results {
        result.expect("topic created");
    }
}

async fn bind_any() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port")
}

/// A valid `POST /orders` body for `customer`: one line of 2 × 150,000 VND, no
/// discount code.
pub fn order_body(customer: &str) -> Value {
    serde_json::json!({
        "customer": {
            "customerId": customer,
            "name": "Nguyễn Văn A",
            "phone": "+84 900 000 000",
            "address": {"line1": "1 Lê Lợi", "city": "Hồ Chí Minh", "country": "VN"}
        },
        "currency": "VND",
        "items": [{"productId": "sku-1", "quantity": 2, "unitPrice": 150000}]
    })
}
