//! One OXM TLV: a known field with its value and mask, or opaque bytes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::field::{CtState, Field, OxmClass, OxmHeader};
use crate::error::{DecodeErrorKind, EncodeError};
use crate::types::{ExperimenterId, Hex, MacAddr, PortNo};
use crate::wire::{self, PResult};

/// A known field matched against a value, optionally under a mask.
///
/// Values are bit strings right-aligned in a `u128` (every known field is at
/// most 128 bits wide), so evaluation is `packet_bits & mask == value`; the
/// typed views ([`MatchField::mac`], [`MatchField::ipv4`], ...) convert back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatchField {
    /// Which field.
    pub field: Field,
    /// The value, right-aligned.
    pub value: u128,
    /// The mask (1 bits are compared), or `None` for an exact match.
    pub mask: Option<u128>,
}

impl MatchField {
    /// An exact match of `field` against `value`.
    pub fn exact(field: Field, value: impl Into<Bits>) -> MatchField {
        MatchField {
            field,
            value: value.into().0,
            mask: None,
        }
    }

    /// A masked match of `field` against `value` under `mask`.
    pub fn masked(field: Field, value: impl Into<Bits>, mask: impl Into<Bits>) -> MatchField {
        MatchField {
            field,
            value: value.into().0,
            mask: Some(mask.into().0),
        }
    }

    /// The mask to compare under: the explicit one, or every significant bit.
    pub fn effective_mask(&self) -> u128 {
        self.mask.unwrap_or_else(|| self.field.full_mask())
    }

    /// Whether a packet whose field holds `bits` satisfies this match.
    pub fn matches(&self, bits: u128) -> bool {
        let mask = self.effective_mask();
        bits & mask == self.value & mask
    }

    /// The value as an Ethernet address (low 48 bits).
    pub fn mac(&self) -> MacAddr {
        MacAddr::from_bits(self.value as u64)
    }

    /// The value as an IPv4 address (low 32 bits).
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.value as u32)
    }

    /// The value as an IPv6 address.
    pub fn ipv6(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.value)
    }

    /// The value as an OpenFlow port number (low 32 bits).
    pub fn port(&self) -> PortNo {
        PortNo(self.value as u32)
    }

    /// The value as connection-tracking state bits (low 32 bits).
    pub fn ct_state(&self) -> CtState {
        CtState(self.value as u32)
    }

    /// The mask as an IPv4 address, if there is one.
    pub fn mask_ipv4(&self) -> Option<Ipv4Addr> {
        self.mask.map(|m| Ipv4Addr::from(m as u32))
    }

    /// The mask as an IPv6 address, if there is one.
    pub fn mask_ipv6(&self) -> Option<Ipv6Addr> {
        self.mask.map(Ipv6Addr::from)
    }

    /// The mask as an Ethernet address, if there is one.
    pub fn mask_mac(&self) -> Option<MacAddr> {
        self.mask.map(|m| MacAddr::from_bits(m as u64))
    }

    /// The TLV header this match encodes with.
    pub fn header(&self) -> OxmHeader {
        self.field.header(self.mask.is_some())
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.field)?;
        self.field.fmt_value(self.value, self.mask, f)
    }
}

/// A field value in its natural JSON shape: numbers for integers of up to 64
/// bits, strings for addresses and for wider integers (JSON numbers lose
/// precision past 2^53 in many readers, so 128-bit values are hex strings).
#[derive(Serialize)]
#[serde(untagged)]
enum JsonValue {
    Int(u64),
    Text(String),
}

impl JsonValue {
    fn of(field: Field, bits: u128) -> JsonValue {
        use super::field::Format;
        match field.info().format {
            Format::Mac => JsonValue::Text(MacAddr::from_bits(bits as u64).to_string()),
            Format::Ipv4 => JsonValue::Text(Ipv4Addr::from(bits as u32).to_string()),
            Format::Ipv6 => JsonValue::Text(Ipv6Addr::from(bits).to_string()),
            _ => match u64::try_from(bits) {
                Ok(n) => JsonValue::Int(n),
                Err(_) => JsonValue::Text(format!("0x{bits:x}")),
            },
        }
    }
}

impl Serialize for MatchField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("MatchField", 3)?;
        st.serialize_field("field", &self.field)?;
        st.serialize_field("value", &JsonValue::of(self.field, self.value))?;
        st.serialize_field("mask", &self.mask.map(|m| JsonValue::of(self.field, m)))?;
        st.end()
    }
}

/// Anything that can be a field's bits: integers, addresses, port numbers and
/// conntrack state. Used by the match builder and [`MatchField::exact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bits(pub u128);

macro_rules! bits_from_uint {
    ($($t:ty),*) => {$(
        impl From<$t> for Bits {
            fn from(v: $t) -> Bits {
                Bits(u128::from(v))
            }
        }
    )*};
}
bits_from_uint!(u8, u16, u32, u64, u128, bool);

impl From<MacAddr> for Bits {
    fn from(v: MacAddr) -> Bits {
        Bits(u128::from(v.to_bits()))
    }
}

impl From<Ipv4Addr> for Bits {
    fn from(v: Ipv4Addr) -> Bits {
        Bits(u128::from(u32::from(v)))
    }
}

impl From<Ipv6Addr> for Bits {
    fn from(v: Ipv6Addr) -> Bits {
        Bits(u128::from(v))
    }
}

impl From<PortNo> for Bits {
    fn from(v: PortNo) -> Bits {
        Bits(u128::from(v.0))
    }
}

impl From<CtState> for Bits {
    fn from(v: CtState) -> Bits {
        Bits(u128::from(v.0))
    }
}

/// An experimenter OXM (class 0xffff), kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExperimenterOxm {
    /// The 7-bit field code of the header.
    pub field: u8,
    /// The has-mask bit of the header.
    pub hasmask: bool,
    /// The experimenter id that follows the header.
    pub experimenter: ExperimenterId,
    /// Everything after the experimenter id.
    #[serde(with = "crate::wire::hex_bytes")]
    pub payload: Bytes,
}

/// An OXM of a class or field this crate does not decode, kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UnknownOxm {
    /// The class of the header.
    pub class: OxmClass,
    /// The 7-bit field code of the header.
    pub field: u8,
    /// The has-mask bit of the header.
    pub hasmask: bool,
    /// The payload (value and mask as sent).
    #[serde(with = "crate::wire::hex_bytes")]
    pub payload: Bytes,
}

/// One OXM TLV.
///
/// In JSON a known field is `{"field", "value", "mask"}`; opaque TLVs show
/// their header parts and payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Oxm {
    /// A field this crate knows.
    Field(MatchField),
    /// An experimenter OXM.
    Experimenter(ExperimenterOxm),
    /// Any other class or field.
    Unknown(UnknownOxm),
}

/// Size of an OXM header.
const OXM_HEADER_LEN: usize = 4;

impl Oxm {
    /// The known field, if this TLV is one.
    pub fn known(&self) -> Option<&MatchField> {
        match self {
            Oxm::Field(m) => Some(m),
            _ => None,
        }
    }

    /// The header this TLV encodes with (its length computed from the content).
    pub fn header(&self) -> Result<OxmHeader, EncodeError> {
        Ok(match self {
            Oxm::Field(m) => m.header(),
            Oxm::Experimenter(e) => OxmHeader::new(
                OxmClass::EXPERIMENTER,
                e.field,
                e.hasmask,
                payload_len(4 + e.payload.len())?,
            ),
            Oxm::Unknown(u) => {
                OxmHeader::new(u.class, u.field, u.hasmask, payload_len(u.payload.len())?)
            }
        })
    }

    /// Size of the TLV on the wire.
    pub fn wire_len(&self) -> usize {
        OXM_HEADER_LEN
            + match self {
                Oxm::Field(m) => m.field.wire_len() * if m.mask.is_some() { 2 } else { 1 },
                Oxm::Experimenter(e) => 4 + e.payload.len(),
                Oxm::Unknown(u) => u.payload.len(),
            }
    }

    /// Decodes one TLV.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Oxm> {
        let (rest, raw) = wire::u32(i)?;
        let header = OxmHeader(raw);
        let length = usize::from(header.length());
        let (rest, payload) = take_payload(i, rest, length)?;
        let class = header.class();
        if class == OxmClass::EXPERIMENTER {
            if length < 4 {
                return wire::fail(
                    &i[3..],
                    DecodeErrorKind::LengthTooShort {
                        what: "experimenter OXM",
                        length,
                        min: 4,
                    },
                );
            }
            let (payload, experimenter) = wire::u32(payload)?;
            return Ok((
                rest,
                Oxm::Experimenter(ExperimenterOxm {
                    field: header.field_code(),
                    hasmask: header.hasmask(),
                    experimenter: ExperimenterId(experimenter),
                    payload: Bytes::copy_from_slice(payload),
                }),
            ));
        }
        let Some(field) = header.known_field() else {
            return Ok((
                rest,
                Oxm::Unknown(UnknownOxm {
                    class,
                    field: header.field_code(),
                    hasmask: header.hasmask(),
                    payload: Bytes::copy_from_slice(payload),
                }),
            ));
        };
        let width = field.wire_len();
        let expected = if header.hasmask() { 2 * width } else { width };
        if length != expected {
            let what = "OXM field";
            let kind = if length < expected {
                DecodeErrorKind::LengthTooShort {
                    what,
                    length,
                    min: expected,
                }
            } else {
                DecodeErrorKind::LengthTooLong {
                    what,
                    length,
                    max: expected,
                }
            };
            return wire::fail(&i[3..], kind);
        }
        let (value, mask) = payload.split_at(width);
        Ok((
            rest,
            Oxm::Field(MatchField {
                field,
                value: be_bits(value),
                mask: header.hasmask().then(|| be_bits(mask)),
            }),
        ))
    }

    /// Appends the TLV. Fails only if the content cannot be expressed at all
    /// (a value wider than its field, a payload over 255 bytes).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.header()?.0);
        match self {
            Oxm::Field(m) => {
                let width = m.field.wire_len();
                put_bits(out, m.value, width, m.field.name())?;
                if let Some(mask) = m.mask {
                    put_bits(out, mask, width, m.field.name())?;
                }
            }
            Oxm::Experimenter(e) => {
                out.put_u32(e.experimenter.0);
                out.put_slice(&e.payload);
            }
            Oxm::Unknown(u) => out.put_slice(&u.payload),
        }
        Ok(())
    }
}

impl From<MatchField> for Oxm {
    fn from(m: MatchField) -> Oxm {
        Oxm::Field(m)
    }
}

impl Oxm {
    fn fmt_opaque_header(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.header() {
            Ok(h) => write!(f, "oxm:0x{:08x}", h.0),
            Err(_) => f.write_str("oxm:oversized"),
        }
    }
}

impl fmt::Display for Oxm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Oxm::Field(m) => fmt::Display::fmt(m, f),
            // Opaque TLVs print as their header (and experimenter) in hex,
            // free of commas so a match prints as a comma-separated list.
            Oxm::Experimenter(e) => {
                self.fmt_opaque_header(f)?;
                write!(f, "/0x{:08x}={}", e.experimenter.0, Hex(&e.payload))
            }
            Oxm::Unknown(u) => {
                self.fmt_opaque_header(f)?;
                write!(f, "={}", Hex(&u.payload))
            }
        }
    }
}

/// Takes the `length` payload bytes after a header, reporting a shortfall at
/// the header's length byte.
fn take_payload<'a>(tlv: &'a [u8], after_header: &'a [u8], length: usize) -> PResult<'a, &'a [u8]> {
    if after_header.len() < length {
        return wire::fail(&tlv[3..], DecodeErrorKind::Truncated);
    }
    wire::take(after_header, length)
}

/// A payload length for a header, which has 8 bits for it.
fn payload_len(len: usize) -> Result<u8, EncodeError> {
    u8::try_from(len).map_err(|_| EncodeError::TooLong {
        what: "OXM payload",
        length: len,
        max: usize::from(u8::MAX),
    })
}

/// Big-endian bytes (at most 16) as right-aligned bits.
fn be_bits(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0u128, |acc, &b| acc << 8 | u128::from(b))
}

/// Writes the low `width` bytes of `bits`, failing if higher bits are set.
fn put_bits(
    out: &mut BytesMut,
    bits: u128,
    width: usize,
    name: &'static str,
) -> Result<(), EncodeError> {
    if width < 16 && bits >> (8 * width) != 0 {
        return Err(EncodeError::OutOfRange(name));
    }
    let be = bits.to_be_bytes();
    out.put_slice(&be[16 - width.min(16)..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_one(hex_str: &str) -> Result<Oxm, crate::DecodeError> {
        let bytes = hex::decode(hex_str).unwrap();
        wire::finish(&bytes, Oxm::decode(&bytes))
    }

    fn round_trip(hex_str: &str) -> Oxm {
        let bytes = hex::decode(hex_str).unwrap();
        let (rest, oxm) = Oxm::decode(&bytes).unwrap();
        assert!(rest.is_empty());
        let mut out = BytesMut::new();
        oxm.encode(&mut out).unwrap();
        assert_eq!(hex::encode(&out), hex_str);
        assert_eq!(oxm.wire_len(), bytes.len());
        oxm
    }

    #[test]
    fn known_fields_decode_to_values_and_masks() {
        assert_eq!(
            round_trip("80000606f20ba47df8ea"),
            Oxm::Field(MatchField::exact(
                Field::EthDst,
                MacAddr([0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea])
            ))
        );
        assert_eq!(
            round_trip("0001d3080000002000000022"),
            Oxm::Field(MatchField::masked(Field::CtState, 0x20u32, 0x22u32))
        );
        assert_eq!(
            round_trip("80003610fe80000000000000f00ba4fffe05b7dc"),
            Oxm::Field(MatchField::exact(
                Field::Ipv6Dst,
                "fe80::f00b:a4ff:fe05:b7dc".parse::<Ipv6Addr>().unwrap()
            ))
        );
        let label =
            round_trip("0001d920000102030405060708090a0b0c0d0e0fffffffffffffffff0000000000000000");
        assert_eq!(
            label,
            Oxm::Field(MatchField::masked(
                Field::CtLabel,
                0x000102030405060708090a0b0c0d0e0fu128,
                u128::MAX << 64
            ))
        );
    }

    #[test]
    fn unknown_and_experimenter_oxms_are_kept_as_bytes() {
        assert_eq!(
            round_trip("ffff00074f4e46000a0001"),
            Oxm::Experimenter(ExperimenterOxm {
                field: 0,
                hasmask: false,
                experimenter: ExperimenterId::ONF,
                payload: Bytes::from_static(&[0x0a, 0x00, 0x01]),
            })
        );
        // NXM_NX_TUN_ID is not decoded (OVS uses OXM tunnel_id in OF1.3).
        assert!(matches!(
            round_trip("00012008000000000000c350"),
            Oxm::Unknown(_)
        ));
        // An OpenFlow-basic code this crate does not know.
        assert!(matches!(round_trip("80005001ab"), Oxm::Unknown(_)));
        // A zero-length payload.
        assert!(matches!(round_trip("12345600"), Oxm::Unknown(_)));
    }

    #[test]
    fn inconsistent_lengths_are_located_errors() {
        // in_port with a 2-byte payload.
        let e = decode_one("800000020001").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 4, .. }
        ));
        // eth_dst with mask bit but only a value.
        let e = decode_one("80000706f20ba47df8ea").unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 12, .. }
        ));
        // Longer than the field.
        let e = decode_one("8000000500000000ff").unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong { max: 4, .. }
        ));
        // Payload runs past the input.
        let e = decode_one("8000000400").unwrap_err();
        assert_eq!((e.offset, e.kind), (3, DecodeErrorKind::Truncated));
        // Header cut short.
        let e = decode_one("8000").unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::Truncated);
        // Experimenter OXM without room for its id.
        let e = decode_one("ffff0002abcd").unwrap_err();
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 4, .. }
        ));
    }

    #[test]
    fn values_wider_than_their_field_do_not_encode() {
        let mut out = BytesMut::new();
        let too_wide = Oxm::Field(MatchField::exact(Field::TcpDst, 0x1_0000u32));
        assert_eq!(
            too_wide.encode(&mut out),
            Err(EncodeError::OutOfRange("tcp_dst"))
        );
        let huge = Oxm::Unknown(UnknownOxm {
            class: OxmClass(0x1234),
            field: 1,
            hasmask: false,
            payload: Bytes::from(vec![0; 256]),
        });
        assert!(matches!(
            huge.encode(&mut out),
            Err(EncodeError::TooLong { .. })
        ));
    }

    #[test]
    fn evaluation_respects_masks() {
        let m = MatchField::masked(
            Field::Ipv4Dst,
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(255, 255, 255, 0),
        );
        assert!(m.matches(Bits::from(Ipv4Addr::new(10, 0, 0, 77)).0));
        assert!(!m.matches(Bits::from(Ipv4Addr::new(10, 0, 1, 77)).0));
        let exact = MatchField::exact(Field::VlanVid, 0x1005u16);
        assert!(exact.matches(0x1005));
        assert!(!exact.matches(0x1006));
        assert_eq!(m.to_string(), "ipv4_dst=10.0.0.0/255.255.255.0");
    }
}
