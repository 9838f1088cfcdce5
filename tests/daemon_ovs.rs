//! `augur run` against real Open vSwitch bridges (userspace datapath): the
//! daemon brings two bridges to the compiled policy, follows a policy edit,
//! leaves a foreign flow alone, repairs a flow deleted behind its back, and
//! a daemon killed with SIGKILL and started again finds the switch holding
//! exactly the desired flows and changes nothing. Also: `augur run` with a
//! bad configuration exits 1 naming file, line, setting and reason.
//!
//! Each test skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur::daemon::{self, Daemon};
use augur::policy::Cookie;
use support::example::{POLICY, inventory_on};
use support::ovs::{TestBridge, ovs_usable, skip_without_ovs};
use support::{eventually, write_atomically};

/// Long enough for a loaded two-core machine shared with other test runs.
const WAIT: Duration = Duration::from_secs(60);

/// augur's flows on `bridge`, as `ovs-ofctl -O OpenFlow14 dump-flows`
/// prints them, normalized.
fn installed(bridge: &TestBridge) -> BTreeSet<String> {
    let (cookie, mask) = Cookie::augur_filter();
    bridge.flow_set(&[&format!("cookie={cookie:#x}/{mask:#x}")])
}

/// The compiled table of `bridge` as `ovs-ofctl` prints it, normalized: the
/// flows are installed with augur's codec on a scratch bridge and dumped
/// back, so both sides of a comparison are OVS's own text.
async fn desired(desired: &daemon::Desired, bridge: &TestBridge) -> BTreeSet<String> {
    let flows = desired
        .compiled
        .bridge(bridge.name())
        .unwrap_or_else(|| panic!("{} is not in the compiled policy", bridge.name()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scratch = TestBridge::new(listener.local_addr().unwrap().port()).unwrap();
    let (stream, peer) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the scratch bridge did not connect")
        .unwrap();
    let (handle, _messages, _task) = augur::switch::connect(stream, peer, Default::default())
        .await
        .unwrap();
    let meters = flows
        .meters
        .iter()
        .map(|m| augur_openflow::Body::MeterMod(m.to_meter_mod()))
        .collect();
    handle.apply(meters).await.unwrap();
    let mods = flows
        .flows
        .iter()
        .map(|f| augur_openflow::Body::FlowMod(f.to_flow_mod()))
        .collect();
    handle.apply(mods).await.unwrap();
    let text = installed(&scratch);
    assert_eq!(
        text.len(),
        flows.flows.len(),
        "flows the scratch bridge merged"
    );
    text
}

/// Equal sets, or the difference.
fn same(installed: &BTreeSet<String>, desired: &BTreeSet<String>) -> Result<(), String> {
    if installed == desired {
        return Ok(());
    }
    let missing: Vec<_> = desired.difference(installed).take(3).collect();
    let extra: Vec<_> = installed.difference(desired).take(3).collect();
    Err(format!(
        "{} installed, {} desired; missing e.g. {missing:#?}; extra e.g. {extra:#?}",
        installed.len(),
        desired.len()
    ))
}

/// The value of the sample whose line starts with `prefix` (0 if absent).
fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `GET /metrics` from the daemon's endpoint.
fn scrape(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: augur\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "metrics answered {response}"
    );
    response
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn ovs_here() -> bool {
    match ovs_usable() {
        Ok(()) => true,
        Err(why) => {
            skip_without_ovs(&why);
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_two_bridges_at_the_policy() {
    if !ovs_here() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            std::env::var("AUGUR_TEST_LOG").unwrap_or_else(|_| "warn,augur::daemon=info".into()),
        )
        .with_test_writer()
        .try_init();
    let files = Files::new();
    let policy = files.path("policy.toml");
    let inventory_file = files.path("inventory.toml");
    write_atomically(&policy, POLICY);
    // No bridge yet: the bridges are made once the daemon's port is known.
    write_atomically(&inventory_file, "");
    let config = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "200ms"
[listen]
tcp = "127.0.0.1:0"
[openflow]
audit_interval = "2s"
[metrics]
address = "127.0.0.1:0"
"#,
        policy.display(),
        inventory_file.display()
    );
    let loaded = daemon::config::load_text(&config, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let port = daemon.tcp_addresses()[0].port();
    let metrics = daemon.metrics_address().unwrap();

    let s1 = TestBridge::new(port).unwrap();
    let s2 = TestBridge::new(port).unwrap();
    let text = toml::to_string(&inventory_on(Some(&s1), Some(&s2))).unwrap();
    write_atomically(&inventory_file, &text);

    let desired_rx = daemon.desired();
    let current = || desired_rx.borrow().clone().unwrap();
    eventually(
        "the inventory is reloaded",
        WAIT,
        Duration::from_millis(200),
        || {
            let d = current();
            d.compiled
                .bridge(s2.name())
                .map(|_| ())
                .ok_or_else(|| "not yet".to_owned())
        },
    )
    .await;
    let v1 = current();
    for bridge in [&s1, &s2] {
        let want = desired(&v1, bridge).await;
        eventually(
            &format!("{} holds the compiled table", bridge.name()),
            WAIT,
            Duration::from_millis(200),
            || same(&installed(bridge), &want),
        )
        .await;
    }
    let expected = v1.compiled.bridge(s1.name()).unwrap().flows.len();
    eventually(
        "metrics report both switches and the flows",
        WAIT,
        Duration::from_millis(200),
        || {
            let text = scrape(metrics);
            let needles = [
                "augur_switches_connected 2".to_owned(),
                format!(
                    "augur_flows_installed{{bridge=\"{}\"}} {expected}",
                    s1.name()
                ),
                format!("augur_apply_seconds_count{{bridge=\"{}\"}}", s1.name()),
                "augur_openflow_messages_sent_total{type=\"bundle_add\"}".to_owned(),
            ];
            match needles.iter().find(|n| !text.contains(n.as_str())) {
                None => Ok(()),
                Some(n) => Err(format!("{n:?} not in {text}")),
            }
        },
    )
    .await;

    // Peers that are not well-behaved switches: one sends a header whose
    // length is shorter than a header, one connects and says nothing. They
    // end or wait out their own connections; the bridges go on below.
    let mut broken = TcpStream::connect(daemon.tcp_addresses()[0]).unwrap();
    broken
        .write_all(&[0x04, 0x00, 0x00, 0x02, 0, 0, 0, 1])
        .unwrap();
    let _silent = TcpStream::connect(daemon.tcp_addresses()[0]).unwrap();
    eventually(
        "the broken peer is dropped",
        WAIT,
        Duration::from_millis(200),
        || {
            let text = daemon.metrics().encode();
            if text.contains("augur_switch_disconnects_total{reason=\"malformed\"} 1") {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;

    // A flow that is not augur's survives everything that follows.
    let foreign = "cookie=0x1234,table=0,priority=7,in_port=99,actions=drop";
    s1.ofctl("add-flow", &[foreign]);

    // A policy edit: another database port, no maintenance rule.
    let edited = POLICY
        .replace("port = 5432", "port = 5433")
        .split("[[allow]]\nname = \"temporary maintenance access\"")
        .next()
        .unwrap()
        .to_owned();
    write_atomically(&policy, &edited);
    eventually(
        "the edited policy is compiled",
        WAIT,
        Duration::from_millis(200),
        || {
            if current().version != v1.version {
                Ok(())
            } else {
                Err("still the first version".into())
            }
        },
    )
    .await;
    let v2 = current();
    let mut want_v2 = Vec::new();
    for bridge in [&s1, &s2] {
        let want = desired(&v2, bridge).await;
        eventually(
            &format!("{} holds the edited table", bridge.name()),
            WAIT,
            Duration::from_millis(200),
            || same(&installed(bridge), &want),
        )
        .await;
        want_v2.push(want);
    }
    // Rule flows carry the version of the policy that introduced their
    // rule; the pipeline's flows keep tags of their own content.
    let cookie_of = |flow: &str| {
        flow.split("cookie=0x")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .and_then(Cookie::from_raw)
    };
    let rule_flows: Vec<Cookie> = installed(&s1)
        .iter()
        .filter_map(|f| cookie_of(f))
        .filter(|c| matches!(c.origin(), Some(augur::policy::Origin::Rule(_))))
        .collect();
    assert!(!rule_flows.is_empty());
    assert!(
        rule_flows.iter().all(|c| c.version() == v2.version),
        "every rule flow carries the new version {:#06x}",
        v2.version
    );
    let foreign_now = s1.dump_flows(&["cookie=0x1234/-1"]);
    assert!(
        foreign_now.contains("in_port=99"),
        "the foreign flow is gone: {foreign_now}"
    );

    // A flow of augur's deleted behind its back comes back at the next audit:
    // exactly one add on that bridge.
    let adds = format!(
        "augur_flow_changes_total{{bridge=\"{}\",change=\"add\"}} ",
        s2.name()
    );
    let adds_now = || metric(&daemon.metrics().encode(), &adds);
    let before = adds_now();
    let victim = v2.compiled.bridge(s2.name()).unwrap().flows[0].clone();
    s2.ofctl(
        "del-flows",
        &[
            "--strict",
            &format!(
                "table={},priority={},{}",
                victim.table_id, victim.priority, victim.match_
            ),
        ],
    );
    eventually(
        "the audit repairs the deleted flow",
        WAIT,
        Duration::from_millis(200),
        || {
            same(&installed(&s2), &want_v2[1])?;
            if adds_now() == before + 1 {
                Ok(())
            } else {
                Err(format!("{} adds after {before}", adds_now()))
            }
        },
    )
    .await;

    daemon.shutdown().await;
    // The switches keep enforcing without the controller.
    same(&installed(&s1), &want_v2[0]).unwrap();
}

/// A free TCP port on the loopback address (free now; the OS does not hand
/// it out again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The daemon binary with a configuration file, stderr to `log`.
fn spawn_augur(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("AUGUR_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
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

    /// Stops the monitor; returns the events it saw.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let file = std::fs::File::open(&self.output).unwrap();
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("event="))
            .collect()
    }
}

impl Drop for FlowMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_changes_nothing_on_a_switch_at_the_policy() {
    if !ovs_here() {
        return;
    }
    let files = Files::new();
    let port = free_port();
    let metrics_port = free_port();
    let bridge = TestBridge::new(port).unwrap();
    let policy = files.path("policy.toml");
    let inventory_file = files.path("inventory.json");
    write_atomically(&policy, POLICY);
    let inventory = inventory_on(Some(&bridge), None);
    write_atomically(
        &inventory_file,
        &serde_json::to_string_pretty(&inventory).unwrap(),
    );
    let config = files.path("augur.toml");
    write_atomically(
        &config,
        &format!(
            r#"policy = "{}"
inventory = {{ file = "{}" }}
[listen]
tcp = "127.0.0.1:{port}"
[metrics]
address = "127.0.0.1:{metrics_port}"
[logging]
format = "json"
"#,
            policy.display(),
            inventory_file.display()
        ),
    );
    // What the daemon will compile: the same inputs give the same version.
    let loaded = daemon::load(Some(&config), Vec::new()).unwrap();
    let (parsed, _) = daemon::sources::read_policy(&policy).unwrap();
    let want = daemon::compiler::compile_now(
        &parsed,
        &inventory,
        &loaded.config.compile,
        loaded.config.mode,
        1,
    )
    .unwrap();
    let want_flows = desired(&want, &bridge).await;

    let log = files.path("augur-1.log");
    let mut first = spawn_augur(&config, &log);
    eventually(
        "the first daemon installs the policy",
        WAIT,
        Duration::from_millis(200),
        || same(&installed(&bridge), &want_flows),
    )
    .await;

    let monitor = FlowMonitor::start(&bridge, files.path("monitor.txt"));
    // Let the monitor register before anything can happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    // Enforcement goes on without the controller.
    tokio::time::sleep(Duration::from_secs(1)).await;
    same(&installed(&bridge), &want_flows).unwrap();

    let log2 = files.path("augur-2.log");
    let mut second = spawn_augur(&config, &log2);
    let gauge = format!(
        "augur_flows_installed{{bridge=\"{}\"}} {}",
        bridge.name(),
        want_flows.len()
    );
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], metrics_port));
    eventually(
        "the second daemon has looked at the switch",
        WAIT,
        Duration::from_millis(200),
        || {
            let Ok(mut stream) = TcpStream::connect(metrics) else {
                return Err("metrics endpoint not up".into());
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "GET /metrics HTTP/1.1\r\nHost: augur\r\nConnection: close\r\n\r\n"
            );
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            if text.contains(&gauge) {
                Ok(())
            } else {
                Err(format!("{gauge:?} not in {text}"))
            }
        },
    )
    .await;
    same(&installed(&bridge), &want_flows).unwrap();
    let events = monitor.stop();
    let ours: Vec<&String> = events
        .iter()
        .filter(|e| e.contains("cookie=0x6175"))
        .collect();
    assert!(
        ours.is_empty(),
        "augur's flows changed across the restart: {ours:#?}"
    );
    let log_text = std::fs::read_to_string(&log2).unwrap();
    assert!(
        log_text.contains("switch identified"),
        "the second daemon's log: {log_text}"
    );

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = second.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "augur did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "augur exited with {exit} on SIGTERM");
    same(&installed(&bridge), &want_flows).unwrap();
}

#[test]
fn a_bad_configuration_exits_1_naming_file_line_setting_and_reason() {
    let files = Files::new();
    let config = files.path("augur.toml");
    write_atomically(
        &config,
        "policy = \"policy.toml\"\n[listen]\ntcp = \"localhost:6653\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "augur: {}:3:7: listen.tcp: \"localhost:6653\" is not a listen address",
        config.display()
    );
    assert!(stderr.starts_with(&expected), "stderr: {stderr}");

    // A policy that does not parse stops the start too, with its place.
    let policy = files.path("policy.toml");
    write_atomically(&policy, "[[allow]]\nfrom = \"nobody\"\nto = \"x\"\n");
    write_atomically(
        &config,
        &format!(
            "policy = \"{}\"\ninventory = {{ file = \"{}\" }}\n",
            policy.display(),
            files.path("missing.toml").display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("augur: {}:", policy.display())),
        "stderr: {stderr}"
    );
}

/// `ovs-vsctl get TABLE RECORD COLUMN`, trimmed.
fn vsctl_get(table: &str, record: &str, column: &str) -> String {
    support::ovs::vsctl(&["get", table, record, column])
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_makes_its_bridges_fail_closed_through_ovsdb() {
    if !ovs_here() {
        return;
    }
    let files = Files::new();
    let listener_port = free_port();
    let bridge = TestBridge::new(listener_port).unwrap();
    let controller = vsctl_get("bridge", bridge.name(), "controller")
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    // What a careless setup leaves: a bridge that fails open, in-band control.
    support::ovs::vsctl(&["set", "bridge", bridge.name(), "fail_mode=standalone"]);
    support::ovs::vsctl(&["set", "controller", &controller, "connection_mode=in-band"]);
    let policy = files.path("policy.toml");
    let inventory_file = files.path("inventory.toml");
    write_atomically(&policy, POLICY);
    write_atomically(
        &inventory_file,
        &toml::to_string(&inventory_on(Some(&bridge), None)).unwrap(),
    );
    let config = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
[listen]
tcp = "127.0.0.1:{listener_port}"
[ovsdb]
target = "unix:/var/run/openvswitch/db.sock"
controller_rate_limit = 1000
controller_burst_limit = 100
[metrics]
enabled = false
"#,
        policy.display(),
        inventory_file.display()
    );
    let loaded = daemon::config::load_text(&config, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    eventually(
        "the bridge is made fail-closed",
        WAIT,
        Duration::from_millis(200),
        || {
            let got = [
                vsctl_get("bridge", bridge.name(), "fail_mode"),
                vsctl_get("controller", &controller, "connection_mode"),
                vsctl_get("controller", &controller, "controller_rate_limit"),
                vsctl_get("controller", &controller, "controller_burst_limit"),
            ];
            if got == ["secure", "out-of-band", "1000", "100"] {
                Ok(())
            } else {
                Err(format!("bridge and controller settings are {got:?}"))
            }
        },
    )
    .await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_rule_is_removed_by_the_switch_and_not_added_again() {
    if !ovs_here() {
        return;
    }
    let files = Files::new();
    let port = free_port();
    let bridge = TestBridge::new(port).unwrap();
    let policy = files.path("policy.toml");
    let inventory_file = files.path("inventory.toml");
    let with_ttl = format!(
        "{POLICY}\n[[allow]]\nname = \"brief\"\nfrom = \"web\"\nto = \"db\"\nproto = \"tcp\"\nport = 22\nttl = \"4s\"\n"
    );
    write_atomically(&policy, &with_ttl);
    write_atomically(
        &inventory_file,
        &toml::to_string(&inventory_on(Some(&bridge), None)).unwrap(),
    );
    let config = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
[listen]
tcp = "127.0.0.1:{port}"
[ovsdb]
target = ""
[metrics]
enabled = false
"#,
        policy.display(),
        inventory_file.display()
    );
    let loaded = daemon::config::load_text(&config, None, Vec::new()).unwrap();
    let daemon = Daemon::start(loaded).await.unwrap();
    let first = daemon.desired().borrow().clone().unwrap();
    let rule_cookie = Cookie::new(first.version, augur::policy::Origin::Rule(6));
    let rule_flows = |flows: &BTreeSet<String>| {
        flows
            .iter()
            .filter(|f| f.contains(&format!("cookie={:#x}", rule_cookie.0)))
            .count()
    };
    let want = desired(&first, &bridge).await;
    assert!(rule_flows(&want) > 0, "the rule compiles to flows");
    eventually(
        "the policy with the brief rule is installed",
        WAIT,
        Duration::from_millis(200),
        || same(&installed(&bridge), &want),
    )
    .await;
    // The switch expires the rule's flows by itself; the daemon recompiles
    // without the rule and does not put them back.
    eventually(
        "the rule's flows expire",
        WAIT,
        Duration::from_millis(200),
        || {
            let now = installed(&bridge);
            let d = daemon.desired().borrow().clone().unwrap();
            if rule_flows(&now) == 0
                && d.compiled
                    .bridge(bridge.name())
                    .unwrap()
                    .flows
                    .iter()
                    .all(|f| f.cookie != rule_cookie)
            {
                Ok(())
            } else {
                Err(format!("{} of the rule's flows remain", rule_flows(&now)))
            }
        },
    )
    .await;
    let after = daemon.desired().borrow().clone().unwrap();
    assert_eq!(after.version, first.version, "the policy did not change");
    let want_after = desired(&after, &bridge).await;
    assert_eq!(want_after.len(), want.len() - rule_flows(&want));
    tokio::time::sleep(Duration::from_secs(2)).await;
    same(&installed(&bridge), &want_after).unwrap();
    daemon.shutdown().await;
}
