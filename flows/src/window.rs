//! Windows: the unit of time that records are summed into.
//!
//! A flow key's traffic in one window becomes one [`WindowRow`]; the store
//! keeps rows, and signatures are built from rows, so a signature can always
//! be rebuilt from what was stored. Rows of coarser spans (hourly rollups of
//! old windows) have the same shape with `span_s` and `active_windows` saying
//! how much they cover.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use crate::record::{Protocol, Timestamp, Verdict};

/// Settings of the windowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Window length in seconds (default 60; 1–65,535).
    pub length_s: u16,
    /// Two observations of a key less than this apart belong to the same
    /// burst; a longer pause makes the next one an onset, which periodicity
    /// looks at (default 30 s).
    pub burst_gap_s: u32,
}

impl Default for WindowConfig {
    fn default() -> WindowConfig {
        WindowConfig {
            length_s: 60,
            burst_gap_s: 30,
        }
    }
}

impl WindowConfig {
    /// A configuration with the given window length and a burst gap of half
    /// of it; `None` for a zero length.
    pub fn with_length(length_s: u16) -> Option<WindowConfig> {
        (length_s > 0).then(|| WindowConfig {
            length_s,
            burst_gap_s: u32::from(length_s).div_ceil(2),
        })
    }

    /// The start (Unix seconds) of the window `secs` falls in.
    pub fn window_start(&self, secs: i64) -> i64 {
        let length = i64::from(self.length_s.max(1));
        secs.div_euclid(length) * length
    }
}

/// An endpoint, by its index in an [`crate::Endpoints`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct EndpointId(pub u32);

/// What traffic is summed by: who talked to whom, over what, to which
/// service. Twelve bytes, so a million of them index cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct FlowKey {
    /// The initiator.
    pub src: EndpointId,
    /// The responder.
    pub dst: EndpointId,
    /// The IP protocol.
    pub protocol: Protocol,
    /// The destination port of the connections' first packets.
    pub service_port: u16,
}

impl fmt::Display for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} -> #{} {}/{}",
            self.src.0, self.dst.0, self.protocol, self.service_port
        )
    }
}

/// A flow key's traffic over one window (or one rollup span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRow {
    /// Whose traffic.
    pub key: FlowKey,
    /// Start of the span, Unix seconds.
    pub start_s: i64,
    /// Length of the span in seconds: the window length, or a rollup's.
    pub span_s: u32,
    /// Allowed bytes.
    pub bytes: u64,
    /// Allowed packets.
    pub packets: u64,
    /// Allowed connections opened.
    pub connections: u32,
    /// Denied attempts.
    pub denied: u32,
    /// Windows of the span with allowed traffic: 1 or 0 for a raw window,
    /// up to span / window length for a rollup.
    pub active_windows: u32,
    /// Seconds from `start_s` to the first allowed observation.
    pub first_offset_s: u32,
    /// Seconds from `start_s` to the last allowed observation.
    pub last_offset_s: u32,
}

impl WindowRow {
    /// Adds another row of the same key and span into this one.
    pub fn merge(&mut self, other: &WindowRow) {
        let self_active = self.active_windows > 0;
        let other_active = other.active_windows > 0;
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.packets = self.packets.saturating_add(other.packets);
        self.connections = self.connections.saturating_add(other.connections);
        self.denied = self.denied.saturating_add(other.denied);
        match (self_active, other_active) {
            (true, true) => {
                self.first_offset_s = self.first_offset_s.min(other.first_offset_s);
                self.last_offset_s = self.last_offset_s.max(other.last_offset_s);
                self.active_windows = self.active_windows.max(other.active_windows);
            }
            (false, true) => {
                self.first_offset_s = other.first_offset_s;
                self.last_offset_s = other.last_offset_s;
                self.active_windows = other.active_windows;
            }
            _ => {}
        }
    }
}

/// One observation's counters, before it is added to a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    /// When.
    pub ts: Timestamp,
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
    /// Connections opened.
    pub connections: u32,
    /// Allowed or denied.
    pub verdict: Verdict,
}

/// Sums of one key in one window while it is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Accumulator {
    pub(crate) bytes: u64,
    pub(crate) packets: u64,
    pub(crate) connections: u32,
    pub(crate) denied: u32,
    pub(crate) first_offset_s: u16,
    pub(crate) last_offset_s: u16,
    pub(crate) allowed: bool,
    pub(crate) touched: bool,
}

impl Accumulator {
    /// Adds an observation `offset_s` seconds into the window.
    pub(crate) fn add(&mut self, offset_s: u16, obs: &Observation) {
        self.touched = true;
        match obs.verdict {
            Verdict::Allowed => {
                self.bytes = self.bytes.saturating_add(obs.bytes);
                self.packets = self.packets.saturating_add(obs.packets);
                self.connections = self.connections.saturating_add(obs.connections);
                if self.allowed {
                    self.first_offset_s = self.first_offset_s.min(offset_s);
                    self.last_offset_s = self.last_offset_s.max(offset_s);
                } else {
                    self.allowed = true;
                    self.first_offset_s = offset_s;
                    self.last_offset_s = offset_s;
                }
            }
            Verdict::Denied => {
                // An attempt is one attempt however many packets it took.
                self.denied = self.denied.saturating_add(obs.connections.max(1));
            }
        }
    }

    pub(crate) fn to_row(self, key: FlowKey, start_s: i64, span_s: u32) -> WindowRow {
        WindowRow {
            key,
            start_s,
            span_s,
            bytes: self.bytes,
            packets: self.packets,
            connections: self.connections,
            denied: self.denied,
            active_windows: u32::from(self.allowed),
            first_offset_s: u32::from(self.first_offset_s),
            last_offset_s: u32::from(self.last_offset_s),
        }
    }
}

/// Windows of records that arrive in any order (imports: Zeek writes a
/// connection when it ends, so a log is ordered by end, not start). Each
/// observation goes to its own window; [`WindowBatch::drain`] hands the rows
/// out sorted by time, for a store that adds them to what it has.
///
/// The batch hashes with foldhash rather than SipHash: it holds the rows of
/// an operator's file for a few hundred thousand records at most, where the
/// per-record hash is a fifth of the import's time, and foldhash's per-batch
/// random seed is enough for input that is not arriving from the network.
/// The live [`crate::Aggregator`], whose keys come from traffic, keeps std's
/// SipHash.
#[derive(Debug, Default)]
pub struct WindowBatch {
    config: WindowConfig,
    windows: HashMap<(i64, FlowKey), Accumulator, foldhash::fast::RandomState>,
    observations: u64,
}

impl WindowBatch {
    /// An empty batch.
    pub fn new(config: WindowConfig) -> WindowBatch {
        WindowBatch {
            config,
            windows: HashMap::default(),
            observations: 0,
        }
    }

    /// Adds one observation of `key`.
    pub fn add(&mut self, key: FlowKey, obs: &Observation) {
        let secs = obs.ts.secs();
        let start = self.config.window_start(secs);
        let offset = u16::try_from(secs - start).unwrap_or(u16::MAX);
        self.windows
            .entry((start, key))
            .or_default()
            .add(offset, obs);
        self.observations += 1;
    }

    /// Observations added since the last drain.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Rows held (distinct key and window pairs).
    pub fn rows(&self) -> usize {
        self.windows.len()
    }

    /// The rows, by window start then key, leaving the batch empty.
    pub fn drain(&mut self) -> Vec<WindowRow> {
        let span = u32::from(self.config.length_s);
        let mut rows: Vec<WindowRow> = self
            .windows
            .drain()
            .map(|((start, key), acc)| acc.to_row(key, start, span))
            .collect();
        rows.sort_unstable_by_key(|row| (row.start_s, row.key));
        self.observations = 0;
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> FlowKey {
        FlowKey {
            src: EndpointId(0),
            dst: EndpointId(1),
            protocol: Protocol::TCP,
            service_port: port,
        }
    }

    #[test]
    fn batches_place_each_record_in_its_window_whatever_the_order() {
        let mut batch = WindowBatch::new(WindowConfig::default());
        for (secs, bytes) in [(125, 10), (61, 5), (119, 7), (3, 1)] {
            batch.add(
                key(443),
                &Observation {
                    ts: Timestamp::from_secs(secs),
                    bytes,
                    packets: 1,
                    connections: 1,
                    verdict: Verdict::Allowed,
                },
            );
        }
        batch.add(
            key(22),
            &Observation {
                ts: Timestamp::from_secs(70),
                connections: 1,
                verdict: Verdict::Denied,
                ..Observation::default()
            },
        );
        let rows = batch.drain();
        let summary: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.start_s,
                    r.key.service_port,
                    r.bytes,
                    r.denied,
                    r.active_windows,
                    r.first_offset_s,
                    r.last_offset_s,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 443, 1, 0, 1, 3, 3),
                (60, 22, 0, 1, 0, 0, 0),
                (60, 443, 12, 0, 1, 1, 59),
                (120, 443, 10, 0, 1, 5, 5),
            ]
        );
        assert_eq!(batch.rows(), 0);
    }

    #[test]
    fn window_starts_round_towards_the_past() {
        let config = WindowConfig::default();
        assert_eq!(config.window_start(59), 0);
        assert_eq!(config.window_start(60), 60);
        assert_eq!(config.window_start(-1), -60);
        assert_eq!(WindowConfig::with_length(0), None);
        assert_eq!(WindowConfig::with_length(300).unwrap().burst_gap_s, 150);
    }
}
