//! The daemon's own decisions, without I/O: which version a policy is, which
//! installed flows must be re-added before the switch expires them, how the
//! timeouts of flows compiled a while ago are aged, whether two compilations
//! differ, whether a switch refused a bundle because it has none.
//!
//! What to install is decided in [`crate::policy`]; this only fits those
//! decisions to time passing between compiling and applying.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use augur_openflow::msg::ErrorMsg;
use augur_openflow::multipart::FlowStats;
use augur_openflow::{ErrorType, msg::ErrorCode};

use crate::policy::{BridgeFlows, CompileSettings, CompiledPolicy, Cookie, FlowChange, Policy};

/// How long before a switch would expire a flow whose rule lives on the
/// daemon re-adds it (which restarts its hard timeout): enough for a dump
/// and a bundle on a busy switch.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The version of a policy file: 16 bits of a hash of what it says (its
/// groups, endpoints and rules, not its comments or layout) and of the
/// compile settings, so that a restarted daemon assigns the same version to
/// the same file and recognises the flows it installed before. The file's
/// rules carry it in their cookies; rules added by changes carry their
/// change's number ([`crate::orchestrate::versions`]).
///
/// Two different policies may share a version (1 in 65,536); nothing breaks
/// then, as reconciliation compares flows whole, not only their cookies.
pub fn policy_version(policy: &Policy, settings: &CompileSettings) -> u16 {
    let settings = CompileSettings {
        version: 0,
        ..settings.clone()
    };
    let mut hasher = Fnv1a::default();
    match serde_json::to_value(policy) {
        Ok(mut value) => {
            // Where a rule stands in the file is not what it says.
            if let Some(rules) = value.get_mut("rules").and_then(|r| r.as_array_mut()) {
                for rule in rules {
                    if let Some(rule) = rule.as_object_mut() {
                        rule.remove("location");
                    }
                }
            }
            hasher.write(value.to_string().as_bytes());
        }
        Err(_) => hasher.write(format!("{policy:?}").as_bytes()),
    }
    match serde_json::to_string(&settings) {
        Ok(text) => hasher.write(text.as_bytes()),
        Err(_) => hasher.write(format!("{settings:?}").as_bytes()),
    }
    let h = hasher.0;
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
}

/// A hash whose value is the same in every build (unlike std's), so that
/// versions survive upgrades of the toolchain.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Adds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of `bytes` alone.
    pub fn hash(bytes: &[u8]) -> u64 {
        let mut h = Fnv1a::default();
        h.write(bytes);
        h.0
    }
}

/// Whole seconds from `compiled_at` to `now`, rounded up, so that aged
/// timeouts never outlast their rule's deadline.
pub fn elapsed_secs(compiled_at: SystemTime, now: SystemTime) -> u32 {
    let elapsed = now.duration_since(compiled_at).unwrap_or(Duration::ZERO);
    let secs = elapsed
        .as_secs()
        .saturating_add(u64::from(elapsed.subsec_nanos() != 0));
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// What a desired flow's cookie says of its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifetime {
    Permanent,
    /// Seconds left, as of now.
    Left(u32),
}

/// Takes out of `installed` the flows the switch will expire well before
/// their rule does (a rule whose deadline is beyond OpenFlow's 16-bit
/// timeout, installed with a capped one), once they are within
/// [`REFRESH_MARGIN`] of it: reconciliation then adds them again, which
/// restarts their timeout without a gap. Also takes out timed flows whose
/// rule has become permanent under the same cookie.
///
/// `desired` was compiled `elapsed` seconds ago. Returns when to look again
/// (seconds from now) for the next such flow.
pub fn refresh_expiring(
    desired: &[crate::policy::FlowEntry],
    installed: &mut Vec<FlowStats>,
    elapsed: u32,
) -> Option<u32> {
    let margin = margin_secs();
    let mut lifetimes: HashMap<u64, Lifetime> = HashMap::new();
    for flow in desired {
        let lifetime = match flow.hard_timeout {
            0 => Lifetime::Permanent,
            t => Lifetime::Left(u32::from(t).saturating_sub(elapsed)),
        };
        lifetimes.entry(flow.cookie.0).or_insert(lifetime);
    }
    let mut wake: Option<u32> = None;
    installed.retain(|flow| {
        if flow.hard_timeout == 0 || !Cookie::is_augur(flow.cookie) {
            return true;
        }
        let left = u32::from(flow.hard_timeout).saturating_sub(flow.duration_sec);
        match lifetimes.get(&flow.cookie) {
            // Not wanted at all: reconciliation deletes it.
            None => true,
            Some(Lifetime::Permanent) => false,
            Some(Lifetime::Left(wanted)) if *wanted <= left.saturating_add(margin) => true,
            Some(Lifetime::Left(_)) if left <= margin => false,
            Some(Lifetime::Left(_)) => {
                let at = left - margin;
                wake = Some(wake.map_or(at, |w| w.min(at)));
                true
            }
        }
    });
    wake
}

/// What [`age_adds`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aged {
    /// Adds dropped because their rule expired since compilation.
    pub expired: usize,
    /// When a flow added with a capped timeout must be refreshed (seconds
    /// from now).
    pub wake: Option<u32>,
}

/// Shortens the hard timeouts of the adds by the `elapsed` seconds since
/// they were compiled, so that no flow outlives its rule's deadline, and
/// drops adds whose rule has expired meanwhile.
pub fn age_adds(changes: &mut Vec<FlowChange>, elapsed: u32) -> Aged {
    let margin = margin_secs();
    let mut aged = Aged::default();
    changes.retain_mut(|change| {
        let FlowChange::Add(flow) = change else {
            return true;
        };
        if flow.hard_timeout == 0 {
            return true;
        }
        let capped = flow.hard_timeout == u16::MAX;
        let left = u32::from(flow.hard_timeout).saturating_sub(elapsed);
        if left == 0 {
            aged.expired += 1;
            return false;
        }
        flow.hard_timeout = u16::try_from(left).unwrap_or(u16::MAX);
        if capped && left > margin {
            let at = left - margin;
            aged.wake = Some(aged.wake.map_or(at, |w| w.min(at)));
        }
        true
    });
    aged
}

fn margin_secs() -> u32 {
    u32::try_from(REFRESH_MARGIN.as_secs()).unwrap_or(u32::MAX)
}

/// Whether two compilations ask the same of every switch, hard timeouts
/// aside (they shrink with time; the switches' own timers handle them).
pub fn same_tables(a: &CompiledPolicy, b: &CompiledPolicy) -> bool {
    a.version == b.version
        && a.bridges.len() == b.bridges.len()
        && a.bridges
            .iter()
            .zip(&b.bridges)
            .all(|(x, y)| same_bridge(x, y))
}

fn same_bridge(a: &BridgeFlows, b: &BridgeFlows) -> bool {
    a.bridge == b.bridge
        && a.datapath_id == b.datapath_id
        && a.meters == b.meters
        && a.flows.len() == b.flows.len()
        && a.flows.iter().zip(&b.flows).all(|(x, y)| {
            x.table_id == y.table_id
                && x.priority == y.priority
                && x.cookie == y.cookie
                && x.idle_timeout == y.idle_timeout
                && (x.hard_timeout == 0) == (y.hard_timeout == 0)
                && x.match_ == y.match_
                && x.instructions == y.instructions
        })
}

/// Adds and deletes in a list of changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeCount {
    /// Flows added (or replaced).
    pub adds: usize,
    /// Flows deleted.
    pub deletes: usize,
}

/// Counts the adds and deletes.
pub fn count(changes: &[FlowChange]) -> ChangeCount {
    let mut c = ChangeCount::default();
    for change in changes {
        match change {
            FlowChange::Add(_) => c.adds += 1,
            FlowChange::Delete { .. } => c.deletes += 1,
        }
    }
    c
}

/// Whether the switch refused to open a bundle because it does not do
/// bundles at all (an OpenFlow 1.3 switch without the ONF extension), as
/// opposed to refusing what was in one.
pub fn bundles_unsupported(error: &ErrorMsg) -> bool {
    use augur_openflow::msg::codes::bad_request;
    match error.code {
        ErrorCode::Standard { error_type, code } if error_type == ErrorType::BAD_REQUEST => {
            matches!(
                code,
                bad_request::BAD_TYPE
                    | bad_request::BAD_EXPERIMENTER
                    | bad_request::BAD_EXP_TYPE
                    | bad_request::BAD_VERSION
            )
        }
        _ => false,
    }
}

/// The next delay after a failure: doubled, at most `max`.
pub fn backoff(previous: Option<Duration>, base: Duration, max: Duration) -> Duration {
    match previous {
        None => base.min(max),
        Some(d) => d.saturating_mul(2).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{FlowEntry, Origin, Stage};
    use augur_openflow::msg::FlowModFlags;
    use augur_openflow::{Instruction, Match};
    use std::time::UNIX_EPOCH;

    const RULE: Cookie = Cookie(0x6175_0001_0000_0003);
    const OTHER_RULE: Cookie = Cookie(0x6175_0001_0000_0004);

    fn entry(cookie: Cookie, hard_timeout: u16, priority: u16) -> FlowEntry {
        FlowEntry {
            stage: Stage::Acl,
            table_id: Stage::Acl.table_id(),
            priority,
            match_: Match::new().tcp_dst(priority),
            instructions: vec![Instruction::GotoTable(6)],
            cookie,
            hard_timeout,
            idle_timeout: 0,
        }
    }

    fn installed(cookie: u64, hard_timeout: u16, duration_sec: u32, priority: u16) -> FlowStats {
        FlowStats {
            table_id: Stage::Acl.table_id(),
            duration_sec,
            duration_nsec: 0,
            priority,
            idle_timeout: 0,
            hard_timeout,
            flags: FlowModFlags::default(),
            importance: 0,
            cookie,
            packet_count: 0,
            byte_count: 0,
            match_: Match::new().tcp_dst(priority),
            instructions: vec![Instruction::GotoTable(6)],
        }
    }

    #[test]
    fn versions_follow_content_not_layout() {
        let text = include_str!("../../examples/policy/three-tier.toml");
        let settings = CompileSettings::default();
        let parse = |t: &str| Policy::parse(t, "p.toml", UNIX_EPOCH).unwrap();
        let v = policy_version(&parse(text), &settings);
        let commented = format!("# a comment\n\n{text}");
        assert_eq!(policy_version(&parse(&commented), &settings), v);
        let edited = text.replace("port = 5432", "port = 5433");
        assert_ne!(policy_version(&parse(&edited), &settings), v);
        let other = CompileSettings {
            deny_sample_pps: 5,
            ..settings.clone()
        };
        assert_ne!(policy_version(&parse(text), &other), v);
        let renumbered = CompileSettings {
            version: 77,
            ..settings.clone()
        };
        assert_eq!(policy_version(&parse(text), &renumbered), v);
    }

    #[test]
    fn fnv_is_the_published_function() {
        assert_eq!(Fnv1a::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn elapsed_rounds_up() {
        let t = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(elapsed_secs(t, t), 0);
        assert_eq!(elapsed_secs(t, t + Duration::from_millis(1)), 1);
        assert_eq!(elapsed_secs(t, t + Duration::from_secs(5)), 5);
        assert_eq!(
            elapsed_secs(t + Duration::from_secs(5), t),
            0,
            "clock stepped back"
        );
    }

    #[test]
    fn capped_flows_are_refreshed_before_the_switch_expires_them() {
        // A rule 30 days away: compiled with the capped 65535 s.
        let desired = vec![entry(RULE, u16::MAX, 10)];
        // Installed 65535 - 100 s ago: 100 s left, more than the margin.
        let mut flows = vec![installed(RULE.0, u16::MAX, 65_435, 10)];
        assert_eq!(refresh_expiring(&desired, &mut flows, 0), Some(40));
        assert_eq!(flows.len(), 1, "not yet");
        // 30 s left: taken out, so that reconciliation re-adds it.
        let mut flows = vec![installed(RULE.0, u16::MAX, 65_505, 10)];
        assert_eq!(refresh_expiring(&desired, &mut flows, 0), None);
        assert!(flows.is_empty());
    }

    #[test]
    fn flows_that_expire_with_their_rule_are_left_to_expire() {
        // A rule with 1000 s left, installed with them 500 s ago: both agree.
        let desired = vec![entry(RULE, 500, 10)];
        let mut flows = vec![installed(RULE.0, 1000, 500, 10)];
        assert_eq!(refresh_expiring(&desired, &mut flows, 0), None);
        assert_eq!(flows.len(), 1);
        // The same, compiled 400 s ago (its timeout then was 900).
        let desired = vec![entry(RULE, 900, 10)];
        assert_eq!(refresh_expiring(&desired, &mut flows, 400), None);
        assert_eq!(flows.len(), 1);
    }

    #[test]
    fn timed_flows_of_a_rule_now_permanent_are_replaced() {
        let desired = vec![entry(RULE, 0, 10)];
        let mut flows = vec![
            installed(RULE.0, 300, 10, 10),
            installed(OTHER_RULE.0, 300, 10, 11),
            installed(0x1234, 5, 1, 12),
        ];
        refresh_expiring(&desired, &mut flows, 0);
        let cookies: Vec<u64> = flows.iter().map(|f| f.cookie).collect();
        assert_eq!(
            cookies,
            [OTHER_RULE.0, 0x1234],
            "unwanted and foreign flows stay"
        );
    }

    #[test]
    fn adds_are_aged_and_expired_ones_dropped() {
        let mut changes = vec![
            FlowChange::Add(entry(RULE, 100, 10)),
            FlowChange::Add(entry(OTHER_RULE, 20, 11)),
            FlowChange::Add(entry(Cookie::new(1, Origin::Pipeline(Stage::Acl)), 0, 12)),
            FlowChange::Add(entry(RULE, u16::MAX, 13)),
        ];
        let aged = age_adds(&mut changes, 30);
        assert_eq!(aged.expired, 1);
        let timeouts: Vec<u16> = changes
            .iter()
            .map(|c| match c {
                FlowChange::Add(f) => f.hard_timeout,
                FlowChange::Delete { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(timeouts, [70, 0, 65_505]);
        assert_eq!(aged.wake, Some(65_505 - 60), "the capped one is refreshed");
    }

    #[test]
    fn comparisons_ignore_shrinking_timeouts() {
        let bridge = |t: u16| BridgeFlows {
            bridge: "br0".into(),
            datapath_id: 1,
            flows: vec![entry(RULE, t, 10)],
            meters: Vec::new(),
        };
        let compiled = |t: u16| CompiledPolicy {
            version: 1,
            bridges: vec![bridge(t)],
            next_refresh: None,
            warnings: Vec::new(),
        };
        assert!(same_tables(&compiled(100), &compiled(90)));
        assert!(!same_tables(&compiled(100), &compiled(0)));
        let mut other = compiled(100);
        other.version = 2;
        assert!(!same_tables(&compiled(100), &other));
    }

    #[test]
    fn only_a_refused_bundle_type_means_no_bundles() {
        use augur_openflow::msg::codes::{bad_request, bundle_failed};
        let e = |t, c| ErrorMsg::new(t, c, Vec::new());
        assert!(bundles_unsupported(&e(
            ErrorType::BAD_REQUEST,
            bad_request::BAD_TYPE
        )));
        assert!(bundles_unsupported(&e(
            ErrorType::BAD_REQUEST,
            bad_request::BAD_EXPERIMENTER
        )));
        assert!(!bundles_unsupported(&e(
            ErrorType::BUNDLE_FAILED,
            bundle_failed::MSG_FAILED
        )));
        assert!(!bundles_unsupported(&e(
            ErrorType::BAD_REQUEST,
            bad_request::EPERM
        )));
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(300);
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let next = backoff(d, base, max);
            seen.push(next.as_secs());
            d = Some(next);
        }
        assert_eq!(seen, [5, 10, 20, 40, 80, 160, 300, 300]);
    }
}
