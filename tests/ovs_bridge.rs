//! The Open vSwitch test harness works: a [`TestBridge`] connects to a
//! controller listening in the test, speaks OpenFlow our codec decodes, and
//! its helpers manage ports and flows. Skips without OVS unless
//! `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use augur_openflow::{Body, Deframer, Message, Version};
use bytes::BytesMut;
use support::ovs::TestBridge;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Long enough for a loaded two-core machine; OVS connects at once normally.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads from `stream` until one whole OpenFlow message has arrived.
async fn read_message(stream: &mut TcpStream, buf: &mut BytesMut) -> Message {
    loop {
        if let Some(frame) = Deframer::default().next_frame(buf).unwrap() {
            return Message::decode(&frame).unwrap();
        }
        let n = timeout(CONNECT_TIMEOUT, stream.read_buf(buf))
            .await
            .expect("OVS sent no complete message in time")
            .unwrap();
        assert_ne!(n, 0, "OVS closed the connection");
    }
}

#[tokio::test]
async fn bridge_connects_to_its_controller_and_says_hello() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(bridge) = TestBridge::new(port) else {
        return;
    };
    assert!(bridge.name().starts_with("aug") && bridge.name().len() <= 15);

    let (mut stream, _) = timeout(CONNECT_TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("bridge {} did not connect", bridge.name()))
        .unwrap();
    let mut buf = BytesMut::new();
    let hello = read_message(&mut stream, &mut buf).await;
    assert!(
        matches!(hello.body, Body::Hello(_)),
        "expected HELLO, got {hello}"
    );
    // OVS opens with the highest version it is configured for.
    assert_eq!(hello.version, Version::OF14, "{hello}");
}

#[test]
fn helpers_manage_ports_and_flows() {
    // A controller port nobody listens on: the bridge keeps retrying, which
    // does not disturb flows installed by hand.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(mut bridge) = TestBridge::new(port) else {
        return;
    };
    let name = bridge.name().to_owned();
    let internal = bridge.add_internal_port();
    assert!(internal.starts_with(&name) && internal.len() <= 15);
    let ofport = bridge.ofport(&internal);
    assert!(ofport >= 1, "ofport {ofport}");
    assert!(!bridge.controller_connected());

    // fail_mode=secure and no controller: the table starts empty.
    let empty = bridge.dump_flows(&[]);
    assert!(!empty.contains("priority="), "{empty}");

    let flow = format!("priority=123,in_port={ofport},actions=drop");
    bridge.ofctl("add-flow", &[&flow]);
    let flows = bridge.dump_flows(&["--no-stats"]);
    assert!(flows.contains("priority=123"), "{flows}");

    drop(bridge);
    let exists = std::process::Command::new("ovs-vsctl")
        .args(["br-exists", &name])
        .status()
        .unwrap();
    // br-exists exits 2 when the bridge does not exist.
    assert_eq!(exists.code(), Some(2), "bridge {name} survived its drop");
}
