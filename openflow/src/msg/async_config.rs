//! GET_ASYNC_REPLY and SET_ASYNC: which asynchronous messages a controller
//! receives, by role.
//!
//! The two versions differ in kind, not in detail: OpenFlow 1.3 sends six
//! fixed masks, OpenFlow 1.4 a list of properties that may leave some out (in
//! SET_ASYNC, "unchanged") and adds role status, table status and
//! request-forward masks. [`AsyncConfig`] keeps the two forms apart.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::{FlowRemovedReason, PacketInReason};
use crate::error::EncodeError;
use crate::header::Version;
use crate::message::{BodyCodec, require_version};
use crate::prop::{ExperimenterProperty, RawProperty, UnknownProperty, put_property};
use crate::wire::{self, PResult};

wire_enum! {
    /// An asynchronous configuration property type (`ofp_async_config_prop_type`).
    pub struct AsyncPropType(u16) {
        /// PACKET_IN reasons sent to a slave.
        PACKET_IN_SLAVE = 0 => "packet_in_slave",
        /// PACKET_IN reasons sent to a master or equal controller.
        PACKET_IN_MASTER = 1 => "packet_in_master",
        /// PORT_STATUS reasons sent to a slave.
        PORT_STATUS_SLAVE = 2 => "port_status_slave",
        /// PORT_STATUS reasons sent to a master or equal controller.
        PORT_STATUS_MASTER = 3 => "port_status_master",
        /// FLOW_REMOVED reasons sent to a slave.
        FLOW_REMOVED_SLAVE = 4 => "flow_removed_slave",
        /// FLOW_REMOVED reasons sent to a master or equal controller.
        FLOW_REMOVED_MASTER = 5 => "flow_removed_master",
        /// ROLE_STATUS reasons sent to a slave.
        ROLE_STATUS_SLAVE = 6 => "role_status_slave",
        /// ROLE_STATUS reasons sent to a master or equal controller.
        ROLE_STATUS_MASTER = 7 => "role_status_master",
        /// TABLE_STATUS reasons sent to a slave.
        TABLE_STATUS_SLAVE = 8 => "table_status_slave",
        /// TABLE_STATUS reasons sent to a master or equal controller.
        TABLE_STATUS_MASTER = 9 => "table_status_master",
        /// REQUESTFORWARD reasons sent to a slave.
        REQUESTFORWARD_SLAVE = 10 => "requestforward_slave",
        /// REQUESTFORWARD reasons sent to a master or equal controller.
        REQUESTFORWARD_MASTER = 11 => "requestforward_master",
        /// Experimenter property for a slave.
        EXPERIMENTER_SLAVE = 0xfffe => "experimenter_slave",
        /// Experimenter property for a master or equal controller.
        EXPERIMENTER_MASTER = 0xffff => "experimenter_master",
    }
}

impl AsyncPropType {
    /// Whether properties of this type carry a reason mask.
    pub fn is_reasons(self) -> bool {
        self.0 <= AsyncPropType::REQUESTFORWARD_MASTER.0
    }

    /// Whether properties of this type are experimenter properties.
    pub fn is_experimenter(self) -> bool {
        self == AsyncPropType::EXPERIMENTER_SLAVE || self == AsyncPropType::EXPERIMENTER_MASTER
    }
}

/// Names the set bits of a reason mask with `name(bit)`, `|`-separated.
struct ReasonBits(u32, fn(u8) -> Option<&'static str>);

impl fmt::Display for ReasonBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ReasonBits(mask, name) = *self;
        if mask == 0 {
            return f.write_str("(off)");
        }
        let mut first = true;
        for bit in 0..32u8 {
            if mask & (1 << bit) == 0 {
                continue;
            }
            if !first {
                f.write_str("|")?;
            }
            first = false;
            match name(bit) {
                Some(n) => f.write_str(n)?,
                None => write!(f, "{bit}")?,
            }
        }
        Ok(())
    }
}

fn packet_in_reason_name(bit: u8) -> Option<&'static str> {
    PacketInReason(bit).name()
}

fn port_status_reason_name(bit: u8) -> Option<&'static str> {
    ["add", "delete", "modify"].get(usize::from(bit)).copied()
}

fn flow_removed_reason_name(bit: u8) -> Option<&'static str> {
    FlowRemovedReason(bit).name()
}

fn role_status_reason_name(bit: u8) -> Option<&'static str> {
    ["master_request", "config", "experimenter"]
        .get(usize::from(bit))
        .copied()
}

fn table_status_reason_name(bit: u8) -> Option<&'static str> {
    match bit {
        3 => Some("vacancy_down"),
        4 => Some("vacancy_up"),
        _ => None,
    }
}

fn requestforward_reason_name(bit: u8) -> Option<&'static str> {
    ["group_mod", "meter_mod"].get(usize::from(bit)).copied()
}

/// The OpenFlow 1.3 configuration (`ofp_async_config`): for each message, a
/// mask of the reasons (bit `1 << reason`) for which it is sent, for a master
/// or equal controller and for a slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AsyncMasks {
    /// PACKET_IN reasons ([`PacketInReason::mask_bit`]) for a master or equal controller.
    pub packet_in_master: u32,
    /// PACKET_IN reasons for a slave.
    pub packet_in_slave: u32,
    /// PORT_STATUS reasons (add 1, delete 2, modify 4) for a master or equal controller.
    pub port_status_master: u32,
    /// PORT_STATUS reasons for a slave.
    pub port_status_slave: u32,
    /// FLOW_REMOVED reasons ([`FlowRemovedReason::mask_bit`]) for a master or equal controller.
    pub flow_removed_master: u32,
    /// FLOW_REMOVED reasons for a slave.
    pub flow_removed_slave: u32,
}

impl AsyncMasks {
    /// What augur wants as master: table misses and explicit sends to the
    /// controller (it learns from them), every port change and every flow
    /// removal; as slave, port changes only (the specification's default).
    pub fn default_for_controller() -> Self {
        AsyncMasks {
            packet_in_master: PacketInReason::NO_MATCH.mask_bit()
                | PacketInReason::ACTION.mask_bit(),
            packet_in_slave: 0,
            port_status_master: 0b111,
            port_status_slave: 0b111,
            flow_removed_master: FlowRemovedReason::IDLE_TIMEOUT.mask_bit()
                | FlowRemovedReason::HARD_TIMEOUT.mask_bit()
                | FlowRemovedReason::DELETE.mask_bit()
                | FlowRemovedReason::GROUP_DELETE.mask_bit(),
            flow_removed_slave: 0,
        }
    }

    /// The same configuration as OpenFlow 1.4 properties.
    pub fn to_properties(&self) -> Vec<AsyncConfigProp> {
        [
            (AsyncPropType::PACKET_IN_SLAVE, self.packet_in_slave),
            (AsyncPropType::PACKET_IN_MASTER, self.packet_in_master),
            (AsyncPropType::PORT_STATUS_SLAVE, self.port_status_slave),
            (AsyncPropType::PORT_STATUS_MASTER, self.port_status_master),
            (AsyncPropType::FLOW_REMOVED_SLAVE, self.flow_removed_slave),
            (AsyncPropType::FLOW_REMOVED_MASTER, self.flow_removed_master),
        ]
        .into_iter()
        .map(|(prop_type, mask)| AsyncConfigProp::Reasons { prop_type, mask })
        .collect()
    }
}

impl fmt::Display for AsyncMasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "master: packet_in={} port_status={} flow_removed={}; \
             slave: packet_in={} port_status={} flow_removed={}",
            ReasonBits(self.packet_in_master, packet_in_reason_name),
            ReasonBits(self.port_status_master, port_status_reason_name),
            ReasonBits(self.flow_removed_master, flow_removed_reason_name),
            ReasonBits(self.packet_in_slave, packet_in_reason_name),
            ReasonBits(self.port_status_slave, port_status_reason_name),
            ReasonBits(self.flow_removed_slave, flow_removed_reason_name),
        )
    }
}

/// An OpenFlow 1.4 asynchronous configuration property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsyncConfigProp {
    /// A reason mask (types 0 to 11).
    Reasons {
        /// Which message and role ([`AsyncPropType::is_reasons`]).
        prop_type: AsyncPropType,
        /// Bit `1 << reason` for each reason the message is sent for.
        mask: u32,
    },
    /// An experimenter property (types 0xfffe for slave, 0xffff for master).
    Experimenter {
        /// [`AsyncPropType::EXPERIMENTER_SLAVE`] or [`AsyncPropType::EXPERIMENTER_MASTER`].
        prop_type: AsyncPropType,
        /// Its content.
        prop: ExperimenterProperty,
    },
    /// A property type this codec does not know (none of the above), kept
    /// as it was.
    Unknown(UnknownProperty),
}

/// What asynchronous configuration properties are called in errors.
const WHAT: &str = "async config property";

impl AsyncConfigProp {
    /// The property's wire type.
    pub fn prop_type(&self) -> AsyncPropType {
        match self {
            AsyncConfigProp::Reasons { prop_type, .. }
            | AsyncConfigProp::Experimenter { prop_type, .. } => *prop_type,
            AsyncConfigProp::Unknown(u) => AsyncPropType(u.prop_type),
        }
    }

    fn decode(i: &[u8]) -> PResult<'_, AsyncConfigProp> {
        let (rest, raw) = RawProperty::decode(i, WHAT)?;
        let prop_type = AsyncPropType(raw.prop_type);
        let prop = if prop_type.is_reasons() {
            let (_, mask) = wire::u32(raw.fixed(8, "async config reasons property")?)?;
            AsyncConfigProp::Reasons { prop_type, mask }
        } else if prop_type.is_experimenter() {
            let prop = ExperimenterProperty::decode(&raw)?;
            AsyncConfigProp::Experimenter { prop_type, prop }
        } else {
            AsyncConfigProp::Unknown(UnknownProperty::from_raw(&raw))
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            AsyncConfigProp::Reasons { prop_type, mask } => {
                if !prop_type.is_reasons() {
                    return Err(EncodeError::OutOfRange(
                        "type of an async config reasons property (0 to 11)",
                    ));
                }
                put_property(out, prop_type.0, WHAT, |out| out.put_u32(*mask))
            }
            AsyncConfigProp::Experimenter { prop_type, prop } => {
                if !prop_type.is_experimenter() {
                    return Err(EncodeError::OutOfRange(
                        "type of an async config experimenter property (0xfffe or 0xffff)",
                    ));
                }
                prop.encode(prop_type.0, WHAT, out)
            }
            AsyncConfigProp::Unknown(u) => {
                if AsyncPropType(u.prop_type).is_reasons()
                    || AsyncPropType(u.prop_type).is_experimenter()
                {
                    return Err(EncodeError::OutOfRange(
                        "type of an unknown async config property (it is a known one)",
                    ));
                }
                u.encode(&[], WHAT, out)
            }
        }
    }
}

impl fmt::Display for AsyncConfigProp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncConfigProp::Reasons { prop_type, mask } => {
                let names: fn(u8) -> Option<&'static str> = match prop_type.0 / 2 {
                    0 => packet_in_reason_name,
                    1 => port_status_reason_name,
                    2 => flow_removed_reason_name,
                    3 => role_status_reason_name,
                    4 => table_status_reason_name,
                    _ => requestforward_reason_name,
                };
                write!(f, "{prop_type}={}", ReasonBits(*mask, names))
            }
            AsyncConfigProp::Experimenter { prop_type, prop } => write!(f, "{prop_type}={prop}"),
            AsyncConfigProp::Unknown(u) => write!(f, "{u}"),
        }
    }
}

/// The body of GET_ASYNC_REPLY and SET_ASYNC, in the form of its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsyncConfig {
    /// OpenFlow 1.3: all six masks.
    Masks(AsyncMasks),
    /// OpenFlow 1.4: properties; in SET_ASYNC, absent ones are left unchanged.
    Properties(Vec<AsyncConfigProp>),
}

impl AsyncConfig {
    /// `masks` in the form `version` uses.
    pub fn from_masks(version: Version, masks: AsyncMasks) -> Self {
        if version >= Version::OF14 {
            AsyncConfig::Properties(masks.to_properties())
        } else {
            AsyncConfig::Masks(masks)
        }
    }
}

/// Size of the OpenFlow 1.3 body.
const MASKS_LEN: usize = 24;

impl BodyCodec for AsyncConfig {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        if version >= Version::OF14 {
            let (rest, props) = wire::many(i, AsyncConfigProp::decode)?;
            return Ok((rest, AsyncConfig::Properties(props)));
        }
        let (rest, packet_in_master) = wire::u32(i)?;
        let (rest, packet_in_slave) = wire::u32(rest)?;
        let (rest, port_status_master) = wire::u32(rest)?;
        let (rest, port_status_slave) = wire::u32(rest)?;
        let (rest, flow_removed_master) = wire::u32(rest)?;
        let (rest, flow_removed_slave) = wire::u32(rest)?;
        let (rest, ()) = wire::all_consumed(rest, "async config")?;
        Ok((
            rest,
            AsyncConfig::Masks(AsyncMasks {
                packet_in_master,
                packet_in_slave,
                port_status_master,
                port_status_slave,
                flow_removed_master,
                flow_removed_slave,
            }),
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            AsyncConfig::Masks(m) => {
                require_version(version < Version::OF14, "async config masks", version)?;
                out.reserve(MASKS_LEN);
                out.put_u32(m.packet_in_master);
                out.put_u32(m.packet_in_slave);
                out.put_u32(m.port_status_master);
                out.put_u32(m.port_status_slave);
                out.put_u32(m.flow_removed_master);
                out.put_u32(m.flow_removed_slave);
                Ok(())
            }
            AsyncConfig::Properties(props) => {
                require_version(version >= Version::OF14, "async config properties", version)?;
                props.iter().try_for_each(|p| p.encode(out))
            }
        }
    }
}

impl fmt::Display for AsyncConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncConfig::Masks(m) => write!(f, "{m}"),
            AsyncConfig::Properties(props) => {
                if props.is_empty() {
                    return f.write_str("no properties");
                }
                for (n, p) in props.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExperimenterId;
    use crate::{Body, Message};
    use bytes::Bytes;

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn ryu_of13_get_async_reply_round_trips() {
        let bytes = hex("041b002000000000000000050000000100000007000000030000000f00000003");
        let msg = Message::decode(&bytes).unwrap();
        let masks = AsyncMasks {
            packet_in_master: 5,
            packet_in_slave: 1,
            port_status_master: 7,
            port_status_slave: 3,
            flow_removed_master: 15,
            flow_removed_slave: 3,
        };
        assert_eq!(msg.body, Body::GetAsyncReply(AsyncConfig::Masks(masks)));
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            masks.to_string(),
            "master: packet_in=no_match|invalid_ttl port_status=add|delete|modify \
             flow_removed=idle|hard|delete|group_delete; \
             slave: packet_in=no_match port_status=add|delete flow_removed=idle|hard"
        );
    }

    #[test]
    fn ryu_of14_set_async_round_trips() {
        let bytes = hex(concat!(
            "051c00a0000000000000000800000003",
            "00010008000000030002000800000003",
            "00030008000000030004000800000003",
            "00050008000000030006000800000003",
            "00070008000000030008000800000018",
            "0009000800000018000a000800000003",
            "000b000800000003fffe000c00000065",
            "0000000000000000ffff001000000065",
            "0000000100000001ffff001400000065",
            "00000002000000010000000200000000",
        ));
        let msg = Message::decode(&bytes).unwrap();
        let Body::SetAsync(AsyncConfig::Properties(props)) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(props.len(), 15);
        for (n, p) in props[..12].iter().enumerate() {
            let mask = if n == 8 || n == 9 { 0x18 } else { 3 };
            assert_eq!(
                *p,
                AsyncConfigProp::Reasons {
                    prop_type: AsyncPropType(n as u16),
                    mask
                }
            );
        }
        assert_eq!(
            props[12],
            AsyncConfigProp::Experimenter {
                prop_type: AsyncPropType::EXPERIMENTER_SLAVE,
                prop: ExperimenterProperty {
                    experimenter: ExperimenterId(101),
                    exp_type: 0,
                    data: Bytes::new()
                }
            }
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn each_form_belongs_to_its_version() {
        let masks = AsyncMasks::default_for_controller();
        let of13 = AsyncConfig::from_masks(Version::OF13, masks);
        let of14 = AsyncConfig::from_masks(Version::OF14, masks);
        assert_eq!(of13, AsyncConfig::Masks(masks));
        for (version, body, ok) in [
            (Version::OF13, &of13, true),
            (Version::OF14, &of13, false),
            (Version::OF13, &of14, false),
            (Version::OF14, &of14, true),
        ] {
            let msg = Message::new(version, 1, Body::SetAsync(body.clone()));
            match msg.encode() {
                Ok(bytes) => {
                    assert!(ok);
                    assert_eq!(Message::decode(&bytes).unwrap(), msg);
                }
                Err(e) => {
                    assert!(!ok);
                    assert!(matches!(e, EncodeError::WrongVersion { .. }), "{e}");
                }
            }
        }
        let AsyncConfig::Properties(props) = &of14 else {
            panic!()
        };
        assert_eq!(
            props[1],
            AsyncConfigProp::Reasons {
                prop_type: AsyncPropType::PACKET_IN_MASTER,
                mask: 0b11
            }
        );
        assert_eq!(props[1].to_string(), "packet_in_master=no_match|action");
    }

    #[test]
    fn malformed_async_configs_are_errors() {
        // OpenFlow 1.3 with a missing mask.
        let err = Message::decode(&hex(
            "041c001c00000000000000050000000100000007000000030000000f",
        ))
        .unwrap_err();
        assert_eq!(err.offset, 28);
        // OpenFlow 1.4 reasons property of length 12.
        let err =
            Message::decode(&hex("051c0018000000000001000c000000030000000000000000")).unwrap_err();
        assert_eq!(err.offset, 10);
        // Mismatched property types cannot be encoded.
        let bad = AsyncConfig::Properties(vec![AsyncConfigProp::Reasons {
            prop_type: AsyncPropType::EXPERIMENTER_MASTER,
            mask: 1,
        }]);
        assert!(
            Message::new(Version::OF14, 0, Body::SetAsync(bad))
                .encode()
                .is_err()
        );
    }
}
