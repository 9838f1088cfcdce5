//! Learn mode against a real Open vSwitch bridge (userspace datapath): a
//! connection that enforce mode would deny passes the pipeline and comes
//! back as an allowed record of the right VMs and service port from the
//! learn flow's sampled packet-ins, while a connection a rule allows is
//! still counted under its rule.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use augur::store::{SignatureStore, StoreSettings};
use augur_flows::{Endpoint, Protocol, WindowConfig};
use support::eventually;
use support::observed::{self, WAIT, counting_flow_installed, datagram, syn};
use support::ovs::{ovs_usable, skip_without_ovs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learn_mode_admits_and_records_what_enforce_would_deny() {
    if let Err(why) = ovs_usable() {
        skip_without_ovs(&why);
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("AUGUR_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let observed::Observed {
        dir: _dir,
        daemon,
        bridge,
        ofport_a,
        ofport_b,
        history,
    } = observed::start("mode = \"learn\"", "connection_idle = \"3s\"", "meter_id=").await;

    let in_port = ofport_a.to_string();
    for src_port in [40001, 40002, 40003] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 5432)]);
    }
    for src_port in [41001, 41002] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 22)]);
    }

    // Both SSH attempts pass the learn flow and none reaches the deny stage.
    eventually(
        "the learn flow passes the unruled connections",
        WAIT,
        Duration::from_millis(300),
        || {
            let flows = bridge.dump_flows(&[]);
            let learn = flows
                .lines()
                .find(|l| {
                    l.contains("table=5") && l.contains("priority=1,ct_state=+new-inv+trk,ip ")
                })
                .ok_or_else(|| flows.clone())?;
            let denied = flows
                .lines()
                .filter(|l| l.contains("table=7") && l.contains("priority=100"))
                .any(|l| !l.contains("n_packets=0,"));
            if learn.contains("n_packets=2,") && !denied {
                Ok(())
            } else {
                Err(flows.clone())
            }
        },
    )
    .await;

    // A UDP exchange: the first datagram is sampled and opens a counting
    // flow; the reply and the later datagrams are counted by it in both
    // directions, and its FLOW_REMOVED reports them.
    bridge.ofctl(
        "packet-out",
        &[&in_port, "table", &datagram(true, 40500, 5353, 100)],
    );
    eventually(
        "the connection's counting flow is installed",
        WAIT,
        Duration::from_millis(300),
        || {
            let flows = bridge.dump_flows(&["--no-stats"]);
            if counting_flow_installed(&flows) {
                Ok(())
            } else {
                Err(flows)
            }
        },
    )
    .await;
    let in_port_b = ofport_b.to_string();
    for _ in 0..3 {
        bridge.ofctl(
            "packet-out",
            &[&in_port_b, "table", &datagram(false, 5353, 40500, 200)],
        );
    }
    for _ in 0..2 {
        bridge.ofctl(
            "packet-out",
            &[&in_port, "table", &datagram(true, 40500, 5353, 100)],
        );
    }
    // Ethernet 14 + IPv4 20 + UDP 8 bytes of headers per datagram.
    let (request, reply) = (14 + 20 + 8 + 100, 14 + 20 + 8 + 200);

    let (a, b) = (Endpoint::vm("a"), Endpoint::vm("b"));
    let settings = StoreSettings {
        window: WindowConfig::with_length(2).unwrap(),
        ..StoreSettings::default()
    };
    let signature = eventually(
        "records of a → b are stored",
        WAIT,
        Duration::from_millis(300),
        || {
            let store = SignatureStore::open_at_last_window(&history, settings)
                .map_err(|e| e.to_string())?;
            let signature = store
                .pair_signature(&a, &b)
                .ok_or_else(|| "no signature of a → b yet".to_owned())?;
            let allowed = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::TCP && s.port == 5432)
                .map_or(0, |s| s.connections);
            let learned = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::TCP && s.port == 22)
                .map_or(0, |s| s.connections);
            let udp = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::UDP && s.port == 5353)
                .map_or(0, |s| s.packets);
            if allowed >= 3 && learned >= 2 && udp >= 6 {
                Ok(signature)
            } else {
                Err(format!("{:?}", signature.services))
            }
        },
    )
    .await;
    let allowed = signature.services.iter().find(|s| s.port == 5432).unwrap();
    assert_eq!(allowed.connections, 3, "{:?}", signature.services);
    assert_eq!(allowed.denied, 0);
    let learned = signature.services.iter().find(|s| s.port == 22).unwrap();
    assert_eq!(learned.connections, 2, "{:?}", signature.services);
    assert_eq!(learned.packets, 2);
    assert_eq!(learned.denied, 0);
    let udp = signature.services.iter().find(|s| s.port == 5353).unwrap();
    assert_eq!(udp.protocol, Protocol::UDP);
    assert_eq!(udp.connections, 1, "{:?}", signature.services);
    assert_eq!(udp.packets, 6);
    assert_eq!(udp.bytes, 3 * request + 3 * reply);
    // The clients' ephemeral ports never become services, nor do the
    // replies from the server's port.
    assert!(
        signature
            .services
            .iter()
            .all(|s| [22, 5432, 5353].contains(&s.port)),
        "{:?}",
        signature.services
    );
    assert_eq!(signature.denied.attempts, 0);
    daemon.shutdown().await;
}
