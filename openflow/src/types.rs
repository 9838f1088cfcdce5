//! The protocol's basic vocabulary, shared by every message: port numbers,
//! Ethernet addresses, experimenter ids, the reserved group, meter, table and
//! buffer ids, and how they print.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// An OpenFlow 1.3 port number, including the reserved ports.
///
/// `Display` names the reserved ports as `ovs-ofctl` does (`CONTROLLER`,
/// `LOCAL`, ...) and writes the others in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct PortNo(pub u32);

impl PortNo {
    /// The highest number of a physical or logical port.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
    /// The packet's ingress port.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Submit to the first flow table (PACKET_OUT only).
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// The switch's normal L2/L3 processing.
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// Every port except the ingress port and those with flooding disabled.
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// Every port except the ingress port.
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// The controller.
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// The switch's local networking stack.
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// No port: the wildcard of `out_port` filters and statistics requests.
    pub const ANY: PortNo = PortNo(0xffff_ffff);

    /// The reserved ports that have names, in wire order.
    const NAMED: [PortNo; 8] = [
        PortNo::IN_PORT,
        PortNo::TABLE,
        PortNo::NORMAL,
        PortNo::FLOOD,
        PortNo::ALL,
        PortNo::CONTROLLER,
        PortNo::LOCAL,
        PortNo::ANY,
    ];

    /// Offset between the OpenFlow 1.0 reserved ports (0xff00..) and the
    /// OpenFlow 1.1+ ones (0xffffff00..), as OVS converts them.
    const OF10_OFFSET: u32 = 0xffff_0000;

    /// The name of a reserved port.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            PortNo::IN_PORT => "IN_PORT",
            PortNo::TABLE => "TABLE",
            PortNo::NORMAL => "NORMAL",
            PortNo::FLOOD => "FLOOD",
            PortNo::ALL => "ALL",
            PortNo::CONTROLLER => "CONTROLLER",
            PortNo::LOCAL => "LOCAL",
            PortNo::ANY => "ANY",
            _ => return None,
        })
    }

    /// Whether this is a reserved port rather than a switch port.
    pub fn is_reserved(self) -> bool {
        self.0 > PortNo::MAX.0
    }

    /// Converts a 16-bit OpenFlow 1.0 port (used inside Nicira actions).
    pub fn from_of10(port: u16) -> PortNo {
        let port = u32::from(port);
        if port < 0xff00 {
            PortNo(port)
        } else {
            PortNo(port + PortNo::OF10_OFFSET)
        }
    }

    /// The 16-bit OpenFlow 1.0 form, if the port has one.
    pub fn to_of10(self) -> Option<u16> {
        if self.0 < 0xff00 {
            u16::try_from(self.0).ok()
        } else if self.0 >= PortNo::MAX.0 {
            u16::try_from(self.0 - PortNo::OF10_OFFSET).ok()
        } else {
            None
        }
    }
}

impl From<u32> for PortNo {
    fn from(port: u32) -> PortNo {
        PortNo(port)
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Text that is neither a port number nor a reserved port name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid port (expected a number or a name such as LOCAL or CONTROLLER)")]
pub struct ParsePortError;

impl FromStr for PortNo {
    type Err = ParsePortError;

    fn from_str(s: &str) -> Result<PortNo, ParsePortError> {
        if let Some(port) = PortNo::NAMED
            .into_iter()
            .find(|p| p.name().is_some_and(|n| n.eq_ignore_ascii_case(s)))
        {
            return Ok(port);
        }
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => s.parse(),
        };
        parsed.map(PortNo).map_err(|_| ParsePortError)
    }
}

/// An Ethernet address. Prints and serializes as `f2:0b:a4:7d:f8:ea`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The address as the low 48 bits of an integer.
    pub fn to_bits(self) -> u64 {
        let [a, b, c, d, e, g] = self.0;
        u64::from_be_bytes([0, 0, a, b, c, d, e, g])
    }

    /// The address held in the low 48 bits of `bits`; higher bits are ignored.
    pub fn from_bits(bits: u64) -> MacAddr {
        let [_, _, a, b, c, d, e, g] = bits.to_be_bytes();
        MacAddr([a, b, c, d, e, g])
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Text that is not an Ethernet address of the form `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid Ethernet address (expected six hex octets separated by ':')")]
pub struct ParseMacAddrError;

impl FromStr for MacAddr {
    type Err = ParseMacAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or(ParseMacAddrError)?;
            if part.is_empty() || part.len() > 2 {
                return Err(ParseMacAddrError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| ParseMacAddrError)?;
        }
        if parts.next().is_some() {
            return Err(ParseMacAddrError);
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

wire_enum! {
    /// An experimenter (vendor) id: an IEEE OUI in the low 24 bits, or an id
    /// assigned by the ONF. Unknown ids print as `0x05e30a78`.
    pub struct ExperimenterId(u32) as "{:#010x}" {
        /// Nicira, the id of Open vSwitch's own extensions (`NX_VENDOR_ID`).
        NICIRA = 0x0000_2320 => "NX",
        /// The Open Networking Foundation (`ONF_VENDOR_ID`), under which OVS
        /// accepts features of OpenFlow 1.4 in 1.3 (bundles, for one).
        ONF = crate::message::ONF_EXPERIMENTER_ID => "ONF",
    }
}

/// `OFP_NO_BUFFER`: the packet is carried in the message, not buffered on the switch.
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// `OFPTT_MAX`: the highest table id a flow entry can be in.
pub const TABLE_MAX: u8 = 0xfe;
/// `OFPTT_ALL`: every table, in FLOW_MOD deletes, TABLE_MOD and statistics requests.
pub const TABLE_ALL: u8 = 0xff;

/// `OFPG_MAX`: the highest group id; the ids above are reserved.
pub const GROUP_MAX: u32 = 0xffff_ff00;
/// `OFPG_ALL`: every group, in GROUP_MOD deletes and statistics requests.
pub const GROUP_ALL: u32 = 0xffff_fffc;
/// `OFPG_ANY`: the wildcard of `out_group` filters, or no group to watch.
pub const GROUP_ANY: u32 = 0xffff_ffff;

/// `OFPM_MAX`: the highest meter id; the ids above are reserved.
pub const METER_MAX: u32 = 0xffff_0000;
/// `OFPM_SLOWPATH`: the virtual meter of the slow datapath.
pub const METER_SLOWPATH: u32 = 0xffff_fffd;
/// `OFPM_CONTROLLER`: the virtual meter of the controller connection.
pub const METER_CONTROLLER: u32 = 0xffff_fffe;
/// `OFPM_ALL`: every meter, in METER_MOD deletes and statistics requests.
pub const METER_ALL: u32 = 0xffff_ffff;

/// Shows a table id, `ALL` for [`TABLE_ALL`].
pub(crate) struct TableName(pub(crate) u8);

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TABLE_ALL => f.write_str("ALL"),
            n => write!(f, "{n}"),
        }
    }
}

/// Shows a group id, naming the reserved ones (`all`, `any`).
pub(crate) struct GroupName(pub(crate) u32);

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            GROUP_ALL => f.write_str("all"),
            GROUP_ANY => f.write_str("any"),
            n => write!(f, "{n}"),
        }
    }
}

/// Shows a meter id, naming the reserved ones (`slowpath`, `controller`, `all`).
pub(crate) struct MeterName(pub(crate) u32);

impl fmt::Display for MeterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            METER_SLOWPATH => f.write_str("slowpath"),
            METER_CONTROLLER => f.write_str("controller"),
            METER_ALL => f.write_str("all"),
            n => write!(f, "{n}"),
        }
    }
}

/// Shows bytes in full as `0x0a0b...`: opaque actions, instructions and OXMs,
/// which must print whole to be told apart.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Shows at most `limit` bytes as hex, noting how many were left out: data of
/// unbounded size (experimenter payloads, error data) in one log line.
pub(crate) struct HexPreview<'a>(pub(crate) &'a [u8], pub(crate) usize);

impl fmt::Display for HexPreview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HexPreview(bytes, limit) = *self;
        for byte in bytes.iter().take(limit) {
            write!(f, "{byte:02x}")?;
        }
        if bytes.len() > limit {
            write!(f, "...(+{} bytes)", bytes.len() - limit)?;
        }
        Ok(())
    }
}

/// Shows items separated by `sep`.
pub(crate) struct Joined<'a, T>(pub(crate) &'a [T], pub(crate) &'a str);

impl<T: fmt::Display> fmt::Display for Joined<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, item) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(self.1)?;
            }
            fmt::Display::fmt(item, f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_convert_parse_and_print_like_ovs() {
        assert_eq!(PortNo::from_of10(0xfff8), PortNo::IN_PORT);
        assert_eq!(PortNo::from_of10(1234), PortNo(1234));
        assert_eq!(PortNo::IN_PORT.to_of10(), Some(0xfff8));
        assert_eq!(PortNo(0x10000).to_of10(), None);
        assert_eq!("local".parse::<PortNo>(), Ok(PortNo::LOCAL));
        assert_eq!("17".parse::<PortNo>(), Ok(PortNo(17)));
        assert_eq!("0x11".parse::<PortNo>(), Ok(PortNo(17)));
        assert!("seventeen".parse::<PortNo>().is_err());
        assert_eq!(PortNo::CONTROLLER.to_string(), "CONTROLLER");
        assert_eq!(PortNo(6).to_string(), "6");
        assert!(PortNo::ANY.is_reserved() && !PortNo::MAX.is_reserved());
        assert!(PortNo(1) < PortNo(2));
    }

    #[test]
    fn mac_addresses_parse_and_print() {
        let mac: MacAddr = "f2:0b:a4:7d:f8:ea".parse().unwrap();
        assert_eq!(mac.0, [0xf2, 0x0b, 0xa4, 0x7d, 0xf8, 0xea]);
        assert_eq!(mac.to_string(), "f2:0b:a4:7d:f8:ea");
        assert_eq!(MacAddr::from_bits(mac.to_bits()), mac);
        assert!(MacAddr::BROADCAST.is_multicast() && !mac.is_multicast());
        for bad in [
            "",
            "f2:0b:a4:7d:f8",
            "f2:0b:a4:7d:f8:ea:00",
            "f2:0b:a4:7d:f8:xx",
            "f2:0b:a4:7d:f8:eaa",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reserved_ids_have_names() {
        assert_eq!(TableName(TABLE_ALL).to_string(), "ALL");
        assert_eq!(TableName(3).to_string(), "3");
        assert_eq!(GroupName(GROUP_ALL).to_string(), "all");
        assert_eq!(GroupName(GROUP_ANY).to_string(), "any");
        assert_eq!(MeterName(METER_CONTROLLER).to_string(), "controller");
        assert_eq!(MeterName(7).to_string(), "7");
        assert_eq!(ExperimenterId::NICIRA.to_string(), "NX");
        assert_eq!(ExperimenterId(0x05e3_0a78).to_string(), "0x05e30a78");
    }

    #[test]
    fn bytes_print_whole_or_previewed() {
        assert_eq!(Hex(&[0, 0xab]).to_string(), "0x00ab");
        assert_eq!(Hex(&[]).to_string(), "0x");
        assert_eq!(HexPreview(&[1, 2, 3], 2).to_string(), "0102...(+1 bytes)");
        assert_eq!(HexPreview(&[1, 2], 2).to_string(), "0102");
        assert_eq!(Joined(&[1, 2, 3], ",").to_string(), "1,2,3");
    }
}
