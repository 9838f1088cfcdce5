//! Ports: descriptions (the fixed OpenFlow 1.3 form and the property-based
//! OpenFlow 1.4 form), PORT_STATUS, PORT_MOD, and port statistics.
//!
//! One [`Port`] type serves both versions. OpenFlow 1.4 moved the Ethernet
//! features and speeds of a port into an optional property; OpenFlow 1.3 always
//! carries them. A decoded OpenFlow 1.3 port therefore has exactly one
//! [`PortDescProperty::Ethernet`], and a port can be encoded as OpenFlow 1.3
//! only if it has at most that one property. [`PortMod`] and [`PortStats`]
//! follow the same rule with their own properties.
//!
//! Port names are NUL-terminated in a 16-byte field. They decode as UTF-8 text
//! of at most 15 bytes (invalid bytes replaced, a missing terminator costing the
//! last byte) so that a decoded name always re-encodes to itself.

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use crate::error::EncodeError;
use crate::header::Version;
use crate::message::{BodyCodec, Layout};
use crate::prop::{
    ExperimenterProperty, PROP_EXPERIMENTER, RawProperty, UnknownProperty, put_property,
};
use crate::types::{MacAddr, PortNo};
use crate::wire::{self, PResult};

/// Length of the OpenFlow 1.3 `ofp_port`.
const PORT_LEN_OF13: usize = 64;
/// Length of the fixed head of the OpenFlow 1.4 `ofp_port`.
const PORT_HEAD_LEN_OF14: usize = 40;
/// Length of the OpenFlow 1.3 PORT_MOD body.
const PORT_MOD_LEN_OF13: usize = 32;
/// Length of the fixed head of the OpenFlow 1.4 PORT_MOD body.
const PORT_MOD_HEAD_LEN_OF14: usize = 24;
/// Length of the OpenFlow 1.3 `ofp_port_stats`.
const PORT_STATS_LEN_OF13: usize = 112;
/// Length of the fixed head of the OpenFlow 1.4 `ofp_port_stats`.
const PORT_STATS_HEAD_LEN_OF14: usize = 80;
/// Width of the port name field.
const PORT_NAME_LEN: usize = 16;

/// Property types shared by port descriptions, PORT_MOD and port statistics.
const PROP_ETHERNET: u16 = 0;
const PROP_OPTICAL: u16 = 1;
/// The property types the three port property lists define.
const KNOWN_PROPS: [u16; 3] = [PROP_ETHERNET, PROP_OPTICAL, PROP_EXPERIMENTER];

flag_set! {
    /// Administrative settings of a port (`OFPPC_*`).
    pub struct PortConfig(u32) {
        /// Port is administratively down.
        PORT_DOWN = 1 << 0 => "PORT_DOWN",
        /// Drop all packets received by the port.
        NO_RECV = 1 << 2 => "NO_RECV",
        /// Drop packets forwarded to the port.
        NO_FWD = 1 << 5 => "NO_FWD",
        /// Do not send packet-in messages for the port.
        NO_PACKET_IN = 1 << 6 => "NO_PACKET_IN",
    }
}

flag_set! {
    /// Current state of a port (`OFPPS_*`), set by the switch.
    pub struct PortState(u32) {
        /// No physical link present.
        LINK_DOWN = 1 << 0 => "LINK_DOWN",
        /// Port is blocked (by STP or similar).
        BLOCKED = 1 << 1 => "BLOCKED",
        /// Live for fast-failover groups.
        LIVE = 1 << 2 => "LIVE",
    }
}

flag_set! {
    /// Ethernet features of a port (`OFPPF_*`): rates, medium, negotiation.
    pub struct PortFeatures(u32) {
        /// 10 Mb/s half duplex.
        RATE_10MB_HD = 1 << 0 => "10MB-HD",
        /// 10 Mb/s full duplex.
        RATE_10MB_FD = 1 << 1 => "10MB-FD",
        /// 100 Mb/s half duplex.
        RATE_100MB_HD = 1 << 2 => "100MB-HD",
        /// 100 Mb/s full duplex.
        RATE_100MB_FD = 1 << 3 => "100MB-FD",
        /// 1 Gb/s half duplex.
        RATE_1GB_HD = 1 << 4 => "1GB-HD",
        /// 1 Gb/s full duplex.
        RATE_1GB_FD = 1 << 5 => "1GB-FD",
        /// 10 Gb/s full duplex.
        RATE_10GB_FD = 1 << 6 => "10GB-FD",
        /// 40 Gb/s full duplex.
        RATE_40GB_FD = 1 << 7 => "40GB-FD",
        /// 100 Gb/s full duplex.
        RATE_100GB_FD = 1 << 8 => "100GB-FD",
        /// 1 Tb/s full duplex.
        RATE_1TB_FD = 1 << 9 => "1TB-FD",
        /// A rate not in this list.
        OTHER = 1 << 10 => "OTHER",
        /// Copper medium.
        COPPER = 1 << 11 => "COPPER",
        /// Fiber medium.
        FIBER = 1 << 12 => "FIBER",
        /// Auto-negotiation.
        AUTONEG = 1 << 13 => "AUTO_NEG",
        /// Pause.
        PAUSE = 1 << 14 => "AUTO_PAUSE",
        /// Asymmetric pause.
        PAUSE_ASYM = 1 << 15 => "AUTO_PAUSE_ASYM",
    }
}

flag_set! {
    /// Optical port features (`OFPOPF_*`), OpenFlow 1.4.
    pub struct OpticalFeatures(u32) {
        /// Receiver is tunable.
        RX_TUNE = 1 << 0 => "RX_TUNE",
        /// Transmitter is tunable.
        TX_TUNE = 1 << 1 => "TX_TUNE",
        /// Transmit power is configurable.
        TX_PWR = 1 << 2 => "TX_PWR",
        /// Frequencies rather than wavelengths are used.
        USE_FREQ = 1 << 3 => "USE_FREQ",
    }
}

flag_set! {
    /// Which optical statistics are valid (`OFPOSF_*`), OpenFlow 1.4.
    pub struct OpticalStatsFlags(u32) {
        /// Receiver tuning information is valid.
        RX_TUNE = 1 << 0 => "RX_TUNE",
        /// Transmitter tuning information is valid.
        TX_TUNE = 1 << 1 => "TX_TUNE",
        /// Transmit power is valid.
        TX_PWR = 1 << 2 => "TX_PWR",
        /// Receive power is valid.
        RX_PWR = 1 << 4 => "RX_PWR",
        /// Transmit bias current is valid.
        TX_BIAS = 1 << 5 => "TX_BIAS",
        /// Temperature is valid.
        TX_TEMP = 1 << 6 => "TX_TEMP",
    }
}

wire_enum! {
    /// Why a PORT_STATUS was sent (`OFPPR_*`).
    pub struct PortReason(u8) {
        /// The port was added.
        ADD = 0 => "ADD",
        /// The port was removed.
        DELETE = 1 => "DELETE",
        /// Some attribute of the port changed.
        MODIFY = 2 => "MODIFY",
    }
}

/// Ethernet features and speeds of a port: the tail of the OpenFlow 1.3
/// `ofp_port`, or the OpenFlow 1.4 Ethernet port description property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortEthernet {
    /// Current features.
    pub curr: PortFeatures,
    /// Features being advertised by the port.
    pub advertised: PortFeatures,
    /// Features supported by the port.
    pub supported: PortFeatures,
    /// Features advertised by the peer.
    pub peer: PortFeatures,
    /// Current bit rate in kb/s.
    pub curr_speed: u32,
    /// Maximum bit rate in kb/s.
    pub max_speed: u32,
}

impl PortEthernet {
    /// Size of the fields on the wire.
    const LEN: usize = 24;

    fn decode(i: &[u8]) -> PResult<'_, PortEthernet> {
        let (i, curr) = wire::u32(i)?;
        let (i, advertised) = wire::u32(i)?;
        let (i, supported) = wire::u32(i)?;
        let (i, peer) = wire::u32(i)?;
        let (i, curr_speed) = wire::u32(i)?;
        let (i, max_speed) = wire::u32(i)?;
        Ok((
            i,
            PortEthernet {
                curr: PortFeatures(curr),
                advertised: PortFeatures(advertised),
                supported: PortFeatures(supported),
                peer: PortFeatures(peer),
                curr_speed,
                max_speed,
            },
        ))
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u32(self.curr.0);
        out.put_u32(self.advertised.0);
        out.put_u32(self.supported.0);
        out.put_u32(self.peer.0);
        out.put_u32(self.curr_speed);
        out.put_u32(self.max_speed);
    }
}

impl fmt::Display for PortEthernet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "current={} advertised={} supported={} peer={} speed={}kbps max_speed={}kbps",
            self.curr, self.advertised, self.supported, self.peer, self.curr_speed, self.max_speed
        )
    }
}

/// Optical capabilities of a port (OpenFlow 1.4 optical port description property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortOptical {
    /// Supported features.
    pub supported: OpticalFeatures,
    /// Minimum TX frequency or wavelength.
    pub tx_min_freq_lmda: u32,
    /// Maximum TX frequency or wavelength.
    pub tx_max_freq_lmda: u32,
    /// TX grid spacing.
    pub tx_grid_freq_lmda: u32,
    /// Minimum RX frequency or wavelength.
    pub rx_min_freq_lmda: u32,
    /// Maximum RX frequency or wavelength.
    pub rx_max_freq_lmda: u32,
    /// RX grid spacing.
    pub rx_grid_freq_lmda: u32,
    /// Minimum TX power.
    pub tx_pwr_min: u16,
    /// Maximum TX power.
    pub tx_pwr_max: u16,
}

impl PortOptical {
    /// Length of the property, header included.
    const PROP_LEN: usize = 40;

    fn decode(body: &[u8]) -> PResult<'_, PortOptical> {
        let (i, ()) = wire::pad(body, 4)?;
        let (i, supported) = wire::u32(i)?;
        let (i, tx_min_freq_lmda) = wire::u32(i)?;
        let (i, tx_max_freq_lmda) = wire::u32(i)?;
        let (i, tx_grid_freq_lmda) = wire::u32(i)?;
        let (i, rx_min_freq_lmda) = wire::u32(i)?;
        let (i, rx_max_freq_lmda) = wire::u32(i)?;
        let (i, rx_grid_freq_lmda) = wire::u32(i)?;
        let (i, tx_pwr_min) = wire::u16(i)?;
        let (i, tx_pwr_max) = wire::u16(i)?;
        Ok((
            i,
            PortOptical {
                supported: OpticalFeatures(supported),
                tx_min_freq_lmda,
                tx_max_freq_lmda,
                tx_grid_freq_lmda,
                rx_min_freq_lmda,
                rx_max_freq_lmda,
                rx_grid_freq_lmda,
                tx_pwr_min,
                tx_pwr_max,
            },
        ))
    }

    fn encode(&self, out: &mut BytesMut) {
        wire::put_zeros(out, 4);
        out.put_u32(self.supported.0);
        out.put_u32(self.tx_min_freq_lmda);
        out.put_u32(self.tx_max_freq_lmda);
        out.put_u32(self.tx_grid_freq_lmda);
        out.put_u32(self.rx_min_freq_lmda);
        out.put_u32(self.rx_max_freq_lmda);
        out.put_u32(self.rx_grid_freq_lmda);
        out.put_u16(self.tx_pwr_min);
        out.put_u16(self.tx_pwr_max);
    }
}

impl fmt::Display for PortOptical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "optical(supported={},tx={}-{}/{},rx={}-{}/{},tx_pwr={}-{})",
            self.supported,
            self.tx_min_freq_lmda,
            self.tx_max_freq_lmda,
            self.tx_grid_freq_lmda,
            self.rx_min_freq_lmda,
            self.rx_max_freq_lmda,
            self.rx_grid_freq_lmda,
            self.tx_pwr_min,
            self.tx_pwr_max
        )
    }
}

/// A property of a port description (`OFPPDPT_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PortDescProperty {
    /// Ethernet features and speeds.
    Ethernet(PortEthernet),
    /// Optical capabilities.
    Optical(PortOptical),
    /// Experimenter property.
    Experimenter(ExperimenterProperty),
    /// A property type this crate does not know.
    Unknown(UnknownProperty),
}

impl PortDescProperty {
    /// What these properties are called in errors.
    const WHAT: &str = "port property";

    fn decode(i: &[u8]) -> PResult<'_, PortDescProperty> {
        let (rest, raw) = RawProperty::decode(i, Self::WHAT)?;
        let prop = match raw.prop_type {
            PROP_ETHERNET => {
                let body = raw.fixed(8 + PortEthernet::LEN, "ethernet port property")?;
                let (body, ()) = wire::pad(body, 4)?;
                let (_, eth) = PortEthernet::decode(body)?;
                PortDescProperty::Ethernet(eth)
            }
            PROP_OPTICAL => {
                let body = raw.fixed(PortOptical::PROP_LEN, "optical port property")?;
                let (_, optical) = PortOptical::decode(body)?;
                PortDescProperty::Optical(optical)
            }
            PROP_EXPERIMENTER => {
                PortDescProperty::Experimenter(ExperimenterProperty::decode(&raw)?)
            }
            _ => PortDescProperty::Unknown(UnknownProperty::from_raw(&raw)),
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            PortDescProperty::Ethernet(eth) => {
                put_property(out, PROP_ETHERNET, Self::WHAT, |out| {
                    wire::put_zeros(out, 4);
                    eth.encode(out);
                })
            }
            PortDescProperty::Optical(optical) => {
                put_property(out, PROP_OPTICAL, Self::WHAT, |out| optical.encode(out))
            }
            PortDescProperty::Experimenter(exp) => exp.encode(PROP_EXPERIMENTER, Self::WHAT, out),
            PortDescProperty::Unknown(unknown) => unknown.encode(&KNOWN_PROPS, Self::WHAT, out),
        }
    }
}

impl fmt::Display for PortDescProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortDescProperty::Ethernet(eth) => eth.fmt(f),
            PortDescProperty::Optical(optical) => optical.fmt(f),
            PortDescProperty::Experimenter(exp) => exp.fmt(f),
            PortDescProperty::Unknown(unknown) => unknown.fmt(f),
        }
    }
}

/// A port description (`ofp_port`), as in PORT_STATUS and PORT_DESC replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Port number.
    pub port_no: PortNo,
    /// Ethernet address of the port.
    pub hw_addr: MacAddr,
    /// Interface name: UTF-8, at most 15 bytes on the wire (see the module docs).
    pub name: String,
    /// Administrative settings.
    pub config: PortConfig,
    /// Link state.
    pub state: PortState,
    /// Properties in wire order. An OpenFlow 1.3 port has exactly one, [`PortDescProperty::Ethernet`].
    pub properties: Vec<PortDescProperty>,
}

impl Port {
    /// The Ethernet features and speeds, if the port reports them.
    pub fn ethernet(&self) -> Option<&PortEthernet> {
        self.properties.iter().find_map(|p| match p {
            PortDescProperty::Ethernet(eth) => Some(eth),
            _ => None,
        })
    }

    /// Whether the port can carry traffic: administratively up with a link.
    pub fn is_up(&self) -> bool {
        !self.config.contains(PortConfig::PORT_DOWN) && !self.state.contains(PortState::LINK_DOWN)
    }

    /// Decodes one port description in the layout of `version`.
    pub(crate) fn decode(version: Version, i: &[u8]) -> PResult<'_, Port> {
        match Layout::decoding(version, i)? {
            Layout::Of13 => Port::decode_of13(i),
            Layout::Of14 => Port::decode_of14(i),
        }
    }

    fn decode_head(i: &[u8]) -> PResult<'_, (MacAddr, String, PortConfig, PortState)> {
        let (i, hw_addr) = wire::array::<6>(i)?;
        let (i, ()) = wire::pad(i, 2)?;
        let (i, name) = wire::fixed_str(i, PORT_NAME_LEN)?;
        let (i, config) = wire::u32(i)?;
        let (i, state) = wire::u32(i)?;
        Ok((
            i,
            (MacAddr(hw_addr), name, PortConfig(config), PortState(state)),
        ))
    }

    fn decode_of13(i: &[u8]) -> PResult<'_, Port> {
        let (i, port_no) = wire::u32(i)?;
        let (i, ()) = wire::pad(i, 4)?;
        let (i, (hw_addr, name, config, state)) = Port::decode_head(i)?;
        let (i, eth) = PortEthernet::decode(i)?;
        Ok((
            i,
            Port {
                port_no: PortNo(port_no),
                hw_addr,
                name,
                config,
                state,
                properties: vec![PortDescProperty::Ethernet(eth)],
            },
        ))
    }

    fn decode_of14(i: &[u8]) -> PResult<'_, Port> {
        let (rest, whole) = wire::split_by_length(i, 4, PORT_HEAD_LEN_OF14, "port")?;
        let (p, port_no) = wire::u32(whole)?;
        let (p, ()) = wire::pad(p, 4)?;
        let (p, (hw_addr, name, config, state)) = Port::decode_head(p)?;
        let (_, properties) = wire::many(p, PortDescProperty::decode)?;
        Ok((
            rest,
            Port {
                port_no: PortNo(port_no),
                hw_addr,
                name,
                config,
                state,
                properties,
            },
        ))
    }

    /// Appends the port description in the layout of `version`.
    pub(crate) fn encode(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        match Layout::encoding(version, "port description")? {
            Layout::Of13 => {
                let eth = match self.properties.as_slice() {
                    [] => PortEthernet::default(),
                    [PortDescProperty::Ethernet(eth)] => *eth,
                    _ => {
                        return Err(EncodeError::WrongVersion {
                            what: "port properties other than one ethernet property",
                            version: version.0,
                        });
                    }
                };
                let start = out.len();
                out.put_u32(self.port_no.0);
                wire::put_zeros(out, 4);
                self.encode_head(out);
                eth.encode(out);
                debug_assert_eq!(out.len() - start, PORT_LEN_OF13);
                Ok(())
            }
            Layout::Of14 => {
                let start = out.len();
                out.put_u32(self.port_no.0);
                let len_at = wire::reserve_u16(out);
                wire::put_zeros(out, 2);
                self.encode_head(out);
                for prop in &self.properties {
                    prop.encode(out)?;
                }
                wire::patch_len_u16(out, len_at, start, "port")?;
                Ok(())
            }
        }
    }

    fn encode_head(&self, out: &mut BytesMut) {
        out.put_slice(&self.hw_addr.0);
        wire::put_zeros(out, 2);
        wire::put_fixed_str(out, &self.name, PORT_NAME_LEN);
        out.put_u32(self.config.0);
        out.put_u32(self.state.0);
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}): addr:{} config={} state={}",
            self.port_no, self.name, self.hw_addr, self.config, self.state
        )?;
        for prop in &self.properties {
            write!(f, " {prop}")?;
        }
        Ok(())
    }
}

/// PORT_STATUS: the switch reports a port that was added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// What happened.
    pub reason: PortReason,
    /// The port as it is now (or was, for DELETE).
    pub desc: Port,
}

impl BodyCodec for PortStatus {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        let (i, reason) = wire::u8(i)?;
        let (i, ()) = wire::pad(i, 7)?;
        let (i, desc) = Port::decode(version, i)?;
        let (i, ()) = wire::all_consumed(i, "port status")?;
        Ok((
            i,
            PortStatus {
                reason: PortReason(reason),
                desc,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        out.put_u8(self.reason.0);
        wire::put_zeros(out, 7);
        self.desc.encode(version, out)
    }
}

impl fmt::Display for PortStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.desc)
    }
}

/// Optical settings of a PORT_MOD (OpenFlow 1.4 optical property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortModOptical {
    /// Features to configure.
    pub configure: OpticalFeatures,
    /// Frequency or wavelength to tune to.
    pub freq_lmda: u32,
    /// Offset from `freq_lmda` (or the grid), as the wire carries it.
    pub fl_offset: u32,
    /// Grid spacing.
    pub grid_span: u32,
    /// Transmit power.
    pub tx_pwr: u32,
}

impl PortModOptical {
    /// Length of the property, header included.
    const PROP_LEN: usize = 24;
}

/// A property of a PORT_MOD (`OFPPMPT_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PortModProperty {
    /// Ethernet features to advertise (zero: leave unchanged).
    Ethernet {
        /// Features to advertise.
        advertise: PortFeatures,
    },
    /// Optical settings.
    Optical(PortModOptical),
    /// Experimenter property.
    Experimenter(ExperimenterProperty),
    /// A property type this crate does not know.
    Unknown(UnknownProperty),
}

impl PortModProperty {
    /// What these properties are called in errors.
    const WHAT: &str = "port mod property";

    fn decode(i: &[u8]) -> PResult<'_, PortModProperty> {
        let (rest, raw) = RawProperty::decode(i, Self::WHAT)?;
        let prop = match raw.prop_type {
            PROP_ETHERNET => {
                let body = raw.fixed(8, "ethernet port mod property")?;
                let (_, advertise) = wire::u32(body)?;
                PortModProperty::Ethernet {
                    advertise: PortFeatures(advertise),
                }
            }
            PROP_OPTICAL => {
                let body = raw.fixed(PortModOptical::PROP_LEN, "optical port mod property")?;
                let (b, configure) = wire::u32(body)?;
                let (b, freq_lmda) = wire::u32(b)?;
                let (b, fl_offset) = wire::u32(b)?;
                let (b, grid_span) = wire::u32(b)?;
                let (_, tx_pwr) = wire::u32(b)?;
                PortModProperty::Optical(PortModOptical {
                    configure: OpticalFeatures(configure),
                    freq_lmda,
                    fl_offset,
                    grid_span,
                    tx_pwr,
                })
            }
            PROP_EXPERIMENTER => PortModProperty::Experimenter(ExperimenterProperty::decode(&raw)?),
            _ => PortModProperty::Unknown(UnknownProperty::from_raw(&raw)),
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            PortModProperty::Ethernet { advertise } => {
                put_property(out, PROP_ETHERNET, Self::WHAT, |out| {
                    out.put_u32(advertise.0)
                })
            }
            PortModProperty::Optical(o) => put_property(out, PROP_OPTICAL, Self::WHAT, |out| {
                out.put_u32(o.configure.0);
                out.put_u32(o.freq_lmda);
                out.put_u32(o.fl_offset);
                out.put_u32(o.grid_span);
                out.put_u32(o.tx_pwr);
            }),
            PortModProperty::Experimenter(exp) => exp.encode(PROP_EXPERIMENTER, Self::WHAT, out),
            PortModProperty::Unknown(unknown) => unknown.encode(&KNOWN_PROPS, Self::WHAT, out),
        }
    }
}

impl fmt::Display for PortModProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortModProperty::Ethernet { advertise } => write!(f, "advertise={advertise}"),
            PortModProperty::Optical(o) => write!(
                f,
                "optical(configure={},freq_lmda={},fl_offset={},grid_span={},tx_pwr={})",
                o.configure, o.freq_lmda, o.fl_offset, o.grid_span, o.tx_pwr
            ),
            PortModProperty::Experimenter(exp) => exp.fmt(f),
            PortModProperty::Unknown(unknown) => unknown.fmt(f),
        }
    }
}

/// PORT_MOD: changes the administrative settings of a port.
///
/// In OpenFlow 1.3 the features to advertise are a fixed field, where zero
/// means "leave unchanged"; it decodes to no property when zero and to one
/// [`PortModProperty::Ethernet`] otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMod {
    /// Port to change.
    pub port_no: PortNo,
    /// The port's Ethernet address, a sanity check the switch verifies.
    pub hw_addr: MacAddr,
    /// New values of the settings selected by `mask`.
    pub config: PortConfig,
    /// Settings to change.
    pub mask: PortConfig,
    /// Properties in wire order.
    pub properties: Vec<PortModProperty>,
}

impl PortMod {
    /// Sets the settings in `mask` to their values in `config`, leaving everything else.
    pub fn new(port_no: PortNo, hw_addr: MacAddr, config: PortConfig, mask: PortConfig) -> PortMod {
        PortMod {
            port_no,
            hw_addr,
            config,
            mask,
            properties: Vec::new(),
        }
    }

    /// Brings a port administratively down (`down`) or up.
    pub fn set_down(port_no: PortNo, hw_addr: MacAddr, down: bool) -> PortMod {
        let config = if down {
            PortConfig::PORT_DOWN
        } else {
            PortConfig::empty()
        };
        PortMod::new(port_no, hw_addr, config, PortConfig::PORT_DOWN)
    }
}

impl BodyCodec for PortMod {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        let layout = Layout::decoding(version, i)?;
        let (i, port_no) = wire::u32(i)?;
        let (i, ()) = wire::pad(i, 4)?;
        let (i, hw_addr) = wire::array::<6>(i)?;
        let (i, ()) = wire::pad(i, 2)?;
        let (i, config) = wire::u32(i)?;
        let (i, mask) = wire::u32(i)?;
        let (i, properties) = match layout {
            Layout::Of13 => {
                let (i, advertise) = wire::u32(i)?;
                let (i, ()) = wire::pad(i, 4)?;
                let properties = if advertise == 0 {
                    Vec::new()
                } else {
                    vec![PortModProperty::Ethernet {
                        advertise: PortFeatures(advertise),
                    }]
                };
                (i, properties)
            }
            Layout::Of14 => wire::many(i, PortModProperty::decode)?,
        };
        let (i, ()) = wire::all_consumed(i, "port mod")?;
        Ok((
            i,
            PortMod {
                port_no: PortNo(port_no),
                hw_addr: MacAddr(hw_addr),
                config: PortConfig(config),
                mask: PortConfig(mask),
                properties,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        let layout = Layout::encoding(version, "port mod")?;
        let advertise = match (layout, self.properties.as_slice()) {
            (Layout::Of13, []) => Some(0),
            (Layout::Of13, [PortModProperty::Ethernet { advertise }]) => Some(advertise.0),
            (Layout::Of13, _) => {
                return Err(EncodeError::WrongVersion {
                    what: "port mod properties other than one ethernet property",
                    version: version.0,
                });
            }
            (Layout::Of14, _) => None,
        };
        let start = out.len();
        out.put_u32(self.port_no.0);
        wire::put_zeros(out, 4);
        out.put_slice(&self.hw_addr.0);
        wire::put_zeros(out, 2);
        out.put_u32(self.config.0);
        out.put_u32(self.mask.0);
        match advertise {
            Some(advertise) => {
                out.put_u32(advertise);
                wire::put_zeros(out, 4);
                debug_assert_eq!(out.len() - start, PORT_MOD_LEN_OF13);
            }
            None => {
                debug_assert_eq!(out.len() - start, PORT_MOD_HEAD_LEN_OF14);
                for prop in &self.properties {
                    prop.encode(out)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for PortMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "port={} addr:{} config={} mask={}",
            self.port_no, self.hw_addr, self.config, self.mask
        )?;
        for prop in &self.properties {
            write!(f, " {prop}")?;
        }
        Ok(())
    }
}

/// Ethernet error counters of a port: the tail of the OpenFlow 1.3
/// `ofp_port_stats`, or the OpenFlow 1.4 Ethernet port statistics property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortStatsEthernet {
    /// Frame alignment errors.
    pub rx_frame_err: u64,
    /// Packets with receive overrun.
    pub rx_over_err: u64,
    /// CRC errors.
    pub rx_crc_err: u64,
    /// Collisions.
    pub collisions: u64,
}

impl PortStatsEthernet {
    fn decode(i: &[u8]) -> PResult<'_, PortStatsEthernet> {
        let (i, rx_frame_err) = wire::u64(i)?;
        let (i, rx_over_err) = wire::u64(i)?;
        let (i, rx_crc_err) = wire::u64(i)?;
        let (i, collisions) = wire::u64(i)?;
        Ok((
            i,
            PortStatsEthernet {
                rx_frame_err,
                rx_over_err,
                rx_crc_err,
                collisions,
            },
        ))
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u64(self.rx_frame_err);
        out.put_u64(self.rx_over_err);
        out.put_u64(self.rx_crc_err);
        out.put_u64(self.collisions);
    }
}

/// Optical measurements of a port (OpenFlow 1.4 optical port statistics property).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortStatsOptical {
    /// Which of the values below are valid.
    pub flags: OpticalStatsFlags,
    /// Current TX frequency or wavelength.
    pub tx_freq_lmda: u32,
    /// TX offset.
    pub tx_offset: u32,
    /// TX grid spacing.
    pub tx_grid_span: u32,
    /// Current RX frequency or wavelength.
    pub rx_freq_lmda: u32,
    /// RX offset.
    pub rx_offset: u32,
    /// RX grid spacing.
    pub rx_grid_span: u32,
    /// Current TX power.
    pub tx_pwr: u16,
    /// Current RX power.
    pub rx_pwr: u16,
    /// TX bias current.
    pub bias_current: u16,
    /// TX laser temperature.
    pub temperature: u16,
}

impl PortStatsOptical {
    /// Length of the property, header included.
    const PROP_LEN: usize = 44;
}

/// A property of a port statistics entry (`OFPPSPT_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PortStatsProperty {
    /// Ethernet error counters.
    Ethernet(PortStatsEthernet),
    /// Optical measurements.
    Optical(PortStatsOptical),
    /// Experimenter property.
    Experimenter(ExperimenterProperty),
    /// A property type this crate does not know.
    Unknown(UnknownProperty),
}

impl PortStatsProperty {
    /// What these properties are called in errors.
    const WHAT: &str = "port stats property";

    fn decode(i: &[u8]) -> PResult<'_, PortStatsProperty> {
        let (rest, raw) = RawProperty::decode(i, Self::WHAT)?;
        let prop = match raw.prop_type {
            PROP_ETHERNET => {
                let body = raw.fixed(40, "ethernet port stats property")?;
                let (body, ()) = wire::pad(body, 4)?;
                let (_, eth) = PortStatsEthernet::decode(body)?;
                PortStatsProperty::Ethernet(eth)
            }
            PROP_OPTICAL => {
                let body = raw.fixed(PortStatsOptical::PROP_LEN, "optical port stats property")?;
                let (b, ()) = wire::pad(body, 4)?;
                let (b, flags) = wire::u32(b)?;
                let (b, tx_freq_lmda) = wire::u32(b)?;
                let (b, tx_offset) = wire::u32(b)?;
                let (b, tx_grid_span) = wire::u32(b)?;
                let (b, rx_freq_lmda) = wire::u32(b)?;
                let (b, rx_offset) = wire::u32(b)?;
                let (b, rx_grid_span) = wire::u32(b)?;
                let (b, tx_pwr) = wire::u16(b)?;
                let (b, rx_pwr) = wire::u16(b)?;
                let (b, bias_current) = wire::u16(b)?;
                let (_, temperature) = wire::u16(b)?;
                PortStatsProperty::Optical(PortStatsOptical {
                    flags: OpticalStatsFlags(flags),
                    tx_freq_lmda,
                    tx_offset,
                    tx_grid_span,
                    rx_freq_lmda,
                    rx_offset,
                    rx_grid_span,
                    tx_pwr,
                    rx_pwr,
                    bias_current,
                    temperature,
                })
            }
            PROP_EXPERIMENTER => {
                PortStatsProperty::Experimenter(ExperimenterProperty::decode(&raw)?)
            }
            _ => PortStatsProperty::Unknown(UnknownProperty::from_raw(&raw)),
        };
        Ok((rest, prop))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            PortStatsProperty::Ethernet(eth) => {
                put_property(out, PROP_ETHERNET, Self::WHAT, |out| {
                    wire::put_zeros(out, 4);
                    eth.encode(out);
                })
            }
            PortStatsProperty::Optical(o) => put_property(out, PROP_OPTICAL, Self::WHAT, |out| {
                wire::put_zeros(out, 4);
                out.put_u32(o.flags.0);
                out.put_u32(o.tx_freq_lmda);
                out.put_u32(o.tx_offset);
                out.put_u32(o.tx_grid_span);
                out.put_u32(o.rx_freq_lmda);
                out.put_u32(o.rx_offset);
                out.put_u32(o.rx_grid_span);
                out.put_u16(o.tx_pwr);
                out.put_u16(o.rx_pwr);
                out.put_u16(o.bias_current);
                out.put_u16(o.temperature);
            }),
            PortStatsProperty::Experimenter(exp) => exp.encode(PROP_EXPERIMENTER, Self::WHAT, out),
            PortStatsProperty::Unknown(unknown) => unknown.encode(&KNOWN_PROPS, Self::WHAT, out),
        }
    }
}

impl fmt::Display for PortStatsProperty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortStatsProperty::Ethernet(e) => write!(
                f,
                "frame_err={} over_err={} crc_err={} collisions={}",
                e.rx_frame_err, e.rx_over_err, e.rx_crc_err, e.collisions
            ),
            PortStatsProperty::Optical(o) => write!(
                f,
                "optical(flags={},tx={}/{}/{},rx={}/{}/{},tx_pwr={},rx_pwr={},bias={},temp={})",
                o.flags,
                o.tx_freq_lmda,
                o.tx_offset,
                o.tx_grid_span,
                o.rx_freq_lmda,
                o.rx_offset,
                o.rx_grid_span,
                o.tx_pwr,
                o.rx_pwr,
                o.bias_current,
                o.temperature
            ),
            PortStatsProperty::Experimenter(exp) => exp.fmt(f),
            PortStatsProperty::Unknown(unknown) => unknown.fmt(f),
        }
    }
}

/// Counters of one port (`ofp_port_stats`), from a PORT_STATS reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStats {
    /// Port number.
    pub port_no: PortNo,
    /// Seconds the port has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets dropped on receive.
    pub rx_dropped: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
    /// Receive errors, a superset of the specific ones.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Properties in wire order. OpenFlow 1.3 entries have exactly one, [`PortStatsProperty::Ethernet`].
    pub properties: Vec<PortStatsProperty>,
}

impl PortStats {
    /// The Ethernet error counters, if the switch reports them.
    pub fn ethernet(&self) -> Option<&PortStatsEthernet> {
        self.properties.iter().find_map(|p| match p {
            PortStatsProperty::Ethernet(eth) => Some(eth),
            _ => None,
        })
    }

    /// Decodes one entry in the layout of `version`.
    pub(crate) fn decode(version: Version, i: &[u8]) -> PResult<'_, PortStats> {
        match Layout::decoding(version, i)? {
            Layout::Of13 => {
                let (i, port_no) = wire::u32(i)?;
                let (i, ()) = wire::pad(i, 4)?;
                let (i, mut stats) = PortStats::decode_counters(i, port_no)?;
                let (i, eth) = PortStatsEthernet::decode(i)?;
                let (i, duration_sec) = wire::u32(i)?;
                let (i, duration_nsec) = wire::u32(i)?;
                stats.duration_sec = duration_sec;
                stats.duration_nsec = duration_nsec;
                stats.properties.push(PortStatsProperty::Ethernet(eth));
                Ok((i, stats))
            }
            Layout::Of14 => {
                let (rest, whole) =
                    wire::split_by_length(i, 0, PORT_STATS_HEAD_LEN_OF14, "port stats")?;
                let (p, ()) = wire::pad(whole, 4)?;
                let (p, port_no) = wire::u32(p)?;
                let (p, duration_sec) = wire::u32(p)?;
                let (p, duration_nsec) = wire::u32(p)?;
                let (p, mut stats) = PortStats::decode_counters(p, port_no)?;
                let (_, properties) = wire::many(p, PortStatsProperty::decode)?;
                stats.duration_sec = duration_sec;
                stats.duration_nsec = duration_nsec;
                stats.properties = properties;
                Ok((rest, stats))
            }
        }
    }

    fn decode_counters(i: &[u8], port_no: u32) -> PResult<'_, PortStats> {
        let (i, rx_packets) = wire::u64(i)?;
        let (i, tx_packets) = wire::u64(i)?;
        let (i, rx_bytes) = wire::u64(i)?;
        let (i, tx_bytes) = wire::u64(i)?;
        let (i, rx_dropped) = wire::u64(i)?;
        let (i, tx_dropped) = wire::u64(i)?;
        let (i, rx_errors) = wire::u64(i)?;
        let (i, tx_errors) = wire::u64(i)?;
        Ok((
            i,
            PortStats {
                port_no: PortNo(port_no),
                duration_sec: 0,
                duration_nsec: 0,
                rx_packets,
                tx_packets,
                rx_bytes,
                tx_bytes,
                rx_dropped,
                tx_dropped,
                rx_errors,
                tx_errors,
                properties: Vec::new(),
            },
        ))
    }

    fn encode_counters(&self, out: &mut BytesMut) {
        out.put_u64(self.rx_packets);
        out.put_u64(self.tx_packets);
        out.put_u64(self.rx_bytes);
        out.put_u64(self.tx_bytes);
        out.put_u64(self.rx_dropped);
        out.put_u64(self.tx_dropped);
        out.put_u64(self.rx_errors);
        out.put_u64(self.tx_errors);
    }

    /// Appends the entry in the layout of `version`.
    pub(crate) fn encode(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        match Layout::encoding(version, "port stats")? {
            Layout::Of13 => {
                let eth = match self.properties.as_slice() {
                    [] => PortStatsEthernet::default(),
                    [PortStatsProperty::Ethernet(eth)] => *eth,
                    _ => {
                        return Err(EncodeError::WrongVersion {
                            what: "port stats properties other than one ethernet property",
                            version: version.0,
                        });
                    }
                };
                let start = out.len();
                out.put_u32(self.port_no.0);
                wire::put_zeros(out, 4);
                self.encode_counters(out);
                eth.encode(out);
                out.put_u32(self.duration_sec);
                out.put_u32(self.duration_nsec);
                debug_assert_eq!(out.len() - start, PORT_STATS_LEN_OF13);
                Ok(())
            }
            Layout::Of14 => {
                let start = out.len();
                let len_at = wire::reserve_u16(out);
                wire::put_zeros(out, 2);
                out.put_u32(self.port_no.0);
                out.put_u32(self.duration_sec);
                out.put_u32(self.duration_nsec);
                self.encode_counters(out);
                for prop in &self.properties {
                    prop.encode(out)?;
                }
                wire::patch_len_u16(out, len_at, start, "port stats")?;
                Ok(())
            }
        }
    }
}

impl fmt::Display for PortStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "port {}: rx pkts={}, bytes={}, drop={}, errs={} tx pkts={}, bytes={}, drop={}, errs={} duration={}.{:03}s",
            self.port_no,
            self.rx_packets,
            self.rx_bytes,
            self.rx_dropped,
            self.rx_errors,
            self.tx_packets,
            self.tx_bytes,
            self.tx_dropped,
            self.tx_errors,
            self.duration_sec,
            self.duration_nsec / 1_000_000
        )?;
        for prop in &self.properties {
            write!(f, " {prop}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, DecodeErrorKind, Message};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|n| u8::from_str_radix(&s[n..n + 2], 16).unwrap())
            .collect()
    }

    fn round_trip(bytes: &[u8]) -> Message {
        let msg = Message::decode(bytes).unwrap();
        assert_eq!(&msg.encode().unwrap()[..], bytes, "{msg}");
        msg
    }

    /// ovs-ofctl's PORT_STATUS for eth0 (libofproto-OFP13-port_status).
    const PORT_STATUS_OF13: &str = "040c0050 00000000 02000000 00000000 00000001 00000000
        ffffffffffff 0000 65746830000000000000000000000000 00000000 00000004
        00002808 00002808 00002808 00002808 0000c350 000186a0";

    #[test]
    fn of13_port_status_decodes_to_one_ethernet_property() {
        let msg = round_trip(&hex(PORT_STATUS_OF13));
        let Body::PortStatus(status) = &msg.body else {
            panic!()
        };
        assert_eq!(status.reason, PortReason::MODIFY);
        let port = &status.desc;
        assert_eq!(port.port_no, PortNo(1));
        assert_eq!(port.name, "eth0");
        assert_eq!(port.hw_addr, MacAddr::BROADCAST);
        assert_eq!(port.state, PortState::LIVE);
        assert!(port.is_up());
        let eth = port.ethernet().unwrap();
        assert_eq!(
            eth.curr,
            PortFeatures::RATE_100MB_FD | PortFeatures::COPPER | PortFeatures::AUTONEG
        );
        assert_eq!((eth.curr_speed, eth.max_speed), (50000, 100_000));
        assert_eq!(
            status.to_string(),
            "MODIFY: 1(eth0): addr:ff:ff:ff:ff:ff:ff config=0 state=LIVE \
             current=100MB-FD|COPPER|AUTO_NEG advertised=100MB-FD|COPPER|AUTO_NEG \
             supported=100MB-FD|COPPER|AUTO_NEG peer=100MB-FD|COPPER|AUTO_NEG \
             speed=50000kbps max_speed=100000kbps"
        );
    }

    /// Ryu's OF1.4 PORT_STATUS (5-37-ofp_port_status): ethernet, optical and experimenter properties.
    const PORT_STATUS_OF14: &str = "050c00b8 00000000 00000000 00000000 00000007 00a80000
        f20ba4d03f70 0000 e7a781e381aee3839de383bce3838800 00000000 00000004
        00000020 00000000 00002808 00002800 00002808 00002808 00001388 00001388
        00010028 00000000 00000001 000003e8 000007d0 000005dc 000003e8 000007d0 000005dc 03e807d0
        ffff000c 00000065 00000000 00000000
        ffff0010 00000065 00000001 00000001
        ffff0014 00000065 00000002 00000001 00000002 00000000";

    #[test]
    fn of14_port_status_keeps_every_property_in_order() {
        let msg = round_trip(&hex(PORT_STATUS_OF14));
        let Body::PortStatus(status) = &msg.body else {
            panic!()
        };
        let port = &status.desc;
        assert_eq!(port.name, "私のポート");
        assert_eq!(port.properties.len(), 5);
        assert_eq!(port.ethernet().unwrap().curr_speed, 5000);
        let PortDescProperty::Optical(optical) = &port.properties[1] else {
            panic!()
        };
        assert_eq!(optical.supported, OpticalFeatures::RX_TUNE);
        assert_eq!((optical.tx_pwr_min, optical.tx_pwr_max), (1000, 2000));
        let PortDescProperty::Experimenter(exp) = &port.properties[4] else {
            panic!()
        };
        assert_eq!(
            (exp.experimenter, exp.exp_type),
            (crate::ExperimenterId(101), 2)
        );
        assert_eq!(&exp.data[..], &[0, 0, 0, 1, 0, 0, 0, 2]);
    }

    #[test]
    fn of14_port_with_unknown_property_round_trips() {
        let mut bytes = hex(PORT_STATUS_OF14);
        // Retype the optical property as an unknown type 7.
        bytes[0x58..0x5a].copy_from_slice(&[0, 7]);
        let msg = round_trip(&bytes);
        let Body::PortStatus(status) = &msg.body else {
            panic!()
        };
        let PortDescProperty::Unknown(unknown) = &status.desc.properties[1] else {
            panic!()
        };
        assert_eq!((unknown.prop_type, unknown.data.len()), (7, 36));
    }

    #[test]
    fn port_lengths_are_checked() {
        // Port length 0x27, below the 40-byte head.
        let mut bytes = hex(PORT_STATUS_OF14);
        bytes[0x14..0x16].copy_from_slice(&[0, 0x27]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x14);
        assert!(matches!(
            err.kind,
            DecodeErrorKind::LengthTooShort { what: "port", .. }
        ));
        // Port length beyond the message.
        bytes[0x14..0x16].copy_from_slice(&[0, 0xb0]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x14);
        assert!(matches!(err.kind, DecodeErrorKind::LengthTooLong { .. }));
        // Ethernet property of the wrong length.
        let mut bytes = hex(PORT_STATUS_OF14);
        bytes[0x3a..0x3c].copy_from_slice(&[0, 0x18]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x3a);
        // Experimenter property shorter than its header.
        let mut bytes = hex(PORT_STATUS_OF14);
        bytes[0x82..0x84].copy_from_slice(&[0, 8]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x82);
        // Truncated OF1.3 port.
        let bytes = hex(PORT_STATUS_OF13);
        let mut short = bytes[..0x40].to_vec();
        short[3] = 0x40;
        let err = Message::decode(&short).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn of13_cannot_carry_of14_properties() {
        let msg = Message::decode(&hex(PORT_STATUS_OF14)).unwrap();
        let as_of13 = Message {
            version: Version::OF13,
            ..msg
        };
        assert!(matches!(
            as_of13.encode(),
            Err(EncodeError::WrongVersion { version: 4, .. })
        ));
    }

    #[test]
    fn of13_port_mod_round_trips_and_maps_advertise() {
        let bytes = hex(
            "04100028 00000000 00000001 00000000 aabbcc998877 0000 00000001 00000001 00002808 00000000",
        );
        let msg = round_trip(&bytes);
        let Body::PortMod(pm) = &msg.body else {
            panic!()
        };
        assert_eq!(pm.config, PortConfig::PORT_DOWN);
        assert_eq!(
            pm.properties,
            vec![PortModProperty::Ethernet {
                advertise: PortFeatures(0x2808)
            }]
        );
        assert_eq!(
            pm.to_string(),
            "port=1 addr:aa:bb:cc:99:88:77 config=PORT_DOWN mask=PORT_DOWN \
             advertise=100MB-FD|COPPER|AUTO_NEG"
        );
        let down = PortMod::set_down(
            PortNo(1),
            MacAddr([0xaa, 0xbb, 0xcc, 0x99, 0x88, 0x77]),
            true,
        );
        let mut out = BytesMut::new();
        down.encode_body(Version::OF13, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &hex("00000001 00000000 aabbcc998877 0000 00000001 00000001 00000000 00000000")[..]
        );
        let (_, back) = PortMod::decode_body(Version::OF13, &out).unwrap();
        assert_eq!(back, down);
    }

    #[test]
    fn of14_port_mod_round_trips() {
        let bytes = hex(
            "05100078 00000000 00000001 00000000 001100001111 0000 00000000 00000000
             00000008 00001000
             00010018 00000003 000005dc 000007d0 00000bb8 0000012c
             ffff000c 00000065 00000000 00000000
             ffff0010 00000065 00000001 00000001
             ffff0014 00000065 00000002 00000001 00000002 00000000",
        );
        let msg = round_trip(&bytes);
        let Body::PortMod(pm) = &msg.body else {
            panic!()
        };
        assert_eq!(pm.properties.len(), 5);
        let PortModProperty::Optical(o) = &pm.properties[1] else {
            panic!()
        };
        assert_eq!(
            (o.freq_lmda, o.fl_offset, o.grid_span, o.tx_pwr),
            (1500, 2000, 3000, 300)
        );
    }

    #[test]
    fn of13_port_stats_round_trip() {
        let mut bytes = Vec::new();
        bytes.extend(hex("00000007 00000000"));
        for n in 1..=12u64 {
            bytes.extend(n.to_be_bytes());
        }
        bytes.extend(hex("00000009 00000010"));
        let (rest, stats) = PortStats::decode(Version::OF13, &bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            (stats.port_no, stats.rx_packets, stats.tx_errors),
            (PortNo(7), 1, 8)
        );
        assert_eq!(stats.ethernet().unwrap().collisions, 12);
        assert_eq!((stats.duration_sec, stats.duration_nsec), (9, 16));
        let mut out = BytesMut::new();
        stats.encode(Version::OF13, &mut out).unwrap();
        assert_eq!(&out[..], &bytes[..]);
        assert!(PortStats::decode(Version::OF13, &bytes[..111]).is_err());
    }
}
