//! The `order-service` process as a library: [`App::build`] wires the use cases once
//! for both APIs, [`App::run`] runs HTTP, gRPC, the projector and the purge until a
//! stop, and says why each ended. The binary and the end-to-end harness both run it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use application::{
    Administration, OrderCommands, OrderQueries, Projector, PublishAll, Readiness, SummaryQueries,
    SystemClock,
};
use axum::Router;
use domain::OrderFactory;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

use order_api::Authenticator;
use order_grpc::{GrpcApi, GrpcState};
use order_http::{router, AppState, HttpMetrics, Services};
use order_kafka::projector::ProjectorSettings;
use order_postgres::{PgAdministration, PgEventStore, PgReadModel, PgReadiness};

use crate::settings::ServiceSettings;

/// How often idempotency records older than 24 hours are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The sockets the APIs serve on, bound by the caller (so `:0` is resolved, and a
/// port in use fails before anything starts).
#[derive(Debug)]
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: TcpListener,
}

/// The wired service, ready to run.
#[derive(Debug)]
pub struct App {
    pool: PgPool,
    router: Router,
    grpc: GrpcApi,
    listeners: Listeners,
    projector: Option<ProjectorSettings>,
}

impl App {
    /// Wires the use cases on `pool` once and builds both APIs on them; `projector`
    /// `None` leaves the read model to another process.
    ///
    /// # Errors
    /// When the metrics registry cannot be built.
    pub fn build(
        pool: PgPool,
        settings: &ServiceSettings,
        listeners: Listeners,
        projector: Option<ProjectorSettings>,
    ) -> anyhow::Result<Self> {
        let use_cases = UseCases::build(&pool, settings);
        Ok(Self {
            router: http_router(use_cases.clone(), settings)?,
            grpc: grpc_api(use_cases, settings),
            pool,
            listeners,
            projector,
        })
    }

    /// The address the HTTP API serves on.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.listeners.http.local_addr()
    }

    /// The address the gRPC API serves on.
    ///
    /// # Errors
    /// When the socket has no local address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.listeners.grpc.local_addr()
    }

    /// Serves both APIs, runs the projector (when configured) and the hourly purge of
    /// idempotency keys, until `shutdown` resolves or either server ends (it failed):
    /// then both drain their in-flight requests and the projector commits and stops.
    /// The pool stays open; the caller closes it.
    ///
    /// # Errors
    /// When a server failed (each failure is also logged as it happens).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        report_abandoned_jobs(&self.pool).await;
        let (stop, stopped) = watch::channel(false);
        let purge = tokio::spawn(purge_idempotency_keys_forever(
            self.pool.clone(),
            PURGE_EVERY,
        ));
        let projector = self.spawn_projector(stopped.clone());
        let signal = async {
            let mut stopped = stopped.clone();
            tokio::select! {
                () = shutdown => tracing::info!("signal received; draining HTTP and gRPC"),
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            let _ = stop.send(true);
        };
        let http = async {
            let served = run(self.router, self.listeners.http, until(stopped.clone())).await;
            stop_on_failure(&served, "HTTP server stopped", &stop);
            served
        };
        let grpc = async {
            let served = run_grpc(self.grpc, self.listeners.grpc, until(stopped.clone())).await;
            stop_on_failure(&served, "gRPC server stopped", &stop);
            served
        };
        let ((), http, grpc) = tokio::join!(signal, http, grpc);
        if let Some(projector) = projector {
            if let Err(error) = projector.await {
                tracing::error!(%error, "projector panicked");
            }
        }
        purge.abort();
        http.and(grpc)
    }

    fn spawn_projector(
        &self,
        stopped: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let Some(settings) = self.projector.clone() else {
            tracing::info!(
                "PROJECTOR_ENABLED=false: the read model is not updated by this process"
            );
            return None;
        };
        let pool = self.pool.clone();
        Some(tokio::spawn(async move {
            if let Err(error) = run_projector(pool, settings, until(stopped)).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "projector stopped; the read model is no longer updated"
                );
            }
        }))
    }
}

/// Marks `failed` the jobs (replays, rebuilds) whose process stopped while they ran,
/// and says so: a job does not survive a restart.
async fn report_abandoned_jobs(pool: &PgPool) {
    match PgAdministration::new(pool.clone())
        .fail_abandoned_jobs()
        .await
    {
        Ok(jobs) if jobs.is_empty() => {}
        Ok(jobs) => tracing::warn!(
            jobs = ?jobs,
            "jobs that were running when their process stopped are marked failed; start them again if needed"
        ),
        Err(error) => tracing::debug!(%error, "cannot look for interrupted jobs yet"),
    }
}

/// Resolves once `stopped` turns true.
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// A server that ended stops the other: logs why when it failed.
fn stop_on_failure(served: &anyhow::Result<()>, message: &str, stop: &watch::Sender<bool>) {
    if let Err(error) = served {
        tracing::error!(error = format!("{error:#}"), "{message}");
    }
    let _ = stop.send(true);
}

/// The use cases every API calls, on one pool: the event store with snapshots, the
/// discount policy, the read model; and the readiness both APIs report.
#[derive(Clone)]
struct UseCases {
    commands: OrderCommands,
    queries: OrderQueries,
    summaries: SummaryQueries,
    administration: Administration,
    readiness: Arc<dyn Readiness>,
}

impl UseCases {
    fn build(pool: &PgPool, settings: &ServiceSettings) -> Self {
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let commands = OrderCommands::new(
            store.clone(),
            OrderFactory::new(settings.discounts.clone()),
            Arc::new(PublishAll),
            Arc::new(SystemClock),
        )
        .with_max_attempts(settings.max_attempts)
        .with_snapshots(store.clone(), settings.snapshot_interval);
        Self {
            commands,
            queries: OrderQueries::new(store.clone()).with_snapshots(store),
            summaries: SummaryQueries::new(Arc::new(PgReadModel::new(pool.clone()))),
            administration: Administration::new(Arc::new(PgAdministration::new(pool.clone()))),
            readiness: readiness(pool, settings),
        }
    }
}

fn http_router(use_cases: UseCases, settings: &ServiceSettings) -> anyhow::Result<Router> {
    let state = AppState::new(Services {
        commands: use_cases.commands,
        queries: use_cases.queries,
        summaries: use_cases.summaries,
        administration: use_cases.administration,
        readiness: use_cases.readiness,
        metrics: Arc::new(HttpMetrics::new()?),
        auth: settings.auth.clone(),
        body_limit: settings.body_limit,
        orders_topic: settings.orders_topic.clone(),
    });
    Ok(router(state, settings.limits))
}

fn grpc_api(use_cases: UseCases, settings: &ServiceSettings) -> GrpcApi {
    let state = GrpcState {
        readiness: use_cases.readiness,
        commands: use_cases.commands,
        queries: use_cases.queries,
        summaries: use_cases.summaries,
        auth: settings.auth.clone(),
        message_limit: settings.body_limit,
    };
    order_grpc::routes(state, settings.limits)
}

/// What `/readyz` and the gRPC health service ask: the database answers and tokens
/// can be checked (with `JWT_JWKS_URL`, the key set has been fetched once). Starts
/// that fetch, so it begins when the APIs are built, not at the first request.
fn readiness(pool: &PgPool, settings: &ServiceSettings) -> Arc<dyn Readiness> {
    settings.auth.start();
    Arc::new(ServiceReadiness {
        store: PgReadiness(pool.clone()),
        auth: settings.auth.clone(),
    })
}

#[derive(Debug)]
struct ServiceReadiness {
    store: PgReadiness,
    auth: Authenticator,
}

#[async_trait::async_trait]
impl Readiness for ServiceReadiness {
    async fn is_ready(&self) -> bool {
        self.auth.is_ready() && self.store.is_ready().await
    }
}

/// The HTTP API alone on a pool, wired as [`App::build`] wires it (for tests that
/// drive the router in process).
///
/// # Errors
/// When the metrics registry cannot be built.
pub fn build_router(pool: PgPool, settings: &ServiceSettings) -> anyhow::Result<Router> {
    http_router(UseCases::build(&pool, settings), settings)
}

/// The gRPC API alone on a pool, wired as [`App::build`] wires it: the same use
/// cases, authentication and limits (`body_limit` bounds a message), with health
/// and reflection.
pub fn build_grpc(pool: PgPool, settings: &ServiceSettings) -> GrpcApi {
    grpc_api(UseCases::build(&pool, settings), settings)
}

/// Serves the gRPC API on `listener`, keeping its health answers current, until
/// `shutdown` resolves; then lets in-flight calls finish.
///
/// # Errors
/// When the server fails.
pub async fn run_grpc(
    api: GrpcApi,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let server = tonic::transport::Server::builder()
        .add_routes(api.routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown);
    tokio::select! {
        served = server => served.context("gRPC server failed"),
        never = api.health.watch() => match never {},
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish.
///
/// # Errors
/// When the server fails.
pub async fn run(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("HTTP server failed")
}

/// Runs the read model's projector on `pool` until `shutdown` resolves.
///
/// # Errors
/// When the Kafka consumer cannot be created or subscribed.
pub async fn run_projector(
    pool: PgPool,
    settings: ProjectorSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let projector = Projector::new(
        Arc::new(PgReadModel::new(pool.clone())),
        Arc::new(PgEventStore::new(pool)),
    );
    order_kafka::projector::run(settings, projector, shutdown).await
}

/// Purges idempotency records older than 24 hours, every `every`.
async fn purge_idempotency_keys_forever(pool: PgPool, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        match order_postgres::purge_idempotency_keys(&pool, 24).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged idempotency keys older than 24 hours"),
            Err(error) => tracing::warn!(%error, "purging idempotency keys failed; will retry"),
        }
    }
}
