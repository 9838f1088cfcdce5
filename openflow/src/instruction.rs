//! Instructions of a flow entry.
//!
//! STUB: keeps each instruction TLV as bytes; replaced by the real decoder.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::wire::{self, PResult};

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Instruction {
    /// Raw instruction (stub).
    Raw(#[serde(with = "crate::wire::hex_bytes")] Bytes),
}

impl Instruction {
    /// Decodes one instruction TLV.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Instruction> {
        let (_, len) = wire::u16(i.get(2..).unwrap_or(&[]))?;
        let (rest, raw) = wire::frame(i, usize::from(len), 4, "instruction")?;
        Ok((rest, Instruction::Raw(Bytes::copy_from_slice(raw))))
    }

    /// Encodes one instruction TLV.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Instruction::Raw(raw) => out.put_slice(raw),
        }
        Ok(())
    }
}

/// Decodes a list of instructions that fills all of `i`.
pub(crate) fn decode_instructions(i: &[u8]) -> PResult<'_, Vec<Instruction>> {
    wire::many(i, Instruction::decode)
}

/// Encodes a list of instructions.
pub(crate) fn encode_instructions(
    instructions: &[Instruction],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    instructions.iter().try_for_each(|x| x.encode(out))
}

impl std::fmt::Display for Instruction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Instruction::Raw(raw) => write!(f, "instruction({} bytes)", raw.len()),
        }
    }
}
