//! The `order-service` process: configuration, wiring and `run`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use application::{
    OrderCommands, OrderQueries, Projector, PublishAll, Role, SummaryQueries, SystemClock,
};
use axum::Router;
use clap::{Parser, Subcommand, ValueEnum};
use domain::{DiscountTable, OrderFactory};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;

use order_api::auth::{self, Authenticator, Claims};
use order_api::RequestLimits;
use order_grpc::GrpcState;
use order_http::{router, AppState, HttpMetrics};
use order_kafka::projector::ProjectorSettings;
use order_postgres::{PgEventStore, PgReadModel, PgReadiness};

/// HTTP and gRPC APIs for order commands and queries.
///
/// Every setting is a flag and an environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-service", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/orders",
        global = true
    )]
    pub database_url: String,

    /// Address the HTTP API listens on (`:0` or `HOST:0` picks a free port and logs it).
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,

    /// Address the gRPC API listens on (`:0` or `HOST:0` picks a free port and logs it).
    #[arg(long, env = "GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: String,

    /// Discount policy: comma-separated CODE=PERCENT entries.
    #[arg(long, env = "DISCOUNT_CODES", default_value = "WELCOME10=10,VIP20=20")]
    pub discount_codes: String,

    /// `none` turns authentication off (X-User-Id is trusted): local development only.
    /// Either this or JWT_SECRET must be set, not both.
    #[arg(long, env = "AUTH_MODE", value_enum, global = true)]
    pub auth_mode: Option<AuthMode>,

    /// HS256 secret (at least 32 bytes) of the bearer JWTs every request must carry
    /// (claims sub, exp, roles, customerId). Either this or AUTH_MODE=none must be set.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// Skip applying pending migrations on start.
    #[arg(long)]
    pub no_migrate: bool,

    /// Log format on standard error.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Largest database connection pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,

    /// Largest request body in bytes (larger answers 413).
    #[arg(long, env = "HTTP_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub http_body_limit: usize,

    /// Requests taking longer answer 503 (and write nothing).
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_request_timeout_ms: u64,

    /// Requests in flight at once; more answer 503 with Retry-After at once.
    #[arg(long, env = "HTTP_MAX_CONCURRENT_REQUESTS", default_value_t = 1024)]
    pub http_max_concurrent_requests: usize,

    /// Times a command that lost a race on its order is tried before answering 409.
    #[arg(long, env = "COMMAND_MAX_ATTEMPTS", default_value_t = 5)]
    pub command_max_attempts: u32,

    /// A snapshot of an order is stored every this many events (0: never).
    #[arg(long, env = "SNAPSHOT_INTERVAL", default_value_t = 100)]
    pub snapshot_interval: u64,

    /// Run the read model's projector (a Kafka consumer) in this process.
    #[arg(long, env = "PROJECTOR_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub projector: bool,

    /// Bootstrap servers the projector consumes from.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Topic of the order events.
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders.events")]
    pub orders_topic: String,

    /// Consumer group of the projector (one read model = one group).
    #[arg(
        long,
        env = "PROJECTOR_GROUP_ID",
        default_value = "order-service-projector"
    )]
    pub projector_group_id: String,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Apply pending database migrations and exit.
    Migrate,
    /// Read-model maintenance.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Print a bearer token signed with JWT_SECRET (for development and operations) and exit.
    Token(TokenArgs),
}

/// The claims of a token made by `order-service token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The user (`sub`), recorded as the events' metadata.userId.
    #[arg(long)]
    pub sub: String,
    /// A role (`customer`, `operator`, `admin`); repeat for several.
    #[arg(long = "role", value_enum, required = true)]
    pub roles: Vec<RoleArg>,
    /// The customer a `customer` acts for (`customerId`).
    #[arg(long)]
    pub customer_id: Option<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    pub ttl_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Customer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Customer => Self::Customer,
            RoleArg::Operator => Self::Operator,
            RoleArg::Admin => Self::Admin,
        }
    }
}

impl TokenArgs {
    /// The token's claims, expiring `ttl_seconds` from now.
    ///
    /// # Errors
    /// When a `customer` token has no customer id.
    pub fn claims(&self) -> anyhow::Result<Claims> {
        if self.roles.contains(&RoleArg::Customer)
            && self.customer_id.is_none()
            && !self.roles.iter().any(|r| *r != RoleArg::Customer)
        {
            bail!("a customer token needs --customer-id");
        }
        Ok(Claims {
            sub: self.sub.clone(),
            exp: auth::expiry_in(Duration::from_secs(self.ttl_seconds)),
            iat: Some(auth::now_seconds()),
            roles: self
                .roles
                .iter()
                .map(|r| Role::from(*r).as_str().to_owned())
                .collect(),
            customer_id: self.customer_id.clone(),
        })
    }
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ProjectionsCommand {
    /// Rebuild the order-summary read model from the event store, into a fresh table
    /// swapped in at the end (reads keep working meanwhile), and exit.
    Rebuild,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No authentication; `X-User-Id` is trusted.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What the HTTP service is built from, apart from the database.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub discount_codes: String,
    pub body_limit: usize,
    pub limits: RequestLimits,
    pub max_attempts: u32,
    /// Every how many events an order is snapshotted (0: never).
    pub snapshot_interval: u64,
    /// How requests are authenticated.
    pub auth: Authenticator,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            discount_codes: "WELCOME10=10,VIP20=20".to_owned(),
            body_limit: 64 * 1024,
            limits: RequestLimits {
                request_timeout: Duration::from_secs(10),
                max_concurrent_requests: 1024,
            },
            max_attempts: application::commands::DEFAULT_MAX_ATTEMPTS,
            snapshot_interval: application::commands::DEFAULT_SNAPSHOT_INTERVAL,
            auth: Authenticator::Off,
        }
    }
}

impl Cli {
    /// Checks the settings that must be right before anything starts.
    ///
    /// # Errors
    /// When `DISCOUNT_CODES` is malformed, or authentication is not configured as
    /// [`Cli::authenticator`] requires.
    pub fn settings(&self) -> anyhow::Result<ServiceSettings> {
        let auth = self.authenticator()?;
        DiscountTable::parse(&self.discount_codes).context("DISCOUNT_CODES is malformed")?;
        Ok(ServiceSettings {
            discount_codes: self.discount_codes.clone(),
            body_limit: self.http_body_limit,
            limits: RequestLimits {
                request_timeout: Duration::from_millis(self.http_request_timeout_ms),
                max_concurrent_requests: self.http_max_concurrent_requests.max(1),
            },
            max_attempts: self.command_max_attempts,
            snapshot_interval: self.snapshot_interval,
            auth,
        })
    }

    /// How requests are authenticated: exactly one of `JWT_SECRET` and `AUTH_MODE=none`.
    ///
    /// # Errors
    /// When neither or both are set, or the secret is too short.
    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        match (self.auth_mode, &self.jwt_secret) {
            (Some(AuthMode::None), Some(_)) => bail!(
                "both JWT_SECRET and AUTH_MODE=none are set: set JWT_SECRET to require bearer tokens, \
                 or AUTH_MODE=none (local development only), not both"
            ),
            (None, None) => bail!(
                "no authentication configured: set JWT_SECRET (HS256 bearer tokens), or AUTH_MODE=none \
                 for local development (X-User-Id is then trusted)"
            ),
            (None, Some(secret)) => Authenticator::jwt(secret.as_bytes()),
            (Some(AuthMode::None), None) => Ok(Authenticator::Off),
        }
    }

    /// The projector's settings, `None` when it is switched off.
    pub fn projector_settings(&self) -> Option<ProjectorSettings> {
        self.projector.then(|| ProjectorSettings {
            brokers: self.kafka_brokers.clone(),
            topic: self.orders_topic.clone(),
            group_id: self.projector_group_id.clone(),
            max_batch: 500,
        })
    }

    /// `HTTP_ADDR` as a socket address; `:PORT` means every interface.
    ///
    /// # Errors
    /// When it is not `HOST:PORT`.
    pub fn http_socket_addr(&self) -> anyhow::Result<SocketAddr> {
        order_runtime::parse_addr(&self.http_addr)
            .with_context(|| format!("HTTP_ADDR {:?} is not HOST:PORT", self.http_addr))
    }

    /// `GRPC_ADDR` as a socket address; `:PORT` means every interface.
    ///
    /// # Errors
    /// When it is not `HOST:PORT`.
    pub fn grpc_socket_addr(&self) -> anyhow::Result<SocketAddr> {
        order_runtime::parse_addr(&self.grpc_addr)
            .with_context(|| format!("GRPC_ADDR {:?} is not HOST:PORT", self.grpc_addr))
    }
}

/// The use cases every API calls, on one pool: the event store with snapshots, the
/// discount policy, the read model.
struct UseCases {
    commands: OrderCommands,
    queries: OrderQueries,
    summaries: SummaryQueries,
}

impl UseCases {
    fn build(pool: &PgPool, settings: &ServiceSettings) -> anyhow::Result<Self> {
        let store = Arc::new(PgEventStore::new(pool.clone()));
        let policy = Arc::new(
            DiscountTable::parse(&settings.discount_codes)
                .context("DISCOUNT_CODES is malformed")?,
        );
        let commands = OrderCommands::new(
            store.clone(),
            OrderFactory::new(policy),
            Arc::new(PublishAll),
            Arc::new(SystemClock),
        )
        .with_max_attempts(settings.max_attempts)
        .with_snapshots(store.clone(), settings.snapshot_interval);
        Ok(Self {
            commands,
            queries: OrderQueries::new(store.clone()).with_snapshots(store),
            summaries: SummaryQueries::new(Arc::new(PgReadModel::new(pool.clone()))),
        })
    }
}

/// Builds the HTTP application on a pool: event store, use cases, router.
///
/// # Errors
/// When the discount table or the metrics registry cannot be built.
pub fn build_router(pool: PgPool, settings: &ServiceSettings) -> anyhow::Result<Router> {
    let UseCases {
        commands,
        queries,
        summaries,
    } = UseCases::build(&pool, settings)?;
    let state = AppState {
        commands,
        queries,
        summaries,
        readiness: Arc::new(PgReadiness(pool)),
        metrics: Arc::new(HttpMetrics::new()?),
        auth: settings.auth.clone(),
        body_limit: settings.body_limit,
    };
    Ok(router(state, settings.limits))
}

/// Builds the gRPC application on a pool, as [`build_router`] builds the HTTP one:
/// the same use cases, authentication and limits (`body_limit` bounds a message).
///
/// # Errors
/// When the discount table cannot be built.
pub fn build_grpc(pool: PgPool, settings: &ServiceSettings) -> anyhow::Result<Routes> {
    let UseCases {
        commands,
        queries,
        summaries,
    } = UseCases::build(&pool, settings)?;
    let state = GrpcState {
        commands,
        queries,
        summaries,
        auth: settings.auth.clone(),
        message_limit: settings.body_limit,
    };
    Ok(order_grpc::routes(state, settings.limits))
}

/// Serves the gRPC `routes` on `listener` until `shutdown` resolves, then lets
/// in-flight calls finish.
///
/// # Errors
/// When the server fails.
pub async fn run_grpc(
    routes: Routes,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .context("gRPC server failed")
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

/// Purges idempotency records older than 24 hours, every `every`.
pub async fn purge_idempotency_keys_forever(pool: PgPool, every: Duration) {
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
