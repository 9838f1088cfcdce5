//! The pending-changes table against a private `ovsdb-server` with the
//! installed vswitch schema, decided with the real `ovs-vsctl` commands the
//! README gives (each run through `sh -c` as written there, with `--db` and
//! `--no-wait` added since there is no `ovs-vswitchd`), and with
//! `augur pending/approve/reject`. Without the OVS binaries these tests
//! print a note and pass, unless `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../ovsdb/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use augur::pending::ovsdb::{PendingEvent, PendingTable};
use augur::pending::{
    Decision, EntryId, Outcome, PendingEntry, PendingSettings, Status, Summary, Timestamp, Verdict,
};
use common::Server;

/// The bound the issue sets for a decision to reach augur.
const WITHIN: Duration = Duration::from_secs(1);

/// The README's listing one-liner.
const LIST: &str = r#"ovs-vsctl get Open_vSwitch . external_ids | grep -oE 'augur-[a-z]+-[0-9a-f]+=("([^"\\]|\\.)*"|[^,}]*)'"#;

fn settings() -> PendingSettings {
    PendingSettings {
        expire_after_secs: 3600,
        keep_status_secs: 600,
    }
}

fn entry(id: &str, change: &str, settings: &PendingSettings) -> PendingEntry {
    PendingEntry::new(
        EntryId::new(id).unwrap(),
        Summary {
            change: change.into(),
            risk_score: 0.72,
            risk_level: "high".into(),
            factors: vec!["sensitive port".into(), "crosses tier".into()],
            probability: 0.93,
            explanation: "seen 42 times in 6 days, daily at 02:00".into(),
        },
        Timestamp::now(),
        settings,
    )
}

/// A private server whose root row holds other integrators' keys.
fn server() -> Option<Server> {
    if which("ovs-vsctl").is_none() {
        return common::skip("ovs-vsctl");
    }
    let server = Server::start()?;
    vsctl(&server, "init");
    vsctl(
        &server,
        "set Open_vSwitch . external_ids:system-id=host-7 external_ids:ovn-remote=tcp:192.0.2.1:6642",
    );
    Some(server)
}

fn which(program: &str) -> Option<()> {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
}

/// Runs an `ovs-vsctl` command line as a shell would (so the README's
/// quoting is what is tested), pointed at the test server.
fn sh(server: &Server, line: &str) -> Output {
    let line = line.replacen(
        "ovs-vsctl ",
        &format!(
            "ovs-vsctl --db=unix:{} --no-wait --timeout=10 ",
            server.sock.display()
        ),
        1,
    );
    Command::new("sh").arg("-c").arg(&line).output().unwrap()
}

fn vsctl(server: &Server, args: &str) -> String {
    let out = sh(server, &format!("ovs-vsctl {args}"));
    assert!(
        out.status.success(),
        "ovs-vsctl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A key of the root row's `external_ids` as `ovs-vsctl` prints it, `None`
/// if absent.
fn get(server: &Server, key: &str) -> Option<String> {
    let out = vsctl(
        server,
        &format!("--if-exists get Open_vSwitch . external_ids:{key}"),
    );
    if out.is_empty() {
        None
    } else {
        // Unquote what ovs-vsctl quoted (our values hold no escapes).
        Some(out.trim_matches('"').to_owned())
    }
}

/// The keys other integrators set stay as they were.
fn assert_others_untouched(server: &Server) {
    assert_eq!(get(server, "system-id").as_deref(), Some("host-7"));
    assert_eq!(
        get(server, "ovn-remote").as_deref(),
        Some("tcp:192.0.2.1:6642")
    );
}

/// The next event within `within`, with the time it took.
async fn next(table: &mut PendingTable, within: Duration) -> (PendingEvent, Duration) {
    let start = Instant::now();
    let event = tokio::time::timeout(within, table.next_event())
        .await
        .unwrap_or_else(|_| panic!("no pending-table event within {within:?}"))
        .unwrap();
    (event, start.elapsed())
}

/// Asserts that nothing happens for a while.
async fn quiet(table: &mut PendingTable, dur: Duration) {
    if let Ok(event) = tokio::time::timeout(dur, table.next_event()).await {
        panic!("unexpected event {event:?}");
    }
}

/// Runs an operator's command and waits for the resulting event, printing
/// the latency from the command's start and from its return.
async fn operator(
    server: &Server,
    table: &mut PendingTable,
    line: &str,
) -> (PendingEvent, Duration) {
    let start = Instant::now();
    let out = sh(server, line);
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (event, after_return) = next(table, WITHIN).await;
    let latency = start.elapsed();
    println!(
        "decision latency {:.1} ms from the start of `{line}` ({:.1} ms after it returned)",
        latency.as_secs_f64() * 1e3,
        after_return.as_secs_f64() * 1e3,
    );
    assert!(latency < WITHIN + Duration::from_millis(500));
    assert!(after_return < WITHIN, "{after_return:?}");
    (event, latency)
}

fn decided(event: PendingEvent) -> (PendingEntry, Decision) {
    match event {
        PendingEvent::Decided { entry, decision } => (entry, decision),
        other => panic!("expected a decision, got {other:?}"),
    }
}

fn ignored(event: PendingEvent) -> (String, Status) {
    match event {
        PendingEvent::Ignored { id, status } => (id, status),
        other => panic!("expected an ignored decision, got {other:?}"),
    }
}

#[tokio::test]
async fn decisions_written_with_ovs_vsctl_arrive_within_a_second() {
    let Some(server) = server() else { return };
    let settings = settings();
    let mut table = PendingTable::open(&server.unix_target(), settings.clone())
        .await
        .unwrap();
    let a = entry("0a1b2c3d", "allow web -> db tcp/5432", &settings);
    let b = entry("0a1b2c3e", "allow batch -> backup tcp/22", &settings);
    let c = entry("0a1b2c3f", "open web tcp/8443", &settings);
    assert_eq!(
        table
            .publish(&[a.clone(), b.clone(), c.clone()])
            .await
            .unwrap(),
        3
    );
    // Nothing to do until someone decides.
    quiet(&mut table, Duration::from_millis(300)).await;
    assert_eq!(
        get(&server, "augur-pending-0a1b2c3d").as_deref(),
        Some(a.value().as_str())
    );
    // Published again: nothing changes.
    assert_eq!(table.publish(std::slice::from_ref(&a)).await.unwrap(), 0);

    // The README's listing shows exactly augur's keys, one per line.
    let listing = String::from_utf8(sh(&server, LIST).stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "{listing}");
    assert_eq!(
        lines[0],
        format!("augur-pending-0a1b2c3d=\"{}\"", a.value()),
        "{listing}"
    );
    println!("listing:\n{listing}");

    // Approve, exactly as the README says.
    let (event, _) = operator(
        &server,
        &mut table,
        "ovs-vsctl set Open_vSwitch . external_ids:augur-decision-0a1b2c3d=approve",
    )
    .await;
    let (entry_a, decision) = decided(event);
    assert_eq!(entry_a, a);
    assert_eq!(decision.verdict, Verdict::Approve);
    assert_eq!(decision.by, None);
    let applied = Status::new(
        Timestamp::now(),
        Outcome::Applied {
            change: 1,
            by: None,
        },
    );
    table
        .report(&EntryId::new("0a1b2c3d").unwrap(), &applied)
        .await
        .unwrap();
    assert_eq!(
        get(&server, "augur-status-0a1b2c3d"),
        Some(applied.to_string())
    );
    assert_eq!(get(&server, "augur-pending-0a1b2c3d"), None);
    assert_eq!(get(&server, "augur-decision-0a1b2c3d"), None);

    // Reject with a name and a reason: spaces need the quoting shown.
    let (event, _) = operator(
        &server,
        &mut table,
        r#"ovs-vsctl set Open_vSwitch . 'external_ids:augur-decision-0a1b2c3e="reject by alice: too broad, ask bob"'"#,
    )
    .await;
    let (entry_b, decision) = decided(event);
    assert_eq!(entry_b.id, b.id);
    assert_eq!(
        decision,
        Decision {
            verdict: Verdict::Reject,
            by: Some("alice".into()),
            reason: Some("too broad, ask bob".into()),
        }
    );
    let rejected = Status::new(
        Timestamp::now(),
        Outcome::Rejected {
            by: decision.by,
            reason: decision.reason,
        },
    );
    table
        .report(&EntryId::new("0a1b2c3e").unwrap(), &rejected)
        .await
        .unwrap();
    assert_eq!(
        get(&server, "augur-status-0a1b2c3e"),
        Some(rejected.to_string())
    );

    // Malformed: an error status, the decision key cleared, nothing decided.
    let (event, _) = operator(
        &server,
        &mut table,
        "ovs-vsctl set Open_vSwitch . external_ids:augur-decision-0a1b2c3f=yes",
    )
    .await;
    let (id, status) = ignored(event);
    assert_eq!(id, "0a1b2c3f");
    let written = get(&server, "augur-status-0a1b2c3f").unwrap();
    assert_eq!(written, status.to_string());
    assert!(
        written.starts_with("error: 'yes' is not a decision (write approve or reject) at "),
        "{written}"
    );
    assert_eq!(get(&server, "augur-decision-0a1b2c3f"), None);
    assert_eq!(
        get(&server, "augur-pending-0a1b2c3f").as_deref(),
        Some(c.value().as_str())
    );
    quiet(&mut table, Duration::from_millis(300)).await;
    // The entry still waits, and a good decision (any case) is taken.
    let (event, _) = operator(
        &server,
        &mut table,
        "ovs-vsctl set Open_vSwitch . 'external_ids:augur-decision-0a1b2c3f=\"APPROVE by bob\"'",
    )
    .await;
    let (_, decision) = decided(event);
    assert_eq!(decision.by.as_deref(), Some("bob"));
    // Not handed over twice while the daemon works on it, even when other
    // keys change meanwhile.
    vsctl(&server, "set Open_vSwitch . external_ids:hostname=hv-7");
    quiet(&mut table, Duration::from_millis(300)).await;
    table
        .report(
            &EntryId::new("0a1b2c3f").unwrap(),
            &Status::new(
                Timestamp::now(),
                Outcome::Applied {
                    change: 2,
                    by: Some("bob".into()),
                },
            ),
        )
        .await
        .unwrap();

    // Decisions for no pending entry: a typo, and one already decided.
    let (event, _) = operator(
        &server,
        &mut table,
        "ovs-vsctl set Open_vSwitch . external_ids:augur-decision-deadbeef=approve",
    )
    .await;
    let (id, _) = ignored(event);
    assert_eq!(id, "deadbeef");
    assert!(
        get(&server, "augur-status-deadbeef")
            .unwrap()
            .starts_with("error: no pending change has this id"),
    );
    let (event, _) = operator(
        &server,
        &mut table,
        "ovs-vsctl set Open_vSwitch . external_ids:augur-decision-0a1b2c3d=reject",
    )
    .await;
    ignored(event);
    let status = get(&server, "augur-status-0a1b2c3d").unwrap();
    assert!(
        status.starts_with(&format!("error: no longer pending (it was {applied})")),
        "{status}"
    );

    assert_others_untouched(&server);
    assert_eq!(get(&server, "hostname").as_deref(), Some("hv-7"));
    let listing = String::from_utf8(sh(&server, LIST).stdout).unwrap();
    println!("listing at the end:\n{listing}");
    assert!(listing.lines().all(|l| l.starts_with("augur-status-")));
}

#[tokio::test]
async fn undecided_entries_expire_and_statuses_retire() {
    let Some(server) = server() else { return };
    let settings = PendingSettings {
        expire_after_secs: 2,
        keep_status_secs: 2,
    };
    let mut table = PendingTable::open(&server.unix_target(), settings.clone())
        .await
        .unwrap();
    let a = entry("aa", "allow a -> b tcp/22", &settings);
    table.publish(std::slice::from_ref(&a)).await.unwrap();
    let (event, took) = next(&mut table, Duration::from_secs(5)).await;
    assert_eq!(event, PendingEvent::Expired { id: a.id.clone() });
    println!("expired after {took:?}");
    let status = get(&server, "augur-status-aa").unwrap();
    assert!(status.starts_with("expired at "), "{status}");
    assert_eq!(get(&server, "augur-pending-aa"), None);
    let (event, _) = next(&mut table, Duration::from_secs(5)).await;
    assert_eq!(event, PendingEvent::StatusRetired { id: "aa".into() });
    assert_eq!(get(&server, "augur-status-aa"), None);

    // `expire` on its own, for an entry queued long ago.
    let old = PendingEntry::new(
        EntryId::new("bb").unwrap(),
        a.summary.clone(),
        Timestamp::from_unix_secs(Timestamp::now().unix_secs() - 3600),
        &settings,
    );
    table.publish(std::slice::from_ref(&old)).await.unwrap();
    while !table.external_ids().contains_key("augur-pending-bb") {
        table.changed().await.unwrap();
    }
    assert_eq!(
        table.expire(Timestamp::now()).await.unwrap(),
        vec![old.id.clone()]
    );
    assert!(
        get(&server, "augur-status-bb")
            .unwrap()
            .starts_with("expired at ")
    );
    assert_others_untouched(&server);
}

#[tokio::test]
async fn entries_and_decisions_survive_restarts() {
    let Some(mut server) = server() else { return };
    let settings = settings();
    let mut table = PendingTable::open(&server.unix_target(), settings.clone())
        .await
        .unwrap();
    let a = entry("a1", "allow a -> b tcp/22", &settings);
    let b = entry("b2", "allow a -> c tcp/3306", &settings);
    table.publish(&[a.clone(), b.clone()]).await.unwrap();

    // ovsdb-server dies; the operator decides as soon as it is back, while
    // augur is still reconnecting.
    server.restart();
    assert_eq!(
        get(&server, "augur-pending-a1").as_deref(),
        Some(a.value().as_str())
    );
    assert_eq!(
        get(&server, "augur-pending-b2").as_deref(),
        Some(b.value().as_str())
    );
    vsctl(
        &server,
        "set Open_vSwitch . external_ids:augur-decision-a1=approve",
    );
    let start = Instant::now();
    let (event, _) = next(&mut table, Duration::from_secs(20)).await;
    println!(
        "decision picked up {:?} after the server restart",
        start.elapsed()
    );
    let (entry_a, decision) = decided(event);
    assert_eq!((entry_a.id, decision.verdict), (a.id, Verdict::Approve));

    // augur dies before recording a decision: the next augur gets it again.
    vsctl(
        &server,
        "set Open_vSwitch . 'external_ids:augur-decision-b2=\"reject: not now\"'",
    );
    let (event, _) = next(&mut table, WITHIN).await;
    assert_eq!(decided(event).0.id, b.id);
    drop(table);
    let mut table = PendingTable::open(&server.unix_target(), settings)
        .await
        .unwrap();
    let mut seen = BTreeMap::new();
    for _ in 0..2 {
        let (event, _) = next(&mut table, WITHIN).await;
        let (entry, decision) = decided(event);
        seen.insert(entry.id.as_str().to_owned(), decision.verdict);
    }
    assert_eq!(
        seen,
        BTreeMap::from([
            ("a1".to_owned(), Verdict::Approve),
            ("b2".to_owned(), Verdict::Reject)
        ])
    );
    assert_others_untouched(&server);
}

/// Runs `augur <args>` and returns (status code, stdout, stderr).
async fn augur(args: Vec<String>) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(&args)
            .env_remove("AUGUR_LOG")
            .env_remove("SUDO_USER")
            .env("USER", "dave")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn augur_pending_approve_and_reject() {
    let Some(server) = server() else { return };
    let db = server.unix_target();
    let settings = settings();
    let mut table = PendingTable::open(&db, settings.clone()).await.unwrap();
    let a = entry("c0ffee01", "allow web -> db tcp/5432", &settings);
    let b = entry("c0ffee02", "allow any -> web tcp/22", &settings);
    table.publish(&[a.clone(), b.clone()]).await.unwrap();

    // A stand-in for the daemon: applies approvals as numbered changes.
    let daemon = tokio::spawn(async move {
        let mut change = 0;
        loop {
            let Ok(event) = table.next_event().await else {
                return;
            };
            if let PendingEvent::Decided { entry, decision } = event {
                let outcome = match decision.verdict {
                    Verdict::Approve => {
                        change += 1;
                        Outcome::Applied {
                            change,
                            by: decision.by,
                        }
                    }
                    Verdict::Reject => Outcome::Rejected {
                        by: decision.by,
                        reason: decision.reason,
                    },
                };
                let status = Status::new(Timestamp::now(), outcome);
                table.report(&entry.id, &status).await.unwrap();
            }
        }
    });

    let (code, out, err) = augur(args(&["pending", "--db", &db])).await;
    assert_eq!(code, Some(0), "{err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID "), "{out}");
    for (line, e) in lines[1..].iter().zip([&a, &b]) {
        assert!(line.starts_with(e.id.as_str()), "{line}");
        assert!(line.contains(&e.summary.change), "{line}");
        assert!(line.contains("0.72 high"), "{line}");
        assert!(line.ends_with("waiting for a decision"), "{line}");
    }

    let start = Instant::now();
    let (code, out, err) =
        augur(args(&["approve", "c0ffee01", "--by", "carol", "--db", &db])).await;
    assert_eq!(code, Some(0), "{err}");
    println!("augur approve answered in {:?}: {out}", start.elapsed());
    assert!(
        out.starts_with("c0ffee01: applied as change 1 at ")
            && out.ends_with("(approved by carol)\n"),
        "{out}"
    );

    let (code, out, err) = augur(args(&[
        "reject", "c0ffee02", "--reason", "not now", "--db", &db,
    ]))
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("c0ffee02: rejected by dave at ") && out.ends_with(": not now\n"),
        "{out}"
    );

    // Unknown and already decided ids.
    let (code, out, err) = augur(args(&["approve", "ffff", "--db", &db])).await;
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(
        err,
        "augur: no pending change ffff (`augur pending` lists them)\n"
    );
    let (code, _, err) = augur(args(&["reject", "c0ffee01", "--db", &db])).await;
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("augur: c0ffee01 is not pending: it was applied as change 1 at "),
        "{err}"
    );
    let (code, _, err) = augur(args(&["approve", "NOT-HEX", "--db", &db])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("is not an entry id"), "{err}");

    let (code, out, err) = augur(args(&["pending", "--db", &db, "--json"])).await;
    assert_eq!(code, Some(0), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed = json.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{out}");
    assert_eq!(listed[0]["id"], "c0ffee01");
    assert!(listed[0]["entry"].is_null());
    assert!(
        listed[0]["status"]
            .as_str()
            .unwrap()
            .starts_with("applied as change 1")
    );
    assert!(
        listed[1]["status"]
            .as_str()
            .unwrap()
            .starts_with("rejected by dave")
    );

    // Without augur running the decision is still written, and waits.
    daemon.abort();
    let _ = daemon.await;
    let mut table = PendingTable::open(&db, settings.clone()).await.unwrap();
    let c = entry("c0ffee03", "allow web -> cache tcp/6379", &settings);
    table.publish(std::slice::from_ref(&c)).await.unwrap();
    let (code, out, err) = augur(args(&["approve", "c0ffee03", "--wait", "1", "--db", &db])).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        "c0ffee03: decision written: approve by dave; augur has not recorded an outcome \
         within 1 s (it acts on the decision when it runs)\n"
    );
    let (event, _) = next(&mut table, WITHIN).await;
    assert_eq!(decided(event).1.by.as_deref(), Some("dave"));
    let (code, _, err) = augur(args(&["reject", "c0ffee03", "--db", &db])).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("already has a decision"), "{err}");
    assert_others_untouched(&server);
}
