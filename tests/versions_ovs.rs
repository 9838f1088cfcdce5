//! Policy versions and rollback against real Open vSwitch bridges
//! (userspace datapath), with `augur run` in process:
//!
//! - applying a change adds exactly its rule's flows on every bridge (every
//!   other flow keeps its cookie, priority and actions);
//! - rolling back one change of several leaves each bridge's table exactly
//!   as if that change had never been made (per `ovs-ofctl dump-flows`,
//!   counters aside), restoring a removed rule with its original cookies;
//! - a restarted daemon rebuilds the same policy from the policy file and
//!   the history on disk and changes no flow (watched with `ovs-ofctl
//!   monitor`);
//! - `rollback --to base`, requested with the README's `ovs-vsctl` command
//!   in the (private) switch database, returns every bridge to the policy
//!   file's flows exactly; `augur history --json` reads the history while
//!   the daemon runs; a flow of another controller survives throughout.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use augur::daemon::{self, Daemon};
use augur::orchestrate::versions::{
    ChangeMeta, Decider, PolicyVersion, RollbackBy, RollbackTarget, Status,
};
use augur::policy::{Cookie, Origin, PortRange, Proto, Rate, RateUnit};
use augur::recommend::{Opening, Peer, PolicyChange};
use support::example::{POLICY, inventory_on};
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs};
use support::{eventually, write_atomically};

/// Long enough for a loaded two-core machine shared with other test runs.
const WAIT: Duration = Duration::from_secs(60);
/// A flow of another controller.
const FOREIGN: &str = "cookie=0x1234,table=9,priority=5,tcp,tp_dst=9999,actions=drop";

/// Every flow of the bridge (augur's and others'), normalized.
fn table(bridge: &TestBridge) -> BTreeSet<String> {
    bridge.flow_set(&[])
}

/// The cookie of a normalized flow.
fn cookie_of(flow: &str) -> u64 {
    let text = flow
        .split(',')
        .find_map(|f| f.strip_prefix("cookie="))
        .unwrap_or("0");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

fn opening(from: &str, to: &str, port: u16, rate: Option<Rate>) -> Opening {
    Opening {
        name: Some(format!("{from} to {to} on {port}")),
        from: vec![Peer::Name(from.into())],
        to: vec![Peer::Name(to.into())],
        proto: Proto::Tcp,
        ports: Some(PortRange::single(port)),
        rate,
        expires: None,
    }
}

fn meta(why: &str) -> ChangeMeta {
    ChangeMeta {
        decider: Decider::Operator("test".into()),
        recommendation: Some(format!("rec-{why}")),
        explanation: why.into(),
        risk_factors: vec!["new_pair: 0.30".into()],
    }
}

/// Asserts that `after` is `before` plus flows that are all rule flows of
/// `version` (and that there are some).
fn only_rule_flows_added(before: &BTreeSet<String>, after: &BTreeSet<String>, version: u16) {
    let lost: Vec<_> = before.difference(after).collect();
    assert!(lost.is_empty(), "flows replaced or lost: {lost:#?}");
    let gained: Vec<_> = after.difference(before).collect();
    assert!(!gained.is_empty(), "the change added no flow");
    for flow in gained {
        let cookie = Cookie::from_raw(cookie_of(flow)).unwrap();
        assert!(
            matches!(cookie.origin(), Some(Origin::Rule(_))) && cookie.version() == version,
            "not a rule flow of version {version}: {flow}"
        );
    }
}

struct Config {
    _dir: tempfile::TempDir,
    text: String,
    store: PathBuf,
    inventory: PathBuf,
}

fn config(ovsdb: &Path) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let inventory = dir.path().join("inventory.toml");
    let store = dir.path().join("store");
    write_atomically(&policy, POLICY);
    write_atomically(&inventory, "");
    let text = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
[listen]
tcp = "127.0.0.1:0"
[openflow]
audit_interval = "2s"
[metrics]
enabled = false
[observer]
store = "{}"
[ovsdb]
target = "unix:{}"
configure_bridges = false
"#,
        policy.display(),
        inventory.display(),
        store.display(),
        ovsdb.display()
    );
    Config {
        _dir: dir,
        text,
        store,
        inventory,
    }
}

/// Waits until every bridge holds as many of augur's flows as compiled.
async fn settled(daemon: &Daemon, bridges: &[&TestBridge]) {
    let desired = daemon.desired();
    eventually(
        "the bridges hold the policy",
        WAIT,
        Duration::from_millis(200),
        || {
            let Some(d) = desired.borrow().clone() else {
                return Err("nothing compiled".to_owned());
            };
            for bridge in bridges {
                let want = d
                    .compiled
                    .bridge(bridge.name())
                    .ok_or_else(|| format!("{} not compiled", bridge.name()))?
                    .flows
                    .len();
                let (cookie, mask) = Cookie::augur_filter();
                let have = bridge
                    .dump_flows(&["--no-stats", &format!("cookie={cookie:#x}/{mask:#x}")])
                    .lines()
                    .filter(|l| l.contains("actions="))
                    .count();
                if have != want {
                    return Err(format!("{}: {have} of {want} flows", bridge.name()));
                }
            }
            Ok(())
        },
    )
    .await;
}

/// `ovs-ofctl monitor` on a bridge: every flow added, changed or deleted
/// from now on, by anyone.
struct FlowMonitor {
    child: Child,
    output: PathBuf,
}

impl FlowMonitor {
    fn start(bridge: &TestBridge, output: PathBuf) -> FlowMonitor {
        let child = Command::new("ovs-ofctl")
            .args([
                "-O",
                "OpenFlow14",
                "monitor",
                bridge.name(),
                "watch:!initial",
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        FlowMonitor { child, output }
    }

    /// The flow events seen so far.
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("event="))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for FlowMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ovs_vsctl(server: &common::Server, args: &str) -> String {
    let line = format!(
        "ovs-vsctl --db=unix:{} --no-wait --timeout=10 {args}",
        server.sock.display()
    );
    let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_and_rollbacks_touch_exactly_their_flows_and_survive_a_restart() {
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
                .unwrap_or_else(|_| "warn,augur::orchestrate=info".into()),
        )
        .with_test_writer()
        .try_init();
    let config = config(&server.sock);
    let loaded = daemon::config::load_text(&config.text, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let port = daemon.tcp_addresses()[0].port();
    let s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    s1.ofctl("add-flow", &[FOREIGN]);
    write_atomically(
        &config.inventory,
        &toml::to_string(&inventory_on(Some(&s1), Some(&s2))).unwrap(),
    );
    settled(&daemon, &[&s1, &s2]).await;
    let base = [table(&s1), table(&s2)];
    assert!(base[0].iter().any(|f| cookie_of(f) == 0x1234));

    // Change A: web may reach db on 3306.
    let versions = daemon.versions();
    let a = versions
        .apply_change(
            &PolicyChange::AddPair {
                rule: opening("web", "db", 3306, None),
            },
            meta("A"),
        )
        .await
        .unwrap();
    let after_a = [table(&s1), table(&s2)];
    for (before, after) in base.iter().zip(&after_a) {
        only_rule_flows_added(before, after, a.number);
    }

    // Change B: app may reach web on 9000, rate-limited (a meter of its own).
    let b = versions
        .apply_change(
            &PolicyChange::AddPair {
                rule: opening(
                    "app",
                    "web",
                    9000,
                    Some(Rate {
                        rate: 2000,
                        unit: RateUnit::Kbps,
                        burst: 0,
                    }),
                ),
            },
            meta("B"),
        )
        .await
        .unwrap();
    let after_ab = [table(&s1), table(&s2)];
    for (before, after) in after_a.iter().zip(&after_ab) {
        only_rule_flows_added(before, after, b.number);
    }

    // Roll back A: base + B, exactly.
    let undo_a = versions
        .rollback(
            RollbackTarget::Change(a.seq),
            RollbackBy::Operator("A was wrong".into()),
        )
        .await
        .unwrap();
    assert_eq!(undo_a.decider, Decider::Rollback { of: vec![a.seq] });
    let base_plus_b: Vec<BTreeSet<String>> = (0..2)
        .map(|i| {
            let added_by_a: BTreeSet<String> = after_a[i].difference(&base[i]).cloned().collect();
            after_ab[i].difference(&added_by_a).cloned().collect()
        })
        .collect();
    assert_eq!(table(&s1), base_plus_b[0], "s1 after rolling back A");
    assert_eq!(table(&s2), base_plus_b[1], "s2 after rolling back A");

    // Change C removes a rule of the file ("application resolves service
    // names", rule 3): only its flows go.
    let c = versions
        .apply_change(
            &PolicyChange::RemoveRule {
                rule: 3,
                label: "rule #3".into(),
            },
            meta("C"),
        )
        .await
        .unwrap();
    assert_eq!(c.removed.len(), 1);
    let after_c = [table(&s1), table(&s2)];
    for i in 0..2 {
        assert!(after_c[i].is_subset(&base_plus_b[i]));
        for flow in base_plus_b[i].difference(&after_c[i]) {
            let cookie = Cookie::from_raw(cookie_of(flow)).unwrap();
            assert_eq!(cookie.origin(), Some(Origin::Rule(3)), "{flow}");
        }
    }
    let stored = augur::store::versions::VersionStore::open_existing(&config.store)
        .unwrap()
        .unwrap()
        .list()
        .unwrap();
    assert_eq!(stored.len(), 4);

    // Restart: the new daemon rebuilds base + B - C from the file and the
    // history, and changes nothing.
    let monitors = [
        FlowMonitor::start(&s1, config._dir.path().join("monitor-s1")),
        FlowMonitor::start(&s2, config._dir.path().join("monitor-s2")),
    ];
    tokio::time::sleep(Duration::from_millis(500)).await;
    daemon.shutdown().await;
    // The same listening port, so the bridges find the new daemon.
    let text = config.text.replace(
        "tcp = \"127.0.0.1:0\"",
        &format!("tcp = \"127.0.0.1:{port}\""),
    );
    let loaded = daemon::config::load_text(&text, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    settled(&daemon, &[&s1, &s2]).await;
    eventually(
        "both switches reconnect",
        WAIT,
        Duration::from_millis(200),
        || {
            if s1.controller_connected() && s2.controller_connected() {
                Ok(())
            } else {
                Err("not connected".to_owned())
            }
        },
    )
    .await;
    // Past an audit of each switch by the new daemon.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for monitor in &monitors {
        assert_eq!(
            monitor.events(),
            Vec::<String>::new(),
            "flows changed on restart"
        );
    }
    assert_eq!(table(&s1), after_c[0]);
    assert_eq!(table(&s2), after_c[1]);
    assert_eq!(daemon.versions().history().len(), 4);

    // `augur history --json` reads the store while the daemon runs.
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["history", "--json", "--store"])
        .arg(&config.store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<PolicyVersion> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 4);
    assert!(matches!(listed[0].status, Status::RolledBack { by: 3, .. }));

    // Back to the policy file, asked for with ovs-vsctl as the README says:
    // exactly the file's flows, the removed rule back with its cookies.
    ovs_vsctl(
        &server,
        r#"set Open_vSwitch . external_ids:augur-rollback-request="to:base back to the file""#,
    );
    let status = eventually(
        "augur answers the rollback request",
        WAIT,
        Duration::from_millis(200),
        || {
            let status = ovs_vsctl(
                &server,
                "--if-exists get Open_vSwitch . external_ids:augur-rollback-status",
            );
            if status.is_empty() {
                Err("no status yet".to_owned())
            } else {
                Ok(status)
            }
        },
    )
    .await;
    assert!(
        status
            .trim_matches('"')
            .starts_with("ok|to:base back to the file|version 5"),
        "{status}"
    );
    assert_eq!(table(&s1), base[0], "s1 back at the policy file");
    assert_eq!(table(&s2), base[1], "s2 back at the policy file");
    assert_eq!(
        ovs_vsctl(
            &server,
            "--if-exists get Open_vSwitch . external_ids:augur-rollback-request"
        ),
        ""
    );

    // `augur rollback` with nothing left to undo is refused, and says why.
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["rollback", "--to", "base", "--wait", "20", "--db"])
        .arg(format!("unix:{}", server.sock.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to roll back"), "{stderr}");
    let history = daemon.versions().history();
    assert_eq!(history.len(), 5);
    assert!(
        history
            .iter()
            .filter(|v| !v.decider.is_rollback())
            .all(|v| v.status != Status::Applied)
    );
    daemon.shutdown().await;
    drop(monitors);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// augur's flows on the bridge (normalized), for comparing across restarts.
fn augur_flows(bridge: &TestBridge) -> BTreeSet<String> {
    let (cookie, mask) = Cookie::augur_filter();
    bridge.flow_set(&[&format!("cookie={cookie:#x}/{mask:#x}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_survives_sigkill_and_the_restarted_daemon_changes_nothing() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let Some(server) = common::Server::start() else {
        return;
    };
    ovs_vsctl(&server, "init");
    let port = free_port();
    let s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    s1.ofctl("add-flow", &[FOREIGN]);
    let config = config(&server.sock);
    let inventory = inventory_on(Some(&s1), Some(&s2));
    write_atomically(&config.inventory, &toml::to_string(&inventory).unwrap());
    let text = config.text.replace(
        "tcp = \"127.0.0.1:0\"",
        &format!("tcp = \"127.0.0.1:{port}\""),
    );
    let config_file = config._dir.path().join("augur.toml");
    write_atomically(&config_file, &text);

    // Two changes made by an earlier run: the history on disk is all the
    // new daemon knows of them.
    let loaded = daemon::config::load_text(&text, None, Vec::new()).unwrap();
    let policy_path = loaded.config.policy.clone().unwrap();
    let (policy, _) = daemon::sources::read_policy(&policy_path).unwrap();
    let file_version = daemon::plan::policy_version(
        &policy.policy,
        &loaded.config.compile.settings(loaded.config.mode, 0),
    );
    let mut store = augur::store::versions::VersionStore::open(&config.store).unwrap();
    let mut history = Vec::new();
    for change in [
        PolicyChange::AddPair {
            rule: opening("web", "db", 3306, None),
        },
        PolicyChange::RemoveRule {
            rule: 3,
            label: "rule #3".into(),
        },
    ] {
        let current =
            augur::orchestrate::versions::effective(&policy.policy, file_version, &history);
        let version = augur::orchestrate::versions::record_change(
            &current,
            &history,
            &change,
            meta("earlier run"),
            std::time::SystemTime::now(),
        )
        .unwrap();
        store.append(&version).unwrap();
        history.push(version);
    }
    drop(store);
    let want = daemon::compiler::compile_versions(
        &policy,
        &history,
        &inventory,
        &loaded.config.compile,
        loaded.config.mode,
        1,
    )
    .unwrap();
    let want_s1 = want.compiled.bridge(s1.name()).unwrap().flows.len();

    let spawn = |log: &str| {
        Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["run", "--config"])
            .arg(&config_file)
            .env_remove("AUGUR_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(config._dir.path().join(log)).unwrap())
            .spawn()
            .unwrap()
    };
    let mut first = spawn("augur-1.log");
    eventually(
        "the daemon installs the file plus the history",
        WAIT,
        Duration::from_millis(200),
        || {
            let have = augur_flows(&s1).len();
            if have == want_s1 {
                Ok(())
            } else {
                Err(format!("{have} of {want_s1} flows"))
            }
        },
    )
    .await;
    let with_a = augur_flows(&s1);
    let a_number = history[0].number;
    let is_a = |flow: &String| {
        let cookie = Cookie(cookie_of(flow));
        matches!(cookie.origin(), Some(Origin::Rule(_))) && cookie.version() == a_number
    };
    assert!(with_a.iter().any(is_a), "change 1's rule is installed");
    assert!(
        !with_a
            .iter()
            .any(|f| Cookie(cookie_of(f)).origin() == Some(Origin::Rule(3))),
        "change 2 removed rule 3"
    );

    // `augur rollback --change 1`, then SIGKILL as soon as it answers.
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "rollback", "--change", "1", "--reason", "test", "--wait", "60", "--db",
        ])
        .arg(format!("unix:{}", server.sock.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "augur rollback: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("version 3: rolled back change 1: test"),
        "{said}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let rolled_back = augur_flows(&s1);
    let gone: BTreeSet<String> = with_a.difference(&rolled_back).cloned().collect();
    assert!(!gone.is_empty() && gone.iter().all(is_a), "{gone:#?}");
    assert!(rolled_back.is_subset(&with_a));

    // The restarted daemon reads the rollback from disk and changes nothing.
    let monitor = FlowMonitor::start(&s1, config._dir.path().join("monitor"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = spawn("augur-2.log");
    let log2 = config._dir.path().join("augur-2.log");
    eventually(
        "the second daemon looks at the switch",
        WAIT,
        Duration::from_millis(200),
        || {
            let log = std::fs::read_to_string(&log2).unwrap_or_default();
            if log.contains("switch identified") {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    // Past the first update and an audit.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ours: Vec<String> = monitor
        .events()
        .into_iter()
        .filter(|e| e.contains("cookie=0x6175"))
        .collect();
    assert!(
        ours.is_empty(),
        "augur's flows changed across the restart: {ours:#?}"
    );
    assert_eq!(augur_flows(&s1), rolled_back);
    assert!(table(&s1).iter().any(|f| cookie_of(f) == 0x1234));
    second.kill().unwrap();
    second.wait().unwrap();
    let stored = augur::store::versions::VersionStore::open_existing(&config.store)
        .unwrap()
        .unwrap()
        .list()
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(matches!(stored[0].status, Status::RolledBack { by: 3, .. }));
}
