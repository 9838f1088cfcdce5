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
    /// OpenFlow 1.1.
    pub const OF11: Version = Version(2);
    /// OpenFlow 1.2.
    pub const OF12: Version = Version(3);
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

wire_enum! {
    /// An OpenFlow message type code (`ofp_type`); unknown ones print as `TYPE_n`.
    pub struct MsgType(u8) as "TYPE_{}" {
        /// `OFPT_HELLO`.
        HELLO = 0 => "HELLO",
        /// `OFPT_ERROR`.
        ERROR = 1 => "ERROR",
        /// `OFPT_ECHO_REQUEST`.
        ECHO_REQUEST = 2 => "ECHO_REQUEST",
        /// `OFPT_ECHO_REPLY`.
        ECHO_REPLY = 3 => "ECHO_REPLY",
        /// `OFPT_EXPERIMENTER`.
        EXPERIMENTER = 4 => "EXPERIMENTER",
        /// `OFPT_FEATURES_REQUEST`.
        FEATURES_REQUEST = 5 => "FEATURES_REQUEST",
        /// `OFPT_FEATURES_REPLY`.
        FEATURES_REPLY = 6 => "FEATURES_REPLY",
        /// `OFPT_GET_CONFIG_REQUEST`.
        GET_CONFIG_REQUEST = 7 => "GET_CONFIG_REQUEST",
        /// `OFPT_GET_CONFIG_REPLY`.
        GET_CONFIG_REPLY = 8 => "GET_CONFIG_REPLY",
        /// `OFPT_SET_CONFIG`.
        SET_CONFIG = 9 => "SET_CONFIG",
        /// `OFPT_PACKET_IN`.
        PACKET_IN = 10 => "PACKET_IN",
        /// `OFPT_FLOW_REMOVED`.
        FLOW_REMOVED = 11 => "FLOW_REMOVED",
        /// `OFPT_PORT_STATUS`.
        PORT_STATUS = 12 => "PORT_STATUS",
        /// `OFPT_PACKET_OUT`.
        PACKET_OUT = 13 => "PACKET_OUT",
        /// `OFPT_FLOW_MOD`.
        FLOW_MOD = 14 => "FLOW_MOD",
        /// `OFPT_GROUP_MOD`.
        GROUP_MOD = 15 => "GROUP_MOD",
        /// `OFPT_PORT_MOD`.
        PORT_MOD = 16 => "PORT_MOD",
        /// `OFPT_TABLE_MOD`.
        TABLE_MOD = 17 => "TABLE_MOD",
        /// `OFPT_MULTIPART_REQUEST`.
        MULTIPART_REQUEST = 18 => "MULTIPART_REQUEST",
        /// `OFPT_MULTIPART_REPLY`.
        MULTIPART_REPLY = 19 => "MULTIPART_REPLY",
        /// `OFPT_BARRIER_REQUEST`.
        BARRIER_REQUEST = 20 => "BARRIER_REQUEST",
        /// `OFPT_BARRIER_REPLY`.
        BARRIER_REPLY = 21 => "BARRIER_REPLY",
        /// `OFPT_QUEUE_GET_CONFIG_REQUEST`.
        QUEUE_GET_CONFIG_REQUEST = 22 => "QUEUE_GET_CONFIG_REQUEST",
        /// `OFPT_QUEUE_GET_CONFIG_REPLY`.
        QUEUE_GET_CONFIG_REPLY = 23 => "QUEUE_GET_CONFIG_REPLY",
        /// `OFPT_ROLE_REQUEST`.
        ROLE_REQUEST = 24 => "ROLE_REQUEST",
        /// `OFPT_ROLE_REPLY`.
        ROLE_REPLY = 25 => "ROLE_REPLY",
        /// `OFPT_GET_ASYNC_REQUEST`.
        GET_ASYNC_REQUEST = 26 => "GET_ASYNC_REQUEST",
        /// `OFPT_GET_ASYNC_REPLY`.
        GET_ASYNC_REPLY = 27 => "GET_ASYNC_REPLY",
        /// `OFPT_SET_ASYNC`.
        SET_ASYNC = 28 => "SET_ASYNC",
        /// `OFPT_METER_MOD`.
        METER_MOD = 29 => "METER_MOD",
        /// `OFPT_ROLE_STATUS`.
        ROLE_STATUS = 30 => "ROLE_STATUS",
        /// `OFPT_TABLE_STATUS`.
        TABLE_STATUS = 31 => "TABLE_STATUS",
        /// `OFPT_REQUESTFORWARD`.
        REQUESTFORWARD = 32 => "REQUESTFORWARD",
        /// `OFPT_BUNDLE_CONTROL`.
        BUNDLE_CONTROL = 33 => "BUNDLE_CONTROL",
        /// `OFPT_BUNDLE_ADD_MESSAGE`.
        BUNDLE_ADD_MESSAGE = 34 => "BUNDLE_ADD_MESSAGE",
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
