//! Matches, actions and instructions in Ryu's JSON shape.
#![allow(dead_code)]

use augur_openflow::action::Action;
use augur_openflow::instruction::Instruction;
use augur_openflow::oxm::Match;
use serde_json::Value;

/// `{"OFPMatch": {...}}`.
pub fn match_to_ryu(_m: &Match) -> Value {
    Value::Null
}

/// `{"OFPActionOutput": {...}}` and friends.
pub fn action_to_ryu(_a: &Action) -> Value {
    Value::Null
}

/// `{"OFPInstructionActions": {...}}` and friends.
pub fn instruction_to_ryu(_i: &Instruction) -> Value {
    Value::Null
}
