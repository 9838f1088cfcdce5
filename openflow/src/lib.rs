//! A sans-I/O codec for OpenFlow 1.3 and 1.4 with the Open vSwitch extensions a
//! stateful policy controller needs.
//!
//! The crate does no I/O and reads no clock: hand it bytes, get typed messages;
//! hand it messages, get bytes. [`Deframer`] cuts a byte stream into messages,
//! [`Message::decode`] decodes one, [`Message::encode`] encodes one.
//!
//! A tour: build a FLOW_MOD that sends new TCP connections to port 22 through
//! the connection tracker, encode it, and read it back.
//!
//! ```
//! use augur_openflow::action::Ct;
//! use augur_openflow::{Action, Body, CtState, FlowMod, Instruction, Match, Message, Version};
//!
//! let m = Match::new().eth_type(0x0800).ip_proto(6).tcp_dst(22)
//!     .ct_state(CtState::empty(), CtState::TRACKED);
//! let ct = Action::Ct(Ct::new().zone(5).table(1));
//! let fm = FlowMod::add(0, 100, m, vec![Instruction::ApplyActions(vec![ct])]);
//! let msg = Message::new(Version::OF13, 7, Body::FlowMod(fm));
//! let bytes = msg.encode()?;
//! assert_eq!(Message::decode(&bytes)?, msg);
//! assert!(msg.to_string().ends_with("ct_state=-trk actions=ct(table=1,zone=5)"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Wire enumerations are newtypes over their integer (`MsgType(u8)`,
//! `ActionType(u16)`, ...) so values this crate does not know survive a
//! decode/encode round trip; structures it does not know decode into opaque
//! variants that re-encode byte for byte. Malformed input yields a
//! [`DecodeError`] with the offset of the fault and never panics.
#![forbid(unsafe_code)]

#[macro_use]
mod macros;

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
mod prop;
pub mod session;
mod types;
mod wire;

pub use action::Action;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use group::{Bucket, GroupMod};
pub use header::{Deframer, Frames, HEADER_LEN, Header, MAX_MESSAGE_LEN, MsgType, Version};
pub use instruction::Instruction;
pub use message::{Body, Message, ONF_BUNDLE_ADD_MESSAGE, ONF_BUNDLE_CONTROL, ONF_EXPERIMENTER_ID};
pub use meter::MeterMod;
pub use msg::{
    BundleAdd, BundleControl, ErrorMsg, ErrorType, FlowMod, FlowModCommand, FlowModFlags,
    FlowRemoved, Hello, PacketIn, PacketInReason, PacketOut, SwitchFeatures,
};
pub use multipart::{MultipartReply, MultipartReplyBody, MultipartRequest, MultipartRequestBody};
pub use oxm::{CtState, Field, Match, MatchField, Oxm};
pub use port::{Port, PortMod, PortStatus};
pub use prop::{ExperimenterProperty, UnknownProperty};
pub use types::{
    ExperimenterId, GROUP_ALL, GROUP_ANY, GROUP_MAX, METER_ALL, METER_CONTROLLER, METER_MAX,
    METER_SLOWPATH, MacAddr, NO_BUFFER, ParseMacAddrError, ParsePortError, PortNo, TABLE_ALL,
    TABLE_MAX,
};
