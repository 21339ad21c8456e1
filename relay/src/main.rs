//! `outbox-relay`: publishes outbox rows to Kafka. Thin: reads the configuration,
//! builds the pool, the producer and the admin server, runs until SIGINT/SIGTERM; or
//! runs one operator subcommand.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use order_kafka::{KafkaPublisher, ProducerSettings};
use order_postgres::events::ReplayFilter;
use relay::config::{Command, LogFormat, ParkedTarget, RunConfig};
use relay::metrics::RelayMetrics;
use relay::outbox::ParkedSelection;
use relay::{admin, Config, Relay, RelaySettings};
use sqlx::PgPool;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    order_runtime::init(config.log_format == LogFormat::Json);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "outbox-relay stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let pool = order_postgres::connect_lazy(&config.database_url, 4, Duration::from_secs(5))?;
    let ttl = i64::try_from(config.run.member_ttl().as_millis()).unwrap_or(i64::MAX);
    match config.command {
        None => relay(pool, &config.run).await,
        Some(Command::Status) => {
            let status = admin::status(&pool, ttl)
                .await
                .context("reading the outbox status")?;
            print(&serde_json::to_string_pretty(&status)?);
            Ok(())
        }
        Some(Command::RetryParked(target)) => {
            let done = admin::retry_parked(&pool, selection(&target))
                .await
                .context("retrying parked rows")?;
            print(&format!("{done} parked rows are due again"));
            Ok(())
        }
        Some(Command::SkipParked(target)) => {
            let done = admin::skip_parked(&pool, selection(&target))
                .await
                .context("skipping parked rows")?;
            print(&format!("{done} parked rows moved to outbox_dead_letters"));
            Ok(())
        }
        Some(Command::Replay(target)) => {
            let filter = ReplayFilter {
                order: target.order,
                from_position: target.from_position,
                since: target.since,
            };
            let done = admin::replay(&pool, filter)
                .await
                .context("replaying events into the outbox")?;
            print(&format!("{done} events re-enqueued"));
            Ok(())
        }
    }
}

#[allow(clippy::print_stdout)]
fn print(text: &str) {
    println!("{text}");
}

fn selection(target: &ParkedTarget) -> ParkedSelection {
    match (target.id, target.order) {
        (Some(id), _) => ParkedSelection::Row(id),
        (None, Some(order)) => ParkedSelection::Order(order),
        (None, None) => ParkedSelection::All,
    }
}

async fn relay(pool: PgPool, config: &RunConfig) -> anyhow::Result<()> {
    let shutdown = order_runtime::shutdown_signal();
    let publisher = KafkaPublisher::new(
        &ProducerSettings {
            brokers: config.kafka_brokers.clone(),
            message_timeout: config.message_timeout(),
            linger: config.linger(),
        },
        &config.orders_topic,
    )?;
    let metrics = Arc::new(RelayMetrics::new()?);
    let admin_addr = order_runtime::parse_addr(&config.relay_admin_addr).with_context(|| {
        format!(
            "RELAY_ADMIN_ADDR {:?} is not HOST:PORT",
            config.relay_admin_addr
        )
    })?;
    let admin_listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding RELAY_ADMIN_ADDR {admin_addr}"))?;
    let relay = Relay::new(
        pool.clone(),
        publisher.clone(),
        metrics.clone(),
        RelaySettings {
            batch_size: config.batch_size.max(1),
            poll_interval: config.poll_interval(),
            max_backoff: config.max_backoff(),
            max_attempts: config.max_attempts.max(1),
            member_ttl: config.member_ttl(),
            fault_pause: config.fault_pause,
        },
    );
    tracing::info!(
        relay_id = %relay.id(),
        admin_addr = %admin_listener.local_addr()?,
        brokers = %config.kafka_brokers,
        topic = %config.orders_topic,
        "outbox-relay started"
    );
    let admin = tokio::spawn(admin::serve(admin_listener, metrics));
    tokio::select! {
        () = relay.run(shutdown) => tracing::info!("relay loop finished its last cycle"),
        served = admin => {
            let error = match served {
                Ok(Ok(())) => anyhow::anyhow!("admin server ended"),
                Ok(Err(e)) => anyhow::Error::new(e).context("admin server failed"),
                Err(e) => anyhow::Error::new(e).context("admin server panicked"),
            };
            return Err(error);
        }
    }
    if publisher.flush(Duration::from_secs(5)).is_err() {
        tracing::warn!("messages still queued at shutdown; their rows stay in the outbox and will be sent again");
    }
    pool.close().await;
    tracing::info!("outbox-relay stopped");
    Ok(())
}
