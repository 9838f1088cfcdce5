//! Message bodies in Ryu's JSON shape.
#![allow(dead_code)]

use augur_openflow::Message;
use serde_json::Value;

/// Ryu's JSON for `msg` if this module covers its type.
pub fn to_ryu(_msg: &Message) -> Option<Value> {
    None
}
