//! The JSON-RPC framing as a tokio-util codec over the core splitter.

use bytes::{BufMut, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use crate::framing::{FrameLimits, FramingError, JsonSplitter};
use crate::jsonrpc::{Message, MessageError};

/// Why a received byte stream was rejected.
#[derive(Debug, Error)]
pub enum CodecError {
    /// Reading or writing failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Message boundaries could not be found.
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    /// A message was not valid JSON-RPC.
    #[error("{0}")]
    Message(#[from] MessageError),
}

/// Splits concatenated JSON-RPC messages and decodes each.
#[derive(Debug, Clone)]
pub struct JsonRpcCodec {
    splitter: JsonSplitter,
}

impl JsonRpcCodec {
    /// A codec enforcing `limits` on incoming messages.
    pub fn new(limits: FrameLimits) -> Self {
        Self {
            splitter: JsonSplitter::new(limits),
        }
    }
}

impl Decoder for JsonRpcCodec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        match self.splitter.scan(src)? {
            Some(len) => {
                let frame = src.split_to(len);
                Ok(Some(Message::decode(&frame)?))
            }
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        match self.decode(src)? {
            Some(m) => Ok(Some(m)),
            None if src.iter().all(u8::is_ascii_whitespace) => Ok(None),
            None => Err(CodecError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of a message",
            ))),
        }
    }
}

impl Encoder<&Message> for JsonRpcCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut buf = Vec::new();
        item.encode(&mut buf);
        dst.put_slice(&buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_partial_reads() {
        let mut codec = JsonRpcCodec::new(FrameLimits::default());
        let mut buf = BytesMut::new();
        let input =
            br#"{"id":1,"result":[],"error":null}{"method":"echo","params":[],"id":"echo"}"#;
        let mut got = Vec::new();
        for chunk in input.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"{\"id\":");
        assert!(codec.decode_eof(&mut buf).is_err());
    }

    #[test]
    fn encodes_like_ovs() {
        let mut codec = JsonRpcCodec::new(FrameLimits::default());
        let mut buf = BytesMut::new();
        let m = Message::Reply {
            result: serde_json::json!([]),
            id: serde_json::json!("echo"),
        };
        codec.encode(&m, &mut buf).unwrap();
        assert_eq!(Message::decode(&buf).unwrap(), m);
    }
}
