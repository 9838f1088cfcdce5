//! Property tests for ports, groups, meters and multipart messages: valid
//! values survive encode → decode, and arbitrary bytes never panic the decoder
//! (and whatever decodes re-encodes to something that decodes the same).

#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

#[path = "strategies/multipart.rs"]
mod strategies;

use augur_openflow::{Message, Version};
use proptest::prelude::*;
use strategies::arb_message;

/// Message types of this part: PORT_STATUS, GROUP_MOD, PORT_MOD,
/// MULTIPART_REQUEST, MULTIPART_REPLY, METER_MOD.
const TYPES: [u8; 6] = [12, 15, 16, 18, 19, 29];

/// A message header of one of `TYPES` in front of arbitrary body bytes, with a
/// consistent length so the body decoders see the fuzz.
fn framed(version: u8, type_index: usize, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + body.len()).unwrap();
    let mut bytes = vec![version, TYPES[type_index % TYPES.len()]];
    bytes.extend(len.to_be_bytes());
    bytes.extend([0, 0, 0, 7]);
    bytes.extend(body);
    bytes
}

/// Bodies that start like a plausible structure, so fuzzing reaches past the
/// first length check: a multipart header of a typed type, then noise.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (0u16..14, prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(mp_type, rest)| {
            let mut body = mp_type.to_be_bytes().to_vec();
            body.extend([0, 0, 0, 0, 0, 0]);
            body.extend(rest);
            body
        }),
    ]
}

/// Re-decoding the encoding of a decoded message gives the same message.
fn check_stable(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(msg) = Message::decode(bytes) {
        let encoded = msg
            .encode()
            .map_err(|e| TestCaseError::fail(format!("{msg:?} does not re-encode: {e}")))?;
        let again = Message::decode(&encoded).map_err(|e| {
            TestCaseError::fail(format!("re-encoding of {msg:?} does not decode: {e}"))
        })?;
        // Display never panics either.
        let _ = again.to_string();
        prop_assert_eq!(again, msg);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn valid_messages_survive_encode_decode(msg in arb_message()) {
        let bytes = msg.encode().unwrap();
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        // And the encoding is canonical: encoding again gives the same bytes.
        prop_assert_eq!(back.encode().unwrap(), bytes);
        let _ = msg.to_string();
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        version in prop_oneof![Just(4u8), Just(5u8)],
        type_index in 0usize..TYPES.len(),
        body in arb_body(),
    ) {
        check_stable(&framed(version, type_index, &body))?;
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        msg in arb_message(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = msg.encode().unwrap().to_vec();
        // Keep the header intact so the body decoders see the damage.
        if bytes.len() > 8 {
            for (at, value) in &flips {
                let at = 8 + at.index(bytes.len() - 8);
                bytes[at] = *value;
            }
            if truncate {
                let len = 8 + cut.index(bytes.len() - 8);
                bytes.truncate(len);
                bytes[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            }
        }
        check_stable(&bytes)?;
    }
}

#[test]
fn of13_rejects_what_only_of14_can_say() {
    use augur_openflow::Body;
    use augur_openflow::multipart::{
        FlowStats, MultipartReply, MultipartReplyBody, MultipartReplyFlags,
    };
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let flow = strategies::arb_flow_stats(Version::OF14)
        .prop_filter("importance set", |f: &FlowStats| f.importance != 0)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let msg = Message {
        version: Version::OF13,
        xid: 1,
        body: Body::MultipartReply(MultipartReply {
            flags: MultipartReplyFlags::empty(),
            body: MultipartReplyBody::Flow(vec![flow]),
        }),
    };
    assert!(msg.encode().is_err());
}
