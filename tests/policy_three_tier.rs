//! Behaviour of the compiled three-tier example (`examples/policy/`): packets
//! run through the model switches of both bridges, and the tests assert what
//! happens to them, not what the flows look like.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augur::inventory::Inventory;
use augur::policy::eval::{Packet, Switch, Verdict, tcp_flags};
use augur::policy::{
    CompileSettings, CompiledPolicy, Cookie, DenyReason, Origin, Policy, Stage, compile,
};
use augur_openflow::{Body, Instruction, Message, PortNo, Version};

const POLICY: &str = include_str!("../examples/policy/three-tier.toml");
const INVENTORY: &str = include_str!("../examples/policy/three-tier-inventory.toml");

/// 2025-01-01T00:00:00Z: before the maintenance rule expires (2030).
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_735_689_600)
}

const VERSION: u16 = 7;

/// A VM or outside host: where it is plugged in and its addresses.
#[derive(Clone, Copy)]
struct Host {
    bridge: usize,
    port: u32,
    mac: &'static str,
    ip: &'static str,
}

const WEB1: Host = Host {
    bridge: 0,
    port: 1,
    mac: "02:00:00:00:01:01",
    ip: "10.0.0.11",
};
const APP1: Host = Host {
    bridge: 0,
    port: 2,
    mac: "02:00:00:00:01:02",
    ip: "10.0.0.21",
};
const DB1: Host = Host {
    bridge: 0,
    port: 3,
    mac: "02:00:00:00:01:03",
    ip: "10.0.0.31",
};
const WEB2: Host = Host {
    bridge: 1,
    port: 1,
    mac: "02:00:00:00:02:01",
    ip: "10.0.0.12",
};
const APP2: Host = Host {
    bridge: 1,
    port: 2,
    mac: "02:00:00:00:02:02",
    ip: "10.0.0.22",
};
const DB2: Host = Host {
    bridge: 1,
    port: 3,
    mac: "02:00:00:00:02:03",
    ip: "10.0.0.32",
};
const JUMP: Host = Host {
    bridge: 1,
    port: 4,
    mac: "02:00:00:00:02:04",
    ip: "10.0.0.99",
};
/// A client beyond s1's link to the clients' network.
const CLIENT: Host = Host {
    bridge: 0,
    port: OUTSIDE,
    mac: "02:00:00:00:0c:01",
    ip: "192.0.2.7",
};
/// A host on the clients' network that is not a client.
const STRANGER: Host = Host {
    bridge: 0,
    port: OUTSIDE,
    mac: "02:00:00:00:0c:02",
    ip: "198.51.100.1",
};
/// s1's own stack, on its LOCAL port.
const HOST1: Host = Host {
    bridge: 0,
    port: PortNo::LOCAL.0,
    mac: "02:00:00:00:01:fe",
    ip: "10.0.0.1",
};
/// The link between s1 and s2 (port 10 on both).
const UPLINK: u32 = 10;
/// s1's link to the clients' network.
const OUTSIDE: u32 = 20;

fn inventory() -> Inventory {
    toml::from_str(INVENTORY).unwrap()
}

fn compiled_at(now: SystemTime) -> CompiledPolicy {
    let policy = Policy::parse(POLICY, "three-tier.toml", start()).unwrap();
    let settings = CompileSettings {
        version: VERSION,
        ..CompileSettings::default()
    };
    compile(&policy, &inventory(), &settings, now).unwrap()
}

/// Both bridges, each knowing the other's VMs are behind its uplink.
struct Net {
    compiled: CompiledPolicy,
    switches: [Switch; 2],
}

impl Net {
    fn at(now: SystemTime) -> Net {
        let compiled = compiled_at(now);
        let inventory = inventory();
        let mut s1 = Switch::new(compiled.bridge("s1").unwrap(), &inventory);
        let mut s2 = Switch::new(compiled.bridge("s2").unwrap(), &inventory);
        for host in [WEB2, APP2, DB2, JUMP] {
            s1.learn(host.mac, UPLINK);
        }
        for host in [CLIENT, STRANGER] {
            s1.learn(host.mac, OUTSIDE);
        }
        for host in [WEB1, APP1, DB1, HOST1] {
            s2.learn(host.mac, UPLINK);
        }
        Net {
            compiled,
            switches: [s1, s2],
        }
    }

    fn new() -> Net {
        Net::at(start())
    }

    /// Sends `packet` in at `bridge`; if it leaves only through the link to
    /// the other bridge, carries it on. The verdict is where it ends.
    fn send(&mut self, bridge: usize, packet: &Packet) -> Verdict {
        let verdict = self.switches[bridge].process(packet).verdict();
        match &verdict {
            Verdict::Delivered(ports) if ports == &[PortNo(UPLINK)] => {
                let other = 1 - bridge;
                let crossed = Packet {
                    in_port: PortNo(UPLINK),
                    ..packet.clone()
                };
                self.switches[other].process(&crossed).verdict()
            }
            _ => verdict,
        }
    }
}

fn tcp(from: Host, to: Host, sport: u16, dport: u16) -> Packet {
    Packet::tcp(from.port, from.mac, to.mac, from.ip, to.ip, sport, dport)
}

fn udp(from: Host, to: Host, sport: u16, dport: u16) -> Packet {
    Packet::udp(from.port, from.mac, to.mac, from.ip, to.ip, sport, dport)
}

fn delivered(to: Host) -> Verdict {
    Verdict::Delivered(vec![PortNo(to.port)])
}

fn denied(reason: DenyReason) -> Verdict {
    Verdict::ToController {
        cookie: Cookie::new(VERSION, Origin::Deny(reason)).0,
    }
}

/// Opens a TCP connection and checks that the handshake and data pass both
/// ways.
fn connects(net: &mut Net, from: Host, to: Host, dport: u16) {
    let syn = tcp(from, to, 40000, dport);
    assert_eq!(
        net.send(from.bridge, &syn),
        delivered(to),
        "SYN {}->{}:{dport}",
        from.ip,
        to.ip
    );
    let syn_ack = syn.reply(to.port);
    assert_eq!(net.send(to.bridge, &syn_ack), delivered(from), "SYN+ACK");
    let ack = syn.clone().with_tcp_flags(tcp_flags::ACK);
    assert_eq!(net.send(from.bridge, &ack), delivered(to), "ACK");
    let data_back = ack.reply(to.port);
    assert_eq!(
        net.send(to.bridge, &data_back),
        delivered(from),
        "data back"
    );
}

#[test]
fn allowed_tcp_pairs_connect_on_one_bridge_and_across_two() {
    let mut net = Net::new();
    connects(&mut net, WEB1, APP1, 8080);
    connects(&mut net, WEB1, APP1, 8000);
    connects(&mut net, WEB1, APP2, 8042);
    connects(&mut net, WEB2, APP1, 8080);
    connects(&mut net, APP2, DB2, 5432);
    connects(&mut net, APP1, DB2, 5432);
    connects(&mut net, CLIENT, WEB1, 80);
    connects(&mut net, CLIENT, WEB2, 80);
    connects(&mut net, JUMP, DB1, 22);
}

#[test]
fn allowed_udp_passes_with_its_replies() {
    let mut net = Net::new();
    for (from, to) in [(APP1, DB1), (APP1, DB2), (APP2, DB1)] {
        let query = udp(from, to, 33000, 5353);
        assert_eq!(net.send(from.bridge, &query), delivered(to));
        assert_eq!(net.send(to.bridge, &query.reply(to.port)), delivered(from));
    }
}

#[test]
fn denied_pairs_drop_and_are_sampled() {
    let mut net = Net::new();
    let cases = [
        tcp(WEB1, DB1, 40000, 5432),  // web may not reach the databases
        tcp(WEB1, APP1, 40000, 8081), // outside the port range
        tcp(WEB1, APP1, 40000, 7999),
        tcp(APP1, WEB1, 40000, 80), // no rule this way
        tcp(DB1, APP1, 40000, 8080),
        udp(WEB1, APP1, 40000, 8080),   // wrong protocol
        tcp(STRANGER, WEB1, 40000, 80), // not a client
        tcp(WEB1, WEB1, 40000, 22),
    ];
    for packet in &cases {
        assert_eq!(
            net.switches[0].process(packet).verdict(),
            denied(DenyReason::NoRule),
            "{packet:?}"
        );
    }
    // Across bridges, the sending bridge already refuses.
    let across = tcp(WEB1, DB2, 40000, 5432);
    assert_eq!(net.send(0, &across), denied(DenyReason::NoRule));
    // And the receiving bridge refuses on its own too (a sender that is not
    // checked, arriving through the uplink).
    let arriving = Packet {
        in_port: PortNo(UPLINK),
        ..across
    };
    assert_eq!(
        net.switches[1].process(&arriving).verdict(),
        denied(DenyReason::NoRule)
    );
}

#[test]
fn replies_pass_only_for_established_connections() {
    let mut net = Net::new();
    // Unsolicited traffic from app to web: a SYN is a new connection no rule
    // allows; anything else belongs to no connection and is invalid.
    let unsolicited = tcp(APP1, WEB1, 8080, 40000);
    assert_eq!(net.send(0, &unsolicited), denied(DenyReason::NoRule));
    for flags in [
        tcp_flags::ACK,
        tcp_flags::SYN | tcp_flags::ACK,
        tcp_flags::RST,
        tcp_flags::FIN | tcp_flags::ACK,
    ] {
        let stray = unsolicited.clone().with_tcp_flags(flags);
        assert_eq!(net.send(0, &stray), Verdict::Dropped, "flags {flags:#x}");
    }
    let stray_udp = udp(DB1, APP1, 5353, 33000);
    assert_eq!(net.send(0, &stray_udp), denied(DenyReason::NoRule));
    // Once web opens the connection, the same segment is its reply.
    let syn = tcp(WEB1, APP1, 40000, 8080);
    assert_eq!(net.send(0, &syn), delivered(APP1));
    let reply = syn.reply(APP1.port);
    assert_eq!(net.send(0, &reply), delivered(WEB1));
    // A reply to another source port is not part of it.
    let other = tcp(APP1, WEB1, 8080, 40001).with_tcp_flags(tcp_flags::ACK);
    assert_eq!(net.send(0, &other), Verdict::Dropped);
    // ICMP errors about the connection are related and pass.
    assert_eq!(net.send(0, &syn.unreachable(APP1.port)), delivered(WEB1));
}

#[test]
fn spoofed_sources_drop_and_are_sampled() {
    let mut net = Net::new();
    let spoofed = denied(DenyReason::Spoofed);
    // Another VM's MAC.
    let mut p = tcp(WEB1, APP1, 40000, 8080);
    p.eth_src = APP1.mac.parse().unwrap();
    assert_eq!(net.send(0, &p), spoofed);
    // Another VM's IP, own MAC.
    let p = Packet::tcp(WEB1.port, WEB1.mac, APP1.mac, DB1.ip, APP1.ip, 40000, 8080);
    assert_eq!(net.send(0, &p), spoofed);
    // An address nobody has.
    let p = Packet::tcp(
        WEB1.port, WEB1.mac, APP1.mac, "10.9.9.9", APP1.ip, 40000, 8080,
    );
    assert_eq!(net.send(0, &p), spoofed);
    // ARP claiming another VM's address.
    let p = Packet::arp_request(WEB1.port, WEB1.mac, APP1.ip, DB1.ip);
    assert_eq!(net.send(0, &p), spoofed);
    // A VLAN tag from a VM.
    let mut p = tcp(WEB1, APP1, 40000, 8080);
    p.vlan = Some(5);
    assert_eq!(net.send(0, &p), spoofed);
    // From outside, a local VM's address.
    let p = Packet::tcp(OUTSIDE, CLIENT.mac, WEB1.mac, APP1.ip, WEB1.ip, 40000, 80);
    assert_eq!(net.switches[0].process(&p).verdict(), spoofed);
    let p = Packet::arp_request(OUTSIDE, CLIENT.mac, WEB1.ip, APP1.ip);
    assert_eq!(net.switches[0].process(&p).verdict(), spoofed);
    // An IP packet for app-1's address sent to db-1's MAC.
    let p = Packet::tcp(WEB1.port, WEB1.mac, DB1.mac, WEB1.ip, APP1.ip, 40000, 8080);
    assert_eq!(net.send(0, &p), denied(DenyReason::Misaddressed));
    // A port the inventory does not know.
    let p = Packet::tcp(42, WEB1.mac, APP1.mac, WEB1.ip, APP1.ip, 40000, 8080);
    assert_eq!(net.send(0, &p), denied(DenyReason::UnknownPort));
}

#[test]
fn infrastructure_traffic_passes() {
    let mut net = Net::new();
    let everyone_but = |from: u32| -> Vec<PortNo> {
        [1, 2, 3, 10, 20, PortNo::LOCAL.0]
            .into_iter()
            .filter(|&p| p != from)
            .map(PortNo)
            .collect()
    };
    // ARP requests are flooded, replies go to the asker.
    let who_has = Packet::arp_request(WEB1.port, WEB1.mac, WEB1.ip, APP1.ip);
    assert_eq!(
        net.send(0, &who_has),
        Verdict::Delivered(everyone_but(WEB1.port))
    );
    let probe = Packet::arp_request(WEB1.port, WEB1.mac, "0.0.0.0", WEB1.ip);
    assert!(matches!(net.send(0, &probe), Verdict::Delivered(_)));
    let mut answer = Packet::arp_request(APP1.port, APP1.mac, APP1.ip, WEB1.ip);
    answer.eth_dst = WEB1.mac.parse().unwrap();
    assert_eq!(net.send(0, &answer), delivered(WEB1));
    // DHCP: discover flooded, the server's offer from outside delivered.
    let discover = Packet::dhcp_discover(DB1.port, DB1.mac);
    assert_eq!(
        net.send(0, &discover),
        Verdict::Delivered(everyone_but(DB1.port))
    );
    let offer = Packet::udp(
        OUTSIDE,
        "02:00:00:00:0d:01",
        DB1.mac,
        "10.0.0.2",
        "10.0.0.31",
        67,
        68,
    );
    assert_eq!(net.switches[0].process(&offer).verdict(), delivered(DB1));
    // A VM may not play DHCP server to the others.
    let rogue = Packet::udp(APP1.port, APP1.mac, WEB1.mac, APP1.ip, WEB1.ip, 67, 68);
    assert_eq!(net.send(0, &rogue), denied(DenyReason::NoRule));
    // IPv6 neighbour discovery with the VM's own addresses.
    let link_local = "fe80::ff:fe00:101";
    let ns = Packet::ip(
        WEB1.port,
        WEB1.mac,
        "33:33:ff:00:01:02",
        link_local,
        "ff02::1:ff00:102",
        augur::policy::eval::Transport::Nd {
            kind: 135,
            target: "fe80::ff:fe00:102".parse().unwrap(),
            lla: Some(WEB1.mac.parse().unwrap()),
        },
    );
    assert!(matches!(net.send(0, &ns), Verdict::Delivered(_)));
    let forged_na = Packet::ip(
        WEB1.port,
        WEB1.mac,
        APP1.mac,
        link_local,
        "fe80::ff:fe00:102",
        augur::policy::eval::Transport::Nd {
            kind: 136,
            target: "2001:db8::99".parse().unwrap(),
            lla: Some(WEB1.mac.parse().unwrap()),
        },
    );
    assert_eq!(net.send(0, &forged_na), denied(DenyReason::Spoofed));
}

#[test]
fn external_endpoints_cidrs_and_the_local_port() {
    let mut net = Net::new();
    // Clients by CIDR reach only the web tier.
    connects(&mut net, CLIENT, WEB1, 80);
    assert_eq!(
        net.send(0, &tcp(CLIENT, APP1, 40000, 8080)),
        denied(DenyReason::NoRule)
    );
    // Over IPv6 too.
    let client6 = Packet::tcp(
        OUTSIDE,
        CLIENT.mac,
        WEB1.mac,
        "2001:db8:c::5",
        "2001:db8::11",
        40000,
        80,
    );
    assert_eq!(net.send(0, &client6), delivered(WEB1));
    assert_eq!(
        net.send(0, &client6.reply(WEB1.port)),
        Verdict::Delivered(vec![PortNo(OUTSIDE)])
    );
    let stranger6 = Packet::tcp(
        OUTSIDE,
        STRANGER.mac,
        WEB1.mac,
        "2001:db8:d::5",
        "2001:db8::11",
        40000,
        80,
    );
    assert_eq!(net.send(0, &stranger6), denied(DenyReason::NoRule));
    // The host pings every VM, and nothing else.
    let ping = Packet::ping(HOST1.port, HOST1.mac, DB1.mac, HOST1.ip, DB1.ip);
    assert_eq!(net.send(0, &ping), delivered(DB1));
    assert_eq!(
        net.send(0, &ping.reply(DB1.port)),
        Verdict::Delivered(vec![PortNo::LOCAL])
    );
    assert_eq!(
        net.send(0, &tcp(HOST1, DB1, 40000, 22)),
        denied(DenyReason::NoRule)
    );
    // VMs cannot open connections to the host or to clients.
    assert_eq!(
        net.send(0, &tcp(WEB1, HOST1, 40000, 22)),
        denied(DenyReason::NoRule)
    );
    assert_eq!(
        net.send(0, &tcp(WEB1, CLIENT, 40000, 443)),
        denied(DenyReason::NoRule)
    );
    // The host's own traffic with the outside is not the policy's: it
    // passes even mid-connection (no SYN seen), untracked.
    let mid_stream = tcp(HOST1, STRANGER, 22, 50000).with_tcp_flags(tcp_flags::ACK);
    assert_eq!(
        net.send(0, &mid_stream),
        Verdict::Delivered(vec![PortNo(OUTSIDE)])
    );
}

#[test]
fn rate_limited_rules_go_through_their_meter_both_ways() {
    let mut net = Net::new();
    let s1 = net.compiled.bridge("s1").unwrap().clone();
    let meter = *s1
        .meters
        .iter()
        .find(|m| m.rate == 10_000)
        .expect("a 10 Mbit/s meter");
    assert_eq!(meter.unit, augur::policy::RateUnit::Kbps);
    let rule_flows: Vec<_> = s1
        .stage(Stage::Acl)
        .filter(|f| f.cookie.origin() == Some(Origin::Rule(2)))
        .collect();
    assert!(!rule_flows.is_empty());
    for flow in &rule_flows {
        assert!(
            flow.instructions.contains(&Instruction::Meter(meter.id)),
            "{flow}"
        );
    }
    let syn = tcp(APP1, DB1, 40000, 5432);
    let out = net.switches[0].process(&syn);
    assert_eq!(out.verdict(), delivered(DB1));
    assert_eq!(out.meters, [meter.id]);
    let reply = net.switches[0].process(&syn.reply(DB1.port));
    assert_eq!(reply.verdict(), delivered(APP1));
    assert_eq!(
        reply.meters,
        [meter.id],
        "the reply direction is metered too"
    );
    // Other rules' traffic is not.
    let other = net.switches[0].process(&udp(APP1, DB1, 33000, 5353));
    assert!(other.meters.is_empty());
    // Over the rate, the meter drops.
    net.switches[0].saturate_meter(meter.id);
    let data = syn.with_tcp_flags(tcp_flags::ACK);
    assert_eq!(net.switches[0].process(&data).verdict(), Verdict::Dropped);
}

#[test]
fn denied_samples_are_rate_limited_by_their_meter() {
    let mut net = Net::new();
    let settings = CompileSettings::default();
    let denied_packet = tcp(WEB1, DB1, 40000, 5432);
    let out = net.switches[0].process(&denied_packet);
    assert_eq!(out.meters, [settings.deny_meter_id]);
    net.switches[0].saturate_meter(settings.deny_meter_id);
    assert_eq!(
        net.switches[0].process(&denied_packet).verdict(),
        Verdict::Dropped
    );
}

#[test]
fn expiring_rules_have_hard_timeouts_and_expired_rules_are_absent() {
    // Five years ahead is more than a 16-bit timeout holds: the switch gets
    // the longest it can take and the daemon re-adds the flows then.
    let net = Net::new();
    let far: Vec<u16> = net
        .compiled
        .bridges
        .iter()
        .flat_map(|b| &b.flows)
        .filter(|f| f.cookie.origin() == Some(Origin::Rule(5)))
        .map(|f| f.hard_timeout)
        .collect();
    assert!(
        !far.is_empty() && far.iter().all(|&t| t == u16::MAX),
        "{far:?}"
    );
    assert_eq!(
        net.compiled.next_refresh,
        Some(start() + Duration::from_secs(65_535))
    );

    // 2029-12-31T23:00:00Z: an hour left on the maintenance rule (#5).
    let late = UNIX_EPOCH + Duration::from_secs(1_893_452_400);
    let mut net = Net::at(late);
    let timeouts: Vec<u16> = net
        .compiled
        .bridges
        .iter()
        .flat_map(|b| &b.flows)
        .filter(|f| f.cookie.origin() == Some(Origin::Rule(5)))
        .map(|f| f.hard_timeout)
        .collect();
    assert!(!timeouts.is_empty());
    assert!(timeouts.iter().all(|&t| t == 3600), "{timeouts:?}");
    assert_eq!(
        net.compiled.next_refresh,
        Some(late + Duration::from_secs(3600))
    );
    connects(&mut net, JUMP, WEB2, 22);
    // The switch removes the rule by itself when the hour is up, controller
    // or not.
    for switch in &mut net.switches {
        switch.advance(Duration::from_secs(3600));
    }
    assert_eq!(
        net.send(1, &tcp(JUMP, WEB2, 40001, 22)),
        denied(DenyReason::NoRule)
    );

    // Compiled after the deadline, the rule is not there at all.
    let after = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    let mut net = Net::at(after);
    assert!(
        net.compiled
            .bridges
            .iter()
            .flat_map(|b| &b.flows)
            .all(|f| f.cookie.origin() != Some(Origin::Rule(5)))
    );
    assert!(
        net.compiled.warnings.iter().any(|w| w.contains("expired")),
        "{:?}",
        net.compiled.warnings
    );
    assert_eq!(net.compiled.next_refresh, None);
    assert_eq!(
        net.send(1, &tcp(JUMP, WEB2, 40000, 22)),
        denied(DenyReason::NoRule)
    );
}

#[test]
fn every_flow_and_meter_encodes_as_openflow() {
    let compiled = compiled_at(start());
    for bridge in &compiled.bridges {
        assert!(bridge.flows.len() > 50, "{}", bridge.flows.len());
        for flow in &bridge.flows {
            assert_eq!(flow.table_id, flow.stage.table_id());
            assert_eq!(flow.cookie.version(), VERSION);
            flow.match_
                .validate()
                .unwrap_or_else(|e| panic!("{flow}: {e}"));
            for version in [Version::OF13, Version::OF14] {
                let msg = Message::new(version, 1, Body::FlowMod(flow.to_flow_mod()));
                let bytes = msg.encode().unwrap_or_else(|e| panic!("{flow}: {e}"));
                assert_eq!(Message::decode(&bytes).unwrap(), msg);
            }
        }
        for meter in &bridge.meters {
            let msg = Message::new(Version::OF13, 1, Body::MeterMod(meter.to_meter_mod()));
            msg.encode().unwrap();
        }
        // No two flows share a table, priority and match: each would
        // replace the other on the switch.
        let mut keys = std::collections::HashSet::new();
        for flow in &bridge.flows {
            assert!(
                keys.insert((flow.table_id, flow.priority, flow.match_.to_string())),
                "duplicate {flow}"
            );
        }
    }
}

#[test]
fn compilation_is_deterministic_and_versioned() {
    let a = compiled_at(start());
    let b = compiled_at(start());
    assert_eq!(a, b);
    let policy = Policy::parse(POLICY, "three-tier.toml", start()).unwrap();
    let v8 = compile(
        &policy,
        &inventory(),
        &CompileSettings {
            version: 8,
            ..CompileSettings::default()
        },
        start(),
    )
    .unwrap();
    let (cookie, mask) = Cookie::version_filter(8);
    assert!(
        v8.bridges
            .iter()
            .flat_map(|b| &b.flows)
            .all(|f| f.cookie.0 & mask == cookie)
    );
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
}
