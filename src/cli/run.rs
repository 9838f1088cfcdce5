//! `augur run`: the enforcement daemon.

use std::path::PathBuf;

use anyhow::Context as _;
use augur::daemon::{self, Daemon};

/// Arguments of `augur run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file (TOML; every setting is described in
    /// examples/augur.toml). Without it, settings come from AUGUR_…
    /// environment variables and the defaults.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Load and check the configuration, the policy and an inventory file,
    /// print what would be installed, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let loaded = daemon::load(args.config.as_deref(), std::env::vars())?;
    if args.check {
        let summary = daemon::check(&loaded)?;
        println!("{summary}");
        return Ok(());
    }
    daemon::logging::init(&loaded.config.logging).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let daemon = Daemon::start(loaded).await?;
        daemon
            .run_until_signal()
            .await
            .context("cannot watch for signals")
    })
}
