//! augur: an SDN controller for Open vSwitch that learns how VMs talk and
//! adjusts their access policy ahead of need.
//!
//! The binary is a thin shell: [`cli`] parses the command line and dispatches
//! to the subcommands; the protocol work lives in the library crates
//! (`augur-openflow`, `augur-ovsdb`, `augur-flows`).
#![forbid(unsafe_code)]

mod cli;
mod probe;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if !args.command.configures_logging() {
        init_logging();
    }
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if cli::is_broken_pipe(&err) => {
            // The reader went away (`augur ofp decode ... | head`): nothing
            // left to say and nobody to say it to.
            ExitCode::SUCCESS
        }
        Err(err) => {
            // One line, every cause joined: scripts grep it, people read it.
            eprintln!("augur: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Diagnostics go to stderr so that stdout stays machine-readable (`--json`).
/// `AUGUR_LOG` takes the `tracing-subscriber` filter syntax (`debug`,
/// `augur=trace`); the default shows warnings only.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUGUR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
