//! The match fields this crate knows: their OXM headers, widths, masks,
//! prerequisites and how to print their values.
//!
//! A [`Field`] is a plain `Copy` enum so that an evaluator can index tables by
//! `field as usize` (see [`Field::index`]); everything else about a field comes
//! from one static table, so the wire codec, the validator and the printer can
//! never disagree.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::types::{MacAddr, PortNo};

wire_enum! {
    /// An OXM class (the top 16 bits of an OXM header); unknown ones print in hex.
    pub struct OxmClass(u16) as "0x{:04x}" {
        /// Nicira extended match, NXM_OF_* fields.
        NXM_0 = 0x0000 => "NXM_0",
        /// Nicira extended match, NXM_NX_* fields (registers, conntrack, ...).
        NXM_1 = 0x0001 => "NXM_1",
        /// The fields defined by the OpenFlow specification.
        OPENFLOW_BASIC = 0x8000 => "OPENFLOW_BASIC",
        /// OpenFlow 1.5 packet registers, used by OVS for `xreg` in OF1.3.
        PACKET_REGS = 0x8001 => "PACKET_REGS",
        /// Experimenter class: a 4-byte experimenter id follows the header.
        EXPERIMENTER = 0xffff => "EXPERIMENTER",
    }
}

/// A 32-bit OXM (or NXM) header: class, field code, has-mask bit and payload
/// length.
///
/// Besides starting every TLV, headers name fields inside Nicira actions
/// (the `zone_src` of `ct`, the source of `reg_move`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OxmHeader(pub u32);

impl OxmHeader {
    /// Assembles a header from its parts; `field` keeps its low 7 bits.
    pub const fn new(class: OxmClass, field: u8, hasmask: bool, length: u8) -> OxmHeader {
        OxmHeader(
            (class.0 as u32) << 16
                | ((field & 0x7f) as u32) << 9
                | (hasmask as u32) << 8
                | length as u32,
        )
    }

    /// The class.
    pub const fn class(self) -> OxmClass {
        OxmClass((self.0 >> 16) as u16)
    }

    /// The 7-bit field code within the class.
    pub const fn field_code(self) -> u8 {
        ((self.0 >> 9) & 0x7f) as u8
    }

    /// Whether a mask follows the value.
    pub const fn hasmask(self) -> bool {
        self.0 & 0x100 != 0
    }

    /// The payload length in bytes (value, mask and, for experimenter OXMs,
    /// the experimenter id).
    pub const fn length(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    /// The known field this header names, whatever its mask bit and length.
    pub fn known_field(self) -> Option<Field> {
        Field::from_code(self.class(), self.field_code())
    }
}

impl fmt::Display for OxmHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known_field() {
            Some(field) => f.write_str(field.name()),
            None => write!(f, "0x{:08x}", self.0),
        }
    }
}

flag_set! {
    /// Connection-tracking state bits (the `ct_state` field), as OVS defines
    /// and `ovs-ofctl` names them.
    pub struct CtState(u32) {
        /// The packet starts a new connection.
        NEW = 1 << 0 => "new",
        /// The packet belongs to an established connection.
        ESTABLISHED = 1 << 1 => "est",
        /// The packet is related to an existing connection.
        RELATED = 1 << 2 => "rel",
        /// The packet flows in the reply direction.
        REPLY = 1 << 3 => "rpl",
        /// The connection tracker could not make sense of the packet.
        INVALID = 1 << 4 => "inv",
        /// The packet went through the connection tracker.
        TRACKED = 1 << 5 => "trk",
        /// Source NAT applied.
        SNAT = 1 << 6 => "snat",
        /// Destination NAT applied.
        DNAT = 1 << 7 => "dnat",
    }
}

impl CtState {
    /// Writes `value` under `mask` the way `ovs-ofctl` does: `+trk+new` for
    /// bits that must be set, `-inv` for bits that must be clear.
    pub(crate) fn fmt_masked(value: u32, mask: u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if mask == 0 {
            return f.write_str("0/0");
        }
        let mut rest = mask;
        while rest != 0 {
            let bit = rest & rest.wrapping_neg();
            let sign = if value & bit != 0 { '+' } else { '-' };
            match CtState(bit).names().next() {
                Some(name) => write!(f, "{sign}{name}")?,
                None => write!(f, "{sign}0x{bit:x}")?,
            }
            rest &= !bit;
        }
        Ok(())
    }
}

/// What a field requires earlier in the match (OpenFlow 1.3.5 §7.2.3.8,
/// and `lib/meta-flow.xml` for the Nicira fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Prereq {
    /// Nothing.
    None,
    /// `in_port`.
    InPort,
    /// `vlan_vid` with the OFPVID_PRESENT bit matched as set.
    VlanPresent,
    /// `eth_type` IPv4 or IPv6.
    Ip,
    /// `eth_type=0x0800`.
    Ipv4,
    /// `eth_type=0x86dd`.
    Ipv6,
    /// `eth_type=0x0806`.
    Arp,
    /// `eth_type` 0x8847 or 0x8848.
    Mpls,
    /// `eth_type=0x88e7`.
    Pbb,
    /// `ip_proto=6` (which itself needs IPv4 or IPv6).
    Tcp,
    /// `ip_proto=17`.
    Udp,
    /// `ip_proto=132`.
    Sctp,
    /// `ip_proto=1` over IPv4.
    Icmpv4,
    /// `ip_proto=58` over IPv6.
    Icmpv6,
    /// `icmpv6_type` 135 or 136.
    NdTarget,
    /// `icmpv6_type=135`.
    NdSll,
    /// `icmpv6_type=136`.
    NdTll,
    /// `ct_state` matching a valid tracked connection (OVS's "CT").
    Ct,
}

impl Prereq {
    /// How the requirement reads in an error message.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Prereq::None => "nothing",
            Prereq::InPort => "in_port before it",
            Prereq::VlanPresent => "vlan_vid with OFPVID_PRESENT (0x1000) set before it",
            Prereq::Ip => "eth_type=0x0800 or 0x86dd before it",
            Prereq::Ipv4 => "eth_type=0x0800 before it",
            Prereq::Ipv6 => "eth_type=0x86dd before it",
            Prereq::Arp => "eth_type=0x0806 before it",
            Prereq::Mpls => "eth_type=0x8847 or 0x8848 before it",
            Prereq::Pbb => "eth_type=0x88e7 before it",
            Prereq::Tcp => "ip_proto=6 (after eth_type IPv4 or IPv6) before it",
            Prereq::Udp => "ip_proto=17 (after eth_type IPv4 or IPv6) before it",
            Prereq::Sctp => "ip_proto=132 (after eth_type IPv4 or IPv6) before it",
            Prereq::Icmpv4 => "eth_type=0x0800 and ip_proto=1 before it",
            Prereq::Icmpv6 => "eth_type=0x86dd and ip_proto=58 before it",
            Prereq::NdTarget => "icmpv6_type=135 or 136 before it",
            Prereq::NdSll => "icmpv6_type=135 before it",
            Prereq::NdTll => "icmpv6_type=136 before it",
            Prereq::Ct => "ct_state matching a valid tracked connection before it",
        }
    }
}

/// How a field's value is written in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    Decimal,
    Hex,
    Mac,
    Ipv4,
    Ipv6,
    Port,
    CtState,
}

/// Static facts about one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldInfo {
    pub(crate) name: &'static str,
    pub(crate) class: OxmClass,
    pub(crate) code: u8,
    /// Bytes of the value on the wire (the mask has as many).
    pub(crate) len: u8,
    /// Significant bits, counted from the least significant end.
    pub(crate) bits: u8,
    pub(crate) maskable: bool,
    pub(crate) prereq: Prereq,
    pub(crate) format: Format,
}

macro_rules! fields {
    ($(
        $(#[$doc:meta])*
        $variant:ident = ($name:literal, $class:ident, $code:literal, $len:literal, $bits:literal,
                          $maskable:literal, $prereq:ident, $format:ident),
    )*) => {
        /// A match field this crate decodes into a value and mask.
        ///
        /// Names are those of Ryu and `ovs-ofctl` (`eth_dst`, `ct_state`,
        /// `reg3`); every OpenFlow-basic field of OpenFlow 1.3 plus `pbb_uca`
        /// of 1.4, and the Nicira fields a stateful policy needs. Any other
        /// OXM decodes as an opaque TLV.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Field {
            $($(#[$doc])* $variant,)*
        }

        const FIELD_INFO: &[FieldInfo] = &[
            $(FieldInfo {
                name: $name,
                class: OxmClass::$class,
                code: $code,
                len: $len,
                bits: $bits,
                maskable: $maskable,
                prereq: Prereq::$prereq,
                format: Format::$format,
            },)*
        ];

        impl Field {
            /// Every known field, in table order (`Field::ALL[f.index()] == f`).
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The field with this class and code, if this crate knows it.
            pub fn from_code(class: OxmClass, code: u8) -> Option<Field> {
                match (class, code) {
                    $((OxmClass::$class, $code) => Some(Field::$variant),)*
                    _ => None,
                }
            }

            /// The field with this name (`eth_dst`, `reg3`, ...).
            pub fn from_name(name: &str) -> Option<Field> {
                match name {
                    $($name => Some(Field::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    /// Ingress port (`OXM_OF_IN_PORT`); may be a logical port.
    InPort = ("in_port", OPENFLOW_BASIC, 0, 4, 32, false, None, Port),
    /// Physical ingress port.
    InPhyPort = ("in_phy_port", OPENFLOW_BASIC, 1, 4, 32, false, InPort, Port),
    /// Metadata passed between tables.
    Metadata = ("metadata", OPENFLOW_BASIC, 2, 8, 64, true, None, Hex),
    /// Ethernet destination address.
    EthDst = ("eth_dst", OPENFLOW_BASIC, 3, 6, 48, true, None, Mac),
    /// Ethernet source address.
    EthSrc = ("eth_src", OPENFLOW_BASIC, 4, 6, 48, true, None, Mac),
    /// Ethernet type of the payload.
    EthType = ("eth_type", OPENFLOW_BASIC, 5, 2, 16, false, None, Hex),
    /// VLAN id with the OFPVID_PRESENT bit (0x1000).
    VlanVid = ("vlan_vid", OPENFLOW_BASIC, 6, 2, 13, true, None, Hex),
    /// VLAN priority.
    VlanPcp = ("vlan_pcp", OPENFLOW_BASIC, 7, 1, 3, false, VlanPresent, Decimal),
    /// IP DSCP (6 bits of the ToS byte).
    IpDscp = ("ip_dscp", OPENFLOW_BASIC, 8, 1, 6, false, Ip, Decimal),
    /// IP ECN (2 bits of the ToS byte).
    IpEcn = ("ip_ecn", OPENFLOW_BASIC, 9, 1, 2, false, Ip, Decimal),
    /// IP protocol number.
    IpProto = ("ip_proto", OPENFLOW_BASIC, 10, 1, 8, false, Ip, Decimal),
    /// IPv4 source address.
    Ipv4Src = ("ipv4_src", OPENFLOW_BASIC, 11, 4, 32, true, Ipv4, Ipv4),
    /// IPv4 destination address.
    Ipv4Dst = ("ipv4_dst", OPENFLOW_BASIC, 12, 4, 32, true, Ipv4, Ipv4),
    /// TCP source port.
    TcpSrc = ("tcp_src", OPENFLOW_BASIC, 13, 2, 16, false, Tcp, Decimal),
    /// TCP destination port.
    TcpDst = ("tcp_dst", OPENFLOW_BASIC, 14, 2, 16, false, Tcp, Decimal),
    /// UDP source port.
    UdpSrc = ("udp_src", OPENFLOW_BASIC, 15, 2, 16, false, Udp, Decimal),
    /// UDP destination port.
    UdpDst = ("udp_dst", OPENFLOW_BASIC, 16, 2, 16, false, Udp, Decimal),
    /// SCTP source port.
    SctpSrc = ("sctp_src", OPENFLOW_BASIC, 17, 2, 16, false, Sctp, Decimal),
    /// SCTP destination port.
    SctpDst = ("sctp_dst", OPENFLOW_BASIC, 18, 2, 16, false, Sctp, Decimal),
    /// ICMPv4 type.
    Icmpv4Type = ("icmpv4_type", OPENFLOW_BASIC, 19, 1, 8, false, Icmpv4, Decimal),
    /// ICMPv4 code.
    Icmpv4Code = ("icmpv4_code", OPENFLOW_BASIC, 20, 1, 8, false, Icmpv4, Decimal),
    /// ARP opcode.
    ArpOp = ("arp_op", OPENFLOW_BASIC, 21, 2, 16, false, Arp, Decimal),
    /// ARP source IPv4 address.
    ArpSpa = ("arp_spa", OPENFLOW_BASIC, 22, 4, 32, true, Arp, Ipv4),
    /// ARP target IPv4 address.
    ArpTpa = ("arp_tpa", OPENFLOW_BASIC, 23, 4, 32, true, Arp, Ipv4),
    /// ARP source hardware address.
    ArpSha = ("arp_sha", OPENFLOW_BASIC, 24, 6, 48, true, Arp, Mac),
    /// ARP target hardware address.
    ArpTha = ("arp_tha", OPENFLOW_BASIC, 25, 6, 48, true, Arp, Mac),
    /// IPv6 source address.
    Ipv6Src = ("ipv6_src", OPENFLOW_BASIC, 26, 16, 128, true, Ipv6, Ipv6),
    /// IPv6 destination address.
    Ipv6Dst = ("ipv6_dst", OPENFLOW_BASIC, 27, 16, 128, true, Ipv6, Ipv6),
    /// IPv6 flow label (20 bits).
    Ipv6Flabel = ("ipv6_flabel", OPENFLOW_BASIC, 28, 4, 20, true, Ipv6, Hex),
    /// ICMPv6 type.
    Icmpv6Type = ("icmpv6_type", OPENFLOW_BASIC, 29, 1, 8, false, Icmpv6, Decimal),
    /// ICMPv6 code.
    Icmpv6Code = ("icmpv6_code", OPENFLOW_BASIC, 30, 1, 8, false, Icmpv6, Decimal),
    /// Target address of an IPv6 neighbour discovery message.
    Ipv6NdTarget = ("ipv6_nd_target", OPENFLOW_BASIC, 31, 16, 128, false, NdTarget, Ipv6),
    /// Source link-layer address option of a neighbour solicitation.
    Ipv6NdSll = ("ipv6_nd_sll", OPENFLOW_BASIC, 32, 6, 48, false, NdSll, Mac),
    /// Target link-layer address option of a neighbour advertisement.
    Ipv6NdTll = ("ipv6_nd_tll", OPENFLOW_BASIC, 33, 6, 48, false, NdTll, Mac),
    /// Label of the outermost MPLS shim (20 bits).
    MplsLabel = ("mpls_label", OPENFLOW_BASIC, 34, 4, 20, false, Mpls, Decimal),
    /// Traffic class of the outermost MPLS shim (3 bits).
    MplsTc = ("mpls_tc", OPENFLOW_BASIC, 35, 1, 3, false, Mpls, Decimal),
    /// Bottom-of-stack bit of the outermost MPLS shim.
    MplsBos = ("mpls_bos", OPENFLOW_BASIC, 36, 1, 1, false, Mpls, Decimal),
    /// PBB I-SID (24 bits).
    PbbIsid = ("pbb_isid", OPENFLOW_BASIC, 37, 3, 24, true, Pbb, Decimal),
    /// Tunnel id (VNI, GRE key); OVS's `tun_id`.
    TunnelId = ("tunnel_id", OPENFLOW_BASIC, 38, 8, 64, true, None, Hex),
    /// IPv6 extension header pseudo-field (9 flag bits).
    Ipv6Exthdr = ("ipv6_exthdr", OPENFLOW_BASIC, 39, 2, 9, true, Ipv6, Hex),
    /// PBB UCA header bit (OpenFlow 1.4).
    PbbUca = ("pbb_uca", OPENFLOW_BASIC, 41, 1, 1, false, Pbb, Decimal),
    /// Nicira register 0.
    Reg0 = ("reg0", NXM_1, 0, 4, 32, true, None, Hex),
    /// Nicira register 1.
    Reg1 = ("reg1", NXM_1, 1, 4, 32, true, None, Hex),
    /// Nicira register 2.
    Reg2 = ("reg2", NXM_1, 2, 4, 32, true, None, Hex),
    /// Nicira register 3.
    Reg3 = ("reg3", NXM_1, 3, 4, 32, true, None, Hex),
    /// Nicira register 4.
    Reg4 = ("reg4", NXM_1, 4, 4, 32, true, None, Hex),
    /// Nicira register 5.
    Reg5 = ("reg5", NXM_1, 5, 4, 32, true, None, Hex),
    /// Nicira register 6.
    Reg6 = ("reg6", NXM_1, 6, 4, 32, true, None, Hex),
    /// Nicira register 7.
    Reg7 = ("reg7", NXM_1, 7, 4, 32, true, None, Hex),
    /// Nicira register 8.
    Reg8 = ("reg8", NXM_1, 8, 4, 32, true, None, Hex),
    /// Nicira register 9.
    Reg9 = ("reg9", NXM_1, 9, 4, 32, true, None, Hex),
    /// Nicira register 10.
    Reg10 = ("reg10", NXM_1, 10, 4, 32, true, None, Hex),
    /// Nicira register 11.
    Reg11 = ("reg11", NXM_1, 11, 4, 32, true, None, Hex),
    /// Nicira register 12.
    Reg12 = ("reg12", NXM_1, 12, 4, 32, true, None, Hex),
    /// Nicira register 13.
    Reg13 = ("reg13", NXM_1, 13, 4, 32, true, None, Hex),
    /// Nicira register 14.
    Reg14 = ("reg14", NXM_1, 14, 4, 32, true, None, Hex),
    /// Nicira register 15.
    Reg15 = ("reg15", NXM_1, 15, 4, 32, true, None, Hex),
    /// Outer IPv4 source of a tunnelled packet (OVS's `tun_src`).
    TunIpv4Src = ("tun_ipv4_src", NXM_1, 31, 4, 32, true, None, Ipv4),
    /// Outer IPv4 destination of a tunnelled packet (OVS's `tun_dst`).
    TunIpv4Dst = ("tun_ipv4_dst", NXM_1, 32, 4, 32, true, None, Ipv4),
    /// Packet mark (Linux skb mark).
    PktMark = ("pkt_mark", NXM_1, 33, 4, 32, true, None, Hex),
    /// Conjunction id set by `conjunction` actions.
    ConjId = ("conj_id", NXM_1, 37, 4, 32, false, None, Decimal),
    /// Connection-tracking state ([`CtState`] bits).
    CtState = ("ct_state", NXM_1, 105, 4, 32, true, None, CtState),
    /// Connection-tracking zone.
    CtZone = ("ct_zone", NXM_1, 106, 2, 16, false, None, Hex),
    /// Connection-tracking mark.
    CtMark = ("ct_mark", NXM_1, 107, 4, 32, true, None, Hex),
    /// Connection-tracking label.
    CtLabel = ("ct_label", NXM_1, 108, 16, 128, true, None, Hex),
    /// IP protocol of the connection's original direction.
    CtNwProto = ("ct_nw_proto", NXM_1, 119, 1, 8, false, Ct, Decimal),
    /// IPv4 source of the connection's original direction.
    CtNwSrc = ("ct_nw_src", NXM_1, 120, 4, 32, true, Ct, Ipv4),
    /// IPv4 destination of the connection's original direction.
    CtNwDst = ("ct_nw_dst", NXM_1, 121, 4, 32, true, Ct, Ipv4),
    /// IPv6 source of the connection's original direction.
    CtIpv6Src = ("ct_ipv6_src", NXM_1, 122, 16, 128, true, Ct, Ipv6),
    /// IPv6 destination of the connection's original direction.
    CtIpv6Dst = ("ct_ipv6_dst", NXM_1, 123, 16, 128, true, Ct, Ipv6),
    /// Transport source port of the connection's original direction.
    CtTpSrc = ("ct_tp_src", NXM_1, 124, 2, 16, true, Ct, Decimal),
    /// Transport destination port of the connection's original direction.
    CtTpDst = ("ct_tp_dst", NXM_1, 125, 2, 16, true, Ct, Decimal),
}

impl Field {
    /// A dense index (`0..Field::ALL.len()`) for tables keyed by field.
    pub fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn info(self) -> &'static FieldInfo {
        // The enum and the table come from the same macro invocation, so every
        // discriminant indexes the table.
        &FIELD_INFO[self as usize]
    }

    /// The Ryu / `ovs-ofctl` name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The OXM class the field is encoded in.
    pub fn class(self) -> OxmClass {
        self.info().class
    }

    /// The 7-bit field code within its class.
    pub fn code(self) -> u8 {
        self.info().code
    }

    /// Bytes of the value on the wire (a mask has as many).
    pub fn wire_len(self) -> usize {
        usize::from(self.info().len)
    }

    /// Significant bits of the value (13 for `vlan_vid`, 20 for `mpls_label`).
    pub fn bits(self) -> u32 {
        u32::from(self.info().bits)
    }

    /// Whether a match may carry a mask for this field.
    pub fn is_maskable(self) -> bool {
        self.info().maskable
    }

    /// All significant bits set: the implicit mask of an exact match.
    pub fn full_mask(self) -> u128 {
        match self.bits() {
            128 => u128::MAX,
            b => (1u128 << b) - 1,
        }
    }

    /// The header of a TLV for this field with or without a mask.
    pub fn header(self, hasmask: bool) -> OxmHeader {
        let len = self.info().len;
        let length = if hasmask { len * 2 } else { len };
        OxmHeader::new(self.class(), self.code(), hasmask, length)
    }

    /// Register `n` (0..=15).
    pub fn reg(n: u8) -> Option<Field> {
        Field::from_code(OxmClass::NXM_1, n).filter(|_| n < 16)
    }

    /// What this field needs earlier in a match, in words.
    pub fn prerequisite(self) -> Option<&'static str> {
        match self.info().prereq {
            Prereq::None => None,
            p => Some(p.describe()),
        }
    }

    /// Writes bits of this field in its text form (address, port name, hex).
    pub(crate) fn fmt_bits(self, bits: u128, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info().format {
            Format::Decimal => write!(f, "{bits}"),
            Format::Hex => write!(f, "0x{bits:x}"),
            Format::Mac => write!(f, "{}", MacAddr::from_bits(bits as u64)),
            Format::Ipv4 => write!(f, "{}", Ipv4Addr::from(bits as u32)),
            Format::Ipv6 => write!(f, "{}", Ipv6Addr::from(bits)),
            Format::Port => write!(f, "{}", PortNo(bits as u32)),
            Format::CtState => write!(f, "{}", CtState(bits as u32)),
        }
    }

    /// Writes a value and optional mask as `ovs-ofctl` would after `name=`.
    pub(crate) fn fmt_value(
        self,
        value: u128,
        mask: Option<u128>,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        match (self.info().format, mask) {
            (Format::CtState, Some(mask)) => CtState::fmt_masked(value as u32, mask as u32, f),
            (_, None) => self.fmt_bits(value, f),
            (Format::Decimal | Format::Port, Some(mask)) => {
                self.fmt_bits(value, f)?;
                write!(f, "/0x{mask:x}")
            }
            (_, Some(mask)) => {
                self.fmt_bits(value, f)?;
                f.write_str("/")?;
                self.fmt_bits(mask, f)
            }
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_and_the_enum_agree() {
        assert_eq!(Field::ALL.len(), FIELD_INFO.len());
        for (n, &field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.index(), n);
            assert_eq!(Field::from_code(field.class(), field.code()), Some(field));
            assert_eq!(Field::from_name(field.name()), Some(field));
            assert!(field.bits() <= 8 * field.wire_len() as u32, "{field}");
            let h = field.header(true);
            assert_eq!(h.known_field(), Some(field));
            assert!(h.hasmask());
            assert_eq!(usize::from(h.length()), 2 * field.wire_len());
        }
    }

    #[test]
    fn headers_match_the_specification() {
        assert_eq!(Field::InPort.header(false), OxmHeader(0x8000_0004));
        assert_eq!(Field::EthDst.header(true), OxmHeader(0x8000_070c));
        assert_eq!(Field::Reg0.header(false), OxmHeader(0x0001_0004));
        assert_eq!(Field::CtState.header(true), OxmHeader(0x0001_d308));
        assert_eq!(Field::CtMark.header(false), OxmHeader(0x0001_d604));
        assert_eq!(Field::CtLabel.header(true), OxmHeader(0x0001_d920));
        assert_eq!(Field::PktMark.header(false), OxmHeader(0x0001_4204));
        assert_eq!(Field::ConjId.header(false), OxmHeader(0x0001_4a04));
        assert_eq!(Field::reg(15), Some(Field::Reg15));
        assert_eq!(Field::reg(16), None);
    }

    #[test]
    fn ct_state_prints_like_ovs() {
        struct Masked(u32, u32);
        impl fmt::Display for Masked {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                CtState::fmt_masked(self.0, self.1, f)
            }
        }
        assert_eq!(Masked(0x21, 0x21).to_string(), "+new+trk");
        assert_eq!(Masked(0x22, 0x32).to_string(), "+est-inv+trk");
        assert_eq!(Masked(0, 0x20).to_string(), "-trk");
        assert_eq!(Masked(0x100, 0x100).to_string(), "+0x100");
        assert_eq!(Masked(0, 0).to_string(), "0/0");
        assert_eq!((CtState::TRACKED | CtState::NEW).to_string(), "new|trk");
        assert_eq!(CtState::empty().to_string(), "0");
    }
}
