//! The `order-service` process: configuration and wiring of the API crates
//! (`order-api`'s core, `order-http`, `order-grpc`) over the PostgreSQL crate
//! (`order-postgres`), with the projector of the Kafka crate (`order-kafka`).
//!
//! # Layout
//! - [`cli`]: the command line (every setting a flag and an environment variable),
//!   its subcommands, and [`cli::run`], all the binary does.
//! - [`settings`]: what the APIs are built from, and the defaults the command line shares.
//! - [`app`]: the library [`App`]: [`App::build`] wires the use cases once for HTTP and
//!   gRPC; [`App::run`] runs both servers, the projector and the purge until a stop.
//!   The end-to-end harness runs the same `App`.

pub mod app;
pub mod cli;
pub mod settings;

pub use app::{build_grpc, build_router, run, run_grpc, run_projector, App, Listeners};
pub use cli::Cli;
pub use settings::ServiceSettings;
