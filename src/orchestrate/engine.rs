//! The decision loop, without I/O: which recommendations augur applies by
//! itself, which wait for an operator, which it never makes, and when it
//! undoes a change of its own because the change measurably hurts.
//!
//! The daemon ([`super::service`]) and replay's `Augur` strategy drive the same
//! [`Engine`], so a replay predicts what the daemon would do. Time is
//! whatever the caller says (Unix seconds): tests and replay run it on a
//! simulated clock.
//!
//! # What is decided
//!
//! | recommendation | action |
//! |---|---|
//! | low risk | [`Action::Apply`], decided by augur |
//! | high risk | [`Action::Publish`] once; then the operator's decision: [`Action::Apply`] with their name, or [`Action::Drop`] |
//! | forbidden (operator override) | [`Action::Drop`], never applied or queued |
//! | time-bound opening before its `open_at` | nothing yet: it is decided when its time comes |
//!
//! An id is decided once: a recommendation that was applied, rejected,
//! expired or forbidden is not acted on again when a later cycle repeats
//! it, and one waiting for review is not published twice.
//!
//! The decided ids are bounded. An id that became a policy version is kept
//! as long as the engine runs (the history holds it anyway, and a
//! restarted daemon hands the history's ids over with
//! [`Engine::in_history`], so that a rolled-back change is never made
//! again). Any other decided id is kept while cycles keep recommending it,
//! the evidence for it unchanged, and is forgotten once no cycle has
//! recommended it for the time given to [`Engine::forget_decided`]: if the
//! recommendation comes back after that, it rests on new evidence and is
//! decided anew. At most [`MAX_DECIDED`] such ids are kept; past that the
//! ones recommended longest ago are forgotten first.
//!
//! # Harm rules (automatic rollback)
//!
//! Every change augur applies (by itself or approved) is watched for
//! [`EngineSettings::watch_for_s`]. The VMs and pairs it concerns are those
//! of the recommendation's flow keys. It is rolled back, with the rule and
//! the numbers as the reason, when one of these holds:
//!
//! 1. **Refused by a switch**: a bridge's last update failed while the
//!    change is in force, and it did not fail already when the change was
//!    applied (a bridge that reconnects and refuses the version). The
//!    newest watched change is the one undone: it is the one that made the
//!    version the bridge refused. One refusal undoes one change: while the
//!    same bridge keeps refusing, older changes are not undone one after
//!    the other (the cause is then elsewhere). (A change the bridges refuse
//!    while it is applied is never in force: [`super::VersionControl`]
//!    undoes it everywhere and records nothing.)
//! 2. **Denied attempts rise**: the denied attempts from or to the
//!    concerned VMs since the change exceed, by at least
//!    [`HarmSettings::denied_rise_min`] and by a factor of
//!    [`HarmSettings::denied_rise_factor`], what the same VMs had in a
//!    period of the same length before it (scaled from whatever history
//!    there is, at most `watch_for` back). Checked every cycle: a change
//!    that cuts off a working service is undone at the first cycle the rise
//!    is clear, not at the end of the watch.
//! 3. **A pair is starved**: at the end of the watch, a concerned pair that
//!    used to carry traffic (its 95th percentile window volume at least
//!    [`HarmSettings::starved_min_p95_bytes`]) carried on average per
//!    window less than [`HarmSettings::starved_share`] of that p95, and
//!    either the change's rate limit dropped its traffic or its denied
//!    attempts rose. The limit counts as dropping when the switches' meter
//!    statistics for the change's meters ([`Observation::meters`]) show at
//!    least [`HarmSettings::meter_drops_min`] packets dropped since the
//!    change, and at least [`HarmSettings::meter_drop_share`] of the
//!    packets the meters saw; a limit whose meters the switches do not
//!    report counts as dropping (the limit is then the only evidence). A
//!    pair that merely went quiet, with no drops and no denials, is not
//!    harm.
//!
//! A watch that ends with none of these keeps the change.
//!
//! # Watches across restarts
//!
//! What a watch needs that the history does not already say is stored with
//! the version as a [`WatchRecord`]: the concerned pairs by name, whether
//! the change sets a rate limit, and the baseline rate of rule 2 (the
//! concerned VMs' denied attempts per second before the change, as the
//! daemon that applied it measured them). The change's meters need no
//! record: they are those of its rules, found again from the history. A
//! restarted daemon hands the history and these records to
//! [`Engine::resume`], which watches again every change still in force
//! whose watch had not run its course (`created_ms` plus `watch_for` still
//! ahead), until the same end as before the restart. A change rolled back,
//! or one a later change in force built upon (it can no longer be rolled
//! back alone), is not watched again; nor is a version without a record
//! (made by an older augur).
//!
//! The counters a resumed watch subtracts start afresh at the first
//! observation of the restarted daemon, not at the change: the restarted
//! aggregator rebuilds its totals from the stored windows (the window open
//! at the crash is lost), so they do not continue the first daemon's
//! counts exactly, and nothing stored says what they were when the change
//! was made. The baseline rate, on the other hand, is the stored pre-change
//! one: a rate measured after the restart would be the changed network's
//! own rate and hide the very rise rule 2 looks for. So after a restart,
//! rule 2 compares the denied attempts since the restarted daemon's first
//! observation with what the pre-change rate predicts for that time, and
//! rule 3 judges the volume and meter drops from that observation to the
//! end of the watch (if that spans at least a window); harm that happened
//! only while augur was down and stopped before it came back is not seen,
//! and rule 1 does not blame the change for a bridge already refusing at
//! that first observation.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::net::IpAddr;

use augur_flows::{Aggregator, Endpoint, EndpointId, FlowKey};
use serde::{Deserialize, Serialize};

use super::versions::{Decider, PolicyVersion, Seq, built_upon};
use crate::recommend::{PolicyChange, Recommendation};
use crate::risk::{RiskLevel, Unit};

/// When a change is harm, and how long it is watched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HarmSettings {
    /// Fewest extra denied attempts (over the baseline) that count as a
    /// rise: a handful of retries is noise.
    pub denied_rise_min: u64,
    /// Denied attempts after the change over the baseline's, for the same
    /// length of time, that count as a rise (a whole factor, at least 1).
    pub denied_rise_factor: u32,
    /// A pair carrying less than this share of its p95 window volume is
    /// starved (0–1).
    pub starved_share: Unit,
    /// The p95 window volume, bytes, from which a pair counts as one that
    /// used to carry traffic.
    pub starved_min_p95_bytes: u64,
    /// Fewest packets a change's rate limit must have dropped to count as
    /// starving a pair.
    pub meter_drops_min: u64,
    /// Share of the packets a change's meters saw that they must have
    /// dropped to count as starving a pair (0–1).
    pub meter_drop_share: Unit,
}

impl Default for HarmSettings {
    fn default() -> Self {
        Self {
            // Ten connection attempts with their retransmissions: one
            // client failing for a minute, more than scattered probes.
            denied_rise_min: 20,
            denied_rise_factor: 3,
            starved_share: Unit::new(0.2).unwrap_or_default(),
            starved_min_p95_bytes: 10_000,
            // A hundred full-size packets: more than a burst trimmed once.
            meter_drops_min: 100,
            // One packet in ten: a limit that bites, not one that shaves a
            // peak.
            meter_drop_share: Unit::new(0.1).unwrap_or_default(),
        }
    }
}

impl HarmSettings {
    /// Checks the values; `(setting, reason)` on error.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.denied_rise_factor < 1 {
            return Err(("denied_rise_factor".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// The engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Seconds a change is watched after it is applied (0: not watched).
    pub watch_for_s: i64,
    /// The harm rules' thresholds.
    pub harm: HarmSettings,
}

/// The VMs and pairs a change is about, by name (the aggregator's ids are
/// not kept across restarts; names are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Concerns {
    /// Source and destination of each flow key.
    pub pairs: BTreeSet<(Endpoint, Endpoint)>,
}

impl Concerns {
    /// The pairs of `keys`, named through `aggregator`.
    pub fn of_keys(aggregator: &Aggregator, keys: &[FlowKey]) -> Concerns {
        let endpoints = aggregator.endpoints();
        let pairs = keys
            .iter()
            .filter_map(|k| {
                Some((
                    endpoints.endpoint(k.src)?.clone(),
                    endpoints.endpoint(k.dst)?.clone(),
                ))
            })
            .collect();
        Concerns { pairs }
    }

    /// Every endpoint of every pair that is a VM.
    pub fn vms(&self) -> BTreeSet<Endpoint> {
        self.pairs
            .iter()
            .flat_map(|(a, b)| [a, b])
            .filter(|e| matches!(e, Endpoint::Vm(_)))
            .cloned()
            .collect()
    }
}

/// An endpoint as a [`WatchRecord`] stores it (by name, tagged, so that a
/// VM id that reads like an address stays a VM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointRecord {
    /// A VM, by its inventory id.
    Vm(String),
    /// An address outside the inventory.
    External(IpAddr),
}

impl EndpointRecord {
    fn of(endpoint: &Endpoint) -> EndpointRecord {
        match endpoint {
            Endpoint::Vm(id) => EndpointRecord::Vm(id.to_string()),
            Endpoint::External(ip) => EndpointRecord::External(*ip),
        }
    }

    fn endpoint(&self) -> Endpoint {
        match self {
            EndpointRecord::Vm(id) => Endpoint::vm(id),
            EndpointRecord::External(ip) => Endpoint::External(*ip),
        }
    }
}

/// What watching a change needs beyond the history, stored beside its
/// version so that a restarted daemon watches it on (see the module
/// documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchRecord {
    /// The concerned pairs, source and destination.
    pub pairs: Vec<(EndpointRecord, EndpointRecord)>,
    /// Whether the change sets a rate limit (rule 3 then reads its
    /// meters).
    pub limits: bool,
    /// Denied attempts per second of the concerned VMs before the change
    /// (rule 2's baseline).
    pub denied_rate_before: f64,
}

impl WatchRecord {
    /// The concerns it records.
    pub fn concerns(&self) -> Concerns {
        Concerns {
            pairs: self
                .pairs
                .iter()
                .map(|(a, b)| (a.endpoint(), b.endpoint()))
                .collect(),
        }
    }
}

/// A recommendation with what it concerns.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The recommendation.
    pub recommendation: Recommendation,
    /// Its VMs and pairs.
    pub concerns: Concerns,
}

/// A pair's traffic so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairVolume {
    /// Allowed bytes, all time.
    pub bytes: u64,
    /// Denied attempts, all time.
    pub denied: u64,
    /// The 95th percentile of its active windows' volume, bytes.
    pub p95_bytes: f64,
}

/// What a change's meters counted, summed over its meters and bridges
/// (totals since each meter was made).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeterUse {
    /// Packets that reached the meters.
    pub packets: u64,
    /// Packets their bands dropped.
    pub dropped: u64,
}

/// What the engine measures harm with, taken each cycle from the live
/// state. Counters are totals since the aggregator started, so a watch
/// subtracts two observations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// When, Unix seconds.
    pub at: i64,
    /// Window length, seconds (to turn a volume into a volume per window).
    pub window_s: u32,
    /// Denied attempts from or to each VM.
    pub denied_by_vm: BTreeMap<Endpoint, u64>,
    /// The pairs the engine asked for ([`Engine::watched_pairs`]).
    pub pairs: BTreeMap<(Endpoint, Endpoint), PairVolume>,
    /// Bridges whose last update failed, with the switch's error.
    pub refusals: Vec<(String, String)>,
    /// The meters of the watched changes that set rate limits, by version
    /// ([`Engine::watched_meters`]); a change the switches report no meter
    /// statistics for is absent.
    pub meters: BTreeMap<Seq, MeterUse>,
}

impl Observation {
    /// Measures `aggregator` at `now` for `pairs`. Denied attempts of the
    /// sources in `scanning` are left out: a scan is the scanner's doing,
    /// not a change's, and a compromised VM must not make augur undo what
    /// its neighbours need.
    pub fn measure(
        aggregator: &Aggregator,
        pairs: &BTreeSet<(Endpoint, Endpoint)>,
        scanning: &HashSet<EndpointId>,
        now: i64,
    ) -> Observation {
        let endpoints = aggregator.endpoints();
        let mut denied_by_vm: BTreeMap<Endpoint, u64> = BTreeMap::new();
        let mut wanted: BTreeMap<(augur_flows::EndpointId, augur_flows::EndpointId), PairVolume> =
            BTreeMap::new();
        let ids: BTreeMap<_, _> = pairs
            .iter()
            .filter_map(|(a, b)| Some(((endpoints.get(a)?, endpoints.get(b)?), (a, b))))
            .collect();
        for activity in aggregator.key_activity() {
            if activity.denied > 0 && !scanning.contains(&activity.key.src) {
                for id in [activity.key.src, activity.key.dst] {
                    if let Some(endpoint @ Endpoint::Vm(_)) = endpoints.endpoint(id) {
                        let total = denied_by_vm.entry(endpoint.clone()).or_default();
                        *total = total.saturating_add(u64::from(activity.denied));
                    }
                }
            }
            let pair = (activity.key.src, activity.key.dst);
            if ids.contains_key(&pair) {
                let volume = wanted.entry(pair).or_default();
                volume.bytes = volume.bytes.saturating_add(activity.bytes);
                volume.denied = volume.denied.saturating_add(u64::from(activity.denied));
            }
        }
        let pairs = ids
            .iter()
            .map(|(&(a, b), &(name_a, name_b))| {
                let mut volume = wanted.get(&(a, b)).copied().unwrap_or_default();
                volume.p95_bytes = aggregator
                    .pair_signature(a, b)
                    .map_or(0.0, |s| s.volume.p95_bytes);
                ((name_a.clone(), name_b.clone()), volume)
            })
            .collect();
        Observation {
            at: now,
            window_s: u32::from(aggregator.config().length_s),
            denied_by_vm,
            pairs,
            refusals: Vec::new(),
            meters: BTreeMap::new(),
        }
    }

    fn denied_of(&self, vms: &BTreeSet<Endpoint>) -> u64 {
        vms.iter()
            .filter_map(|vm| self.denied_by_vm.get(vm))
            .fold(0u64, |sum, n| sum.saturating_add(*n))
    }
}

/// What the daemon (or replay) is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Apply the change as a new policy version.
    Apply {
        /// The recommendation.
        recommendation: Box<Recommendation>,
        /// Who decided: [`Decider::Automatic`] or [`Decider::Operator`].
        decider: Decider,
    },
    /// Put the recommendation up for review.
    Publish {
        /// The recommendation.
        recommendation: Box<Recommendation>,
    },
    /// Do not make it; the reason says why.
    Drop {
        /// The recommendation's id.
        id: String,
        /// Why.
        why: DropReason,
    },
    /// Undo a version augur applied: it caused harm.
    Rollback {
        /// The version.
        seq: Seq,
        /// The harm rule and its numbers.
        reason: String,
    },
}

/// Why a recommendation is not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// An operator override forbids it.
    Forbidden,
    /// The operator rejected it.
    Rejected {
        /// Who, if they said.
        by: Option<String>,
        /// Why, if they said.
        reason: Option<String>,
    },
    /// Nobody decided in time.
    Expired,
    /// Approved, but the recommendation no longer holds (augur restarted,
    /// or the traffic changed, before the approval arrived).
    Stale,
}

/// An operator's decision, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Apply it.
    Approve {
        /// Who, if they said.
        by: Option<String>,
    },
    /// Do not.
    Reject {
        /// Who, if they said.
        by: Option<String>,
        /// Why, if they said.
        reason: Option<String>,
    },
}

/// A recommendation waiting for review.
#[derive(Debug, Clone)]
pub struct Review {
    /// The recommendation.
    pub candidate: Candidate,
    /// When it was published, Unix seconds.
    pub since: i64,
}

/// Most decided ids kept that are not policy versions (rejected, expired,
/// forbidden, or failed to apply): about 5 MB, far more than distinct
/// recommendations a network makes while its evidence lasts.
pub const MAX_DECIDED: usize = 50_000;

/// What the engine keeps of a decided id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decided {
    /// When a cycle last recommended it, or it was decided, Unix seconds.
    seen: i64,
    /// It became a policy version: kept for good.
    lasting: bool,
}

/// A change under watch.
#[derive(Debug, Clone)]
struct Watch {
    seq: Seq,
    concerns: Concerns,
    limits: bool,
    /// When the change was applied: the watch ends `watch_for` after.
    started: i64,
    /// Denied attempts of the concerned VMs per second before the change.
    denied_rate_before: f64,
    /// The observation its counters start from: the last one before the
    /// change, or for a watch resumed after a restart the restarted
    /// daemon's first.
    at_start: Observation,
    /// Resumed, and that first observation is not made yet.
    awaiting_start: bool,
    /// When the counters start: `started`, or the time of the first
    /// observation after a restart.
    counted_from: i64,
    /// Resumed after a restart (the reasons say so).
    resumed: bool,
}

/// The decision loop's state.
#[derive(Debug)]
pub struct Engine {
    settings: EngineSettings,
    reviews: BTreeMap<String, Review>,
    /// Approvals of recommendations this engine does not hold (augur
    /// restarted since publishing): acted on when the next cycle
    /// recommends the same id, dropped as stale otherwise.
    approved_unknown: BTreeMap<String, Option<String>>,
    /// Applied changes by recommendation id, with what they concern and
    /// the review they came from, until [`Engine::applied`] says which
    /// version they became.
    applying: BTreeMap<String, (Candidate, Option<i64>)>,
    decided: BTreeMap<String, Decided>,
    /// How many of `decided` are not lasting (what [`MAX_DECIDED`] bounds).
    transient: usize,
    /// The latest time a cycle gave, for decisions between cycles.
    clock: i64,
    watches: Vec<Watch>,
    /// Past observations, for the baseline of a new watch: at most
    /// `watch_for` back.
    past: VecDeque<Observation>,
    /// Bridges whose refusal already undid a change, until they stop
    /// refusing.
    refusals_acted_on: BTreeSet<String>,
}

impl Engine {
    /// An engine with nothing decided yet.
    pub fn new(settings: EngineSettings) -> Engine {
        Engine {
            settings,
            reviews: BTreeMap::new(),
            approved_unknown: BTreeMap::new(),
            applying: BTreeMap::new(),
            decided: BTreeMap::new(),
            transient: 0,
            clock: 0,
            watches: Vec::new(),
            past: VecDeque::new(),
            refusals_acted_on: BTreeSet::new(),
        }
    }

    /// The time is `now` (Unix seconds): what is decided until the next
    /// cycle, an operator's decision or an expiry, is dated by it (cycles
    /// advance it too).
    pub fn advance(&mut self, now: i64) {
        self.clock = self.clock.max(now);
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Recommendations waiting for review, by id.
    pub fn reviews(&self) -> &BTreeMap<String, Review> {
        &self.reviews
    }

    /// Whether `id` was decided (applied, rejected, expired, forbidden).
    pub fn is_decided(&self, id: &str) -> bool {
        self.decided.contains_key(id)
    }

    /// How many ids are decided: `(lasting, transient)`, the first those
    /// that became policy versions.
    pub fn decided_count(&self) -> (usize, usize) {
        (self.decided.len() - self.transient, self.transient)
    }

    /// The recommendations of the history's versions (a restarted daemon's
    /// record of what it did before): decided for good, whether still in
    /// force or rolled back, so that none is applied or published again.
    pub fn in_history(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.reviews.remove(&id);
            self.approved_unknown.remove(&id);
            self.decide(id, true);
        }
    }

    /// Forgets the decided ids, other than policy versions, that no cycle
    /// has recommended since `before` (Unix seconds), and reviews published
    /// before it that nobody decided (without a pending table nothing
    /// expires them); returns how many ids were forgotten.
    pub fn forget_decided(&mut self, before: i64) -> usize {
        let was = self.decided.len();
        self.decided.retain(|_, d| d.lasting || d.seen >= before);
        let forgotten = was - self.decided.len();
        self.transient -= forgotten;
        self.reviews.retain(|_, r| r.since >= before);
        forgotten
    }

    /// The pairs the next [`Observation`] must measure.
    pub fn watched_pairs(&self) -> BTreeSet<(Endpoint, Endpoint)> {
        self.watches
            .iter()
            .flat_map(|w| w.concerns.pairs.iter().cloned())
            .chain(
                self.applying
                    .values()
                    .flat_map(|(c, _)| c.concerns.pairs.iter().cloned()),
            )
            .collect()
    }

    /// The watched versions that set a rate limit: the next
    /// [`Observation::meters`] reports their meters.
    pub fn watched_meters(&self) -> Vec<Seq> {
        self.watches
            .iter()
            .filter(|w| w.limits)
            .map(|w| w.seq)
            .collect()
    }

    /// Versions under watch.
    pub fn watching(&self) -> Vec<Seq> {
        self.watches.iter().map(|w| w.seq).collect()
    }

    /// One cycle at `now`: harm checks on what `observation` shows
    /// ([`Engine::observe`]), then the cycle's recommendations
    /// ([`Engine::recommended`]).
    pub fn cycle(
        &mut self,
        candidates: Vec<Candidate>,
        observation: Observation,
        now: i64,
    ) -> Vec<Action> {
        let mut actions = self.observe(observation, now);
        actions.extend(self.recommended(candidates, now));
        actions
    }

    /// The harm checks of a cycle, alone: for a cycle without
    /// recommendations to act on (the model is not trained yet), which
    /// must not make held approvals stale.
    pub fn observe(&mut self, observation: Observation, now: i64) -> Vec<Action> {
        self.clock = self.clock.max(now);
        let actions = self.check_watches(&observation, now);
        self.remember(observation, now);
        actions
    }

    /// Acts on a cycle's recommendations (all of them: an approval held
    /// for an id that is not among them is dropped as stale).
    pub fn recommended(&mut self, candidates: Vec<Candidate>, now: i64) -> Vec<Action> {
        self.clock = self.clock.max(now);
        let mut actions = Vec::new();
        let mut recommended = BTreeSet::new();
        for candidate in candidates {
            let id = candidate.recommendation.id.clone();
            recommended.insert(id.clone());
            if let Some(decided) = self.decided.get_mut(&id) {
                // The same evidence again: kept decided.
                decided.seen = decided.seen.max(now);
                continue;
            }
            if let Some(by) = self.approved_unknown.remove(&id) {
                actions.push(self.apply(candidate, Decider::Operator(approver(by)), Some(now)));
                continue;
            }
            // A time-bound opening is proposed ahead; it opens at its time.
            if let PolicyChange::TimeBound { open_at, .. } = candidate.recommendation.change
                && now < open_at
            {
                continue;
            }
            match candidate.recommendation.risk.level {
                RiskLevel::Low => actions.push(self.apply(candidate, Decider::Automatic, None)),
                RiskLevel::High => {
                    if let std::collections::btree_map::Entry::Vacant(slot) = self.reviews.entry(id)
                    {
                        actions.push(Action::Publish {
                            recommendation: Box::new(candidate.recommendation.clone()),
                        });
                        slot.insert(Review {
                            candidate,
                            since: now,
                        });
                    }
                }
                RiskLevel::Forbidden => {
                    self.decide(id.clone(), false);
                    actions.push(Action::Drop {
                        id,
                        why: DropReason::Forbidden,
                    });
                }
            }
        }
        // Approvals of recommendations this cycle did not make are stale.
        let stale: Vec<String> = self
            .approved_unknown
            .keys()
            .filter(|id| !recommended.contains(*id))
            .cloned()
            .collect();
        for id in stale {
            self.approved_unknown.remove(&id);
            actions.push(Action::Drop {
                id,
                why: DropReason::Stale,
            });
        }
        actions
    }

    /// The operator decided on `id`.
    pub fn decision(&mut self, id: &str, verdict: Verdict) -> Vec<Action> {
        if self.decided.contains_key(id) {
            return Vec::new();
        }
        match verdict {
            Verdict::Approve { by } => match self.reviews.remove(id) {
                Some(review) => vec![self.apply(
                    review.candidate,
                    Decider::Operator(approver(by)),
                    Some(review.since),
                )],
                None => {
                    // Held until the next cycle shows whether it still holds.
                    self.approved_unknown.insert(id.to_owned(), by);
                    Vec::new()
                }
            },
            Verdict::Reject { by, reason } => {
                self.reviews.remove(id);
                self.decide(id.to_owned(), false);
                vec![Action::Drop {
                    id: id.to_owned(),
                    why: DropReason::Rejected { by, reason },
                }]
            }
        }
    }

    /// Nobody decided on `id` in time.
    pub fn expired(&mut self, id: &str) -> Vec<Action> {
        self.reviews.remove(id);
        if self.decided.contains_key(id) {
            return Vec::new();
        }
        self.decide(id.to_owned(), false);
        vec![Action::Drop {
            id: id.to_owned(),
            why: DropReason::Expired,
        }]
    }

    /// The change of recommendation `id` is in force as version `seq` since
    /// `now`: watch it.
    pub fn applied(&mut self, id: &str, seq: Seq, now: i64) {
        let Some((candidate, _)) = self.applying.remove(id) else {
            return;
        };
        self.decide(id.to_owned(), true);
        if self.settings.watch_for_s <= 0 {
            return;
        }
        self.watches.push(Watch {
            seq,
            limits: limits(&candidate),
            denied_rate_before: self.denied_rate_before(&candidate.concerns),
            concerns: candidate.concerns,
            started: now,
            at_start: self.past.back().cloned().unwrap_or_default(),
            awaiting_start: false,
            counted_from: now,
            resumed: false,
        });
    }

    /// What to store with the version of recommendation `id`, about to be
    /// applied (between the [`Action::Apply`] and [`Engine::applied`]), so
    /// that a restarted daemon can watch it on; `None` for an id not being
    /// applied.
    pub fn watch_record(&self, id: &str) -> Option<WatchRecord> {
        let (candidate, _) = self.applying.get(id)?;
        Some(WatchRecord {
            pairs: candidate
                .concerns
                .pairs
                .iter()
                .map(|(a, b)| (EndpointRecord::of(a), EndpointRecord::of(b)))
                .collect(),
            limits: limits(candidate),
            denied_rate_before: self.denied_rate_before(&candidate.concerns),
        })
    }

    /// A restarted daemon's history, with the watch records stored beside
    /// it, at `now`: watches again the changes in force whose watch had not
    /// ended (see the module documentation); returns them, each with when
    /// its watch ends (Unix seconds). Call before the first cycle.
    pub fn resume(
        &mut self,
        history: &[PolicyVersion],
        records: &BTreeMap<Seq, WatchRecord>,
        now: i64,
    ) -> Vec<(Seq, i64)> {
        let watch_for = self.settings.watch_for_s;
        if watch_for <= 0 {
            return Vec::new();
        }
        let mut resumed: Vec<Watch> = history
            .iter()
            .filter(|v| v.in_force() && !self.watches.iter().any(|w| w.seq == v.seq))
            .filter_map(|v| {
                let record = records.get(&v.seq)?;
                let rate = record.denied_rate_before;
                let started = i64::try_from(v.created_ms / 1000).ok()?;
                let running = started.saturating_add(watch_for) > now;
                // Checked last: it reads the history after the version.
                let resumable =
                    running && rate.is_finite() && rate >= 0.0 && built_upon(history, v).is_none();
                resumable.then(|| Watch {
                    seq: v.seq,
                    concerns: record.concerns(),
                    limits: record.limits,
                    started,
                    denied_rate_before: rate,
                    at_start: Observation::default(),
                    awaiting_start: true,
                    counted_from: now,
                    resumed: true,
                })
            })
            .collect();
        let seqs = resumed
            .iter()
            .map(|w| (w.seq, w.started.saturating_add(watch_for)))
            .collect();
        // Older than anything watched since: rule 1 blames the newest last.
        resumed.append(&mut self.watches);
        resumed.sort_by_key(|w| w.seq);
        self.watches = resumed;
        seqs
    }

    /// Resumed watches still waiting for their first observation.
    pub fn awaiting_baseline(&self) -> Vec<Seq> {
        self.watches
            .iter()
            .filter(|w| w.awaiting_start)
            .map(|w| w.seq)
            .collect()
    }

    /// Denied attempts per second of the VMs of `concerns` over the
    /// observations kept: from the oldest (at most `watch_for` back) to the
    /// newest.
    fn denied_rate_before(&self, concerns: &Concerns) -> f64 {
        let vms = concerns.vms();
        match (self.past.front(), self.past.back()) {
            (Some(oldest), Some(newest)) if newest.at > oldest.at => {
                let denied = newest
                    .denied_of(&vms)
                    .saturating_sub(oldest.denied_of(&vms));
                denied as f64 / (newest.at - oldest.at) as f64
            }
            _ => 0.0,
        }
    }

    /// The change of recommendation `id` could not be applied. One augur
    /// decided stays decided (so it is not tried again every cycle); an
    /// approved one waits for review again, so that the operator can
    /// approve it once more after fixing what stopped it.
    pub fn apply_failed(&mut self, id: &str) {
        if let Some((candidate, Some(since))) = self.applying.remove(id) {
            if self.decided.remove(id).is_some_and(|d| !d.lasting) {
                self.transient -= 1;
            }
            self.reviews
                .insert(id.to_owned(), Review { candidate, since });
        }
    }

    /// Publishing `id` for review failed: it is published again when a
    /// cycle next recommends it.
    pub fn unpublished(&mut self, id: &str) {
        self.reviews.remove(id);
    }

    /// Version `seq` was rolled back (by augur or an operator): no longer
    /// watched.
    pub fn rolled_back(&mut self, seq: Seq) {
        self.watches.retain(|w| w.seq != seq);
    }

    /// Decides to apply; `review` is when its review began, if it had one.
    fn apply(&mut self, candidate: Candidate, decider: Decider, review: Option<i64>) -> Action {
        let id = candidate.recommendation.id.clone();
        self.decide(id.clone(), false);
        self.reviews.remove(&id);
        let recommendation = Box::new(candidate.recommendation.clone());
        self.applying.insert(id, (candidate, review));
        Action::Apply {
            recommendation,
            decider,
        }
    }

    /// Marks `id` decided now; `lasting` once it is a policy version.
    fn decide(&mut self, id: String, lasting: bool) {
        let seen = self.clock;
        match self.decided.entry(id) {
            Entry::Occupied(mut slot) => {
                let d = slot.get_mut();
                d.seen = d.seen.max(seen);
                if lasting && !d.lasting {
                    d.lasting = true;
                    self.transient -= 1;
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(Decided { seen, lasting });
                if !lasting {
                    self.transient += 1;
                }
            }
        }
        if self.transient > MAX_DECIDED {
            self.evict_oldest();
        }
    }

    /// Forgets the eighth of the transient decided ids recommended longest
    /// ago (an eighth at a time, so that the scan is rare).
    fn evict_oldest(&mut self) {
        let mut seen: Vec<i64> = self
            .decided
            .values()
            .filter(|d| !d.lasting)
            .map(|d| d.seen)
            .collect();
        if seen.is_empty() {
            return;
        }
        let cut = (seen.len() / 8).max(1);
        let boundary = *seen.select_nth_unstable(cut - 1).1;
        let below = seen.iter().filter(|s| **s < boundary).count();
        // Of those seen exactly at the boundary, as many as make up the cut.
        let mut at_boundary = cut.saturating_sub(below);
        self.decided.retain(|_, d| {
            if d.lasting || d.seen > boundary {
                true
            } else if d.seen < boundary {
                false
            } else if at_boundary > 0 {
                at_boundary -= 1;
                false
            } else {
                true
            }
        });
        self.transient = self.decided.values().filter(|d| !d.lasting).count();
    }

    fn remember(&mut self, observation: Observation, now: i64) {
        let keep_from = now.saturating_sub(self.settings.watch_for_s.max(0));
        // The newest observation before the window is kept as its start.
        while self.past.len() >= 2 && self.past.get(1).is_some_and(|o| o.at <= keep_from) {
            self.past.pop_front();
        }
        if self.settings.watch_for_s > 0 {
            self.past.push_back(observation);
        }
    }

    /// Applies the harm rules; ends the watches that ended or caused harm.
    fn check_watches(&mut self, now_seen: &Observation, now: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut ended = BTreeSet::new();
        // Resumed watches count from their first observation.
        for watch in &mut self.watches {
            if watch.awaiting_start {
                watch.at_start = now_seen.clone();
                watch.awaiting_start = false;
                watch.counted_from = now;
            }
        }
        // Rule 1: the newest change in force is the one a refusal is about.
        self.refusals_acted_on
            .retain(|bridge| now_seen.refusals.iter().any(|(b, _)| b == bridge));
        let newest = self.watches.last();
        let refusal = now_seen.refusals.iter().find(|(bridge, _)| {
            !self.refusals_acted_on.contains(bridge)
                && newest.is_some_and(|w| !w.at_start.refusals.iter().any(|(b, _)| b == bridge))
        });
        if let (Some((bridge, error)), Some(newest)) = (refusal, newest) {
            actions.push(Action::Rollback {
                seq: newest.seq,
                reason: format!(
                    "bridge {bridge} refused the version that holds change {}: {error}",
                    newest.seq
                ),
            });
            ended.insert(newest.seq);
            self.refusals_acted_on.insert(bridge.clone());
        }
        for watch in &self.watches {
            if ended.contains(&watch.seq) {
                continue;
            }
            let elapsed = now.saturating_sub(watch.started);
            if let Some(reason) = self.harm(watch, now_seen, now) {
                actions.push(Action::Rollback {
                    seq: watch.seq,
                    reason,
                });
                ended.insert(watch.seq);
            } else if elapsed >= self.settings.watch_for_s {
                ended.insert(watch.seq);
            }
        }
        self.watches.retain(|w| !ended.contains(&w.seq));
        actions
    }

    /// Whether the meters of a rate-limiting change dropped enough since it
    /// was applied.
    fn limit_drops(&self, watch: &Watch, now_seen: &Observation) -> Dropping {
        let harm = &self.settings.harm;
        let Some(after) = now_seen.meters.get(&watch.seq) else {
            return Dropping::Unmeasured;
        };
        // The change's meters are new with it (a change's rules take ranks
        // that are never reused, and meters follow them): no baseline
        // unless they were reported before it. Counters that restarted
        // read as no drops.
        let before = watch
            .at_start
            .meters
            .get(&watch.seq)
            .copied()
            .unwrap_or_default();
        let dropped = after.dropped.saturating_sub(before.dropped);
        let packets = after.packets.saturating_sub(before.packets);
        if dropped >= harm.meter_drops_min
            && dropped as f64 >= harm.meter_drop_share.get() * packets as f64
        {
            Dropping::Measured { dropped, packets }
        } else {
            Dropping::No
        }
    }

    /// The first harm rule that `watch` breaks at `now`, in words.
    fn harm(&self, watch: &Watch, now_seen: &Observation, now: i64) -> Option<String> {
        let harm = &self.settings.harm;
        // Time measured by the counters, and since the change.
        let elapsed = now.saturating_sub(watch.counted_from);
        if elapsed <= 0 {
            return None;
        }
        let at_start = &watch.at_start;
        let since = if watch.resumed {
            "since augur restarted during the watch"
        } else {
            "after the change"
        };
        // Rule 2.
        let vms = watch.concerns.vms();
        let denied_after = now_seen
            .denied_of(&vms)
            .saturating_sub(at_start.denied_of(&vms));
        let expected = watch.denied_rate_before * elapsed as f64;
        let rise = denied_after as f64 - expected;
        if rise >= harm.denied_rise_min as f64
            && denied_after as f64 > expected * f64::from(harm.denied_rise_factor)
        {
            let names: Vec<String> = vms.iter().map(ToString::to_string).collect();
            return Some(format!(
                "denied attempts of {} rose to {denied_after} in {elapsed} s {since} \
                 (about {expected:.0} expected from before the change)",
                names.join(", ")
            ));
        }
        // Rule 3, once the watch has run its course, on at least a whole
        // window of counts (a watch resumed just before its end has less:
        // a second's volume says nothing about a pair's windows).
        if now.saturating_sub(watch.started) < self.settings.watch_for_s
            || elapsed < i64::from(now_seen.window_s)
        {
            return None;
        }
        let windows = (elapsed as f64 / f64::from(now_seen.window_s.max(1))).max(1.0);
        for pair in &watch.concerns.pairs {
            let (Some(after), before) = (
                now_seen.pairs.get(pair),
                at_start.pairs.get(pair).copied().unwrap_or_default(),
            ) else {
                continue;
            };
            let p95 = after.p95_bytes.max(before.p95_bytes);
            if p95 < harm.starved_min_p95_bytes as f64 {
                continue;
            }
            let per_window = after.bytes.saturating_sub(before.bytes) as f64 / windows;
            let denied_rose = after.denied > before.denied;
            let share = harm.starved_share.get();
            let limit_drops = watch.limits.then(|| self.limit_drops(watch, now_seen));
            let cause = match limit_drops {
                Some(Dropping::Measured { dropped, packets }) => Some(format!(
                    "the change's rate limit dropped {dropped} of {packets} packets"
                )),
                Some(Dropping::Unmeasured) => {
                    Some("the change limits its rate (no meter statistics)".to_owned())
                }
                Some(Dropping::No) | None if denied_rose => {
                    Some("its denied attempts rose".to_owned())
                }
                Some(Dropping::No) | None => None,
            };
            if per_window < share * p95
                && let Some(cause) = cause
            {
                return Some(format!(
                    "{} -> {} carried {per_window:.0} bytes per window {since}, under \
                     {:.0}% of its p95 of {p95:.0}, and {cause}",
                    pair.0,
                    pair.1,
                    share * 100.0
                ));
            }
        }
        None
    }
}

/// Whether a candidate's change sets a rate limit.
fn limits(candidate: &Candidate) -> bool {
    candidate
        .recommendation
        .change
        .opening()
        .is_some_and(|o| o.rate.is_some())
}

/// What a change's rate limit did since the change.
enum Dropping {
    /// Its meters dropped enough to starve a pair.
    Measured {
        /// Packets dropped.
        dropped: u64,
        /// Packets the meters saw.
        packets: u64,
    },
    /// The switches report no statistics for its meters.
    Unmeasured,
    /// Its meters dropped too little.
    No,
}

fn approver(by: Option<String>) -> String {
    by.unwrap_or_else(|| "operator".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PortRange, Proto};
    use crate::recommend::{Opening, Peer, change_id};
    use crate::risk::{RiskAssessment, RiskScore};

    fn recommendation(port: u16, level: RiskLevel) -> Recommendation {
        let change = PolicyChange::AddPair {
            rule: Opening {
                name: None,
                from: vec![Peer::Name("web".into())],
                to: vec![Peer::Name("db".into())],
                proto: Proto::Tcp,
                ports: Some(PortRange::single(port)),
                rate: None,
                expires: None,
            },
        };
        Recommendation {
            id: change_id(&change),
            change,
            probability: 0.9,
            risk: RiskAssessment {
                score: RiskScore::new(0.1),
                level,
                factors: Vec::new(),
            },
            explanation: "test".into(),
            keys: Vec::new(),
        }
    }

    fn candidate(port: u16, level: RiskLevel) -> Candidate {
        Candidate {
            recommendation: recommendation(port, level),
            concerns: Concerns {
                pairs: [(Endpoint::vm("web"), Endpoint::vm("db"))].into(),
            },
        }
    }

    fn engine(watch_for_s: i64) -> Engine {
        Engine::new(EngineSettings {
            watch_for_s,
            harm: HarmSettings::default(),
        })
    }

    fn seen(at: i64, denied_web: u64, bytes: u64, pair_denied: u64) -> Observation {
        Observation {
            at,
            window_s: 10,
            denied_by_vm: [(Endpoint::vm("web"), denied_web)].into(),
            pairs: [(
                (Endpoint::vm("web"), Endpoint::vm("db")),
                PairVolume {
                    bytes,
                    denied: pair_denied,
                    p95_bytes: 100_000.0,
                },
            )]
            .into(),
            refusals: Vec::new(),
            meters: BTreeMap::new(),
        }
    }

    fn kinds(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .map(|a| match a {
                Action::Apply {
                    decider: Decider::Automatic,
                    ..
                } => "apply-auto",
                Action::Apply { .. } => "apply-operator",
                Action::Publish { .. } => "publish",
                Action::Drop { .. } => "drop",
                Action::Rollback { .. } => "rollback",
            })
            .collect()
    }

    #[test]
    fn low_is_applied_once_high_published_once_forbidden_never() {
        let mut e = engine(0);
        let cands = || {
            vec![
                candidate(1, RiskLevel::Low),
                candidate(2, RiskLevel::High),
                candidate(3, RiskLevel::Forbidden),
            ]
        };
        let first = e.cycle(cands(), Observation::default(), 100);
        assert_eq!(kinds(&first), ["apply-auto", "publish", "drop"]);
        // The same recommendations next cycle: nothing new.
        assert!(e.cycle(cands(), Observation::default(), 130).is_empty());
        assert_eq!(e.reviews().len(), 1);
        // A publication that did not reach the table is made again.
        e.unpublished(&candidate(2, RiskLevel::High).recommendation.id);
        assert_eq!(
            kinds(&e.cycle(cands(), Observation::default(), 160)),
            ["publish"]
        );
    }

    #[test]
    fn approval_applies_with_the_operator_and_rejection_drops_for_good() {
        let mut e = engine(0);
        let high = candidate(2, RiskLevel::High);
        let id = high.recommendation.id.clone();
        e.cycle(vec![high.clone()], Observation::default(), 0);
        let approved = e.decision(
            &id,
            Verdict::Approve {
                by: Some("alice".into()),
            },
        );
        match approved.as_slice() {
            [Action::Apply { decider, .. }] => {
                assert_eq!(*decider, Decider::Operator("alice".into()))
            }
            other => panic!("{other:?}"),
        }
        // Decided: neither re-published nor re-applied.
        assert!(e.cycle(vec![high], Observation::default(), 30).is_empty());
        assert!(e.decision(&id, Verdict::Approve { by: None }).is_empty());

        let other = candidate(4, RiskLevel::High);
        let id = other.recommendation.id.clone();
        e.cycle(vec![other.clone()], Observation::default(), 60);
        let rejected = e.decision(
            &id,
            Verdict::Reject {
                by: None,
                reason: Some("no".into()),
            },
        );
        assert_eq!(kinds(&rejected), ["drop"]);
        assert!(e.cycle(vec![other], Observation::default(), 90).is_empty());
    }

    #[test]
    fn an_approved_change_that_fails_waits_for_review_again() {
        let mut e = engine(0);
        let low = candidate(1, RiskLevel::Low);
        let high = candidate(2, RiskLevel::High);
        let high_id = high.recommendation.id.clone();
        e.cycle(vec![low.clone(), high.clone()], Observation::default(), 0);
        e.apply_failed(&low.recommendation.id);
        let approved = e.decision(&high_id, Verdict::Approve { by: None });
        assert_eq!(kinds(&approved), ["apply-operator"]);
        e.apply_failed(&high_id);
        // Not retried by itself, neither the automatic one nor the review.
        assert!(
            e.cycle(vec![low, high], Observation::default(), 30)
                .is_empty()
        );
        assert_eq!(e.reviews().len(), 1);
        let again = e.decision(&high_id, Verdict::Approve { by: None });
        assert_eq!(kinds(&again), ["apply-operator"]);
    }

    #[test]
    fn expiry_drops_and_a_later_cycle_does_not_republish() {
        let mut e = engine(0);
        let high = candidate(2, RiskLevel::High);
        let id = high.recommendation.id.clone();
        e.cycle(vec![high.clone()], Observation::default(), 0);
        assert_eq!(kinds(&e.expired(&id)), ["drop"]);
        assert!(e.expired(&id).is_empty());
        assert!(e.cycle(vec![high], Observation::default(), 30).is_empty());
    }

    #[test]
    fn an_approval_after_restart_waits_for_the_recommendation() {
        let mut e = engine(0);
        let high = candidate(2, RiskLevel::High);
        let id = high.recommendation.id.clone();
        assert!(e.decision(&id, Verdict::Approve { by: None }).is_empty());
        let actions = e.cycle(vec![high], Observation::default(), 0);
        assert_eq!(kinds(&actions), ["apply-operator"]);
        // One no cycle recommends any more is stale.
        assert!(e.decision("0123", Verdict::Approve { by: None }).is_empty());
        let actions = e.cycle(Vec::new(), Observation::default(), 30);
        assert_eq!(
            actions,
            [Action::Drop {
                id: "0123".into(),
                why: DropReason::Stale
            }]
        );
    }

    #[test]
    fn the_history_of_a_previous_run_is_never_made_again() {
        let mut e = engine(0);
        let low = candidate(1, RiskLevel::Low);
        let high = candidate(2, RiskLevel::High);
        // Both became versions before the restart (the low one since
        // rolled back): neither is applied, published or approved again.
        e.in_history([
            low.recommendation.id.clone(),
            high.recommendation.id.clone(),
        ]);
        assert!(
            e.decision(&high.recommendation.id, Verdict::Approve { by: None })
                .is_empty()
        );
        assert!(
            e.cycle(vec![low, high], Observation::default(), 0)
                .is_empty()
        );
        assert_eq!(e.decided_count(), (2, 0));
        assert!(e.reviews().is_empty());
    }

    #[test]
    fn decided_ids_are_forgotten_only_once_no_cycle_recommends_them() {
        const HORIZON: i64 = 1000;
        let mut e = engine(0);
        let low = candidate(1, RiskLevel::Low);
        let high = candidate(2, RiskLevel::High);
        let forbidden = candidate(3, RiskLevel::Forbidden);
        let all = || vec![low.clone(), high.clone(), forbidden.clone()];
        let first = e.cycle(all(), Observation::default(), 0);
        assert_eq!(kinds(&first), ["apply-auto", "publish", "drop"]);
        e.applied(&low.recommendation.id, 1, 0);
        let rejected = e.decision(
            &high.recommendation.id,
            Verdict::Reject {
                by: None,
                reason: None,
            },
        );
        assert_eq!(kinds(&rejected), ["drop"]);
        assert_eq!(e.decided_count(), (1, 2));
        // Recommended every cycle, far longer than the horizon: the same
        // evidence, never acted on again.
        let last = 10 * HORIZON;
        for n in 1..=last / 20 {
            let now = n * 20;
            assert!(e.cycle(all(), Observation::default(), now).is_empty());
            assert_eq!(e.forget_decided(now - HORIZON), 0);
        }
        // No longer recommended: the rejected and forbidden ids go after
        // the horizon, the version's stays.
        assert!(
            e.cycle(Vec::new(), Observation::default(), last + HORIZON)
                .is_empty()
        );
        assert_eq!(e.forget_decided(last), 0);
        assert_eq!(e.forget_decided(last + 1), 2);
        assert_eq!(e.decided_count(), (1, 0));
        // Back with new evidence: decided anew, the version still not.
        let again = e.cycle(all(), Observation::default(), last + 2 * HORIZON);
        assert_eq!(kinds(&again), ["publish", "drop"]);
    }

    #[test]
    fn a_decision_before_the_first_cycle_is_dated_by_the_clock() {
        // A restarted daemon is handed a rejection before any cycle ran.
        let mut e = engine(0);
        e.advance(50_000);
        let id = candidate(2, RiskLevel::High).recommendation.id;
        let rejected = e.decision(
            &id,
            Verdict::Reject {
                by: None,
                reason: None,
            },
        );
        assert_eq!(kinds(&rejected), ["drop"]);
        assert_eq!(e.forget_decided(50_000 - 1000), 0);
        assert!(e.is_decided(&id));
    }

    #[test]
    fn decided_ids_are_capped_forgetting_the_longest_unrecommended_first() {
        let mut e = engine(0);
        let version = candidate(0, RiskLevel::Low);
        e.cycle(vec![version.clone()], Observation::default(), 0);
        e.applied(&version.recommendation.id, 1, 0);
        let count = u16::try_from(MAX_DECIDED + 10).unwrap();
        for port in 1..=count {
            let actions =
                e.recommended(vec![candidate(port, RiskLevel::Forbidden)], i64::from(port));
            assert_eq!(kinds(&actions), ["drop"]);
        }
        let (lasting, transient) = e.decided_count();
        assert_eq!(lasting, 1);
        assert!(
            transient <= MAX_DECIDED && transient > MAX_DECIDED * 7 / 8,
            "{transient}"
        );
        // The oldest went, the newest and the version stayed.
        assert!(!e.is_decided(&candidate(1, RiskLevel::Forbidden).recommendation.id));
        assert!(e.is_decided(&candidate(count, RiskLevel::Forbidden).recommendation.id));
        assert!(e.is_decided(&version.recommendation.id));
    }

    #[test]
    fn a_time_bound_opening_waits_for_its_time() {
        let mut e = engine(0);
        let mut c = candidate(2, RiskLevel::Low);
        c.recommendation.change = PolicyChange::TimeBound {
            rule: c.recommendation.change.opening().unwrap().clone(),
            open_at: 1000,
            run_at: 1300,
        };
        assert!(
            e.cycle(vec![c.clone()], Observation::default(), 900)
                .is_empty()
        );
        let actions = e.cycle(vec![c], Observation::default(), 1000);
        assert_eq!(kinds(&actions), ["apply-auto"]);
    }

    /// Applies a low-risk change at t=100 after quiet observations from 0,
    /// with `denied_before` attempts of web in the 100 s before.
    fn watched(denied_before: u64) -> Engine {
        let mut e = engine(60);
        e.cycle(Vec::new(), seen(0, 0, 0, 0), 0);
        let actions = e.cycle(
            vec![candidate(1, RiskLevel::Low)],
            seen(100, denied_before, 1_000_000, 0),
            100,
        );
        assert_eq!(kinds(&actions), ["apply-auto"]);
        let id = candidate(1, RiskLevel::Low).recommendation.id;
        e.applied(&id, 7, 100);
        assert_eq!(e.watching(), [7]);
        e
    }

    #[test]
    fn denied_attempts_rising_roll_the_change_back_within_the_watch() {
        let mut e = watched(0);
        // 10 denied in 20 s: under the minimum rise.
        assert!(
            e.cycle(Vec::new(), seen(120, 10, 1_500_000, 0), 120)
                .is_empty()
        );
        let actions = e.cycle(Vec::new(), seen(140, 40, 2_000_000, 0), 140);
        match actions.as_slice() {
            [Action::Rollback { seq: 7, reason }] => {
                assert!(
                    reason.contains("denied attempts of db, web rose to 40"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(e.watching().is_empty());
    }

    #[test]
    fn denied_attempts_at_their_usual_rate_are_no_harm() {
        // 100 in the 100 s before: 60 in the 60 s after is the usual rate.
        let mut e = watched(100);
        assert!(
            e.cycle(Vec::new(), seen(130, 130, 1_500_000, 0), 130)
                .is_empty()
        );
        assert!(
            e.cycle(Vec::new(), seen(160, 160, 2_000_000, 0), 160)
                .is_empty()
        );
        // The watch ended, the change is kept.
        assert!(e.watching().is_empty());
    }

    #[test]
    fn a_refusing_bridge_rolls_back_the_newest_watched_change() {
        let mut e = watched(0);
        let mut o = seen(110, 0, 1_000_000, 0);
        o.refusals = vec![("br1".into(), "OFPBFC_MSG_FAILED".into())];
        let actions = e.cycle(Vec::new(), o, 110);
        match actions.as_slice() {
            [Action::Rollback { seq: 7, reason }] => {
                assert!(reason.contains("bridge br1 refused"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lasting_refusal_undoes_one_change_and_an_old_one_none() {
        let refusing = |at| {
            let mut o = seen(at, 0, 1_000_000, 0);
            o.refusals = vec![("br1".into(), "OFPMMFC_OUT_OF_METERS".into())];
            o
        };
        let mut e = engine(60);
        e.cycle(Vec::new(), seen(0, 0, 0, 0), 0);
        for (port, at, seq) in [(1, 10, 1), (2, 20, 2)] {
            let c = candidate(port, RiskLevel::Low);
            let id = c.recommendation.id.clone();
            e.cycle(vec![c], seen(at, 0, 0, 0), at);
            e.applied(&id, seq, at);
        }
        let first = e.cycle(Vec::new(), refusing(30), 30);
        assert!(matches!(
            first.as_slice(),
            [Action::Rollback { seq: 2, .. }]
        ));
        // Still refusing after the rollback: change 1 is not blamed too.
        assert!(e.cycle(Vec::new(), refusing(40), 40).is_empty());
        assert_eq!(e.watching(), [1]);
        // A change applied while the bridge already refuses is not blamed.
        let c = candidate(3, RiskLevel::Low);
        let id = c.recommendation.id.clone();
        e.cycle(vec![c], refusing(45), 45);
        e.applied(&id, 3, 45);
        assert!(e.cycle(Vec::new(), seen(50, 0, 0, 0), 50).is_empty());
        assert!(e.cycle(Vec::new(), refusing(55), 55).is_empty());
        // Another bridge refusing is.
        let mut other = refusing(60);
        other
            .refusals
            .push(("br2".into(), "OFPBFC_MSG_FAILED".into()));
        assert!(matches!(
            e.cycle(Vec::new(), other, 60).as_slice(),
            [Action::Rollback { seq: 3, .. }]
        ));
    }

    #[test]
    fn a_starved_pair_rolls_back_only_with_a_limit_or_denials() {
        // Quiet with no denials and no limit: not harm.
        let mut e = watched(0);
        assert!(
            e.cycle(Vec::new(), seen(160, 0, 1_000_100, 0), 160)
                .is_empty()
        );
        // Quiet while the pair's denials rose (under rule 2's minimum).
        let mut e = watched(0);
        let actions = e.cycle(Vec::new(), seen(160, 5, 1_000_100, 5), 160);
        match actions.as_slice() {
            [Action::Rollback { seq: 7, reason }] => {
                assert!(reason.contains("web -> db carried 17 bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // A limit set by the change, with its volume kept: not harm.
        let mut e = engine(60);
        let mut c = candidate(1, RiskLevel::Low);
        let mut rule = c.recommendation.change.opening().unwrap().clone();
        rule.rate = Some(crate::policy::Rate {
            rate: 1000,
            unit: crate::policy::RateUnit::Kbps,
            burst: 0,
        });
        c.recommendation.change = PolicyChange::AddPair { rule };
        c.recommendation.id = change_id(&c.recommendation.change);
        let id = c.recommendation.id.clone();
        e.cycle(vec![c], seen(0, 0, 0, 0), 0);
        e.applied(&id, 3, 0);
        assert!(e.cycle(Vec::new(), seen(60, 0, 600_000, 0), 60).is_empty());
    }

    #[test]
    fn a_rate_limit_starves_a_pair_only_when_its_meter_drops() {
        // A change limiting web -> db, applied at 0 as version 3; at the
        // end of the watch the pair carries 1% of its p95.
        let limited = || {
            let mut e = engine(60);
            let mut c = candidate(1, RiskLevel::Low);
            let mut rule = c.recommendation.change.opening().unwrap().clone();
            rule.rate = Some(crate::policy::Rate {
                rate: 100,
                unit: crate::policy::RateUnit::Kbps,
                burst: 0,
            });
            c.recommendation.change = PolicyChange::AddPair { rule };
            c.recommendation.id = change_id(&c.recommendation.change);
            let id = c.recommendation.id.clone();
            e.cycle(vec![c], seen(0, 0, 0, 0), 0);
            e.applied(&id, 3, 0);
            assert_eq!(e.watched_meters(), [3]);
            e
        };
        let starved = |meters: Option<MeterUse>| {
            let mut o = seen(60, 0, 6_000, 0);
            o.meters.extend(meters.map(|m| (3, m)));
            o
        };
        // The meter dropped half of what it saw: the limit starves the pair.
        let mut e = limited();
        let actions = e.cycle(
            Vec::new(),
            starved(Some(MeterUse {
                packets: 1_000,
                dropped: 500,
            })),
            60,
        );
        match actions.as_slice() {
            [Action::Rollback { seq: 3, reason }] => assert!(
                reason.contains("rate limit dropped 500 of 1000 packets"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        // It dropped next to nothing: the pair went quiet by itself.
        let mut e = limited();
        let quiet = MeterUse {
            packets: 1_000,
            dropped: 20,
        };
        assert!(e.cycle(Vec::new(), starved(Some(quiet)), 60).is_empty());
        // Many drops, but a small share of a large flow: not starving.
        let mut e = limited();
        let shaved = MeterUse {
            packets: 100_000,
            dropped: 500,
        };
        assert!(e.cycle(Vec::new(), starved(Some(shaved)), 60).is_empty());
        // No meter statistics: the limit alone is the evidence.
        let mut e = limited();
        let actions = e.cycle(Vec::new(), starved(None), 60);
        match actions.as_slice() {
            [Action::Rollback { seq: 3, reason }] => {
                assert!(reason.contains("no meter statistics"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A change in the history, made at `at` (seconds), adding a rule at
    /// overlay rank `rank`.
    fn version(seq: Seq, at: i64, rank: u32) -> PolicyVersion {
        use crate::orchestrate::versions::{Place, RuleData, RuleRecord, Status};
        let rule = RuleData {
            name: None,
            from: vec!["web".into()],
            to: vec!["db".into()],
            proto: "tcp".into(),
            ports: Some((6000, 6000)),
            rate: None,
            expires_at: None,
        };
        PolicyVersion {
            seq,
            number: u16::try_from(seq).unwrap(),
            parent: seq - 1,
            created_ms: u64::try_from(at).unwrap() * 1000,
            decider: Decider::Automatic,
            recommendation: Some(format!("rec{seq}")),
            change: None,
            explanation: String::new(),
            risk_factors: Vec::new(),
            added: vec![RuleRecord {
                place: Place::Overlay(rank),
                version: u16::try_from(seq).unwrap(),
                toml: rule.to_toml(),
                rule,
            }],
            removed: Vec::new(),
            groups: Vec::new(),
            endpoints: Vec::new(),
            status: Status::Applied,
        }
    }

    #[test]
    fn the_watch_record_is_what_the_watch_uses() {
        // 100 denied in the 100 s before the change: 1 per second.
        let mut e = engine(60);
        e.cycle(Vec::new(), seen(0, 0, 0, 0), 0);
        let c = candidate(1, RiskLevel::Low);
        let id = c.recommendation.id.clone();
        e.cycle(vec![c], seen(100, 100, 1_000_000, 0), 100);
        let record = e.watch_record(&id).unwrap();
        assert_eq!(
            record,
            WatchRecord {
                pairs: vec![(
                    EndpointRecord::Vm("web".into()),
                    EndpointRecord::Vm("db".into())
                )],
                limits: false,
                denied_rate_before: 1.0,
            }
        );
        // Stored as JSON and read back, by an augur that knows more fields
        // or fewer.
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            text,
            r#"{"pairs":[[{"vm":"web"},{"vm":"db"}]],"limits":false,"denied_rate_before":1.0}"#
        );
        assert_eq!(serde_json::from_str::<WatchRecord>(&text).unwrap(), record);
        let older: WatchRecord = serde_json::from_str(r#"{"pairs":[]}"#).unwrap();
        assert_eq!(older, WatchRecord::default());
        e.applied(&id, 1, 100);
        assert!(e.watch_record(&id).is_none());
    }

    #[test]
    fn a_restart_watches_on_the_changes_whose_watch_had_not_ended() {
        use crate::orchestrate::versions::Status;
        let record = |rate: f64| WatchRecord {
            pairs: vec![(
                EndpointRecord::Vm("web".into()),
                EndpointRecord::Vm("db".into()),
            )],
            limits: false,
            denied_rate_before: rate,
        };
        // Watched for 60 s; the restart is at 1030.
        let mut history = vec![
            // Its watch ended before the restart.
            version(1, 900, 0),
            // Rolled back.
            version(2, 1000, 1),
            // In force, made 20 s before the restart: watched on.
            version(3, 1010, 2),
            // In force, but the next one removed the rule it added.
            version(4, 1012, 3),
            version(5, 1014, 4),
            // Made by an older augur: no record.
            version(6, 1016, 5),
        ];
        history[1].status = Status::RolledBack {
            at_ms: 1_005_000,
            by: 7,
            why: "harm".into(),
        };
        let mut removal = history[3].added[0].clone();
        removal.version = 4;
        history[4].removed.push(removal);
        let records: BTreeMap<Seq, WatchRecord> = (1..=5).map(|seq| (seq, record(0.1))).collect();
        let mut e = engine(60);
        e.in_history(history.iter().filter_map(|v| v.recommendation.clone()));
        let resumed = e.resume(&history, &records, 1030);
        assert_eq!(resumed, [(3, 1070), (5, 1074)]);
        assert_eq!(e.watching(), [3, 5]);
        assert_eq!(e.awaiting_baseline(), [3, 5]);
        assert!(
            e.watched_pairs()
                .contains(&(Endpoint::vm("web"), Endpoint::vm("db")))
        );
        // The restarted aggregator's totals hold the whole stored history:
        // the first observation is the baseline, and nothing is judged on
        // it.
        assert!(
            e.cycle(Vec::new(), seen(1031, 500, 9_000_000, 0), 1031)
                .is_empty()
        );
        assert!(e.awaiting_baseline().is_empty());
        // 3 denied in 10 s: the usual 0.1 per second.
        assert!(
            e.cycle(Vec::new(), seen(1041, 503, 9_100_000, 0), 1041)
                .is_empty()
        );
        // 25 more in the next 10 s: a rise, for each change concerning web.
        let actions = e.cycle(Vec::new(), seen(1051, 528, 9_200_000, 0), 1051);
        match actions.as_slice() {
            [
                Action::Rollback { seq: 3, reason },
                Action::Rollback { seq: 5, .. },
            ] => assert!(
                reason.contains(
                    "denied attempts of db, web rose to 28 in 20 s since augur restarted during \
                     the watch (about 2 expected from before the change)"
                ),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(e.watching().is_empty());
    }

    #[test]
    fn a_resumed_watch_ends_when_it_would_have() {
        let history = [version(1, 1000, 0)];
        let records = BTreeMap::from([(1, WatchRecord::default())]);
        // The restart came after the watch ended: nothing to resume.
        let mut e = engine(60);
        assert!(e.resume(&history, &records, 1060).is_empty());
        // Or before: resumed until 1060, then kept.
        let mut e = engine(60);
        assert_eq!(e.resume(&history, &records, 1059), [(1, 1060)]);
        assert!(e.cycle(Vec::new(), seen(1059, 0, 0, 0), 1059).is_empty());
        assert_eq!(e.watching(), [1]);
        assert!(e.cycle(Vec::new(), seen(1060, 0, 0, 0), 1060).is_empty());
        assert!(e.watching().is_empty());
        // Resumed a second before its end, with a rate limit its switches
        // report no meters for: a second of volume is no evidence of a
        // starved pair.
        let mut e = engine(60);
        let limited = BTreeMap::from([(
            1,
            WatchRecord {
                pairs: vec![(
                    EndpointRecord::Vm("web".into()),
                    EndpointRecord::Vm("db".into()),
                )],
                limits: true,
                denied_rate_before: 0.0,
            },
        )]);
        assert_eq!(e.resume(&history, &limited, 1059), [(1, 1060)]);
        assert!(
            e.cycle(Vec::new(), seen(1059, 0, 5_000_000, 0), 1059)
                .is_empty()
        );
        assert!(
            e.cycle(Vec::new(), seen(1060, 0, 5_000_100, 0), 1060)
                .is_empty()
        );
        assert!(e.watching().is_empty());
        // Not watched at all: nothing resumed.
        let mut e = engine(0);
        assert!(e.resume(&history, &records, 1001).is_empty());
        // A record with no usable rate is not resumed.
        let mut e = engine(60);
        let broken = BTreeMap::from([(
            1,
            WatchRecord {
                denied_rate_before: f64::NAN,
                ..WatchRecord::default()
            },
        )]);
        assert!(e.resume(&history, &broken, 1001).is_empty());
    }

    #[test]
    fn measures_denials_per_vm_and_the_volume_of_the_asked_pairs() {
        use augur_flows::{FlowRecord, Timestamp, Verdict, WindowConfig};
        let record = |ts: i64, src: &str, dst: &str, bytes: u64, verdict| {
            let (ts, src, dst) = (
                Timestamp::from_secs(ts),
                Endpoint::vm(src),
                Endpoint::vm(dst),
            );
            FlowRecord {
                verdict,
                ..FlowRecord::tcp_connection(ts, src, dst, 6000, bytes, 10)
            }
        };
        let mut aggregator = Aggregator::new(WindowConfig::with_length(10).unwrap());
        aggregator.ingest(&[
            record(1_000, "web", "db", 5_000, Verdict::Allowed),
            record(1_001, "web", "db", 0, Verdict::Denied),
            record(1_002, "web", "app", 0, Verdict::Denied),
            record(1_003, "app", "db", 7_000, Verdict::Allowed),
        ]);
        aggregator.close_window(1_010);
        let pairs = [
            (Endpoint::vm("web"), Endpoint::vm("db")),
            (Endpoint::vm("nobody"), Endpoint::vm("db")),
        ]
        .into();
        let o = Observation::measure(&aggregator, &pairs, &HashSet::new(), 1_010);
        assert_eq!(o.window_s, 10);
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("web")), Some(&2));
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("db")), Some(&1));
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("app")), Some(&1));
        // Only the pairs asked for that exist.
        assert_eq!(o.pairs.len(), 1);
        let volume = o.pairs[&(Endpoint::vm("web"), Endpoint::vm("db"))];
        assert_eq!((volume.bytes, volume.denied), (5_000, 1));
        assert!(volume.p95_bytes > 0.0);

        // A scanning source's denials count for nobody: not for itself,
        // not for the VMs it probed.
        let web = aggregator.endpoints().get(&Endpoint::vm("web")).unwrap();
        let o = Observation::measure(&aggregator, &pairs, &HashSet::from([web]), 1_010);
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("web")), None);
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("db")), None);
        assert_eq!(o.denied_by_vm.get(&Endpoint::vm("app")), None);
        // Its volume still counts.
        let volume = o.pairs[&(Endpoint::vm("web"), Endpoint::vm("db"))];
        assert_eq!(volume.bytes, 5_000);
    }
}
