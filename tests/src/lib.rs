//! Test support for the end-to-end suite and the benchmarks: a whole running system
//! (fresh database, fresh topic, the real `order-service` HTTP app and `outbox-relay`
//! loops) and a Kafka consumer that reads the topic back.
//!
//! # Layout
//! - [`system`]: [`System`], started per test, and the topic helpers.
//! - [`contract`]: every message read is checked against the event contract.
//! - [`processes`]: `outbox-relay` processes to kill and brokers to freeze, for fault injection.
//! - [`otlp`]: an OTLP/HTTP receiver that keeps the spans exported to it.
//! - `tests/e2e/`: the end-to-end tests (one binary); `tests/tracing.rs`: the exported
//!   traces (a binary of its own: it installs trace export in its process);
//!   `tests/console.rs`: the operator console in headless Chromium (a binary of its
//!   own, so it runs alone).
//! - `benches/pipeline/`: the pipeline's figures, with the real binaries as child
//!   processes (`scripts/bench.sh`).

pub mod contract;
pub mod otlp;
pub mod processes;
pub mod system;

pub use system::{brokers, create_topic, order_body, Received, System};
