//! The `fleetdeck` binary: parses the command line, sets up logging, runs the command.
//! Failures end with one line on stderr and exit status 1; usage errors with clap's 2.

mod access;
mod cluster;
mod commands;
mod config;
mod control;
mod demo;
mod gateway;
mod mcp_protocol;
mod registry;
mod roi;
mod sanitize;
mod store;
mod telemetry;
mod upstream;
mod web;

use clap::Parser;
use config::{Cli, Command};
use std::process::ExitCode;

/// Every allocation of the process: small, short-lived allocations are most of what a
/// proxied call does, and mimalloc serves them from per-thread pages without locks. It
/// keeps more freed memory for reuse than glibc did (README, Benchmark); the hostile-input
/// tests check that megabyte request bodies do not make the resident memory grow.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::logging::init(cli.log_format);
    // Upstream https uses rustls with the ring provider (no C toolchain beyond cc needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fleetdeck: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let database_url = cli.database_url();
    let data_dir = cli.data_dir.clone();
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args, &database_url).await,
            Command::Demo(args) => commands::demo::run(args, &database_url, &data_dir).await,
            Command::DemoServer(args) => commands::demo::run_server(args).await,
            Command::User(command) => commands::user::run(command, &database_url).await,
            Command::Assistant(command) => {
                commands::access::run_assistant(command, &database_url).await
            }
            Command::Permission(command) => {
                commands::access::run_permission(command, &database_url).await
            }
            // Needs no store of the user's: it keeps one in a temporary directory.
            Command::Bench(args) => commands::bench::run(args).await,
            Command::ScaleFleet(args) => commands::scale_fleet::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` joins the context chain on one line: "cannot …: because …".
            eprintln!("fleetdeck: {error:#}");
            ExitCode::FAILURE
        }
    }
}
