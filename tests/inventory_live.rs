//! The live inventory against a real `ovsdb-server` started for each test
//! in a temporary directory (with the installed `vswitch.ovsschema`), the
//! database changed through the OVSDB client as `ovs-vsctl` would; and
//! against the system's Open vSwitch, changed with `ovs-vsctl` itself.
//! Without the OVS binaries these tests print a note and pass, unless
//! `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use augur::inventory::ovsdb::{DEFAULT_TARGET, watch};
use augur::inventory::{Inventory, InventoryError, InventorySettings, InventoryWatcher, VmId};
use augur_openflow::PortNo;
use augur_ovsdb::client::Client;
use augur_ovsdb::{Atom, Condition, Datum, Mutation, Mutator, Operation, Row, Uuid};
use common::Server;
use tokio::sync::watch::Receiver;

const DB: &str = "Open_vSwitch";

/// The bound the issue sets for a change to show in the inventory.
const WITHIN: Duration = Duration::from_secs(1);

/// Writes to the test database the way `ovs-vsctl` would.
struct Writer {
    client: Client,
}

/// A `named-uuid` reference; names are identifiers, so `-` becomes `_`.
fn named(name: &str) -> Datum {
    Datum::set([Atom::NamedUuid(name.replace('-', "_"))])
}

fn by_name(name: &str) -> Vec<Condition> {
    vec![Condition::eq("name", name)]
}

impl Writer {
    async fn connect(server: &Server) -> Writer {
        let client = Client::connect(&server.unix_target()).await.unwrap();
        client.get_schema(DB).await.unwrap();
        Writer { client }
    }

    async fn transact(&self, ops: Vec<Operation>) {
        let reply = self.client.transact(DB, ops).await.unwrap();
        assert!(reply.is_success(), "{reply:?}");
    }

    /// The root row and bridges, each with its LOCAL port, as `ovs-vsctl
    /// add-br` and `ovs-vswitchd` leave them.
    async fn bridges(&self, bridges: &[(&str, u64)]) {
        let mut ops = vec![Operation::Insert {
            table: "Open_vSwitch".into(),
            row: Row::new().with(
                "bridges",
                Datum::set(
                    bridges
                        .iter()
                        .map(|(b, _)| Atom::NamedUuid(format!("b_{}", b.replace('-', "_")))),
                ),
            ),
            uuid_name: None,
        }];
        for (n, (name, dpid)) in bridges.iter().enumerate() {
            let id = name.replace('-', "_");
            ops.extend([
                Operation::Insert {
                    table: "Bridge".into(),
                    row: Row::new()
                        .with("name", *name)
                        .with("datapath_id", Datum::scalar(format!("{dpid:016x}")))
                        .with("ports", named(&format!("p_{name}"))),
                    uuid_name: Some(format!("b_{id}")),
                },
                Operation::Insert {
                    table: "Port".into(),
                    row: Row::new()
                        .with("name", *name)
                        .with("interfaces", named(&format!("i_{name}"))),
                    uuid_name: Some(format!("p_{id}")),
                },
                Operation::Insert {
                    table: "Interface".into(),
                    row: Row::new()
                        .with("name", *name)
                        .with("type", "internal")
                        .with("ofport", Datum::scalar(65534i64))
                        .with(
                            "mac_in_use",
                            Datum::scalar(format!("02:00:00:00:ff:{n:02x}")),
                        ),
                    uuid_name: Some(format!("i_{id}")),
                },
            ]);
        }
        self.transact(ops).await;
    }

    /// Adds a port with one interface to `bridge`.
    async fn plug(&self, bridge: &str, name: &str, ofport: i64, external_ids: &[(&str, &str)]) {
        self.transact(vec![
            Operation::Insert {
                table: "Interface".into(),
                row: Row::new()
                    .with("name", name)
                    .with("ofport", Datum::scalar(ofport))
                    .with("mac_in_use", Datum::scalar("fe:54:00:00:00:99"))
                    .with("external_ids", Datum::map(external_ids.iter().copied())),
                uuid_name: Some("i".into()),
            },
            Operation::Insert {
                table: "Port".into(),
                row: Row::new().with("name", name).with("interfaces", named("i")),
                uuid_name: Some("p".into()),
            },
            Operation::Mutate {
                table: "Bridge".into(),
                conditions: by_name(bridge),
                mutations: vec![Mutation::new("ports", Mutator::Insert, named("p"))],
            },
        ])
        .await;
    }

    async fn port_uuid(&self, name: &str) -> Uuid {
        let reply = self
            .client
            .transact(
                DB,
                vec![Operation::Select {
                    table: "Port".into(),
                    conditions: by_name(name),
                    columns: Some(vec!["_uuid".into()]),
                }],
            )
            .await
            .unwrap();
        reply.rows(0).unwrap()[0]
            .get("_uuid")
            .and_then(Datum::as_uuid)
            .unwrap()
    }

    /// Removes a port from `bridge`; the database then drops the
    /// unreferenced Port and Interface rows, as with `ovs-vsctl del-port`.
    async fn unplug(&self, bridge: &str, name: &str) {
        let port = self.port_uuid(name).await;
        self.transact(vec![Operation::Mutate {
            table: "Bridge".into(),
            conditions: by_name(bridge),
            mutations: vec![Mutation::new("ports", Mutator::Delete, Datum::set([port]))],
        }])
        .await;
    }

    async fn set_external_ids(&self, iface: &str, external_ids: &[(&str, &str)]) {
        self.transact(vec![Operation::Update {
            table: "Interface".into(),
            conditions: by_name(iface),
            row: Row::new().with("external_ids", Datum::map(external_ids.iter().copied())),
        }])
        .await;
    }
}

/// Waits until the published inventory satisfies `ready`; returns how long
/// it took from `since`. Fails after five seconds.
async fn reflected(
    rx: &mut Receiver<Inventory>,
    since: Instant,
    what: &str,
    ready: impl Fn(&Inventory) -> bool,
) -> Duration {
    let deadline = since + Duration::from_secs(5);
    loop {
        if ready(&rx.borrow_and_update()) {
            return since.elapsed();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("{what}: the watcher stopped"),
            Err(_) => panic!("{what}: not reflected within 5 s: {:#?}", *rx.borrow()),
        }
    }
}

fn place(inventory: &Inventory, vm: &str) -> Option<(String, PortNo)> {
    let vm = inventory.vm(&VmId::from(vm))?;
    let [iface] = vm.interfaces.as_slice() else {
        panic!("{vm:?}");
    };
    Some((iface.bridge.clone(), iface.ofport))
}

#[tokio::test]
async fn a_vm_that_appears_moves_and_disappears_is_reflected_within_a_second() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer = Writer::connect(&server).await;
    writer.bridges(&[("br-a", 0xa), ("br-b", 0xb)]).await;
    let settings: InventorySettings =
        toml::from_str("[vms.web-1]\nips = [\"10.0.0.11\"]\nlabels = { tenant = \"blue\" }\n")
            .unwrap();
    let (mut rx, task) = watch(&server.unix_target(), settings).await.unwrap();
    {
        let first = rx.borrow_and_update();
        let bridges: Vec<(&str, u64)> = first
            .bridges
            .iter()
            .map(|b| (b.name.as_str(), b.datapath_id))
            .collect();
        assert_eq!(bridges, [("br-a", 0xa), ("br-b", 0xb)]);
        assert!(first.vms.is_empty());
        assert_eq!(first.external_ports.len(), 2);
        assert!(first.external_ports.iter().all(|p| p.is_local()));
    }
    let mut timings = Vec::new();

    let start = Instant::now();
    writer
        .plug(
            "br-a",
            "vnet0",
            5,
            &[
                ("vm-id", "web-1"),
                ("attached-mac", "52:54:00:00:00:01"),
                ("augur-label-tier", "web"),
            ],
        )
        .await;
    timings.push((
        "appears",
        reflected(&mut rx, start, "VM appears", |inv| {
            place(inv, "web-1") == Some(("br-a".into(), PortNo(5)))
        })
        .await,
    ));
    {
        let inv = rx.borrow();
        let vm = inv.vm(&"web-1".into()).unwrap();
        assert_eq!(vm.labels["tier"], "web");
        assert_eq!(vm.labels["tenant"], "blue");
        let iface = &vm.interfaces[0];
        assert_eq!(iface.name, "vnet0");
        assert_eq!(iface.mac.to_string(), "52:54:00:00:00:01");
        assert_eq!(
            iface.ips,
            ["10.0.0.11".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    // Another port on the same bridge (a migration's new tap, or a replug).
    let start = Instant::now();
    writer.unplug("br-a", "vnet0").await;
    writer
        .plug(
            "br-a",
            "vnet7",
            9,
            &[("vm-id", "web-1"), ("attached-mac", "52:54:00:00:00:01")],
        )
        .await;
    timings.push((
        "moves to another port",
        reflected(&mut rx, start, "VM moves port", |inv| {
            place(inv, "web-1") == Some(("br-a".into(), PortNo(9)))
        })
        .await,
    ));

    // Another bridge.
    let start = Instant::now();
    writer.unplug("br-a", "vnet7").await;
    writer
        .plug(
            "br-b",
            "vnet3",
            4,
            &[("vm-id", "web-1"), ("attached-mac", "52:54:00:00:00:01")],
        )
        .await;
    timings.push((
        "moves to another bridge",
        reflected(&mut rx, start, "VM moves bridge", |inv| {
            place(inv, "web-1") == Some(("br-b".into(), PortNo(4)))
        })
        .await,
    ));

    // Relabelled in place.
    let start = Instant::now();
    writer
        .set_external_ids(
            "vnet3",
            &[
                ("vm-id", "web-1"),
                ("attached-mac", "52:54:00:00:00:01"),
                ("augur-label-tier", "db"),
            ],
        )
        .await;
    timings.push((
        "relabelled",
        reflected(&mut rx, start, "VM relabelled", |inv| {
            inv.vm(&"web-1".into())
                .is_some_and(|vm| vm.labels.get("tier").map(String::as_str) == Some("db"))
        })
        .await,
    ));

    let start = Instant::now();
    writer.unplug("br-b", "vnet3").await;
    timings.push((
        "disappears",
        reflected(&mut rx, start, "VM disappears", |inv| inv.vms.is_empty()).await,
    ));

    for (what, took) in &timings {
        eprintln!("VM {what}: reflected after {took:?}");
        assert!(*took < WITHIN, "VM {what}: {took:?}");
    }
    assert!(!task.is_finished());
    drop(rx);
    let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "the task ends with its last receiver: {ended:?}"
    );
}

#[tokio::test]
async fn the_inventory_converges_after_the_server_restarts_with_other_contents() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let writer = Writer::connect(&server).await;
    writer.bridges(&[("br0", 1)]).await;
    writer
        .plug(
            "br0",
            "vnet0",
            1,
            &[("vm-uuid", "a"), ("attached-mac", "52:54:00:00:00:0a")],
        )
        .await;
    drop(writer);
    let (mut rx, _task) = watch(&server.unix_target(), InventorySettings::default())
        .await
        .unwrap();
    assert!(rx.borrow_and_update().vm(&"a".into()).is_some());

    // While the server is down, VM a leaves and VM b arrives.
    server.kill();
    let db = server.dbs[0].clone();
    let out = server.offline_transact(
        &db,
        &serde_json::json!([DB,
            {"op": "update", "table": "Interface", "where": [["name", "==", "vnet0"]],
             "row": {"external_ids": ["map", [["vm-uuid", "b"], ["attached-mac", "52:54:00:00:00:0b"]]]}}]),
    );
    assert_eq!(out, serde_json::json!([{"count": 1}]));
    server.restart();
    let start = Instant::now();
    let took = reflected(&mut rx, start, "resync", |inv| {
        inv.vm(&"a".into()).is_none() && place(inv, "b") == Some(("br0".into(), PortNo(1)))
    })
    .await;
    // The client's first reconnect attempt is after its 1 s backoff.
    eprintln!("converged {took:?} after the restart");
    // The restart emptied the ephemeral datapath_id, which only
    // ovs-vswitchd (absent here) would write again: the watcher that knew
    // it keeps the bridge, while one starting now has to wait for it.
    assert_eq!(rx.borrow().bridge("br0").map(|b| b.datapath_id), Some(1));
    let fresh = InventoryWatcher::connect(&server.unix_target(), InventorySettings::default())
        .await
        .unwrap();
    assert!(fresh.current().inventory.bridges.is_empty());
    assert_eq!(
        fresh.current().warnings[0].to_string(),
        "bridge br0, datapath_id: no datapath id yet (ovs-vswitchd has not configured the bridge); left out"
    );
}

#[tokio::test]
async fn bad_values_in_ovsdb_are_warnings_and_clear_when_fixed() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer = Writer::connect(&server).await;
    writer.bridges(&[("br0", 1)]).await;
    writer
        .plug(
            "br0",
            "vnet0",
            3,
            &[
                ("vm-id", "a"),
                ("attached-mac", "52:54:00:zz:00:01"),
                ("augur-label-no good", "x"),
                ("augur-label-tier", "web"),
            ],
        )
        .await;
    let mut watcher =
        InventoryWatcher::connect(&server.unix_target(), InventorySettings::default())
            .await
            .unwrap();
    let warnings: Vec<String> = watcher
        .current()
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        warnings,
        [
            "bridge br0, interface vnet0, external_ids:attached-mac: \"52:54:00:zz:00:01\" is not a MAC address; ignored",
            "bridge br0, interface vnet0, external_ids:augur-label-no good: label name \"no good\" must be ASCII letters, digits, '-', '_' and '.', starting and ending with a letter or digit; label ignored",
        ]
    );
    let vm = watcher.current().inventory.vm(&"a".into()).unwrap().clone();
    assert_eq!(vm.labels.len(), 1);
    // Fell back to mac_in_use.
    assert_eq!(vm.interfaces[0].mac.to_string(), "fe:54:00:00:00:99");

    writer
        .set_external_ids(
            "vnet0",
            &[
                ("vm-id", "a"),
                ("attached-mac", "52:54:00:00:00:01"),
                ("augur-label-tier", "web"),
            ],
        )
        .await;
    let built = tokio::time::timeout(WITHIN, watcher.changed())
        .await
        .expect("change within a second")
        .unwrap();
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    assert_eq!(
        built.inventory.vm(&"a".into()).unwrap().interfaces[0]
            .mac
            .to_string(),
        "52:54:00:00:00:01"
    );
}

#[tokio::test]
async fn a_burst_of_a_thousand_vms_arrives_whole() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer = Writer::connect(&server).await;
    writer.bridges(&[("br0", 1)]).await;
    let (mut rx, _task) = watch(&server.unix_target(), InventorySettings::default())
        .await
        .unwrap();
    let start = Instant::now();
    // One transaction each, as a hypervisor booting many VMs would send them.
    for n in 1..=1000i64 {
        let mac = format!("52:54:00:00:{:02x}:{:02x}", n >> 8, n & 0xff);
        writer
            .plug(
                "br0",
                &format!("vnet{n}"),
                n,
                &[("vm-uuid", &format!("vm-{n}")), ("attached-mac", &mac)],
            )
            .await;
    }
    let committed = start.elapsed();
    let took = reflected(&mut rx, start, "1000 VMs", |inv| inv.vms.len() == 1000).await;
    eprintln!(
        "1000 single-VM transactions committed in {committed:?}, all reflected after {took:?}"
    );
    assert!(
        took.saturating_sub(committed) < WITHIN,
        "{took:?} vs {committed:?}"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_at_once_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("unix:{}", dir.path().join("db.sock").display());
    let start = Instant::now();
    let e = watch(&target, InventorySettings::default())
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(e, InventoryError::Client { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("connecting to {target}: No such file or directory (os error 2)")
    );
    let e = watch("nonsense", InventorySettings::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("bad OVSDB target"), "{e}");
    let bad = InventorySettings {
        vm_id_keys: Vec::new(),
        ..Default::default()
    };
    let e = watch(&target, bad).await.unwrap_err();
    assert!(matches!(e, InventoryError::Settings(_)), "{e:?}");
}

/// The whole path on a real switch: `ovs-vsctl` plugs an internal port
/// carrying a VM id into a fresh bridge, `ovs-vswitchd` gives it a port
/// number and a MAC, and the watcher on the system database sees it.
#[tokio::test]
async fn system_ovs_a_port_plugged_with_ovs_vsctl_appears_within_a_second() {
    let Some(mut bridge) = support::ovs::TestBridge::new(1) else {
        return;
    };
    let (mut rx, _task) = watch(DEFAULT_TARGET, InventorySettings::default())
        .await
        .unwrap();
    let name = bridge.name().to_owned();
    let dpid = bridge.datapath_id();
    let start = Instant::now();
    reflected(&mut rx, start, "bridge", |inv| {
        inv.bridge(&name).is_some_and(|b| b.datapath_id == dpid)
    })
    .await;

    let vm_id = format!("{name}-vm");
    let start = Instant::now();
    let port = bridge.add_internal_port();
    support::ovs::vsctl(&[
        "set",
        "interface",
        &port,
        &format!("external_ids:vm-id={vm_id}"),
        "external_ids:augur-label-tier=web",
    ]);
    let took = reflected(&mut rx, start, "VM on the system OVS", |inv| {
        inv.vm(&VmId(vm_id.clone())).is_some()
    })
    .await;
    let ofport = bridge.ofport(&port);
    let mac = support::ovs::vsctl(&["get", "interface", &port, "mac_in_use"]);
    {
        let inv = rx.borrow();
        let vm = inv.vm(&VmId(vm_id.clone())).unwrap();
        assert_eq!(vm.labels["tier"], "web");
        assert_eq!(vm.interfaces[0].bridge, name);
        assert_eq!(vm.interfaces[0].ofport, PortNo(ofport));
        assert_eq!(
            vm.interfaces[0].mac.to_string(),
            mac.trim().trim_matches('"')
        );
        let local = inv
            .external_ports_on(&name)
            .find(|p| p.is_local())
            .expect("the LOCAL port");
        assert_eq!(local.name, name);
    }
    eprintln!("VM plugged with ovs-vsctl: reflected after {took:?}");
    assert!(took < WITHIN, "{took:?}");

    let start = Instant::now();
    support::ovs::vsctl(&["del-port", &name, &port]);
    let took = reflected(&mut rx, start, "VM unplugged", |inv| {
        inv.vm(&VmId(vm_id.clone())).is_none()
    })
    .await;
    assert!(took < WITHIN, "{took:?}");
    drop(bridge);
    reflected(&mut rx, Instant::now(), "bridge deleted", |inv| {
        inv.bridge(&name).is_none()
    })
    .await;
}
