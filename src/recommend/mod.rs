//! Recommendations: the policy diff that predictions, signatures and the
//! current policy call for.
//!
//! [`recommend`] turns one prediction cycle into [`Recommendation`]s, each a
//! [`PolicyChange`] with a stable id, the probability behind it, a
//! [`RiskAssessment`] and one line of evidence. The kinds:
//!
//! | kind | when |
//! |---|---|
//! | `add_pair` | a key predicted with `p ≥ open_threshold` that no rule covers, between endpoints no rule connects at all |
//! | `open_port` | the same, but a rule already lets the pair talk on the key's protocol (other ports) |
//! | `allow_protocol` | the same, but the pair is allowed only on other protocols |
//! | `label_rule` | every member of a source label (≥ `label_min_members` VMs) uses or is predicted to use the same destination (a VM, or every member of a destination label) and service, and some are not covered: one `label:` rule instead of one rule per pair |
//! | `time_bound` | a key that recurs (periodicity confidence ≥ `periodic_confidence`) whose next run falls within `periodic_horizon` and is not covered: a rule valid from `lead` before the run until `periodic_open_for` after it, expiring by hard timeout |
//! | `set_limit` | a rate-limited rule whose observed volume reaches `limit_approach` of its limit (raise it), or, with `limit_unlimited`, a used rule without one (set it): rate from the volume per window of the pairs it serves, `p95` summed (or the busiest pair's maximum, if larger), with `limit_headroom_percent` on top |
//! | `remove_rule` | a rule none of whose keys carried allowed traffic for `unused_after` (with at least that much history) and none of whose candidate keys is predicted with `p ≥ keep_above` |
//! | `narrow_rule` | a rule spanning at least `narrow_min_pairs` pairs or a port range, of which at most `narrow_max_used_share` are used: replaced by rules for what is used |
//!
//! Only keys the current policy does not cover are proposed as openings,
//! and every change is written in inline-selector form (`vm:ID`,
//! `label:KEY=VALUE`, and an `[endpoints.*]` table for an address), so that
//! [`PolicyChange::to_toml`] can be pasted into the policy file.
//!
//! A recommendation's id is a hash (FNV-1a, 64 bits) of the change's
//! canonical text, so the same change gets the same id from cycle to cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augur_flows::{
    Aggregator, Endpoint as FlowEndpoint, EndpointId, FlowKey, Periodicity, Protocol, Trend,
};
use serde::{Deserialize, Serialize};

use crate::daemon::config::Interval;
use crate::policy::coverage::{Coverage, live_at};
use crate::policy::{Policy, PortRange, Proto, Rate, RateUnit, Rule, Selector};
use crate::predict::{CandidateSource, Prediction};
use crate::risk::{RiskAssessment, RiskContext, RiskSettings, Unit, assess};

mod apply;
#[cfg(test)]
mod tests;

pub use apply::{Applied, ApplyError};

/// One side of a proposed rule. Serialized as its text (`vm:web-1`,
/// `label:tier=web`, `203.0.113.9`, `web`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// VMs, by inline selector.
    Selector(Selector),
    /// An address outside the inventory (becomes an `[endpoints]` table).
    Address(IpAddr),
    /// Every address outside the inventory (an `[endpoints]` table for
    /// `0.0.0.0/0` and `::/0`): clients of a public service, or a service
    /// reached at many addresses.
    Outside,
    /// A group or endpoint the policy declares (in rewritten rules).
    Name(String),
}

impl Peer {
    /// The name a rule uses for it.
    pub fn rule_name(&self) -> String {
        match self {
            Peer::Selector(s) => s.to_string(),
            Peer::Address(ip) => address_endpoint_name(*ip),
            Peer::Outside => OUTSIDE_ENDPOINT.to_owned(),
            Peer::Name(name) => name.clone(),
        }
    }
}

impl Serialize for Peer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Selector(s) => write!(f, "{s}"),
            Peer::Address(ip) => write!(f, "{ip}"),
            Peer::Outside => f.write_str("outside"),
            Peer::Name(name) => f.write_str(name),
        }
    }
}

/// The endpoint a recommendation declares for [`Peer::Outside`].
pub const OUTSIDE_ENDPOINT: &str = "addr-any";

/// The endpoint name a recommendation declares for an address: letters,
/// digits, `-` and `.` only, as policy names must be.
fn address_endpoint_name(ip: IpAddr) -> String {
    // Dots would split a TOML table header.
    format!("addr-{}", ip.to_string().replace([':', '.'], "-"))
}

/// An allow rule as a recommendation proposes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Opening {
    /// Sources.
    pub from: Vec<Peer>,
    /// Destinations.
    pub to: Vec<Peer>,
    /// Protocol.
    pub proto: Proto,
    /// Ports (tcp/udp), `None` for all.
    pub ports: Option<PortRange>,
    /// A rate limit.
    pub rate: Option<Rate>,
    /// Unix seconds at which it expires.
    pub expires: Option<i64>,
    /// A name for the rule.
    pub name: Option<String>,
}

impl Opening {
    fn service(&self) -> String {
        match self.ports {
            Some(ports) => format!("{}/{}", ports, self.proto.name()),
            None => self.proto.name().to_owned(),
        }
    }

    fn one_line(&self) -> String {
        let names = |peers: &[Peer]| {
            peers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut line = format!(
            "{} -> {} {}",
            names(&self.from),
            names(&self.to),
            self.service()
        );
        if let Some(rate) = self.rate {
            let _ = write!(line, " rate {}", rate_text(rate));
        }
        if let Some(expires) = self.expires {
            let _ = write!(line, " until {}", rfc3339(expires));
        }
        line
    }

    /// The `[[allow]]` table (with `[endpoints.*]` tables for addresses).
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for peer in self.from.iter().chain(&self.to) {
            match peer {
                Peer::Address(ip) => {
                    let _ = writeln!(
                        out,
                        "[endpoints.{}]\ncidrs = [\"{}\"]\n",
                        address_endpoint_name(*ip),
                        ipnet::IpNet::from(*ip)
                    );
                }
                Peer::Outside => {
                    let _ = writeln!(
                        out,
                        "[endpoints.{OUTSIDE_ENDPOINT}]\ncidrs = [\"0.0.0.0/0\", \"::/0\"]\n"
                    );
                }
                Peer::Selector(_) | Peer::Name(_) => {}
            }
        }
        let list = |peers: &[Peer]| {
            let names: Vec<String> = peers
                .iter()
                .map(|p| format!("\"{}\"", toml_escape(&p.rule_name())))
                .collect();
            if names.len() == 1 {
                names.concat()
            } else {
                format!("[{}]", names.join(", "))
            }
        };
        out.push_str("[[allow]]\n");
        if let Some(name) = &self.name {
            let _ = writeln!(out, "name = \"{}\"", toml_escape(name));
        }
        let _ = writeln!(out, "from = {}", list(&self.from));
        let _ = writeln!(out, "to = {}", list(&self.to));
        let _ = writeln!(out, "proto = \"{}\"", self.proto.name());
        match self.ports {
            Some(p) if p.first == p.last => {
                let _ = writeln!(out, "port = {}", p.first);
            }
            Some(p) => {
                let _ = writeln!(out, "port = \"{p}\"");
            }
            None => {}
        }
        if let Some(rate) = self.rate {
            let _ = writeln!(out, "rate = \"{}\"", rate_text(rate));
            if rate.burst > 0 {
                let _ = writeln!(out, "burst = {}", rate.burst);
            }
        }
        if let Some(expires) = self.expires {
            let _ = writeln!(out, "expires = {}", rfc3339(expires));
        }
        out
    }
}

fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn rate_text(rate: Rate) -> String {
    match rate.unit {
        RateUnit::Kbps if rate.rate % 1_000_000 == 0 => format!("{}Gbit", rate.rate / 1_000_000),
        RateUnit::Kbps if rate.rate % 1_000 == 0 => format!("{}Mbit", rate.rate / 1_000),
        RateUnit::Kbps => format!("{}kbit", rate.rate),
        RateUnit::Pktps => format!("{}pps", rate.rate),
    }
}

/// A proposed change of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PolicyChange {
    /// Allow a pair no rule connects.
    AddPair {
        /// The new rule.
        rule: Opening,
    },
    /// Allow a pair on a port (it is allowed on others of the protocol).
    OpenPort {
        /// The new rule.
        rule: Opening,
        /// A rule that already lets the pair talk.
        beside: u32,
    },
    /// Allow a pair on a protocol (it is allowed on another).
    AllowProtocol {
        /// The new rule.
        rule: Opening,
        /// A rule that already lets the pair talk.
        beside: u32,
    },
    /// One label rule in place of a rule per member.
    LabelRule {
        /// The new rule.
        rule: Opening,
        /// Members (VM ids) it adds that no rule covers yet.
        new_members: Vec<String>,
    },
    /// A time-bound opening for a recurring flow.
    TimeBound {
        /// The new rule, with `expires`.
        rule: Opening,
        /// When to add it, Unix seconds (`lead` before the predicted run).
        open_at: i64,
        /// The predicted start of the run, Unix seconds.
        run_at: i64,
    },
    /// Set or raise the transfer limit of a rule.
    SetLimit {
        /// The rule's index.
        rule: u32,
        /// The rule's description.
        label: String,
        /// The rule as it should read.
        rewritten: Opening,
        /// The limit now, if any.
        current: Option<Rate>,
        /// The limit proposed.
        proposed: Rate,
    },
    /// Remove a rule unused for a long time.
    RemoveRule {
        /// The rule's index.
        rule: u32,
        /// The rule's description.
        label: String,
    },
    /// Replace a wide rule by what of it is used.
    NarrowRule {
        /// The rule's index.
        rule: u32,
        /// The rule's description.
        label: String,
        /// The rules that replace it.
        replacement: Vec<Opening>,
    },
}

impl PolicyChange {
    /// The rule it would add, for the kinds that open something.
    pub fn opening(&self) -> Option<&Opening> {
        match self {
            PolicyChange::AddPair { rule }
            | PolicyChange::OpenPort { rule, .. }
            | PolicyChange::AllowProtocol { rule, .. }
            | PolicyChange::LabelRule { rule, .. }
            | PolicyChange::TimeBound { rule, .. } => Some(rule),
            PolicyChange::SetLimit { rewritten, .. } => Some(rewritten),
            PolicyChange::RemoveRule { .. } | PolicyChange::NarrowRule { .. } => None,
        }
    }

    /// Its protocol, where it opens something.
    pub fn proto(&self) -> Option<Proto> {
        self.opening().map(|o| o.proto)
    }

    /// Its ports, where it opens something with ports.
    pub fn ports(&self) -> Option<PortRange> {
        self.opening().and_then(|o| o.ports)
    }

    /// Its sources and destinations (empty for removals).
    pub fn sides(&self) -> (&[Peer], &[Peer]) {
        match self.opening() {
            Some(o) => (&o.from, &o.to),
            None => (&[], &[]),
        }
    }

    /// New limit over old, for a raised limit.
    pub fn limit_factor(&self) -> Option<f64> {
        match self {
            PolicyChange::SetLimit {
                current: Some(current),
                proposed,
                ..
            } if current.unit == proposed.unit && current.rate > 0 => {
                Some(f64::from(proposed.rate) / f64::from(current.rate))
            }
            _ => None,
        }
    }

    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicyChange::AddPair { .. } => "add_pair",
            PolicyChange::OpenPort { .. } => "open_port",
            PolicyChange::AllowProtocol { .. } => "allow_protocol",
            PolicyChange::LabelRule { .. } => "label_rule",
            PolicyChange::TimeBound { .. } => "time_bound",
            PolicyChange::SetLimit { .. } => "set_limit",
            PolicyChange::RemoveRule { .. } => "remove_rule",
            PolicyChange::NarrowRule { .. } => "narrow_rule",
        }
    }

    /// What to paste into (or change in) the policy file.
    pub fn to_toml(&self) -> String {
        match self {
            PolicyChange::AddPair { rule }
            | PolicyChange::OpenPort { rule, .. }
            | PolicyChange::AllowProtocol { rule, .. }
            | PolicyChange::LabelRule { rule, .. } => rule.to_toml(),
            PolicyChange::TimeBound { rule, open_at, .. } => {
                format!("# add at {}\n{}", rfc3339(*open_at), rule.to_toml())
            }
            PolicyChange::SetLimit {
                label, rewritten, ..
            } => format!("# replaces {label}\n{}", rewritten.to_toml()),
            PolicyChange::RemoveRule { label, .. } => format!("# remove {label}\n"),
            PolicyChange::NarrowRule {
                label, replacement, ..
            } => {
                let mut out = format!("# replaces {label}\n");
                for (n, rule) in replacement.iter().enumerate() {
                    if n > 0 {
                        out.push('\n');
                    }
                    out.push_str(&rule.to_toml());
                }
                out
            }
        }
    }
}

impl fmt::Display for PolicyChange {
    /// One line; also the canonical text the id is a hash of.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyChange::AddPair { rule } => write!(f, "add pair {}", rule.one_line()),
            PolicyChange::OpenPort { rule, beside } => {
                write!(f, "open port {} (beside rule #{beside})", rule.one_line())
            }
            PolicyChange::AllowProtocol { rule, beside } => {
                write!(
                    f,
                    "allow protocol {} (beside rule #{beside})",
                    rule.one_line()
                )
            }
            PolicyChange::LabelRule { rule, .. } => write!(f, "label rule {}", rule.one_line()),
            PolicyChange::TimeBound { rule, open_at, .. } => write!(
                f,
                "time-bound {} from {}",
                rule.one_line(),
                rfc3339(*open_at)
            ),
            PolicyChange::SetLimit {
                label,
                current,
                proposed,
                ..
            } => match current {
                Some(c) => write!(
                    f,
                    "raise limit of {label} from {} to {}",
                    rate_text(*c),
                    rate_text(*proposed)
                ),
                None => write!(f, "set limit of {label} to {}", rate_text(*proposed)),
            },
            PolicyChange::RemoveRule { label, .. } => write!(f, "remove {label}"),
            PolicyChange::NarrowRule {
                label, replacement, ..
            } => {
                let parts: Vec<String> = replacement.iter().map(Opening::one_line).collect();
                write!(f, "narrow {label} to {}", parts.join("; "))
            }
        }
    }
}

/// One recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Stable id: the same change has the same id in every cycle.
    pub id: String,
    /// The change.
    pub change: PolicyChange,
    /// The probability it is needed (for removals: that the rule still is).
    pub probability: f64,
    /// How risky it is, and why.
    pub risk: RiskAssessment,
    /// One line of evidence.
    pub explanation: String,
    /// The flow keys it is about.
    pub keys: Vec<FlowKey>,
}

impl Recommendation {
    /// `id kind level p=… change — explanation`.
    pub fn one_line(&self) -> String {
        format!(
            "{} {} p={:.2} risk={:.2} {} — {}",
            self.id,
            self.risk.level,
            self.probability,
            self.risk.score.get(),
            self.change,
            self.explanation
        )
    }
}

/// The id of a change: FNV-1a (64 bits) of its canonical text.
pub fn change_id(change: &PolicyChange) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in change.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The `[recommend]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendSettings {
    /// Only predictions at least this likely are proposed as openings.
    pub open_threshold: Unit,
    /// A label rule needs at least this many member VMs.
    pub label_min_members: u32,
    /// Recurring keys whose fit is at least this confident get time-bound
    /// openings.
    pub periodic_confidence: Unit,
    /// How far ahead a predicted run may be to get a time-bound opening.
    pub periodic_horizon: Interval,
    /// How long before the predicted run the opening is added.
    pub lead: Interval,
    /// How long after the predicted start it stays (then expires).
    pub periodic_open_for: Interval,
    /// A rule unused this long may be removed or narrowed.
    pub unused_after: Interval,
    /// ...if none of its keys is predicted at least this likely.
    pub keep_above: Unit,
    /// A rule spanning at least this many pairs may be narrowed.
    pub narrow_min_pairs: u32,
    /// ...if at most this share of its pairs (or ports) is used.
    pub narrow_max_used_share: Unit,
    /// Raise a limit once observed volume reaches this share of it.
    pub limit_approach: Unit,
    /// Headroom over observed volume in a proposed limit, in percent.
    pub limit_headroom_percent: u32,
    /// Propose limits for used rules that have none.
    pub limit_unlimited: bool,
}

impl Default for RecommendSettings {
    fn default() -> RecommendSettings {
        let interval = |secs| Interval(Duration::from_secs(secs));
        RecommendSettings {
            open_threshold: Unit::new(0.5).unwrap_or_default(),
            label_min_members: 2,
            periodic_confidence: Unit::new(0.8).unwrap_or_default(),
            periodic_horizon: interval(6 * 3_600),
            lead: interval(300),
            periodic_open_for: interval(3_600),
            unused_after: interval(30 * 86_400),
            keep_above: Unit::new(0.05).unwrap_or_default(),
            narrow_min_pairs: 4,
            narrow_max_used_share: Unit::new(0.5).unwrap_or_default(),
            limit_approach: Unit::new(0.8).unwrap_or_default(),
            limit_headroom_percent: 50,
            limit_unlimited: false,
        }
    }
}

impl RecommendSettings {
    /// The checks serde cannot make: `(setting, reason)` of the first
    /// problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.label_min_members < 2 {
            return Err((
                "recommend.label_min_members".into(),
                "must be at least 2".into(),
            ));
        }
        if self.narrow_min_pairs < 2 {
            return Err((
                "recommend.narrow_min_pairs".into(),
                "must be at least 2".into(),
            ));
        }
        if self.unused_after.get().is_zero() {
            return Err((
                "recommend.unused_after".into(),
                "must be longer than 0".into(),
            ));
        }
        if self.periodic_open_for.get().is_zero() {
            return Err((
                "recommend.periodic_open_for".into(),
                "must be longer than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Everything one recommendation cycle reads.
#[derive(Debug, Clone, Copy)]
pub struct RecommendInput<'a> {
    /// This cycle's predictions.
    pub predictions: &'a [Prediction],
    /// The observed history.
    pub aggregator: &'a Aggregator,
    /// The policy in force.
    pub policy: &'a Policy,
    /// Its coverage over the aggregator's endpoint table.
    pub coverage: &'a Coverage,
    /// Sources flagged as scanning (besides those the predictions flag).
    pub scanning: &'a HashSet<EndpointId>,
}

/// The recommendations for this cycle, most probable first (ties: by id).
pub fn recommend(
    input: &RecommendInput<'_>,
    settings: &RecommendSettings,
    risk: &RiskSettings,
    now: i64,
) -> Vec<Recommendation> {
    let cycle = Cycle::new(input, settings, risk, now);
    let mut out = Vec::new();
    cycle.openings(&mut out);
    cycle.limits(&mut out);
    cycle.least_privilege(&mut out);
    out.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then_with(|| a.id.cmp(&b.id))
    });
    out.dedup_by(|a, b| a.id == b.id);
    out
}

fn system_time(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH
            .checked_add(Duration::from_secs(s))
            .unwrap_or(UNIX_EPOCH),
        Err(_) => UNIX_EPOCH,
    }
}

/// Predictions by key, shared by the label passes of one cycle.
struct Lookup<'m, 'p> {
    /// Every prediction's probability.
    predicted: &'m HashMap<FlowKey, f64>,
    /// The opening candidates.
    by_key: &'m HashMap<FlowKey, &'p Prediction>,
}

/// Which end of its keys a label rule names by label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LabelEnd {
    /// The sources: every web VM to the database.
    Source,
    /// The destinations: monitoring to every web VM.
    Destination,
}

impl LabelEnd {
    /// The key's fixed end and its labelled end.
    fn split(self, key: &FlowKey) -> (EndpointId, EndpointId) {
        match self {
            LabelEnd::Source => (key.dst, key.src),
            LabelEnd::Destination => (key.src, key.dst),
        }
    }

    /// The key between `fixed` and the labelled end `member`.
    fn join(self, fixed: EndpointId, member: EndpointId, protocol: Protocol, port: u16) -> FlowKey {
        let (src, dst) = match self {
            LabelEnd::Source => (member, fixed),
            LabelEnd::Destination => (fixed, member),
        };
        FlowKey {
            src,
            dst,
            protocol,
            service_port: port,
        }
    }
}

/// A label every member of which uses one service with one endpoint (see
/// [`Cycle::label_groups`]).
#[derive(Debug)]
struct LabelGroup {
    /// The label, `key=value`.
    label: String,
    /// Its members.
    members: BTreeSet<EndpointId>,
    /// The endpoint at the other end.
    fixed: EndpointId,
    /// The candidate keys the group covers, one per member that had one.
    keys: Vec<FlowKey>,
}

/// One cycle's shared state.
struct Cycle<'a> {
    input: &'a RecommendInput<'a>,
    settings: &'a RecommendSettings,
    risk: &'a RiskSettings,
    now: i64,
    at: SystemTime,
    /// Members of each VM label (`key=value`), by label text.
    label_members: HashMap<String, BTreeSet<EndpointId>>,
    scanning: HashSet<EndpointId>,
    /// Candidate keys whose traffic carried something (see
    /// [`augur_flows::KeyActivity::carried_payload`]).
    worked: HashSet<FlowKey>,
    /// Services (destination, protocol, port) that some candidate key
    /// reached with traffic that carried something.
    served: HashSet<(EndpointId, Protocol, u16)>,
}

impl<'a> Cycle<'a> {
    fn new(
        input: &'a RecommendInput<'a>,
        settings: &'a RecommendSettings,
        risk: &'a RiskSettings,
        now: i64,
    ) -> Cycle<'a> {
        let endpoints = input.aggregator.endpoints();
        let mut label_members: HashMap<String, BTreeSet<EndpointId>> = HashMap::new();
        for (id, endpoint) in endpoints.iter() {
            if matches!(endpoint, FlowEndpoint::Vm(_)) {
                for label in endpoints.label_texts(id) {
                    label_members
                        .entry(label.to_owned())
                        .or_default()
                        .insert(id);
                }
            }
        }
        let mut scanning = input.scanning.clone();
        scanning.extend(
            input
                .predictions
                .iter()
                .filter(|p| p.evidence.source_scanning)
                .map(|p| p.key.src),
        );
        // One pass over the predictions for both: a cycle can hold a
        // million of them.
        let mut worked = HashSet::new();
        let mut served = HashSet::new();
        for p in input
            .predictions
            .iter()
            .filter(|p| p.evidence.carried_payload)
        {
            worked.insert(p.key);
            served.insert((p.key.dst, p.key.protocol, p.key.service_port));
        }
        Cycle {
            input,
            settings,
            risk,
            now,
            at: system_time(now),
            label_members,
            scanning,
            worked,
            served,
        }
    }

    fn endpoint(&self, id: EndpointId) -> Option<&FlowEndpoint> {
        self.input.aggregator.endpoints().endpoint(id)
    }

    fn name(&self, id: EndpointId) -> String {
        self.endpoint(id)
            .map_or_else(|| format!("#{}", id.0), ToString::to_string)
    }

    fn peer(&self, id: EndpointId) -> Option<Peer> {
        match self.endpoint(id)? {
            FlowEndpoint::Vm(vm) => Some(Peer::Selector(Selector::Vm(crate::inventory::VmId(
                vm.to_string(),
            )))),
            FlowEndpoint::External(ip) if ip.is_unspecified() => Some(Peer::Outside),
            FlowEndpoint::External(ip) => Some(Peer::Address(*ip)),
        }
    }

    /// `(key, value)` labels of an endpoint.
    fn labels(&self, id: EndpointId) -> Vec<(String, String)> {
        self.input
            .aggregator
            .endpoints()
            .label_texts(id)
            .into_iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Labels every one of `ids` carries.
    fn shared_labels(&self, ids: &BTreeSet<EndpointId>) -> Vec<(String, String)> {
        let mut iter = ids.iter();
        let Some(&first) = iter.next() else {
            return Vec::new();
        };
        let mut shared = self.labels(first);
        for &id in iter {
            let labels = self.labels(id);
            shared.retain(|l| labels.contains(l));
        }
        shared
    }

    fn assess(
        &self,
        change: PolicyChange,
        probability: f64,
        context: RiskContext,
        explanation: String,
        keys: Vec<FlowKey>,
    ) -> Recommendation {
        let risk = assess(&change, &context, self.risk);
        Recommendation {
            id: change_id(&change),
            change,
            probability,
            risk,
            explanation,
            keys,
        }
    }

    /// Openings: label rules, time-bound, pair/port/protocol.
    fn openings(&self, out: &mut Vec<Recommendation>) {
        let coverage = self.input.coverage;
        let threshold = self.settings.open_threshold.get();
        // Candidates: uncovered keys predicted likely enough.
        let candidates: Vec<&Prediction> = self
            .input
            .predictions
            .iter()
            .filter(|p| p.probability >= threshold && p.probability.is_finite())
            .filter(|p| coverage.covering_rule(&p.key, self.at).is_none())
            .filter(|p| {
                !self.is_scan_fan_out(p) && !is_unanswered(p) && !self.is_unserved_inbound(p)
            })
            .collect();
        let mut taken: HashSet<FlowKey> = HashSet::new();
        self.time_bound(&candidates, &mut taken, out);
        // Built once for both label passes: every prediction's probability
        // (members may be covered already), and the candidates by key.
        let predicted: HashMap<FlowKey, f64> = self
            .input
            .predictions
            .iter()
            .map(|p| (p.key, p.probability))
            .collect();
        let by_key: HashMap<FlowKey, &Prediction> =
            candidates.iter().map(|p| (p.key, *p)).collect();
        let lookup = Lookup {
            predicted: &predicted,
            by_key: &by_key,
        };
        self.label_rules(&candidates, &lookup, &mut taken, out);
        self.destination_label_rules(&candidates, &lookup, &mut taken, out);
        for p in candidates {
            if taken.contains(&p.key) {
                continue;
            }
            if let Some(rec) = self.pair_opening(p) {
                out.push(rec);
            }
        }
    }

    /// Whether a prediction is part of its source's scan or fan-out: the
    /// source is flagged as scanning, and the key either never carried
    /// anything or reaches a single external address. Proposing each such
    /// key for review buried the queue (ctu13: 13,000 reviews in 11 minutes
    /// from three fan-out hosts, each to one of thousands of addresses).
    /// The source's conversations with VMs and with the outside as a whole
    /// are still proposed, at the risk its scanning earns them.
    fn is_scan_fan_out(&self, p: &Prediction) -> bool {
        self.scanning.contains(&p.key.src)
            && (!p.evidence.carried_payload
                || matches!(self.peer(p.key.dst), Some(Peer::Address(_))))
    }

    /// Whether a prediction is of one external address reaching a VM's TCP
    /// port that nobody was ever served on and that this address was never
    /// let through to: nothing says the VM offers the service, and on the
    /// campus traces such keys are brute-forcers retrying telnet every
    /// minute, whose return the model rightly expects. (A new public
    /// service is proposed through its key of the outside as a whole, once
    /// many addresses ask for it.)
    fn is_unserved_inbound(&self, p: &Prediction) -> bool {
        p.key.protocol == Protocol::TCP
            && p.evidence.addresses <= 1
            && p.evidence.last_seen.is_none()
            && matches!(self.endpoint(p.key.src), Some(FlowEndpoint::External(ip)) if !ip.is_unspecified())
            && matches!(self.endpoint(p.key.dst), Some(FlowEndpoint::Vm(_)))
            && !self
                .served
                .contains(&(p.key.dst, p.key.protocol, p.key.service_port))
    }

    fn key_opening(&self, key: &FlowKey) -> Option<Opening> {
        Some(Opening {
            from: vec![self.peer(key.src)?],
            to: vec![self.peer(key.dst)?],
            proto: proto_of(key.protocol)?,
            ports: ports_of(key),
            rate: None,
            expires: None,
            name: None,
        })
    }

    fn pair_context(&self, p: &Prediction) -> RiskContext {
        RiskContext {
            probability: p.probability,
            observed: self.observed(&p.key) || p.evidence.peer_support >= 0.5,
            source_scanning: self.scanning.contains(&p.key.src),
            pairs: 1,
            src_labels: self.labels(p.key.src),
            dst_labels: self.labels(p.key.dst),
        }
    }

    fn pair_opening(&self, p: &Prediction) -> Option<Recommendation> {
        let rule = self.key_opening(&p.key)?;
        let between = self
            .input
            .coverage
            .rules_between(p.key.src, p.key.dst, self.at);
        let same_proto = between.iter().copied().find(|&n| {
            self.rule(n)
                .is_some_and(|r| proto_of(p.key.protocol) == Some(r.proto))
        });
        let change = match (between.first(), same_proto) {
            (None, _) => PolicyChange::AddPair { rule },
            (Some(_), Some(beside)) => PolicyChange::OpenPort { rule, beside },
            (Some(&beside), None) => PolicyChange::AllowProtocol { rule, beside },
        };
        let explanation = self.explain_key(p);
        Some(self.assess(
            change,
            p.probability,
            self.pair_context(p),
            explanation,
            vec![p.key],
        ))
    }

    fn rule(&self, index: u32) -> Option<&'a Rule> {
        self.input.policy.rules.iter().find(|r| r.index == index)
    }

    fn time_bound(
        &self,
        candidates: &[&Prediction],
        taken: &mut HashSet<FlowKey>,
        out: &mut Vec<Recommendation>,
    ) {
        let horizon = i64::try_from(self.settings.periodic_horizon.get().as_secs()).unwrap_or(0);
        let lead = i64::try_from(self.settings.lead.get().as_secs()).unwrap_or(0);
        let open_for = i64::try_from(self.settings.periodic_open_for.get().as_secs()).unwrap_or(0);
        for p in candidates {
            let Some(period) = p.evidence.periodicity else {
                continue;
            };
            // An opening that would not close between runs is no time
            // bound: such keys get an ordinary rule.
            if period.confidence < self.settings.periodic_confidence.get()
                || period.period_s <= (open_for + lead) as f64
            {
                continue;
            }
            let Some(next) = crate::predict::features::next_run(&period, self.now) else {
                continue;
            };
            let run_at = next as i64;
            if run_at < self.now || run_at > self.now.saturating_add(horizon) {
                continue;
            }
            let Some(mut rule) = self.key_opening(&p.key) else {
                continue;
            };
            rule.expires = Some(run_at.saturating_add(open_for));
            let change = PolicyChange::TimeBound {
                rule,
                open_at: run_at.saturating_sub(lead).max(self.now),
                run_at,
            };
            taken.insert(p.key);
            out.push(self.assess(
                change,
                p.probability,
                self.pair_context(p),
                self.explain_key(p),
                vec![p.key],
            ));
        }
    }

    /// Whether a member's key to a destination counts as used or needed:
    /// traffic allowed, or predicted likely enough.
    fn member_uses(&self, key: &FlowKey, predicted: &HashMap<FlowKey, f64>) -> bool {
        predicted
            .get(key)
            .is_some_and(|&p| p >= self.settings.open_threshold.get())
            || self
                .input
                .aggregator
                .activity_of(key)
                .is_some_and(|a| a.last_allowed.is_some())
    }

    /// Where every member of a source label uses one service of one
    /// destination, one rule from the label (which also covers the members
    /// that come later); where that label reaches every member of a
    /// destination label on the service, one rule between the two labels.
    fn label_rules(
        &self,
        candidates: &[&Prediction],
        lookup: &Lookup<'_, '_>,
        taken: &mut HashSet<FlowKey>,
        out: &mut Vec<Recommendation>,
    ) {
        let min = self.settings.label_min_members as usize;
        let (predicted, by_key) = (lookup.predicted, lookup.by_key);
        let found = self.label_groups(candidates, predicted, taken, LabelEnd::Source);
        // Lift destinations to a label where the same source label reaches
        // every member of one, on the same service.
        let mut groups: BTreeMap<(String, Protocol, u16), Vec<usize>> = BTreeMap::new();
        for (n, f) in found.iter().enumerate() {
            if let Some(k) = f.keys.first() {
                groups
                    .entry((f.label.clone(), k.protocol, k.service_port))
                    .or_default()
                    .push(n);
            }
        }
        for ((label, protocol, _port), indexes) in groups {
            let dsts: BTreeSet<EndpointId> = indexes
                .iter()
                .filter_map(|&n| found.get(n))
                .map(|f| f.fixed)
                .collect();
            let mut dst_label: Option<(&String, &BTreeSet<EndpointId>)> = None;
            for (text, members) in self.labels_of_all(dsts.iter().copied()) {
                let better = dst_label.is_none_or(|(t, m)| {
                    members.len() > m.len() || (members.len() == m.len() && text < t)
                });
                if members.len() >= min && members.is_subset(&dsts) && better {
                    dst_label = Some((text, members));
                }
            }
            let src_members = indexes
                .first()
                .and_then(|&n| found.get(n))
                .map(|f| f.members.clone())
                .unwrap_or_default();
            let Some(src_selector) = label_selector(&label) else {
                continue;
            };
            let mut emit = |to: Peer, dsts: BTreeSet<EndpointId>, keys: Vec<FlowKey>| {
                let Some(proto) = proto_of(protocol) else {
                    return;
                };
                let ports = keys.first().and_then(ports_of);
                let rule = Opening {
                    from: vec![Peer::Selector(src_selector.clone())],
                    to: vec![to],
                    proto,
                    ports,
                    rate: None,
                    expires: None,
                    name: None,
                };
                let mut new_members: Vec<String> = keys
                    .iter()
                    .map(|k| k.src)
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|id| self.name(id))
                    .collect();
                new_members.sort();
                let (probability, observed) = self.support(&keys, by_key);
                let context = RiskContext {
                    probability,
                    observed,
                    source_scanning: false,
                    pairs: (src_members.len() as u64).saturating_mul(dsts.len() as u64),
                    src_labels: self.shared_labels(&src_members),
                    dst_labels: self.shared_labels(&dsts),
                };
                let explanation =
                    self.explain_label(&label, &src_members, &rule, &keys, by_key, probability);
                for k in &keys {
                    taken.insert(*k);
                }
                let change = PolicyChange::LabelRule { rule, new_members };
                out.push(self.assess(change, probability, context, explanation, keys));
            };
            match dst_label {
                Some((text, members)) if dsts.len() >= min => {
                    let Some(selector) = label_selector(text) else {
                        continue;
                    };
                    let keys: Vec<FlowKey> = indexes
                        .iter()
                        .filter_map(|&n| found.get(n))
                        .filter(|f| members.contains(&f.fixed))
                        .flat_map(|f| f.keys.iter().copied())
                        .collect();
                    emit(Peer::Selector(selector), members.clone(), keys);
                    for f in indexes.iter().filter_map(|&n| found.get(n)) {
                        if !members.contains(&f.fixed) {
                            if let Some(peer) = self.peer(f.fixed) {
                                emit(peer, BTreeSet::from([f.fixed]), f.keys.clone());
                            }
                        }
                    }
                }
                _ => {
                    for f in indexes.iter().filter_map(|&n| found.get(n)) {
                        if let Some(peer) = self.peer(f.fixed) {
                            emit(peer, BTreeSet::from([f.fixed]), f.keys.clone());
                        }
                    }
                }
            }
        }
    }

    /// The mirror of [`Cycle::label_rules`]: where one source (a monitoring
    /// VM, the outside's clients) reaches every member of a destination
    /// label on one service, one rule to the label, which also covers the
    /// members that come later (a new web VM gets its clients at boot).
    fn destination_label_rules(
        &self,
        candidates: &[&Prediction],
        lookup: &Lookup<'_, '_>,
        taken: &mut HashSet<FlowKey>,
        out: &mut Vec<Recommendation>,
    ) {
        let (predicted, by_key) = (lookup.predicted, lookup.by_key);
        for group in self.label_groups(candidates, predicted, taken, LabelEnd::Destination) {
            let LabelGroup {
                label,
                members,
                fixed: src,
                keys,
            } = group;
            let (Some(from), Some(to), Some(proto), Some(first)) = (
                self.peer(src),
                label_selector(&label),
                keys.first().and_then(|k| proto_of(k.protocol)),
                keys.first(),
            ) else {
                continue;
            };
            let port = first.service_port;
            let rule = Opening {
                from: vec![from],
                to: vec![Peer::Selector(to)],
                proto,
                ports: ports_of(first),
                rate: None,
                expires: None,
                name: None,
            };
            let (probability, observed) = self.support(&keys, by_key);
            let context = RiskContext {
                probability,
                observed,
                source_scanning: false,
                pairs: members.len() as u64,
                src_labels: self.labels(src),
                dst_labels: self.shared_labels(&members),
            };
            let short = label.split_once('=').map_or(label.as_str(), |(_, v)| v);
            let who = rule
                .from
                .first()
                .map_or_else(String::new, ToString::to_string);
            let explanation = format!(
                "{who} uses {}:{} on {n} of {n} {short} VMs; p={probability:.2}",
                rule.proto.name(),
                port,
                n = members.len(),
            );
            let new_members: Vec<String> = keys.iter().map(|k| self.name(k.dst)).collect();
            for k in &keys {
                taken.insert(*k);
            }
            let change = PolicyChange::LabelRule { rule, new_members };
            out.push(self.assess(change, probability, context, explanation, keys));
        }
    }

    /// The labels whose every member uses one service with one endpoint
    /// (`fixed`), found from the candidates not yet `taken`: for each
    /// endpoint and service, the labels of the other ends, the widest first,
    /// each taking the candidates no wider label took. Members count as
    /// users if they are candidates or [`Cycle::member_uses`] says so; a
    /// label with a scanning member, or one that contains `fixed`, is not
    /// widened to (the scanner's keys stay pair openings, each high risk).
    fn label_groups(
        &self,
        candidates: &[&Prediction],
        predicted: &HashMap<FlowKey, f64>,
        taken: &HashSet<FlowKey>,
        end: LabelEnd,
    ) -> Vec<LabelGroup> {
        let min = self.settings.label_min_members as usize;
        // Fixed end × service → the other ends with an uncovered candidate.
        let mut services: BTreeMap<(EndpointId, Protocol, u16), BTreeSet<EndpointId>> =
            BTreeMap::new();
        for p in candidates {
            if !taken.contains(&p.key) && self.scanning_free(p.key.src) {
                let (fixed, other) = end.split(&p.key);
                services
                    .entry((fixed, p.key.protocol, p.key.service_port))
                    .or_default()
                    .insert(other);
            }
        }
        let mut groups = Vec::new();
        for (&(fixed, protocol, port), others) in &services {
            let key = |m: EndpointId| end.join(fixed, m, protocol, port);
            // Only the labels the other ends carry: work bounded by the
            // candidates, not by every label times every service.
            let mut labels: Vec<(&String, &BTreeSet<EndpointId>)> = self
                .labels_of_all(others.iter().copied())
                .into_iter()
                .filter(|(_, m)| m.len() >= min)
                .collect();
            // The widest label first; ties by text, for stable output.
            labels.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
            let mut left: BTreeSet<EndpointId> = others.clone();
            for (label, members) in labels {
                let usable = label_selector(label).is_some()
                    && proto_of(protocol).is_some()
                    // A rule from one source names it.
                    && (end == LabelEnd::Source || self.peer(fixed).is_some());
                if !usable
                    || !members.iter().any(|m| left.contains(m))
                    || members.contains(&fixed)
                    || members.iter().any(|m| self.scanning.contains(m))
                    || !members
                        .iter()
                        .all(|&m| others.contains(&m) || self.member_uses(&key(m), predicted))
                {
                    continue;
                }
                let keys = members
                    .iter()
                    .filter(|m| left.contains(m))
                    .map(|&m| key(m))
                    .collect();
                for m in members {
                    left.remove(m);
                }
                groups.push(LabelGroup {
                    label: label.clone(),
                    members: members.clone(),
                    fixed,
                    keys,
                });
            }
        }
        groups
    }

    /// What speaks for a rule over `keys`: the highest probability among
    /// them, and whether any was seen working.
    fn support(&self, keys: &[FlowKey], by_key: &HashMap<FlowKey, &Prediction>) -> (f64, bool) {
        let probability = keys
            .iter()
            .filter_map(|k| by_key.get(k))
            .map(|p| p.probability)
            .fold(0.0, f64::max);
        (probability, keys.iter().any(|k| self.observed(k)))
    }

    /// Whether a key ever carried allowed traffic with a payload: probes
    /// and denied attempts are no evidence that something works.
    fn observed(&self, key: &FlowKey) -> bool {
        self.worked.contains(key)
    }

    /// The labels any of `ids` carries, with their members.
    fn labels_of_all(
        &self,
        ids: impl Iterator<Item = EndpointId>,
    ) -> Vec<(&String, &BTreeSet<EndpointId>)> {
        let endpoints = self.input.aggregator.endpoints();
        let mut texts: BTreeSet<&str> = BTreeSet::new();
        for id in ids {
            texts.extend(endpoints.label_texts(id));
        }
        texts
            .into_iter()
            .filter_map(|t| self.label_members.get_key_value(t))
            .collect()
    }

    fn scanning_free(&self, src: EndpointId) -> bool {
        !self.scanning.contains(&src)
    }

    /// Limits: raise those being reached, set missing ones if asked.
    fn limits(&self, out: &mut Vec<Recommendation>) {
        let window = f64::from(self.input.aggregator.config().length_s.max(1));
        let usage = self
            .input
            .coverage
            .usage(self.input.aggregator.key_activity());
        let headroom = 1.0 + f64::from(self.settings.limit_headroom_percent) / 100.0;
        for rule_usage in usage {
            let Some(rule) = self.rule(rule_usage.rule) else {
                continue;
            };
            if !live_at(rule.expires_at, self.at) || rule_usage.last_used.is_none() {
                continue;
            }
            if rule.rate.is_some_and(|r| r.unit != RateUnit::Kbps) {
                continue;
            }
            let pairs: BTreeSet<(EndpointId, EndpointId)> = rule_usage
                .keys
                .iter()
                .filter(|k| k.last_allowed.is_some())
                .map(|k| (k.key.src, k.key.dst))
                .collect();
            let (mut p95_sum, mut max_one) = (0.0f64, 0.0f64);
            for &(src, dst) in &pairs {
                if let Some(sig) = self.input.aggregator.pair_signature(src, dst) {
                    p95_sum += sig.volume.p95_bytes;
                    max_one = max_one.max(sig.volume.max_bytes as f64);
                }
            }
            let observed_kbps = p95_sum.max(max_one) * 8.0 / window / 1000.0;
            if observed_kbps <= 0.0 {
                continue;
            }
            let proposed_kbps = (observed_kbps * headroom).ceil();
            let proposed = Rate {
                rate: if proposed_kbps >= f64::from(u32::MAX) {
                    u32::MAX
                } else {
                    (proposed_kbps as u32).max(1)
                },
                unit: RateUnit::Kbps,
                burst: rule.rate.map_or(0, |r| r.burst),
            };
            let raise = match rule.rate {
                Some(current) => {
                    observed_kbps >= self.settings.limit_approach.get() * f64::from(current.rate)
                        && proposed.rate > current.rate
                }
                None => self.settings.limit_unlimited,
            };
            if !raise {
                continue;
            }
            let rewritten = Opening {
                rate: Some(proposed),
                ..rule_as_opening(rule)
            };
            let change = PolicyChange::SetLimit {
                rule: rule.index,
                label: rule.label(),
                rewritten,
                current: rule.rate,
                proposed,
            };
            let explanation = match rule.rate {
                Some(current) => format!(
                    "peak {:.0} kbit/s per {}s window over {} pair(s) is {:.0}% of the {} limit",
                    observed_kbps,
                    window,
                    pairs.len(),
                    100.0 * observed_kbps / f64::from(current.rate.max(1)),
                    rate_text(current)
                ),
                None => format!(
                    "peak {observed_kbps:.0} kbit/s per {window}s window over {} pair(s), no limit",
                    pairs.len()
                ),
            };
            let context = RiskContext {
                probability: 1.0,
                observed: true,
                source_scanning: false,
                pairs: 1,
                src_labels: Vec::new(),
                dst_labels: Vec::new(),
            };
            let keys = rule_usage.keys.iter().map(|k| k.key).collect();
            out.push(self.assess(change, 1.0, context, explanation, keys));
        }
    }

    /// Remove or narrow rules unused for long with low predicted need.
    fn least_privilege(&self, out: &mut Vec<Recommendation>) {
        let unused_after =
            i64::try_from(self.settings.unused_after.get().as_secs()).unwrap_or(i64::MAX);
        let cutoff = self.now.saturating_sub(unused_after);
        let history_from = self
            .input
            .aggregator
            .key_activity()
            .map(|a| a.first_seen)
            .min();
        // Without that much history nothing can be called unused.
        if history_from.is_none_or(|t| t > cutoff) {
            return;
        }
        let keep = self.settings.keep_above.get();
        let mut need: HashMap<u32, f64> = HashMap::new();
        let mut needed_keys: HashMap<u32, Vec<FlowKey>> = HashMap::new();
        for p in self.input.predictions {
            if let Some(rule) = self.input.coverage.covering_rule_ever(&p.key) {
                let entry = need.entry(rule).or_insert(0.0);
                *entry = entry.max(p.probability);
                if p.probability >= keep {
                    needed_keys.entry(rule).or_default().push(p.key);
                }
            }
        }
        let usage = self
            .input
            .coverage
            .usage(self.input.aggregator.key_activity());
        for rule_usage in usage {
            let Some(rule) = self.rule(rule_usage.rule) else {
                continue;
            };
            if !live_at(rule.expires_at, self.at)
                || self.input.coverage.members(rule.index, true).is_empty()
                || self.input.coverage.members(rule.index, false).is_empty()
            {
                // Port-only rules are invisible at key level: no judgement.
                continue;
            }
            let p_need = need.get(&rule.index).copied().unwrap_or(0.0);
            let recent: Vec<FlowKey> = rule_usage
                .keys
                .iter()
                .filter(|k| k.last_allowed.is_some_and(|t| t > cutoff))
                .map(|k| k.key)
                .collect();
            if recent.is_empty() && p_need < keep {
                let change = PolicyChange::RemoveRule {
                    rule: rule.index,
                    label: rule.label(),
                };
                let explanation = match rule_usage.last_used {
                    Some(t) => format!(
                        "last used {} ({} days ago); highest predicted need p={p_need:.2}",
                        rfc3339(t),
                        self.now.saturating_sub(t) / 86_400
                    ),
                    None => format!(
                        "never used in {} days of history; highest predicted need p={p_need:.2}",
                        self.now.saturating_sub(history_from.unwrap_or(self.now)) / 86_400
                    ),
                };
                let context = RiskContext {
                    probability: p_need,
                    observed: rule_usage.last_used.is_some(),
                    source_scanning: false,
                    pairs: self.input.coverage.pair_count(rule.index) as u64,
                    src_labels: Vec::new(),
                    dst_labels: Vec::new(),
                };
                let keys = rule_usage.keys.iter().map(|k| k.key).collect();
                out.push(self.assess(change, p_need, context, explanation, keys));
                continue;
            }
            self.narrow(rule, &recent, needed_keys.get(&rule.index), p_need, out);
        }
    }

    fn narrow(
        &self,
        rule: &Rule,
        recent: &[FlowKey],
        needed: Option<&Vec<FlowKey>>,
        p_need: f64,
        out: &mut Vec<Recommendation>,
    ) {
        let mut used: BTreeSet<FlowKey> = recent.iter().copied().collect();
        used.extend(needed.into_iter().flatten().copied());
        if used.is_empty() {
            return;
        }
        let share = self.settings.narrow_max_used_share.get();
        let pairs_total = self.input.coverage.pair_count(rule.index);
        let used_pairs: BTreeSet<(EndpointId, EndpointId)> =
            used.iter().map(|k| (k.src, k.dst)).collect();
        let used_ports: BTreeSet<u16> = used.iter().map(|k| k.service_port).collect();
        let range_len = rule
            .ports
            .map_or(0, |r| u32::from(r.last.saturating_sub(r.first)) + 1);
        let narrow_pairs = pairs_total >= self.settings.narrow_min_pairs as usize
            && (used_pairs.len() as f64) <= share * pairs_total as f64;
        let narrow_ports = range_len > 1
            && matches!(rule.proto, Proto::Tcp | Proto::Udp)
            && (used_ports.len() as f64) <= share * f64::from(range_len);
        if !narrow_pairs && !narrow_ports {
            return;
        }
        let base = rule_as_opening(rule);
        let mut replacement: Vec<Opening> = Vec::new();
        let port_sets: Vec<Option<PortRange>> = if narrow_ports {
            used_ports
                .iter()
                .map(|&p| Some(PortRange::single(p)))
                .collect()
        } else {
            vec![rule.ports]
        };
        if narrow_pairs {
            for &(src, dst) in &used_pairs {
                let (Some(from), Some(to)) = (self.peer(src), self.peer(dst)) else {
                    continue;
                };
                for &ports in &port_sets {
                    let pair_uses_port = ports.is_none_or(|r| {
                        !narrow_ports
                            || used
                                .iter()
                                .any(|k| k.src == src && k.dst == dst && r.contains(k.service_port))
                    });
                    if pair_uses_port {
                        replacement.push(Opening {
                            from: vec![from.clone()],
                            to: vec![to.clone()],
                            ports,
                            ..base.clone()
                        });
                    }
                }
            }
        } else {
            for &ports in &port_sets {
                replacement.push(Opening {
                    ports,
                    ..base.clone()
                });
            }
        }
        if replacement.is_empty() {
            return;
        }
        let explanation = format!(
            "{} of {} pairs and {} of {} ports used in the last {} days; p={p_need:.2}",
            used_pairs.len(),
            pairs_total,
            used_ports.len(),
            if range_len == 0 { 65_535 } else { range_len },
            self.settings.unused_after.get().as_secs() / 86_400
        );
        let change = PolicyChange::NarrowRule {
            rule: rule.index,
            label: rule.label(),
            replacement,
        };
        let context = RiskContext {
            probability: p_need,
            observed: true,
            source_scanning: false,
            pairs: pairs_total as u64,
            src_labels: Vec::new(),
            dst_labels: Vec::new(),
        };
        out.push(self.assess(
            change,
            p_need,
            context,
            explanation,
            used.into_iter().collect(),
        ));
    }

    /// "seen 42 times in 6 days, daily at 02:00; p=0.97", "denied 12 times
    /// since 09:14, rising; p=0.62", "new VM; 2 of 3 tier=web peers use it;
    /// p=0.71".
    fn explain_key(&self, p: &Prediction) -> String {
        let e = &p.evidence;
        let mut parts: Vec<String> = Vec::new();
        if let (Some(first), Some(last)) = (e.first_seen, e.last_seen) {
            let days = (last.saturating_sub(first).max(0) as f64 / 86_400.0)
                .ceil()
                .max(1.0) as i64;
            parts.push(format!(
                "seen {} times in {} day{}",
                e.connections,
                days,
                if days == 1 { "" } else { "s" }
            ));
        }
        if let Some(period) = e.periodicity {
            parts.push(describe_period(&period));
        }
        if e.denied > 0 {
            let since = self
                .input
                .aggregator
                .activity_of(&p.key)
                .map_or(e.last_denied.unwrap_or(self.now), |a| a.first_seen);
            let trend = self
                .input
                .aggregator
                .pair_signature(p.key.src, p.key.dst)
                .map_or(Trend::None, |s| s.denied.trend);
            let mut text = format!("denied {} times since {}", e.denied, self.when(since));
            match trend {
                Trend::Rising => text.push_str(", rising"),
                Trend::Falling => text.push_str(", falling"),
                Trend::Steady | Trend::None => {}
            }
            parts.push(text);
        }
        if matches!(
            e.source,
            CandidateSource::LabelPeers | CandidateSource::NewVm
        ) && e.peers > 0
        {
            let users = (f64::from(e.peer_support) * f64::from(e.peers)).round() as u32;
            let mut text = format!("{users} of {} label peers use it", e.peers);
            if e.source == CandidateSource::NewVm {
                text = format!("{} is new; {text}", self.name(p.key.src));
            }
            parts.push(text);
        }
        if e.source_scanning {
            parts.push(format!("{} has scanned", self.name(p.key.src)));
        }
        if parts.is_empty() {
            parts.push("predicted".to_owned());
        }
        format!("{}; p={:.2}", parts.join(", "), p.probability)
    }

    /// "3 of 3 web VMs use app:8080/tcp; web-3 is new; p=0.91".
    fn explain_label(
        &self,
        label: &str,
        members: &BTreeSet<EndpointId>,
        rule: &Opening,
        keys: &[FlowKey],
        by_key: &HashMap<FlowKey, &Prediction>,
        probability: f64,
    ) -> String {
        let short = |text: &str| {
            text.split_once('=')
                .map_or(text.to_owned(), |(_, v)| v.to_owned())
        };
        let dst = match rule.to.first() {
            Some(Peer::Selector(Selector::Label { value, .. })) => value.clone(),
            Some(Peer::Selector(Selector::Vm(id))) => id.0.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut text = format!(
            "{n} of {n} {} VMs use {dst}:{}",
            short(label),
            rule.service(),
            n = members.len()
        );
        let new: Vec<String> = keys
            .iter()
            .filter(|k| {
                by_key
                    .get(k)
                    .is_some_and(|p| p.evidence.source == CandidateSource::NewVm)
            })
            .map(|k| self.name(k.src))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !new.is_empty() {
            let _ = write!(
                text,
                "; {} {} new",
                new.join(", "),
                if new.len() == 1 { "is" } else { "are" }
            );
        }
        let _ = write!(text, "; p={probability:.2}");
        text
    }

    /// A time as `HH:MM` when it is today (UTC), else `YYYY-MM-DD HH:MM`.
    fn when(&self, t: i64) -> String {
        let (date, hm) = civil(t);
        if t.div_euclid(86_400) == self.now.div_euclid(86_400) {
            hm
        } else {
            format!("{date} {hm}")
        }
    }
}

/// `label:KEY=VALUE` from `KEY=VALUE`.
fn label_selector(text: &str) -> Option<Selector> {
    let (key, value) = text.split_once('=')?;
    Some(Selector::Label {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// A rule as an opening with its declared names.
fn rule_as_opening(rule: &Rule) -> Opening {
    Opening {
        from: rule.from.iter().cloned().map(peer_of_name).collect(),
        to: rule.to.iter().cloned().map(peer_of_name).collect(),
        proto: rule.proto,
        ports: rule.ports,
        rate: rule.rate,
        expires: rule.expires_at.and_then(|t| {
            t.duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        }),
        name: rule.name.clone(),
    }
}

fn peer_of_name(name: String) -> Peer {
    match Selector::parse(&name) {
        Some(Ok(selector)) => Peer::Selector(selector),
        _ => Peer::Name(name),
    }
}

/// Whether a prediction is of a TCP key that was allowed and never
/// answered: its connections, while they were let through, carried nothing
/// beyond a handshake that failed (the destination has no such service).
/// Opening it again would serve no one, and on the campus traces such keys
/// are the Internet's scanners retrying ports the host does not serve: they
/// tripled strato-008's review load once the model learned they come back.
/// (Datagram keys are exempt: one-way UDP such as syslog never answers.)
fn is_unanswered(p: &Prediction) -> bool {
    p.key.protocol == Protocol::TCP && p.evidence.last_seen.is_some() && !p.evidence.carried_payload
}

/// The policy protocol of a key's protocol, where a rule can name it.
fn proto_of(protocol: Protocol) -> Option<Proto> {
    match protocol {
        Protocol::TCP => Some(Proto::Tcp),
        Protocol::UDP => Some(Proto::Udp),
        Protocol::ICMP | Protocol::ICMPV6 => Some(Proto::Icmp),
        _ => Some(Proto::Ip),
    }
}

/// The port a rule for `key` names: its service port for TCP and UDP.
fn ports_of(key: &FlowKey) -> Option<PortRange> {
    matches!(key.protocol, Protocol::TCP | Protocol::UDP)
        .then_some(key.service_port)
        .filter(|&p| p != 0)
        .map(PortRange::single)
}

/// "daily at 02:00", "weekly on Mon at 06:30", "hourly at :15", "every 300 s".
fn describe_period(period: &Periodicity) -> String {
    let p = period.period_s;
    let phase = period.phase_s.unwrap_or(0.0).max(0.0) as i64;
    let near = |target: f64| (p - target).abs() <= target * 0.02;
    let hm = |secs: i64| format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60);
    if near(86_400.0) {
        format!("daily at {}", hm(phase))
    } else if near(604_800.0) {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        // The epoch's week starts on a Thursday.
        let day = DAYS
            .get(((phase / 86_400 + 3).rem_euclid(7)) as usize)
            .copied()
            .unwrap_or("?");
        format!("weekly on {day} at {}", hm(phase % 86_400))
    } else if near(3_600.0) {
        format!("hourly at :{:02}", (phase / 60) % 60)
    } else if p >= 3_600.0 {
        format!("every {:.1} h", p / 3_600.0)
    } else {
        format!("every {p:.0} s")
    }
}

/// `YYYY-MM-DD` and `HH:MM` of Unix seconds, UTC.
fn civil(t: i64) -> (String, String) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}", secs / 3_600, (secs / 60) % 60),
    )
}

/// RFC 3339 of Unix seconds, UTC, as the policy file's `expires` takes it.
fn rfc3339(t: i64) -> String {
    let (date, hm) = civil(t);
    format!("{date}T{hm}:{:02}Z", t.rem_euclid(60))
}
