//! Bundles: BUNDLE_CONTROL and BUNDLE_ADD_MESSAGE (OpenFlow 1.4 §7.3.9), by
//! which a controller applies a set of changes atomically.
//!
//! In OpenFlow 1.3, Open vSwitch accepts the same bodies as ONF experimenter
//! messages 2300 and 2301 (`OFPRAW_ONFT13_BUNDLE_*` in OVS `ofp-msgs.h`); the
//! crate's message layer adds and strips that experimenter header, so the
//! bodies here are identical in both versions.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::header::{HEADER_LEN, Header, MsgType, Version};
use crate::message::{BodyCodec, Message};
use crate::prop::{ExperimenterProperty, PROP_EXPERIMENTER, RawProperty, UnknownProperty};
use crate::wire::{self, PResult};
use crate::{Body, ONF_BUNDLE_ADD_MESSAGE, ONF_BUNDLE_CONTROL, ONF_EXPERIMENTER_ID};

wire_enum! {
    /// What a BUNDLE_CONTROL asks or answers (`ofp_bundle_ctrl_type`).
    pub struct BundleCtrlType(u16) {
        /// Open a bundle.
        OPEN_REQUEST = 0 => "OPEN_REQUEST",
        /// The bundle is open.
        OPEN_REPLY = 1 => "OPEN_REPLY",
        /// Close a bundle: no more messages may be added.
        CLOSE_REQUEST = 2 => "CLOSE_REQUEST",
        /// The bundle is closed.
        CLOSE_REPLY = 3 => "CLOSE_REPLY",
        /// Apply the bundle.
        COMMIT_REQUEST = 4 => "COMMIT_REQUEST",
        /// The bundle was applied.
        COMMIT_REPLY = 5 => "COMMIT_REPLY",
        /// Throw the bundle away.
        DISCARD_REQUEST = 6 => "DISCARD_REQUEST",
        /// The bundle was thrown away.
        DISCARD_REPLY = 7 => "DISCARD_REPLY",
    }
}

impl BundleCtrlType {
    /// The reply that answers this request (`None` for replies and unknown types).
    pub fn reply(self) -> Option<BundleCtrlType> {
        (self.0 <= BundleCtrlType::DISCARD_REQUEST.0 && self.0 % 2 == 0)
            .then_some(BundleCtrlType(self.0 + 1))
    }
}

flag_set! {
    /// Bundle flags (`ofp_bundle_flags`).
    pub struct BundleFlags(u16) {
        /// Apply all of the bundle or none of it.
        ATOMIC = 1 << 0 => "atomic",
        /// Apply the messages in the order they were added.
        ORDERED = 1 << 1 => "ordered",
    }
}

/// What bundle properties are called in errors.
const WHAT: &str = "bundle property";

/// A bundle property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleProp {
    /// `OFPBPT_EXPERIMENTER`, the only type OpenFlow 1.4 defines.
    Experimenter(ExperimenterProperty),
    /// A property type OpenFlow 1.4 does not define (not 0xffff), kept as it was.
    Unknown(UnknownProperty),
}

impl BundleProp {
    fn decode(i: &[u8]) -> PResult<'_, BundleProp> {
        let (rest, raw) = RawProperty::decode(i, WHAT)?;
        let prop = if raw.prop_type == PROP_EXPERIMENTER {
            BundleProp::Experimenter(ExperimenterProperty::decode(&raw)?)
        } else {
            BundleProp::Unknown(UnknownProperty::from_raw(&raw))
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            BundleProp::Experimenter(e) => e.encode(PROP_EXPERIMENTER, WHAT, out),
            BundleProp::Unknown(u) => u.encode(&[PROP_EXPERIMENTER], WHAT, out),
        }
    }
}

impl fmt::Display for BundleProp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleProp::Experimenter(e) => write!(f, "{e}"),
            BundleProp::Unknown(u) => write!(f, "{u}"),
        }
    }
}

fn decode_properties(i: &[u8]) -> PResult<'_, Vec<BundleProp>> {
    wire::many(i, BundleProp::decode)
}

fn encode_properties(props: &[BundleProp], out: &mut BytesMut) -> Result<(), EncodeError> {
    props.iter().try_for_each(|p| p.encode(out))
}

fn write_properties(f: &mut fmt::Formatter<'_>, props: &[BundleProp]) -> fmt::Result {
    props.iter().try_for_each(|p| write!(f, " {p}"))
}

/// The body of BUNDLE_CONTROL (`ofp_bundle_ctrl_msg`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleControl {
    /// The bundle, chosen by the controller.
    pub bundle_id: u32,
    /// What is asked or answered.
    pub ctrl_type: BundleCtrlType,
    /// How the bundle is to be applied (the same in every message of a bundle).
    pub flags: BundleFlags,
    /// Properties.
    pub properties: Vec<BundleProp>,
}

impl BundleControl {
    /// A control message without properties.
    pub fn new(bundle_id: u32, ctrl_type: BundleCtrlType, flags: BundleFlags) -> Self {
        BundleControl {
            bundle_id,
            ctrl_type,
            flags,
            properties: Vec::new(),
        }
    }

    /// Opens bundle `bundle_id`.
    pub fn open(bundle_id: u32, flags: BundleFlags) -> Self {
        BundleControl::new(bundle_id, BundleCtrlType::OPEN_REQUEST, flags)
    }

    /// Closes bundle `bundle_id` (optional before a commit).
    pub fn close(bundle_id: u32, flags: BundleFlags) -> Self {
        BundleControl::new(bundle_id, BundleCtrlType::CLOSE_REQUEST, flags)
    }

    /// Applies bundle `bundle_id`.
    pub fn commit(bundle_id: u32, flags: BundleFlags) -> Self {
        BundleControl::new(bundle_id, BundleCtrlType::COMMIT_REQUEST, flags)
    }

    /// Throws bundle `bundle_id` away.
    pub fn discard(bundle_id: u32, flags: BundleFlags) -> Self {
        BundleControl::new(bundle_id, BundleCtrlType::DISCARD_REQUEST, flags)
    }
}

impl BodyCodec for BundleControl {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, bundle_id) = wire::u32(i)?;
        let (rest, ctrl_type) = wire::u16(rest)?;
        let (rest, flags) = wire::u16(rest)?;
        let (rest, properties) = decode_properties(rest)?;
        Ok((
            rest,
            BundleControl {
                bundle_id,
                ctrl_type: BundleCtrlType(ctrl_type),
                flags: BundleFlags(flags),
                properties,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.bundle_id);
        out.put_u16(self.ctrl_type.0);
        out.put_u16(self.flags.0);
        encode_properties(&self.properties, out)
    }
}

impl fmt::Display for BundleControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bundle_id={:#x} type={} flags={}",
            self.bundle_id, self.ctrl_type, self.flags
        )?;
        write_properties(f, &self.properties)
    }
}

/// The body of BUNDLE_ADD_MESSAGE (`ofp_bundle_add_msg`): one message to
/// apply as part of a bundle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BundleAdd {
    /// The bundle.
    pub bundle_id: u32,
    /// The bundle's flags (as in its BUNDLE_CONTROL messages).
    pub flags: BundleFlags,
    /// The message, with its own header. The specification requires its
    /// version and xid to equal the outer message's: build the outer message
    /// with [`BundleAdd::into_message`] to get that right. It cannot itself
    /// be a bundle message.
    pub message: Box<Message>,
    /// Properties.
    pub properties: Vec<BundleProp>,
}

/// Whether the message starting with `header` (whose body is `body`) is a
/// bundle message, which the crate would decode by recursing into it.
fn is_bundle_message(header: &Header, body: &[u8]) -> bool {
    if header.version >= Version::OF14 {
        return header.msg_type == MsgType::BUNDLE_CONTROL
            || header.msg_type == MsgType::BUNDLE_ADD_MESSAGE;
    }
    if header.version == Version::OF13 && header.msg_type == MsgType::EXPERIMENTER {
        let word = |n: usize| {
            body.get(n..n + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
        };
        return word(0) == Some(ONF_EXPERIMENTER_ID)
            && matches!(word(4), Some(ONF_BUNDLE_CONTROL | ONF_BUNDLE_ADD_MESSAGE));
    }
    false
}

impl BundleAdd {
    /// Adds `message` to bundle `bundle_id`.
    pub fn new(bundle_id: u32, flags: BundleFlags, message: Message) -> Self {
        BundleAdd {
            bundle_id,
            flags,
            message: Box::new(message),
            properties: Vec::new(),
        }
    }

    /// The BUNDLE_ADD_MESSAGE carrying this body, with the version and xid of
    /// the bundled message as the specification requires.
    pub fn into_message(self) -> Message {
        Message::new(
            self.message.version,
            self.message.xid,
            Body::BundleAdd(self),
        )
    }
}

impl BodyCodec for BundleAdd {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, bundle_id) = wire::u32(i)?;
        let (rest, ()) = wire::pad(rest, 2)?;
        let (rest, flags) = wire::u16(rest)?;
        let Some(header) = Header::peek(rest) else {
            return wire::fail(rest, DecodeErrorKind::Truncated);
        };
        let length_field = &rest[2..];
        let length = usize::from(header.length);
        if length < HEADER_LEN {
            return wire::fail(
                length_field,
                DecodeErrorKind::LengthTooShort {
                    what: "bundled message",
                    length,
                    min: HEADER_LEN,
                },
            );
        }
        let (after, inner) = wire::split_claimed(rest, length_field, length, "bundled message")?;
        // Bundles do not nest; refusing them here also bounds the recursion.
        if is_bundle_message(&header, &inner[HEADER_LEN..]) {
            return wire::fail(
                rest,
                DecodeErrorKind::Invalid("bundle message inside a bundle"),
            );
        }
        let (_, message) = Message::parse(inner)?;
        let (rest, properties) = if after.is_empty() {
            (after, Vec::new())
        } else {
            // Properties start on an 8-byte boundary after the bundled message.
            let (after, ()) = wire::pad(after, (8 - length % 8) % 8)?;
            decode_properties(after)?
        };
        Ok((
            rest,
            BundleAdd {
                bundle_id,
                flags: BundleFlags(flags),
                message: Box::new(message),
                properties,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        if matches!(
            self.message.body,
            Body::BundleControl(_) | Body::BundleAdd(_)
        ) {
            return Err(EncodeError::OutOfRange(
                "bundled message (a bundle message cannot be bundled)",
            ));
        }
        out.put_u32(self.bundle_id);
        wire::put_zeros(out, 2);
        out.put_u16(self.flags.0);
        let start = out.len();
        self.message.encode_into(out)?;
        if !self.properties.is_empty() {
            wire::pad_to_8(out, start);
            encode_properties(&self.properties, out)?;
        }
        Ok(())
    }
}

impl fmt::Display for BundleAdd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bundle_id={:#x} flags={}", self.bundle_id, self.flags)?;
        write_properties(f, &self.properties)?;
        write!(f, " message: {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExperimenterId;
    use crate::msg::FlowMod;
    use crate::oxm::Match;
    use bytes::Bytes;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn exp(exp_type: u32, data: &'static [u8]) -> BundleProp {
        BundleProp::Experimenter(ExperimenterProperty {
            experimenter: ExperimenterId(101),
            exp_type,
            data: Bytes::from_static(data),
        })
    }

    const RYU_PROPERTIES: &str = concat!(
        "ffff000c000000650000000000000000",
        "ffff0010000000650000000100000001",
        "ffff0014000000650000000200000001",
        "0000000200000000",
    );

    #[test]
    fn ryu_bundle_control_round_trips() {
        let bytes = hex(&format!("0521004800000000000004d200000001{RYU_PROPERTIES}"));
        let msg = Message::decode(&bytes).unwrap();
        let Body::BundleControl(b) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(b.bundle_id, 1234);
        assert_eq!(b.ctrl_type, BundleCtrlType::OPEN_REQUEST);
        assert_eq!(b.flags, BundleFlags::ATOMIC);
        assert_eq!(
            b.properties,
            [
                exp(0, &[]),
                exp(1, &[0, 0, 0, 1]),
                exp(2, &[0, 0, 0, 1, 0, 0, 0, 2])
            ]
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert!(
            msg.to_string()
                .starts_with("BUNDLE_CONTROL (OF1.4) (xid=0x0): bundle_id=0x4d2 type=OPEN_REQUEST flags=atomic {experimenter=0x00000065 exp_type=0}")
        );
    }

    #[test]
    fn ryu_bundle_add_round_trips() {
        let bytes = hex(&format!(
            "0522005000000000000004d2000000010502000800000000{RYU_PROPERTIES}"
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::BundleAdd(b) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(b.bundle_id, 1234);
        assert_eq!(b.flags, BundleFlags::ATOMIC);
        assert_eq!(
            *b.message,
            Message::new(Version::OF14, 0, Body::EchoRequest(Bytes::new()))
        );
        assert_eq!(b.properties.len(), 3);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn bundled_messages_are_padded_only_before_properties() {
        // A 12-byte echo request, then properties: four bytes of padding.
        let inner = Message::new(
            Version::OF14,
            5,
            Body::EchoRequest(Bytes::from_static(b"ping")),
        );
        let mut add = BundleAdd::new(9, BundleFlags::ORDERED, inner.clone());
        let bare = add.clone().into_message().encode().unwrap();
        assert_eq!(
            hex::encode(&bare),
            "0522001c0000000500000009000000020502000c0000000570696e67"
        );
        add.properties.push(exp(3, &[]));
        let msg = add.into_message();
        let bytes = msg.encode().unwrap();
        assert_eq!(bytes.len(), 16 + 12 + 4 + 16);
        assert_eq!(&bytes[28..32], &[0; 4]);
        assert_eq!(Message::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn of13_bundles_travel_as_onf_experimenter_messages() {
        // What `ovs-ofctl -O OpenFlow13 bundle` sends: ONF 2300 OPEN_REQUEST...
        let open = Message::new(
            Version::OF13,
            1,
            Body::BundleControl(BundleControl::open(
                7,
                BundleFlags::ATOMIC | BundleFlags::ORDERED,
            )),
        );
        let bytes = open.encode().unwrap();
        assert_eq!(
            hex::encode(&bytes),
            "04040018000000014f4e4600000008fc0000000700000003"
        );
        assert_eq!(Message::decode(&bytes).unwrap(), open);

        // ...then ONF 2301 with a FLOW_MOD inside, sharing the xid.
        let fm = FlowMod::delete_strict(0, 10, Match::decode(&hex("0001000400000000")).unwrap().1);
        let inner = Message::new(Version::OF13, 2, Body::FlowMod(fm));
        let add = BundleAdd::new(7, BundleFlags::ATOMIC, inner).into_message();
        let bytes = add.encode().unwrap();
        assert_eq!(&bytes[..16], &hex("04040050000000024f4e4600000008fd")[..]);
        assert_eq!(&bytes[16..24], &hex("0000000700000001")[..]);
        assert_eq!(&bytes[24..28], &hex("040e0038")[..]);
        assert_eq!(Message::decode(&bytes).unwrap(), add);
    }

    #[test]
    fn nested_bundles_are_refused() {
        let inner = BundleControl::commit(1, BundleFlags::empty());
        let inner = Message::new(Version::OF14, 0, Body::BundleControl(inner));
        let add = BundleAdd::new(1, BundleFlags::empty(), inner.clone()).into_message();
        assert!(add.encode().is_err());
        // Built by hand: the decoder refuses it too.
        let mut bytes = hex("05220018000000000000000100000000");
        bytes.extend_from_slice(&inner.encode().unwrap());
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(
            err.kind,
            DecodeErrorKind::Invalid("bundle message inside a bundle")
        );
        assert_eq!(err.offset, 16);
    }

    #[test]
    fn malformed_bundle_adds_are_errors() {
        // Inner length below a header.
        let err =
            Message::decode(&hex("0522001800000000000004d2000000010502000400000000")).unwrap_err();
        assert_eq!(err.offset, 18);
        // Inner length beyond the outer message.
        let err =
            Message::decode(&hex("0522001800000000000004d2000000010502000c00000000")).unwrap_err();
        assert_eq!(err.offset, 18);
        assert!(matches!(err.kind, DecodeErrorKind::LengthTooLong { .. }));
        // No inner message at all.
        let err = Message::decode(&hex("0522001000000000000004d200000001")).unwrap_err();
        assert_eq!(err.offset, 16);
        // An inner message whose body is malformed: error inside it.
        let err = Message::decode(&hex("0522001a00000000000004d2000000010509000a000000000000"))
            .unwrap_err();
        assert_eq!(err.offset, 26);
    }

    #[test]
    fn replies_answer_requests() {
        assert_eq!(
            BundleCtrlType::COMMIT_REQUEST.reply(),
            Some(BundleCtrlType::COMMIT_REPLY)
        );
        assert_eq!(BundleCtrlType::COMMIT_REPLY.reply(), None);
        assert_eq!(BundleCtrlType(8).reply(), None);
    }
}
