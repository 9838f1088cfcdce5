use super::*;
use crate::framing::FrameBuffer;
use crate::monitor::TableMonitor;
use serde_json::json;

const U1: &str = "00000000-0000-0000-0000-000000000001";
const U2: &str = "00000000-0000-0000-0000-000000000002";

fn schema_json() -> Value {
    json!({"name": "t", "version": "1.0.0", "tables": {"A": {"columns": {
        "n": {"type": "integer"},
        "s": {"type": "string"}
    }}}})
}

fn sent(s: &mut Session) -> Vec<Message> {
    let mut fb = FrameBuffer::new(FrameLimits::default());
    let mut out = Vec::new();
    while let Some(bytes) = s.poll_transmit() {
        fb.extend(&bytes);
        while let Some(frame) = fb.next_frame().unwrap() {
            out.push(Message::decode(frame).unwrap());
        }
    }
    out
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn reply(s: &mut Session, id: &Value, result: Value, now: Instant) {
    s.handle_message(
        Message::Reply {
            result,
            id: id.clone(),
        },
        now,
    )
    .unwrap();
}

fn request_of(m: &Message) -> (&str, &[Value], &Value) {
    match m {
        Message::Request { method, params, id } => (method, params, id),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn connected_session(now: Instant) -> Session {
    let mut s = Session::new(SessionConfig::default(), now);
    s.connected(now);
    s
}

#[test]
fn answers_server_echo_with_its_params() {
    let now = Instant::now();
    let mut s = connected_session(now);
    s.handle_input(br#"{"id":"echo","method":"echo","params":[1,"x"]}"#, now)
        .unwrap();
    let out = sent(&mut s);
    assert_eq!(
        out,
        vec![Message::Reply {
            result: json!([1, "x"]),
            id: json!("echo")
        }]
    );
    assert_eq!(s.stats().server_echoes_answered, 1);
}

#[test]
fn unknown_server_request_gets_an_error_reply() {
    let now = Instant::now();
    let mut s = connected_session(now);
    s.handle_input(br#"{"id":5,"method":"frobnicate","params":[]}"#, now)
        .unwrap();
    assert!(matches!(&sent(&mut s)[..], [Message::Error { id, .. }] if *id == json!(5)));
}

#[test]
fn probes_when_quiet_and_times_out_when_unanswered() {
    let t0 = Instant::now();
    let mut s = connected_session(t0);
    let interval = Duration::from_secs(5);
    assert_eq!(s.poll_timeout(), Some(t0 + interval));
    s.handle_timeout(t0 + Duration::from_secs(1)).unwrap();
    assert!(sent(&mut s).is_empty());
    s.handle_timeout(t0 + interval).unwrap();
    let out = sent(&mut s);
    assert_eq!(request_of(&out[0]).0, "echo");
    assert_eq!(s.poll_timeout(), Some(t0 + interval * 2));
    // Any message counts as life: the probe reply resets the clock.
    let id = request_of(&out[0]).2.clone();
    reply(&mut s, &id, json!([]), t0 + Duration::from_secs(6));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(11)));
    s.handle_timeout(t0 + Duration::from_secs(11)).unwrap();
    assert_eq!(sent(&mut s).len(), 1);
    assert!(matches!(
        s.handle_timeout(t0 + Duration::from_secs(16)),
        Err(SessionError::PeerTimeout(_))
    ));
}

#[test]
fn requests_while_disconnected_fail_at_once() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), now);
    let id = s.list_dbs();
    assert_eq!(
        events(&mut s),
        vec![Event::Reply {
            id,
            result: Err(RequestError::NotConnected)
        }]
    );
    assert!(s.poll_transmit().is_none());
}

#[test]
fn pending_requests_fail_on_disconnect() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let a = s.list_dbs();
    let b = s.transact("t", &[Operation::Comment("x".into())]);
    s.disconnected();
    assert_eq!(
        events(&mut s),
        vec![
            Event::Reply {
                id: a,
                result: Err(RequestError::Disconnected)
            },
            Event::Reply {
                id: b,
                result: Err(RequestError::Disconnected)
            },
        ]
    );
}

#[test]
fn transact_is_checked_against_a_cached_schema() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let get = s.get_schema("t");
    let out = sent(&mut s);
    reply(&mut s, request_of(&out[0]).2, schema_json(), now);
    assert!(
        matches!(&events(&mut s)[..], [Event::Reply { id, result: Ok(Reply::Schema(_)) }] if *id == get)
    );
    let bad = s.transact(
        "t",
        &[Operation::Insert {
            table: "A".into(),
            row: Row::new().with("n", "x"),
            uuid_name: None,
        }],
    );
    assert!(
        matches!(&events(&mut s)[..], [Event::Reply { id, result: Err(RequestError::Invalid(_)) }] if *id == bad)
    );
    assert!(sent(&mut s).is_empty());
    let good = s.transact(
        "t",
        &[Operation::Select {
            table: "A".into(),
            conditions: vec![],
            columns: None,
        }],
    );
    let out = sent(&mut s);
    let (method, params, id) = request_of(&out[0]);
    assert_eq!(method, "transact");
    assert_eq!(params[0], json!("t"));
    reply(
        &mut s,
        &id.clone(),
        json!([{"rows": [{"n": 1, "s": "a"}]}]),
        now,
    );
    let ev = events(&mut s);
    let [
        Event::Reply {
            id,
            result: Ok(Reply::Transact(r)),
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(*id, good);
    assert_eq!(
        r.rows(0).unwrap()[0].get("s").and_then(Datum::as_str),
        Some("a")
    );
}

use crate::data::{Datum, Row};

#[test]
fn malformed_reply_fails_request_and_connection() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let id = s.list_dbs();
    let out = sent(&mut s);
    let r = s.handle_message(
        Message::Reply {
            result: json!({"no": 1}),
            id: request_of(&out[0]).2.clone(),
        },
        now,
    );
    assert!(matches!(r, Err(SessionError::Protocol(_))));
    assert!(
        matches!(&events(&mut s)[..], [Event::Reply { id: i, result: Err(RequestError::Decode(_)) }] if *i == id)
    );
}

#[test]
fn garbage_input_is_a_session_error() {
    let now = Instant::now();
    for input in [
        &b"hello"[..],
        b"{\"id\":1,",
        b"{]",
        b"[1]",
        b"{\"method\":\"update\",\"params\":[0]}",
    ] {
        let mut s = connected_session(now);
        // Truncated input is not an error yet, only incomplete.
        if s.handle_input(input, now).is_ok() {
            assert!(
                input.ends_with(b","),
                "{:?} accepted",
                String::from_utf8_lossy(input)
            );
        }
    }
}

fn monitor_setup(protocol: MonitorProtocol, now: Instant) -> (Session, MonitorId) {
    let mut s = connected_session(now);
    let spec = MonitorSpec {
        db: "t".into(),
        protocol,
        tables: vec![TableMonitor::new("A")],
    };
    let id = s.monitor(spec);
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    assert_eq!((method, params), ("get_schema", &[json!("t")][..]));
    reply(&mut s, &rid.clone(), schema_json(), now);
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    let expected_method = match protocol {
        MonitorProtocol::Monitor => "monitor",
        MonitorProtocol::MonitorCond => "monitor_cond",
    };
    assert_eq!(method, expected_method);
    assert_eq!(params[2], json!({"A": [{"columns": ["n", "s"]}]}));
    let snapshot = match protocol {
        MonitorProtocol::Monitor => json!({"A": {U1: {"new": {"n": 1, "s": "a"}}}}),
        MonitorProtocol::MonitorCond => json!({"A": {U1: {"initial": {"n": 1, "s": "a"}}}}),
    };
    reply(&mut s, &rid.clone(), snapshot, now);
    let ev = events(&mut s);
    let [
        Event::Monitor {
            id: mid,
            event:
                MonitorEvent::Snapshot {
                    changes,
                    resync: false,
                },
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(*mid, id);
    assert_eq!(changes.len(), 1);
    (s, id)
}

#[test]
fn monitor_updates_feed_the_replica() {
    let now = Instant::now();
    let (mut s, id) = monitor_setup(MonitorProtocol::MonitorCond, now);
    let msg = json!({"id": null, "method": "update2", "params": [id.0, {"A": {
        U1: {"modify": {"n": 5}},
        U2: {"insert": {"s": "b"}}
    }}]});
    s.handle_input(msg.to_string().as_bytes(), now).unwrap();
    let ev = events(&mut s);
    let [
        Event::Monitor {
            event: MonitorEvent::Update { changes },
            ..
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(changes.len(), 2);
    let r = s.replica(id).unwrap();
    let u2 = uuid::Uuid::parse_str(U2).unwrap();
    assert_eq!(
        r.row("A", &u2).unwrap().get("n"),
        Some(&Datum::scalar(0i64))
    );
    // An update the replica cannot follow ends the connection, so that a
    // fresh snapshot repairs it.
    let bad = json!({"method": "update2", "params": [id.0, {"A": {U2: {"insert": {"s": "c"}}}}]});
    assert!(matches!(
        s.handle_input(bad.to_string().as_bytes(), now),
        Err(SessionError::Replica(_))
    ));
    // The wrong notification kind for the monitor is a protocol error.
    let wrong = json!({"method": "update", "params": [id.0, {}]});
    assert!(s.handle_input(wrong.to_string().as_bytes(), now).is_err());
}

#[test]
fn reconnect_resynchronises_without_repeats() {
    let now = Instant::now();
    let (mut s, id) = monitor_setup(MonitorProtocol::Monitor, now);
    s.disconnected();
    assert!(events(&mut s).is_empty());
    s.connected(now);
    let out = sent(&mut s);
    let (method, _, rid) = request_of(&out[0]);
    assert_eq!(method, "get_schema");
    reply(&mut s, &rid.clone(), schema_json(), now);
    let out = sent(&mut s);
    let rid = request_of(&out[0]).2.clone();
    // U1 unchanged, U2 new: only U2 is reported.
    reply(
        &mut s,
        &rid,
        json!({"A": {U1: {"new": {"n": 1, "s": "a"}}, U2: {"new": {"n": 2, "s": "b"}}}}),
        now,
    );
    let ev = events(&mut s);
    let [
        Event::Monitor {
            event:
                MonitorEvent::Snapshot {
                    changes,
                    resync: true,
                },
            ..
        },
    ] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(changes.len(), 1);
    assert!(matches!(&changes[0], RowChange::Insert { uuid, .. } if uuid.to_string() == U2));
    assert_eq!(s.replica(id).unwrap().table("A").unwrap().len(), 2);
}

#[test]
fn monitor_refused_by_server_stops() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let id = s.monitor(MonitorSpec::monitor("t").table(TableMonitor::new("Nope")));
    let out = sent(&mut s);
    reply(&mut s, &request_of(&out[0]).2.clone(), schema_json(), now);
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [Event::Monitor { id: i, event: MonitorEvent::Stopped { reason: Err(RequestError::Invalid(_)) } }] if *i == id)
    );
    assert!(sent(&mut s).is_empty());
}

#[test]
fn condition_change_and_cancel() {
    let now = Instant::now();
    let (mut s, id) = monitor_setup(MonitorProtocol::MonitorCond, now);
    s.change_conditions(id, vec![("A".into(), Some(vec![Condition::eq("n", 2i64)]))])
        .unwrap();
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    assert_eq!(method, "monitor_cond_change");
    assert_eq!(params[2], json!({"A": [{"where": [["n", "==", 2]]}]}));
    reply(&mut s, &rid.clone(), json!({}), now);
    assert_eq!(
        events(&mut s),
        vec![Event::Monitor {
            id,
            event: MonitorEvent::ConditionChanged { result: Ok(()) }
        }]
    );
    assert!(s.change_conditions(id, vec![("B".into(), None)]).is_err());
    s.cancel_monitor(id);
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    assert_eq!((method, params), ("monitor_cancel", &[json!(id.0)][..]));
    reply(&mut s, &rid.clone(), json!({}), now);
    assert_eq!(
        events(&mut s),
        vec![Event::Monitor {
            id,
            event: MonitorEvent::Stopped { reason: Ok(()) }
        }]
    );
    assert!(s.replica(id).is_none());
}

#[test]
fn lock_lifecycle() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let l = s.lock("L");
    let out = sent(&mut s);
    assert_eq!(request_of(&out[0]).0, "lock");
    reply(
        &mut s,
        &request_of(&out[0]).2.clone(),
        json!({"locked": false}),
        now,
    );
    assert_eq!(
        events(&mut s),
        vec![Event::Reply {
            id: l,
            result: Ok(Reply::Lock { locked: false })
        }]
    );
    // A second request for the same lock is refused locally, as the server would.
    let again = s.steal("L");
    assert!(
        matches!(&events(&mut s)[..], [Event::Reply { id, result: Err(RequestError::Invalid(_)) }] if *id == again)
    );
    s.handle_input(br#"{"method":"locked","params":["L"],"id":null}"#, now)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Acquired
        }]
    );
    s.handle_input(br#"{"method":"stolen","params":["L"],"id":null}"#, now)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Stolen
        }]
    );
    s.handle_input(br#"{"method":"locked","params":["L"],"id":null}"#, now)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Acquired
        }]
    );
    // Losing the connection loses the lock; the reconnect asks for it again.
    s.disconnected();
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Lost
        }]
    );
    s.connected(now);
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    assert_eq!((method, params), ("lock", &[json!("L")][..]));
    reply(&mut s, &rid.clone(), json!({"locked": true}), now);
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Acquired
        }]
    );
    let u = s.unlock("L");
    let out = sent(&mut s);
    reply(&mut s, &request_of(&out[0]).2.clone(), json!({}), now);
    assert_eq!(
        events(&mut s),
        vec![Event::Reply {
            id: u,
            result: Ok(Reply::Unlocked)
        }]
    );
    // After unlocking, a reconnect asks for nothing.
    s.disconnected();
    s.connected(now);
    assert!(sent(&mut s).is_empty());
}

#[test]
fn stolen_steal_is_not_requeued() {
    let now = Instant::now();
    let mut s = connected_session(now);
    s.steal("L");
    let out = sent(&mut s);
    reply(
        &mut s,
        &request_of(&out[0]).2.clone(),
        json!({"locked": true}),
        now,
    );
    events(&mut s);
    s.handle_input(br#"{"method":"stolen","params":["L"]}"#, now)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![Event::Lock {
            name: "L".into(),
            event: LockEvent::Stolen
        }]
    );
    // The lock entry is gone, so it can be requested afresh.
    s.lock("L");
    assert_eq!(request_of(&sent(&mut s)[0]).0, "lock");
}

#[test]
fn condition_change_during_start_is_sent_after_the_snapshot() {
    let now = Instant::now();
    let mut s = connected_session(now);
    let id = s.monitor(MonitorSpec::monitor_cond("t").table(TableMonitor::new("A")));
    let out = sent(&mut s);
    reply(&mut s, &request_of(&out[0]).2.clone(), schema_json(), now);
    let out = sent(&mut s);
    let start_id = request_of(&out[0]).2.clone();
    // The monitor request is in flight with no condition; change it now.
    s.change_conditions(id, vec![("A".into(), Some(vec![Condition::eq("n", 1i64)]))])
        .unwrap();
    assert!(sent(&mut s).is_empty());
    reply(&mut s, &start_id, json!({}), now);
    let out = sent(&mut s);
    let (method, params, rid) = request_of(&out[0]);
    assert_eq!(method, "monitor_cond_change");
    assert_eq!(params[2], json!({"A": [{"where": [["n", "==", 1]]}]}));
    let rid = rid.clone();
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Monitor {
            event: MonitorEvent::Snapshot { .. },
            ..
        }]
    ));
    reply(&mut s, &rid, json!({}), now);
    assert_eq!(
        events(&mut s),
        vec![Event::Monitor {
            id,
            event: MonitorEvent::ConditionChanged { result: Ok(()) }
        }]
    );
}

#[test]
fn lock_survives_a_reconnect_that_fails_again() {
    let now = Instant::now();
    let mut s = connected_session(now);
    s.lock("L");
    let out = sent(&mut s);
    reply(
        &mut s,
        &request_of(&out[0]).2.clone(),
        json!({"locked": true}),
        now,
    );
    events(&mut s);
    s.disconnected();
    s.connected(now);
    assert_eq!(request_of(&sent(&mut s)[0]).0, "lock");
    // The connection drops again before the renewed request is answered.
    s.disconnected();
    s.connected(now);
    let out = sent(&mut s);
    assert_eq!(request_of(&out[0]).0, "lock");
    reply(
        &mut s,
        &request_of(&out[0]).2.clone(),
        json!({"locked": true}),
        now,
    );
    assert_eq!(
        events(&mut s),
        vec![
            Event::Lock {
                name: "L".into(),
                event: LockEvent::Lost
            },
            Event::Lock {
                name: "L".into(),
                event: LockEvent::Acquired
            },
        ]
    );
}
