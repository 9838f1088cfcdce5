//! `augur run` against a scripted OpenFlow 1.3 switch that has no bundles:
//! the daemon falls back to ordered messages (deletes first) and a barrier,
//! remembers that the switch refuses bundles, and brings it to the policy,
//! and to an edited one. Needs no Open vSwitch.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::eventually;

use augur::daemon::{self, Daemon};
use augur::inventory::Inventory;
use augur::policy::reconcile;
use augur_openflow::meter::MeterConfig;
use augur_openflow::msg::{Capabilities, FlowModCommand, SwitchFeatures, codes};
use augur_openflow::multipart::{Desc, FlowStats, MultipartReply, MultipartReplyFlags};
use augur_openflow::{
    Body, Deframer, ErrorMsg, ErrorType, FlowMod, Hello, Message, MeterMod, MultipartReplyBody,
    MultipartRequestBody, Version,
};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POLICY: &str = include_str!("../examples/policy/three-tier.toml");
const INVENTORY: &str = include_str!("../examples/policy/three-tier-inventory.toml");
const DATAPATH_ID: u64 = 0x42;

/// What the scripted switch holds and was told, in order.
#[derive(Debug, Default)]
struct Switch {
    flows: Vec<FlowMod>,
    meters: Vec<MeterMod>,
    /// `bundle`, `delete`, `add`, `meter`, `barrier`, in arrival order.
    log: Vec<&'static str>,
}

impl Switch {
    fn stats(&self) -> Vec<FlowStats> {
        self.flows
            .iter()
            .map(|f| FlowStats {
                table_id: f.table_id,
                duration_sec: 1,
                duration_nsec: 0,
                priority: f.priority,
                idle_timeout: f.idle_timeout,
                hard_timeout: f.hard_timeout,
                flags: f.flags,
                importance: 0,
                cookie: f.cookie,
                packet_count: 0,
                byte_count: 0,
                match_: f.match_.clone(),
                instructions: f.instructions.clone(),
            })
            .collect()
    }

    /// Handles one message; returns the replies.
    fn handle(&mut self, msg: Message, datapath_id: u64) -> Vec<Body> {
        match msg.body {
            Body::FeaturesRequest => vec![Body::FeaturesReply(SwitchFeatures {
                datapath_id,
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: Capabilities::FLOW_STATS,
                reserved: 0,
            })],
            Body::MultipartRequest(request) => {
                let body = match request.body {
                    MultipartRequestBody::Desc => MultipartReplyBody::Desc(Desc::default()),
                    MultipartRequestBody::PortDesc => MultipartReplyBody::PortDesc(Vec::new()),
                    MultipartRequestBody::Flow(_) => MultipartReplyBody::Flow(self.stats()),
                    MultipartRequestBody::MeterConfig { .. } => MultipartReplyBody::MeterConfig(
                        self.meters
                            .iter()
                            .map(|m| MeterConfig {
                                flags: m.flags,
                                meter_id: m.meter_id,
                                bands: m.bands.clone(),
                            })
                            .collect(),
                    ),
                    other => panic!("unexpected multipart request {other:?}"),
                };
                vec![Body::MultipartReply(MultipartReply {
                    flags: MultipartReplyFlags::default(),
                    body,
                })]
            }
            Body::BundleControl(_) | Body::BundleAdd(_) | Body::Experimenter(_) => {
                self.log.push("bundle");
                vec![Body::Error(ErrorMsg::new(
                    ErrorType::BAD_REQUEST,
                    codes::bad_request::BAD_EXPERIMENTER,
                    Vec::new(),
                ))]
            }
            Body::FlowMod(fm) => {
                let same_place = |f: &FlowMod| {
                    f.table_id == fm.table_id && f.priority == fm.priority && f.match_ == fm.match_
                };
                if fm.command == FlowModCommand::ADD {
                    self.log.push("add");
                    self.flows.retain(|f| !same_place(f));
                    self.flows.push(fm);
                } else if fm.command == FlowModCommand::DELETE_STRICT {
                    self.log.push("delete");
                    self.flows
                        .retain(|f| !(same_place(f) && f.cookie == fm.cookie));
                } else {
                    panic!("unexpected flow mod {fm:?}");
                }
                Vec::new()
            }
            Body::MeterMod(mm) => {
                self.log.push("meter");
                self.meters.retain(|m| m.meter_id != mm.meter_id);
                self.meters.push(mm);
                Vec::new()
            }
            Body::BarrierRequest => {
                self.log.push("barrier");
                vec![Body::BarrierReply]
            }
            Body::EchoRequest(data) => vec![Body::EchoReply(data)],
            Body::Hello(_) | Body::SetConfig(_) => Vec::new(),
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Runs the scripted switch against the daemon at `port` until the
/// connection ends.
async fn run_switch(port: u16, state: Arc<Mutex<Switch>>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let hello = Message::new(Version::OF13, 1, Body::Hello(Hello::default()));
    stream.write_all(&hello.encode().unwrap()).await.unwrap();
    let deframer = Deframer::default();
    let mut buffer = BytesMut::new();
    loop {
        if stream.read_buf(&mut buffer).await.unwrap_or(0) == 0 {
            return;
        }
        while let Some(frame) = deframer.next_frame(&mut buffer).unwrap() {
            let msg = Message::decode(&frame).unwrap();
            let (version, xid) = (msg.version, msg.xid);
            let replies = state.lock().unwrap().handle(msg, DATAPATH_ID);
            for body in replies {
                let reply = Message::new(version, xid, body);
                stream.write_all(&reply.encode().unwrap()).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_without_bundles_gets_ordered_messages_and_a_barrier() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let inventory_file = dir.path().join("inventory.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let mut inventory: Inventory = toml::from_str(INVENTORY).unwrap();
    for bridge in &mut inventory.bridges {
        if bridge.name == "s1" {
            bridge.datapath_id = DATAPATH_ID;
        }
    }
    std::fs::write(&inventory_file, toml::to_string(&inventory).unwrap()).unwrap();
    let config = format!(
        r#"
policy = "{}"
inventory = {{ file = "{}" }}
reload_interval = "100ms"
[listen]
tcp = "127.0.0.1:0"
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
    let state = Arc::new(Mutex::new(Switch::default()));
    let port = daemon.tcp_addresses()[0].port();
    let switch = tokio::spawn(run_switch(port, state.clone()));

    let holds_desired = |state: &Arc<Mutex<Switch>>| {
        let desired = daemon.desired().borrow().clone().unwrap();
        let want = desired.compiled.bridge("s1").unwrap();
        let s = state.lock().unwrap();
        let changes = reconcile(&want.flows, &s.stats()).changes;
        if changes.is_empty() && s.meters.len() == want.meters.len() {
            Ok(desired.version)
        } else {
            Err(format!(
                "{} changes left, {} meters",
                changes.len(),
                s.meters.len()
            ))
        }
    };
    eventually(
        "the switch gets the policy",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || holds_desired(&state).map(|_| ()),
    )
    .await;
    let first_version = holds_desired(&state).unwrap();
    {
        let s = state.lock().unwrap();
        assert_eq!(
            s.log.first(),
            Some(&"meter"),
            "meters first: {:?}",
            &s.log[..3]
        );
        assert_eq!(
            s.log.iter().filter(|l| **l == "bundle").count(),
            1,
            "one refused bundle, then none"
        );
        assert_eq!(s.log.last(), Some(&"barrier"));
    }
    state.lock().unwrap().log.clear();

    // An edit: the deletes go before the adds, without a bundle.
    let edited = POLICY.replace("port = \"8000-8080\"", "port = \"8000-8443\"");
    std::fs::write(&policy, edited).unwrap();
    eventually(
        "the switch gets the edited policy",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            holds_desired(&state).and_then(|v| {
                if v == first_version {
                    Err("not yet recompiled".into())
                } else {
                    Ok(())
                }
            })
        },
    )
    .await;
    let log = state.lock().unwrap().log.clone();
    assert!(!log.contains(&"bundle"), "{log:?}");
    let first_add = log.iter().position(|l| *l == "add").unwrap();
    let last_delete = log.iter().rposition(|l| *l == "delete").unwrap();
    assert!(last_delete < first_add, "deletes before adds: {log:?}");
    assert_eq!(log.last(), Some(&"barrier"));
    daemon.shutdown().await;
    let _ = switch.await;
}
