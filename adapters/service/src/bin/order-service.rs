//! `order-service`: the HTTP and gRPC APIs of the order service. Thin: parses the
//! command line, starts logging (and trace export), runs [`order_service::cli::run`] until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use order_service::cli::{self, Cli, LogFormat};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut telemetry = order_runtime::init(
        cli.log_format == LogFormat::Json,
        &cli.traces.export("order-service"),
    );
    let code = match cli::run(cli, order_runtime::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "order-service stopped");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
