//! `tenantops`: the command line of the tenantops API (see `tenantops --help`).
//!
//! A command line's output is its terminal: it prints to stdout and stderr directly.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod config;
mod error;
mod output;
mod watch;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            output::error(&error::CliError::Runtime(e), json);
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(&e, json);
            ExitCode::FAILURE
        }
    }
}
