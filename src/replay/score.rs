//! What replay measures, per strategy.
//!
//! - A **new flow** is a connection (one trace record) of a flow key — source,
//!   destination, protocol, service port — with no connection of that key in
//!   the [`episode gap`](super::ReplaySettings::episode_gap_s) before it; its
//!   **first packet** is the record's timestamp (a Zeek `conn.log` or flow
//!   record starts at the connection's first packet). Only new flows after
//!   the learning period are scored.
//! - **Coverage**: the share of benign new flows allowed at their first
//!   packet. **Time to allowance** of a benign new flow: 0 if it was allowed
//!   at once, else the time from its first packet to the key's first allowed
//!   connection after it (what its client experiences); flows never allowed
//!   count as never, and the median is taken over all.
//! - **Exposure**: for every opening (a rule, or a key a baseline allowed),
//!   the hours it was open during enforcement minus the distinct clock
//!   hours in which it let traffic through: rule-hours open without use.
//! - **Attack flows opened automatically**: attack connections after the
//!   learning period let through by an opening no human approved.
//! - **Attack flows reaching review**: attack flow keys that a high-risk
//!   recommendation put in front of a human.
//! - **Review load**: distinct high-risk recommendations per day of
//!   enforcement.

use serde::Serialize;

use crate::predict::QualityReport;

/// An opening, by its index in [`Openings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpeningId(pub usize);

/// Who opened something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// A strategy, with no human involved.
    Automatic,
    /// A human: the static policy's author, or an approver.
    Human,
}

#[derive(Debug, Clone)]
struct Opening {
    opened: i64,
    /// When it closes (removed, or expired); `None` while open.
    closed: Option<i64>,
    decider: Decider,
    /// Distinct clock hours with traffic through it during enforcement.
    used_hours: u64,
    last_used_hour: Option<i64>,
}

/// Every opening a strategy made, for exposure.
#[derive(Debug, Clone, Default)]
pub struct Openings {
    items: Vec<Opening>,
}

impl Openings {
    /// Records an opening at `at` (closing by itself at `expires`).
    pub fn open(&mut self, at: i64, expires: Option<i64>, decider: Decider) -> OpeningId {
        self.items.push(Opening {
            opened: at,
            closed: expires,
            decider,
            used_hours: 0,
            last_used_hour: None,
        });
        OpeningId(self.items.len() - 1)
    }

    /// Closes an opening at `at` (if it is not closed earlier already).
    pub fn close(&mut self, id: OpeningId, at: i64) {
        if let Some(item) = self.items.get_mut(id.0) {
            item.closed = Some(item.closed.map_or(at, |c| c.min(at)));
        }
    }

    /// Who decided an opening.
    pub fn decider(&self, id: OpeningId) -> Option<Decider> {
        self.items.get(id.0).map(|o| o.decider)
    }

    /// Notes traffic through an opening at `at` (times come in order).
    pub fn used(&mut self, id: OpeningId, at: i64) {
        if let Some(item) = self.items.get_mut(id.0) {
            let hour = at.div_euclid(3600);
            if item.last_used_hour != Some(hour) {
                item.last_used_hour = Some(hour);
                item.used_hours += 1;
            }
        }
    }

    /// Number of openings made.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none was made.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Rule-hours open without use within `[from, until)`, not counting the
    /// gaps the trace did not record.
    pub fn exposure_hours(&self, from: i64, until: i64, unobserved: &[(i64, i64)]) -> f64 {
        self.items
            .iter()
            .map(|o| {
                let start = o.opened.max(from);
                let end = o.closed.unwrap_or(until).min(until);
                let open_s = (end - start).max(0) - overlap(unobserved, start, end);
                let used_s = i64::try_from(o.used_hours)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(3600);
                open_s.saturating_sub(used_s).max(0)
            })
            // In whole seconds: exact, so the openings' order (a hash
            // map's, which changes from run to run) cannot change the sum.
            .fold(0i64, i64::saturating_add) as f64
            / 3600.0
    }
}

/// Seconds of `[from, until)` inside the `gaps` (disjoint intervals).
pub fn overlap(gaps: &[(i64, i64)], from: i64, until: i64) -> i64 {
    gaps.iter()
        .map(|&(a, b)| (b.min(until) - a.max(from)).max(0))
        .sum()
}

/// One strategy's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scorecard {
    /// The strategy.
    pub strategy: String,
    /// Benign new flows after learning.
    pub benign_new_flows: u64,
    /// Of which allowed at their first packet.
    pub covered_at_first_packet: u64,
    /// `covered_at_first_packet / benign_new_flows`.
    pub coverage: f64,
    /// Median seconds from a benign new flow's first packet to its
    /// allowance; `None` when more than half were never allowed.
    pub median_time_to_allow_s: Option<f64>,
    /// Benign new flows never allowed by the end of the trace.
    pub never_allowed: u64,
    /// Rule-hours open without use.
    pub exposure_rule_hours: f64,
    /// Openings made (rules or keys).
    pub openings: u64,
    /// Attack connections let through by an automatic opening.
    pub attack_flows_opened_automatically: u64,
    /// Distinct attack flow keys let through by an automatic opening.
    pub attack_keys_opened_automatically: u64,
    /// Attack flow keys a high-risk recommendation put up for review.
    pub attack_keys_reached_review: u64,
    /// Distinct high-risk recommendations per day of enforcement.
    pub reviews_per_day: f64,
    /// Predictor quality over the enforced period (augur only).
    pub predictor: Option<QualityReport>,
}

/// The median of delays where `None` is "never" (larger than any).
pub fn median_delay(delays: &mut [Option<i64>]) -> Option<f64> {
    if delays.is_empty() {
        return None;
    }
    delays.sort_by(|a, b| match (a, b) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let n = delays.len();
    let at = |i: usize| delays.get(i).copied().flatten();
    if n % 2 == 1 {
        at(n / 2).map(|d| d as f64)
    } else {
        Some((at(n / 2 - 1)? as f64 + at(n / 2)? as f64) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_counts_open_hours_without_use() {
        let mut openings = Openings::default();
        let a = openings.open(0, None, Decider::Automatic);
        openings.used(a, 100);
        openings.used(a, 200); // same hour
        openings.used(a, 7300); // hour 2
        let b = openings.open(3600, Some(3 * 3600), Decider::Human);
        let c = openings.open(0, None, Decider::Automatic);
        openings.close(c, 1800);
        // a: 10 h open, 2 used; b: 2 h; c: 0.5 h.
        assert!((openings.exposure_hours(0, 36_000, &[]) - 10.5).abs() < 1e-9);
        // A gap of 4 h in the recording: a loses 4 open hours, b 1, c none.
        let gaps = [(2 * 3600, 6 * 3600)];
        assert!((openings.exposure_hours(0, 36_000, &gaps) - 5.5).abs() < 1e-9);
        assert_eq!(openings.decider(b), Some(Decider::Human));
    }

    #[test]
    fn median_treats_never_as_largest() {
        assert_eq!(median_delay(&mut [Some(0), None, Some(10)]), Some(10.0));
        assert_eq!(median_delay(&mut [None, None, Some(10)]), None);
        assert_eq!(median_delay(&mut [Some(0), Some(4)]), Some(2.0));
    }
}
