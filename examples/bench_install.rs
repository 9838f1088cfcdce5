//! Flow installation benchmark: augur's switch driver against `ovs-ofctl`
//! on the same compiled ACL table, in one run, on fresh userspace bridges.
//!
//! For each table size N it compiles a synthetic policy (tiers of VMs with
//! allow rules between neighbouring tiers) against a synthetic inventory
//! large enough to yield at least N flows, keeps exactly N, and then, per
//! round:
//!
//! 1. makes a fresh bridge whose controller is this program, and installs
//!    the N flows through `SwitchHandle::apply_atomically` (one OF1.4 bundle,
//!    as the daemon does), timing from building the FLOW_MODs to the commit's
//!    reply;
//! 2. dumps that bridge with `ovs-ofctl dump-flows --no-stats` into a file
//!    (first round only: the very flows augur installed, in `ovs-ofctl`
//!    syntax), removes the bridge, makes another fresh one and times
//!    `ovs-ofctl -O OpenFlow14 --bundle add-flows` of that file (process
//!    start to exit, as the switch's own tool is used);
//! 3. for the largest N: reconciles augur's bridge with a desired table
//!    where 1% of the flows differ (dump by cookie, diff, apply the
//!    difference in one bundle), and checks that a second reconciliation
//!    finds nothing to do.
//!
//! Run as root with Open vSwitch started; `scripts/bench-install.sh` builds
//! and runs it. Bridges are named `abi<pid>x`/`abi<pid>o` and removed at the
//! end, even on failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use augur::inventory::{Bridge, ExternalPort, Inventory, Vm, VmId, VmInterface};
use augur::policy::compile::{CompileSettings, FlowEntry, Stage, compile};
use augur::policy::reconcile::{reconcile, to_flow_mods};
use augur::policy::{Cookie, Policy};
use augur::switch::{SwitchHandle, connect};
use augur_openflow::multipart::FlowStats;
use augur_openflow::session::SessionConfig;
use augur_openflow::{
    Body, MacAddr, Match, MultipartReplyBody, MultipartRequest, PortNo, TABLE_ALL,
};
use tokio::net::TcpListener;

/// VMs per tier of the synthetic policy.
const TIERS: usize = 16;
/// The datapath id both benchmark bridges get (the inventory names it).
const DATAPATH_ID: u64 = 0x0000_00ab_c000_0001;
/// One flow in this many differs in the reconciliation measurement.
const DIFFER_ONE_IN: usize = 100;

struct Options {
    sizes: Vec<usize>,
    rounds: usize,
}

fn options() -> Result<Options> {
    let mut sizes = vec![10_000, 100_000];
    let mut rounds = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--flows" => {
                let value = args.next().context("--flows needs a value")?;
                sizes = value
                    .split(',')
                    .map(|n| n.trim().parse().context("--flows: a number"))
                    .collect::<Result<_>>()?;
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .context("--rounds needs a value")?
                    .parse()
                    .context("--rounds: a number")?;
            }
            other => bail!("unknown argument {other:?} (takes --flows N[,N...] --rounds R)"),
        }
    }
    if sizes.is_empty() || rounds == 0 {
        bail!("nothing to measure");
    }
    Ok(Options { sizes, rounds })
}

/// Tiers t0..t15; tier i may call tier i+1 on a TCP port, a UDP port and a
/// TCP port range (which compiles to several prefix matches).
fn synthetic_policy() -> Result<Policy> {
    let mut text = String::new();
    for tier in 0..TIERS {
        text.push_str(&format!(
            "[groups.t{tier}]\nlabels = {{ tier = \"t{tier}\" }}\n\n"
        ));
    }
    for tier in 0..TIERS - 1 {
        let next = tier + 1;
        text.push_str(&format!(
            "[[allow]]\nfrom = \"t{tier}\"\nto = \"t{next}\"\nproto = \"tcp\"\nport = {}\n\n\
             [[allow]]\nfrom = \"t{tier}\"\nto = \"t{next}\"\nproto = \"udp\"\nport = {}\n\n\
             [[allow]]\nfrom = \"t{tier}\"\nto = \"t{next}\"\nproto = \"tcp\"\nport = \"{}-{}\"\n\n",
            8000 + tier,
            5000 + tier,
            20000 + 100 * tier,
            20000 + 100 * tier + 37,
        ));
    }
    Ok(Policy::parse(&text, "synthetic policy", SystemTime::now())?)
}

/// `vms` VMs on one bridge, one port each, spread over the tiers, plus an
/// uplink and the LOCAL port.
fn synthetic_inventory(bridge: &str, vms: usize) -> Inventory {
    let mut inventory = Inventory {
        bridges: vec![Bridge {
            name: bridge.to_owned(),
            datapath_id: DATAPATH_ID,
        }],
        ..Inventory::default()
    };
    for n in 0..vms {
        let [_, b, c, d] = (n as u32 + 1).to_be_bytes();
        let mut labels = BTreeMap::new();
        labels.insert("tier".to_owned(), format!("t{}", n % TIERS));
        inventory.vms.push(Vm {
            id: VmId(format!("vm-{n}")),
            labels,
            interfaces: vec![VmInterface {
                bridge: bridge.to_owned(),
                name: String::new(),
                ofport: PortNo(n as u32 + 1),
                mac: MacAddr([0x02, 0, 0, b, c, d]),
                ips: vec![IpAddr::V4(Ipv4Addr::new(10, b, c, d))],
            }],
        });
    }
    inventory.external_ports.push(ExternalPort {
        bridge: bridge.to_owned(),
        name: "uplink".to_owned(),
        ofport: PortNo(60_000),
        mac: None,
    });
    inventory.external_ports.push(ExternalPort {
        bridge: bridge.to_owned(),
        name: bridge.to_owned(),
        ofport: PortNo::LOCAL,
        mac: Some(MacAddr([0x02, 0xff, 0, 0, 0, 1])),
    });
    inventory
}

/// The compiled table of a synthetic inventory with at least `n` flows,
/// cut to exactly `n` by leaving out the classify flows of the last VMs.
fn table_of(policy: &Policy, bridge: &str, n: usize) -> Result<(Vec<FlowEntry>, usize)> {
    let settings = CompileSettings {
        // No sampling meter: both sides install flows only.
        deny_sample_pps: 0,
        ..CompileSettings::default()
    };
    let compile_vms = |vms: usize| -> Result<Vec<FlowEntry>> {
        let inventory = synthetic_inventory(bridge, vms);
        let compiled = compile(policy, &inventory, &settings, SystemTime::now())?;
        let table = compiled
            .bridge(bridge)
            .context("the compiled policy lacks the bridge")?;
        if !table.meters.is_empty() {
            bail!("the synthetic policy should need no meter");
        }
        Ok(table.flows.clone())
    };
    // Flows grow linearly with VMs: measure the slope once, then step up.
    let base = compile_vms(TIERS)?.len();
    let per_vm = (compile_vms(2 * TIERS)?.len().saturating_sub(base) / TIERS).max(1);
    let mut vms = TIERS + n.saturating_sub(base) / per_vm;
    let mut flows = compile_vms(vms)?;
    while flows.len() < n {
        vms += (n - flows.len()).div_ceil(per_vm);
        flows = compile_vms(vms)?;
    }
    let mut excess = flows.len() - n;
    let mut trimmed = Vec::with_capacity(n);
    for flow in flows.into_iter().rev() {
        if excess > 0 && flow.stage == Stage::Classify {
            excess -= 1;
            continue;
        }
        trimmed.push(flow);
    }
    trimmed.reverse();
    if trimmed.len() != n {
        bail!("could not cut the table to {n} flows");
    }
    Ok((trimmed, vms))
}

fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A fresh userspace bridge, secure, OpenFlow 1.3+1.4, with the benchmark's
/// datapath id and, if given, an out-of-band controller.
fn make_bridge(name: &str, controller: Option<SocketAddr>) -> Result<()> {
    let dpid = format!("other-config:datapath-id={DATAPATH_ID:016x}");
    let mut args = vec![
        "--timeout=30",
        "--",
        "add-br",
        name,
        "--",
        "set",
        "bridge",
        name,
        "datapath_type=netdev",
        "fail_mode=secure",
        "protocols=OpenFlow13,OpenFlow14",
        &dpid,
    ];
    let target;
    if let Some(address) = controller {
        target = format!("target=\"tcp:{address}\"");
        args.extend([
            "--",
            "--id=@c",
            "create",
            "Controller",
            &target,
            "connection_mode=out-of-band",
            "--",
            "set",
            "bridge",
            name,
            "controller=@c",
        ]);
    }
    run("ovs-vsctl", &args)?;
    Ok(())
}

fn remove_bridge(name: &str) {
    let _ = Command::new("ovs-vsctl")
        .args(["--timeout=30", "--if-exists", "del-br", name])
        .status();
}

fn flow_count(bridge: &str) -> Result<usize> {
    let out = run("ovs-ofctl", &["-O", "OpenFlow14", "dump-aggregate", bridge])?;
    out.split_whitespace()
        .find_map(|word| word.strip_prefix("flow_count="))
        .context("dump-aggregate printed no flow_count")?
        .parse()
        .context("flow_count")
}

/// Accepts the bridge's connection and runs the handshake.
async fn accept(listener: &TcpListener) -> Result<SwitchHandle> {
    let (stream, peer) = tokio::time::timeout(Duration::from_secs(30), listener.accept())
        .await
        .context("the bridge did not connect within 30 s")??;
    stream.set_nodelay(true)?;
    let config = SessionConfig {
        request_timeout: Duration::from_secs(300),
        ..SessionConfig::default()
    };
    let (handle, mut events, _task) = connect(stream, peer, config)
        .await
        .map_err(|end| anyhow::anyhow!("handshake: {end}"))?;
    // Port status and the like: read and dropped, so the driver never waits.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(handle)
}

/// Installs `flows` as the daemon does on a bridge holding none of augur's.
async fn install(handle: &SwitchHandle, flows: &[FlowEntry]) -> Result<Duration> {
    let started = Instant::now();
    let bodies = flows
        .iter()
        .map(|f| Body::FlowMod(f.to_flow_mod()))
        .collect();
    handle.apply_atomically(bodies).await?;
    Ok(started.elapsed())
}

async fn dump(handle: &SwitchHandle) -> Result<Vec<FlowStats>> {
    let (cookie, mask) = Cookie::augur_filter();
    let request = MultipartRequest::flow_stats(TABLE_ALL, cookie, mask, Match::new());
    let mut flows = Vec::new();
    for reply in handle.request(Body::MultipartRequest(request)).await? {
        match reply.body {
            Body::MultipartReply(r) => match r.body {
                MultipartReplyBody::Flow(mut part) => flows.append(&mut part),
                other => bail!("unexpected reply {:?}", other.mp_type()),
            },
            other => bail!("unexpected message {}", other.msg_type(reply.version)),
        }
    }
    Ok(flows)
}

struct Reconciled {
    dump: Duration,
    diff: Duration,
    apply: Duration,
    changes: usize,
}

/// Dump, diff, apply: what the daemon does on connect and on every change.
async fn reconcile_once(handle: &SwitchHandle, desired: &[FlowEntry]) -> Result<Reconciled> {
    let started = Instant::now();
    let installed = dump(handle).await?;
    let dumped = Instant::now();
    let reconciliation = reconcile(desired, &installed);
    let bodies: Vec<Body> = to_flow_mods(&reconciliation.changes)
        .into_iter()
        .map(Body::FlowMod)
        .collect();
    let diffed = Instant::now();
    let changes = bodies.len();
    if !bodies.is_empty() {
        handle.apply_atomically(bodies).await?;
    }
    Ok(Reconciled {
        dump: dumped - started,
        diff: diffed - dumped,
        apply: diffed.elapsed(),
        changes,
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Bridges {
    augur: String,
    ofctl: String,
}

impl Drop for Bridges {
    fn drop(&mut self) {
        remove_bridge(&self.augur);
        remove_bridge(&self.ofctl);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let options = options()?;
    let pid = std::process::id();
    let bridges = Bridges {
        augur: format!("abi{pid}x"),
        ofctl: format!("abi{pid}o"),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let policy = synthetic_policy()?;
    let file = std::env::temp_dir().join(format!("augur-bench-install-{pid}.flows"));
    let largest = options.sizes.iter().copied().max().unwrap_or(0);

    for &n in &options.sizes {
        let compile_started = Instant::now();
        let (flows, vms) = table_of(&policy, &bridges.augur, n)?;
        println!(
            "{n} flows: {vms} VMs in {TIERS} tiers, {} rules (compiled in {:.2} s with the sizing passes)",
            policy.rules.len(),
            compile_started.elapsed().as_secs_f64()
        );
        let mut augur_times = Vec::new();
        let mut ofctl_times = Vec::new();
        let mut reconciles = Vec::new();
        for round in 0..options.rounds {
            remove_bridge(&bridges.augur);
            make_bridge(&bridges.augur, Some(address))?;
            let handle = accept(&listener).await?;
            let took = install(&handle, &flows).await?;
            let count = flow_count(&bridges.augur)?;
            if count != n {
                bail!("augur's bridge holds {count} flows, not {n}");
            }
            augur_times.push(took.as_secs_f64());
            if round == 0 {
                let dumped = run(
                    "ovs-ofctl",
                    &[
                        "-O",
                        "OpenFlow14",
                        "dump-flows",
                        "--no-stats",
                        &bridges.augur,
                    ],
                )?;
                let lines: Vec<&str> = dumped.lines().filter(|l| l.contains("priority=")).collect();
                if lines.len() != n {
                    bail!("dumped {} flows, not {n}", lines.len());
                }
                std::fs::write(&file, lines.join("\n") + "\n")?;
            }
            if n == largest {
                let mut changed = flows.clone();
                for flow in changed.iter_mut().step_by(DIFFER_ONE_IN) {
                    flow.priority = flow.priority.wrapping_add(1);
                }
                let first = reconcile_once(&handle, &changed).await?;
                let again = reconcile_once(&handle, &changed).await?;
                if again.changes != 0 {
                    bail!(
                        "a second reconciliation still found {} changes",
                        again.changes
                    );
                }
                reconciles.push(first);
            }
            drop(handle);
            remove_bridge(&bridges.augur);

            remove_bridge(&bridges.ofctl);
            make_bridge(&bridges.ofctl, None)?;
            let file_arg = file.to_string_lossy().into_owned();
            let started = Instant::now();
            run(
                "ovs-ofctl",
                &[
                    "-O",
                    "OpenFlow14",
                    "--bundle",
                    "add-flows",
                    &bridges.ofctl,
                    &file_arg,
                ],
            )?;
            ofctl_times.push(started.elapsed().as_secs_f64());
            let count = flow_count(&bridges.ofctl)?;
            if count != n {
                bail!("ovs-ofctl's bridge holds {count} flows, not {n}");
            }
            remove_bridge(&bridges.ofctl);
            println!(
                "  round {}: augur {:.3} s, ovs-ofctl {:.3} s",
                round + 1,
                augur_times[round],
                ofctl_times[round]
            );
        }
        let augur = median(augur_times);
        let ofctl = median(ofctl_times);
        println!(
            "{n} flows, median of {}: augur apply_atomically {augur:.3} s ({:.0} flows/s), \
             ovs-ofctl --bundle add-flows {ofctl:.3} s ({:.0} flows/s), ratio {:.2}",
            options.rounds,
            n as f64 / augur,
            n as f64 / ofctl,
            augur / ofctl
        );
        if !reconciles.is_empty() {
            let changes = reconciles[0].changes;
            let part = |f: fn(&Reconciled) -> Duration| {
                median(reconciles.iter().map(|r| f(r).as_secs_f64()).collect())
            };
            let total = median(
                reconciles
                    .iter()
                    .map(|r| (r.dump + r.diff + r.apply).as_secs_f64())
                    .collect(),
            );
            println!(
                "reconcile {n} installed flows, 1 in {DIFFER_ONE_IN} differing ({changes} flow_mods), median: \
                 {total:.3} s = dump {:.3} s + diff {:.3} s + apply {:.3} s",
                part(|r| r.dump),
                part(|r| r.diff),
                part(|r| r.apply)
            );
        }
    }
    let _ = std::fs::remove_file(&file);
    Ok(())
}
