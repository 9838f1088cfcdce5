//! The set-up shared by the tests of the decision loop on real bridges
//! (`tests/orchestrate_ovs.rs`, `tests/orchestrate_restart_ovs.rs`): the
//! example three-tier policy and inventory, two days of history in which
//! three keys no rule allows worked all along, and helpers to read the
//! switch database and the bridges' flows. Included with
//! `#[path = "support/orchestrate.rs"] mod orchestrate;` beside
//! `mod support;` and `mod common;` (the private ovsdb-server).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use augur::inventory::Inventory;
use augur::orchestrate::versions::PolicyVersion;
use augur::policy::{Cookie, Origin};
use augur::store::versions::VersionStore;
use etherparse::PacketBuilder;

use crate::common;
use crate::support::example::inventory_on;
use crate::support::ovs::TestBridge;

pub use crate::support::example::{INVENTORY, POLICY};

/// The recommendation ids of the history below (stable: a hash of the
/// change's text).
pub const LOW_ID: &str = "fad444196df3800b"; // add pair web-1 -> db-1 6000/tcp
/// MySQL: high risk.
pub const MYSQL_ID: &str = "840d9c0425a187d0"; // open port app-1 -> db-1 3306/tcp
/// SSH: high risk.
pub const SSH_ID: &str = "69f03691a7df4053"; // open port web-2 -> app-2 22/tcp

/// A small deterministic generator (xorshift), for the history's gaps.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn gap(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next()).ln()
    }
}

/// Two days of flows ending at `now` (the history of
/// `tests/orchestrate_ovs.rs`): the policy's traffic, two pairs that stop
/// half-way, and three pairs no rule allows that worked all along.
pub fn history_csv(now: f64) -> String {
    let start = now - 2.0 * 86_400.0;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut rows: Vec<(f64, String)> = Vec::new();
    let mut flows = |src: &str, dst: &str, port: u16, mean: f64, from: f64, to: f64| {
        let mut t = from + rng.next() * mean;
        while t < to {
            let bytes = 20_000 + (rng.next() * 5000.0) as u64;
            rows.push((
                t,
                format!("{t:.3},{src},{dst},tcp,{port},{bytes},20,allowed"),
            ));
            t += rng.gap(mean);
        }
    };
    for (web, app) in [("web-1", "app-1"), ("web-2", "app-2")] {
        flows(web, app, 8000, 120.0, start, now);
    }
    for (app, db) in [("app-1", "db-1"), ("app-2", "db-2")] {
        flows(app, db, 5432, 120.0, start, now);
    }
    flows("web-1", "app-2", 8001, 300.0, start, start + 86_400.0);
    flows("web-2", "app-1", 8002, 300.0, start, start + 86_400.0);
    flows("web-1", "db-1", 6000, 240.0, start, now);
    flows("app-1", "db-1", 3306, 240.0, start, now);
    flows("web-2", "app-2", 22, 240.0, start, now);
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut csv = "ts,src,dst,proto,dport,bytes,packets,verdict\n".to_owned();
    for (_, row) in rows {
        writeln!(csv, "{row}").unwrap();
    }
    csv
}

/// The example inventory on two test bridges, web-1 at a real port of `s1`.
pub fn inventory(s1: &TestBridge, s2: &TestBridge, web1_ofport: u32) -> Inventory {
    let mut inventory = inventory_on(Some(s1), Some(s2));
    for vm in inventory.vms.iter_mut().filter(|vm| vm.id.0 == "web-1") {
        for i in &mut vm.interfaces {
            i.ofport.0 = web1_ofport;
        }
    }
    inventory
}

/// A TCP SYN from web-1 to web-2, which no rule allows.
pub fn denied_syn(src_port: u16) -> String {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([0x02, 0, 0, 0, 0x01, 0x01], [0x02, 0, 0, 0, 0x02, 0x01])
        .ipv4([10, 0, 0, 11], [10, 0, 0, 12], 64)
        .tcp(src_port, 9999, 1000, 64_240)
        .syn()
        .write(&mut frame, &[])
        .unwrap();
    hex::encode(frame)
}

pub fn ovs_vsctl(server: &common::Server, args: &str) -> String {
    let line = format!(
        "ovs-vsctl --db=unix:{} --no-wait --timeout=10 {args}",
        server.sock.display()
    );
    let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn external_id(server: &common::Server, key: &str) -> Option<String> {
    let out = ovs_vsctl(
        server,
        &format!("--if-exists get Open_vSwitch . external_ids:{key}"),
    );
    (!out.is_empty()).then(|| out.trim_matches('"').to_owned())
}

/// The cookie of a dumped flow.
pub fn cookie_of(flow: &str) -> Option<Cookie> {
    let text = flow
        .split(',')
        .find_map(|f| f.trim().strip_prefix("cookie="))?;
    Cookie::from_raw(u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()?)
}

/// Whether a dumped flow is one of augur's rule flows of `version`.
pub fn is_rule_flow_of(flow: &str, version: u16) -> bool {
    cookie_of(flow)
        .is_some_and(|c| matches!(c.origin(), Some(Origin::Rule(_))) && c.version() == version)
}

/// Every flow of the bridge, normalized, as a set.
pub fn table(bridge: &TestBridge) -> BTreeSet<String> {
    bridge.flow_set(&[])
}

pub fn rule_flows_of(bridge: &TestBridge, version: u16) -> usize {
    table(bridge)
        .iter()
        .filter(|f| is_rule_flow_of(f, version))
        .count()
}

/// The history on disk (read beside the running daemon: the store is in
/// WAL mode).
pub fn stored(store: &Path) -> Vec<PolicyVersion> {
    VersionStore::open_existing(store)
        .unwrap()
        .map(|s| s.list().unwrap())
        .unwrap_or_default()
}

/// The versions that made recommendation `id` (not rollbacks).
pub fn versions_of(history: &[PolicyVersion], id: &str) -> Vec<PolicyVersion> {
    history
        .iter()
        .filter(|v| v.recommendation.as_deref() == Some(id) && !v.decider.is_rollback())
        .cloned()
        .collect()
}

pub fn import(store: &Path, csv: &Path, inventory: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["import", "csv"])
        .arg(csv)
        .args(["--window", "5", "--inventory"])
        .arg(inventory)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "augur import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The configuration of a daemon with the decision loop on, over the
/// files of these tests and the private switch database at `ovsdb_sock`,
/// listening on `listen` (`127.0.0.1:0` for any port).
pub fn loop_config(
    policy: &Path,
    inventory: &Path,
    store: &Path,
    ovsdb_sock: &Path,
    listen: &str,
) -> String {
    format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
[logging]
level = "info"
[listen]
tcp = "{listen}"
[openflow]
audit_interval = "2s"
[metrics]
enabled = false
[observer]
store = "{}"
poll_interval = "1s"
[ovsdb]
target = "unix:{}"
configure_bridges = false
[orchestrate]
enabled = true
cycle = "1s"
watch_for = "300s"
[orchestrate.harm]
denied_rise_min = 5
"#,
        policy.display(),
        inventory.display(),
        store.display(),
        ovsdb_sock.display()
    )
}
