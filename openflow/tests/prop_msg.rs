//! Property tests of the non-multipart message bodies: every valid value
//! survives encode → decode, and no input, however malformed, panics the
//! decoder; what does decode re-encodes to something that decodes the same.
#![allow(missing_docs)]

#[path = "strategies/msg.rs"]
mod strategies;

use augur_openflow::{Body, Message, Version};
use proptest::prelude::*;
use strategies::*;

/// The message types whose bodies this part of the codec decodes.
const MSG_TYPES: &[u8] = &[0, 1, 4, 6, 8, 9, 10, 11, 13, 14, 17, 24, 25, 27, 28, 33, 34];

/// A message with `msg_type`, `version` and `body`, its length field set.
fn frame(version: u8, msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![version, msg_type, 0, 0, 0, 0, 0, 42];
    bytes.extend_from_slice(body);
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    bytes[2..4].copy_from_slice(&len.to_be_bytes());
    bytes
}

/// Whatever decodes must display, re-encode, and decode to the same value.
fn check_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(msg) = Message::decode(bytes) else {
        return Ok(());
    };
    let _ = msg.to_string();
    let _ = serde_json::to_string(&msg);
    let encoded = msg
        .encode()
        .map_err(|e| TestCaseError::fail(format!("{msg:?} decoded but does not encode: {e}")))?;
    let again = Message::decode(&encoded)
        .map_err(|e| TestCaseError::fail(format!("re-encoding of {msg:?} does not decode: {e}")))?;
    prop_assert_eq!(again, msg);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_messages_round_trip(msg in arb_msg_message()) {
        let bytes = msg.encode().unwrap();
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &msg);
        prop_assert_eq!(&back.encode().unwrap()[..], &bytes[..]);
        let _ = msg.to_string();
    }

    #[test]
    fn arbitrary_bodies_never_panic(
        version in prop_oneof![Just(4u8), Just(5u8), any::<u8>()],
        msg_type in prop::sample::select(MSG_TYPES),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        check_decoded(&frame(version, msg_type, &body))?;
    }

    #[test]
    fn arbitrary_onf_bundle_bodies_never_panic(
        add in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut onf = vec![0x4f, 0x4e, 0x46, 0x00, 0, 0, 0x08, if add { 0xfd } else { 0xfc }];
        onf.extend_from_slice(&body);
        check_decoded(&frame(4, 4, &onf))?;
    }

    #[test]
    fn mutated_messages_never_panic(
        msg in arb_msg_message(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = msg.encode().unwrap().to_vec();
        // Keep the header intact so the body decoder is what gets exercised.
        if bytes.len() > 8 {
            let n = 8 + at.index(bytes.len() - 8);
            bytes[n] = value;
            if truncate {
                let keep = 8 + cut.index(bytes.len() - 8);
                bytes.truncate(keep);
                let len = u16::try_from(keep).unwrap();
                bytes[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        check_decoded(&bytes)?;
    }

    #[test]
    fn hello_negotiation_is_symmetric_and_supported(
        ours in prop::collection::btree_set(1u8..8, 1..5),
        theirs in prop::collection::btree_set(1u8..8, 1..5),
    ) {
        let ours: Vec<Version> = ours.into_iter().map(Version).collect();
        let theirs: Vec<Version> = theirs.into_iter().map(Version).collect();
        let our_hello = augur_openflow::msg::Hello::offering(&ours);
        let their_hello = augur_openflow::msg::Hello::offering(&theirs);
        let our_max = *ours.iter().max().unwrap();
        let their_max = *theirs.iter().max().unwrap();
        let a = augur_openflow::msg::negotiate(&ours, their_max, &their_hello);
        let b = augur_openflow::msg::negotiate(&theirs, our_max, &our_hello);
        prop_assert_eq!(a, b);
        if let Some(v) = a {
            prop_assert!(ours.contains(&v) && theirs.contains(&v));
        }
    }
}

#[test]
fn bundled_messages_share_the_outer_version_and_xid() {
    use augur_openflow::msg::{BundleAdd, BundleFlags};
    let inner = Message::new(Version::OF14, 77, Body::BarrierRequest);
    let outer = BundleAdd::new(1, BundleFlags::ATOMIC, inner).into_message();
    assert_eq!((outer.version, outer.xid), (Version::OF14, 77));
}
