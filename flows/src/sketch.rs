//! Quantiles of per-window volume: exact while the series is small, a
//! relative-error sketch after.
//!
//! The first [`EXACT_CAPACITY`] values are kept as they are, so every
//! quantile of a short series is exact (nearest rank). Past that the values
//! move into a DDSketch-style log histogram (Masson, Rim and Lee, VLDB 2019):
//! bucket `i` holds values in `(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`, and a
//! quantile is answered with its bucket's midpoint, within a relative error
//! of α = 1 % of the true nearest-rank value. Bytes per window span 1 B to
//! petabytes in under 2,000 buckets; a real series uses a few dozen, stored
//! sparsely. Count, sum, minimum and maximum are always exact.
//!
//! A maintained crate (`sketches-ddsketch`) would do the histogram part but
//! not the exact small-data mode the tests and short-lived pairs need; the
//! histogram is thirty lines.

use std::collections::BTreeMap;

/// Values kept exactly before the sketch switches to buckets.
pub const EXACT_CAPACITY: usize = 32;

/// The relative accuracy of quantiles once the sketch has switched.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Quantiles of a stream of non-negative integers.
#[derive(Debug, Clone, Default)]
pub struct VolumeSketch {
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Exact(Vec<u64>),
    Buckets {
        zeros: u64,
        counts: BTreeMap<u16, u64>,
    },
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Exact(Vec::new())
    }
}

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bucket of a positive value: the smallest `i` with `v <= γ^i`.
fn bucket_of(value: u64) -> u16 {
    // value ≥ 1, so ln ≥ 0; u64::MAX needs ~2,200 buckets, well inside u16.
    let index = ((value as f64).ln() / gamma().ln()).ceil();
    index.clamp(0.0, f64::from(u16::MAX)) as u16
}

/// The value reported for a bucket: the point of least relative error.
fn bucket_value(index: u16) -> f64 {
    let g = gamma();
    2.0 * g.powi(i32::from(index)) / (g + 1.0)
}

impl VolumeSketch {
    /// An empty sketch.
    pub fn new() -> VolumeSketch {
        VolumeSketch::default()
    }

    /// Adds one value.
    pub fn insert(&mut self, value: u64) {
        self.insert_n(value, 1);
    }

    /// Adds `n` copies of a value (rollups carry a mean for several windows).
    pub fn insert_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count = self.count.saturating_add(n);
        self.sum = self.sum.saturating_add(u128::from(value) * u128::from(n));
        if let Repr::Exact(values) = &mut self.repr {
            let fits = usize::try_from(n)
                .ok()
                .and_then(|n| values.len().checked_add(n))
                .is_some_and(|len| len <= EXACT_CAPACITY);
            if fits {
                values.extend(std::iter::repeat_n(value, n as usize));
                return;
            }
            let mut zeros = 0;
            let mut counts = BTreeMap::new();
            for &v in values.iter() {
                add_to_buckets(&mut zeros, &mut counts, v, 1);
            }
            self.repr = Repr::Buckets { zeros, counts };
        }
        if let Repr::Buckets { zeros, counts } = &mut self.repr {
            add_to_buckets(zeros, counts, value, n);
        }
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact mean, if any value was added.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The exact maximum.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The exact minimum.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Whether quantiles are still exact.
    pub fn is_exact(&self) -> bool {
        matches!(self.repr, Repr::Exact(_))
    }

    /// The `q`-quantile by nearest rank: the value at rank `⌈q·n⌉`, at least
    /// 1, of the sorted series. Exact while [`VolumeSketch::is_exact`], within
    /// [`RELATIVE_ACCURACY`] after, and never outside `[min, max]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        match &self.repr {
            Repr::Exact(values) => {
                let mut sorted = values.clone();
                sorted.sort_unstable();
                let index = usize::try_from(rank - 1).ok()?;
                sorted.get(index).map(|&v| v as f64)
            }
            Repr::Buckets { zeros, counts } => {
                if rank <= *zeros {
                    return Some(0.0);
                }
                let mut seen = *zeros;
                for (&index, &n) in counts {
                    seen = seen.saturating_add(n);
                    if seen >= rank {
                        let v = bucket_value(index);
                        return Some(v.clamp(self.min as f64, self.max as f64));
                    }
                }
                Some(self.max as f64)
            }
        }
    }

    /// Heap bytes the sketch holds (for the memory accounting the benches
    /// report).
    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Exact(values) => values.capacity() * size_of::<u64>(),
            // A BTreeMap leaf holds up to 11 entries in a node of about
            // 11 × (2 + 8) bytes plus header; count per entry generously.
            Repr::Buckets { counts, .. } => counts.len() * 24,
        }
    }
}

fn add_to_buckets(zeros: &mut u64, counts: &mut BTreeMap<u16, u64>, value: u64, n: u64) {
    if value == 0 {
        *zeros = zeros.saturating_add(n);
    } else {
        let slot = counts.entry(bucket_of(value)).or_insert(0);
        *slot = slot.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_series_quantiles_are_exact() {
        let mut sketch = VolumeSketch::new();
        for v in [5, 1, 9, 3, 7, 2, 8, 4, 6, 10] {
            sketch.insert(v);
        }
        assert!(sketch.is_exact());
        assert_eq!(sketch.quantile(0.95), Some(10.0));
        assert_eq!(sketch.quantile(0.5), Some(5.0));
        assert_eq!(sketch.quantile(0.1), Some(1.0));
        assert_eq!(sketch.quantile(0.0), Some(1.0));
        assert_eq!(sketch.quantile(1.0), Some(10.0));
        assert_eq!(sketch.mean(), Some(5.5));
        assert_eq!(sketch.max(), Some(10));
        assert_eq!(sketch.quantile(1.5), None);
        assert_eq!(VolumeSketch::new().quantile(0.5), None);
    }

    #[test]
    fn large_series_stays_within_relative_accuracy() {
        let mut sketch = VolumeSketch::new();
        for v in 1..=10_000u64 {
            sketch.insert(v * 37);
        }
        assert!(!sketch.is_exact());
        for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let rank = ((q * 10_000.0_f64).ceil() as u64).max(1);
            let truth = (rank * 37) as f64;
            let got = sketch.quantile(q).unwrap();
            assert!(
                (got - truth).abs() <= truth * RELATIVE_ACCURACY + 1e-9,
                "q={q}: {got} vs {truth}"
            );
        }
        assert_eq!(sketch.max(), Some(370_000));
        assert_eq!(sketch.mean(), Some(37.0 * 5000.5));
    }

    #[test]
    fn zeros_and_weights_count() {
        let mut sketch = VolumeSketch::new();
        sketch.insert_n(0, 50);
        sketch.insert_n(1000, 50);
        assert!(!sketch.is_exact());
        assert_eq!(sketch.quantile(0.5), Some(0.0));
        let p95 = sketch.quantile(0.95).unwrap();
        assert!((p95 - 1000.0).abs() <= 10.0, "{p95}");
        assert_eq!(sketch.count(), 100);
        assert_eq!(sketch.mean(), Some(500.0));
    }
}
