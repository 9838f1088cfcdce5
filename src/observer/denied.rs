//! Denied traffic: the deny stage's sampled packet-ins → denied records.
//!
//! The deny stage sends at most a metered number of packets per second to
//! the controller, cut to a short prefix (`deny_sample_max_len`), so parsing
//! is lax about truncated payloads: only the headers have to be there.
//! Each sample is one attempt: `connections = 1`, one packet, and the bytes
//! of the whole packet (`total_len`) as the switch saw it.
//!
//! The source is the VM plugged into the packet-in's `in_port` when there is
//! one (its MAC checked against the frame's source, so a frame from a port
//! whose VM is not who sent it is not pinned on it), else the VM owning the
//! source IP, else the external address. The destination is the VM owning
//! the destination IP, else the external address. ICMP records carry the
//! type as source port and the code as destination port, as Zeek does.

use std::net::IpAddr;
use std::sync::Arc;

use augur_flows::{Endpoint, FlowRecord, Protocol, Timestamp, Verdict};
use augur_openflow::{Field, MacAddr, PacketIn, PortNo};
use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice};

use crate::inventory::Inventory;
use crate::policy::{Cookie, DenyReason, Origin};

/// The headers of a sampled packet augur looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeaders {
    /// The Ethernet source.
    pub src_mac: MacAddr,
    /// The outermost VLAN id, if the frame was tagged.
    pub vlan: Option<u16>,
    /// The IP source.
    pub src_ip: IpAddr,
    /// The IP destination.
    pub dst_ip: IpAddr,
    /// The IP protocol (of the last extension header, for IPv6).
    pub protocol: Protocol,
    /// TCP/UDP source port; ICMP type.
    pub src_port: u16,
    /// TCP/UDP destination port; ICMP code.
    pub dst_port: u16,
}

/// Why a packet-in did not become a denied record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Its cookie is not one of augur's deny flows.
    NotDenySample,
    /// Its cookie is not a flow that samples admitted connections (a rule
    /// or the learn-mode flow).
    NotLearnSample,
    /// It carries no IP packet (ARP, other Ethertypes) or is cut short
    /// before the IP header ends.
    NotIp,
}

/// Parses the headers of an Ethernet frame; `None` if it holds no complete
/// IPv4 or IPv6 header. Transport ports are 0 when the transport header is
/// missing or cut short.
pub fn parse_headers(frame: &[u8]) -> Option<PacketHeaders> {
    let packet = LaxSlicedPacket::from_ethernet(frame).ok()?;
    let src_mac = match &packet.link {
        Some(LinkSlice::Ethernet2(eth)) => MacAddr(eth.source()),
        _ => return None,
    };
    let vlan = packet.link_exts.iter().find_map(|ext| match ext {
        LaxLinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
        LaxLinkExtSlice::Macsec(_) => None,
    });
    let (src_ip, dst_ip, protocol) = match packet.net.as_ref()? {
        LaxNetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.payload().ip_number.0,
        ),
        LaxNetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.payload().ip_number.0,
        ),
        LaxNetSlice::Arp(_) => return None,
    };
    let (src_port, dst_port) = match &packet.transport {
        Some(TransportSlice::Tcp(tcp)) => (tcp.source_port(), tcp.destination_port()),
        Some(TransportSlice::Udp(udp)) => (udp.source_port(), udp.destination_port()),
        Some(TransportSlice::Icmpv4(icmp)) => {
            (u16::from(icmp.type_u8()), u16::from(icmp.code_u8()))
        }
        Some(TransportSlice::Icmpv6(icmp)) => {
            (u16::from(icmp.type_u8()), u16::from(icmp.code_u8()))
        }
        Some(TransportSlice::Igmp(_)) | None => (0, 0),
    };
    Some(PacketHeaders {
        src_mac,
        vlan,
        src_ip,
        dst_ip,
        protocol: Protocol(protocol),
        src_port,
        dst_port,
    })
}

/// The deny reason of a packet-in's cookie, if a deny flow of augur's sent it.
pub fn deny_reason(packet_in: &PacketIn) -> Option<DenyReason> {
    match Cookie::from_raw(packet_in.cookie)?.origin()? {
        Origin::Deny(reason) => Some(reason),
        Origin::Rule(_) | Origin::Pipeline(_) | Origin::Learn | Origin::Counting => None,
    }
}

/// Turns a sampled packet-in from `bridge` into a denied record seen at `ts`.
pub fn denied_record(
    packet_in: &PacketIn,
    inventory: &Inventory,
    bridge: &Arc<str>,
    ts: Timestamp,
) -> Result<(FlowRecord, DenyReason), Skipped> {
    let reason = deny_reason(packet_in).ok_or(Skipped::NotDenySample)?;
    let headers = parse_headers(&packet_in.data).ok_or(Skipped::NotIp)?;
    Ok((
        sampled_record(packet_in, &headers, inventory, bridge, ts, Verdict::Denied),
        reason,
    ))
}

/// One sampled packet as a record of one connection attempt with `verdict`:
/// the source is the VM on `in_port` if the frame carries its MAC, else by
/// address.
pub(crate) fn sampled_record(
    packet_in: &PacketIn,
    headers: &PacketHeaders,
    inventory: &Inventory,
    bridge: &Arc<str>,
    ts: Timestamp,
    verdict: Verdict,
) -> FlowRecord {
    let in_port = packet_in
        .match_
        .get(Field::InPort)
        .and_then(|f| u32::try_from(f.value).ok())
        .map(PortNo);
    let by_port = in_port.and_then(|port| {
        inventory.vms.iter().find_map(|vm| {
            vm.interfaces
                .iter()
                .any(|i| i.bridge == **bridge && i.ofport == port && i.mac == headers.src_mac)
                .then(|| Endpoint::vm(&vm.id.0))
        })
    });
    let src = by_port.unwrap_or_else(|| endpoint_of(inventory, headers.src_ip));
    let dst = endpoint_of(inventory, headers.dst_ip);
    let bytes = u64::from(
        packet_in
            .total_len
            .max(u16::try_from(packet_in.data.len()).unwrap_or(u16::MAX)),
    );
    FlowRecord {
        ts,
        src,
        dst,
        src_port: headers.src_port,
        dst_port: headers.dst_port,
        protocol: headers.protocol,
        bytes,
        packets: 1,
        connections: 1,
        verdict,
        bridge: Some(Arc::clone(bridge)),
    }
}

/// The VM owning `ip`, or `ip` as an external endpoint.
pub fn endpoint_of(inventory: &Inventory, ip: IpAddr) -> Endpoint {
    inventory
        .vms
        .iter()
        .find(|vm| {
            vm.interfaces
                .iter()
                .any(|i| i.allowed_ips().any(|allowed| allowed == ip))
        })
        .map_or(Endpoint::External(ip), |vm| Endpoint::vm(&vm.id.0))
}
