//! Errors of the codec: small, typed, and (for decoding) located by byte offset.

use thiserror::Error;

/// A message, or a stream of them, that could not be decoded.
///
/// `offset` counts bytes from the start of the buffer handed to the decoder
/// (for [`crate::Message::decode`], the first byte of the OpenFlow header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("at offset {offset}: {kind}")]
pub struct DecodeError {
    /// Where in the input decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub kind: DecodeErrorKind,
}

/// What was wrong with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    /// The input ended inside a structure.
    #[error("truncated input")]
    Truncated,
    /// A length field claims less than the fixed part of its structure.
    #[error("{what} length {length} is below its minimum of {min}")]
    LengthTooShort {
        /// The structure whose length field is wrong.
        what: &'static str,
        /// The length it claims.
        length: usize,
        /// The smallest length it can have.
        min: usize,
    },
    /// A length field claims more than the configured or protocol maximum.
    #[error("{what} length {length} exceeds the maximum of {max}")]
    LengthTooLong {
        /// The structure whose length field is wrong.
        what: &'static str,
        /// The length it claims.
        length: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// A length field that must be a multiple of 8 is not.
    #[error("{what} length {length} is not a multiple of 8")]
    Misaligned {
        /// The structure whose length field is wrong.
        what: &'static str,
        /// The length it claims.
        length: usize,
    },
    /// The header names an OpenFlow version this codec does not speak.
    #[error("unsupported OpenFlow version {0:#04x}")]
    UnsupportedVersion(u8),
    /// Bytes remain after a structure that should have consumed them all.
    #[error("{0} has trailing bytes")]
    TrailingBytes(&'static str),
    /// A field holds a value the protocol forbids.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// A message that cannot be put on the wire as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A structure grew past what its length field can express.
    #[error("{what} is {length} bytes, more than its length field allows ({max})")]
    TooLong {
        /// The structure that overflowed.
        what: &'static str,
        /// Its encoded size.
        length: usize,
        /// The largest size its length field can carry.
        max: usize,
    },
    /// A match field appears without the fields it depends on (OpenFlow 1.3 §7.2.3.6).
    #[error("match field {field} requires {requires}")]
    MissingPrerequisite {
        /// The field that was matched.
        field: &'static str,
        /// What it needs earlier in the match.
        requires: &'static str,
    },
    /// A match field appears twice.
    #[error("match field {0} appears more than once")]
    DuplicateField(&'static str),
    /// A mask on a field that cannot be masked, or value bits outside the mask.
    #[error("bad mask on match field {0}")]
    BadMask(&'static str),
    /// A value does not fit the field or is reserved.
    #[error("value out of range for {0}")]
    OutOfRange(&'static str),
    /// The message type or feature does not exist in the chosen OpenFlow version.
    #[error("{what} does not exist in OpenFlow wire version {version}")]
    WrongVersion {
        /// The message or feature.
        what: &'static str,
        /// The wire version it was encoded for.
        version: u8,
    },
}
