//! HELLO and version negotiation (OpenFlow 1.3.5 §6.3.1, §7.5.1).

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::header::Version;
use crate::message::BodyCodec;
use crate::prop::{RawProperty, UnknownProperty, put_property};
use crate::wire::{self, PResult};

wire_enum! {
    /// The type of a HELLO element.
    pub struct HelloElemType(u16) {
        /// `OFPHET_VERSIONBITMAP`: the versions the sender supports.
        VERSIONBITMAP = 1 => "VERSIONBITMAP",
    }
}

/// A HELLO body: a list of elements, possibly empty (OpenFlow 1.0 to 1.3.0
/// peers send none).
///
/// A peer whose HELLO body is not a well-formed element list fails to decode.
/// OpenFlow says to ignore such a body; a connection driver that wants to can
/// negotiate with [`negotiate`] and an empty `Hello::default()`, which falls
/// back to the header versions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Hello {
    /// The elements, in wire order.
    pub elements: Vec<HelloElement>,
}

/// One HELLO element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HelloElement {
    /// `OFPHET_VERSIONBITMAP`: bit `n % 32` of word `n / 32` is set when the
    /// sender supports wire version `n`.
    VersionBitmap(Vec<u32>),
    /// An element type this codec does not know, kept as it was (its type
    /// is never [`HelloElemType::VERSIONBITMAP`]).
    Unknown(UnknownProperty),
}

impl HelloElement {
    /// The element's wire type.
    pub fn elem_type(&self) -> HelloElemType {
        match self {
            HelloElement::VersionBitmap(_) => HelloElemType::VERSIONBITMAP,
            HelloElement::Unknown(u) => HelloElemType(u.prop_type),
        }
    }

    fn decode(i: &[u8]) -> PResult<'_, HelloElement> {
        let (rest, raw) = RawProperty::decode(i, WHAT)?;
        let element = if HelloElemType(raw.prop_type) == HelloElemType::VERSIONBITMAP {
            if raw.body.len() % 4 != 0 {
                return raw.fail(DecodeErrorKind::Invalid(
                    "version bitmap length (not 4 + a multiple of 4)",
                ));
            }
            let (_, words) = wire::many(raw.body, wire::u32)?;
            HelloElement::VersionBitmap(words)
        } else {
            HelloElement::Unknown(UnknownProperty::from_raw(&raw))
        };
        Ok((rest, element))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            HelloElement::VersionBitmap(words) => {
                put_property(out, HelloElemType::VERSIONBITMAP.0, WHAT, |out| {
                    words.iter().for_each(|w| out.put_u32(*w));
                })
            }
            HelloElement::Unknown(u) => u.encode(&[HelloElemType::VERSIONBITMAP.0], WHAT, out),
        }
    }
}

/// What HELLO elements are called in errors.
const WHAT: &str = "hello element";

/// The versions set in a bitmap, lowest first (bits beyond version 255 are
/// not versions the one-byte header can carry and are ignored).
fn bitmap_versions(words: &[u32]) -> impl Iterator<Item = Version> + '_ {
    words.iter().enumerate().flat_map(|(index, word)| {
        (0..32u32).filter_map(move |bit| {
            let number = index.checked_mul(32)?.checked_add(bit as usize)?;
            let number = u8::try_from(number).ok()?;
            (word & (1 << bit) != 0).then_some(Version(number))
        })
    })
}

impl Hello {
    /// A HELLO offering `versions` in a version bitmap. Send it with the
    /// highest of them in the header.
    pub fn offering(versions: &[Version]) -> Hello {
        let words = versions
            .iter()
            .map(|v| usize::from(v.0) / 32 + 1)
            .max()
            .unwrap_or(1);
        let mut bitmap = vec![0u32; words];
        for v in versions {
            bitmap[usize::from(v.0) / 32] |= 1 << (v.0 % 32);
        }
        Hello {
            elements: vec![HelloElement::VersionBitmap(bitmap)],
        }
    }

    /// The versions offered in the version bitmap(s), lowest first, or `None`
    /// if the peer sent no bitmap (then only its header version is known).
    pub fn versions(&self) -> Option<Vec<Version>> {
        let mut found = false;
        let mut versions = Vec::new();
        for element in &self.elements {
            if let HelloElement::VersionBitmap(words) = element {
                found = true;
                versions.extend(bitmap_versions(words));
            }
        }
        if !found {
            return None;
        }
        versions.sort_unstable();
        versions.dedup();
        Some(versions)
    }
}

/// The version to speak with a peer, per OpenFlow 1.3.5 §6.3.1.
///
/// `ours` are the versions we support and announced (in a bitmap, with the
/// highest in our header); `their_header_version` and `theirs` come from the
/// peer's HELLO. If the peer sent a bitmap, the result is the highest version
/// in both bitmaps, or `None` when there is none: the specification would then
/// fall back to the smaller header version, but that is by construction a
/// version one side has just said it does not support. Without a peer bitmap,
/// the result is the smaller of the two header versions if we support it.
/// `None` means the connection must fail with HELLO_FAILED/INCOMPATIBLE.
pub fn negotiate(
    ours: &[Version],
    their_header_version: Version,
    theirs: &Hello,
) -> Option<Version> {
    let our_header_version = ours.iter().copied().max()?;
    match theirs.versions() {
        Some(their_versions) => their_versions.into_iter().rev().find(|v| ours.contains(v)),
        None => {
            let candidate = our_header_version.min(their_header_version);
            ours.contains(&candidate).then_some(candidate)
        }
    }
}

impl BodyCodec for Hello {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, elements) = wire::many(i, HelloElement::decode)?;
        Ok((rest, Hello { elements }))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        self.elements.iter().try_for_each(|e| e.encode(out))
    }
}

impl fmt::Display for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for element in &self.elements {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            match element {
                HelloElement::VersionBitmap(words) => {
                    f.write_str("version bitmap:")?;
                    let mut sep = " ";
                    for v in bitmap_versions(words) {
                        write!(f, "{sep}{v}")?;
                        sep = ", ";
                    }
                }
                HelloElement::Unknown(u) => write!(f, "element {u}")?,
            }
        }
        if first {
            f.write_str("no elements")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn ryu_hello_with_a_version_bitmap() {
        let bytes = hex("0400001000000000000100084000060e");
        let msg = Message::decode(&bytes).unwrap();
        let Body::Hello(hello) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(
            hello.elements,
            [HelloElement::VersionBitmap(vec![0x4000_060e])]
        );
        let versions: Vec<u8> = hello.versions().unwrap().iter().map(|v| v.0).collect();
        assert_eq!(versions, [1, 2, 3, 9, 10, 30]);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            hello.to_string(),
            "version bitmap: OF1.0, OF1.1, OF1.2, OF(0x09), OF(0x0a), OF(0x1e)"
        );
    }

    #[test]
    fn offering_builds_the_bitmap_ovs_sends() {
        let hello = Hello::offering(&[Version::OF13, Version::OF14]);
        let msg = Message::new(Version::OF14, 1, Body::Hello(hello.clone()));
        assert_eq!(
            &msg.encode().unwrap()[..],
            &hex("05000010000000010001000800000030")[..]
        );
        assert_eq!(hello.versions(), Some(vec![Version::OF13, Version::OF14]));
        // Versions above 31 take further words.
        let wide = Hello::offering(&[Version(33)]);
        assert_eq!(wide.elements, [HelloElement::VersionBitmap(vec![0, 2])]);
    }

    #[test]
    fn unknown_elements_round_trip_with_padding() {
        // An unknown element of 5 bytes of content, then a bitmap of two words.
        let body = hex(concat!(
            "00070009010203040500000000000000",
            "0001000c000000100000000000000000"
        ));
        let (rest, hello) = Hello::decode_body(Version::OF13, &body).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            hello.elements[0],
            HelloElement::Unknown(UnknownProperty {
                prop_type: 7,
                data: bytes::Bytes::from_static(&[1, 2, 3, 4, 5])
            })
        );
        assert_eq!(
            hello.elements[1],
            HelloElement::VersionBitmap(vec![0x10, 0])
        );
        let mut out = BytesMut::new();
        hello.encode_body(Version::OF13, &mut out).unwrap();
        assert_eq!(&out[..], &body[..]);
    }

    #[test]
    fn malformed_elements_are_errors() {
        for (body, offset) in [
            ("0001", 10),             // element header cut short
            ("00010003", 10),         // length below 4
            ("0001000600000000", 10), // bitmap of 2 bytes
            ("0001000c00000010", 10), // claims more than is there
        ] {
            let mut bytes = hex("040000000000000a");
            bytes.extend(hex(body));
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
            let err = Message::decode(&bytes).unwrap_err();
            assert_eq!(err.offset, offset, "{body}: {err}");
        }
    }

    #[test]
    fn negotiation_follows_the_specification() {
        let ours = [Version::OF13, Version::OF14];
        let both = Hello::offering(&[Version::OF10, Version::OF13, Version::OF14, Version::OF15]);
        assert_eq!(negotiate(&ours, Version::OF15, &both), Some(Version::OF14));
        let only13 = Hello::offering(&[Version::OF10, Version::OF13]);
        assert_eq!(
            negotiate(&ours, Version::OF13, &only13),
            Some(Version::OF13)
        );
        let disjoint = Hello::offering(&[Version::OF10]);
        assert_eq!(negotiate(&ours, Version::OF10, &disjoint), None);
        // No bitmap: the lower header version, if we support it.
        let none = Hello::default();
        assert_eq!(negotiate(&ours, Version::OF15, &none), Some(Version::OF14));
        assert_eq!(negotiate(&ours, Version::OF13, &none), Some(Version::OF13));
        assert_eq!(negotiate(&ours, Version::OF10, &none), None);
        assert_eq!(negotiate(&[], Version::OF13, &none), None);
    }
}
