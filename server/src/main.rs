//! The `fleetdeck` binary: parses the command line, sets up logging, runs the command.
//! Failures end with one line on stderr and exit status 1; usage errors with clap's 2.

mod access;
mod commands;
mod config;
mod control;
mod store;
mod telemetry;
mod web;

use clap::Parser;
use config::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::logging::init(cli.log_format);
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
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args, &database_url).await,
            Command::User(command) => commands::user::run(command, &database_url).await,
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
