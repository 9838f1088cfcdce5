//! Property tests of matches, actions and instructions: valid values survive
//! encode → decode unchanged, and no input makes a decoder panic; whatever
//! decodes re-encodes, and decodes again to the same value.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "strategies/oxm.rs"]
mod strategies_oxm;

use augur_openflow::action::Action;
use augur_openflow::instruction::Instruction;
use augur_openflow::oxm::Match;
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use strategies_oxm::{arb_action, arb_instruction, arb_match};

fn encode_actions(list: &[Action]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Action::encode_list(list, &mut out).unwrap();
    out.to_vec()
}

fn encode_instructions(list: &[Instruction]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Instruction::encode_list(list, &mut out).unwrap();
    out.to_vec()
}

/// Flips bytes of `bytes` at positions chosen by `edits` (index, xor value).
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    if !bytes.is_empty() {
        for &(at, x) in edits {
            let n = at % bytes.len();
            bytes[n] ^= x;
        }
    }
    bytes
}

proptest! {
    // PROPTEST_CASES raises the count for a longer soak.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn matches_round_trip(m in arb_match()) {
        m.validate().unwrap();
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), m.wire_len());
        prop_assert_eq!(bytes.len() % 8, 0);
        let back = Match::parse(&bytes).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        let _ = m.to_string();
        let _ = serde_json::to_string(&m).unwrap();
    }

    #[test]
    fn actions_round_trip(list in vec(arb_action(), 0..6)) {
        let bytes = encode_actions(&list);
        let back = Action::parse_list(&bytes).unwrap();
        prop_assert_eq!(&back, &list);
        prop_assert_eq!(list.iter().map(Action::wire_len).sum::<usize>(), bytes.len());
        let _ = augur_openflow::action::display_list(&list).to_string();
        let _ = serde_json::to_string(&list).unwrap();
    }

    #[test]
    fn instructions_round_trip(list in vec(arb_instruction(), 0..5)) {
        let bytes = encode_instructions(&list);
        let back = Instruction::parse_list(&bytes).unwrap();
        prop_assert_eq!(&back, &list);
        let _ = augur_openflow::instruction::display_list(&list).to_string();
        let _ = serde_json::to_string(&list).unwrap();
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        if let Ok(m) = Match::parse(&bytes) {
            let again = Match::parse(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(again, m);
        }
        if let Ok(list) = Action::parse_list(&bytes) {
            prop_assert_eq!(Action::parse_list(&encode_actions(&list)).unwrap(), list);
        }
        if let Ok(list) = Instruction::parse_list(&bytes) {
            prop_assert_eq!(Instruction::parse_list(&encode_instructions(&list)).unwrap(), list);
        }
    }

    /// Corrupting valid encodings explores the decoders far better than random
    /// bytes: whatever still decodes must re-encode and decode to itself.
    #[test]
    fn corrupted_encodings_decode_or_fail_cleanly(
        m in arb_match(),
        actions in vec(arb_action(), 1..4),
        instructions in vec(arb_instruction(), 1..4),
        edits in vec((any::<usize>(), 1u8..), 1..4),
        cut in any::<usize>(),
    ) {
        let match_bytes = mutate(m.to_bytes().unwrap().to_vec(), &edits);
        for bytes in [&match_bytes[..], &match_bytes[..cut % (match_bytes.len() + 1)]] {
            if let Ok(decoded) = Match::parse(bytes) {
                let re = decoded.to_bytes().unwrap();
                prop_assert_eq!(Match::parse(&re).unwrap(), decoded);
            }
        }
        let action_bytes = mutate(encode_actions(&actions), &edits);
        for bytes in [&action_bytes[..], &action_bytes[..cut % (action_bytes.len() + 1)]] {
            if let Ok(decoded) = Action::parse_list(bytes) {
                prop_assert_eq!(Action::parse_list(&encode_actions(&decoded)).unwrap(), decoded);
            }
        }
        let instruction_bytes = mutate(encode_instructions(&instructions), &edits);
        for bytes in [&instruction_bytes[..], &instruction_bytes[..cut % (instruction_bytes.len() + 1)]] {
            if let Ok(decoded) = Instruction::parse_list(bytes) {
                prop_assert_eq!(
                    Instruction::parse_list(&encode_instructions(&decoded)).unwrap(),
                    decoded
                );
            }
        }
    }
}
