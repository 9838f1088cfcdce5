//! Candidate keys: what might be needed soon.
//!
//! - every tracked key used (or attempted) within the memory of the
//!   predictor: [`CandidateSource::Seen`] or [`CandidateSource::Denied`];
//! - keys that label peers use: VMs with the same set of labels are peers;
//!   what most of a VM's peers reach (destination, protocol, service), it
//!   probably will too ([`CandidateSource::LabelPeers`], or
//!   [`CandidateSource::NewVm`] for a VM first seen recently). The same holds
//!   on the other side: a new database VM will be reached like its peers.
//!
//! Traffic with the outside world is predicted for the outside as a whole
//! once it is broad: when at least [`SearchLimits::outside_min_peers`]
//! external addresses use one VM's service (clients of a web server), or
//! one VM reaches a service at that many external addresses, their keys
//! collapse into one key with [`OUTSIDE`] on the external side. A policy
//! admits clients by network, and whether one client comes back within the
//! hour is neither predictable nor a policy question. Fewer addresses stay
//! keys of their own (a VM that talks to one mirror gets a rule for that
//! mirror, not for the world). Only keys that carried payload count: a
//! thousand addresses probing a port are no clients of it.
//!
//! Sources flagged as scanning are not peers of anyone: their keys lend no
//! support, so a compromised web VM cannot make its tier look like it needs
//! what it probed.

use std::collections::HashMap;

use foldhash::fast::RandomState as FastState;

use augur_flows::{
    Aggregator, Endpoint, EndpointId, Endpoints, FlowKey, KeyActivity, LabelId, OUTSIDE, Protocol,
};

use super::CandidateSource;
use super::scan::{OutsideSide, ScanDetector};

/// A candidate key and what the candidate search learned about it.
///
/// A cycle holds one per candidate, a million or more: the key's history
/// stays where it is (see [`History`]) and is read when the candidate is
/// encoded, so that the list stays a third of the size.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The key.
    pub key: FlowKey,
    /// Why it is a candidate.
    pub source: CandidateSource,
    /// Where the key's history is.
    pub history: History,
    /// Where the key's pair stands in [`Aggregator::pair_profiles`]' order,
    /// if the pair ever talked.
    pub pair: Option<u32>,
    /// Share of the peers (on the side the key was found from) that use it.
    pub peer_support: f32,
    /// Peers on that side.
    pub peers: u32,
    /// When the source endpoint was first seen, Unix seconds.
    pub source_first_seen: i64,
    /// External addresses the key stands for (1 unless it is a key of the
    /// outside as a whole).
    pub members: u32,
}

impl Candidate {
    /// The key's position in the aggregator, if it is tracked.
    pub fn position(&self) -> Option<usize> {
        match self.history {
            History::Tracked(position) => Some(position as usize),
            History::Summed(_) | History::Unknown => None,
        }
    }
}

/// Where the history of a candidate's key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// The key is tracked: its history is the aggregator's, at this
    /// position of [`Aggregator::key_activity`].
    Tracked(u32),
    /// The key stands for the outside as a whole: its history is its
    /// members' summed, at this index of [`Candidates::summed`].
    Summed(u32),
    /// The key was never seen.
    Unknown,
}

impl History {
    /// The history of the key at `position` of the aggregator, if any.
    fn at(position: Option<usize>) -> History {
        position
            .and_then(|p| u32::try_from(p).ok())
            .map_or(History::Unknown, History::Tracked)
    }
}

/// The candidates of one cycle.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// One per candidate key.
    pub list: Vec<Candidate>,
    /// The summed histories of keys of the outside as a whole (see
    /// [`History::Summed`]).
    pub summed: Vec<KeyActivity>,
}

impl Candidates {
    /// The history of a candidate's key, if it has one.
    pub fn activity(&self, candidate: &Candidate, agg: &Aggregator) -> Option<KeyActivity> {
        match candidate.history {
            History::Tracked(position) => agg.activity_at(position as usize),
            History::Summed(index) => self.summed.get(index as usize).copied(),
            History::Unknown => None,
        }
    }
}

/// Limits of the search.
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Keys unused (allowed or denied) for longer than this are dropped.
    pub forget_after_s: i64,
    /// A source first seen within this is new.
    pub new_vm_age_s: i64,
    /// At most this many services per peer group are proposed to members.
    pub max_peer_services: usize,
    /// External addresses using one service beyond which they are predicted
    /// as the outside as a whole.
    pub outside_min_peers: u32,
}

/// The key standing for `key` with its external side taken as the outside
/// as a whole, if exactly one side is external.
pub fn outside_key(key: &FlowKey, endpoints: &Endpoints) -> Option<FlowKey> {
    match OutsideSide::of(endpoints, key)? {
        OutsideSide::Source => Some(FlowKey {
            src: OUTSIDE,
            ..*key
        }),
        OutsideSide::Destination => Some(FlowKey {
            dst: OUTSIDE,
            ..*key
        }),
    }
}

/// The keys of one service of the outside, until it is known whether they
/// collapse.
#[derive(Debug, Default)]
struct OutsideGroup {
    members: Vec<Candidate>,
    /// Members whose traffic carried something: only they make the group a
    /// service of the outside.
    carrying: u32,
    activity: Option<KeyActivity>,
}

impl OutsideGroup {
    /// Adds a member. Allowed traffic counts only from members that carried
    /// something; attempts (denied, probes) count from all, since a blocked
    /// new address of a used service is need, not disuse.
    fn add(&mut self, key: FlowKey, candidate: Candidate, a: KeyActivity, carried: bool) {
        self.members.push(candidate);
        self.carrying += u32::from(carried);
        let mut a = a;
        if !carried {
            a.last_allowed = None;
            a.active_windows = 0;
            a.connections = 0;
            a.bytes = 0;
            a.packets = 0;
        }
        let sum = self.activity.get_or_insert(KeyActivity {
            key,
            first_seen: a.first_seen,
            last_allowed: None,
            last_denied: None,
            active_windows: 0,
            onsets: 0,
            connections: 0,
            bytes: 0,
            packets: 0,
            denied: 0,
        });
        sum.first_seen = sum.first_seen.min(a.first_seen);
        sum.last_allowed = sum.last_allowed.max(a.last_allowed);
        sum.last_denied = sum.last_denied.max(a.last_denied);
        // Windows overlap between members: the busiest member's count is a
        // lower bound of the group's, and never more than its lifetime.
        sum.active_windows = sum.active_windows.max(a.active_windows);
        sum.connections = sum.connections.saturating_add(a.connections);
        sum.bytes = sum.bytes.saturating_add(a.bytes);
        sum.packets = sum.packets.saturating_add(a.packets);
        sum.denied = sum.denied.saturating_add(a.denied);
    }
}

/// A service as peers use it: the other side, protocol and port.
type Service = (EndpointId, Protocol, u16);

/// A service a VM uses, with what the search already knows of the key
/// behind it, so that proposing the services of its peers needs no lookup
/// for the services it uses itself nor for the pairs it has.
#[derive(Debug, Clone, Copy)]
struct Used {
    service: Service,
    /// The key's pair (see [`Candidate::pair`]).
    pair: Option<u32>,
    /// The key's candidate, an index of the output.
    candidate: u32,
}

/// Notes that the candidate about to be pushed at `at` is a used key.
fn note_used(
    endpoints: &Endpoints,
    candidate: &Candidate,
    at: usize,
    as_source: &mut HashMap<EndpointId, Vec<Used>, FastState>,
    as_dest: &mut HashMap<EndpointId, Vec<Used>, FastState>,
) {
    let key = candidate.key;
    let Ok(at) = u32::try_from(at) else {
        return;
    };
    if is_vm(endpoints.endpoint(key.src)) {
        as_source.entry(key.src).or_default().push(Used {
            service: (key.dst, key.protocol, key.service_port),
            pair: candidate.pair,
            candidate: at,
        });
    }
    if is_vm(endpoints.endpoint(key.dst)) {
        as_dest.entry(key.dst).or_default().push(Used {
            service: (key.src, key.protocol, key.service_port),
            pair: candidate.pair,
            candidate: at,
        });
    }
}

/// Finds the candidates at `now`.
pub fn search(
    agg: &Aggregator,
    scans: &ScanDetector,
    limits: &SearchLimits,
    now: i64,
) -> Candidates {
    let endpoints = agg.endpoints();
    let horizon = now.saturating_sub(limits.forget_after_s);
    let mut first_seen: HashMap<EndpointId, i64, FastState> = HashMap::default();
    let mut out: Vec<Candidate> = Vec::with_capacity(agg.tracked_keys());
    let mut summed: Vec<KeyActivity> = Vec::new();
    // Candidates by the aggregator's position of their key (a flat table:
    // a million keys need no hashing), and by key for the rest.
    let mut by_position: Vec<u32> = vec![u32::MAX; agg.tracked_keys()];
    let mut tracked: HashMap<FlowKey, usize, FastState> = HashMap::default();
    // Services used per VM as source and as destination, for peer support.
    let mut as_source: HashMap<EndpointId, Vec<Used>, FastState> = HashMap::default();
    let mut as_dest: HashMap<EndpointId, Vec<Used>, FastState> = HashMap::default();
    let mut outside: HashMap<FlowKey, OutsideGroup, FastState> = HashMap::default();
    for (position, activity) in agg.key_activity().enumerate() {
        let key = activity.key;
        let src_first = first_seen.entry(key.src).or_insert(activity.first_seen);
        *src_first = (*src_first).min(activity.first_seen);
        let last = activity
            .last_allowed
            .into_iter()
            .chain(activity.last_denied)
            .max()
            .unwrap_or(activity.first_seen);
        if last < horizon {
            continue;
        }
        let used = activity.last_allowed.is_some_and(|t| t >= horizon);
        let candidate = Candidate {
            key,
            source: if activity.last_allowed.is_some() {
                CandidateSource::Seen
            } else {
                CandidateSource::Denied
            },
            history: History::at(Some(position)),
            pair: agg
                .pair_slot_at(position)
                .and_then(|p| u32::try_from(p).ok()),
            peer_support: 0.0,
            peers: 0,
            source_first_seen: 0,
            members: 1,
        };
        // Probes (no payload) and denied attempts alone do not make a
        // service of the outside (see `OutsideGroup::add`).
        if !scans.is_scanning(key.src, now)
            && let Some(group_key) = outside_key(&key, endpoints)
        {
            let carried = activity.carried_payload(scans.params().empty_bytes);
            outside
                .entry(group_key)
                .or_default()
                .add(group_key, candidate, activity, carried);
            continue;
        }
        if used && !scans.is_scanning(key.src, now) {
            note_used(
                endpoints,
                &candidate,
                out.len(),
                &mut as_source,
                &mut as_dest,
            );
        }
        if let Some(slot) = by_position.get_mut(position) {
            *slot = u32::try_from(out.len()).unwrap_or(u32::MAX);
        }
        out.push(candidate);
    }
    // In key order, as the label groups below: the candidates' order is
    // the order the model learns its rows in, and a hash map's order
    // changes from run to run (a replay must give the same figures twice).
    // Broad services of the outside become one key; narrow ones stay keys
    // of their own addresses.
    let mut outside: Vec<(FlowKey, OutsideGroup)> = outside.into_iter().collect();
    outside.sort_unstable_by_key(|(key, _)| *key);
    for (group_key, group) in outside {
        let broad = group.carrying >= limits.outside_min_peers;
        let emitted: Vec<(Candidate, Option<KeyActivity>)> = match (broad, group.activity) {
            (true, Some(activity)) => {
                let index = u32::try_from(summed.len()).unwrap_or(u32::MAX);
                summed.push(activity);
                vec![(
                    Candidate {
                        key: group_key,
                        source: if activity.last_allowed.is_some() {
                            CandidateSource::Seen
                        } else {
                            CandidateSource::Denied
                        },
                        history: History::Summed(index),
                        pair: agg
                            .pair_slot_of(group_key.src, group_key.dst)
                            .and_then(|p| u32::try_from(p).ok()),
                        peer_support: 0.0,
                        peers: 0,
                        source_first_seen: 0,
                        members: group.carrying,
                    },
                    Some(activity),
                )]
            }
            _ => group
                .members
                .into_iter()
                .map(|c| (c, c.position().and_then(|p| agg.activity_at(p))))
                .collect(),
        };
        for (candidate, activity) in emitted {
            let key = candidate.key;
            let used = activity
                .and_then(|a| a.last_allowed)
                .is_some_and(|t| t >= horizon);
            if used {
                note_used(
                    endpoints,
                    &candidate,
                    out.len(),
                    &mut as_source,
                    &mut as_dest,
                );
            }
            match candidate.position().and_then(|p| by_position.get_mut(p)) {
                Some(slot) => *slot = u32::try_from(out.len()).unwrap_or(u32::MAX),
                None => {
                    tracked.insert(key, out.len());
                }
            }
            out.push(candidate);
        }
    }
    // Peer groups: VMs with the same non-empty label set.
    let mut groups: HashMap<&[LabelId], Vec<EndpointId>> = HashMap::new();
    for (id, endpoint) in endpoints.iter() {
        let labels = endpoints.labels_of(id);
        if is_vm(Some(endpoint)) && !labels.is_empty() && !scans.is_scanning(id, now) {
            groups.entry(labels).or_default().push(id);
        }
    }
    let mut groups: Vec<(&[LabelId], Vec<EndpointId>)> = groups.into_iter().collect();
    groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for members in groups.iter().map(|(_, m)| m).filter(|m| m.len() >= 2) {
        expand(
            agg,
            members,
            &as_source,
            limits,
            |member, (other, protocol, port)| FlowKey {
                src: member,
                dst: other,
                protocol,
                service_port: port,
            },
            &mut Index {
                by_position: &mut by_position,
                by_key: &mut tracked,
            },
            &mut out,
        );
        expand(
            agg,
            members,
            &as_dest,
            limits,
            |member, (other, protocol, port)| FlowKey {
                src: other,
                dst: member,
                protocol,
                service_port: port,
            },
            &mut Index {
                by_position: &mut by_position,
                by_key: &mut tracked,
            },
            &mut out,
        );
    }
    for candidate in &mut out {
        candidate.source_first_seen = first_seen.get(&candidate.key.src).copied().unwrap_or(now);
        if candidate.source == CandidateSource::LabelPeers
            && now.saturating_sub(candidate.source_first_seen) <= limits.new_vm_age_s
        {
            candidate.source = CandidateSource::NewVm;
        }
    }
    Candidates { list: out, summed }
}

fn is_vm(endpoint: Option<&Endpoint>) -> bool {
    matches!(endpoint, Some(Endpoint::Vm(_)))
}

/// Where candidates stand in the output, by key.
struct Index<'a> {
    by_position: &'a mut Vec<u32>,
    by_key: &'a mut HashMap<FlowKey, usize, FastState>,
}

impl Index<'_> {
    /// The candidate of `key`, whose position in the aggregator (if it is
    /// tracked) is `position`.
    fn get(&self, key: &FlowKey, position: Option<usize>) -> Option<usize> {
        match position {
            Some(p) => self
                .by_position
                .get(p)
                .filter(|&&i| i != u32::MAX)
                .map(|&i| i as usize),
            None => self.by_key.get(key).copied(),
        }
    }

    fn insert(&mut self, key: FlowKey, position: Option<usize>, at: usize) {
        match position.and_then(|p| self.by_position.get_mut(p)) {
            Some(slot) => *slot = u32::try_from(at).unwrap_or(u32::MAX),
            None => {
                self.by_key.insert(key, at);
            }
        }
    }
}

/// Proposes to each member the services its peers use, with their support.
fn expand(
    agg: &Aggregator,
    members: &[EndpointId],
    used: &HashMap<EndpointId, Vec<Used>, FastState>,
    limits: &SearchLimits,
    key_of: impl Fn(EndpointId, Service) -> FlowKey,
    index: &mut Index<'_>,
    out: &mut Vec<Candidate>,
) {
    let mut sorted_members = members.to_vec();
    sorted_members.sort_unstable();
    // Each member's services, sorted and without the members' own
    // addresses (no service for their peers to use).
    let owned: Vec<Vec<Used>> = members
        .iter()
        .map(|member| {
            let mut own: Vec<Used> = used
                .get(member)
                .map(|services| {
                    services
                        .iter()
                        .copied()
                        .filter(|u| sorted_members.binary_search(&u.service.0).is_err())
                        .collect()
                })
                .unwrap_or_default();
            own.sort_unstable_by_key(|u| u.service);
            own.dedup_by_key(|u| u.service);
            own
        })
        .collect();
    let mut support: HashMap<Service, u32, FastState> = HashMap::default();
    for u in owned.iter().flatten() {
        *support.entry(u.service).or_default() += 1;
    }
    if support.is_empty() {
        return;
    }
    let mut ranked: Vec<(Service, u32)> = support.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(limits.max_peer_services);
    let peers = u32::try_from(members.len().saturating_sub(1)).unwrap_or(u32::MAX);
    for (&member, own) in members.iter().zip(&owned) {
        for &(service, count) in &ranked {
            // Support among the *other* members. Ranked services are never
            // a member's address, so the filtered list answers for all.
            let mine = own
                .binary_search_by(|u| u.service.cmp(&service))
                .ok()
                .and_then(|i| own.get(i));
            let others = count.saturating_sub(u32::from(mine.is_some()));
            let share = if peers > 0 {
                others as f32 / peers as f32
            } else {
                0.0
            };
            let key = key_of(member, service);
            // A service the member uses is its candidate already; for the
            // rest one lookup in the aggregator's index answers all below.
            let (existing, position) = match mine {
                Some(u) => (Some(u.candidate as usize), None),
                None => {
                    let position = agg.position_of(&key);
                    (index.get(&key, position), position)
                }
            };
            match existing {
                Some(i) => {
                    if let Some(c) = out.get_mut(i) {
                        c.peer_support = c.peer_support.max(share);
                        c.peers = c.peers.max(peers);
                    }
                }
                None if others > 0 => {
                    // The pair of a tracked key is the aggregator's; the
                    // member's own keys with the same other side have the
                    // pair of an untracked one, if it has any.
                    let pair = match position {
                        Some(p) => agg.pair_slot_at(p).and_then(|p| u32::try_from(p).ok()),
                        None => {
                            let first = own.partition_point(|u| u.service.0 < service.0);
                            match own.get(first).filter(|u| u.service.0 == service.0) {
                                Some(u) => u.pair,
                                None => agg
                                    .pair_slot_of(key.src, key.dst)
                                    .and_then(|p| u32::try_from(p).ok()),
                            }
                        }
                    };
                    index.insert(key, position, out.len());
                    out.push(Candidate {
                        key,
                        source: CandidateSource::LabelPeers,
                        // Known but forgotten: its old history still counts.
                        history: History::at(position),
                        pair,
                        peer_support: share,
                        peers,
                        source_first_seen: 0,
                        members: 1,
                    });
                }
                None => {}
            }
        }
    }
}
