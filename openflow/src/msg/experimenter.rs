//! EXPERIMENTER messages (vendor extensions such as Open vSwitch's Nicira ones).

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::types::{ExperimenterId, HexPreview};
use crate::wire::{self, PResult};

/// The body of an EXPERIMENTER message: whose extension it is, which message
/// of theirs, and its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Experimenter {
    /// Who defined the message.
    pub experimenter: ExperimenterId,
    /// The experimenter's own message type.
    pub exp_type: u32,
    /// The rest of the message, as the experimenter defines it.
    #[serde(with = "crate::wire::hex_bytes")]
    pub data: Bytes,
}

impl Experimenter {
    /// An experimenter message of `exp_type` carrying `data`.
    pub fn new(experimenter: ExperimenterId, exp_type: u32, data: impl Into<Bytes>) -> Self {
        Experimenter {
            experimenter,
            exp_type,
            data: data.into(),
        }
    }
}

impl BodyCodec for Experimenter {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, experimenter) = wire::u32(i)?;
        let (rest, exp_type) = wire::u32(rest)?;
        Ok((
            &rest[rest.len()..],
            Experimenter {
                experimenter: ExperimenterId(experimenter),
                exp_type,
                data: Bytes::copy_from_slice(rest),
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u32(self.experimenter.0);
        out.put_u32(self.exp_type);
        out.put_slice(&self.data);
        Ok(())
    }
}

impl fmt::Display for Experimenter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "experimenter={} exp_type={}",
            self.experimenter, self.exp_type
        )?;
        if !self.data.is_empty() {
            write!(f, " data={}", HexPreview(&self.data, 64))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};

    #[test]
    fn ryu_experimenter_round_trips() {
        let bytes = hex::decode("040400140000000005e30a78075bcd156e617a6f").unwrap();
        let msg = Message::decode(&bytes).unwrap();
        assert_eq!(
            msg.body,
            Body::Experimenter(Experimenter::new(
                ExperimenterId(98_765_432),
                123_456_789,
                Bytes::from_static(b"nazo")
            ))
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            msg.to_string(),
            "EXPERIMENTER (OF1.3) (xid=0x0): experimenter=0x05e30a78 exp_type=123456789 data=6e617a6f"
        );
    }

    #[test]
    fn onf_messages_other_than_bundles_stay_experimenter_messages() {
        // ONF 2350 (OFPT_ONF_FLOW_MONITOR_CANCEL-like), not a bundle.
        let bytes = hex::decode("04040014000000014f4e46000000092e00000001").unwrap();
        let msg = Message::decode(&bytes).unwrap();
        let Body::Experimenter(e) = &msg.body else {
            panic!("{msg:?}")
        };
        assert_eq!(e.experimenter, ExperimenterId::ONF);
        assert_eq!(e.exp_type, 2350);
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn short_experimenter_headers_are_errors() {
        // The exp_type is cut short two bytes in.
        let err =
            Message::decode(&hex::decode("0404000e0000000000002320abcd").unwrap()).unwrap_err();
        assert_eq!(err.offset, 12);
    }
}
