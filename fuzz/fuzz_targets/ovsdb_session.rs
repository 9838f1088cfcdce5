//! Arbitrary bytes from the server: framing, JSON-RPC decoding, OVSDB value
//! decoding and the session (with a live monitor and replica) must never
//! panic, and every message that decodes must re-encode to itself.
#![no_main]

use std::time::{Duration, Instant};

use augur_ovsdb::framing::{FrameBuffer, FrameLimits};
use augur_ovsdb::jsonrpc::Message;
use augur_ovsdb::session::{Session, SessionConfig};
use augur_ovsdb::{Datum, MonitorSpec, TableMonitor};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const LIMITS: FrameLimits = FrameLimits {
    max_message_bytes: 1 << 16,
    max_depth: 32,
};

fn schema() -> Value {
    json!({"name": "F", "version": "1.0.0", "tables": {"T": {"columns": {
        "i": {"type": "integer"},
        "s": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
        "m": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}},
        "o": {"type": {"key": {"type": "uuid", "refTable": "T"}, "min": 0, "max": 1}},
        "r": {"type": "real"}
    }}}})
}

/// A session with a `monitor_cond` monitor (id 0) up and running.
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
    // Request 0 is get_schema, request 1 monitor_cond.
    let _ = s.handle_message(Message::Reply { result: schema(), id: json!(0) }, now);
    let _ = s.handle_message(
        Message::Reply {
            result: json!({"T": {"00000000-0000-0000-0000-000000000001": {"initial": {"i": 1}}}}),
            id: json!(1),
        },
        now,
    );
    while s.poll_event().is_some() {}
    let _ = s.poll_transmit();
    s
}

fuzz_target!(|data: &[u8]| {
    // Framing and message decoding, fed in two pieces to exercise resumption.
    let mut frames = FrameBuffer::new(LIMITS);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    'outer: for part in [&data[..cut], &data[cut..]] {
        frames.extend(part);
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Ok(value) = serde_json::from_slice::<Value>(frame) {
                        if let Ok(datum) = Datum::from_json_untyped(&value) {
                            let again = Datum::from_json_untyped(&datum.to_json()).expect("datum re-decodes");
                            assert_eq!(again, datum);
                        }
                    }
                    if let Ok(message) = Message::decode(frame) {
                        let mut out = Vec::new();
                        message.encode(&mut out);
                        assert_eq!(Message::decode(&out).expect("message re-decodes"), message);
                    }
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }

    // The session with a live replica.
    let now = Instant::now();
    let mut session = session_with_monitor(now);
    let _ = session.handle_input(data, now);
    while session.poll_event().is_some() {}
    let _ = session.poll_transmit();
    let _ = session.handle_timeout(now + Duration::from_secs(11));
});
