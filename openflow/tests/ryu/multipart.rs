//! Ports, groups, meters and multipart messages in Ryu's JSON shape.
//!
//! Ryu's JSON carries the length fields the codec computes rather than stores;
//! they are recomputed here from the decoded values (encoding matches, actions
//! and instructions through the public API), which also cross-checks the
//! encoder against the lengths Ryu read off the wire.
#![allow(dead_code)]
// Test support code: a malformed fixture or strategy should fail loudly.
#![allow(clippy::unwrap_used)]

use augur_openflow::group::{
    Bucket, BucketCounter, GroupDesc, GroupFeatures, GroupMod, GroupStats,
};
use augur_openflow::meter::{
    MeterBand, MeterBandStats, MeterConfig, MeterFeatures, MeterMod, MeterStats,
};
use augur_openflow::multipart::{
    AggregateStats, Desc, FlowStats, FlowStatsRequest, MultipartReply, MultipartReplyBody,
    MultipartRequest, MultipartRequestBody, TableStats,
};
use augur_openflow::port::{
    Port, PortDescProperty, PortMod, PortModProperty, PortStats, PortStatsProperty, PortStatus,
};
use augur_openflow::{Body, ExperimenterProperty, Message, UnknownProperty, Version};
use bytes::BytesMut;
use serde_json::{Value, json};

use super::ryu_oxm::{action_to_ryu, instruction_to_ryu, match_to_ryu};
use super::ryu_prop::{experimenter_prop, padded, unknown_prop};

/// Ryu's JSON for `msg` if this module covers its type.
pub fn to_ryu(msg: &Message) -> Option<Value> {
    let v = msg.version;
    match &msg.body {
        Body::PortStatus(status) => Some(port_status(v, status)),
        Body::PortMod(pm) => Some(port_mod(v, pm)),
        Body::GroupMod(gm) => Some(group_mod(gm)),
        Body::MeterMod(mm) => Some(meter_mod(mm)),
        Body::MultipartRequest(req) => request(req),
        Body::MultipartReply(reply) => reply_to_ryu(v, reply),
        _ => None,
    }
}

/// The length of whatever `encode` appends.
fn encoded_len(encode: impl FnOnce(&mut BytesMut)) -> usize {
    let mut out = BytesMut::new();
    encode(&mut out);
    out.len()
}

fn round_up_8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Length of an experimenter or unknown property as it sits in a list (padded).
fn experimenter_space(e: &ExperimenterProperty) -> usize {
    padded(12 + e.data.len())
}

fn unknown_space(u: &UnknownProperty) -> usize {
    padded(4 + u.data.len())
}

// ---- ports ----

fn port_desc_prop(p: &PortDescProperty) -> (Value, usize) {
    match p {
        PortDescProperty::Ethernet(e) => (
            json!({ "OFPPortDescPropEthernet": {
                "advertised": e.advertised.0,
                "curr": e.curr.0,
                "curr_speed": e.curr_speed,
                "length": 32,
                "max_speed": e.max_speed,
                "peer": e.peer.0,
                "supported": e.supported.0,
                "type": 0,
            }}),
            32,
        ),
        PortDescProperty::Optical(o) => (
            json!({ "OFPPortDescPropOptical": {
                "length": 40,
                "rx_grid_freq_lmda": o.rx_grid_freq_lmda,
                "rx_max_freq_lmda": o.rx_max_freq_lmda,
                "rx_min_freq_lmda": o.rx_min_freq_lmda,
                "supported": o.supported.0,
                "tx_grid_freq_lmda": o.tx_grid_freq_lmda,
                "tx_max_freq_lmda": o.tx_max_freq_lmda,
                "tx_min_freq_lmda": o.tx_min_freq_lmda,
                "tx_pwr_max": o.tx_pwr_max,
                "tx_pwr_min": o.tx_pwr_min,
                "type": 1,
            }}),
            40,
        ),
        PortDescProperty::Experimenter(e) => (
            experimenter_prop("OFPPortDescPropExperimenter", 0xffff, e),
            experimenter_space(e),
        ),
        PortDescProperty::Unknown(u) => (unknown_prop(u), unknown_space(u)),
    }
}

fn port(v: Version, p: &Port) -> Value {
    if v == Version::OF13 {
        let e = p.ethernet().copied().unwrap_or_default();
        return json!({ "OFPPort": {
            "advertised": e.advertised.0,
            "config": p.config.0,
            "curr": e.curr.0,
            "curr_speed": e.curr_speed,
            "hw_addr": p.hw_addr.to_string(),
            "max_speed": e.max_speed,
            "name": p.name,
            "peer": e.peer.0,
            "port_no": p.port_no.0,
            "state": p.state.0,
            "supported": e.supported.0,
        }});
    }
    let (properties, lengths): (Vec<Value>, Vec<usize>) =
        p.properties.iter().map(port_desc_prop).unzip();
    json!({ "OFPPort": {
        "config": p.config.0,
        "hw_addr": p.hw_addr.to_string(),
        "length": 40 + lengths.iter().sum::<usize>(),
        "name": p.name,
        "port_no": p.port_no.0,
        "properties": properties,
        "state": p.state.0,
    }})
}

fn port_status(v: Version, s: &PortStatus) -> Value {
    json!({ "OFPPortStatus": { "desc": port(v, &s.desc), "reason": s.reason.0 } })
}

fn port_mod(v: Version, pm: &PortMod) -> Value {
    if v == Version::OF13 {
        let advertise = pm
            .properties
            .iter()
            .find_map(|p| match p {
                PortModProperty::Ethernet { advertise } => Some(advertise.0),
                _ => None,
            })
            .unwrap_or(0);
        return json!({ "OFPPortMod": {
            "advertise": advertise,
            "config": pm.config.0,
            "hw_addr": pm.hw_addr.to_string(),
            "mask": pm.mask.0,
            "port_no": pm.port_no.0,
        }});
    }
    let properties: Vec<Value> = pm
        .properties
        .iter()
        .map(|p| match p {
            PortModProperty::Ethernet { advertise } => json!({ "OFPPortModPropEthernet": {
                "advertise": advertise.0, "length": 8, "type": 0,
            }}),
            PortModProperty::Optical(o) => json!({ "OFPPortModPropOptical": {
                "configure": o.configure.0,
                "fl_offset": o.fl_offset,
                "freq_lmda": o.freq_lmda,
                "grid_span": o.grid_span,
                "length": 24,
                "tx_pwr": o.tx_pwr,
                "type": 1,
            }}),
            PortModProperty::Experimenter(e) => {
                experimenter_prop("OFPPortModPropExperimenter", 0xffff, e)
            }
            PortModProperty::Unknown(u) => unknown_prop(u),
        })
        .collect();
    json!({ "OFPPortMod": {
        "config": pm.config.0,
        "hw_addr": pm.hw_addr.to_string(),
        "mask": pm.mask.0,
        "port_no": pm.port_no.0,
        "properties": properties,
    }})
}

fn port_stats_prop(p: &PortStatsProperty) -> (Value, usize) {
    match p {
        PortStatsProperty::Ethernet(e) => (
            json!({ "OFPPortStatsPropEthernet": {
                "collisions": e.collisions,
                "length": 40,
                "rx_crc_err": e.rx_crc_err,
                "rx_frame_err": e.rx_frame_err,
                "rx_over_err": e.rx_over_err,
                "type": 0,
            }}),
            40,
        ),
        PortStatsProperty::Optical(o) => (
            json!({ "OFPPortStatsPropOptical": {
                "bias_current": o.bias_current,
                "flags": o.flags.0,
                "length": 44,
                "rx_freq_lmda": o.rx_freq_lmda,
                "rx_grid_span": o.rx_grid_span,
                "rx_offset": o.rx_offset,
                "rx_pwr": o.rx_pwr,
                "temperature": o.temperature,
                "tx_freq_lmda": o.tx_freq_lmda,
                "tx_grid_span": o.tx_grid_span,
                "tx_offset": o.tx_offset,
                "tx_pwr": o.tx_pwr,
                "type": 1,
            }}),
            48,
        ),
        PortStatsProperty::Experimenter(e) => (
            experimenter_prop("OFPPortStatsPropExperimenter", 0xffff, e),
            experimenter_space(e),
        ),
        PortStatsProperty::Unknown(u) => (unknown_prop(u), unknown_space(u)),
    }
}

fn port_stats(v: Version, s: &PortStats) -> Value {
    if v == Version::OF13 {
        let e = s.ethernet().copied().unwrap_or_default();
        return json!({ "OFPPortStats": {
            "collisions": e.collisions,
            "duration_nsec": s.duration_nsec,
            "duration_sec": s.duration_sec,
            "port_no": s.port_no.0,
            "rx_bytes": s.rx_bytes,
            "rx_crc_err": e.rx_crc_err,
            "rx_dropped": s.rx_dropped,
            "rx_errors": s.rx_errors,
            "rx_frame_err": e.rx_frame_err,
            "rx_over_err": e.rx_over_err,
            "rx_packets": s.rx_packets,
            "tx_bytes": s.tx_bytes,
            "tx_dropped": s.tx_dropped,
            "tx_errors": s.tx_errors,
            "tx_packets": s.tx_packets,
        }});
    }
    let (properties, lengths): (Vec<Value>, Vec<usize>) =
        s.properties.iter().map(port_stats_prop).unzip();
    json!({ "OFPPortStats": {
        "duration_nsec": s.duration_nsec,
        "duration_sec": s.duration_sec,
        "length": 80 + lengths.iter().sum::<usize>(),
        "port_no": s.port_no.0,
        "properties": properties,
        "rx_bytes": s.rx_bytes,
        "rx_dropped": s.rx_dropped,
        "rx_errors": s.rx_errors,
        "rx_packets": s.rx_packets,
        "tx_bytes": s.tx_bytes,
        "tx_dropped": s.tx_dropped,
        "tx_errors": s.tx_errors,
        "tx_packets": s.tx_packets,
    }})
}

// ---- groups ----

fn bucket(b: &Bucket) -> (Value, usize) {
    let len = 16
        + b.actions
            .iter()
            .map(|a| encoded_len(|out| a.encode(out).unwrap()))
            .sum::<usize>();
    let actions: Vec<Value> = b.actions.iter().map(action_to_ryu).collect();
    (
        json!({ "OFPBucket": {
            "actions": actions,
            "len": len,
            "watch_group": b.watch_group,
            "watch_port": b.watch_port,
            "weight": b.weight,
        }}),
        len,
    )
}

fn group_mod(gm: &GroupMod) -> Value {
    let buckets: Vec<Value> = gm.buckets.iter().map(|b| bucket(b).0).collect();
    json!({ "OFPGroupMod": {
        "buckets": buckets,
        "command": gm.command.0,
        "group_id": gm.group_id,
        "type": gm.group_type.0,
    }})
}

fn group_stats(g: &GroupStats) -> Value {
    let counters: Vec<Value> = g
        .bucket_stats
        .iter()
        .map(|c: &BucketCounter| {
            json!({ "OFPBucketCounter": { "byte_count": c.byte_count, "packet_count": c.packet_count } })
        })
        .collect();
    json!({ "OFPGroupStats": {
        "bucket_stats": counters,
        "byte_count": g.byte_count,
        "duration_nsec": g.duration_nsec,
        "duration_sec": g.duration_sec,
        "group_id": g.group_id,
        "length": 40 + 16 * g.bucket_stats.len(),
        "packet_count": g.packet_count,
        "ref_count": g.ref_count,
    }})
}

fn group_desc(g: &GroupDesc) -> Value {
    let (buckets, lengths): (Vec<Value>, Vec<usize>) = g.buckets.iter().map(bucket).unzip();
    json!({ "OFPGroupDescStats": {
        "buckets": buckets,
        "group_id": g.group_id,
        "length": 8 + lengths.iter().sum::<usize>(),
        "type": g.group_type.0,
    }})
}

fn group_features(g: &GroupFeatures) -> Value {
    json!({ "OFPGroupFeaturesStats": {
        "actions": g.actions,
        "capabilities": g.capabilities.0,
        "max_groups": g.max_groups,
        "types": g.types.0,
    }})
}

// ---- meters ----

fn band(b: &MeterBand) -> (Value, usize) {
    match b {
        MeterBand::Drop { rate, burst_size } => (
            json!({ "OFPMeterBandDrop": {
                "burst_size": burst_size, "len": 16, "rate": rate, "type": 1,
            }}),
            16,
        ),
        MeterBand::DscpRemark {
            rate,
            burst_size,
            prec_level,
        } => (
            json!({ "OFPMeterBandDscpRemark": {
                "burst_size": burst_size, "len": 16, "prec_level": prec_level, "rate": rate, "type": 2,
            }}),
            16,
        ),
        MeterBand::Experimenter {
            rate,
            burst_size,
            experimenter,
            data,
        } => (
            json!({ "OFPMeterBandExperimenter": {
                "burst_size": burst_size,
                "experimenter": experimenter,
                "len": 16 + data.len(),
                "rate": rate,
                "type": 0xffff,
            }}),
            16 + data.len(),
        ),
        MeterBand::Unknown {
            band_type,
            rate,
            burst_size,
            data,
        } => (
            json!({ "OFPMeterBandHeader": {
                "burst_size": burst_size,
                "len": 12 + data.len(),
                "rate": rate,
                "type": band_type.0,
            }}),
            12 + data.len(),
        ),
    }
}

fn meter_mod(mm: &MeterMod) -> Value {
    let bands: Vec<Value> = mm.bands.iter().map(|b| band(b).0).collect();
    json!({ "OFPMeterMod": {
        "bands": bands,
        "command": mm.command.0,
        "flags": mm.flags.0,
        "meter_id": mm.meter_id,
    }})
}

fn meter_stats(m: &MeterStats) -> Value {
    let bands: Vec<Value> = m
        .band_stats
        .iter()
        .map(|b: &MeterBandStats| {
            json!({ "OFPMeterBandStats": {
                "byte_band_count": b.byte_band_count,
                "packet_band_count": b.packet_band_count,
            }})
        })
        .collect();
    json!({ "OFPMeterStats": {
        "band_stats": bands,
        "byte_in_count": m.byte_in_count,
        "duration_nsec": m.duration_nsec,
        "duration_sec": m.duration_sec,
        "flow_count": m.flow_count,
        "len": 40 + 16 * m.band_stats.len(),
        "meter_id": m.meter_id,
        "packet_in_count": m.packet_in_count,
    }})
}

fn meter_config(m: &MeterConfig) -> Value {
    let (bands, lengths): (Vec<Value>, Vec<usize>) = m.bands.iter().map(band).unzip();
    json!({ "OFPMeterConfigStats": {
        "bands": bands,
        "flags": m.flags.0,
        "length": 8 + lengths.iter().sum::<usize>(),
        "meter_id": m.meter_id,
    }})
}

fn meter_features(m: &MeterFeatures) -> Value {
    json!({ "OFPMeterFeaturesStats": {
        "band_types": m.band_types.0,
        "capabilities": m.capabilities.0,
        "max_bands": m.max_bands,
        "max_color": m.max_color,
        "max_meter": m.max_meter,
    }})
}

// ---- multipart ----

fn flow_request(class: &str, flags: u16, mp_type: u16, r: &FlowStatsRequest) -> Value {
    json!({ class: {
        "cookie": r.cookie,
        "cookie_mask": r.cookie_mask,
        "flags": flags,
        "match": match_to_ryu(&r.match_),
        "out_group": r.out_group,
        "out_port": r.out_port,
        "table_id": r.table_id,
        "type": mp_type,
    }})
}

fn request(req: &MultipartRequest) -> Option<Value> {
    let flags = req.flags.0;
    let mp_type = req.body.mp_type().0;
    let plain = |class: &str| json!({ class: { "flags": flags, "type": mp_type } });
    let with_id = |class: &str, key: &str, id: u32| json!({ class: { "flags": flags, key: id, "type": mp_type } });
    Some(match &req.body {
        MultipartRequestBody::Desc => plain("OFPDescStatsRequest"),
        MultipartRequestBody::Flow(r) => flow_request("OFPFlowStatsRequest", flags, mp_type, r),
        MultipartRequestBody::Aggregate(r) => {
            flow_request("OFPAggregateStatsRequest", flags, mp_type, r)
        }
        MultipartRequestBody::Table => plain("OFPTableStatsRequest"),
        MultipartRequestBody::PortStats { port_no } => {
            with_id("OFPPortStatsRequest", "port_no", port_no.0)
        }
        MultipartRequestBody::PortDesc => plain("OFPPortDescStatsRequest"),
        MultipartRequestBody::Group { group_id } => {
            with_id("OFPGroupStatsRequest", "group_id", *group_id)
        }
        MultipartRequestBody::GroupDesc => plain("OFPGroupDescStatsRequest"),
        MultipartRequestBody::GroupFeatures => plain("OFPGroupFeaturesStatsRequest"),
        MultipartRequestBody::Meter { meter_id } => {
            with_id("OFPMeterStatsRequest", "meter_id", *meter_id)
        }
        MultipartRequestBody::MeterConfig { meter_id } => {
            with_id("OFPMeterConfigStatsRequest", "meter_id", *meter_id)
        }
        MultipartRequestBody::MeterFeatures => plain("OFPMeterFeaturesStatsRequest"),
        // Kept opaque by design: no typed fields to compare.
        MultipartRequestBody::Other { .. } => return None,
    })
}

fn flow_stats(v: Version, f: &FlowStats) -> Value {
    let length = 48
        + encoded_len(|out| f.match_.encode(out).unwrap())
        + f.instructions
            .iter()
            .map(|i| encoded_len(|out| i.encode(out).unwrap()))
            .sum::<usize>();
    let instructions: Vec<Value> = f.instructions.iter().map(instruction_to_ryu).collect();
    let mut entry = json!({
        "byte_count": f.byte_count,
        "cookie": f.cookie,
        "duration_nsec": f.duration_nsec,
        "duration_sec": f.duration_sec,
        "flags": f.flags,
        "hard_timeout": f.hard_timeout,
        "idle_timeout": f.idle_timeout,
        "instructions": instructions,
        "length": length,
        "match": match_to_ryu(&f.match_),
        "packet_count": f.packet_count,
        "priority": f.priority,
        "table_id": f.table_id,
    });
    if v >= Version::OF14 {
        entry["importance"] = json!(f.importance);
    }
    json!({ "OFPFlowStats": entry })
}

fn desc(d: &Desc) -> Value {
    json!({ "OFPDescStats": {
        "dp_desc": d.dp_desc,
        "hw_desc": d.hw_desc,
        "mfr_desc": d.mfr_desc,
        "serial_num": d.serial_num,
        "sw_desc": d.sw_desc,
    }})
}

fn aggregate(a: &AggregateStats) -> Value {
    json!({ "OFPAggregateStats": {
        "byte_count": a.byte_count,
        "flow_count": a.flow_count,
        "packet_count": a.packet_count,
    }})
}

fn table_stats(t: &TableStats) -> Value {
    json!({ "OFPTableStats": {
        "active_count": t.active_count,
        "lookup_count": t.lookup_count,
        "matched_count": t.matched_count,
        "table_id": t.table_id,
    }})
}

fn reply_to_ryu(v: Version, reply: &MultipartReply) -> Option<Value> {
    let (class, body) = match &reply.body {
        MultipartReplyBody::Desc(d) => ("OFPDescStatsReply", desc(d)),
        MultipartReplyBody::Flow(flows) => (
            "OFPFlowStatsReply",
            flows.iter().map(|f| flow_stats(v, f)).collect(),
        ),
        MultipartReplyBody::Aggregate(a) => ("OFPAggregateStatsReply", aggregate(a)),
        MultipartReplyBody::Table(tables) => (
            "OFPTableStatsReply",
            tables.iter().map(table_stats).collect(),
        ),
        MultipartReplyBody::PortStats(ports) => (
            "OFPPortStatsReply",
            ports.iter().map(|p| port_stats(v, p)).collect(),
        ),
        MultipartReplyBody::PortDesc(ports) => (
            "OFPPortDescStatsReply",
            ports.iter().map(|p| port(v, p)).collect(),
        ),
        MultipartReplyBody::Group(groups) => (
            "OFPGroupStatsReply",
            groups.iter().map(group_stats).collect(),
        ),
        MultipartReplyBody::GroupDesc(groups) => (
            "OFPGroupDescStatsReply",
            groups.iter().map(group_desc).collect(),
        ),
        MultipartReplyBody::GroupFeatures(g) => ("OFPGroupFeaturesStatsReply", group_features(g)),
        MultipartReplyBody::Meter(meters) => (
            "OFPMeterStatsReply",
            meters.iter().map(meter_stats).collect(),
        ),
        MultipartReplyBody::MeterConfig(meters) => (
            "OFPMeterConfigStatsReply",
            meters.iter().map(meter_config).collect(),
        ),
        // Ryu decodes the single features structure into a one-element list.
        MultipartReplyBody::MeterFeatures(m) => {
            ("OFPMeterFeaturesStatsReply", json!([meter_features(m)]))
        }
        // Kept opaque by design: no typed fields to compare.
        MultipartReplyBody::Other { .. } => return None,
    };
    Some(json!({ class: {
        "body": body,
        "flags": reply.flags.0,
        "type": reply.body.mp_type().0,
    }}))
}
