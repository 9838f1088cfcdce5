//! Bounds-checked reading (nom over complete input) and length-patching writing.
//!
//! Every decoder in the crate is a nom parser over `&[u8]` with [`WireError`] as
//! its error. A `WireError` remembers the *address* of the byte where decoding
//! failed rather than how much input was left: nested structures are parsed from
//! sub-slices, so "bytes remaining" would be relative to the wrong end. The
//! top-level entry points turn the address back into an offset from the start
//! of their buffer with [`WireError::into_decode_error`].

use bytes::{BufMut, BytesMut};

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

/// Reads a NUL-terminated fixed-width text field of `n` bytes (port names,
/// switch descriptions).
///
/// The text is what precedes the first NUL, at most `n - 1` bytes: a field
/// missing its terminating NUL loses its last byte. Invalid UTF-8 is replaced
/// and the result cut back to `n - 1` bytes at a character boundary, so that
/// decoded text always encodes to itself and decodes back unchanged.
pub(crate) fn fixed_str(i: &[u8], n: usize) -> PResult<'_, String> {
    let (rest, raw) = take(i, n)?;
    let max = n.saturating_sub(1);
    let end = raw
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(raw.len())
        .min(max);
    let text = String::from_utf8_lossy(raw.get(..end).unwrap_or_default());
    Ok((rest, truncated(&text, max).to_owned()))
}

/// Checks that a fixed-size structure claims exactly `expected` bytes:
/// `length` is what its length field (at `length_field`) says, and a
/// mismatch is reported there.
pub(crate) fn exact_len<'a>(
    length_field: &'a [u8],
    length: usize,
    expected: usize,
    what: &'static str,
) -> PResult<'a, ()> {
    if length < expected {
        fail(
            length_field,
            DecodeErrorKind::LengthTooShort {
                what,
                length,
                min: expected,
            },
        )
    } else if length > expected {
        fail(
            length_field,
            DecodeErrorKind::LengthTooLong {
                what,
                length,
                max: expected,
            },
        )
    } else {
        Ok((length_field, ()))
    }
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
    match i.split_at_checked(length) {
        Some((whole, rest)) => Ok((rest, whole)),
        None => fail(
            length_field,
            DecodeErrorKind::LengthTooLong {
                what,
                length,
                max: i.len(),
            },
        ),
    }
}

/// Splits off the structure at the start of `i` whose big-endian u16 length
/// field (counting the whole structure) sits `at` bytes in. A length below
/// `min` or beyond the bytes present is reported at the length field.
pub(crate) fn split_by_length<'a>(
    i: &'a [u8],
    at: usize,
    min: usize,
    what: &'static str,
) -> PResult<'a, &'a [u8]> {
    let Some((_, field)) = i.split_at_checked(at) else {
        return fail(&i[i.len()..], DecodeErrorKind::Truncated);
    };
    let (_, length) = u16(field)?;
    let length = usize::from(length);
    if length < min {
        return fail(field, DecodeErrorKind::LengthTooShort { what, length, min });
    }
    split_claimed(i, field, length, what)
}

/// How many structures framed as for [`split_by_length`] `i` holds, found by
/// hopping from length field to length field (stopping at the first that is
/// short or overruns), so a list can be allocated once for the entries
/// actually present rather than for what a hostile count would claim.
fn count_by_length(mut i: &[u8], at: usize, min: usize) -> usize {
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

/// Decodes a list of structures framed as for [`split_by_length`] that fills
/// all of `i`, allocating once for the entries present.
pub(crate) fn list_by_length<'a, T>(
    i: &'a [u8],
    at: usize,
    min: usize,
    item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let mut out = Vec::with_capacity(count_by_length(i, at, min));
    let (rest, ()) = many_into(i, &mut out, item)?;
    Ok((rest, out))
}

/// Applies `item` repeatedly until `i` is exhausted.
///
/// Each item must consume at least one byte; one that does not is reported as
/// invalid rather than looping forever.
pub(crate) fn many<'a, T>(
    i: &'a [u8],
    item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let mut out = Vec::new();
    let (rest, ()) = many_into(i, &mut out, item)?;
    Ok((rest, out))
}

/// [`many`], appending to `out` (which the caller may have sized).
pub(crate) fn many_into<'a, T>(
    mut i: &'a [u8],
    out: &mut Vec<T>,
    mut item: impl FnMut(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, ()> {
    while !i.is_empty() {
        let (rest, value) = item(i)?;
        if rest.len() >= i.len() {
            return fail(i, DecodeErrorKind::Invalid("zero-length element"));
        }
        out.push(value);
        i = rest;
    }
    Ok((i, ()))
}

/// Requires that `i` is fully consumed.
pub(crate) fn all_consumed<'a>(i: &'a [u8], what: &'static str) -> PResult<'a, ()> {
    if i.is_empty() {
        Ok((i, ()))
    } else {
        fail(i, DecodeErrorKind::TrailingBytes(what))
    }
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

/// Writes `text` into a NUL-padded field of `n` bytes, cut at a character
/// boundary so the field holds valid UTF-8 and ends in at least one NUL.
pub(crate) fn put_fixed_str(out: &mut BytesMut, text: &str, n: usize) {
    let text = truncated(text, n.saturating_sub(1));
    out.put_slice(text.as_bytes());
    put_zeros(out, n - text.len());
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncated(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
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

    #[test]
    fn fixed_strings_always_re_encode_to_themselves() {
        // Invalid UTF-8 that grows when replaced, and a field without its NUL.
        let mut field = [b'a'; 16];
        field[3] = 0xff;
        field[4] = 0xfe;
        let (_, text) = fixed_str(&field, 16).unwrap();
        assert!(text.len() <= 15);
        let mut out = BytesMut::new();
        put_fixed_str(&mut out, &text, 16);
        assert_eq!(out.len(), 16);
        assert_eq!(fixed_str(&out, 16).unwrap().1, text);
        // Multi-byte characters are never split.
        let mut out = BytesMut::new();
        put_fixed_str(&mut out, "ポートポートポート", 16);
        assert_eq!(fixed_str(&out, 16).unwrap().1, "ポートポー");
    }

    #[test]
    fn lengths_are_checked_at_their_field() {
        let buf = [0u8, 0, 0, 3, 9, 9];
        let nom::Err::Error(e) = split_by_length(&buf, 2, 4, "thing").unwrap_err() else {
            panic!()
        };
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
        assert!(split_by_length(&[0, 0], 2, 4, "thing").is_err());
    }

    #[test]
    fn framed_lists_are_counted_before_they_are_decoded() {
        // Two 4-byte entries, then one claiming 0x100 bytes.
        let buf = [0u8, 4, 1, 1, 0, 4, 2, 2, 1, 0];
        assert_eq!(count_by_length(&buf, 0, 4), 2);
        assert_eq!(count_by_length(&buf[..8], 0, 4), 2);
        let entry = |i| split_by_length(i, 0, 4, "entry");
        assert_eq!(list_by_length(&buf[..8], 0, 4, entry).unwrap().1.len(), 2);
        assert!(list_by_length(&buf, 0, 4, entry).is_err());
    }
}
