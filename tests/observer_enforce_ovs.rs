//! Enforce mode's per-connection volume against a real Open vSwitch bridge
//! (userspace datapath): an allow rule's flow samples each admitted
//! opening, a resent opening is not another connection (its packet is
//! counted as the connection's volume), and a connection's
//! counting flow is reported by the counter polls while it runs, its
//! FLOW_REMOVED adding only what the polls had not reported.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use augur::store::{SignatureStore, StoreSettings};
use augur_flows::{Endpoint, Protocol, Signature, WindowConfig};
use support::eventually;
use support::observed::{self, WAIT, counting_flow_installed, datagram, syn};
use support::ovs::{ovs_usable, skip_without_ovs};

/// Ethernet 14 + IPv4 20 + UDP 8 bytes of headers per datagram.
const UDP_HEADERS: u64 = 14 + 20 + 8;

fn signature(history: &std::path::Path) -> Result<Signature, String> {
    let settings = StoreSettings {
        window: WindowConfig::with_length(2).unwrap(),
        ..StoreSettings::default()
    };
    let store =
        SignatureStore::open_at_last_window(history, settings).map_err(|e| e.to_string())?;
    store
        .pair_signature(&Endpoint::vm("a"), &Endpoint::vm("b"))
        .ok_or_else(|| "no signature of a → b yet".to_owned())
}

/// (connections, packets, bytes) of one service in a signature.
fn service(signature: &Signature, protocol: Protocol, port: u16) -> (u64, u64, u64) {
    signature
        .services
        .iter()
        .find(|s| s.protocol == protocol && s.port == port)
        .map_or((0, 0, 0), |s| (s.connections, s.packets, s.bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_mode_counts_each_admitted_connection_once_and_exactly() {
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
    } = observed::start("", "connection_idle = \"6s\"", "table=7").await;
    let (in_a, in_b) = (ofport_a.to_string(), ofport_b.to_string());

    // One SYN sent three times (the client retransmitting) and one other
    // SYN: two connections, though the rule admitted four openings.
    for src_port in [40001, 40001, 40001, 40002] {
        bridge.ofctl("packet-out", &[&in_a, "table", &syn(src_port, 5432)]);
    }

    // A UDP exchange under the UDP rule: the first datagram is sampled and
    // opens the counting flow.
    bridge.ofctl(
        "packet-out",
        &[&in_a, "table", &datagram(true, 40500, 5353, 100)],
    );
    eventually(
        "the connection's counting flow is installed",
        WAIT,
        Duration::from_millis(100),
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
    for _ in 0..3 {
        bridge.ofctl(
            "packet-out",
            &[&in_b, "table", &datagram(false, 5353, 40500, 200)],
        );
    }
    for _ in 0..2 {
        bridge.ofctl(
            "packet-out",
            &[&in_a, "table", &datagram(true, 40500, 5353, 100)],
        );
    }
    let (request, reply) = (UDP_HEADERS + 100, UDP_HEADERS + 200);

    // While the connection runs, the polls report what it carried so far.
    eventually(
        "the running connection's volume is recorded before it ends",
        WAIT,
        Duration::from_millis(200),
        || {
            let signature = signature(&history)?;
            let flows = bridge.dump_flows(&["--no-stats"]);
            if !counting_flow_installed(&flows) {
                return Err("the counting flow expired first".into());
            }
            match service(&signature, Protocol::UDP, 5353) {
                (1, 6, bytes) if bytes == 3 * request + 3 * reply => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    // More traffic, then the counting flow idles out: its FLOW_REMOVED
    // holds all 10 packets, of which the polls already reported 6 or more.
    for _ in 0..4 {
        bridge.ofctl(
            "packet-out",
            &[&in_a, "table", &datagram(true, 40500, 5353, 100)],
        );
    }
    eventually(
        "the counting flow expires",
        WAIT,
        Duration::from_millis(300),
        || {
            let flows = bridge.dump_flows(&["--no-stats"]);
            if counting_flow_installed(&flows) {
                Err(flows)
            } else {
                Ok(())
            }
        },
    )
    .await;
    // Two more polls and the window closing, so that anything counted
    // twice would have arrived.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let signature = signature(&history).unwrap();
    assert_eq!(
        service(&signature, Protocol::UDP, 5353),
        (1, 10, 7 * request + 3 * reply),
        "{:?}",
        signature.services
    );
    let (connections, packets, _) = service(&signature, Protocol::TCP, 5432);
    assert_eq!(connections, 2, "{:?}", signature.services);
    // Every SYN is counted once: the resent ones are volume of their
    // connection, from their samples.
    assert_eq!(packets, 4, "{:?}", signature.services);
    assert_eq!(signature.denied.attempts, 0);
    daemon.shutdown().await;
}
