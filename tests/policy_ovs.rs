//! The compiled tables against a real Open vSwitch bridge: OVS accepts every
//! flow and meter, reports them back so that reconciliation finds nothing to
//! do, and a new policy version is applied by exactly the computed changes,
//! leaving a flow that is not augur's alone. Skips without OVS unless
//! `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, UNIX_EPOCH};

use augur::inventory::Inventory;
use augur::policy::{
    CompileSettings, CompiledPolicy, Cookie, Policy, compile, diff_meters, reconcile, to_flow_mods,
};
use augur::switch::SwitchHandle;
use augur_openflow::MultipartReplyBody;
use augur_openflow::meter::MeterConfig;
use augur_openflow::multipart::{FlowStats, FlowStatsRequest};
use augur_openflow::session::SessionConfig;
use augur_openflow::{Body, Match, MultipartRequest, MultipartRequestBody, TABLE_ALL};
use support::ovs::TestBridge;
use tokio::net::TcpListener;
use tokio::time::timeout;

const POLICY: &str = include_str!("../examples/policy/three-tier.toml");
const INVENTORY: &str = include_str!("../examples/policy/three-tier-inventory.toml");
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The example inventory with its bridge `s1` renamed to the test bridge.
fn inventory(bridge: &TestBridge) -> Inventory {
    let mut inventory: Inventory = toml::from_str(INVENTORY).unwrap();
    let rename = |name: &mut String| {
        if name == "s1" {
            *name = bridge.name().to_owned();
        }
    };
    for b in &mut inventory.bridges {
        if b.name == "s1" {
            b.datapath_id = bridge.datapath_id();
        }
        rename(&mut b.name);
    }
    for vm in &mut inventory.vms {
        for iface in &mut vm.interfaces {
            rename(&mut iface.bridge);
        }
    }
    for port in &mut inventory.external_ports {
        rename(&mut port.bridge);
    }
    inventory
}

fn compiled(policy: &str, inventory: &Inventory, version: u16) -> CompiledPolicy {
    let policy = Policy::parse(policy, "three-tier.toml", UNIX_EPOCH).unwrap();
    let settings = CompileSettings {
        version,
        ..CompileSettings::default()
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
    compile(&policy, inventory, &settings, now).unwrap()
}

/// augur's flows as the switch reports them.
async fn dump(handle: &SwitchHandle) -> Vec<FlowStats> {
    let (cookie, mask) = Cookie::augur_filter();
    let request = MultipartRequest::new(MultipartRequestBody::Flow(FlowStatsRequest::new(
        TABLE_ALL,
        cookie,
        mask,
        Match::new(),
    )));
    let replies = handle
        .request(Body::MultipartRequest(request))
        .await
        .unwrap();
    let mut flows = Vec::new();
    for reply in replies {
        match reply.body {
            Body::MultipartReply(r) => match r.body {
                MultipartReplyBody::Flow(mut part) => flows.append(&mut part),
                other => panic!("unexpected reply {other:?}"),
            },
            other => panic!("unexpected message {other:?}"),
        }
    }
    flows
}

/// The meters the switch holds.
async fn dump_meters(handle: &SwitchHandle) -> Vec<MeterConfig> {
    let request = MultipartRequest::new(MultipartRequestBody::MeterConfig {
        meter_id: augur_openflow::METER_ALL,
    });
    let replies = handle
        .request(Body::MultipartRequest(request))
        .await
        .unwrap();
    let mut meters = Vec::new();
    for reply in replies {
        match reply.body {
            Body::MultipartReply(r) => match r.body {
                MultipartReplyBody::MeterConfig(mut part) => meters.append(&mut part),
                other => panic!("unexpected reply {other:?}"),
            },
            other => panic!("unexpected message {other:?}"),
        }
    }
    meters
}

#[tokio::test]
async fn ovs_takes_the_tables_and_reconciliation_agrees_with_what_it_reports() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(bridge) = TestBridge::new(port) else {
        return;
    };
    let (stream, peer) = timeout(CONNECT_TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("bridge {} did not connect", bridge.name()))
        .unwrap();
    let (handle, _async_messages, _task) =
        augur::switch::connect(stream, peer, SessionConfig::default())
            .await
            .unwrap();

    let inventory = inventory(&bridge);
    let v1 = compiled(POLICY, &inventory, 1);
    let desired = v1.bridge(bridge.name()).unwrap();
    let meters = desired
        .meters
        .iter()
        .map(|m| Body::MeterMod(m.to_meter_mod()))
        .collect();
    handle.apply(meters).await.unwrap();
    let flows = desired
        .flows
        .iter()
        .map(|f| Body::FlowMod(f.to_flow_mod()))
        .collect();
    handle.apply(flows).await.unwrap();

    let settings = CompileSettings::default();
    let meter_changes = diff_meters(&desired.meters, &dump_meters(&handle).await, &settings);
    assert_eq!(
        meter_changes,
        Default::default(),
        "meters as OVS reports them"
    );

    let installed = dump(&handle).await;
    assert_eq!(installed.len(), desired.flows.len());
    let report = reconcile(&desired.flows, &installed);
    assert!(
        report.changes.is_empty(),
        "{} changes against what OVS reports, first: {:?}",
        report.changes.len(),
        report.changes.first()
    );
    assert_eq!(report.unchanged, desired.flows.len());

    // A flow that is not augur's, and a new version without the maintenance
    // rule and with another port for the web tier.
    bridge.ofctl(
        "add-flow",
        &["cookie=0x1234,table=0,priority=7,in_port=99,actions=drop"],
    );
    let edited = POLICY.replace("port = \"8000-8080\"", "port = \"8000-8443\"");
    let edited = edited
        .split("[[allow]]\nname = \"temporary maintenance access\"")
        .next()
        .unwrap()
        .to_owned();
    let edited = edited.replace("rate = \"10Mbit\"", "rate = \"20Mbit\"");
    let v2 = compiled(&edited, &inventory, 2);
    let desired = v2.bridge(bridge.name()).unwrap();
    let meter_changes = diff_meters(&desired.meters, &dump_meters(&handle).await, &settings);
    assert_eq!(meter_changes.before_flows.len(), 1, "{meter_changes:?}");
    assert!(meter_changes.after_flows.is_empty());
    let mods = meter_changes
        .before_flows
        .into_iter()
        .map(Body::MeterMod)
        .collect();
    handle.apply(mods).await.unwrap();
    assert_eq!(
        diff_meters(&desired.meters, &dump_meters(&handle).await, &settings),
        Default::default()
    );
    let installed = dump(&handle).await;
    let changes = reconcile(&desired.flows, &installed).changes;
    assert!(!changes.is_empty());
    let mods = to_flow_mods(&changes)
        .into_iter()
        .map(Body::FlowMod)
        .collect();
    handle.apply(mods).await.unwrap();
    let installed = dump(&handle).await;
    let report = reconcile(&desired.flows, &installed);
    assert!(report.changes.is_empty(), "{:?}", report.changes.first());
    assert_eq!(installed.len(), desired.flows.len());
    assert!(
        installed
            .iter()
            .all(|f| Cookie::from_raw(f.cookie).is_some_and(|c| c.version() == 2))
    );
    let foreign = bridge.dump_flows(&["cookie=0x1234/-1"]);
    assert!(
        foreign.contains("in_port=99"),
        "the foreign flow is gone: {foreign}"
    );
}
