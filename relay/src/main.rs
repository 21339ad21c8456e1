//! `outbox-relay`: publishes outbox rows to Kafka. Thin: reads the configuration, builds
//! the pool, the producer and the admin server, runs until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapters::kafka::{KafkaPublisher, ProducerSettings};
use adapters::{postgres, service, telemetry};
use anyhow::Context;
use clap::Parser;
use relay::config::LogFormat;
use relay::metrics::RelayMetrics;
use relay::{Config, Relay, RelaySettings};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init(config.log_format == LogFormat::Json);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "outbox-relay stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let pool = postgres::connect_lazy(&config.database_url, 4, Duration::from_secs(5))?;
    let publisher = KafkaPublisher::new(
        &ProducerSettings {
            brokers: config.kafka_brokers.clone(),
            message_timeout: config.message_timeout(),
            linger: Duration::from_millis(1),
        },
        &config.orders_topic,
    )?;
    let metrics = Arc::new(RelayMetrics::new()?);
    let admin_addr = service::parse_addr(&config.relay_admin_addr).with_context(|| {
        format!(
            "RELAY_ADMIN_ADDR {:?} is not HOST:PORT",
            config.relay_admin_addr
        )
    })?;
    let admin_listener = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding RELAY_ADMIN_ADDR {admin_addr}"))?;
    tracing::info!(
        admin_addr = %admin_listener.local_addr()?,
        brokers = %config.kafka_brokers,
        topic = %config.orders_topic,
        "outbox-relay started"
    );
    let admin_metrics = metrics.clone();
    let admin = tokio::spawn(async move {
        axum::serve(admin_listener, relay::admin::router(admin_metrics)).await
    });
    let relay = Relay::new(
        pool.clone(),
        publisher.clone(),
        metrics,
        RelaySettings {
            batch_size: config.batch_size.max(1),
            poll_interval: config.poll_interval(),
            max_backoff: config.max_backoff(),
        },
    );
    tokio::select! {
        () = relay.run(service::shutdown_signal()) => tracing::info!("relay loop finished its last cycle"),
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
        tracing::warn!("some messages were still queued at shutdown; their rows stay in the outbox and will be sent again");
    }
    pool.close().await;
    tracing::info!("outbox-relay stopped");
    Ok(())
}
