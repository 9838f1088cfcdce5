use std::collections::HashSet;
use std::time::UNIX_EPOCH;

use augur_flows::{FlowRecord, Timestamp, Verdict, WindowConfig};

use super::*;
use crate::policy::coverage::Coverage;
use crate::predict::Evidence;
use crate::risk::{RiskFactor, RiskLevel, RiskSettings};

const DAY: i64 = 86_400;
/// 2025-02-10T00:00:00Z.
const NOW: i64 = 1_739_145_600;

/// The VMs of the tests and their labels.
const VMS: &[(&str, &str)] = &[
    ("web-1", "web"),
    ("web-2", "web"),
    ("web-3", "web"),
    ("app-1", "app"),
    ("app-2", "app"),
    ("db-1", "db"),
];

/// A history, a policy and predictions, assembled by each test.
struct World {
    agg: Aggregator,
    records: Vec<FlowRecord>,
    policy: Policy,
    predictions: Vec<Prediction>,
    scanning: HashSet<EndpointId>,
}

fn endpoint(name: &str) -> FlowEndpoint {
    name.parse().unwrap()
}

impl World {
    fn new(policy: &str) -> World {
        let mut agg = Aggregator::new(WindowConfig::default());
        agg.set_keep_closed(false);
        for (id, tier) in VMS {
            agg.endpoints_mut()
                .set_labels(&FlowEndpoint::vm(id), [("tier", *tier)]);
        }
        World {
            agg,
            records: Vec::new(),
            policy: Policy::parse(policy, "p.toml", UNIX_EPOCH).unwrap(),
            predictions: Vec::new(),
            scanning: HashSet::new(),
        }
    }

    fn id(&mut self, name: &str) -> EndpointId {
        self.agg.endpoints_mut().intern(&endpoint(name))
    }

    fn key(&mut self, src: &str, dst: &str, protocol: Protocol, port: u16) -> FlowKey {
        FlowKey {
            src: self.id(src),
            dst: self.id(dst),
            protocol,
            service_port: port,
        }
    }

    /// Traffic on a key at `t`.
    fn traffic(&mut self, t: i64, src: &str, dst: &str, port: u16, bytes: u64, verdict: Verdict) {
        let (ts, src, dst) = (Timestamp::from_secs(t), endpoint(src), endpoint(dst));
        self.records.push(FlowRecord {
            verdict,
            ..FlowRecord::tcp_connection(ts, src, dst, port, bytes, 10)
        });
    }

    fn predict(
        &mut self,
        src: &str,
        dst: &str,
        protocol: Protocol,
        port: u16,
        probability: f64,
        tweak: impl FnOnce(&mut Evidence),
    ) {
        let key = self.key(src, dst, protocol, port);
        let mut evidence = Evidence {
            source: CandidateSource::Seen,
            connections: 0,
            active_windows: 0,
            first_seen: None,
            last_seen: None,
            denied: 0,
            last_denied: None,
            periodicity: None,
            peer_support: 0.0,
            peers: 0,
            hour_share: 0.0,
            source_age_s: 30 * DAY,
            source_scanning: false,
            carried_payload: false,
            addresses: 1,
        };
        tweak(&mut evidence);
        self.predictions.push(Prediction {
            key,
            probability,
            evidence,
        });
    }

    fn run_with(&mut self, settings: &RecommendSettings) -> Vec<Recommendation> {
        let mut records = std::mem::take(&mut self.records);
        records.sort_by_key(|r| r.ts);
        for record in &records {
            self.agg.ingest(std::slice::from_ref(record));
        }
        self.agg.close_window(NOW);
        // What the predictor would say of each key's history.
        for p in &mut self.predictions {
            p.evidence.carried_payload = self
                .agg
                .activity_of(&p.key)
                .is_some_and(|a| a.carried_payload(256));
        }
        let coverage = Coverage::new(&self.policy, self.agg.endpoints());
        let input = RecommendInput {
            predictions: &self.predictions,
            aggregator: &self.agg,
            policy: &self.policy,
            coverage: &coverage,
            scanning: &self.scanning,
        };
        recommend(&input, settings, &RiskSettings::default(), NOW)
    }

    fn run(&mut self) -> Vec<Recommendation> {
        self.run_with(&RecommendSettings::default())
    }
}

fn kinds(recs: &[Recommendation]) -> Vec<&'static str> {
    recs.iter().map(|r| r.change.kind()).collect()
}

const TIERS: &str = "[groups.web]\nlabels = { tier = \"web\" }\n\
                     [groups.app]\nlabels = { tier = \"app\" }\n";

#[test]
fn an_uncovered_pair_is_added_and_a_covered_or_unlikely_one_is_not() {
    let mut w = World::new(&format!(
        "{TIERS}[[allow]]\nfrom = \"web\"\nto = \"app\"\nproto = \"tcp\"\nport = 8080\n"
    ));
    w.predict("web-1", "db-1", Protocol::TCP, 5432, 0.9, |_| {});
    w.predict("web-1", "app-1", Protocol::TCP, 8080, 0.99, |_| {});
    w.predict("app-1", "db-1", Protocol::TCP, 6000, 0.3, |_| {});
    let recs = w.run();
    assert_eq!(kinds(&recs), ["add_pair"]);
    let rec = &recs[0];
    assert_eq!(
        rec.change.to_string(),
        "add pair vm:web-1 -> vm:db-1 5432/tcp"
    );
    assert_eq!(
        rec.change.to_toml(),
        "[[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:db-1\"\nproto = \"tcp\"\nport = 5432\n"
    );
    assert_eq!(rec.probability, 0.9);
    // postgres across tiers, never seen.
    assert_eq!(rec.risk.level, RiskLevel::High);
    assert_eq!(rec.explanation, "predicted; p=0.90");
    let json = serde_json::to_value(rec).unwrap();
    assert_eq!(json["change"]["kind"], "add_pair");
    assert_eq!(json["change"]["rule"]["from"][0], "vm:web-1");
    assert_eq!(json["change"]["rule"]["ports"]["first"], 5432);
    assert_eq!(json["risk"]["level"], "high");
    assert_eq!(json["risk"]["factors"][0][0]["kind"], "sensitive_port");
    assert_eq!(json["id"], rec.id.as_str());
}

#[test]
fn a_pair_allowed_elsewhere_gets_a_port_or_a_protocol() {
    let mut w = World::new(
        "[[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:app-1\"\nproto = \"tcp\"\nport = 8080\n",
    );
    w.predict("web-1", "app-1", Protocol::TCP, 9090, 0.8, |_| {});
    w.predict("web-1", "app-1", Protocol::UDP, 53, 0.8, |_| {});
    let recs = w.run();
    let mut lines: Vec<String> = recs.iter().map(|r| r.change.to_string()).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "allow protocol vm:web-1 -> vm:app-1 53/udp (beside rule #0)",
            "open port vm:web-1 -> vm:app-1 9090/tcp (beside rule #0)",
        ]
    );
}

#[test]
fn every_member_of_a_label_becomes_one_label_rule() {
    let mut w = World::new("");
    for web in ["web-1", "web-2", "web-3"] {
        for app in ["app-1", "app-2"] {
            w.predict(web, app, Protocol::TCP, 8080, 0.9, |_| {});
        }
    }
    let recs = w.run();
    assert_eq!(kinds(&recs), ["label_rule"], "one rule, not six pair rules");
    let rec = &recs[0];
    assert_eq!(
        rec.change.to_toml(),
        "[[allow]]\nfrom = \"label:tier=web\"\nto = \"label:tier=app\"\nproto = \"tcp\"\nport = 8080\n"
    );
    assert_eq!(rec.keys.len(), 6);
    assert_eq!(rec.explanation, "3 of 3 web VMs use app:8080/tcp; p=0.90");
    assert!(
        rec.risk
            .factors
            .iter()
            .any(|(f, _)| *f == RiskFactor::Breadth { pairs: 6, ports: 1 })
    );
}

#[test]
fn a_new_member_joins_its_peers_with_a_label_rule() {
    // web-1 and web-2 reach app-1 by pair rules; web-3 is new.
    let mut w = World::new(
        "[[allow]]\nfrom = [\"vm:web-1\", \"vm:web-2\"]\nto = \"vm:app-1\"\nproto = \"tcp\"\nport = 8080\n",
    );
    for (n, web) in ["web-1", "web-2"].iter().enumerate() {
        for day in 1..5 {
            w.traffic(
                NOW - day * DAY + n as i64 * 60,
                web,
                "app-1",
                8080,
                5_000,
                Verdict::Allowed,
            );
        }
    }
    w.predict("web-3", "app-1", Protocol::TCP, 8080, 0.91, |e| {
        e.source = CandidateSource::NewVm;
        e.peers = 2;
        e.peer_support = 1.0;
    });
    let recs = w.run();
    assert_eq!(kinds(&recs), ["label_rule"]);
    assert_eq!(
        recs[0].explanation,
        "3 of 3 web VMs use app-1:8080/tcp; web-3 is new; p=0.91"
    );
    assert_eq!(
        recs[0].change,
        PolicyChange::LabelRule {
            rule: Opening {
                from: vec![Peer::Selector(Selector::Label {
                    key: "tier".into(),
                    value: "web".into()
                })],
                to: vec![Peer::Selector(Selector::Vm("app-1".into()))],
                proto: Proto::Tcp,
                ports: Some(PortRange::single(8080)),
                rate: None,
                expires: None,
                name: None,
            },
            new_members: vec!["web-3".into()],
        }
    );
    // Only observed peers count: without web-2's traffic, no label rule.
    let mut w = World::new(
        "[[allow]]\nfrom = [\"vm:web-1\", \"vm:web-2\"]\nto = \"vm:app-1\"\nproto = \"tcp\"\nport = 8080\n",
    );
    w.traffic(NOW - DAY, "web-1", "app-1", 8080, 5_000, Verdict::Allowed);
    w.predict("web-3", "app-1", Protocol::TCP, 8080, 0.91, |e| {
        e.source = CandidateSource::NewVm;
        e.peers = 2;
        e.peer_support = 0.5;
    });
    let recs = w.run();
    assert_eq!(kinds(&recs), ["add_pair"]);
    assert_eq!(
        recs[0].explanation,
        "web-3 is new; 1 of 2 label peers use it; p=0.91"
    );
}

#[test]
fn a_recurring_flow_gets_a_time_bound_opening() {
    let mut w = World::new("");
    let run_at = NOW + 2 * 3_600;
    let daily = |e: &mut Evidence| {
        e.connections = 42;
        e.first_seen = Some(NOW - 6 * DAY + 2 * 3_600);
        e.last_seen = Some(NOW - DAY + 2 * 3_600 + 120);
        e.active_windows = 6;
        e.periodicity = Some(Periodicity {
            period_s: 86_400.0,
            phase_s: Some(7_200.0),
            next_expected_s: Some(run_at as f64),
            confidence: 0.95,
            cycles: 6,
        });
    };
    // Yesterday's run carried the backup.
    let backed_up = |w: &mut World| {
        let yesterday = NOW - DAY + 2 * 3_600 + 120;
        w.traffic(
            yesterday,
            "db-1",
            "10.9.9.9",
            873,
            50_000_000,
            Verdict::Allowed,
        );
    };
    w.predict("db-1", "10.9.9.9", Protocol::TCP, 873, 0.97, daily);
    backed_up(&mut w);
    let recs = w.run();
    assert_eq!(kinds(&recs), ["time_bound"]);
    let rec = &recs[0];
    assert_eq!(
        rec.explanation,
        "seen 42 times in 6 days, daily at 02:00; p=0.97"
    );
    let PolicyChange::TimeBound {
        rule,
        open_at,
        run_at: at,
    } = &rec.change
    else {
        panic!("{:?}", rec.change)
    };
    assert_eq!((*open_at, *at), (run_at - 300, run_at));
    assert_eq!(rule.expires, Some(run_at + 3_600));
    assert_eq!(
        rec.change.to_toml(),
        "# add at 2025-02-10T01:55:00Z\n\
         [endpoints.addr-10-9-9-9]\ncidrs = [\"10.9.9.9/32\"]\n\n\
         [[allow]]\nfrom = \"vm:db-1\"\nto = \"addr-10-9-9-9\"\nproto = \"tcp\"\nport = 873\n\
         expires = 2025-02-10T03:00:00Z\n"
    );
    // The rendering is a policy file that covers the key until it expires.
    let policy = Policy::parse(&rule.to_toml(), "r.toml", UNIX_EPOCH).unwrap();
    let coverage = Coverage::new(&policy, w.agg.endpoints());
    let key = rec.keys[0];
    assert_eq!(coverage.covering_rule(&key, system_time(run_at)), Some(0));
    assert_eq!(
        coverage.covering_rule(&key, system_time(run_at + 3_600)),
        None
    );

    // Too far ahead, or not regular enough: a plain opening.
    for (next, confidence) in [(NOW + 2 * DAY, 0.95), (run_at, 0.5)] {
        let mut w = World::new("");
        w.predict("db-1", "10.9.9.9", Protocol::TCP, 873, 0.97, |e| {
            daily(e);
            if let Some(p) = e.periodicity.as_mut() {
                p.next_expected_s = Some(next as f64);
                p.confidence = confidence;
            }
        });
        backed_up(&mut w);
        assert_eq!(kinds(&w.run()), ["add_pair"]);
    }
}

#[test]
fn denied_attempts_explain_themselves() {
    let mut w = World::new("");
    // Rising over the last week: 1, 2, ... 7 attempts a day at 09:14.
    let mut total = 0;
    for day in 1..=7i64 {
        for n in 0..day {
            w.traffic(
                NOW - (8 - day) * DAY + 9 * 3_600 + 14 * 60 + n * 61,
                "app-2",
                "db-1",
                5432,
                0,
                Verdict::Denied,
            );
            total += 1;
        }
    }
    w.predict("app-2", "db-1", Protocol::TCP, 5432, 0.62, |e| {
        e.source = CandidateSource::Denied;
        e.denied = total;
    });
    let recs = w.run();
    assert_eq!(kinds(&recs), ["add_pair"]);
    assert_eq!(
        recs[0].explanation,
        "denied 28 times since 2025-02-03 09:14, rising; p=0.62"
    );
}

#[test]
fn a_limit_being_reached_is_raised_and_missing_ones_set_on_request() {
    let policy = "[[allow]]\nfrom = \"vm:app-1\"\nto = \"vm:db-1\"\nproto = \"tcp\"\nport = 5432\nrate = \"1Mbit\"\n\
                  [[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:app-1\"\nproto = \"tcp\"\nport = 8080\n";
    let fill = |w: &mut World, bytes: u64| {
        for n in 0..20 {
            w.traffic(
                NOW - 3_600 + n * 60,
                "app-1",
                "db-1",
                5432,
                bytes,
                Verdict::Allowed,
            );
            w.traffic(
                NOW - 3_600 + n * 60,
                "web-1",
                "app-1",
                8080,
                30_000,
                Verdict::Allowed,
            );
        }
    };
    // 7 MB per 60 s window: 933 kbit/s, 93 % of the 1 Mbit limit.
    let mut w = World::new(policy);
    fill(&mut w, 7_000_000);
    let recs = w.run();
    assert_eq!(kinds(&recs), ["set_limit"]);
    assert_eq!(
        recs[0].change.to_string(),
        "raise limit of rule #0 (line 1) from 1Mbit to 1400kbit"
    );
    assert_eq!(
        recs[0].explanation,
        "peak 933 kbit/s per 60s window over 1 pair(s) is 93% of the 1Mbit limit"
    );
    assert!(recs[0].risk.factors.iter().any(|(f, _)| matches!(
        f,
        RiskFactor::LimitIncrease { factor } if (factor - 1.4).abs() < 1e-9
    )));
    // Far below the limit: nothing.
    let mut w = World::new(policy);
    fill(&mut w, 1_000_000);
    assert!(w.run().is_empty());
    // Asked to limit everything: the unlimited rule gets one.
    let mut w = World::new(policy);
    fill(&mut w, 1_000_000);
    let settings = RecommendSettings {
        limit_unlimited: true,
        ..RecommendSettings::default()
    };
    let recs = w.run_with(&settings);
    assert_eq!(kinds(&recs), ["set_limit"]);
    assert_eq!(
        recs[0].change.to_string(),
        "set limit of rule #1 (line 7) to 6kbit"
    );
    assert!(recs[0].change.to_toml().contains("rate = \"6kbit\"\n"));
}

#[test]
fn rules_unused_for_long_are_removed_unless_predicted() {
    let policy = "[[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:db-1\"\nproto = \"tcp\"\nport = 5432\n\
                  [[allow]]\nfrom = \"vm:web-1\"\nto = \"vm:app-1\"\nproto = \"tcp\"\nport = 8080\n";
    let history = |w: &mut World| {
        w.traffic(NOW - 60 * DAY, "web-1", "db-1", 5432, 100, Verdict::Allowed);
        w.traffic(NOW - DAY, "web-1", "app-1", 8080, 100, Verdict::Allowed);
    };
    let mut w = World::new(policy);
    history(&mut w);
    let recs = w.run();
    assert_eq!(kinds(&recs), ["remove_rule"]);
    assert_eq!(recs[0].change.to_string(), "remove rule #0 (line 1)");
    assert_eq!(
        recs[0].explanation,
        "last used 2024-12-12T00:00:00Z (60 days ago); highest predicted need p=0.00"
    );
    assert_eq!(recs[0].risk.level, RiskLevel::Low);
    // Predicted to come back: kept.
    let mut w = World::new(policy);
    history(&mut w);
    w.predict("web-1", "db-1", Protocol::TCP, 5432, 0.3, |_| {});
    assert!(w.run().is_empty());
    // Too little history to call anything unused.
    let mut w = World::new(policy);
    w.traffic(NOW - DAY, "web-1", "app-1", 8080, 100, Verdict::Allowed);
    assert!(w.run().is_empty());
}

#[test]
fn a_wide_rule_mostly_unused_is_narrowed_to_its_use() {
    let mut w = World::new(&format!(
        "{TIERS}[[allow]]\nname = \"web to app\"\nfrom = \"web\"\nto = \"app\"\nproto = \"tcp\"\nport = \"8000-8080\"\n"
    ));
    w.traffic(
        NOW - 90 * DAY,
        "web-2",
        "app-2",
        8000,
        100,
        Verdict::Allowed,
    );
    w.traffic(NOW - DAY, "web-1", "app-1", 8080, 100, Verdict::Allowed);
    let recs = w.run();
    assert_eq!(kinds(&recs), ["narrow_rule"]);
    assert_eq!(
        recs[0].change.to_string(),
        "narrow rule #0 \"web to app\" to vm:web-1 -> vm:app-1 8080/tcp"
    );
    assert_eq!(
        recs[0].explanation,
        "1 of 6 pairs and 1 of 81 ports used in the last 30 days; p=0.00"
    );
    let toml = recs[0].change.to_toml();
    assert!(
        toml.starts_with("# replaces rule #0 \"web to app\"\n[[allow]]\nname = \"web to app\"\n")
    );
    // A rule used by most of its pairs stays.
    let mut w = World::new(&format!(
        "{TIERS}[[allow]]\nfrom = \"web\"\nto = \"app\"\nproto = \"tcp\"\nport = 8080\n"
    ));
    w.traffic(
        NOW - 90 * DAY,
        "web-2",
        "app-2",
        8080,
        100,
        Verdict::Allowed,
    );
    for web in ["web-1", "web-2", "web-3"] {
        for app in ["app-1", "app-2"] {
            w.traffic(NOW - DAY, web, app, 8080, 100, Verdict::Allowed);
        }
    }
    assert!(w.run().is_empty());
}

#[test]
fn a_scanning_source_is_never_low_and_never_joins_a_label_rule() {
    let mut w = World::new("");
    for web in ["web-1", "web-2", "web-3"] {
        w.predict(web, "app-1", Protocol::TCP, 8080, 0.95, |e| {
            e.source_scanning = web == "web-3";
        });
    }
    w.predict("web-1", "db-1", Protocol::TCP, 9999, 0.95, |_| {});
    // The scanners' keys carried something once (their unanswered attempts
    // would be their scan, and not proposed at all).
    for (src, dst, port) in [
        ("web-1", "app-1", 8080),
        ("web-3", "app-1", 8080),
        ("web-1", "db-1", 9999),
    ] {
        w.traffic(NOW - DAY, src, dst, port, 10_000, Verdict::Allowed);
    }
    let flagged = w.id("web-1");
    w.scanning.insert(flagged);
    let recs = w.run();
    assert_eq!(recs.len(), 4, "{recs:#?}");
    for rec in &recs {
        assert_eq!(rec.change.kind(), "add_pair");
        let line = rec.change.to_string();
        if line.contains("vm:web-1 ") || line.contains("vm:web-3 ") {
            assert_eq!(rec.risk.level, RiskLevel::High, "{}", rec.one_line());
            assert!(
                rec.risk
                    .factors
                    .iter()
                    .any(|(f, _)| *f == RiskFactor::ScanningSource)
            );
        }
    }
    // web-2 is not scanning: its own opening is judged on its merits
    // (cross-tier, never seen working: 0.65, high, but not for scanning).
    let web2 = recs
        .iter()
        .find(|r| r.change.to_string().contains("vm:web-2"))
        .unwrap();
    assert!(
        !web2
            .risk
            .factors
            .iter()
            .any(|(f, _)| *f == RiskFactor::ScanningSource)
    );
    assert!(
        (web2.risk.score.get() - (1.0 - 0.7 * 0.5)).abs() < 1e-9,
        "{}",
        web2.one_line()
    );
}

#[test]
fn a_scanning_sources_fan_out_is_not_proposed() {
    let mut w = World::new("");
    // web-1 scans: attempts that never carried anything, and conversations
    // with single external addresses, are its scan, whatever their
    // probability.
    w.predict("web-1", "app-1", Protocol::TCP, 22, 0.95, |_| {});
    w.predict("web-1", "203.0.113.9", Protocol::TCP, 51_413, 0.95, |_| {});
    w.traffic(
        NOW - DAY,
        "web-1",
        "203.0.113.9",
        51_413,
        10_000,
        Verdict::Allowed,
    );
    // Its real conversation with a VM is still proposed (for review).
    w.predict("web-1", "app-1", Protocol::TCP, 8080, 0.95, |_| {});
    w.traffic(NOW - DAY, "web-1", "app-1", 8080, 10_000, Verdict::Allowed);
    // web-2 does not scan: its unanswered attempts are judged as usual.
    w.predict("web-2", "203.0.113.9", Protocol::TCP, 51_413, 0.95, |_| {});
    let flagged = w.id("web-1");
    w.scanning.insert(flagged);
    let recs = w.run();
    let lines: Vec<String> = recs.iter().map(|r| r.change.to_string()).collect();
    assert_eq!(recs.len(), 2, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("vm:web-1 ") && l.contains("8080"))
    );
    assert!(lines.iter().any(|l| l.contains("vm:web-2 ")));
    assert!(
        recs.iter()
            .filter(|r| r.change.to_string().contains("vm:web-1 "))
            .all(|r| r.risk.level == RiskLevel::High)
    );
}

#[test]
fn a_tcp_key_that_was_let_through_and_never_answered_is_not_proposed() {
    let mut w = World::new("");
    // An address that was let in to port 23 forty times and never got an
    // answer: the host serves no telnet, and opening it would serve no one.
    let let_through = |e: &mut Evidence| e.last_seen = Some(NOW - DAY);
    w.predict(
        "198.51.100.7",
        "web-1",
        Protocol::TCP,
        23,
        0.95,
        let_through,
    );
    for i in 0..40 {
        w.traffic(
            NOW - DAY - i,
            "198.51.100.7",
            "web-1",
            23,
            60,
            Verdict::Allowed,
        );
    }
    // The same with an answer is proposed; so is a key that was only ever
    // denied (no answer could come), and one-way UDP.
    w.predict("web-2", "app-1", Protocol::TCP, 8080, 0.95, let_through);
    w.traffic(NOW - DAY, "web-2", "app-1", 8080, 10_000, Verdict::Allowed);
    w.predict("web-1", "db-1", Protocol::TCP, 5432, 0.95, |e| e.denied = 3);
    w.predict("web-1", "app-1", Protocol::UDP, 514, 0.95, let_through);
    let recs = w.run();
    let lines: Vec<String> = recs.iter().map(|r| r.change.to_string()).collect();
    assert_eq!(recs.len(), 3, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("198.51.100.7")),
        "{lines:#?}"
    );
}

#[test]
fn an_outside_address_denied_on_a_port_the_vm_never_served_is_not_proposed() {
    let mut w = World::new("");
    // A brute-forcer denied on telnet every minute: it will be back, but
    // web-1 serves no telnet to anyone.
    let denied = |e: &mut Evidence| {
        e.denied = 76;
        e.last_denied = Some(NOW - 60);
    };
    w.predict("198.51.100.7", "web-1", Protocol::TCP, 23, 0.95, denied);
    for i in 0..76 {
        w.traffic(
            NOW - 60 * (i + 1),
            "198.51.100.7",
            "web-1",
            23,
            0,
            Verdict::Denied,
        );
    }
    // A new client of a service web-1 does serve is proposed, and so is a
    // VM denied on a port nobody serves yet (inside, the policy's gaps are
    // what augur learns).
    w.predict("203.0.113.5", "web-1", Protocol::TCP, 443, 0.95, denied);
    w.predict("203.0.113.6", "web-1", Protocol::TCP, 443, 0.5, |_| {});
    w.traffic(
        NOW - DAY,
        "203.0.113.6",
        "web-1",
        443,
        10_000,
        Verdict::Allowed,
    );
    w.predict("web-2", "web-1", Protocol::TCP, 23, 0.95, denied);
    let recs = w.run();
    let lines: Vec<String> = recs.iter().map(|r| r.change.to_string()).collect();
    assert!(
        !lines.iter().any(|l| l.contains("198.51.100.7")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("203.0.113.5")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("vm:web-2 ")), "{lines:#?}");
}

#[test]
fn ids_are_stable_across_cycles_and_differ_between_changes() {
    let build = || {
        let mut w = World::new("");
        w.predict("web-1", "db-1", Protocol::TCP, 5432, 0.9, |_| {});
        w.predict("web-1", "db-1", Protocol::TCP, 5433, 0.8, |_| {});
        w.run()
    };
    let (a, b) = (build(), build());
    assert_eq!(a.len(), 2);
    assert_eq!(
        a.iter().map(|r| &r.id).collect::<Vec<_>>(),
        b.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert_ne!(a[0].id, a[1].id);
    assert_eq!(a[0].id.len(), 16);
    // Probability is not part of the identity.
    let mut w = World::new("");
    w.predict("web-1", "db-1", Protocol::TCP, 5432, 0.55, |_| {});
    assert_eq!(w.run()[0].id, a[0].id);
}

#[test]
fn nothing_covered_is_proposed() {
    let mut w = World::new(
        "[[allow]]\nfrom = \"label:tier=web\"\nto = \"label:tier=app\"\nproto = \"ip\"\n",
    );
    for web in ["web-1", "web-2", "web-3"] {
        for app in ["app-1", "app-2"] {
            w.predict(web, app, Protocol::TCP, 8080, 0.99, |_| {});
            w.predict(web, app, Protocol::UDP, 53, 0.99, |_| {});
        }
    }
    assert!(w.run().is_empty());
}

#[test]
fn periods_and_times_read_naturally() {
    let period = |p: f64, phase: f64| Periodicity {
        period_s: p,
        phase_s: Some(phase),
        next_expected_s: None,
        confidence: 1.0,
        cycles: 5,
    };
    assert_eq!(
        describe_period(&period(86_400.0, 7_380.0)),
        "daily at 02:03"
    );
    // Phase 0 of the epoch's week is Thursday 00:00.
    assert_eq!(
        describe_period(&period(604_800.0, 4.0 * 86_400.0 + 6.5 * 3_600.0)),
        "weekly on Mon at 06:30"
    );
    assert_eq!(describe_period(&period(3_600.0, 900.0)), "hourly at :15");
    assert_eq!(describe_period(&period(300.0, 10.0)), "every 300 s");
    assert_eq!(rfc3339(NOW + 3_725), "2025-02-10T01:02:05Z");
}

#[test]
fn a_large_cycle_completes() {
    // 1,000 VMs in 10 tiers; 200,000 candidate keys, half of them covered
    // by tier rules, a tenth likely enough to propose.
    let mut text = String::new();
    for t in 0..5 {
        text.push_str(&format!(
            "[[allow]]\nfrom = \"label:tier=t{t}\"\nto = \"label:tier=t{}\"\nproto = \"tcp\"\n",
            t + 5
        ));
    }
    let mut w = World::new(&text);
    for n in 0..1_000 {
        let tier = format!("t{}", n % 10);
        w.agg.endpoints_mut().set_labels(
            &FlowEndpoint::vm(&format!("vm-{n}")),
            [("tier", tier.as_str())],
        );
    }
    let ids: Vec<EndpointId> = (0..1_000).map(|n| w.id(&format!("vm-{n}"))).collect();
    for n in 0..200_000usize {
        let (src, dst) = (ids[n % 1_000], ids[(n / 1_000 * 7 + n) % 1_000]);
        w.predictions.push(Prediction {
            key: FlowKey {
                src,
                dst,
                protocol: Protocol::TCP,
                service_port: 1_000 + (n % 3) as u16,
            },
            probability: if n % 10 == 0 { 0.9 } else { 0.1 },
            evidence: Evidence {
                source: CandidateSource::Seen,
                connections: 1,
                active_windows: 1,
                first_seen: None,
                last_seen: None,
                denied: 0,
                last_denied: None,
                periodicity: None,
                peer_support: 0.0,
                peers: 0,
                hour_share: 0.0,
                source_age_s: DAY,
                source_scanning: false,
                carried_payload: true,
                addresses: 1,
            },
        });
    }
    // How fast is measured by `cargo bench --bench predict`; here only
    // that a large cycle completes and proposes something.
    let recs = w.run();
    assert!(!recs.is_empty());
}
