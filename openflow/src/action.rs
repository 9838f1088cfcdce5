//! Actions: OpenFlow 1.3 standard actions and the Nicira/OVS extensions.
//!
//! STUB: keeps each action TLV as bytes; replaced by the real decoder.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::wire::{self, PResult};

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Action {
    /// Raw action (stub).
    Raw(#[serde(with = "crate::wire::hex_bytes")] Bytes),
}

impl Action {
    /// Decodes one action TLV.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Action> {
        let (_, len) = wire::u16(i.get(2..).unwrap_or(&[]))?;
        let (rest, raw) = wire::frame(i, usize::from(len), 8, "action")?;
        Ok((rest, Action::Raw(Bytes::copy_from_slice(raw))))
    }

    /// Encodes one action TLV.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Action::Raw(raw) => out.put_slice(raw),
        }
        Ok(())
    }
}

/// Decodes a list of actions that fills all of `i`.
pub(crate) fn decode_actions(i: &[u8]) -> PResult<'_, Vec<Action>> {
    wire::many(i, Action::decode)
}

/// Encodes a list of actions.
pub(crate) fn encode_actions(actions: &[Action], out: &mut BytesMut) -> Result<(), EncodeError> {
    actions.iter().try_for_each(|a| a.encode(out))
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Raw(raw) => write!(f, "action({} bytes)", raw.len()),
        }
    }
}
