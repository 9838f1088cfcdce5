//! The builder's rules, on hand-made rows.

use std::collections::BTreeMap;

use augur_openflow::{MacAddr, PortNo};
use augur_ovsdb::vswitch;
use augur_ovsdb::{Datum, Row, RowChange, Uuid};

use super::*;

/// A small database under construction: rows get sequential UUIDs.
#[derive(Default)]
struct Db {
    tables: VswitchTables,
    next: u128,
    root: Uuid,
}

fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Db {
    fn new() -> Db {
        let mut db = Db::default();
        db.root = db.uuid();
        db.tables.open_vswitch.insert(
            db.root,
            vswitch::OpenVSwitch {
                uuid: db.root,
                bridges: Vec::new(),
                manager_options: Vec::new(),
                ovs_version: None,
                db_version: None,
                system_type: None,
                system_version: None,
                external_ids: BTreeMap::new(),
                other_config: BTreeMap::new(),
                next_cfg: 0,
                cur_cfg: 0,
                datapath_types: Vec::new(),
                iface_types: Vec::new(),
            },
        );
        db
    }

    fn uuid(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }

    /// A bridge with its LOCAL port; returns the bridge's UUID.
    fn bridge(&mut self, name: &str, dpid: Option<&str>) -> Uuid {
        let uuid = self.uuid();
        self.tables.bridges.insert(
            uuid,
            vswitch::Bridge {
                uuid,
                name: name.into(),
                ports: Vec::new(),
                controller: Vec::new(),
                fail_mode: Some("secure".into()),
                datapath_id: dpid.map(str::to_owned),
                datapath_type: String::new(),
                protocols: Vec::new(),
                external_ids: BTreeMap::new(),
                other_config: BTreeMap::new(),
            },
        );
        if let Some(root) = self.tables.open_vswitch.get_mut(&self.root) {
            root.bridges.push(uuid);
        }
        self.port(
            uuid,
            name,
            "internal",
            Some(65534),
            Some("02:00:00:00:00:fe"),
            &[],
        );
        uuid
    }

    /// A port with one interface on `bridge`; returns the interface's UUID.
    fn port(
        &mut self,
        bridge: Uuid,
        name: &str,
        kind: &str,
        ofport: Option<i64>,
        mac_in_use: Option<&str>,
        external_ids: &[(&str, &str)],
    ) -> Uuid {
        let iface = self.uuid();
        self.tables.interfaces.insert(
            iface,
            vswitch::Interface {
                uuid: iface,
                name: name.into(),
                iface_type: kind.into(),
                ofport,
                ofport_request: None,
                mac_in_use: mac_in_use.map(str::to_owned),
                mac: None,
                admin_state: None,
                link_state: None,
                external_ids: ids(external_ids),
                options: BTreeMap::new(),
                other_config: BTreeMap::new(),
                status: BTreeMap::new(),
                error: None,
            },
        );
        let port = self.port_of(name, vec![iface]);
        if let Some(b) = self.tables.bridges.get_mut(&bridge) {
            b.ports.push(port);
        }
        iface
    }

    fn port_of(&mut self, name: &str, interfaces: Vec<Uuid>) -> Uuid {
        let port = self.uuid();
        self.tables.ports.insert(
            port,
            vswitch::Port {
                uuid: port,
                name: name.into(),
                interfaces,
                tag: None,
                trunks: Vec::new(),
                vlan_mode: None,
                external_ids: BTreeMap::new(),
                other_config: BTreeMap::new(),
            },
        );
        port
    }

    /// A VM tap as libvirt plugs it: `mac_in_use` is the guest MAC with
    /// `fe` first.
    fn tap(
        &mut self,
        bridge: Uuid,
        name: &str,
        ofport: i64,
        guest_mac: &str,
        more: &[(&str, &str)],
    ) -> Uuid {
        let tap_mac = format!("fe{}", &guest_mac[2..]);
        let mut external = vec![("attached-mac", guest_mac), ("iface-status", "active")];
        external.extend_from_slice(more);
        self.port(bridge, name, "", Some(ofport), Some(&tap_mac), &external)
    }

    fn iface_mut(&mut self, uuid: Uuid) -> &mut vswitch::Interface {
        self.tables.interfaces.get_mut(&uuid).unwrap()
    }

    fn build(&self) -> Built {
        build(&self.tables, &InventorySettings::default())
    }

    fn build_with(&self, settings: &InventorySettings) -> Built {
        settings.validate().unwrap();
        build(&self.tables, settings)
    }
}

fn mac(text: &str) -> MacAddr {
    text.parse().unwrap()
}

fn messages(built: &Built) -> Vec<String> {
    built.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn a_hypervisor_with_two_vms_an_uplink_and_a_patch_port() {
    let mut db = Db::new();
    let br = db.bridge("br-int", Some("0000aabbccddeeff"));
    db.tap(
        br,
        "vnet0",
        3,
        "52:54:00:00:00:01",
        &[("vm-uuid", "web-1"), ("augur-label-tier", "web")],
    );
    db.tap(
        br,
        "vnet1",
        4,
        "52:54:00:00:00:02",
        &[("vm-uuid", "db-1"), ("augur-label-tier", "db")],
    );
    db.port(br, "eth1", "", Some(1), Some("0c:00:00:00:00:01"), &[]);
    db.port(br, "patch-ext", "patch", Some(2), None, &[]);
    let built = db.build();
    assert!(built.warnings.is_empty(), "{:?}", messages(&built));
    let inv = &built.inventory;
    assert_eq!(
        inv.bridges,
        [Bridge {
            name: "br-int".into(),
            datapath_id: 0xaabb_ccdd_eeff
        }]
    );
    let ids: Vec<&str> = inv.vms.iter().map(|v| v.id.0.as_str()).collect();
    assert_eq!(ids, ["db-1", "web-1"]);
    let web = inv.vm(&"web-1".into()).unwrap();
    assert_eq!(web.labels, ids_of(&[("tier", "web")]));
    assert_eq!(
        web.interfaces,
        [VmInterface {
            bridge: "br-int".into(),
            name: "vnet0".into(),
            ofport: PortNo(3),
            mac: mac("52:54:00:00:00:01"),
            ips: vec![],
        }]
    );
    let externals: Vec<(&str, PortNo, Option<MacAddr>)> = inv
        .external_ports
        .iter()
        .map(|p| (p.name.as_str(), p.ofport, p.mac))
        .collect();
    assert_eq!(
        externals,
        [
            ("br-int", PortNo::LOCAL, Some(mac("02:00:00:00:00:fe"))),
            ("eth1", PortNo(1), None),
            ("patch-ext", PortNo(2), None),
        ]
    );
}

fn ids_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    ids(pairs)
}

#[test]
fn the_first_configured_key_names_the_vm() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.tap(
        br,
        "a",
        1,
        "52:54:00:00:00:01",
        &[("vm-id", "alpha"), ("vm-uuid", "u-1"), ("iface-id", "p-1")],
    );
    db.tap(
        br,
        "b",
        2,
        "52:54:00:00:00:02",
        &[("vm-uuid", "u-2"), ("iface-id", "p-2")],
    );
    db.tap(br, "c", 3, "52:54:00:00:00:03", &[("iface-id", "p-3")]);
    db.tap(
        br,
        "d",
        4,
        "52:54:00:00:00:04",
        &[("vm-id", ""), ("iface-id", "p-4")],
    );
    let names =
        |b: &Built| -> Vec<String> { b.inventory.vms.iter().map(|v| v.id.0.clone()).collect() };
    assert_eq!(names(&db.build()), ["alpha", "p-3", "p-4", "u-2"]);

    let settings = InventorySettings {
        vm_id_keys: vec!["iface-id".into()],
        ..Default::default()
    };
    assert_eq!(
        names(&db.build_with(&settings)),
        ["p-1", "p-2", "p-3", "p-4"]
    );

    // attached-mac as the only key: each interface is its own "VM".
    let settings = InventorySettings {
        vm_id_keys: vec!["attached-mac".into()],
        ..Default::default()
    };
    assert_eq!(db.build_with(&settings).inventory.vms.len(), 4);
}

#[test]
fn interfaces_without_a_vm_id_are_external_and_only_internal_ones_keep_a_mac() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.port(
        br,
        "host0",
        "internal",
        Some(7),
        Some("02:00:00:00:00:07"),
        &[],
    );
    db.port(
        br,
        "eth0",
        "",
        Some(8),
        Some("0c:00:00:00:00:08"),
        &[("iface-status", "x")],
    );
    db.port(
        br,
        "gnv0",
        "geneve",
        Some(9),
        Some("0c:00:00:00:00:09"),
        &[],
    );
    let built = db.build();
    let macs: Vec<(&str, Option<MacAddr>)> = built
        .inventory
        .external_ports
        .iter()
        .map(|p| (p.name.as_str(), p.mac))
        .collect();
    assert_eq!(
        macs,
        [
            ("br0", Some(mac("02:00:00:00:00:fe"))),
            ("eth0", None),
            ("gnv0", None),
            ("host0", Some(mac("02:00:00:00:00:07"))),
        ]
    );
    assert!(built.inventory.vms.is_empty());
}

#[test]
fn the_local_port_is_the_interface_named_like_the_bridge_even_with_a_vm_id() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    let local = db
        .tables
        .interfaces
        .values()
        .find(|i| i.name == "br0")
        .unwrap()
        .uuid;
    db.iface_mut(local)
        .external_ids
        .insert("vm-id".into(), "sneaky".into());
    db.iface_mut(local).ofport = None;
    db.tap(br, "vnet0", 1, "52:54:00:00:00:01", &[("vm-id", "a")]);
    let built = db.build();
    assert_eq!(built.inventory.vms.len(), 1);
    assert!(built.inventory.external_ports[0].is_local());
    assert_eq!(built.inventory.external_ports[0].name, "br0");
}

#[test]
fn the_guest_mac_wins_over_the_tap_mac_and_mac_in_use_is_the_fallback() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.tap(br, "vnet0", 1, "52:54:00:00:00:01", &[("vm-id", "libvirt")]);
    db.port(
        br,
        "ns0",
        "internal",
        Some(2),
        Some("02:00:00:00:00:02"),
        &[("vm-id", "netns")],
    );
    let inv = db.build().inventory;
    assert_eq!(
        inv.vm(&"libvirt".into()).unwrap().interfaces[0].mac,
        mac("52:54:00:00:00:01")
    );
    assert_eq!(
        inv.vm(&"netns".into()).unwrap().interfaces[0].mac,
        mac("02:00:00:00:00:02")
    );
}

#[test]
fn one_vm_with_interfaces_on_two_bridges() {
    let mut db = Db::new();
    let a = db.bridge("br-a", Some("000000000000000a"));
    let b = db.bridge("br-b", Some("000000000000000b"));
    db.tap(
        b,
        "vnet1",
        5,
        "52:54:00:00:00:02",
        &[("vm-uuid", "multi"), ("augur-label-tier", "app")],
    );
    db.tap(
        a,
        "vnet0",
        9,
        "52:54:00:00:00:01",
        &[("vm-uuid", "multi"), ("augur-label-tier", "app")],
    );
    let built = db.build();
    assert!(built.warnings.is_empty(), "{:?}", messages(&built));
    let vm = &built.inventory.vms[0];
    assert_eq!(built.inventory.vms.len(), 1);
    let where_: Vec<(&str, u32)> = vm
        .interfaces
        .iter()
        .map(|i| (i.bridge.as_str(), i.ofport.0))
        .collect();
    assert_eq!(where_, [("br-a", 9), ("br-b", 5)]);
    assert_eq!(vm.labels["tier"], "app");
}

#[test]
fn interfaces_that_disagree_on_a_label_lose_it_unless_the_config_settles_it() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.tap(
        br,
        "v0",
        1,
        "52:54:00:00:00:01",
        &[
            ("vm-id", "x"),
            ("augur-label-tier", "web"),
            ("augur-label-env", "prod"),
        ],
    );
    db.tap(
        br,
        "v1",
        2,
        "52:54:00:00:00:02",
        &[
            ("vm-id", "x"),
            ("augur-label-tier", "db"),
            ("augur-label-env", "prod"),
        ],
    );
    let built = db.build();
    assert_eq!(built.inventory.vms[0].labels, ids_of(&[("env", "prod")]));
    assert_eq!(
        messages(&built),
        [
            "external_ids:augur-label-tier: VM x: its interfaces disagree on label tier; label left out"
        ]
    );

    let settings: InventorySettings =
        toml::from_str("[vms.x]\nlabels = { tier = \"cache\" }").unwrap();
    let built = db.build_with(&settings);
    assert!(built.warnings.is_empty(), "{:?}", messages(&built));
    assert_eq!(
        built.inventory.vms[0].labels,
        ids_of(&[("env", "prod"), ("tier", "cache")])
    );
}

#[test]
fn config_labels_win_and_config_addresses_are_given_per_vm_or_per_interface() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.tap(
        br,
        "v0",
        1,
        "52:54:00:00:00:01",
        &[
            ("vm-id", "web-1"),
            ("augur-label-tier", "db"),
            ("augur-label-zone", "a"),
        ],
    );
    db.tap(br, "v1", 2, "52:54:00:00:00:02", &[("vm-id", "web-1")]);
    db.tap(br, "v2", 3, "52:54:00:00:00:03", &[("vm-id", "other")]);
    let settings: InventorySettings = toml::from_str(
        r#"
        [vms.web-1]
        labels = { tier = "web", tenant = "blue" }
        ips = ["10.0.0.11", "2001:db8::11"]
        [vms.web-1.interfaces."52:54:00:00:00:02"]
        ips = ["192.168.7.11"]
        [vms.absent]
        labels = { tier = "web" }
        "#,
    )
    .unwrap();
    let built = db.build_with(&settings);
    assert!(built.warnings.is_empty(), "{:?}", messages(&built));
    let web = built.inventory.vm(&"web-1".into()).unwrap();
    assert_eq!(
        web.labels,
        ids_of(&[("tenant", "blue"), ("tier", "web"), ("zone", "a")])
    );
    let ips: Vec<Vec<String>> = web
        .interfaces
        .iter()
        .map(|i| i.ips.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        ips,
        [vec!["10.0.0.11", "2001:db8::11"], vec!["192.168.7.11"]]
    );
    assert!(
        built.inventory.vm(&"other".into()).unwrap().interfaces[0]
            .ips
            .is_empty()
    );
    assert!(built.inventory.vm(&"absent".into()).is_none());
}

#[test]
fn an_empty_label_prefix_reads_no_labels_from_ovsdb() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    db.tap(
        br,
        "v0",
        1,
        "52:54:00:00:00:01",
        &[("vm-id", "a"), ("augur-label-tier", "web")],
    );
    let settings = InventorySettings {
        label_prefix: String::new(),
        ..Default::default()
    };
    assert!(db.build_with(&settings).inventory.vms[0].labels.is_empty());
    let settings = InventorySettings {
        label_prefix: "com.example/".into(),
        ..Default::default()
    };
    db.iface_mut(
        db.tables
            .interfaces
            .values()
            .find(|i| i.name == "v0")
            .unwrap()
            .uuid,
    )
    .external_ids
    .insert("com.example/tier".into(), "db".into());
    assert_eq!(
        db.build_with(&settings).inventory.vms[0].labels,
        ids_of(&[("tier", "db")])
    );
}

#[test]
fn bad_operator_values_are_reported_and_left_out() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    // A bad label key and a bad label value; the VM stays.
    db.tap(
        br,
        "v0",
        1,
        "52:54:00:00:00:01",
        &[
            ("vm-id", "a"),
            ("augur-label-bad key", "x"),
            ("augur-label-ok", "line\nbreak"),
            ("augur-label-", "empty"),
        ],
    );
    // An unparseable attached-mac: the tap's own MAC is no use, so the
    // mac_in_use fallback gives fe:..., which is still unicast and used.
    db.tap(br, "v1", 2, "52:54:00:00:00:02", &[("vm-id", "b")]);
    let v1 = db
        .tables
        .interfaces
        .values()
        .find(|i| i.name == "v1")
        .unwrap()
        .uuid;
    db.iface_mut(v1)
        .external_ids
        .insert("attached-mac".into(), "52:54:00:zz:00:02".into());
    // A multicast guest MAC: interface left out.
    db.tap(br, "v2", 3, "01:00:5e:00:00:01", &[("vm-id", "c")]);
    // No MAC at all: left out.
    db.port(br, "v3", "", Some(4), None, &[("vm-id", "d")]);
    // A VM id with a control character: left out, not mistaken for an uplink.
    db.tap(br, "v4", 5, "52:54:00:00:00:05", &[("vm-id", "e\u{7}")]);
    // ofport -1 with an error; ofport out of range; ofport unset (silent).
    let v5 = db.tap(br, "v5", -1, "52:54:00:00:00:06", &[("vm-id", "f")]);
    db.iface_mut(v5).error = Some("could not open network device v5 (No such device)".into());
    db.tap(br, "v6", 0xff00, "52:54:00:00:00:07", &[("vm-id", "g")]);
    let v7 = db.tap(br, "v7", 1, "52:54:00:00:00:08", &[("vm-id", "h")]);
    db.iface_mut(v7).ofport = None;
    // A bad mac_in_use on the LOCAL port: kept, without a MAC.
    let local = db
        .tables
        .interfaces
        .values()
        .find(|i| i.name == "br0")
        .unwrap()
        .uuid;
    db.iface_mut(local).mac_in_use = Some("nonsense".into());

    let built = db.build();
    assert_eq!(
        messages(&built),
        [
            "bridge br0, interface br0, mac_in_use: \"nonsense\" is not a MAC address; ignored",
            "bridge br0, interface v0, external_ids:augur-label-: label name \"\" must have 1 to 63 characters; label ignored",
            "bridge br0, interface v0, external_ids:augur-label-bad key: label name \"bad key\" must be ASCII letters, digits, '-', '_' and '.', starting and ending with a letter or digit; label ignored",
            "bridge br0, interface v0, external_ids:augur-label-ok: label value \"line\\nbreak\" contains control characters; label ignored",
            "bridge br0, interface v1, external_ids:attached-mac: \"52:54:00:zz:00:02\" is not a MAC address; ignored",
            "bridge br0, interface v2: VM c: 01:00:5e:00:00:01 is not a unicast MAC address; interface left out",
            "bridge br0, interface v3: VM d interface has no usable MAC address yet; left out",
            "bridge br0, interface v4, external_ids:vm-id: VM id \"e\\u{7}\" contains control characters; interface left out",
            "bridge br0, interface v5, ofport: ovs-vswitchd could not add the interface (could not open network device v5 (No such device)); left out",
            "bridge br0, interface v6, ofport: 65280 is not an OpenFlow port number; left out",
        ]
    );
    let inv = &built.inventory;
    let ids: Vec<&str> = inv.vms.iter().map(|v| v.id.0.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(inv.vms[0].labels.is_empty());
    assert_eq!(inv.vms[1].interfaces[0].mac, mac("fe:54:00:00:00:02"));
    // Only the LOCAL port is external: nothing bad became an uplink.
    assert_eq!(inv.external_ports.len(), 1);
    assert_eq!(inv.external_ports[0].mac, None);
}

#[test]
fn bridges_without_a_usable_datapath_id_are_left_out_with_their_ports() {
    let mut db = Db::new();
    let a = db.bridge("br-a", None);
    let b = db.bridge("br-b", Some("xyz"));
    let c = db.bridge("br-c", Some("0x2a"));
    let d = db.bridge("br-d", Some("0000000000000000"));
    let e = db.bridge("br-e", Some("+000000000000001"));
    for (n, br) in [a, b, c, d, e].into_iter().enumerate() {
        let n = i64::try_from(n).unwrap() + 1;
        db.tap(
            br,
            &format!("v{n}"),
            n,
            &format!("52:54:00:00:00:0{n}"),
            &[("vm-id", &format!("vm{n}"))],
        );
    }
    let built = db.build();
    assert_eq!(
        built.inventory.bridges,
        [Bridge {
            name: "br-c".into(),
            datapath_id: 42
        }]
    );
    assert_eq!(built.inventory.vms.len(), 1);
    assert_eq!(built.inventory.vms[0].id, VmId::from("vm3"));
    assert_eq!(
        messages(&built),
        [
            "bridge br-a, datapath_id: no datapath id yet (ovs-vswitchd has not configured the bridge); left out",
            "bridge br-b, datapath_id: \"xyz\" is not a datapath id; bridge left out",
            "bridge br-d, datapath_id: \"0000000000000000\" is not a datapath id; bridge left out",
            "bridge br-e, datapath_id: \"+000000000000001\" is not a datapath id; bridge left out",
        ]
    );
}

#[test]
fn only_bridges_of_the_open_vswitch_row_and_the_settings_count() {
    let mut db = Db::new();
    db.bridge("br-a", Some("000000000000000a"));
    db.bridge("br-b", Some("000000000000000b"));
    let root = db.root;
    db.tables.open_vswitch.get_mut(&root).unwrap().bridges.pop();
    let names =
        |b: Built| -> Vec<String> { b.inventory.bridges.into_iter().map(|b| b.name).collect() };
    assert_eq!(names(db.build()), ["br-a"]);
    db.tables.open_vswitch.get_mut(&root).unwrap().bridges =
        db.tables.bridges.keys().copied().collect();
    assert_eq!(names(db.build()), ["br-a", "br-b"]);
    let settings = InventorySettings {
        bridges: vec!["br-b".into(), "br-z".into()],
        ..Default::default()
    };
    assert_eq!(names(db.build_with(&settings)), ["br-b"]);
    db.tables.open_vswitch.clear();
    assert!(names(db.build()).is_empty());
}

#[test]
fn claims_made_twice_are_dropped_so_the_compiler_accepts_the_result() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    // Same MAC on two VMs.
    db.tap(br, "v0", 1, "52:54:00:00:00:01", &[("vm-id", "a")]);
    db.tap(br, "v1", 2, "52:54:00:00:00:01", &[("vm-id", "b")]);
    // Same port number twice (a database edited by hand).
    db.tap(br, "v2", 3, "52:54:00:00:00:03", &[("vm-id", "c")]);
    db.port(br, "eth0", "", Some(3), None, &[]);
    db.tap(br, "v4", 4, "52:54:00:00:00:04", &[("vm-id", "d")]);
    // Addresses shared by two VMs, from settings that were not validated.
    let settings: InventorySettings = toml::from_str(
        "[vms.d]\nips = [\"10.0.0.1\", \"10.0.0.4\"]\n[vms.e]\nips = [\"10.0.0.1\", \"224.0.0.1\"]",
    )
    .unwrap();
    db.tap(br, "v5", 5, "52:54:00:00:00:05", &[("vm-id", "e")]);
    let built = build(&db.tables, &settings);
    assert_eq!(
        messages(&built),
        [
            "bridge br0, interface eth0, ofport: port 3 is claimed by more than one interface; left out",
            "bridge br0, interface v0: VM a: MAC 52:54:00:00:00:01 is also used by another VM interface; left out",
            "bridge br0, interface v1: VM b: MAC 52:54:00:00:00:01 is also used by another VM interface; left out",
            "bridge br0, interface v2, ofport: port 3 is claimed by more than one interface; left out",
            "bridge br0, interface v4: VM d: 10.0.0.1 is configured for more than one VM; address left out",
            "bridge br0, interface v5: VM e: 10.0.0.1 is configured for more than one VM; address left out",
            "bridge br0, interface v5: VM e: 224.0.0.1 cannot be a VM's own address; address left out",
        ]
    );
    let inv = &built.inventory;
    let ids: Vec<&str> = inv.vms.iter().map(|v| v.id.0.as_str()).collect();
    assert_eq!(ids, ["d", "e"]);
    assert_eq!(
        inv.vms[0].interfaces[0].ips,
        ["10.0.0.4".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(inv.vms[1].interfaces[0].ips.is_empty());
    // The compiler takes it.
    let policy = crate::policy::Policy::parse(
        "[groups.all]\nvms = [\"d\", \"e\"]\n[[allow]]\nfrom = \"all\"\nto = \"all\"\nproto = \"ip\"\n",
        "p.toml",
        std::time::SystemTime::UNIX_EPOCH,
    )
    .unwrap();
    crate::policy::compile(
        &policy,
        inv,
        &crate::policy::CompileSettings::default(),
        std::time::SystemTime::UNIX_EPOCH,
    )
    .unwrap();
}

#[test]
fn a_bond_port_contributes_each_member_interface() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    let (e1, e2) = (db.uuid(), db.uuid());
    for (uuid, name, ofport) in [(e1, "eth1", 1), (e2, "eth2", 2)] {
        db.tables.interfaces.insert(
            uuid,
            vswitch::Interface {
                uuid,
                name: name.into(),
                iface_type: String::new(),
                ofport: Some(ofport),
                ofport_request: None,
                mac_in_use: None,
                mac: None,
                admin_state: None,
                link_state: None,
                external_ids: BTreeMap::new(),
                options: BTreeMap::new(),
                other_config: BTreeMap::new(),
                status: BTreeMap::new(),
                error: None,
            },
        );
    }
    let bond = db.port_of("bond0", vec![e1, e2]);
    db.tables.bridges.get_mut(&br).unwrap().ports.push(bond);
    let names: Vec<String> = db
        .build()
        .inventory
        .external_ports
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["br0", "eth1", "eth2"]);
}

fn interface_row(name: &str, ofport: i64, external_ids: &[(&str, &str)]) -> Row {
    Row::new()
        .with("name", name)
        .with("type", "")
        .with("ofport", Datum::scalar(ofport))
        .with("ofport_request", Datum::empty_set())
        .with("mac_in_use", Datum::scalar("fe:54:00:00:00:01"))
        .with("mac", Datum::empty_set())
        .with("admin_state", Datum::empty_set())
        .with("link_state", Datum::empty_set())
        .with("external_ids", Datum::map(external_ids.iter().copied()))
        .with("options", Datum::empty_map())
        .with("other_config", Datum::empty_map())
        .with("status", Datum::empty_map())
        .with("error", Datum::empty_set())
}

#[test]
fn row_changes_update_the_typed_tables_and_unreadable_rows_become_warnings() {
    let mut tables = VswitchTables::default();
    let uuid = Uuid::from_u128(99);
    let good = std::sync::Arc::new(interface_row("v0", 3, &[("vm-id", "a")]));
    assert!(tables.apply(&RowChange::Insert {
        table: "Interface".into(),
        uuid,
        new: good.clone(),
    }));
    assert_eq!(tables.interfaces[&uuid].ofport, Some(3));
    let bad = std::sync::Arc::new(interface_row("v0", 3, &[]).with("ofport", Datum::scalar("x")));
    tables.apply(&RowChange::Modify {
        table: "Interface".into(),
        uuid,
        old: good,
        new: bad.clone(),
    });
    assert!(tables.interfaces.is_empty());
    let built = build(&tables, &InventorySettings::default());
    assert_eq!(built.warnings.len(), 1);
    assert!(
        built.warnings[0]
            .to_string()
            .starts_with(&format!("interface Interface row {uuid}: ")),
        "{}",
        built.warnings[0]
    );
    tables.apply(&RowChange::Delete {
        table: "Interface".into(),
        uuid,
        old: bad,
    });
    assert!(tables.unreadable.is_empty());
    assert!(!tables.apply(&RowChange::Delete {
        table: "Controller".into(),
        uuid,
        old: std::sync::Arc::new(Row::new()),
    }));
}

#[test]
fn output_is_deterministic_whatever_the_hash_order() {
    let mut db = Db::new();
    let br = db.bridge("br0", Some("0000000000000001"));
    for n in 1..=40 {
        db.tap(
            br,
            &format!("v{n:02}"),
            n,
            &format!("52:54:00:00:01:{n:02x}"),
            &[("vm-id", &format!("vm{}", n % 7)), ("augur-label-x", "y")],
        );
    }
    let first = db.build();
    let copy = VswitchTables {
        interfaces: {
            let mut rows: Vec<_> = db.tables.interfaces.clone().into_iter().collect();
            rows.reverse();
            rows.into_iter().collect()
        },
        ..db.tables.clone()
    };
    assert_eq!(build(&copy, &InventorySettings::default()), first);
    assert_eq!(first.inventory.vms.len(), 7);
    for vm in &first.inventory.vms {
        let ports: Vec<u32> = vm.interfaces.iter().map(|i| i.ofport.0).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        assert_eq!(ports, sorted);
    }
}

fn bridge_row(name: &str, dpid: Option<&str>) -> Row {
    Row::new()
        .with("name", name)
        .with("ports", Datum::empty_set())
        .with("controller", Datum::empty_set())
        .with("fail_mode", Datum::empty_set())
        .with("datapath_id", Datum::optional(dpid))
        .with("datapath_type", "")
        .with("protocols", Datum::empty_set())
        .with("external_ids", Datum::empty_map())
        .with("other_config", Datum::empty_map())
}

#[test]
fn ephemeral_columns_emptied_by_a_server_restart_keep_their_values() {
    use std::sync::Arc;
    let mut tables = VswitchTables::default();
    let (b, i) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let modify = |table: &str, uuid, old: &Arc<Row>, new: Row| RowChange::Modify {
        table: table.into(),
        uuid,
        old: old.clone(),
        new: Arc::new(new),
    };
    let bridge = Arc::new(bridge_row("br0", Some("0000000000000001")));
    let iface = Arc::new(interface_row("v0", 3, &[]));
    tables.apply(&RowChange::Insert {
        table: "Bridge".into(),
        uuid: b,
        new: bridge.clone(),
    });
    tables.apply(&RowChange::Insert {
        table: "Interface".into(),
        uuid: i,
        new: iface.clone(),
    });
    tables.apply(&modify("Bridge", b, &bridge, bridge_row("br0", None)));
    tables.apply(&modify(
        "Interface",
        i,
        &iface,
        interface_row("v0", 3, &[]).with("mac_in_use", Datum::empty_set()),
    ));
    assert_eq!(
        tables.bridges[&b].datapath_id.as_deref(),
        Some("0000000000000001")
    );
    assert_eq!(
        tables.interfaces[&i].mac_in_use.as_deref(),
        Some("fe:54:00:00:00:01")
    );
    // A new value replaces the old one; a deleted row is forgotten.
    tables.apply(&modify(
        "Bridge",
        b,
        &bridge,
        bridge_row("br0", Some("0000000000000002")),
    ));
    assert_eq!(
        tables.bridges[&b].datapath_id.as_deref(),
        Some("0000000000000002")
    );
    tables.apply(&RowChange::Delete {
        table: "Bridge".into(),
        uuid: b,
        old: bridge.clone(),
    });
    tables.apply(&RowChange::Insert {
        table: "Bridge".into(),
        uuid: b,
        new: Arc::new(bridge_row("br0", None)),
    });
    assert_eq!(tables.bridges[&b].datapath_id, None);
}
