//! Flow statistics: the FLOW and AGGREGATE requests and the per-flow entries of
//! FLOW replies.
//!
//! FLOW replies are the bulk of what a controller reads back from a switch, so
//! decoding an entry allocates only what the match and the instructions need
//! and the entry list is allocated once for the entries present.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::instruction::{self, Instruction};
use crate::message::Layout;
use crate::msg::FlowModFlags;
use crate::oxm::Match;
use crate::types::{GROUP_ANY, GroupName, PortNo, TABLE_ALL};
use crate::wire::{self, PResult};

/// Length of the fixed part of a flow statistics entry.
const FLOW_STATS_HEAD_LEN: usize = 48;
/// Length of the smallest match (an empty one, padded).
const MIN_MATCH_LEN: usize = 8;

/// Body of a FLOW or AGGREGATE request: which flows to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowStatsRequest {
    /// Table to read, or [`TABLE_ALL`].
    pub table_id: u8,
    /// Only flows that output to this port, unless [`PortNo::ANY`].
    pub out_port: PortNo,
    /// Only flows that output to this group, unless [`GROUP_ANY`].
    pub out_group: u32,
    /// Only flows whose cookie equals this one in the bits of `cookie_mask`.
    pub cookie: u64,
    /// Cookie bits that must match (0: any cookie).
    pub cookie_mask: u64,
    /// Only flows whose match is at least as specific as this one.
    #[serde(rename = "match")]
    pub match_: Match,
}

impl FlowStatsRequest {
    /// Flows of `table_id` whose cookie matches `cookie` in the bits of
    /// `cookie_mask` and whose match is at least as specific as `match_`,
    /// whatever they output to.
    pub fn new(table_id: u8, cookie: u64, cookie_mask: u64, match_: Match) -> FlowStatsRequest {
        FlowStatsRequest {
            table_id,
            out_port: PortNo::ANY,
            out_group: GROUP_ANY,
            cookie,
            cookie_mask,
            match_,
        }
    }

    /// Decodes the request body.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, FlowStatsRequest> {
        let (i, table_id) = wire::u8(i)?;
        let (i, ()) = wire::pad(i, 3)?;
        let (i, out_port) = wire::u32(i)?;
        let (i, out_group) = wire::u32(i)?;
        let (i, ()) = wire::pad(i, 4)?;
        let (i, cookie) = wire::u64(i)?;
        let (i, cookie_mask) = wire::u64(i)?;
        let (i, match_) = Match::decode(i)?;
        Ok((
            i,
            FlowStatsRequest {
                table_id,
                out_port: PortNo(out_port),
                out_group,
                cookie,
                cookie_mask,
                match_,
            },
        ))
    }

    /// Appends the request body.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.table_id);
        wire::put_zeros(out, 3);
        out.put_u32(self.out_port.0);
        out.put_u32(self.out_group);
        wire::put_zeros(out, 4);
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        self.match_.encode(out)
    }
}

impl fmt::Display for FlowStatsRequest {
    /// As `ovs-ofctl` shows the request: the table unless it is all of them,
    /// the filters that are set, then the match.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut part = |f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>| {
            f.write_str(sep)?;
            sep = " ";
            f.write_fmt(args)
        };
        if self.table_id != TABLE_ALL {
            part(f, format_args!("table={}", self.table_id))?;
        }
        if self.out_port != PortNo::ANY {
            part(f, format_args!("out_port={}", self.out_port))?;
        }
        if self.out_group != GROUP_ANY {
            part(f, format_args!("out_group={}", GroupName(self.out_group)))?;
        }
        if self.cookie_mask != 0 {
            part(
                f,
                format_args!("cookie=0x{:x}/0x{:x}", self.cookie, self.cookie_mask),
            )?;
        }
        if !self.match_.is_empty() {
            part(f, format_args!("{}", self.match_))?;
        }
        Ok(())
    }
}

/// One flow entry of a FLOW reply (`ofp_flow_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowStats {
    /// Table the flow is in.
    pub table_id: u8,
    /// Seconds the flow has been installed.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Priority of the flow.
    pub priority: u16,
    /// Seconds of inactivity before the flow expires (0: never).
    pub idle_timeout: u16,
    /// Seconds before the flow expires (0: never).
    pub hard_timeout: u16,
    /// The flags the flow was added with.
    pub flags: FlowModFlags,
    /// Eviction precedence (OpenFlow 1.4; always 0 in OpenFlow 1.3).
    pub importance: u16,
    /// Opaque controller-issued identifier.
    pub cookie: u64,
    /// Packets that matched the flow.
    pub packet_count: u64,
    /// Bytes that matched the flow.
    pub byte_count: u64,
    /// The flow's match.
    #[serde(rename = "match")]
    pub match_: Match,
    /// The flow's instructions.
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    /// Decodes one entry in the layout of `version`.
    pub(crate) fn decode(layout: Layout, i: &[u8]) -> PResult<'_, FlowStats> {
        let (rest, whole) = wire::split_by_length(i, 0, FLOW_STATS_HEAD_LEN, "flow stats")?;
        let (e, _length) = wire::u16(whole)?;
        let (e, table_id) = wire::u8(e)?;
        let (e, ()) = wire::pad(e, 1)?;
        let (e, duration_sec) = wire::u32(e)?;
        let (e, duration_nsec) = wire::u32(e)?;
        let (e, priority) = wire::u16(e)?;
        let (e, idle_timeout) = wire::u16(e)?;
        let (e, hard_timeout) = wire::u16(e)?;
        let (e, flags) = wire::u16(e)?;
        let (e, importance) = match layout {
            Layout::Of13 => (e, 0),
            Layout::Of14 => wire::u16(e)?,
        };
        let (e, ()) = wire::pad(e, if layout == Layout::Of13 { 4 } else { 2 })?;
        let (e, cookie) = wire::u64(e)?;
        let (e, packet_count) = wire::u64(e)?;
        let (e, byte_count) = wire::u64(e)?;
        let (e, match_) = Match::decode(e)?;
        let (_, instructions) = instruction::decode_instructions(e)?;
        Ok((
            rest,
            FlowStats {
                table_id,
                duration_sec,
                duration_nsec,
                priority,
                idle_timeout,
                hard_timeout,
                flags: FlowModFlags(flags),
                importance,
                cookie,
                packet_count,
                byte_count,
                match_,
                instructions,
            },
        ))
    }

    /// Decodes the entries filling all of `i`.
    pub(crate) fn decode_list(layout: Layout, i: &[u8]) -> PResult<'_, Vec<FlowStats>> {
        wire::list_by_length(i, 0, FLOW_STATS_HEAD_LEN + MIN_MATCH_LEN, |e| {
            FlowStats::decode(layout, e)
        })
    }

    /// Appends the entry in the layout of `version`.
    pub(crate) fn encode(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        let layout = Layout::encoding(version, "flow stats")?;
        if layout == Layout::Of13 && self.importance != 0 {
            return Err(EncodeError::WrongVersion {
                what: "flow importance",
                version: version.0,
            });
        }
        let start = out.len();
        let len_at = wire::reserve_u16(out);
        out.put_u8(self.table_id);
        wire::put_zeros(out, 1);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.put_u16(self.priority);
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.flags.0);
        // OpenFlow 1.3 has four bytes of padding where 1.4 has importance and
        // two bytes of padding; importance is 0 in 1.3 (checked above).
        out.put_u16(self.importance);
        wire::put_zeros(out, 2);
        out.put_u64(self.cookie);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        self.match_.encode(out)?;
        instruction::encode_instructions(&self.instructions, out)?;
        wire::patch_len_u16(out, len_at, start, "flow stats")?;
        Ok(())
    }
}

impl fmt::Display for FlowStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cookie=0x{:x}, duration={}.{:03}s, table={}, n_packets={}, n_bytes={}, ",
            self.cookie,
            self.duration_sec,
            self.duration_nsec / 1_000_000,
            self.table_id,
            self.packet_count,
            self.byte_count
        )?;
        if self.idle_timeout != 0 {
            write!(f, "idle_timeout={}, ", self.idle_timeout)?;
        }
        if self.hard_timeout != 0 {
            write!(f, "hard_timeout={}, ", self.hard_timeout)?;
        }
        if !self.flags.is_empty() {
            write!(f, "flags={}, ", self.flags)?;
        }
        if self.importance != 0 {
            write!(f, "importance={}, ", self.importance)?;
        }
        write!(f, "priority={}", self.priority)?;
        let fields = self.match_.to_string();
        if !fields.is_empty() {
            write!(f, ",{fields}")?;
        }
        write!(
            f,
            " actions={}",
            instruction::display_list(&self.instructions)
        )
    }
}

/// Body of an AGGREGATE reply: totals over the flows requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AggregateStats {
    /// Packets that matched the flows.
    pub packet_count: u64,
    /// Bytes that matched the flows.
    pub byte_count: u64,
    /// Number of flows.
    pub flow_count: u32,
}

impl AggregateStats {
    /// Decodes the reply body.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, AggregateStats> {
        let (i, packet_count) = wire::u64(i)?;
        let (i, byte_count) = wire::u64(i)?;
        let (i, flow_count) = wire::u32(i)?;
        let (i, ()) = wire::pad(i, 4)?;
        Ok((
            i,
            AggregateStats {
                packet_count,
                byte_count,
                flow_count,
            },
        ))
    }

    /// Appends the reply body.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.flow_count);
        wire::put_zeros(out, 4);
    }
}

impl fmt::Display for AggregateStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packet_count={} byte_count={} flow_count={}",
            self.packet_count, self.byte_count, self.flow_count
        )
    }
}

/// Counters of one table (`ofp_table_stats`), from a TABLE reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// The table.
    pub table_id: u8,
    /// Flows in the table.
    pub active_count: u32,
    /// Packets looked up in the table.
    pub lookup_count: u64,
    /// Packets that matched a flow of the table.
    pub matched_count: u64,
}

impl TableStats {
    /// Decodes one entry.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, TableStats> {
        let (i, table_id) = wire::u8(i)?;
        let (i, ()) = wire::pad(i, 3)?;
        let (i, active_count) = wire::u32(i)?;
        let (i, lookup_count) = wire::u64(i)?;
        let (i, matched_count) = wire::u64(i)?;
        Ok((
            i,
            TableStats {
                table_id,
                active_count,
                lookup_count,
                matched_count,
            },
        ))
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.table_id);
        wire::put_zeros(out, 3);
        out.put_u32(self.active_count);
        out.put_u64(self.lookup_count);
        out.put_u64(self.matched_count);
    }
}

impl fmt::Display for TableStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {}: active={}, lookup={}, matched={}",
            self.table_id, self.active_count, self.lookup_count, self.matched_count
        )
    }
}
