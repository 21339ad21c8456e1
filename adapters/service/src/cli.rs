//! The `order-service` command line: every setting as a flag and an environment
//! variable, the subcommands, and [`run`], all the binary does.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use application::Role;
use clap::{Parser, Subcommand, ValueEnum};
use domain::DiscountTable;
use tokio::net::TcpListener;

use order_api::auth::{self, Authenticator, Claims};
use order_api::RequestLimits;
use order_kafka::projector::ProjectorSettings;

use crate::app::{App, Listeners};
use crate::settings::{
    ServiceSettings, DEFAULT_BODY_LIMIT, DEFAULT_DISCOUNT_CODES, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_ORDERS_TOPIC, DEFAULT_REQUEST_TIMEOUT_MS,
};

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
    #[arg(long, env = "DISCOUNT_CODES", default_value = DEFAULT_DISCOUNT_CODES)]
    pub discount_codes: String,

    /// `none` turns authentication off (X-User-Id is trusted): local development only.
    /// Exactly one of this, JWT_SECRET and JWT_JWKS_URL must be set.
    #[arg(long, env = "AUTH_MODE", value_enum, global = true)]
    pub auth_mode: Option<AuthMode>,

    /// HS256 secret (at least 32 bytes) of the bearer JWTs every request must carry
    /// (claims sub, exp, roles, customerId). Exactly one of this, JWT_JWKS_URL and
    /// AUTH_MODE=none must be set.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// An identity provider's key set (JWKS): bearer JWTs are then RS256 or ES256,
    /// verified with the key their `kid` names (same claims as with JWT_SECRET). Fetched
    /// at start (not ready until then) and again on an unknown kid (at most every 30 s).
    #[arg(long, env = "JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// When set, a token's `iss` must equal it (401 otherwise); tokens minted by
    /// `token` carry it.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// When set, a token's `aud` (a string or an array) must contain it (401
    /// otherwise); tokens minted by `token` carry it.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

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

    #[command(flatten)]
    pub traces: order_runtime::TraceArgs,

    /// Largest database connection pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,

    /// Largest request body in bytes (larger answers 413).
    #[arg(long, env = "HTTP_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub http_body_limit: usize,

    /// Requests taking longer answer 503 (and write nothing).
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub http_request_timeout_ms: u64,

    /// Requests in flight at once; more answer 503 with Retry-After at once.
    #[arg(
        long,
        env = "HTTP_MAX_CONCURRENT_REQUESTS",
        default_value_t = DEFAULT_MAX_CONCURRENT_REQUESTS
    )]
    pub http_max_concurrent_requests: usize,

    /// Times a command that lost a race on its order is tried before answering 409.
    #[arg(
        long,
        env = "COMMAND_MAX_ATTEMPTS",
        default_value_t = application::commands::DEFAULT_MAX_ATTEMPTS
    )]
    pub command_max_attempts: u32,

    /// A snapshot of an order is stored every this many events (0: never).
    #[arg(
        long,
        env = "SNAPSHOT_INTERVAL",
        default_value_t = application::commands::DEFAULT_SNAPSHOT_INTERVAL
    )]
    pub snapshot_interval: u64,

    /// Run the read model's projector (a Kafka consumer) in this process.
    #[arg(long, env = "PROJECTOR_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub projector: bool,

    /// Bootstrap servers the projector consumes from.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,

    /// Topic of the order events.
    #[arg(long, env = "ORDERS_TOPIC", default_value = DEFAULT_ORDERS_TOPIC)]
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
    /// swapped in at the end (reads keep working meanwhile), and exit. Recorded as a
    /// job and an action, as `POST /admin/projections/rebuild` is; refused while
    /// another rebuild runs.
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

impl Cli {
    /// Checks the settings that must be right before anything starts.
    ///
    /// # Errors
    /// When `DISCOUNT_CODES` is malformed, or authentication is not configured as
    /// [`Cli::authenticator`] requires.
    pub fn settings(&self) -> anyhow::Result<ServiceSettings> {
        let auth = self.authenticator()?;
        let discounts =
            DiscountTable::parse(&self.discount_codes).context("DISCOUNT_CODES is malformed")?;
        Ok(ServiceSettings {
            discounts: Arc::new(discounts),
            body_limit: self.http_body_limit,
            limits: RequestLimits {
                request_timeout: Duration::from_millis(self.http_request_timeout_ms),
                max_concurrent_requests: self.http_max_concurrent_requests.max(1),
            },
            max_attempts: self.command_max_attempts,
            snapshot_interval: self.snapshot_interval,
            auth,
            orders_topic: self.orders_topic.clone(),
        })
    }

    /// How requests are authenticated: exactly one of `JWT_SECRET`, `JWT_JWKS_URL` and
    /// `AUTH_MODE=none`, with `JWT_ISSUER` and `JWT_AUDIENCE` checked when set.
    ///
    /// # Errors
    /// When none or several are set, the secret is too short, the key set's URL is no
    /// http(s) URL, or an issuer or audience is set without tokens to check.
    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        let none = self.auth_mode == Some(AuthMode::None);
        let authenticator = match (none, &self.jwt_secret, &self.jwt_jwks_url) {
            (false, None, None) => bail!(
                "no authentication configured: set JWT_SECRET (HS256 bearer tokens), JWT_JWKS_URL \
                 (an identity provider's RS256/ES256 tokens), or AUTH_MODE=none for local development \
                 (X-User-Id is then trusted)"
            ),
            (false, Some(secret), None) => Authenticator::jwt(secret.as_bytes())?,
            (false, None, Some(url)) => Authenticator::jwks(url)?,
            (true, None, None) => Authenticator::Off,
            _ => bail!(
                "more than one of JWT_SECRET, JWT_JWKS_URL and AUTH_MODE=none is set: set exactly one \
                 (JWT_SECRET for HS256 tokens, JWT_JWKS_URL for an identity provider's, AUTH_MODE=none \
                 for local development only)"
            ),
        };
        authenticator.with_issuer_and_audience(self.jwt_issuer.clone(), self.jwt_audience.clone())
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

/// Runs what `cli` asks: a subcommand, or the service until `shutdown` resolves
/// (SIGINT/SIGTERM in the binary).
///
/// # Errors
/// When the settings are wrong, a listener cannot be bound, migrations fail, a
/// subcommand fails, or a server failed.
pub async fn run(
    cli: Cli,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let pool = order_postgres::connect_lazy(
        &cli.database_url,
        cli.db_max_connections,
        Duration::from_millis(cli.db_acquire_timeout_ms),
    )?;
    let ran = match &cli.command {
        Some(command) => run_command(&cli, command, &pool).await,
        None => serve(&cli, &pool, shutdown).await,
    };
    pool.close().await;
    ran
}

async fn run_command(cli: &Cli, command: &Command, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            order_postgres::migrate(pool).await?;
            tracing::info!("migrations applied");
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild,
        } => {
            let administration = application::Administration::new(std::sync::Arc::new(
                order_postgres::PgAdministration::new(pool.clone()),
            ));
            let job = administration
                .start_rebuild(&order_runtime::jobs::cli_actor())
                .await
                .context("starting the rebuild")?;
            let done = order_runtime::jobs::run_in_foreground(job, "rebuild").await?;
            tracing::info!(
                events = done.processed,
                job_id = %done.job_id,
                "read model rebuilt and swapped in"
            );
        }
        Command::Token(args) => {
            let token = cli.authenticator()?.mint(&args.claims()?)?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{token}").context("writing the token")?;
        }
    }
    Ok(())
}

async fn serve(
    cli: &Cli,
    pool: &sqlx::PgPool,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let settings = cli.settings()?;
    match &settings.auth {
        Authenticator::Jwt(_) => {
            tracing::info!("authentication: HS256 bearer tokens (JWT_SECRET)");
        }
        Authenticator::Jwks(_) => tracing::info!(
            url = cli.jwt_jwks_url.as_deref().unwrap_or_default(),
            "authentication: RS256/ES256 bearer tokens of an identity provider (JWT_JWKS_URL); \
             not ready until its key set is fetched"
        ),
        Authenticator::Off => tracing::warn!(
            "AUTH_MODE=none: authentication is off and X-User-Id is trusted; for local development only"
        ),
    }
    if !cli.no_migrate {
        order_postgres::migrate(pool).await?;
    }
    let listeners = Listeners {
        http: bind(cli.http_socket_addr()?, "HTTP_ADDR").await?,
        grpc: bind(cli.grpc_socket_addr()?, "GRPC_ADDR").await?,
    };
    let app = App::build(pool.clone(), &settings, listeners, cli.projector_settings())?;
    tracing::info!(http_addr = %app.http_addr()?, "order-service listening");
    tracing::info!(grpc_addr = %app.grpc_addr()?, "order-service gRPC listening");
    app.run(shutdown).await?;
    tracing::info!("order-service stopped");
    Ok(())
}

async fn bind(addr: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {setting} {addr}"))
}
