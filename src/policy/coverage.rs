//! Key-level coverage: which rule of a policy admits the connections of a
//! flow key (source, destination, protocol, service port), answered without
//! compiling or running the pipeline.
//!
//! The predictor and the recommender think in [`FlowKey`]s over the
//! endpoint table of an [`augur_flows::Aggregator`]; the switch thinks in
//! addresses and registers. [`Coverage`] bridges the two: built once from a
//! [`Policy`] and the endpoint table, it resolves every rule's `from` and
//! `to` into sets of endpoint ids, so that asking which rule covers a key is
//! a walk over the few rules whose `from` contains the key's source — a
//! million keys take a few tens of milliseconds.
//!
//! It follows the compiler's semantics:
//!
//! - A group selects the VMs it names by id and every VM carrying all of
//!   its labels (labels come from the endpoint table as `key=value`).
//! - An endpoint selects external addresses in its CIDRs. **Rules that name
//!   switch ports or the LOCAL port cover nothing at key level**: a flow key
//!   names endpoints, not the port a packet came through, so those parts of
//!   an endpoint are invisible here (its CIDRs still count).
//! - `tcp`/`udp` rules match the key's protocol and, when they give ports,
//!   its service port; `icmp` matches ICMP and ICMPv6; `ip` matches any
//!   protocol and port.
//! - A rule whose expiry is less than a whole second away is gone, as the
//!   compiler drops it; where rules overlap the first in the file decides,
//!   so usage is credited to it alone.
//!
//! Endpoints added to the table after [`Coverage::new`] are picked up by
//! [`Coverage::update`]; a change of an existing endpoint's labels or of the
//! policy needs a new [`Coverage`].

use std::collections::HashMap;
use std::time::SystemTime;

use augur_flows::{
    Endpoint as FlowEndpoint, EndpointId, Endpoints, FlowKey, KeyActivity, Protocol,
};
use serde::Serialize;

use super::file::{Policy, PortRange, Proto, Rule};

/// A set of endpoint ids, one bit each.
#[derive(Debug, Clone, Default)]
struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    fn insert(&mut self, id: EndpointId) {
        let word = (id.0 / 64) as usize;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        if let Some(w) = self.words.get_mut(word) {
            *w |= 1 << (id.0 % 64);
        }
    }

    fn contains(&self, id: EndpointId) -> bool {
        self.words
            .get((id.0 / 64) as usize)
            .is_some_and(|w| w & (1 << (id.0 % 64)) != 0)
    }

    fn iter(&self) -> impl Iterator<Item = EndpointId> + '_ {
        self.words.iter().enumerate().flat_map(|(n, &word)| {
            (0..64u32)
                .filter(move |bit| word & (1 << bit) != 0)
                .map(move |bit| EndpointId(n as u32 * 64 + bit))
        })
    }

    fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// One rule, resolved against the endpoint table.
#[derive(Debug, Clone)]
struct Resolved {
    index: u32,
    /// Positions in [`Coverage::names`] of the rule's `from` and `to`.
    from: Vec<usize>,
    to: Vec<usize>,
    src: IdSet,
    dst: IdSet,
    proto: Proto,
    ports: Option<PortRange>,
    expires_at: Option<SystemTime>,
}

impl Resolved {
    fn admits(&self, protocol: Protocol, port: u16) -> bool {
        let proto_ok = match self.proto {
            Proto::Ip => true,
            Proto::Tcp => protocol == Protocol::TCP,
            Proto::Udp => protocol == Protocol::UDP,
            Proto::Icmp => protocol == Protocol::ICMP || protocol == Protocol::ICMPV6,
        };
        proto_ok && self.ports.is_none_or(|range| range.contains(port))
    }

    fn live_at(&self, at: SystemTime) -> bool {
        live_at(self.expires_at, at)
    }
}

/// Whether a rule with this expiry is still installed at `at`: the compiler
/// drops a rule with less than a whole second left.
pub fn live_at(expires_at: Option<SystemTime>, at: SystemTime) -> bool {
    expires_at.is_none_or(|deadline| deadline.duration_since(at).is_ok_and(|d| d.as_secs() > 0))
}

/// Per-side selector meaning of one name of the policy.
#[derive(Debug, Clone)]
enum Selects {
    /// A group: VM ids and a label conjunction (empty: none).
    Group {
        vms: Vec<String>,
        labels: Vec<String>,
    },
    /// An endpoint's CIDRs (its ports and LOCAL are invisible here).
    Cidrs(Vec<ipnet::IpNet>),
}

impl Selects {
    fn matches(&self, endpoint: &FlowEndpoint, labels: &[&str]) -> bool {
        match (self, endpoint) {
            (Selects::Group { vms, labels: want }, FlowEndpoint::Vm(id)) => {
                vms.iter().any(|v| v.as_str() == &**id)
                    || (!want.is_empty() && want.iter().all(|w| labels.contains(&w.as_str())))
            }
            (Selects::Cidrs(cidrs), FlowEndpoint::External(ip)) => {
                cidrs.iter().any(|net| net.contains(ip))
            }
            _ => false,
        }
    }
}

/// What a policy covers, per flow key.
#[derive(Debug, Clone)]
pub struct Coverage {
    rules: Vec<Resolved>,
    /// Every group and endpoint of the policy: what it selects.
    names: Vec<Selects>,
    /// Per source endpoint id: positions in `rules` whose `from` holds it,
    /// in rule order.
    by_src: Vec<Vec<u32>>,
    /// Endpoints of the table resolved so far.
    resolved: usize,
}

/// The keys one rule decides and when they were last used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleUsage {
    /// The rule's index in the policy.
    pub rule: u32,
    /// The tracked keys it decides (it is the first rule covering them),
    /// with their last allowed traffic.
    pub keys: Vec<KeyUse>,
    /// The latest allowed traffic over those keys.
    pub last_used: Option<i64>,
}

/// A key and its last allowed use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeyUse {
    /// The key.
    pub key: FlowKey,
    /// Last allowed traffic, Unix seconds.
    pub last_allowed: Option<i64>,
}

impl Coverage {
    /// Resolves every rule of `policy` against `endpoints`.
    pub fn new(policy: &Policy, endpoints: &Endpoints) -> Coverage {
        let mut names = Vec::with_capacity(policy.groups.len() + policy.endpoints.len());
        let mut position: HashMap<&str, usize> = HashMap::new();
        for group in &policy.groups {
            let mut labels: Vec<String> = group
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            position.insert(&group.name, names.len());
            names.push(Selects::Group {
                vms: group.vms.iter().map(|v| v.0.clone()).collect(),
                labels,
            });
        }
        for endpoint in &policy.endpoints {
            position.insert(&endpoint.name, names.len());
            names.push(Selects::Cidrs(endpoint.cidrs.clone()));
        }
        // Names resolve to positions once, so that an endpoint is matched
        // against each group or endpoint once, not once per rule naming it.
        let positions = |list: &[String]| -> Vec<usize> {
            list.iter()
                .filter_map(|name| position.get(name.as_str()).copied())
                .collect()
        };
        let rules = policy
            .rules
            .iter()
            .map(|rule| Resolved {
                from: positions(&rule.from),
                to: positions(&rule.to),
                ..unresolved(rule)
            })
            .collect();
        let mut coverage = Coverage {
            rules,
            names,
            by_src: Vec::new(),
            resolved: 0,
        };
        coverage.resolve(endpoints);
        coverage
    }

    /// Takes in the endpoints added to `endpoints` since the last call
    /// (their labels as they are now). `policy` must be the one given to
    /// [`Coverage::new`].
    pub fn update(&mut self, policy: &Policy, endpoints: &Endpoints) {
        let _ = policy;
        self.resolve(endpoints);
    }

    fn resolve(&mut self, endpoints: &Endpoints) {
        let mut selected = vec![false; self.names.len()];
        for (id, endpoint) in endpoints.iter().skip(self.resolved) {
            let labels = match endpoint {
                FlowEndpoint::Vm(_) => endpoints.label_texts(id),
                FlowEndpoint::External(_) => Vec::new(),
            };
            for (slot, selects) in selected.iter_mut().zip(&self.names) {
                *slot = selects.matches(endpoint, &labels);
            }
            let hit = |list: &[usize]| list.iter().any(|&n| selected.get(n) == Some(&true));
            let mut sources = Vec::new();
            for (position, resolved) in self.rules.iter_mut().enumerate() {
                if hit(&resolved.from) {
                    resolved.src.insert(id);
                    sources.push(u32::try_from(position).unwrap_or(u32::MAX));
                }
                if hit(&resolved.to) {
                    resolved.dst.insert(id);
                }
            }
            let slot = id.0 as usize;
            if self.by_src.len() <= slot {
                self.by_src.resize_with(slot + 1, Vec::new);
            }
            if let Some(list) = self.by_src.get_mut(slot) {
                *list = sources;
            }
        }
        self.resolved = endpoints.len();
    }

    /// The index of the first rule that admits `key`'s connections at `at`,
    /// if any.
    pub fn covering_rule(&self, key: &FlowKey, at: SystemTime) -> Option<u32> {
        self.covering(key, |rule| rule.live_at(at))
    }

    /// The index of the first rule that admits `key`, expiry aside.
    pub fn covering_rule_ever(&self, key: &FlowKey) -> Option<u32> {
        self.covering(key, |_| true)
    }

    fn covering(&self, key: &FlowKey, live: impl Fn(&Resolved) -> bool) -> Option<u32> {
        let positions = self.by_src.get(key.src.0 as usize)?;
        positions.iter().find_map(|&p| {
            let rule = self.rules.get(p as usize)?;
            (rule.dst.contains(key.dst)
                && rule.admits(key.protocol, key.service_port)
                && live(rule))
            .then_some(rule.index)
        })
    }

    /// The rules (indexes, in file order) that let `src` open some
    /// connection to `dst` at `at`, whatever the protocol and port.
    pub fn rules_between(&self, src: EndpointId, dst: EndpointId, at: SystemTime) -> Vec<u32> {
        let Some(positions) = self.by_src.get(src.0 as usize) else {
            return Vec::new();
        };
        positions
            .iter()
            .filter_map(|&p| self.rules.get(p as usize))
            .filter(|rule| rule.dst.contains(dst) && rule.live_at(at))
            .map(|rule| rule.index)
            .collect()
    }

    /// The endpoints rule `index` lets connections come from (`source`) or
    /// go to, among those of the table.
    pub fn members(&self, index: u32, source: bool) -> Vec<EndpointId> {
        self.rule(index).map_or_else(Vec::new, |rule| {
            let set = if source { &rule.src } else { &rule.dst };
            set.iter().collect()
        })
    }

    /// How many (source, destination) pairs of the table rule `index` spans.
    pub fn pair_count(&self, index: u32) -> usize {
        self.rule(index)
            .map_or(0, |rule| rule.src.len().saturating_mul(rule.dst.len()))
    }

    fn rule(&self, index: u32) -> Option<&Resolved> {
        self.rules.iter().find(|r| r.index == index)
    }

    /// For each rule in file order, the tracked keys it decides (those whose
    /// first covering rule it is, expiry aside) and their last allowed use.
    pub fn usage(&self, activity: impl Iterator<Item = KeyActivity>) -> Vec<RuleUsage> {
        let mut usage: Vec<RuleUsage> = self
            .rules
            .iter()
            .map(|r| RuleUsage {
                rule: r.index,
                keys: Vec::new(),
                last_used: None,
            })
            .collect();
        let position: HashMap<u32, usize> = self
            .rules
            .iter()
            .enumerate()
            .map(|(n, r)| (r.index, n))
            .collect();
        for key in activity {
            let Some(rule) = self.covering_rule_ever(&key.key) else {
                continue;
            };
            let Some(entry) = position.get(&rule).and_then(|&n| usage.get_mut(n)) else {
                continue;
            };
            entry.keys.push(KeyUse {
                key: key.key,
                last_allowed: key.last_allowed,
            });
            entry.last_used = entry.last_used.max(key.last_allowed);
        }
        usage
    }
}

fn unresolved(rule: &Rule) -> Resolved {
    Resolved {
        index: rule.index,
        from: Vec::new(),
        to: Vec::new(),
        src: IdSet::default(),
        dst: IdSet::default(),
        proto: rule.proto,
        ports: rule.ports,
        expires_at: rule.expires_at,
    }
}

#[cfg(test)]
mod tests;
