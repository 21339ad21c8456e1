//! The gRPC API: `orders.v1.OrderService` (`proto/orders/v1/orders.proto`) on `tonic`,
//! with the HTTP API's use cases, validation, errors, idempotency and authentication.
//!
//! # Layout
//! - [`proto`]: the code generated from the proto file by `build.rs` (messages, server,
//!   client).
//! - [`codec`]: the protobuf codec (an undecodable message is INVALID_ARGUMENT).
//! - `layers`: the guard (concurrency and time), authentication and correlation id,
//!   run on the metadata before the message is decoded.
//! - `service`: one method per rpc; messages are checked by the HTTP API's request
//!   bodies (`http::from_grpc`), so both APIs accept and refuse the same inputs.
//! - `convert`: answers as messages.
//! - `status`: errors as statuses, through the HTTP API's `ApiError`.

pub mod codec;
mod convert;
mod layers;
mod service;
mod status;

use application::{OrderCommands, OrderQueries, SummaryQueries};
use tonic::service::Routes;

use crate::auth::Authenticator;
use crate::http::HttpLimits;

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
}

/// The routes of `orders.v1.OrderService` behind its layers, to serve with
/// `tonic::transport::Server::add_routes`.
pub fn routes(state: GrpcState, limits: HttpLimits) -> Routes {
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
            crate::http::Guard::from(limits),
            layers::guard,
        ));
    Routes::from(router)
}
