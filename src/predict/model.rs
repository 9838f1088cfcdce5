//! The model: Gaussian naive Bayes from `linfa-bayes` over the feature rows,
//! learned incrementally, with isotonic calibration of its posterior.
//!
//! Naive Bayes is the simplest Bayesian network: the outcome (used within
//! the horizon or not) is the parent of every feature, and the features are
//! independent given it. It learns in one pass, incrementally (the class
//! means and variances are running sums), and predicts a million rows in a
//! few vectorised passes.

use linfa::DatasetView;
use linfa::traits::FitWith;
use linfa_bayes::{GaussianNb, NaiveBayes};
use ndarray::{Array1, Array2, ArrayView2};

use super::calibrate::Isotonic;
use super::features::{FEATURES, FeatureRow};

/// Outcome classes of the model.
const UNUSED: usize = 0;
const USED: usize = 1;

/// The learned model and its calibration.
#[derive(Debug, Clone, Default)]
pub struct Model {
    nb: Option<GaussianNb<f64, usize>>,
    calibration: Isotonic,
    /// Out-of-sample (raw score, outcome) pairs, a ring of the latest.
    calibration_pairs: Vec<(f64, bool)>,
    calibration_next: usize,
    calibration_cap: usize,
    examples: u64,
    positives: u64,
}

impl Model {
    /// An untrained model that keeps `calibration_cap` pairs for calibration.
    pub fn new(calibration_cap: usize) -> Model {
        Model {
            calibration_cap: calibration_cap.max(1),
            ..Model::default()
        }
    }

    /// Whether the model has seen both outcomes, so its scores mean
    /// something.
    pub fn is_trained(&self) -> bool {
        self.nb.is_some() && self.positives > 0 && self.positives < self.examples
    }

    /// Examples learned from, and how many of them were used.
    pub fn examples(&self) -> (u64, u64) {
        (self.examples, self.positives)
    }

    /// Raw posterior P(used | features) for each row.
    pub fn raw_scores(&self, rows: ArrayView2<'_, f64>) -> Vec<f64> {
        let Some(nb) = self.nb.as_ref().filter(|_| self.is_trained()) else {
            return vec![0.5; rows.nrows()];
        };
        let (probabilities, classes) = nb.predict_proba(rows);
        let Some(column) = classes.iter().position(|&&c| c == USED) else {
            return vec![0.0; rows.nrows()];
        };
        probabilities
            .column(column)
            .iter()
            .map(|&p| if p.is_finite() { p } else { 0.5 })
            .collect()
    }

    /// The calibrated probability of a raw score.
    pub fn calibrated(&self, raw: f64) -> f64 {
        if self.calibration.is_fitted() {
            self.calibration.apply(raw)
        } else {
            raw
        }
    }

    /// Learns from labelled rows. `raw_before` holds the score each row got
    /// when it was predicted (before this model learned from it), which is
    /// what calibration must be fitted on.
    pub fn learn(&mut self, rows: &[FeatureRow], outcomes: &[bool], raw_before: &[f64]) {
        if rows.is_empty() || rows.len() != outcomes.len() {
            return;
        }
        for (&raw, &outcome) in raw_before.iter().zip(outcomes) {
            if self.calibration_pairs.len() < self.calibration_cap {
                self.calibration_pairs.push((raw, outcome));
            } else if let Some(slot) = self.calibration_pairs.get_mut(self.calibration_next) {
                *slot = (raw, outcome);
                self.calibration_next = (self.calibration_next + 1) % self.calibration_cap;
            }
        }
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let Ok(x) = Array2::from_shape_vec((rows.len(), FEATURES), flat) else {
            return;
        };
        let y: Array1<usize> = outcomes
            .iter()
            .map(|&used| if used { USED } else { UNUSED })
            .collect();
        let params = GaussianNb::params().var_smoothing(1e-3);
        // The batch's variance scales the smoothing; a batch that cannot be
        // learned from (no variance at all) leaves the model as it was.
        match params.fit_with(self.nb.clone(), &DatasetView::new(x.view(), y.view())) {
            Ok(nb) => {
                self.nb = Some(nb);
                self.examples += rows.len() as u64;
                self.positives += outcomes.iter().filter(|&&u| u).count() as u64;
            }
            Err(error) => tracing::debug!(%error, rows = rows.len(), "model update skipped"),
        }
        let trained_before = self.calibration_pairs.iter().filter(|p| p.0 != 0.5).count();
        // Pairs scored by an untrained model say nothing about the scores.
        let mut pairs: Vec<(f64, bool)> = if trained_before > 0 {
            self.calibration_pairs
                .iter()
                .copied()
                .filter(|p| p.0 != 0.5)
                .collect()
        } else {
            Vec::new()
        };
        self.calibration = Isotonic::fit(&mut pairs);
    }
}
