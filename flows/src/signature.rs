//! Communication signatures: what a VM pair, or a label pair, normally looks
//! like. These are the views the predictor and `augur signatures` read; the
//! incremental state behind them lives in [`crate::Aggregator`].

use serde::Serialize;

use crate::periodicity::Fit;
use crate::record::Protocol;
use crate::sketch::VolumeSketch;

/// Whether a signature is about two endpoints or two labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// Source and destination are endpoints (VM ids or external addresses).
    Pair,
    /// Source and destination are labels (`tier=web`, `@external`).
    LabelPair,
}

/// A summary of how one pair talks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signature {
    /// Pair or label pair.
    pub kind: SignatureKind,
    /// The initiating side: an endpoint or a label.
    pub src: String,
    /// The responding side.
    pub dst: String,
    /// First observation, Unix seconds.
    pub first_seen: i64,
    /// Last observation, Unix seconds.
    pub last_seen: i64,
    /// Windows with allowed traffic.
    pub active_windows: u64,
    /// Windows from the first sighting to the end of the last closed window.
    pub windows_observed: u64,
    /// `active_windows / windows_observed`.
    pub active_window_ratio: f64,
    /// Allowed bytes per active window.
    pub volume: VolumeSummary,
    /// Services, busiest first. Those with `active_windows == 0` were only
    /// attempted and denied.
    pub services: Vec<ServiceSummary>,
    /// The most confident recurrence among the services, if any.
    pub periodicity: Option<Periodicity>,
    /// Active windows by hour of day, UTC, index 0 = 00:00–00:59.
    pub hour_of_day: [u32; 24],
    /// Active windows by day of week, UTC, index 0 = Monday.
    pub day_of_week: [u32; 7],
    /// Denied attempts and where they are heading.
    pub denied: DeniedSummary,
}

/// Bytes per active window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VolumeSummary {
    /// Active windows summed over.
    pub windows: u64,
    /// All allowed bytes.
    pub total_bytes: u64,
    /// Mean bytes per active window.
    pub mean_bytes: f64,
    /// 95th percentile (nearest rank) of bytes per active window.
    pub p95_bytes: f64,
    /// Busiest window's bytes.
    pub max_bytes: u64,
    /// Whether `p95_bytes` is exact (short series) or within 1 %.
    pub p95_exact: bool,
}

impl VolumeSummary {
    pub(crate) fn from_sketch(sketch: &VolumeSketch, total_bytes: u64) -> VolumeSummary {
        VolumeSummary {
            windows: sketch.count(),
            total_bytes,
            mean_bytes: sketch.mean().unwrap_or(0.0),
            p95_bytes: sketch.quantile(0.95).unwrap_or(0.0),
            max_bytes: sketch.max().unwrap_or(0),
            p95_exact: sketch.is_exact(),
        }
    }
}

/// One service of a pair: a protocol and the port connections were opened to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSummary {
    /// IP protocol.
    pub protocol: Protocol,
    /// Service port (ICMP: the type of the first packet).
    pub port: u16,
    /// Windows with allowed traffic to it.
    pub active_windows: u64,
    /// Allowed bytes.
    pub bytes: u64,
    /// Allowed packets.
    pub packets: u64,
    /// Connections opened.
    pub connections: u64,
    /// Denied attempts.
    pub denied: u64,
    /// First observation, Unix seconds.
    pub first_seen: i64,
    /// Last observation, Unix seconds.
    pub last_seen: i64,
    /// Its recurrence, if it has one.
    pub periodicity: Option<Periodicity>,
}

/// A detected recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Periodicity {
    /// Seconds between runs.
    pub period_s: f64,
    /// Seconds after each multiple of the period since the epoch (after
    /// midnight UTC for a daily job). Absent for a label pair, whose members
    /// run at their own phases.
    pub phase_s: Option<f64>,
    /// When the next run is due, Unix seconds (pairs only).
    pub next_expected_s: Option<f64>,
    /// For a pair: the fit's score, 0–1. For a label pair: the share of
    /// member pairs that run at this period.
    pub confidence: f64,
    /// Runs that fitted (pairs), or member pairs that run at this period
    /// (label pairs).
    pub cycles: u32,
}

impl From<Fit> for Periodicity {
    fn from(fit: Fit) -> Periodicity {
        Periodicity {
            period_s: fit.period_s,
            phase_s: Some(fit.phase_s()),
            next_expected_s: Some(fit.next_expected_s()),
            confidence: fit.confidence,
            cycles: fit.cycles,
        }
    }
}

/// Where denied attempts are heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// No attempt in the last seven days.
    None,
    /// Growing by more than half the daily mean over the week.
    Rising,
    /// Shrinking by more than half the daily mean over the week.
    Falling,
    /// Neither.
    Steady,
}

/// Denied attempts of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeniedSummary {
    /// All denied attempts.
    pub attempts: u64,
    /// Attempts on each of the last seven complete days (UTC), oldest first.
    pub last_7_days: [u32; 7],
    /// Least-squares slope of `last_7_days`, attempts per day per day.
    pub slope_per_day: f64,
    /// The slope, in words.
    pub trend: Trend,
}

impl DeniedSummary {
    pub(crate) fn from_days(attempts: u64, last_7_days: [u32; 7]) -> DeniedSummary {
        let n = last_7_days.len() as f64;
        let mean_y = last_7_days.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let mean_x = (n - 1.0) / 2.0;
        let mut sxy = 0.0;
        let mut sxx = 0.0;
        for (x, &y) in last_7_days.iter().enumerate() {
            let dx = x as f64 - mean_x;
            sxy += dx * (f64::from(y) - mean_y);
            sxx += dx * dx;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let change = slope * (n - 1.0);
        let trend = if last_7_days.iter().all(|&v| v == 0) {
            Trend::None
        } else if change > 0.5 * mean_y.max(1.0) {
            Trend::Rising
        } else if change < -0.5 * mean_y.max(1.0) {
            Trend::Falling
        } else {
            Trend::Steady
        };
        DeniedSummary {
            attempts,
            last_7_days,
            slope_per_day: slope,
            trend,
        }
    }
}

/// A busy pair, for `augur top`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPair {
    /// Initiator.
    pub src: String,
    /// Responder.
    pub dst: String,
    /// Allowed bytes.
    pub bytes: u64,
    /// Connections opened.
    pub connections: u64,
    /// Windows with traffic.
    pub active_windows: u64,
    /// Denied attempts.
    pub denied: u64,
}

/// A busy service, for `augur top`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopService {
    /// IP protocol.
    pub protocol: Protocol,
    /// Service port.
    pub port: u16,
    /// Allowed bytes to it, over all pairs.
    pub bytes: u64,
    /// Connections opened to it.
    pub connections: u64,
    /// Pairs that use it.
    pub pairs: u64,
    /// Denied attempts to it.
    pub denied: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_trend_reads_the_week() {
        assert_eq!(DeniedSummary::from_days(0, [0; 7]).trend, Trend::None);
        assert_eq!(
            DeniedSummary::from_days(28, [1, 2, 3, 4, 5, 6, 7]).trend,
            Trend::Rising
        );
        assert_eq!(
            DeniedSummary::from_days(28, [7, 6, 5, 4, 3, 2, 1]).trend,
            Trend::Falling
        );
        assert_eq!(
            DeniedSummary::from_days(35, [5, 5, 6, 5, 4, 5, 5]).trend,
            Trend::Steady
        );
        let rising = DeniedSummary::from_days(28, [1, 2, 3, 4, 5, 6, 7]);
        assert!((rising.slope_per_day - 1.0).abs() < 1e-9);
    }
}
