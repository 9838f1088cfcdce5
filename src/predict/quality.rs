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
        let pos: u64 = self.positives.iter().sum();
        let neg: u64 = self.negatives.iter().sum();
        let n = pos + neg;
        // AUC as the Mann–Whitney statistic: for each positive, the
        // negatives below it, plus half of those in its own bin.
        let mut below = 0u64;
        let mut wins = 0.0f64;
        for (p, q) in self.positives.iter().zip(&self.negatives) {
            wins += *p as f64 * (below as f64 + *q as f64 / 2.0);
            below += q;
        }
        let roc_auc = if pos > 0 && neg > 0 {
            wins / (pos as f64 * neg as f64)
        } else {
            f64::NAN
        };
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
        }
    }
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
}
