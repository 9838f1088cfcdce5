//! Policy versions, the pure part: what each change did, and the policy in
//! force after any sequence of changes and rollbacks.
//!
//! # Model
//!
//! The policy in force is the operator's policy file (the *base*, versioned
//! as a whole by its content) plus the changes augur made on top of it, in
//! the order they were made, minus those rolled back. Every change is a
//! [`PolicyVersion`] in the history; each records the rules it added and
//! removed *as rules* (with their place and the version that introduced
//! them), not as positions in a policy that later changes may have moved, so
//! that [`effective`] can rebuild the policy from the base and the history
//! alone, after a restart or a rollback, and always the same way.
//!
//! ## Places and priorities
//!
//! Every rule has a [`Place`]: its index in the file, or its rank among the
//! rules changes added (overlay rules, from slot
//! [`MAX_FILE_RULES`](crate::policy::compile::priority::MAX_FILE_RULES) on,
//! below every rule of the file whatever its length, so that editing the
//! file moves no overlay rule). The
//! compiler gives a rule the priority and cookie of its place, so a change
//! that adds a rule appends it and leaves every other rule's flows alone; a
//! change that removes a rule leaves its place empty, and a rollback of that
//! change restores the rule to the same place with the same version, hence
//! the same flows. A rule rewritten in place (a new rate limit) keeps its
//! place and takes the change's version. A narrowed rule's first
//! replacement takes its place; further replacements are appended.
//!
//! ## Rollbacks
//!
//! A rollback is itself a version ([`Decider::Rollback`] or
//! [`Decider::AutoRollback`]) that records what it undid; the versions it
//! undid are marked [`Status::RolledBack`], and [`effective`] skips them.
//! Rollback versions have no effect of their own in [`effective`] (their
//! `added` and `removed` describe the undoing), so they cannot be rolled back
//! in turn: to redo a change, apply it again.
//!
//! A change cannot be rolled back alone while a later change still in force
//! rewrote or removed a rule it added ([`VersionError::Depends`]): roll back
//! the later one first, or return to a version with [`RollbackTarget::To`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::inventory::VmId;
use crate::policy::compile::priority;
use crate::policy::file::Location;
use crate::policy::{Endpoint, Group, Policy, PortRange, Proto, Rate, RateUnit, Rule};
use crate::recommend::ApplyError;
use crate::recommend::PolicyChange;

/// A version's place in the history: 1, 2, 3, ... (0 stands for the policy
/// file alone). Never reused, never wraps.
pub type Seq = u64;

/// Who decided a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// augur, for a recommendation of low risk.
    Automatic,
    /// An operator approved it (the name they gave, or where the approval
    /// came from).
    Operator(String),
    /// An operator rolled these versions back.
    Rollback {
        /// The versions undone, ascending.
        of: Vec<Seq>,
    },
    /// augur rolled a change back by itself because it measured harm.
    AutoRollback {
        /// The version undone.
        of: Seq,
        /// What was measured.
        reason: String,
    },
}

impl Decider {
    /// Whether this version undoes others rather than changing the policy.
    pub fn is_rollback(&self) -> bool {
        matches!(
            self,
            Decider::Rollback { .. } | Decider::AutoRollback { .. }
        )
    }
}

/// Whether a version is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    /// In force (for rollback versions: done).
    Applied,
    /// Undone by a later version.
    RolledBack {
        /// When, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// The version that undid it.
        by: Seq,
        /// Why.
        why: String,
    },
}

/// Where a rule sits: this decides its priority and the detail of its
/// cookies (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The rule at this index of the policy file.
    File(u32),
    /// The rule a change added, by its rank among all rules changes ever
    /// added (ranks of rolled-back rules are not reused).
    Overlay(u32),
}

impl Place {
    /// Its rule index for the compiler: a file rule's index, or an overlay
    /// rule's rank after the last index a file may use (so that the file
    /// can grow or shrink without moving the rules changes added).
    pub fn slot(self) -> u32 {
        match self {
            Place::File(i) => i,
            Place::Overlay(k) => priority::MAX_FILE_RULES.saturating_add(k),
        }
    }
}

/// A rule as the history keeps it: what it says, independent of where it
/// was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleData {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Source selector names.
    pub from: Vec<String>,
    /// Destination selector names.
    pub to: Vec<String>,
    /// `tcp`, `udp`, `icmp` or `ip`.
    pub proto: String,
    /// Destination ports, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<(u16, u16)>,
    /// Rate: (rate, `kbps` or `pktps`, burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<(u32, String, u32)>,
    /// Deadline, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl RuleData {
    /// What `rule` says.
    pub fn of(rule: &Rule) -> RuleData {
        RuleData {
            name: rule.name.clone(),
            from: rule.from.clone(),
            to: rule.to.clone(),
            proto: rule.proto.name().to_owned(),
            ports: rule.ports.map(|p| (p.first, p.last)),
            rate: rule.rate.map(|r| {
                let unit = match r.unit {
                    RateUnit::Kbps => "kbps",
                    RateUnit::Pktps => "pktps",
                };
                (r.rate, unit.to_owned(), r.burst)
            }),
            expires_at: rule
                .expires_at
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        }
    }

    /// The rule at `index`, or `None` if the record does not describe one
    /// (a history written by a newer augur, or damaged).
    pub fn to_rule(&self, index: u32) -> Option<Rule> {
        let proto = match self.proto.as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "ip" => Proto::Ip,
            _ => return None,
        };
        let ports = match self.ports {
            Some((first, last)) if first <= last => Some(PortRange { first, last }),
            Some(_) => return None,
            None => None,
        };
        let rate = match &self.rate {
            Some((rate, unit, burst)) => Some(Rate {
                rate: *rate,
                unit: match unit.as_str() {
                    "kbps" => RateUnit::Kbps,
                    "pktps" => RateUnit::Pktps,
                    _ => return None,
                },
                burst: *burst,
            }),
            None => None,
        };
        Some(Rule {
            index,
            name: self.name.clone(),
            location: Location { line: 0, column: 0 },
            from: self.from.clone(),
            to: self.to.clone(),
            proto,
            ports,
            rate,
            expires_at: self
                .expires_at
                .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s))),
        })
    }

    /// The rule as an `[[allow]]` table of the policy file.
    pub fn to_toml(&self) -> String {
        let list = |names: &[String]| {
            let quoted: Vec<String> = names.iter().map(|n| toml_string(n)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = String::from("[[allow]]\n");
        if let Some(name) = &self.name {
            let _ = writeln!(out, "name = {}", toml_string(name));
        }
        let _ = writeln!(out, "from = {}", list(&self.from));
        let _ = writeln!(out, "to = {}", list(&self.to));
        let _ = writeln!(out, "proto = {}", toml_string(&self.proto));
        match self.ports {
            Some((first, last)) if first == last => {
                let _ = writeln!(out, "port = {first}");
            }
            Some((first, last)) => {
                let _ = writeln!(out, "port = \"{first}-{last}\"");
            }
            None => {}
        }
        if let Some((rate, unit, burst)) = &self.rate {
            let unit = if unit == "pktps" { "pps" } else { "kbit" };
            let _ = writeln!(out, "rate = \"{rate}{unit}\"");
            if *burst > 0 {
                let _ = writeln!(out, "burst = {burst}");
            }
        }
        if let Some(at) = self.expires_at {
            let _ = writeln!(out, "# expires at Unix time {at}");
        }
        out
    }
}

fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A rule a version added or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// Where it sits.
    pub place: Place,
    /// The version that introduced it: its flows' cookies carry this.
    pub version: u16,
    /// What it says.
    pub rule: RuleData,
    /// The same as an `[[allow]]` table, for people.
    pub toml: String,
}

impl RuleRecord {
    fn new(place: Place, version: u16, rule: &Rule) -> RuleRecord {
        let rule = RuleData::of(rule);
        RuleRecord {
            place,
            version,
            toml: rule.to_toml(),
            rule,
        }
    }
}

/// A group a change declared (its rule names it and the policy lacked it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupData {
    /// Its name.
    pub name: String,
    /// VMs by id.
    pub vms: Vec<String>,
    /// Labels every member carries.
    pub labels: BTreeMap<String, String>,
}

/// An endpoint a change declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointData {
    /// Its name.
    pub name: String,
    /// External ports by name.
    pub ports: Vec<String>,
    /// Whether LOCAL is included.
    pub local: bool,
    /// Addresses.
    pub cidrs: Vec<IpNet>,
}

/// One policy version: a change augur made, or a rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// Its place in the history.
    pub seq: Seq,
    /// The 16-bit version its rules' cookies carry (`seq` wrapped).
    pub number: u16,
    /// The version in force before it (0: the policy file alone).
    pub parent: Seq,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Who decided it.
    pub decider: Decider,
    /// The id of the recommendation it carries out, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    /// The change as the recommender described it (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<serde_json::Value>,
    /// Why, in a line (the recommendation's evidence, or the rollback's
    /// reason).
    pub explanation: String,
    /// The risk factors that were weighed, with their contributions.
    #[serde(default)]
    pub risk_factors: Vec<String>,
    /// Rules it added.
    pub added: Vec<RuleRecord>,
    /// Rules it removed.
    pub removed: Vec<RuleRecord>,
    /// Groups it declared for its rules.
    #[serde(default)]
    pub groups: Vec<GroupData>,
    /// Endpoints it declared for its rules.
    #[serde(default)]
    pub endpoints: Vec<EndpointData>,
    /// Whether it is in force.
    pub status: Status,
}

impl PolicyVersion {
    /// Whether it is in force and changes the policy (not a rollback).
    pub fn in_force(&self) -> bool {
        self.status == Status::Applied && !self.decider.is_rollback()
    }
}

/// The 16-bit version of history entry `seq`.
pub fn number_of(seq: Seq) -> u16 {
    seq as u16
}

/// The policy in force, with where each rule sits and who introduced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    /// The policy, rules indexed by position (0, 1, 2, ...): what the
    /// recommender reads and [`PolicyChange::apply_to`] changes.
    pub policy: Policy,
    /// For each rule (by position): its place.
    pub places: Vec<Place>,
    /// For each rule (by position): the version that introduced it.
    pub versions: Vec<u16>,
    /// The latest version in history (0: none).
    pub latest: Seq,
}

impl Effective {
    /// The policy to compile: rule indexes are the places' slots (not
    /// contiguous once a rule is removed), and the version of each rule's
    /// change by slot, for
    /// [`VersionTags::per_change`](crate::policy::compile::VersionTags::per_change).
    pub fn to_compile(&self) -> (Policy, BTreeMap<u32, u16>) {
        let mut policy = self.policy.clone();
        let mut versions = BTreeMap::new();
        for ((rule, place), version) in policy
            .rules
            .iter_mut()
            .zip(&self.places)
            .zip(&self.versions)
        {
            rule.index = place.slot();
            versions.insert(rule.index, *version);
        }
        (policy, versions)
    }

    /// The rules in force, as the history records them.
    pub fn records(&self) -> Vec<RuleRecord> {
        self.policy
            .rules
            .iter()
            .zip(&self.places)
            .zip(&self.versions)
            .map(|((rule, place), version)| RuleRecord::new(*place, *version, rule))
            .collect()
    }
}

/// The policy in force: `base` (the file) plus the changes of `history` in
/// force, in order. The single source of truth for compiling and for
/// rollbacks.
pub fn effective_policy(base: &Policy, history: &[PolicyVersion]) -> Policy {
    effective(base, 0, history).policy
}

/// [`effective_policy`] with places and versions; the file's rules carry
/// `file_version`.
pub fn effective(base: &Policy, file_version: u16, history: &[PolicyVersion]) -> Effective {
    let mut policy = Policy {
        groups: base.groups.clone(),
        endpoints: base.endpoints.clone(),
        rules: Vec::new(),
    };
    let mut rules: BTreeMap<Place, (Rule, u16)> = BTreeMap::new();
    for (i, rule) in base.rules.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        rules.insert(Place::File(index), (rule.clone(), file_version));
    }
    let mut ordered: Vec<&PolicyVersion> = history.iter().collect();
    ordered.sort_by_key(|v| v.seq);
    for version in ordered.iter().filter(|v| v.in_force()) {
        for removed in &version.removed {
            // The file may have changed since: a removal applies only to
            // the rule it removed, never to another now at its place.
            let same = rules
                .get(&removed.place)
                .is_some_and(|(rule, _)| RuleData::of(rule) == removed.rule);
            if same {
                rules.remove(&removed.place);
            }
        }
        for group in &version.groups {
            if policy.group(&group.name).is_none() && policy.endpoint(&group.name).is_none() {
                policy.groups.push(Group {
                    name: group.name.clone(),
                    vms: group.vms.iter().cloned().map(VmId).collect(),
                    labels: group.labels.clone(),
                });
            }
        }
        for endpoint in &version.endpoints {
            if policy.group(&endpoint.name).is_none() && policy.endpoint(&endpoint.name).is_none() {
                policy.endpoints.push(Endpoint {
                    name: endpoint.name.clone(),
                    ports: endpoint.ports.clone(),
                    local: endpoint.local,
                    cidrs: endpoint.cidrs.clone(),
                });
            }
        }
        for added in &version.added {
            if let Some(rule) = added.rule.to_rule(0) {
                rules.insert(added.place, (rule, added.version));
            }
        }
    }
    policy.groups.sort_by(|a, b| a.name.cmp(&b.name));
    policy.endpoints.sort_by(|a, b| a.name.cmp(&b.name));
    let mut places = Vec::with_capacity(rules.len());
    let mut versions = Vec::with_capacity(rules.len());
    for (i, (place, (mut rule, version))) in rules.into_iter().enumerate() {
        rule.index = u32::try_from(i).unwrap_or(u32::MAX);
        policy.rules.push(rule);
        places.push(place);
        versions.push(version);
    }
    Effective {
        policy,
        places,
        versions,
        latest: history.iter().map(|v| v.seq).max().unwrap_or(0),
    }
}

/// What accompanies a change into the history.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeMeta {
    /// Who decided it ([`Decider::Automatic`] or [`Decider::Operator`]).
    pub decider: Decider,
    /// The recommendation's id.
    pub recommendation: Option<String>,
    /// Why.
    pub explanation: String,
    /// The risk factors weighed (`name: contribution`).
    pub risk_factors: Vec<String>,
}

/// Why a change or rollback cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The change does not apply to the policy in force.
    #[error("the change does not apply to the policy in force: {0}")]
    Apply(#[from] ApplyError),
    /// A change's decider must be automatic or an operator.
    #[error("a change is decided automatically or by an operator, not by a rollback")]
    NotAChange,
    /// The history has no such version.
    #[error("the history has no version {0}")]
    NoSuchVersion(Seq),
    /// The version is already rolled back.
    #[error("version {0} is already rolled back")]
    AlreadyRolledBack(Seq),
    /// The version is a rollback.
    #[error("version {0} is a rollback; apply the change again instead of rolling it back")]
    IsRollback(Seq),
    /// A later change in force builds on it.
    #[error(
        "version {later} rewrote or removed a rule version {of} added: roll {later} back first, or return to a version before {of}"
    )]
    Depends {
        /// The change to roll back.
        of: Seq,
        /// The later change.
        later: Seq,
    },
    /// Nothing to undo.
    #[error("no change after version {0} is in force: nothing to roll back")]
    Nothing(Seq),
}

/// The version carrying out `change` on top of `history` (whose effect on
/// `base` is `current`, from [`effective`]), made at `now`. It is not yet in
/// the history: the caller applies it to the switches, then appends it.
pub fn record_change(
    current: &Effective,
    history: &[PolicyVersion],
    change: &PolicyChange,
    meta: ChangeMeta,
    now: SystemTime,
) -> Result<PolicyVersion, VersionError> {
    if meta.decider.is_rollback() {
        return Err(VersionError::NotAChange);
    }
    let seq = next_seq(history);
    let number = number_of(seq);
    let mut after = current.policy.clone();
    let applied = change.apply_to(&mut after, now)?;
    let mut removed = Vec::with_capacity(applied.removed.len());
    for position in &applied.removed {
        let p = *position as usize;
        let (Some(rule), Some(place), Some(version)) = (
            current.policy.rules.get(p),
            current.places.get(p),
            current.versions.get(p),
        ) else {
            return Err(VersionError::Apply(ApplyError::NoSuchRule(*position)));
        };
        removed.push(RuleRecord::new(*place, *version, rule));
    }
    // A rewritten rule keeps its place; a narrowed one gives its place to
    // its first replacement.
    let in_place = matches!(
        change,
        PolicyChange::SetLimit { .. } | PolicyChange::NarrowRule { .. }
    );
    let mut next_overlay = next_overlay(history);
    let mut added = Vec::with_capacity(applied.added.len());
    for (i, position) in applied.added.iter().enumerate() {
        let Some(rule) = after.rules.get(*position as usize) else {
            continue;
        };
        let place = match removed.get(i) {
            Some(old) if in_place => old.place,
            _ => {
                let place = Place::Overlay(next_overlay);
                next_overlay = next_overlay.saturating_add(1);
                place
            }
        };
        added.push(RuleRecord::new(place, number, rule));
    }
    let groups = after
        .groups
        .iter()
        .filter(|g| current.policy.group(&g.name).is_none())
        .map(|g| GroupData {
            name: g.name.clone(),
            vms: g.vms.iter().map(|v| v.0.clone()).collect(),
            labels: g.labels.clone(),
        })
        .collect();
    let endpoints = after
        .endpoints
        .iter()
        .filter(|e| current.policy.endpoint(&e.name).is_none())
        .map(|e| EndpointData {
            name: e.name.clone(),
            ports: e.ports.clone(),
            local: e.local,
            cidrs: e.cidrs.clone(),
        })
        .collect();
    Ok(PolicyVersion {
        seq,
        number,
        parent: current.latest,
        created_ms: millis(now),
        decider: meta.decider,
        recommendation: meta.recommendation,
        change: serde_json::to_value(change).ok(),
        explanation: meta.explanation,
        risk_factors: meta.risk_factors,
        added,
        removed,
        groups,
        endpoints,
        status: Status::Applied,
    })
}

/// What to roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackTarget {
    /// Exactly this change.
    Change(Seq),
    /// Every change after this version (0: back to the policy file).
    To(Seq),
}

/// Who asks for a rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackBy {
    /// An operator, with their reason.
    Operator(String),
    /// augur, having measured harm (the reason says what).
    Automatic(String),
}

/// A rollback ready to apply: the new version, and the versions it marks
/// rolled back.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRollback {
    /// The rollback version (status [`Status::Applied`]).
    pub version: PolicyVersion,
    /// The versions it undoes, ascending.
    pub undone: Vec<Seq>,
}

impl PlannedRollback {
    /// The history once the rollback is made.
    pub fn apply_to(&self, history: &mut Vec<PolicyVersion>) {
        for v in history.iter_mut() {
            if self.undone.contains(&v.seq) {
                v.status = Status::RolledBack {
                    at_ms: self.version.created_ms,
                    by: self.version.seq,
                    why: self.version.explanation.clone(),
                };
            }
        }
        history.push(self.version.clone());
    }
}

/// Plans a rollback of `target` on `history` over `base` (the file, whose
/// rules carry `file_version`). The new version's `added` and `removed` say
/// what the switches gain and lose: the undone changes' removed rules come
/// back with their original places and versions (so their original
/// cookies), their added rules go.
pub fn plan_rollback(
    base: &Policy,
    file_version: u16,
    history: &[PolicyVersion],
    target: RollbackTarget,
    by: RollbackBy,
    now: SystemTime,
) -> Result<PlannedRollback, VersionError> {
    let undone: Vec<Seq> = match target {
        RollbackTarget::Change(seq) => {
            let version = history
                .iter()
                .find(|v| v.seq == seq)
                .ok_or(VersionError::NoSuchVersion(seq))?;
            if version.decider.is_rollback() {
                return Err(VersionError::IsRollback(seq));
            }
            if version.status != Status::Applied {
                return Err(VersionError::AlreadyRolledBack(seq));
            }
            if let Some(later) = built_upon(history, version) {
                return Err(VersionError::Depends { of: seq, later });
            }
            vec![seq]
        }
        RollbackTarget::To(to) => {
            if to != 0 && !history.iter().any(|v| v.seq == to) {
                return Err(VersionError::NoSuchVersion(to));
            }
            let mut undone: Vec<Seq> = history
                .iter()
                .filter(|v| v.seq > to && v.in_force())
                .map(|v| v.seq)
                .collect();
            undone.sort_unstable();
            if undone.is_empty() {
                return Err(VersionError::Nothing(to));
            }
            undone
        }
    };
    let before = effective(base, file_version, history);
    let mut after_history = history.to_vec();
    for v in &mut after_history {
        if undone.contains(&v.seq) {
            v.status = Status::RolledBack {
                at_ms: 0,
                by: 0,
                why: String::new(),
            };
        }
    }
    let after = effective(base, file_version, &after_history);
    let was = before.records();
    let is = after.records();
    let added: Vec<RuleRecord> = is.iter().filter(|r| !was.contains(r)).cloned().collect();
    let removed: Vec<RuleRecord> = was.iter().filter(|r| !is.contains(r)).cloned().collect();
    let seq = next_seq(history);
    let list = undone
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (decider, explanation) = match by {
        RollbackBy::Operator(reason) => {
            let what = match target {
                RollbackTarget::Change(s) => format!("rolled back change {s}"),
                RollbackTarget::To(0) => format!("returned to the policy file (undid {list})"),
                RollbackTarget::To(t) => format!("returned to version {t} (undid {list})"),
            };
            let explanation = if reason.is_empty() {
                what
            } else {
                format!("{what}: {reason}")
            };
            (Decider::Rollback { of: undone.clone() }, explanation)
        }
        RollbackBy::Automatic(reason) => match undone.as_slice() {
            [of] => (
                Decider::AutoRollback {
                    of: *of,
                    reason: reason.clone(),
                },
                format!("automatically rolled back change {of}: {reason}"),
            ),
            _ => (
                Decider::Rollback { of: undone.clone() },
                format!("automatically undid {list}: {reason}"),
            ),
        },
    };
    Ok(PlannedRollback {
        version: PolicyVersion {
            seq,
            number: number_of(seq),
            parent: before.latest,
            created_ms: millis(now),
            decider,
            recommendation: None,
            change: None,
            explanation,
            risk_factors: Vec::new(),
            added,
            removed,
            groups: Vec::new(),
            endpoints: Vec::new(),
            status: Status::Applied,
        },
        undone,
    })
}

/// The first later change in force that rewrote or removed a rule `version`
/// added: while there is one, `version` cannot be rolled back alone.
pub fn built_upon(history: &[PolicyVersion], version: &PolicyVersion) -> Option<Seq> {
    let added: BTreeSet<Place> = version.added.iter().map(|r| r.place).collect();
    history
        .iter()
        .filter(|v| {
            v.seq > version.seq
                && v.in_force()
                && v.removed.iter().any(|r| added.contains(&r.place))
        })
        .map(|v| v.seq)
        .min()
}

/// The next sequence number.
pub fn next_seq(history: &[PolicyVersion]) -> Seq {
    history
        .iter()
        .map(|v| v.seq)
        .max()
        .unwrap_or(0)
        .saturating_add(1)
}

/// The next overlay rank: after every rank any version ever used.
fn next_overlay(history: &[PolicyVersion]) -> u32 {
    history
        .iter()
        .flat_map(|v| v.added.iter().chain(&v.removed))
        .filter_map(|r| match r.place {
            Place::Overlay(k) => Some(k.saturating_add(1)),
            Place::File(_) => None,
        })
        .max()
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recommend::{Opening, Peer};

    const FILE: &str = r#"
[groups.web]
vms = ["web1"]
[groups.db]
vms = ["db1"]
[groups.app]
vms = ["app1"]

[[allow]]
from = "web"
to = "app"
proto = "tcp"
port = 8080

[[allow]]
from = "app"
to = "db"
proto = "tcp"
port = 5432
"#;

    fn base() -> Policy {
        Policy::parse(FILE, "test.toml", UNIX_EPOCH).unwrap()
    }

    fn opening(from: &str, to: &str, port: u16) -> Opening {
        Opening {
            name: None,
            from: vec![Peer::Name(from.into())],
            to: vec![Peer::Name(to.into())],
            proto: Proto::Tcp,
            ports: Some(PortRange::single(port)),
            rate: None,
            expires: None,
        }
    }

    fn meta() -> ChangeMeta {
        ChangeMeta {
            decider: Decider::Automatic,
            recommendation: Some("r".into()),
            explanation: "seen".into(),
            risk_factors: vec![],
        }
    }

    fn apply(history: &mut Vec<PolicyVersion>, change: PolicyChange) -> PolicyVersion {
        let current = effective(&base(), 0x0f0f, history);
        let v = record_change(&current, history, &change, meta(), UNIX_EPOCH).unwrap();
        history.push(v.clone());
        v
    }

    fn compiled(history: &[PolicyVersion]) -> Vec<(u32, u16, RuleData)> {
        let (policy, versions) = effective(&base(), 0x0f0f, history).to_compile();
        policy
            .rules
            .iter()
            .map(|r| (r.index, versions[&r.index], RuleData::of(r)))
            .collect()
    }

    #[test]
    fn changes_append_and_rollbacks_restore_places_and_versions() {
        let mut history = Vec::new();
        let start = compiled(&history);
        assert_eq!(
            start.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            [(0, 0x0f0f), (1, 0x0f0f)]
        );
        let a = apply(
            &mut history,
            PolicyChange::AddPair {
                rule: opening("web", "db", 22),
            },
        );
        let b = apply(
            &mut history,
            PolicyChange::RemoveRule {
                rule: 0,
                label: "rule #0".into(),
            },
        );
        let c = apply(
            &mut history,
            PolicyChange::AddPair {
                rule: opening("db", "web", 9),
            },
        );
        assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
        assert_eq!(a.added[0].place, Place::Overlay(0));
        assert_eq!(c.added[0].place, Place::Overlay(1));
        let now = compiled(&history);
        // Rule 0 of the file is gone; rule 1 keeps its slot; the overlay
        // rules sit after every slot a file may use, with their changes'
        // versions.
        const O: u32 = priority::MAX_FILE_RULES;
        assert_eq!(
            now.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            [(1, 0x0f0f), (O, 1), (O + 1, 3)]
        );
        // Undo the removal: rule 0 comes back where it was, as it was.
        let undo_b = plan_rollback(
            &base(),
            0x0f0f,
            &history,
            RollbackTarget::Change(2),
            RollbackBy::Operator("oops".into()),
            UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(undo_b.undone, [2]);
        assert_eq!(undo_b.version.added.len(), 1);
        assert_eq!(undo_b.version.added[0].place, Place::File(0));
        assert!(undo_b.version.removed.is_empty());
        undo_b.apply_to(&mut history);
        let restored = compiled(&history);
        assert_eq!(
            restored.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            [(0, 0x0f0f), (1, 0x0f0f), (O, 1), (O + 1, 3)]
        );
        assert_eq!(restored[0], start[0]);
        // A rolled-back change and a rollback are not rolled back again.
        let again = plan_rollback(
            &base(),
            0x0f0f,
            &history,
            RollbackTarget::Change(2),
            RollbackBy::Operator(String::new()),
            UNIX_EPOCH,
        );
        assert_eq!(again, Err(VersionError::AlreadyRolledBack(2)));
        let of_rollback = plan_rollback(
            &base(),
            0x0f0f,
            &history,
            RollbackTarget::Change(4),
            RollbackBy::Operator(String::new()),
            UNIX_EPOCH,
        );
        assert_eq!(of_rollback, Err(VersionError::IsRollback(4)));
        // Back to the file: exactly the file's rules, slots and versions.
        let to_file = plan_rollback(
            &base(),
            0x0f0f,
            &history,
            RollbackTarget::To(0),
            RollbackBy::Operator(String::new()),
            UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(to_file.undone, [1, 3]);
        assert_eq!(to_file.version.removed.len(), 2);
        to_file.apply_to(&mut history);
        assert_eq!(compiled(&history), start);
        assert_eq!(effective_policy(&base(), &history).rules, base().rules);
        // A new change after all that takes a fresh overlay rank.
        let d = apply(
            &mut history,
            PolicyChange::AddPair {
                rule: opening("web", "db", 23),
            },
        );
        assert_eq!(d.added[0].place, Place::Overlay(2));
        assert_eq!(d.parent, 5);
    }

    #[test]
    fn editing_the_file_moves_no_rule_a_change_added() {
        let mut history = Vec::new();
        apply(
            &mut history,
            PolicyChange::AddPair {
                rule: opening("web", "db", 22),
            },
        );
        let slots = |base: &Policy| {
            let (policy, versions) = effective(base, 0x0f0f, &history).to_compile();
            policy
                .rules
                .iter()
                .map(|r| (r.index, versions[&r.index], RuleData::of(r).ports))
                .collect::<Vec<_>>()
        };
        let before = slots(&base());
        let longer =
            format!("{FILE}\n[[allow]]\nfrom = \"db\"\nto = \"app\"\nproto = \"udp\"\nport = 53\n");
        let after = slots(&Policy::parse(&longer, "test.toml", UNIX_EPOCH).unwrap());
        type Slot = (u32, u16, Option<(u16, u16)>);
        let overlay = |rules: &[Slot]| {
            rules
                .iter()
                .filter(|r| r.0 >= priority::MAX_FILE_RULES)
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(overlay(&after), overlay(&before));
        assert_eq!(
            overlay(&before),
            [(priority::MAX_FILE_RULES, 1, Some((22, 22)))]
        );
    }

    #[test]
    fn rewritten_rules_keep_their_place_and_block_rolling_back_what_they_build_on() {
        let mut history = Vec::new();
        apply(
            &mut history,
            PolicyChange::AddPair {
                rule: opening("web", "db", 22),
            },
        );
        let rate = Rate {
            rate: 1000,
            unit: RateUnit::Kbps,
            burst: 0,
        };
        let mut rewritten = opening("web", "db", 22);
        rewritten.rate = Some(rate);
        let limit = apply(
            &mut history,
            PolicyChange::SetLimit {
                rule: 2,
                label: "rule #2".into(),
                rewritten,
                current: None,
                proposed: rate,
            },
        );
        assert_eq!(limit.removed[0].place, Place::Overlay(0));
        assert_eq!(limit.added[0].place, Place::Overlay(0));
        assert_eq!(limit.added[0].version, 2);
        assert!(limit.added[0].toml.contains("rate = \"1000kbit\""));
        let rules = compiled(&history);
        assert_eq!(rules[2].0, priority::MAX_FILE_RULES);
        assert_eq!(rules[2].1, 2);
        assert_eq!(
            plan_rollback(
                &base(),
                0x0f0f,
                &history,
                RollbackTarget::Change(1),
                RollbackBy::Operator(String::new()),
                UNIX_EPOCH,
            ),
            Err(VersionError::Depends { of: 1, later: 2 })
        );
        // Undoing the limit restores the rule as change 1 added it.
        let undo = plan_rollback(
            &base(),
            0x0f0f,
            &history,
            RollbackTarget::Change(2),
            RollbackBy::Automatic("deny samples rose".into()),
            UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(
            undo.version.decider,
            Decider::AutoRollback {
                of: 2,
                reason: "deny samples rose".into()
            }
        );
        assert_eq!(undo.version.added[0].version, 1);
        undo.apply_to(&mut history);
        assert_eq!(compiled(&history)[2].1, 1);
        assert_eq!(compiled(&history)[2].2.rate, None);
    }

    #[test]
    fn history_round_trips_through_json_and_survives_a_changed_file() {
        let mut history = Vec::new();
        apply(
            &mut history,
            PolicyChange::RemoveRule {
                rule: 1,
                label: "rule #1".into(),
            },
        );
        let text = serde_json::to_string(&history).unwrap();
        let back: Vec<PolicyVersion> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, history);
        // The operator rewrote rule 1 meanwhile: the old removal does not
        // remove the new rule.
        let changed =
            Policy::parse(&FILE.replace("5432", "5433"), "test.toml", UNIX_EPOCH).unwrap();
        assert_eq!(effective(&changed, 1, &back).policy.rules.len(), 2);
        assert_eq!(effective(&base(), 1, &back).policy.rules.len(), 1);
    }
}
