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
    /// Whether the key's allowed connections carried anything (not only
    /// probes or unanswered datagrams): evidence that it works.
    pub carried_payload: bool,
    /// External addresses the key stands for (1 unless it is a key of the
    /// outside as a whole).
    pub addresses: u32,
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

pub mod basis;
pub mod calibrate;
pub mod candidates;
pub mod features;
pub mod logistic;
pub mod model;
pub mod quality;
pub mod scan;

use std::collections::VecDeque;

use augur_flows::Aggregator;

use crate::risk::Unit;
use serde::Deserialize;

pub use candidates::Candidate;
pub use features::{FEATURE_LIST, FEATURES, FeatureRow, Scale};
pub use model::{Model, ModelFamily};
pub use quality::{HindsightReport, HindsightTally, KindQuality, QualityReport, QualityTally};
pub use scan::{OutsideSide, ScanDetector, ScanFlag, ScanParams};

/// The predictor's settings, as written (see [`PredictorParams::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictorParams {
    /// How far ahead a prediction looks, seconds.
    pub horizon_s: i64,
    /// How often a sample of the candidates is kept to learn from once its
    /// horizon has passed, seconds.
    pub snapshot_every_s: i64,
    /// Candidates kept per snapshot at most (a uniform sample beyond).
    pub snapshot_sample: usize,
    /// Keys unused for longer than this are no longer candidates, seconds.
    pub forget_after_s: i64,
    /// A source first seen within this is a new VM, seconds.
    pub new_vm_age_s: i64,
    /// Services per peer group proposed to its members, at most.
    pub max_peer_services: usize,
    /// External addresses using one service (or reached by one VM on one
    /// service) from which on they are predicted as the outside as a whole.
    pub outside_min_peers: u32,
    /// Out-of-sample pairs kept for calibration.
    pub calibration_pairs: usize,
    /// The probability at which precision and recall are reported.
    pub decision_threshold: Unit,
    /// The learner (`logistic` or `naive_bayes`).
    pub model: ModelFamily,
}

impl Default for PredictorParams {
    fn default() -> PredictorParams {
        PredictorParams {
            horizon_s: 3600,
            snapshot_every_s: 900,
            snapshot_sample: 4000,
            forget_after_s: 35 * 86_400,
            new_vm_age_s: 86_400,
            max_peer_services: 256,
            outside_min_peers: 8,
            calibration_pairs: 50_000,
            decision_threshold: Unit::new(0.5).unwrap_or_default(),
            model: ModelFamily::default(),
        }
    }
}

/// A setting of [`PredictorParams`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("predictor setting {name}: {reason}")]
pub struct ParamError {
    /// The setting.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Settings checked by [`PredictorParams::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckedPredictorParams(PredictorParams);

impl PredictorParams {
    /// Checks the settings against each other.
    pub fn check(self) -> Result<CheckedPredictorParams, ParamError> {
        let fail = |name, reason| Err(ParamError { name, reason });
        if self.horizon_s < 60 {
            return fail("horizon_s", "must be at least 60 s");
        }
        if self.snapshot_every_s < 1 || self.snapshot_every_s > self.horizon_s {
            return fail("snapshot_every_s", "must be between 1 s and the horizon");
        }
        if self.snapshot_sample == 0 {
            return fail("snapshot_sample", "must be at least 1");
        }
        if self.forget_after_s < self.horizon_s {
            return fail("forget_after_s", "must be at least the horizon");
        }
        if self.new_vm_age_s < 0 {
            return fail("new_vm_age_s", "must not be negative");
        }
        let threshold = self.decision_threshold.get();
        if !(threshold > 0.0 && threshold < 1.0) {
            return fail("decision_threshold", "must be between 0 and 1");
        }
        Ok(CheckedPredictorParams(self))
    }
}

impl CheckedPredictorParams {
    /// The settings.
    pub fn get(&self) -> &PredictorParams {
        &self.0
    }
}

/// Candidates sampled at one instant, waiting for their horizon to pass.
#[derive(Debug)]
struct Snapshot {
    at: i64,
    /// Nothing at all happened on the network within the horizon before.
    quiet: bool,
    keys: Vec<FlowKey>,
    rows: Vec<FeatureRow>,
    raw: Vec<f64>,
    probability: Vec<f64>,
}

/// The predictor: candidates, features, model, and what it learned so far.
#[derive(Debug)]
pub struct Predictor {
    params: PredictorParams,
    model: Model,
    pending: VecDeque<Snapshot>,
    last_snapshot: Option<i64>,
    quality: QualityTally,
    /// The same tally per kind of key.
    quality_by_kind: [QualityTally; model::KINDS],
    /// Outcomes per key, for the hindsight rankings, where they are kept.
    hindsight: Option<HindsightTally<FlowKey>>,
}

/// The predictions of one cycle.
#[derive(Debug, Clone, Default)]
pub struct PredictionSet {
    /// When they were made, Unix seconds.
    pub at: i64,
    /// Whether the model was trained (otherwise every probability is the
    /// untrained 0.5 and nothing should be acted on).
    pub trained: bool,
    /// One per candidate.
    pub predictions: Vec<Prediction>,
}

impl Predictor {
    /// A predictor with no history.
    pub fn new(params: CheckedPredictorParams) -> Predictor {
        let params = params.0;
        Predictor {
            model: Model::new(params.model, params.calibration_pairs),
            pending: VecDeque::new(),
            last_snapshot: None,
            quality: QualityTally::new(params.decision_threshold.get()),
            quality_by_kind: std::array::from_fn(|_| {
                QualityTally::new(params.decision_threshold.get())
            }),
            hindsight: None,
            params,
        }
    }

    /// The settings.
    pub fn params(&self) -> &PredictorParams {
        &self.params
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model, to train it from rows labelled elsewhere (a model carried
    /// over from another predictor, a benchmark).
    pub fn model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// Quality of the predictions scored so far.
    pub fn quality(&self) -> QualityReport {
        let mut report = self.quality.report();
        report.by_kind = self
            .quality_by_kind
            .iter()
            .zip(model::KIND_NAMES)
            .filter(|(tally, _)| tally.examples() > 0)
            .map(|(tally, kind)| {
                let r = tally.report();
                quality::KindQuality {
                    kind,
                    examples: r.examples,
                    positives: r.positives,
                    roc_auc: r.roc_auc,
                }
            })
            .collect();
        report.hindsight = self.hindsight.as_ref().and_then(HindsightTally::report);
        report
    }

    /// Keeps the outcomes of scored predictions per key from now on, so
    /// that [`Predictor::quality`] reports the hindsight rankings (see
    /// [`HindsightTally`]). Replay does; a live controller need not hold a
    /// count for every key it ever scored.
    pub fn keep_hindsight(&mut self) {
        self.hindsight = Some(HindsightTally::default());
    }

    /// Starts a new quality tally (replay does at the end of learning, so
    /// that the report covers the enforced period only).
    pub fn reset_quality(&mut self) {
        self.quality = QualityTally::new(self.params.decision_threshold.get());
        self.quality_by_kind =
            std::array::from_fn(|_| QualityTally::new(self.params.decision_threshold.get()));
        if let Some(hindsight) = self.hindsight.as_mut() {
            *hindsight = HindsightTally::default();
        }
    }

    /// Learns from every snapshot whose horizon has passed at `now`. The
    /// aggregator must hold exactly the traffic up to `now` (its windows
    /// closed up to `now`): a key counts as used if it carried traffic, or
    /// was attempted, after the snapshot.
    pub fn learn(&mut self, agg: &Aggregator, scans: &ScanDetector, now: i64) {
        while let Some(snapshot) = self.pending.front() {
            if snapshot.at.saturating_add(self.params.horizon_s) > now {
                break;
            }
            let Some(snapshot) = self.pending.pop_front() else {
                break;
            };
            // Keys of the outside as a whole were used if any of their
            // addresses was.
            let outside_used = if snapshot
                .keys
                .iter()
                .any(|k| k.src == augur_flows::OUTSIDE || k.dst == augur_flows::OUTSIDE)
            {
                let mut last: std::collections::HashMap<FlowKey, i64> =
                    std::collections::HashMap::new();
                for a in agg.key_activity() {
                    if let Some(group) = candidates::outside_key(&a.key, agg.endpoints()) {
                        let t = a.last_allowed.max(a.last_denied).unwrap_or(i64::MIN);
                        let slot = last.entry(group).or_insert(i64::MIN);
                        *slot = (*slot).max(t);
                    }
                }
                last
            } else {
                std::collections::HashMap::new()
            };
            let mut rows = Vec::with_capacity(snapshot.keys.len());
            let mut outcomes = Vec::with_capacity(snapshot.keys.len());
            let mut raw = Vec::with_capacity(snapshot.keys.len());
            for (i, key) in snapshot.keys.iter().enumerate() {
                // Scanners are not learned from.
                if scans.is_scanning(key.src, now) {
                    continue;
                }
                let used = agg.activity_of(key).is_some_and(|a| {
                    a.last_allowed
                        .into_iter()
                        .chain(a.last_denied)
                        .any(|t| t > snapshot.at)
                }) || outside_used.get(key).is_some_and(|&t| t > snapshot.at);
                let (Some(row), Some(&r), Some(&p)) = (
                    snapshot.rows.get(i),
                    snapshot.raw.get(i),
                    snapshot.probability.get(i),
                ) else {
                    continue;
                };
                if self.model.is_trained() || p != 0.5 {
                    self.quality.add(p, used);
                    if let Some(tally) = self.quality_by_kind.get_mut(model::kind_of(row)) {
                        tally.add(p, used);
                    }
                    if let Some(hindsight) = self.hindsight.as_mut() {
                        hindsight.add(*key, snapshot.quiet, used);
                    }
                }
                rows.push(*row);
                outcomes.push(used);
                raw.push(r);
            }
            self.model.learn(&rows, &outcomes, &raw);
        }
    }

    /// Nothing was observed between `from` and `to` (the controller was
    /// down, a trace was not recording): whether a key was used then is
    /// unknown, so the samples whose horizon reaches past `from` are
    /// neither learned from nor scored.
    pub fn unobserved(&mut self, from: i64, to: i64) {
        let horizon = self.params.horizon_s;
        self.pending
            .retain(|s| s.at.saturating_add(horizon) <= from || s.at >= to);
    }

    /// Predicts every candidate at `now`, without learning.
    pub fn predict(&self, agg: &Aggregator, scans: &ScanDetector, now: i64) -> PredictionSet {
        self.predict_inner(agg, scans, now, None)
    }

    /// One cycle: learns from what matured, predicts every candidate, and
    /// keeps a sample of them to learn from when their horizon has passed.
    pub fn cycle(&mut self, agg: &Aggregator, scans: &ScanDetector, now: i64) -> PredictionSet {
        self.learn(agg, scans, now);
        let due = self
            .last_snapshot
            .is_none_or(|t| now.saturating_sub(t) >= self.params.snapshot_every_s);
        let mut snapshot = None;
        let set = self.predict_inner(agg, scans, now, due.then_some(&mut snapshot));
        if let Some(snapshot) = snapshot {
            self.pending.push_back(snapshot);
            self.last_snapshot = Some(now);
        }
        set
    }

    fn predict_inner(
        &self,
        agg: &Aggregator,
        scans: &ScanDetector,
        now: i64,
        snapshot: Option<&mut Option<Snapshot>>,
    ) -> PredictionSet {
        let limits = candidates::SearchLimits {
            forget_after_s: self.params.forget_after_s,
            new_vm_age_s: self.params.new_vm_age_s,
            max_peer_services: self.params.max_peer_services,
            outside_min_peers: self.params.outside_min_peers,
        };
        let found = candidates::search(agg, scans, &limits, now);
        let encoder = features::Encoder::new(agg, scans, self.params.horizon_s, now);
        let trained = self.model.is_trained();
        let mut predictions = Vec::with_capacity(found.list.len());
        // A uniform sample for the snapshot that needs no random source: a
        // hash of the key and the instant below the sampling rate.
        let rate = self.params.snapshot_sample as f64 / found.list.len().max(1) as f64;
        let mut taken = snapshot.is_some().then(|| Snapshot {
            at: now,
            quiet: encoder
                .network_last_active()
                .is_none_or(|t| now.saturating_sub(t) >= self.params.horizon_s),
            keys: Vec::new(),
            rows: Vec::new(),
            raw: Vec::new(),
            probability: Vec::new(),
        });
        // In chunks, so that the feature matrix stays small (a million
        // candidates would otherwise need 120 MB of it at once).
        const CHUNK: usize = 32_768;
        let mut flat = Vec::with_capacity(CHUNK.min(found.list.len()) * FEATURES);
        let mut evidence = Vec::with_capacity(CHUNK.min(found.list.len()));
        for chunk in found.list.chunks(CHUNK) {
            flat.clear();
            evidence.clear();
            for candidate in chunk {
                let activity = found.activity(candidate, agg);
                let (row, ev) = encoder.encode(candidate, activity.as_ref());
                flat.extend_from_slice(&row);
                evidence.push(ev);
            }
            let scored = match ndarray::ArrayView2::from_shape((chunk.len(), FEATURES), &flat) {
                Ok(x) => self.model.score(x),
                Err(_) => vec![(0.5, 0.5); chunk.len()],
            };
            for (i, ((candidate, ev), &(raw, p))) in
                chunk.iter().zip(&evidence).zip(&scored).enumerate()
            {
                let prediction = Prediction {
                    key: candidate.key,
                    probability: if trained { p } else { 0.5 },
                    evidence: *ev,
                };
                if let Some(taken) = taken.as_mut()
                    && (rate >= 1.0 || sample_hash(&prediction.key, now) < rate)
                {
                    let row = flat.get(i * FEATURES..(i + 1) * FEATURES);
                    if let Some(row) = row.and_then(|r| <FeatureRow>::try_from(r).ok()) {
                        taken.keys.push(prediction.key);
                        taken.rows.push(row);
                        taken.raw.push(raw);
                        taken.probability.push(prediction.probability);
                    }
                }
                predictions.push(prediction);
            }
        }
        if let (Some(out), Some(taken)) = (snapshot, taken) {
            *out = Some(taken);
        }
        PredictionSet {
            at: now,
            trained,
            predictions,
        }
    }
}

/// A number in [0, 1) from a key and an instant, spread evenly.
fn sample_hash(key: &FlowKey, at: i64) -> f64 {
    // SplitMix64 over the key's fields: cheap and well mixed.
    let mut x = u64::from(key.src.0)
        ^ (u64::from(key.dst.0) << 32)
        ^ (u64::from(key.service_port) << 16).rotate_left(7)
        ^ u64::from(key.protocol.0).rotate_left(48)
        ^ (at as u64).rotate_left(21);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests;
