use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::inventory::VmId;
use crate::policy::{Rate, RateUnit};
use crate::recommend::Opening;

fn vm(id: &str) -> Peer {
    Peer::Selector(Selector::Vm(VmId::from(id)))
}

fn label(key: &str, value: &str) -> Peer {
    Peer::Selector(Selector::Label {
        key: key.into(),
        value: value.into(),
    })
}

fn rule(from: Peer, to: Peer, proto: Proto, ports: Option<(u16, u16)>) -> Opening {
    Opening {
        from: vec![from],
        to: vec![to],
        proto,
        ports: ports.map(|(first, last)| PortRange { first, last }),
        rate: None,
        expires: None,
        name: None,
    }
}

fn add(from: Peer, to: Peer, proto: Proto, port: Option<u16>) -> PolicyChange {
    PolicyChange::AddPair {
        rule: rule(from, to, proto, port.map(|p| (p, p))),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A confident, observed, one-pair change from a web VM to an app VM.
fn seen() -> RiskContext {
    RiskContext {
        probability: 0.95,
        observed: true,
        source_scanning: false,
        pairs: 1,
        src_labels: labels(&[("tier", "web")]),
        dst_labels: labels(&[("tier", "app")]),
    }
}

fn web_to_app(port: u16) -> PolicyChange {
    add(vm("web-1"), vm("app-1"), Proto::Tcp, Some(port))
}

fn factors(a: &RiskAssessment) -> Vec<RiskFactor> {
    a.factors.iter().map(|(f, _)| f.clone()).collect()
}

fn contribution(a: &RiskAssessment, want: impl Fn(&RiskFactor) -> bool) -> f64 {
    a.factors
        .iter()
        .find(|(f, _)| want(f))
        .map(|(_, c)| *c)
        .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn the_documented_examples_score_as_documented() {
    let s = RiskSettings::default();
    let a = assess(&web_to_app(8080), &seen(), &s);
    assert!(close(a.score.get(), 0.3), "{a:?}");
    assert_eq!(a.level, RiskLevel::Low);
    // A new web VM whose peers use the app tier: its key is observed for
    // the label (the recommender says so), so it scores as seen.
    let never_seen = RiskContext {
        observed: false,
        ..seen()
    };
    let a = assess(&web_to_app(8080), &never_seen, &s);
    assert!(close(a.score.get(), 1.0 - 0.7 * 0.5), "{a:?}");
    assert_eq!(a.level, RiskLevel::High);
    let new_vm = never_seen;
    let a = assess(&web_to_app(22), &seen(), &s);
    assert!(a.score.get() >= 0.6 && a.level == RiskLevel::High, "{a:?}");
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let a = assess(
        &add(vm("web-1"), Peer::Address(ip), Proto::Tcp, Some(443)),
        &new_vm,
        &s,
    );
    assert!(close(a.score.get(), 1.0 - 0.6 * 0.5), "{a:?}");
    assert_eq!(a.level, RiskLevel::High);
}

#[test]
fn sensitive_ports_are_named_and_ranges_find_them() {
    let s = RiskSettings::default();
    let a = assess(&web_to_app(22), &seen(), &s);
    assert!(factors(&a).contains(&RiskFactor::SensitivePort {
        port: 22,
        name: "ssh".into()
    }));
    assert!(close(
        contribution(&a, |f| matches!(f, RiskFactor::SensitivePort { .. })),
        0.6
    ));
    // A range meets msrpc (135) and netbios (137-139).
    let change = PolicyChange::AddPair {
        rule: rule(vm("a"), vm("b"), Proto::Udp, Some((130, 138))),
    };
    let names: Vec<RiskFactor> = factors(&assess(&change, &seen(), &s))
        .into_iter()
        .filter(|f| matches!(f, RiskFactor::SensitivePort { .. }))
        .collect();
    assert_eq!(
        names,
        [
            RiskFactor::SensitivePort {
                port: 135,
                name: "msrpc".into()
            },
            RiskFactor::SensitivePort {
                port: 137,
                name: "netbios".into()
            },
        ]
    );
    // `ip` opens every port, ssh included; ICMP has none.
    assert!(
        factors(&assess(
            &add(vm("a"), vm("b"), Proto::Ip, None),
            &seen(),
            &s
        ))
        .iter()
        .any(|f| matches!(f, RiskFactor::SensitivePort { port: 22, .. }))
    );
    assert!(
        !factors(&assess(
            &add(vm("a"), vm("b"), Proto::Icmp, None),
            &seen(),
            &s
        ))
        .iter()
        .any(|f| matches!(f, RiskFactor::SensitivePort { .. }))
    );
    assert!(
        !factors(&assess(&web_to_app(8080), &seen(), &s))
            .iter()
            .any(|f| matches!(f, RiskFactor::SensitivePort { .. }))
    );
    assert_eq!(s.sensitive_port(5986), Some("winrm"));
    assert_eq!(s.sensitive_port(8080), None);
}

#[test]
fn boundary_labels_count_once_per_key() {
    let s = RiskSettings::default();
    let same_tier = RiskContext {
        dst_labels: labels(&[("tier", "web")]),
        ..seen()
    };
    assert!(assess(&web_to_app(8080), &same_tier, &s).factors.is_empty());
    let tenants = RiskContext {
        src_labels: labels(&[("tier", "web"), ("tenant", "a")]),
        dst_labels: labels(&[("tier", "app")]),
        ..seen()
    };
    let a = assess(&web_to_app(8080), &tenants, &s);
    assert_eq!(
        factors(&a),
        [
            RiskFactor::CrossesLabel {
                key: "tier".into(),
                from: "web".into(),
                to: "app".into()
            },
            RiskFactor::CrossesLabel {
                key: "tenant".into(),
                from: "a".into(),
                to: "-".into()
            },
        ]
    );
    assert!(close(a.score.get(), 1.0 - 0.7 * 0.7));
    // Keys that are not boundaries do not count.
    let roles = RiskContext {
        src_labels: labels(&[("role", "x")]),
        dst_labels: labels(&[("role", "y")]),
        ..seen()
    };
    assert!(assess(&web_to_app(8080), &roles, &s).factors.is_empty());
}

#[test]
fn breadth_grows_with_pairs_and_ports() {
    let s = RiskSettings::default();
    let plain = RiskContext {
        dst_labels: labels(&[("tier", "web")]),
        ..seen()
    };
    assert!(assess(&web_to_app(8080), &plain, &s).factors.is_empty());
    let wide = RiskContext {
        pairs: 10,
        ..plain.clone()
    };
    let a = assess(&web_to_app(8080), &wide, &s);
    assert_eq!(
        factors(&a),
        [RiskFactor::Breadth {
            pairs: 10,
            ports: 1
        }]
    );
    assert!(close(a.score.get(), 0.35));
    let ports = PolicyChange::AddPair {
        rule: rule(vm("a"), vm("b"), Proto::Tcp, Some((8000, 8004))),
    };
    let a = assess(&ports, &plain, &s);
    assert_eq!(factors(&a), [RiskFactor::Breadth { pairs: 1, ports: 5 }]);
    assert!(close(a.score.get(), 0.35 * 4.0 / 9.0));
    // Removing a wide rule: breadth is all that counts.
    let remove = PolicyChange::RemoveRule {
        rule: 3,
        label: "rule #3".into(),
    };
    let context = RiskContext {
        probability: 0.0,
        observed: false,
        pairs: 40,
        ..seen()
    };
    let a = assess(&remove, &context, &s);
    assert_eq!(
        factors(&a),
        [RiskFactor::Breadth {
            pairs: 40,
            ports: 1
        }]
    );
}

#[test]
fn novelty_low_confidence_and_limit_increase() {
    let s = RiskSettings::default();
    let same_tier = RiskContext {
        dst_labels: labels(&[("tier", "web")]),
        ..seen()
    };
    let novel = RiskContext {
        observed: false,
        ..same_tier.clone()
    };
    assert_eq!(
        factors(&assess(&web_to_app(8080), &novel, &s)),
        [RiskFactor::Novelty]
    );
    let unsure = RiskContext {
        probability: 0.4,
        ..same_tier.clone()
    };
    let a = assess(&web_to_app(8080), &unsure, &s);
    assert_eq!(factors(&a), [RiskFactor::LowConfidence { p: 0.4 }]);
    assert!(close(a.score.get(), 0.4 * 0.5));
    let raise = |current: u32, proposed: u32| PolicyChange::SetLimit {
        rule: 2,
        label: "rule #2".into(),
        rewritten: Opening {
            rate: Some(Rate {
                rate: proposed,
                unit: RateUnit::Kbps,
                burst: 0,
            }),
            ..rule(vm("a"), vm("b"), Proto::Tcp, Some((8080, 8080)))
        },
        current: Some(Rate {
            rate: current,
            unit: RateUnit::Kbps,
            burst: 0,
        }),
        proposed: Rate {
            rate: proposed,
            unit: RateUnit::Kbps,
            burst: 0,
        },
    };
    let a = assess(&raise(10_000, 100_000), &same_tier, &s);
    assert_eq!(factors(&a), [RiskFactor::LimitIncrease { factor: 10.0 }]);
    assert!(close(a.score.get(), 0.3));
    let a = assess(&raise(10_000, 12_000), &same_tier, &s);
    assert!(a.score.get() < 0.03, "{a:?}");
}

#[test]
fn external_endpoints_and_scanning_sources() {
    let s = RiskSettings::default();
    let ip: IpAddr = "198.51.100.4".parse().unwrap();
    let a = assess(
        &add(Peer::Address(ip), vm("web-1"), Proto::Tcp, Some(443)),
        &seen(),
        &s,
    );
    assert_eq!(factors(&a), [RiskFactor::InboundFromOutside]);
    assert_eq!(a.level, RiskLevel::High, "inbound from outside: 0.5");
    let a = assess(
        &add(vm("web-1"), Peer::Address(ip), Proto::Tcp, Some(443)),
        &seen(),
        &s,
    );
    assert_eq!(factors(&a), [RiskFactor::ExternalEndpoint]);
    assert_eq!(
        a.level,
        RiskLevel::Low,
        "an external destination seen before: 0.4"
    );
    // A scanning source is high even when its weight says nothing.
    let mut quiet = RiskSettings::default();
    quiet.weights.scanning_source = Unit::new(0.0).unwrap();
    let scanning = RiskContext {
        source_scanning: true,
        dst_labels: labels(&[("tier", "web")]),
        ..seen()
    };
    let a = assess(&web_to_app(8080), &scanning, &quiet);
    assert_eq!(factors(&a), [RiskFactor::ScanningSource]);
    assert_eq!(a.score.get(), 0.0);
    assert_eq!(a.level, RiskLevel::High);
    assert_eq!(assess(&web_to_app(8080), &scanning, &s).score.get(), 1.0);
}

#[test]
fn overrides_forbid_or_force_review_whatever_the_score() {
    let s = RiskSettings {
        overrides: vec![
            RiskOverride {
                from: "*".into(),
                to: "label:tenant=payments".into(),
                proto: None,
                ports: None,
                action: OverrideAction::Forbid,
            },
            RiskOverride {
                from: "label:tier=web".into(),
                to: "*".into(),
                proto: Some(OverrideProto::Tcp),
                ports: Some(Ports(PortRange {
                    first: 9000,
                    last: 9100,
                })),
                action: OverrideAction::Review,
            },
            RiskOverride {
                from: "vm:ops-1".into(),
                to: "*".into(),
                proto: None,
                ports: None,
                action: OverrideAction::Review,
            },
        ],
        ..RiskSettings::default()
    };
    let calm = RiskContext {
        dst_labels: labels(&[("tier", "web")]),
        ..seen()
    };
    // Harmless by score; the second override wants review.
    let a = assess(&web_to_app(9050), &calm, &s);
    assert!(a.score.get() < 0.5);
    assert_eq!(a.level, RiskLevel::High);
    assert_eq!(
        factors(&a),
        [RiskFactor::Override {
            index: 1,
            action: OverrideAction::Review
        }]
    );
    // Outside its ports or protocol it does not apply.
    assert_eq!(assess(&web_to_app(8080), &calm, &s).level, RiskLevel::Low);
    assert_eq!(
        assess(
            &add(vm("web-1"), vm("app-1"), Proto::Udp, Some(9050)),
            &calm,
            &s
        )
        .level,
        RiskLevel::Low
    );
    // A label selector matches a destination label rule and a VM carrying
    // the label alike.
    let payments = RiskContext {
        dst_labels: labels(&[("tier", "web"), ("tenant", "payments")]),
        src_labels: labels(&[("tier", "web"), ("tenant", "payments")]),
        ..seen()
    };
    assert_eq!(
        assess(&web_to_app(8080), &payments, &s).level,
        RiskLevel::Forbidden
    );
    let to_label = add(vm("x"), label("tenant", "payments"), Proto::Tcp, Some(80));
    assert_eq!(assess(&to_label, &calm, &s).level, RiskLevel::Forbidden);
    // By VM id.
    let ops = add(vm("ops-1"), vm("db-1"), Proto::Icmp, None);
    assert_eq!(assess(&ops, &calm, &s).level, RiskLevel::High);
    assert_eq!(
        assess(&add(vm("ops-2"), vm("db-1"), Proto::Icmp, None), &calm, &s).level,
        RiskLevel::Low
    );
}

#[test]
fn risk_settings_come_from_the_daemon_configuration() {
    let text = "policy = \"p.toml\"\n[risk]\nhigh_threshold = 0.7\nboundary_labels = [\"tenant\"]\n\
                [[risk.override]]\nto = \"label:tenant=payments\"\naction = \"forbid\"\n\
                [[risk.override]]\nfrom = \"vm:ops-1\"\nports = \"1-1023\"\nproto = \"tcp\"\naction = \"review\"\n";
    let loaded =
        crate::daemon::config::load_text(text, Some(Path::new("augur.toml")), Vec::new()).unwrap();
    let risk = &loaded.config.risk;
    assert_eq!(risk.high_threshold.get(), 0.7);
    assert_eq!(risk.boundary_labels, ["tenant"]);
    assert_eq!(risk.overrides.len(), 2);
    assert_eq!(risk.overrides[0].from, "*");
    assert_eq!(
        risk.overrides[1].ports,
        Some(Ports(PortRange {
            first: 1,
            last: 1023
        }))
    );
    assert_eq!(risk.sensitive_ports.len(), 18, "defaults kept");

    let env = vec![("AUGUR_RISK__HIGH_THRESHOLD".to_owned(), "0.4".to_owned())];
    let loaded = crate::daemon::config::load_text(
        "policy = \"p.toml\"\n",
        Some(Path::new("augur.toml")),
        env,
    )
    .unwrap();
    assert_eq!(loaded.config.risk.high_threshold.get(), 0.4);

    let bad = |text: &str| {
        crate::daemon::config::load_text(text, Some(Path::new("augur.toml")), Vec::new())
            .unwrap_err()
            .to_string()
    };
    let e = bad("policy = \"p.toml\"\n[risk.weights]\nnovelty = 1.5\n");
    assert!(
        e.starts_with("augur.toml:3:11: risk.weights.novelty: 1.5 is not between 0 and 1"),
        "{e}"
    );
    let e = bad("policy = \"p.toml\"\n[[risk.override]]\nfrom = \"web\"\naction = \"forbid\"\n");
    assert!(
        e.contains("risk.override.0.from: `web` is not \"*\", vm:ID or label:KEY=VALUE"),
        "{e}"
    );
    let e = bad("policy = \"p.toml\"\n[[risk.override]]\naction = \"allow\"\n");
    assert!(e.contains("unknown variant `allow`"), "{e}");
    let e =
        bad("policy = \"p.toml\"\n[risk]\nsensitive_ports = [{ name = \"x\", ports = \"9-3\" }]\n");
    assert!(e.contains("is not a port"), "{e}");
}
