//! Conformance against Ryu's OpenFlow fixtures (`shared/fixtures/openflow/ryu`
//! beside the project root; skipped with a note when absent).
//!
//! For every OF1.3 and OF1.4 fixture: it decodes, it re-encodes to identical
//! bytes, and (for the message types the codec decodes) the decoded fields agree
//! with Ryu's own decoding in the JSON file beside it. The converters from our
//! types to Ryu's JSON shape live in `ryu/`.

#![allow(missing_docs)]
// Test support: a fixture that cannot be read should fail loudly.
#![allow(clippy::unwrap_used)]

#[path = "ryu/fixtures.rs"]
mod fixtures;
#[path = "ryu/msg.rs"]
mod ryu_msg;
#[path = "ryu/multipart.rs"]
mod ryu_multipart;
#[path = "ryu/oxm.rs"]
mod ryu_oxm;
#[path = "ryu/prop.rs"]
mod ryu_prop;

use augur_openflow::{DecodeErrorKind, Message};
use fixtures::{first_difference, fixtures, packets};
use serde_json::Value;

/// Fixtures whose Ryu JSON is deliberately not compared field by field, and why.
const NOT_COMPARED: &[(&str, &str)] = &[
    (
        "of13/libofproto-OFP13-ofp_packet_out_packet_library.packet",
        "Ryu's JSON dissects the packet with its packet library; the codec keeps PACKET_OUT data as bytes",
    ),
    (
        "of14/libofproto-OFP14-ofp_packet_out_packet_library.packet",
        "Ryu's JSON dissects the packet with its packet library; the codec keeps PACKET_OUT data as bytes",
    ),
    (
        "of13/libofproto-OFP13-flow_mod.packet",
        "carries a Nicira learn action, which the codec keeps opaque by design; Ryu decodes its flow specs",
    ),
    (
        "of13/ovs-ofctl-of13-action_learn.packet",
        "a Nicira learn action, which the codec keeps opaque by design; Ryu decodes its flow specs",
    ),
];

/// Our decoding in Ryu's JSON shape, if a converter covers the message type.
fn to_ryu(msg: &Message) -> Option<Value> {
    ryu_msg::to_ryu(msg).or_else(|| ryu_multipart::to_ryu(msg))
}

#[test]
fn every_fixture_decodes_and_reencodes_to_identical_bytes() {
    let Some(dir) = fixtures() else { return };
    let mut failures = Vec::new();
    let all = packets(&dir);
    assert!(all.len() > 100, "expected the full fixture set");
    for (name, bytes, _) in &all {
        match Message::decode(bytes) {
            Err(e) => failures.push(format!("{name}: decode: {e}")),
            Ok(msg) => match msg.encode() {
                Err(e) => failures.push(format!("{name}: encode: {e}")),
                Ok(out) if out[..] != bytes[..] => failures.push(format!(
                    "{name}: re-encoded bytes differ\n  ours: {}\n  want: {}",
                    hex::encode(&out),
                    hex::encode(bytes)
                )),
                Ok(_) => {}
            },
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn decoded_fields_agree_with_ryu() {
    let Some(dir) = fixtures() else { return };
    let mut failures = Vec::new();
    let mut compared = 0;
    for (name, bytes, json) in packets(&dir) {
        let Some(theirs) = json else { continue };
        if NOT_COMPARED.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let Ok(msg) = Message::decode(&bytes) else {
            continue; // reported by the round-trip test
        };
        let Some(ours) = to_ryu(&msg) else { continue };
        compared += 1;
        if let Some(diff) = first_difference("", &ours, &theirs) {
            failures.push(format!("{name}: {diff}"));
        }
    }
    eprintln!("compared {compared} fixtures field by field with Ryu's decoding");
    assert!(
        failures.is_empty(),
        "{} fixtures disagree with Ryu:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_truncated_fixture_gives_a_clear_error() {
    let Some(dir) = fixtures() else { return };
    let bytes =
        std::fs::read(dir.join("of13/packets/libofproto-OFP13-flow_mod.truncated64")).unwrap();
    let err = Message::decode(&bytes).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Truncated, "{err}");
    assert_eq!(err.offset, bytes.len(), "{err}");
}
