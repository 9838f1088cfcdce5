//! Temporary opaque bodies, replaced module by module as each is implemented.

/// Declares message bodies that are kept as raw bytes.
macro_rules! opaque_stub {
    ($($name:ident),* $(,)?) => {$(
        /// Body kept as raw bytes until its decoder is written.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            /// The body's bytes.
            #[serde(with = "crate::wire::hex_bytes")]
            pub raw: bytes::Bytes,
        }

        impl crate::message::BodyCodec for $name {
            fn decode_body(_: crate::Version, i: &[u8]) -> crate::wire::PResult<'_, Self> {
                Ok((&i[i.len()..], $name { raw: bytes::Bytes::copy_from_slice(i) }))
            }

            fn encode_body(
                &self,
                _: crate::Version,
                out: &mut bytes::BytesMut,
            ) -> Result<(), crate::EncodeError> {
                bytes::BufMut::put_slice(out, &self.raw);
                Ok(())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} bytes", self.raw.len())
            }
        }
    )*};
}

pub(crate) use opaque_stub;
