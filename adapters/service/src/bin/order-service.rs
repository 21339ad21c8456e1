//! `order-service`: the HTTP and gRPC APIs of the order service. Thin: reads the configuration,
//! builds the adapters, runs until SIGINT/SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use order_service::service::{self, Cli, Command, LogFormat, ProjectionsCommand};
use anyhow::Context;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    order_runtime::init(cli.log_format == LogFormat::Json);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order-service stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = order_runtime::shutdown_signal();
    let pool = order_postgres::connect_lazy(
        &cli.database_url,
        cli.db_max_connections,
        Duration::from_millis(cli.db_acquire_timeout_ms),
    )?;
    match cli.command.clone() {
        Some(Command::Migrate) => {
            order_postgres::migrate(&pool).await?;
            tracing::info!("migrations applied");
            return Ok(());
        }
        Some(Command::Projections {
            command: ProjectionsCommand::Rebuild,
        }) => {
            let report = order_postgres::rebuild(&pool).await?;
            tracing::info!(
                events = report.events,
                orders = report.orders,
                seconds = report.elapsed.as_secs_f64(),
                events_per_second = report.events_per_second().round(),
                "read model rebuilt and swapped in"
            );
            return Ok(());
        }
        Some(Command::Token(args)) => {
            let token = cli.authenticator()?.mint(&args.claims()?)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}").context("writing the token")?;
            return Ok(());
        }
        None => {}
    }
    let settings = cli.settings()?;
    if settings.auth.is_required() {
        tracing::info!("authentication: HS256 bearer tokens (JWT_SECRET)");
    } else {
        tracing::warn!("AUTH_MODE=none: authentication is off and X-User-Id is trusted; for local development only");
    }
    if !cli.no_migrate {
        order_postgres::migrate(&pool).await?;
    }
    let addr = cli.http_socket_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(http_addr = %local, "order-service listening");
    let router = service::build_router(pool.clone(), &settings)?;
    let grpc_addr = cli.grpc_socket_addr()?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("binding GRPC_ADDR {grpc_addr}"))?;
    let grpc_local = grpc_listener.local_addr()?;
    tracing::info!(grpc_addr = %grpc_local, "order-service gRPC listening");
    let routes = service::build_grpc(pool.clone(), &settings)?;
    let purge = tokio::spawn(service::purge_idempotency_keys_forever(
        pool.clone(),
        Duration::from_secs(3600),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let projector = cli.projector_settings().map(|settings| {
        let mut stopped = stopped.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) = service::run_projector(pool, settings, shutdown).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "projector stopped; the read model is no longer updated"
                );
            }
        })
    });
    if projector.is_none() {
        tracing::info!("PROJECTOR_ENABLED=false: the read model is not updated by this process");
    }
    // A signal stops both servers, and so does either of them ending (it failed): the
    // other then drains its in-flight requests too.
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let signal = {
        let mut stopped = stopped.clone();
        let stop = &stop;
        async move {
            tokio::select! {
                () = shutdown => tracing::info!("signal received; draining HTTP and gRPC"),
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            let _ = stop.send(true);
        }
    };
    let http = async {
        let served = service::run(router, listener, until_stopped(stopped.clone())).await;
        if let Err(error) = &served {
            tracing::error!(error = format!("{error:#}"), "HTTP server stopped");
        }
        let _ = stop.send(true);
        served
    };
    let grpc = async {
        let served = service::run_grpc(routes, grpc_listener, until_stopped(stopped.clone())).await;
        if let Err(error) = &served {
            tracing::error!(error = format!("{error:#}"), "gRPC server stopped");
        }
        let _ = stop.send(true);
        served
    };
    let ((), http, grpc) = tokio::join!(signal, http, grpc);
    let served = http.and(grpc);
    if let Some(projector) = projector {
        if let Err(error) = projector.await {
            tracing::error!(%error, "projector panicked");
        }
    }
    purge.abort();
    pool.close().await;
    tracing::info!("order-service stopped");
    served
}
