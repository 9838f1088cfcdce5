//! Bounds-checked reading (nom over complete input) and length-patching writing.
//!
//! Every decoder in the crate is a nom parser over `&[u8]` with [`WireError`] as
//! its error. A `WireError` remembers the *address* of the byte where decoding
//! failed rather than how much input was left: nested structures are parsed from
//! sub-slices, so "bytes remaining" would be relative to the wrong end. The
//! top-level entry points turn the address back into an offset from the start
//! of their buffer with [`WireError::into_decode_error`].

use bytes::{BufMut, BytesMut};
use nom::Parser;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

/// Result of an internal decoder.
pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, WireError>;

/// Decoding failure carrying the address of the offending byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError {
    at: usize,
    kind: DecodeErrorKind,
}

impl WireError {
    /// An error of `kind` at the first byte of `input`.
    pub(crate) fn at(input: &[u8], kind: DecodeErrorKind) -> Self {
        WireError {
            at: input.as_ptr() as usize,
            kind,
        }
    }

    /// Locates the error relative to `base`, the buffer decoding started from.
    pub(crate) fn into_decode_error(self, base: &[u8]) -> DecodeError {
        let start = base.as_ptr() as usize;
        let offset = self.at.saturating_sub(start).min(base.len());
        DecodeError {
            offset,
            kind: self.kind,
        }
    }
}

impl nom::error::ParseError<&[u8]> for WireError {
    fn from_error_kind(input: &[u8], kind: nom::error::ErrorKind) -> Self {
        let kind = match kind {
            nom::error::ErrorKind::Eof => DecodeErrorKind::Truncated,
            _ => DecodeErrorKind::Invalid("structure"),
        };
        WireError::at(input, kind)
    }

    fn append(_: &[u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// Converts the outcome of a top-level parse over `base` into a public result.
pub(crate) fn finish<T>(base: &[u8], result: PResult<'_, T>) -> Result<T, DecodeError> {
    match result {
        Ok((_, value)) => Ok(value),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.into_decode_error(base)),
        Err(nom::Err::Incomplete(_)) => Err(DecodeError {
            offset: base.len(),
            kind: DecodeErrorKind::Truncated,
        }),
    }
}

/// Fails with `kind` at `input`.
pub(crate) fn fail<T>(input: &[u8], kind: DecodeErrorKind) -> PResult<'_, T> {
    Err(nom::Err::Error(WireError::at(input, kind)))
}

/// Reads a byte.
pub(crate) fn u8(i: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(i)
}

/// Reads a big-endian u16.
pub(crate) fn u16(i: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::be_u16(i)
}

/// Reads a big-endian u32.
pub(crate) fn u32(i: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u32(i)
}

/// Reads a big-endian u64.
pub(crate) fn u64(i: &[u8]) -> PResult<'_, u64> {
    nom::number::complete::be_u64(i)
}

/// Takes exactly `n` bytes.
pub(crate) fn take(i: &[u8], n: usize) -> PResult<'_, &[u8]> {
    if i.len() < n {
        return fail(i, DecodeErrorKind::Truncated);
    }
    Ok((&i[n..], &i[..n]))
}

/// Takes a fixed-size array.
pub(crate) fn array<const N: usize>(i: &[u8]) -> PResult<'_, [u8; N]> {
    let (rest, bytes) = take(i, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok((rest, out))
}

/// Skips `n` bytes of padding. Padding content is not checked (peers differ),
/// and encoders always write zeros.
pub(crate) fn pad(i: &[u8], n: usize) -> PResult<'_, ()> {
    take(i, n).map(|(rest, _)| (rest, ()))
}

/// Reads a NUL-padded fixed-width string field (port names, descriptions).
pub(crate) fn fixed_str(i: &[u8], n: usize) -> PResult<'_, String> {
    let (rest, raw) = take(i, n)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Ok((rest, String::from_utf8_lossy(&raw[..end]).into_owned()))
}

/// Splits `i` into `len` bytes and the rest, checking `len >= min` first.
/// `len` is a length field that counts the whole structure, read by the caller
/// *without* consuming input.
pub(crate) fn frame<'a>(
    i: &'a [u8],
    len: usize,
    min: usize,
    what: &'static str,
) -> PResult<'a, &'a [u8]> {
    if len < min {
        return fail(
            i,
            DecodeErrorKind::LengthTooShort {
                what,
                length: len,
                min,
            },
        );
    }
    take(i, len)
}

/// Applies `item` repeatedly until `i` is exhausted.
///
/// Each item must consume at least one byte; one that does not is reported as
/// invalid rather than looping forever.
pub(crate) fn many<'a, T>(
    mut i: &'a [u8],
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let mut out = Vec::new();
    while !i.is_empty() {
        let (rest, value) = item(i)?;
        if rest.len() >= i.len() {
            return fail(i, DecodeErrorKind::Invalid("zero-length element"));
        }
        out.push(value);
        i = rest;
    }
    Ok((i, out))
}

/// Requires that `i` is fully consumed.
pub(crate) fn all_consumed<'a>(i: &'a [u8], what: &'static str) -> PResult<'a, ()> {
    if i.is_empty() {
        Ok((i, ()))
    } else {
        fail(i, DecodeErrorKind::TrailingBytes(what))
    }
}

/// Runs a nom parser built from combinators (for the few places that use them).
#[allow(dead_code)]
pub(crate) fn run<'a, O>(
    i: &'a [u8],
    mut p: impl Parser<&'a [u8], Output = O, Error = WireError>,
) -> PResult<'a, O> {
    p.parse(i)
}

/// Reserves a big-endian u16 length field and returns its position.
pub(crate) fn reserve_u16(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_u16(0);
    at
}

/// Writes into a field reserved with [`reserve_u16`] the number of bytes
/// between `start` and the end of `out`.
pub(crate) fn patch_len_u16(
    out: &mut BytesMut,
    field: usize,
    start: usize,
    what: &'static str,
) -> Result<usize, EncodeError> {
    let length = out.len() - start;
    let value = u16::try_from(length).map_err(|_| EncodeError::TooLong {
        what,
        length,
        max: usize::from(u16::MAX),
    })?;
    out[field..field + 2].copy_from_slice(&value.to_be_bytes());
    Ok(length)
}

/// Writes `n` zero bytes.
pub(crate) fn put_zeros(out: &mut BytesMut, n: usize) {
    out.put_bytes(0, n);
}

/// Pads `out` with zeros so that the structure starting at `start` ends on an
/// 8-byte boundary.
pub(crate) fn pad_to_8(out: &mut BytesMut, start: usize) {
    let len = out.len() - start;
    put_zeros(out, (8 - len % 8) % 8);
}

/// Writes a string into a NUL-padded fixed-width field, truncating it so the
/// field always ends in at least one NUL.
pub(crate) fn put_fixed_str(out: &mut BytesMut, s: &str, n: usize) {
    let bytes = s.as_bytes();
    let len = bytes.len().min(n.saturating_sub(1));
    out.put_slice(&bytes[..len]);
    put_zeros(out, n - len);
}

/// Serde helper: opaque byte strings appear as lowercase hex in JSON.
pub(crate) mod hex_bytes {
    use std::fmt::Write;

    /// Serializes bytes as a hex string.
    pub(crate) fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b {
            let _ = write!(out, "{byte:02x}");
        }
        s.serialize_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_offsets_are_relative_to_the_base_buffer() {
        let base = [0u8, 1, 2, 3, 4, 5];
        let inner = &base[2..4];
        let err = u32(inner).map(|_| ()).unwrap_err();
        let nom::Err::Error(e) = err else {
            panic!("expected a recoverable error");
        };
        assert_eq!(e.into_decode_error(&base).offset, 2);
    }

    #[test]
    fn many_rejects_non_advancing_items() {
        let input = [1u8, 2, 3];
        let result = many(&input, |i| Ok((i, ())));
        assert!(result.is_err());
    }

    #[test]
    fn fixed_strings_round_trip_and_stay_nul_terminated() {
        let mut out = BytesMut::new();
        put_fixed_str(&mut out, "eth0", 16);
        assert_eq!(out.len(), 16);
        let (_, s) = fixed_str(&out, 16).unwrap();
        assert_eq!(s, "eth0");
        let mut out = BytesMut::new();
        put_fixed_str(&mut out, "0123456789abcdefXYZ", 16);
        assert_eq!(out[15], 0);
    }
}
