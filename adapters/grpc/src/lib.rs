//! The gRPC API: `orders.v1.OrderService` (`adapters/proto/orders/v1/orders.proto`) on
//! `tonic`: the wire of the API core (`order-api`), which decides, as for HTTP, what is
//! accepted and refused, how a command is identified for idempotency and who sends it.
//!
//! # Layout
//! - [`proto`]: the code generated from the proto file by `build.rs` (messages, server,
//!   client).
//! - [`codec`]: the protobuf codec (an undecodable message is INVALID_ARGUMENT).
//! - `layers`: the server span (when traces are exported), the guard (concurrency and
//!   time), authentication and correlation id, run on the metadata before the message
//!   is decoded.
//! - `service`: one method per rpc: parse, call one use case, answer.
//! - `requests`: messages as the core's inputs, so both APIs accept and refuse the same
//!   inputs.
//! - `convert`: answers as messages.
//! - `status`: the core's problems as statuses with details.
//! - [`health`]: `grpc.health.v1.Health` on the database's readiness, and server
//!   reflection, both open.

pub mod codec;
mod convert;
pub mod health;
mod layers;
mod requests;
mod service;
mod status;

use std::sync::Arc;

use application::{OrderCommands, OrderQueries, Readiness, SummaryQueries};
use tonic::service::Routes;

use order_api::{Authenticator, Guard, RequestLimits};

/// The code generated from `orders.proto`: messages, the server and the client.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod proto {
    tonic::include_proto!("orders.v1");
}

/// What the gRPC service is built from.
#[derive(Debug, Clone)]
pub struct GrpcState {
    pub commands: OrderCommands,
    pub queries: OrderQueries,
    /// The read model (`ListOrders`).
    pub summaries: SummaryQueries,
    /// How requests are authenticated.
    pub auth: Authenticator,
    /// The largest accepted message, in bytes (larger is OUT_OF_RANGE).
    pub message_limit: usize,
    /// What `grpc.health.v1.Health` reports (the database's readiness).
    pub readiness: Arc<dyn Readiness>,
}

/// The gRPC server's parts: the routes to serve, and the probe to run beside them
/// (until the server stops) so health answers stay current.
#[derive(Debug)]
pub struct GrpcApi {
    pub routes: Routes,
    pub health: health::HealthProbe,
}

/// The routes of `orders.v1.OrderService` behind its layers, with health and
/// reflection beside them (open), to serve with `tonic::transport::Server::add_routes`.
pub fn routes(state: GrpcState, limits: RequestLimits) -> GrpcApi {
    let rpcs = service::OrderRpcs {
        commands: state.commands,
        queries: state.queries,
        summaries: state.summaries,
    };
    let server = proto::order_service_server::OrderServiceServer::new(rpcs)
        .max_decoding_message_size(state.message_limit);
    let router = Routes::new(server)
        .prepare()
        .into_axum_router()
        .layer(axum::middleware::from_fn(layers::correlate))
        .layer(axum::middleware::from_fn_with_state(
            state.auth,
            layers::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Guard::from(limits),
            layers::guard,
        ))
        .layer(axum::middleware::from_fn(layers::server_span));
    let (routes, health) = health::add_probes(Routes::from(router), state.readiness);
    GrpcApi { routes, health }
}
