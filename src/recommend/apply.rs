//! Applying a change to a policy: the rules it adds and removes, resolved to
//! positions, so that whoever keeps state per rule (replay's exposure, the
//! orchestrator's cookies) can follow.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;

use super::{Opening, Peer, PolicyChange, address_endpoint_name};
use crate::policy::file::Location;
use crate::policy::{Endpoint, Policy, Rule};

/// What applying a change did, by rule position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Positions removed, in the policy as it was (ascending).
    pub removed: Vec<u32>,
    /// Positions added, in the policy as it is now (ascending); removals
    /// happen first.
    pub added: Vec<u32>,
}

/// Why a change does not apply to a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// It names a rule the policy does not have (the policy changed since it
    /// was recommended).
    #[error("the policy has no rule {0}")]
    NoSuchRule(u32),
    /// It names a group or endpoint the policy does not declare.
    #[error("the policy has no group or endpoint named {0:?}")]
    UnknownName(String),
}

impl PolicyChange {
    /// Applies the change to `policy` (as of `at`, for expiry times). New
    /// rules go where the rule they replace was, or last: earlier rules win
    /// overlaps, so a new opening never shadows what the operator wrote.
    pub fn apply_to(&self, policy: &mut Policy, at: SystemTime) -> Result<Applied, ApplyError> {
        let _ = at;
        let mut applied = Applied::default();
        match self {
            PolicyChange::AddPair { rule }
            | PolicyChange::OpenPort { rule, .. }
            | PolicyChange::AllowProtocol { rule, .. }
            | PolicyChange::LabelRule { rule, .. }
            | PolicyChange::TimeBound { rule, .. } => {
                let new = rule_of(rule, policy)?;
                applied.added.push(position(policy.rules.len()));
                policy.rules.push(new);
            }
            PolicyChange::SetLimit {
                rule, rewritten, ..
            } => {
                let new = rule_of(rewritten, policy)?;
                let slot = policy
                    .rules
                    .get_mut(*rule as usize)
                    .ok_or(ApplyError::NoSuchRule(*rule))?;
                *slot = Rule {
                    name: slot.name.clone().or(new.name),
                    ..new
                };
                applied.removed.push(*rule);
                applied.added.push(*rule);
            }
            PolicyChange::RemoveRule { rule, .. } => {
                if (*rule as usize) >= policy.rules.len() {
                    return Err(ApplyError::NoSuchRule(*rule));
                }
                policy.rules.remove(*rule as usize);
                applied.removed.push(*rule);
            }
            PolicyChange::NarrowRule {
                rule, replacement, ..
            } => {
                if (*rule as usize) >= policy.rules.len() {
                    return Err(ApplyError::NoSuchRule(*rule));
                }
                let new: Vec<Rule> = replacement
                    .iter()
                    .map(|o| rule_of(o, policy))
                    .collect::<Result<_, _>>()?;
                policy.rules.remove(*rule as usize);
                applied.removed.push(*rule);
                for (i, r) in new.into_iter().enumerate() {
                    let at = (*rule as usize + i).min(policy.rules.len());
                    policy.rules.insert(at, r);
                    applied.added.push(position(at));
                }
            }
        }
        for (i, rule) in policy.rules.iter_mut().enumerate() {
            rule.index = position(i);
        }
        Ok(applied)
    }
}

fn position(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The policy rule for an opening, declaring the groups and endpoints its
/// sides need.
fn rule_of(opening: &Opening, policy: &mut Policy) -> Result<Rule, ApplyError> {
    let mut names = |peers: &[Peer]| -> Result<Vec<String>, ApplyError> {
        let mut out = Vec::with_capacity(peers.len());
        for peer in peers {
            let name = peer.rule_name();
            match peer {
                Peer::Selector(selector) => {
                    if policy.group(&name).is_none() {
                        policy.groups.push(selector.to_group());
                        policy.groups.sort_by(|a, b| a.name.cmp(&b.name));
                    }
                }
                Peer::Address(ip) => {
                    if policy.endpoint(&name).is_none() {
                        policy.endpoints.push(address_endpoint(*ip));
                    }
                }
                Peer::Outside => {
                    if policy.endpoint(&name).is_none() {
                        policy.endpoints.push(Endpoint {
                            name: name.clone(),
                            ports: Vec::new(),
                            local: false,
                            cidrs: ["0.0.0.0/0", "::/0"]
                                .iter()
                                .filter_map(|c| c.parse().ok())
                                .collect(),
                        });
                    }
                }
                Peer::Name(declared) => {
                    if policy.group(declared).is_none() && policy.endpoint(declared).is_none() {
                        return Err(ApplyError::UnknownName(declared.clone()));
                    }
                }
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    };
    let from = names(&opening.from)?;
    let to = names(&opening.to)?;
    Ok(Rule {
        index: 0,
        name: opening.name.clone(),
        location: Location { line: 0, column: 0 },
        from,
        to,
        proto: opening.proto,
        ports: opening.ports,
        rate: opening.rate,
        expires_at: opening
            .expires
            .and_then(|s| u64::try_from(s).ok())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    })
}

fn address_endpoint(ip: IpAddr) -> Endpoint {
    Endpoint {
        name: address_endpoint_name(ip),
        ports: Vec::new(),
        local: false,
        cidrs: vec![IpNet::from(ip)],
    }
}
