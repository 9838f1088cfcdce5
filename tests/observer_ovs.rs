//! The live observer against a real Open vSwitch bridge (userspace
//! datapath): packets injected on two VM ports run through augur's pipeline;
//! the allowed connections come back as records of the right VMs, protocol
//! and service port from the counter polls, and the denied attempts come
//! back from the sampled packet-ins with their ports.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use augur::daemon::{self, Daemon};
use augur::inventory::Inventory;
use augur::store::{SignatureStore, StoreSettings};
use augur_flows::{Endpoint, Protocol, WindowConfig};
use etherparse::PacketBuilder;
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs};
use support::{eventually, write_atomically};

const POLICY: &str = r#"
[groups.web]
vms = ["a"]
[groups.db]
vms = ["b"]
[[allow]]
from = "web"
to = "db"
proto = "tcp"
port = 5432
"#;

const WAIT: Duration = Duration::from_secs(60);
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

/// A TCP SYN from a to b, as hex for `ovs-ofctl packet-out`.
fn syn(src_port: u16, dst_port: u16) -> String {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 7, 0, 1], [10, 7, 0, 2], 64)
        .tcp(src_port, dst_port, 1000, 64_240)
        .syn()
        .write(&mut frame, &[])
        .unwrap();
    hex::encode(frame)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_denied_traffic_reach_the_history() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("AUGUR_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
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
[listen]
tcp = "127.0.0.1:0"
[metrics]
enabled = false
[observer]
store = "{}"
poll_interval = "1s"
window = "2s"
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
            if flows.contains("ct_tp_dst=5432") && flows.contains("table=7") {
                Ok(())
            } else {
                Err(flows)
            }
        },
    )
    .await;

    let in_port = ofport_a.to_string();
    for src_port in [40001, 40002, 40003] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 5432)]);
    }
    for src_port in [41001, 41002] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 22)]);
    }

    let (a, b) = (Endpoint::vm("a"), Endpoint::vm("b"));
    let settings = StoreSettings {
        window: WindowConfig::with_length(2).unwrap(),
        ..StoreSettings::default()
    };
    let signature = eventually(
        "records of a → b are stored",
        WAIT,
        Duration::from_millis(300),
        || {
            let store = SignatureStore::open_at_last_window(&history, settings)
                .map_err(|e| e.to_string())?;
            let signature = store
                .pair_signature(&a, &b)
                .ok_or_else(|| "no signature of a → b yet".to_owned())?;
            let allowed = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::TCP && s.port == 5432)
                .map_or(0, |s| s.connections);
            let denied = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::TCP && s.port == 22)
                .map_or(0, |s| s.denied);
            if allowed >= 3 && denied >= 2 {
                Ok(signature)
            } else {
                Err(format!("{:?}", signature.services))
            }
        },
    )
    .await;
    let allowed = signature.services.iter().find(|s| s.port == 5432).unwrap();
    assert_eq!(allowed.connections, 3, "{:?}", signature.services);
    assert_eq!(allowed.packets, 3);
    assert_eq!(allowed.denied, 0);
    let denied = signature.services.iter().find(|s| s.port == 22).unwrap();
    assert_eq!(denied.denied, 2, "{:?}", signature.services);
    assert!(signature.denied.attempts >= 2);
    daemon.shutdown().await;
}
