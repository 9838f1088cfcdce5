//! What the compiler refuses, and what it warns about.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::UNIX_EPOCH;

use augur::inventory::Inventory;
use augur::policy::{CompileError, CompileSettings, CompiledPolicy, Policy, compile};

const POLICY: &str = "
[groups.web]
labels = { tier = \"web\" }
[groups.ghosts]
vms = [\"nobody\"]
[endpoints.uplink]
ports = [\"eth9\"]
[[allow]]
from = [\"ghosts\", \"uplink\"]
to = \"web\"
proto = \"tcp\"
port = 80
";

fn inventory(json: &str) -> Inventory {
    serde_json::from_str(json).unwrap()
}

fn try_compile(inv: &Inventory) -> Result<CompiledPolicy, CompileError> {
    let policy = Policy::parse(POLICY, "p.toml", UNIX_EPOCH).unwrap();
    compile(&policy, inv, &CompileSettings::default(), UNIX_EPOCH)
}

const VM_A: &str = r#"{"id": "a", "labels": {"tier": "web"}, "interfaces": [{"bridge": "br0", "ofport": 1, "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1"]}]}"#;

#[test]
fn inventories_that_cannot_be_enforced_are_refused() {
    let with = |vms: &str, ports: &str| {
        inventory(&format!(
            r#"{{"bridges": [{{"name": "br0", "datapath_id": 1}}], "vms": [{vms}], "external_ports": [{ports}]}}"#
        ))
    };
    let same_ip = r#"{"id": "b", "interfaces": [{"bridge": "br0", "ofport": 2, "mac": "02:00:00:00:00:02", "ips": ["10.0.0.1"]}]}"#;
    assert_eq!(
        try_compile(&with(&format!("{VM_A}, {same_ip}"), ""))
            .unwrap_err()
            .to_string(),
        "address 10.0.0.1 belongs to both VM a and VM b"
    );
    let same_mac = r#"{"id": "b", "interfaces": [{"bridge": "br0", "ofport": 2, "mac": "02:00:00:00:00:01", "ips": []}]}"#;
    assert!(matches!(
        try_compile(&with(&format!("{VM_A}, {same_mac}"), "")),
        Err(CompileError::DuplicateAddress { .. })
    ));
    let same_port = r#"{"bridge": "br0", "name": "eth0", "ofport": 1}"#;
    assert_eq!(
        try_compile(&with(VM_A, same_port)).unwrap_err().to_string(),
        "bridge `br0` has two ports numbered 1"
    );
    let elsewhere = r#"{"bridge": "br9", "name": "eth0", "ofport": 7}"#;
    assert_eq!(
        try_compile(&with(VM_A, elsewhere)).unwrap_err().to_string(),
        "external port `eth0` is on bridge `br9`, which is not in the inventory"
    );
    let multicast = r#"{"id": "b", "interfaces": [{"bridge": "br0", "ofport": 2, "mac": "03:00:00:00:00:02", "ips": []}]}"#;
    assert!(matches!(
        try_compile(&with(multicast, "")),
        Err(CompileError::BadAddress { .. })
    ));
}

#[test]
fn selectors_that_select_nothing_are_warnings() {
    let inv = inventory(&format!(
        r#"{{"bridges": [{{"name": "br0", "datapath_id": 1}}], "vms": [{VM_A}]}}"#
    ));
    let compiled = try_compile(&inv).unwrap();
    let warnings = compiled.warnings.join("\n");
    assert!(
        warnings.contains("group `ghosts`: no VM is named `nobody`"),
        "{warnings}"
    );
    assert!(
        warnings.contains("group `ghosts` selects no VM"),
        "{warnings}"
    );
    assert!(
        warnings.contains("endpoint `uplink`: no external port is named `eth9`"),
        "{warnings}"
    );
    // The rule has no source on this bridge: no flow carries its cookie.
    let bridge = compiled.bridge("br0").unwrap();
    assert!(
        bridge
            .flows
            .iter()
            .all(|f| f.cookie.origin() != Some(augur::policy::Origin::Rule(0)))
    );
}

#[test]
fn learn_mode_admits_and_samples_new_connections_below_the_rules() {
    use augur::policy::{Cookie, Mode, Origin, Stage};
    use augur_openflow::action::Controller2Prop;
    use augur_openflow::{Action, Instruction};

    let inv = inventory(&format!(
        r#"{{"bridges": [{{"name": "br0", "datapath_id": 1}}], "vms": [{VM_A}]}}"#
    ));
    let policy = Policy::parse(POLICY, "p.toml", UNIX_EPOCH).unwrap();
    let learn = CompileSettings {
        mode: Mode::Learn,
        ..CompileSettings::default()
    };
    let compiled = compile(&policy, &inv, &learn, UNIX_EPOCH).unwrap();
    let bridge = compiled.bridge("br0").unwrap();
    let learning: Vec<_> = bridge
        .stage(Stage::Acl)
        .filter(|f| f.cookie == Cookie::new(learn.version, Origin::Learn))
        .collect();
    assert_eq!(learning.len(), 2, "one flow per IP version");
    for flow in &learning {
        assert_eq!(flow.priority, 1);
        let Instruction::ApplyActions(actions) = &flow.instructions[0] else {
            panic!("{:?}", flow.instructions);
        };
        assert!(matches!(&actions[0], Action::Ct(_)), "{actions:?}");
        // The meter limits the copy to the controller, never the connection.
        assert_eq!(
            actions[1],
            Action::Controller2(vec![
                Controller2Prop::MaxLen(learn.deny_sample_max_len),
                Controller2Prop::MeterId(learn.deny_meter_id),
            ])
        );
        assert!(
            !flow
                .instructions
                .iter()
                .any(|i| matches!(i, Instruction::Meter(_)))
        );
        assert_eq!(
            flow.instructions[1],
            Instruction::GotoTable(Stage::Forward.table_id())
        );
    }
    // Enforce mode has no such flow; everything else is the same.
    let enforce = compile(&policy, &inv, &CompileSettings::default(), UNIX_EPOCH).unwrap();
    let enforced = &enforce.bridge("br0").unwrap().flows;
    assert!(
        enforced
            .iter()
            .all(|f| f.cookie.origin() != Some(Origin::Learn))
    );
    assert_eq!(enforced.len() + 2, bridge.flows.len());
}
