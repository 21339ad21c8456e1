//! What the service is built from, apart from the database, and the defaults the
//! command line shares with [`ServiceSettings::default`].

use std::sync::Arc;
use std::time::Duration;

use domain::DiscountTable;
use order_api::auth::Authenticator;
use order_api::RequestLimits;

/// `DISCOUNT_CODES` when unset.
pub const DEFAULT_DISCOUNT_CODES: &str = "WELCOME10=10,VIP20=20";
/// `HTTP_BODY_LIMIT` when unset: the largest request body (and gRPC message) in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// `HTTP_REQUEST_TIMEOUT_MS` when unset.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// `ORDERS_TOPIC` when unset.
pub const DEFAULT_ORDERS_TOPIC: &str = order_events::asyncapi::DEFAULT_TOPIC;
/// `HTTP_MAX_CONCURRENT_REQUESTS` when unset.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1024;

/// What the HTTP and gRPC APIs are built from, apart from the database.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The discount policy, parsed once (`DISCOUNT_CODES`).
    pub discounts: Arc<DiscountTable>,
    /// The largest request body, and the largest gRPC message, in bytes.
    pub body_limit: usize,
    pub limits: RequestLimits,
    /// Times a command that lost a race on its order is tried before answering 409.
    pub max_attempts: u32,
    /// Every how many events an order is snapshotted (0: never).
    pub snapshot_interval: u64,
    /// How requests are authenticated.
    pub auth: Authenticator,
    /// The topic of the order events (`ORDERS_TOPIC`), as `/asyncapi.json` names it.
    pub orders_topic: String,
}

impl Default for ServiceSettings {
    /// The command line's defaults, with authentication off.
    fn default() -> Self {
        Self {
            discounts: Arc::new(
                DiscountTable::parse(DEFAULT_DISCOUNT_CODES)
                    .expect("the default discount codes parse"),
            ),
            body_limit: DEFAULT_BODY_LIMIT,
            limits: RequestLimits {
                request_timeout: Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
                max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            },
            max_attempts: application::commands::DEFAULT_MAX_ATTEMPTS,
            snapshot_interval: application::commands::DEFAULT_SNAPSHOT_INTERVAL,
            auth: Authenticator::Off,
            orders_topic: DEFAULT_ORDERS_TOPIC.to_owned(),
        }
    }
}
