//! Adapters: the outside world of the order service.
//!
//! PostgreSQL (through `sqlx`) implements the application's ports: the event store,
//! the outbox and the idempotency keys share one transaction per command. The HTTP API
//! (`axum`) turns requests into commands and queries exactly as `shared/API.md` says.
//! The Kafka publisher (`rdkafka`) is what the relay sends outbox rows with.
//!
//! # Layout
//! - [`auth`]: authentication (HS256 bearer JWTs, or none for development), shared by
//!   HTTP and gRPC.
//! - [`postgres`]: pool, migrations, [`postgres::PgEventStore`] (events, snapshots) and its
//!   unit of work, [`postgres::PgReadModel`] and the read model's rebuild.
//! - [`http`]: router, request parsing, problem+json errors, handlers, the OpenAPI document.
//! - [`kafka`]: [`kafka::KafkaPublisher`] and the message format (key, value, CloudEvents headers).
//! - [`projector`]: the Kafka consumer that feeds the read model's projector.
//! - [`service`]: configuration and `run` for the `order-service` binary.
//! - [`telemetry`]: logging set-up shared by both binaries.

pub mod auth;
pub mod http;
pub mod kafka;
pub mod postgres;
pub mod projector;
pub mod service;
pub mod telemetry;
