//! ERROR messages: standard error types and codes of OpenFlow 1.3 and 1.4, and
//! experimenter errors (how Open vSwitch reports its own errors since 1.2).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeError, EncodeError};
use crate::header::{HEADER_LEN, Header, MsgType, Version};
use crate::message::{BodyCodec, Message};
use crate::types::{ExperimenterId, HexPreview};
use crate::wire::{self, PResult};

/// An error type (`ofp_error_type`). Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ErrorType(pub u16);

/// Declares the error types with their code names: the `ErrorType` constants,
/// `ErrorType::name`, `ErrorType::code_name`, and a module of code constants
/// per type under [`codes`].
macro_rules! error_types {
    ($(
        $(#[$tdoc:meta])*
        $konst:ident = $value:literal, $module:ident {
            $( $code:ident = $cv:literal, )*
        }
    )*) => {
        impl ErrorType {
            $( $(#[$tdoc])* pub const $konst: ErrorType = ErrorType($value); )*
            /// `OFPET_EXPERIMENTER`: the error is defined by an experimenter;
            /// see [`ErrorCode::Experimenter`].
            pub const EXPERIMENTER: ErrorType = ErrorType(0xffff);

            /// The specification's name of the type, if it is a known one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    0xffff => Some("EXPERIMENTER"),
                    _ => None,
                }
            }

            /// The specification's name of `code` within this type (without the
            /// `OFPxxC_` prefix), if it is a standard code of OpenFlow 1.3 or 1.4.
            pub fn code_name(self, code: u16) -> Option<&'static str> {
                match (self.0, code) {
                    $($( ($value, $cv) => Some(stringify!($code)), )*)*
                    _ => None,
                }
            }
        }

        /// The standard error codes, one module per error type.
        pub mod codes {
            $(
                #[doc = concat!("Codes of `OFPET_", stringify!($konst), "`.")]
                #[allow(missing_docs)]
                pub mod $module {
                    $( pub const $code: u16 = $cv; )*
                }
            )*
        }
    };
}

error_types! {
    /// `OFPET_HELLO_FAILED`: version negotiation failed; data is ASCII text.
    HELLO_FAILED = 0, hello_failed {
        INCOMPATIBLE = 0,
        EPERM = 1,
    }
    /// `OFPET_BAD_REQUEST`: the request was not understood.
    BAD_REQUEST = 1, bad_request {
        BAD_VERSION = 0,
        BAD_TYPE = 1,
        BAD_MULTIPART = 2,
        BAD_EXPERIMENTER = 3,
        BAD_EXP_TYPE = 4,
        EPERM = 5,
        BAD_LEN = 6,
        BUFFER_EMPTY = 7,
        BUFFER_UNKNOWN = 8,
        BAD_TABLE_ID = 9,
        IS_SLAVE = 10,
        BAD_PORT = 11,
        BAD_PACKET = 12,
        MULTIPART_BUFFER_OVERFLOW = 13,
        MULTIPART_REQUEST_TIMEOUT = 14,
        MULTIPART_REPLY_TIMEOUT = 15,
    }
    /// `OFPET_BAD_ACTION`: error in an action.
    BAD_ACTION = 2, bad_action {
        BAD_TYPE = 0,
        BAD_LEN = 1,
        BAD_EXPERIMENTER = 2,
        BAD_EXP_TYPE = 3,
        BAD_OUT_PORT = 4,
        BAD_ARGUMENT = 5,
        EPERM = 6,
        TOO_MANY = 7,
        BAD_QUEUE = 8,
        BAD_OUT_GROUP = 9,
        MATCH_INCONSISTENT = 10,
        UNSUPPORTED_ORDER = 11,
        BAD_TAG = 12,
        BAD_SET_TYPE = 13,
        BAD_SET_LEN = 14,
        BAD_SET_ARGUMENT = 15,
    }
    /// `OFPET_BAD_INSTRUCTION`: error in an instruction list.
    BAD_INSTRUCTION = 3, bad_instruction {
        UNKNOWN_INST = 0,
        UNSUP_INST = 1,
        BAD_TABLE_ID = 2,
        UNSUP_METADATA = 3,
        UNSUP_METADATA_MASK = 4,
        BAD_EXPERIMENTER = 5,
        BAD_EXP_TYPE = 6,
        BAD_LEN = 7,
        EPERM = 8,
        DUP_INST = 9,
    }
    /// `OFPET_BAD_MATCH`: error in a match.
    BAD_MATCH = 4, bad_match {
        BAD_TYPE = 0,
        BAD_LEN = 1,
        BAD_TAG = 2,
        BAD_DL_ADDR_MASK = 3,
        BAD_NW_ADDR_MASK = 4,
        BAD_WILDCARDS = 5,
        BAD_FIELD = 6,
        BAD_VALUE = 7,
        BAD_MASK = 8,
        BAD_PREREQ = 9,
        DUP_FIELD = 10,
        EPERM = 11,
    }
    /// `OFPET_FLOW_MOD_FAILED`: a flow entry could not be changed.
    FLOW_MOD_FAILED = 5, flow_mod_failed {
        UNKNOWN = 0,
        TABLE_FULL = 1,
        BAD_TABLE_ID = 2,
        OVERLAP = 3,
        EPERM = 4,
        BAD_TIMEOUT = 5,
        BAD_COMMAND = 6,
        BAD_FLAGS = 7,
        CANT_SYNC = 8,
        BAD_PRIORITY = 9,
        IS_SYNC = 10,
    }
    /// `OFPET_GROUP_MOD_FAILED`: a group entry could not be changed.
    GROUP_MOD_FAILED = 6, group_mod_failed {
        GROUP_EXISTS = 0,
        INVALID_GROUP = 1,
        WEIGHT_UNSUPPORTED = 2,
        OUT_OF_GROUPS = 3,
        OUT_OF_BUCKETS = 4,
        CHAINING_UNSUPPORTED = 5,
        WATCH_UNSUPPORTED = 6,
        LOOP = 7,
        UNKNOWN_GROUP = 8,
        CHAINED_GROUP = 9,
        BAD_TYPE = 10,
        BAD_COMMAND = 11,
        BAD_BUCKET = 12,
        BAD_WATCH = 13,
        EPERM = 14,
    }
    /// `OFPET_PORT_MOD_FAILED`: PORT_MOD failed.
    PORT_MOD_FAILED = 7, port_mod_failed {
        BAD_PORT = 0,
        BAD_HW_ADDR = 1,
        BAD_CONFIG = 2,
        BAD_ADVERTISE = 3,
        EPERM = 4,
    }
    /// `OFPET_TABLE_MOD_FAILED`: TABLE_MOD failed.
    TABLE_MOD_FAILED = 8, table_mod_failed {
        BAD_TABLE = 0,
        BAD_CONFIG = 1,
        EPERM = 2,
    }
    /// `OFPET_QUEUE_OP_FAILED`: a queue operation failed.
    QUEUE_OP_FAILED = 9, queue_op_failed {
        BAD_PORT = 0,
        BAD_QUEUE = 1,
        EPERM = 2,
    }
    /// `OFPET_SWITCH_CONFIG_FAILED`: SET_CONFIG failed.
    SWITCH_CONFIG_FAILED = 10, switch_config_failed {
        BAD_FLAGS = 0,
        BAD_LEN = 1,
        EPERM = 2,
    }
    /// `OFPET_ROLE_REQUEST_FAILED`: ROLE_REQUEST failed.
    ROLE_REQUEST_FAILED = 11, role_request_failed {
        STALE = 0,
        UNSUP = 1,
        BAD_ROLE = 2,
    }
    /// `OFPET_METER_MOD_FAILED`: a meter could not be changed.
    METER_MOD_FAILED = 12, meter_mod_failed {
        UNKNOWN = 0,
        METER_EXISTS = 1,
        INVALID_METER = 2,
        UNKNOWN_METER = 3,
        BAD_COMMAND = 4,
        BAD_FLAGS = 5,
        BAD_RATE = 6,
        BAD_BURST = 7,
        BAD_BAND = 8,
        BAD_BAND_VALUE = 9,
        OUT_OF_METERS = 10,
        OUT_OF_BANDS = 11,
    }
    /// `OFPET_TABLE_FEATURES_FAILED`: setting table features failed. Codes
    /// 2–4 exist only in OpenFlow 1.3 (1.4 moved them to BAD_PROPERTY).
    TABLE_FEATURES_FAILED = 13, table_features_failed {
        BAD_TABLE = 0,
        BAD_METADATA = 1,
        BAD_TYPE = 2,
        BAD_LEN = 3,
        BAD_ARGUMENT = 4,
        EPERM = 5,
    }
    /// `OFPET_BAD_PROPERTY` (OpenFlow 1.4): a property is invalid.
    BAD_PROPERTY = 14, bad_property {
        BAD_TYPE = 0,
        BAD_LEN = 1,
        BAD_VALUE = 2,
        TOO_MANY = 3,
        DUP_TYPE = 4,
        BAD_EXPERIMENTER = 5,
        BAD_EXP_TYPE = 6,
        BAD_EXP_VALUE = 7,
        EPERM = 8,
    }
    /// `OFPET_ASYNC_CONFIG_FAILED` (OpenFlow 1.4): SET_ASYNC failed.
    ASYNC_CONFIG_FAILED = 15, async_config_failed {
        INVALID = 0,
        UNSUPPORTED = 1,
        EPERM = 2,
    }
    /// `OFPET_FLOW_MONITOR_FAILED` (OpenFlow 1.4): a flow monitor failed.
    FLOW_MONITOR_FAILED = 16, flow_monitor_failed {
        UNKNOWN = 0,
        MONITOR_EXISTS = 1,
        INVALID_MONITOR = 2,
        UNKNOWN_MONITOR = 3,
        BAD_COMMAND = 4,
        BAD_FLAGS = 5,
        BAD_TABLE_ID = 6,
        BAD_OUT = 7,
    }
    /// `OFPET_BUNDLE_FAILED` (OpenFlow 1.4): a bundle operation failed.
    BUNDLE_FAILED = 17, bundle_failed {
        UNKNOWN = 0,
        EPERM = 1,
        BAD_ID = 2,
        BUNDLE_EXIST = 3,
        BUNDLE_CLOSED = 4,
        OUT_OF_BUNDLES = 5,
        BAD_TYPE = 6,
        BAD_FLAGS = 7,
        MSG_BAD_LEN = 8,
        MSG_BAD_XID = 9,
        MSG_UNSUP = 10,
        MSG_CONFLICT = 11,
        MSG_TOO_MANY = 12,
        MSG_FAILED = 13,
        TIMEOUT = 14,
        BUNDLE_IN_PROGRESS = 15,
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "TYPE_{}", self.0),
        }
    }
}

/// The name Open vSwitch gives to one of its experimenter errors, sent in
/// OpenFlow 1.2 and later as `OFPET_EXPERIMENTER` with the Nicira or ONF id
/// (OVS `include/openvswitch/ofp-errors.h`). ONF codes carry, in OpenFlow 1.3,
/// errors that 1.4 standardised (bundles, asynchronous configuration, ...).
fn experimenter_error_name(
    version: Option<Version>,
    experimenter: ExperimenterId,
    code: u16,
) -> Option<&'static str> {
    let of13 = version.is_none_or(|v| v <= Version::OF13);
    let of14 = version.is_none_or(|v| v >= Version::OF14);
    match experimenter {
        ExperimenterId::ONF => Some(match code {
            2300 => "OFPBFC_UNKNOWN",
            2301 => "OFPBFC_EPERM",
            2302 => "OFPBFC_BAD_ID",
            2303 => "OFPBFC_BUNDLE_EXIST",
            2304 => "OFPBFC_BUNDLE_CLOSED",
            2305 => "OFPBFC_OUT_OF_BUNDLES",
            2306 => "OFPBFC_BAD_TYPE",
            2307 => "OFPBFC_BAD_FLAGS",
            2308 => "OFPBFC_MSG_BAD_LEN",
            2309 => "OFPBFC_MSG_BAD_XID",
            2310 => "OFPBFC_MSG_UNSUP",
            2311 => "OFPBFC_MSG_CONFLICT",
            2312 => "OFPBFC_MSG_TOO_MANY",
            2313 => "OFPBFC_MSG_FAILED",
            2314 => "OFPBFC_TIMEOUT",
            2315 => "OFPBFC_BUNDLE_IN_PROGRESS",
            2360 => "OFPFMFC_BAD_PRIORITY",
            2370 => "OFPACFC_INVALID",
            2371 => "OFPACFC_UNSUPPORTED",
            2372 => "OFPACFC_EPERM",
            2600 => "OFPBIC_DUP_INST",
            2640 => "OFPBRC_MULTIPART_REQUEST_TIMEOUT",
            2641 => "OFPBRC_MULTIPART_REPLY_TIMEOUT",
            4250 => "OFPBAC_BAD_SET_MASK",
            4443 => "OFPBPC_TOO_MANY",
            4444 => "OFPBPC_DUP_TYPE",
            4445 => "OFPBPC_BAD_EXPERIMENTER",
            4446 => "OFPBPC_BAD_EXP_TYPE",
            4447 => "OFPBPC_BAD_EXP_VALUE",
            4448 => "OFPBPC_EPERM",
            _ => return None,
        }),
        ExperimenterId::NICIRA => Some(match code {
            2 => "NXBRC_NXM_INVALID",
            3 => "NXBRC_NXM_BAD_TYPE",
            4 => "NXBRC_MUST_BE_ZERO",
            5 => "NXBRC_BAD_REASON",
            6 if of13 => "OFPMOFC_MONITOR_EXISTS",
            7 if of13 => "OFPMOFC_BAD_FLAGS",
            8 if of13 => "OFPMOFC_UNKNOWN_MONITOR",
            9 => "NXBRC_FM_BAD_EVENT",
            10 => "NXBRC_UNENCODABLE_ERROR",
            11 => "NXBAC_MUST_BE_ZERO",
            12 => "NXFMFC_HARDWARE",
            13 => "NXFMFC_BAD_TABLE_ID",
            15 => "NXBAC_BAD_CONJUNCTION",
            16 => "NXTTMFC_BAD_COMMAND",
            17 => "NXTTMFC_BAD_OPT_LEN",
            18 => "NXTTMFC_BAD_FIELD_IDX",
            19 => "NXTTMFC_TABLE_FULL",
            20 => "NXTTMFC_ALREADY_MAPPED",
            21 => "NXTTMFC_DUP_ENTRY",
            22 if of14 => "OFPBFC_BAD_VERSION",
            23 if of14 => "NXQOFC_QUEUE_ERROR",
            34 => "NXR_NOT_SUPPORTED",
            35 => "NXR_STALE",
            36 => "NXST_NOT_CONFIGURED",
            37 => "NXFMFC_INVALID_TLV_FIELD",
            38 => "NXTTMFC_INVALID_TLV_DEL",
            39 => "NXBAC_BAD_HEADER_TYPE",
            40 => "NXBAC_UNKNOWN_ED_PROP",
            41 => "NXBAC_BAD_ED_PROP",
            42 => "NXBAC_CT_DATAPATH_SUPPORT",
            43 => "NXBMC_CT_DATAPATH_SUPPORT",
            44 => "NXTFFC_DUP_TABLE",
            _ => return None,
        }),
        _ => None,
    }
}

/// What went wrong: a standard type and code, or an experimenter's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A standard error (`ofp_error_msg`).
    Standard {
        /// The error type (never [`ErrorType::EXPERIMENTER`]).
        error_type: ErrorType,
        /// The code within the type; see [`codes`].
        code: u16,
    },
    /// An experimenter error (`ofp_error_experimenter_msg`, type 0xffff).
    Experimenter {
        /// The experimenter's own error code.
        exp_code: u16,
        /// Who defined the error.
        experimenter: ExperimenterId,
    },
}

impl ErrorCode {
    /// The wire error type.
    pub fn error_type(&self) -> ErrorType {
        match self {
            ErrorCode::Standard { error_type, .. } => *error_type,
            ErrorCode::Experimenter { .. } => ErrorType::EXPERIMENTER,
        }
    }

    /// The name Open vSwitch uses for the error (`OFPBRC_BAD_LEN`,
    /// `OFPBFC_MSG_FAILED`, `NXBRC_NXM_INVALID`, ...), if it is a known one.
    /// `version` disambiguates the few Nicira codes whose meaning changed
    /// between OpenFlow 1.3 and 1.4.
    pub fn name(&self, version: Option<Version>) -> Option<String> {
        match *self {
            ErrorCode::Standard { error_type, code } => {
                let prefix = match error_type {
                    ErrorType::HELLO_FAILED => "OFPHFC_",
                    ErrorType::BAD_REQUEST => "OFPBRC_",
                    ErrorType::BAD_ACTION => "OFPBAC_",
                    ErrorType::BAD_INSTRUCTION => "OFPBIC_",
                    ErrorType::BAD_MATCH => "OFPBMC_",
                    ErrorType::FLOW_MOD_FAILED => "OFPFMFC_",
                    ErrorType::GROUP_MOD_FAILED => "OFPGMFC_",
                    ErrorType::PORT_MOD_FAILED => "OFPPMFC_",
                    ErrorType::TABLE_MOD_FAILED => "OFPTMFC_",
                    ErrorType::QUEUE_OP_FAILED => "OFPQOFC_",
                    ErrorType::SWITCH_CONFIG_FAILED => "OFPSCFC_",
                    ErrorType::ROLE_REQUEST_FAILED => "OFPRRFC_",
                    ErrorType::METER_MOD_FAILED => "OFPMMFC_",
                    ErrorType::TABLE_FEATURES_FAILED => "OFPTFFC_",
                    ErrorType::BAD_PROPERTY => "OFPBPC_",
                    ErrorType::ASYNC_CONFIG_FAILED => "OFPACFC_",
                    ErrorType::FLOW_MONITOR_FAILED => "OFPMOFC_",
                    ErrorType::BUNDLE_FAILED => "OFPBFC_",
                    _ => return None,
                };
                error_type
                    .code_name(code)
                    .map(|name| format!("{prefix}{name}"))
            }
            ErrorCode::Experimenter {
                exp_code,
                experimenter,
            } => experimenter_error_name(version, experimenter, exp_code).map(str::to_owned),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorCode::Standard { error_type, code } => {
                write!(f, "type={error_type} code=")?;
                match error_type.code_name(code) {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{code}"),
                }
            }
            ErrorCode::Experimenter {
                exp_code,
                experimenter,
            } => {
                write!(f, "experimenter={experimenter} exp_code={exp_code}")?;
                match experimenter_error_name(None, experimenter, exp_code) {
                    Some(name) => write!(f, " ({name})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The body of an ERROR message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorMsg {
    /// The error.
    pub code: ErrorCode,
    /// For HELLO_FAILED, an ASCII explanation; otherwise usually at least the
    /// first 64 bytes of the request that failed (see
    /// [`ErrorMsg::offending_message`]).
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

/// How much of a failed request an error carries, per OpenFlow 1.3.5 §7.4.4.
const OFFENDING_BYTES: usize = 64;

impl ErrorMsg {
    /// A standard error carrying `data`.
    pub fn new(error_type: ErrorType, code: u16, data: impl Into<Bytes>) -> Self {
        ErrorMsg {
            code: ErrorCode::Standard { error_type, code },
            data: data.into(),
        }
    }

    /// HELLO_FAILED/INCOMPATIBLE with an explanation, as sent before closing
    /// a connection whose version negotiation failed.
    pub fn hello_incompatible(explanation: &str) -> Self {
        ErrorMsg::new(
            ErrorType::HELLO_FAILED,
            codes::hello_failed::INCOMPATIBLE,
            Bytes::copy_from_slice(explanation.as_bytes()),
        )
    }

    /// An error about `request` (an encoded message), carrying its first 64
    /// bytes as the specification asks.
    pub fn for_request(error_type: ErrorType, code: u16, request: &[u8]) -> Self {
        let end = request.len().min(OFFENDING_BYTES);
        ErrorMsg::new(error_type, code, Bytes::copy_from_slice(&request[..end]))
    }

    /// The header of the request that failed, if `data` starts with what
    /// looks like one (a known OpenFlow version and a possible length).
    pub fn offending_header(&self) -> Option<Header> {
        if self.code.error_type() == ErrorType::HELLO_FAILED {
            return None;
        }
        let header = Header::peek(&self.data)?;
        let plausible = (Version::OF10..=Version::OF15).contains(&header.version)
            && usize::from(header.length) >= HEADER_LEN;
        plausible.then_some(header)
    }

    /// Decodes the request that failed from `data`. Fails when the switch sent
    /// only part of it (it must send at least 64 bytes, OVS sends it whole)
    /// or when `data` is not a message at all (HELLO_FAILED carries text).
    pub fn offending_message(&self) -> Result<Message, DecodeError> {
        Message::decode(&self.data)
    }

    /// The explanation of a HELLO_FAILED error.
    pub fn text(&self) -> Option<String> {
        (self.code.error_type() == ErrorType::HELLO_FAILED)
            .then(|| String::from_utf8_lossy(&self.data).into_owned())
    }
}

impl BodyCodec for ErrorMsg {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, error_type) = wire::u16(i)?;
        let (rest, code) = if error_type == ErrorType::EXPERIMENTER.0 {
            let (rest, exp_code) = wire::u16(rest)?;
            let (rest, experimenter) = wire::u32(rest)?;
            (
                rest,
                ErrorCode::Experimenter {
                    exp_code,
                    experimenter: ExperimenterId(experimenter),
                },
            )
        } else {
            let (rest, code) = wire::u16(rest)?;
            (
                rest,
                ErrorCode::Standard {
                    error_type: ErrorType(error_type),
                    code,
                },
            )
        };
        Ok((
            &rest[rest.len()..],
            ErrorMsg {
                code,
                data: Bytes::copy_from_slice(rest),
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self.code {
            ErrorCode::Standard { error_type, code } => {
                if error_type == ErrorType::EXPERIMENTER {
                    return Err(EncodeError::OutOfRange(
                        "standard error type (0xffff is ErrorCode::Experimenter)",
                    ));
                }
                out.put_u16(error_type.0);
                out.put_u16(code);
            }
            ErrorCode::Experimenter {
                exp_code,
                experimenter,
            } => {
                out.put_u16(ErrorType::EXPERIMENTER.0);
                out.put_u16(exp_code);
                out.put_u32(experimenter.0);
            }
        }
        out.put_slice(&self.data);
        Ok(())
    }
}

impl ErrorMsg {
    /// Shows the error as it reads in `version`.
    ///
    /// The `Display` of an [`ErrorMsg`] names types and codes as OpenFlow 1.2
    /// to 1.4 number them. OpenFlow 1.0 and 1.1 number them differently after
    /// HELLO_FAILED, so in those versions any other error shows its numbers.
    pub fn display(&self, version: Version) -> impl fmt::Display + '_ {
        InVersion(self, version)
    }

    /// Writes what follows the type and code: the explanation of a
    /// HELLO_FAILED, the failed request, or the data.
    fn fmt_data(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.text() {
            return write!(f, " {text:?}");
        }
        if self.data.is_empty() {
            return Ok(());
        }
        let header = self.offending_header();
        // An error about an error is shown by its header only: decoding and
        // showing it in full would recurse once per nesting level, and the
        // data of a hostile peer can nest thousands deep.
        let decoded = match header {
            Some(h) if h.msg_type != MsgType::ERROR => self.offending_message().ok(),
            _ => None,
        };
        match (decoded, header) {
            (Some(request), _) => write!(f, " request: {request}"),
            (None, Some(header)) => write!(
                f,
                " request: {} ({}) (xid=0x{:x}), {} of {} bytes",
                header.msg_type,
                header.version,
                header.xid,
                self.data.len(),
                header.length
            ),
            (None, None) => write!(f, " data={}", HexPreview(&self.data, 64)),
        }
    }
}

impl fmt::Display for ErrorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        self.fmt_data(f)
    }
}

/// An error shown with the numbering of its version.
struct InVersion<'a>(&'a ErrorMsg, Version);

impl fmt::Display for InVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let InVersion(e, version) = *self;
        let numbered_alike = version >= Version::OF12;
        match e.code {
            ErrorCode::Standard { error_type, code }
                if !numbered_alike && error_type != ErrorType::HELLO_FAILED =>
            {
                write!(f, "type={} code={code}", error_type.0)?;
            }
            _ => write!(f, "{}", e.code)?,
        }
        e.fmt_data(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn round_trip(bytes: &[u8]) -> ErrorMsg {
        let msg = Message::decode(bytes).unwrap();
        assert_eq!(&msg.encode().unwrap()[..], bytes);
        match msg.body {
            Body::Error(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn standard_error_from_ryu() {
        let e = round_trip(&hex("04010014000000000002000b6675676166756761"));
        assert_eq!(
            e.code,
            ErrorCode::Standard {
                error_type: ErrorType::BAD_ACTION,
                code: codes::bad_action::UNSUPPORTED_ORDER
            }
        );
        assert_eq!(&e.data[..], b"fugafuga");
        assert_eq!(
            e.code.name(None).as_deref(),
            Some("OFPBAC_UNSUPPORTED_ORDER")
        );
    }

    #[test]
    fn experimenter_error_from_ryu() {
        let e = round_trip(&hex(
            "0401001b00000000ffffea60000f423f6a696b6b656e2064617461",
        ));
        assert_eq!(
            e.code,
            ErrorCode::Experimenter {
                exp_code: 60000,
                experimenter: ExperimenterId(999_999)
            }
        );
        assert_eq!(&e.data[..], b"jikken data");
        assert_eq!(e.offending_header(), None);
        assert_eq!(
            e.to_string(),
            "experimenter=0x000f423f exp_code=60000 data=6a696b6b656e2064617461"
        );
    }

    #[test]
    fn ovs_error_carries_the_offending_request() {
        // OFPBMC_BAD_FIELD about a FLOW_MOD header, from Open vSwitch.
        let e = round_trip(&hex("040100140000000000040006040e000800000000"));
        assert_eq!(e.code.error_type(), ErrorType::BAD_MATCH);
        let header = e.offending_header().unwrap();
        assert_eq!(header.msg_type, crate::MsgType::FLOW_MOD);
        assert!(e.offending_message().is_err());
        assert_eq!(
            e.to_string(),
            "type=BAD_MATCH code=BAD_FIELD request: FLOW_MOD (OF1.3) (xid=0x0), 8 of 8 bytes"
        );
    }

    #[test]
    fn ovs_bundle_errors_in_of13_are_onf_experimenter_errors() {
        // OFPBFC_MSG_FAILED as Open vSwitch sends it to an OpenFlow 1.3 controller,
        // carrying the offending message.
        let e = round_trip(&hex("040100180000002affff09094f4e46000414000800000007"));
        assert_eq!(
            e.code.name(Some(Version::OF13)).as_deref(),
            Some("OFPBFC_MSG_FAILED")
        );
        assert_eq!(e.offending_message().unwrap().xid, 7);
        assert_eq!(
            e.to_string(),
            "experimenter=ONF exp_code=2313 (OFPBFC_MSG_FAILED) request: BARRIER_REQUEST (OF1.3) (xid=0x7):"
        );
    }

    #[test]
    fn hello_failed_shows_its_text() {
        let e = ErrorMsg::hello_incompatible("we speak OpenFlow 1.3 and 1.4");
        let msg = Message::new(Version::OF13, 0, Body::Error(e.clone()));
        let bytes = msg.encode().unwrap();
        assert_eq!(&bytes[8..12], &[0, 0, 0, 0]);
        assert_eq!(round_trip(&bytes), e);
        assert_eq!(
            e.to_string(),
            "type=HELLO_FAILED code=INCOMPATIBLE \"we speak OpenFlow 1.3 and 1.4\""
        );
        assert_eq!(e.offending_header(), None);
    }

    #[test]
    fn errors_decode_in_any_version() {
        // An OpenFlow 1.0 switch refusing our HELLO.
        let mut bytes = hex("010100000000000100000000");
        bytes.extend_from_slice(b"OpenFlow 1.0 only");
        bytes[3] = bytes.len() as u8;
        let msg = Message::decode(&bytes).unwrap();
        assert_eq!(msg.version, Version::OF10);
        let Body::Error(e) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(e.text().as_deref(), Some("OpenFlow 1.0 only"));
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            msg.to_string(),
            "ERROR (OF1.0) (xid=0x1): type=HELLO_FAILED code=INCOMPATIBLE \"OpenFlow 1.0 only\""
        );
        // OpenFlow 1.0 numbers types differently after BAD_ACTION (3 is
        // FLOW_MOD_FAILED there): shown by number, not misnamed.
        let msg = Message::decode(&hex("0101000c0000000200030001")).unwrap();
        assert_eq!(msg.to_string(), "ERROR (OF1.0) (xid=0x2): type=3 code=1");
        let of12 = Message {
            version: Version::OF12,
            ..msg
        };
        assert_eq!(
            of12.to_string(),
            "ERROR (OF1.2) (xid=0x2): type=BAD_INSTRUCTION code=UNSUP_INST"
        );
        // Other OpenFlow 1.0 messages are still refused.
        let err = Message::decode(&hex("0105000800000003")).unwrap_err();
        assert_eq!(err.kind, crate::DecodeErrorKind::UnsupportedVersion(1));
    }

    #[test]
    fn every_standard_code_has_a_name_and_unknown_ones_do_not() {
        assert_eq!(
            ErrorType::BUNDLE_FAILED.code_name(15),
            Some("BUNDLE_IN_PROGRESS")
        );
        assert_eq!(ErrorType::BUNDLE_FAILED.code_name(16), None);
        assert_eq!(ErrorType(18).name(), None);
        assert_eq!(ErrorType(18).to_string(), "TYPE_18");
        assert_eq!(
            ErrorMsg::new(ErrorType(18), 3, Bytes::new()).to_string(),
            "type=TYPE_18 code=3"
        );
        assert_eq!(codes::flow_mod_failed::IS_SYNC, 10);
    }

    #[test]
    fn deeply_nested_errors_display_without_recursing() {
        let mut bytes = hex("0414000800000007");
        for _ in 0..5000 {
            let mut outer = hex("040100000000000000010006");
            outer.extend_from_slice(&bytes);
            let len = u16::try_from(outer.len()).unwrap_or(u16::MAX);
            outer[2..4].copy_from_slice(&len.to_be_bytes());
            if outer.len() > usize::from(u16::MAX) {
                break;
            }
            bytes = outer;
        }
        let msg = Message::decode(&bytes).unwrap();
        let text = msg.to_string();
        assert!(text.contains("request: ERROR (OF1.3)"), "{text}");
    }

    #[test]
    fn for_request_keeps_64_bytes() {
        let request = [0u8; 100];
        let e = ErrorMsg::for_request(
            ErrorType::BAD_REQUEST,
            codes::bad_request::BAD_LEN,
            &request,
        );
        assert_eq!(e.data.len(), 64);
    }

    #[test]
    fn malformed_errors() {
        // Type only.
        let err = Message::decode(&hex("0401000a000000000001")).unwrap_err();
        assert_eq!(err.offset, 10);
        // Experimenter error without its experimenter id.
        let err = Message::decode(&hex("0401000e00000000ffff00010000")).unwrap_err();
        assert_eq!(err.offset, 12);
        // A standard error type 0xffff cannot be encoded.
        let bad = ErrorMsg::new(ErrorType::EXPERIMENTER, 1, Bytes::new());
        assert!(
            Message::new(Version::OF13, 0, Body::Error(bad))
                .encode()
                .is_err()
        );
    }
}
