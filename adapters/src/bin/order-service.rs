//! `order-service`: the HTTP API of the order service. Thin: reads the configuration,
//! builds the adapters, runs until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use adapters::service::{self, Cli, Command, LogFormat};
use adapters::{postgres, telemetry};
use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format == LogFormat::Json);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order-service stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let pool = postgres::connect_lazy(
        &cli.database_url,
        cli.db_max_connections,
        Duration::from_millis(cli.db_acquire_timeout_ms),
    )?;
    if let Some(Command::Migrate) = cli.command {
        postgres::migrate(&pool).await?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let settings = cli.settings()?;
    tracing::warn!("AUTH_MODE=none: authentication is off and X-User-Id is trusted; for local development only");
    if !cli.no_migrate {
        postgres::migrate(&pool).await?;
    }
    let addr = cli.http_socket_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(http_addr = %local, "order-service listening");
    let router = service::build_router(pool.clone(), &settings)?;
    let purge = tokio::spawn(service::purge_idempotency_keys_forever(
        pool.clone(),
        Duration::from_secs(3600),
    ));
    let served = service::run(router, listener, service::shutdown_signal()).await;
    purge.abort();
    pool.close().await;
    tracing::info!("order-service stopped");
    served
}
