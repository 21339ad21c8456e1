//! What the `outbox-relay` binary runs: the relay daemon (producer, admin server,
//! publishing loop) or one operator subcommand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use application::admin::ReplayFilter;
use application::Administration;
use domain::OrderId;
use order_kafka::{KafkaPublisher, ProducerSettings};
use order_postgres::PgAdministration;
use sqlx::PgPool;

use crate::config::{Command, RunConfig};
use crate::metrics::RelayMetrics;
use crate::{admin, Config, Relay, RelaySettings};

/// Runs what `config` asks: one operator subcommand, or the relay until `shutdown`
/// resolves (SIGINT/SIGTERM in the binary), then flushes the producer.
///
/// # Errors
/// When the settings are wrong, the admin listener cannot be bound, a subcommand
/// fails, or the admin server ended.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let pool = order_postgres::connect_lazy(&config.database_url, 4, Duration::from_secs(5))?;
    let Some(command) = config.command else {
        return relay(pool, &config.run, shutdown).await;
    };
    let administration = Administration::new(Arc::new(
        PgAdministration::new(pool.clone()).with_member_ttl(config.run.member_ttl()),
    ));
    let actor = order_runtime::jobs::cli_actor();
    match command {
        Command::Status => {
            let status = admin::status(&administration, &actor)
                .await
                .context("reading the outbox status")?;
            print(&serde_json::to_string_pretty(&status)?);
        }
        Command::RetryParked(target) => {
            let done = administration
                .retry(&actor, target.selection())
                .await
                .context("retrying parked rows")?;
            print(&format!("{done} parked rows are due again"));
        }
        Command::SkipParked { target, reason } => {
            let done = administration
                .skip(&actor, target.selection(), &reason)
                .await
                .context("skipping parked rows")?;
            print(&format!(
                "{done} rows (parked, and held back behind them) moved to outbox_dead_letters"
            ));
        }
        Command::Replay(target) => {
            let filter = ReplayFilter {
                order: target.order.map(OrderId::from_uuid),
                from_position: target.from_position,
                since: target.since,
            };
            let job = administration
                .start_replay(&actor, filter)
                .await
                .context("starting the replay")?;
            let done = order_runtime::jobs::run_in_foreground(job, "replay").await?;
            print(&format!("{} events re-enqueued", done.processed));
        }
    }
    pool.close().await;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print(text: &str) {
    println!("{text}");
}

async fn relay(
    pool: PgPool,
    config: &RunConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
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
