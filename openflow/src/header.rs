//! The fixed OpenFlow header, protocol versions, message types, and framing.

use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeError, DecodeErrorKind};

/// Size of the OpenFlow header that starts every message.
pub const HEADER_LEN: usize = 8;

/// The largest message the 16-bit length field can describe.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// An OpenFlow wire version. Unknown values are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Version(pub u8);

impl Version {
    /// OpenFlow 1.0.
    pub const OF10: Version = Version(1);
    /// OpenFlow 1.3, the minimum augur speaks.
    pub const OF13: Version = Version(4);
    /// OpenFlow 1.4, used when the switch offers it (for bundles).
    pub const OF14: Version = Version(5);
    /// OpenFlow 1.5, recognised in HELLO bitmaps but not decoded.
    pub const OF15: Version = Version(6);

    /// Whether this codec decodes message bodies of this version.
    pub fn is_supported(self) -> bool {
        self == Version::OF13 || self == Version::OF14
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("OF1.0"),
            2 => f.write_str("OF1.1"),
            3 => f.write_str("OF1.2"),
            4 => f.write_str("OF1.3"),
            5 => f.write_str("OF1.4"),
            6 => f.write_str("OF1.5"),
            v => write!(f, "OF(0x{v:02x})"),
        }
    }
}

/// An OpenFlow message type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MsgType(pub u8);

#[allow(missing_docs)]
impl MsgType {
    pub const HELLO: MsgType = MsgType(0);
    pub const ERROR: MsgType = MsgType(1);
    pub const ECHO_REQUEST: MsgType = MsgType(2);
    pub const ECHO_REPLY: MsgType = MsgType(3);
    pub const EXPERIMENTER: MsgType = MsgType(4);
    pub const FEATURES_REQUEST: MsgType = MsgType(5);
    pub const FEATURES_REPLY: MsgType = MsgType(6);
    pub const GET_CONFIG_REQUEST: MsgType = MsgType(7);
    pub const GET_CONFIG_REPLY: MsgType = MsgType(8);
    pub const SET_CONFIG: MsgType = MsgType(9);
    pub const PACKET_IN: MsgType = MsgType(10);
    pub const FLOW_REMOVED: MsgType = MsgType(11);
    pub const PORT_STATUS: MsgType = MsgType(12);
    pub const PACKET_OUT: MsgType = MsgType(13);
    pub const FLOW_MOD: MsgType = MsgType(14);
    pub const GROUP_MOD: MsgType = MsgType(15);
    pub const PORT_MOD: MsgType = MsgType(16);
    pub const TABLE_MOD: MsgType = MsgType(17);
    pub const MULTIPART_REQUEST: MsgType = MsgType(18);
    pub const MULTIPART_REPLY: MsgType = MsgType(19);
    pub const BARRIER_REQUEST: MsgType = MsgType(20);
    pub const BARRIER_REPLY: MsgType = MsgType(21);
    pub const QUEUE_GET_CONFIG_REQUEST: MsgType = MsgType(22);
    pub const QUEUE_GET_CONFIG_REPLY: MsgType = MsgType(23);
    pub const ROLE_REQUEST: MsgType = MsgType(24);
    pub const ROLE_REPLY: MsgType = MsgType(25);
    pub const GET_ASYNC_REQUEST: MsgType = MsgType(26);
    pub const GET_ASYNC_REPLY: MsgType = MsgType(27);
    pub const SET_ASYNC: MsgType = MsgType(28);
    pub const METER_MOD: MsgType = MsgType(29);
    pub const ROLE_STATUS: MsgType = MsgType(30);
    pub const TABLE_STATUS: MsgType = MsgType(31);
    pub const REQUESTFORWARD: MsgType = MsgType(32);
    pub const BUNDLE_CONTROL: MsgType = MsgType(33);
    pub const BUNDLE_ADD_MESSAGE: MsgType = MsgType(34);

    /// The specification's name for the type, if it has one.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 35] = [
            "HELLO",
            "ERROR",
            "ECHO_REQUEST",
            "ECHO_REPLY",
            "EXPERIMENTER",
            "FEATURES_REQUEST",
            "FEATURES_REPLY",
            "GET_CONFIG_REQUEST",
            "GET_CONFIG_REPLY",
            "SET_CONFIG",
            "PACKET_IN",
            "FLOW_REMOVED",
            "PORT_STATUS",
            "PACKET_OUT",
            "FLOW_MOD",
            "GROUP_MOD",
            "PORT_MOD",
            "TABLE_MOD",
            "MULTIPART_REQUEST",
            "MULTIPART_REPLY",
            "BARRIER_REQUEST",
            "BARRIER_REPLY",
            "QUEUE_GET_CONFIG_REQUEST",
            "QUEUE_GET_CONFIG_REPLY",
            "ROLE_REQUEST",
            "ROLE_REPLY",
            "GET_ASYNC_REQUEST",
            "GET_ASYNC_REPLY",
            "SET_ASYNC",
            "METER_MOD",
            "ROLE_STATUS",
            "TABLE_STATUS",
            "REQUESTFORWARD",
            "BUNDLE_CONTROL",
            "BUNDLE_ADD_MESSAGE",
        ];
        NAMES.get(usize::from(self.0)).copied()
    }
}

impl fmt::Display for MsgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE_{}", self.0),
        }
    }
}

/// The eight bytes that start every OpenFlow message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Wire version.
    pub version: Version,
    /// Message type.
    pub msg_type: MsgType,
    /// Length of the whole message, header included.
    pub length: u16,
    /// Transaction id, echoed by replies.
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first eight bytes of `buf`, if there are eight.
    pub fn peek(buf: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            version: Version(b[0]),
            msg_type: MsgType(b[1]),
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// Splits a byte stream into whole OpenFlow messages.
///
/// Sans-I/O: the caller appends whatever arrived from the socket to a buffer
/// and asks for frames until there are none. A frame whose header claims a
/// length below [`HEADER_LEN`] or above the configured maximum is an error that
/// should end the connection: the stream can no longer be resynchronised.
#[derive(Debug, Clone, Copy)]
pub struct Deframer {
    max_len: usize,
}

impl Default for Deframer {
    fn default() -> Self {
        Deframer {
            max_len: MAX_MESSAGE_LEN,
        }
    }
}

impl Deframer {
    /// A deframer that rejects messages longer than `max_len` bytes
    /// (at most [`MAX_MESSAGE_LEN`], at least [`HEADER_LEN`]).
    pub fn with_max_len(max_len: usize) -> Self {
        Deframer {
            max_len: max_len.clamp(HEADER_LEN, MAX_MESSAGE_LEN),
        }
    }

    /// The length of the first message in `buf` if it is complete,
    /// `Ok(None)` if more bytes are needed.
    pub fn frame_len(&self, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(header) = Header::peek(buf) else {
            return Ok(None);
        };
        let length = usize::from(header.length);
        if length < HEADER_LEN {
            return Err(DecodeError {
                offset: 2,
                kind: DecodeErrorKind::LengthTooShort {
                    what: "message",
                    length,
                    min: HEADER_LEN,
                },
            });
        }
        if length > self.max_len {
            return Err(DecodeError {
                offset: 2,
                kind: DecodeErrorKind::LengthTooLong {
                    what: "message",
                    length,
                    max: self.max_len,
                },
            });
        }
        Ok((buf.len() >= length).then_some(length))
    }

    /// Removes and returns the first whole message of `buf`, if there is one.
    pub fn next_frame(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        match self.frame_len(buf)? {
            Some(len) => Ok(Some(buf.split_to(len).freeze())),
            None => Ok(None),
        }
    }

    /// Iterates over the whole messages of a complete buffer (a capture file,
    /// concatenated messages). Yields an error, and then stops, at the first
    /// frame that is malformed or cut short.
    pub fn frames<'a>(&self, buf: &'a [u8]) -> Frames<'a> {
        Frames {
            deframer: *self,
            buf,
            offset: 0,
            failed: false,
        }
    }
}

/// Iterator returned by [`Deframer::frames`]: `(offset, frame)` pairs.
#[derive(Debug)]
pub struct Frames<'a> {
    deframer: Deframer,
    buf: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(usize, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let result = match self.deframer.frame_len(self.buf) {
            Ok(Some(len)) => {
                let (frame, rest) = self.buf.split_at(len);
                let at = self.offset;
                self.buf = rest;
                self.offset += len;
                return Some(Ok((at, frame)));
            }
            Ok(None) => Err(DecodeError {
                offset: self.offset + self.buf.len(),
                kind: DecodeErrorKind::Truncated,
            }),
            Err(e) => Err(DecodeError {
                offset: self.offset + e.offset,
                kind: e.kind,
            }),
        };
        self.failed = true;
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframer_waits_for_whole_messages() {
        let d = Deframer::default();
        let mut buf = BytesMut::from(&[4u8, 0, 0, 16, 0, 0, 0, 1, 0, 0][..]);
        assert_eq!(d.next_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[0; 6]);
        let frame = d.next_frame(&mut buf).unwrap().unwrap();
        assert_eq!(frame.len(), 16);
        assert!(buf.is_empty());
    }

    #[test]
    fn deframer_rejects_short_and_long_lengths() {
        let d = Deframer::with_max_len(1024);
        assert!(d.frame_len(&[4, 0, 0, 7, 0, 0, 0, 0]).is_err());
        assert!(d.frame_len(&[4, 0, 0x10, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn frames_reports_the_offset_of_a_truncated_tail() {
        let d = Deframer::default();
        let buf = [4u8, 2, 0, 8, 0, 0, 0, 1, 4, 2, 0, 9, 0];
        let got: Vec<_> = d.frames(&buf).collect();
        assert!(matches!(got[0], Ok((0, _))));
        assert_eq!(
            got[1],
            Err(DecodeError {
                offset: 13,
                kind: DecodeErrorKind::Truncated
            })
        );
        assert_eq!(got.len(), 2);
    }
}
