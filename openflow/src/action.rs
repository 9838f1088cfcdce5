//! Actions: the OpenFlow 1.3 standard actions and the Nicira/OVS extensions a
//! stateful policy needs (`ct`, `nat`, `ct_clear`, `resubmit`).
//!
//! Every action decodes into a typed variant when this crate knows it and into
//! an opaque variant otherwise (other Nicira subtypes, other experimenters,
//! unknown types), which re-encodes byte for byte. Length fields are computed
//! on encode; a decoded action whose length disagrees with its content is an
//! error rather than something silently re-encoded differently.
//!
//! ```
//! use augur_openflow::PortNo;
//! use augur_openflow::action::{self, Action, Ct};
//!
//! let actions = [
//!     Action::Ct(Ct::new().commit().zone(5).table(2)),
//!     Action::resubmit_table(3),
//!     Action::output(PortNo(6)),
//! ];
//! assert_eq!(
//!     action::display_list(&actions).to_string(),
//!     "ct(commit,table=2,zone=5),resubmit(,3),output:6"
//! );
//! let mut wire = bytes::BytesMut::new();
//! Action::encode_list(&actions, &mut wire)?;
//! assert_eq!(Action::parse_list(&wire)?, actions);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod nicira;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

pub use nicira::{
    Conjunction, Controller2Prop, Ct, CtFlags, CtZone, Nat, NatFlags, NxController, NxSubtype,
    RegLoad, RegMove, Sample, Subfield,
};

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::oxm::{MatchField, Oxm};
use crate::types::{ExperimenterId, Hex, Joined, PortNo};
use crate::wire::{self, PResult};

wire_enum! {
    /// An action type code (`ofp_action_type`); unknown ones print in hex.
    pub struct ActionType(u16) as "0x{:04x}" {
        /// `OFPAT_OUTPUT`.
        OUTPUT = 0 => "OUTPUT",
        /// `OFPAT_COPY_TTL_OUT`.
        COPY_TTL_OUT = 11 => "COPY_TTL_OUT",
        /// `OFPAT_COPY_TTL_IN`.
        COPY_TTL_IN = 12 => "COPY_TTL_IN",
        /// `OFPAT_SET_MPLS_TTL`.
        SET_MPLS_TTL = 15 => "SET_MPLS_TTL",
        /// `OFPAT_DEC_MPLS_TTL`.
        DEC_MPLS_TTL = 16 => "DEC_MPLS_TTL",
        /// `OFPAT_PUSH_VLAN`.
        PUSH_VLAN = 17 => "PUSH_VLAN",
        /// `OFPAT_POP_VLAN`.
        POP_VLAN = 18 => "POP_VLAN",
        /// `OFPAT_PUSH_MPLS`.
        PUSH_MPLS = 19 => "PUSH_MPLS",
        /// `OFPAT_POP_MPLS`.
        POP_MPLS = 20 => "POP_MPLS",
        /// `OFPAT_SET_QUEUE`.
        SET_QUEUE = 21 => "SET_QUEUE",
        /// `OFPAT_GROUP`.
        GROUP = 22 => "GROUP",
        /// `OFPAT_SET_NW_TTL`.
        SET_NW_TTL = 23 => "SET_NW_TTL",
        /// `OFPAT_DEC_NW_TTL`.
        DEC_NW_TTL = 24 => "DEC_NW_TTL",
        /// `OFPAT_SET_FIELD`.
        SET_FIELD = 25 => "SET_FIELD",
        /// `OFPAT_PUSH_PBB`.
        PUSH_PBB = 26 => "PUSH_PBB",
        /// `OFPAT_POP_PBB`.
        POP_PBB = 27 => "POP_PBB",
        /// `OFPAT_EXPERIMENTER`.
        EXPERIMENTER = 0xffff => "EXPERIMENTER",
    }
}

/// An experimenter action of an experimenter other than Nicira, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExperimenterAction {
    /// The experimenter id.
    pub experimenter: ExperimenterId,
    /// Everything after the experimenter id (its length keeps the action a
    /// multiple of 8 bytes).
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// A Nicira action of a subtype this crate does not decode, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NxAction {
    /// The Nicira subtype.
    pub subtype: NxSubtype,
    /// Everything after the subtype.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// An action of a type this crate does not know, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UnknownAction {
    /// The action type.
    pub action_type: ActionType,
    /// Everything after the type and length.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// `max_len` asking the switch to send the whole packet to the controller
/// (`OFPCML_NO_BUFFER`).
pub const CONTROLLER_NO_BUFFER: u16 = 0xffff;

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Sends the packet out of a port.
    Output {
        /// The port.
        port: PortNo,
        /// Bytes to send to the controller when `port` is CONTROLLER.
        max_len: u16,
    },
    /// Copies the TTL from the next-to-outermost header to the outermost.
    CopyTtlOut,
    /// Copies the TTL from the outermost header to the next-to-outermost.
    CopyTtlIn,
    /// Sets the MPLS TTL.
    SetMplsTtl(u8),
    /// Decrements the MPLS TTL.
    DecMplsTtl,
    /// Pushes a VLAN tag with this ethertype.
    PushVlan(u16),
    /// Pops the outer VLAN tag.
    PopVlan,
    /// Pushes an MPLS shim with this ethertype.
    PushMpls(u16),
    /// Pops the outer MPLS shim, leaving this ethertype.
    PopMpls(u16),
    /// Sets the queue for output.
    SetQueue(u32),
    /// Processes the packet through a group.
    Group(u32),
    /// Sets the IP TTL.
    SetNwTtl(u8),
    /// Decrements the IP TTL.
    DecNwTtl,
    /// Sets a header field (one OXM TLV).
    SetField(Oxm),
    /// Pushes a PBB service tag with this ethertype.
    PushPbb(u16),
    /// Pops the outer PBB service tag.
    PopPbb,
    /// Nicira `ct`: sends the packet through the connection tracker.
    Ct(Ct),
    /// Nicira `ct_clear`: clears the connection-tracking state.
    CtClear,
    /// Nicira `nat` (normally nested in `ct`).
    Nat(Nat),
    /// Nicira `resubmit:port`: searches the current table as if the packet had
    /// arrived on `in_port`.
    Resubmit {
        /// The ingress port to pretend (`IN_PORT` keeps the real one).
        in_port: PortNo,
    },
    /// Nicira `resubmit(port,table)`.
    ResubmitTable {
        /// The ingress port to pretend (`IN_PORT` keeps the real one).
        in_port: PortNo,
        /// The table to search (255 for the current one).
        table: u8,
        /// Match on the conntrack original-direction tuple (`resubmit(,t,ct)`).
        ct: bool,
    },
    /// Nicira `conjunction`: one clause of a conjunctive match.
    Conjunction(Conjunction),
    /// Nicira `load` (`NXAST_REG_LOAD`): writes a constant into bits of a field.
    RegLoad(RegLoad),
    /// Nicira `reg_load2`: sets a field, or the bits of it under the mask,
    /// from a whole NXM/OXM entry (`ovs-ofctl` writes it as `set_field`).
    RegLoad2(Oxm),
    /// Nicira `move`: copies bits between fields.
    RegMove(RegMove),
    /// Nicira `push`: pushes bits of a field on the action stack.
    StackPush(Subfield),
    /// Nicira `pop`: pops the action stack into bits of a field.
    StackPop(Subfield),
    /// Nicira `note`: opaque bytes carried in the flow, doing nothing. The
    /// zeros that pad the action to 8 bytes are part of the note.
    Note(#[serde(with = "crate::wire::hex_bytes")] Bytes),
    /// Nicira `controller` (`NXAST_CONTROLLER`): a PACKET_IN with a reason
    /// and controller id.
    NxController(NxController),
    /// Nicira `controller2` (`NXAST_CONTROLLER2`): a PACKET_IN whose settings
    /// (user data, pausing, ...) are properties, in wire order.
    Controller2(Vec<Controller2Prop>),
    /// Nicira `output_trunc`: outputs at most `max_len` bytes of the packet.
    OutputTrunc {
        /// The port (an OpenFlow 1.0 number on the wire).
        port: PortNo,
        /// Bytes to keep.
        max_len: u32,
    },
    /// Nicira `fin_timeout`: shortens the flow's timeouts once a TCP FIN or
    /// RST is seen (0 leaves a timeout unchanged).
    FinTimeout {
        /// The new idle timeout, in seconds.
        idle_timeout: u16,
        /// The new hard timeout, in seconds.
        hard_timeout: u16,
    },
    /// Nicira `dec_ttl(id,...)`: decrements the IP TTL, sending an
    /// invalid-TTL PACKET_IN to these controllers when it expires.
    DecTtlCntIds(Vec<u16>),
    /// Nicira `sample`: samples packets to an IPFIX collector set.
    Sample(Sample),
    /// A Nicira action this crate does not decode (`learn`, `bundle`, ...).
    Nicira(NxAction),
    /// An action of another experimenter.
    Experimenter(ExperimenterAction),
    /// An action of an unknown type.
    Unknown(UnknownAction),
}

/// Size of the common action header (type and length).
const ACTION_HEADER_LEN: usize = 4;

/// How deeply `ct` actions may nest inside each other. OVS allows none; a
/// bound keeps hostile input from exhausting the stack.
const MAX_NESTING: usize = 4;

impl Action {
    /// `output:port` (with `max_len` 0, which only matters for CONTROLLER).
    pub fn output(port: impl Into<PortNo>) -> Action {
        Action::Output {
            port: port.into(),
            max_len: 0,
        }
    }

    /// Sends the packet to the controller, at most `max_len` bytes of it
    /// ([`CONTROLLER_NO_BUFFER`] for all of it).
    pub fn controller(max_len: u16) -> Action {
        Action::Output {
            port: PortNo::CONTROLLER,
            max_len,
        }
    }

    /// `set_field:value->field`.
    pub fn set_field(m: MatchField) -> Action {
        Action::SetField(Oxm::Field(m))
    }

    /// `resubmit(,table)`.
    pub fn resubmit_table(table: u8) -> Action {
        Action::ResubmitTable {
            in_port: PortNo::IN_PORT,
            table,
            ct: false,
        }
    }

    /// The action type on the wire.
    pub fn action_type(&self) -> ActionType {
        match self {
            Action::Output { .. } => ActionType::OUTPUT,
            Action::CopyTtlOut => ActionType::COPY_TTL_OUT,
            Action::CopyTtlIn => ActionType::COPY_TTL_IN,
            Action::SetMplsTtl(_) => ActionType::SET_MPLS_TTL,
            Action::DecMplsTtl => ActionType::DEC_MPLS_TTL,
            Action::PushVlan(_) => ActionType::PUSH_VLAN,
            Action::PopVlan => ActionType::POP_VLAN,
            Action::PushMpls(_) => ActionType::PUSH_MPLS,
            Action::PopMpls(_) => ActionType::POP_MPLS,
            Action::SetQueue(_) => ActionType::SET_QUEUE,
            Action::Group(_) => ActionType::GROUP,
            Action::SetNwTtl(_) => ActionType::SET_NW_TTL,
            Action::DecNwTtl => ActionType::DEC_NW_TTL,
            Action::SetField(_) => ActionType::SET_FIELD,
            Action::PushPbb(_) => ActionType::PUSH_PBB,
            Action::PopPbb => ActionType::POP_PBB,
            Action::Ct(_)
            | Action::CtClear
            | Action::Nat(_)
            | Action::Resubmit { .. }
            | Action::ResubmitTable { .. }
            | Action::Conjunction(_)
            | Action::RegLoad(_)
            | Action::RegLoad2(_)
            | Action::RegMove(_)
            | Action::StackPush(_)
            | Action::StackPop(_)
            | Action::Note(_)
            | Action::NxController(_)
            | Action::Controller2(_)
            | Action::OutputTrunc { .. }
            | Action::FinTimeout { .. }
            | Action::DecTtlCntIds(_)
            | Action::Sample(_)
            | Action::Nicira(_)
            | Action::Experimenter(_) => ActionType::EXPERIMENTER,
            Action::Unknown(u) => u.action_type,
        }
    }

    /// Decodes one action.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Action> {
        Action::decode_nested(i, 0)
    }

    /// Decodes one action `depth` levels inside `ct` actions.
    pub(crate) fn decode_nested(i: &[u8], depth: usize) -> PResult<'_, Action> {
        let (after_type, action_type) = wire::u16(i)?;
        let (_, len) = wire::u16(after_type)?;
        let len = usize::from(len);
        if len < 8 {
            return wire::fail(
                after_type,
                DecodeErrorKind::LengthTooShort {
                    what: "action",
                    length: len,
                    min: 8,
                },
            );
        }
        if len % 8 != 0 {
            return wire::fail(
                after_type,
                DecodeErrorKind::Misaligned {
                    what: "action",
                    length: len,
                },
            );
        }
        if i.len() < len {
            return wire::fail(&i[i.len()..], DecodeErrorKind::Truncated);
        }
        let (whole, rest) = i.split_at(len);
        let action = decode_body(ActionType(action_type), whole, depth)?;
        Ok((rest, action))
    }

    /// Decodes a buffer holding exactly one action.
    pub fn parse(bytes: &[u8]) -> Result<Action, DecodeError> {
        wire::finish(
            bytes,
            Action::decode(bytes)
                .and_then(|(rest, a)| wire::all_consumed(rest, "action").map(|(r, ())| (r, a))),
        )
    }

    /// Decodes a buffer holding a list of actions and nothing else.
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<Action>, DecodeError> {
        wire::finish(bytes, decode_actions(bytes))
    }

    /// Appends a list of actions. On error nothing is appended.
    pub fn encode_list(actions: &[Action], out: &mut BytesMut) -> Result<(), EncodeError> {
        encode_actions(actions, out)
    }

    /// Appends the action. On error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        out.put_u16(self.action_type().0);
        let len_at = wire::reserve_u16(out);
        match self {
            Action::Output { port, max_len } => {
                out.put_u32(port.0);
                out.put_u16(*max_len);
                wire::put_zeros(out, 6);
            }
            Action::CopyTtlOut
            | Action::CopyTtlIn
            | Action::DecMplsTtl
            | Action::PopVlan
            | Action::DecNwTtl
            | Action::PopPbb => wire::put_zeros(out, 4),
            Action::SetMplsTtl(ttl) | Action::SetNwTtl(ttl) => {
                out.put_u8(*ttl);
                wire::put_zeros(out, 3);
            }
            Action::PushVlan(ethertype)
            | Action::PushMpls(ethertype)
            | Action::PopMpls(ethertype)
            | Action::PushPbb(ethertype) => {
                out.put_u16(*ethertype);
                wire::put_zeros(out, 2);
            }
            Action::SetQueue(id) | Action::Group(id) => out.put_u32(*id),
            Action::SetField(oxm) => {
                oxm.encode(out)?;
                wire::pad_to_8(out, start);
            }
            Action::Ct(_)
            | Action::CtClear
            | Action::Nat(_)
            | Action::Resubmit { .. }
            | Action::ResubmitTable { .. }
            | Action::Conjunction(_)
            | Action::RegLoad(_)
            | Action::RegLoad2(_)
            | Action::RegMove(_)
            | Action::StackPush(_)
            | Action::StackPop(_)
            | Action::Note(_)
            | Action::NxController(_)
            | Action::Controller2(_)
            | Action::OutputTrunc { .. }
            | Action::FinTimeout { .. }
            | Action::DecTtlCntIds(_)
            | Action::Sample(_)
            | Action::Nicira(_) => nicira::encode(self, out, start)?,
            Action::Experimenter(e) => {
                out.put_u32(e.experimenter.0);
                out.put_slice(&e.data);
            }
            Action::Unknown(u) => out.put_slice(&u.data),
        }
        let len = wire::patch_len_u16(out, len_at, start, "action")?;
        if len % 8 != 0 {
            return Err(EncodeError::OutOfRange(
                "opaque action data (the action must be a multiple of 8 bytes)",
            ));
        }
        Ok(())
    }

    /// Size of the action on the wire (0 if it cannot be encoded).
    pub fn wire_len(&self) -> usize {
        let mut out = BytesMut::new();
        match self.encode(&mut out) {
            Ok(()) => out.len(),
            Err(_) => 0,
        }
    }
}

/// Checks that a fixed-size action (`whole`, its type-length header
/// included) has exactly its size.
fn expect_len<'a>(whole: &'a [u8], expected: usize, what: &'static str) -> PResult<'a, ()> {
    wire::exact_len(&whole[2..], whole.len(), expected, what)
}

/// Decodes the action `whole` (header included, length already checked to be
/// a multiple of 8 of at least 8).
fn decode_body(
    action_type: ActionType,
    whole: &[u8],
    depth: usize,
) -> Result<Action, nom::Err<wire::WireError>> {
    let body = &whole[ACTION_HEADER_LEN..];
    let eight = |what| expect_len(whole, 8, what).map(|_| ());
    let action = match action_type {
        ActionType::OUTPUT => {
            expect_len(whole, 16, "output action")?;
            let (b, port) = wire::u32(body)?;
            let (_, max_len) = wire::u16(b)?;
            Action::Output {
                port: PortNo(port),
                max_len,
            }
        }
        ActionType::COPY_TTL_OUT => eight("copy_ttl_out action").map(|()| Action::CopyTtlOut)?,
        ActionType::COPY_TTL_IN => eight("copy_ttl_in action").map(|()| Action::CopyTtlIn)?,
        ActionType::DEC_MPLS_TTL => eight("dec_mpls_ttl action").map(|()| Action::DecMplsTtl)?,
        ActionType::POP_VLAN => eight("pop_vlan action").map(|()| Action::PopVlan)?,
        ActionType::DEC_NW_TTL => eight("dec_nw_ttl action").map(|()| Action::DecNwTtl)?,
        ActionType::POP_PBB => eight("pop_pbb action").map(|()| Action::PopPbb)?,
        ActionType::SET_MPLS_TTL => {
            eight("set_mpls_ttl action")?;
            Action::SetMplsTtl(wire::u8(body)?.1)
        }
        ActionType::SET_NW_TTL => {
            eight("set_nw_ttl action")?;
            Action::SetNwTtl(wire::u8(body)?.1)
        }
        ActionType::PUSH_VLAN => {
            eight("push_vlan action")?;
            Action::PushVlan(wire::u16(body)?.1)
        }
        ActionType::PUSH_MPLS => {
            eight("push_mpls action")?;
            Action::PushMpls(wire::u16(body)?.1)
        }
        ActionType::POP_MPLS => {
            eight("pop_mpls action")?;
            Action::PopMpls(wire::u16(body)?.1)
        }
        ActionType::PUSH_PBB => {
            eight("push_pbb action")?;
            Action::PushPbb(wire::u16(body)?.1)
        }
        ActionType::SET_QUEUE => {
            eight("set_queue action")?;
            Action::SetQueue(wire::u32(body)?.1)
        }
        ActionType::GROUP => {
            eight("group action")?;
            Action::Group(wire::u32(body)?.1)
        }
        ActionType::SET_FIELD => {
            let (_, oxm) = Oxm::decode(body)?;
            let expected = (ACTION_HEADER_LEN + oxm.wire_len()).next_multiple_of(8);
            expect_len(whole, expected, "set_field action")?;
            Action::SetField(oxm)
        }
        ActionType::EXPERIMENTER => {
            let (data, experimenter) = wire::u32(body)?;
            if ExperimenterId(experimenter) == ExperimenterId::NICIRA && !data.is_empty() {
                nicira::decode(whole, data, depth)?
            } else {
                Action::Experimenter(ExperimenterAction {
                    experimenter: ExperimenterId(experimenter),
                    data: Bytes::copy_from_slice(data),
                })
            }
        }
        action_type => Action::Unknown(UnknownAction {
            action_type,
            data: Bytes::copy_from_slice(body),
        }),
    };
    Ok(action)
}

/// Decodes a list of actions that fills all of `i`.
pub(crate) fn decode_actions(i: &[u8]) -> PResult<'_, Vec<Action>> {
    // Actions carry their length at byte 2 and are at least 8 bytes long.
    wire::list_by_length(i, 2, 8, Action::decode)
}

/// Decodes a list of actions nested `depth` levels inside `ct`.
pub(crate) fn decode_nested_actions(i: &[u8], depth: usize) -> PResult<'_, Vec<Action>> {
    if depth > MAX_NESTING {
        return wire::fail(i, DecodeErrorKind::Invalid("actions nested too deeply"));
    }
    wire::list_by_length(i, 2, 8, |x| Action::decode_nested(x, depth))
}

/// Encodes a list of actions.
pub(crate) fn encode_actions(actions: &[Action], out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = out.len();
    let result = actions.iter().try_for_each(|a| a.encode(out));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Displays a list of actions the way `ovs-ofctl` does: comma-separated, or
/// `drop` when empty.
pub fn display_list(actions: &[Action]) -> impl fmt::Display + '_ {
    DisplayList(actions)
}

struct DisplayList<'a>(&'a [Action]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("drop");
        }
        write!(f, "{}", Joined(self.0, ","))
    }
}

/// Writes `set_field:value->field` (or `value/mask`).
fn fmt_set_field(oxm: &Oxm, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match oxm {
        Oxm::Field(m) => {
            f.write_str("set_field:")?;
            m.field.fmt_value(m.value, m.mask, f)?;
            write!(f, "->{}", m.field)
        }
        other => write!(f, "set_field:{other}"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output { port, max_len } => match *port {
                PortNo::CONTROLLER => write!(f, "CONTROLLER:{max_len}"),
                p if p.is_reserved() => write!(f, "{p}"),
                p => write!(f, "output:{p}"),
            },
            Action::CopyTtlOut => f.write_str("copy_ttl_out"),
            Action::CopyTtlIn => f.write_str("copy_ttl_in"),
            Action::SetMplsTtl(ttl) => write!(f, "set_mpls_ttl({ttl})"),
            Action::DecMplsTtl => f.write_str("dec_mpls_ttl"),
            Action::PushVlan(t) => write!(f, "push_vlan:0x{t:04x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::PushMpls(t) => write!(f, "push_mpls:0x{t:04x}"),
            Action::PopMpls(t) => write!(f, "pop_mpls:0x{t:04x}"),
            Action::SetQueue(q) => write!(f, "set_queue:{q}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::SetNwTtl(ttl) => write!(f, "mod_nw_ttl:{ttl}"),
            Action::DecNwTtl => f.write_str("dec_ttl"),
            Action::SetField(oxm) => fmt_set_field(oxm, f),
            Action::PushPbb(t) => write!(f, "push_pbb:0x{t:04x}"),
            Action::PopPbb => f.write_str("pop_pbb"),
            Action::Ct(ct) => fmt::Display::fmt(ct, f),
            Action::CtClear => f.write_str("ct_clear"),
            Action::Nat(nat) => fmt::Display::fmt(nat, f),
            Action::Resubmit { in_port } => write!(f, "resubmit:{in_port}"),
            Action::ResubmitTable { in_port, table, ct } => {
                f.write_str("resubmit(")?;
                if *in_port != PortNo::IN_PORT {
                    write!(f, "{in_port}")?;
                }
                f.write_str(",")?;
                if *table != 255 {
                    write!(f, "{table}")?;
                }
                if *ct {
                    f.write_str(",ct")?;
                }
                f.write_str(")")
            }
            Action::Conjunction(c) => fmt::Display::fmt(c, f),
            Action::RegLoad(load) => fmt::Display::fmt(load, f),
            Action::RegLoad2(oxm) => fmt_set_field(oxm, f),
            Action::RegMove(mv) => fmt::Display::fmt(mv, f),
            Action::StackPush(sf) => write!(f, "push:{sf}"),
            Action::StackPop(sf) => write!(f, "pop:{sf}"),
            Action::Note(note) => write!(f, "note:{}", nicira::Dotted(note)),
            Action::NxController(c) => fmt::Display::fmt(c, f),
            Action::Controller2(props) => write!(f, "controller({})", Joined(props, ",")),
            Action::OutputTrunc { port, max_len } => {
                write!(f, "output(port={port},max_len={max_len})")
            }
            Action::FinTimeout {
                idle_timeout,
                hard_timeout,
            } => {
                let mut parts = Vec::new();
                if *idle_timeout != 0 {
                    parts.push(format!("idle_timeout={idle_timeout}"));
                }
                if *hard_timeout != 0 {
                    parts.push(format!("hard_timeout={hard_timeout}"));
                }
                write!(f, "fin_timeout({})", parts.join(","))
            }
            Action::DecTtlCntIds(ids) => write!(f, "dec_ttl({})", Joined(ids, ",")),
            Action::Sample(sample) => fmt::Display::fmt(sample, f),
            Action::Nicira(nx) => {
                match nx.subtype.name() {
                    Some(name) => write!(f, "nx_{name}(")?,
                    None => write!(f, "nx_action(subtype={},", nx.subtype.0)?,
                }
                write!(f, "{})", Hex(&nx.data))
            }
            Action::Experimenter(e) => {
                write!(f, "experimenter({},", e.experimenter)?;
                write!(f, "{})", Hex(&e.data))
            }
            Action::Unknown(u) => {
                write!(f, "action(type={},", u.action_type.0)?;
                write!(f, "{})", Hex(&u.data))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::oxm::Field;

    fn round_trip(hex_str: &str) -> Action {
        let bytes = hex::decode(hex_str).unwrap();
        let action = Action::parse(&bytes).unwrap_or_else(|e| panic!("{hex_str}: {e}"));
        let mut out = BytesMut::new();
        action.encode(&mut out).unwrap();
        assert_eq!(hex::encode(&out), hex_str);
        assert_eq!(action.wire_len(), bytes.len());
        action
    }

    #[test]
    fn standard_actions_byte_table() {
        let table: &[(&str, Action, &str)] = &[
            (
                "0000001000000006ffff000000000000",
                Action::Output {
                    port: PortNo(6),
                    max_len: 0xffff,
                },
                "output:6",
            ),
            (
                "00000010000000060000000000000000",
                Action::output(6u32),
                "output:6",
            ),
            (
                "00000010fffffffdffff000000000000",
                Action::controller(CONTROLLER_NO_BUFFER),
                "CONTROLLER:65535",
            ),
            (
                "00000010fffffffa0000000000000000",
                Action::output(PortNo::NORMAL),
                "NORMAL",
            ),
            ("000b000800000000", Action::CopyTtlOut, "copy_ttl_out"),
            ("000c000800000000", Action::CopyTtlIn, "copy_ttl_in"),
            (
                "000f00080a000000",
                Action::SetMplsTtl(10),
                "set_mpls_ttl(10)",
            ),
            ("0010000800000000", Action::DecMplsTtl, "dec_mpls_ttl"),
            (
                "0011000881000000",
                Action::PushVlan(0x8100),
                "push_vlan:0x8100",
            ),
            ("0012000800000000", Action::PopVlan, "pop_vlan"),
            (
                "0013000888470000",
                Action::PushMpls(0x8847),
                "push_mpls:0x8847",
            ),
            (
                "0014000898760000",
                Action::PopMpls(0x9876),
                "pop_mpls:0x9876",
            ),
            ("0015000800000003", Action::SetQueue(3), "set_queue:3"),
            ("0016000800000063", Action::Group(99), "group:99"),
            ("001700080a000000", Action::SetNwTtl(10), "mod_nw_ttl:10"),
            ("0018000800000000", Action::DecNwTtl, "dec_ttl"),
            (
                "001a000812340000",
                Action::PushPbb(0x1234),
                "push_pbb:0x1234",
            ),
            ("001b000800000000", Action::PopPbb, "pop_pbb"),
            (
                "0019001080000c0201020000 00000000",
                Action::set_field(MatchField::exact(Field::VlanVid, 0x0102u16)),
                "set_field:0x102->vlan_vid",
            ),
            (
                "00190010800018 04c0a80209000000 00",
                Action::set_field(MatchField::exact(
                    Field::Ipv4Dst,
                    Ipv4Addr::new(192, 168, 2, 9),
                )),
                "set_field:192.168.2.9->ipv4_dst",
            ),
            (
                "00190010 0001d604 00654321 00000000",
                Action::set_field(MatchField::exact(Field::CtMark, 0x654321u32)),
                "set_field:0x654321->ct_mark",
            ),
            (
                "ffff0010000000650001020304050607",
                Action::Experimenter(ExperimenterAction {
                    experimenter: ExperimenterId(0x65),
                    data: Bytes::from_static(&[0, 1, 2, 3, 4, 5, 6, 7]),
                }),
                "experimenter(0x00000065,0x0001020304050607)",
            ),
            (
                "1234000800000001",
                Action::Unknown(UnknownAction {
                    action_type: ActionType(0x1234),
                    data: Bytes::from_static(&[0, 0, 0, 1]),
                }),
                "action(type=4660,0x00000001)",
            ),
        ];
        for (hex_str, want, text) in table {
            let hex_str = hex_str.replace(' ', "");
            let got = round_trip(&hex_str);
            assert_eq!(&got, want, "{hex_str}");
            assert_eq!(got.to_string(), *text);
        }
    }

    #[test]
    fn malformed_actions_are_located_errors() {
        let err = |h: &str| Action::parse_list(&hex::decode(h).unwrap()).unwrap_err();
        // Length below the header.
        let e = err("0000000400000000");
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { length: 4, .. }
        ));
        // Not a multiple of 8.
        let e = err("000b000c0000000000000000");
        assert!(matches!(
            e.kind,
            DecodeErrorKind::Misaligned { length: 12, .. }
        ));
        // Output with the wrong size.
        let e = err("000000080000000600000000");
        assert!(
            matches!(e.kind, DecodeErrorKind::LengthTooShort { min: 16, .. }),
            "{e}"
        );
        let e = err("000b00100000000000000000 00000000"
            .replace(' ', "")
            .as_str());
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong { max: 8, .. }
        ));
        // Runs past the input.
        let e = err("0000001000000006ffff");
        assert_eq!((e.offset, e.kind), (10, DecodeErrorKind::Truncated));
        // Second action truncated: offset counts from the list start.
        let e = err("000b0008000000000016");
        assert_eq!(e.offset, 10);
        // set_field whose OXM overruns the action.
        let e = err("0019000880000c02");
        assert_eq!(e.kind, DecodeErrorKind::Truncated);
        // set_field with an extra 8 bytes of padding.
        let e = err("0019001880000c020102000000000000 0000000000000000"
            .replace(' ', "")
            .as_str());
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong { max: 16, .. }
        ));
    }

    #[test]
    fn opaque_actions_must_stay_aligned_on_encode() {
        let a = Action::Experimenter(ExperimenterAction {
            experimenter: ExperimenterId(1),
            data: Bytes::from_static(&[1, 2, 3]),
        });
        let mut out = BytesMut::new();
        assert!(a.encode(&mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn action_lists_print_like_ovs() {
        assert_eq!(display_list(&[]).to_string(), "drop");
        assert_eq!(
            display_list(&[Action::output(1u32), Action::CtClear]).to_string(),
            "output:1,ct_clear"
        );
    }
}
