//! Arbitrary bytes through the deframer and decoder: errors are fine, panics are not.
#![no_main]

use augur_openflow::{Deframer, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for frame in Deframer::default().frames(data) {
        let Ok((_, frame)) = frame else { break };
        let _ = Message::decode(frame).map(|m| m.to_string());
    }
});
