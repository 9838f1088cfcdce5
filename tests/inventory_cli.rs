//! `augur inventory`, run as a program: an unreachable database (always),
//! a private `ovsdb-server` loaded as `ovs-vsctl` would load it, and the
//! system's Open vSwitch with a bridge made for the test. The last two skip
//! without OVS unless `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Command, Output};

use serde_json::{Value, json};

fn augur(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .arg("inventory")
        .args(args)
        .env_remove("AUGUR_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn an_unreachable_database_is_one_error_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("unix:{}", dir.path().join("db.sock").display());
    for (args, expected) in [
        (
            vec!["--db", target.as_str()],
            format!("augur: connecting to {target}: No such file or directory (os error 2)\n"),
        ),
        (
            vec!["--db", target.as_str(), "--json"],
            format!("augur: connecting to {target}: No such file or directory (os error 2)\n"),
        ),
        (
            vec!["--db", "tcp:127.0.0.1:1"],
            "augur: connecting to tcp:127.0.0.1:1: Connection refused (os error 111)\n".into(),
        ),
        (
            vec!["--db", "ssl:127.0.0.1:1"],
            "augur: ssl:127.0.0.1:1 needs --private-key, --certificate and --ca-cert\n".into(),
        ),
        (
            vec!["--db", "bogus"],
            "augur: --db bogus: bad OVSDB target \"bogus\": expected unix:, tcp: or ssl:\n".into(),
        ),
    ] {
        let out = augur(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), expected, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_unreadable_config_file_is_one_error_line_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("augur.toml");
    std::fs::write(&path, "[inventory]\nvm_id_keys = []\n").unwrap();
    let out = augur(&[
        "--config",
        path.to_str().unwrap(),
        "--db",
        "unix:/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "augur: {}: [inventory]: inventory setting vm_id_keys: must name at least one external id\n",
            path.display()
        )
    );
}

/// Loads a private server's database as `ovs-vsctl` and `ovs-vswitchd`
/// would leave it: one bridge with its LOCAL port, an uplink, two VM taps
/// (one with a bad label), and an interface that failed.
fn load(server: &common::Server) {
    let ovsdb_client = ["/usr/bin/ovsdb-client", "/usr/local/bin/ovsdb-client"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or("ovsdb-client");
    let iface = |name: &str, ofport: i64, mac: &str, ids: Value| {
        json!({"op": "insert", "table": "Interface", "uuid-name": format!("i_{name}"),
               "row": {"name": name, "ofport": ofport, "mac_in_use": mac, "external_ids": ["map", ids]}})
    };
    let port = |name: &str| {
        json!({"op": "insert", "table": "Port", "uuid-name": format!("p_{name}"),
               "row": {"name": name, "interfaces": ["named-uuid", format!("i_{name}")]}})
    };
    let names = ["br0", "eth0", "vnet0", "vnet1", "vnet2"];
    let mut ops = vec![
        json!("Open_vSwitch"),
        json!({"op": "insert", "table": "Open_vSwitch",
               "row": {"bridges": ["named-uuid", "b"]}}),
        json!({"op": "insert", "table": "Bridge", "uuid-name": "b",
               "row": {"name": "br0", "datapath_id": "00000000000000b0",
                       "ports": ["set", names.iter().map(|n| json!(["named-uuid", format!("p_{n}")])).collect::<Vec<_>>()]}}),
        iface("br0", 65534, "02:00:00:00:00:b0", json!([])),
        iface("eth0", 1, "0c:00:00:00:00:01", json!([])),
        iface(
            "vnet0",
            2,
            "fe:54:00:00:00:01",
            json!([
                ["vm-uuid", "web-1"],
                ["attached-mac", "52:54:00:00:00:01"],
                ["augur-label-tier", "web"]
            ]),
        ),
        iface(
            "vnet1",
            3,
            "fe:54:00:00:00:02",
            json!([
                ["vm-uuid", "db-1"],
                ["attached-mac", "52:54:00:00:00:02"],
                ["augur-label-tier", "db"],
                ["augur-label-bad key", "x"]
            ]),
        ),
        iface(
            "vnet2",
            -1,
            "fe:54:00:00:00:03",
            json!([["vm-uuid", "gone"]]),
        ),
    ];
    ops.extend(names.iter().map(|n| port(n)));
    let out = Command::new(ovsdb_client)
        .arg("transact")
        .arg(server.unix_target())
        .arg(Value::Array(ops).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("error"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn prints_bridges_ports_vms_and_warnings_from_a_private_server() {
    let Some(server) = common::Server::start() else {
        return;
    };
    load(&server);
    let target = server.unix_target();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("augur.toml");
    std::fs::write(
        &config,
        "[inventory.vms.web-1]\nips = [\"10.0.0.11\"]\nlabels = { tenant = \"blue\" }\n",
    )
    .unwrap();

    let out = augur(&["--db", &target, "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "bridge br0 (datapath id 00000000000000b0)\n\
         \x20 port 1      eth0   external\n\
         \x20 port 2      vnet0  vm web-1  52:54:00:00:00:01\n\
         \x20 port 3      vnet1  vm db-1   52:54:00:00:00:02\n\
         \x20 port LOCAL  br0    local     02:00:00:00:00:b0\n\
         \n\
         vm db-1  tier=db\n\
         \x20 br0:3  vnet1  52:54:00:00:00:02  (no addresses)\n\
         vm web-1  tenant=blue tier=web\n\
         \x20 br0:2  vnet0  52:54:00:00:00:01  10.0.0.11\n\
         \n\
         warning: bridge br0, interface vnet1, external_ids:augur-label-bad key: label name \"bad key\" must be ASCII letters, digits, '-', '_' and '.', starting and ending with a letter or digit; label ignored\n\
         warning: bridge br0, interface vnet2, ofport: ovs-vswitchd could not add the interface (no reason given); left out\n"
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let out = augur(&["--db", &target, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        value["bridges"],
        json!([{"name": "br0", "datapath_id": 0xb0}])
    );
    assert_eq!(
        value["vms"][1],
        json!({"id": "web-1", "labels": {"tier": "web"},
               "interfaces": [{"bridge": "br0", "name": "vnet0", "ofport": 2,
                               "mac": "52:54:00:00:00:01", "ips": []}]})
    );
    assert_eq!(
        value["external_ports"][0],
        json!({"bridge": "br0", "name": "br0", "ofport": "LOCAL", "mac": "02:00:00:00:00:b0"})
    );
    assert_eq!(value["warnings"].as_array().unwrap().len(), 2);
    assert_eq!(value["warnings"][1]["interface"], "vnet2");
    assert_eq!(value["warnings"][1]["key"], "ofport");
    // The output is an inventory file the policy tools can read.
    let inventory: augur::inventory::Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inventory.vms.len(), 2);
}

/// Against the system's Open vSwitch: a bridge made for the test with an
/// internal port carrying a VM id; removed by name when the test ends.
#[test]
fn system_ovs_shows_a_test_bridge_and_its_vm() {
    let Some(mut bridge) = support::ovs::TestBridge::new(1) else {
        return;
    };
    let port = bridge.add_internal_port();
    let vm_id = format!("{}-vm", bridge.name());
    support::ovs::vsctl(&[
        "set",
        "interface",
        &port,
        &format!("external_ids:vm-id={vm_id}"),
        "external_ids:augur-label-tier=web",
    ]);
    let ofport = bridge.ofport(&port);
    let mac = support::ovs::vsctl(&["get", "interface", &port, "mac_in_use"]);
    let mac = mac.trim().trim_matches('"');

    let out = augur(&["--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bridges = value["bridges"].as_array().unwrap();
    assert!(
        bridges.contains(&json!({"name": bridge.name(), "datapath_id": bridge.datapath_id()})),
        "{bridges:?}"
    );
    let vm = value["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vm| vm["id"] == vm_id.as_str())
        .unwrap_or_else(|| panic!("{vm_id} missing: {value:#}"));
    assert_eq!(vm["labels"], json!({"tier": "web"}));
    assert_eq!(
        vm["interfaces"],
        json!([{"bridge": bridge.name(), "name": port, "ofport": ofport, "mac": mac, "ips": []}])
    );
    let local = value["external_ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["bridge"] == bridge.name() && p["name"] == bridge.name())
        .unwrap();
    assert_eq!(local["ofport"], "LOCAL");
    assert!(local["mac"].is_string(), "{local}");

    let out = augur(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!(
            "bridge {} (datapath id {:016x})",
            bridge.name(),
            bridge.datapath_id()
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("vm {vm_id}  tier=web\n")),
        "{printed}"
    );
}
