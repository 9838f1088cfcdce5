//! Per-window deltas of flow counters.
//!
//! The switch reports cumulative packet and byte counts per flow. A flow is
//! identified by what OpenFlow itself uses to tell flows apart (table,
//! priority, match) plus its cookie, since a new policy version reinstalls a
//! flow with the same match under a new cookie and its counters start again.
//!
//! Counters restart when a flow is deleted and added again between two polls
//! (a reinstall, a hard timeout and re-add): the switch then reports a lower
//! count or a shorter age than last time. The new count is then the delta, as
//! everything it holds happened since the previous poll. Traffic the old flow
//! carried between the previous poll and its removal is lost; with a poll
//! interval well under the flow's lifetime that is a small part.
//!
//! Flows that report their end (counting flows, with `SEND_FLOW_REM`) are
//! tracked with a grace of a few polls ([`CounterTracker::with_grace`]):
//! the FLOW_REMOVED may be handled after a poll that no longer lists the
//! flow, and [`CounterTracker::finish`] must still know what the polls
//! already reported so that only the remainder is added.

use std::collections::HashMap;

use augur_openflow::Match;
use augur_openflow::multipart::FlowStats;

use crate::policy::Cookie;

/// What tells one flow from another across polls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowIdentity {
    /// The flow's cookie.
    pub cookie: u64,
    /// Its table.
    pub table_id: u8,
    /// Its priority.
    pub priority: u16,
    /// Its match as the switch reports it.
    pub match_: Match,
}

impl FlowIdentity {
    /// The identity of a reported flow.
    pub fn of(stats: &FlowStats) -> FlowIdentity {
        FlowIdentity {
            cookie: stats.cookie,
            table_id: stats.table_id,
            priority: stats.priority,
            match_: stats.match_.clone(),
        }
    }
}

/// Traffic one flow carried since the previous poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    /// The flow.
    pub flow: FlowIdentity,
    /// Packets since the previous poll.
    pub packets: u64,
    /// Bytes since the previous poll.
    pub bytes: u64,
    /// Whether the counters restarted (the flow was reinstalled).
    pub restarted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    packets: u64,
    bytes: u64,
    /// Age in nanoseconds, to notice a reinstall whose new counts happen to
    /// exceed the old ones.
    age_ns: u128,
    /// The poll that last saw the flow.
    seen: u64,
}

/// What one poll changed, besides the deltas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Flows of augur's seen in this poll.
    pub flows: usize,
    /// Flows seen for the first time (their whole count is the delta).
    pub new_flows: usize,
    /// Flows whose counters restarted.
    pub restarted: usize,
    /// Flows seen last poll and gone now (removed or expired).
    pub vanished: usize,
    /// Flows skipped because their cookie is not augur's.
    pub foreign: usize,
}

/// Remembers each flow's last counters and turns successive polls into
/// deltas. Pure: the caller does the polling.
#[derive(Debug, Default)]
pub struct CounterTracker {
    last: HashMap<FlowIdentity, Last>,
    poll: u64,
    /// Polls a vanished flow's last counters are kept for [`Self::finish`].
    grace: u64,
}

impl CounterTracker {
    /// An empty tracker: the first poll reports each flow's whole count.
    pub fn new() -> CounterTracker {
        CounterTracker::default()
    }

    /// An empty tracker that keeps a vanished flow's last counters for
    /// `grace` more polls, for a FLOW_REMOVED that arrives after the poll
    /// that missed the flow ([`CounterTracker::finish`]).
    pub fn with_grace(grace: u64) -> CounterTracker {
        CounterTracker {
            grace,
            ..CounterTracker::default()
        }
    }

    /// The part of a removed flow's final counters that no poll reported
    /// yet, as `(packets, bytes)`, and forgets the flow. A flow no poll saw
    /// (or that restarted since) gives its whole count.
    pub fn finish(&mut self, flow: &FlowIdentity, packets: u64, bytes: u64) -> (u64, u64) {
        match self.last.remove(flow) {
            Some(prev) if packets >= prev.packets && bytes >= prev.bytes => {
                (packets - prev.packets, bytes - prev.bytes)
            }
            _ => (packets, bytes),
        }
    }

    /// Flows currently remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether no flow is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// Takes one complete poll (every reply part of one FLOW multipart
    /// request) and returns the flows that carried traffic since the previous
    /// one. Flows whose cookie is not augur's are skipped. Flows missing from
    /// this poll are forgotten (after the grace, if any): if they come back,
    /// they are new flows, or restarted ones within the grace.
    pub fn update<'a>(
        &mut self,
        flows: impl IntoIterator<Item = &'a FlowStats>,
    ) -> (Vec<CounterDelta>, PollSummary) {
        self.poll = self.poll.wrapping_add(1);
        let poll = self.poll;
        let mut summary = PollSummary::default();
        let mut deltas = Vec::new();
        for stats in flows {
            if !Cookie::is_augur(stats.cookie) {
                summary.foreign += 1;
                continue;
            }
            summary.flows += 1;
            let age_ns =
                u128::from(stats.duration_sec) * 1_000_000_000 + u128::from(stats.duration_nsec);
            let now = Last {
                packets: stats.packet_count,
                bytes: stats.byte_count,
                age_ns,
                seen: poll,
            };
            let identity = FlowIdentity::of(stats);
            let (packets, bytes, restarted) = match self.last.get(&identity) {
                // A flow listed twice in one poll (a switch bug): count it once.
                Some(prev) if prev.seen == poll => continue,
                // Gone for a poll and back: a flow added again.
                Some(prev) if prev.seen != poll.wrapping_sub(1) => {
                    summary.restarted += 1;
                    (now.packets, now.bytes, true)
                }
                Some(prev) => {
                    let restarted = now.packets < prev.packets
                        || now.bytes < prev.bytes
                        || now.age_ns < prev.age_ns;
                    if restarted {
                        summary.restarted += 1;
                        (now.packets, now.bytes, true)
                    } else {
                        (now.packets - prev.packets, now.bytes - prev.bytes, false)
                    }
                }
                None => {
                    summary.new_flows += 1;
                    (now.packets, now.bytes, false)
                }
            };
            if packets > 0 || bytes > 0 {
                deltas.push(CounterDelta {
                    flow: identity.clone(),
                    packets,
                    bytes,
                    restarted,
                });
            }
            self.last.insert(identity, now);
        }
        let previous = poll.wrapping_sub(1);
        summary.vanished = self.last.values().filter(|l| l.seen == previous).count();
        let grace = self.grace;
        self.last
            .retain(|_, last| poll.wrapping_sub(last.seen) <= grace);
        (deltas, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_openflow::FlowModFlags;

    const RULE: u64 = 0x6175_0001_0000_0000;

    fn stats(cookie: u64, prio: u16, secs: u32, packets: u64, bytes: u64) -> FlowStats {
        FlowStats {
            table_id: 5,
            duration_sec: secs,
            duration_nsec: 0,
            priority: prio,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: FlowModFlags::empty(),
            importance: 0,
            cookie,
            packet_count: packets,
            byte_count: bytes,
            match_: Match::new().eth_type(0x0800),
            instructions: Vec::new(),
        }
    }

    fn deltas(tracker: &mut CounterTracker, polls: &[FlowStats]) -> Vec<(u16, u64, u64, bool)> {
        let (d, _) = tracker.update(polls);
        d.into_iter()
            .map(|d| (d.flow.priority, d.packets, d.bytes, d.restarted))
            .collect()
    }

    #[test]
    fn successive_polls_give_differences() {
        let mut t = CounterTracker::new();
        assert_eq!(
            deltas(&mut t, &[stats(RULE, 1, 10, 5, 500)]),
            [(1, 5, 500, false)]
        );
        assert_eq!(
            deltas(&mut t, &[stats(RULE, 1, 20, 8, 800)]),
            [(1, 3, 300, false)]
        );
        // Nothing new: no delta at all.
        assert_eq!(deltas(&mut t, &[stats(RULE, 1, 30, 8, 800)]), []);
    }

    #[test]
    fn restarts_take_the_new_count() {
        let mut t = CounterTracker::new();
        deltas(&mut t, &[stats(RULE, 1, 100, 50, 5000)]);
        // Reinstalled: lower count.
        assert_eq!(
            deltas(&mut t, &[stats(RULE, 1, 4, 2, 200)]),
            [(1, 2, 200, true)]
        );
        // Reinstalled and busier than before: only the age tells.
        assert_eq!(
            deltas(&mut t, &[stats(RULE, 1, 3, 900, 90_000)]),
            [(1, 900, 90_000, true)]
        );
        let (_, summary) = t.update(&[stats(RULE, 1, 13, 901, 90_100)]);
        assert_eq!(summary.restarted, 0);
    }

    #[test]
    fn vanished_flows_are_forgotten_and_come_back_new() {
        let mut t = CounterTracker::new();
        deltas(
            &mut t,
            &[stats(RULE, 1, 10, 5, 500), stats(RULE, 2, 10, 7, 700)],
        );
        let (d, summary) = t.update(&[stats(RULE, 1, 20, 6, 600)]);
        assert_eq!(d.len(), 1);
        assert_eq!(summary.vanished, 1);
        assert_eq!(t.len(), 1);
        let (d, summary) = t.update(&[stats(RULE, 1, 30, 6, 600), stats(RULE, 2, 1, 1, 100)]);
        assert_eq!(summary.new_flows, 1);
        assert_eq!(d[0].packets, 1);
    }

    #[test]
    fn new_policy_version_is_a_new_flow_and_foreign_flows_are_skipped() {
        let mut t = CounterTracker::new();
        deltas(&mut t, &[stats(RULE, 1, 10, 5, 500)]);
        let next = RULE | 0x0000_0002_0000_0000;
        let (d, summary) = t.update(&[stats(next, 1, 1, 3, 300), stats(0x1234, 1, 1, 9, 900)]);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].flow.cookie, d[0].packets), (next, 3));
        assert_eq!(
            (summary.foreign, summary.vanished, summary.new_flows),
            (1, 1, 1)
        );
    }

    #[test]
    fn finish_adds_only_what_the_polls_did_not_report() {
        let mut t = CounterTracker::with_grace(2);
        let flow = stats(RULE, 100, 10, 5, 500);
        deltas(&mut t, std::slice::from_ref(&flow));
        let id = FlowIdentity::of(&flow);
        // Removed after the poll: only the remainder.
        assert_eq!(t.finish(&id, 7, 700), (2, 200));
        // Forgotten: a second FLOW_REMOVED of it gives its whole count.
        assert_eq!(t.finish(&id, 7, 700), (7, 700));
    }

    #[test]
    fn finish_after_a_poll_that_missed_the_flow_still_subtracts() {
        let mut t = CounterTracker::with_grace(2);
        let flow = stats(RULE, 100, 10, 5, 500);
        deltas(&mut t, std::slice::from_ref(&flow));
        // The flow expired; the poll no longer lists it, and its
        // FLOW_REMOVED is handled after that poll.
        let (d, summary) = t.update(&[]);
        assert!(d.is_empty());
        assert_eq!(summary.vanished, 1);
        assert_eq!(t.finish(&FlowIdentity::of(&flow), 6, 600), (1, 100));
        // Without grace, the tracker would have forgotten it.
        let mut t = CounterTracker::new();
        deltas(&mut t, std::slice::from_ref(&flow));
        t.update(&[]);
        assert_eq!(t.finish(&FlowIdentity::of(&flow), 6, 600), (6, 600));
    }

    #[test]
    fn grace_ends_and_a_flow_back_within_it_restarts() {
        let mut t = CounterTracker::with_grace(1);
        let flow = stats(RULE, 100, 10, 5, 500);
        deltas(&mut t, std::slice::from_ref(&flow));
        t.update(&[]);
        // Added again with fewer counts while still remembered.
        assert_eq!(
            deltas(&mut t, &[stats(RULE, 100, 1, 9, 900)]),
            [(100, 9, 900, true)]
        );
        t.update(&[]);
        t.update(&[]);
        assert!(t.is_empty());
    }

    #[test]
    fn duplicates_within_a_poll_count_once() {
        let mut t = CounterTracker::new();
        let s = stats(RULE, 1, 10, 5, 500);
        let (d, _) = t.update(&[s.clone(), s]);
        assert_eq!(d.len(), 1);
    }
}
