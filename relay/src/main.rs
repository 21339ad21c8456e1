//! `outbox-relay`: publishes outbox rows to Kafka. Thin: parses the command line,
//! starts logging (and trace export), runs [`relay::daemon::run`] until SIGINT/SIGTERM (or one operator
//! subcommand).

use std::process::ExitCode;

use clap::Parser;
use relay::config::LogFormat;
use relay::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let mut telemetry = order_runtime::init(
        config.log_format == LogFormat::Json,
        &config.traces.export("outbox-relay"),
    );
    let code = match relay::daemon::run(config, order_runtime::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "outbox-relay stopped");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
