//! The decision loop against real Open vSwitch bridges (userspace
//! datapath) and a private switch database, with `augur run` in process
//! and `[orchestrate]` enabled:
//!
//! - from two days of imported history (web-1 → db-1 tcp/6000 working in
//!   learn mode, app-1 → db-1 on MySQL, web-2 → app-2 on SSH), augur
//!   applies the low-risk opening by itself: its flows appear on the bridge
//!   with the change's version in their cookies;
//! - the two high-risk ones are published in the root row's
//!   `external_ids`; the README's `ovs-vsctl set ... augur-decision-<id>=approve`
//!   gets one applied (status `applied as change N`), a `reject` leaves
//!   every flow as it was;
//! - denied attempts of web-1 injected through the bridge after the
//!   automatic change make augur roll it back by itself, with the reason
//!   in the history, and its flows go.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;

#[path = "support/orchestrate.rs"]
mod orchestrate;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::daemon::{self, Daemon};
use augur::orchestrate::versions::{Decider, PolicyVersion, Status};
use etherparse::PacketBuilder;
use orchestrate::*;
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs};
use support::{eventually, write_atomically};

/// Long enough for a loaded two-core machine shared with other test runs.
const WAIT: Duration = Duration::from_secs(60);

fn version_of(history: &[PolicyVersion], id: &str) -> Result<PolicyVersion, String> {
    history
        .iter()
        .find(|v| v.recommendation.as_deref() == Some(id) && !v.decider.is_rollback())
        .cloned()
        .ok_or_else(|| format!("no version for {id} yet: {} versions", history.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn augur_applies_low_risk_queues_high_risk_obeys_decisions_and_undoes_harm() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let Some(server) = common::Server::start() else {
        return;
    };
    ovs_vsctl(&server, "init");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("AUGUR_TEST_LOG")
                .unwrap_or_else(|_| "warn,augur::orchestrate=info,augur::pending=info".into()),
        )
        .with_test_writer()
        .try_init();

    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let inventory_path = dir.path().join("inventory.toml");
    let store = dir.path().join("store");
    let csv = dir.path().join("history.csv");
    write_atomically(&policy, POLICY);
    let example_inventory = dir.path().join("three-tier-inventory.toml");
    write_atomically(&example_inventory, INVENTORY);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::fs::write(&csv, history_csv(now)).unwrap();
    import(&store, &csv, &example_inventory);
    write_atomically(&inventory_path, "");

    let text = loop_config(
        &policy,
        &inventory_path,
        &store,
        &server.sock,
        "127.0.0.1:0",
    );
    let loaded = daemon::config::load_text(&text, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let port = daemon.tcp_addresses()[0].port();
    let mut s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    let web1_port = s1.add_internal_port();
    let web1_ofport = s1.ofport(&web1_port);
    write_atomically(
        &inventory_path,
        &toml::to_string(&inventory(&s1, &s2, web1_ofport)).unwrap(),
    );
    let versions = daemon.versions();

    // (a) The low-risk opening, applied by augur, on s1 (web-1 and db-1).
    let low = eventually(
        "the low-risk opening is applied with its version's flows",
        WAIT,
        Duration::from_millis(200),
        || {
            let v = version_of(&versions.history(), LOW_ID)?;
            if v.decider != Decider::Automatic {
                return Err(format!("decided by {:?}", v.decider));
            }
            match rule_flows_of(&s1, v.number) {
                0 => Err(format!("no flow of version {} on s1 yet", v.number)),
                _ => Ok(v),
            }
        },
    )
    .await;
    eprintln!(
        "automatic change {} ({} flows on s1): {}",
        low.seq,
        rule_flows_of(&s1, low.number),
        low.explanation
    );

    // (b) Both high-risk ones wait in OVSDB, readable with ovs-vsctl.
    for id in [MYSQL_ID, SSH_ID] {
        let pending = eventually(
            "the high-risk recommendations are published",
            WAIT,
            Duration::from_millis(200),
            || external_id(&server, &format!("augur-pending-{id}")).ok_or("not yet".to_owned()),
        )
        .await;
        assert!(pending.contains("risk "), "{pending}");
        eprintln!("pending {id}: {pending}");
    }
    assert!(version_of(&versions.history(), MYSQL_ID).is_err());

    let approved_at = Instant::now();
    ovs_vsctl(
        &server,
        &format!("set Open_vSwitch . external_ids:augur-decision-{MYSQL_ID}=\"approve by alice\""),
    );
    let mysql = eventually(
        "the approved change is applied",
        WAIT,
        Duration::from_millis(50),
        || version_of(&versions.history(), MYSQL_ID),
    )
    .await;
    let latency = approved_at.elapsed();
    assert_eq!(mysql.decider, Decider::Operator("alice".into()));
    let status = eventually(
        "the outcome is reported",
        WAIT,
        Duration::from_millis(100),
        || external_id(&server, &format!("augur-status-{MYSQL_ID}")).ok_or("no status".to_owned()),
    )
    .await;
    assert!(
        status.starts_with(&format!("applied as change {} at ", mysql.seq)),
        "{status}"
    );
    assert!(external_id(&server, &format!("augur-pending-{MYSQL_ID}")).is_none());
    assert!(rule_flows_of(&s1, mysql.number) > 0);
    eprintln!(
        "approval to version {} in {} ms; status: {status}",
        mysql.seq,
        latency.as_millis()
    );

    // (c) A rejection changes nothing on the switches.
    let before = (table(&s1), table(&s2));
    let history_before = versions.history().len();
    ovs_vsctl(
        &server,
        &format!(
            "set Open_vSwitch . external_ids:augur-decision-{SSH_ID}=\"reject by bob: no ssh across tiers\""
        ),
    );
    let status = eventually(
        "the rejection is reported",
        WAIT,
        Duration::from_millis(100),
        || external_id(&server, &format!("augur-status-{SSH_ID}")).ok_or("no status".to_owned()),
    )
    .await;
    assert!(status.starts_with("rejected by bob at "), "{status}");
    assert!(status.ends_with("no ssh across tiers"), "{status}");
    // A few cycles later: still nothing applied, not queued again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(versions.history().len(), history_before);
    assert_eq!((table(&s1), table(&s2)), before);
    assert!(external_id(&server, &format!("augur-pending-{SSH_ID}")).is_none());

    // (d) web-1, which the automatic change concerns, is suddenly denied
    // again and again: augur rolls the change back by itself.
    let harmed_at = Instant::now();
    for n in 0..30u16 {
        s1.ofctl(
            "packet-out",
            &[&web1_ofport.to_string(), "table", &denied_syn(41_000 + n)],
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let undo = eventually(
        "the harmful change is rolled back",
        WAIT,
        Duration::from_millis(200),
        || {
            versions
                .history()
                .iter()
                .find(|v| matches!(&v.decider, Decider::AutoRollback { of, .. } if *of == low.seq))
                .cloned()
                .ok_or_else(|| "no automatic rollback yet".to_owned())
        },
    )
    .await;
    let Decider::AutoRollback { reason, .. } = &undo.decider else {
        unreachable!()
    };
    assert!(reason.contains("denied attempts of"), "{reason}");
    assert!(reason.contains("web-1"), "{reason}");
    let history = versions.history();
    let rolled = history.iter().find(|v| v.seq == low.seq).unwrap();
    assert!(matches!(rolled.status, Status::RolledBack { .. }));
    // The approved change is not concerned and stays.
    let kept = history.iter().find(|v| v.seq == mysql.seq).unwrap();
    assert_eq!(kept.status, Status::Applied);
    eventually(
        "the rolled-back change's flows are gone",
        WAIT,
        Duration::from_millis(200),
        || match rule_flows_of(&s1, low.number) {
            0 => Ok(()),
            n => Err(format!("{n} flows of version {} left", low.number)),
        },
    )
    .await;
    eprintln!(
        "harm to automatic rollback (version {}) in {} ms: {reason}",
        undo.seq,
        harmed_at.elapsed().as_millis()
    );
    // Not applied again by a later cycle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rule_flows_of(&s1, low.number), 0);
    assert!(
        versions
            .history()
            .iter()
            .filter(|v| v.recommendation.as_deref() == Some(LOW_ID) && !v.decider.is_rollback())
            .count()
            == 1
    );
    daemon.shutdown().await;
}

/// `count` TCP SYNs from web-1 (10.0.0.11) to db-1 (10.0.0.31) port 6000,
/// each from its own source port (each a new connection), as hex frames.
fn syns_to_db(first_port: u16, count: u16) -> Vec<String> {
    (0..count)
        .map(|n| {
            let mut frame = Vec::new();
            PacketBuilder::ethernet2([0x02, 0, 0, 0, 0x01, 0x01], [0x02, 0, 0, 0, 0x01, 0x03])
                .ipv4([10, 0, 0, 11], [10, 0, 0, 31], 64)
                .tcp(first_port + n, 6000, 1000, 64_240)
                .syn()
                .write(&mut frame, &[])
                .unwrap();
            hex::encode(frame)
        })
        .collect()
}

/// The band packet count `ovs-ofctl meter-stats` prints for `meter`.
fn ofctl_meter_drops(bridge: &TestBridge, meter: u32) -> Option<u64> {
    let out = bridge.ofctl("meter-stats", &[&format!("meter={meter}")]);
    let text = out.split("bands:").nth(1)?;
    let count = text.split("packet_count:").nth(1)?;
    count
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// A rate limit applied as a change: the switches' meter statistics reach
/// the decision loop's measurement ([`VersionControl::meter_use`]), the
/// numbers `ovs-ofctl meter-stats` shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limits_drops_reach_the_harm_measurement() {
    use augur::orchestrate::versions::ChangeMeta;
    use augur::policy::{PortRange, Proto, Rate, RateUnit};
    use augur::recommend::{Opening, Peer, PolicyChange};

    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let Some(server) = common::Server::start() else {
        return;
    };
    ovs_vsctl(&server, "init");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let inventory_path = dir.path().join("inventory.toml");
    write_atomically(&policy, POLICY);
    write_atomically(&inventory_path, "");
    let text = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
[listen]
tcp = "127.0.0.1:0"
[metrics]
enabled = false
[observer]
store = "{}"
poll_interval = "1s"
[ovsdb]
target = "unix:{}"
configure_bridges = false
"#,
        policy.display(),
        inventory_path.display(),
        dir.path().join("store").display(),
        server.sock.display()
    );
    let loaded = daemon::config::load_text(&text, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let port = daemon.tcp_addresses()[0].port();
    let mut s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    let web1_port = s1.add_internal_port();
    let web1_ofport = s1.ofport(&web1_port);
    write_atomically(
        &inventory_path,
        &toml::to_string(&inventory(&s1, &s2, web1_ofport)).unwrap(),
    );
    let versions = daemon.versions();
    eventually(
        "the policy is on s1",
        WAIT,
        Duration::from_millis(200),
        || match versions.in_force() {
            Some(_) if s1.controller_connected() && !table(&s1).is_empty() => Ok(()),
            _ => Err("not yet".to_owned()),
        },
    )
    .await;

    // web -> db on 6000, at most one new connection a second.
    let change = PolicyChange::AddPair {
        rule: Opening {
            name: Some("web to db on 6000, limited".into()),
            from: vec![Peer::Name("web".into())],
            to: vec![Peer::Name("db".into())],
            proto: Proto::Tcp,
            ports: Some(PortRange::single(6000)),
            rate: Some(Rate {
                rate: 1,
                unit: RateUnit::Pktps,
                burst: 1,
            }),
            expires: None,
        },
    };
    let meta = ChangeMeta {
        decider: Decider::Operator("test".into()),
        recommendation: Some("rate-limit".into()),
        explanation: "a limit that bites".into(),
        risk_factors: Vec::new(),
    };
    let version = versions.apply_change(&change, meta).await.unwrap();
    let meter = eventually(
        "the change's meter is on s1",
        WAIT,
        Duration::from_millis(200),
        || {
            table(&s1)
                .iter()
                .filter(|f| is_rule_flow_of(f, version.number))
                .find_map(|f| {
                    let at = f.find("meter:")? + "meter:".len();
                    f[at..]
                        .split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .ok_or_else(|| "no metered flow of the change yet".to_owned())
        },
    )
    .await;
    for batch in 0..3u16 {
        let frames = syns_to_db(42_000 + batch * 100, 100);
        let mut args = vec![web1_ofport.to_string(), "table".to_owned()];
        args.extend(frames);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s1.ofctl("packet-out", &args);
    }
    let measured = eventually(
        "the meter's drops are measured",
        WAIT,
        Duration::from_millis(200),
        || match versions.meter_use(version.seq) {
            Some(m) if m.packets >= 300 && m.dropped > 0 => Ok(m),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    let ofctl = ofctl_meter_drops(&s1, meter).unwrap();
    eprintln!(
        "meter {meter} of change {}: {} packets, {} dropped (ovs-ofctl meter-stats: {ofctl} dropped)",
        version.seq, measured.packets, measured.dropped
    );
    assert!(measured.dropped >= 250, "{measured:?}");
    assert_eq!(measured.dropped, ofctl);
    daemon.shutdown().await;
}
