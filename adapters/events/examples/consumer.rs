//! A complete consumer whose effect happens exactly once: it counts each order's
//! events in a table of its own database (a stand-in for any effect), through the
//! transactional inbox, and sends what does not decode to a dead-letter topic.
//!
//! ```sh
//! KAFKA_BROKERS=127.0.0.1:9092 ORDERS_TOPIC=orders.events \
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/shipping \
//!   cargo run -p order-events --features postgres,rdkafka --example consumer
//! ```

use std::time::Duration;

use order_events::{decode_message, PgInbox, Verdict};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let (brokers, topic) = (
        env("KAFKA_BROKERS", "127.0.0.1:9092"),
        env("ORDERS_TOPIC", "orders.events"),
    );
    let pool = sqlx::PgPool::connect(&env(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    ))
    .await?;
    PgInbox::create_table(&pool).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS order_event_counts (order_id uuid PRIMARY KEY, events bigint NOT NULL)")
        .execute(&pool)
        .await?;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "order-event-counter")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let dead_letters: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    let inbox = PgInbox::new("order-event-counter");

    loop {
        let message = consumer.recv().await?;
        let event = match decode_message(&message) {
            Ok(event) => event,
            Err(error) => {
                // Its bytes unchanged, the reason as a header; then go on.
                let reason = error.to_string();
                let record = FutureRecord::to("orders.events.dead-letters")
                    .key(message.key().unwrap_or_default())
                    .payload(message.payload().unwrap_or_default())
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "x-error",
                        value: Some(&reason),
                    }));
                dead_letters
                    .send(record, Duration::from_secs(10))
                    .await
                    .map_err(|(e, _)| e)?;
                consumer.commit_message(&message, CommitMode::Async)?;
                continue;
            }
        };
        let mut tx = pool.begin().await?;
        match inbox.check_in(&mut tx, &event).await? {
            Verdict::Apply => {
                // The effect, in the inbox's transaction.
                sqlx::query(
                    "INSERT INTO order_event_counts VALUES ($1, 1)
                     ON CONFLICT (order_id) DO UPDATE SET events = order_event_counts.events + 1",
                )
                .bind(event.aggregate_id)
                .execute(&mut *tx)
                .await?;
            }
            Verdict::Duplicate => {}
            Verdict::Gap { expected, got } => {
                anyhow::bail!(
                    "order {}: expected version {expected}, got {got}",
                    event.aggregate_id
                )
            }
        }
        tx.commit().await?; // first the effect and the inbox,
        consumer.commit_message(&message, CommitMode::Async)?; // then the offset
    }
}
