//! A real bridge with two VM ports, `a` and `b`, under a running `augur run`
//! with the observer on: shared by the observer tests.

use std::path::PathBuf;
use std::time::Duration;

use augur::daemon::{self, Daemon};
use augur::inventory::Inventory;
use etherparse::PacketBuilder;

use super::ovs::TestBridge;
use super::{eventually, write_atomically};

/// Web VM `a` may reach database VM `b` on TCP 5432 and UDP 5353; nothing
/// else is allowed.
pub const POLICY: &str = r#"
[groups.web]
vms = ["a"]
[groups.db]
vms = ["b"]
[[allow]]
from = "web"
to = "db"
proto = "tcp"
port = 5432
[[allow]]
from = "web"
to = "db"
proto = "udp"
port = 5353
"#;

/// How long the switch and the daemon get to do what is expected.
pub const WAIT: Duration = Duration::from_secs(60);
/// VM `a`'s MAC.
pub const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
/// VM `b`'s MAC.
pub const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

/// A TCP SYN from a to b, as hex for `ovs-ofctl packet-out`.
pub fn syn(src_port: u16, dst_port: u16) -> String {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 7, 0, 1], [10, 7, 0, 2], 64)
        .tcp(src_port, dst_port, 1000, 64_240)
        .syn()
        .write(&mut frame, &[])
        .unwrap();
    hex::encode(frame)
}

/// A UDP datagram with `payload` bytes from a to b (or b to a), as hex for
/// `ovs-ofctl packet-out`.
pub fn datagram(from_a: bool, src_port: u16, dst_port: u16, payload: usize) -> String {
    let (macs, ips) = if from_a {
        ((MAC_A, MAC_B), ([10, 7, 0, 1], [10, 7, 0, 2]))
    } else {
        ((MAC_B, MAC_A), ([10, 7, 0, 2], [10, 7, 0, 1]))
    };
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(ips.0, ips.1, 64)
        .udp(src_port, dst_port)
        .write(&mut frame, &vec![0x5a; payload])
        .unwrap();
    hex::encode(frame)
}

/// Whether a dump of the flows holds the counting flow of a connection to
/// UDP port 5353 (the forward stage; the rule's flows match the port too).
pub fn counting_flow_installed(flows: &str) -> bool {
    flows
        .lines()
        .any(|l| l.contains("table=6") && l.contains("ct_tp_dst=5353"))
}

/// The running setup; dropping it stops the bridge and removes the files.
pub struct Observed {
    /// Holds the policy, inventory and history files.
    pub dir: tempfile::TempDir,
    /// The daemon.
    pub daemon: Daemon,
    /// The bridge.
    pub bridge: TestBridge,
    /// VM `a`'s OpenFlow port.
    pub ofport_a: u32,
    /// VM `b`'s OpenFlow port.
    pub ofport_b: u32,
    /// The history store.
    pub history: PathBuf,
}

/// Starts the daemon with `settings` added at the top of its configuration
/// and `observer` added to its `[observer]` table, connects a bridge with the
/// two VMs, and waits until its flows contain `ready`.
pub async fn start(settings: &str, observer: &str, ready: &str) -> Observed {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let inventory_file = dir.path().join("inventory.toml");
    let history = dir.path().join("history");
    write_atomically(&policy, POLICY);
    write_atomically(&inventory_file, "");
    let config = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
{settings}
[listen]
tcp = "127.0.0.1:0"
[metrics]
enabled = false
[observer]
store = "{}"
poll_interval = "1s"
window = "2s"
{observer}
"#,
        policy.display(),
        inventory_file.display(),
        history.display()
    );
    let loaded = daemon::config::load_text(&config, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let mut bridge = TestBridge::new(daemon.tcp_addresses()[0].port()).unwrap();
    let port_a = bridge.add_internal_port();
    let port_b = bridge.add_internal_port();
    let (ofport_a, ofport_b) = (bridge.ofport(&port_a), bridge.ofport(&port_b));
    let inventory: Inventory = serde_json::from_str(&format!(
        r#"{{"bridges": [{{"name": "{br}", "datapath_id": {dpid}}}], "vms": [
          {{"id": "a", "interfaces": [{{"bridge": "{br}", "ofport": {ofport_a}, "mac": "02:00:00:00:00:0a", "ips": ["10.7.0.1"]}}]}},
          {{"id": "b", "interfaces": [{{"bridge": "{br}", "ofport": {ofport_b}, "mac": "02:00:00:00:00:0b", "ips": ["10.7.0.2"]}}]}}
        ], "external_ports": []}}"#,
        br = bridge.name(),
        dpid = bridge.datapath_id(),
    ))
    .unwrap();
    write_atomically(&inventory_file, &toml::to_string(&inventory).unwrap());
    eventually(
        "the rule's flows are installed",
        WAIT,
        Duration::from_millis(300),
        || {
            let flows = bridge.dump_flows(&["--no-stats"]);
            if flows.contains("ct_tp_dst=5432") && flows.contains(ready) {
                Ok(())
            } else {
                Err(flows)
            }
        },
    )
    .await;
    Observed {
        dir,
        daemon,
        bridge,
        ofport_a,
        ofport_b,
        history,
    }
}
