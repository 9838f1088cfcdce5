//! Flow matches: `ofp_match` with its OXM TLVs, OpenFlow-basic fields and the
//! Nicira/OVS extensions a stateful policy needs.
//!
//! A [`Match`] is an ordered list of [`Oxm`] TLVs, kept in the order they were
//! decoded so a match re-encodes byte for byte. Known fields decode into a
//! [`MatchField`] (value and optional mask as right-aligned bits, cheap to
//! evaluate against a packet); anything else stays an opaque TLV.
//!
//! # Validity
//!
//! OpenFlow requires that a field appear at most once, that masks appear only
//! on maskable fields with no value bit outside the mask, and that each field's
//! prerequisites appear before it (OF1.3.5 §7.2.3.8). A match built with the
//! typed API is checked when it is encoded ([`Match::encode`] fails with an
//! [`EncodeError`]), so the controller never sends a match that breaks them.
//! A match decoded from the wire remembers that it was decoded and is
//! re-encoded exactly as received, even if the peer broke those rules: a codec
//! that refused to echo back what a switch reported (flow stats, packet-ins)
//! would make such flows impossible to delete. Editing a decoded match makes it
//! a built match again, checked as a whole. [`Match::validate`] runs the checks
//! on demand either way.
//!
//! # Example
//!
//! ```
//! use std::net::Ipv4Addr;
//! use augur_openflow::{CtState, Field, Match};
//!
//! let m = Match::new()
//!     .in_port(3)
//!     .eth_type(0x0800)
//!     .ipv4_dst_masked(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 0))
//!     .ip_proto(6)
//!     .tcp_dst(22)
//!     .ct_state(CtState::TRACKED | CtState::NEW, CtState::TRACKED | CtState::NEW);
//! assert_eq!(m.get(Field::TcpDst).map(|f| f.value), Some(22));
//! assert_eq!(
//!     m.to_string(),
//!     "in_port=3,eth_type=0x800,ipv4_dst=10.0.0.0/255.255.255.0,ip_proto=6,tcp_dst=22,ct_state=+new+trk"
//! );
//! let bytes = m.to_bytes()?;
//! assert_eq!(Match::parse(&bytes)?, m);
//!
//! // The prerequisite ip_proto=6 is missing: refused on encode.
//! assert!(Match::new().eth_type(0x0800).tcp_dst(22).to_bytes().is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod field;
mod tlv;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::types::{ExperimenterId, MacAddr, PortNo};
use crate::wire::{self, PResult};
use field::Prereq;
pub use field::{CtState, Field, OxmClass, OxmHeader};
pub use tlv::{Bits, ExperimenterOxm, MatchField, Oxm, UnknownOxm};

/// `ofp_match.type` of an OXM match, the only kind OpenFlow 1.3+ defines.
pub const OFPMT_OXM: u16 = 1;

/// Size of the `ofp_match` header (type and length).
const MATCH_HEADER_LEN: usize = 4;

/// An `ofp_match`: an ordered list of OXM TLVs.
///
/// Equality and hashing look at the TLVs only, not at whether the match was
/// decoded or built.
#[derive(Debug, Clone, Default)]
pub struct Match {
    oxms: Vec<Oxm>,
    /// Decoded and not modified since: re-encoded as is, without checks.
    from_wire: bool,
}

impl PartialEq for Match {
    fn eq(&self, other: &Match) -> bool {
        self.oxms == other.oxms
    }
}

impl Eq for Match {}

impl std::hash::Hash for Match {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.oxms.hash(state);
    }
}

impl Serialize for Match {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.oxms)
    }
}

impl Match {
    /// The empty match (matches every packet).
    pub fn new() -> Match {
        Match::default()
    }

    /// The TLVs in order.
    pub fn oxms(&self) -> &[Oxm] {
        &self.oxms
    }

    /// The known fields in order (opaque TLVs skipped).
    pub fn fields(&self) -> impl Iterator<Item = &MatchField> {
        self.oxms.iter().filter_map(Oxm::known)
    }

    /// Whether the match has no TLV at all.
    pub fn is_empty(&self) -> bool {
        self.oxms.is_empty()
    }

    /// Number of TLVs.
    pub fn len(&self) -> usize {
        self.oxms.len()
    }

    /// The match on `field`, if there is one.
    pub fn get(&self, field: Field) -> Option<&MatchField> {
        self.fields().find(|m| m.field == field)
    }

    /// Whether `field` is matched.
    pub fn contains(&self, field: Field) -> bool {
        self.get(field).is_some()
    }

    /// Whether this match came off the wire unchanged (and so is re-encoded
    /// as received, without validity checks).
    pub fn is_from_wire(&self) -> bool {
        self.from_wire
    }

    /// Appends a TLV as it is, even if its field is already present (which
    /// [`Match::encode`] will then refuse).
    pub fn push(&mut self, oxm: impl Into<Oxm>) {
        self.from_wire = false;
        self.oxms.push(oxm.into());
    }

    /// Sets a field's match: replaces an existing one in place, or appends.
    pub fn set(&mut self, m: MatchField) {
        self.from_wire = false;
        match self
            .oxms
            .iter_mut()
            .find(|o| o.known().is_some_and(|k| k.field == m.field))
        {
            Some(slot) => *slot = Oxm::Field(m),
            None => self.oxms.push(Oxm::Field(m)),
        }
    }

    /// Removes the match on `field`, returning it.
    pub fn remove(&mut self, field: Field) -> Option<MatchField> {
        let at = self
            .oxms
            .iter()
            .position(|o| o.known().is_some_and(|k| k.field == field))?;
        self.from_wire = false;
        match self.oxms.remove(at) {
            Oxm::Field(m) => Some(m),
            _ => None,
        }
    }

    /// Builder: matches `field` exactly against `value`.
    pub fn exact(mut self, field: Field, value: impl Into<Bits>) -> Match {
        self.set(MatchField::exact(field, value));
        self
    }

    /// Builder: matches `field` against `value` under `mask`.
    pub fn masked(mut self, field: Field, value: impl Into<Bits>, mask: impl Into<Bits>) -> Match {
        self.set(MatchField::masked(field, value, mask));
        self
    }

    /// Builder: matches the ingress port.
    pub fn in_port(self, port: impl Into<PortNo>) -> Match {
        self.exact(Field::InPort, port.into())
    }

    /// Builder: matches the physical ingress port (needs `in_port` first).
    pub fn in_phy_port(self, port: impl Into<PortNo>) -> Match {
        self.exact(Field::InPhyPort, port.into())
    }

    /// Builder: matches connection-tracking state bits: those set in `mask`
    /// must equal those in `value` (`+trk+est` is `TRACKED | ESTABLISHED`
    /// under the same mask; `-inv` is `INVALID` in the mask only).
    pub fn ct_state(self, value: CtState, mask: CtState) -> Match {
        self.masked(Field::CtState, value, mask)
    }

    /// Checks the rules of OpenFlow 1.3.5 §7.2.3: each field at most once,
    /// masks only where allowed and with no value bit outside them, values
    /// within the field's width, and prerequisites before the fields that need
    /// them.
    pub fn validate(&self) -> Result<(), EncodeError> {
        let mut seen = [false; Field::ALL.len()];
        let mut seen_opaque: Vec<OpaqueKey> = Vec::new();
        let mut ctx = PrereqContext::default();
        for oxm in &self.oxms {
            let m = match oxm {
                Oxm::Field(m) => m,
                Oxm::Experimenter(e) => {
                    check_unique_opaque(
                        &mut seen_opaque,
                        OpaqueKey::Experimenter(e.experimenter, e.field),
                    )?;
                    continue;
                }
                Oxm::Unknown(u) => {
                    check_unique_opaque(&mut seen_opaque, OpaqueKey::Class(u.class, u.field))?;
                    continue;
                }
            };
            let field = m.field;
            let name = field.name();
            if let Some(slot) = seen.get_mut(field.index()) {
                if *slot {
                    return Err(EncodeError::DuplicateField(name));
                }
                *slot = true;
            }
            if let Some(mask) = m.mask {
                if !field.is_maskable() || m.value & !mask != 0 {
                    return Err(EncodeError::BadMask(name));
                }
            }
            if (m.value | m.mask.unwrap_or(0)) & !field.full_mask() != 0 {
                return Err(EncodeError::OutOfRange(name));
            }
            let prereq = field.info().prereq;
            if !ctx.satisfies(prereq) {
                return Err(EncodeError::MissingPrerequisite {
                    field: name,
                    requires: prereq.describe(),
                });
            }
            ctx.learn(m);
        }
        Ok(())
    }

    /// Size of the encoded `ofp_match` without its padding (its length field).
    pub fn unpadded_len(&self) -> usize {
        MATCH_HEADER_LEN + self.oxms.iter().map(Oxm::wire_len).sum::<usize>()
    }

    /// Size of the encoded `ofp_match` with its padding to 8 bytes.
    pub fn wire_len(&self) -> usize {
        self.unpadded_len().next_multiple_of(8)
    }

    /// Decodes an `ofp_match` including its padding to 8 bytes.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Match> {
        let (after_type, match_type) = wire::u16(i)?;
        let (_, length) = wire::u16(after_type)?;
        if match_type != OFPMT_OXM {
            return wire::fail(
                i,
                DecodeErrorKind::Invalid("match type (only OXM is defined)"),
            );
        }
        let length = usize::from(length);
        if length < MATCH_HEADER_LEN {
            return wire::fail(
                after_type,
                DecodeErrorKind::LengthTooShort {
                    what: "match",
                    length,
                    min: MATCH_HEADER_LEN,
                },
            );
        }
        let padded = length.next_multiple_of(8);
        if i.len() < padded {
            return wire::fail(&i[i.len()..], DecodeErrorKind::Truncated);
        }
        let (whole, rest) = i.split_at(padded);
        let fields = &whole[MATCH_HEADER_LEN..length];
        let mut oxms = Vec::with_capacity(count_oxms(fields));
        let (_, ()) = wire::many_into(fields, &mut oxms, Oxm::decode)?;
        Ok((
            rest,
            Match {
                oxms,
                from_wire: true,
            },
        ))
    }

    /// Decodes a buffer holding exactly one `ofp_match` with its padding.
    pub fn parse(bytes: &[u8]) -> Result<Match, DecodeError> {
        wire::finish(bytes, {
            match Match::decode(bytes) {
                Ok((rest, m)) => wire::all_consumed(rest, "match").map(|(r, ())| (r, m)),
                Err(e) => Err(e),
            }
        })
    }

    /// Encodes the match with its padding; checks a built match first (see
    /// the module documentation). On error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if !self.from_wire {
            self.validate()?;
        }
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        out.put_u16(OFPMT_OXM);
        let length_at = wire::reserve_u16(out);
        for oxm in &self.oxms {
            oxm.encode(out)?;
        }
        wire::patch_len_u16(out, length_at, start, "match")?;
        wire::pad_to_8(out, start);
        Ok(())
    }

    /// The encoded match with its padding.
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(self.wire_len());
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

impl FromIterator<Oxm> for Match {
    fn from_iter<T: IntoIterator<Item = Oxm>>(iter: T) -> Match {
        Match {
            oxms: iter.into_iter().collect(),
            from_wire: false,
        }
    }
}

impl From<Vec<Oxm>> for Match {
    fn from(oxms: Vec<Oxm>) -> Match {
        Match {
            oxms,
            from_wire: false,
        }
    }
}

impl<'a> IntoIterator for &'a Match {
    type Item = &'a Oxm;
    type IntoIter = std::slice::Iter<'a, Oxm>;
    fn into_iter(self) -> Self::IntoIter {
        self.oxms.iter()
    }
}

/// How many OXM TLVs `fields` holds, counted by their length bytes so that
/// decoding allocates once (and never for more TLVs than bytes present).
fn count_oxms(mut fields: &[u8]) -> usize {
    let mut n = 0;
    while let Some(&length) = fields.get(3) {
        match fields.get(4 + usize::from(length)..) {
            Some(rest) => {
                n += 1;
                fields = rest;
            }
            None => break,
        }
    }
    n
}

impl fmt::Display for Match {
    /// `in_port=6,eth_type=0x800,ipv4_dst=10.0.0.0/255.255.255.0,ct_state=+new+trk`;
    /// the empty match prints as nothing, as in `ovs-ofctl`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, oxm) in self.oxms.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            fmt::Display::fmt(oxm, f)?;
        }
        Ok(())
    }
}

/// What makes an opaque TLV the same field as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpaqueKey {
    Class(OxmClass, u8),
    Experimenter(ExperimenterId, u8),
}

fn check_unique_opaque(seen: &mut Vec<OpaqueKey>, key: OpaqueKey) -> Result<(), EncodeError> {
    if seen.contains(&key) {
        return Err(EncodeError::DuplicateField("opaque OXM"));
    }
    seen.push(key);
    Ok(())
}

/// What the fields seen so far establish about the packet.
#[derive(Debug, Default)]
struct PrereqContext {
    in_port: bool,
    vlan_present: bool,
    eth_type: Option<u16>,
    ip_proto: Option<u8>,
    icmpv6_type: Option<u8>,
    ct_valid: bool,
}

impl PrereqContext {
    fn satisfies(&self, prereq: Prereq) -> bool {
        let eth = self.eth_type;
        let is_ip = matches!(eth, Some(0x0800 | 0x86dd));
        match prereq {
            Prereq::None => true,
            Prereq::InPort => self.in_port,
            Prereq::VlanPresent => self.vlan_present,
            Prereq::Ip => is_ip,
            Prereq::Ipv4 => eth == Some(0x0800),
            Prereq::Ipv6 => eth == Some(0x86dd),
            Prereq::Arp => eth == Some(0x0806),
            Prereq::Mpls => matches!(eth, Some(0x8847 | 0x8848)),
            Prereq::Pbb => eth == Some(0x88e7),
            Prereq::Tcp => is_ip && self.ip_proto == Some(6),
            Prereq::Udp => is_ip && self.ip_proto == Some(17),
            Prereq::Sctp => is_ip && self.ip_proto == Some(132),
            Prereq::Icmpv4 => eth == Some(0x0800) && self.ip_proto == Some(1),
            Prereq::Icmpv6 => eth == Some(0x86dd) && self.ip_proto == Some(58),
            Prereq::NdTarget => matches!(self.icmpv6_type, Some(135 | 136)),
            Prereq::NdSll => self.icmpv6_type == Some(135),
            Prereq::NdTll => self.icmpv6_type == Some(136),
            Prereq::Ct => self.ct_valid,
        }
    }

    /// Records what a field (already checked) establishes. Only exact matches
    /// establish a protocol; a masked `vlan_vid` establishes a tag if it
    /// requires the present bit.
    fn learn(&mut self, m: &MatchField) {
        const OFPVID_PRESENT: u128 = 0x1000;
        let exact = m.mask.is_none();
        match m.field {
            Field::InPort => self.in_port = true,
            Field::VlanVid => {
                self.vlan_present =
                    m.value & OFPVID_PRESENT != 0 && m.effective_mask() & OFPVID_PRESENT != 0;
            }
            Field::EthType if exact => self.eth_type = u16::try_from(m.value).ok(),
            Field::IpProto if exact => self.ip_proto = u8::try_from(m.value).ok(),
            Field::Icmpv6Type if exact => self.icmpv6_type = u8::try_from(m.value).ok(),
            Field::CtState => {
                // OVS's is_ct_valid(): some bit implying a real connection is
                // required set, or the packet is tracked and required valid.
                let value = m.value & m.effective_mask();
                let mask = m.effective_mask();
                let connection = CtState::NEW.0
                    | CtState::ESTABLISHED.0
                    | CtState::RELATED.0
                    | CtState::REPLY.0
                    | CtState::SNAT.0
                    | CtState::DNAT.0;
                let trk = u128::from(CtState::TRACKED.0);
                let inv = u128::from(CtState::INVALID.0);
                self.ct_valid = value & u128::from(connection) != 0
                    || (value & trk != 0 && mask & inv != 0 && value & inv == 0);
            }
            _ => {}
        }
    }
}

macro_rules! typed_builders {
    ($( $field:ident: $ty:ty => $name:ident $(, $masked:ident)?; )*) => {
        /// Typed builders, one per field: each sets (or replaces) that field.
        impl Match {$(
            #[doc = concat!("Builder: matches `", stringify!($name), "` exactly.")]
            pub fn $name(self, value: $ty) -> Match {
                self.exact(Field::$field, value)
            }
            $(
            #[doc = concat!("Builder: matches `", stringify!($name), "` under a mask.")]
            pub fn $masked(self, value: $ty, mask: $ty) -> Match {
                self.masked(Field::$field, value, mask)
            }
            )?
        )*}
    };
}

typed_builders! {
    Metadata: u64 => metadata, metadata_masked;
    EthDst: MacAddr => eth_dst, eth_dst_masked;
    EthSrc: MacAddr => eth_src, eth_src_masked;
    EthType: u16 => eth_type;
    VlanVid: u16 => vlan_vid, vlan_vid_masked;
    VlanPcp: u8 => vlan_pcp;
    IpDscp: u8 => ip_dscp;
    IpEcn: u8 => ip_ecn;
    IpProto: u8 => ip_proto;
    Ipv4Src: Ipv4Addr => ipv4_src, ipv4_src_masked;
    Ipv4Dst: Ipv4Addr => ipv4_dst, ipv4_dst_masked;
    TcpSrc: u16 => tcp_src;
    TcpDst: u16 => tcp_dst;
    UdpSrc: u16 => udp_src;
    UdpDst: u16 => udp_dst;
    SctpSrc: u16 => sctp_src;
    SctpDst: u16 => sctp_dst;
    Icmpv4Type: u8 => icmpv4_type;
    Icmpv4Code: u8 => icmpv4_code;
    ArpOp: u16 => arp_op;
    ArpSpa: Ipv4Addr => arp_spa, arp_spa_masked;
    ArpTpa: Ipv4Addr => arp_tpa, arp_tpa_masked;
    ArpSha: MacAddr => arp_sha, arp_sha_masked;
    ArpTha: MacAddr => arp_tha, arp_tha_masked;
    Ipv6Src: Ipv6Addr => ipv6_src, ipv6_src_masked;
    Ipv6Dst: Ipv6Addr => ipv6_dst, ipv6_dst_masked;
    Ipv6Flabel: u32 => ipv6_flabel, ipv6_flabel_masked;
    Icmpv6Type: u8 => icmpv6_type;
    Icmpv6Code: u8 => icmpv6_code;
    Ipv6NdTarget: Ipv6Addr => ipv6_nd_target;
    Ipv6NdSll: MacAddr => ipv6_nd_sll;
    Ipv6NdTll: MacAddr => ipv6_nd_tll;
    MplsLabel: u32 => mpls_label;
    MplsTc: u8 => mpls_tc;
    MplsBos: u8 => mpls_bos;
    PbbIsid: u32 => pbb_isid, pbb_isid_masked;
    TunnelId: u64 => tunnel_id, tunnel_id_masked;
    Ipv6Exthdr: u16 => ipv6_exthdr, ipv6_exthdr_masked;
    PbbUca: u8 => pbb_uca;
    TunIpv4Src: Ipv4Addr => tun_ipv4_src, tun_ipv4_src_masked;
    TunIpv4Dst: Ipv4Addr => tun_ipv4_dst, tun_ipv4_dst_masked;
    PktMark: u32 => pkt_mark, pkt_mark_masked;
    ConjId: u32 => conj_id;
    CtZone: u16 => ct_zone;
    CtMark: u32 => ct_mark, ct_mark_masked;
    CtLabel: u128 => ct_label, ct_label_masked;
    CtNwProto: u8 => ct_nw_proto;
    CtNwSrc: Ipv4Addr => ct_nw_src, ct_nw_src_masked;
    CtNwDst: Ipv4Addr => ct_nw_dst, ct_nw_dst_masked;
    CtIpv6Src: Ipv6Addr => ct_ipv6_src, ct_ipv6_src_masked;
    CtIpv6Dst: Ipv6Addr => ct_ipv6_dst, ct_ipv6_dst_masked;
    CtTpSrc: u16 => ct_tp_src, ct_tp_src_masked;
    CtTpDst: u16 => ct_tp_dst, ct_tp_dst_masked;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    /// Bytes 48.. of Ryu's `4-3-ofp_flow_mod` (in_port=6, eth_src) and its
    /// instruction, and of `ovs-ofctl-of13-action_ct` (eth_type, ct_state).
    const IN_PORT_ETH_SRC: &str = "0001001680000004000000068000080 6f20ba47df8ea0000";
    const ETH_TYPE_CT_STATE: &str = "000100168000 0a0208000001d30800000000000000200000";

    fn unspace(s: &str) -> String {
        s.replace(' ', "")
    }

    #[test]
    fn byte_tables_decode_and_reencode() {
        let cases: Vec<(String, Match)> = vec![
            (
                unspace(IN_PORT_ETH_SRC),
                Match::new().in_port(6u32).eth_src(mac("f2:0b:a4:7d:f8:ea")),
            ),
            (
                unspace(ETH_TYPE_CT_STATE),
                Match::new()
                    .eth_type(0x0800)
                    .ct_state(CtState::empty(), CtState::TRACKED),
            ),
            ("0001000400000000".to_string(), Match::new()),
            (
                // reg0=0x1234, reg5=0xabcd/0xffff (ovs-ofctl match_load_nx_register).
                "0001001800010004000012340001 0b080000abcd0000ffff".replace(' ', ""),
                Match::new().exact(Field::Reg0, 0x1234u32).masked(
                    Field::Reg5,
                    0xabcdu32,
                    0xffffu32,
                ),
            ),
        ];
        for (hex_str, built) in cases {
            let bytes = hex::decode(&hex_str).unwrap();
            let decoded = Match::parse(&bytes).unwrap();
            assert_eq!(decoded, built, "{hex_str}");
            assert!(decoded.is_from_wire());
            assert_eq!(hex::encode(decoded.to_bytes().unwrap()), hex_str);
            assert_eq!(hex::encode(built.to_bytes().unwrap()), hex_str);
            assert_eq!(built.wire_len(), bytes.len());
        }
    }

    #[test]
    fn display_is_ovs_like() {
        let m = Match::new()
            .in_port(6u32)
            .eth_type(0x0800)
            .ipv4_dst_masked(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 0))
            .ct_state(
                CtState::TRACKED | CtState::NEW,
                CtState::TRACKED | CtState::NEW,
            );
        assert_eq!(
            m.to_string(),
            "in_port=6,eth_type=0x800,ipv4_dst=10.0.0.0/255.255.255.0,ct_state=+new+trk"
        );
        let m = Match::new()
            .in_port(PortNo::LOCAL)
            .masked(Field::Reg5, 0xabcdu32, 0xffffu32)
            .ct_zone(5)
            .ct_mark(0x1)
            .eth_dst(mac("f2:0b:a4:7d:f8:ea"));
        assert_eq!(
            m.to_string(),
            "in_port=LOCAL,reg5=0xabcd/0xffff,ct_zone=0x5,ct_mark=0x1,eth_dst=f2:0b:a4:7d:f8:ea"
        );
        assert_eq!(Match::new().to_string(), "");
    }

    #[test]
    fn typed_builder_reads_back() {
        let m = Match::new()
            .in_port(3u32)
            .eth_src(mac("00:00:00:00:00:01"))
            .eth_type(0x0800)
            .ipv4_dst_masked(Ipv4Addr::new(10, 1, 0, 0), Ipv4Addr::new(255, 255, 0, 0))
            .ip_proto(6)
            .tcp_dst(22)
            .ct_state(
                CtState::TRACKED | CtState::NEW,
                CtState::TRACKED | CtState::NEW,
            );
        m.validate().unwrap();
        assert_eq!(m.get(Field::TcpDst).map(|f| f.value), Some(22));
        assert_eq!(m.get(Field::InPort).map(MatchField::port), Some(PortNo(3)));
        let dst = m.get(Field::Ipv4Dst).unwrap();
        assert_eq!(dst.ipv4(), Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(dst.mask_ipv4(), Some(Ipv4Addr::new(255, 255, 0, 0)));
        assert!(
            m.get(Field::CtState)
                .unwrap()
                .ct_state()
                .contains(CtState::NEW)
        );
        assert_eq!(m.get(Field::UdpDst), None);
        // Setting a field again replaces it in place.
        let m = m.tcp_dst(80);
        assert_eq!(m.len(), 7);
        assert_eq!(m.get(Field::TcpDst).map(|f| f.value), Some(80));
        let round = Match::parse(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(round, m);
    }

    #[test]
    fn built_matches_are_checked() {
        let missing = |m: Match, field: &str| match m.to_bytes() {
            Err(EncodeError::MissingPrerequisite { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected a missing prerequisite for {field}, got {other:?}"),
        };
        missing(Match::new().tcp_dst(22), "tcp_dst");
        missing(Match::new().eth_type(0x0800).tcp_dst(22), "tcp_dst");
        missing(Match::new().eth_type(0x0806).ip_proto(6), "ip_proto");
        missing(
            Match::new().eth_type(0x0800).ip_proto(17).tcp_dst(22),
            "tcp_dst",
        );
        missing(Match::new().ip_proto(6).eth_type(0x0800), "ip_proto");
        missing(
            Match::new().eth_type(0x0800).ipv6_src(Ipv6Addr::LOCALHOST),
            "ipv6_src",
        );
        missing(
            Match::new().eth_type(0x86dd).ip_proto(1).icmpv4_type(8),
            "icmpv4_type",
        );
        missing(
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .icmpv6_type(128)
                .ipv6_nd_target(Ipv6Addr::LOCALHOST),
            "ipv6_nd_target",
        );
        missing(
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .icmpv6_type(135)
                .ipv6_nd_tll(MacAddr::ZERO),
            "ipv6_nd_tll",
        );
        missing(Match::new().vlan_pcp(3), "vlan_pcp");
        missing(Match::new().vlan_vid(0).vlan_pcp(3), "vlan_pcp");
        missing(Match::new().in_phy_port(1u32), "in_phy_port");
        missing(Match::new().arp_op(1), "arp_op");
        missing(Match::new().eth_type(0x0800).mpls_label(5), "mpls_label");
        missing(Match::new().pbb_isid(5), "pbb_isid");
        missing(Match::new().ct_nw_src(Ipv4Addr::LOCALHOST), "ct_nw_src");
        missing(
            Match::new()
                .ct_state(CtState::TRACKED, CtState::TRACKED)
                .ct_nw_proto(6),
            "ct_nw_proto",
        );

        let ok = [
            Match::new().vlan_vid(0x1005).vlan_pcp(3),
            Match::new().vlan_vid_masked(0x1000, 0x1000).vlan_pcp(3),
            Match::new().in_port(1u32).in_phy_port(1u32),
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .icmpv6_type(135)
                .ipv6_nd_target(Ipv6Addr::LOCALHOST)
                .ipv6_nd_sll(MacAddr::ZERO),
            Match::new()
                .eth_type(0x8848)
                .mpls_label(5)
                .mpls_tc(1)
                .mpls_bos(1),
            Match::new().eth_type(0x88e7).pbb_isid(5).pbb_uca(1),
            Match::new().eth_type(0x86dd).ip_proto(132).sctp_dst(9),
            Match::new()
                .ct_state(
                    CtState::TRACKED | CtState::ESTABLISHED,
                    CtState::TRACKED | CtState::ESTABLISHED,
                )
                .ct_nw_proto(6),
            Match::new()
                .ct_state(CtState::TRACKED, CtState::TRACKED | CtState::INVALID)
                .ct_tp_dst(22),
            Match::new()
                .ct_label_masked(1 << 127, 1 << 127)
                .ct_mark(7)
                .pkt_mark(1)
                .conj_id(3),
        ];
        for m in ok {
            m.validate().unwrap_or_else(|e| panic!("{m}: {e}"));
        }

        assert_eq!(
            Match::new()
                .eth_type(0x800)
                .eth_type(0x86dd)
                .to_bytes()
                .map(|_| ()),
            Ok(()),
            "a builder sets, it does not duplicate"
        );
        let mut dup = Match::new().in_port(1u32);
        dup.push(MatchField::exact(Field::InPort, 2u32));
        assert_eq!(dup.to_bytes(), Err(EncodeError::DuplicateField("in_port")));
        assert_eq!(
            Match::new().masked(Field::InPort, 1u32, 1u32).to_bytes(),
            Err(EncodeError::BadMask("in_port"))
        );
        assert_eq!(
            Match::new().pkt_mark_masked(0x11, 0x01).to_bytes(),
            Err(EncodeError::BadMask("pkt_mark"))
        );
        assert_eq!(
            Match::new().vlan_vid(0x2000).to_bytes(),
            Err(EncodeError::OutOfRange("vlan_vid"))
        );
        assert_eq!(
            Match::new().eth_type(0x0800).ip_dscp(64).to_bytes(),
            Err(EncodeError::OutOfRange("ip_dscp"))
        );
        let mut out = BytesMut::from(&b"xyz"[..]);
        assert!(Match::new().tcp_dst(1).encode(&mut out).is_err());
        assert_eq!(&out[..], b"xyz", "a failed encode appends nothing");
    }

    #[test]
    fn decoded_matches_reencode_as_received_until_edited() {
        // tcp_dst without its prerequisites, as some peers send.
        let bytes = hex::decode("0001000a80001c020016000000000000").unwrap();
        let mut m = Match::parse(&bytes).unwrap();
        assert!(m.validate().is_err());
        assert_eq!(&m.to_bytes().unwrap()[..], &bytes[..]);
        m.set(MatchField::exact(Field::TcpDst, 23u16));
        assert!(!m.is_from_wire());
        assert!(matches!(
            m.to_bytes(),
            Err(EncodeError::MissingPrerequisite {
                field: "tcp_dst",
                ..
            })
        ));
    }

    #[test]
    fn malformed_matches_are_located_errors() {
        let err = |h: &str| Match::parse(&hex::decode(h).unwrap()).unwrap_err();
        // Not OXM.
        let e = err("0000000400000000");
        assert_eq!(
            (e.offset, e.kind),
            (
                0,
                DecodeErrorKind::Invalid("match type (only OXM is defined)")
            )
        );
        // Length below the header.
        let e = err("0001000300000000");
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort {
                length: 3,
                min: 4,
                ..
            }
        ));
        // Padding missing.
        let e = err("0001000a80001c020016");
        assert_eq!((e.offset, e.kind), (10, DecodeErrorKind::Truncated));
        // A TLV running past the match length into the padding.
        let e = err("0001000880001c0200160000");
        assert_eq!((e.offset, e.kind), (7, DecodeErrorKind::Truncated));
        // Trailing bytes after the padded match.
        let e = err("000100040000000000");
        assert_eq!(e.kind, DecodeErrorKind::TrailingBytes("match"));
        // Too short for the header at all.
        assert_eq!(err("0001").kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn padding_content_is_ignored() {
        let m = Match::parse(&hex::decode("0001000a80001c021234ffffffffffff").unwrap()).unwrap();
        assert_eq!(
            hex::encode(m.to_bytes().unwrap()),
            "0001000a80001c021234000000000000"
        );
    }
}
