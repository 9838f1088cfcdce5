//! Proptest strategies for ports, groups, meters and multipart messages.
//!
//! Values are valid for the wire version they are generated for: an OpenFlow
//! 1.3 port carries exactly one Ethernet property, an OpenFlow 1.3 flow entry
//! has importance 0, and so on. Matches, actions and instructions come from
//! decoding a fixed set of well-formed encodings through the public API, so
//! these strategies do not depend on how those types are represented.
#![allow(dead_code)]
// Test support code: a malformed fixture or strategy should fail loudly.
#![allow(clippy::unwrap_used)]

use augur_openflow::action::Action;
use augur_openflow::group::{
    Bucket, BucketCounter, GroupCapabilities, GroupCommand, GroupDesc, GroupFeatures, GroupMod,
    GroupStats, GroupType, GroupTypes,
};
use augur_openflow::instruction::Instruction;
use augur_openflow::meter::{
    MeterBand, MeterBandStats, MeterBandType, MeterBandTypes, MeterCapabilities, MeterCommand,
    MeterConfig, MeterFeatures, MeterFlags, MeterMod, MeterStats,
};
use augur_openflow::msg::FlowModFlags;
use augur_openflow::multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, MultipartReply, MultipartReplyBody,
    MultipartReplyFlags, MultipartRequest, MultipartRequestBody, MultipartRequestFlags,
    MultipartType, TableStats,
};
use augur_openflow::oxm::Match;
use augur_openflow::port::{
    OpticalFeatures, OpticalStatsFlags, Port, PortConfig, PortDescProperty, PortEthernet,
    PortFeatures, PortMod, PortModOptical, PortModProperty, PortOptical, PortReason, PortState,
    PortStats, PortStatsEthernet, PortStatsOptical, PortStatsProperty, PortStatus,
};
use augur_openflow::{Body, ExperimenterId, MacAddr, Message, PortNo, UnknownProperty, Version};
use bytes::Bytes;
use proptest::prelude::*;

#[path = "prop.rs"]
mod prop_strategies;
pub use prop_strategies::arb_experimenter_property;

/// A property of a type none of the port property lists defines.
pub fn arb_unknown_property() -> impl Strategy<Value = UnknownProperty> {
    prop_strategies::arb_unknown_property(&[0, 1, 0xffff])
}

/// Decodes `body` as a message of `msg_type` in OpenFlow 1.3.
fn decode(msg_type: u8, body: &[u8]) -> Body {
    let len = u16::try_from(8 + body.len()).unwrap();
    let mut bytes = vec![4, msg_type];
    bytes.extend(len.to_be_bytes());
    bytes.extend([0, 0, 0, 0]);
    bytes.extend(body);
    Message::decode(&bytes).unwrap().body
}

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// Well-formed OXM matches an ACL controller uses.
const MATCHES: &[&str] = &[
    // (empty)
    "0001 0004 00000000",
    // in_port=6
    "0001 000c 80000004 00000006 00000000",
    // eth_src=f2:0b:a4:7d:f8:ea
    "0001 000e 80000806 f20ba47df8ea 0000",
    // eth_type=ip,ip_proto=6,ipv4_dst=10.0.0.1,tcp_dst=22
    "0001 001d 80000a02 0800 80001401 06 80001804 0a000001 80001c02 0016 000000",
];

/// Well-formed actions.
const ACTIONS: &[&str] = &[
    // output:2
    "0000 0010 00000002 ffff 000000000000",
    // output:CONTROLLER
    "0000 0010 fffffffd ffff 000000000000",
    // group:5
    "0016 0008 00000005",
    // set_queue:3
    "0015 0008 00000003",
];

/// Well-formed instructions.
const INSTRUCTIONS: &[&str] = &[
    // goto_table:1
    "0001 0008 01 000000",
    // apply_actions(output:2)
    "0004 0018 00000000 0000 0010 00000002 ffff 000000000000",
    // write_actions(group:5)
    "0003 0010 00000000 0016 0008 00000005",
    // meter:7
    "0006 0008 00000007",
    // clear_actions
    "0005 0008 00000000",
];

fn decoded_match(m: &str) -> Match {
    let mut body = hex("0001 0000 00000000 00 000000 ffffffff ffffffff 00000000");
    body.extend([0; 16]);
    body.extend(hex(m));
    let Body::MultipartRequest(MultipartRequest {
        body: MultipartRequestBody::Flow(request),
        ..
    }) = decode(18, &body)
    else {
        panic!("not a flow stats request")
    };
    request.match_
}

fn decoded_action(a: &str) -> Action {
    let a = hex(a);
    let mut body = hex("0000 00 00 00000001");
    body.extend(u16::try_from(16 + a.len()).unwrap().to_be_bytes());
    body.extend(hex("0000 ffffffff ffffffff 00000000"));
    body.extend(a);
    let Body::GroupMod(mut gm) = decode(15, &body) else {
        panic!("not a group mod")
    };
    gm.buckets.remove(0).actions.remove(0)
}

fn decoded_instruction(i: &str) -> Instruction {
    let i = hex(i);
    let mut body = hex("0001 0000 00000000");
    body.extend(u16::try_from(56 + i.len()).unwrap().to_be_bytes());
    body.extend([0; 46]);
    body.extend(hex("0001 0004 00000000"));
    body.extend(i);
    let Body::MultipartReply(MultipartReply {
        body: MultipartReplyBody::Flow(mut flows),
        ..
    }) = decode(19, &body)
    else {
        panic!("not a flow stats reply")
    };
    flows.remove(0).instructions.remove(0)
}

/// One of a few realistic matches.
pub fn arb_match() -> impl Strategy<Value = Match> {
    prop::sample::select(MATCHES.iter().map(|m| decoded_match(m)).collect::<Vec<_>>())
}

/// Up to three actions.
pub fn arb_actions() -> impl Strategy<Value = Vec<Action>> {
    let actions: Vec<Action> = ACTIONS.iter().map(|a| decoded_action(a)).collect();
    prop::collection::vec(prop::sample::select(actions), 0..3)
}

/// Up to three instructions.
pub fn arb_instructions() -> impl Strategy<Value = Vec<Instruction>> {
    let instructions: Vec<Instruction> = INSTRUCTIONS
        .iter()
        .map(|i| decoded_instruction(i))
        .collect();
    prop::collection::vec(prop::sample::select(instructions), 0..3)
}

/// OpenFlow 1.3 or 1.4.
pub fn arb_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::OF13), Just(Version::OF14)]
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// A port or interface name as it fits the 16-byte field.
fn arb_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{0,15}"
}

// ---- ports ----

/// Ethernet features and speeds.
pub fn arb_port_ethernet() -> impl Strategy<Value = PortEthernet> {
    (any::<[u32; 4]>(), any::<u32>(), any::<u32>()).prop_map(|(f, curr_speed, max_speed)| {
        PortEthernet {
            curr: PortFeatures(f[0]),
            advertised: PortFeatures(f[1]),
            supported: PortFeatures(f[2]),
            peer: PortFeatures(f[3]),
            curr_speed,
            max_speed,
        }
    })
}

/// Optical port capabilities.
pub fn arb_port_optical() -> impl Strategy<Value = PortOptical> {
    (any::<u32>(), any::<[u32; 6]>(), any::<u16>(), any::<u16>()).prop_map(
        |(supported, f, tx_pwr_min, tx_pwr_max)| PortOptical {
            supported: OpticalFeatures(supported),
            tx_min_freq_lmda: f[0],
            tx_max_freq_lmda: f[1],
            tx_grid_freq_lmda: f[2],
            rx_min_freq_lmda: f[3],
            rx_max_freq_lmda: f[4],
            rx_grid_freq_lmda: f[5],
            tx_pwr_min,
            tx_pwr_max,
        },
    )
}

/// Any port description property.
pub fn arb_port_desc_property() -> impl Strategy<Value = PortDescProperty> {
    prop_oneof![
        arb_port_ethernet().prop_map(PortDescProperty::Ethernet),
        arb_port_optical().prop_map(PortDescProperty::Optical),
        arb_experimenter_property().prop_map(PortDescProperty::Experimenter),
        arb_unknown_property().prop_map(PortDescProperty::Unknown),
    ]
}

/// A port description valid in `version`.
pub fn arb_port(version: Version) -> impl Strategy<Value = Port> {
    let properties = if version == Version::OF13 {
        arb_port_ethernet()
            .prop_map(|e| vec![PortDescProperty::Ethernet(e)])
            .boxed()
    } else {
        prop::collection::vec(arb_port_desc_property(), 0..4).boxed()
    };
    (
        any::<u32>(),
        any::<[u8; 6]>(),
        arb_name(),
        any::<u32>(),
        any::<u32>(),
        properties,
    )
        .prop_map(|(port_no, hw_addr, name, config, state, properties)| Port {
            port_no: PortNo(port_no),
            hw_addr: MacAddr(hw_addr),
            name,
            config: PortConfig(config),
            state: PortState(state),
            properties,
        })
}

/// A PORT_STATUS valid in `version`.
pub fn arb_port_status(version: Version) -> impl Strategy<Value = PortStatus> {
    (any::<u8>(), arb_port(version)).prop_map(|(reason, desc)| PortStatus {
        reason: PortReason(reason),
        desc,
    })
}

/// Any PORT_MOD property.
pub fn arb_port_mod_property() -> impl Strategy<Value = PortModProperty> {
    prop_oneof![
        any::<u32>().prop_map(|a| PortModProperty::Ethernet {
            advertise: PortFeatures(a)
        }),
        any::<[u32; 5]>().prop_map(|o| PortModProperty::Optical(PortModOptical {
            configure: OpticalFeatures(o[0]),
            freq_lmda: o[1],
            fl_offset: o[2],
            grid_span: o[3],
            tx_pwr: o[4],
        })),
        arb_experimenter_property().prop_map(PortModProperty::Experimenter),
        arb_unknown_property().prop_map(PortModProperty::Unknown),
    ]
}

/// A PORT_MOD valid in `version`.
pub fn arb_port_mod(version: Version) -> impl Strategy<Value = PortMod> {
    let properties = if version == Version::OF13 {
        prop::option::of(1u32..)
            .prop_map(|a| {
                a.map(|a| PortModProperty::Ethernet {
                    advertise: PortFeatures(a),
                })
                .into_iter()
                .collect()
            })
            .boxed()
    } else {
        prop::collection::vec(arb_port_mod_property(), 0..4).boxed()
    };
    (
        any::<u32>(),
        any::<[u8; 6]>(),
        any::<u32>(),
        any::<u32>(),
        properties,
    )
        .prop_map(|(port_no, hw_addr, config, mask, properties)| PortMod {
            port_no: PortNo(port_no),
            hw_addr: MacAddr(hw_addr),
            config: PortConfig(config),
            mask: PortConfig(mask),
            properties,
        })
}

/// Ethernet error counters.
pub fn arb_port_stats_ethernet() -> impl Strategy<Value = PortStatsEthernet> {
    any::<[u64; 4]>().prop_map(|c| PortStatsEthernet {
        rx_frame_err: c[0],
        rx_over_err: c[1],
        rx_crc_err: c[2],
        collisions: c[3],
    })
}

/// Any port statistics property.
pub fn arb_port_stats_property() -> impl Strategy<Value = PortStatsProperty> {
    prop_oneof![
        arb_port_stats_ethernet().prop_map(PortStatsProperty::Ethernet),
        (any::<u32>(), any::<[u32; 6]>(), any::<[u16; 4]>()).prop_map(|(flags, f, p)| {
            PortStatsProperty::Optical(PortStatsOptical {
                flags: OpticalStatsFlags(flags),
                tx_freq_lmda: f[0],
                tx_offset: f[1],
                tx_grid_span: f[2],
                rx_freq_lmda: f[3],
                rx_offset: f[4],
                rx_grid_span: f[5],
                tx_pwr: p[0],
                rx_pwr: p[1],
                bias_current: p[2],
                temperature: p[3],
            })
        }),
        arb_experimenter_property().prop_map(PortStatsProperty::Experimenter),
        arb_unknown_property().prop_map(PortStatsProperty::Unknown),
    ]
}

/// A port statistics entry valid in `version`.
pub fn arb_port_stats(version: Version) -> impl Strategy<Value = PortStats> {
    let properties = if version == Version::OF13 {
        arb_port_stats_ethernet()
            .prop_map(|e| vec![PortStatsProperty::Ethernet(e)])
            .boxed()
    } else {
        prop::collection::vec(arb_port_stats_property(), 0..4).boxed()
    };
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<[u64; 8]>(),
        properties,
    )
        .prop_map(
            |(port_no, duration_sec, duration_nsec, c, properties)| PortStats {
                port_no: PortNo(port_no),
                duration_sec,
                duration_nsec,
                rx_packets: c[0],
                tx_packets: c[1],
                rx_bytes: c[2],
                tx_bytes: c[3],
                rx_dropped: c[4],
                tx_dropped: c[5],
                rx_errors: c[6],
                tx_errors: c[7],
                properties,
            },
        )
}

// ---- groups ----

/// A bucket.
pub fn arb_bucket() -> impl Strategy<Value = Bucket> {
    (any::<u16>(), any::<u32>(), any::<u32>(), arb_actions()).prop_map(
        |(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port: PortNo(watch_port),
            watch_group,
            actions,
        },
    )
}

/// A GROUP_MOD.
pub fn arb_group_mod() -> impl Strategy<Value = GroupMod> {
    (
        any::<u16>(),
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(arb_bucket(), 0..4),
    )
        .prop_map(|(command, group_type, group_id, buckets)| GroupMod {
            command: GroupCommand(command),
            group_type: GroupType(group_type),
            group_id,
            buckets,
        })
}

/// A group statistics entry.
pub fn arb_group_stats() -> impl Strategy<Value = GroupStats> {
    (
        any::<[u32; 4]>(),
        any::<[u64; 2]>(),
        prop::collection::vec(any::<[u64; 2]>(), 0..4),
    )
        .prop_map(|(n, c, buckets)| GroupStats {
            group_id: n[0],
            ref_count: n[1],
            packet_count: c[0],
            byte_count: c[1],
            duration_sec: n[2],
            duration_nsec: n[3],
            bucket_stats: buckets
                .into_iter()
                .map(|[packet_count, byte_count]| BucketCounter {
                    packet_count,
                    byte_count,
                })
                .collect(),
        })
}

/// A group description entry.
pub fn arb_group_desc() -> impl Strategy<Value = GroupDesc> {
    (
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(arb_bucket(), 0..4),
    )
        .prop_map(|(group_type, group_id, buckets)| GroupDesc {
            group_type: GroupType(group_type),
            group_id,
            buckets,
        })
}

/// Group features.
pub fn arb_group_features() -> impl Strategy<Value = GroupFeatures> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<[u32; 4]>(),
        any::<[u32; 4]>(),
    )
        .prop_map(|(types, capabilities, max_groups, actions)| GroupFeatures {
            types: GroupTypes(types),
            capabilities: GroupCapabilities(capabilities),
            max_groups,
            actions,
        })
}

// ---- meters ----

/// A meter band.
pub fn arb_meter_band() -> impl Strategy<Value = MeterBand> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(rate, burst_size, prec_level)| {
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            }
        }),
        (any::<u32>(), any::<u32>(), any::<u32>(), arb_bytes(12)).prop_map(
            |(rate, burst_size, experimenter, data)| MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter: ExperimenterId(experimenter),
                data,
            }
        ),
        (3u16..0xffff, any::<u32>(), any::<u32>(), arb_bytes(12)).prop_map(
            |(band_type, rate, burst_size, data)| MeterBand::Unknown {
                band_type: MeterBandType(band_type),
                rate,
                burst_size,
                data,
            }
        ),
    ]
}

/// A METER_MOD.
pub fn arb_meter_mod() -> impl Strategy<Value = MeterMod> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(arb_meter_band(), 0..4),
    )
        .prop_map(|(command, flags, meter_id, bands)| MeterMod {
            command: MeterCommand(command),
            flags: MeterFlags(flags),
            meter_id,
            bands,
        })
}

/// A meter statistics entry.
pub fn arb_meter_stats() -> impl Strategy<Value = MeterStats> {
    (
        any::<[u32; 4]>(),
        any::<[u64; 2]>(),
        prop::collection::vec(any::<[u64; 2]>(), 0..4),
    )
        .prop_map(|(n, c, bands)| MeterStats {
            meter_id: n[0],
            flow_count: n[1],
            packet_in_count: c[0],
            byte_in_count: c[1],
            duration_sec: n[2],
            duration_nsec: n[3],
            band_stats: bands
                .into_iter()
                .map(|[packet_band_count, byte_band_count]| MeterBandStats {
                    packet_band_count,
                    byte_band_count,
                })
                .collect(),
        })
}

/// A meter configuration entry.
pub fn arb_meter_config() -> impl Strategy<Value = MeterConfig> {
    (
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec(arb_meter_band(), 0..4),
    )
        .prop_map(|(flags, meter_id, bands)| MeterConfig {
            flags: MeterFlags(flags),
            meter_id,
            bands,
        })
}

/// Meter features.
pub fn arb_meter_features() -> impl Strategy<Value = MeterFeatures> {
    (any::<[u32; 3]>(), any::<u8>(), any::<u8>()).prop_map(|(n, max_bands, max_color)| {
        MeterFeatures {
            max_meter: n[0],
            band_types: MeterBandTypes(n[1]),
            capabilities: MeterCapabilities(n[2]),
            max_bands,
            max_color,
        }
    })
}

// ---- multipart ----

/// The body of a FLOW or AGGREGATE request.
pub fn arb_flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        arb_match(),
    )
        .prop_map(
            |(table_id, out_port, out_group, cookie, cookie_mask, match_)| FlowStatsRequest {
                table_id,
                out_port: PortNo(out_port),
                out_group,
                cookie,
                cookie_mask,
                match_,
            },
        )
}

/// A flow statistics entry valid in `version`.
pub fn arb_flow_stats(version: Version) -> impl Strategy<Value = FlowStats> {
    let importance = if version == Version::OF13 {
        Just(0u16).boxed()
    } else {
        any::<u16>().boxed()
    };
    (
        (
            any::<u8>(),
            any::<[u32; 2]>(),
            any::<[u16; 4]>(),
            importance,
        ),
        any::<[u64; 3]>(),
        arb_match(),
        arb_instructions(),
    )
        .prop_map(
            |((table_id, d, t, importance), c, match_, instructions)| FlowStats {
                table_id,
                duration_sec: d[0],
                duration_nsec: d[1],
                priority: t[0],
                idle_timeout: t[1],
                hard_timeout: t[2],
                flags: FlowModFlags(t[3]),
                importance,
                cookie: c[0],
                packet_count: c[1],
                byte_count: c[2],
                match_,
                instructions,
            },
        )
}

/// A switch description.
pub fn arb_desc() -> impl Strategy<Value = Desc> {
    (
        "[ -~]{0,40}",
        "[ -~]{0,40}",
        "[ -~]{0,40}",
        "[ -~]{0,31}",
        "[ -~]{0,40}",
    )
        .prop_map(|(mfr_desc, hw_desc, sw_desc, serial_num, dp_desc)| Desc {
            mfr_desc,
            hw_desc,
            sw_desc,
            serial_num,
            dp_desc,
        })
}

/// A multipart type this crate keeps opaque.
pub fn arb_opaque_multipart_type() -> impl Strategy<Value = MultipartType> {
    prop_oneof![
        Just(MultipartType::QUEUE),
        Just(MultipartType::TABLE_FEATURES),
        Just(MultipartType::TABLE_DESC),
        Just(MultipartType::QUEUE_DESC),
        Just(MultipartType::FLOW_MONITOR),
        Just(MultipartType::EXPERIMENTER),
        (17u16..0xffff).prop_map(MultipartType),
    ]
}

/// A multipart request body.
pub fn arb_multipart_request_body() -> impl Strategy<Value = MultipartRequestBody> {
    prop_oneof![
        Just(MultipartRequestBody::Desc),
        arb_flow_stats_request().prop_map(MultipartRequestBody::Flow),
        arb_flow_stats_request().prop_map(MultipartRequestBody::Aggregate),
        Just(MultipartRequestBody::Table),
        any::<u32>().prop_map(|port_no| MultipartRequestBody::PortStats {
            port_no: PortNo(port_no)
        }),
        Just(MultipartRequestBody::PortDesc),
        any::<u32>().prop_map(|group_id| MultipartRequestBody::Group { group_id }),
        Just(MultipartRequestBody::GroupDesc),
        Just(MultipartRequestBody::GroupFeatures),
        any::<u32>().prop_map(|meter_id| MultipartRequestBody::Meter { meter_id }),
        any::<u32>().prop_map(|meter_id| MultipartRequestBody::MeterConfig { meter_id }),
        Just(MultipartRequestBody::MeterFeatures),
        (arb_opaque_multipart_type(), arb_bytes(64))
            .prop_map(|(mp_type, body)| MultipartRequestBody::Other { mp_type, body }),
    ]
}

/// A multipart request.
pub fn arb_multipart_request() -> impl Strategy<Value = MultipartRequest> {
    (any::<u16>(), arb_multipart_request_body()).prop_map(|(flags, body)| MultipartRequest {
        flags: MultipartRequestFlags(flags),
        body,
    })
}

/// A multipart reply body valid in `version`.
pub fn arb_multipart_reply_body(version: Version) -> impl Strategy<Value = MultipartReplyBody> {
    let few = 0..4;
    prop_oneof![
        arb_desc().prop_map(MultipartReplyBody::Desc),
        prop::collection::vec(arb_flow_stats(version), few.clone())
            .prop_map(MultipartReplyBody::Flow),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(packet_count, byte_count, flow_count)| MultipartReplyBody::Aggregate(
                AggregateStats {
                    packet_count,
                    byte_count,
                    flow_count,
                }
            )
        ),
        prop::collection::vec(
            (any::<u8>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
                |(table_id, active_count, lookup_count, matched_count)| TableStats {
                    table_id,
                    active_count,
                    lookup_count,
                    matched_count,
                }
            ),
            few.clone()
        )
        .prop_map(MultipartReplyBody::Table),
        prop::collection::vec(arb_port_stats(version), few.clone())
            .prop_map(MultipartReplyBody::PortStats),
        prop::collection::vec(arb_port(version), few.clone())
            .prop_map(MultipartReplyBody::PortDesc),
        prop::collection::vec(arb_group_stats(), few.clone()).prop_map(MultipartReplyBody::Group),
        prop::collection::vec(arb_group_desc(), few.clone())
            .prop_map(MultipartReplyBody::GroupDesc),
        arb_group_features().prop_map(MultipartReplyBody::GroupFeatures),
        prop::collection::vec(arb_meter_stats(), few.clone()).prop_map(MultipartReplyBody::Meter),
        prop::collection::vec(arb_meter_config(), few).prop_map(MultipartReplyBody::MeterConfig),
        arb_meter_features().prop_map(MultipartReplyBody::MeterFeatures),
        (arb_opaque_multipart_type(), arb_bytes(64))
            .prop_map(|(mp_type, body)| MultipartReplyBody::Other { mp_type, body }),
    ]
}

/// A multipart reply valid in `version`.
pub fn arb_multipart_reply(version: Version) -> impl Strategy<Value = MultipartReply> {
    (any::<u16>(), arb_multipart_reply_body(version)).prop_map(|(flags, body)| MultipartReply {
        flags: MultipartReplyFlags(flags),
        body,
    })
}

/// A message of one of the types this module covers, in OpenFlow 1.3 or 1.4.
pub fn arb_message() -> impl Strategy<Value = Message> {
    (arb_version(), any::<u32>()).prop_flat_map(|(version, xid)| {
        prop_oneof![
            arb_port_status(version).prop_map(Body::PortStatus),
            arb_port_mod(version).prop_map(Body::PortMod),
            arb_group_mod().prop_map(Body::GroupMod),
            arb_meter_mod().prop_map(Body::MeterMod),
            arb_multipart_request().prop_map(Body::MultipartRequest),
            arb_multipart_reply(version).prop_map(Body::MultipartReply),
        ]
        .prop_map(move |body| Message { version, xid, body })
    })
}
