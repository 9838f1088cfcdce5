//! A sans-I/O codec for OpenFlow 1.3 and 1.4 with the Open vSwitch extensions a
//! stateful policy controller needs.
//!
//! The crate does no I/O and reads no clock: hand it bytes, get typed messages;
//! hand it messages, get bytes. [`Deframer`] cuts a byte stream into messages,
//! [`Message::decode`] decodes one, [`Message::encode`] encodes one.
//!
//! Wire enumerations are newtypes over their integer (`MsgType(u8)`,
//! `ActionType(u16)`, ...) so values this crate does not know survive a
//! decode/encode round trip; structures it does not know decode into opaque
//! variants that re-encode byte for byte. Malformed input yields a
//! [`DecodeError`] with the offset of the fault and never panics.
#![forbid(unsafe_code)]

pub mod action;
mod error;
pub mod group;
mod header;
pub mod instruction;
mod message;
pub mod meter;
pub mod msg;
pub mod multipart;
pub mod oxm;
pub mod port;
pub mod session;
mod wire;

pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use header::{Deframer, Frames, HEADER_LEN, Header, MAX_MESSAGE_LEN, MsgType, Version};
pub use message::{Body, Message, ONF_BUNDLE_ADD_MESSAGE, ONF_BUNDLE_CONTROL, ONF_EXPERIMENTER_ID};
