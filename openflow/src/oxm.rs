//! Flow matches: OXM TLVs (OpenFlow-basic and the Nicira/OVS extensions).
//!
//! STUB: keeps the whole `ofp_match` as bytes; replaced by the real decoder.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::wire::{self, PResult};

/// An `ofp_match` structure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Match {
    /// Raw match (stub).
    #[serde(with = "crate::wire::hex_bytes")]
    pub raw: Bytes,
}

impl Match {
    /// Decodes an `ofp_match` including its padding to 8 bytes.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, Match> {
        let (_, _ty) = wire::u16(i)?;
        let (_, len) = wire::u16(&i[2..])?;
        let padded = (usize::from(len) + 7) / 8 * 8;
        let (rest, raw) = wire::frame(i, padded, 4, "match")?;
        Ok((
            rest,
            Match {
                raw: Bytes::copy_from_slice(raw),
            },
        ))
    }

    /// Encodes the match with its padding.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_slice(&self.raw);
        Ok(())
    }
}

impl std::fmt::Display for Match {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "match({} bytes)", self.raw.len())
    }
}
