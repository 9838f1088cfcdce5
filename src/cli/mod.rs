//! The command line: argument types and dispatch to the subcommands.

mod history;
mod inventory;
mod ofp_decode;
mod pending;
mod recommend;
mod replay;
mod run;
mod scenario;
mod versions;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use clap::{Parser, Subcommand};

pub use ofp_decode::DecodeArgs;
pub use run::RunArgs;

/// augur: learns how VMs talk and keeps their Open vSwitch access policy ahead of need.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept one switch connection, complete the OpenFlow handshake and print
    /// what the switch says.
    Probe(ProbeArgs),
    /// Run the controller: accept switches and keep their flows equal to the
    /// compiled policy.
    Run(RunArgs),
    /// OpenFlow tools that need no switch.
    Ofp {
        /// Which tool.
        #[command(subcommand)]
        command: OfpCommand,
    },
    /// Read the switch's OVSDB and print its bridges, ports and VMs as augur
    /// sees them.
    Inventory(inventory::InventoryArgs),
    /// Import flow history (Zeek conn.log, or CSV / JSON-lines flows) into
    /// the history store.
    Import(history::ImportArgs),
    /// Export the history store as CSV or JSON-lines flows.
    Export(history::ExportArgs),
    /// Print communication signatures from the history store.
    Signatures(history::SignaturesArgs),
    /// Print the busiest pairs and services in the history store.
    Top(history::TopArgs),
    /// Write a generated, labelled trace and its inventory for replay.
    Scenario(scenario::ScenarioArgs),
    /// Run augur's observer, predictor, risk engine and policy decisions in
    /// simulated time over a recorded trace, against three baselines.
    Replay(replay::ReplayArgs),
    /// List the current recommendations of a controller: probability, risk,
    /// factors and the evidence, learned from its history store.
    Recommend(recommend::RecommendArgs),
    /// List the changes waiting for an operator in the switch's OVSDB.
    Pending(pending::PendingArgs),
    /// Approve a pending change (as `ovs-vsctl set ... augur-decision-ID=approve`).
    Approve(pending::ApproveArgs),
    /// Reject a pending change (as `ovs-vsctl set ... augur-decision-ID=reject`).
    Reject(pending::RejectArgs),
    /// List the policy versions augur made (from the store directory).
    History(versions::HistoryArgs),
    /// Undo one change (--change ID) or return to a version (--to VERSION),
    /// through the running daemon.
    Rollback(versions::RollbackArgs),
}

impl Command {
    /// Whether the subcommand sets up logging itself (from its configuration)
    /// rather than from `AUGUR_LOG`.
    pub fn configures_logging(&self) -> bool {
        matches!(self, Command::Run(_))
    }
}

/// `augur ofp ...` subcommands.
#[derive(Debug, Subcommand)]
pub enum OfpCommand {
    /// Decode binary OpenFlow messages given as hex or in a file, and print
    /// each one.
    Decode(DecodeArgs),
}

/// Arguments of `augur probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Address to accept the switch's connection on. Port 0 picks a free
    /// port; the first line printed names the one chosen.
    #[arg(long, value_name = "tcp:IP:PORT")]
    pub listen: ListenAddr,
    /// Stop after this many seconds, counted from the start (waiting for the
    /// switch included).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub timeout: u64,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A TCP address to listen on, written as Open vSwitch writes controller
/// targets: `tcp:IP:PORT` (`tcp:[IPv6]:PORT` for IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix("tcp:") else {
            return Err(format!(
                "{s:?} is not a listen address: expected tcp:IP:PORT, e.g. tcp:127.0.0.1:6653"
            ));
        };
        rest.parse::<SocketAddr>().map(ListenAddr).map_err(|_| {
            format!(
                "{s:?} is not a listen address: expected tcp:IP:PORT with a numeric IP \
                 (tcp:[IPv6]:PORT for IPv6), e.g. tcp:127.0.0.1:6653"
            )
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tcp:{}", self.0)
    }
}

/// Runs the subcommand the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Probe(args) => crate::probe::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Ofp {
            command: OfpCommand::Decode(args),
        } => ofp_decode::run(&args),
        Command::Inventory(args) => inventory::run(&args),
        Command::Import(args) => history::run_import(&args),
        Command::Export(args) => history::run_export(&args),
        Command::Signatures(args) => history::run_signatures(&args),
        Command::Top(args) => history::run_top(&args),
        Command::Scenario(args) => scenario::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Recommend(args) => recommend::run(&args),
        Command::Pending(args) => pending::run_list(&args),
        Command::Approve(args) => pending::run_approve(&args),
        Command::Reject(args) => pending::run_reject(&args),
        Command::History(args) => versions::run_history(&args),
        Command::Rollback(args) => versions::run_rollback(&args),
    }
}

/// Whether `err` comes from writing to a closed pipe (the reader exited early).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_addresses_parse_like_ovs_targets() {
        let table: &[(&str, Option<&str>)] = &[
            ("tcp:127.0.0.1:6653", Some("127.0.0.1:6653")),
            ("tcp:0.0.0.0:0", Some("0.0.0.0:0")),
            ("tcp:[::1]:6653", Some("[::1]:6653")),
            ("127.0.0.1:6653", None),
            ("ptcp:6653", None),
            ("tcp:localhost:6653", None),
            ("tcp:127.0.0.1", None),
            ("tcp:127.0.0.1:65536", None),
            ("tcp:", None),
        ];
        for (input, expected) in table {
            let got = input.parse::<ListenAddr>();
            match expected {
                Some(addr) => {
                    let got = got.unwrap();
                    assert_eq!(got.0, addr.parse::<SocketAddr>().unwrap(), "{input}");
                    assert_eq!(got.to_string(), format!("tcp:{addr}"));
                }
                None => assert!(got.is_err(), "{input} should be rejected"),
            }
        }
    }
}
