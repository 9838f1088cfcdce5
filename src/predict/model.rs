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
use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::calibrate::Isotonic;
use super::features::{FEATURES, FeatureRow};

/// Outcome classes of the model.
const UNUSED: usize = 0;
const USED: usize = 1;

/// Kinds of keys that behave differently enough to deserve models of their
/// own: between VMs; with one external address; with the outside as a
/// whole (many addresses). The kind is a parent of every feature: a
/// Bayesian network one level richer than naive Bayes, which measurably
/// helps where the kinds mix (a denied attempt means "stale" for a single
/// address and "needed" for the outside as a whole).
pub(crate) const KINDS: usize = 3;

/// The kinds' names, by index.
pub(crate) const KIND_NAMES: [&str; KINDS] = [
    "between VMs",
    "one external address",
    "the outside as a whole",
];

/// The kind of key a feature row describes.
pub(crate) fn kind_of(row: &[f64]) -> usize {
    let addresses = row.get(FEATURES - 2).copied().unwrap_or(1.0);
    let external = row.get(FEATURES - 1).copied().unwrap_or(0.0);
    if addresses > 1.0 + 1e-9 {
        2
    } else if external > 0.5 {
        1
    } else {
        0
    }
}

/// The learned model: one naive Bayes per kind of key, and one over all
/// kinds that stands in for a kind not yet learned.
#[derive(Debug, Clone, Default)]
pub struct Model {
    all: KindModel,
    kinds: [KindModel; KINDS],
}

impl Model {
    /// An untrained model that keeps `calibration_cap` pairs for calibration
    /// (per kind).
    pub fn new(calibration_cap: usize) -> Model {
        Model {
            all: KindModel::new(calibration_cap),
            kinds: std::array::from_fn(|_| KindModel::new(calibration_cap)),
        }
    }

    /// Whether the model has seen both outcomes, so its scores mean
    /// something.
    pub fn is_trained(&self) -> bool {
        self.all.is_trained()
    }

    /// Examples learned from, and how many of them were used.
    pub fn examples(&self) -> (u64, u64) {
        (self.all.examples, self.all.positives)
    }

    /// For each row: the raw posterior P(used | features) of the model that
    /// answers for it, and its calibrated probability.
    pub fn score(&self, rows: ArrayView2<'_, f64>) -> Vec<(f64, f64)> {
        let mut out = vec![(0.5, 0.5); rows.nrows()];
        // Rows by the model that answers for them: their kind's, a kind's
        // one-outcome rate, or the model over all kinds.
        let mut by_kind: [Vec<usize>; KINDS] = Default::default();
        let mut by_all = Vec::new();
        for (i, row) in rows.rows().into_iter().enumerate() {
            let kind = kind_of(row.to_slice().unwrap_or(&[]));
            match self.kinds.get(kind) {
                Some(model) if model.is_trained() => {
                    if let Some(list) = by_kind.get_mut(kind) {
                        list.push(i);
                    }
                }
                Some(model) => match model.one_outcome_rate() {
                    // A kind that has only ever had one outcome: its
                    // features cannot say more than its rate.
                    Some(rate) => {
                        if let Some(slot) = out.get_mut(i) {
                            *slot = (rate, rate);
                        }
                    }
                    None => by_all.push(i),
                },
                None => by_all.push(i),
            }
        }
        let mut answer = |model: &KindModel, indices: &[usize]| {
            if indices.is_empty() {
                return;
            }
            // Rows all of one model (the common case) are scored where they
            // are rather than copied out.
            let raw = if indices.len() == rows.nrows() {
                model.raw_scores(rows)
            } else {
                model.raw_scores(rows.select(Axis(0), indices).view())
            };
            for (&i, raw) in indices.iter().zip(raw) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = (raw, model.calibrated(raw));
                }
            }
        };
        for (model, indices) in self.kinds.iter().zip(&by_kind) {
            answer(model, indices);
        }
        answer(&self.all, &by_all);
        out
    }

    /// Learns from labelled rows. `raw_before` holds the score each row got
    /// when it was predicted (before this model learned from it), which is
    /// what calibration must be fitted on.
    pub fn learn(&mut self, rows: &[FeatureRow], outcomes: &[bool], raw_before: &[f64]) {
        if rows.len() != outcomes.len() || rows.len() != raw_before.len() {
            return;
        }
        for (kind, model) in self.kinds.iter_mut().enumerate() {
            let mut r = Vec::new();
            let mut o = Vec::new();
            let mut b = Vec::new();
            for ((row, &outcome), &raw) in rows.iter().zip(outcomes).zip(raw_before) {
                if kind_of(row) == kind {
                    r.push(*row);
                    o.push(outcome);
                    b.push(raw);
                }
            }
            model.learn(&r, &o, &b);
        }
        self.all.learn(rows, outcomes, raw_before);
    }
}

/// One naive Bayes and its calibration.
#[derive(Debug, Clone, Default)]
struct KindModel {
    nb: Option<GaussianNb<f64, usize>>,
    calibration: Isotonic,
    /// Out-of-sample (raw score, outcome) pairs, a ring of the latest.
    calibration_pairs: Vec<(f64, bool)>,
    calibration_next: usize,
    calibration_cap: usize,
    examples: u64,
    positives: u64,
}

impl KindModel {
    fn new(calibration_cap: usize) -> KindModel {
        KindModel {
            calibration_cap: calibration_cap.max(1),
            ..KindModel::default()
        }
    }

    fn is_trained(&self) -> bool {
        self.nb.is_some() && self.positives > 0 && self.positives < self.examples
    }

    /// For a kind seen enough but with one outcome only: the posterior mean
    /// of its rate under a uniform prior, `(used + 1) / (examples + 2)`.
    fn one_outcome_rate(&self) -> Option<f64> {
        const ENOUGH: u64 = 20;
        (self.examples >= ENOUGH && (self.positives == 0 || self.positives == self.examples))
            .then(|| (self.positives as f64 + 1.0) / (self.examples as f64 + 2.0))
    }

    /// Raw posterior P(used | features) for each row.
    fn raw_scores(&self, rows: ArrayView2<'_, f64>) -> Vec<f64> {
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
    fn calibrated(&self, raw: f64) -> f64 {
        if self.calibration.is_fitted() {
            self.calibration.apply(raw)
        } else {
            raw
        }
    }

    fn learn(&mut self, rows: &[FeatureRow], outcomes: &[bool], raw_before: &[f64]) {
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
