//! Evidence about a candidate, encoded as the model's features.
//!
//! Durations enter as `log2(1 + hours)`, counts as `log2(1 + n)`: what
//! matters is the order of magnitude (used an hour ago or a week ago), and
//! the logarithm makes the classes' distributions closer to the Gaussians
//! naive Bayes assumes. Each feature's [`Scale`] says where the logistic
//! model's basis places its knots (see [`super::basis`]).
//!
//! A key's own history counts attempts whatever their verdict, as its
//! outcome does (a key is used when it is attempted, allowed or denied).
//! Replay learns first over a period in which nothing is denied, and a
//! daemon's policy changes under it: evidence split by verdict (denied
//! attempts, last denial, "never allowed") had no examples until
//! enforcement began and met a quarter of strato-010's candidates with
//! weights it never trained. Counted together, what the model learned of
//! allowed scanners and clients holds for denied ones.

use std::collections::HashMap;
use std::net::IpAddr;

use foldhash::fast::RandomState as FastState;

use augur_flows::{Aggregator, FlowKey, KeyActivity, Periodicity, Protocol};

use super::candidates::Candidate;
use super::{Evidence, ScanDetector};

/// How a feature is measured, which decides where the model may bend its
/// effect (see [`super::basis`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Hours on the `log2(1 + hours)` scale, 0 to about 10.5 (60 days).
    Hours,
    /// A count on the `log2(1 + n)` scale.
    Count,
    /// A share or a confidence, 0 to 1.
    Share,
    /// A class numbered 0, 1, 2.
    Class,
    /// 0 or 1.
    Flag,
}

/// The features, in column order, with their scales.
pub const FEATURE_LIST: [(&str, Scale); FEATURES] = [
    ("hours_since_attempt", Scale::Hours),
    ("attempts", Scale::Count),
    ("active_ratio", Scale::Share),
    ("periodic_due", Scale::Share),
    ("hour_share", Scale::Share),
    ("weekday_share", Scale::Share),
    ("peer_support", Scale::Share),
    ("port_class", Scale::Class),
    ("source_age_hours", Scale::Hours),
    ("carried_payload", Scale::Flag),
    ("onsets", Scale::Count),
    ("src_hours_since_active", Scale::Hours),
    ("dst_hours_since_active", Scale::Hours),
    ("src_keys", Scale::Count),
    ("dst_keys", Scale::Count),
    ("service_keys", Scale::Count),
    ("service_attempts", Scale::Count),
    ("network_hours_since_active", Scale::Hours),
    ("network_addresses", Scale::Count),
    ("addresses", Scale::Count),
    ("external", Scale::Flag),
];

/// Number of features.
pub const FEATURES: usize = 21;

/// One candidate's feature row.
pub type FeatureRow = [f64; FEATURES];

/// What "never" is worth on a log-hours scale: 60 days.
const NEVER_HOURS: f64 = 24.0 * 60.0;

fn log_hours(seconds: i64) -> f64 {
    (1.0 + (seconds.max(0) as f64 / 3600.0).min(NEVER_HOURS)).log2()
}

fn log_count(n: u64) -> f64 {
    (1.0 + n as f64).log2()
}

/// When a recurrence runs next at or after `now`, allowing a run to be late
/// by a tenth of its period (a run due a minute ago is still coming).
pub fn next_run(periodicity: &Periodicity, now: i64) -> Option<f64> {
    let next = periodicity.next_expected_s?;
    let period = periodicity.period_s;
    if !(period.is_finite() && period > 0.0 && next.is_finite()) {
        return None;
    }
    let now = now as f64;
    let late = now - next;
    if late <= period * 0.1 {
        return Some(next);
    }
    let missed = ((late - period * 0.1) / period).ceil();
    Some(next + missed * period)
}

/// Share of a profile's weight in the slots the interval `[from, to)`
/// covers (slots of `slot_s` seconds, cycling every `slots`).
fn profile_share(profile: &[u32], from: i64, to: i64, slot_s: i64, offset_slots: i64) -> f64 {
    let total: u64 = profile.iter().map(|&c| u64::from(c)).sum();
    if total == 0 || profile.is_empty() {
        return 0.0;
    }
    let slots = profile.len() as i64;
    let first = from.div_euclid(slot_s);
    let last = (to - 1).div_euclid(slot_s).min(first + slots - 1);
    let covered: u64 = (first..=last)
        .map(|s| {
            let i = (s + offset_slots).rem_euclid(slots) as usize;
            u64::from(profile.get(i).copied().unwrap_or(0))
        })
        .sum();
    covered as f64 / total as f64
}

/// The share of each pair's activity that falls in the hours of day and
/// the weekdays one horizon covers, for every pair of the aggregator.
///
/// A cycle needs the shares of (nearly) every pair, and looking each up per
/// candidate costs a hash probe and a cache miss into the pair table each:
/// a third of a cycle over a million keys. One sequential pass over the
/// pairs computes them all, and a candidate reads its pair's entry from a
/// dense table by the pair's slot.
#[derive(Debug, Clone, Default)]
pub struct PairShares {
    /// Hour-of-day and weekday share per pair slot (see
    /// [`Aggregator::pair_profiles`]).
    shares: Vec<(f64, f64)>,
}

impl PairShares {
    /// The shares of every pair for the horizon from `now` to
    /// `now + horizon_s`.
    pub fn new(agg: &Aggregator, now: i64, horizon_s: i64) -> PairShares {
        let end = now.saturating_add(horizon_s);
        let shares = agg
            .pair_profiles()
            .map(|(hours, days)| {
                (
                    profile_share(hours, now, end, 3600, 0),
                    // Day 0 of the epoch was a Thursday; the profile starts
                    // on Monday.
                    profile_share(days, now, end, 86_400, 3),
                )
            })
            .collect();
        PairShares { shares }
    }

    /// The shares of the candidate's pair, or none for a pair that never
    /// talked (and a key of the outside as a whole, which is no pair).
    fn of(&self, candidate: &Candidate) -> Option<(f64, f64)> {
        self.shares.get(candidate.pair? as usize).copied()
    }
}

/// What each endpoint did lately on any of its keys, for every endpoint of
/// the aggregator.
///
/// A key's own history says little when it is young or rare; its endpoints'
/// say whether they are around at all. An address that was active on
/// another port ten minutes ago is alive, one silent for a day has probably
/// gone (a scanner moving on, a laptop switched off), and a VM that talks
/// on many keys is a busy server. The same holds one level up for external
/// addresses: scanners, botnets and content networks come and go by
/// network, so an address whose neighbours were busy an hour ago is more
/// likely back than one whose whole network fell silent.
#[derive(Debug, Clone, Default)]
pub struct EndpointActivity {
    /// Last activity (allowed or denied) on any key, Unix seconds, or
    /// `i64::MIN`, by endpoint id.
    last: Vec<i64>,
    /// Keys tracked, by endpoint id.
    keys: Vec<u32>,
    /// For an external endpoint: the last activity of any address of its
    /// network, and how many of its addresses are tracked, by endpoint id
    /// (`(i64::MIN, 0)` for VMs and the outside as a whole).
    network: Vec<(i64, u32)>,
}

/// The network an external address is counted in: its /24 (IPv4) or /48
/// (IPv6), the blocks that providers route and assign.
fn network_of(endpoint: Option<&augur_flows::Endpoint>) -> Option<(bool, u128)> {
    match endpoint? {
        augur_flows::Endpoint::External(address) if !address.is_unspecified() => match address {
            IpAddr::V4(a) => Some((true, u128::from(u32::from(*a) >> 8))),
            IpAddr::V6(a) => Some((false, u128::from(*a) >> 80)),
        },
        _ => None,
    }
}

impl EndpointActivity {
    /// One pass over the aggregator's keys, and one over its endpoints.
    pub fn new(agg: &Aggregator) -> EndpointActivity {
        let endpoints = agg.endpoints();
        let n = endpoints.len() + 1;
        let mut last = vec![i64::MIN; n];
        let mut keys = vec![0u32; n];
        for a in agg.key_activity() {
            let t = a.last_allowed.max(a.last_denied).unwrap_or(a.first_seen);
            for id in [a.key.src.0, a.key.dst.0] {
                let i = id as usize;
                if let (Some(l), Some(k)) = (last.get_mut(i), keys.get_mut(i)) {
                    *l = (*l).max(t);
                    *k = k.saturating_add(1);
                }
            }
        }
        let networks: Vec<Option<(bool, u128)>> = (0..n)
            .map(|id| {
                let id = augur_flows::EndpointId(u32::try_from(id).unwrap_or(u32::MAX));
                network_of(endpoints.endpoint(id))
            })
            .collect();
        let mut by_network: HashMap<(bool, u128), (i64, u32), FastState> = HashMap::default();
        for (network, &t) in networks.iter().zip(&last) {
            if let Some(network) = network.filter(|_| t > i64::MIN) {
                let (latest, addresses) = by_network.entry(network).or_insert((i64::MIN, 0));
                *latest = (*latest).max(t);
                *addresses = addresses.saturating_add(1);
            }
        }
        let network = networks
            .iter()
            .map(|network| {
                network
                    .and_then(|network| by_network.get(&network).copied())
                    .unwrap_or((i64::MIN, 0))
            })
            .collect();
        EndpointActivity {
            last,
            keys,
            network,
        }
    }

    /// Hours since the endpoint was last active (log scale), and how many
    /// keys it has (log scale).
    fn of(&self, id: augur_flows::EndpointId, now: i64) -> (f64, f64) {
        let i = id.0 as usize;
        let since = match self.last.get(i) {
            Some(&t) if t > i64::MIN => log_hours(now.saturating_sub(t)),
            _ => log_hours(i64::MAX),
        };
        let keys = self.keys.get(i).copied().unwrap_or(0);
        (since, log_count(u64::from(keys)))
    }

    /// For a key with an external address: hours since any address of that
    /// address's network was last active, and how many of its addresses are
    /// tracked (log scales). Zero for keys between VMs and keys of the
    /// outside as a whole, which have models of their own.
    fn network_of_key(&self, key: &FlowKey, now: i64) -> (f64, f64) {
        [key.src, key.dst]
            .iter()
            .find_map(|id| {
                self.network
                    .get(id.0 as usize)
                    .filter(|&&(_, addresses)| addresses > 0)
            })
            .map_or((0.0, 0.0), |&(t, addresses)| {
                (
                    log_hours(now.saturating_sub(t)),
                    log_count(u64::from(addresses)),
                )
            })
    }
}

/// How much each service (protocol and port, on any address) is used.
///
/// A key's own history is thin (most keys are seen once or twice), but its
/// service's is not: what reaches telnet or SMB comes back (scanners retry,
/// worms return), what reaches a port used once does not. The effect is far
/// from linear, which is what the model's basis is for.
#[derive(Debug, Clone, Default)]
pub struct ServiceActivity {
    /// Keys and attempts (allowed connections and denied attempts) per
    /// service.
    services: HashMap<(Protocol, u16), (u32, u64), FastState>,
}

impl ServiceActivity {
    /// One pass over the aggregator's keys.
    pub fn new(agg: &Aggregator) -> ServiceActivity {
        let mut services: HashMap<(Protocol, u16), (u32, u64), FastState> = HashMap::default();
        for a in agg.key_activity() {
            let (keys, attempts) = services
                .entry((a.key.protocol, a.key.service_port))
                .or_default();
            *keys = keys.saturating_add(1);
            *attempts = attempts
                .saturating_add(u64::from(a.connections))
                .saturating_add(u64::from(a.denied));
        }
        ServiceActivity { services }
    }

    /// The keys and attempts of the key's service (log scale).
    fn of(&self, key: &FlowKey) -> (f64, f64) {
        let (keys, attempts) = self
            .services
            .get(&(key.protocol, key.service_port))
            .copied()
            .unwrap_or_default();
        (log_count(u64::from(keys)), log_count(attempts))
    }
}

/// What encoding needs at one instant: the history, the scan flags, and
/// what is computed once per cycle rather than per candidate.
#[derive(Debug)]
pub struct Encoder<'a> {
    agg: &'a Aggregator,
    scans: &'a ScanDetector,
    shares: PairShares,
    endpoints: EndpointActivity,
    services: ServiceActivity,
    window_s: i64,
    horizon_s: i64,
    now: i64,
}

impl<'a> Encoder<'a> {
    /// An encoder for candidates at `now` and a horizon of `horizon_s`
    /// seconds.
    pub fn new(
        agg: &'a Aggregator,
        scans: &'a ScanDetector,
        horizon_s: i64,
        now: i64,
    ) -> Encoder<'a> {
        Encoder {
            agg,
            scans,
            shares: PairShares::new(agg, now, horizon_s),
            endpoints: EndpointActivity::new(agg),
            services: ServiceActivity::new(agg),
            window_s: i64::from(agg.config().length_s),
            horizon_s,
            now,
        }
    }

    /// When anything on the network was last active, if ever.
    pub fn network_last_active(&self) -> Option<i64> {
        self.endpoints
            .last
            .iter()
            .copied()
            .max()
            .filter(|&t| t > i64::MIN)
    }

    /// Encodes one candidate; `activity` is its key's history (see
    /// [`super::candidates::Candidates::activity`]).
    pub fn encode(
        &self,
        candidate: &Candidate,
        activity: Option<&KeyActivity>,
    ) -> (FeatureRow, Evidence) {
        encode(candidate, activity, self)
    }
}

fn encode(
    candidate: &Candidate,
    activity: Option<&KeyActivity>,
    context: &Encoder<'_>,
) -> (FeatureRow, Evidence) {
    let &Encoder {
        agg,
        scans,
        ref shares,
        ref endpoints,
        ref services,
        window_s,
        horizon_s,
        now,
    } = context;
    let key = candidate.key;
    let last_allowed = activity.and_then(|a| a.last_allowed);
    let last_denied = activity.and_then(|a| a.last_denied);
    // Only a tracked key has onsets to fit.
    let periodicity = activity
        .filter(|a| a.onsets >= 4)
        .and_then(|_| candidate.position())
        .and_then(|position| agg.periodicity_at(position));
    let periodic_due = periodicity
        .and_then(|p| next_run(&p, now).map(|next| (p, next)))
        .filter(|&(_, next)| next <= (now + horizon_s) as f64)
        .map_or(0.0, |(p, _)| p.confidence);
    let (hour_share, weekday_share) = shares.of(candidate).unwrap_or((0.0, 0.0));
    let first_seen = activity.map(|a| a.first_seen);
    let windows_since = first_seen.map_or(1, |f| (now.saturating_sub(f) / window_s.max(1)).max(1));
    let active_windows = activity.map_or(0, |a| a.active_windows);
    let connections = activity.map_or(0, |a| u64::from(a.connections));
    let denied = activity.map_or(0, |a| a.denied);
    let source_age_s = now.saturating_sub(candidate.source_first_seen);
    let external = [key.src, key.dst].iter().any(|&id| {
        matches!(
            agg.endpoints().endpoint(id),
            Some(augur_flows::Endpoint::External(_))
        )
    });
    let carried = activity.is_some_and(|a| a.carried_payload(scans.params().empty_bytes));
    let (src_since, src_keys) = endpoints.of(key.src, now);
    let (dst_since, dst_keys) = endpoints.of(key.dst, now);
    let (service_keys, service_attempts) = services.of(&key);
    let (network_since, network_addresses) = endpoints.network_of_key(&key, now);
    let port = key.service_port;
    // Protocols without ports count with the well-known services.
    let port_class = if !key.protocol.has_ports() || port < 1024 {
        0.0
    } else if port < 32768 {
        1.0
    } else {
        2.0
    };
    let row = [
        last_allowed
            .max(last_denied)
            .map_or(log_hours(i64::MAX), |t| log_hours(now - t)),
        log_count(connections + u64::from(denied)),
        (f64::from(active_windows) / windows_since as f64).min(1.0),
        periodic_due,
        hour_share,
        weekday_share,
        f64::from(candidate.peer_support),
        port_class,
        log_hours(source_age_s),
        if carried { 1.0 } else { 0.0 },
        log_count(u64::from(activity.map_or(0, |a| a.onsets))),
        src_since,
        dst_since,
        src_keys,
        dst_keys,
        service_keys,
        service_attempts,
        network_since,
        network_addresses,
        log_count(u64::from(candidate.members)),
        if external { 1.0 } else { 0.0 },
    ];
    let evidence = Evidence {
        source: candidate.source,
        connections,
        active_windows,
        first_seen: last_allowed.and(first_seen),
        last_seen: last_allowed,
        denied,
        last_denied,
        periodicity,
        peer_support: candidate.peer_support,
        peers: candidate.peers,
        hour_share: hour_share as f32,
        source_age_s,
        source_scanning: scans.is_scanning(key.src, now),
        carried_payload: carried,
        addresses: candidate.members,
    };
    (row, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_history_reads_like_an_allowed_one() {
        use augur_flows::{Endpoint, FlowRecord, Timestamp, Verdict, WindowConfig};

        // Two VMs attempt the same service at the same instants, one
        // allowed and one denied: their attempts, recency and onsets are
        // the same evidence.
        let mut agg = Aggregator::new(WindowConfig::default());
        agg.set_keep_closed(false);
        let t0 = 1_700_006_400;
        for run in 0..5 {
            for (src, verdict) in [("web-1", Verdict::Allowed), ("web-2", Verdict::Denied)] {
                let at = Timestamp::from_secs(t0 + run * 3600);
                let mut r = FlowRecord::tcp_connection(
                    at,
                    Endpoint::vm(src),
                    Endpoint::vm("db-1"),
                    5432,
                    2_000,
                    10,
                );
                r.verdict = verdict;
                agg.ingest(&[r]);
            }
        }
        let now = t0 + 5 * 3600;
        agg.close_window(now);
        let scans = ScanDetector::new(super::super::ScanParams::default());
        let limits = super::super::candidates::SearchLimits {
            forget_after_s: 7 * 86_400,
            new_vm_age_s: 86_400,
            max_peer_services: 8,
            outside_min_peers: 16,
        };
        let found = super::super::candidates::search(&agg, &scans, &limits, now);
        let encoder = Encoder::new(&agg, &scans, 3600, now);
        let row_of = |src: &str| {
            let id = agg.endpoints().get(&Endpoint::vm(src));
            let candidate = found
                .list
                .iter()
                .find(|c| Some(c.key.src) == id && c.key.service_port == 5432);
            let candidate = candidate.unwrap_or_else(|| panic!("{src}'s key is a candidate"));
            encoder
                .encode(candidate, found.activity(candidate, &agg).as_ref())
                .0
        };
        let (allowed, denied) = (row_of("web-1"), row_of("web-2"));
        for name in ["hours_since_attempt", "attempts", "onsets"] {
            let i = FEATURE_LIST
                .iter()
                .position(|f| f.0 == name)
                .unwrap_or(usize::MAX);
            assert_eq!(allowed.get(i), denied.get(i), "{name}");
            assert!(allowed.get(i).is_some_and(|&v| v > 0.0), "{name}");
        }
    }

    #[test]
    fn next_run_skips_missed_runs_but_keeps_a_late_one() {
        let p = Periodicity {
            period_s: 300.0,
            phase_s: Some(0.0),
            next_expected_s: Some(1200.0),
            confidence: 0.9,
            cycles: 5,
        };
        assert_eq!(next_run(&p, 1000), Some(1200.0));
        assert_eq!(next_run(&p, 1220), Some(1200.0));
        assert_eq!(next_run(&p, 1260), Some(1500.0));
        assert_eq!(next_run(&p, 2000), Some(2100.0));
    }

    #[test]
    fn profile_share_covers_the_horizons_hours() {
        let mut hours = [0u32; 24];
        hours[2] = 10;
        hours[14] = 30;
        // 01:30 to 02:30 covers hours 1 and 2.
        assert_eq!(profile_share(&hours, 5400, 9000, 3600, 0), 0.25);
        assert_eq!(profile_share(&hours, 0, 86_400 * 3, 3600, 0), 1.0);
        // Day 3 of the epoch was a Sunday: slot 6 of a Monday-first week.
        let mut days = [0u32; 7];
        days[6] = 1;
        assert_eq!(
            profile_share(&days, 3 * 86_400, 3 * 86_400 + 3600, 86_400, 3),
            1.0
        );
    }
}
