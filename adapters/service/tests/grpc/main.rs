//! The gRPC API (`orders.v1.OrderService`) against `shared/API.md`: a real tonic server
//! on 127.0.0.1:0, driven with the generated client, on a real PostgreSQL with a
//! throwaway database per test.
//!
//! Run with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service --test grpc`.
//!
//! Every rejected call goes through [`support::Server::assert_rejected_without_writes`], which
//! checks the code and that no event, outbox row or idempotency record was written.
//! The parity test sends the same inputs over HTTP (in-process router) and gRPC and
//! checks that the HTTP status and the gRPC code agree; the fuzz test throws a few
//! hundred random and mutated messages at every rpc.

mod auth;
mod commands;
mod errors;
mod idempotency;
mod malformed;
mod parity;
mod probes;
mod support;
