//! Learning from the stored history: the live state and a predictor trained
//! on the history as it unfolded, for a controller that starts (or a command
//! that asks) with a history but no model.

use augur_flows::{Aggregator, Verdict};

use super::Store;
use crate::predict::{CheckedPredictorParams, Predictor, ScanDetector, ScanParams};

/// What [`learn_history`] builds.
#[derive(Debug)]
pub struct Learned {
    /// Signatures and per-key state of the whole history.
    pub aggregator: Aggregator,
    /// Scanners found in it.
    pub scans: ScanDetector,
    /// The predictor, trained prequentially over it.
    pub predictor: Predictor,
    /// Prediction cycles run.
    pub cycles: u64,
    /// The gaps in the watching that were not learned from (see
    /// [`Store::unobserved`]).
    pub unobserved: Vec<(i64, i64)>,
}

/// Folds the stored rows in time order into a fresh aggregator, running a
/// prediction cycle every `cycle_s` seconds of history so that the predictor
/// learns exactly as it would have live (each cycle sees only the rows
/// before it).
///
/// While augur was not running nobody watched: no cycle runs then, and no
/// sample whose horizon reaches into that time is learned from, so that a
/// day of downtime does not teach the model that nothing was used. Gaps up
/// to two windows long (a restart) do not count.
pub fn learn_history(
    store: &Store,
    params: CheckedPredictorParams,
    scan: ScanParams,
    cycle_s: i64,
) -> anyhow::Result<Learned> {
    let cycle_s = cycle_s.max(1);
    let mut aggregator = Aggregator::new(store.settings().window);
    aggregator.set_keep_closed(false);
    let mut scans = ScanDetector::new(scan);
    let mut predictor = Predictor::new(params);
    let mut next_cycle: Option<i64> = None;
    let mut cycles = 0u64;
    let unobserved = store.unobserved(2 * i64::from(store.settings().window.length_s))?;
    let mut gaps = unobserved.iter().copied().peekable();
    store.replay_chunks(&mut aggregator, |aggregator, rows| {
        for row in rows {
            let at = next_cycle.get_or_insert(row.start_s.div_euclid(cycle_s) * cycle_s + cycle_s);
            while *at <= row.start_s {
                if let Some((from, to)) = gaps.next_if(|&(from, _)| from < *at) {
                    predictor.unobserved(from, to);
                    // The last cycle before the watching resumed runs.
                    *at = (*at).max(to.div_euclid(cycle_s) * cycle_s);
                    continue;
                }
                scans.expire(*at);
                let _ = predictor.cycle(aggregator, &scans, *at);
                cycles += 1;
                *at += cycle_s;
            }
            let novel = aggregator.activity_of(&row.key).is_none();
            let verdict = if row.active_windows == 0 && row.denied > 0 {
                Verdict::Denied
            } else {
                Verdict::Allowed
            };
            let ts = row.start_s.saturating_add(i64::from(row.first_offset_s));
            let outside = crate::predict::OutsideSide::of(aggregator.endpoints(), &row.key);
            scans.observe_with(&row.key, ts, row.bytes, verdict, novel, outside);
            aggregator.apply_rows(std::slice::from_ref(row));
        }
    })?;
    // Up to this run's start (the last gap) and any after the last row.
    for (from, to) in gaps {
        predictor.unobserved(from, to);
    }
    Ok(Learned {
        aggregator,
        scans,
        predictor,
        cycles,
        unobserved,
    })
}
