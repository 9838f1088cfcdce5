//! Bookkeeping that keeps sampled connections from being counted twice.
//!
//! - [`RecentConnections`]: a sample of a 5-tuple that is already being
//!   counted (a retransmitted SYN, the next datagram of a UDP stream that
//!   has not seen a reply and so is still `+new`) is not another
//!   connection.
//! - [`OpeningsLedger`]: an allow rule's flows count every `+new` packet
//!   they admit, sampled or not. The samples already became records, so a
//!   rule's counter delta is reduced by the samples of that rule: what is
//!   left are the openings the sampling meter dropped, which are still
//!   recorded, from the counters.
//!
//! Both are bounded and pure: the caller supplies the clock.

use std::collections::HashMap;
use std::net::IpAddr;

use augur_flows::Protocol;

use super::allowed::opens_connections;
use super::counters::CounterDelta;
use crate::policy::{Cookie, Origin};

/// A connection's original tuple: source and destination address,
/// protocol, source and destination port (0 for protocols without ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionTuple {
    /// The address that opened the connection.
    pub src: IpAddr,
    /// The address it was opened to.
    pub dst: IpAddr,
    /// Its IP protocol.
    pub protocol: Protocol,
    /// The opener's port.
    pub src_port: u16,
    /// The service port.
    pub dst_port: u16,
}

impl From<(IpAddr, IpAddr, Protocol, u16, u16)> for ConnectionTuple {
    fn from(
        (src, dst, protocol, src_port, dst_port): (IpAddr, IpAddr, Protocol, u16, u16),
    ) -> Self {
        ConnectionTuple {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        }
    }
}

/// Connections sampled or seen counting recently, by tuple, so that a
/// second sample of one of them is not recorded as a new connection.
///
/// An entry lives `hold_ms` after the last sign of the connection: its
/// sample, or a poll in which its counting flow was still installed
/// ([`RecentConnections::touch`]). The daemon picks a hold longer than the
/// poll interval, so a connection whose counting flow is installed never
/// looks new. When the table is full, expired entries are dropped, then
/// the stalest; a dropped entry only risks counting one connection twice.
#[derive(Debug)]
pub struct RecentConnections {
    seen: HashMap<ConnectionTuple, u64>,
    hold_ms: u64,
    capacity: usize,
}

impl RecentConnections {
    /// An empty table holding at most `capacity` connections for `hold_ms`
    /// milliseconds after their last sign of life.
    pub fn new(capacity: usize, hold_ms: u64) -> RecentConnections {
        RecentConnections {
            seen: HashMap::new(),
            hold_ms,
            capacity: capacity.max(1),
        }
    }

    /// Connections remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no connection is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Takes a sample of `tuple` at `now_ms`; whether it opens a connection
    /// not seen within the hold.
    pub fn sampled(&mut self, tuple: ConnectionTuple, now_ms: u64) -> bool {
        let fresh = self
            .seen
            .get(&tuple)
            .is_none_or(|&last| now_ms.saturating_sub(last) > self.hold_ms);
        self.touch(tuple, now_ms);
        fresh
    }

    /// Notes that `tuple` is still alive at `now_ms` (its counting flow was
    /// in a poll).
    pub fn touch(&mut self, tuple: ConnectionTuple, now_ms: u64) {
        if !self.seen.contains_key(&tuple) && self.seen.len() >= self.capacity {
            self.make_room(now_ms);
        }
        let last = self.seen.entry(tuple).or_insert(now_ms);
        *last = (*last).max(now_ms);
    }

    /// Forgets `tuple`: its counting flow is gone, so a later sample of it
    /// after the hold is a new connection.
    pub fn forget(&mut self, tuple: &ConnectionTuple) {
        self.seen.remove(tuple);
    }

    fn make_room(&mut self, now_ms: u64) {
        let hold = self.hold_ms;
        self.seen
            .retain(|_, &mut last| now_ms.saturating_sub(last) <= hold);
        if self.seen.len() >= self.capacity {
            if let Some(stalest) = self
                .seen
                .iter()
                .min_by_key(|&(_, &last)| last)
                .map(|(tuple, _)| *tuple)
            {
                self.seen.remove(&stalest);
            }
        }
    }
}

/// Samples of one rule not yet matched with its counters.
#[derive(Debug, Clone, Copy, Default)]
struct Sampled {
    packets: u64,
    bytes: u64,
    /// The settlement at which the last sample came in.
    since: u64,
}

/// Reconciles the samples of admitted connections with the counters of
/// the rule flows that admitted them (see the module documentation).
///
/// A sample and the counter it was counted in do not reach the daemon in
/// a fixed order, so an opening delta is held for one poll before what no
/// sample matched is released as unsampled openings; samples not matched
/// within a few polls (their flows gone with a policy change) are dropped.
#[derive(Debug, Default)]
pub struct OpeningsLedger {
    sampled: HashMap<u64, Sampled>,
    pending: Vec<CounterDelta>,
    settlement: u64,
}

/// Settlements an unmatched sample is kept for.
const SAMPLE_KEEP: u64 = 3;

impl OpeningsLedger {
    /// An empty ledger.
    pub fn new() -> OpeningsLedger {
        OpeningsLedger::default()
    }

    /// Notes a sample of `bytes` bytes sent by the flow with `cookie`; only
    /// rule flows' samples are kept.
    pub fn sampled(&mut self, cookie: u64, bytes: u64) {
        if !matches!(
            Cookie::from_raw(cookie).and_then(Cookie::origin),
            Some(Origin::Rule(_))
        ) {
            return;
        }
        let entry = self.sampled.entry(cookie).or_default();
        entry.packets = entry.packets.saturating_add(1);
        entry.bytes = entry.bytes.saturating_add(bytes);
        entry.since = self.settlement;
    }

    /// Takes one poll's deltas and returns those to turn into records:
    /// deltas of flows that do not open connections, unchanged, and last
    /// poll's opening deltas less the samples that matched them.
    pub fn settle(&mut self, deltas: Vec<CounterDelta>) -> Vec<CounterDelta> {
        let mut out = Vec::with_capacity(deltas.len());
        for delta in std::mem::take(&mut self.pending) {
            out.extend(self.unmatched(delta));
        }
        for delta in deltas {
            let rule = matches!(
                Cookie::from_raw(delta.flow.cookie).and_then(Cookie::origin),
                Some(Origin::Rule(_))
            );
            if rule && opens_connections(&delta.flow.match_) {
                if let Some(left) = self.unmatched(delta) {
                    self.pending.push(left);
                }
            } else {
                out.push(delta);
            }
        }
        let settlement = self.settlement;
        self.sampled.retain(|_, s| {
            (s.packets > 0 || s.bytes > 0) && settlement.saturating_sub(s.since) < SAMPLE_KEEP
        });
        self.settlement = self.settlement.wrapping_add(1);
        out
    }

    /// `delta` less the samples of its flow's cookie, if anything is left.
    fn unmatched(&mut self, mut delta: CounterDelta) -> Option<CounterDelta> {
        if let Some(s) = self.sampled.get_mut(&delta.flow.cookie) {
            let packets = delta.packets.min(s.packets);
            let bytes = delta.bytes.min(s.bytes);
            s.packets -= packets;
            s.bytes -= bytes;
            delta.packets -= packets;
            delta.bytes -= bytes;
        }
        // Bytes left without packets are a sample's length differing from
        // the counted one: nothing was opened unsampled.
        (delta.packets > 0).then_some(delta)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use augur_openflow::{CtState, Match};

    use super::*;
    use crate::observer::FlowIdentity;

    fn tuple(src_port: u16) -> ConnectionTuple {
        ConnectionTuple {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: Protocol::TCP,
            src_port,
            dst_port: 5201,
        }
    }

    #[test]
    fn a_resent_syn_is_not_another_connection() {
        let mut recent = RecentConnections::new(16, 5_000);
        assert!(recent.sampled(tuple(40000), 0));
        // SYN retransmissions at 1 s and 3 s.
        assert!(!recent.sampled(tuple(40000), 1_000));
        assert!(!recent.sampled(tuple(40000), 3_000));
        // Another client port is another connection.
        assert!(recent.sampled(tuple(40001), 3_000));
    }

    #[test]
    fn a_counting_connection_stays_known_and_a_forgotten_one_is_new_again() {
        let mut recent = RecentConnections::new(16, 5_000);
        assert!(recent.sampled(tuple(40000), 0));
        // Its counting flow is seen by the polls for a minute.
        for t in (4_000..60_000).step_by(4_000) {
            recent.touch(tuple(40000), t);
        }
        assert!(!recent.sampled(tuple(40000), 60_000));
        // Long after the last sign of it, the tuple is reused.
        assert!(recent.sampled(tuple(40000), 70_000));
        recent.forget(&tuple(40000));
        assert!(recent.sampled(tuple(40000), 70_001));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut recent = RecentConnections::new(4, 5_000);
        for port in 0..100 {
            recent.sampled(tuple(port), u64::from(port));
        }
        assert_eq!(recent.len(), 4);
        // The newest are kept.
        assert!(!recent.sampled(tuple(99), 100));
        assert!(recent.sampled(tuple(0), 100));
    }

    const RULE: u64 = 0x6175_0001_0000_0003;

    fn delta(cookie: u64, opens: bool, packets: u64, bytes: u64) -> CounterDelta {
        let state = if opens {
            CtState::TRACKED | CtState::NEW
        } else {
            CtState::TRACKED | CtState::ESTABLISHED
        };
        CounterDelta {
            flow: FlowIdentity {
                cookie,
                table_id: 5,
                priority: 49_997,
                match_: Match::new().ct_state(state, state | CtState::INVALID),
            },
            packets,
            bytes,
            restarted: false,
        }
    }

    fn counts(deltas: &[CounterDelta]) -> Vec<(u64, u64)> {
        deltas.iter().map(|d| (d.packets, d.bytes)).collect()
    }

    #[test]
    fn sampled_openings_are_not_counted_again() {
        let mut ledger = OpeningsLedger::new();
        for _ in 0..3 {
            ledger.sampled(RULE, 74);
        }
        // Three openings, all sampled: nothing now, nothing later.
        assert!(ledger.settle(vec![delta(RULE, true, 3, 222)]).is_empty());
        assert!(ledger.settle(Vec::new()).is_empty());
    }

    #[test]
    fn dropped_samples_leave_openings_from_the_counters() {
        let mut ledger = OpeningsLedger::new();
        ledger.sampled(RULE, 74);
        // Five openings, one sampled; held for a poll...
        assert!(ledger.settle(vec![delta(RULE, true, 5, 370)]).is_empty());
        // ...in case a sample arrives late.
        ledger.sampled(RULE, 74);
        assert_eq!(counts(&ledger.settle(Vec::new())), [(3, 222)]);
    }

    #[test]
    fn samples_arriving_after_their_poll_still_match() {
        let mut ledger = OpeningsLedger::new();
        assert!(ledger.settle(vec![delta(RULE, true, 2, 148)]).is_empty());
        ledger.sampled(RULE, 74);
        ledger.sampled(RULE, 74);
        assert!(ledger.settle(Vec::new()).is_empty());
    }

    #[test]
    fn other_flows_pass_and_stale_samples_are_dropped() {
        let mut ledger = OpeningsLedger::new();
        let pipeline = 0x6175_0001_0100_0005;
        ledger.sampled(pipeline, 74);
        let est = ledger.settle(vec![
            delta(RULE, false, 10, 1000),
            delta(pipeline, true, 1, 74),
        ]);
        assert_eq!(counts(&est), [(10, 1000), (1, 74)]);
        // A sample whose counter never comes is not kept for ever.
        ledger.sampled(RULE, 74);
        for _ in 0..SAMPLE_KEEP + 1 {
            ledger.settle(Vec::new());
        }
        ledger.settle(vec![delta(RULE, true, 1, 74)]);
        assert_eq!(counts(&ledger.settle(Vec::new())), [(1, 74)]);
    }
}
