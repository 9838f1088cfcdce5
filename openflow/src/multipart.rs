//! MULTIPART_REQUEST and MULTIPART_REPLY: statistics and descriptions.
//!
//! Every multipart message starts with its type and a flag saying whether more
//! parts follow. The types a policy controller reads (switch description, flow,
//! aggregate, table, port, group and meter statistics, descriptions and
//! features) have typed bodies; every other type (table features, queues,
//! experimenter multiparts, OpenFlow 1.4 table and queue descriptions, flow
//! monitors, ...) is kept as its type and raw body, and re-encodes byte for byte.
//!
//! Replies that do not fit one message arrive as several, all but the last
//! with [`MultipartReplyFlags::REPLY_MORE`]; assembling them is up to the caller.

mod flow;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

pub use self::flow::{AggregateStats, FlowStats, FlowStatsRequest, TableStats};
use crate::error::EncodeError;
use crate::group::{GroupDesc, GroupFeatures, GroupStats};
use crate::header::Version;
use crate::message::{BodyCodec, Layout};
use crate::meter::{MeterConfig, MeterFeatures, MeterStats};
use crate::oxm::Match;
use crate::port::{Port, PortStats};
use crate::types::{GroupName, MeterName, PortNo};
use crate::wire::{self, PResult};

wire_enum! {
    /// Type of a multipart request or reply (`OFPMP_*`).
    pub struct MultipartType(u16) {
        /// Switch description.
        DESC = 0 => "desc",
        /// Per-flow statistics.
        FLOW = 1 => "flow",
        /// Aggregate flow statistics.
        AGGREGATE = 2 => "aggregate",
        /// Table statistics.
        TABLE = 3 => "table",
        /// Port statistics.
        PORT_STATS = 4 => "port",
        /// Queue statistics.
        QUEUE = 5 => "queue",
        /// Group statistics.
        GROUP = 6 => "group",
        /// Group descriptions.
        GROUP_DESC = 7 => "group_desc",
        /// Group features.
        GROUP_FEATURES = 8 => "group_features",
        /// Meter statistics.
        METER = 9 => "meter",
        /// Meter configurations.
        METER_CONFIG = 10 => "meter_config",
        /// Meter features.
        METER_FEATURES = 11 => "meter_features",
        /// Table features.
        TABLE_FEATURES = 12 => "table_features",
        /// Port descriptions.
        PORT_DESC = 13 => "port_desc",
        /// Table descriptions (OpenFlow 1.4).
        TABLE_DESC = 14 => "table_desc",
        /// Queue descriptions (OpenFlow 1.4).
        QUEUE_DESC = 15 => "queue_desc",
        /// Flow monitoring (OpenFlow 1.4).
        FLOW_MONITOR = 16 => "flow_monitor",
        /// Experimenter multipart.
        EXPERIMENTER = 0xffff => "experimenter",
    }
}

flag_set! {
    /// Flags of a multipart request (`OFPMPF_REQ_*`).
    pub struct MultipartRequestFlags(u16) {
        /// More request parts follow.
        REQ_MORE = 1 << 0 => "more",
    }
}

flag_set! {
    /// Flags of a multipart reply (`OFPMPF_REPLY_*`).
    pub struct MultipartReplyFlags(u16) {
        /// More reply parts follow.
        REPLY_MORE = 1 << 0 => "more",
    }
}

/// Widths of the fields of the switch description.
const DESC_STR_LEN: usize = 256;
const SERIAL_NUM_LEN: usize = 32;

/// The switch description (`ofp_desc`), body of a DESC reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Desc {
    /// Manufacturer.
    pub mfr_desc: String,
    /// Hardware revision.
    pub hw_desc: String,
    /// Software revision.
    pub sw_desc: String,
    /// Serial number.
    pub serial_num: String,
    /// Human-readable description of the datapath.
    pub dp_desc: String,
}

impl Desc {
    fn decode(i: &[u8]) -> PResult<'_, Desc> {
        let (i, mfr_desc) = wire::fixed_str(i, DESC_STR_LEN)?;
        let (i, hw_desc) = wire::fixed_str(i, DESC_STR_LEN)?;
        let (i, sw_desc) = wire::fixed_str(i, DESC_STR_LEN)?;
        let (i, serial_num) = wire::fixed_str(i, SERIAL_NUM_LEN)?;
        let (i, dp_desc) = wire::fixed_str(i, DESC_STR_LEN)?;
        Ok((
            i,
            Desc {
                mfr_desc,
                hw_desc,
                sw_desc,
                serial_num,
                dp_desc,
            },
        ))
    }

    fn encode(&self, out: &mut BytesMut) {
        wire::put_fixed_str(out, &self.mfr_desc, DESC_STR_LEN);
        wire::put_fixed_str(out, &self.hw_desc, DESC_STR_LEN);
        wire::put_fixed_str(out, &self.sw_desc, DESC_STR_LEN);
        wire::put_fixed_str(out, &self.serial_num, SERIAL_NUM_LEN);
        wire::put_fixed_str(out, &self.dp_desc, DESC_STR_LEN);
    }
}

impl fmt::Display for Desc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Manufacturer: {:?} Hardware: {:?} Software: {:?} Serial Num: {:?} DP Description: {:?}",
            self.mfr_desc, self.hw_desc, self.sw_desc, self.serial_num, self.dp_desc
        )
    }
}

/// What a multipart request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MultipartRequestBody {
    /// The switch description.
    Desc,
    /// Statistics of each flow selected.
    Flow(FlowStatsRequest),
    /// Totals over the flows selected.
    Aggregate(FlowStatsRequest),
    /// Statistics of every table.
    Table,
    /// Statistics of one port, or all with [`PortNo::ANY`].
    PortStats {
        /// The port.
        port_no: PortNo,
    },
    /// Descriptions of every port.
    PortDesc,
    /// Statistics of one group, or all with [`GROUP_ALL`](crate::GROUP_ALL).
    Group {
        /// The group.
        group_id: u32,
    },
    /// Descriptions of every group.
    GroupDesc,
    /// The switch's group capabilities.
    GroupFeatures,
    /// Statistics of one meter, or all with [`METER_ALL`](crate::METER_ALL).
    Meter {
        /// The meter.
        meter_id: u32,
    },
    /// Configuration of one meter, or all with [`METER_ALL`](crate::METER_ALL).
    MeterConfig {
        /// The meter.
        meter_id: u32,
    },
    /// The switch's meter capabilities.
    MeterFeatures,
    /// A type without a typed body here, kept byte for byte.
    Other {
        /// The multipart type.
        mp_type: MultipartType,
        /// The body after the multipart header.
        #[serde(with = "crate::wire::hex_bytes")]
        body: Bytes,
    },
}

impl MultipartRequestBody {
    /// The multipart type of the body.
    pub fn mp_type(&self) -> MultipartType {
        match self {
            MultipartRequestBody::Desc => MultipartType::DESC,
            MultipartRequestBody::Flow(_) => MultipartType::FLOW,
            MultipartRequestBody::Aggregate(_) => MultipartType::AGGREGATE,
            MultipartRequestBody::Table => MultipartType::TABLE,
            MultipartRequestBody::PortStats { .. } => MultipartType::PORT_STATS,
            MultipartRequestBody::PortDesc => MultipartType::PORT_DESC,
            MultipartRequestBody::Group { .. } => MultipartType::GROUP,
            MultipartRequestBody::GroupDesc => MultipartType::GROUP_DESC,
            MultipartRequestBody::GroupFeatures => MultipartType::GROUP_FEATURES,
            MultipartRequestBody::Meter { .. } => MultipartType::METER,
            MultipartRequestBody::MeterConfig { .. } => MultipartType::METER_CONFIG,
            MultipartRequestBody::MeterFeatures => MultipartType::METER_FEATURES,
            MultipartRequestBody::Other { mp_type, .. } => *mp_type,
        }
    }
}

/// MULTIPART_REQUEST: asks the switch for statistics or descriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartRequest {
    /// Whether more request parts follow.
    pub flags: MultipartRequestFlags,
    /// What is asked for.
    pub body: MultipartRequestBody,
}

impl MultipartRequest {
    /// A single-part request.
    pub fn new(body: MultipartRequestBody) -> MultipartRequest {
        MultipartRequest {
            flags: MultipartRequestFlags::empty(),
            body,
        }
    }

    /// The switch description.
    pub fn desc() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Desc)
    }

    /// Statistics of the flows of `table_id` ([`TABLE_ALL`](crate::TABLE_ALL) for every table)
    /// whose cookie equals `cookie` in the bits of `cookie_mask` and whose
    /// match is at least as specific as `match_`.
    pub fn flow_stats(
        table_id: u8,
        cookie: u64,
        cookie_mask: u64,
        match_: Match,
    ) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Flow(FlowStatsRequest::new(
            table_id,
            cookie,
            cookie_mask,
            match_,
        )))
    }

    /// Totals over the flows [`MultipartRequest::flow_stats`] would report.
    pub fn aggregate_stats(
        table_id: u8,
        cookie: u64,
        cookie_mask: u64,
        match_: Match,
    ) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Aggregate(FlowStatsRequest::new(
            table_id,
            cookie,
            cookie_mask,
            match_,
        )))
    }

    /// Statistics of every table.
    pub fn table_stats() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Table)
    }

    /// Statistics of port `port_no` ([`PortNo::ANY`] for every port).
    pub fn port_stats(port_no: PortNo) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::PortStats { port_no })
    }

    /// Descriptions of every port.
    pub fn port_desc() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::PortDesc)
    }

    /// Statistics of group `group_id` ([`GROUP_ALL`](crate::GROUP_ALL) for every group).
    pub fn group_stats(group_id: u32) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Group { group_id })
    }

    /// Descriptions of every group.
    pub fn group_desc() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::GroupDesc)
    }

    /// The switch's group capabilities.
    pub fn group_features() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::GroupFeatures)
    }

    /// Statistics of meter `meter_id` ([`METER_ALL`](crate::METER_ALL) for every meter).
    pub fn meter_stats(meter_id: u32) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::Meter { meter_id })
    }

    /// Configuration of meter `meter_id` ([`METER_ALL`](crate::METER_ALL) for every meter).
    pub fn meter_config(meter_id: u32) -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::MeterConfig { meter_id })
    }

    /// The switch's meter capabilities.
    pub fn meter_features() -> MultipartRequest {
        MultipartRequest::new(MultipartRequestBody::MeterFeatures)
    }
}

/// Reads the `u32` id and 4 bytes of padding that form several request bodies.
fn id_and_pad(i: &[u8]) -> PResult<'_, u32> {
    let (i, id) = wire::u32(i)?;
    let (i, ()) = wire::pad(i, 4)?;
    Ok((i, id))
}

fn put_id_and_pad(out: &mut BytesMut, id: u32) {
    out.put_u32(id);
    wire::put_zeros(out, 4);
}

/// Reads the multipart header: type, flags, padding.
fn decode_header(i: &[u8]) -> PResult<'_, (MultipartType, u16)> {
    let (i, mp_type) = wire::u16(i)?;
    let (i, flags) = wire::u16(i)?;
    let (i, ()) = wire::pad(i, 4)?;
    Ok((i, (MultipartType(mp_type), flags)))
}

fn encode_header(out: &mut BytesMut, mp_type: MultipartType, flags: u16) {
    out.put_u16(mp_type.0);
    out.put_u16(flags);
    wire::put_zeros(out, 4);
}

impl BodyCodec for MultipartRequest {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        Layout::decoding(version, i)?;
        let (i, (mp_type, flags)) = decode_header(i)?;
        let (i, body) = match mp_type {
            MultipartType::DESC => (i, MultipartRequestBody::Desc),
            MultipartType::FLOW => {
                let (i, request) = FlowStatsRequest::decode(i)?;
                (i, MultipartRequestBody::Flow(request))
            }
            MultipartType::AGGREGATE => {
                let (i, request) = FlowStatsRequest::decode(i)?;
                (i, MultipartRequestBody::Aggregate(request))
            }
            MultipartType::TABLE => (i, MultipartRequestBody::Table),
            MultipartType::PORT_STATS => {
                let (i, port_no) = id_and_pad(i)?;
                let port_no = PortNo(port_no);
                (i, MultipartRequestBody::PortStats { port_no })
            }
            // OpenFlow 1.3 and 1.4 PORT_DESC requests have no body (1.5 added a port).
            MultipartType::PORT_DESC => (i, MultipartRequestBody::PortDesc),
            MultipartType::GROUP => {
                let (i, group_id) = id_and_pad(i)?;
                (i, MultipartRequestBody::Group { group_id })
            }
            MultipartType::GROUP_DESC => (i, MultipartRequestBody::GroupDesc),
            MultipartType::GROUP_FEATURES => (i, MultipartRequestBody::GroupFeatures),
            MultipartType::METER => {
                let (i, meter_id) = id_and_pad(i)?;
                (i, MultipartRequestBody::Meter { meter_id })
            }
            MultipartType::METER_CONFIG => {
                let (i, meter_id) = id_and_pad(i)?;
                (i, MultipartRequestBody::MeterConfig { meter_id })
            }
            MultipartType::METER_FEATURES => (i, MultipartRequestBody::MeterFeatures),
            mp_type => (
                &i[i.len()..],
                MultipartRequestBody::Other {
                    mp_type,
                    body: Bytes::copy_from_slice(i),
                },
            ),
        };
        let (i, ()) = wire::all_consumed(i, "multipart request")?;
        Ok((
            i,
            MultipartRequest {
                flags: MultipartRequestFlags(flags),
                body,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        Layout::encoding(version, "multipart request")?;
        encode_header(out, self.body.mp_type(), self.flags.0);
        match &self.body {
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::PortDesc
            | MultipartRequestBody::GroupDesc
            | MultipartRequestBody::GroupFeatures
            | MultipartRequestBody::MeterFeatures => {}
            MultipartRequestBody::Flow(request) | MultipartRequestBody::Aggregate(request) => {
                request.encode(out)?;
            }
            MultipartRequestBody::PortStats { port_no } => put_id_and_pad(out, port_no.0),
            MultipartRequestBody::Group { group_id } => put_id_and_pad(out, *group_id),
            MultipartRequestBody::Meter { meter_id }
            | MultipartRequestBody::MeterConfig { meter_id } => put_id_and_pad(out, *meter_id),
            MultipartRequestBody::Other { body, .. } => out.put_slice(body),
        }
        Ok(())
    }
}

impl fmt::Display for MultipartRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.body.mp_type())?;
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        match &self.body {
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::PortDesc
            | MultipartRequestBody::GroupDesc
            | MultipartRequestBody::GroupFeatures
            | MultipartRequestBody::MeterFeatures => Ok(()),
            MultipartRequestBody::Flow(request) | MultipartRequestBody::Aggregate(request) => {
                let request = request.to_string();
                if request.is_empty() {
                    Ok(())
                } else {
                    write!(f, " {request}")
                }
            }
            MultipartRequestBody::PortStats { port_no } => write!(f, " port={port_no}"),
            MultipartRequestBody::Group { group_id } => {
                write!(f, " group_id={}", GroupName(*group_id))
            }
            MultipartRequestBody::Meter { meter_id }
            | MultipartRequestBody::MeterConfig { meter_id } => {
                write!(f, " meter={}", MeterName(*meter_id))
            }
            MultipartRequestBody::Other { body, .. } => write!(f, " {} bytes", body.len()),
        }
    }
}

/// What a multipart reply carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MultipartReplyBody {
    /// The switch description.
    Desc(Desc),
    /// Per-flow statistics.
    Flow(Vec<FlowStats>),
    /// Aggregate flow statistics.
    Aggregate(AggregateStats),
    /// Per-table statistics.
    Table(Vec<TableStats>),
    /// Per-port statistics.
    PortStats(Vec<PortStats>),
    /// Port descriptions.
    PortDesc(Vec<Port>),
    /// Per-group statistics.
    Group(Vec<GroupStats>),
    /// Group descriptions.
    GroupDesc(Vec<GroupDesc>),
    /// Group capabilities.
    GroupFeatures(GroupFeatures),
    /// Per-meter statistics.
    Meter(Vec<MeterStats>),
    /// Meter configurations.
    MeterConfig(Vec<MeterConfig>),
    /// Meter capabilities.
    MeterFeatures(MeterFeatures),
    /// A type without a typed body here, kept byte for byte.
    Other {
        /// The multipart type.
        mp_type: MultipartType,
        /// The body after the multipart header.
        #[serde(with = "crate::wire::hex_bytes")]
        body: Bytes,
    },
}

impl MultipartReplyBody {
    /// The multipart type of the body.
    pub fn mp_type(&self) -> MultipartType {
        match self {
            MultipartReplyBody::Desc(_) => MultipartType::DESC,
            MultipartReplyBody::Flow(_) => MultipartType::FLOW,
            MultipartReplyBody::Aggregate(_) => MultipartType::AGGREGATE,
            MultipartReplyBody::Table(_) => MultipartType::TABLE,
            MultipartReplyBody::PortStats(_) => MultipartType::PORT_STATS,
            MultipartReplyBody::PortDesc(_) => MultipartType::PORT_DESC,
            MultipartReplyBody::Group(_) => MultipartType::GROUP,
            MultipartReplyBody::GroupDesc(_) => MultipartType::GROUP_DESC,
            MultipartReplyBody::GroupFeatures(_) => MultipartType::GROUP_FEATURES,
            MultipartReplyBody::Meter(_) => MultipartType::METER,
            MultipartReplyBody::MeterConfig(_) => MultipartType::METER_CONFIG,
            MultipartReplyBody::MeterFeatures(_) => MultipartType::METER_FEATURES,
            MultipartReplyBody::Other { mp_type, .. } => *mp_type,
        }
    }
}

/// MULTIPART_REPLY: one part of the switch's answer to a MULTIPART_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartReply {
    /// Whether more reply parts follow.
    pub flags: MultipartReplyFlags,
    /// The answer.
    pub body: MultipartReplyBody,
}

impl MultipartReply {
    /// Whether more parts of this reply follow (same xid).
    pub fn has_more(&self) -> bool {
        self.flags.contains(MultipartReplyFlags::REPLY_MORE)
    }
}

impl BodyCodec for MultipartReply {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        let layout = Layout::decoding(version, i)?;
        let (i, (mp_type, flags)) = decode_header(i)?;
        let (i, body) = match mp_type {
            MultipartType::DESC => {
                let (i, desc) = Desc::decode(i)?;
                (i, MultipartReplyBody::Desc(desc))
            }
            MultipartType::FLOW => {
                let (i, flows) = FlowStats::decode_list(layout, i)?;
                (i, MultipartReplyBody::Flow(flows))
            }
            MultipartType::AGGREGATE => {
                let (i, totals) = AggregateStats::decode(i)?;
                (i, MultipartReplyBody::Aggregate(totals))
            }
            MultipartType::TABLE => {
                let (i, tables) = wire::many(i, TableStats::decode)?;
                (i, MultipartReplyBody::Table(tables))
            }
            MultipartType::PORT_STATS => {
                let (i, ports) = wire::many(i, |p| PortStats::decode(version, p))?;
                (i, MultipartReplyBody::PortStats(ports))
            }
            MultipartType::PORT_DESC => {
                let (i, ports) = wire::many(i, |p| Port::decode(version, p))?;
                (i, MultipartReplyBody::PortDesc(ports))
            }
            MultipartType::GROUP => {
                let (i, groups) = GroupStats::decode_list(i)?;
                (i, MultipartReplyBody::Group(groups))
            }
            MultipartType::GROUP_DESC => {
                let (i, groups) = GroupDesc::decode_list(i)?;
                (i, MultipartReplyBody::GroupDesc(groups))
            }
            MultipartType::GROUP_FEATURES => {
                let (i, features) = GroupFeatures::decode(i)?;
                (i, MultipartReplyBody::GroupFeatures(features))
            }
            MultipartType::METER => {
                let (i, meters) = MeterStats::decode_list(i)?;
                (i, MultipartReplyBody::Meter(meters))
            }
            MultipartType::METER_CONFIG => {
                let (i, meters) = MeterConfig::decode_list(i)?;
                (i, MultipartReplyBody::MeterConfig(meters))
            }
            MultipartType::METER_FEATURES => {
                let (i, features) = MeterFeatures::decode(i)?;
                (i, MultipartReplyBody::MeterFeatures(features))
            }
            mp_type => (
                &i[i.len()..],
                MultipartReplyBody::Other {
                    mp_type,
                    body: Bytes::copy_from_slice(i),
                },
            ),
        };
        let (i, ()) = wire::all_consumed(i, "multipart reply")?;
        Ok((
            i,
            MultipartReply {
                flags: MultipartReplyFlags(flags),
                body,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        Layout::encoding(version, "multipart reply")?;
        encode_header(out, self.body.mp_type(), self.flags.0);
        match &self.body {
            MultipartReplyBody::Desc(desc) => desc.encode(out),
            MultipartReplyBody::Flow(flows) => {
                for flow in flows {
                    flow.encode(version, out)?;
                }
            }
            MultipartReplyBody::Aggregate(totals) => totals.encode(out),
            MultipartReplyBody::Table(tables) => tables.iter().for_each(|t| t.encode(out)),
            MultipartReplyBody::PortStats(ports) => {
                for port in ports {
                    port.encode(version, out)?;
                }
            }
            MultipartReplyBody::PortDesc(ports) => {
                for port in ports {
                    port.encode(version, out)?;
                }
            }
            MultipartReplyBody::Group(groups) => {
                for group in groups {
                    group.encode(out)?;
                }
            }
            MultipartReplyBody::GroupDesc(groups) => {
                for group in groups {
                    group.encode(out)?;
                }
            }
            MultipartReplyBody::GroupFeatures(features) => features.encode(out),
            MultipartReplyBody::Meter(meters) => {
                for meter in meters {
                    meter.encode(out)?;
                }
            }
            MultipartReplyBody::MeterConfig(meters) => {
                for meter in meters {
                    meter.encode(out)?;
                }
            }
            MultipartReplyBody::MeterFeatures(features) => features.encode(out),
            MultipartReplyBody::Other { body, .. } => out.put_slice(body),
        }
        Ok(())
    }
}

/// Writes each entry on its own line, as ovs-ofctl prints statistics.
fn lines<T: fmt::Display>(f: &mut fmt::Formatter<'_>, entries: &[T]) -> fmt::Result {
    entries.iter().try_for_each(|e| write!(f, "\n {e}"))
}

impl fmt::Display for MultipartReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.body.mp_type())?;
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        match &self.body {
            MultipartReplyBody::Desc(desc) => write!(f, " {desc}"),
            MultipartReplyBody::Flow(flows) => lines(f, flows),
            MultipartReplyBody::Aggregate(totals) => write!(f, " {totals}"),
            MultipartReplyBody::Table(tables) => lines(f, tables),
            MultipartReplyBody::PortStats(ports) => lines(f, ports),
            MultipartReplyBody::PortDesc(ports) => lines(f, ports),
            MultipartReplyBody::Group(groups) => lines(f, groups),
            MultipartReplyBody::GroupDesc(groups) => lines(f, groups),
            MultipartReplyBody::GroupFeatures(features) => write!(f, " {features}"),
            MultipartReplyBody::Meter(meters) => lines(f, meters),
            MultipartReplyBody::MeterConfig(meters) => lines(f, meters),
            MultipartReplyBody::MeterFeatures(features) => write!(f, " {features}"),
            MultipartReplyBody::Other { body, .. } => write!(f, " {} bytes", body.len()),
        }
    }
}

#[cfg(test)]
mod tests;
