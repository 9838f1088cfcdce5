//! `augur probe`, run as a program: against a scripted switch (always) and
//! against a real Open vSwitch bridge (skipped without OVS unless
//! `AUGUR_REQUIRE_OVS=1`).

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use augur_openflow::msg::{Capabilities, SwitchFeatures};
use augur_openflow::multipart::{Desc, MultipartReply, MultipartReplyBody, MultipartReplyFlags};
use augur_openflow::{Body, Message, MsgType, Version};
use bytes::Bytes;
use serde_json::Value;
use support::ovs::TestBridge;

/// A running `augur probe --json` and the port it listens on.
struct Probe {
    child: Child,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Probe {
    fn start(timeout_secs: u64) -> Probe {
        let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args([
                "probe",
                "--listen",
                "tcp:127.0.0.1:0",
                "--json",
                "--timeout",
            ])
            .arg(timeout_secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let event: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(event["event"], "listening", "{first}");
        let address = event["address"].as_str().unwrap();
        let port = address.rsplit(':').next().unwrap().parse().unwrap();
        Probe {
            child,
            stdout,
            port,
        }
    }

    /// Waits for the probe to exit: (success, events after "listening", stderr).
    fn finish(mut self) -> (bool, Vec<Value>, String) {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = self.child.wait().unwrap();
        let events = rest
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        (status.success(), events, stderr)
    }
}

/// Reads one whole OpenFlow message from a blocking stream.
fn read_message(stream: &mut TcpStream) -> Message {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut frame = header.to_vec();
    frame.resize(len, 0);
    stream.read_exact(&mut frame[8..]).unwrap();
    Message::decode(&frame).unwrap()
}

#[test]
fn probe_completes_the_handshake_with_a_scripted_switch() {
    let probe = Probe::start(10);
    let mut switch = TcpStream::connect(("127.0.0.1", probe.port)).unwrap();
    switch
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    let hello = read_message(&mut switch);
    assert!(matches!(hello.body, Body::Hello(_)), "{hello}");
    // The switch offers 1.0 and 1.3 only: 1.3 must be chosen.
    switch
        .write_all(&[4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x12])
        .unwrap();
    let requests: Vec<Message> = (0..4).map(|_| read_message(&mut switch)).collect();
    assert!(requests.iter().all(|m| m.version == Version::OF13));
    let kinds: Vec<MsgType> = requests
        .iter()
        .map(|m| m.body.msg_type(m.version))
        .collect();
    assert_eq!(
        kinds,
        [
            MsgType::FEATURES_REQUEST,
            MsgType::SET_CONFIG,
            MsgType::MULTIPART_REQUEST,
            MsgType::MULTIPART_REQUEST
        ]
    );

    // The switch's own echo is answered in kind, mid-handshake.
    switch
        .write_all(&[4, 2, 0, 12, 0, 0, 0, 0x55, 1, 2, 3, 4])
        .unwrap();
    let echo = read_message(&mut switch);
    assert_eq!(echo.xid, 0x55);
    assert_eq!(
        echo.body,
        Body::EchoReply(Bytes::from_static(&[1, 2, 3, 4]))
    );

    let v = Version::OF13;
    let features = SwitchFeatures {
        datapath_id: 0x0000_1234_5678_9abc,
        n_buffers: 0,
        n_tables: 254,
        auxiliary_id: 0,
        capabilities: Capabilities(0x4f),
        reserved: 0,
    };
    let desc = Desc {
        mfr_desc: "Scripted".into(),
        hw_desc: "test".into(),
        sw_desc: "1.0".into(),
        serial_num: "None".into(),
        dp_desc: "scripted switch".into(),
    };
    let replies = [
        Message::new(v, requests[0].xid, Body::FeaturesReply(features)),
        Message::new(
            v,
            requests[2].xid,
            Body::MultipartReply(MultipartReply {
                flags: MultipartReplyFlags::default(),
                body: MultipartReplyBody::Desc(desc),
            }),
        ),
        Message::new(
            v,
            requests[3].xid,
            Body::MultipartReply(MultipartReply {
                flags: MultipartReplyFlags::default(),
                body: MultipartReplyBody::PortDesc(vec![]),
            }),
        ),
    ];
    for reply in &replies {
        switch.write_all(&reply.encode().unwrap()).unwrap();
    }
    // Once the probe has learned the switch it waits for asynchronous
    // messages; leaving ends it.
    std::thread::sleep(Duration::from_millis(200));
    drop(switch);

    let (success, events, stderr) = probe.finish();
    assert!(success, "{stderr}");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["connected", "switch", "closed"]);
    let switch = &events[1];
    assert_eq!(switch["datapath_id"], "0000123456789abc");
    assert_eq!(switch["version"], "OF1.3");
    assert_eq!(switch["n_tables"], 254);
    assert_eq!(switch["desc"]["dp_desc"], "scripted switch");
}

#[test]
fn probe_fails_when_no_switch_comes() {
    let probe = Probe::start(1);
    let (success, events, stderr) = probe.finish();
    assert!(!success);
    assert!(events.is_empty(), "{events:?}");
    assert!(
        stderr.contains("no switch connected within 1 s"),
        "{stderr}"
    );
}

#[test]
fn probe_fails_when_the_switch_leaves_before_the_handshake() {
    let probe = Probe::start(10);
    let switch = TcpStream::connect(("127.0.0.1", probe.port)).unwrap();
    drop(switch);
    let (success, _, stderr) = probe.finish();
    assert!(!success);
    assert!(
        stderr.contains("did not complete the handshake"),
        "{stderr}"
    );
}

#[test]
fn probe_rejects_a_stream_that_is_not_openflow() {
    let probe = Probe::start(10);
    let mut switch = TcpStream::connect(("127.0.0.1", probe.port)).unwrap();
    // A header whose length is below the header's own size: the stream
    // cannot be resynchronised.
    switch.write_all(&[4, 0, 0, 3, 0, 0, 0, 0]).unwrap();
    let (success, _, stderr) = probe.finish();
    assert!(!success);
    assert!(stderr.contains("not OpenFlow"), "{stderr}");
    assert!(stderr.contains("length 3"), "{stderr}");
}

#[test]
fn probe_learns_the_datapath_id_of_an_ovs_bridge() {
    // Check before starting the probe, so that a skip leaves nothing waiting.
    if let Err(why) = support::ovs::ovs_usable() {
        support::ovs::skip_without_ovs(&why);
        return;
    }
    let probe = Probe::start(4);
    let Some(bridge) = TestBridge::new(probe.port) else {
        return;
    };
    let (success, events, stderr) = probe.finish();
    assert!(success, "{stderr}");
    let switch = events
        .iter()
        .find(|e| e["event"] == "switch")
        .unwrap_or_else(|| panic!("no switch event in {events:?}"));
    assert_eq!(
        switch["datapath_id"],
        format!("{:016x}", bridge.datapath_id())
    );
    assert_eq!(switch["version"], "OF1.4");
}
