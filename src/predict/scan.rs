//! Scan and fan-out detection.
//!
//! A scanner touches many destinations or ports it never used before, in a
//! short time, and most of its attempts carry nothing: they are denied, or
//! refused or unanswered (no payload). Monitoring also fans out, but to the
//! same targets every time and with payload, so only *novel* targets whose
//! attempt was *empty* count as probes. A source with at least
//! [`ScanParams::min_targets`] distinct probed targets (destination and
//! service) within [`ScanParams::window_s`] is flagged, and stays flagged
//! for [`ScanParams::memory_s`] after its last probe.
//!
//! A VM whose traffic to (or from) the outside is blocked also meets new
//! addresses all the time: a browser reaching new sites on 443, new clients
//! of a public service. Once a service of the outside has carried payload
//! (the VM, protocol and port, and which side the outside is on), attempts on
//! it to or from new addresses are not probes: they are its normal traffic.
//!
//! A flagged source is not learned from (the predictor leaves its keys out
//! of training and of label-peer support) and every change that involves it
//! is high risk.

use std::collections::{HashMap, HashSet};

use augur_flows::{EndpointId, FlowKey, Protocol, Verdict};
use serde::{Deserialize, Serialize};

/// When a source counts as scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanParams {
    /// Length of the sliding window probes are counted in, seconds.
    pub window_s: i64,
    /// Distinct novel targets probed within the window that flag a source.
    pub min_targets: u32,
    /// An allowed attempt with at most this many bytes counts as empty (a
    /// SYN and a reset, an unanswered datagram).
    pub empty_bytes: u64,
    /// How long a source stays flagged after its last probe, seconds.
    pub memory_s: i64,
}

impl Default for ScanParams {
    fn default() -> ScanParams {
        ScanParams {
            window_s: 300,
            min_targets: 12,
            empty_bytes: 256,
            memory_s: 7 * 86_400,
        }
    }
}

/// What is known of a flagged source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScanFlag {
    /// When the source was first flagged, Unix seconds.
    pub since: i64,
    /// Its last probe, Unix seconds.
    pub last_probe: i64,
    /// Distinct targets probed since it was first flagged (a lower bound
    /// once more than a window's worth).
    pub targets: u32,
    /// Distinct destination hosts among the targets of the flagging window.
    pub hosts: u32,
    /// Distinct service ports among the targets of the flagging window.
    pub ports: u32,
}

/// Probes of one source within its current window.
#[derive(Debug, Default)]
struct SourceWindow {
    /// Probes as (time, destination, service port), oldest first.
    probes: Vec<(i64, EndpointId, u16)>,
}

/// Which side of an observation is outside the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutsideSide {
    /// The source (a client of a VM's service).
    Source,
    /// The destination (a service a VM reaches).
    Destination,
}

impl OutsideSide {
    /// Which side of `key` is outside the inventory, if exactly one is.
    pub fn of(endpoints: &augur_flows::Endpoints, key: &FlowKey) -> Option<OutsideSide> {
        let external = |id| {
            matches!(
                endpoints.endpoint(id),
                Some(augur_flows::Endpoint::External(_))
            )
        };
        match (external(key.src), external(key.dst)) {
            (true, false) => Some(OutsideSide::Source),
            (false, true) => Some(OutsideSide::Destination),
            _ => None,
        }
    }
}

/// The scan detector: fed every observation with whether its key was new.
#[derive(Debug, Default)]
pub struct ScanDetector {
    params: ScanParams,
    windows: HashMap<EndpointId, SourceWindow>,
    flagged: HashMap<EndpointId, ScanFlag>,
    /// Services of the outside that carried payload: the VM, protocol,
    /// port, and where the outside is.
    known: HashSet<(EndpointId, Protocol, u16, OutsideSide)>,
}

impl ScanDetector {
    /// A detector with these settings.
    pub fn new(params: ScanParams) -> ScanDetector {
        ScanDetector {
            params,
            ..ScanDetector::default()
        }
    }

    /// The settings.
    pub fn params(&self) -> &ScanParams {
        &self.params
    }

    /// Notes one observation of `key` at `ts`. `novel` says whether the key
    /// had never been seen before this observation.
    pub fn observe(&mut self, key: &FlowKey, ts: i64, bytes: u64, verdict: Verdict, novel: bool) {
        self.observe_with(key, ts, bytes, verdict, novel, None);
    }

    /// [`ScanDetector::observe`] for an observation with one side outside
    /// the inventory (`outside`), so that new addresses on a service of the
    /// outside that already carried payload are not taken for probes.
    pub fn observe_with(
        &mut self,
        key: &FlowKey,
        ts: i64,
        bytes: u64,
        verdict: Verdict,
        novel: bool,
        outside: Option<OutsideSide>,
    ) {
        let empty = verdict == Verdict::Denied || bytes <= self.params.empty_bytes;
        if let Some(side) = outside {
            let vm = match side {
                OutsideSide::Source => key.dst,
                OutsideSide::Destination => key.src,
            };
            let service = (vm, key.protocol, key.service_port, side);
            if !empty {
                self.known.insert(service);
            } else if self.known.contains(&service) {
                return;
            }
        }
        if !(novel && empty) {
            return;
        }
        let params = self.params;
        let window = self.windows.entry(key.src).or_default();
        let horizon = ts.saturating_sub(params.window_s);
        window.probes.retain(|&(t, _, _)| t > horizon);
        let target = (key.dst, key.service_port);
        if !window.probes.iter().any(|&(_, d, p)| (d, p) == target) {
            window.probes.push((ts, key.dst, key.service_port));
        }
        let count = u32::try_from(window.probes.len()).unwrap_or(u32::MAX);
        if let Some(flag) = self.flagged.get_mut(&key.src) {
            flag.last_probe = flag.last_probe.max(ts);
            flag.targets = flag.targets.saturating_add(1);
        } else if count >= params.min_targets {
            let mut hosts: Vec<EndpointId> = window.probes.iter().map(|p| p.1).collect();
            hosts.sort_unstable();
            hosts.dedup();
            let mut ports: Vec<u16> = window.probes.iter().map(|p| p.2).collect();
            ports.sort_unstable();
            ports.dedup();
            self.flagged.insert(
                key.src,
                ScanFlag {
                    since: ts,
                    last_probe: ts,
                    targets: count,
                    hosts: u32::try_from(hosts.len()).unwrap_or(u32::MAX),
                    ports: u32::try_from(ports.len()).unwrap_or(u32::MAX),
                },
            );
        }
        // A window never holds more than the flagging count: beyond it the
        // flag carries the tally, so a scanner's memory stays bounded.
        if window.probes.len() > params.min_targets as usize {
            window.probes.remove(0);
        }
    }

    /// Forgets sources whose last probe is older than the memory, and idle
    /// windows. Call now and then (each prediction cycle).
    pub fn expire(&mut self, now: i64) {
        let memory = self.params.memory_s;
        self.flagged
            .retain(|_, flag| now.saturating_sub(flag.last_probe) <= memory);
        let horizon = now.saturating_sub(self.params.window_s);
        self.windows
            .retain(|_, window| window.probes.last().is_some_and(|&(t, _, _)| t > horizon));
    }

    /// Whether `source` is flagged at `now`.
    pub fn is_scanning(&self, source: EndpointId, now: i64) -> bool {
        self.flag(source, now).is_some()
    }

    /// The flag of `source`, if it is flagged at `now`.
    pub fn flag(&self, source: EndpointId, now: i64) -> Option<&ScanFlag> {
        self.flagged.get(&source).filter(|flag| {
            flag.since <= now && now.saturating_sub(flag.last_probe) <= self.params.memory_s
        })
    }

    /// Every flagged source.
    pub fn flagged(&self) -> impl Iterator<Item = (EndpointId, &ScanFlag)> {
        self.flagged.iter().map(|(&id, flag)| (id, flag))
    }

    /// The sources flagged at `now`: what recommendations and harm
    /// measurements take as scanning.
    pub fn scanning(&self, now: i64) -> std::collections::HashSet<EndpointId> {
        self.flagged
            .keys()
            .copied()
            .filter(|&id| self.is_scanning(id, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_flows::Protocol;

    fn key(src: u32, dst: u32, port: u16) -> FlowKey {
        FlowKey {
            src: EndpointId(src),
            dst: EndpointId(dst),
            protocol: Protocol::TCP,
            service_port: port,
        }
    }

    #[test]
    fn a_sweep_of_empty_novel_attempts_is_flagged() {
        let mut scans = ScanDetector::new(ScanParams::default());
        for (i, port) in [22, 23, 135, 139, 445, 3306].into_iter().enumerate() {
            for host in 10..12 {
                scans.observe(
                    &key(1, host, port),
                    1000 + i as i64,
                    0,
                    Verdict::Allowed,
                    true,
                );
            }
        }
        let flag = scans.flag(EndpointId(1), 1010).unwrap();
        assert_eq!((flag.targets, flag.hosts, flag.ports), (12, 2, 6));
        assert!(!scans.is_scanning(EndpointId(2), 1010));
    }

    #[test]
    fn monitoring_with_payload_and_repeats_is_not_a_scan() {
        let mut scans = ScanDetector::new(ScanParams::default());
        for round in 0..10 {
            for host in 0..50 {
                // Novel only on the first round; always with payload.
                scans.observe(
                    &key(1, 100 + host, 9100),
                    round * 60,
                    4000,
                    Verdict::Allowed,
                    round == 0,
                );
            }
        }
        assert!(!scans.is_scanning(EndpointId(1), 600));
    }

    #[test]
    fn new_addresses_of_a_known_outside_service_are_no_probes() {
        let mut scans = ScanDetector::new(ScanParams::default());
        let web = 1;
        // The VM browses: 443 carried payload to one site.
        scans.observe_with(
            &key(web, 100, 443),
            0,
            5_000,
            Verdict::Allowed,
            true,
            Some(OutsideSide::Destination),
        );
        // Then its new sites are blocked: empty, novel, many.
        for site in 101..140 {
            scans.observe_with(
                &key(web, site, 443),
                10,
                0,
                Verdict::Denied,
                true,
                Some(OutsideSide::Destination),
            );
        }
        assert!(!scans.is_scanning(EndpointId(web), 10));
        // The same sweep on a port it never used is a scan.
        for site in 101..140 {
            scans.observe_with(
                &key(web, site, 3389),
                20,
                0,
                Verdict::Denied,
                true,
                Some(OutsideSide::Destination),
            );
        }
        assert!(scans.is_scanning(EndpointId(web), 20));
    }

    #[test]
    fn retries_of_one_denied_key_are_one_target() {
        let mut scans = ScanDetector::new(ScanParams::default());
        for t in 0..100 {
            scans.observe(&key(1, 2, 5432), t, 0, Verdict::Denied, true);
        }
        assert!(!scans.is_scanning(EndpointId(1), 100));
    }

    #[test]
    fn slow_probes_outside_the_window_do_not_add_up_and_flags_expire() {
        let params = ScanParams::default();
        let mut scans = ScanDetector::new(params);
        for i in 0..30 {
            scans.observe(
                &key(1, 10 + i, 22),
                i64::from(i) * 400,
                0,
                Verdict::Denied,
                true,
            );
        }
        assert!(!scans.is_scanning(EndpointId(1), 12_000));
        for i in 0..12 {
            scans.observe(&key(3, 10 + i, 22), 50_000, 0, Verdict::Denied, true);
        }
        assert!(scans.is_scanning(EndpointId(3), 50_000));
        scans.expire(50_000 + params.memory_s + 1);
        assert!(!scans.is_scanning(EndpointId(3), 50_000 + params.memory_s + 1));
    }
}
