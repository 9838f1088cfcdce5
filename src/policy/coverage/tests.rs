use std::time::{Duration, UNIX_EPOCH};

use augur_flows::{Aggregator, FlowRecord, Timestamp, WindowConfig};
use proptest::prelude::*;

use super::*;
use crate::inventory::Inventory;
use crate::policy::eval::{Packet, Switch};
use crate::policy::{CompileSettings, Cookie, Origin, compile};

const POLICY: &str = include_str!("../../../examples/policy/three-tier.toml");
const INVENTORY: &str = include_str!("../../../examples/policy/three-tier-inventory.toml");

/// 2025-01-01T00:00:00Z: the maintenance rule (expiring 2030) is live.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_735_689_600)
}

fn inventory() -> Inventory {
    toml::from_str(INVENTORY).unwrap()
}

/// The endpoint table as the observer fills it: every VM with its labels.
fn table(inventory: &Inventory) -> Endpoints {
    let mut endpoints = Endpoints::new();
    for vm in &inventory.vms {
        endpoints.set_labels(
            &FlowEndpoint::vm(&vm.id.0),
            vm.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
    }
    endpoints
}

fn key(endpoints: &Endpoints, src: &str, dst: &str, protocol: Protocol, port: u16) -> FlowKey {
    let id = |s: &str| endpoints.get(&s.parse().unwrap()).unwrap();
    FlowKey {
        src: id(src),
        dst: id(dst),
        protocol,
        service_port: port,
    }
}

fn parse(text: &str) -> Policy {
    Policy::parse(text, "p.toml", start()).unwrap()
}

#[test]
fn rules_cover_keys_as_the_policy_reads() {
    let inventory = inventory();
    let mut endpoints = table(&inventory);
    endpoints.intern(&"192.0.2.7".parse().unwrap());
    endpoints.intern(&"198.51.100.1".parse().unwrap());
    let policy = parse(POLICY);
    let coverage = Coverage::new(&policy, &endpoints);
    let at = start();
    let k = |s, d, p, port| key(&endpoints, s, d, p, port);
    let tcp = Protocol::TCP;
    assert_eq!(
        coverage.covering_rule(&k("192.0.2.7", "web-2", tcp, 80), at),
        Some(0)
    );
    assert_eq!(
        coverage.covering_rule(&k("198.51.100.1", "web-2", tcp, 80), at),
        None
    );
    assert_eq!(
        coverage.covering_rule(&k("web-1", "app-2", tcp, 8042), at),
        Some(1)
    );
    assert_eq!(
        coverage.covering_rule(&k("web-1", "app-2", tcp, 8081), at),
        None
    );
    assert_eq!(
        coverage.covering_rule(&k("web-1", "app-2", Protocol::UDP, 8042), at),
        None
    );
    assert_eq!(
        coverage.covering_rule(&k("app-1", "db-2", Protocol::UDP, 5353), at),
        Some(3)
    );
    assert_eq!(
        coverage.covering_rule(&k("app-1", "web-1", tcp, 8080), at),
        None
    );
    // By VM id, until it expires.
    assert_eq!(
        coverage.covering_rule(&k("jump-1", "db-1", tcp, 22), at),
        Some(5)
    );
    let expiry = UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    assert_eq!(
        coverage.covering_rule(
            &k("jump-1", "db-1", tcp, 22),
            expiry - Duration::from_millis(500)
        ),
        None,
        "less than a second left: the compiler drops it"
    );
    assert_eq!(
        coverage.covering_rule_ever(&k("jump-1", "db-1", tcp, 22)),
        Some(5)
    );
    // The hypervisor's ping rule names the LOCAL port: nothing at key level.
    assert!(coverage.members(4, true).is_empty());
    assert_eq!(coverage.members(4, false).len(), 6);
    assert_eq!(coverage.pair_count(1), 4);
    let (web1, app2) = (
        k("web-1", "app-2", tcp, 1).src,
        k("web-1", "app-2", tcp, 1).dst,
    );
    assert_eq!(coverage.rules_between(web1, app2, at), [1]);
    assert!(coverage.rules_between(app2, web1, at).is_empty());
}

#[test]
fn the_first_rule_decides_and_icmp_covers_both_versions() {
    let policy = parse(
        "[[allow]]\nfrom = \"label:tier=web\"\nto = \"vm:db-1\"\nproto = \"ip\"\n\
         [[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:db-1\"\nproto = \"tcp\"\nport = 5432\n\
         [[allow]]\nfrom = \"vm:app-1\"\nto = \"vm:db-1\"\nproto = \"icmp\"\n",
    );
    let endpoints = table(&inventory());
    let coverage = Coverage::new(&policy, &endpoints);
    let k = |s, d, p, port| key(&endpoints, s, d, p, port);
    let at = start();
    assert_eq!(
        coverage.covering_rule(&k("web-1", "db-1", Protocol::TCP, 5432), at),
        Some(0)
    );
    assert_eq!(
        coverage.covering_rule(&k("web-2", "db-1", Protocol(47), 0), at),
        Some(0)
    );
    assert_eq!(
        coverage.covering_rule(&k("app-1", "db-1", Protocol::ICMP, 8), at),
        Some(2)
    );
    assert_eq!(
        coverage.covering_rule(&k("app-1", "db-1", Protocol::ICMPV6, 128), at),
        Some(2)
    );
    assert_eq!(
        coverage.covering_rule(&k("app-1", "db-1", Protocol::TCP, 5432), at),
        None
    );
}

#[test]
fn endpoints_added_later_are_taken_in_by_update() {
    let policy = parse(
        "[endpoints.backup]\ncidrs = [\"203.0.113.0/24\"]\n\
         [[allow]]\nfrom = \"label:tier=web\"\nto = \"backup\"\nproto = \"tcp\"\nport = 873\n",
    );
    let mut endpoints = table(&inventory());
    let mut coverage = Coverage::new(&policy, &endpoints);
    endpoints.set_labels(&FlowEndpoint::vm("web-3"), [("tier", "web")]);
    endpoints.intern(&"203.0.113.9".parse().unwrap());
    let k = key(&endpoints, "web-3", "203.0.113.9", Protocol::TCP, 873);
    assert_eq!(
        coverage.covering_rule(&k, start()),
        None,
        "not yet resolved"
    );
    coverage.update(&policy, &endpoints);
    assert_eq!(coverage.covering_rule(&k, start()), Some(0));
}

#[test]
fn usage_credits_the_deciding_rule_with_its_keys_last_use() {
    let policy = parse(POLICY);
    let inventory = inventory();
    let mut agg = Aggregator::new(WindowConfig::default());
    *agg.endpoints_mut() = table(&inventory);
    let record = |t: i64, src: &str, dst: &str, port: u16| {
        let (src, dst) = (FlowEndpoint::vm(src), FlowEndpoint::vm(dst));
        FlowRecord::tcp_connection(Timestamp::from_secs(t), src, dst, port, 100, 1)
    };
    agg.ingest(&[
        record(1_000, "web-1", "app-1", 8080),
        record(5_000, "web-2", "app-1", 8000),
        record(5_010, "app-1", "db-1", 5432),
    ]);
    agg.close_window(10_000);
    let coverage = Coverage::new(&policy, agg.endpoints());
    let usage = coverage.usage(agg.key_activity());
    assert_eq!(usage.len(), policy.rules.len());
    assert_eq!(usage[1].keys.len(), 2);
    assert_eq!(usage[1].last_used, Some(5_000));
    assert_eq!(usage[2].keys.len(), 1);
    assert!(usage[0].keys.is_empty() && usage[0].last_used.is_none());
    assert!(usage[5].keys.is_empty());
}

/// What the compiled pipeline does with the first packet of a connection:
/// the rule whose ACL flow admitted it, if any.
fn pipeline_rule(
    compiled: &crate::policy::CompiledPolicy,
    inventory: &Inventory,
    bridge: &str,
    remote_macs: &[augur_openflow::MacAddr],
    packet: &Packet,
) -> Option<u32> {
    let mut switch = Switch::new(compiled.bridge(bridge).unwrap(), inventory);
    for mac in remote_macs {
        switch.learn(&mac.to_string(), 10);
    }
    let outcome = switch.process(packet);
    outcome.trace.iter().find_map(|step| {
        match Cookie::from_raw(step.cookie?).and_then(Cookie::origin) {
            Some(Origin::Rule(n)) if step.table_id == 5 => Some(n),
            _ => None,
        }
    })
}

/// Every VM pair (and clients from outside) × protocols × ports: the rule
/// [`Coverage`] names is the rule whose flow admits the packet.
fn agrees_with_the_pipeline(policy: &Policy, ports: &[u16]) -> (usize, usize) {
    let inventory = inventory();
    let at = start();
    let compiled = compile(policy, &inventory, &CompileSettings::default(), at).unwrap();
    let mut endpoints = table(&inventory);
    let clients = ["192.0.2.7", "198.51.100.1", "203.0.113.5"];
    for c in clients {
        endpoints.intern(&c.parse().unwrap());
    }
    let coverage = Coverage::new(policy, &endpoints);
    let (mut allowed, mut checked) = (0, 0);
    // Sources: each VM on its own bridge and port; clients on s1's port 20.
    let mut sources: Vec<(String, String, u32, String, String)> = Vec::new();
    for vm in &inventory.vms {
        let iface = &vm.interfaces[0];
        let ip = iface.ips.iter().find(|ip| ip.is_ipv4()).unwrap();
        sources.push((
            vm.id.0.clone(),
            iface.bridge.clone(),
            iface.ofport.0,
            iface.mac.to_string(),
            ip.to_string(),
        ));
    }
    for c in clients {
        sources.push((
            c.into(),
            "s1".into(),
            20,
            "02:00:00:00:0c:01".into(),
            c.into(),
        ));
    }
    for (src, bridge, in_port, src_mac, src_ip) in &sources {
        let remote: Vec<_> = inventory
            .vms
            .iter()
            .flat_map(|vm| &vm.interfaces)
            .filter(|i| &i.bridge != bridge)
            .map(|i| i.mac)
            .collect();
        for dst in &inventory.vms {
            if dst.id.0 == *src {
                continue;
            }
            let iface = &dst.interfaces[0];
            let dst_ip = iface
                .ips
                .iter()
                .find(|ip| ip.is_ipv4())
                .unwrap()
                .to_string();
            let dst_mac = iface.mac.to_string();
            let mut probes: Vec<(Protocol, u16, Packet)> = Vec::new();
            for &port in ports {
                probes.push((
                    Protocol::TCP,
                    port,
                    Packet::tcp(*in_port, src_mac, &dst_mac, src_ip, &dst_ip, 40000, port),
                ));
                probes.push((
                    Protocol::UDP,
                    port,
                    Packet::udp(*in_port, src_mac, &dst_mac, src_ip, &dst_ip, 40000, port),
                ));
            }
            probes.push((
                Protocol::ICMP,
                8,
                Packet::ping(*in_port, src_mac, &dst_mac, src_ip, &dst_ip),
            ));
            for (protocol, port, packet) in probes {
                let k = key(&endpoints, src, &dst.id.0, protocol, port);
                let expected = pipeline_rule(&compiled, &inventory, bridge, &remote, &packet);
                assert_eq!(
                    coverage.covering_rule(&k, at),
                    expected,
                    "{src} -> {} {protocol}/{port}",
                    dst.id
                );
                checked += 1;
                allowed += usize::from(expected.is_some());
            }
        }
    }
    (allowed, checked)
}

const PORTS: [u16; 9] = [22, 80, 443, 5353, 5432, 7999, 8000, 8042, 8080];

#[test]
fn coverage_agrees_with_the_compiled_three_tier_example() {
    let (allowed, checked) = agrees_with_the_pipeline(&parse(POLICY), &PORTS);
    // 10 VM pairs (3 sources x ...) are allowed somewhere; both outcomes occur.
    assert!(allowed > 20 && allowed < checked, "{allowed} of {checked}");
}

#[test]
fn inline_selectors_compile_and_cover_like_declared_groups() {
    let inline = POLICY
        .replace("from = \"web\"", "from = \"label:tier=web\"")
        .replace("to = \"web\"", "to = \"label:tier=web\"")
        .replace("from = \"app\"", "from = \"label:tier=app\"")
        .replace("to = \"app\"", "to = \"label:tier=app\"")
        .replace("to = \"db\"", "to = \"label:tier=db\"")
        .replace("from = \"admin\"", "from = \"vm:jump-1\"")
        .replace(
            "[\"web\", \"app\", \"db\"]",
            "[\"label:tier=web\", \"label:tier=app\", \"label:tier=db\"]",
        );
    let declared = agrees_with_the_pipeline(&parse(POLICY), &PORTS);
    let inline = parse(&inline);
    assert!(
        inline
            .rules
            .iter()
            .all(|r| r.from.iter().chain(&r.to).all(|n| {
                n.starts_with("label:") || n.starts_with("vm:") || n == "clients" || n == "host"
            }))
    );
    assert_eq!(agrees_with_the_pipeline(&inline, &PORTS), declared);
}

/// A rule over the example inventory's selectors.
fn arb_rule() -> impl Strategy<Value = String> {
    let selector = prop::sample::select(vec![
        "web",
        "app",
        "db",
        "admin",
        "clients",
        "label:tier=web",
        "label:tier=db",
        "label:role=admin",
        "vm:app-2",
        "vm:web-1",
        "wide",
    ]);
    let proto = prop::sample::select(vec!["tcp", "udp", "icmp", "ip"]);
    let ports = prop::option::of((1u16..9000, 0u16..600));
    (
        prop::collection::vec(selector.clone(), 1..3),
        prop::collection::vec(selector, 1..3),
        proto,
        ports,
    )
        .prop_map(|(from, to, proto, ports)| {
            let list = |names: Vec<&str>| {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("[{}]", quoted.join(", "))
            };
            let port = match (proto, ports) {
                ("tcp" | "udp", Some((first, span))) => {
                    format!("port = \"{first}-{}\"\n", first.saturating_add(span))
                }
                _ => String::new(),
            };
            format!(
                "[[allow]]\nfrom = {}\nto = {}\nproto = \"{proto}\"\n{port}",
                list(from),
                list(to)
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random policies over the example's groups, selectors and CIDRs: the
    /// key-level answer is the pipeline's.
    #[test]
    fn coverage_agrees_with_the_pipeline_on_random_policies(
        rules in prop::collection::vec(arb_rule(), 1..6)
    ) {
        let head = POLICY.split("[[allow]]").next().unwrap();
        let text = format!(
            "{head}[endpoints.wide]\ncidrs = [\"192.0.0.0/8\", \"203.0.113.0/24\"]\n{}",
            rules.join("")
        );
        agrees_with_the_pipeline(&parse(&text), &[22, 80, 5432, 8080]);
    }
}
