//! Prediction: which flow keys will be used soon.
//!
//! For every candidate [`FlowKey`] (source, destination, protocol, service
//! port) the predictor estimates the probability that the key carries
//! traffic within the horizon `H` after `now`. It is a pure function of the
//! observed history (an [`augur_flows::Aggregator`]), the model learned so
//! far and `now`; training only ever uses examples whose horizon has passed,
//! so it never sees the future.

use augur_flows::{FlowKey, Periodicity};
use serde::Serialize;

/// Why a key is a candidate. A key that qualifies several ways carries the
/// first that applies in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateSource {
    /// The key carried allowed traffic before.
    Seen,
    /// The key was only ever denied.
    Denied,
    /// Peers with the source's labels use this destination and service.
    LabelPeers,
    /// The source is new; the key is what its label peers use.
    NewVm,
}

/// The evidence behind one prediction: the feature values before encoding,
/// kept so that a recommendation can explain itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evidence {
    /// Why the key is a candidate.
    pub source: CandidateSource,
    /// Connections seen on the key.
    pub connections: u64,
    /// Windows with allowed traffic on the key.
    pub active_windows: u32,
    /// First and last allowed use, Unix seconds.
    pub first_seen: Option<i64>,
    /// Last allowed use, Unix seconds.
    pub last_seen: Option<i64>,
    /// Denied attempts on the key.
    pub denied: u32,
    /// Last denied attempt, Unix seconds.
    pub last_denied: Option<i64>,
    /// The key's recurrence, if one was detected.
    pub periodicity: Option<Periodicity>,
    /// Share of the source's label peers (VMs sharing a label) that use the
    /// same destination (or destination label) and service.
    pub peer_support: f32,
    /// How many label peers the source has.
    pub peers: u32,
    /// Share of the pair's activity that falls in the hours of day the
    /// horizon covers.
    pub hour_share: f32,
    /// Seconds since the source was first seen.
    pub source_age_s: i64,
    /// Whether the source is flagged as scanning.
    pub source_scanning: bool,
}

/// The predictor's estimate for one candidate key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The key, in the aggregator's endpoint table.
    pub key: FlowKey,
    /// Calibrated probability that the key is used within the horizon.
    pub probability: f64,
    /// What the estimate rests on.
    pub evidence: Evidence,
}
