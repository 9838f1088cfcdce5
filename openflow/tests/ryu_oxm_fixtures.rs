//! Matches and instructions of Ryu's FLOW_MOD and PACKET_IN fixtures, decoded
//! through the public API independently of the message decoders: each must
//! re-encode to identical bytes and agree with Ryu's JSON key by key.
//!
//! The fixtures live in `shared/fixtures/openflow/ryu` beside the project root
//! (or under `$AUGUR_SHARED`); without them the tests print a note and pass.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "ryu/fixtures.rs"]
mod fixtures;
#[path = "ryu/oxm.rs"]
mod ryu_oxm;

use std::path::Path;

use augur_openflow::action::Action;
use augur_openflow::instruction::Instruction;
use augur_openflow::oxm::Match;
use bytes::BytesMut;
use fixtures::{first_difference, fixtures};
use serde_json::Value;

/// FLOW_MOD fixtures whose instructions hold Nicira actions this crate keeps
/// opaque by design (`learn`), so Ryu's decoding of them cannot be matched.
/// Their bytes still round-trip, and their matches are still compared.
const OPAQUE_NX_ACTIONS: &[(&str, &str)] = &[
    ("of13/libofproto-OFP13-flow_mod.packet", "learn"),
    ("of13/ovs-ofctl-of13-action_learn.packet", "learn"),
];

/// Fixtures whose matches break OpenFlow's match rules. Ryu's "every field"
/// test messages list each field once without its prerequisites (tcp_src with
/// ip_proto=99, IPv4 fields with eth_type ARP, ...). They must still decode
/// and re-encode as received.
const INVALID_MATCHES: &[&str] = &[
    "of13/4-59-ofp_packet_in.packet",
    "of13/4-60-ofp_flow_mod.packet",
    "of14/5-57-ofp_packet_in.packet",
    "of14/5-58-ofp_flow_mod.packet",
];

const OFPT_PACKET_IN: u8 = 10;
const OFPT_FLOW_MOD: u8 = 14;
/// Offset of the match in an OF1.3/1.4 FLOW_MOD and PACKET_IN.
const FLOW_MOD_MATCH_AT: usize = 48;
const PACKET_IN_MATCH_AT: usize = 24;

/// One FLOW_MOD or PACKET_IN fixture, cut into its match and instructions.
struct Fixture {
    name: String,
    match_bytes: Vec<u8>,
    /// `None` for PACKET_IN.
    instruction_bytes: Option<Vec<u8>>,
    /// Ryu's decoding of the message body (the value under `OFPFlowMod` etc.).
    ryu: Value,
}

fn load(dir: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    for version in ["of13", "of14"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(version).join("packets"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "packet"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let match_at = match bytes.get(1) {
                Some(&OFPT_FLOW_MOD) => FLOW_MOD_MATCH_AT,
                Some(&OFPT_PACKET_IN) => PACKET_IN_MATCH_AT,
                _ => continue,
            };
            let json_path = dir.join(version).join("json").join(format!("{file}.json"));
            let Ok(json) = std::fs::read(&json_path) else {
                continue;
            };
            let json: Value = serde_json::from_slice(&json).unwrap();
            let ryu = json.as_object().unwrap().values().next().unwrap().clone();
            let length = usize::from(u16::from_be_bytes([
                bytes[match_at + 2],
                bytes[match_at + 3],
            ]));
            let match_end = match_at + length.next_multiple_of(8);
            let message_end = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
            out.push(Fixture {
                name: format!("{version}/{file}"),
                match_bytes: bytes[match_at..match_end].to_vec(),
                instruction_bytes: (bytes[1] == OFPT_FLOW_MOD)
                    .then(|| bytes[match_end..message_end].to_vec()),
                ryu,
            });
        }
    }
    out
}

fn has_opaque_nicira(actions: &[Action]) -> bool {
    actions.iter().any(|a| match a {
        Action::Nicira(_) => true,
        Action::Ct(ct) => has_opaque_nicira(&ct.actions),
        _ => false,
    })
}

#[test]
fn matches_round_trip_and_agree_with_ryu() {
    let Some(dir) = fixtures() else { return };
    let all = load(&dir);
    assert!(
        all.len() >= 38,
        "expected the full fixture set, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    let mut invalid = Vec::new();
    for fx in &all {
        let m = match Match::parse(&fx.match_bytes) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: match decode: {e}", fx.name));
                continue;
            }
        };
        match m.to_bytes() {
            Ok(out) if out[..] == fx.match_bytes[..] => {}
            Ok(out) => failures.push(format!(
                "{}: match re-encodes differently\n  ours: {}\n  want: {}",
                fx.name,
                hex::encode(out),
                hex::encode(&fx.match_bytes)
            )),
            Err(e) => failures.push(format!("{}: match encode: {e}", fx.name)),
        }
        if let Some(diff) = first_difference("match", &ryu_oxm::match_to_ryu(&m), &fx.ryu["match"])
        {
            failures.push(format!("{}: {diff}", fx.name));
        }
        if let Err(e) = m.validate() {
            eprintln!("{}: match breaks the match rules: {e}", fx.name);
            invalid.push(fx.name.clone());
        }
        // Display never fails and names every TLV.
        assert_eq!(
            m.to_string().split(',').filter(|s| !s.is_empty()).count(),
            m.len()
        );
    }
    eprintln!(
        "{} of {} fixture matches round-trip and agree with Ryu",
        all.len() - failures.len(),
        all.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(invalid, INVALID_MATCHES);
}

#[test]
fn instructions_round_trip_and_agree_with_ryu() {
    let Some(dir) = fixtures() else { return };
    let mut failures = Vec::new();
    let mut agree = 0;
    let mut compared = 0;
    let mut opaque = Vec::new();
    for fx in load(&dir) {
        let Some(bytes) = &fx.instruction_bytes else {
            continue;
        };
        let list = match Instruction::parse_list(bytes) {
            Ok(list) => list,
            Err(e) => {
                failures.push(format!("{}: instructions decode: {e}", fx.name));
                continue;
            }
        };
        let mut out = BytesMut::new();
        match Instruction::encode_list(&list, &mut out) {
            Ok(()) if out[..] == bytes[..] => {}
            Ok(()) => failures.push(format!(
                "{}: instructions re-encode differently\n  ours: {}\n  want: {}",
                fx.name,
                hex::encode(&out),
                hex::encode(bytes)
            )),
            Err(e) => failures.push(format!("{}: instructions encode: {e}", fx.name)),
        }
        let ours = Value::Array(list.iter().map(ryu_oxm::instruction_to_ryu).collect());
        let diff = first_difference("instructions", &ours, &fx.ryu["instructions"]);
        let nx_opaque = list.iter().any(|i| match i {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => has_opaque_nicira(a),
            _ => false,
        });
        if OPAQUE_NX_ACTIONS.iter().any(|(n, _)| *n == fx.name) {
            assert!(
                nx_opaque,
                "{}: listed as opaque but has no opaque Nicira action",
                fx.name
            );
            assert!(
                diff.is_some(),
                "{}: listed as opaque but agrees with Ryu",
                fx.name
            );
            opaque.push(fx.name.clone());
            continue;
        }
        compared += 1;
        match diff {
            None => agree += 1,
            Some(diff) => failures.push(format!("{}: {diff}", fx.name)),
        }
        // Display never fails.
        let _ = augur_openflow::instruction::display_list(&list).to_string();
    }
    eprintln!(
        "{agree} of {compared} fixtures' instructions agree with Ryu; {} more hold \
         Nicira actions kept opaque (bytes round-trip)",
        opaque.len()
    );
    assert_eq!(opaque.len(), OPAQUE_NX_ACTIONS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
