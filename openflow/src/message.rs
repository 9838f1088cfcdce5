//! Whole OpenFlow messages: the header plus a typed body.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::group::GroupMod;
use crate::header::{HEADER_LEN, Header, MsgType, Version};
use crate::meter::MeterMod;
use crate::msg::{
    AsyncConfig, BundleAdd, BundleControl, ErrorMsg, Experimenter, FlowMod, FlowRemoved, Hello,
    PacketIn, PacketOut, RoleMessage, SwitchConfig, SwitchFeatures, TableMod,
};
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::port::{PortMod, PortStatus};
use crate::wire::{self, PResult, WireError};

/// The experimenter id of the Open Networking Foundation, under which OVS
/// accepts bundles in OpenFlow 1.3.
pub const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
/// ONF extension message type of a bundle control message in OpenFlow 1.3.
pub const ONF_BUNDLE_CONTROL: u32 = 2300;
/// ONF extension message type of a bundle add message in OpenFlow 1.3.
pub const ONF_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// A message body's wire form, as a function of the protocol version.
pub(crate) trait BodyCodec: Sized {
    /// Decodes a body that occupies all of `i` (the bytes after the header).
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self>;
    /// Appends the body to `out`.
    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError>;
}

/// The two body layouts this codec speaks, for the bodies that differ
/// between OpenFlow 1.3 and 1.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// OpenFlow 1.3: fixed structures.
    Of13,
    /// OpenFlow 1.4: fixed heads followed by property lists.
    Of14,
}

impl Layout {
    /// The layout of `version`, or an error located at `i` for any other
    /// version (which [`Message::decode`] refuses before a body decoder runs).
    pub(crate) fn decoding(version: Version, i: &[u8]) -> Result<Layout, nom::Err<WireError>> {
        match version {
            Version::OF13 => Ok(Layout::Of13),
            Version::OF14 => Ok(Layout::Of14),
            v => Err(nom::Err::Error(WireError::at(
                i,
                DecodeErrorKind::UnsupportedVersion(v.0),
            ))),
        }
    }

    /// The layout of `version`, or an error naming `what` for any other version.
    pub(crate) fn encoding(version: Version, what: &'static str) -> Result<Layout, EncodeError> {
        match version {
            Version::OF13 => Ok(Layout::Of13),
            Version::OF14 => Ok(Layout::Of14),
            v => Err(EncodeError::WrongVersion { what, version: v.0 }),
        }
    }
}

/// Fails with [`EncodeError::WrongVersion`] unless `ok`: for values that one
/// version cannot carry, which must not be dropped silently.
pub(crate) fn require_version(
    ok: bool,
    what: &'static str,
    version: Version,
) -> Result<(), EncodeError> {
    if ok {
        Ok(())
    } else {
        Err(EncodeError::WrongVersion {
            what,
            version: version.0,
        })
    }
}

/// One OpenFlow message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Wire version the message is (or will be) encoded in.
    pub version: Version,
    /// Transaction id.
    pub xid: u32,
    /// What the message says.
    pub body: Body,
}

/// The body of a message, by type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "body", rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum Body {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(#[serde(with = "wire::hex_bytes")] Bytes),
    EchoReply(#[serde(with = "wire::hex_bytes")] Bytes),
    Experimenter(Experimenter),
    FeaturesRequest,
    FeaturesReply(SwitchFeatures),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    PortMod(PortMod),
    TableMod(TableMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(RoleMessage),
    RoleReply(RoleMessage),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
    /// OF1.4 BUNDLE_CONTROL, or the ONF extension message in OF1.3.
    BundleControl(BundleControl),
    /// OF1.4 BUNDLE_ADD_MESSAGE, or the ONF extension message in OF1.3.
    BundleAdd(BundleAdd),
    /// A message type this codec does not decode, kept byte for byte.
    Unknown {
        msg_type: MsgType,
        #[serde(with = "wire::hex_bytes")]
        payload: Bytes,
    },
}

impl Body {
    /// The wire type this body is sent as in `version`.
    pub fn msg_type(&self, version: Version) -> MsgType {
        match self {
            Body::Hello(_) => MsgType::HELLO,
            Body::Error(_) => MsgType::ERROR,
            Body::EchoRequest(_) => MsgType::ECHO_REQUEST,
            Body::EchoReply(_) => MsgType::ECHO_REPLY,
            Body::Experimenter(_) => MsgType::EXPERIMENTER,
            Body::FeaturesRequest => MsgType::FEATURES_REQUEST,
            Body::FeaturesReply(_) => MsgType::FEATURES_REPLY,
            Body::GetConfigRequest => MsgType::GET_CONFIG_REQUEST,
            Body::GetConfigReply(_) => MsgType::GET_CONFIG_REPLY,
            Body::SetConfig(_) => MsgType::SET_CONFIG,
            Body::PacketIn(_) => MsgType::PACKET_IN,
            Body::FlowRemoved(_) => MsgType::FLOW_REMOVED,
            Body::PortStatus(_) => MsgType::PORT_STATUS,
            Body::PacketOut(_) => MsgType::PACKET_OUT,
            Body::FlowMod(_) => MsgType::FLOW_MOD,
            Body::GroupMod(_) => MsgType::GROUP_MOD,
            Body::PortMod(_) => MsgType::PORT_MOD,
            Body::TableMod(_) => MsgType::TABLE_MOD,
            Body::MultipartRequest(_) => MsgType::MULTIPART_REQUEST,
            Body::MultipartReply(_) => MsgType::MULTIPART_REPLY,
            Body::BarrierRequest => MsgType::BARRIER_REQUEST,
            Body::BarrierReply => MsgType::BARRIER_REPLY,
            Body::RoleRequest(_) => MsgType::ROLE_REQUEST,
            Body::RoleReply(_) => MsgType::ROLE_REPLY,
            Body::GetAsyncRequest => MsgType::GET_ASYNC_REQUEST,
            Body::GetAsyncReply(_) => MsgType::GET_ASYNC_REPLY,
            Body::SetAsync(_) => MsgType::SET_ASYNC,
            Body::MeterMod(_) => MsgType::METER_MOD,
            Body::BundleControl(_) if version == Version::OF13 => MsgType::EXPERIMENTER,
            Body::BundleControl(_) => MsgType::BUNDLE_CONTROL,
            Body::BundleAdd(_) if version == Version::OF13 => MsgType::EXPERIMENTER,
            Body::BundleAdd(_) => MsgType::BUNDLE_ADD_MESSAGE,
            Body::Unknown { msg_type, .. } => *msg_type,
        }
    }
}

impl Message {
    /// A message of `version` with transaction id `xid`.
    pub fn new(version: Version, xid: u32, body: Body) -> Self {
        Message { version, xid, body }
    }

    /// Decodes exactly one message occupying all of `buf`.
    ///
    /// Use [`crate::Deframer`] first to cut a stream into messages. HELLO and
    /// ERROR, whose layouts are the same in every version, are accepted in any
    /// version (so that an OpenFlow 1.0 switch's HELLO_FAILED can be read);
    /// other messages must be OpenFlow 1.3 or 1.4.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        wire::finish(buf, Self::parse(buf))
    }

    pub(crate) fn parse(buf: &[u8]) -> PResult<'_, Message> {
        let Some(header) = Header::peek(buf) else {
            return wire::fail(buf, DecodeErrorKind::Truncated);
        };
        let length = usize::from(header.length);
        if length < HEADER_LEN {
            return wire::fail(
                &buf[2..],
                DecodeErrorKind::LengthTooShort {
                    what: "message",
                    length,
                    min: HEADER_LEN,
                },
            );
        }
        if buf.len() < length {
            return wire::fail(&buf[buf.len()..], DecodeErrorKind::Truncated);
        }
        if buf.len() > length {
            return wire::fail(&buf[length..], DecodeErrorKind::TrailingBytes("message"));
        }
        let version = header.version;
        let i = &buf[HEADER_LEN..length];
        let any_version = header.msg_type == MsgType::HELLO || header.msg_type == MsgType::ERROR;
        if !any_version && !version.is_supported() {
            return wire::fail(buf, DecodeErrorKind::UnsupportedVersion(version.0));
        }
        let (rest, body) = decode_body(version, header.msg_type, i)?;
        let (rest, ()) = wire::all_consumed(rest, "message body")?;
        Ok((
            rest,
            Message {
                version,
                xid: header.xid,
                body,
            },
        ))
    }

    /// Encodes the message, computing every length field.
    pub fn encode(&self) -> Result<BytesMut, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded message to `out`. On error, `out` may hold part of it.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u8(self.version.0);
        out.put_u8(self.body.msg_type(self.version).0);
        let len_at = wire::reserve_u16(out);
        out.put_u32(self.xid);
        encode_body(&self.body, self.version, out)?;
        wire::patch_len_u16(out, len_at, start, "message")?;
        Ok(())
    }
}

fn decode_body(version: Version, msg_type: MsgType, i: &[u8]) -> PResult<'_, Body> {
    fn map<'a, T: BodyCodec>(
        version: Version,
        i: &'a [u8],
        f: impl FnOnce(T) -> Body,
    ) -> PResult<'a, Body> {
        let (rest, value) = T::decode_body(version, i)?;
        Ok((rest, f(value)))
    }
    fn empty(i: &[u8], body: Body) -> PResult<'_, Body> {
        let (rest, ()) = wire::all_consumed(i, "empty message body")?;
        Ok((rest, body))
    }
    let whole = |i: &[u8]| Bytes::copy_from_slice(i);
    let end = &i[i.len()..];
    match msg_type {
        MsgType::HELLO => map(version, i, Body::Hello),
        MsgType::ERROR => map(version, i, Body::Error),
        MsgType::ECHO_REQUEST => Ok((end, Body::EchoRequest(whole(i)))),
        MsgType::ECHO_REPLY => Ok((end, Body::EchoReply(whole(i)))),
        MsgType::EXPERIMENTER => decode_experimenter(version, i),
        MsgType::FEATURES_REQUEST => empty(i, Body::FeaturesRequest),
        MsgType::FEATURES_REPLY => map(version, i, Body::FeaturesReply),
        MsgType::GET_CONFIG_REQUEST => empty(i, Body::GetConfigRequest),
        MsgType::GET_CONFIG_REPLY => map(version, i, Body::GetConfigReply),
        MsgType::SET_CONFIG => map(version, i, Body::SetConfig),
        MsgType::PACKET_IN => map(version, i, Body::PacketIn),
        MsgType::FLOW_REMOVED => map(version, i, Body::FlowRemoved),
        MsgType::PORT_STATUS => map(version, i, Body::PortStatus),
        MsgType::PACKET_OUT => map(version, i, Body::PacketOut),
        MsgType::FLOW_MOD => map(version, i, Body::FlowMod),
        MsgType::GROUP_MOD => map(version, i, Body::GroupMod),
        MsgType::PORT_MOD => map(version, i, Body::PortMod),
        MsgType::TABLE_MOD => map(version, i, Body::TableMod),
        MsgType::MULTIPART_REQUEST => map(version, i, Body::MultipartRequest),
        MsgType::MULTIPART_REPLY => map(version, i, Body::MultipartReply),
        MsgType::BARRIER_REQUEST => empty(i, Body::BarrierRequest),
        MsgType::BARRIER_REPLY => empty(i, Body::BarrierReply),
        MsgType::ROLE_REQUEST => map(version, i, Body::RoleRequest),
        MsgType::ROLE_REPLY => map(version, i, Body::RoleReply),
        MsgType::GET_ASYNC_REQUEST => empty(i, Body::GetAsyncRequest),
        MsgType::GET_ASYNC_REPLY => map(version, i, Body::GetAsyncReply),
        MsgType::SET_ASYNC => map(version, i, Body::SetAsync),
        MsgType::METER_MOD => map(version, i, Body::MeterMod),
        MsgType::BUNDLE_CONTROL if version >= Version::OF14 => map(version, i, Body::BundleControl),
        MsgType::BUNDLE_ADD_MESSAGE if version >= Version::OF14 => map(version, i, Body::BundleAdd),
        msg_type => Ok((
            end,
            Body::Unknown {
                msg_type,
                payload: whole(i),
            },
        )),
    }
}

/// EXPERIMENTER messages, unwrapping the ONF bundle extension of OF1.3.
fn decode_experimenter(version: Version, i: &[u8]) -> PResult<'_, Body> {
    if version == Version::OF13 && i.len() >= 8 {
        let experimenter = u32::from_be_bytes([i[0], i[1], i[2], i[3]]);
        let exp_type = u32::from_be_bytes([i[4], i[5], i[6], i[7]]);
        if experimenter == ONF_EXPERIMENTER_ID {
            match exp_type {
                ONF_BUNDLE_CONTROL => {
                    let (rest, b) = BundleControl::decode_body(version, &i[8..])?;
                    return Ok((rest, Body::BundleControl(b)));
                }
                ONF_BUNDLE_ADD_MESSAGE => {
                    let (rest, b) = BundleAdd::decode_body(version, &i[8..])?;
                    return Ok((rest, Body::BundleAdd(b)));
                }
                _ => {}
            }
        }
    }
    let (rest, e) = Experimenter::decode_body(version, i)?;
    Ok((rest, Body::Experimenter(e)))
}

fn encode_body(body: &Body, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
    match body {
        Body::Hello(b) => b.encode_body(version, out),
        Body::Error(b) => b.encode_body(version, out),
        Body::EchoRequest(data) | Body::EchoReply(data) => {
            out.put_slice(data);
            Ok(())
        }
        Body::Experimenter(b) => b.encode_body(version, out),
        Body::FeaturesRequest
        | Body::GetConfigRequest
        | Body::BarrierRequest
        | Body::BarrierReply
        | Body::GetAsyncRequest => Ok(()),
        Body::FeaturesReply(b) => b.encode_body(version, out),
        Body::GetConfigReply(b) | Body::SetConfig(b) => b.encode_body(version, out),
        Body::PacketIn(b) => b.encode_body(version, out),
        Body::FlowRemoved(b) => b.encode_body(version, out),
        Body::PortStatus(b) => b.encode_body(version, out),
        Body::PacketOut(b) => b.encode_body(version, out),
        Body::FlowMod(b) => b.encode_body(version, out),
        Body::GroupMod(b) => b.encode_body(version, out),
        Body::PortMod(b) => b.encode_body(version, out),
        Body::TableMod(b) => b.encode_body(version, out),
        Body::MultipartRequest(b) => b.encode_body(version, out),
        Body::MultipartReply(b) => b.encode_body(version, out),
        Body::RoleRequest(b) | Body::RoleReply(b) => b.encode_body(version, out),
        Body::GetAsyncReply(b) | Body::SetAsync(b) => b.encode_body(version, out),
        Body::MeterMod(b) => b.encode_body(version, out),
        Body::BundleControl(b) => {
            if version == Version::OF13 {
                out.put_u32(ONF_EXPERIMENTER_ID);
                out.put_u32(ONF_BUNDLE_CONTROL);
            }
            b.encode_body(version, out)
        }
        Body::BundleAdd(b) => {
            if version == Version::OF13 {
                out.put_u32(ONF_EXPERIMENTER_ID);
                out.put_u32(ONF_BUNDLE_ADD_MESSAGE);
            }
            b.encode_body(version, out)
        }
        Body::Unknown { payload, .. } => {
            out.put_slice(payload);
            Ok(())
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) (xid=0x{:x}):",
            self.body.msg_type(self.version),
            self.version,
            self.xid
        )?;
        match &self.body {
            Body::Hello(b) => write!(f, " {b}"),
            Body::Error(b) => write!(f, " {}", b.display(self.version)),
            Body::EchoRequest(d) | Body::EchoReply(d) => write!(f, " {} bytes of payload", d.len()),
            Body::Experimenter(b) => write!(f, " {b}"),
            Body::FeaturesRequest
            | Body::GetConfigRequest
            | Body::BarrierRequest
            | Body::BarrierReply
            | Body::GetAsyncRequest => Ok(()),
            Body::FeaturesReply(b) => write!(f, " {b}"),
            Body::GetConfigReply(b) | Body::SetConfig(b) => write!(f, " {b}"),
            Body::PacketIn(b) => write!(f, " {b}"),
            Body::FlowRemoved(b) => write!(f, " {b}"),
            Body::PortStatus(b) => write!(f, " {b}"),
            Body::PacketOut(b) => write!(f, " {b}"),
            Body::FlowMod(b) => write!(f, " {b}"),
            Body::GroupMod(b) => write!(f, " {b}"),
            Body::PortMod(b) => write!(f, " {b}"),
            Body::TableMod(b) => write!(f, " {b}"),
            Body::MultipartRequest(b) => write!(f, " {b}"),
            Body::MultipartReply(b) => write!(f, " {b}"),
            Body::RoleRequest(b) | Body::RoleReply(b) => write!(f, " {b}"),
            Body::GetAsyncReply(b) | Body::SetAsync(b) => write!(f, " {b}"),
            Body::MeterMod(b) => write!(f, " {b}"),
            Body::BundleControl(b) => write!(f, " {b}"),
            Body::BundleAdd(b) => write!(f, " {b}"),
            Body::Unknown { payload, .. } => {
                write!(f, " {} bytes of undecoded payload", payload.len())
            }
        }
    }
}
