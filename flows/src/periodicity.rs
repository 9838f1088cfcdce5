//! Finding jobs that recur: a backup every day at 02:00, a beacon every
//! 300 s.
//!
//! The input is a flow key's *onsets*: the instants it starts talking after
//! a pause of at least the burst gap (a connection that follows another within
//! the gap is the same burst). The detector keeps the last [`RING`] onsets
//! and, for a candidate period `P`:
//!
//! 1. **Candidates** come from the inter-arrival histogram: the gaps between
//!    consecutive onsets, sorted and grouped where each is within 5 % of the
//!    group's first; each group's median is a candidate. A job that skipped
//!    runs shows gaps of 2P, 3P; those are candidates too, and lose below.
//! 2. **Whole-period gaps**: a gap *matches* `P` when it is within the
//!    jitter (10 % of P, at least 2 s) of `k·P` for `k` = 1 to 4 (up to
//!    three skipped runs). The period is refined as the matching gaps' total
//!    over the periods they span (twice), so it comes from the whole ring,
//!    not one gap.
//! 3. **Score** = regularity × coverage, where regularity = matching gaps /
//!    all gaps (punishes a multiple of the true period: the gaps of one true
//!    period do not match it) and coverage = matching gaps / periods they
//!    span (punishes a divisor: its gaps span two periods each). The best
//!    candidate wins, ties to the shorter period; it is reported when at
//!    least [`MIN_CYCLES`] gaps match and the score (the confidence) is at
//!    least [`MIN_CONFIDENCE`]. Gaps are compared one by one, so a job whose
//!    timer restarts (its phase moves) loses one gap, not its period.
//!
//! 4. **Integer-cycle fit** of the latest regime: the onsets joined by the
//!    trailing run of matching gaps get cycle numbers, and a least-squares
//!    line through (cycle, time) gives the reported period (to a fraction of
//!    the jitter) and the fitted time of the latest run, the *anchor*.
//!
//! The phase is the anchor's place in the period. It is given in seconds after the
//! epoch's multiples of the period, or of the wall-clock period the job runs
//! on ([`calendar_period`]): 7,200 for a daily job at 02:00 UTC. The anchor
//! plus the period is the next expected run, which is what the predictor
//! wants.
//!
//! Cost: with `n` ≤ [`RING`] onsets there are at most `n − 1` candidates of
//! `O(n)` each, a few thousand operations, run only when an onset arrives
//! that the current fit does not predict, or every [`REFIT_EVERY`] onsets;
//! a predicted onset costs a comparison.

/// Onsets kept per flow key.
pub const RING: usize = 16;

/// Matching gaps needed before a period is reported.
pub const MIN_CYCLES: u32 = 4;

/// Score needed before a period is reported.
pub const MIN_CONFIDENCE: f64 = 0.6;

/// A predicted onset refreshes the fit only every this many onsets.
pub const REFIT_EVERY: u8 = 8;

/// Shortest period considered, in seconds.
pub const MIN_PERIOD_S: f64 = 2.0;

/// Relative tolerance of the grouping of inter-arrival gaps into candidate
/// periods.
pub const TOLERANCE: f64 = 0.05;

/// Relative tolerance of an onset around its fitted cycle: a run up to 10 %
/// of the period early or late still counts as that run.
pub const JITTER: f64 = 0.10;

/// A detected recurrence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Seconds between runs.
    pub period_s: f64,
    /// The fitted time of the latest run, Unix seconds.
    pub anchor_s: f64,
    /// The score of the fit, 0–1.
    pub confidence: f64,
    /// Gaps between onsets that matched whole periods.
    pub cycles: u32,
}

impl Fit {
    /// Where in the period runs happen: seconds after each multiple of the
    /// period counted from the Unix epoch. For a job on a wall-clock period
    /// ([`calendar_period`]) the multiples are of that period, so a daily job
    /// at 02:00 UTC has phase 7,200 even when the fit says 86,401 s (taken
    /// modulo the fitted period, the error of a second would be multiplied by
    /// the twenty thousand days since 1970).
    pub fn phase_s(&self) -> f64 {
        let reference = calendar_period(self.period_s).unwrap_or(self.period_s);
        self.anchor_s.rem_euclid(reference)
    }

    /// When the next run is due, Unix seconds.
    pub fn next_expected_s(&self) -> f64 {
        self.anchor_s + self.period_s
    }

    /// Whether an onset at `t` falls on a cycle of this fit.
    pub fn predicts(&self, t: f64) -> bool {
        let cycles = ((t - self.anchor_s) / self.period_s).round();
        let residual = t - (self.anchor_s + cycles * self.period_s);
        cycles >= 0.0 && residual.abs() <= tolerance(self.period_s)
    }
}

fn tolerance(period_s: f64) -> f64 {
    (period_s * JITTER).max(2.0)
}

/// Seconds in a day and a week.
const DAY_S: f64 = 86_400.0;
const WEEK_S: f64 = 604_800.0;

/// The wall-clock period a fitted period stands for, if it is one: jobs of
/// an hour or more that run within 1 % of a divisor of a day (hourly, every
/// six hours, daily) or of a week are cron jobs, and their phase means a time
/// of day. Shorter periods are timers that drift, and keep their own.
pub fn calendar_period(period_s: f64) -> Option<f64> {
    if period_s < 3600.0 * 0.99 {
        return None;
    }
    if (period_s - WEEK_S).abs() <= WEEK_S * 0.01 {
        return Some(WEEK_S);
    }
    let divisions = (DAY_S / period_s).round().max(1.0);
    let calendar = DAY_S / divisions;
    let whole_seconds = calendar.fract() == 0.0;
    ((period_s - calendar).abs() <= calendar * 0.01 && whole_seconds).then_some(calendar)
}

/// Finds the recurrence in sorted onset times (Unix seconds), if there is
/// one. Onsets out of order or repeated are tolerated (they simply fit
/// worse).
pub fn detect(onsets: &[i64]) -> Option<Fit> {
    if onsets.len() < MIN_CYCLES as usize + 1 {
        return None;
    }
    let gaps: Vec<f64> = onsets
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(b.saturating_sub(*a) as f64),
            _ => None,
        })
        .collect();
    let mut sorted: Vec<f64> = gaps
        .iter()
        .copied()
        .filter(|&g| g >= MIN_PERIOD_S)
        .collect();
    sorted.sort_by(f64::total_cmp);

    let mut best: Option<Fit> = None;
    let mut start = 0;
    while start < sorted.len() {
        let first = sorted.get(start).copied().unwrap_or_default();
        let end = sorted
            .iter()
            .skip(start)
            .position(|&g| g > first * (1.0 + TOLERANCE))
            .map_or(sorted.len(), |p| start + p);
        let group = sorted.get(start..end).unwrap_or_default();
        let median = group.get(group.len() / 2).copied().unwrap_or(first);
        start = end.max(start + 1);
        let Some(fit) = fit_period(onsets, &gaps, median) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => {
                fit.confidence > b.confidence + 1e-9
                    || ((fit.confidence - b.confidence).abs() <= 1e-9 && fit.period_s < b.period_s)
            }
        };
        if better {
            best = Some(fit);
        }
    }
    best.filter(|f| f.cycles >= MIN_CYCLES && f.confidence >= MIN_CONFIDENCE)
}

/// Runs a job may skip between two onsets and still be the same job.
pub const MAX_SKIPPED: f64 = 3.0;

/// How many periods `gap` spans, if it is within the jitter of a whole
/// number (1 to [`MAX_SKIPPED`] + 1) of them.
fn whole_periods(gap: f64, period: f64) -> Option<f64> {
    let k = (gap / period).round();
    ((1.0..=MAX_SKIPPED + 1.0).contains(&k) && (gap - k * period).abs() <= tolerance(period))
        .then_some(k)
}

/// The fit of `onsets` (with their `gaps`) around `candidate`, and its
/// score.
fn fit_period(onsets: &[i64], gaps: &[f64], candidate: f64) -> Option<Fit> {
    // Refine: the period is the matching gaps' total over the periods they
    // span, twice (the second pass with the refined period).
    let mut period = candidate;
    for _ in 0..2 {
        let (mut total, mut periods) = (0.0, 0.0);
        for &gap in gaps {
            if let Some(k) = whole_periods(gap, period) {
                total += gap;
                periods += k;
            }
        }
        if periods < 1.0 {
            return None;
        }
        period = total / periods;
    }
    if period < MIN_PERIOD_S {
        return None;
    }
    let (mut matching, mut spanned) = (0.0, 0.0);
    for &gap in gaps {
        if let Some(k) = whole_periods(gap, period) {
            matching += 1.0;
            spanned += k;
        }
    }
    if matching < 1.0 {
        return None;
    }
    let regularity = matching / gaps.len() as f64;
    let coverage = matching / spanned;

    // The latest regime: the onsets joined by the trailing run of matching
    // gaps (a job whose timer restarted has a new phase from then on), with
    // their cycle numbers counted back from the last. A least-squares line
    // through them gives the period to a fraction of the jitter and the
    // fitted time of the latest run.
    let last = *onsets.last()? as f64;
    let mut regime: Vec<(f64, f64)> = vec![(0.0, last)];
    let mut cycles_back = 0.0;
    for (i, &gap) in gaps.iter().enumerate().rev() {
        let Some(k) = whole_periods(gap, period) else {
            break;
        };
        cycles_back += k;
        let Some(&earlier) = onsets.get(i) else {
            break;
        };
        regime.push((-cycles_back, earlier as f64));
    }
    let (period, anchor) = match least_squares(&regime) {
        Some((slope, intercept)) if regime.len() >= 3 && slope >= MIN_PERIOD_S => {
            (slope, intercept)
        }
        _ => (period, last),
    };
    Some(Fit {
        period_s: period,
        anchor_s: anchor,
        confidence: (regularity * coverage).clamp(0.0, 1.0),
        cycles: matching as u32,
    })
}

/// Slope and intercept of the least-squares line through `(x, y)` points.
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((slope, mean_y - slope * mean_x))
}

/// The per-key state: the last onsets, relative to a base the owner keeps
/// (the key's first sighting), and the current fit, packed to 96 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnsetRing {
    /// Onsets as seconds after the base, oldest first from `head`.
    onsets: [u32; RING],
    len: u8,
    head: u8,
    since_fit: u8,
    /// Period in milliseconds; 0 when nothing is detected.
    period_ms: u32,
    /// Fitted latest run, seconds after the base.
    anchor_s: u32,
    /// Confidence × 65,535.
    confidence: u16,
    cycles: u8,
}

impl OnsetRing {
    /// Records an onset `offset_s` seconds after the base and refits when
    /// the current fit does not predict it (or periodically).
    pub fn push(&mut self, base_s: i64, offset_s: u32) {
        let index = (usize::from(self.head) + usize::from(self.len)) % RING;
        if usize::from(self.len) < RING {
            self.len += 1;
        } else {
            self.head = ((usize::from(self.head) + 1) % RING) as u8;
        }
        if let Some(slot) = self.onsets.get_mut(index) {
            *slot = offset_s;
        }
        self.since_fit = self.since_fit.saturating_add(1);
        let predicted = self
            .fit(base_s)
            .is_some_and(|fit| fit.predicts(base_s as f64 + f64::from(offset_s)));
        if predicted && self.since_fit < REFIT_EVERY {
            // Keep the period; move the anchor to this run.
            let fit = self.fit(base_s);
            if let Some(fit) = fit {
                let cycles =
                    ((base_s as f64 + f64::from(offset_s) - fit.anchor_s) / fit.period_s).round();
                let anchor = fit.anchor_s + cycles * fit.period_s - base_s as f64;
                self.anchor_s = anchor.clamp(0.0, f64::from(u32::MAX)) as u32;
                self.cycles = self.cycles.saturating_add(1).min(RING as u8);
            }
            return;
        }
        self.refit(base_s);
    }

    fn refit(&mut self, base_s: i64) {
        self.since_fit = 0;
        let onsets = self.onsets_abs(base_s);
        match detect(&onsets) {
            Some(fit) => {
                self.period_ms = (fit.period_s * 1000.0).clamp(1.0, f64::from(u32::MAX)) as u32;
                self.anchor_s =
                    (fit.anchor_s - base_s as f64).clamp(0.0, f64::from(u32::MAX)) as u32;
                self.confidence = (fit.confidence * 65535.0).round() as u16;
                self.cycles = u8::try_from(fit.cycles).unwrap_or(u8::MAX);
            }
            None => {
                self.period_ms = 0;
                self.confidence = 0;
                self.cycles = 0;
            }
        }
    }

    /// The onsets kept, as Unix seconds, oldest first.
    pub fn onsets_abs(&self, base_s: i64) -> Vec<i64> {
        (0..usize::from(self.len))
            .filter_map(|i| self.onsets.get((usize::from(self.head) + i) % RING))
            .map(|&offset| base_s.saturating_add(i64::from(offset)))
            .collect()
    }

    /// How many onsets are kept.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether no onset was seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The current fit, if a period is detected.
    pub fn fit(&self, base_s: i64) -> Option<Fit> {
        (self.period_ms > 0).then(|| Fit {
            period_s: f64::from(self.period_ms) / 1000.0,
            anchor_s: base_s as f64 + f64::from(self.anchor_s),
            confidence: f64::from(self.confidence) / 65535.0,
            cycles: u32::from(self.cycles),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator, so the tests need no crate and always
    /// see the same jitter.
    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*state >> 33) as f64) / f64::from(1u32 << 31)
    }

    #[test]
    fn a_clean_300_s_job_is_found() {
        let onsets: Vec<i64> = (0..16).map(|k| 1_000_000 + 300 * k).collect();
        let fit = detect(&onsets).unwrap();
        assert!((fit.period_s - 300.0).abs() < 0.01, "{fit:?}");
        assert!(fit.confidence > 0.99, "{fit:?}");
        assert_eq!(fit.cycles, 15);
        assert!((fit.phase_s() - (1_000_000.0_f64 % 300.0)).abs() < 0.01);
    }

    #[test]
    fn jitter_and_missed_runs_keep_the_period() {
        let mut rng = 7;
        let mut onsets = Vec::new();
        for k in 0..40i64 {
            if k % 7 == 3 {
                continue; // missed run
            }
            let jitter = (lcg(&mut rng) - 0.5) * 10.0;
            onsets.push(1_650_000_000 + 301 * k + jitter as i64);
        }
        let tail = &onsets[onsets.len() - RING..];
        let fit = detect(tail).unwrap();
        assert!((fit.period_s - 301.0).abs() / 301.0 < 0.05, "{fit:?}");
        assert!((fit.period_s - 301.0).abs() < 2.0, "{fit:?}");
    }

    #[test]
    fn random_onsets_are_not_periodic() {
        let mut rng = 11;
        let mut t = 1_600_000_000i64;
        let mut onsets = Vec::new();
        for _ in 0..16 {
            t += 30 + (lcg(&mut rng) * 3000.0) as i64;
            onsets.push(t);
        }
        assert_eq!(detect(&onsets), None);
    }

    #[test]
    fn too_few_onsets_say_nothing() {
        assert_eq!(detect(&[0, 300, 600, 900]), None);
        assert_eq!(detect(&[]), None);
    }

    #[test]
    fn the_ring_tracks_a_job_and_forgets_the_oldest() {
        let base = 1_700_000_000;
        let mut ring = OnsetRing::default();
        for k in 0..50u32 {
            ring.push(base, 900 * k);
        }
        assert_eq!(ring.len(), RING);
        let onsets = ring.onsets_abs(base);
        assert_eq!(onsets.first(), Some(&(base + 900 * 34)));
        let fit = ring.fit(base).unwrap();
        assert!((fit.period_s - 900.0).abs() < 0.01, "{fit:?}");
        assert!(
            (fit.anchor_s - (base + 900 * 49) as f64).abs() < 1.0,
            "{fit:?}"
        );
    }

    #[test]
    fn calendar_periods_are_recognised() {
        assert_eq!(calendar_period(86_401.5), Some(86_400.0));
        assert_eq!(calendar_period(3601.0), Some(3600.0));
        assert_eq!(calendar_period(21_500.0), Some(21_600.0));
        assert_eq!(calendar_period(604_000.0), Some(604_800.0));
        assert_eq!(calendar_period(301.2), None);
        assert_eq!(calendar_period(5000.0), None);
    }

    #[test]
    fn ring_state_is_small() {
        assert!(size_of::<OnsetRing>() <= 96, "{}", size_of::<OnsetRing>());
    }
}
