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
//! of the replay evaluation that ranks keys better (README).

use linfa_linalg::cholesky::SolveCInplace;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// A batch that the update cannot learn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// Rows and outcomes differ in number, or a row has the wrong width.
    #[error("rows and outcomes do not match")]
    Shape,
    /// A feature is not a finite number.
    #[error("a feature is not finite")]
    NotFinite,
    /// Newton's method met a system it could not solve (cannot happen with
    /// a positive prior precision, short of overflow).
    #[error("the Newton system is singular")]
    Singular,
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

    fn logit(&self, row: ArrayView1<'_, f64>) -> f64 {
        let n = self.mean.len() - 1;
        let mut z = self.mean[n];
        for (w, x) in self.mean.iter().zip(row.iter()).take(n) {
            z += w * x;
        }
        z
    }

    /// P(outcome | row) at the posterior mean, for each row.
    pub fn predict(&self, rows: ArrayView2<'_, f64>) -> Vec<f64> {
        rows.rows()
            .into_iter()
            .map(|row| sigmoid(self.logit(row)))
            .collect()
    }

    /// The negative log posterior at `w` (up to a constant), for the line
    /// search.
    fn objective(
        &self,
        w: &Array1<f64>,
        x: &Array2<f64>,
        y: &Array1<f64>,
        weights: &Array1<f64>,
    ) -> f64 {
        let prior: f64 = w
            .iter()
            .zip(&self.mean)
            .zip(&self.precision)
            .map(|((w, m), q)| 0.5 * q * (w - m) * (w - m))
            .sum();
        let likelihood: f64 = x
            .dot(w)
            .iter()
            .zip(y)
            .zip(weights)
            .map(|((&z, &y), &n)| n * (softplus(z) - y * z))
            .sum();
        prior + likelihood
    }

    /// Updates the posterior with a batch of rows and their outcomes. A
    /// batch that cannot be learned from leaves the posterior as it was.
    pub fn update(
        &mut self,
        rows: ArrayView2<'_, f64>,
        outcomes: &[bool],
    ) -> Result<(), UpdateError> {
        self.update_weighted(rows, outcomes, &vec![1.0; outcomes.len()])
    }

    /// As [`BayesLogistic::update`], each row counting `weights[i]` times
    /// (rows of equal value summed into one).
    pub fn update_weighted(
        &mut self,
        rows: ArrayView2<'_, f64>,
        outcomes: &[bool],
        weights: &[f64],
    ) -> Result<(), UpdateError> {
        let d = self.mean.len();
        if rows.nrows() != outcomes.len() || rows.nrows() != weights.len() || rows.ncols() + 1 != d
        {
            return Err(UpdateError::Shape);
        }
        if rows.iter().chain(weights).any(|v| !v.is_finite()) || weights.iter().any(|&w| w < 0.0) {
            return Err(UpdateError::NotFinite);
        }
        if rows.nrows() == 0 {
            return Ok(());
        }
        // The rows with the intercept's constant column.
        let mut x = Array2::ones((rows.nrows(), d));
        for (mut to, from) in x.rows_mut().into_iter().zip(rows.rows()) {
            for (t, f) in to.iter_mut().zip(from) {
                *t = *f;
            }
        }
        let y = Array1::from_iter(outcomes.iter().map(|&u| f64::from(u8::from(u))));
        let weights = Array1::from(weights.to_vec());
        let mut w = self.mean.clone();
        let mut current = self.objective(&w, &x, &y, &weights);
        for _ in 0..MAX_STEPS {
            let p: Array1<f64> = x.dot(&w).mapv(sigmoid);
            // Gradient and Hessian of the negative log posterior.
            let residual: Array1<f64> = (&p - &y) * &weights;
            let mut gradient = x.t().dot(&residual);
            gradient += &((&w - &self.mean) * &self.precision);
            let curvature = &p * &(1.0 - &p) * &weights;
            let weighted = &x * &curvature.view().insert_axis(ndarray::Axis(1));
            let mut hessian = x.t().dot(&weighted);
            for (i, q) in self.precision.iter().enumerate() {
                hessian[[i, i]] += q;
            }
            let mut step = gradient.insert_axis(ndarray::Axis(1));
            hessian
                .solvec_inplace(&mut step)
                .map_err(|_| UpdateError::Singular)?;
            let step = step.remove_axis(ndarray::Axis(1));
            // Halve the step until the objective does not increase: pure
            // Newton can overshoot where the likelihood is nearly flat. (A
            // NaN objective counts as an increase.)
            let improves = |value: f64| value <= current;
            let mut scale = 1.0;
            let mut next = &w - &step;
            let mut value = self.objective(&next, &x, &y, &weights);
            while !improves(value) && scale > 1e-6 {
                scale *= 0.5;
                next = &w - &(&step * scale);
                value = self.objective(&next, &x, &y, &weights);
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
        let p: Array1<f64> = x.dot(&w).mapv(sigmoid);
        let curvature = &p * &(1.0 - &p) * &weights;
        let gained = x.mapv(|v| v * v).t().dot(&curvature);
        self.precision += &gained;
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
        model.update(rows.view(), &outcomes).unwrap();
        // The feature says nothing: no effect learned.
        assert!(model.weights()[0].abs() < 1e-6);
        let rows = array![[0.0], [0.0], [0.0], [1.0], [1.0], [1.0]];
        let outcomes = [false, false, false, true, true, true];
        model.update(rows.view(), &outcomes).unwrap();
        let p = model.predict(array![[0.0], [1.0]].view());
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
        whole.update(x.view(), &outcomes).unwrap();
        let mut halves = BayesLogistic::new(2, 100.0);
        halves
            .update(
                x.slice_axis(ndarray::Axis(0), (..200).into()),
                &outcomes[..200],
            )
            .unwrap();
        halves
            .update(
                x.slice_axis(ndarray::Axis(0), (200..).into()),
                &outcomes[200..],
            )
            .unwrap();
        let a = whole.predict(x.view());
        let b = halves.predict(x.view());
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
            model.update(array![[1.0, f64::NAN]].view(), &[true]),
            Err(UpdateError::NotFinite)
        );
        assert_eq!(
            model.update(array![[1.0, 2.0]].view(), &[true, false]),
            Err(UpdateError::Shape)
        );
        assert_eq!(model, before);
    }

    #[test]
    fn separable_data_stays_finite() {
        // The prior keeps the weights finite where the likelihood alone
        // would push them to infinity.
        let mut model = BayesLogistic::new(1, 1.0);
        for _ in 0..50 {
            model
                .update(array![[0.0], [10.0]].view(), &[false, true])
                .unwrap();
        }
        assert!(model.weights().iter().all(|w| w.is_finite()));
        let p = model.predict(array![[0.0], [10.0]].view());
        assert!(p[0] < 0.1 && p[1] > 0.9, "{p:?}");
    }
}
