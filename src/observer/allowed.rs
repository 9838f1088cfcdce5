//! Allowed traffic: counter deltas of augur's rule flows → flow records.
//!
//! A rule flow matches on the selector bits the earlier stages loaded into
//! registers, not on addresses, so the switch counts per rule and per
//! (source selector, destination selector), not per VM pair. A delta can be
//! given a VM (or external address) at each end only where the rule's side
//! resolves to exactly one: a group of one VM, an endpoint of one host
//! address. Deltas of rules that span several VMs on a side are counted as
//! unattributed ([`AllowedSummary::unattributed`]) rather than guessed.
//!
//! What the counters measure: the rule flows match `+new` packets only, so
//! their packets are connection openings (retransmitted openings included)
//! and their bytes those packets' bytes. The rule flows also sample each
//! opening to the controller, which records it per VM pair; the daemon
//! passes the deltas through an [`OpeningsLedger`](super::OpeningsLedger)
//! first, so only openings whose sample the meter dropped come from here. Established traffic of a
//! rate-limited rule passes its own flows under the rule's cookie (matching
//! its meter in `ct_mark`) and adds its volume; established traffic of other
//! rules passes the shared `+est` flow and cannot be told apart by rule.
//!
//! Rules carry the version of the change that made them in their cookies
//! (the policy file's rules the file's version, a rule a change added that
//! change's): a delta counts for a rule when its cookie names the rule's
//! index with the rule's own version. A flow of the same index under
//! another version is a rule that no longer exists (replaced, rolled back,
//! or still on the switch from before a reinstall) and is not claimed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use augur_flows::{Endpoint, FlowRecord, Protocol, Timestamp, Verdict};
use augur_openflow::{CtState, Field};

use super::counters::CounterDelta;
use crate::inventory::Inventory;
use crate::policy::{Cookie, Origin, Policy, Proto};

/// What one allow rule's traffic can be attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTarget {
    /// The version its flows' cookies carry.
    pub version: u16,
    /// The one endpoint the rule's sources resolve to, if one.
    pub src: Option<Endpoint>,
    /// The one endpoint its destinations resolve to, if one.
    pub dst: Option<Endpoint>,
    /// Its protocol, where the rule names one (`ip` rules: none).
    pub protocol: Option<Protocol>,
    /// Its port, where the rule allows a single one.
    pub port: Option<u16>,
}

/// Every rule of the policy in force, by index, with its version.
#[derive(Debug, Clone, Default)]
pub struct RuleTargets {
    version: u16,
    rules: HashMap<u32, RuleTarget>,
}

impl RuleTargets {
    /// The targets of `policy`'s rules, every one compiled as `version`,
    /// with groups resolved against `inventory` the way the compiler
    /// resolves them.
    pub fn new(policy: &Policy, inventory: &Inventory, version: u16) -> RuleTargets {
        RuleTargets::per_rule(policy, inventory, version, &BTreeMap::new())
    }

    /// The targets of `policy`'s rules compiled with per-change tags: the
    /// rule at index `i` carries `versions[i]`, a rule not listed
    /// `version` (as [`VersionTags`](crate::policy::compile::VersionTags)
    /// tags them).
    pub fn per_rule(
        policy: &Policy,
        inventory: &Inventory,
        version: u16,
        versions: &BTreeMap<u32, u16>,
    ) -> RuleTargets {
        let mut rules = HashMap::with_capacity(policy.rules.len());
        for rule in &policy.rules {
            let protocol = match rule.proto {
                Proto::Tcp => Some(Protocol::TCP),
                Proto::Udp => Some(Protocol::UDP),
                // ICMP rules cover ICMPv6 too; the flow's match tells which.
                Proto::Icmp | Proto::Ip => None,
            };
            let port = rule
                .ports
                .and_then(|range| (range.first == range.last).then_some(range.first));
            rules.insert(
                rule.index,
                RuleTarget {
                    version: versions.get(&rule.index).copied().unwrap_or(version),
                    src: single_endpoint(policy, inventory, &rule.from),
                    dst: single_endpoint(policy, inventory, &rule.to),
                    protocol,
                    port,
                },
            );
        }
        RuleTargets { version, rules }
    }

    /// The version of the rules no change made (the policy file's, or the
    /// one every rule carries).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The target of the rule at `index`.
    pub fn get(&self, index: u32) -> Option<&RuleTarget> {
        self.rules.get(&index)
    }

    /// The target of the rule whose flows carry `index` and `version`, if
    /// that rule exists.
    pub fn rule_flow(&self, index: u32, version: u16) -> Option<&RuleTarget> {
        self.rules.get(&index).filter(|t| t.version == version)
    }
}

/// The one endpoint a list of selector names stands for, if it is one.
fn single_endpoint(policy: &Policy, inventory: &Inventory, names: &[String]) -> Option<Endpoint> {
    let mut found: BTreeSet<Endpoint> = BTreeSet::new();
    for name in names {
        if let Some(group) = policy.group(name) {
            for vm in &inventory.vms {
                let by_id = group.vms.contains(&vm.id);
                let by_labels = !group.labels.is_empty()
                    && group
                        .labels
                        .iter()
                        .all(|(k, v)| vm.labels.get(k) == Some(v));
                if by_id || by_labels {
                    found.insert(Endpoint::vm(&vm.id.0));
                }
            }
        } else if let Some(endpoint) = policy.endpoint(name) {
            // Ports (uplinks, LOCAL) stand for any address behind them.
            if !endpoint.ports.is_empty() || endpoint.local {
                return None;
            }
            for net in &endpoint.cidrs {
                if net.prefix_len() != net.max_prefix_len() {
                    return None;
                }
                found.insert(Endpoint::External(net.addr()));
            }
        }
        if found.len() > 1 {
            return None;
        }
    }
    found.pop_first()
}

/// Whether a flow with this match admits only connection openings (`+new`).
pub fn opens_connections(m: &augur_openflow::Match) -> bool {
    m.get(Field::CtState).is_some_and(|f| {
        let new = u128::from(CtState::NEW.0);
        f.value & new != 0 && f.mask.is_none_or(|mask| mask & new != 0)
    })
}

/// What turning one poll's deltas into records left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowedSummary {
    /// Deltas that became records.
    pub records: usize,
    /// Deltas of rules spanning several VMs or addresses on a side.
    pub unattributed: usize,
    /// Deltas of rule flows whose version is not their rule's (a rule
    /// that no longer exists, or none at that index).
    pub other_version: usize,
    /// Deltas of pipeline and deny flows (not per rule).
    pub not_rules: usize,
}

/// Turns counter deltas of rule flows into allowed records, seen at `ts` on
/// `bridge`.
pub fn allowed_records(
    deltas: &[CounterDelta],
    targets: &RuleTargets,
    ts: Timestamp,
    bridge: &Arc<str>,
) -> (Vec<FlowRecord>, AllowedSummary) {
    let mut summary = AllowedSummary::default();
    let mut records = Vec::new();
    for delta in deltas {
        let Some(cookie) = Cookie::from_raw(delta.flow.cookie) else {
            summary.not_rules += 1;
            continue;
        };
        let Some(Origin::Rule(index)) = cookie.origin() else {
            summary.not_rules += 1;
            continue;
        };
        let Some(target) = targets.rule_flow(index, cookie.version()) else {
            summary.other_version += 1;
            continue;
        };
        let RuleTarget {
            src: Some(src),
            dst: Some(dst),
            protocol,
            port,
            ..
        } = target
        else {
            summary.unattributed += 1;
            continue;
        };
        let m = &delta.flow.match_;
        let protocol = m
            .get(Field::CtNwProto)
            .and_then(|f| u8::try_from(f.value).ok())
            .map(Protocol)
            .or(*protocol)
            .unwrap_or_default();
        let exact_port = m
            .get(Field::CtTpDst)
            .filter(|f| f.mask.is_none())
            .and_then(|f| u16::try_from(f.value).ok());
        let opens = opens_connections(m);
        records.push(FlowRecord {
            ts,
            src: src.clone(),
            dst: dst.clone(),
            src_port: 0,
            dst_port: exact_port.or(*port).unwrap_or(0),
            protocol,
            bytes: delta.bytes,
            packets: delta.packets,
            connections: if opens {
                u32::try_from(delta.packets).unwrap_or(u32::MAX)
            } else {
                0
            },
            verdict: Verdict::Allowed,
            bridge: Some(Arc::clone(bridge)),
        });
        summary.records += 1;
    }
    (records, summary)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::observer::counters::FlowIdentity;
    use crate::policy::compile::{CompileSettings, VersionTags, compile_tagged};
    use crate::policy::{Cookie, Stage};

    const POLICY: &str = r#"
[groups.web]
vms = ["a"]
[groups.db]
vms = ["b"]
[[allow]]
from = "web"
to = "db"
proto = "tcp"
port = 5432
[[allow]]
from = "web"
to = "db"
proto = "udp"
port = 53
"#;

    const INVENTORY: &str = r#"{"bridges": [{"name": "br0", "datapath_id": 1}], "vms": [
 {"id": "a", "interfaces": [{"bridge": "br0", "ofport": 1, "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1"]}]},
 {"id": "b", "interfaces": [{"bridge": "br0", "ofport": 2, "mac": "02:00:00:00:00:02", "ips": ["10.0.0.2"]}]}
], "external_ports": []}"#;

    /// One delta of 3 packets for every rule flow of `flows`, with its
    /// cookie's version replaced by `version` where given.
    fn deltas(
        flows: &[&crate::policy::compile::FlowEntry],
        version: Option<u16>,
    ) -> Vec<CounterDelta> {
        flows
            .iter()
            .map(|f| {
                let cookie = match (version, f.cookie.origin()) {
                    (Some(v), Some(origin)) => Cookie::new(v, origin).0,
                    _ => f.cookie.0,
                };
                CounterDelta {
                    flow: FlowIdentity {
                        cookie,
                        table_id: f.table_id,
                        priority: f.priority,
                        match_: f.match_.clone(),
                    },
                    packets: 3,
                    bytes: 222,
                    restarted: false,
                }
            })
            .collect()
    }

    #[test]
    fn rules_added_by_changes_count_under_their_own_version() {
        let policy = Policy::parse(POLICY, "p.toml", UNIX_EPOCH).unwrap();
        let inventory: Inventory = serde_json::from_str(INVENTORY).unwrap();
        // The file's rule 0 carries the file's version 1; rule 1 was added
        // by change 7, the latest.
        let versions = BTreeMap::from([(0, 1), (1, 7)]);
        let settings = CompileSettings {
            version: 7,
            ..CompileSettings::default()
        };
        let compiled = compile_tagged(
            &policy,
            &inventory,
            &settings,
            &VersionTags::per_change(versions.clone()),
            UNIX_EPOCH,
        )
        .unwrap();
        let acl: Vec<_> = compiled
            .bridge("br0")
            .unwrap()
            .stage(Stage::Acl)
            .filter(|f| matches!(f.cookie.origin(), Some(Origin::Rule(_))))
            .collect();
        let bridge: Arc<str> = Arc::from("br0");
        let at = Timestamp::from_secs(100);
        let targets = RuleTargets::per_rule(&policy, &inventory, 7, &versions);
        let (records, summary) = allowed_records(&deltas(&acl, None), &targets, at, &bridge);
        assert_eq!(summary.other_version, 0, "{summary:?}");
        assert_eq!(summary.records, acl.len());
        let ports: BTreeSet<(u8, u16)> =
            records.iter().map(|r| (r.protocol.0, r.dst_port)).collect();
        assert_eq!(ports, BTreeSet::from([(6, 5432), (17, 53)]));
        // One version for all (what the observer did before): the change's
        // rule is not counted.
        let file_only = RuleTargets::new(&policy, &inventory, 1);
        let (records, summary) = allowed_records(&deltas(&acl, None), &file_only, at, &bridge);
        assert!(records.iter().all(|r| r.dst_port == 5432));
        assert!(summary.other_version > 0);
        // Flows of a rule under a version it does not have (left from a
        // rolled-back change) are not claimed.
        let (records, summary) = allowed_records(&deltas(&acl, Some(6)), &targets, at, &bridge);
        assert!(records.is_empty());
        assert_eq!(summary.other_version, acl.len());
    }
}
