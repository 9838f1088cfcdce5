//! FLOW_MOD (change the flow tables) and FLOW_REMOVED (an entry went away).

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::instruction::{self, Instruction};
use crate::message::{BodyCodec, require_version};
use crate::oxm::Match;
use crate::types::{GROUP_ANY, GroupName, NO_BUFFER, PortNo, TABLE_ALL, TableName};
use crate::wire::{self, PResult};

wire_enum! {
    /// What a FLOW_MOD does (`ofp_flow_mod_command`).
    pub struct FlowModCommand(u8) {
        /// Add an entry, replacing an identical one.
        ADD = 0 => "ADD",
        /// Change the instructions of every matching entry.
        MODIFY = 1 => "MOD",
        /// Change the instructions of the entry with exactly this match and priority.
        MODIFY_STRICT = 2 => "MOD_STRICT",
        /// Delete every matching entry.
        DELETE = 3 => "DEL",
        /// Delete the entry with exactly this match and priority.
        DELETE_STRICT = 4 => "DEL_STRICT",
    }
}

flag_set! {
    /// FLOW_MOD flags (`ofp_flow_mod_flags`).
    pub struct FlowModFlags(u16) {
        /// Send FLOW_REMOVED when the entry expires or is deleted.
        SEND_FLOW_REM = 1 << 0 => "send_flow_rem",
        /// Refuse to add an entry that overlaps one of the same priority.
        CHECK_OVERLAP = 1 << 1 => "check_overlap",
        /// Reset the counters of the entries a MODIFY changes.
        RESET_COUNTS = 1 << 2 => "reset_counts",
        /// Do not count packets.
        NO_PKT_COUNTS = 1 << 3 => "no_packet_counts",
        /// Do not count bytes.
        NO_BYT_COUNTS = 1 << 4 => "no_byte_counts",
    }
}

/// The body of FLOW_MOD (`ofp_flow_mod`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowMod {
    /// Opaque controller-chosen tag of the entry (ADD and MODIFY set it).
    pub cookie: u64,
    /// For MODIFY and DELETE: only entries whose cookie equals `cookie` in
    /// the bits of this mask are affected (0 affects all).
    pub cookie_mask: u64,
    /// The table, or [`TABLE_ALL`] for a DELETE across tables.
    pub table_id: u8,
    /// What to do.
    pub command: FlowModCommand,
    /// Seconds without traffic before the entry expires (0: never).
    pub idle_timeout: u16,
    /// Seconds before the entry expires regardless (0: never).
    pub hard_timeout: u16,
    /// Priority; higher wins among matching entries.
    pub priority: u16,
    /// A buffered packet to run through the new entry, or [`NO_BUFFER`].
    pub buffer_id: u32,
    /// For DELETE: only entries that output to this port ([`PortNo::ANY`]: any).
    pub out_port: PortNo,
    /// For DELETE: only entries that output to this group ([`GROUP_ANY`]: any).
    pub out_group: u32,
    /// Flags.
    pub flags: FlowModFlags,
    /// OpenFlow 1.4: how important the entry is when the table must evict.
    /// In OpenFlow 1.3 these two bytes are padding: a nonzero value cannot
    /// be encoded there.
    pub importance: u16,
    /// Which packets the entry applies to.
    #[serde(rename = "match")]
    pub match_: Match,
    /// What the entry does.
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// A FLOW_MOD with `command` and neutral values everywhere else: no
    /// cookie, no timeouts, no buffer, any output port and group.
    pub fn new(command: FlowModCommand, table_id: u8, priority: u16, match_: Match) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GROUP_ANY,
            flags: FlowModFlags::empty(),
            importance: 0,
            match_,
            instructions: Vec::new(),
        }
    }

    /// Adds an entry to `table_id`.
    pub fn add(table_id: u8, priority: u16, match_: Match, instructions: Vec<Instruction>) -> Self {
        FlowMod::new(FlowModCommand::ADD, table_id, priority, match_)
            .with_instructions(instructions)
    }

    /// Replaces the instructions of every entry of `table_id` that `match_`
    /// covers.
    pub fn modify(table_id: u8, match_: Match, instructions: Vec<Instruction>) -> Self {
        FlowMod::new(FlowModCommand::MODIFY, table_id, 0, match_).with_instructions(instructions)
    }

    /// Deletes every entry of `table_id` ([`TABLE_ALL`] for all tables) that
    /// `match_` covers.
    pub fn delete(table_id: u8, match_: Match) -> Self {
        FlowMod::new(FlowModCommand::DELETE, table_id, 0, match_)
    }

    /// Deletes the one entry of `table_id` with exactly this priority and match.
    pub fn delete_strict(table_id: u8, priority: u16, match_: Match) -> Self {
        FlowMod::new(FlowModCommand::DELETE_STRICT, table_id, priority, match_)
    }

    /// Deletes, in every table, the entries whose cookie equals `cookie` in
    /// the bits of `mask`: how a controller withdraws what it installed
    /// under one tag.
    pub fn delete_by_cookie(cookie: u64, mask: u64) -> Self {
        FlowMod::delete(TABLE_ALL, Match::default()).with_cookie(cookie, mask)
    }

    /// Sets the cookie and the cookie mask.
    pub fn with_cookie(mut self, cookie: u64, mask: u64) -> Self {
        self.cookie = cookie;
        self.cookie_mask = mask;
        self
    }

    /// Sets the idle and hard timeouts, in seconds (0: none).
    pub fn with_timeouts(mut self, idle: u16, hard: u16) -> Self {
        self.idle_timeout = idle;
        self.hard_timeout = hard;
        self
    }

    /// Sets the flags.
    pub fn with_flags(mut self, flags: FlowModFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: u16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the instructions.
    pub fn with_instructions(mut self, instructions: Vec<Instruction>) -> Self {
        self.instructions = instructions;
        self
    }

    /// Sets the buffered packet to apply the entry to.
    pub fn with_buffer_id(mut self, buffer_id: u32) -> Self {
        self.buffer_id = buffer_id;
        self
    }

    /// Restricts a DELETE to entries that output to `port` or to `group`.
    pub fn with_out(mut self, port: PortNo, group: u32) -> Self {
        self.out_port = port;
        self.out_group = group;
        self
    }

    /// Sets the eviction importance (OpenFlow 1.4 only).
    pub fn with_importance(mut self, importance: u16) -> Self {
        self.importance = importance;
        self
    }
}

impl BodyCodec for FlowMod {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, cookie) = wire::u64(i)?;
        let (rest, cookie_mask) = wire::u64(rest)?;
        let (rest, table_id) = wire::u8(rest)?;
        let (rest, command) = wire::u8(rest)?;
        let (rest, idle_timeout) = wire::u16(rest)?;
        let (rest, hard_timeout) = wire::u16(rest)?;
        let (rest, priority) = wire::u16(rest)?;
        let (rest, buffer_id) = wire::u32(rest)?;
        let (rest, out_port) = wire::u32(rest)?;
        let (rest, out_group) = wire::u32(rest)?;
        let (rest, flags) = wire::u16(rest)?;
        let (rest, importance) = wire::u16(rest)?;
        let importance = if version >= Version::OF14 {
            importance
        } else {
            0 // padding in OpenFlow 1.3
        };
        let (rest, match_) = Match::decode(rest)?;
        let (rest, instructions) = instruction::decode_instructions(rest)?;
        Ok((
            rest,
            FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command: FlowModCommand(command),
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port: PortNo(out_port),
                out_group,
                flags: FlowModFlags(flags),
                importance,
                match_,
                instructions,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        require_version(
            self.importance == 0 || version >= Version::OF14,
            "flow_mod importance",
            version,
        )?;
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        out.put_u8(self.table_id);
        out.put_u8(self.command.0);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.priority);
        out.put_u32(self.buffer_id);
        out.put_u32(self.out_port.0);
        out.put_u32(self.out_group);
        out.put_u16(self.flags.0);
        out.put_u16(self.importance);
        self.match_.encode(out)?;
        instruction::encode_instructions(&self.instructions, out)
    }
}

impl fmt::Display for FlowMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} table={}", self.command, TableName(self.table_id))?;
        if self.cookie != 0 || self.cookie_mask != 0 {
            write!(f, " cookie={:#x}", self.cookie)?;
            if self.cookie_mask != 0 {
                write!(f, "/{:#x}", self.cookie_mask)?;
            }
        }
        if self.idle_timeout != 0 {
            write!(f, " idle_timeout={}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, " hard_timeout={}", self.hard_timeout)?;
        }
        if self.importance != 0 {
            write!(f, " importance={}", self.importance)?;
        }
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        if self.buffer_id != NO_BUFFER {
            write!(f, " buffer={:#x}", self.buffer_id)?;
        }
        if self.out_port != PortNo::ANY {
            write!(f, " out_port={}", self.out_port)?;
        }
        if self.out_group != GROUP_ANY {
            write!(f, " out_group={}", GroupName(self.out_group))?;
        }
        write!(f, " priority={}", self.priority)?;
        let fields = self.match_.to_string();
        if !fields.is_empty() {
            write!(f, ",{fields}")?;
        }
        let deletes =
            self.command == FlowModCommand::DELETE || self.command == FlowModCommand::DELETE_STRICT;
        if !deletes || !self.instructions.is_empty() {
            write!(
                f,
                " actions={}",
                instruction::display_list(&self.instructions)
            )?;
        }
        Ok(())
    }
}

wire_enum! {
    /// Why a flow entry was removed (`ofp_flow_removed_reason`).
    pub struct FlowRemovedReason(u8) {
        /// It was idle for `idle_timeout` seconds.
        IDLE_TIMEOUT = 0 => "idle",
        /// It lived for `hard_timeout` seconds.
        HARD_TIMEOUT = 1 => "hard",
        /// A FLOW_MOD deleted it.
        DELETE = 2 => "delete",
        /// The group it used was deleted.
        GROUP_DELETE = 3 => "group_delete",
        /// OpenFlow 1.4: the meter it used was deleted.
        METER_DELETE = 4 => "meter_delete",
        /// OpenFlow 1.4: the switch evicted it to make room.
        EVICTION = 5 => "eviction",
    }
}

impl FlowRemovedReason {
    /// This reason's bit in an asynchronous configuration mask (0 for
    /// reasons beyond the 32 a mask can hold).
    pub fn mask_bit(self) -> u32 {
        1u32.checked_shl(u32::from(self.0)).unwrap_or(0)
    }
}

/// The body of FLOW_REMOVED (`ofp_flow_removed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRemoved {
    /// The entry's cookie.
    pub cookie: u64,
    /// The entry's priority.
    pub priority: u16,
    /// Why it was removed.
    pub reason: FlowRemovedReason,
    /// Its table.
    pub table_id: u8,
    /// How long it lived: whole seconds...
    pub duration_sec: u32,
    /// ...and nanoseconds beyond them.
    pub duration_nsec: u32,
    /// Its idle timeout.
    pub idle_timeout: u16,
    /// Its hard timeout.
    pub hard_timeout: u16,
    /// Packets it matched.
    pub packet_count: u64,
    /// Bytes it matched.
    pub byte_count: u64,
    /// Its match.
    #[serde(rename = "match")]
    pub match_: Match,
}

impl BodyCodec for FlowRemoved {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, cookie) = wire::u64(i)?;
        let (rest, priority) = wire::u16(rest)?;
        let (rest, reason) = wire::u8(rest)?;
        let (rest, table_id) = wire::u8(rest)?;
        let (rest, duration_sec) = wire::u32(rest)?;
        let (rest, duration_nsec) = wire::u32(rest)?;
        let (rest, idle_timeout) = wire::u16(rest)?;
        let (rest, hard_timeout) = wire::u16(rest)?;
        let (rest, packet_count) = wire::u64(rest)?;
        let (rest, byte_count) = wire::u64(rest)?;
        let (rest, match_) = Match::decode(rest)?;
        let (rest, ()) = wire::all_consumed(rest, "flow removed")?;
        Ok((
            rest,
            FlowRemoved {
                cookie,
                priority,
                reason: FlowRemovedReason(reason),
                table_id,
                duration_sec,
                duration_nsec,
                idle_timeout,
                hard_timeout,
                packet_count,
                byte_count,
                match_,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.cookie);
        out.put_u16(self.priority);
        out.put_u8(self.reason.0);
        out.put_u8(self.table_id);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        self.match_.encode(out)
    }
}

impl fmt::Display for FlowRemoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "priority={}", self.priority)?;
        let fields = self.match_.to_string();
        if !fields.is_empty() {
            write!(f, ",{fields}")?;
        }
        write!(
            f,
            " reason={} table_id={}",
            self.reason,
            TableName(self.table_id)
        )?;
        if self.cookie != 0 {
            write!(f, " cookie={:#x}", self.cookie)?;
        }
        write!(
            f,
            " duration{}.{:03}s",
            self.duration_sec,
            self.duration_nsec / 1_000_000
        )?;
        if self.idle_timeout != 0 {
            write!(f, " idle{}", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, " hard{}", self.hard_timeout)?;
        }
        write!(f, " pkts{} bytes{}", self.packet_count, self.byte_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, DecodeErrorKind, Message};

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// The match `eth_dst=f2:0b:a4:7d:f8:ea`, as the Ryu fixtures carry it.
    const ETH_DST_MATCH: &str = "0001000e80000606f20ba47df8ea0000";

    fn eth_dst_match() -> Match {
        Match::decode(&hex(ETH_DST_MATCH)).unwrap().1
    }

    /// Ryu's FLOW_MOD fixture in either version: they differ only in the
    /// version byte and in the last set-field action.
    fn ryu_flow_mod(version: u8) -> Vec<u8> {
        let tail = if version == 4 {
            "010203040506000000190010ffff00074f4e46000a000100"
        } else {
            "010203040506000000190010800052010100000000000000"
        };
        hex(&format!(
            "{version:02x}{}{ETH_DST_MATCH}{}{tail}",
            concat!(
                "0e0118000000000000000000000000",
                "0000000000000000010000000000007b",
                "0000ffffffffffffffffffff00000000",
            ),
            concat!(
                "000300b0000000000019001080000c02",
                "0102000000000000000b000800000000",
                "000c000800000000000c000800000000",
                "001b000800000000001a000812340000",
                "00140008987600000013000888470000",
                "00120008000000000011000881000000",
                "0010000800000000000f00080a000000",
                "0018000800000000001700080a000000",
                "ffff0010000000650001020304050607",
                "00150008000000030016000800000063",
                "0000001000000006ffff000000000000",
                "00040028000000000019001080000806",
            ),
        ))
    }

    #[test]
    fn ryu_flow_mods_round_trip_in_both_versions() {
        for version in [4, 5] {
            let bytes = ryu_flow_mod(version);
            let msg = Message::decode(&bytes).unwrap();
            let Body::FlowMod(fm) = &msg.body else {
                panic!("{msg:?}")
            };
            assert_eq!(fm.cookie, 0);
            assert_eq!(fm.table_id, 1);
            assert_eq!(fm.command, FlowModCommand::ADD);
            assert_eq!(fm.priority, 123);
            assert_eq!(fm.buffer_id, 0xffff);
            assert_eq!(fm.out_port, PortNo::ANY);
            assert_eq!(fm.out_group, GROUP_ANY);
            assert_eq!(fm.importance, 0);
            assert_eq!(fm.match_, eth_dst_match());
            assert_eq!(fm.instructions.len(), 2);
            assert_eq!(&msg.encode().unwrap()[..], &bytes[..], "version {version}");
        }
    }

    #[test]
    fn ovs_flow_mod_with_cookie_mask_round_trips() {
        let bytes = hex(concat!(
            "040e006000000000123456789abcdef0",
            "ffffffffffffffff0301000000008000",
            "ffffffffffffffffffffffff00000000",
            "0001001200014a0400abcdef80000c02",
            "14d20000000000000004001000000000",
            "00120008000000000001000864000000",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::FlowMod(fm) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(fm.cookie, 0x1234_5678_9abc_def0);
        assert_eq!(fm.cookie_mask, u64::MAX);
        assert_eq!(fm.command, FlowModCommand::MODIFY);
        assert_eq!(fm.table_id, 3);
        assert_eq!(fm.priority, 0x8000);
        assert_eq!(fm.buffer_id, NO_BUFFER);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn importance_is_padding_in_of13_and_a_field_in_of14() {
        let fm = FlowMod::add(2, 100, eth_dst_match(), Vec::new())
            .with_cookie(0xc0ffee, u64::MAX)
            .with_timeouts(10, 300)
            .with_flags(FlowModFlags::SEND_FLOW_REM | FlowModFlags::CHECK_OVERLAP)
            .with_importance(7);
        let of14 = Message::new(Version::OF14, 1, Body::FlowMod(fm.clone()));
        let bytes = of14.encode().unwrap();
        assert_eq!(&bytes[46..48], &[0, 7]);
        assert_eq!(Message::decode(&bytes).unwrap(), of14);

        let of13 = Message::new(Version::OF13, 1, Body::FlowMod(fm.clone()));
        assert_eq!(
            of13.encode(),
            Err(EncodeError::WrongVersion {
                what: "flow_mod importance",
                version: 4
            })
        );
        // Nonzero padding in OpenFlow 1.3 is ignored.
        let mut bytes = bytes.to_vec();
        bytes[0] = 4;
        let decoded = Message::decode(&bytes).unwrap();
        let Body::FlowMod(back) = decoded.body else {
            panic!()
        };
        assert_eq!(back, fm.with_importance(0));
    }

    #[test]
    fn constructors_use_controller_defaults() {
        let fm = FlowMod::delete_by_cookie(0xab00, 0xff00);
        assert_eq!(fm.command, FlowModCommand::DELETE);
        assert_eq!(fm.table_id, TABLE_ALL);
        assert_eq!(fm.buffer_id, NO_BUFFER);
        assert_eq!((fm.out_port, fm.out_group), (PortNo::ANY, GROUP_ANY));
        assert_eq!((fm.cookie, fm.cookie_mask), (0xab00, 0xff00));
        let add = FlowMod::add(1, 123, Match::default(), Vec::new());
        assert_eq!(add.command, FlowModCommand::ADD);
        assert_eq!(add.priority, 123);
        assert_eq!(FlowMod::delete_strict(4, 9, Match::default()).priority, 9);
    }

    #[test]
    fn flow_mod_display() {
        let fm = FlowMod::add(1, 123, eth_dst_match(), Vec::new())
            .with_cookie(1, 0)
            .with_timeouts(5, 0)
            .with_flags(FlowModFlags::SEND_FLOW_REM);
        let text = fm.to_string();
        assert!(
            text.starts_with(
                "ADD table=1 cookie=0x1 idle_timeout=5 flags=send_flow_rem priority=123,"
            ),
            "{text}"
        );
        assert!(text.ends_with(" actions=drop"), "{text}");
        let del = FlowMod::delete_by_cookie(0xab, 0xff);
        assert!(
            del.to_string()
                .starts_with("DEL table=ALL cookie=0xab/0xff priority=0")
        );
    }

    #[test]
    fn truncated_and_inconsistent_flow_mods_are_errors() {
        let bytes = ryu_flow_mod(4);
        // Cut inside the fixed part: the header length no longer matches.
        let mut cut = bytes[..40].to_vec();
        cut[2..4].copy_from_slice(&40u16.to_be_bytes());
        let err = Message::decode(&cut).unwrap_err();
        assert_eq!(err.offset, 40);
        // An instruction whose length runs past the end of the message.
        let mut bad = bytes.clone();
        bad[0x42..0x44].copy_from_slice(&0x0100u16.to_be_bytes());
        assert!(Message::decode(&bad).is_err());
        // A match length that runs past the end.
        let mut bad = bytes;
        bad[0x32..0x34].copy_from_slice(&0x0400u16.to_be_bytes());
        let err = Message::decode(&bad).unwrap_err();
        assert_ne!(err.kind, DecodeErrorKind::TrailingBytes("message body"));
    }

    #[test]
    fn ryu_flow_removed_round_trips() {
        for version in ["04", "05"] {
            let bytes = hex(&format!(
                "{version}{}{ETH_DST_MATCH}",
                concat!(
                    "0b0040000000000000000000000000",
                    "ffff00000000000302e902a800030000",
                    "00000000000000010000000000000056",
                )
            ));
            let msg = Message::decode(&bytes).unwrap();
            let Body::FlowRemoved(fr) = &msg.body else {
                panic!("{msg:?}")
            };
            assert_eq!(fr.priority, 0xffff);
            assert_eq!(fr.reason, FlowRemovedReason::IDLE_TIMEOUT);
            assert_eq!((fr.duration_sec, fr.duration_nsec), (3, 48_825_000));
            assert_eq!((fr.idle_timeout, fr.hard_timeout), (3, 0));
            assert_eq!((fr.packet_count, fr.byte_count), (1, 86));
            assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
            let text = fr.to_string();
            assert!(text.starts_with("priority=65535,"), "{text}");
            assert!(
                text.ends_with(" reason=idle table_id=0 duration3.048s idle3 pkts1 bytes86"),
                "{text}"
            );
        }
    }

    #[test]
    fn flow_removed_with_trailing_bytes_is_an_error() {
        let bytes = hex(&format!(
            "040b004800000000{}{ETH_DST_MATCH}0000000000000000",
            concat!(
                "0000000000000000",
                "ffff00000000000302e902a800030000",
                "00000000000000010000000000000056",
            )
        ));
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 64);
        assert_eq!(err.kind, DecodeErrorKind::TrailingBytes("flow removed"));
    }
}
