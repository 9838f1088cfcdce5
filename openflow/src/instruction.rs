//! Instructions of a flow entry (OpenFlow 1.3 §7.2.4).
//!
//! Known instructions decode into typed variants; experimenter and unknown
//! instructions stay opaque and re-encode byte for byte.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::types::{ExperimenterId, Hex, Joined};
use crate::wire::{self, PResult};

wire_enum! {
    /// An instruction type code (`ofp_instruction_type`); unknown ones print in hex.
    pub struct InstructionType(u16) as "0x{:04x}" {
        /// `OFPIT_GOTO_TABLE`.
        GOTO_TABLE = 1 => "GOTO_TABLE",
        /// `OFPIT_WRITE_METADATA`.
        WRITE_METADATA = 2 => "WRITE_METADATA",
        /// `OFPIT_WRITE_ACTIONS`.
        WRITE_ACTIONS = 3 => "WRITE_ACTIONS",
        /// `OFPIT_APPLY_ACTIONS`.
        APPLY_ACTIONS = 4 => "APPLY_ACTIONS",
        /// `OFPIT_CLEAR_ACTIONS`.
        CLEAR_ACTIONS = 5 => "CLEAR_ACTIONS",
        /// `OFPIT_METER`.
        METER = 6 => "METER",
        /// `OFPIT_EXPERIMENTER`.
        EXPERIMENTER = 0xffff => "EXPERIMENTER",
    }
}

/// An experimenter instruction, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExperimenterInstruction {
    /// The experimenter id.
    pub experimenter: ExperimenterId,
    /// Everything after the experimenter id.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// An instruction of an unknown type, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UnknownInstruction {
    /// The instruction type.
    pub instruction_type: InstructionType,
    /// Everything after the type and length.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Instruction {
    /// Continue matching in a later table.
    GotoTable(u8),
    /// Write metadata bits under a mask.
    WriteMetadata {
        /// The value.
        metadata: u64,
        /// Which bits to write.
        mask: u64,
    },
    /// Merge actions into the action set.
    WriteActions(Vec<Action>),
    /// Apply actions now.
    ApplyActions(Vec<Action>),
    /// Empty the action set.
    ClearActions,
    /// Send the packet through a meter.
    Meter(u32),
    /// An experimenter instruction.
    Experimenter(ExperimenterInstruction),
    /// An instruction of an unknown type.
    Unknown(UnknownInstruction),
}

/// Size of the instruction header (type and length).
const HEADER_LEN: usize = 4;
/// Size of the header of write/apply/clear actions (header and 4 bytes pad).
const ACTIONS_HEADER_LEN: usize = 8;

impl Instruction {
    /// The instruction type on the wire.
    pub fn instruction_type(&self) -> InstructionType {
        match self {
            Instruction::GotoTable(_) => InstructionType::GOTO_TABLE,
            Instruction::WriteMetadata { .. } => InstructionType::WRITE_METADATA,
            Instruction::WriteActions(_) => InstructionType::WRITE_ACTIONS,
            Instruction::ApplyActions(_) => InstructionType::APPLY_ACTIONS,
            Instruction::ClearActions => InstructionType::CLEAR_ACTIONS,
            Instruction::Meter(_) => InstructionType::METER,
            Instruction::Experimenter(_) => InstructionType::EXPERIMENTER,
            Instruction::Unknown(u) => u.instruction_type,
        }
    }

    /// Decodes one instruction.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Instruction> {
        let (after_type, ty) = wire::u16(i)?;
        let (_, len) = wire::u16(after_type)?;
        let len = usize::from(len);
        let ty = InstructionType(ty);
        let min = match ty {
            InstructionType::GOTO_TABLE
            | InstructionType::WRITE_METADATA
            | InstructionType::WRITE_ACTIONS
            | InstructionType::APPLY_ACTIONS
            | InstructionType::CLEAR_ACTIONS
            | InstructionType::METER
            | InstructionType::EXPERIMENTER => 8,
            _ => HEADER_LEN,
        };
        if len < min {
            return wire::fail(
                after_type,
                DecodeErrorKind::LengthTooShort {
                    what: "instruction",
                    length: len,
                    min,
                },
            );
        }
        if i.len() < len {
            return wire::fail(&i[i.len()..], DecodeErrorKind::Truncated);
        }
        let (whole, rest) = i.split_at(len);
        let body = &whole[HEADER_LEN..];
        let exact = |expected, what| wire::exact_len(&whole[2..], len, expected, what);
        let instruction = match ty {
            InstructionType::GOTO_TABLE => {
                exact(8, "goto_table instruction")?;
                Instruction::GotoTable(wire::u8(body)?.1)
            }
            InstructionType::WRITE_METADATA => {
                exact(24, "write_metadata instruction")?;
                let (b, ()) = wire::pad(body, 4)?;
                let (b, metadata) = wire::u64(b)?;
                let (_, mask) = wire::u64(b)?;
                Instruction::WriteMetadata { metadata, mask }
            }
            InstructionType::WRITE_ACTIONS | InstructionType::APPLY_ACTIONS => {
                let (_, actions) = action::decode_actions(&whole[ACTIONS_HEADER_LEN..])?;
                if ty == InstructionType::WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            InstructionType::CLEAR_ACTIONS => {
                exact(8, "clear_actions instruction")?;
                Instruction::ClearActions
            }
            InstructionType::METER => {
                exact(8, "meter instruction")?;
                Instruction::Meter(wire::u32(body)?.1)
            }
            InstructionType::EXPERIMENTER => {
                let (data, experimenter) = wire::u32(body)?;
                Instruction::Experimenter(ExperimenterInstruction {
                    experimenter: ExperimenterId(experimenter),
                    data: Bytes::copy_from_slice(data),
                })
            }
            instruction_type => Instruction::Unknown(UnknownInstruction {
                instruction_type,
                data: Bytes::copy_from_slice(body),
            }),
        };
        Ok((rest, instruction))
    }

    /// Decodes a buffer holding a list of instructions and nothing else.
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<Instruction>, DecodeError> {
        wire::finish(bytes, decode_instructions(bytes))
    }

    /// Appends a list of instructions. On error nothing is appended.
    pub fn encode_list(
        instructions: &[Instruction],
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        encode_instructions(instructions, out)
    }

    /// Appends the instruction. On error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        out.put_u16(self.instruction_type().0);
        let len_at = wire::reserve_u16(out);
        match self {
            Instruction::GotoTable(table) => {
                out.put_u8(*table);
                wire::put_zeros(out, 3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                wire::put_zeros(out, 4);
                out.put_u64(*metadata);
                out.put_u64(*mask);
            }
            Instruction::WriteActions(actions) | Instruction::ApplyActions(actions) => {
                wire::put_zeros(out, 4);
                action::encode_actions(actions, out)?;
            }
            Instruction::ClearActions => wire::put_zeros(out, 4),
            Instruction::Meter(id) => out.put_u32(*id),
            Instruction::Experimenter(e) => {
                out.put_u32(e.experimenter.0);
                out.put_slice(&e.data);
            }
            Instruction::Unknown(u) => out.put_slice(&u.data),
        }
        wire::patch_len_u16(out, len_at, start, "instruction")?;
        Ok(())
    }

    /// Size of the instruction on the wire (0 if it cannot be encoded).
    pub fn wire_len(&self) -> usize {
        let mut out = BytesMut::new();
        match self.encode(&mut out) {
            Ok(()) => out.len(),
            Err(_) => 0,
        }
    }
}

impl Instruction {
    /// Where the instruction runs among a flow's instructions: OpenFlow
    /// executes them in a fixed order (1.3.5 §5.9) whatever their order on the
    /// wire, and switches report them in that order.
    pub fn execution_rank(&self) -> u8 {
        match self {
            Instruction::Meter(_) => 0,
            Instruction::ApplyActions(_) => 1,
            Instruction::ClearActions => 2,
            Instruction::WriteActions(_) => 3,
            Instruction::WriteMetadata { .. } => 4,
            Instruction::GotoTable(_) => 5,
            Instruction::Experimenter(_) | Instruction::Unknown(_) => 6,
        }
    }
}

/// The instructions in the order the switch executes them (see
/// [`Instruction::execution_rank`]); two lists that differ only in order
/// mean the same thing.
pub fn in_execution_order(instructions: &[Instruction]) -> Vec<&Instruction> {
    let mut ordered: Vec<&Instruction> = instructions.iter().collect();
    ordered.sort_by_key(|i| i.execution_rank());
    ordered
}

/// Decodes a list of instructions that fills all of `i`.
pub(crate) fn decode_instructions(i: &[u8]) -> PResult<'_, Vec<Instruction>> {
    // Instructions carry their length at byte 2 and are at least 8 bytes long.
    wire::list_by_length(i, 2, 8, Instruction::decode)
}

/// Encodes a list of instructions.
pub(crate) fn encode_instructions(
    instructions: &[Instruction],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = instructions.iter().try_for_each(|x| x.encode(out));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Displays instructions the way `ovs-ofctl` writes a flow's `actions=`:
/// apply-actions inline, the others as `meter:1`, `write_actions(...)`,
/// `goto_table:2`, ...; `drop` when there is nothing to do.
pub fn display_list(instructions: &[Instruction]) -> impl fmt::Display + '_ {
    DisplayList(instructions)
}

struct DisplayList<'a>(&'a [Instruction]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for instruction in self.0 {
            if matches!(instruction, Instruction::ApplyActions(a) if a.is_empty()) {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            fmt::Display::fmt(instruction, f)?;
        }
        if first {
            f.write_str("drop")?;
        }
        Ok(())
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instruction::GotoTable(table) => write!(f, "goto_table:{table}"),
            Instruction::WriteMetadata { metadata, mask } => {
                write!(f, "write_metadata:0x{metadata:x}")?;
                if *mask != u64::MAX {
                    write!(f, "/0x{mask:x}")?;
                }
                Ok(())
            }
            Instruction::ApplyActions(actions) if actions.is_empty() => {
                f.write_str("apply_actions()")
            }
            Instruction::ApplyActions(actions) => write!(f, "{}", Joined(actions, ",")),
            Instruction::WriteActions(actions) => {
                write!(f, "write_actions({})", Joined(actions, ","))
            }
            Instruction::ClearActions => f.write_str("clear_actions"),
            Instruction::Meter(id) => write!(f, "meter:{id}"),
            Instruction::Experimenter(e) => {
                write!(
                    f,
                    "experimenter_instruction({},{})",
                    e.experimenter,
                    Hex(&e.data)
                )
            }
            Instruction::Unknown(u) => {
                write!(
                    f,
                    "instruction(type={},{})",
                    u.instruction_type.0,
                    Hex(&u.data)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PortNo;

    fn round_trip(hex_str: &str) -> Vec<Instruction> {
        let hex_str = hex_str.replace(' ', "");
        let bytes = hex::decode(&hex_str).unwrap();
        let list = Instruction::parse_list(&bytes).unwrap_or_else(|e| panic!("{hex_str}: {e}"));
        let mut out = BytesMut::new();
        encode_instructions(&list, &mut out).unwrap();
        assert_eq!(hex::encode(&out), hex_str);
        list
    }

    #[test]
    fn instructions_byte_table() {
        let table: Vec<(&str, Vec<Instruction>, &str)> = vec![
            (
                "0001000801000000",
                vec![Instruction::GotoTable(1)],
                "goto_table:1",
            ),
            (
                // Ryu 4-46: meter then apply output:6.
                "0006000800000001 00030018000000000000001000000006ffff000000000000",
                vec![
                    Instruction::Meter(1),
                    Instruction::WriteActions(vec![Action::Output {
                        port: PortNo(6),
                        max_len: 0xffff,
                    }]),
                ],
                "meter:1,write_actions(output:6)",
            ),
            (
                "0002001800000000 0000000000000001 00000000000000ff",
                vec![Instruction::WriteMetadata {
                    metadata: 1,
                    mask: 0xff,
                }],
                "write_metadata:0x1/0xff",
            ),
            (
                "0004001000000000 0012000800000000 0005000800000000",
                vec![
                    Instruction::ApplyActions(vec![Action::PopVlan]),
                    Instruction::ClearActions,
                ],
                "pop_vlan,clear_actions",
            ),
            (
                "0004000800000000",
                vec![Instruction::ApplyActions(vec![])],
                "drop",
            ),
            (
                "ffff000c 00002320 01020304",
                vec![Instruction::Experimenter(ExperimenterInstruction {
                    experimenter: ExperimenterId::NICIRA,
                    data: Bytes::from_static(&[1, 2, 3, 4]),
                })],
                "experimenter_instruction(NX,0x01020304)",
            ),
            (
                "00070006 abcd",
                vec![Instruction::Unknown(UnknownInstruction {
                    instruction_type: InstructionType(7),
                    data: Bytes::from_static(&[0xab, 0xcd]),
                })],
                "instruction(type=7,0xabcd)",
            ),
        ];
        for (hex_str, want, text) in table {
            let got = round_trip(hex_str);
            assert_eq!(got, want, "{hex_str}");
            assert_eq!(display_list(&got).to_string(), text);
        }
    }

    #[test]
    fn malformed_instructions_are_located_errors() {
        let err = |h: &str| {
            Instruction::parse_list(&hex::decode(h.replace(' ', "")).unwrap()).unwrap_err()
        };
        let e = err("00010004");
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort {
                length: 4,
                min: 8,
                ..
            }
        ));
        assert_eq!(e.offset, 2);
        let e = err("0001001001000000 0000000000000000");
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong { max: 8, .. }
        ));
        let e = err("0002001000000000 0000000000000001");
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 24, .. }
        ));
        let e = err("0001000801000000 00040010000000");
        assert_eq!((e.offset, e.kind), (15, DecodeErrorKind::Truncated));
        // An action inside apply_actions that is too short: offset within the list.
        let e = err("0004001000000000 0000000400000000");
        assert_eq!(e.offset, 10);
        let e = err("00000003");
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 4, .. }
        ));
    }
}
