//! The live observer against a real Open vSwitch bridge (userspace
//! datapath): packets injected on two VM ports run through augur's pipeline;
//! the allowed connections come back as records of the right VMs, protocol
//! and service port from the counter polls, and the denied attempts come
//! back from the sampled packet-ins with their ports.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use augur::store::{SignatureStore, StoreSettings};
use augur_flows::{Endpoint, Protocol, WindowConfig};
use support::eventually;
use support::observed::{self, WAIT, syn};
use support::ovs::{ovs_usable, skip_without_ovs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_and_denied_traffic_reach_the_history() {
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
        ofport_b: _,
        history,
    } = observed::start("", "", "table=7").await;

    let in_port = ofport_a.to_string();
    for src_port in [40001, 40002, 40003] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 5432)]);
    }
    for src_port in [41001, 41002] {
        bridge.ofctl("packet-out", &[&in_port, "table", &syn(src_port, 22)]);
    }

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
            let denied = signature
                .services
                .iter()
                .find(|s| s.protocol == Protocol::TCP && s.port == 22)
                .map_or(0, |s| s.denied);
            if allowed >= 3 && denied >= 2 {
                Ok(signature)
            } else {
                Err(format!("{:?}", signature.services))
            }
        },
    )
    .await;
    let allowed = signature.services.iter().find(|s| s.port == 5432).unwrap();
    assert_eq!(allowed.connections, 3, "{:?}", signature.services);
    assert_eq!(allowed.packets, 3);
    assert_eq!(allowed.denied, 0);
    let denied = signature.services.iter().find(|s| s.port == 22).unwrap();
    assert_eq!(denied.denied, 2, "{:?}", signature.services);
    assert!(signature.denied.attempts >= 2);
    daemon.shutdown().await;
}
