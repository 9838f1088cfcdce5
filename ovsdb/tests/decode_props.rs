//! Property tests mirroring the `ovsdb_session` fuzz target, so the normal
//! test run covers the same ground: no input panics, and whatever decodes
//! re-encodes to itself.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use augur_ovsdb::framing::{FrameBuffer, FrameLimits};
use augur_ovsdb::jsonrpc::Message;
use augur_ovsdb::schema::ColumnType;
use augur_ovsdb::session::{Session, SessionConfig};
use augur_ovsdb::{Atom, Datum, MonitorSpec, TableMonitor, Uuid};
use proptest::prelude::*;
use serde_json::json;

const LIMITS: FrameLimits = FrameLimits {
    max_message_bytes: 1 << 16,
    max_depth: 32,
};

fn session_with_monitor(now: Instant) -> Session {
    let mut s = Session::new(
        SessionConfig {
            probe_interval: Some(Duration::from_secs(5)),
            limits: LIMITS,
        },
        now,
    );
    s.connected(now);
    s.monitor(MonitorSpec::monitor_cond("F").table(TableMonitor::new("T")));
    let schema = json!({"name": "F", "version": "1.0.0", "tables": {"T": {"columns": {
        "i": {"type": "integer"},
        "s": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
        "m": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}}
    }}}});
    s.handle_message(
        Message::Reply {
            result: schema,
            id: json!(0),
        },
        now,
    )
    .unwrap();
    s.handle_message(
        Message::Reply {
            result: json!({"T": {"00000000-0000-0000-0000-000000000001": {"initial": {"i": 1}}}}),
            id: json!(1),
        },
        now,
    )
    .unwrap();
    while s.poll_event().is_some() {}
    s.poll_transmit();
    s
}

fn check(data: &[u8]) {
    let mut frames = FrameBuffer::new(LIMITS);
    frames.extend(data);
    while let Ok(Some(frame)) = frames.next_frame() {
        if let Ok(message) = Message::decode(frame) {
            let mut out = Vec::new();
            message.encode(&mut out);
            assert_eq!(Message::decode(&out).unwrap(), message);
        }
    }
    let now = Instant::now();
    let mut s = session_with_monitor(now);
    let _ = s.handle_input(data, now);
    while s.poll_event().is_some() {}
    let _ = s.handle_timeout(now + Duration::from_secs(11));
}

/// Messages close to what a server sends, to be mutated.
fn seeds() -> Vec<String> {
    vec![
        r#"{"id":null,"method":"update2","params":[0,{"T":{"00000000-0000-0000-0000-000000000001":{"modify":{"s":["set",["a","b"]],"m":["map",[["k",1]]]}}}}]}"#.into(),
        r#"{"id":null,"method":"update2","params":[0,{"T":{"00000000-0000-0000-0000-000000000002":{"insert":{"i":5}},"00000000-0000-0000-0000-000000000001":{"delete":null}}}]}"#.into(),
        r#"{"id":"echo","method":"echo","params":[]}"#.into(),
        r#"{"method":"locked","params":["x"],"id":null}"#.into(),
        r#"{"id":2,"result":[{"rows":[{"i":1}]},{"count":3},{"error":"x","details":"y"}],"error":null}"#.into(),
        r#"{"id":3,"result":null,"error":{"error":"unknown database"}}"#.into(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&data);
    }

    #[test]
    fn mutated_messages_never_panic(seed in 0usize..6, edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = seeds()[seed].clone().into_bytes();
        for (index, byte) in edits {
            let i = index.index(bytes.len());
            bytes[i] = byte;
        }
        check(&bytes);
    }

    #[test]
    fn truncations_never_panic(seed in 0usize..6, cut in any::<prop::sample::Index>()) {
        let bytes = seeds()[seed].clone().into_bytes();
        check(&bytes[..cut.index(bytes.len())]);
    }

    #[test]
    fn data_round_trip(strings in proptest::collection::vec("[a-z]{0,4}", 0..5), ints in proptest::collection::vec(any::<i64>(), 0..5), u in any::<u128>()) {
        let set = Datum::set(strings.iter().map(String::as_str));
        prop_assert_eq!(Datum::from_json_untyped(&set.to_json()).unwrap(), set.clone());
        let ty = ColumnType::from_json(&json!({"key": "string", "min": 0, "max": "unlimited"})).unwrap();
        prop_assert_eq!(Datum::from_json(&set.to_json(), &ty).unwrap(), set);
        let map = Datum::map(strings.iter().map(String::as_str).zip(ints.iter().copied()));
        let ty = ColumnType::from_json(&json!({"key": "string", "value": "integer", "min": 0, "max": "unlimited"})).unwrap();
        prop_assert_eq!(Datum::from_json(&map.to_json(), &ty).unwrap(), map);
        let uuid = Datum::scalar(Atom::Uuid(Uuid::from_u128(u)));
        prop_assert_eq!(Datum::from_json_untyped(&uuid.to_json()).unwrap(), uuid);
    }

    #[test]
    fn deep_values_are_refused_not_overflowed(depth in 33usize..5000) {
        let mut text = String::from(r#"{"id":1,"result":"#);
        text.push_str(&"[".repeat(depth));
        text.push_str(&"]".repeat(depth));
        text.push_str(r#","error":null}"#);
        let mut frames = FrameBuffer::new(LIMITS);
        frames.extend(text.as_bytes());
        prop_assert!(frames.next_frame().is_err());
    }
}

#[test]
fn value_decoding_rejects_wrong_shapes() {
    for v in [
        json!(null),
        json!({}),
        json!(["set"]),
        json!(["set", 1]),
        json!(["map", [[1]]]),
        json!(["uuid", "x"]),
        json!(["weird", "x"]),
    ] {
        assert!(Datum::from_json_untyped(&v).is_err(), "{v}");
    }
}
