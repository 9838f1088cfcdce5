//! GET_CONFIG_REPLY and SET_CONFIG: fragment handling and how much of a packet
//! PACKET_IN carries.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::wire::{self, PResult};

/// The `flags` of a switch configuration. The low two bits are not flags but
/// the fragment handling mode ([`ConfigFlags::frag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct ConfigFlags(pub u16);

impl ConfigFlags {
    /// `OFPC_FRAG_NORMAL`: no special handling of IP fragments.
    pub const FRAG_NORMAL: ConfigFlags = ConfigFlags(0);
    /// `OFPC_FRAG_DROP`: drop IP fragments.
    pub const FRAG_DROP: ConfigFlags = ConfigFlags(1);
    /// `OFPC_FRAG_REASM`: reassemble IP fragments (if the switch can).
    pub const FRAG_REASM: ConfigFlags = ConfigFlags(2);
    /// `OFPC_FRAG_MASK`: the bits that hold the fragment handling mode.
    pub const FRAG_MASK: ConfigFlags = ConfigFlags(3);

    /// The fragment handling mode alone.
    pub fn frag(self) -> ConfigFlags {
        ConfigFlags(self.0 & Self::FRAG_MASK.0)
    }
}

impl fmt::Display for ConfigFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The names Open vSwitch prints; mode 3 is Open vSwitch's "nx-match".
        let frag = match self.frag() {
            ConfigFlags::FRAG_NORMAL => "normal",
            ConfigFlags::FRAG_DROP => "drop",
            ConfigFlags::FRAG_REASM => "reassemble",
            _ => "nx-match",
        };
        write!(f, "frags={frag}")?;
        let other = self.0 & !Self::FRAG_MASK.0;
        if other != 0 {
            write!(f, " flags={other:#x}")?;
        }
        Ok(())
    }
}

/// The body of GET_CONFIG_REPLY and SET_CONFIG (`ofp_switch_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchConfig {
    /// Fragment handling.
    pub flags: ConfigFlags,
    /// Bytes of a packet sent to the controller by a table miss or an output
    /// action without its own `max_len` ([`SwitchConfig::NO_BUFFER`] for all).
    pub miss_send_len: u16,
}

impl SwitchConfig {
    /// `OFPCML_MAX`: the largest `miss_send_len` that asks for buffering.
    pub const MAX_LEN: u16 = 0xffe5;
    /// `OFPCML_NO_BUFFER`: send whole packets and buffer nothing.
    pub const NO_BUFFER: u16 = 0xffff;

    /// What augur asks of a switch: normal fragment handling and whole
    /// packets in PACKET_IN, since the controller learns from packet contents
    /// and must not depend on the switch's buffers.
    pub fn default_for_controller() -> Self {
        SwitchConfig {
            flags: ConfigFlags::FRAG_NORMAL,
            miss_send_len: Self::NO_BUFFER,
        }
    }
}

impl BodyCodec for SwitchConfig {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, flags) = wire::u16(i)?;
        let (rest, miss_send_len) = wire::u16(rest)?;
        let (rest, ()) = wire::all_consumed(rest, "switch config")?;
        Ok((
            rest,
            SwitchConfig {
                flags: ConfigFlags(flags),
                miss_send_len,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u16(self.flags.0);
        out.put_u16(self.miss_send_len);
        Ok(())
    }
}

impl fmt::Display for SwitchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} miss_send_len=", self.flags)?;
        match self.miss_send_len {
            Self::NO_BUFFER => f.write_str("NO_BUFFER"),
            n => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};

    #[test]
    fn ryu_set_config_and_get_config_reply_round_trip() {
        for (text, set) in [
            ("0409000c0000000000000080", true),
            ("0408000c0000000000000080", false),
        ] {
            let bytes = hex::decode(text).unwrap();
            let msg = Message::decode(&bytes).unwrap();
            let config = SwitchConfig {
                flags: ConfigFlags::FRAG_NORMAL,
                miss_send_len: 128,
            };
            let expected = if set {
                Body::SetConfig(config)
            } else {
                Body::GetConfigReply(config)
            };
            assert_eq!(msg.body, expected);
            assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        }
    }

    #[test]
    fn controller_default_asks_for_whole_packets() {
        let msg = Message::new(
            Version::OF13,
            3,
            Body::SetConfig(SwitchConfig::default_for_controller()),
        );
        assert_eq!(
            hex::encode(msg.encode().unwrap()),
            "0409000c000000030000ffff"
        );
        assert_eq!(
            msg.to_string(),
            "SET_CONFIG (OF1.3) (xid=0x3): frags=normal miss_send_len=NO_BUFFER"
        );
        assert_eq!(ConfigFlags(0x6).to_string(), "frags=reassemble flags=0x4");
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let err = Message::decode(&hex::decode("0409000a000000000000").unwrap()).unwrap_err();
        assert_eq!(err.offset, 10);
        let err =
            Message::decode(&hex::decode("0409000e00000000000000800000").unwrap()).unwrap_err();
        assert_eq!(err.offset, 12);
    }
}
