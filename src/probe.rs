//! `augur probe`: accept one switch connection, complete the OpenFlow
//! handshake, print what the switch told about itself, and then every
//! asynchronous message it sends until the time is up.
//!
//! It is the first thing to run against a new switch, and what the demo and
//! the smoke tests use to prove a switch reaches augur. The protocol work is
//! the sans-I/O [`SwitchSession`](augur_openflow::session::SwitchSession),
//! driven by [`crate::switch`].
//!
//! Output contract (the demo and the Mininet tests read it): the first line
//! names the bound address (`listening on tcp:IP:PORT`, or
//! `{"event":"listening","address":"IP:PORT"}` with `--json`), and once the
//! handshake completes a line names the switch's datapath id as 16 hex digits
//! (`switch dpid=0000000000000001 ...`, or `{"event":"switch",
//! "datapath_id":"0000000000000001",...}`), followed by its description and
//! ports.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use augur_openflow::Message;
use augur_openflow::session::{SessionConfig, SwitchInfo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, timeout_at};

use crate::cli::ProbeArgs;
use augur::switch;

/// Runs `augur probe`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(probe(args))
}

async fn probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let out = Output { json: args.json };
    // A signal stream rather than `ctrl_c()`: it can be awaited again after
    // each select, and a registration failure is an error, not an interrupt.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;

    let listener = TcpListener::bind(args.listen.0)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    out.listening(listener.local_addr()?);

    let (stream, peer) = tokio::select! {
        accepted = timeout_at(deadline, listener.accept()) => match accepted {
            Ok(accepted) => accepted.context("accepting the switch's connection failed")?,
            Err(_) => bail!("no switch connected within {} s", args.timeout),
        },
        _ = interrupt.recv() => bail!("interrupted before a switch connected"),
    };
    // One switch per probe: later connection attempts are refused.
    drop(listener);
    stream.set_nodelay(true)?;
    out.connected(peer);

    let config = SessionConfig {
        handshake_timeout: deadline.saturating_duration_since(Instant::now()),
        ..SessionConfig::default()
    };
    let (handle, mut messages, task) = tokio::select! {
        connected = switch::connect(stream, peer, config) => connected.map_err(|end| {
            anyhow::anyhow!("the switch at {peer} did not complete the handshake: {end}")
        })?,
        _ = interrupt.recv() => bail!("interrupted during the handshake"),
    };
    out.switch(handle.info());

    loop {
        tokio::select! {
            msg = timeout_at(deadline, messages.recv()) => match msg {
                Ok(Some(msg)) => out.received(&msg),
                Ok(None) => break,
                Err(_) => break,
            },
            _ = interrupt.recv() => break,
        }
    }
    drop(handle);
    if task.is_finished() {
        let end = task.await.context("the connection task failed")?;
        out.closed(&end.to_string());
    }
    Ok(())
}

/// Prints the probe's events as text or JSON lines. Standard output is
/// line-buffered, so each event reaches a pipe as soon as it happens.
struct Output {
    json: bool,
}

impl Output {
    fn listening(&self, addr: SocketAddr) {
        if self.json {
            println!(
                "{}",
                json!({"event": "listening", "address": addr.to_string()})
            );
        } else {
            println!("listening on tcp:{addr}");
        }
    }

    fn connected(&self, peer: SocketAddr) {
        if self.json {
            println!(
                "{}",
                json!({"event": "connected", "peer": peer.to_string()})
            );
        } else {
            println!("switch connected from {peer}");
        }
    }

    fn received(&self, message: &Message) {
        if self.json {
            println!("{}", json!({"event": "received", "message": message}));
        } else {
            println!("received: {message}");
        }
    }

    fn switch(&self, info: &SwitchInfo) {
        let f = &info.features;
        if self.json {
            println!(
                "{}",
                json!({
                    "event": "switch",
                    "datapath_id": format!("{:016x}", f.datapath_id),
                    "version": info.version.to_string(),
                    "n_tables": f.n_tables,
                    "n_buffers": f.n_buffers,
                    "auxiliary_id": f.auxiliary_id,
                    "capabilities": f.capabilities.to_string(),
                    "desc": info.desc,
                    "ports": info.ports,
                })
            );
        } else {
            println!(
                "switch dpid={:016x} version={} n_tables={} n_buffers={} capabilities={}",
                f.datapath_id, info.version, f.n_tables, f.n_buffers, f.capabilities
            );
            let d = &info.desc;
            println!("  manufacturer: {}", d.mfr_desc);
            println!("  hardware:     {}", d.hw_desc);
            println!("  software:     {}", d.sw_desc);
            println!("  serial:       {}", d.serial_num);
            println!("  datapath:     {}", d.dp_desc);
            println!("  ports ({}):", info.ports.len());
            for port in &info.ports {
                println!("    {port}");
            }
        }
    }

    fn closed(&self, why: &str) {
        if self.json {
            println!("{}", json!({"event": "closed", "reason": why}));
        } else {
            println!("connection ended: {why}");
        }
    }
}
