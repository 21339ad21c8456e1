//! `order-service`: the HTTP and gRPC APIs of the order service. Thin: parses the
//! command line, starts logging, runs [`order_service::cli::run`] until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use order_service::cli::{self, Cli, LogFormat};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    order_runtime::init(cli.log_format == LogFormat::Json);
    match cli::run(cli, order_runtime::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order-service stopped");
            ExitCode::FAILURE
        }
    }
}
