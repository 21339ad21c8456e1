//! The transport-neutral core of the order service's inbound APIs. HTTP (`order-http`)
//! and gRPC (`order-grpc`) each map their wire onto this core and its answers back onto
//! their wire, and never import each other: both accept, refuse and word requests
//! alike because they decide here.
//!
//! # Layout
//! - [`auth`]: who is behind a request (HS256 bearer JWTs, an identity provider's
//!   RS256/ES256 JWTs, or none for development), as an [`application::Actor`].
//! - [`jwks`]: the identity provider's key set, fetched at start and on rotation.
//! - [`requests`]: requests with every field optional, converted into domain commands
//!   with `try_into_domain`, which names every invalid field.
//! - [`context`]: the command context (correlation id, idempotency key and
//!   fingerprint, trace context) from headers or metadata.
//! - [`paging`]: page sizes and the opaque cursor of the read model's pages.
//! - [`problem`]: [`Problem`] and its [`ProblemKind`], what every refusal is before a
//!   transport words it.
//! - [`guard`]: the bound on requests in flight and on their duration.

pub mod auth;
pub mod context;
pub mod guard;
pub mod jwks;
pub mod paging;
pub mod problem;
pub mod requests;

pub use auth::{AuthError, Authenticator, Claims};
pub use context::{command_context, fingerprint, CorrelationId, MalformedIdempotencyKey};
pub use guard::{Guard, Refusal, RequestLimits};
pub use problem::{CommandWire, FieldError, Problem, ProblemKind};
