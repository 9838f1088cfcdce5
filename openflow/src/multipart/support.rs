//! Layout helpers shared by the port, group, meter and multipart codecs:
//! newtype declarations for wire enumerations and flag sets, length-framed
//! structures, OpenFlow 1.4 property TLVs, and the ovs-ofctl spelling of port
//! numbers and Ethernet addresses.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::header::Version;
use crate::wire::{self, PResult, WireError};

/// Declares a wire enumeration: a newtype over its integer with one associated
/// const per known value, so unknown values survive a round trip.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The name ovs-ofctl uses for the value, if this crate knows it.
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

/// Declares a flag set: a newtype bitfield with one associated const per
/// known bit. Unknown bits are kept and printed in hex.
macro_rules! wire_flags {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($int:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $value:expr => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// No flag set.
            pub const EMPTY: $name = $name(0);

            /// Every flag this crate knows.
            pub const KNOWN: $name = $name(0 $(| $value)*);

            /// Whether every flag of `other` is set in `self`.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no flag is set.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }

            const NAMES: &'static [($int, &'static str)] = &[$(($value, $text)),*];
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

        impl std::ops::BitAnd for $name {
            type Output = $name;
            fn bitand(self, rhs: $name) -> $name {
                $name(self.0 & rhs.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                if self.0 == 0 {
                    return f.write_str("0");
                }
                let mut rest = self.0;
                let mut first = true;
                for &(bit, name) in $name::NAMES {
                    if self.0 & bit == bit && bit != 0 {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        first = false;
                        rest &= !bit;
                    }
                }
                if rest != 0 {
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

pub(crate) use {wire_enum, wire_flags};

/// The two body layouts this codec speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// OpenFlow 1.3: fixed structures.
    Of13,
    /// OpenFlow 1.4: fixed heads followed by property lists.
    Of14,
}

impl Layout {
    /// The layout of `version`, or an error located at `i` for any other version.
    pub(crate) fn decoding(version: Version, i: &[u8]) -> Result<Layout, nom::Err<WireError>> {
        match version {
            Version::OF13 => Ok(Layout::Of13),
            Version::OF14 => Ok(Layout::Of14),
            v => Err(nom::Err::Error(WireError::at(
                i,
                DecodeErrorKind::UnsupportedVersion(v.0),
            ))),
        }
    }

    /// The layout of `version`, or an error naming `what` for any other version.
    pub(crate) fn encoding(version: Version, what: &'static str) -> Result<Layout, EncodeError> {
        match version {
            Version::OF13 => Ok(Layout::Of13),
            Version::OF14 => Ok(Layout::Of14),
            v => Err(EncodeError::WrongVersion { what, version: v.0 }),
        }
    }
}

/// Splits off the structure at the start of `i` whose big-endian u16 length
/// field (counting the whole structure) sits `at` bytes in.
///
/// A length below `min` or beyond the bytes present is reported at the length
/// field itself.
pub(crate) fn split_by_length<'a>(
    i: &'a [u8],
    at: usize,
    min: usize,
    what: &'static str,
) -> PResult<'a, &'a [u8]> {
    let Some((_, field)) = i.split_at_checked(at) else {
        return wire::fail(&i[i.len()..], DecodeErrorKind::Truncated);
    };
    let (_, length) = wire::u16(field)?;
    let length = usize::from(length);
    if length < min {
        return wire::fail(field, DecodeErrorKind::LengthTooShort { what, length, min });
    }
    match i.split_at_checked(length) {
        Some((whole, rest)) => Ok((rest, whole)),
        None => wire::fail(
            field,
            DecodeErrorKind::LengthTooLong {
                what,
                length,
                max: i.len(),
            },
        ),
    }
}

/// How many length-framed structures `i` holds, found by hopping from length
/// field to length field (stopping at the first that is short or overruns),
/// so lists can be allocated once for the entries actually present.
pub(crate) fn count_by_length(mut i: &[u8], at: usize, min: usize) -> usize {
    let mut n = 0;
    while let Some(&[hi, lo]) = i.get(at..at + 2) {
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        match i.get(length..) {
            Some(rest) if length >= min.max(1) => {
                n += 1;
                i = rest;
            }
            _ => break,
        }
    }
    n
}

/// Decodes a list of length-framed structures filling all of `i`, allocating
/// once for the entries present.
pub(crate) fn list_by_length<'a, T>(
    mut i: &'a [u8],
    at: usize,
    min: usize,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let mut out = Vec::with_capacity(count_by_length(i, at, min));
    while !i.is_empty() {
        let (rest, value) = item(i)?;
        if rest.len() >= i.len() {
            return wire::fail(i, DecodeErrorKind::Invalid("zero-length element"));
        }
        out.push(value);
        i = rest;
    }
    Ok((i, out))
}

/// Type of the experimenter property in every OpenFlow 1.4 property list.
pub(crate) const PROP_EXPERIMENTER: u16 = 0xffff;

/// One OpenFlow 1.4 property TLV as found on the wire.
pub(crate) struct RawProperty<'a> {
    /// The property type.
    pub(crate) prop_type: u16,
    /// The length field, where length errors are reported.
    length_field: &'a [u8],
    /// The bytes after the 4-byte header, up to `length` (padding excluded).
    pub(crate) body: &'a [u8],
}

impl<'a> RawProperty<'a> {
    /// Reads one property and skips the padding that aligns the next one to 8 bytes.
    pub(crate) fn decode(i: &'a [u8]) -> PResult<'a, RawProperty<'a>> {
        let (rest, whole) = split_by_length(i, 2, 4, "property")?;
        let (rest, ()) = wire::pad(rest, (8 - whole.len() % 8) % 8)?;
        let (length_field, prop_type) = wire::u16(whole)?;
        let (body, _length) = wire::u16(length_field)?;
        Ok((
            rest,
            RawProperty {
                prop_type,
                length_field,
                body,
            },
        ))
    }

    /// The body of a property whose length must be exactly `size` (header included).
    pub(crate) fn fixed(
        &self,
        size: usize,
        what: &'static str,
    ) -> Result<&'a [u8], nom::Err<WireError>> {
        let length = self.body.len() + 4;
        let kind = if length < size {
            DecodeErrorKind::LengthTooShort {
                what,
                length,
                min: size,
            }
        } else if length > size {
            DecodeErrorKind::LengthTooLong {
                what,
                length,
                max: size,
            }
        } else {
            return Ok(self.body);
        };
        Err(nom::Err::Error(WireError::at(self.length_field, kind)))
    }
}

/// Appends one property: header, the body written by `body`, padding to 8.
pub(crate) fn put_property(
    out: &mut BytesMut,
    prop_type: u16,
    body: impl FnOnce(&mut BytesMut),
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u16(prop_type);
    let len_at = wire::reserve_u16(out);
    body(out);
    wire::patch_len_u16(out, len_at, start, "property")?;
    wire::pad_to_8(out, start);
    Ok(())
}

/// An experimenter property (type 0xffff), kept as its ids and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExperimenterProperty {
    /// Experimenter id (an IEEE OUI in its low 24 bits, or an ONF-assigned id).
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// Experimenter-defined data, padding excluded.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl ExperimenterProperty {
    /// Decodes the body of a property of type 0xffff.
    pub(crate) fn decode(raw: &RawProperty<'_>) -> Result<Self, nom::Err<WireError>> {
        if raw.body.len() < 8 {
            return Err(nom::Err::Error(WireError::at(
                raw.length_field,
                DecodeErrorKind::LengthTooShort {
                    what: "experimenter property",
                    length: raw.body.len() + 4,
                    min: 12,
                },
            )));
        }
        let (b, experimenter) = wire::u32(raw.body)?;
        let (b, exp_type) = wire::u32(b)?;
        Ok(ExperimenterProperty {
            experimenter,
            exp_type,
            data: Bytes::copy_from_slice(b),
        })
    }

    /// Appends the property, header and padding included.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_property(out, PROP_EXPERIMENTER, |out| {
            out.put_u32(self.experimenter);
            out.put_u32(self.exp_type);
            out.put_slice(&self.data);
        })
    }
}

impl fmt::Display for ExperimenterProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "experimenter(id=0x{:x},type={},{} bytes)",
            self.experimenter,
            self.exp_type,
            self.data.len()
        )
    }
}

/// A property of a type this crate does not decode, kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownProperty {
    /// The property type.
    pub prop_type: u16,
    /// The bytes after the 4-byte header, padding excluded.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl UnknownProperty {
    /// Keeps a property of a type the caller does not know.
    pub(crate) fn from_raw(raw: &RawProperty<'_>) -> Self {
        UnknownProperty {
            prop_type: raw.prop_type,
            data: Bytes::copy_from_slice(raw.body),
        }
    }

    /// Appends the property, header and padding included.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_property(out, self.prop_type, |out| out.put_slice(&self.data))
    }
}

impl fmt::Display for UnknownProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "property(type={},{} bytes)",
            self.prop_type,
            self.data.len()
        )
    }
}

/// Reads a NUL-terminated fixed-width text field (port names, descriptions).
///
/// The text is what precedes the first NUL, at most `n - 1` bytes: a field
/// missing its terminating NUL loses its last byte. Invalid UTF-8 is replaced
/// and the result cut back to `n - 1` bytes at a character boundary, so that
/// decoded text always encodes to itself and decodes back unchanged.
pub(crate) fn fixed_text(i: &[u8], n: usize) -> PResult<'_, String> {
    let (rest, raw) = wire::take(i, n)?;
    let max = n.saturating_sub(1);
    let end = raw
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(raw.len())
        .min(max);
    let text = String::from_utf8_lossy(raw.get(..end).unwrap_or_default());
    Ok((rest, truncated(&text, max).to_owned()))
}

/// Writes `text` into a NUL-padded field of `n` bytes, cut at a character
/// boundary so the field holds valid UTF-8 and ends in at least one NUL.
pub(crate) fn put_fixed_text(out: &mut BytesMut, text: &str, n: usize) {
    let text = truncated(text, n.saturating_sub(1));
    out.put_slice(text.as_bytes());
    wire::put_zeros(out, n - text.len());
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncated(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Formats a port number the way ovs-ofctl does, naming the reserved ports.
pub(crate) struct PortName(pub(crate) u32);

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0xffff_fff8 => "IN_PORT",
            0xffff_fff9 => "TABLE",
            0xffff_fffa => "NORMAL",
            0xffff_fffb => "FLOOD",
            0xffff_fffc => "ALL",
            0xffff_fffd => "CONTROLLER",
            0xffff_fffe => "LOCAL",
            0xffff_ffff => "ANY",
            n => return write!(f, "{n}"),
        };
        f.write_str(name)
    }
}

/// Formats an Ethernet address as `xx:xx:xx:xx:xx:xx`.
pub(crate) struct Mac<'a>(pub(crate) &'a [u8; 6]);

impl fmt::Display for Mac<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = *self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Serde helper: Ethernet addresses appear as `xx:xx:xx:xx:xx:xx` in JSON.
pub(crate) mod mac_serde {
    /// Serializes an Ethernet address as text.
    pub(crate) fn serialize<S: serde::Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::Mac(mac))
    }
}

/// Writes `items` separated by `sep`.
pub(crate) fn join<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    sep: &str,
) -> fmt::Result {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    wire_flags! {
        /// Test flags.
        pub struct TestFlags(u16) {
            /// A.
            A = 1 => "A",
            /// B.
            B = 4 => "B",
        }
    }

    wire_enum! {
        /// Test enumeration.
        pub struct TestEnum(u8) {
            /// One.
            ONE = 1 => "one",
        }
    }

    #[test]
    fn flags_print_names_and_unknown_bits() {
        assert_eq!(TestFlags(0).to_string(), "0");
        assert_eq!(TestFlags(5).to_string(), "A|B");
        assert_eq!(TestFlags(0x15).to_string(), "A|B|0x10");
        assert_eq!(TestFlags(0x10).to_string(), "0x10");
        assert!((TestFlags::A | TestFlags::B).contains(TestFlags::B));
        assert_eq!(TestFlags::KNOWN, TestFlags(5));
        assert!(TestFlags::EMPTY.is_empty() && !TestFlags::A.is_empty());
        assert_eq!(TestFlags(5) & TestFlags::B, TestFlags::B);
        let mut flags = TestFlags::A;
        flags |= TestFlags::B;
        assert_eq!(flags, TestFlags(5));
    }

    #[test]
    fn enums_print_names_or_numbers() {
        assert_eq!(TestEnum::ONE.to_string(), "one");
        assert_eq!(TestEnum(9).to_string(), "9");
        assert_eq!(TestEnum(9).name(), None);
    }

    #[test]
    fn lengths_are_checked_at_their_field() {
        let buf = [0u8, 0, 0, 3, 9, 9];
        let err = split_by_length(&buf, 2, 4, "thing").unwrap_err();
        let nom::Err::Error(e) = err else { panic!() };
        let e = e.into_decode_error(&buf);
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { length: 3, .. }
        ));

        let buf = [0u8, 0, 0, 9, 9, 9];
        let nom::Err::Error(e) = split_by_length(&buf, 2, 4, "thing").unwrap_err() else {
            panic!()
        };
        let e = e.into_decode_error(&buf);
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong {
                length: 9,
                max: 6,
                ..
            }
        ));

        let (rest, whole) = split_by_length(&[0, 0, 0, 4, 7], 2, 4, "thing").unwrap();
        assert_eq!((whole.len(), rest), (4, &[7u8][..]));
    }

    #[test]
    fn properties_skip_padding_and_require_it() {
        let buf = [
            0xffu8, 0xff, 0, 12, 0, 0, 0, 101, 0, 0, 0, 1, 0, 0, 0, 0, 0xaa,
        ];
        let (rest, raw) = RawProperty::decode(&buf).unwrap();
        assert_eq!(rest, &[0xaa]);
        let exp = ExperimenterProperty::decode(&raw).unwrap();
        assert_eq!(
            (exp.experimenter, exp.exp_type, exp.data.len()),
            (101, 1, 0)
        );
        let mut out = BytesMut::new();
        exp.encode(&mut out).unwrap();
        assert_eq!(&out[..], &buf[..16]);
        assert!(RawProperty::decode(&buf[..14]).is_err());
    }

    #[test]
    fn fixed_text_always_re_encodes_to_itself() {
        // Invalid UTF-8 that grows when replaced, and a field without its NUL.
        let mut field = [b'a'; 16];
        field[3] = 0xff;
        field[4] = 0xfe;
        let (_, text) = fixed_text(&field, 16).unwrap();
        assert!(text.len() <= 15);
        let mut out = BytesMut::new();
        put_fixed_text(&mut out, &text, 16);
        assert_eq!(out.len(), 16);
        assert_eq!(fixed_text(&out, 16).unwrap().1, text);
        // Multi-byte characters are never split.
        let mut out = BytesMut::new();
        put_fixed_text(&mut out, "ポートポートポート", 16);
        assert_eq!(fixed_text(&out, 16).unwrap().1, "ポートポー");
    }

    #[test]
    fn port_names_and_macs_print_like_ovs() {
        assert_eq!(PortName(0xffff_fffd).to_string(), "CONTROLLER");
        assert_eq!(PortName(7).to_string(), "7");
        assert_eq!(
            Mac(&[0xf2, 0x0b, 0xa4, 0xd0, 0x3f, 0x70]).to_string(),
            "f2:0b:a4:d0:3f:70"
        );
    }
}
