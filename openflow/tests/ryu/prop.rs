//! Property-list entries in Ryu's JSON shape, shared by the message bodies
//! that carry OpenFlow 1.4 properties.
#![allow(dead_code)]

use augur_openflow::{ExperimenterProperty, UnknownProperty};
use base64::Engine;
use serde_json::{Value, json};

/// `{class: {...}}` for an experimenter property of wire type `prop_type`.
/// Ryu shows its data as big-endian 32-bit words.
pub fn experimenter_prop(class: &str, prop_type: u16, e: &ExperimenterProperty) -> Value {
    let data = if e.data.len() % 4 == 0 {
        e.data
            .chunks_exact(4)
            .map(|c| json!(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect()
    } else {
        Value::String(hex::encode(&e.data))
    };
    json!({ class: {
        "data": data,
        "exp_type": e.exp_type,
        "experimenter": e.experimenter.0,
        "length": 12 + e.data.len(),
        "type": prop_type,
    }})
}

/// `{"OFPPropUnknown": {...}}`.
pub fn unknown_prop(u: &UnknownProperty) -> Value {
    json!({"OFPPropUnknown": {
        "data": base64::engine::general_purpose::STANDARD.encode(&u.data),
        "length": 4 + u.data.len(),
        "type": u.prop_type,
    }})
}

/// The room a property of `length` bytes takes in its list (padded to 8).
pub fn padded(length: usize) -> usize {
    length.next_multiple_of(8)
}
