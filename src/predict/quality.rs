//! Predictor quality, measured prequentially: every prediction is scored
//! against what happened in its horizon, and only after that is it learned
//! from.
//!
//! The tally is constant-size: probabilities fall into 10,000 bins per
//! outcome, evenly spaced on the logit scale from p = 1.4e-11 to 1 − 1.4e-11,
//! which gives ROC AUC to within the ties of a bin, the Brier score
//! exactly, a ten-bin reliability curve, and precision and recall at the
//! decision threshold (exactly).
//!
//! Bins on the logit scale, not the probability scale: where one key in a
//! few hundred is used, almost every prediction is below 0.001, and bins of
//! a thousandth of probability tied most of them, which understated ROC
//! AUC by up to 0.04 on the real traces.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serialize;

const BINS: usize = 10_000;
/// The logit range the bins cover, `-LOGIT_LIMIT..LOGIT_LIMIT`.
const LOGIT_LIMIT: f64 = 25.0;

/// The bin of a probability.
fn bin_of(p: f64) -> usize {
    let p = p.clamp(1e-300, 1.0 - f64::EPSILON);
    let logit = (p / (1.0 - p)).ln().clamp(-LOGIT_LIMIT, LOGIT_LIMIT);
    let position = (logit + LOGIT_LIMIT) / (2.0 * LOGIT_LIMIT) * BINS as f64;
    (position as usize).min(BINS - 1)
}

/// Running tally of (probability, outcome) pairs.
#[derive(Debug, Clone)]
pub struct QualityTally {
    threshold: f64,
    positives: Vec<u64>,
    negatives: Vec<u64>,
    /// Predictions at or above the threshold, used and unused.
    above: (u64, u64),
    brier_sum: f64,
    /// Per reliability bin: predictions, sum of probabilities, outcomes.
    reliability: [(u64, f64, u64); 10],
}

/// One bin of the reliability curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReliabilityBin {
    /// Lower bound of the bin's probabilities.
    pub from: f64,
    /// Predictions in the bin.
    pub count: u64,
    /// Their mean predicted probability.
    pub predicted: f64,
    /// The share of them that happened.
    pub observed: f64,
}

/// The predictor's quality over the pairs tallied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Predictions scored.
    pub examples: u64,
    /// Of which came true.
    pub positives: u64,
    /// Area under the ROC curve (0.5 is chance).
    pub roc_auc: f64,
    /// Mean squared error of the probabilities (0 is perfect; always
    /// predicting the base rate gives `rate·(1−rate)`).
    pub brier: f64,
    /// The Brier score of always predicting the base rate, for comparison.
    pub brier_base_rate: f64,
    /// The decision threshold precision and recall are taken at.
    pub threshold: f64,
    /// Share of predictions at or above the threshold that came true.
    pub precision: f64,
    /// Share of what came true that was predicted at or above the threshold.
    pub recall: f64,
    /// Predicted against observed frequency in ten bins.
    pub reliability: Vec<ReliabilityBin>,
    /// The same measures per kind of key (between VMs, one external
    /// address, the outside as a whole), where a predictor fills them in:
    /// the kinds differ in how predictable they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_kind: Vec<KindQuality>,
    /// What rankings that know the whole run reach on the same predictions,
    /// where a predictor keeps them (replay does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hindsight: Option<HindsightReport>,
}

/// Quality over the predictions of one kind of key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindQuality {
    /// The kind (`between VMs`, `one external address`, `the outside`).
    pub kind: &'static str,
    /// Predictions scored.
    pub examples: u64,
    /// Of which came true.
    pub positives: u64,
    /// Area under the ROC curve over this kind's predictions alone.
    pub roc_auc: f64,
}

impl QualityTally {
    /// An empty tally; precision and recall are taken at `threshold`.
    pub fn new(threshold: f64) -> QualityTally {
        QualityTally {
            threshold,
            positives: vec![0; BINS],
            negatives: vec![0; BINS],
            above: (0, 0),
            brier_sum: 0.0,
            reliability: [(0, 0.0, 0); 10],
        }
    }

    /// Adds one scored prediction.
    pub fn add(&mut self, probability: f64, happened: bool) {
        let p = if probability.is_finite() {
            probability.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let bin = bin_of(p);
        if p >= self.threshold {
            if happened {
                self.above.0 += 1;
            } else {
                self.above.1 += 1;
            }
        }
        let counts = if happened {
            &mut self.positives
        } else {
            &mut self.negatives
        };
        if let Some(c) = counts.get_mut(bin) {
            *c += 1;
        }
        let y = if happened { 1.0 } else { 0.0 };
        self.brier_sum += (p - y) * (p - y);
        let r = ((p * 10.0) as usize).min(9);
        if let Some(slot) = self.reliability.get_mut(r) {
            slot.0 += 1;
            slot.1 += p;
            slot.2 += u64::from(happened);
        }
    }

    /// Examples tallied.
    pub fn examples(&self) -> u64 {
        self.positives.iter().sum::<u64>() + self.negatives.iter().sum::<u64>()
    }

    /// The report of everything tallied.
    pub fn report(&self) -> QualityReport {
        let bins = self
            .positives
            .iter()
            .copied()
            .zip(self.negatives.iter().copied());
        let (wins, pos, neg) = mann_whitney(bins);
        let n = pos + neg;
        let roc_auc = auc(wins, pos, neg);
        let (tp, fp) = self.above;
        let rate = if n > 0 { pos as f64 / n as f64 } else { 0.0 };
        QualityReport {
            examples: n,
            positives: pos,
            roc_auc,
            brier: if n > 0 {
                self.brier_sum / n as f64
            } else {
                f64::NAN
            },
            brier_base_rate: rate * (1.0 - rate),
            threshold: self.threshold,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, pos),
            reliability: self
                .reliability
                .iter()
                .enumerate()
                .filter(|(_, r)| r.0 > 0)
                .map(|(i, r)| ReliabilityBin {
                    from: i as f64 / 10.0,
                    count: r.0,
                    predicted: r.1 / r.0 as f64,
                    observed: r.2 as f64 / r.0 as f64,
                })
                .collect(),
            by_kind: Vec::new(),
            hindsight: None,
        }
    }
}

/// The outcomes of scored predictions per key, split by whether anything
/// at all happened on the network within the horizon before the sample.
///
/// From them come two rankings that no predictor can build, because they
/// know the whole run: each key ranked by how often it was used over all
/// of it, and a bound that is right on every sample taken after recent
/// activity and ranks the samples taken in quiet by each key's quiet-time
/// use. They say how much of a trace's outcome is settled by which key it
/// is, and how much by when something starts that nothing announced: a
/// predictor's ROC AUC well under the bound means it misses evidence, one
/// near it means the trace holds no more.
#[derive(Debug, Clone)]
pub struct HindsightTally<K> {
    /// Per key: `[busy used, busy unused, quiet used, quiet unused]`.
    keys: HashMap<K, [u64; 4]>,
}

/// What the rankings of a [`HindsightTally`] reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HindsightReport {
    /// ROC AUC of ranking every prediction by its key's use rate over the
    /// whole run.
    pub key_rate_auc: f64,
    /// Predictions sampled when nothing had happened on the network within
    /// the horizon before.
    pub quiet_examples: u64,
    /// Of which came true.
    pub quiet_positives: u64,
    /// ROC AUC of a ranking that is right on every prediction taken after
    /// recent activity and ranks the quiet ones by their key's quiet-time
    /// use rate over the whole run.
    pub quiet_bound_auc: f64,
}

impl<K> Default for HindsightTally<K> {
    fn default() -> HindsightTally<K> {
        HindsightTally {
            keys: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> HindsightTally<K> {
    /// Adds one scored prediction about `key`, sampled in `quiet` or not.
    pub fn add(&mut self, key: K, quiet: bool, happened: bool) {
        let slot = usize::from(quiet) * 2 + usize::from(!happened);
        if let Some(count) = self.keys.entry(key).or_default().get_mut(slot) {
            *count += 1;
        }
    }

    /// The report; `None` before any prediction was added.
    pub fn report(&self) -> Option<HindsightReport> {
        if self.keys.is_empty() {
            return None;
        }
        let all = self.keys.values().map(|c| (c[0] + c[2], c[1] + c[3]));
        let (key_wins, pos, neg) = grouped_wins(all);
        let quiet = self.keys.values().map(|c| (c[2], c[3]));
        let (quiet_wins, quiet_pos, quiet_neg) = grouped_wins(quiet);
        let (busy_pos, busy_neg) = (pos - quiet_pos, neg - quiet_neg);
        // Busy positives above every negative, busy negatives below every
        // positive, the quiet ones among themselves by their key's rate.
        let bound_wins =
            busy_pos as f64 * neg as f64 + quiet_wins + quiet_pos as f64 * busy_neg as f64;
        Some(HindsightReport {
            key_rate_auc: auc(key_wins, pos, neg),
            quiet_examples: quiet_pos + quiet_neg,
            quiet_positives: quiet_pos,
            quiet_bound_auc: auc(bound_wins, pos, neg),
        })
    }
}

/// The Mann–Whitney count of a ranking that is constant within each group
/// of `(positives, negatives)`, given in ascending order of score: for each
/// positive, the negatives below it, plus half of those in its own group.
/// With the total positives and negatives.
fn mann_whitney(groups: impl Iterator<Item = (u64, u64)>) -> (f64, u64, u64) {
    let (mut wins, mut pos, mut below) = (0.0, 0u64, 0u64);
    for (p, n) in groups {
        wins += p as f64 * (below as f64 + n as f64 / 2.0);
        pos += p;
        below += n;
    }
    (wins, pos, below)
}

/// ROC AUC from a Mann–Whitney count; NaN without both outcomes.
fn auc(wins: f64, pos: u64, neg: u64) -> f64 {
    if pos > 0 && neg > 0 {
        wins / (pos as f64 * neg as f64)
    } else {
        f64::NAN
    }
}

/// [`mann_whitney`] of a ranking by each group's positive rate: groups of
/// equal rate are pooled, so that they tie.
fn grouped_wins(groups: impl Iterator<Item = (u64, u64)>) -> (f64, u64, u64) {
    let mut groups: Vec<(u64, u64)> = groups.filter(|&(p, n)| p + n > 0).collect();
    // By rate p / (p + n), compared exactly.
    let rate_order = |a: &(u64, u64), b: &(u64, u64)| {
        (u128::from(a.0) * u128::from(b.0 + b.1)).cmp(&(u128::from(b.0) * u128::from(a.0 + a.1)))
    };
    groups.sort_by(rate_order);
    let mut pooled: Vec<(u64, u64)> = Vec::with_capacity(groups.len());
    for g in groups {
        match pooled.last_mut() {
            Some(last) if rate_order(last, &g).is_eq() => {
                last.0 += g.0;
                last.1 += g.1;
            }
            _ => pooled.push(g),
        }
    }
    mann_whitney(pooled.into_iter())
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_chance_rankings() {
        let mut perfect = QualityTally::new(0.5);
        for i in 0..100 {
            perfect.add(0.9, i % 2 == 0);
        }
        // All in one bin: ties count half.
        assert!((perfect.report().roc_auc - 0.5).abs() < 1e-12);
        let mut separated = QualityTally::new(0.5);
        for _ in 0..50 {
            separated.add(0.95, true);
            separated.add(0.05, false);
        }
        let r = separated.report();
        assert_eq!(r.roc_auc, 1.0);
        assert_eq!((r.precision, r.recall), (1.0, 1.0));
        assert!((r.brier - 0.0025).abs() < 1e-12);
    }

    #[test]
    fn auc_matches_the_pairwise_definition() {
        let pairs = [
            (0.1, false),
            (0.4, true),
            (0.35, false),
            (0.8, true),
            (0.7, false),
        ];
        let mut tally = QualityTally::new(0.5);
        for &(p, y) in &pairs {
            tally.add(p, y);
        }
        // Positives 0.4 (beats 0.1, 0.35) and 0.8 (beats all three): 5/6.
        assert!((tally.report().roc_auc - 5.0 / 6.0).abs() < 1e-12);
        let r = tally.report();
        assert_eq!(r.precision, 0.5);
        assert_eq!(r.recall, 0.5);
        assert_eq!(r.reliability.len(), 5);
    }

    #[test]
    fn small_probabilities_keep_their_order() {
        // One key in ten used, every probability below 0.001: the
        // ranking must survive the binning.
        let mut tally = QualityTally::new(0.5);
        for i in 0..1000 {
            let p = 1e-8 * (0.01 * f64::from(i)).exp();
            tally.add(p, i >= 900);
        }
        assert!((tally.report().roc_auc - 1.0).abs() < 1e-12);
    }

    #[test]
    fn hindsight_ranks_keys_by_their_rate_over_the_whole_run() {
        let mut tally = HindsightTally::default();
        for (key, used, unused) in [('a', 3, 1), ('b', 1, 3), ('c', 0, 2)] {
            (0..used).for_each(|_| tally.add(key, false, true));
            (0..unused).for_each(|_| tally.add(key, false, false));
        }
        // a's positives beat b's and c's negatives and half of a's own;
        // b's beat c's and half of b's own: (3 · 5.5 + 1 · 3.5) / (4 · 6).
        let r = tally.report().unwrap();
        assert!((r.key_rate_auc - 20.0 / 24.0).abs() < 1e-12, "{r:?}");
        // Nothing was quiet, so the bound is a perfect ranking.
        assert_eq!((r.quiet_examples, r.quiet_bound_auc), (0, 1.0));
    }

    #[test]
    fn hindsight_bound_is_right_after_activity_and_ranks_quiet_by_rate() {
        let mut tally = HindsightTally::default();
        tally.add('a', false, true);
        tally.add('a', false, false);
        tally.add('a', true, true);
        tally.add('a', true, false);
        tally.add('b', true, false);
        tally.add('b', true, false);
        let r = tally.report().unwrap();
        // a (2 of 4) above b (0 of 2): 2 · (2 + 1) of 2 · 4 pairs.
        assert!((r.key_rate_auc - 0.75).abs() < 1e-12, "{r:?}");
        // The busy positive beats all 4 negatives; the quiet one beats b's
        // two, half of a's quiet one, and the busy one: 7.5 of 8.
        assert!((r.quiet_bound_auc - 7.5 / 8.0).abs() < 1e-12, "{r:?}");
        assert_eq!((r.quiet_examples, r.quiet_positives), (4, 1));
    }

    #[test]
    fn hindsight_ties_keys_of_equal_rate() {
        let mut tally = HindsightTally::default();
        for (key, used, unused) in [('a', 1, 1), ('b', 2, 2)] {
            (0..used).for_each(|_| tally.add(key, true, true));
            (0..unused).for_each(|_| tally.add(key, true, false));
        }
        let r = tally.report().unwrap();
        assert!((r.key_rate_auc - 0.5).abs() < 1e-12, "{r:?}");
        assert!((r.quiet_bound_auc - 0.5).abs() < 1e-12, "{r:?}");
        assert!(HindsightTally::<char>::default().report().is_none());
    }
}
