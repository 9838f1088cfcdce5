//! ROLE_REQUEST and ROLE_REPLY: which controller is in charge.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::wire::{self, PResult};

wire_enum! {
    /// A controller role (`ofp_controller_role`).
    pub struct ControllerRole(u32) {
        /// `OFPCR_ROLE_NOCHANGE`: only ask for the current role.
        NOCHANGE = 0 => "nochange",
        /// `OFPCR_ROLE_EQUAL`: full access, shared with other equal controllers.
        EQUAL = 1 => "equal",
        /// `OFPCR_ROLE_MASTER`: full access, at most one master.
        MASTER = 2 => "master",
        /// `OFPCR_ROLE_SLAVE`: read-only access.
        SLAVE = 3 => "slave",
    }
}

/// The body of ROLE_REQUEST and ROLE_REPLY (`ofp_role_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleMessage {
    /// The role asked for, or granted.
    pub role: ControllerRole,
    /// Master election generation: the switch refuses a MASTER or SLAVE
    /// request whose generation is older than one it has seen (compared as a
    /// wrapping 64-bit counter). Ignored for EQUAL and NOCHANGE.
    pub generation_id: u64,
}

impl RoleMessage {
    /// A request for `role` in master election generation `generation_id`.
    pub fn request(role: ControllerRole, generation_id: u64) -> Self {
        RoleMessage {
            role,
            generation_id,
        }
    }

    /// A request that only asks the switch for the current role.
    pub fn query() -> Self {
        RoleMessage::request(ControllerRole::NOCHANGE, 0)
    }
}

impl BodyCodec for RoleMessage {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, role) = wire::u32(i)?;
        let (rest, ()) = wire::pad(rest, 4)?;
        let (rest, generation_id) = wire::u64(rest)?;
        let (rest, ()) = wire::all_consumed(rest, "role message")?;
        Ok((
            rest,
            RoleMessage {
                role: ControllerRole(role),
                generation_id,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.role.0);
        wire::put_zeros(out, 4);
        out.put_u64(self.generation_id);
        Ok(())
    }
}

impl fmt::Display for RoleMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role={}", self.role)?;
        if self.role == ControllerRole::MASTER || self.role == ControllerRole::SLAVE {
            write!(f, " generation_id={}", self.generation_id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};

    #[test]
    fn ryu_role_request_and_reply_round_trip() {
        for (text, request) in [
            ("041800180000000000000002", true),
            ("041900180000000000000002", false),
        ] {
            let bytes = hex::decode(format!("{text}00000000f000f000f000f000")).unwrap();
            let msg = Message::decode(&bytes).unwrap();
            let role = RoleMessage::request(ControllerRole::MASTER, 0xf000_f000_f000_f000);
            let expected = if request {
                Body::RoleRequest(role)
            } else {
                Body::RoleReply(role)
            };
            assert_eq!(msg.body, expected);
            assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        }
    }

    #[test]
    fn display_and_unknown_roles() {
        assert_eq!(
            RoleMessage::request(ControllerRole::SLAVE, 7).to_string(),
            "role=slave generation_id=7"
        );
        assert_eq!(RoleMessage::query().to_string(), "role=nochange");
        let odd = RoleMessage::request(ControllerRole(9), 0);
        let msg = Message::new(Version::OF14, 1, Body::RoleRequest(odd));
        let back = Message::decode(&msg.encode().unwrap()).unwrap();
        assert_eq!(back.body, Body::RoleRequest(odd));
        assert_eq!(odd.to_string(), "role=9");
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let err =
            Message::decode(&hex::decode("041800140000000000000002000000000000f000").unwrap())
                .unwrap_err();
        assert_eq!(err.offset, 16);
        let err = Message::decode(
            &hex::decode("04180019000000000000000200000000000000000000000001").unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.offset, 24);
    }
}
