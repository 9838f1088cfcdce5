//! The observer's pure parts against the real compiler: counters of compiled
//! rule flows become allowed records with the right VMs, protocol and port;
//! hand-built denied frames become denied records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use augur::inventory::Inventory;
use augur::observer::{CounterTracker, RuleTargets, Skipped, allowed_records, denied_record};
use augur::policy::{CompileSettings, Cookie, DenyReason, Origin, Policy, Stage, compile};
use augur_flows::{Endpoint, Protocol, Timestamp, Verdict};
use augur_openflow::multipart::FlowStats;
use augur_openflow::{FlowModFlags, Match};
use augur_openflow::{PacketIn, PacketInReason};
use etherparse::PacketBuilder;

const POLICY: &str = r#"
[groups.web]
vms = ["a"]
[groups.db]
vms = ["b"]
[groups.all]
labels = { env = "prod" }
[[allow]]
from = "web"
to = "db"
proto = "tcp"
port = 5432
[[allow]]
from = "all"
to = "db"
proto = "udp"
port = 53
"#;

const INVENTORY: &str = r#"{"bridges": [{"name": "br0", "datapath_id": 1}], "vms": [
 {"id": "a", "labels": {"env": "prod"}, "interfaces": [{"bridge": "br0", "ofport": 1, "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1", "fd00::1"]}]},
 {"id": "b", "labels": {"env": "prod"}, "interfaces": [{"bridge": "br0", "ofport": 2, "mac": "02:00:00:00:00:02", "ips": ["10.0.0.2", "fd00::2"]}]}
], "external_ports": []}"#;

fn setup() -> (Policy, Inventory) {
    (
        Policy::parse(POLICY, "p.toml", UNIX_EPOCH).unwrap(),
        serde_json::from_str(INVENTORY).unwrap(),
    )
}

fn as_stats(
    cookie: u64,
    table_id: u8,
    priority: u16,
    m: &Match,
    packets: u64,
    secs: u32,
) -> FlowStats {
    FlowStats {
        table_id,
        duration_sec: secs,
        duration_nsec: 0,
        priority,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags::empty(),
        importance: 0,
        cookie,
        packet_count: packets,
        byte_count: packets * 74,
        match_: m.clone(),
        instructions: Vec::new(),
    }
}

#[test]
fn rule_counters_become_allowed_records() {
    let (policy, inventory) = setup();
    let settings = CompileSettings::default();
    let compiled = compile(&policy, &inventory, &settings, UNIX_EPOCH).unwrap();
    let flows = compiled.bridge("br0").unwrap();
    let targets = RuleTargets::new(&policy, &inventory, settings.version);
    let bridge: Arc<str> = Arc::from("br0");
    let acl: Vec<_> = flows.stage(Stage::Acl).collect();
    let poll = |packets: u64, secs: u32| -> Vec<FlowStats> {
        acl.iter()
            .map(|f| as_stats(f.cookie.0, f.table_id, f.priority, &f.match_, packets, secs))
            .collect()
    };
    let mut tracker = CounterTracker::new();
    tracker.update(&poll(3, 10));
    let (deltas, summary) = tracker.update(&poll(7, 20));
    assert_eq!(summary.flows, acl.len());
    // Every ACL flow moved by 4 packets; only rule 0 (web → db, one VM each
    // side) can be attributed to a VM pair.
    let (records, summary) = allowed_records(&deltas, &targets, Timestamp::from_secs(100), &bridge);
    assert!(
        summary.unattributed > 0,
        "rule 1 spans two VMs: {summary:?}"
    );
    assert!(summary.not_rules > 0);
    assert!(!records.is_empty());
    for r in &records {
        assert_eq!(r.src, Endpoint::vm("a"));
        assert_eq!(r.dst, Endpoint::vm("b"));
        assert_eq!(r.protocol, Protocol::TCP);
        assert_eq!(r.dst_port, 5432);
        assert_eq!((r.packets, r.bytes, r.connections), (4, 4 * 74, 4));
        assert_eq!(r.verdict, Verdict::Allowed);
        assert_eq!(r.bridge.as_deref(), Some("br0"));
    }
    // One flow per IP version.
    assert_eq!(records.len(), 2);

    // A reinstall under the next version: the old targets do not claim it.
    let next = RuleTargets::new(&policy, &inventory, settings.version + 1);
    let (_, summary) = allowed_records(&deltas, &next, Timestamp::from_secs(100), &bridge);
    assert_eq!(summary.records, 0);
    assert!(summary.other_version > 0);
}

fn packet_in(cookie: u64, in_port: u32, frame: Vec<u8>) -> PacketIn {
    PacketIn {
        buffer_id: u32::MAX,
        total_len: u16::try_from(frame.len()).unwrap() + 100,
        reason: PacketInReason::ACTION,
        table_id: Stage::Deny.table_id(),
        cookie,
        match_: Match::new().in_port(in_port),
        data: frame.into(),
    }
}

fn deny_cookie() -> u64 {
    Cookie::new(1, Origin::Deny(DenyReason::NoRule)).0
}

#[test]
fn denied_samples_become_denied_records() {
    let (_, inventory) = setup();
    let bridge: Arc<str> = Arc::from("br0");
    let ts = Timestamp::from_secs(5);

    // TCP SYN a → b:22, tagged frame parsing through VLAN as well.
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .single_vlan(7.try_into().unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 22, 1, 1024)
        .syn()
        .write(&mut frame, &[])
        .unwrap();
    let (r, reason) =
        denied_record(&packet_in(deny_cookie(), 1, frame), &inventory, &bridge, ts).unwrap();
    assert_eq!(reason, DenyReason::NoRule);
    assert_eq!((r.src, r.dst), (Endpoint::vm("a"), Endpoint::vm("b")));
    assert_eq!(
        (r.src_port, r.dst_port, r.protocol),
        (40000, 22, Protocol::TCP)
    );
    assert_eq!(
        (r.packets, r.connections, r.verdict),
        (1, 1, Verdict::Denied)
    );

    // UDP over IPv6 from b to an outside address, cut after the UDP header.
    let mut frame = Vec::new();
    let outside = "2001:db8::9".parse::<std::net::Ipv6Addr>().unwrap();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 9])
        .ipv6(
            "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            outside.octets(),
            64,
        )
        .udp(5353, 9999)
        .write(&mut frame, &[0u8; 400])
        .unwrap();
    frame.truncate(14 + 40 + 8 + 10);
    let (r, _) =
        denied_record(&packet_in(deny_cookie(), 2, frame), &inventory, &bridge, ts).unwrap();
    assert_eq!(
        (r.src, r.dst),
        (Endpoint::vm("b"), Endpoint::External(outside.into()))
    );
    assert_eq!(
        (r.src_port, r.dst_port, r.protocol),
        (5353, 9999, Protocol::UDP)
    );

    // ICMP echo from outside (in_port of no VM): source is the address.
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4([192, 0, 2, 7], [10, 0, 0, 1], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut frame, &[1, 2, 3])
        .unwrap();
    let (r, _) = denied_record(
        &packet_in(deny_cookie(), 9, frame.clone()),
        &inventory,
        &bridge,
        ts,
    )
    .unwrap();
    assert_eq!(r.src, Endpoint::External("192.0.2.7".parse().unwrap()));
    assert_eq!(r.dst, Endpoint::vm("a"));
    assert_eq!((r.src_port, r.dst_port, r.protocol), (8, 0, Protocol::ICMP));

    // A frame on VM a's port with another MAC is not pinned on a.
    let mut spoof = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x66], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 9, 9, 9], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut spoof, &[])
        .unwrap();
    let (r, _) =
        denied_record(&packet_in(deny_cookie(), 1, spoof), &inventory, &bridge, ts).unwrap();
    assert_eq!(r.src, Endpoint::External("10.9.9.9".parse().unwrap()));

    // Not a deny sample; not IP; cut inside the IP header.
    let other = Cookie::new(1, Origin::Rule(0)).0;
    assert_eq!(
        denied_record(&packet_in(other, 1, frame.clone()), &inventory, &bridge, ts).unwrap_err(),
        Skipped::NotDenySample
    );
    assert_eq!(
        denied_record(&packet_in(0x1, 1, frame.clone()), &inventory, &bridge, ts).unwrap_err(),
        Skipped::NotDenySample
    );
    let mut arp = vec![0xff; 6];
    arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend([0u8; 28]);
    assert_eq!(
        denied_record(&packet_in(deny_cookie(), 1, arp), &inventory, &bridge, ts).unwrap_err(),
        Skipped::NotIp
    );
    let mut cut = frame;
    cut.truncate(14 + 12);
    assert_eq!(
        denied_record(&packet_in(deny_cookie(), 1, cut), &inventory, &bridge, ts).unwrap_err(),
        Skipped::NotIp
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let (_, inventory) = setup();
    let bridge: Arc<str> = Arc::from("br0");
    let mut seed = 0x1234_5678_u32;
    for len in 0..300 {
        let frame: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let _ = denied_record(
            &packet_in(deny_cookie(), 1, frame),
            &inventory,
            &bridge,
            Timestamp(0),
        );
    }
}
