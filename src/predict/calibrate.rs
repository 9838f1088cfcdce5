//! Calibration: from the model's raw posterior to a probability that means
//! what it says.
//!
//! A learner's raw posterior drifts from observed frequencies (naive Bayes
//! counts correlated evidence several times; any model trained on last
//! week is off this week). Platt scaling fits `p = σ(a · logit(raw) + b)` to
//! out-of-sample pairs: the raw score a model gave an example *before* it
//! learned from it, and the example's outcome. With `a > 0` the map is
//! strictly increasing, so it keeps the model's ranking intact; isotonic
//! regression, tried first, pooled the many low scores into flat blocks and
//! cost 0.1 of ROC AUC on the short real traces, where it saw few pairs.

use super::logistic::{BayesLogistic, SparseRows};

/// A monotone map from raw score to probability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Platt {
    /// Slope and intercept on the logit scale, once fitted.
    fitted: Option<(f64, f64)>,
}

/// Raw scores are clamped this far from 0 and 1 before taking their logit,
/// so that a saturated posterior stays finite.
const EDGE: f64 = 1e-12;

/// Prior variance of the slope and intercept: vague, since a few hundred
/// pairs decide them well, but finite, so that pairs of one outcome only do
/// not push them to infinity.
const PRIOR_VARIANCE: f64 = 100.0;

fn logit(p: f64) -> f64 {
    let p = p.clamp(EDGE, 1.0 - EDGE);
    (p / (1.0 - p)).ln()
}

/// Out-of-sample `(raw score, outcome)` pairs: a ring of the latest, and
/// the same pairs counted by their logit to a hundredth, so that a fit costs
/// the same for fifty thousand pairs as for a few hundred.
#[derive(Debug, Clone, Default)]
pub struct CalibrationPairs {
    ring: Vec<(i64, bool)>,
    next: usize,
    cap: usize,
    bins: std::collections::BTreeMap<(i64, bool), u32>,
}

impl CalibrationPairs {
    /// Keeps the latest `cap` pairs.
    pub fn new(cap: usize) -> CalibrationPairs {
        CalibrationPairs {
            cap: cap.max(1),
            ..CalibrationPairs::default()
        }
    }

    /// Adds a pair, forgetting the oldest beyond the cap.
    pub fn push(&mut self, score: f64, outcome: bool) {
        if !score.is_finite() {
            return;
        }
        let pair = ((logit(score) * 100.0).round() as i64, outcome);
        if self.ring.len() < self.cap {
            self.ring.push(pair);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            let old = std::mem::replace(slot, pair);
            self.next = (self.next + 1) % self.cap;
            if let Some(count) = self.bins.get_mut(&old) {
                *count -= 1;
                if *count == 0 {
                    self.bins.remove(&old);
                }
            }
        }
        *self.bins.entry(pair).or_default() += 1;
    }
}

impl Platt {
    /// Fits the map to the pairs. With no pairs (or pairs of one outcome
    /// only) the map is the identity (clamped to 0–1).
    pub fn fit(pairs: &CalibrationPairs) -> Platt {
        let bins = &pairs.bins;
        if !bins.keys().any(|k| k.1) || !bins.keys().any(|k| !k.1) {
            return Platt::default();
        }
        let mut rows = SparseRows::new();
        for &(bin, _) in bins.keys() {
            rows.push([(0, bin as f64 / 100.0)]);
        }
        let outcomes: Vec<bool> = bins.keys().map(|&(_, o)| o).collect();
        let weights: Vec<f64> = bins.values().map(|&n| f64::from(n)).collect();
        let mut model = BayesLogistic::new(1, PRIOR_VARIANCE);
        if model.update_weighted(&rows, &outcomes, &weights).is_err() {
            return Platt::default();
        }
        let w = model.weights();
        match (w.first(), w.get(1)) {
            // A slope at or below zero would reverse or flatten the model's
            // ranking: a model that bad is better left uncalibrated.
            (Some(&a), Some(&b)) if a > 0.0 => Platt {
                fitted: Some((a, b)),
            },
            _ => Platt::default(),
        }
    }

    /// Whether the map was fitted to any pairs.
    pub fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }

    /// The calibrated probability of a raw score.
    pub fn apply(&self, score: f64) -> f64 {
        if !score.is_finite() {
            return 0.5;
        }
        match self.fitted {
            None => score.clamp(0.0, 1.0),
            Some((a, b)) => {
                let z = a * logit(score) + b;
                1.0 / (1.0 + (-z).exp())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(f64, bool)]) -> CalibrationPairs {
        let mut pairs = CalibrationPairs::new(usize::MAX);
        for &(s, o) in list {
            pairs.push(s, o);
        }
        pairs
    }

    #[test]
    fn platt_keeps_the_order_and_matches_frequencies() {
        // Raw scores overconfident: a score of 0.9 is used half the time,
        // 0.1 one time in ten.
        let mut list = Vec::new();
        for k in 0..1000 {
            list.push((0.9, k % 2 == 0));
            list.push((0.1, k % 10 == 0));
        }
        let platt = Platt::fit(&pairs(&list));
        assert!(platt.is_fitted());
        assert!(
            (platt.apply(0.9) - 0.5).abs() < 0.02,
            "{}",
            platt.apply(0.9)
        );
        assert!(
            (platt.apply(0.1) - 0.1).abs() < 0.02,
            "{}",
            platt.apply(0.1)
        );
        let mut last = 0.0;
        for s in 1..100 {
            let p = platt.apply(f64::from(s) / 100.0);
            assert!(p > last, "not increasing at {s}");
            last = p;
        }
    }

    #[test]
    fn saturated_scores_stay_finite() {
        let platt = Platt::fit(&pairs(&[
            (0.0, false),
            (1.0, true),
            (0.0, true),
            (1.0, false),
        ]));
        for s in [0.0, 1e-300, 0.5, 1.0] {
            assert!(platt.apply(s).is_finite());
        }
        assert_eq!(platt.apply(f64::NAN), 0.5);
    }

    #[test]
    fn one_outcome_only_leaves_the_identity() {
        let platt = Platt::fit(&pairs(&[(0.2, false), (0.7, false)]));
        assert!(!platt.is_fitted());
        assert_eq!(platt.apply(0.3), 0.3);
        assert_eq!(platt.apply(7.0), 1.0);
    }
}
