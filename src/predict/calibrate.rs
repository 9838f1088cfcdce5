//! Calibration: from the model's raw posterior to a probability that means
//! what it says.
//!
//! Naive Bayes ranks well but its posteriors are overconfident (it counts
//! correlated evidence several times). Isotonic regression fitted on
//! out-of-sample pairs (the raw score a model gave an example *before* it
//! learned from it, and the example's outcome) maps raw scores to observed
//! frequencies while keeping their order. The fit is pool-adjacent-violators
//! over the pairs sorted by score: O(n log n), done once per retraining.

/// A monotone map from raw score to probability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Isotonic {
    /// Each block's lowest and highest score, ascending and disjoint.
    bounds: Vec<(f64, f64)>,
    /// Probability of each block, non-decreasing.
    values: Vec<f64>,
}

/// A block of pooled pairs: score range, sum of outcomes, weight.
#[derive(Debug, Clone, Copy)]
struct Block {
    lo: f64,
    hi: f64,
    sum: f64,
    weight: f64,
}

impl Block {
    fn mean(&self) -> f64 {
        self.sum / self.weight
    }
}

impl Isotonic {
    /// Fits the map to `(score, outcome)` pairs. With no pairs the map is
    /// the identity (clamped to 0–1).
    pub fn fit(pairs: &mut [(f64, bool)]) -> Isotonic {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut blocks: Vec<Block> = Vec::with_capacity(pairs.len());
        for &(score, outcome) in pairs.iter() {
            let y = if outcome { 1.0 } else { 0.0 };
            match blocks.last_mut() {
                // Equal scores must map to one value.
                Some(last) if last.hi == score => {
                    last.sum += y;
                    last.weight += 1.0;
                }
                _ => blocks.push(Block {
                    lo: score,
                    hi: score,
                    sum: y,
                    weight: 1.0,
                }),
            }
            // Pool while a block's mean falls below its predecessor's.
            while let [.., a, b] = blocks[..] {
                if a.mean() <= b.mean() {
                    break;
                }
                blocks.truncate(blocks.len() - 2);
                blocks.push(Block {
                    lo: a.lo,
                    hi: b.hi,
                    sum: a.sum + b.sum,
                    weight: a.weight + b.weight,
                });
            }
        }
        // Shrink each block a little towards the overall rate so that a block
        // of a few examples never says 0 or 1 outright.
        let total: f64 = blocks.iter().map(|b| b.weight).sum();
        let rate = if total > 0.0 {
            blocks.iter().map(|b| b.sum).sum::<f64>() / total
        } else {
            0.5
        };
        Isotonic {
            bounds: blocks.iter().map(|b| (b.lo, b.hi)).collect(),
            values: blocks
                .iter()
                .map(|b| (b.sum + rate) / (b.weight + 1.0))
                .collect(),
        }
    }

    /// Whether the map was fitted to any pairs.
    pub fn is_fitted(&self) -> bool {
        !self.bounds.is_empty()
    }

    /// The calibrated probability of a raw score.
    pub fn apply(&self, score: f64) -> f64 {
        if self.bounds.is_empty() || !score.is_finite() {
            return if score.is_finite() {
                score.clamp(0.0, 1.0)
            } else {
                0.5
            };
        }
        // The first block whose top is at or above the score.
        let i = self.bounds.partition_point(|&(_, hi)| hi < score);
        let (Some(&(lo, _)), Some(&value)) = (self.bounds.get(i), self.values.get(i)) else {
            return self.values.last().copied().unwrap_or(0.5);
        };
        if score >= lo {
            return value;
        }
        // Between two blocks: interpolate, so that nearby scores get nearby
        // probabilities rather than a step.
        match i
            .checked_sub(1)
            .and_then(|j| Some((self.bounds.get(j)?, self.values.get(j)?)))
        {
            Some((&(_, prev_hi), &prev)) if lo > prev_hi => {
                prev + (value - prev) * (score - prev_hi) / (lo - prev_hi)
            }
            _ => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotonic_is_monotone_and_matches_frequencies() {
        // Scores 0..10; outcome frequency rises with the score but noisily.
        let mut pairs = Vec::new();
        for s in 0..10 {
            for k in 0..100 {
                pairs.push((f64::from(s), k < s * 10 + if s == 5 { -20 } else { 0 }));
            }
        }
        let iso = Isotonic::fit(&mut pairs);
        let mut last = 0.0;
        for s in 0..10 {
            let p = iso.apply(f64::from(s));
            assert!(p >= last, "not monotone at {s}");
            last = p;
        }
        assert!((iso.apply(9.0) - 0.9).abs() < 0.02);
        assert!((iso.apply(0.0) - 0.0).abs() < 0.02);
        // The dip at 5 is pooled with 4: both (30 + 40) / 200.
        assert!((iso.apply(4.0) - iso.apply(5.0)).abs() < 1e-12);
        assert!(iso.apply(4.5) >= iso.apply(4.0));
    }

    #[test]
    fn an_empty_fit_is_the_identity() {
        let iso = Isotonic::fit(&mut []);
        assert!(!iso.is_fitted());
        assert_eq!(iso.apply(0.3), 0.3);
        assert_eq!(iso.apply(7.0), 1.0);
    }
}
