//! The decision loop across crashes, with `augur run` as a child process
//! on two real Open vSwitch bridges (userspace datapath) and a private
//! switch database:
//!
//! - the first daemon applies the low-risk opening by itself, publishes the
//!   two high-risk ones, and rolls the opening back when web-1's denied
//!   attempts rise;
//! - it is SIGKILLed; while it is down the operator approves one of the
//!   pending changes with `ovs-vsctl`;
//! - the second daemon applies that approval once (status `applied as
//!   change N`), leaves the other entry pending exactly as it was, does not
//!   make the rolled-back opening again, and brings the switches to the
//!   history's latest version: each flow table (without counters) is what
//!   it was plus the approved change's flows;
//! - `ovsdb-server` itself is then restarted on the same database file: the
//!   remaining entry survives, the daemon's monitor reconnects, and a
//!   decision written after the restart is applied;
//! - the daemon is SIGKILLed again while both approved changes are under
//!   watch: the third daemon watches them on (not the rolled-back
//!   opening), and when web-2's denied attempts rise after the restart it
//!   rolls the change concerning web-2 back by itself, with the rule and
//!   the numbers as the reason in the history, and leaves the other.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;

#[path = "support/orchestrate.rs"]
mod orchestrate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augur::daemon::{self, Desired};
use augur::inventory::Inventory;
use augur::orchestrate::engine::EndpointRecord;
use augur::orchestrate::versions::{Decider, PolicyVersion, Status};
use augur::store::versions::VersionStore;
use orchestrate::*;
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs};
use support::{eventually, write_atomically};

/// Long enough for a loaded two-core machine shared with other test runs
/// (the restarted daemon learns two days of history before it recommends).
const WAIT: Duration = Duration::from_secs(120);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `augur run` as a child process, SIGKILLed when dropped; its log is
/// printed if the test fails.
struct Augur {
    child: Option<Child>,
    log: PathBuf,
}

impl Augur {
    fn spawn(config: &Path, log: PathBuf) -> Augur {
        let child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(["run", "--config"])
            .arg(config)
            .env_remove("AUGUR_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Augur {
            child: Some(child),
            log,
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Augur {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log());
        }
    }
}

/// A dumped flow's table, priority and match (no cookie, no actions).
fn match_of(flow: &str) -> String {
    let head = flow.split(" actions=").next().unwrap_or(flow);
    head.split(',')
        .filter(|f| !f.starts_with("cookie="))
        .collect::<Vec<_>>()
        .join(",")
}

/// How many of `table`'s flows are augur's.
fn augur_flows(table: &BTreeSet<String>) -> usize {
    table.iter().filter(|f| cookie_of(f).is_some()).count()
}

/// What the policy file plus `history` compiles to with the daemon's
/// settings.
fn compiled(config: &Path, history: &[PolicyVersion], inventory: &Inventory) -> Desired {
    let text = std::fs::read_to_string(config).unwrap();
    let loaded = daemon::config::load_text(&text, None, Vec::new()).unwrap();
    let (policy, _) = daemon::sources::read_policy(&loaded.config.policy.clone().unwrap()).unwrap();
    daemon::compiler::compile_versions(
        &policy,
        history,
        inventory,
        &loaded.config.compile,
        loaded.config.mode,
        1,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_survives_sigkill_and_an_ovsdb_restart_and_acts_on_decisions_made_meanwhile() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let Some(mut server) = common::Server::start() else {
        return;
    };
    ovs_vsctl(&server, "init");
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

    // The bridges exist before the daemon: both daemons listen on the
    // same port, where the bridges keep reconnecting.
    let port = free_port();
    let mut s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    let web1_port = s1.add_internal_port();
    let web1_ofport = s1.ofport(&web1_port);
    write_atomically(
        &inventory_path,
        &toml::to_string(&inventory(&s1, &s2, web1_ofport)).unwrap(),
    );
    let config = dir.path().join("augur.toml");
    write_atomically(
        &config,
        &loop_config(
            &policy,
            &inventory_path,
            &store,
            &server.sock,
            &format!("127.0.0.1:{port}"),
        ),
    );

    // The first daemon: the low-risk opening applied, the high-risk ones
    // published.
    let mut first = Augur::spawn(&config, dir.path().join("augur-1.log"));
    let low = eventually(
        "the low-risk opening is applied with its flows",
        WAIT,
        Duration::from_millis(200),
        || {
            let v = versions_of(&stored(&store), LOW_ID)
                .pop()
                .ok_or("not applied yet")?;
            match rule_flows_of(&s1, v.number) {
                0 => Err(format!("no flow of version {} on s1 yet", v.number)),
                _ => Ok(v),
            }
        },
    )
    .await;
    assert_eq!(low.decider, Decider::Automatic);
    let mut pending = Vec::new();
    for id in [MYSQL_ID, SSH_ID] {
        pending.push(
            eventually(
                "the high-risk recommendations are published",
                WAIT,
                Duration::from_millis(200),
                || external_id(&server, &format!("augur-pending-{id}")).ok_or("not yet".to_owned()),
            )
            .await,
        );
    }

    // web-1 is denied again and again: the opening is rolled back, which a
    // restarted daemon must not undo by making the opening once more.
    for n in 0..30u16 {
        s1.ofctl(
            "packet-out",
            &[&web1_ofport.to_string(), "table", &denied_syn(41_000 + n)],
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(
        "the harmful change is rolled back and its flows are gone",
        WAIT,
        Duration::from_millis(200),
        || {
            let history = stored(&store);
            if !history
                .iter()
                .any(|v| matches!(&v.decider, Decider::AutoRollback { of, .. } if *of == low.seq))
            {
                return Err("no automatic rollback yet".to_owned());
            }
            match rule_flows_of(&s1, low.number) {
                0 => Ok(()),
                n => Err(format!("{n} flows of version {} left", low.number)),
            }
        },
    )
    .await;
    // Past an audit, so that the tables are settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let history_before = stored(&store);
    let tables_before = vec![table(&s1), table(&s2)];

    // SIGKILL; the operator approves while augur is down.
    first.kill();
    ovs_vsctl(
        &server,
        &format!("set Open_vSwitch . external_ids:augur-decision-{MYSQL_ID}=\"approve by alice\""),
    );
    let restarted_at = Instant::now();
    let second = Augur::spawn(&config, dir.path().join("augur-2.log"));
    let mysql = eventually(
        "the decision made while augur was down is applied",
        WAIT,
        Duration::from_millis(100),
        || {
            versions_of(&stored(&store), MYSQL_ID)
                .pop()
                .ok_or_else(|| "not applied yet".to_owned())
        },
    )
    .await;
    let applied_after = restarted_at.elapsed();
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
    eventually(
        "the approved change's flows are installed",
        WAIT,
        Duration::from_millis(200),
        || match rule_flows_of(&s1, mysql.number) + rule_flows_of(&s2, mysql.number) {
            0 => Err(format!("no flow of version {} yet", mysql.number)),
            _ => Ok(()),
        },
    )
    .await;
    eprintln!(
        "decision made while down applied as change {} {} ms after the restart: {status}",
        mysql.seq,
        applied_after.as_millis()
    );

    // A few cycles and an audit later: the history is the old one plus
    // the approval, nothing made twice, the other entry pending as it was,
    // and the switches hold exactly the old tables plus the new flows.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let history = stored(&store);
    assert_eq!(history.len(), history_before.len() + 1, "{history:#?}");
    assert_eq!(&history[..history_before.len()], history_before.as_slice());
    assert_eq!(history.last().map(|v| v.seq), Some(mysql.seq));
    assert_eq!(versions_of(&history, LOW_ID).len(), 1);
    assert!(matches!(
        history.iter().find(|v| v.seq == low.seq).unwrap().status,
        Status::RolledBack { .. }
    ));
    assert_eq!(
        external_id(&server, &format!("augur-pending-{SSH_ID}")).as_ref(),
        Some(&pending[1])
    );
    let tables_after = vec![table(&s1), table(&s2)];
    let want = compiled(&config, &history, &inventory(&s1, &s2, web1_ofport));
    for (n, bridge) in [&s1, &s2].into_iter().enumerate() {
        let (before, after) = (&tables_before[n], &tables_after[n]);
        let of_change = after
            .iter()
            .filter(|f| is_rule_flow_of(f, mysql.number))
            .count();
        // Beside the change's rule flows, only flows whose actions the
        // change altered (its peers' group bits), in place.
        let gone: BTreeSet<String> = before.difference(after).map(|f| match_of(f)).collect();
        let altered: BTreeSet<String> = after
            .difference(before)
            .filter(|f| !is_rule_flow_of(f, mysql.number))
            .map(|f| match_of(f))
            .collect();
        assert_eq!(gone, altered, "{}", bridge.name());
        assert_eq!(
            after.len(),
            before.len() + of_change,
            "{}: {} flows, {} before and {of_change} of change {}",
            bridge.name(),
            after.len(),
            before.len(),
            mysql.seq
        );
        // And exactly what the history compiles to.
        let want = want.compiled.bridge(bridge.name()).unwrap().flows.len();
        assert_eq!(augur_flows(after), want, "{}", bridge.name());
        eprintln!(
            "{}: {} flows of change {}, {} altered in place, {} unchanged",
            bridge.name(),
            of_change,
            mysql.seq,
            gone.len(),
            before.len() - gone.len()
        );
    }
    assert_ne!(tables_after, tables_before);

    // The switch database restarts on the same file: the entry survives,
    // and a decision written afterwards reaches the daemon.
    let ovsdb_restarted_at = Instant::now();
    server.restart();
    assert_eq!(
        external_id(&server, &format!("augur-pending-{SSH_ID}")).as_ref(),
        Some(&pending[1])
    );
    ovs_vsctl(
        &server,
        &format!("set Open_vSwitch . external_ids:augur-decision-{SSH_ID}=\"approve by carol\""),
    );
    let ssh = eventually(
        "the decision written after the OVSDB restart is applied",
        WAIT,
        Duration::from_millis(100),
        || {
            versions_of(&stored(&store), SSH_ID)
                .pop()
                .ok_or_else(|| "not applied yet".to_owned())
        },
    )
    .await;
    let ssh_after = ovsdb_restarted_at.elapsed();
    assert_eq!(ssh.decider, Decider::Operator("carol".into()));
    let status = eventually(
        "the outcome is reported after the OVSDB restart",
        WAIT,
        Duration::from_millis(100),
        || external_id(&server, &format!("augur-status-{SSH_ID}")).ok_or("no status".to_owned()),
    )
    .await;
    assert!(
        status.starts_with(&format!("applied as change {} at ", ssh.seq)),
        "{status}"
    );
    eprintln!(
        "decision after the OVSDB restart applied as change {} {} ms after the restart: {status}",
        ssh.seq,
        ssh_after.as_millis()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let history = stored(&store);
    assert_eq!(history.len(), history_before.len() + 2);
    assert_eq!(versions_of(&history, SSH_ID).len(), 1);
    assert_eq!(versions_of(&history, MYSQL_ID).len(), 1);
    assert_eq!(versions_of(&history, LOW_ID).len(), 1);

    // SIGKILL again while both approved changes are under watch: the
    // third daemon watches them on (not the rolled-back opening), and
    // rolls the SSH opening back by itself when web-2's denied attempts
    // rise after the restart.
    let watches = VersionStore::open_existing(&store)
        .unwrap()
        .unwrap()
        .watches()
        .unwrap();
    assert_eq!(
        watches.keys().copied().collect::<Vec<_>>(),
        [low.seq, mysql.seq, ssh.seq],
        "every change the loop applied is stored with its watch"
    );
    assert!(
        watches[&ssh.seq].pairs.contains(&(
            EndpointRecord::Vm("web-2".into()),
            EndpointRecord::Vm("app-2".into())
        )),
        "{:?}",
        watches[&ssh.seq]
    );
    let mut second = second;
    second.kill();
    let rewatch_at = Instant::now();
    let third = Augur::spawn(&config, dir.path().join("augur-3.log"));
    for change in [mysql.seq, ssh.seq] {
        eventually(
            "the restarted daemon counts the harm of the changes under watch",
            WAIT,
            Duration::from_millis(100),
            || {
                let log = third.log();
                if !log.contains(&format!(
                    "change {change} is watched again after the restart"
                )) {
                    return Err(format!("change {change} is not watched again"));
                }
                if !log.contains(&format!(
                    "the harm of change {change} is counted from now on"
                )) {
                    return Err(format!("no first observation for change {change} yet"));
                }
                Ok(())
            },
        )
        .await;
    }
    let rewatched_after = rewatch_at.elapsed();
    assert!(
        !third
            .log()
            .contains(&format!("change {} is watched again", low.seq)),
        "a rolled-back change is not watched again"
    );
    let harm_at = Instant::now();
    for n in 0..30u16 {
        s1.ofctl(
            "packet-out",
            &[&web1_ofport.to_string(), "table", &denied_syn(42_000 + n)],
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rollback = eventually(
        "the restarted daemon rolls the harmful change back and its flows are gone",
        WAIT,
        Duration::from_millis(200),
        || {
            let history = stored(&store);
            let rollback = history
                .iter()
                .find(|v| matches!(&v.decider, Decider::AutoRollback { of, .. } if *of == ssh.seq))
                .ok_or("no automatic rollback yet")?;
            match rule_flows_of(&s1, ssh.number) + rule_flows_of(&s2, ssh.number) {
                0 => Ok(rollback.clone()),
                n => Err(format!("{n} flows of version {} left", ssh.number)),
            }
        },
    )
    .await;
    let rolled_back_after = harm_at.elapsed();
    let Decider::AutoRollback { reason, .. } = &rollback.decider else {
        unreachable!()
    };
    assert!(
        reason.contains("denied attempts of app-2, web-2 rose to")
            && reason.contains("since augur restarted during the watch"),
        "{reason}"
    );
    let history = stored(&store);
    match &history.iter().find(|v| v.seq == ssh.seq).unwrap().status {
        Status::RolledBack { by, why, .. } => {
            assert_eq!(*by, rollback.seq);
            assert!(why.contains(reason.as_str()), "{why}");
        }
        other => panic!("change {} is {other:?}", ssh.seq),
    }
    // Only that change: the other one under watch concerns other VMs.
    assert_eq!(
        history.iter().find(|v| v.seq == mysql.seq).unwrap().status,
        Status::Applied
    );
    assert_eq!(history.len(), history_before.len() + 3);
    eprintln!(
        "after the second SIGKILL: watches resumed {} ms after the restart, change {} rolled \
         back {} ms after the harm began: {}",
        rewatched_after.as_millis(),
        ssh.seq,
        rolled_back_after.as_millis(),
        rollback.explanation
    );
    drop(third);
}
