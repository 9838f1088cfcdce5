//! Open vSwitch bridges for tests, on the userspace datapath.
//!
//! A [`TestBridge`] is a uniquely named bridge (`aug` + 8 hex digits, so
//! tests running in parallel, or beside other people's, never collide) set up
//! the way augur expects switches to be: `datapath_type=netdev` (no kernel
//! module needed), OpenFlow 1.3 and 1.4, `fail_mode=secure` (nothing fails
//! open while the controller is away) and one out-of-band controller at
//! `tcp:127.0.0.1:PORT` (in-band mode would add hidden flows). The controller
//! is configured in the same transaction that creates the bridge: OVS flushes
//! the flow table when a bridge gains its first controller, so tests install
//! flows only after it exists. Dropping the bridge deletes it.
//!
//! Without a usable Open vSwitch, [`TestBridge::new`] prints a note and
//! returns `None` so the test can skip, unless `AUGUR_REQUIRE_OVS=1` (set by
//! `scripts/test.sh`), in which case it panics.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Seconds any one `ovs-vsctl` call may wait for the database and vswitchd.
const VSCTL_TIMEOUT: &str = "--timeout=20";

/// A bridge that exists for the lifetime of the value.
#[derive(Debug)]
pub struct TestBridge {
    name: String,
    datapath_id: u64,
    ports: u32,
}

impl TestBridge {
    /// Creates a bridge whose controller is `tcp:127.0.0.1:controller_port`.
    ///
    /// `None` (after a note on stderr) when Open vSwitch is not usable here;
    /// panics instead when `AUGUR_REQUIRE_OVS=1`.
    pub fn new(controller_port: u16) -> Option<TestBridge> {
        if let Err(why) = ovs_usable() {
            skip_without_ovs(&why);
            return None;
        }
        let (name, datapath_id) = unique_identity();
        let bridge = TestBridge {
            name,
            datapath_id,
            ports: 0,
        };
        let controller = format!("target=\"tcp:127.0.0.1:{controller_port}\"");
        let dpid = format!("other-config:datapath-id={datapath_id:016x}");
        vsctl(&[
            "--",
            "add-br",
            &bridge.name,
            "--",
            "set",
            "bridge",
            &bridge.name,
            "datapath_type=netdev",
            "protocols=OpenFlow13,OpenFlow14",
            "fail_mode=secure",
            &dpid,
            "--",
            "--id=@controller",
            "create",
            "Controller",
            &controller,
            "connection_mode=out-of-band",
            "--",
            "set",
            "bridge",
            &bridge.name,
            "controller=@controller",
        ]);
        Some(bridge)
    }

    /// The bridge's name (also the name of its local port).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The datapath id the bridge reports in FEATURES_REPLY.
    pub fn datapath_id(&self) -> u64 {
        self.datapath_id
    }

    /// Adds an internal port (a tap device on the userspace datapath) and
    /// returns its name, `<bridge>p<n>`.
    pub fn add_internal_port(&mut self) -> String {
        self.ports = self.ports.saturating_add(1);
        let port = format!("{}p{}", self.name, self.ports);
        vsctl(&[
            "--",
            "add-port",
            &self.name,
            &port,
            "--",
            "set",
            "interface",
            &port,
            "type=internal",
        ]);
        port
    }

    /// The OpenFlow port number OVS gave `port`.
    pub fn ofport(&self, port: &str) -> u32 {
        let out = vsctl(&["get", "interface", port, "ofport"]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("ovs-vsctl gave no ofport for {port}: {out:?}"))
    }

    /// `ovs-ofctl -O OpenFlow14 dump-flows <bridge> [args]`, as printed.
    pub fn dump_flows(&self, args: &[&str]) -> String {
        self.ofctl("dump-flows", args)
    }

    /// The flows `dump-flows --no-stats [args]` prints, each normalized
    /// ([`normalize_flow`]): equal sets are equal tables.
    pub fn flow_set(&self, args: &[&str]) -> BTreeSet<String> {
        let mut all = vec!["--no-stats"];
        all.extend_from_slice(args);
        self.dump_flows(&all)
            .lines()
            .filter_map(normalize_flow)
            .collect()
    }

    /// Runs `ovs-ofctl -O OpenFlow14 <command> <bridge> [args]` and returns
    /// its output; panics, with the output, if it fails.
    pub fn ofctl(&self, command: &str, args: &[&str]) -> String {
        let mut all = vec!["-O", "OpenFlow14", command, self.name.as_str()];
        all.extend_from_slice(args);
        checked("ovs-ofctl", &all, run("ovs-ofctl", &all))
    }

    /// Whether OVS reports the controller connection as up.
    pub fn controller_connected(&self) -> bool {
        let controllers = vsctl(&["get", "bridge", &self.name, "controller"]);
        let uuid = controllers.trim().trim_matches(|c| c == '[' || c == ']');
        vsctl(&["get", "controller", uuid, "is_connected"]).trim() == "true"
    }
}

/// A flow as `ovs-ofctl` prints it, without what changes by itself
/// (counters, ages, the remaining hard timeout), its match fields sorted;
/// `None` for a line that is no flow.
pub fn normalize_flow(line: &str) -> Option<String> {
    const CHANGING: [&str; 6] = [
        "duration=",
        "n_packets=",
        "n_bytes=",
        "idle_age=",
        "hard_age=",
        "hard_timeout=",
    ];
    let (head, actions) = line.trim().split_once(" actions=")?;
    let mut fields: Vec<&str> = head
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty() && !CHANGING.iter().any(|skip| f.starts_with(skip)))
        .collect();
    fields.sort_unstable();
    Some(format!("{} actions={actions}", fields.join(",")))
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        // Ports and the Controller row go with the bridge.
        let args = [VSCTL_TIMEOUT, "--if-exists", "del-br", self.name.as_str()];
        match run("ovs-vsctl", &args) {
            Ok(out) if out.status.success() => {}
            result => eprintln!(
                "warning: could not delete test bridge {}: {}",
                self.name,
                describe(&result)
            ),
        }
    }
}

/// Whether `AUGUR_REQUIRE_OVS=1` asks for OVS-backed tests to fail rather
/// than skip.
pub fn ovs_required() -> bool {
    std::env::var_os("AUGUR_REQUIRE_OVS").is_some_and(|v| v == "1")
}

/// Prints why an OVS-backed test skips, or panics if `AUGUR_REQUIRE_OVS=1`.
pub fn skip_without_ovs(why: &str) {
    if ovs_required() {
        panic!(
            "AUGUR_REQUIRE_OVS=1 but Open vSwitch is not usable: {why}. \
             `sudo bash scripts/setup.sh` installs and starts it."
        );
    }
    eprintln!("skipping: Open vSwitch is not usable ({why}); AUGUR_REQUIRE_OVS=1 makes this fail");
}

/// Whether `ovs-ofctl` runs (it needs no daemon for `ofp-print`); skips or
/// panics through [`skip_without_ovs`] when it does not.
pub fn ofctl_available() -> bool {
    let result = run("ovs-ofctl", &["--version"]);
    if matches!(&result, Ok(out) if out.status.success()) {
        true
    } else {
        skip_without_ovs(&format!(
            "`ovs-ofctl --version` failed: {}",
            describe(&result)
        ));
        false
    }
}

/// `Ok` when both the database and the switch daemon answer.
pub fn ovs_usable() -> Result<(), String> {
    for (program, args) in [
        ("ovs-vsctl", &["--timeout=5", "show"][..]),
        (
            "ovs-appctl",
            &["--timeout=5", "-t", "ovs-vswitchd", "version"][..],
        ),
    ] {
        let result = run(program, args);
        if !matches!(&result, Ok(out) if out.status.success()) {
            return Err(format!(
                "`{program} {}` failed: {}",
                args.join(" "),
                describe(&result)
            ));
        }
    }
    Ok(())
}

/// Runs `ovs-vsctl --timeout=20 <args>`, panicking with its output on failure.
pub fn vsctl(args: &[&str]) -> String {
    let mut all = vec![VSCTL_TIMEOUT];
    all.extend_from_slice(args);
    checked("ovs-vsctl", &all, run("ovs-vsctl", &all))
}

fn run(program: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(program).args(args).output()
}

fn checked(program: &str, args: &[&str], result: std::io::Result<Output>) -> String {
    match result {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        result => panic!(
            "`{program} {}` failed: {}",
            args.join(" "),
            describe(&result)
        ),
    }
}

fn describe(result: &std::io::Result<Output>) -> String {
    match result {
        Ok(out) => format!(
            "{}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        Err(e) => e.to_string(),
    }
}

/// A fresh bridge name (`aug` + 8 hex digits, 11 characters: interface names
/// are limited to 15) and a datapath id.
fn unique_identity() -> (String, u64) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    // RandomState is seeded randomly per process; the counter separates the
    // bridges of one process.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    let random = hasher.finish();
    let name = format!("aug{:08x}", random as u32);
    // 48 bits, like a MAC-derived datapath id, and never zero.
    let datapath_id = ((random >> 32) << 16 | 1) & 0xffff_ffff_ffff;
    (name, datapath_id)
}
