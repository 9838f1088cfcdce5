//! PACKET_IN (a packet the switch sends up) and PACKET_OUT (one the controller
//! sends down).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::action::{self, Action};
use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::oxm::Match;
use crate::types::{NO_BUFFER, PortNo, TableName};
use crate::wire::{self, PResult};

wire_enum! {
    /// Why a packet was sent to the controller (`ofp_packet_in_reason`).
    ///
    /// OpenFlow 1.3 has the first three; 1.4 splits `ACTION` by where the
    /// output happened (Open vSwitch reports all of them as `ACTION` in 1.3).
    pub struct PacketInReason(u8) {
        /// `OFPR_NO_MATCH` (1.4: `OFPR_TABLE_MISS`): a table-miss flow entry.
        NO_MATCH = 0 => "no_match",
        /// `OFPR_ACTION` (1.4: `OFPR_APPLY_ACTION`): an output action.
        ACTION = 1 => "action",
        /// `OFPR_INVALID_TTL`: the packet's TTL ran out.
        INVALID_TTL = 2 => "invalid_ttl",
        /// `OFPR_ACTION_SET` (1.4): an output action in the action set.
        ACTION_SET = 3 => "action_set",
        /// `OFPR_GROUP` (1.4): an output action in a group bucket.
        GROUP = 4 => "group",
        /// `OFPR_PACKET_OUT` (1.4): an output action in a PACKET_OUT.
        PACKET_OUT = 5 => "packet_out",
    }
}

impl PacketInReason {
    /// This reason's bit in an asynchronous configuration mask (0 for
    /// reasons beyond the 32 a mask can hold).
    pub fn mask_bit(self) -> u32 {
        1u32.checked_shl(u32::from(self.0)).unwrap_or(0)
    }
}

/// The body of PACKET_IN (`ofp_packet_in`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketIn {
    /// Where the switch buffered the packet, or [`NO_BUFFER`].
    pub buffer_id: u32,
    /// The full length of the packet, of which `data` may be a prefix.
    pub total_len: u16,
    /// Why the packet was sent.
    pub reason: PacketInReason,
    /// The table the packet was being looked up in.
    pub table_id: u8,
    /// The cookie of the flow entry that sent it (all ones for a table miss
    /// without an entry).
    pub cookie: u64,
    /// The packet's pipeline fields: in_port, metadata, tunnel fields, ...
    #[serde(rename = "match")]
    pub match_: Match,
    /// The packet (or its first `miss_send_len`/`max_len` bytes), starting at
    /// the Ethernet header.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl PacketIn {
    /// Whether `data` holds less than the whole packet.
    pub fn is_truncated(&self) -> bool {
        self.data.len() < usize::from(self.total_len)
    }
}

impl BodyCodec for PacketIn {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, buffer_id) = wire::u32(i)?;
        let (rest, total_len) = wire::u16(rest)?;
        let (rest, reason) = wire::u8(rest)?;
        let (rest, table_id) = wire::u8(rest)?;
        let (rest, cookie) = wire::u64(rest)?;
        let (rest, match_) = Match::decode(rest)?;
        // Two bytes that align the Ethernet payload's IP header.
        let (rest, ()) = wire::pad(rest, 2)?;
        Ok((
            &rest[rest.len()..],
            PacketIn {
                buffer_id,
                total_len,
                reason: PacketInReason(reason),
                table_id,
                cookie,
                match_,
                data: Bytes::copy_from_slice(rest),
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.buffer_id);
        out.put_u16(self.total_len);
        out.put_u8(self.reason.0);
        out.put_u8(self.table_id);
        out.put_u64(self.cookie);
        self.match_.encode(out)?;
        wire::put_zeros(out, 2);
        out.put_slice(&self.data);
        Ok(())
    }
}

impl fmt::Display for PacketIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table_id={} cookie={:#x} total_len={}",
            TableName(self.table_id),
            self.cookie,
            self.total_len
        )?;
        let fields = self.match_.to_string();
        if !fields.is_empty() {
            write!(f, " {fields}")?;
        }
        write!(f, " (via {}) data_len={}", self.reason, self.data.len())?;
        if self.buffer_id != NO_BUFFER {
            write!(f, " buffer={:#010x}", self.buffer_id)?;
        }
        Ok(())
    }
}

/// The body of PACKET_OUT (`ofp_packet_out`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketOut {
    /// A packet buffered on the switch, or [`NO_BUFFER`] if
    /// the packet is in `data`.
    pub buffer_id: u32,
    /// The port the packet is treated as having come in on
    /// ([`PortNo::CONTROLLER`] for one the controller made).
    pub in_port: PortNo,
    /// What to do with the packet.
    pub actions: Vec<Action>,
    /// The packet, when not buffered.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl PacketOut {
    /// Sends `data` (an Ethernet frame) through `actions`, as if it had come
    /// in on `in_port`.
    pub fn new(in_port: PortNo, actions: Vec<Action>, data: impl Into<Bytes>) -> Self {
        PacketOut {
            buffer_id: NO_BUFFER,
            in_port,
            actions,
            data: data.into(),
        }
    }

    /// Releases the packet the switch buffered as `buffer_id` (from a
    /// PACKET_IN) through `actions`.
    pub fn from_buffer(buffer_id: u32, in_port: PortNo, actions: Vec<Action>) -> Self {
        PacketOut {
            buffer_id,
            in_port,
            actions,
            data: Bytes::new(),
        }
    }
}

impl BodyCodec for PacketOut {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, buffer_id) = wire::u32(i)?;
        let (rest, in_port) = wire::u32(rest)?;
        let actions_len_field = rest;
        let (rest, actions_len) = wire::u16(rest)?;
        let (rest, ()) = wire::pad(rest, 6)?;
        let (data, actions) = wire::split_claimed(
            rest,
            actions_len_field,
            usize::from(actions_len),
            "packet_out actions",
        )?;
        let (_, actions) = action::decode_actions(actions)?;
        Ok((
            &data[data.len()..],
            PacketOut {
                buffer_id,
                in_port: PortNo(in_port),
                actions,
                data: Bytes::copy_from_slice(data),
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.buffer_id);
        out.put_u32(self.in_port.0);
        let len_at = wire::reserve_u16(out);
        wire::put_zeros(out, 6);
        let start = out.len();
        action::encode_actions(&self.actions, out)?;
        wire::patch_len_u16(out, len_at, start, "packet_out actions")?;
        out.put_slice(&self.data);
        Ok(())
    }
}

impl fmt::Display for PacketOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "in_port={} actions={}",
            self.in_port,
            action::display_list(&self.actions)
        )?;
        if self.buffer_id == NO_BUFFER {
            write!(f, " data_len={}", self.data.len())
        } else {
            write!(f, " buffer={:#010x}", self.buffer_id)?;
            if !self.data.is_empty() {
                write!(f, " data_len={}", self.data.len())?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, DecodeErrorKind, Message};

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn ryu_packet_in_round_trips() {
        let bytes = hex(concat!(
            "040a00940000000000000002002a0101",
            "00010203000000000001005080000004",
            "0000000680000a02080680000606ffff",
            "ffffffff80000806f20ba47df8ea8000",
            "2a02000180002c040a00000180002e04",
            "0a00000380003006f20ba47df8ea8000",
            "32060000000000000000ffffffffffff",
            "f20ba47df8ea08060001080006040001",
            "f20ba47df8ea0a000001000000000000",
            "0a000003",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::PacketIn(p) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(p.buffer_id, 2);
        assert_eq!(p.total_len, 42);
        assert_eq!(p.reason, PacketInReason::ACTION);
        assert_eq!(p.table_id, 1);
        assert_eq!(p.cookie, 0x0001_0203_0000_0000);
        assert_eq!(p.data.len(), 42);
        assert_eq!(&p.data[..6], &[0xff; 6]);
        assert!(!p.is_truncated());
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn ovs_packet_in_with_tunnel_fields_round_trips() {
        let bytes = hex(concat!(
            "040a004600000000000000c803e80064",
            "00000000000000000001002880000004",
            "0000abcd80004c08000000000000c350",
            "00013e04c0a8020300014004c0a80204",
            "0000686f6765",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::PacketIn(p) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(p.reason, PacketInReason::NO_MATCH);
        assert_eq!(p.table_id, 100);
        assert_eq!(&p.data[..], b"hoge");
        assert!(p.is_truncated());
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn packet_in_without_its_padding_is_an_error() {
        // The match ends the message: the two bytes of padding are missing.
        let bytes = hex("040a002000000000ffffffff00000000ffffffffffffffff0001000400000000");
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 32);
        assert_eq!(err.kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn ryu_packet_out_round_trips() {
        let bytes = hex(concat!(
            "040d008a00000000fffffffffffffffd",
            "001000000000000000000010fffffffc",
            "ffff000000000000f20ba4d03f70f20b",
            "a47df8ea080045000054f81a0000ff01",
            "af8b0a0000010a00000208000208f760",
            "000031d6020000000000ab8d2d310000",
            "0000101112131415161718191a1b1c1d",
            "1e1f202122232425262728292a2b2c2d",
            "2e2f0000000000000000",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::PacketOut(p) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(p.buffer_id, NO_BUFFER);
        assert_eq!(p.in_port, PortNo::CONTROLLER);
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.data.len(), 0x8a - 8 - 16 - 16);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn packet_out_actions_len_beyond_the_message_is_an_error() {
        // actions_len claims 24 bytes; only 16 follow the padding.
        let bytes = hex(concat!(
            "040d002800000000ffffffff",
            "fffffffd0018000000000000",
            "00000010fffffffcffff000000000000",
        ));
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 16);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::LengthTooLong {
                length: 24,
                max: 16,
                ..
            }
        ));
    }

    #[test]
    fn constructors_fill_in_the_defaults() {
        let p = PacketOut::new(PortNo::CONTROLLER, Vec::new(), &b"frame"[..]);
        assert_eq!(p.buffer_id, NO_BUFFER);
        let msg = Message::new(Version::OF13, 9, Body::PacketOut(p));
        let bytes = msg.encode().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "040d001d00000009fffffffffffffffd00000000000000006672616d65"
        );
        assert_eq!(
            msg.to_string(),
            "PACKET_OUT (OF1.3) (xid=0x9): in_port=CONTROLLER actions=drop data_len=5"
        );
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
        let b = PacketOut::from_buffer(7, PortNo(1), Vec::new());
        assert_eq!(b.to_string(), "in_port=1 actions=drop buffer=0x00000007");
    }

    #[test]
    fn reasons_have_mask_bits() {
        assert_eq!(PacketInReason::INVALID_TTL.mask_bit(), 4);
        assert_eq!(PacketInReason(40).mask_bit(), 0);
        assert_eq!(PacketInReason(9).to_string(), "9");
    }
}
