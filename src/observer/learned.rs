//! Sampled new connections (learn mode's learn flow, and the allow rules'
//! flows in both modes) → allowed records of new connections.
//!
//! Every new connection a rule admits, and in learn mode every one no rule
//! admitted, is committed and its first packet copied to the controller
//! through the sampling meter. Only `+new` packets reach those flows, and
//! augur's pipeline does no NAT, so the sampled packet's headers are the
//! connection's original direction (what conntrack calls the original
//! tuple): its destination port is the service. Replies are `+est` and
//! never reach them, so a server port never looks like a new service. OVS
//! leaves the `ct_*` tuple fields out of an OpenFlow 1.3 PACKET_IN (it sends
//! them only in `NXT_PACKET_IN2`); where a switch does include them, they
//! are used instead.
//!
//! The first sample of a connection is its opening, with its packet's
//! bytes; a later one (a resent SYN, the next datagram before any reply:
//! conntrack calls a connection `+new` until it sees a reply) adds its
//! packet to the volume only. The rest of the connection is counted: the
//! daemon installs a counting flow in the forward stage matching the
//! connection's original tuple (`ct_*` fields, which carry the original
//! direction for packets of both directions, so one flow counts both) and
//! `+est`, with an idle timeout and `SEND_FLOW_REM`. The counter polls
//! report it window by window while the connection runs ([`counted_record`]
//! of each delta), and its FLOW_REMOVED adds what the polls had not
//! reported yet. `+new` packets the sampling meter dropped are counted by
//! the rule flow that admitted them (see
//! [`OpeningsLedger`](super::OpeningsLedger)); so every packet of a
//! connection is counted once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use augur_flows::{FlowRecord, Protocol, Timestamp, Verdict};
use augur_openflow::{CtState, Field, FlowMod, FlowModFlags, Instruction, Match, PacketIn};

use super::connections::ConnectionTuple;
use super::denied::{PacketHeaders, Skipped, endpoint_of, parse_headers, sampled_record};
use crate::inventory::Inventory;
use crate::policy::{Cookie, Origin, Stage};

/// Whether augur's learn-mode flow sent this packet-in.
pub fn is_learn_sample(packet_in: &PacketIn) -> bool {
    Cookie::from_raw(packet_in.cookie).and_then(Cookie::origin) == Some(Origin::Learn)
}

/// Whether this packet-in is a sample of an admitted new connection: from
/// the learn flow or from an allow rule's flow.
pub fn is_admission_sample(packet_in: &PacketIn) -> bool {
    matches!(
        Cookie::from_raw(packet_in.cookie).and_then(Cookie::origin),
        Some(Origin::Learn | Origin::Rule(_))
    )
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

/// Turns a sample of an admitted connection ([`is_admission_sample`]) from
/// `bridge` into an allowed record of one new connection seen at `ts`.
pub fn learned_record(
    packet_in: &PacketIn,
    inventory: &Inventory,
    bridge: &Arc<str>,
    ts: Timestamp,
) -> Result<FlowRecord, Skipped> {
    if !is_admission_sample(packet_in) {
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

/// Whether conntrack tracks the connections of `protocol` by ports.
fn has_ports(protocol: Protocol) -> bool {
    // TCP, UDP, DCCP, UDP-Lite, SCTP.
    matches!(protocol.0, 6 | 17 | 33 | 136 | 132)
}

/// The original tuple of the connection a sample opened: from
/// the packet-in's `ct_*` fields if present, else from the packet, which
/// for a `+new` packet without NAT is the original direction.
pub fn connection_tuple(packet_in: &PacketIn) -> Option<ConnectionTuple> {
    if let Some(tuple) = original_tuple(&packet_in.match_) {
        return Some(tuple.into());
    }
    let h = parse_headers(&packet_in.data)?;
    let (src_port, dst_port) = if has_ports(h.protocol) {
        (h.src_port, h.dst_port)
    } else {
        (0, 0)
    };
    Some((h.src_ip, h.dst_ip, h.protocol, src_port, dst_port).into())
}

/// Priority of counting flows in the forward stage, above its miss flow.
pub const COUNTING_PRIORITY: u16 = 100;

/// The counting flow of the connection a sample opened: in the
/// forward stage, matching the original tuple and `+est`, doing what the forward
/// stage does (`forward`), removed after `idle_timeout` seconds without
/// traffic with a FLOW_REMOVED. `None` when the sample holds no IP packet.
pub fn counting_flow(
    packet_in: &PacketIn,
    version: u16,
    idle_timeout: u16,
    forward: Vec<Instruction>,
) -> Option<FlowMod> {
    let ConnectionTuple {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
    } = connection_tuple(packet_in)?;
    // `+new` packets are counted by the sampling flow and its samples; the
    // counting flow takes the rest, so no packet is counted by both.
    let settled = CtState::TRACKED | CtState::ESTABLISHED;
    let m = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Match::new()
            .eth_type(0x0800)
            .ct_state(settled, settled | CtState::INVALID)
            .ct_nw_proto(protocol.0)
            .ct_nw_src(s)
            .ct_nw_dst(d),
        (IpAddr::V6(s), IpAddr::V6(d)) => Match::new()
            .eth_type(0x86dd)
            .ct_state(settled, settled | CtState::INVALID)
            .ct_nw_proto(protocol.0)
            .ct_ipv6_src(s)
            .ct_ipv6_dst(d),
        _ => return None,
    };
    let m = if has_ports(protocol) {
        m.ct_tp_src(src_port).ct_tp_dst(dst_port)
    } else {
        m
    };
    Some(
        FlowMod::add(Stage::Forward.table_id(), COUNTING_PRIORITY, m, forward)
            .with_cookie(Cookie::new(version, Origin::Counting).0, 0)
            .with_timeouts(idle_timeout, 0)
            .with_flags(FlowModFlags::SEND_FLOW_REM),
    )
}

/// The connection a counting flow counts, from its cookie and match;
/// `None` for other flows and matches without an original tuple.
pub fn counted_connection(cookie: u64, match_: &Match) -> Option<ConnectionTuple> {
    if Cookie::from_raw(cookie)?.origin()? != Origin::Counting {
        return None;
    }
    let (src, dst, protocol, src_port, dst_port) = original_tuple(match_)?;
    // ICMP connections are matched without ports; record them as zero.
    let (src_port, dst_port) = if has_ports(protocol) {
        (src_port, dst_port)
    } else {
        (0, 0)
    };
    Some(ConnectionTuple {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
    })
}

/// An allowed record of `packets` and `bytes` a counting flow counted for
/// `connection` (a poll's delta, or the remainder its FLOW_REMOVED
/// reports): volume only, the opening was recorded from the sample.
/// `None` when nothing was counted.
pub fn counted_record(
    connection: &ConnectionTuple,
    packets: u64,
    bytes: u64,
    inventory: &Inventory,
    bridge: &Arc<str>,
    ts: Timestamp,
) -> Option<FlowRecord> {
    if packets == 0 && bytes == 0 {
        return None;
    }
    Some(FlowRecord {
        ts,
        src: endpoint_of(inventory, connection.src),
        dst: endpoint_of(inventory, connection.dst),
        src_port: connection.src_port,
        dst_port: connection.dst_port,
        protocol: connection.protocol,
        bytes,
        packets,
        connections: 0,
        verdict: Verdict::Allowed,
        bridge: Some(Arc::clone(bridge)),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn counting_match() -> Match {
        Match::new()
            .eth_type(0x0800)
            .ct_nw_proto(17)
            .ct_nw_src(Ipv4Addr::new(10, 0, 0, 1))
            .ct_nw_dst(Ipv4Addr::new(10, 0, 0, 2))
            .ct_tp_src(40500)
            .ct_tp_dst(5353)
    }

    #[test]
    fn counting_flows_name_their_connection_and_others_do_not() {
        let counting = Cookie::new(7, Origin::Counting).0;
        let tuple = counted_connection(counting, &counting_match()).unwrap();
        assert_eq!(
            (tuple.protocol, tuple.src_port, tuple.dst_port),
            (Protocol::UDP, 40500, 5353)
        );
        assert_eq!(tuple.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        // A rule flow, a foreign flow, a match without the tuple: none.
        assert!(counted_connection(Cookie::new(7, Origin::Rule(0)).0, &counting_match()).is_none());
        assert!(counted_connection(0x1234, &counting_match()).is_none());
        assert!(counted_connection(counting, &Match::new().eth_type(0x0800)).is_none());
    }

    #[test]
    fn counted_records_carry_volume_only() {
        let inventory = Inventory::default();
        let bridge: Arc<str> = Arc::from("br0");
        let tuple =
            counted_connection(Cookie::new(7, Origin::Counting).0, &counting_match()).unwrap();
        let record = counted_record(&tuple, 3, 426, &inventory, &bridge, Timestamp(0)).unwrap();
        assert_eq!(
            (record.packets, record.bytes, record.connections),
            (3, 426, 0)
        );
        assert_eq!(record.dst_port, 5353);
        assert_eq!(record.verdict, Verdict::Allowed);
        assert!(counted_record(&tuple, 0, 0, &inventory, &bridge, Timestamp(0)).is_none());
    }
}
