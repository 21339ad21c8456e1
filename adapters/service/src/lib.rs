//! The `order-service` process: configuration and wiring of the API crates
//! (`order-api`'s core, `order-http`, `order-grpc`) over the PostgreSQL crate
//! (`order-postgres`), with the projector of the Kafka crate (`order-kafka`).
//!
//! # Layout
//! - [`service`]: configuration and `run` for the `order-service` binary.

pub mod service;
