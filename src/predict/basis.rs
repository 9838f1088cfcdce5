//! A piecewise-linear basis over the features, so that a linear model can
//! bend.
//!
//! The logistic model weighs its inputs linearly, but the evidence does not
//! act linearly: a key used an hour ago and one used a day ago differ far
//! more than keys used ten and eleven days ago, and a service's popularity
//! matters most between "a handful of keys" and "hundreds". Each feature is
//! therefore expanded into "hat" functions over fixed knots on its scale: a
//! value between two knots is split between their two columns in
//! proportion to its nearness to each (a degree-1 B-spline). A weight per
//! knot lets the model learn any piecewise-linear effect of the feature.
//! The feature's value itself stays a column too, so that a plain trend
//! costs one weight rather than a run of them agreeing, which the prior
//! would shrink: where evidence is scarce the model stays close to linear,
//! and bends where the data make it. Flags enter as they are.
//!
//! A row has at most three nonzero columns per feature, so scoring and
//! learning stay sparse (see [`super::logistic::SparseRows`]). The knots are
//! fixed by each feature's scale, not fitted to the data, so that a column
//! means the same thing from the first batch to the last and the posterior
//! can be updated incrementally.

use super::features::{FEATURE_LIST, FEATURES, Scale};

/// Knots on the `log2(1 + hours)` scale: 0, 24 minutes, 1, 3, 7, 15, 31 and
/// 63 hours, about 10 days, and 60 days.
const HOURS: &[f64] = &[0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.5];
/// Knots on the `log2(1 + n)` scale: 0, 1, 3, 7, 15, 63, 255, 2047, about
/// 65,000 and 16 million.
const COUNT: &[f64] = &[0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 16.0, 24.0];
/// Knots of a share.
const SHARE: &[f64] = &[0.0, 0.25, 0.5, 0.75, 1.0];
/// One knot per class.
const CLASS: &[f64] = &[0.0, 1.0, 2.0];

/// The knots of a scale; none for a flag, which is its own column.
const fn knots(scale: Scale) -> &'static [f64] {
    match scale {
        Scale::Hours => HOURS,
        Scale::Count => COUNT,
        Scale::Share => SHARE,
        Scale::Class => CLASS,
        Scale::Flag => &[],
    }
}

/// Columns a feature takes: one per knot and its value, or a flag's one.
const fn columns(scale: Scale) -> usize {
    let knots = knots(scale).len();
    if knots == 0 { 1 } else { knots + 1 }
}

/// Columns of the expanded row.
pub const WIDTH: usize = {
    let mut width = 0;
    let mut i = 0;
    while i < FEATURES {
        width += columns(FEATURE_LIST[i].1);
        i += 1;
    }
    width
};

/// Where a value falls among its scale's knots: the segment `i` between
/// knots `i` and `i + 1`, how far along it (0 to 1), and the value clamped
/// to the knots. None for a flag.
fn locate(knots: &[f64], x: f64) -> Option<(usize, f64, f64)> {
    let (&first, &last) = (knots.first()?, knots.last()?);
    // The value column takes the clamped value too: beyond the last knot
    // (60 days, 16 million) nothing changes.
    let x = if x.is_nan() {
        first
    } else {
        x.clamp(first, last)
    };
    let segments = knots.len().checked_sub(1).filter(|&n| n > 0)?;
    // Counting the knots at or below x (a handful, all compared without a
    // branch) finds the segment faster than a binary search would.
    let below = knots.iter().map(|&k| usize::from(k <= x)).sum::<usize>();
    let i = below.saturating_sub(1).min(segments - 1);
    let (lo, hi) = (*knots.get(i)?, *knots.get(i + 1)?);
    Some((i, (x - lo) / (hi - lo), x))
}

/// A flag's value as it enters its column.
fn flag(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Calls `term(column, value)` for each column of a row's expansion, in
/// column order (zeros included). Generic over `term`, so that each caller
/// gets the traversal compiled with its own use of the terms inlined: the
/// dot product of a million candidates stores none of them.
fn visit(row: impl IntoIterator<Item = f64>, mut term: impl FnMut(usize, f64)) {
    let mut column = 0;
    let mut values = row.into_iter();
    for &(_, scale) in &FEATURE_LIST {
        let x = values.next().unwrap_or(0.0);
        let knots = knots(scale);
        match locate(knots, x) {
            Some((i, t, x)) => {
                term(column + i, 1.0 - t);
                term(column + i + 1, t);
                term(column + knots.len(), x);
            }
            None => term(column, flag(x)),
        }
        column += columns(scale);
    }
}

/// The dot product of `weights` (one per column) with the expansion of a
/// row, without forming the expansion: what scoring a million candidates
/// needs. Columns beyond `weights` count as 0.
pub fn dot(row: impl IntoIterator<Item = f64>, weights: &[f64]) -> f64 {
    let mut sum = 0.0;
    visit(row, |column, value| {
        sum += weights.get(column).copied().unwrap_or(0.0) * value;
    });
    sum
}

/// Expands a feature row (in [`FEATURE_LIST`] order; missing values count
/// as 0) into its nonzero columns and their values. For the hats, a value
/// outside its knots counts as the nearest knot; a value that is not a
/// number counts as the first knot (as 0 for a flag).
pub fn expand(row: impl IntoIterator<Item = f64>) -> Vec<(usize, f64)> {
    let mut terms = Vec::with_capacity(3 * FEATURES);
    visit(row, |column, value| {
        if value != 0.0 {
            terms.push((column, value));
        }
    });
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(terms: Vec<(usize, f64)>) -> Vec<f64> {
        let mut out = vec![0.0; WIDTH];
        for (column, value) in terms {
            out[column] += value;
        }
        out
    }

    #[test]
    fn a_value_is_split_between_its_two_knots() {
        let mut row = [0.0; FEATURES];
        // hours_since_attempt (the first feature, on HOURS) at 1.5: halfway
        // between the knots 1 and 2 (columns 2 and 3), and its value in the
        // column after the knots.
        row[0] = 1.5;
        let x = dense(expand(row));
        let mut expected = vec![0.0; HOURS.len() + 1];
        expected[2] = 0.5;
        expected[3] = 0.5;
        expected[HOURS.len()] = 1.5;
        assert_eq!(&x[..=HOURS.len()], &expected[..]);
        // Every feature's hats sum to 1: at zero, each feature but the
        // flags has its first knot's column set and nothing else.
        let x = dense(expand([0.0; FEATURES]));
        let hats = FEATURE_LIST.iter().filter(|f| f.1 != Scale::Flag).count();
        assert_eq!(x.iter().sum::<f64>(), hats as f64);
    }

    #[test]
    fn values_beyond_the_knots_and_nan_count_as_the_nearest_knot() {
        let last = HOURS.len() - 1;
        let mut row = [0.0; FEATURES];
        row[0] = 100.0;
        let x = dense(expand(row));
        assert_eq!((x[last], x[last + 1]), (1.0, HOURS[last]));
        for odd in [f64::NAN, -3.0] {
            row[0] = odd;
            let x = dense(expand(row));
            assert_eq!((x[0], x[last + 1]), (1.0, 0.0));
        }
    }

    #[test]
    fn the_dot_product_is_that_of_the_expansion() {
        let weights: Vec<f64> = (0..WIDTH).map(|c| (c as f64 * 0.37).sin()).collect();
        for row in [
            [0.0; FEATURES],
            [1.5; FEATURES],
            std::array::from_fn(|i| i as f64 * 0.61 - 1.0),
            [f64::NAN; FEATURES],
        ] {
            let expanded: f64 = expand(row).iter().map(|&(c, v)| weights[c] * v).sum();
            assert!((dot(row, &weights) - expanded).abs() < 1e-12);
        }
    }

    #[test]
    fn flags_keep_their_value_and_every_column_is_in_range() {
        let flag = FEATURE_LIST
            .iter()
            .position(|f| f.1 == Scale::Flag)
            .unwrap();
        let column: usize = FEATURE_LIST[..flag].iter().map(|f| columns(f.1)).sum();
        let mut row = [0.0; FEATURES];
        row[flag] = 1.0;
        assert_eq!(dense(expand(row))[column], 1.0);
        for value in [-1.0, 0.3, 7.0, 1e9, f64::INFINITY] {
            let terms = expand([value; FEATURES]);
            assert!(terms.iter().all(|&(c, v)| c < WIDTH && v.is_finite()));
        }
        // A short row counts its missing values as 0.
        assert_eq!(dense(expand([0.0; 3])), dense(expand([0.0; FEATURES])));
    }
}
