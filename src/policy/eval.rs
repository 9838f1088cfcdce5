//! A model of one OVS bridge that runs packets through a flow table: how tests
//! and `augur policy explain` see what a compiled policy does, as behaviour
//! rather than flow text.
//!
//! The model follows OpenFlow 1.3 and the OVS extensions the compiler uses:
//! highest-priority match with masks, instructions in their execution order
//! (meter, apply-actions, clear/write-actions, write-metadata, goto-table),
//! `output` (ports, `NORMAL`, `CONTROLLER`, `IN_PORT`), `set_field` and `load`
//! of registers and metadata, `ct` with zones, commit, `ct_mark` and
//! recirculation, `ct_clear`, `resubmit`. `NORMAL` learns source MACs and
//! delivers to the port that owns the destination MAC on this bridge (flooding
//! unknown and group addresses), never back to the ingress port.
//!
//! The connection tracker knows TCP, UDP, ICMP echo and ICMP errors:
//! a packet of an unknown connection is `+new` (a TCP packet only if it is a
//! SYN, otherwise `+inv`; an ICMP echo reply or error that belongs to nothing
//! is `+inv`), becomes `+est` once the reply direction of a committed
//! connection is seen, and an ICMP error about a committed connection is
//! `+rel`. Meters pass everything unless a test saturates them; connections
//! never time out.
//!
//! ```
//! use std::time::UNIX_EPOCH;
//! use augur::inventory::Inventory;
//! use augur::policy::{compile, CompileSettings, Policy};
//! use augur::policy::eval::{Packet, Switch, Verdict};
//!
//! let inventory: Inventory = serde_json::from_str(r#"{
//!   "bridges": [{"name": "br0", "datapath_id": 1}],
//!   "vms": [
//!     {"id": "web", "labels": {"tier": "web"}, "interfaces": [{"bridge": "br0",
//!      "ofport": 1, "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1"]}]},
//!     {"id": "db", "labels": {"tier": "db"}, "interfaces": [{"bridge": "br0",
//!      "ofport": 2, "mac": "02:00:00:00:00:02", "ips": ["10.0.0.2"]}]}
//!   ]}"#)?;
//! let policy = Policy::parse(r#"
//!     [groups.web]
//!     labels = { tier = "web" }
//!     [groups.db]
//!     labels = { tier = "db" }
//!     [[allow]]
//!     from = "web"
//!     to = "db"
//!     proto = "tcp"
//!     port = 5432
//! "#, "policy.toml", UNIX_EPOCH)?;
//! let compiled = compile(&policy, &inventory, &CompileSettings::default(), UNIX_EPOCH)?;
//! let mut switch = Switch::new(compiled.bridge("br0").unwrap(), &inventory);
//!
//! let syn = Packet::tcp(1, "02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 40000, 5432);
//! assert_eq!(switch.process(&syn).verdict(), Verdict::Delivered(vec![2.into()]));
//! let back = Packet::tcp(2, "02:00:00:00:00:02", "02:00:00:00:00:01", "10.0.0.2", "10.0.0.1", 40001, 22);
//! // db may not open connections to web: dropped, a sample goes to the controller.
//! assert!(matches!(switch.process(&back).verdict(), Verdict::ToController { .. }));
//! // The reply to web's connection passes.
//! assert_eq!(switch.process(&syn.reply(2)).verdict(), Verdict::Delivered(vec![1.into()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use augur_openflow::action::{Ct, CtFlags, CtZone};
use augur_openflow::instruction::in_execution_order;
use augur_openflow::oxm::Oxm;
use augur_openflow::{Action, CtState, Field, Instruction, MacAddr, MatchField, PortNo};
use serde::Serialize;

use super::compile::{BridgeFlows, FlowEntry};
use super::cookie::Cookie;
use crate::inventory::Inventory;

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// ACK.
    pub const ACK: u16 = 0x10;
}

/// A transport header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// TCP with its flags.
    Tcp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
        /// [`tcp_flags`] bits.
        flags: u16,
    },
    /// UDP.
    Udp {
        /// Source port.
        src: u16,
        /// Destination port.
        dst: u16,
    },
    /// ICMP (IPv4) or ICMPv6 (IPv6), per the IP version.
    Icmp {
        /// Type.
        kind: u8,
        /// Code.
        code: u8,
        /// Echo identifier (0 for other messages).
        id: u16,
        /// For errors: the header of the packet the error is about.
        inner: Option<InnerHeader>,
    },
    /// ICMPv6 neighbour discovery.
    Nd {
        /// 135 (solicitation) or 136 (advertisement).
        kind: u8,
        /// The target address.
        target: Ipv6Addr,
        /// The source (NS) or target (NA) link-layer address option.
        lla: Option<MacAddr>,
    },
    /// Any other IP protocol.
    Other {
        /// The protocol number.
        proto: u8,
    },
}

/// The header an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InnerHeader {
    /// Its source.
    pub src: IpAddr,
    /// Its destination.
    pub dst: IpAddr,
    /// Its protocol.
    pub proto: u8,
    /// Its source port.
    pub src_port: u16,
    /// Its destination port.
    pub dst_port: u16,
}

/// What an Ethernet frame carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// ARP.
    Arp {
        /// Opcode (1 request, 2 reply).
        op: u16,
        /// Sender MAC.
        sha: MacAddr,
        /// Sender IP.
        spa: Ipv4Addr,
        /// Target MAC.
        tha: MacAddr,
        /// Target IP.
        tpa: Ipv4Addr,
    },
    /// IPv4 or IPv6, per the addresses.
    Ip {
        /// Source.
        src: IpAddr,
        /// Destination.
        dst: IpAddr,
        /// The transport header.
        transport: Transport,
    },
    /// Anything else.
    Other {
        /// The Ethertype.
        eth_type: u16,
    },
}

/// A packet entering a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    /// The port it arrives on.
    pub in_port: PortNo,
    /// Source MAC.
    pub eth_src: MacAddr,
    /// Destination MAC.
    pub eth_dst: MacAddr,
    /// The 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// What it carries.
    pub payload: Payload,
}

/// Parses test addresses written as text; a typo is the test's bug.
fn mac(text: &str) -> MacAddr {
    text.parse().unwrap_or(MacAddr::ZERO)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl Packet {
    /// An IP packet; addresses as text for brevity in tests (text that does
    /// not parse becomes the zero address).
    pub fn ip(
        in_port: u32,
        eth_src: &str,
        eth_dst: &str,
        src: &str,
        dst: &str,
        transport: Transport,
    ) -> Packet {
        Packet {
            in_port: PortNo(in_port),
            eth_src: mac(eth_src),
            eth_dst: mac(eth_dst),
            vlan: None,
            payload: Payload::Ip {
                src: ip(src),
                dst: ip(dst),
                transport,
            },
        }
    }

    /// A TCP SYN.
    pub fn tcp(
        in_port: u32,
        eth_src: &str,
        eth_dst: &str,
        src: &str,
        dst: &str,
        src_port: u16,
        dst_port: u16,
    ) -> Packet {
        let transport = Transport::Tcp {
            src: src_port,
            dst: dst_port,
            flags: tcp_flags::SYN,
        };
        Packet::ip(in_port, eth_src, eth_dst, src, dst, transport)
    }

    /// A UDP datagram.
    pub fn udp(
        in_port: u32,
        eth_src: &str,
        eth_dst: &str,
        src: &str,
        dst: &str,
        src_port: u16,
        dst_port: u16,
    ) -> Packet {
        let transport = Transport::Udp {
            src: src_port,
            dst: dst_port,
        };
        Packet::ip(in_port, eth_src, eth_dst, src, dst, transport)
    }

    /// An ICMP (or ICMPv6) echo request.
    pub fn ping(in_port: u32, eth_src: &str, eth_dst: &str, src: &str, dst: &str) -> Packet {
        let v6 = src.contains(':');
        let transport = Transport::Icmp {
            kind: if v6 { 128 } else { 8 },
            code: 0,
            id: 7,
            inner: None,
        };
        Packet::ip(in_port, eth_src, eth_dst, src, dst, transport)
    }

    /// An ARP request from `sha`/`spa` for `tpa`, broadcast.
    pub fn arp_request(in_port: u32, sha: &str, spa: &str, tpa: &str) -> Packet {
        Packet {
            in_port: PortNo(in_port),
            eth_src: mac(sha),
            eth_dst: MacAddr::BROADCAST,
            vlan: None,
            payload: Payload::Arp {
                op: 1,
                sha: mac(sha),
                spa: spa.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
                tha: MacAddr::ZERO,
                tpa: tpa.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            },
        }
    }

    /// A DHCP DISCOVER from `mac`, broadcast from 0.0.0.0.
    pub fn dhcp_discover(in_port: u32, eth_src: &str) -> Packet {
        Packet::udp(
            in_port,
            eth_src,
            "ff:ff:ff:ff:ff:ff",
            "0.0.0.0",
            "255.255.255.255",
            68,
            67,
        )
    }

    /// The same packet with these TCP flags (no effect on other packets).
    pub fn with_tcp_flags(mut self, flags: u16) -> Packet {
        if let Payload::Ip {
            transport: Transport::Tcp { flags: f, .. },
            ..
        } = &mut self.payload
        {
            *f = flags;
        }
        self
    }

    /// The reply to this packet, arriving on `in_port`: addresses and ports
    /// swapped, a TCP SYN answered by SYN+ACK (later segments by ACK), an
    /// ICMP echo request by its reply.
    pub fn reply(&self, in_port: u32) -> Packet {
        let payload = match &self.payload {
            Payload::Ip {
                src,
                dst,
                transport,
            } => Payload::Ip {
                src: *dst,
                dst: *src,
                transport: match transport {
                    Transport::Tcp { src, dst, flags } => Transport::Tcp {
                        src: *dst,
                        dst: *src,
                        flags: if flags & tcp_flags::SYN != 0 && flags & tcp_flags::ACK == 0 {
                            tcp_flags::SYN | tcp_flags::ACK
                        } else {
                            tcp_flags::ACK
                        },
                    },
                    Transport::Udp { src, dst } => Transport::Udp {
                        src: *dst,
                        dst: *src,
                    },
                    Transport::Icmp { kind, code, id, .. } => Transport::Icmp {
                        kind: match kind {
                            8 => 0,
                            128 => 129,
                            k => *k,
                        },
                        code: *code,
                        id: *id,
                        inner: None,
                    },
                    other => other.clone(),
                },
            },
            other => other.clone(),
        };
        Packet {
            in_port: PortNo(in_port),
            eth_src: self.eth_dst,
            eth_dst: self.eth_src,
            vlan: self.vlan,
            payload,
        }
    }

    /// An ICMP "port unreachable" (or ICMPv6 equivalent) about this packet,
    /// sent back by its destination, arriving on `in_port`.
    pub fn unreachable(&self, in_port: u32) -> Packet {
        let Payload::Ip {
            src,
            dst,
            transport,
        } = &self.payload
        else {
            return self.reply(in_port);
        };
        let (proto, src_port, dst_port) = match transport {
            Transport::Tcp { src, dst, .. } => (6, *src, *dst),
            Transport::Udp { src, dst } => (17, *src, *dst),
            Transport::Icmp { .. } => (if src.is_ipv6() { 58 } else { 1 }, 0, 0),
            Transport::Nd { .. } => (58, 0, 0),
            Transport::Other { proto } => (*proto, 0, 0),
        };
        let v6 = src.is_ipv6();
        Packet {
            in_port: PortNo(in_port),
            eth_src: self.eth_dst,
            eth_dst: self.eth_src,
            vlan: self.vlan,
            payload: Payload::Ip {
                src: *dst,
                dst: *src,
                transport: Transport::Icmp {
                    kind: if v6 { 1 } else { 3 },
                    code: if v6 { 4 } else { 3 },
                    id: 0,
                    inner: Some(InnerHeader {
                        src: *src,
                        dst: *dst,
                        proto,
                        src_port,
                        dst_port,
                    }),
                },
            },
        }
    }

    fn eth_type(&self) -> u16 {
        match &self.payload {
            Payload::Arp { .. } => 0x0806,
            Payload::Ip {
                src: IpAddr::V4(_), ..
            } => 0x0800,
            Payload::Ip {
                src: IpAddr::V6(_), ..
            } => 0x86dd,
            Payload::Other { eth_type } => *eth_type,
        }
    }

    fn ip_proto(&self) -> Option<u8> {
        let Payload::Ip { src, transport, .. } = &self.payload else {
            return None;
        };
        Some(match transport {
            Transport::Tcp { .. } => 6,
            Transport::Udp { .. } => 17,
            Transport::Icmp { .. } if src.is_ipv6() => 58,
            Transport::Icmp { .. } => 1,
            Transport::Nd { .. } => 58,
            Transport::Other { proto } => *proto,
        })
    }

    /// The connection-tracking tuple (ICMP echo uses its id as both ports).
    fn tuple(&self) -> Option<Tuple> {
        let Payload::Ip {
            src,
            dst,
            transport,
        } = &self.payload
        else {
            return None;
        };
        let proto = self.ip_proto()?;
        let (sport, dport) = match transport {
            Transport::Tcp { src, dst, .. } | Transport::Udp { src, dst } => (*src, *dst),
            Transport::Icmp { id, .. } => (*id, *id),
            Transport::Nd { .. } | Transport::Other { .. } => (0, 0),
        };
        Some(Tuple {
            src: *src,
            dst: *dst,
            proto,
            sport,
            dport,
        })
    }

    /// The bits of `field` in this packet, if it has the field.
    fn field(&self, field: Field) -> Option<u128> {
        let bits = |b: u64| Some(u128::from(b));
        match field {
            Field::InPort => bits(u64::from(self.in_port.0)),
            Field::EthSrc => bits(self.eth_src.to_bits()),
            Field::EthDst => bits(self.eth_dst.to_bits()),
            Field::EthType => bits(u64::from(self.eth_type())),
            Field::VlanVid => bits(self.vlan.map_or(0, |v| u64::from(v) | 0x1000)),
            _ => match &self.payload {
                Payload::Arp {
                    op,
                    sha,
                    spa,
                    tha,
                    tpa,
                } => match field {
                    Field::ArpOp => bits(u64::from(*op)),
                    Field::ArpSha => bits(sha.to_bits()),
                    Field::ArpTha => bits(tha.to_bits()),
                    Field::ArpSpa => bits(u64::from(u32::from(*spa))),
                    Field::ArpTpa => bits(u64::from(u32::from(*tpa))),
                    _ => None,
                },
                Payload::Ip {
                    src,
                    dst,
                    transport,
                } => ip_field(field, *src, *dst, self.ip_proto(), transport),
                Payload::Other { .. } => None,
            },
        }
    }
}

fn ip_field(
    field: Field,
    src: IpAddr,
    dst: IpAddr,
    proto: Option<u8>,
    transport: &Transport,
) -> Option<u128> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => Some(u128::from(u32::from(a))),
        IpAddr::V6(_) => None,
    };
    let v6 = |a: IpAddr| match a {
        IpAddr::V6(a) => Some(u128::from(a)),
        IpAddr::V4(_) => None,
    };
    match (field, transport) {
        (Field::Ipv4Src, _) => v4(src),
        (Field::Ipv4Dst, _) => v4(dst),
        (Field::Ipv6Src, _) => v6(src),
        (Field::Ipv6Dst, _) => v6(dst),
        (Field::IpProto, _) => proto.map(u128::from),
        (Field::TcpSrc, Transport::Tcp { src, .. }) => Some(u128::from(*src)),
        (Field::TcpDst, Transport::Tcp { dst, .. }) => Some(u128::from(*dst)),
        (Field::UdpSrc, Transport::Udp { src, .. }) => Some(u128::from(*src)),
        (Field::UdpDst, Transport::Udp { dst, .. }) => Some(u128::from(*dst)),
        (Field::Icmpv4Type, Transport::Icmp { kind, .. }) if src.is_ipv4() => {
            Some(u128::from(*kind))
        }
        (Field::Icmpv4Code, Transport::Icmp { code, .. }) if src.is_ipv4() => {
            Some(u128::from(*code))
        }
        (Field::Icmpv6Type, Transport::Icmp { kind, .. }) if src.is_ipv6() => {
            Some(u128::from(*kind))
        }
        (Field::Icmpv6Code, Transport::Icmp { code, .. }) if src.is_ipv6() => {
            Some(u128::from(*code))
        }
        (Field::Icmpv6Type, Transport::Nd { kind, .. }) => Some(u128::from(*kind)),
        (Field::Icmpv6Code, Transport::Nd { .. }) => Some(0),
        (Field::Ipv6NdTarget, Transport::Nd { target, .. }) => Some(u128::from(*target)),
        // OVS reports an absent option as all zeros.
        (Field::Ipv6NdSll, Transport::Nd { kind: 135, lla, .. })
        | (Field::Ipv6NdTll, Transport::Nd { kind: 136, lla, .. }) => {
            Some(u128::from(lla.unwrap_or(MacAddr::ZERO).to_bits()))
        }
        _ => None,
    }
}

/// A connection's 5-tuple in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
}

impl Tuple {
    fn reverse(self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// A committed connection.
#[derive(Debug, Clone)]
struct Conn {
    orig: Tuple,
    reply_seen: bool,
    mark: u32,
}

/// What the packet carries besides its headers: registers, metadata and
/// conntrack results.
#[derive(Debug, Clone, Default)]
struct Metadata {
    regs: [u32; 16],
    metadata: u64,
    ct_state: u32,
    ct_zone: u16,
    ct_mark: u32,
    /// The original direction of the connection, for `ct_nw_*`/`ct_tp_*`.
    ct_orig: Option<Tuple>,
}

impl Metadata {
    fn field(&self, field: Field) -> Option<u128> {
        if let Some(n) = reg_index(field) {
            return self.regs.get(n).map(|&r| u128::from(r));
        }
        let orig = self.ct_orig;
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => Some(u128::from(u32::from(a))),
            IpAddr::V6(_) => None,
        };
        let v6 = |a: IpAddr| match a {
            IpAddr::V6(a) => Some(u128::from(a)),
            IpAddr::V4(_) => None,
        };
        match field {
            Field::Metadata => Some(u128::from(self.metadata)),
            Field::CtState => Some(u128::from(self.ct_state)),
            Field::CtZone => Some(u128::from(self.ct_zone)),
            Field::CtMark => Some(u128::from(self.ct_mark)),
            Field::CtNwProto => orig.map(|t| u128::from(t.proto)),
            Field::CtNwSrc => orig.and_then(|t| v4(t.src)),
            Field::CtNwDst => orig.and_then(|t| v4(t.dst)),
            Field::CtIpv6Src => orig.and_then(|t| v6(t.src)),
            Field::CtIpv6Dst => orig.and_then(|t| v6(t.dst)),
            Field::CtTpSrc => orig
                .filter(|t| matches!(t.proto, 6 | 17))
                .map(|t| u128::from(t.sport)),
            Field::CtTpDst => orig
                .filter(|t| matches!(t.proto, 6 | 17))
                .map(|t| u128::from(t.dport)),
            _ => None,
        }
    }

    fn set(&mut self, field: Field, value: u128, mask: u128) {
        let merge32 = |old: u32| ((u128::from(old) & !mask) | (value & mask)) as u32;
        if let Some(n) = reg_index(field) {
            if let Some(r) = self.regs.get_mut(n) {
                *r = merge32(*r);
            }
            return;
        }
        match field {
            Field::Metadata => {
                self.metadata = ((u128::from(self.metadata) & !mask) | (value & mask)) as u64;
            }
            Field::CtMark => self.ct_mark = merge32(self.ct_mark),
            _ => {}
        }
    }
}

fn reg_index(field: Field) -> Option<usize> {
    (0..16u8).position(|n| Field::reg(n) == Some(field))
}

/// Where a packet went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Out of a port.
    Port(PortNo),
    /// To the controller, by the flow with this cookie.
    Controller {
        /// The cookie of the flow that sent it.
        cookie: u64,
        /// The bytes of it the controller gets.
        max_len: u16,
    },
}

/// One flow a packet matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The table.
    pub table_id: u8,
    /// The matching flow's priority, or `None` for a table miss with no flow.
    pub priority: Option<u16>,
    /// The matching flow's cookie.
    pub cookie: Option<u64>,
    /// How many conntrack recirculations deep this step is.
    pub recirculation: u8,
    /// Something the model did not do (an action it does not know).
    pub note: Option<String>,
}

/// The final verdict of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Sent out of these ports.
    Delivered(Vec<PortNo>),
    /// Dropped, a copy going to the controller by the flow with this cookie.
    ToController {
        /// The cookie of the flow that sent it.
        cookie: u64,
    },
    /// Dropped silently.
    Dropped,
}

/// Everything that happened to one packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// Where copies of it went, in order.
    pub deliveries: Vec<Delivery>,
    /// The meters it went through.
    pub meters: Vec<u32>,
    /// The flows it matched, in order.
    pub trace: Vec<Step>,
}

impl Outcome {
    /// The ports it was sent out of.
    pub fn ports(&self) -> Vec<PortNo> {
        self.deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Port(p) => Some(*p),
                Delivery::Controller { .. } => None,
            })
            .collect()
    }

    /// The cookie of the flow that sent it to the controller, if one did.
    pub fn controller_cookie(&self) -> Option<u64> {
        self.deliveries.iter().find_map(|d| match d {
            Delivery::Controller { cookie, .. } => Some(*cookie),
            Delivery::Port(_) => None,
        })
    }

    /// Delivered out of ports, else sampled to the controller, else dropped.
    pub fn verdict(&self) -> Verdict {
        let ports = self.ports();
        if !ports.is_empty() {
            return Verdict::Delivered(ports);
        }
        match self.controller_cookie() {
            Some(cookie) => Verdict::ToController { cookie },
            None => Verdict::Dropped,
        }
    }

    /// Whether it left through `port`.
    pub fn delivered_to(&self, port: impl Into<PortNo>) -> bool {
        self.ports().contains(&port.into())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.trace {
            write!(
                f,
                "{:indent$}table={}",
                "",
                step.table_id,
                indent = 2 * usize::from(step.recirculation)
            )?;
            match (step.priority, step.cookie) {
                (Some(p), Some(c)) => write!(f, " priority={p} cookie={}", Cookie(c))?,
                _ => f.write_str(" miss")?,
            }
            if let Some(note) = &step.note {
                write!(f, " ({note})")?;
            }
            writeln!(f)?;
        }
        match self.verdict() {
            Verdict::Delivered(ports) => {
                let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
                write!(f, "delivered to {}", ports.join(", "))
            }
            Verdict::ToController { cookie } => {
                write!(
                    f,
                    "dropped, sampled to the controller by {}",
                    Cookie(cookie)
                )
            }
            Verdict::Dropped => f.write_str("dropped"),
        }
    }
}

/// How deep resubmits and recirculations may nest before the model gives
/// up, as OVS does.
const MAX_DEPTH: u8 = 64;

/// A flow installed in the model, with its install time for hard timeouts.
#[derive(Debug, Clone)]
struct Installed {
    flow: FlowEntry,
    installed_at: Duration,
}

/// One bridge: its flow tables, MAC table, conntrack and meters.
#[derive(Debug, Clone)]
pub struct Switch {
    tables: HashMap<u8, Vec<Installed>>,
    macs: HashMap<MacAddr, PortNo>,
    ports: BTreeSet<PortNo>,
    conns: HashMap<(u16, Tuple), usize>,
    conn_list: Vec<Conn>,
    saturated: HashSet<u32>,
    clock: Duration,
}

impl Switch {
    /// A bridge holding `flows`, whose ports and MACs are those `inventory`
    /// places on it.
    pub fn new(flows: &BridgeFlows, inventory: &Inventory) -> Switch {
        let mut switch = Switch::with_flows(flows.flows.iter().cloned());
        for (_, iface) in inventory.interfaces_on(&flows.bridge) {
            switch.add_port(iface.ofport, Some(iface.mac));
        }
        for port in inventory.external_ports_on(&flows.bridge) {
            switch.add_port(port.ofport, port.mac);
        }
        switch
    }

    /// A bridge holding `flows` and no ports yet.
    pub fn with_flows(flows: impl IntoIterator<Item = FlowEntry>) -> Switch {
        let mut tables: HashMap<u8, Vec<Installed>> = HashMap::new();
        for flow in flows {
            tables.entry(flow.table_id).or_default().push(Installed {
                flow,
                installed_at: Duration::ZERO,
            });
        }
        for table in tables.values_mut() {
            // Highest priority first; the sort is stable, so equal
            // priorities keep their order.
            table.sort_by_key(|i| std::cmp::Reverse(i.flow.priority));
        }
        Switch {
            tables,
            macs: HashMap::new(),
            ports: BTreeSet::new(),
            conns: HashMap::new(),
            conn_list: Vec::new(),
            saturated: HashSet::new(),
            clock: Duration::ZERO,
        }
    }

    /// Adds a port, and the MAC behind it if known.
    pub fn add_port(&mut self, port: PortNo, mac: Option<MacAddr>) {
        self.ports.insert(port);
        if let Some(mac) = mac {
            self.macs.insert(mac, port);
        }
    }

    /// Teaches `NORMAL` that `mac` is behind `port` (a VM on another bridge
    /// behind the uplink).
    pub fn learn(&mut self, mac: &str, port: impl Into<PortNo>) {
        self.macs.insert(self::mac(mac), port.into());
    }

    /// Makes meter `id` drop everything, as if its rate were exceeded.
    pub fn saturate_meter(&mut self, id: u32) {
        self.saturated.insert(id);
    }

    /// Lets time pass: flows whose hard timeout runs out are removed, as the
    /// switch does on its own.
    pub fn advance(&mut self, by: Duration) {
        self.clock += by;
        let now = self.clock;
        for table in self.tables.values_mut() {
            table.retain(|i| {
                i.flow.hard_timeout == 0
                    || i.installed_at + Duration::from_secs(u64::from(i.flow.hard_timeout)) > now
            });
        }
    }

    /// The flows currently installed.
    pub fn flows(&self) -> impl Iterator<Item = &FlowEntry> {
        self.tables.values().flatten().map(|i| &i.flow)
    }

    /// Runs `packet` through the pipeline from table 0.
    pub fn process(&mut self, packet: &Packet) -> Outcome {
        let mut out = Outcome {
            deliveries: Vec::new(),
            meters: Vec::new(),
            trace: Vec::new(),
        };
        self.pipeline(packet, Metadata::default(), 0, 0, &mut out);
        out
    }

    /// Runs the packet from `table` until it leaves the pipeline.
    fn pipeline(
        &mut self,
        packet: &Packet,
        mut md: Metadata,
        table: u8,
        depth: u8,
        out: &mut Outcome,
    ) {
        let mut table = table;
        let mut action_set: Vec<Action> = Vec::new();
        loop {
            let Some(flow) = self.lookup(table, packet, &md) else {
                out.trace.push(Step {
                    table_id: table,
                    priority: None,
                    cookie: None,
                    recirculation: depth,
                    note: None,
                });
                return;
            };
            out.trace.push(Step {
                table_id: table,
                priority: Some(flow.priority),
                cookie: Some(flow.cookie.0),
                recirculation: depth,
                note: None,
            });
            let cookie = flow.cookie.0;
            let mut next = None;
            for instruction in in_execution_order(&flow.instructions) {
                match instruction {
                    Instruction::Meter(id) => {
                        out.meters.push(*id);
                        if self.saturated.contains(id) {
                            return;
                        }
                    }
                    Instruction::ApplyActions(actions) => {
                        if !self.apply(packet, &mut md, actions, cookie, depth, out) {
                            return;
                        }
                    }
                    Instruction::ClearActions => action_set.clear(),
                    Instruction::WriteActions(actions) => {
                        for action in actions {
                            action_set.retain(|a| a.action_type() != action.action_type());
                            action_set.push(action.clone());
                        }
                    }
                    Instruction::WriteMetadata { metadata, mask } => {
                        md.set(Field::Metadata, u128::from(*metadata), u128::from(*mask));
                    }
                    Instruction::GotoTable(t) => next = Some(*t),
                    other => note(
                        out,
                        format!("instruction {:?} not modelled", other.instruction_type()),
                    ),
                }
            }
            match next {
                Some(t) if t > table => table = t,
                Some(t) => {
                    note(out, format!("goto_table:{t} does not go forward; dropped"));
                    return;
                }
                None => {
                    let set = std::mem::take(&mut action_set);
                    self.apply(packet, &mut md, &set, cookie, depth, out);
                    return;
                }
            }
        }
    }

    /// The highest-priority flow of `table` that matches.
    fn lookup(&self, table: u8, packet: &Packet, md: &Metadata) -> Option<FlowEntry> {
        self.tables
            .get(&table)?
            .iter()
            .find(|i| flow_matches(&i.flow, packet, md))
            .map(|i| i.flow.clone())
    }

    /// Applies actions; false if processing of this packet instance ends.
    fn apply(
        &mut self,
        packet: &Packet,
        md: &mut Metadata,
        actions: &[Action],
        cookie: u64,
        depth: u8,
        out: &mut Outcome,
    ) -> bool {
        for action in actions {
            match action {
                Action::Output { port, max_len } => {
                    self.output(packet, *port, *max_len, cookie, out)
                }
                Action::SetField(Oxm::Field(m)) | Action::RegLoad2(Oxm::Field(m)) => {
                    md.set(
                        m.field,
                        m.value,
                        m.mask.unwrap_or_else(|| m.field.full_mask()),
                    );
                }
                Action::RegLoad(load) => match load.dst.field.known_field() {
                    Some(field) => {
                        let width = u32::from(load.dst.n_bits).min(64);
                        let ones = if width >= 64 {
                            u64::MAX
                        } else {
                            (1u64 << width) - 1
                        };
                        let shift = u32::from(load.dst.ofs);
                        let mask = u128::from(ones).checked_shl(shift).unwrap_or(0);
                        let value = u128::from(load.value & ones)
                            .checked_shl(shift)
                            .unwrap_or(0);
                        md.set(field, value, mask);
                    }
                    None => note(out, format!("load into unknown field {}", load.dst.field)),
                },
                Action::CtClear => {
                    md.ct_state = 0;
                    md.ct_zone = 0;
                    md.ct_mark = 0;
                    md.ct_orig = None;
                }
                Action::Ct(ct) => {
                    let tracked = self.conntrack(packet, md, ct);
                    if let Some(table) = ct.recirc_table {
                        if depth >= MAX_DEPTH {
                            note(out, "too many recirculations".to_owned());
                            return false;
                        }
                        // The tracked copy resumes in `table`; this one
                        // goes on untracked, as in OVS.
                        self.pipeline(packet, tracked, table, depth + 1, out);
                    }
                }
                Action::ResubmitTable { table, .. } => {
                    if depth >= MAX_DEPTH {
                        note(out, "too many resubmits".to_owned());
                        return false;
                    }
                    self.pipeline(packet, md.clone(), *table, depth + 1, out);
                }
                other => note(out, format!("action {other} not modelled")),
            }
        }
        true
    }

    fn output(
        &mut self,
        packet: &Packet,
        port: PortNo,
        max_len: u16,
        cookie: u64,
        out: &mut Outcome,
    ) {
        match port {
            PortNo::CONTROLLER => out
                .deliveries
                .push(Delivery::Controller { cookie, max_len }),
            PortNo::NORMAL => {
                // NORMAL learns where source MACs are, as a switch does.
                if !packet.eth_src.is_multicast() && self.ports.contains(&packet.in_port) {
                    self.macs.insert(packet.eth_src, packet.in_port);
                }
                let known = (!packet.eth_dst.is_multicast())
                    .then(|| self.macs.get(&packet.eth_dst))
                    .flatten();
                match known {
                    Some(&p) if p != packet.in_port => out.deliveries.push(Delivery::Port(p)),
                    Some(_) => {}
                    None => {
                        for &p in &self.ports {
                            if p != packet.in_port {
                                out.deliveries.push(Delivery::Port(p));
                            }
                        }
                    }
                }
            }
            PortNo::IN_PORT => out.deliveries.push(Delivery::Port(packet.in_port)),
            p if p == packet.in_port => {} // OpenFlow never outputs to the ingress port implicitly.
            p => out.deliveries.push(Delivery::Port(p)),
        }
    }

    /// Sends the packet through the tracker: returns the metadata the
    /// tracked copy carries, committing if asked.
    fn conntrack(&mut self, packet: &Packet, md: &Metadata, ct: &Ct) -> Metadata {
        let zone = match ct.zone {
            CtZone::Immediate(z) => z,
            CtZone::Field(sf) => sf
                .field
                .known_field()
                .and_then(|f| md.field(f))
                .map_or(0, |v| (v >> sf.ofs) as u16),
        };
        let mut tracked = md.clone();
        tracked.ct_zone = zone;
        tracked.ct_mark = 0;
        tracked.ct_orig = None;
        let Some(tuple) = packet.tuple() else {
            tracked.ct_state = (CtState::TRACKED | CtState::INVALID).0;
            return tracked;
        };
        let found = self
            .conns
            .get(&(zone, tuple))
            .map(|&n| (n, false))
            .or_else(|| self.conns.get(&(zone, tuple.reverse())).map(|&n| (n, true)));
        let state = match found {
            Some((n, reply)) => {
                let conn = self.conn_list.get_mut(n);
                match conn {
                    Some(conn) => {
                        tracked.ct_mark = conn.mark;
                        tracked.ct_orig = Some(conn.orig);
                        if reply {
                            conn.reply_seen = true;
                            CtState::ESTABLISHED | CtState::REPLY
                        } else if conn.reply_seen {
                            CtState::ESTABLISHED
                        } else {
                            CtState::NEW
                        }
                    }
                    None => CtState::INVALID,
                }
            }
            None => match self.related(packet, zone) {
                Some(n) => {
                    if let Some(conn) = self.conn_list.get(n) {
                        tracked.ct_mark = conn.mark;
                        tracked.ct_orig = Some(conn.orig);
                    }
                    CtState::RELATED
                }
                None if starts_connection(packet) => {
                    tracked.ct_orig = Some(tuple);
                    CtState::NEW
                }
                None => CtState::INVALID,
            },
        };
        tracked.ct_state = (CtState::TRACKED | state).0;
        let valid = !state.contains(CtState::INVALID);
        if ct.flags.contains(CtFlags::COMMIT) && valid {
            let mut mark = tracked.ct_mark;
            for nested in &ct.actions {
                if let Action::SetField(Oxm::Field(m)) = nested {
                    if m.field == Field::CtMark {
                        let mask = m.mask.unwrap_or(u128::from(u32::MAX));
                        mark = ((u128::from(mark) & !mask) | (m.value & mask)) as u32;
                    }
                }
            }
            match found {
                Some((n, _)) => {
                    if let Some(conn) = self.conn_list.get_mut(n) {
                        conn.mark = mark;
                    }
                }
                None if !state.contains(CtState::RELATED) => {
                    let n = self.conn_list.len();
                    self.conn_list.push(Conn {
                        orig: tuple,
                        reply_seen: false,
                        mark,
                    });
                    self.conns.insert((zone, tuple), n);
                }
                None => {}
            }
        }
        tracked
    }

    /// The committed connection an ICMP error is about.
    fn related(&self, packet: &Packet, zone: u16) -> Option<usize> {
        let Payload::Ip {
            transport: Transport::Icmp {
                inner: Some(inner), ..
            },
            ..
        } = &packet.payload
        else {
            return None;
        };
        let quoted = Tuple {
            src: inner.src,
            dst: inner.dst,
            proto: inner.proto,
            sport: inner.src_port,
            dport: inner.dst_port,
        };
        self.conns
            .get(&(zone, quoted))
            .or_else(|| self.conns.get(&(zone, quoted.reverse())))
            .copied()
    }
}

/// Whether a packet of no known connection may start one.
fn starts_connection(packet: &Packet) -> bool {
    match &packet.payload {
        Payload::Ip { transport, .. } => match transport {
            Transport::Tcp { flags, .. } => {
                flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN
            }
            // Echo requests start; replies and errors about nothing do not.
            Transport::Icmp { kind, inner, .. } => inner.is_none() && !matches!(kind, 0 | 129),
            Transport::Udp { .. } | Transport::Nd { .. } | Transport::Other { .. } => true,
        },
        _ => false,
    }
}

fn note(out: &mut Outcome, text: String) {
    if let Some(step) = out.trace.last_mut() {
        step.note = Some(text);
    }
}

/// Whether every field of the flow's match holds for the packet; a match on
/// a field the packet lacks, or on a TLV the model does not know, fails.
fn flow_matches(flow: &FlowEntry, packet: &Packet, md: &Metadata) -> bool {
    flow.match_.oxms().iter().all(|oxm| match oxm {
        Oxm::Field(m) => field_matches(m, packet, md),
        _ => false,
    })
}

fn field_matches(m: &MatchField, packet: &Packet, md: &Metadata) -> bool {
    packet
        .field(m.field)
        .or_else(|| md.field(m.field))
        .is_some_and(|bits| m.matches(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Cookie, Origin, Stage};
    use augur_openflow::Match;

    fn flow(table: u8, priority: u16, m: Match, instructions: Vec<Instruction>) -> FlowEntry {
        FlowEntry {
            stage: Stage::Classify,
            table_id: table,
            priority,
            match_: m,
            instructions,
            cookie: Cookie::new(1, Origin::Rule(u32::from(priority))),
            hard_timeout: 0,
            idle_timeout: 0,
        }
    }

    #[test]
    fn priorities_masks_registers_and_timeouts() {
        let mut switch = Switch::with_flows([
            flow(
                0,
                10,
                Match::new(),
                vec![
                    Instruction::ApplyActions(vec![Action::set_field(MatchField::exact(
                        Field::Reg3,
                        0x5u32,
                    ))]),
                    Instruction::GotoTable(1),
                ],
            ),
            flow(
                1,
                20,
                Match::new().masked(Field::Reg3, 0x4u32, 0x4u32),
                vec![Instruction::ApplyActions(vec![Action::output(PortNo(9))])],
            ),
            FlowEntry {
                hard_timeout: 5,
                ..flow(
                    1,
                    30,
                    Match::new().in_port(1u32),
                    vec![Instruction::ApplyActions(vec![Action::output(PortNo(8))])],
                )
            },
        ]);
        let p = Packet::udp(
            1,
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10.0.0.1",
            "10.0.0.2",
            1,
            2,
        );
        assert_eq!(
            switch.process(&p).verdict(),
            Verdict::Delivered(vec![PortNo(8)])
        );
        switch.advance(Duration::from_secs(5));
        assert_eq!(
            switch.process(&p).verdict(),
            Verdict::Delivered(vec![PortNo(9)])
        );
        let q = Packet {
            in_port: PortNo(2),
            ..p
        };
        let out = switch.process(&q);
        assert_eq!(out.trace.len(), 2);
        assert_eq!(out.verdict(), Verdict::Delivered(vec![PortNo(9)]));
    }

    #[test]
    fn conntrack_states() {
        let ct = |commit: bool| {
            let mut c = Ct::new().zone(3).table(1);
            if commit {
                c = c.commit();
            }
            Instruction::ApplyActions(vec![Action::Ct(c)])
        };
        let state = |s: CtState| Match::new().ct_state(s | CtState::TRACKED, s | CtState::TRACKED);
        let out = |p: u32| vec![Instruction::ApplyActions(vec![Action::output(PortNo(p))])];
        let mut switch = Switch::with_flows([
            flow(0, 20, Match::new().in_port(1u32), vec![ct(true)]),
            flow(0, 10, Match::new(), vec![ct(false)]),
            flow(1, 40, state(CtState::INVALID), out(40)),
            flow(1, 30, state(CtState::RELATED), out(30)),
            flow(1, 20, state(CtState::ESTABLISHED), out(20)),
            flow(1, 10, state(CtState::NEW), out(10)),
        ]);
        let verdict = |s: &mut Switch, p: &Packet| s.process(p).verdict();
        let syn = Packet::tcp(
            1,
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10.0.0.1",
            "10.0.0.2",
            1000,
            80,
        );
        // Unsolicited from 2: not a SYN → invalid.
        let stray = syn.reply(2).with_tcp_flags(tcp_flags::ACK);
        assert_eq!(
            verdict(&mut switch, &stray),
            Verdict::Delivered(vec![PortNo(40)])
        );
        assert_eq!(
            verdict(&mut switch, &syn),
            Verdict::Delivered(vec![PortNo(10)])
        );
        // Before any reply, the original direction is still new.
        assert_eq!(
            verdict(&mut switch, &syn),
            Verdict::Delivered(vec![PortNo(10)])
        );
        assert_eq!(
            verdict(&mut switch, &syn.reply(2)),
            Verdict::Delivered(vec![PortNo(20)])
        );
        let ack = syn.clone().with_tcp_flags(tcp_flags::ACK);
        assert_eq!(
            verdict(&mut switch, &ack),
            Verdict::Delivered(vec![PortNo(20)])
        );
        assert_eq!(
            verdict(&mut switch, &syn.unreachable(2)),
            Verdict::Delivered(vec![PortNo(30)])
        );
        // An error about a connection nobody made is invalid.
        let other = Packet::udp(
            1,
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10.0.0.1",
            "10.0.0.9",
            5,
            6,
        );
        assert_eq!(
            verdict(&mut switch, &other.unreachable(2)),
            Verdict::Delivered(vec![PortNo(40)])
        );
        // Echo: request new, reply established; a reply to nothing invalid.
        let ping = Packet::ping(
            1,
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10.0.0.1",
            "10.0.0.2",
        );
        let pong = ping.reply(2);
        assert_eq!(
            verdict(&mut switch, &pong),
            Verdict::Delivered(vec![PortNo(40)])
        );
        assert_eq!(
            verdict(&mut switch, &ping),
            Verdict::Delivered(vec![PortNo(10)])
        );
        assert_eq!(
            verdict(&mut switch, &pong),
            Verdict::Delivered(vec![PortNo(20)])
        );
    }
}
