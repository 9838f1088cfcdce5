//! Meters: METER_MOD, meter bands, and the meter statistics, configuration and
//! features of MULTIPART replies. The layouts are the same in OpenFlow 1.3 and 1.4.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::error::{DecodeErrorKind, EncodeError};
use crate::header::Version;
use crate::message::BodyCodec;
use crate::message::Layout;
use crate::types::{ExperimenterId, Joined, MeterName};
use crate::wire::{self, PResult, WireError};

/// Length of the header every band starts with.
const BAND_HEAD_LEN: usize = 12;
/// Length of the drop, DSCP remark and (minimal) experimenter bands.
const BAND_LEN: usize = 16;
/// Length of the fixed part of a meter statistics entry.
const METER_STATS_HEAD_LEN: usize = 40;
/// Length of the fixed part of a meter configuration entry.
const METER_CONFIG_HEAD_LEN: usize = 8;

wire_enum! {
    /// What a METER_MOD does (`OFPMC_*`).
    pub struct MeterCommand(u16) {
        /// Add a new meter.
        ADD = 0 => "add",
        /// Replace an existing meter.
        MODIFY = 1 => "modify",
        /// Delete a meter (or all, with [`METER_ALL`](crate::METER_ALL)).
        DELETE = 2 => "delete",
    }
}

flag_set! {
    /// Meter configuration (`OFPMF_*`).
    pub struct MeterFlags(u16) {
        /// Rates in kb/s.
        KBPS = 1 << 0 => "kbps",
        /// Rates in packets per second.
        PKTPS = 1 << 1 => "pktps",
        /// Honour the burst sizes of the bands.
        BURST = 1 << 2 => "burst",
        /// Collect statistics.
        STATS = 1 << 3 => "stats",
    }
}

flag_set! {
    /// Meter capabilities of a switch: the [`MeterFlags`] it supports, as a 32-bit field.
    pub struct MeterCapabilities(u32) {
        /// Rates in kb/s.
        KBPS = 1 << 0 => "kbps",
        /// Rates in packets per second.
        PKTPS = 1 << 1 => "pktps",
        /// Burst sizes.
        BURST = 1 << 2 => "burst",
        /// Statistics.
        STATS = 1 << 3 => "stats",
    }
}

flag_set! {
    /// Band types supported by a switch: bit `1 << t` for each [`MeterBandType`] `t` below 32.
    pub struct MeterBandTypes(u32) {
        /// [`MeterBandType::DROP`].
        DROP = 1 << 1 => "drop",
        /// [`MeterBandType::DSCP_REMARK`].
        DSCP_REMARK = 1 << 2 => "dscp_remark",
    }
}

wire_enum! {
    /// Type of a meter band (`OFPMBT_*`).
    pub struct MeterBandType(u16) {
        /// Drop the packet.
        DROP = 1 => "drop",
        /// Raise the drop precedence of the DSCP field.
        DSCP_REMARK = 2 => "dscp_remark",
        /// Experimenter band.
        EXPERIMENTER = 0xffff => "experimenter",
    }
}

/// One band of a meter: what happens to packets above `rate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MeterBand {
    /// Drop packets above the rate.
    Drop {
        /// Rate in kb/s or packets/s, per the meter's flags.
        rate: u32,
        /// Burst size in kb or packets (if the meter has [`MeterFlags::BURST`]).
        burst_size: u32,
    },
    /// Raise the drop precedence of packets above the rate.
    DscpRemark {
        /// Rate in kb/s or packets/s, per the meter's flags.
        rate: u32,
        /// Burst size in kb or packets (if the meter has [`MeterFlags::BURST`]).
        burst_size: u32,
        /// How much to raise the precedence by.
        prec_level: u8,
    },
    /// Experimenter band.
    Experimenter {
        /// Rate in kb/s or packets/s, per the meter's flags.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Experimenter id.
        experimenter: ExperimenterId,
        /// Experimenter-defined bytes after the experimenter id.
        #[serde(with = "crate::wire::hex_bytes")]
        data: Bytes,
    },
    /// A band type this crate does not know.
    Unknown {
        /// Band type.
        band_type: MeterBandType,
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// The bytes after the 12-byte band header.
        #[serde(with = "crate::wire::hex_bytes")]
        data: Bytes,
    },
}

impl MeterBand {
    /// The band type on the wire.
    pub fn band_type(&self) -> MeterBandType {
        match self {
            MeterBand::Drop { .. } => MeterBandType::DROP,
            MeterBand::DscpRemark { .. } => MeterBandType::DSCP_REMARK,
            MeterBand::Experimenter { .. } => MeterBandType::EXPERIMENTER,
            MeterBand::Unknown { band_type, .. } => *band_type,
        }
    }

    /// The rate above which the band applies.
    pub fn rate(&self) -> u32 {
        match self {
            MeterBand::Drop { rate, .. }
            | MeterBand::DscpRemark { rate, .. }
            | MeterBand::Experimenter { rate, .. }
            | MeterBand::Unknown { rate, .. } => *rate,
        }
    }

    fn decode(i: &[u8]) -> PResult<'_, MeterBand> {
        let (rest, whole) = wire::split_by_length(i, 2, BAND_HEAD_LEN, "meter band")?;
        let (length_field, band_type) = wire::u16(whole)?;
        let (b, _length) = wire::u16(length_field)?;
        let (b, rate) = wire::u32(b)?;
        let (b, burst_size) = wire::u32(b)?;
        let band_type = MeterBandType(band_type);
        let exactly = |len: usize, what: &'static str| -> Result<(), nom::Err<WireError>> {
            let kind = if whole.len() < len {
                DecodeErrorKind::LengthTooShort {
                    what,
                    length: whole.len(),
                    min: len,
                }
            } else if whole.len() > len {
                DecodeErrorKind::LengthTooLong {
                    what,
                    length: whole.len(),
                    max: len,
                }
            } else {
                return Ok(());
            };
            Err(nom::Err::Error(WireError::at(length_field, kind)))
        };
        let band = match band_type {
            MeterBandType::DROP => {
                exactly(BAND_LEN, "drop band")?;
                MeterBand::Drop { rate, burst_size }
            }
            MeterBandType::DSCP_REMARK => {
                exactly(BAND_LEN, "dscp remark band")?;
                let (_, prec_level) = wire::u8(b)?;
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                }
            }
            MeterBandType::EXPERIMENTER => {
                if whole.len() < BAND_LEN {
                    return wire::fail(
                        length_field,
                        DecodeErrorKind::LengthTooShort {
                            what: "experimenter band",
                            length: whole.len(),
                            min: BAND_LEN,
                        },
                    );
                }
                let (b, experimenter) = wire::u32(b)?;
                MeterBand::Experimenter {
                    rate,
                    burst_size,
                    experimenter: ExperimenterId(experimenter),
                    data: Bytes::copy_from_slice(b),
                }
            }
            band_type => MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data: Bytes::copy_from_slice(b),
            },
        };
        Ok((rest, band))
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u16(self.band_type().0);
        let len_at = wire::reserve_u16(out);
        match self {
            MeterBand::Drop { rate, burst_size } => {
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                wire::put_zeros(out, 4);
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                out.put_u8(*prec_level);
                wire::put_zeros(out, 3);
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                out.put_u32(experimenter.0);
                out.put_slice(data);
            }
            MeterBand::Unknown {
                rate,
                burst_size,
                data,
                ..
            } => {
                out.put_u32(*rate);
                out.put_u32(*burst_size);
                out.put_slice(data);
            }
        }
        wire::patch_len_u16(out, len_at, start, "meter band")?;
        Ok(())
    }
}

/// Decodes the bands filling all of `i`.
fn decode_bands(i: &[u8]) -> PResult<'_, Vec<MeterBand>> {
    wire::list_by_length(i, 2, BAND_HEAD_LEN, MeterBand::decode)
}

fn encode_bands(bands: &[MeterBand], out: &mut BytesMut) -> Result<(), EncodeError> {
    bands.iter().try_for_each(|b| b.encode(out))
}

impl fmt::Display for MeterBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeterBand::Drop { rate, burst_size } => {
                write!(f, "type=drop rate={rate} burst_size={burst_size}")
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => write!(
                f,
                "type=dscp_remark rate={rate} burst_size={burst_size} prec_level={prec_level}"
            ),
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => write!(
                f,
                "type=experimenter rate={rate} burst_size={burst_size} experimenter={experimenter} ({} bytes)",
                data.len()
            ),
            MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data,
            } => write!(
                f,
                "type={band_type} rate={rate} burst_size={burst_size} ({} bytes)",
                data.len()
            ),
        }
    }
}

/// Writes ` flags bands=band band ...`, the tail shared by METER_MOD and meter configurations.
fn fmt_flags_and_bands(
    f: &mut fmt::Formatter<'_>,
    flags: MeterFlags,
    bands: &[MeterBand],
) -> fmt::Result {
    if !flags.is_empty() {
        write!(f, " {flags}")?;
    }
    if !bands.is_empty() {
        write!(f, " bands={}", Joined(bands, " "))?;
    }
    Ok(())
}

/// METER_MOD: adds, replaces or deletes a meter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterMod {
    /// What to do.
    pub command: MeterCommand,
    /// Units and options.
    pub flags: MeterFlags,
    /// The meter.
    pub meter_id: u32,
    /// The bands (none for DELETE).
    pub bands: Vec<MeterBand>,
}

impl MeterMod {
    /// Adds meter `meter_id` dropping traffic above `rate_kbps`, allowing bursts
    /// of `burst_kb` (0: no burst allowance), and collecting statistics.
    pub fn add_drop(meter_id: u32, rate_kbps: u32, burst_kb: u32) -> MeterMod {
        let mut flags = MeterFlags::KBPS | MeterFlags::STATS;
        if burst_kb != 0 {
            flags |= MeterFlags::BURST;
        }
        MeterMod {
            command: MeterCommand::ADD,
            flags,
            meter_id,
            bands: vec![MeterBand::Drop {
                rate: rate_kbps,
                burst_size: burst_kb,
            }],
        }
    }

    /// Like [`MeterMod::add_drop`], replacing the configuration of an existing meter.
    pub fn modify_drop(meter_id: u32, rate_kbps: u32, burst_kb: u32) -> MeterMod {
        MeterMod {
            command: MeterCommand::MODIFY,
            ..MeterMod::add_drop(meter_id, rate_kbps, burst_kb)
        }
    }

    /// Deletes meter `meter_id` ([`METER_ALL`](crate::METER_ALL) for every meter).
    pub fn delete(meter_id: u32) -> MeterMod {
        MeterMod {
            command: MeterCommand::DELETE,
            flags: MeterFlags::empty(),
            meter_id,
            bands: Vec::new(),
        }
    }
}

impl BodyCodec for MeterMod {
    fn decode_body(version: Version, i: &[u8]) -> PResult<'_, Self> {
        Layout::decoding(version, i)?;
        let (i, command) = wire::u16(i)?;
        let (i, flags) = wire::u16(i)?;
        let (i, meter_id) = wire::u32(i)?;
        let (i, bands) = decode_bands(i)?;
        Ok((
            i,
            MeterMod {
                command: MeterCommand(command),
                flags: MeterFlags(flags),
                meter_id,
                bands,
            },
        ))
    }

    fn encode_body(&self, version: Version, out: &mut BytesMut) -> Result<(), EncodeError> {
        Layout::encoding(version, "meter mod")?;
        out.put_u16(self.command.0);
        out.put_u16(self.flags.0);
        out.put_u32(self.meter_id);
        encode_bands(&self.bands, out)
    }
}

impl fmt::Display for MeterMod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} meter={}", self.command, MeterName(self.meter_id))?;
        fmt_flags_and_bands(f, self.flags, &self.bands)
    }
}

/// Counters of one band (`ofp_meter_band_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MeterBandStats {
    /// Packets the band applied to.
    pub packet_band_count: u64,
    /// Bytes the band applied to.
    pub byte_band_count: u64,
}

/// Statistics of one meter (`ofp_meter_stats`), from a METER reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterStats {
    /// The meter.
    pub meter_id: u32,
    /// Flows using the meter.
    pub flow_count: u32,
    /// Packets entering the meter.
    pub packet_in_count: u64,
    /// Bytes entering the meter.
    pub byte_in_count: u64,
    /// Seconds the meter has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// One entry per band, in band order.
    pub band_stats: Vec<MeterBandStats>,
}

impl MeterStats {
    /// Decodes one entry.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, MeterStats> {
        let (rest, whole) = wire::split_by_length(i, 4, METER_STATS_HEAD_LEN, "meter stats")?;
        let (m, meter_id) = wire::u32(whole)?;
        let (m, _length) = wire::u16(m)?;
        let (m, ()) = wire::pad(m, 6)?;
        let (m, flow_count) = wire::u32(m)?;
        let (m, packet_in_count) = wire::u64(m)?;
        let (m, byte_in_count) = wire::u64(m)?;
        let (m, duration_sec) = wire::u32(m)?;
        let (m, duration_nsec) = wire::u32(m)?;
        let (_, band_stats) = wire::many(m, |b| {
            let (b, packet_band_count) = wire::u64(b)?;
            let (b, byte_band_count) = wire::u64(b)?;
            Ok((
                b,
                MeterBandStats {
                    packet_band_count,
                    byte_band_count,
                },
            ))
        })?;
        Ok((
            rest,
            MeterStats {
                meter_id,
                flow_count,
                packet_in_count,
                byte_in_count,
                duration_sec,
                duration_nsec,
                band_stats,
            },
        ))
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_u32(self.meter_id);
        let len_at = wire::reserve_u16(out);
        wire::put_zeros(out, 6);
        out.put_u32(self.flow_count);
        out.put_u64(self.packet_in_count);
        out.put_u64(self.byte_in_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for band in &self.band_stats {
            out.put_u64(band.packet_band_count);
            out.put_u64(band.byte_band_count);
        }
        wire::patch_len_u16(out, len_at, start, "meter stats")?;
        Ok(())
    }

    /// Decodes the entries filling all of `i`.
    pub(crate) fn decode_list(i: &[u8]) -> PResult<'_, Vec<MeterStats>> {
        wire::list_by_length(i, 4, METER_STATS_HEAD_LEN, MeterStats::decode)
    }
}

impl fmt::Display for MeterStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "meter:{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{}.{:03}s bands:",
            MeterName(self.meter_id),
            self.flow_count,
            self.packet_in_count,
            self.byte_in_count,
            self.duration_sec,
            self.duration_nsec / 1_000_000
        )?;
        for (n, band) in self.band_stats.iter().enumerate() {
            write!(
                f,
                " {n}: packet_count:{} byte_count:{}",
                band.packet_band_count, band.byte_band_count
            )?;
        }
        Ok(())
    }
}

/// Configuration of one meter (`ofp_meter_config`), from a METER_CONFIG reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterConfig {
    /// Units and options.
    pub flags: MeterFlags,
    /// The meter.
    pub meter_id: u32,
    /// The bands.
    pub bands: Vec<MeterBand>,
}

impl MeterConfig {
    /// Decodes one entry.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, MeterConfig> {
        let (rest, whole) = wire::split_by_length(i, 0, METER_CONFIG_HEAD_LEN, "meter config")?;
        let (m, _length) = wire::u16(whole)?;
        let (m, flags) = wire::u16(m)?;
        let (m, meter_id) = wire::u32(m)?;
        let (_, bands) = decode_bands(m)?;
        Ok((
            rest,
            MeterConfig {
                flags: MeterFlags(flags),
                meter_id,
                bands,
            },
        ))
    }

    /// Appends the entry.
    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let len_at = wire::reserve_u16(out);
        out.put_u16(self.flags.0);
        out.put_u32(self.meter_id);
        encode_bands(&self.bands, out)?;
        wire::patch_len_u16(out, len_at, start, "meter config")?;
        Ok(())
    }

    /// Decodes the entries filling all of `i`.
    pub(crate) fn decode_list(i: &[u8]) -> PResult<'_, Vec<MeterConfig>> {
        wire::list_by_length(i, 0, METER_CONFIG_HEAD_LEN, MeterConfig::decode)
    }
}

impl fmt::Display for MeterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "meter={}", MeterName(self.meter_id))?;
        fmt_flags_and_bands(f, self.flags, &self.bands)
    }
}

/// Meter capabilities of a switch (`ofp_meter_features`), from a METER_FEATURES reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MeterFeatures {
    /// Maximum number of meters.
    pub max_meter: u32,
    /// Supported band types.
    pub band_types: MeterBandTypes,
    /// Supported meter flags.
    pub capabilities: MeterCapabilities,
    /// Maximum bands per meter.
    pub max_bands: u8,
    /// Maximum colour value.
    pub max_color: u8,
}

impl MeterFeatures {
    /// Decodes the body of a METER_FEATURES reply.
    pub(crate) fn decode(i: &[u8]) -> PResult<'_, MeterFeatures> {
        let (i, max_meter) = wire::u32(i)?;
        let (i, band_types) = wire::u32(i)?;
        let (i, capabilities) = wire::u32(i)?;
        let (i, max_bands) = wire::u8(i)?;
        let (i, max_color) = wire::u8(i)?;
        let (i, ()) = wire::pad(i, 2)?;
        Ok((
            i,
            MeterFeatures {
                max_meter,
                band_types: MeterBandTypes(band_types),
                capabilities: MeterCapabilities(capabilities),
                max_bands,
                max_color,
            },
        ))
    }

    /// Appends the body of a METER_FEATURES reply.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types.0);
        out.put_u32(self.capabilities.0);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        wire::put_zeros(out, 2);
    }
}

impl fmt::Display for MeterFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "max_meter:{} max_bands:{} max_color:{} capabilities:{} band_types:{}",
            self.max_meter, self.max_bands, self.max_color, self.capabilities, self.band_types
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Body, METER_ALL, Message};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|n| u8::from_str_radix(&s[n..n + 2], 16).unwrap())
            .collect()
    }

    /// Ryu's 4-45-ofp_meter_mod: drop, dscp_remark and experimenter bands.
    const METER_MOD: &str = "041d0040 00000000 0000 000e 00000064
        0001 0010 000003e8 0000000a 00000000
        0002 0010 000003e8 0000000a 01 000000
        ffff 0010 000003e8 0000000a 000003e7";

    #[test]
    fn meter_mod_round_trips() {
        let bytes = hex(METER_MOD);
        let msg = Message::decode(&bytes).unwrap();
        let Body::MeterMod(mm) = &msg.body else {
            panic!()
        };
        assert_eq!(mm.command, MeterCommand::ADD);
        assert_eq!(
            mm.flags,
            MeterFlags::PKTPS | MeterFlags::BURST | MeterFlags::STATS
        );
        assert_eq!(mm.meter_id, 100);
        assert_eq!(
            mm.bands,
            vec![
                MeterBand::Drop {
                    rate: 1000,
                    burst_size: 10
                },
                MeterBand::DscpRemark {
                    rate: 1000,
                    burst_size: 10,
                    prec_level: 1
                },
                MeterBand::Experimenter {
                    rate: 1000,
                    burst_size: 10,
                    experimenter: ExperimenterId(999),
                    data: Bytes::new()
                },
            ]
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        assert_eq!(
            mm.to_string(),
            "add meter=100 pktps|burst|stats bands=type=drop rate=1000 burst_size=10 \
             type=dscp_remark rate=1000 burst_size=10 prec_level=1 \
             type=experimenter rate=1000 burst_size=10 experimenter=0x000003e7 (0 bytes)"
        );
    }

    #[test]
    fn unknown_bands_round_trip() {
        let bytes = hex(
            "041d0028 00000000 0000 0001 00000001 0007 0018 00000001 00000002 aabbccdd 11223344 55667788",
        );
        let msg = Message::decode(&bytes).unwrap();
        let Body::MeterMod(mm) = &msg.body else {
            panic!()
        };
        assert!(
            matches!(&mm.bands[0], MeterBand::Unknown { band_type: MeterBandType(7), data, .. } if data.len() == 12)
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
    }

    #[test]
    fn band_lengths_are_checked() {
        let mut bytes = hex(METER_MOD);
        // Drop band of 24 bytes.
        bytes[0x12..0x14].copy_from_slice(&[0, 0x18]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x12);
        // Band length below its header.
        bytes[0x12..0x14].copy_from_slice(&[0, 0x08]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x12);
        // Band length past the message.
        let mut bytes = hex(METER_MOD);
        bytes[0x32..0x34].copy_from_slice(&[0, 0x18]);
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x32);
        // Experimenter band without its experimenter id.
        let bytes = hex("041d001c 00000000 0000 0001 00000001 ffff 000c 00000001 00000002");
        let err = Message::decode(&bytes).unwrap_err();
        assert_eq!(err.offset, 0x12);
    }

    #[test]
    fn add_drop_builds_a_kbps_meter() {
        let mm = MeterMod::add_drop(7, 10_000, 1000);
        let mut out = BytesMut::new();
        mm.encode_body(Version::OF13, &mut out).unwrap();
        assert_eq!(
            &out[..],
            &hex("0000 000d 00000007 0001 0010 00002710 000003e8 00000000")[..]
        );
        assert_eq!(
            mm.to_string(),
            "add meter=7 kbps|burst|stats bands=type=drop rate=10000 burst_size=1000"
        );
        assert_eq!(
            MeterMod::add_drop(7, 10, 0).flags,
            MeterFlags::KBPS | MeterFlags::STATS
        );
        assert_eq!(MeterMod::delete(METER_ALL).to_string(), "delete meter=all");
    }

    /// A METER multipart reply as OVS lays out `ofp13_meter_stats` (40-byte
    /// head, then 16 bytes per band), with every counter distinct so that
    /// no two fields can be read in each other's place.
    #[test]
    fn meter_stats_reply_reads_every_counter_in_place() {
        let bytes = hex("0413 0090 00000042  0009 0000 00000000
             00000008 0038 000000000000 00000002
             000000000000012c 0000000000003f48 00000005 1dcd6500
             000000000000012b 0000000000003f0e
             00000009 0048 000000000000 00000001
             000000000000000a 00000000000003e8 00000001 00000000
             0000000000000003 000000000000012c
             0000000000000004 0000000000000190");
        let msg = Message::decode(&bytes).unwrap();
        let Body::MultipartReply(reply) = &msg.body else {
            panic!("{:?}", msg.body)
        };
        let crate::multipart::MultipartReplyBody::Meter(list) = &reply.body else {
            panic!("{:?}", reply.body)
        };
        assert_eq!(
            list[0],
            MeterStats {
                meter_id: 8,
                flow_count: 2,
                packet_in_count: 300,
                byte_in_count: 16_200,
                duration_sec: 5,
                duration_nsec: 500_000_000,
                band_stats: vec![MeterBandStats {
                    packet_band_count: 299,
                    byte_band_count: 16_142,
                }],
            }
        );
        assert_eq!(list[1].meter_id, 9);
        assert_eq!(
            list[1].band_stats,
            [
                MeterBandStats {
                    packet_band_count: 3,
                    byte_band_count: 300
                },
                MeterBandStats {
                    packet_band_count: 4,
                    byte_band_count: 400
                }
            ]
        );
        assert_eq!(
            list[0].to_string(),
            "meter:8 flow_count:2 packet_in_count:300 byte_in_count:16200 duration:5.500s \
             bands: 0: packet_count:299 byte_count:16142"
        );
        assert_eq!(&msg.encode().unwrap()[..], &bytes[..]);
        // An entry whose length leaves half a band: refused where it is.
        let mut short = bytes.clone();
        short[0x14..0x16].copy_from_slice(&[0, 0x30]);
        assert_eq!(Message::decode(&short).unwrap_err().offset, 0x40);
    }

    #[test]
    fn meter_stats_config_and_features_round_trip() {
        let stats = hex(
            "00000064 0038 000000000000 00000000 0000000000000000 0000000000000000
             00000000 00075300 0000000000000000 0000000000000000",
        );
        let (rest, list) = MeterStats::decode_list(&stats).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            (
                list[0].meter_id,
                list[0].duration_nsec,
                list[0].band_stats.len()
            ),
            (100, 480_000, 1)
        );
        let mut out = BytesMut::new();
        list[0].encode(&mut out).unwrap();
        assert_eq!(&out[..], &stats[..]);

        let config = hex("0018 000e 00000064 0001 0010 000003e8 0000000a 00000000");
        let (_, list) = MeterConfig::decode_list(&config).unwrap();
        assert_eq!(list[0].bands.len(), 1);
        let mut out = BytesMut::new();
        list[0].encode(&mut out).unwrap();
        assert_eq!(&out[..], &config[..]);

        let features = hex("01000000 80000006 0000000f ff 00 0000");
        let (rest, f) = MeterFeatures::decode(&features).unwrap();
        assert!(rest.is_empty());
        assert_eq!(f.band_types, MeterBandTypes(0x8000_0006));
        assert_eq!(
            f.to_string(),
            "max_meter:16777216 max_bands:255 max_color:0 capabilities:kbps|pktps|burst|stats band_types:drop|dscp_remark|0x80000000"
        );
        let mut out = BytesMut::new();
        f.encode(&mut out);
        assert_eq!(&out[..], &features[..]);
    }
}
