//! OpenFlow 1.4 property lists: the type-length-value layout shared by HELLO
//! elements, TABLE_MOD, the asynchronous configuration, bundles, port
//! descriptions, PORT_MOD, port statistics and Nicira's `controller2` action.
//!
//! A property is a 16-bit type, a 16-bit length that counts the four header
//! bytes and the body but not the padding, the body, and zeros up to the next
//! multiple of 8 bytes. Every list ends with the padding of its last property
//! present (as Open vSwitch requires).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::types::{ExperimenterId, HexPreview};
use crate::wire::{self, PResult, WireError};

/// Size of the type and length fields that start every property.
pub(crate) const PROP_HEADER_LEN: usize = 4;

/// Type of the experimenter property, the same in every property list.
pub(crate) const PROP_EXPERIMENTER: u16 = 0xffff;

/// Size of an experimenter property without data (header, id, type).
const EXPERIMENTER_PROP_MIN: usize = PROP_HEADER_LEN + 8;

/// One property as found on the wire.
pub(crate) struct RawProperty<'a> {
    /// The property type.
    pub(crate) prop_type: u16,
    /// The bytes the length field covers after the header (padding excluded).
    pub(crate) body: &'a [u8],
    /// The length field itself, where length errors are reported.
    length_field: &'a [u8],
}

impl<'a> RawProperty<'a> {
    /// Reads one property of a list of `what`s and skips its padding.
    pub(crate) fn decode(i: &'a [u8], what: &'static str) -> PResult<'a, RawProperty<'a>> {
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
        let padded = length.next_multiple_of(8);
        let (Some(body), Some(rest)) = (i.get(PROP_HEADER_LEN..length), i.get(padded..)) else {
            return wire::fail(
                length_field,
                DecodeErrorKind::LengthTooLong {
                    what,
                    length: padded,
                    max: i.len(),
                },
            );
        };
        Ok((
            rest,
            RawProperty {
                prop_type,
                body,
                length_field,
            },
        ))
    }

    /// The body of a property whose length must be exactly `size` (header included).
    pub(crate) fn fixed(
        &self,
        size: usize,
        what: &'static str,
    ) -> Result<&'a [u8], nom::Err<WireError>> {
        let length = self.body.len() + PROP_HEADER_LEN;
        wire::exact_len(self.length_field, length, size, what).map(|_| self.body)
    }

    /// An error about this property, located at its length field.
    pub(crate) fn fail<T>(&self, kind: DecodeErrorKind) -> Result<T, nom::Err<WireError>> {
        Err(nom::Err::Error(WireError::at(self.length_field, kind)))
    }
}

/// Appends one property: header, the body `body` writes, padding to 8.
pub(crate) fn put_property(
    out: &mut BytesMut,
    prop_type: u16,
    what: &'static str,
    body: impl FnOnce(&mut BytesMut),
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_u16(prop_type);
    let len_at = wire::reserve_u16(out);
    body(out);
    wire::patch_len_u16(out, len_at, start, what)?;
    wire::pad_to_8(out, start);
    Ok(())
}

/// An experimenter property: an experimenter id, its own type, and opaque data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
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
    /// Decodes the body of a property of an experimenter type.
    pub(crate) fn decode(raw: &RawProperty<'_>) -> Result<Self, nom::Err<WireError>> {
        if raw.body.len() + PROP_HEADER_LEN < EXPERIMENTER_PROP_MIN {
            return raw.fail(DecodeErrorKind::LengthTooShort {
                what: "experimenter property",
                length: raw.body.len() + PROP_HEADER_LEN,
                min: EXPERIMENTER_PROP_MIN,
            });
        }
        let (data, experimenter) = wire::u32(raw.body)?;
        let (data, exp_type) = wire::u32(data)?;
        Ok(ExperimenterProperty {
            experimenter: ExperimenterId(experimenter),
            exp_type,
            data: Bytes::copy_from_slice(data),
        })
    }

    /// Appends the property with type `prop_type` (0xffff in every list but
    /// the asynchronous configuration, which has one per role).
    pub(crate) fn encode(
        &self,
        prop_type: u16,
        what: &'static str,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        put_property(out, prop_type, what, |out| {
            out.put_u32(self.experimenter.0);
            out.put_u32(self.exp_type);
            out.put_slice(&self.data);
        })
    }
}

impl fmt::Display for ExperimenterProperty {
    /// `{experimenter=NX exp_type=3 data=0102}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{experimenter={} exp_type={}",
            self.experimenter, self.exp_type
        )?;
        if !self.data.is_empty() {
            write!(f, " data={}", HexPreview(&self.data, 32))?;
        }
        f.write_str("}")
    }
}

/// A property of a type the list it is in does not define (or this crate does
/// not decode), kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UnknownProperty {
    /// The property type.
    pub prop_type: u16,
    /// The body, without header and padding.
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

    /// Appends the property. `known` are the types the list defines: one of
    /// them here would decode back as something else, so it is refused.
    pub(crate) fn encode(
        &self,
        known: &[u16],
        what: &'static str,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if known.contains(&self.prop_type) {
            return Err(EncodeError::OutOfRange(
                "type of an unknown property (the list defines it)",
            ));
        }
        put_property(out, self.prop_type, what, |out| out.put_slice(&self.data))
    }
}

impl fmt::Display for UnknownProperty {
    /// `{type=7 data=abcd}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{type={}", self.prop_type)?;
        if !self.data.is_empty() {
            write!(f, " data={}", HexPreview(&self.data, 16))?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of<T>(r: Result<T, nom::Err<WireError>>, base: &[u8]) -> crate::DecodeError {
        match r {
            Err(nom::Err::Error(e)) => e.into_decode_error(base),
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn properties_consume_their_padding() {
        let bytes = [0u8, 7, 0, 5, 0xaa, 0, 0, 0, 0xff];
        let (rest, p) = RawProperty::decode(&bytes, "test property").unwrap();
        assert_eq!(p.prop_type, 7);
        assert_eq!(p.body, &[0xaa]);
        assert_eq!(rest, &[0xff]);
    }

    #[test]
    fn property_lengths_are_checked_at_the_length_field() {
        let short = [0u8, 7, 0, 3, 0, 0, 0, 0];
        let e = error_of(RawProperty::decode(&short, "p").map(|_| ()), &short);
        assert_eq!(e.offset, 2);
        assert!(matches!(e.kind, DecodeErrorKind::LengthTooShort { .. }));

        // The padding of the last property is missing.
        let unpadded = [0u8, 7, 0, 5, 1];
        let e = error_of(RawProperty::decode(&unpadded, "p").map(|_| ()), &unpadded);
        assert_eq!(e.offset, 2);
        assert!(matches!(e.kind, DecodeErrorKind::LengthTooLong { .. }));

        // A fixed-size property of the wrong size.
        let bytes = [0u8, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (_, raw) = RawProperty::decode(&bytes, "p").unwrap();
        let e = error_of(raw.fixed(8, "p"), &bytes);
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooLong { max: 8, .. }
        ));
        let e = error_of(raw.fixed(16, "p"), &bytes);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 16, .. }
        ));
    }

    #[test]
    fn property_encoding_pads_with_zeros() {
        let mut out = BytesMut::new();
        put_property(&mut out, 0xfffe, "p", |out| out.put_u8(9)).unwrap();
        assert_eq!(&out[..], &[0xff, 0xfe, 0, 5, 9, 0, 0, 0]);
    }

    #[test]
    fn experimenter_properties_round_trip_and_need_their_ids() {
        let buf = [
            0xffu8, 0xff, 0, 12, 0, 0, 0, 101, 0, 0, 0, 1, 0, 0, 0, 0, 0xaa,
        ];
        let (rest, raw) = RawProperty::decode(&buf, "p").unwrap();
        assert_eq!(rest, &[0xaa]);
        let exp = ExperimenterProperty::decode(&raw).unwrap();
        assert_eq!(
            (exp.experimenter, exp.exp_type, exp.data.len()),
            (ExperimenterId(101), 1, 0)
        );
        assert_eq!(exp.to_string(), "{experimenter=0x00000065 exp_type=1}");
        let mut out = BytesMut::new();
        exp.encode(PROP_EXPERIMENTER, "p", &mut out).unwrap();
        assert_eq!(&out[..], &buf[..16]);

        let short = [0xffu8, 0xff, 0, 8, 0, 0, 0, 101];
        let (_, raw) = RawProperty::decode(&short, "p").unwrap();
        let e = error_of(ExperimenterProperty::decode(&raw), &short);
        assert_eq!(e.offset, 2);
        assert!(matches!(
            e.kind,
            DecodeErrorKind::LengthTooShort { min: 12, .. }
        ));
    }

    #[test]
    fn unknown_properties_keep_their_bytes_but_not_a_known_type() {
        let buf = [0u8, 7, 0, 6, 0xab, 0xcd, 0, 0];
        let (_, raw) = RawProperty::decode(&buf, "p").unwrap();
        let unknown = UnknownProperty::from_raw(&raw);
        assert_eq!(unknown.to_string(), "{type=7 data=abcd}");
        let mut out = BytesMut::new();
        unknown.encode(&[0, 1], "p", &mut out).unwrap();
        assert_eq!(&out[..], &buf[..]);
        assert!(unknown.encode(&[7], "p", &mut out).is_err());
    }
}
