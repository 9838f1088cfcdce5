//! One full counter poll of 100,000 augur flows on a real OVS bridge,
//! against `ovs-ofctl -O OpenFlow13 dump-flows` of the same bridge to
//! /dev/null, in the same run. augur's side is what the daemon does each
//! poll: the FLOW multipart request filtered by augur's cookie prefix, the
//! replies decoded, counter deltas taken and turned into records.
//!
//! A benchmark, so ignored by default; run it optimised:
//! `cargo test --release --test observer_poll_bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use augur::observer::{CounterTracker, RuleTargets, allowed_records};
use augur::policy::{Cookie, Origin};
use augur_flows::Timestamp;
use augur_openflow::session::SessionConfig;
use augur_openflow::{Body, Match};
use augur_openflow::{MultipartReplyBody, MultipartRequest, TABLE_ALL};
use support::ovs::TestBridge;

const FLOWS: u32 = 100_000;
const RUNS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release -- --ignored"]
async fn poll_of_100k_flows_against_ovs_ofctl() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let Some(bridge) = TestBridge::new(listener.local_addr().unwrap().port()) else {
        return;
    };
    // Connected first: OVS gives up on a connection left waiting.
    let (stream, peer) = tokio::time::timeout(Duration::from_secs(60), listener.accept())
        .await
        .expect("the bridge did not connect")
        .unwrap();
    let config = SessionConfig {
        request_timeout: Duration::from_secs(120),
        ..SessionConfig::default()
    };
    let (handle, _messages, _task) = augur::switch::connect(stream, peer, config).await.unwrap();
    // Rule flows of many rules, each with its own match, as a large policy
    // compiles to.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows.txt");
    let mut text = String::with_capacity(FLOWS as usize * 96);
    for n in 0..FLOWS {
        let cookie = Cookie::new(1, Origin::Rule(n % 40_000)).0;
        let prio = 50_000 - (n % 40_000);
        let (b, c) = (n >> 8 & 0xff, n & 0xff);
        text.push_str(&format!(
            "cookie={cookie:#x},table=5,priority={prio},tcp,nw_src=10.{}.{b}.{c},tp_dst=443 actions=drop\n",
            n >> 16
        ));
    }
    std::fs::File::create(&file)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let file = file.display().to_string();
    bridge.ofctl("add-flows", &[&file]);

    let targets = RuleTargets::default();
    let bridge_name: Arc<str> = Arc::from(bridge.name());
    let mut tracker = CounterTracker::new();

    let mut augur_times = Vec::new();
    let mut ofctl_times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let (cookie, mask) = Cookie::augur_filter();
        let request = MultipartRequest::flow_stats(TABLE_ALL, cookie, mask, Match::new());
        let replies = handle
            .request(Body::MultipartRequest(request))
            .await
            .unwrap();
        let mut flows = Vec::new();
        for reply in replies {
            if let Body::MultipartReply(r) = reply.body
                && let MultipartReplyBody::Flow(mut part) = r.body
            {
                flows.append(&mut part);
            }
        }
        let (deltas, summary) = tracker.update(&flows);
        let (records, _) = allowed_records(&deltas, &targets, Timestamp(0), &bridge_name);
        augur_times.push(started.elapsed());
        assert_eq!(summary.flows, FLOWS as usize);
        drop(records);

        let started = Instant::now();
        let status = Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "dump-flows", bridge.name()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        ofctl_times.push(started.elapsed());
        assert!(status.success());
    }
    let best = |t: &[Duration]| t.iter().min().copied().unwrap();
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (a, o) = (best(&augur_times), best(&ofctl_times));
    println!(
        "poll of {FLOWS} flows: augur best {:.1} ms (median {:.1}), ovs-ofctl best {:.1} ms (median {:.1}); augur/ovs-ofctl = {:.2}",
        a.as_secs_f64() * 1e3,
        median(&mut augur_times).as_secs_f64() * 1e3,
        o.as_secs_f64() * 1e3,
        median(&mut ofctl_times).as_secs_f64() * 1e3,
        a.as_secs_f64() / o.as_secs_f64()
    );
}
