//! Bodies of the non-multipart messages.
//!
//! Each body implements the crate's `BodyCodec` for wire versions 4 (OpenFlow
//! 1.3) and 5 (OpenFlow 1.4). Where the two versions differ (FLOW_MOD
//! importance, TABLE_MOD properties, the asynchronous configuration) the type
//! says so instead of hiding it: values that one version cannot carry are an
//! [`crate::EncodeError::WrongVersion`], never silently dropped.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::wire::{self, PResult};

/// Declares a wire enumeration: a newtype over its integer with a constant and
/// a display name per known value, so that unknown values still round-trip.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        $vis struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The conventional name of the value, if it is a known one.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$konst => Some($text), )*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}", self.0),
                }
            }
        }
    };
}

/// Declares a set of flag bits: a newtype over its integer with a constant per
/// bit. Bits without a name are kept, and shown in hex by `Display`.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
        #[serde(transparent)]
        $vis struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// No flag set.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The named bits and their names, in bit order.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                const KNOWN: &[($int, &str)] = &[$( ($value, $text), )*];
                KNOWN
                    .iter()
                    .filter(move |(bit, _)| *bit != 0 && self.0 & *bit == *bit)
                    .map(|(_, name)| *name)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) {
                self.0 |= rhs.0;
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut known: $int = 0;
                let mut first = true;
                for (bit, name) in [$( ($value, $text), )*] {
                    let bit: $int = bit;
                    if bit != 0 && self.0 & bit == bit {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        known |= bit;
                        first = false;
                    }
                }
                let rest = self.0 & !known;
                if rest != 0 || first {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{:#x}", rest)?;
                }
                Ok(())
            }
        }
    };
}

mod async_config;
mod bundle;
mod config;
mod error;
mod experimenter;
mod features;
mod flow;
mod hello;
mod packet;
mod role;
mod table;

pub use async_config::{AsyncConfig, AsyncConfigProp, AsyncMasks, AsyncPropType};
pub use bundle::{BundleAdd, BundleControl, BundleCtrlType, BundleFlags, BundleProp};
pub use config::{ConfigFlags, SwitchConfig};
pub use error::{ErrorCode, ErrorMsg, ErrorType, codes};
pub use experimenter::{Experimenter, ExperimenterId};
pub use features::{Capabilities, SwitchFeatures};
pub use flow::{FlowMod, FlowModCommand, FlowModFlags, FlowRemoved, FlowRemovedReason};
pub use hello::{Hello, HelloElemType, HelloElement, negotiate};
pub use packet::{PacketIn, PacketInReason, PacketOut};
pub use role::{ControllerRole, RoleMessage};
pub use table::{EvictionFlags, TableConfig, TableMod, TableModProp};

/// `OFP_NO_BUFFER`: the packet is carried in the message, not buffered on the switch.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPP_IN_PORT`: send the packet out of the port it came in on.
pub const PORT_IN_PORT: u32 = 0xffff_fff8;
/// `OFPP_TABLE`: submit a PACKET_OUT's packet to the first flow table.
pub const PORT_TABLE: u32 = 0xffff_fff9;
/// `OFPP_NORMAL`: the switch's traditional L2/L3 processing.
pub const PORT_NORMAL: u32 = 0xffff_fffa;
/// `OFPP_FLOOD`: all ports but the input port and those with flooding disabled.
pub const PORT_FLOOD: u32 = 0xffff_fffb;
/// `OFPP_ALL`: all ports but the input port.
pub const PORT_ALL: u32 = 0xffff_fffc;
/// `OFPP_CONTROLLER`: the controller, as a port.
pub const PORT_CONTROLLER: u32 = 0xffff_fffd;
/// `OFPP_LOCAL`: the switch's local networking stack.
pub const PORT_LOCAL: u32 = 0xffff_fffe;
/// `OFPP_ANY`: no port, or a wildcard in FLOW_MOD deletes and statistics.
pub const PORT_ANY: u32 = 0xffff_ffff;
/// `OFPG_ANY`: a wildcard group in FLOW_MOD deletes and statistics.
pub const GROUP_ANY: u32 = 0xffff_ffff;
/// `OFPTT_ALL`: every table, in FLOW_MOD deletes, TABLE_MOD and statistics.
pub const TABLE_ALL: u8 = 0xff;

/// Shows a port number the way `ovs-ofctl` does: reserved ports by name.
pub(crate) struct PortName(pub(crate) u32);

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            PORT_IN_PORT => "IN_PORT",
            PORT_TABLE => "TABLE",
            PORT_NORMAL => "NORMAL",
            PORT_FLOOD => "FLOOD",
            PORT_ALL => "ALL",
            PORT_CONTROLLER => "CONTROLLER",
            PORT_LOCAL => "LOCAL",
            PORT_ANY => "ANY",
            n => return write!(f, "{n}"),
        };
        f.write_str(name)
    }
}

/// Shows a table id, `ALL` for [`TABLE_ALL`].
pub(crate) struct TableName(pub(crate) u8);

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TABLE_ALL => f.write_str("ALL"),
            n => write!(f, "{n}"),
        }
    }
}

/// Shows at most `limit` bytes as hex, noting how many were left out.
pub(crate) struct HexPreview<'a>(pub(crate) &'a [u8], pub(crate) usize);

impl fmt::Display for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HexPreview(bytes, limit) = *self;
        for byte in bytes.iter().take(limit) {
            write!(f, "{byte:02x}")?;
        }
        if bytes.len() > limit {
            write!(f, "...(+{} bytes)", bytes.len() - limit)?;
        }
        Ok(())
    }
}

/// The experimenter property shared by the OF1.4 property lists (TABLE_MOD,
/// asynchronous configuration, bundles): an experimenter id, its own type, and
/// opaque data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimenterProperty {
    /// Who defined the property.
    pub experimenter: ExperimenterId,
    /// The experimenter's own property type.
    pub exp_type: u32,
    /// Experimenter-defined content, without the padding to 8 bytes.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl ExperimenterProperty {
    /// Decodes the body of an experimenter property (after type and length).
    /// `length_field` is where the property's length was read, for errors.
    fn decode<'a>(body: &'a [u8], length_field: &'a [u8], length: usize) -> PResult<'a, Self> {
        if body.len() < 8 {
            return wire::fail(
                length_field,
                DecodeErrorKind::LengthTooShort {
                    what: "experimenter property",
                    length,
                    min: PROP_HEADER_LEN + 8,
                },
            );
        }
        let (rest, experimenter) = wire::u32(body)?;
        let (rest, exp_type) = wire::u32(rest)?;
        Ok((
            &rest[rest.len()..],
            ExperimenterProperty {
                experimenter: ExperimenterId(experimenter),
                exp_type,
                data: Bytes::copy_from_slice(rest),
            },
        ))
    }

    /// Appends the property body (after type and length).
    fn encode_body(&self, out: &mut BytesMut) {
        out.put_u32(self.experimenter.0);
        out.put_u32(self.exp_type);
        out.put_slice(&self.data);
    }
}

impl fmt::Display for ExperimenterProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "experimenter={} exp_type={}",
            self.experimenter, self.exp_type
        )?;
        if !self.data.is_empty() {
            write!(f, " data={}", HexPreview(&self.data, 32))?;
        }
        Ok(())
    }
}

/// Size of the type and length fields that start every OF1.4 property.
pub(crate) const PROP_HEADER_LEN: usize = 4;

/// One type-length-value property as found on the wire.
pub(crate) struct RawProperty<'a> {
    /// The property type.
    pub(crate) prop_type: u16,
    /// The value of the length field (header included, padding excluded).
    pub(crate) length: usize,
    /// The bytes the length field covers after the four-byte header.
    pub(crate) body: &'a [u8],
    /// The length field itself, where length errors are reported.
    pub(crate) length_field: &'a [u8],
}

/// Reads one property of an OF1.4 property list (also the layout of HELLO
/// elements): a 16-bit type, a 16-bit length that counts the header but not
/// the padding, the body, and zero padding to a multiple of 8 bytes.
///
/// Like Open vSwitch, the padding of the last property must be present.
pub(crate) fn property<'a>(i: &'a [u8], what: &'static str) -> PResult<'a, RawProperty<'a>> {
    let (length_field, prop_type) = wire::u16(i)?;
    let (_, length) = wire::u16(length_field)?;
    let length = usize::from(length);
    if length < PROP_HEADER_LEN {
        return wire::fail(
            length_field,
            DecodeErrorKind::LengthTooShort {
                what,
                length,
                min: PROP_HEADER_LEN,
            },
        );
    }
    let padded = length.div_ceil(8) * 8;
    if padded > i.len() {
        return wire::fail(
            length_field,
            DecodeErrorKind::LengthTooLong {
                what,
                length: padded,
                max: i.len(),
            },
        );
    }
    Ok((
        &i[padded..],
        RawProperty {
            prop_type,
            length,
            body: &i[PROP_HEADER_LEN..length],
            length_field,
        },
    ))
}

/// Appends one property: header, the body written by `body`, padding to 8.
pub(crate) fn put_property(
    out: &mut BytesMut,
    prop_type: u16,
    what: &'static str,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u16(prop_type);
    let len_at = wire::reserve_u16(out);
    body(out)?;
    wire::patch_len_u16(out, len_at, start, what)?;
    wire::pad_to_8(out, start);
    Ok(())
}

/// Splits a structure of `length` bytes, as claimed by the length field at
/// `length_field`, off the front of `i`. A claim beyond the bytes present is
/// reported at the field rather than as truncated input: the enclosing
/// message is complete, so the field is what is wrong.
pub(crate) fn split_claimed<'a>(
    i: &'a [u8],
    length_field: &'a [u8],
    length: usize,
    what: &'static str,
) -> PResult<'a, &'a [u8]> {
    if length > i.len() {
        return wire::fail(
            length_field,
            DecodeErrorKind::LengthTooLong {
                what,
                length,
                max: i.len(),
            },
        );
    }
    Ok((&i[length..], &i[..length]))
}

/// Fails with [`EncodeError::WrongVersion`] unless `ok`.
pub(crate) fn require_version(
    ok: bool,
    what: &'static str,
    version: crate::Version,
) -> Result<(), EncodeError> {
    if ok {
        Ok(())
    } else {
        Err(EncodeError::WrongVersion {
            what,
            version: version.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_consume_their_padding() {
        let bytes = [0u8, 7, 0, 5, 0xaa, 0, 0, 0, 0xff];
        let (rest, p) = property(&bytes, "test property").unwrap();
        assert_eq!(p.prop_type, 7);
        assert_eq!(p.body, &[0xaa]);
        assert_eq!(rest, &[0xff]);
    }

    #[test]
    fn property_lengths_are_checked_at_the_length_field() {
        let short = [0u8, 7, 0, 3, 0, 0, 0, 0];
        let nom::Err::Error(e) = property(&short, "p").map(|_| ()).unwrap_err() else {
            panic!()
        };
        let e = e.into_decode_error(&short);
        assert_eq!(e.offset, 2);
        assert!(matches!(e.kind, DecodeErrorKind::LengthTooShort { .. }));

        // The padding of the last property is missing.
        let unpadded = [0u8, 7, 0, 5, 1];
        let nom::Err::Error(e) = property(&unpadded, "p").map(|_| ()).unwrap_err() else {
            panic!()
        };
        let e = e.into_decode_error(&unpadded);
        assert_eq!(e.offset, 2);
        assert!(matches!(e.kind, DecodeErrorKind::LengthTooLong { .. }));
    }

    #[test]
    fn property_encoding_pads_with_zeros() {
        let mut out = BytesMut::new();
        put_property(&mut out, 0xffff, "p", |out| {
            out.put_u8(9);
            Ok(())
        })
        .unwrap();
        assert_eq!(&out[..], &[0xff, 0xff, 0, 5, 9, 0, 0, 0]);
    }

    flag_set! {
        /// Test flags.
        struct TestFlags(u16) {
            /// A.
            A = 1 => "a",
            /// B.
            B = 4 => "b",
        }
    }

    #[test]
    fn flag_sets_show_names_and_unknown_bits() {
        assert_eq!(TestFlags(0).to_string(), "0x0");
        assert_eq!((TestFlags::A | TestFlags::B).to_string(), "a|b");
        assert_eq!(TestFlags(0x13).to_string(), "a|0x12");
        assert_eq!(TestFlags(5).names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(TestFlags(5).contains(TestFlags::B));
        assert!(TestFlags::empty().is_empty());
    }

    #[test]
    fn reserved_ports_have_names() {
        assert_eq!(PortName(PORT_CONTROLLER).to_string(), "CONTROLLER");
        assert_eq!(PortName(6).to_string(), "6");
        assert_eq!(TableName(TABLE_ALL).to_string(), "ALL");
    }
}
