//! Bayesian logistic regression, learned batch by batch.
//!
//! The weights have a Gaussian posterior with a diagonal covariance. Each
//! batch of labelled rows updates it by the Laplace approximation: the new
//! mean is the maximum of (log prior + log likelihood of the batch), found by
//! Newton's method, and each weight's precision grows by the curvature the
//! batch adds along it. The posterior after one batch is the prior of the
//! next, so learning is incremental and sees each example once (Chapelle and
//! Li, "An Empirical Evaluation of Thompson Sampling", NIPS 2011, algorithm
//! 3).
//!
//! Where naive Bayes counts correlated evidence once per feature (recency,
//! frequency and activity ratio all say "used lately"), the weights here are
//! fitted jointly, so correlated features share one effect. On every trace
//! of the replay evaluation but one, that ranks keys better (README).

use linfa_linalg::cholesky::SolveCInplace;
use ndarray::{Array1, Array2, ArrayView1, Axis};

/// A batch that the update cannot learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Rows and outcomes differ in number, or a row names a column the
    /// model does not have.
    #[error("rows and outcomes do not match")]
    Shape,
    /// A value is not a finite number.
    #[error("a feature is not finite")]
    NotFinite,
    /// Newton's method met a system it could not solve (cannot happen with
    /// a positive prior precision, short of overflow).
    #[error("the Newton system is singular")]
    Singular,
}

/// Rows of a design matrix by their nonzero columns (compressed sparse
/// rows). The predictor's rows are expanded over a basis (see
/// [`super::basis`]) where a few dozen of some two hundred columns are
/// nonzero, and learning costs what the nonzero terms cost.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseRows {
    /// Where each row's terms start in `terms`, then where the last ends.
    starts: Vec<usize>,
    /// (column, value) of every row in turn.
    terms: Vec<(u32, f64)>,
}

impl Default for SparseRows {
    fn default() -> SparseRows {
        SparseRows {
            starts: vec![0],
            terms: Vec::new(),
        }
    }
}

impl SparseRows {
    /// No rows.
    pub fn new() -> SparseRows {
        SparseRows::default()
    }

    /// The rows of a dense matrix (tests write their rows that way).
    #[cfg(test)]
    pub fn from_dense(rows: ndarray::ArrayView2<'_, f64>) -> SparseRows {
        let mut out = SparseRows::new();
        for row in rows.rows() {
            out.push(row.iter().copied().enumerate());
        }
        out
    }

    /// Appends a row given by its (column, value) terms; zero values are
    /// left out.
    pub fn push(&mut self, terms: impl IntoIterator<Item = (usize, f64)>) {
        self.terms.extend(
            terms
                .into_iter()
                .filter(|&(_, v)| v != 0.0)
                .map(|(c, v)| (u32::try_from(c).unwrap_or(u32::MAX), v)),
        );
        self.starts.push(self.terms.len());
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each row's terms.
    fn rows(&self) -> impl Iterator<Item = &[(u32, f64)]> + '_ {
        self.starts
            .windows(2)
            .map(|w| self.terms.get(w[0]..w[1]).unwrap_or(&[]))
    }
}

/// The posterior over the weights: a mean and a precision per weight, the
/// last weight being the intercept.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesLogistic {
    mean: Array1<f64>,
    precision: Array1<f64>,
}

/// Newton steps per batch at most; the objective is smooth and strictly
/// convex, so a handful reach the optimum to within [`TOLERANCE`].
const MAX_STEPS: usize = 25;
/// Largest change of a weight at which Newton's method has converged.
const TOLERANCE: f64 = 1e-7;

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

/// The linear predictor of a row at weights `w` (intercept last).
fn linear(w: &Array1<f64>, row: &[(u32, f64)]) -> f64 {
    let intercept = w.len().checked_sub(1).and_then(|n| w.get(n)).copied();
    row.iter().fold(intercept.unwrap_or(0.0), |z, &(c, v)| {
        z + w.get(c as usize).copied().unwrap_or(0.0) * v
    })
}

impl BayesLogistic {
    /// The prior: every weight (and the intercept) centred on zero with
    /// variance `prior_variance`.
    pub fn new(features: usize, prior_variance: f64) -> BayesLogistic {
        let precision = 1.0 / prior_variance.max(f64::MIN_POSITIVE);
        BayesLogistic {
            mean: Array1::zeros(features + 1),
            precision: Array1::from_elem(features + 1, precision),
        }
    }

    /// The posterior mean of the weights, the intercept last.
    pub fn weights(&self) -> ArrayView1<'_, f64> {
        self.mean.view()
    }

    /// P(outcome | row) at the posterior mean, where `linear` computes the
    /// row's dot product with the weights it is given (the intercept
    /// aside): for rows that are cheaper to multiply than to list.
    pub fn probability_with(&self, linear: impl FnOnce(&[f64]) -> f64) -> f64 {
        let n = self.mean.len() - 1;
        let weights = self.mean.as_slice().and_then(|w| w.get(..n)).unwrap_or(&[]);
        sigmoid(self.mean[n] + linear(weights))
    }

    /// P(outcome | row) at the posterior mean, for each row.
    pub fn predict(&self, rows: &SparseRows) -> Vec<f64> {
        rows.rows()
            .map(|row| sigmoid(linear(&self.mean, row)))
            .collect()
    }

    /// The negative log posterior at `w` (up to a constant), for the line
    /// search.
    fn objective(&self, w: &Array1<f64>, rows: &SparseRows, y: &[f64], weights: &[f64]) -> f64 {
        let prior: f64 = w
            .iter()
            .zip(&self.mean)
            .zip(&self.precision)
            .map(|((w, m), q)| 0.5 * q * (w - m) * (w - m))
            .sum();
        let likelihood: f64 = rows
            .rows()
            .zip(y)
            .zip(weights)
            .map(|((row, &y), &n)| {
                let z = linear(w, row);
                n * (softplus(z) - y * z)
            })
            .sum();
        prior + likelihood
    }

    /// Updates the posterior with a batch of rows and their outcomes. A
    /// batch that cannot be learned from leaves the posterior as it was.
    pub fn update(&mut self, rows: &SparseRows, outcomes: &[bool]) -> Result<(), UpdateError> {
        self.update_weighted(rows, outcomes, &vec![1.0; outcomes.len()])
    }

    /// As [`BayesLogistic::update`], each row counting `weights[i]` times
    /// (rows of equal value summed into one).
    pub fn update_weighted(
        &mut self,
        rows: &SparseRows,
        outcomes: &[bool],
        weights: &[f64],
    ) -> Result<(), UpdateError> {
        let d = self.mean.len();
        let intercept = d - 1;
        if rows.len() != outcomes.len() || rows.len() != weights.len() {
            return Err(UpdateError::Shape);
        }
        if rows.terms.iter().any(|&(c, _)| c as usize >= intercept) {
            return Err(UpdateError::Shape);
        }
        if rows.terms.iter().any(|(_, v)| !v.is_finite())
            || weights.iter().any(|&w| !w.is_finite() || w < 0.0)
        {
            return Err(UpdateError::NotFinite);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let y: Vec<f64> = outcomes.iter().map(|&u| f64::from(u8::from(u))).collect();
        // Only the columns the batch touches (and the intercept) can move:
        // elsewhere the gradient is the prior's, zero at the prior's mean,
        // and the Hessian is the prior's diagonal. Newton's system is solved
        // over those columns alone: the same answer, at the cost of the
        // batch's width rather than the model's.
        let mut local = vec![usize::MAX; d];
        let mut active = Vec::new();
        for column in rows
            .terms
            .iter()
            .map(|&(c, _)| c as usize)
            .chain(std::iter::once(intercept))
        {
            if let Some(slot) = local.get_mut(column)
                && *slot == usize::MAX
            {
                *slot = active.len();
                active.push(column);
            }
        }
        let k = active.len();
        let mut w = self.mean.clone();
        let mut current = self.objective(&w, rows, &y, weights);
        for _ in 0..MAX_STEPS {
            // Gradient and Hessian of the negative log posterior over the
            // active columns, summed over each row's nonzero terms (and the
            // intercept's 1).
            let mut gradient = Array1::zeros(k);
            let mut hessian = Array2::zeros((k, k));
            for (i, &column) in active.iter().enumerate() {
                gradient[i] = (w[column] - self.mean[column]) * self.precision[column];
                hessian[[i, i]] = self.precision[column];
            }
            for ((row, &y), &n) in rows.rows().zip(&y).zip(weights) {
                let p = sigmoid(linear(&w, row));
                let residual = (p - y) * n;
                let curvature = p * (1.0 - p) * n;
                let terms = row
                    .iter()
                    .map(|&(c, v)| (local[c as usize], v))
                    .chain(std::iter::once((local[intercept], 1.0)));
                for (a, va) in terms.clone() {
                    gradient[a] += residual * va;
                    let scaled = curvature * va;
                    for (b, vb) in terms.clone() {
                        hessian[[a, b]] += scaled * vb;
                    }
                }
            }
            let mut step = gradient.insert_axis(Axis(1));
            hessian
                .solvec_inplace(&mut step)
                .map_err(|_| UpdateError::Singular)?;
            let mut full = Array1::zeros(d);
            for (&column, s) in active.iter().zip(step.iter()) {
                full[column] = *s;
            }
            let step = full;
            // Halve the step until the objective does not increase: pure
            // Newton can overshoot where the likelihood is nearly flat. (A
            // NaN objective counts as an increase.)
            let improves = |value: f64| value <= current;
            let mut scale = 1.0;
            let mut next = &w - &step;
            let mut value = self.objective(&next, rows, &y, weights);
            while !improves(value) && scale > 1e-6 {
                scale *= 0.5;
                next = &w - &(&step * scale);
                value = self.objective(&next, rows, &y, weights);
            }
            if !improves(value) {
                break;
            }
            let moved = step.iter().fold(0.0f64, |m, s| m.max((s * scale).abs()));
            w = next;
            current = value;
            if moved < TOLERANCE {
                break;
            }
        }
        // Laplace: the precision gains the batch's curvature at the new mean.
        for (row, &n) in rows.rows().zip(weights) {
            let p = sigmoid(linear(&w, row));
            let curvature = p * (1.0 - p) * n;
            for &(c, v) in row {
                self.precision[c as usize] += curvature * v * v;
            }
            self.precision[intercept] += curvature;
        }
        self.mean = w;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn learns_the_direction_of_a_feature() {
        let mut model = BayesLogistic::new(1, 1.0);
        let rows = array![[0.0], [0.0], [1.0], [1.0]];
        let outcomes = [false, true, true, false];
        model
            .update(&SparseRows::from_dense(rows.view()), &outcomes)
            .unwrap();
        // The feature says nothing: no effect learned.
        assert!(model.weights()[0].abs() < 1e-6);
        let rows = array![[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]];
        let outcomes = [false, false, false, true, true, true];
        model
            .update(&SparseRows::from_dense(rows.view()), &outcomes)
            .unwrap();
        let p = model.predict(&SparseRows::from_dense(array![[0.0], [1.0]].view()));
        assert!(p[0] < 0.5 && p[1] > 0.5, "{p:?}");
    }

    #[test]
    fn batches_add_up_like_one_batch_with_a_weak_prior() {
        // With a vague prior, two halves learned in turn land near the
        // maximum-likelihood fit of the whole (Laplace is exact for the
        // Gaussian part and close for the rest).
        let rows: Vec<[f64; 2]> = (0..400)
            .map(|i| [f64::from(i % 20) / 10.0, f64::from(i % 7) / 7.0])
            .collect();
        let outcomes: Vec<bool> = rows.iter().map(|r| r[0] * 2.0 - 2.0 + r[1] > 0.3).collect();
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        let x = Array2::from_shape_vec((400, 2), flat).unwrap();
        let mut whole = BayesLogistic::new(2, 100.0);
        whole
            .update(&SparseRows::from_dense(x.view()), &outcomes)
            .unwrap();
        let mut halves = BayesLogistic::new(2, 100.0);
        halves
            .update(
                &SparseRows::from_dense(x.slice_axis(ndarray::Axis(0), (..200).into())),
                &outcomes[..200],
            )
            .unwrap();
        halves
            .update(
                &SparseRows::from_dense(x.slice_axis(ndarray::Axis(0), (200..).into())),
                &outcomes[200..],
            )
            .unwrap();
        let a = whole.predict(&SparseRows::from_dense(x.view()));
        let b = halves.predict(&SparseRows::from_dense(x.view()));
        let worst = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 0.15, "{worst}");
        // Both separate the classes.
        let correct = b
            .iter()
            .zip(&outcomes)
            .filter(|(p, o)| (**p > 0.5) == **o)
            .count();
        assert!(correct > 380, "{correct}");
    }

    #[test]
    fn a_bad_batch_leaves_the_model_as_it_was() {
        let mut model = BayesLogistic::new(2, 1.0);
        let before = model.clone();
        assert_eq!(
            model.update(
                &SparseRows::from_dense(array![[1.0, f64::NAN]].view()),
                &[true]
            ),
            Err(UpdateError::NotFinite)
        );
        assert_eq!(
            model.update(
                &SparseRows::from_dense(array![[1.0, 2.0]].view()),
                &[true, false]
            ),
            Err(UpdateError::Shape)
        );
        // A column the model does not have.
        assert_eq!(
            model.update(
                &SparseRows::from_dense(array![[1.0, 2.0, 3.0]].view()),
                &[true]
            ),
            Err(UpdateError::Shape)
        );
        assert_eq!(model, before);
    }

    #[test]
    fn a_batch_moves_only_the_columns_it_touches() {
        let mut model = BayesLogistic::new(3, 1.0);
        let mut rows = SparseRows::new();
        for i in 0..40 {
            rows.push([(0, f64::from(i % 4)), (2, 1.0)]);
        }
        let outcomes: Vec<bool> = (0..40).map(|i| i % 4 >= 2).collect();
        model.update(&rows, &outcomes).unwrap();
        let w = model.weights();
        assert!(w[0] > 0.1, "{w:?}");
        assert_eq!(w[1], 0.0);
        assert_eq!(model.precision[1], 1.0);
        assert!(model.precision[0] > 1.0 && model.precision[2] > 1.0);
        // Sparse and dense forms of the same rows learn the same.
        let mut dense = BayesLogistic::new(3, 1.0);
        let x = Array2::from_shape_fn((40, 3), |(i, j)| match j {
            0 => f64::from(i as u32 % 4),
            1 => 0.0,
            _ => 1.0,
        });
        dense
            .update(&SparseRows::from_dense(x.view()), &outcomes)
            .unwrap();
        assert_eq!(dense, model);
    }

    #[test]
    fn separable_data_stays_finite() {
        // The prior keeps the weights finite where the likelihood alone
        // would push them to infinity.
        let mut model = BayesLogistic::new(1, 1.0);
        for _ in 0..50 {
            model
                .update(
                    &SparseRows::from_dense(array![[0.0], [10.0]].view()),
                    &[false, true],
                )
                .unwrap();
        }
        assert!(model.weights().iter().all(|w| w.is_finite()));
        let p = model.predict(&SparseRows::from_dense(array![[0.0], [10.0]].view()));
        assert!(p[0] < 0.1 && p[1] > 0.9, "{p:?}");
    }
}
