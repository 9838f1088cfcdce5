//! decode → encode → decode must give the same message, and re-encoding that
//! message must give the same bytes as the first encoding.
#![no_main]

use augur_openflow::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(first) = Message::decode(data) else { return };
    // A decoded message may legitimately be unencodable (e.g. a match whose
    // prerequisites are missing); what must never happen is a panic or a
    // message that changes meaning on the way through.
    let Ok(bytes) = first.encode() else { return };
    let second = Message::decode(&bytes).expect("our own encoding must decode");
    assert_eq!(first, second, "decode(encode(m)) != m");
    let again = second.encode().expect("re-encoding a decoded message");
    assert_eq!(bytes, again, "encoding is not stable");
});
