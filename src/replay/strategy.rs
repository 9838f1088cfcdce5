//! The strategies replay compares: augur and three baselines.
//!
//! Every strategy sees the same trace and starts from the same state: during
//! the learning period nothing is blocked; at its end each sets up its
//! policy, and from then on a connection passes only if the strategy allows
//! it at that instant.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use augur_flows::{Aggregator, Endpoint, FlowKey};

use super::score::{Decider, OpeningId, Openings};
use crate::orchestrate::engine::{
    Action, Candidate, Concerns, Engine, EngineSettings, HarmSettings, Observation, Verdict,
};
use crate::orchestrate::versions::Decider as EngineDecider;
use crate::policy::Policy;
use crate::policy::coverage::Coverage;
use crate::predict::{Predictor, QualityReport, ScanDetector};
use crate::recommend::{
    PolicyChange, RecommendInput, RecommendSettings, Recommendation, recommend,
};
use crate::risk::RiskSettings;

/// What augur has observed: its own view of the traffic, with the verdicts
/// its policy gave. Replay feeds it; strategies read it.
#[derive(Debug)]
pub struct Observer {
    /// Windows, keys, signatures.
    pub aggregator: Aggregator,
    /// Scan and fan-out detection.
    pub scans: ScanDetector,
}

/// A strategy under evaluation.
pub trait Strategy {
    /// Its name in the report.
    fn name(&self) -> &'static str;
    /// The learning period ended at `now`; `learned` holds every key
    /// attempted during it.
    fn end_learning(
        &mut self,
        observer: &Observer,
        learned: &HashSet<FlowKey>,
        now: i64,
        openings: &mut Openings,
    );
    /// A decision cycle at `now` (the observer's windows are closed up to
    /// `now`). `enforcing` is false during learning.
    fn cycle(&mut self, observer: &Observer, now: i64, enforcing: bool, openings: &mut Openings) {
        let _ = (observer, now, enforcing, openings);
    }
    /// The trace recorded nothing from `from` to `to` (a gap between
    /// captures).
    fn unobserved(&mut self, from: i64, to: i64) {
        let _ = (from, to);
    }
    /// A VM appeared in the inventory at `now` (before its first packet).
    fn vm_appeared(&mut self, observer: &Observer, now: i64, openings: &mut Openings) {
        let _ = (observer, now, openings);
    }
    /// The opening that lets a connection on `key` through at `ts`, if any.
    fn decide(&mut self, observer: &Observer, key: &FlowKey, ts: i64) -> Option<OpeningId>;
    /// A connection on `key` was denied at `ts`.
    fn denied(&mut self, key: &FlowKey, ts: i64, openings: &mut Openings) {
        let _ = (key, ts, openings);
    }
    /// Keys of high-risk recommendations put up for review, with the number
    /// of distinct recommendations.
    fn reviewed(&self) -> Option<(&HashSet<FlowKey>, usize)> {
        None
    }
    /// Predictor quality, for strategies that predict.
    fn quality(&self) -> Option<QualityReport> {
        None
    }
    /// Changes applied, by kind and who decided.
    fn changes(&self) -> Vec<(String, Decider, u64)> {
        Vec::new()
    }
}

/// The operator's static policy, never changed.
#[derive(Debug)]
pub struct StaticPolicy {
    policy: Policy,
    coverage: Option<Coverage>,
    openings: Vec<OpeningId>,
}

impl StaticPolicy {
    /// The policy to keep.
    pub fn new(policy: Policy) -> StaticPolicy {
        StaticPolicy {
            policy,
            coverage: None,
            openings: Vec::new(),
        }
    }
}

impl Strategy for StaticPolicy {
    fn name(&self) -> &'static str {
        "static policy"
    }

    fn end_learning(
        &mut self,
        observer: &Observer,
        _learned: &HashSet<FlowKey>,
        now: i64,
        openings: &mut Openings,
    ) {
        self.coverage = Some(Coverage::new(&self.policy, observer.aggregator.endpoints()));
        self.openings = self
            .policy
            .rules
            .iter()
            .map(|rule| openings.open(now, rule.expires_at.map(unix), Decider::Human))
            .collect();
    }

    fn decide(&mut self, observer: &Observer, key: &FlowKey, ts: i64) -> Option<OpeningId> {
        let coverage = self.coverage.as_mut()?;
        coverage.update(&self.policy, observer.aggregator.endpoints());
        let rule = coverage.covering_rule(key, system_time(ts))?;
        self.openings.get(rule as usize).copied()
    }
}

/// Allow what was seen during the learning window, as commercial
/// recommenders do.
#[derive(Debug, Default)]
pub struct HistoryAllowList {
    allowed: HashMap<FlowKey, OpeningId>,
}

impl Strategy for HistoryAllowList {
    fn name(&self) -> &'static str {
        "history allow-list"
    }

    fn end_learning(
        &mut self,
        _observer: &Observer,
        learned: &HashSet<FlowKey>,
        now: i64,
        openings: &mut Openings,
    ) {
        for key in learned {
            self.allowed
                .insert(*key, openings.open(now, None, Decider::Automatic));
        }
    }

    fn decide(&mut self, _observer: &Observer, key: &FlowKey, _ts: i64) -> Option<OpeningId> {
        self.allowed.get(key).copied()
    }
}

/// The history allow-list, plus every attempted flow opened after its first
/// denial.
#[derive(Debug, Default)]
pub struct AllowOnFirstAttempt {
    history: HistoryAllowList,
}

impl Strategy for AllowOnFirstAttempt {
    fn name(&self) -> &'static str {
        "allow on first attempt"
    }

    fn end_learning(
        &mut self,
        observer: &Observer,
        learned: &HashSet<FlowKey>,
        now: i64,
        openings: &mut Openings,
    ) {
        self.history.end_learning(observer, learned, now, openings);
    }

    fn decide(&mut self, observer: &Observer, key: &FlowKey, ts: i64) -> Option<OpeningId> {
        self.history.decide(observer, key, ts)
    }

    fn denied(&mut self, key: &FlowKey, ts: i64, openings: &mut Openings) {
        self.history
            .allowed
            .entry(*key)
            .or_insert_with(|| openings.open(ts, None, Decider::Automatic));
    }
}

/// How the simulated operator treats reviews. A real operator judges the
/// evidence; replay stands in with the trace's truth, which only decides
/// reviews and never reaches the predictor: approve after a delay what
/// involves no attack flow, reject the rest.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Seconds a review waits before the decision.
    pub delay_s: i64,
    /// Keys of attack flows: (source, destination, protocol, port).
    pub attack_keys: HashSet<(Endpoint, Endpoint, u8, u16)>,
}

/// augur: predictor, recommendations, risk; low risk applied at once, high
/// risk after review.
#[derive(Debug)]
pub struct Augur {
    predictor: Predictor,
    recommend: RecommendSettings,
    risk: RiskSettings,
    policy: Policy,
    coverage: Option<Coverage>,
    /// Per rule of `policy`: its opening.
    rule_openings: Vec<OpeningId>,
    /// The daemon's decision loop; replay measures no harm, so it watches
    /// nothing.
    engine: Engine,
    reviewed_keys: HashSet<FlowKey>,
    reviewed: usize,
    operator: Operator,
    applied: HashMap<(&'static str, Decider), u64>,
}

impl Augur {
    /// augur with these settings, starting from `policy`.
    pub fn new(
        predictor: Predictor,
        recommend: RecommendSettings,
        risk: RiskSettings,
        policy: Policy,
        operator: Operator,
    ) -> Augur {
        Augur {
            predictor,
            recommend,
            risk,
            policy,
            coverage: None,
            rule_openings: Vec::new(),
            engine: Engine::new(EngineSettings {
                watch_for_s: 0,
                harm: HarmSettings::default(),
            }),
            reviewed_keys: HashSet::new(),
            reviewed: 0,
            operator,
            applied: HashMap::new(),
        }
    }

    fn coverage(&mut self, observer: &Observer) -> &mut Coverage {
        let policy = &self.policy;
        let coverage = self
            .coverage
            .get_or_insert_with(|| Coverage::new(policy, observer.aggregator.endpoints()));
        coverage.update(policy, observer.aggregator.endpoints());
        coverage
    }

    /// Recommends at `now` and acts: low risk applied, high risk queued,
    /// forbidden dropped; reviews whose delay has passed are decided.
    fn act(&mut self, observer: &Observer, now: i64, learn: bool, openings: &mut Openings) {
        let set = if learn {
            self.predictor
                .cycle(&observer.aggregator, &observer.scans, now)
        } else {
            self.predictor
                .predict(&observer.aggregator, &observer.scans, now)
        };
        self.decide_reviews(observer, now, openings);
        if !set.trained {
            return;
        }
        let scanning = observer.scans.scanning(now);
        self.coverage(observer);
        let Some(coverage) = self.coverage.as_ref() else {
            return;
        };
        let input = RecommendInput {
            predictions: &set.predictions,
            aggregator: &observer.aggregator,
            policy: &self.policy,
            coverage,
            scanning: &scanning,
        };
        let candidates = recommend(&input, &self.recommend, &self.risk, now)
            .into_iter()
            .map(|recommendation| Candidate {
                recommendation,
                concerns: Concerns::default(),
            })
            .collect();
        let actions = self.engine.cycle(candidates, Observation::default(), now);
        self.carry_out(actions, now, openings);
    }

    /// Does what the engine decided.
    fn carry_out(&mut self, actions: Vec<Action>, now: i64, openings: &mut Openings) {
        for action in actions {
            match action {
                Action::Apply {
                    recommendation,
                    decider,
                } => {
                    let decider = match decider {
                        EngineDecider::Automatic => Decider::Automatic,
                        _ => Decider::Human,
                    };
                    self.apply(&recommendation.change, now, decider, openings);
                }
                Action::Publish { recommendation } => {
                    self.reviewed += 1;
                    self.reviewed_keys
                        .extend(recommendation.keys.iter().copied());
                }
                Action::Drop { .. } | Action::Rollback { .. } => {}
            }
        }
    }

    fn decide_reviews(&mut self, observer: &Observer, now: i64, openings: &mut Openings) {
        let due: Vec<(String, bool)> = self
            .engine
            .reviews()
            .iter()
            .filter(|(_, r)| now.saturating_sub(r.since) >= self.operator.delay_s)
            .map(|(id, review)| {
                (
                    id.clone(),
                    self.is_attack(observer, &review.candidate.recommendation),
                )
            })
            .collect();
        for (id, attack) in due {
            // A stale review (its run has passed, its keys are covered by
            // now) is applied all the same: the operator said yes.
            let verdict = if attack {
                Verdict::Reject {
                    by: None,
                    reason: None,
                }
            } else {
                Verdict::Approve { by: None }
            };
            let actions = self.engine.decision(&id, verdict);
            self.carry_out(actions, now, openings);
        }
    }

    fn is_attack(&self, observer: &Observer, recommendation: &Recommendation) -> bool {
        let endpoints = observer.aggregator.endpoints();
        recommendation.keys.iter().any(|key| {
            match (endpoints.endpoint(key.src), endpoints.endpoint(key.dst)) {
                (Some(src), Some(dst)) => self.operator.attack_keys.contains(&(
                    src.clone(),
                    dst.clone(),
                    key.protocol.0,
                    key.service_port,
                )),
                _ => false,
            }
        })
    }

    fn apply(
        &mut self,
        change: &PolicyChange,
        now: i64,
        decider: Decider,
        openings: &mut Openings,
    ) {
        let at = system_time(now);
        let Ok(effect) = change.apply_to(&mut self.policy, at) else {
            return;
        };
        for removed in effect.removed.iter().rev() {
            if let Some(&id) = self.rule_openings.get(*removed as usize) {
                openings.close(id, now);
            }
            if (*removed as usize) < self.rule_openings.len() {
                self.rule_openings.remove(*removed as usize);
            }
        }
        for &added in &effect.added {
            let expires = self
                .policy
                .rules
                .get(added as usize)
                .and_then(|r| r.expires_at)
                .map(unix);
            let id = openings.open(now, expires, decider);
            let position = (added as usize).min(self.rule_openings.len());
            self.rule_openings.insert(position, id);
        }
        *self.applied.entry((change.kind(), decider)).or_default() += 1;
        // Rebuilt when next needed: a cycle that applies many changes
        // resolves the endpoints against the rules once, not once per change.
        self.coverage = None;
    }
}

impl Strategy for Augur {
    fn name(&self) -> &'static str {
        "augur"
    }

    fn end_learning(
        &mut self,
        observer: &Observer,
        _learned: &HashSet<FlowKey>,
        now: i64,
        openings: &mut Openings,
    ) {
        self.rule_openings = self
            .policy
            .rules
            .iter()
            .map(|rule| openings.open(now, rule.expires_at.map(unix), Decider::Human))
            .collect();
        self.predictor.reset_quality();
        self.act(observer, now, false, openings);
    }

    fn cycle(&mut self, observer: &Observer, now: i64, enforcing: bool, openings: &mut Openings) {
        if enforcing {
            self.act(observer, now, true, openings);
        } else {
            // Nothing to decide yet, but the predictor learns from the
            // learning period like from any other.
            let _ = self
                .predictor
                .cycle(&observer.aggregator, &observer.scans, now);
        }
    }

    fn unobserved(&mut self, from: i64, to: i64) {
        self.predictor.unobserved(from, to);
    }

    fn vm_appeared(&mut self, observer: &Observer, now: i64, openings: &mut Openings) {
        self.act(observer, now, false, openings);
    }

    fn decide(&mut self, observer: &Observer, key: &FlowKey, ts: i64) -> Option<OpeningId> {
        let coverage = self.coverage(observer);
        let rule = coverage.covering_rule(key, system_time(ts))?;
        self.rule_openings.get(rule as usize).copied()
    }

    fn reviewed(&self) -> Option<(&HashSet<FlowKey>, usize)> {
        Some((&self.reviewed_keys, self.reviewed))
    }

    fn quality(&self) -> Option<QualityReport> {
        Some(self.predictor.quality())
    }

    fn changes(&self) -> Vec<(String, Decider, u64)> {
        let mut out: Vec<_> = self
            .applied
            .iter()
            .map(|(&(kind, decider), &n)| (kind.to_owned(), decider, n))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
        out
    }
}

fn system_time(secs: i64) -> SystemTime {
    u64::try_from(secs).map_or(SystemTime::UNIX_EPOCH, |s| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
    })
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
