//! The decision loop in the daemon: drives the [`Engine`] with the live
//! history's recommendations every cycle and with the operator's decisions
//! as the pending table's monitor sees them, and carries out what it
//! decides through [`VersionControl`] and [`PendingTable`].
//!
//! ```text
//!  every cycle ──▶ history thread: predict, recommend, measure ──▶ Engine::cycle
//!  OVSDB monitor ──▶ decision / expiry ──────────────────────────▶ Engine::decision
//!                                                                      │
//!     apply / roll back (VersionControl) ◀── actions ──────────────────┤
//!     publish / report status (PendingTable) ◀─────────────────────────┘
//! ```
//!
//! Changes are made one at a time (the loop awaits each), so an approval
//! that arrives while a cycle applies something is acted on right after it.
//!
//! # Restarts
//!
//! The engine lives in memory; what survives a restart is the history on
//! disk and the pending table in OVSDB. A starting loop hands the history's
//! recommendation ids to the engine as decided (a change augur rolled back
//! is not made again by the next daemon) and keeps the outcome of each
//! approved one, so that an approval handed over again (augur died between
//! applying it and reporting it) is answered with the version it became,
//! not applied twice. Entries still pending stay as they are: the next
//! trained cycle publishes them again, which leaves existing keys alone,
//! and a decision written while augur was down is handed over on
//! connecting and acted on once the cycle recommends the same id.
//!
//! Changes still under watch when augur stopped are watched again, to the
//! same end, from what is stored beside their versions (see the engine's
//! "Watches across restarts"): a change applied just before a crash is
//! still rolled back if it turns out harmful, with its reason in the
//! history as usual.
//!
//! Decided ids that are not versions are forgotten after
//! [`forget_after`] without a cycle recommending them (see the engine's
//! bounds).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::VersionControl;
use super::engine::{
    Action, DropReason, Engine, EngineSettings, Observation, Verdict, WatchRecord,
};
use super::versions::{ChangeMeta, Decider, PolicyVersion, RollbackBy, RollbackTarget, Seq};
use crate::daemon::observe::{CycleRequest, CycleSender};
use crate::pending::ovsdb::{PendingError, PendingEvent, PendingTable};
use crate::pending::{
    EntryId, Outcome, PendingEntry, PendingSettings, Status, Summary, Timestamp,
    Verdict as PendingVerdict,
};
use crate::recommend::Recommendation;

/// How long a cycle waits for the history thread's answer.
const CYCLE_ANSWER: Duration = Duration::from_secs(60);
/// First and longest wait before reconnecting to OVSDB.
const RECONNECT: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// What the loop needs.
#[derive(Debug)]
pub struct Service {
    /// The switch database holding the pending table (empty: no reviews;
    /// high-risk recommendations are then only logged).
    pub target: String,
    /// How often to decide.
    pub cycle: Duration,
    /// The engine's settings.
    pub engine: EngineSettings,
    /// The pending table's settings.
    pub pending: PendingSettings,
    /// Makes and undoes versions.
    pub versions: Arc<VersionControl>,
    /// The history thread, which predicts and measures.
    pub cycles: CycleSender,
    /// Ends the loop.
    pub shutdown: CancellationToken,
}

impl Service {
    /// Runs until shutdown, reconnecting to OVSDB with backoff; the
    /// engine's state (what was decided, what is watched) lives across
    /// reconnections.
    pub async fn run(self) {
        let watches = self.versions.stored_watches().await;
        let mut state = LoopState::from_history(
            Engine::new(self.engine.clone()),
            &self.versions.history(),
            &watches,
            unix_now(),
        );
        let mut delay = RECONNECT.0;
        tracing::info!(
            cycle_s = self.cycle.as_secs(),
            watch_for_s = self.engine.watch_for_s,
            "the decision loop is running"
        );
        loop {
            let table = if self.target.is_empty() {
                None
            } else {
                let opened = tokio::select! {
                    opened = PendingTable::open(&self.target, self.pending.clone()) => opened,
                    () = self.shutdown.cancelled() => return,
                };
                match opened {
                    Ok(table) => {
                        delay = RECONNECT.0;
                        Some(table)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "decision loop: {e}; reviews wait until OVSDB answers (again in {} s)",
                            delay.as_secs_f64()
                        );
                        None
                    }
                }
            };
            let connected = table.is_some() || self.target.is_empty();
            let result = self.drive(&mut state, table, connected).await;
            match result {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    "decision loop: {e}; reconnecting in {} s",
                    delay.as_secs_f64()
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.shutdown.cancelled() => return,
            }
            delay = (delay * 2).min(RECONNECT.1);
        }
    }

    /// Cycles and events until shutdown (`Ok`) or the table fails. Without
    /// a table (none configured, or not reachable) cycles run alone; an
    /// unreachable one is tried again after a backoff.
    async fn drive(
        &self,
        state: &mut LoopState,
        mut table: Option<PendingTable>,
        connected: bool,
    ) -> Result<(), PendingError> {
        let mut ticker = tokio::time::interval(self.cycle);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reconnect_at = tokio::time::Instant::now() + RECONNECT.1;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    let actions = self.cycle(&mut state.engine).await;
                    self.carry_out(state, table.as_mut(), actions).await?;
                    state.forget(unix_now(), &self.pending);
                }
                event = next_event(table.as_mut()) => {
                    let event = event?;
                    if let Some((id, outcome)) = state.answered(&event) {
                        // Decided before (the decision was handed over
                        // again after a reconnection): the same answer.
                        if let Some(table) = table.as_mut() {
                            report_outcome(table, &id, outcome).await?;
                        }
                        continue;
                    }
                    state.engine.advance(unix_now());
                    let actions = on_event(&mut state.engine, event);
                    self.carry_out(state, table.as_mut(), actions).await?;
                }
                () = tokio::time::sleep_until(reconnect_at), if !connected => {
                    return Err(PendingError::Closed { target: self.target.clone() });
                }
            }
        }
    }

    /// Asks the history thread for the cycle's recommendations and
    /// measurements and runs the engine on them.
    async fn cycle(&self, engine: &mut Engine) -> Vec<Action> {
        let Some(in_force) = self.versions.in_force() else {
            tracing::debug!("decision loop: no policy compiled yet");
            return Vec::new();
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let now = unix_now();
        let request = CycleRequest {
            policy: in_force.policy,
            pairs: engine.watched_pairs(),
            now,
            reply,
        };
        if !self.cycles.send(request) {
            tracing::warn!("decision loop: the history writer is behind; cycle skipped");
            return Vec::new();
        }
        let reply = match tokio::time::timeout(CYCLE_ANSWER, answer).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => {
                tracing::debug!("decision loop: no prediction yet (the history is being learned)");
                return Vec::new();
            }
            Err(_) => {
                tracing::warn!("decision loop: the history writer did not answer; cycle skipped");
                return Vec::new();
            }
        };
        let mut observation: Observation = reply.observation;
        observation.refusals = self.versions.refusals();
        observation.meters = engine
            .watched_meters()
            .into_iter()
            .filter_map(|seq| Some((seq, self.versions.meter_use(seq)?)))
            .collect();
        tracing::debug!(
            trained = reply.trained,
            recommendations = reply.candidates.len(),
            watching = ?engine.watching(),
            "decision cycle"
        );
        let awaiting = engine.awaiting_baseline();
        let mut actions = engine.observe(observation, now);
        for seq in awaiting {
            tracing::info!(
                change = seq,
                "the harm of change {seq} is counted from now on (its watch was resumed after \
                 a restart)"
            );
        }
        if reply.trained {
            actions.extend(engine.recommended(reply.candidates, now));
        }
        actions
    }

    /// Carries out `actions` in order. Every change and rollback is made
    /// whatever happens to the table; a table error skips the table's
    /// later writes (a publication is then undone in the engine, to be
    /// made again) and is returned at the end, so that the caller
    /// reconnects.
    async fn carry_out(
        &self,
        state: &mut LoopState,
        mut table: Option<&mut PendingTable>,
        actions: Vec<Action>,
    ) -> Result<(), PendingError> {
        let mut failed: Option<PendingError> = None;
        for action in actions {
            let report = match action {
                Action::Apply {
                    recommendation,
                    decider,
                } => {
                    let outcome = self
                        .apply(&mut state.engine, &recommendation, decider.clone())
                        .await;
                    match &decider {
                        Decider::Operator(by) => {
                            let by = (by != "operator").then(|| by.clone());
                            let outcome = match outcome {
                                Ok(change) => Outcome::Applied { change, by },
                                Err(why) => Outcome::Error { why },
                            };
                            Some((recommendation.id.clone(), outcome))
                        }
                        _ => None,
                    }
                }
                Action::Publish { recommendation } => {
                    match (table.as_deref_mut(), failed.is_some()) {
                        (Some(table), false) => {
                            if let Err(e) = self.publish(table, &recommendation).await {
                                state.engine.unpublished(&recommendation.id);
                                failed = Some(e);
                            }
                        }
                        (Some(_), true) => state.engine.unpublished(&recommendation.id),
                        (None, _) => tracing::warn!(
                            id = %recommendation.id,
                            "high-risk recommendation not queued for review (no OVSDB): {}",
                            recommendation.one_line()
                        ),
                    }
                    None
                }
                Action::Drop { id, why } => {
                    tracing::info!(%id, why = ?why, "recommendation dropped");
                    match why {
                        DropReason::Rejected { by, reason } => {
                            Some((id, Outcome::Rejected { by, reason }))
                        }
                        DropReason::Stale => Some((
                            id,
                            Outcome::Error {
                                why: "approved, but augur no longer recommends it (the traffic \
                                      or the policy changed); nothing was applied"
                                    .to_owned(),
                            },
                        )),
                        // The table wrote the expiry; a forbidden one was
                        // never published.
                        DropReason::Expired | DropReason::Forbidden => None,
                    }
                }
                Action::Rollback { seq, reason } => {
                    tracing::warn!(change = seq, %reason, "harm measured: rolling the change back");
                    match self
                        .versions
                        .rollback(RollbackTarget::Change(seq), RollbackBy::Automatic(reason))
                        .await
                    {
                        Ok(version) => tracing::info!(
                            change = seq,
                            version = version.seq,
                            "change {seq} rolled back automatically"
                        ),
                        Err(e) => tracing::warn!(change = seq, "automatic rollback not made: {e}"),
                    }
                    state.engine.rolled_back(seq);
                    None
                }
            };
            let Some((id, outcome)) = report else {
                continue;
            };
            if !matches!(outcome, Outcome::Error { .. }) {
                // Kept to answer the same decision again after a
                // reconnection, which hands it over anew.
                state.outcomes.insert(id.clone(), outcome.clone());
            }
            if let (Some(table), None) = (table.as_deref_mut(), &failed) {
                if let Err(e) = report_outcome(table, &id, outcome).await {
                    failed = Some(e);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Applies a recommendation's change; the version number, or why not.
    async fn apply(
        &self,
        engine: &mut Engine,
        recommendation: &Recommendation,
        decider: Decider,
    ) -> Result<u64, String> {
        let meta = ChangeMeta {
            decider: decider.clone(),
            recommendation: Some(recommendation.id.clone()),
            explanation: format!("{}: {}", recommendation.change, recommendation.explanation),
            risk_factors: recommendation
                .risk
                .factors
                .iter()
                .map(|(factor, c)| format!("{factor}: {c:.2}"))
                .collect(),
        };
        let watch = engine.watch_record(&recommendation.id);
        match self
            .versions
            .apply_watched_change(&recommendation.change, meta, watch)
            .await
        {
            Ok(version) => {
                tracing::info!(
                    id = %recommendation.id,
                    change = version.seq,
                    decider = ?decider,
                    risk = %recommendation.risk.level,
                    "recommendation applied as change {}: {}",
                    version.seq,
                    recommendation.change
                );
                engine.applied(&recommendation.id, version.seq, unix_now());
                Ok(version.seq)
            }
            Err(e) => {
                tracing::warn!(
                    id = %recommendation.id,
                    "recommendation not applied: {e}: {}",
                    recommendation.change
                );
                engine.apply_failed(&recommendation.id);
                Err(e.to_string())
            }
        }
    }

    async fn publish(
        &self,
        table: &mut PendingTable,
        recommendation: &Recommendation,
    ) -> Result<(), PendingError> {
        let Some(id) = entry_id(&recommendation.id) else {
            return Ok(());
        };
        let summary = Summary {
            change: recommendation.change.to_string(),
            risk_score: recommendation.risk.score.get(),
            risk_level: recommendation.risk.level.to_string(),
            factors: recommendation
                .risk
                .factors
                .iter()
                .map(|(factor, _)| factor.to_string())
                .collect(),
            probability: recommendation.probability,
            explanation: recommendation.explanation.clone(),
        };
        let entry = PendingEntry::new(id, summary, Timestamp::now(), &self.pending);
        let published = table.publish(std::slice::from_ref(&entry)).await?;
        tracing::info!(
            id = %entry.id,
            published,
            "high-risk recommendation waits for review: ovs-vsctl set Open_vSwitch . \
             external_ids:{}=approve",
            entry.id.decision_key()
        );
        Ok(())
    }
}

/// The loop's state across reconnections.
#[derive(Debug)]
struct LoopState {
    engine: Engine,
    /// Final outcomes of operator decisions, by id.
    outcomes: BTreeMap<String, Outcome>,
}

impl LoopState {
    /// The loop's state on start at `now`: the history's recommendations
    /// decided, the approved ones with their outcome, the changes whose
    /// watch had not ended watched again.
    fn from_history(
        mut engine: Engine,
        history: &[PolicyVersion],
        watches: &BTreeMap<Seq, WatchRecord>,
        now: i64,
    ) -> LoopState {
        for (seq, until) in engine.resume(history, watches, now) {
            tracing::info!(
                change = seq,
                until,
                "change {seq} is watched again after the restart, until Unix time {until}"
            );
        }
        let changes = || history.iter().filter(|v| !v.decider.is_rollback());
        engine.in_history(changes().filter_map(|v| v.recommendation.clone()));
        let outcomes = changes()
            .filter_map(|v| {
                let Decider::Operator(by) = &v.decider else {
                    return None;
                };
                let outcome = Outcome::Applied {
                    change: v.seq,
                    by: (by != "operator").then(|| by.clone()),
                };
                Some((v.recommendation.clone()?, outcome))
            })
            .collect();
        LoopState { engine, outcomes }
    }

    /// Forgets the decided ids no cycle recommended for
    /// [`forget_after`], with their outcomes.
    fn forget(&mut self, now: i64, pending: &PendingSettings) {
        let horizon = i64::try_from(forget_after(pending).as_secs()).unwrap_or(i64::MAX);
        let forgotten = self.engine.forget_decided(now.saturating_sub(horizon));
        if forgotten > 0 {
            let engine = &self.engine;
            self.outcomes.retain(|id, _| engine.is_decided(id));
            tracing::debug!(
                forgotten,
                "decided recommendations no cycle made for {} h forgotten",
                horizon / 3600
            );
        }
    }

    /// The outcome already given to a decision the table hands over again.
    fn answered(&self, event: &PendingEvent) -> Option<(String, Outcome)> {
        let PendingEvent::Decided { entry, .. } = event else {
            return None;
        };
        let id = entry.id.as_str();
        if !self.engine.is_decided(id) {
            return None;
        }
        let outcome = self.outcomes.get(id)?.clone();
        Some((id.to_owned(), outcome))
    }
}

/// How long a decided id (other than a version) is kept without a cycle
/// recommending it: twice the pending expiry, and at least until its
/// status has left the pending table (while the status is there, the
/// table does not queue the id again anyway).
pub fn forget_after(pending: &PendingSettings) -> Duration {
    let expire = pending.expire_after();
    expire
        .saturating_mul(2)
        .max(expire.saturating_add(pending.keep_status()))
}

async fn report_outcome(
    table: &mut PendingTable,
    id: &str,
    outcome: Outcome,
) -> Result<(), PendingError> {
    match entry_id(id) {
        Some(id) => {
            table
                .report(&id, &Status::new(Timestamp::now(), outcome))
                .await
        }
        None => Ok(()),
    }
}

/// What the engine makes of a pending-table event.
fn on_event(engine: &mut Engine, event: PendingEvent) -> Vec<Action> {
    match event {
        PendingEvent::Decided { entry, decision } => {
            let verdict = match decision.verdict {
                PendingVerdict::Approve => Verdict::Approve { by: decision.by },
                PendingVerdict::Reject => Verdict::Reject {
                    by: decision.by,
                    reason: decision.reason,
                },
            };
            engine.decision(entry.id.as_str(), verdict)
        }
        PendingEvent::Expired { id } => engine.expired(id.as_str()),
        PendingEvent::Ignored { .. } | PendingEvent::StatusRetired { .. } => Vec::new(),
    }
}

/// The table's next event, or never without a table.
async fn next_event(table: Option<&mut PendingTable>) -> Result<PendingEvent, PendingError> {
    match table {
        Some(table) => table.next_event().await,
        None => std::future::pending().await,
    }
}

fn entry_id(id: &str) -> Option<EntryId> {
    match EntryId::new(id) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(%id, "not a pending-table id: {e}");
            None
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrate::engine::HarmSettings;
    use crate::orchestrate::versions::Status as VersionStatus;
    use crate::pending::Decision;

    fn version(seq: u64, decider: Decider, recommendation: &str) -> PolicyVersion {
        PolicyVersion {
            seq,
            number: u16::try_from(seq).unwrap(),
            parent: seq - 1,
            created_ms: 0,
            decider,
            recommendation: Some(recommendation.to_owned()),
            change: None,
            explanation: String::new(),
            risk_factors: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            groups: Vec::new(),
            endpoints: Vec::new(),
            status: VersionStatus::Applied,
        }
    }

    fn decided(id: &str, text: &str) -> PendingEvent {
        let settings = PendingSettings::default();
        let summary = Summary {
            change: "allow a -> b tcp/22".into(),
            risk_score: 0.7,
            risk_level: "high".into(),
            factors: Vec::new(),
            probability: 0.9,
            explanation: String::new(),
        };
        PendingEvent::Decided {
            entry: PendingEntry::new(
                EntryId::new(id).unwrap(),
                summary,
                Timestamp::now(),
                &settings,
            ),
            decision: Decision::parse(text).unwrap(),
        }
    }

    #[test]
    fn a_restarted_loop_answers_an_approval_it_already_applied() {
        let history = [
            version(1, Decider::Automatic, "00aa"),
            version(2, Decider::Operator("alice".into()), "00bb"),
            version(3, Decider::Operator("operator".into()), "00cc"),
        ];
        let engine = Engine::new(EngineSettings {
            watch_for_s: 0,
            harm: HarmSettings::default(),
        });
        let state = LoopState::from_history(engine, &history, &BTreeMap::new(), 0);
        // augur died after applying 00bb, before reporting it: the
        // approval handed over again gets the version it became.
        assert_eq!(
            state.answered(&decided("00bb", "approve by alice")),
            Some((
                "00bb".to_owned(),
                Outcome::Applied {
                    change: 2,
                    by: Some("alice".into())
                }
            ))
        );
        assert_eq!(
            state.answered(&decided("00cc", "approve")),
            Some((
                "00cc".to_owned(),
                Outcome::Applied {
                    change: 3,
                    by: None
                }
            ))
        );
        assert!(state.engine.is_decided("00aa"));
        assert_eq!(state.answered(&decided("00dd", "approve")), None);
    }

    #[test]
    fn a_restarted_loop_watches_on_what_was_under_watch() {
        let mut history = [
            version(1, Decider::Automatic, "00aa"),
            version(2, Decider::Operator("alice".into()), "00bb"),
            version(3, Decider::Automatic, "00cc"),
        ];
        for (v, at_s) in history.iter_mut().zip([900u64, 1000, 1010]) {
            v.created_ms = at_s * 1000;
        }
        let watches: BTreeMap<Seq, WatchRecord> = [1, 2]
            .into_iter()
            .map(|seq| (seq, WatchRecord::default()))
            .collect();
        let engine = Engine::new(EngineSettings {
            watch_for_s: 60,
            harm: HarmSettings::default(),
        });
        let state = LoopState::from_history(engine, &history, &watches, 1030);
        // 1's watch ended at 960; 3 has no record (an older augur made it).
        assert_eq!(state.engine.watching(), [2]);
        assert_eq!(state.engine.awaiting_baseline(), [2]);
        assert!(state.engine.is_decided("00bb"));
    }

    #[test]
    fn decided_ids_are_kept_past_the_pending_table_retention() {
        let settings = PendingSettings {
            expire_after_secs: 3600,
            keep_status_secs: 7 * 24 * 3600,
        };
        assert_eq!(forget_after(&settings).as_secs(), 3600 + 7 * 24 * 3600);
        let settings = PendingSettings {
            expire_after_secs: u64::MAX,
            keep_status_secs: u64::MAX,
        };
        assert_eq!(forget_after(&settings).as_secs(), u64::MAX);
    }
}
