//! FEATURES_REPLY: who the switch is and what it can do.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::BodyCodec;
use crate::wire::{self, PResult};

flag_set! {
    /// Switch capabilities (`ofp_capabilities`).
    pub struct Capabilities(u32) {
        /// Flow statistics.
        FLOW_STATS = 1 << 0 => "FLOW_STATS",
        /// Table statistics.
        TABLE_STATS = 1 << 1 => "TABLE_STATS",
        /// Port statistics.
        PORT_STATS = 1 << 2 => "PORT_STATS",
        /// Group statistics.
        GROUP_STATS = 1 << 3 => "GROUP_STATS",
        /// Can reassemble IP fragments.
        IP_REASM = 1 << 5 => "IP_REASM",
        /// Queue statistics.
        QUEUE_STATS = 1 << 6 => "QUEUE_STATS",
        /// Blocks looping ports.
        PORT_BLOCKED = 1 << 8 => "PORT_BLOCKED",
        /// OpenFlow 1.4.1+: supports bundles.
        BUNDLES = 1 << 9 => "BUNDLES",
        /// OpenFlow 1.4.1+: supports flow monitoring.
        FLOW_MONITORING = 1 << 10 => "FLOW_MONITORING",
    }
}

/// The body of FEATURES_REPLY (`ofp_switch_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SwitchFeatures {
    /// The datapath id: by convention the bridge MAC address in the low 48 bits.
    pub datapath_id: u64,
    /// How many packets the switch can buffer for PACKET_IN.
    pub n_buffers: u32,
    /// Number of flow tables.
    pub n_tables: u8,
    /// 0 for the main connection, otherwise which auxiliary connection this is.
    pub auxiliary_id: u8,
    /// What the switch supports.
    pub capabilities: Capabilities,
    /// Reserved; kept for a faithful round trip.
    pub reserved: u32,
}

impl BodyCodec for SwitchFeatures {
    fn decode_body(_: Version, i: &[u8]) -> PResult<'_, Self> {
        let (rest, datapath_id) = wire::u64(i)?;
        let (rest, n_buffers) = wire::u32(rest)?;
        let (rest, n_tables) = wire::u8(rest)?;
        let (rest, auxiliary_id) = wire::u8(rest)?;
        let (rest, ()) = wire::pad(rest, 2)?;
        let (rest, capabilities) = wire::u32(rest)?;
        let (rest, reserved) = wire::u32(rest)?;
        let (rest, ()) = wire::all_consumed(rest, "features reply")?;
        Ok((
            rest,
            SwitchFeatures {
                datapath_id,
                n_buffers,
                n_tables,
                auxiliary_id,
                capabilities: Capabilities(capabilities),
                reserved,
            },
        ))
    }

    fn encode_body(&self, _: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u64(self.datapath_id);
        out.put_u32(self.n_buffers);
        out.put_u8(self.n_tables);
        out.put_u8(self.auxiliary_id);
        wire::put_zeros(out, 2);
        out.put_u32(self.capabilities.0);
        out.put_u32(self.reserved);
        Ok(())
    }
}

impl fmt::Display for SwitchFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dpid:{:016x} n_tables:{} n_buffers:{}",
            self.datapath_id, self.n_tables, self.n_buffers
        )?;
        if self.auxiliary_id != 0 {
            write!(f, " auxiliary_id:{}", self.auxiliary_id)?;
        }
        write!(f, " capabilities: {}", self.capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, Message};

    #[test]
    fn ryu_features_reply_round_trips() {
        let bytes = hex::decode("0406002000000000000008606e7f74e700000000ff6300000000004f00000000")
            .unwrap();
        let msg = Message::decode(&bytes).unwrap();
        let Body::FeaturesReply(features) = msg.body else {
            panic!()
        };
        assert_eq!(
            features,
            SwitchFeatures {
                datapath_id: 0x0860_6e7f_74e7,
                n_buffers: 0,
                n_tables: 255,
                auxiliary_id: 99,
                capabilities: Capabilities::FLOW_STATS
                    | Capabilities::TABLE_STATS
                    | Capabilities::PORT_STATS
                    | Capabilities::GROUP_STATS
                    | Capabilities::QUEUE_STATS,
                reserved: 0,
            }
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            features.to_string(),
            "dpid:000008606e7f74e7 n_tables:255 n_buffers:0 auxiliary_id:99 \
             capabilities: FLOW_STATS|TABLE_STATS|PORT_STATS|GROUP_STATS|QUEUE_STATS"
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        // 23 bytes of body: `reserved` is cut short.
        let short =
            hex::decode("0406001f000000000000000000000001000000ffff0000000000004f000000").unwrap();
        let err = Message::decode(&short).unwrap_err();
        assert_eq!(err.offset, 28);
        // 25 bytes of body: one too many.
        let long =
            hex::decode("04060021000000000000000000000001000000ffff0000000000004f0000000000")
                .unwrap();
        let err = Message::decode(&long).unwrap_err();
        assert_eq!(err.offset, 32);
    }
}
