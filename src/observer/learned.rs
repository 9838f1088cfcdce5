//! Learn mode: the learn flow's sampled packet-ins → allowed records of new
//! connections.
//!
//! In learn mode every new connection no rule admitted is committed and its
//! first packet copied to the controller through the sampling meter. The
//! copy is taken after `ct(commit)`, so OVS puts the connection's original
//! tuple (`ct_nw_src`/`ct_nw_dst` or `ct_ipv6_*`, `ct_nw_proto`,
//! `ct_tp_src`/`ct_tp_dst`) in the packet-in's match. Where those are there
//! they name the two ends and the service port; the headers of the packet
//! are the fallback, which for a `+new` packet are the original direction
//! anyway. Either way a reply from a server port never becomes a new
//! service: replies are `+est` and never reach the learn flow.
//!
//! Each sample is one connection opening with its first packet's bytes; the
//! connection's later volume comes from counting, not from samples.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use augur_flows::{FlowRecord, Protocol, Timestamp, Verdict};
use augur_openflow::{Field, Match, PacketIn};

use super::denied::{PacketHeaders, Skipped, endpoint_of, parse_headers, sampled_record};
use crate::inventory::Inventory;
use crate::policy::{Cookie, Origin};

/// Whether augur's learn-mode flow sent this packet-in.
pub fn is_learn_sample(packet_in: &PacketIn) -> bool {
    Cookie::from_raw(packet_in.cookie).and_then(Cookie::origin) == Some(Origin::Learn)
}

/// The conntrack original tuple carried in a packet-in's match, if complete:
/// source and destination address, protocol, source and destination port.
pub fn original_tuple(match_: &Match) -> Option<(IpAddr, IpAddr, Protocol, u16, u16)> {
    let value = |field| match_.get(field).map(|f| f.value);
    let (src, dst) = match (value(Field::CtNwSrc), value(Field::CtNwDst)) {
        (Some(s), Some(d)) => (
            IpAddr::V4(Ipv4Addr::from(u32::try_from(s).ok()?)),
            IpAddr::V4(Ipv4Addr::from(u32::try_from(d).ok()?)),
        ),
        _ => (
            IpAddr::V6(Ipv6Addr::from(value(Field::CtIpv6Src)?)),
            IpAddr::V6(Ipv6Addr::from(value(Field::CtIpv6Dst)?)),
        ),
    };
    let proto = u8::try_from(value(Field::CtNwProto)?).ok()?;
    // Ports are absent for protocols without them (ICMP has type and code
    // in the packet instead).
    let port = |field| value(field).and_then(|v| u16::try_from(v).ok());
    Some((
        src,
        dst,
        Protocol(proto),
        port(Field::CtTpSrc).unwrap_or(0),
        port(Field::CtTpDst).unwrap_or(0),
    ))
}

/// Turns a learn-mode packet-in from `bridge` into an allowed record of one
/// new connection seen at `ts`.
pub fn learned_record(
    packet_in: &PacketIn,
    inventory: &Inventory,
    bridge: &Arc<str>,
    ts: Timestamp,
) -> Result<FlowRecord, Skipped> {
    if !is_learn_sample(packet_in) {
        return Err(Skipped::NotLearnSample);
    }
    let packet = parse_headers(&packet_in.data).ok_or(Skipped::NotIp)?;
    let headers = match original_tuple(&packet_in.match_) {
        // ICMP carries no ct ports; keep the packet's type and code.
        Some((src_ip, dst_ip, protocol, src_port, dst_port)) if protocol == packet.protocol => {
            let has_ports = packet_in.match_.contains(Field::CtTpDst);
            PacketHeaders {
                src_ip,
                dst_ip,
                protocol,
                src_port: if has_ports { src_port } else { packet.src_port },
                dst_port: if has_ports { dst_port } else { packet.dst_port },
                ..packet
            }
        }
        _ => packet,
    };
    let mut record = sampled_record(packet_in, &headers, inventory, bridge, ts, Verdict::Allowed);
    if headers.src_ip != packet.src_ip {
        // The sampled packet is not the original direction (it cannot be
        // for `+new`, but the tuple is what names the ends): the in_port VM
        // is the packet's sender, not the connection's.
        record.src = endpoint_of(inventory, headers.src_ip);
    }
    Ok(record)
}
