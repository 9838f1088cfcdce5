//! Orchestration: policy versions and their history ([`versions`]), the
//! daemon's side of making and undoing them ([`VersionControl`]), and the
//! operator's rollback requests through OVSDB ([`requests`]).
//!
//! The decision loop (which recommendations to apply, which wait for an
//! operator, when to roll back by itself) is [`engine`], pure and shared
//! with replay, driven in the daemon by [`service`]. It calls
//! [`VersionControl::apply_watched_change`] with the change, why, and what
//! to watch it for (stored with the version, for a restarted daemon), and
//! [`VersionControl::rollback`] with [`versions::RollbackBy::Automatic`] when
//! it measures harm. Both return once every connected bridge holds the new
//! version and the history on disk says so, or with an error once every
//! bridge is back where it was.
//!
//! # Atomicity
//!
//! Each bridge takes a version in one OpenFlow bundle: all of its flow
//! changes or none. Across bridges, a version is in force only when every
//! connected bridge has taken it: if one refuses it (or does not answer
//! within the settle time), the history is set back to the previous version
//! and every bridge, including those that had taken the new one, is brought
//! back to the previous version (again one bundle each); nothing is
//! recorded. A bridge that connects later is brought to whatever version is
//! then in force.
//!
//! The history is written after the switches took the version: if augur
//! dies in between, the restarted daemon rebuilds the policy from the
//! history on disk and brings the switches back to the last recorded
//! version.

pub mod engine;
pub mod requests;
pub mod service;
pub mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, watch};

use crate::daemon::Desired;
use crate::daemon::bridge::{MeterReadings, Synced};
use crate::daemon::compiler::{self, History};
use crate::daemon::config::CompileConfig;
use crate::daemon::sources::LoadedPolicy;
use crate::policy::compile::Mode;
use crate::recommend::PolicyChange;
use crate::store::versions::VersionStore;
use engine::{MeterUse, WatchRecord};
use versions::{
    ChangeMeta, PolicyVersion, RollbackBy, RollbackTarget, Seq, VersionError, effective,
    plan_rollback, record_change,
};

/// Why a change or rollback was not made.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change or rollback itself is not possible.
    #[error("{0}")]
    Version(#[from] VersionError),
    /// No policy has been compiled yet.
    #[error("no policy is compiled yet")]
    NotReady,
    /// The policy with the change does not compile.
    #[error("the policy with version {seq} does not compile: {error}")]
    Compile {
        /// The version.
        seq: Seq,
        /// Why.
        error: String,
    },
    /// A bridge refused the version or did not take it in time; every
    /// bridge was brought back.
    #[error("{why}; every bridge is brought back to version {previous}")]
    NotApplied {
        /// What went wrong.
        why: String,
        /// The version in force again.
        previous: Seq,
    },
    /// The switches took the version but the history could not record it;
    /// every bridge was brought back.
    #[error(
        "version {seq} could not be recorded ({error}); every bridge is brought back to version {previous}"
    )]
    Store {
        /// The version.
        seq: Seq,
        /// Why.
        error: String,
        /// The version in force again.
        previous: Seq,
    },
}

/// Makes and undoes policy versions in a running daemon.
#[derive(Debug)]
pub struct VersionControl {
    /// The history on disk (`None`: kept in memory only, lost on restart);
    /// held for the whole of a change, so changes happen one at a time.
    store: Mutex<Option<VersionStore>>,
    history: watch::Sender<History>,
    policy: watch::Receiver<Arc<LoadedPolicy>>,
    desired: watch::Receiver<Option<Arc<Desired>>>,
    synced: watch::Receiver<BTreeMap<u64, Synced>>,
    meters: watch::Receiver<BTreeMap<u64, MeterReadings>>,
    config: CompileConfig,
    mode: Mode,
    settle: Duration,
}

/// What [`VersionControl`] needs from the daemon.
#[derive(Debug)]
pub struct Wiring {
    /// The history on disk, if the daemon has a store.
    pub store: Option<VersionStore>,
    /// Where the compiler reads the history.
    pub history: watch::Sender<History>,
    /// The policy file as loaded.
    pub policy: watch::Receiver<Arc<LoadedPolicy>>,
    /// The desired state the compiler publishes.
    pub desired: watch::Receiver<Option<Arc<Desired>>>,
    /// How each switch's last update ended.
    pub synced: watch::Receiver<BTreeMap<u64, Synced>>,
    /// Each switch's rule meter counters.
    pub meters: watch::Receiver<BTreeMap<u64, MeterReadings>>,
    /// Compile settings (to check a version compiles before publishing it).
    pub config: CompileConfig,
    /// Enforce or learn.
    pub mode: Mode,
    /// How long every connected bridge has to take a version.
    pub settle: Duration,
}

impl VersionControl {
    /// Takes over the history channel.
    pub fn new(wiring: Wiring) -> VersionControl {
        VersionControl {
            store: Mutex::new(wiring.store),
            history: wiring.history,
            policy: wiring.policy,
            desired: wiring.desired,
            synced: wiring.synced,
            meters: wiring.meters,
            config: wiring.config,
            mode: wiring.mode,
            settle: wiring.settle,
        }
    }

    /// The history in force.
    pub fn history(&self) -> History {
        self.history.borrow().clone()
    }

    /// The policy in force (the file plus the changes in force), with each
    /// rule's place and version: what recommendations are computed against
    /// (`None` until the first compilation).
    pub fn in_force(&self) -> Option<versions::Effective> {
        let desired = self.desired.borrow().clone()?;
        let policy = self.policy.borrow().clone();
        Some(effective(
            &policy.policy,
            desired.file_version,
            &self.history(),
        ))
    }

    /// Applies `change` on top of the policy in force, on every bridge, and
    /// records it; returns the new version.
    pub async fn apply_change(
        &self,
        change: &PolicyChange,
        meta: ChangeMeta,
    ) -> Result<PolicyVersion, ChangeError> {
        self.apply_watched_change(change, meta, None).await
    }

    /// [`VersionControl::apply_change`], recording with the version what
    /// the decision loop watches it for, so that a restarted daemon
    /// watches it on.
    pub async fn apply_watched_change(
        &self,
        change: &PolicyChange,
        meta: ChangeMeta,
        watch: Option<WatchRecord>,
    ) -> Result<PolicyVersion, ChangeError> {
        let mut store = self.store.lock().await;
        let (policy, file_version) = self.inputs()?;
        let before = self.history();
        let current = effective(&policy.policy, file_version, &before);
        let version = record_change(&current, &before, change, meta, SystemTime::now())?;
        let mut after = before.to_vec();
        after.push(version.clone());
        self.commit(&mut store, &policy, before, after, |s| {
            s.append_watched(&version, watch.as_ref())
        })
        .await?;
        tracing::info!(
            version = version.seq,
            added = version.added.len(),
            removed = version.removed.len(),
            "policy version {} applied: {}",
            version.seq,
            version.explanation
        );
        Ok(version)
    }

    /// Rolls back `target` on every bridge and records it; returns the
    /// rollback version.
    pub async fn rollback(
        &self,
        target: RollbackTarget,
        by: RollbackBy,
    ) -> Result<PolicyVersion, ChangeError> {
        let mut store = self.store.lock().await;
        let (policy, file_version) = self.inputs()?;
        let before = self.history();
        let planned = plan_rollback(
            &policy.policy,
            file_version,
            &before,
            target,
            by,
            SystemTime::now(),
        )?;
        let mut after = before.to_vec();
        planned.apply_to(&mut after);
        self.commit(&mut store, &policy, before, after, |s| {
            s.record_rollback(&planned)
        })
        .await?;
        tracing::info!(
            version = planned.version.seq,
            added = planned.version.added.len(),
            removed = planned.version.removed.len(),
            "policy version {}: {}",
            planned.version.seq,
            planned.version.explanation
        );
        Ok(planned.version)
    }

    /// The watch records stored with the versions (empty without a store:
    /// nothing outlives the daemon then). A store that cannot be read
    /// leaves the changes unwatched, with a warning, rather than stopping
    /// the loop.
    pub async fn stored_watches(&self) -> BTreeMap<Seq, WatchRecord> {
        let store = self.store.lock().await;
        match store.as_ref().map(VersionStore::watches) {
            Some(Ok(watches)) => watches,
            Some(Err(e)) => {
                tracing::warn!(
                    "the watches of changes made before the restart cannot be read: {e:#}; \
                     they are not watched again"
                );
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        }
    }

    /// Bridges whose last update failed, with the switch's error: a
    /// bridge refusing the version in force (the decision loop's first
    /// harm rule).
    pub fn refusals(&self) -> Vec<(String, String)> {
        self.synced
            .borrow()
            .values()
            .filter_map(|s| Some((s.bridge.clone(), s.error.clone()?)))
            .collect()
    }

    /// What the meters of version `seq`'s rate-limited rules counted,
    /// summed over every connected bridge; `None` when the version has no
    /// such rule in force or no switch reports its meters.
    pub fn meter_use(&self, seq: Seq) -> Option<MeterUse> {
        let ids = self.meters_of(seq);
        if ids.is_empty() {
            return None;
        }
        let readings = self.meters.borrow();
        let mut total: Option<MeterUse> = None;
        for reading in readings
            .values()
            .flat_map(|r| ids.iter().filter_map(|id| r.get(id)))
        {
            let sum = total.get_or_insert_default();
            sum.packets = sum.packets.saturating_add(reading.packets);
            sum.dropped = sum.dropped.saturating_add(reading.dropped);
        }
        total
    }

    /// The meter ids of version `seq`'s rate-limited rules as compiled
    /// (per-change tags give a rule the meter of its slot).
    fn meters_of(&self, seq: Seq) -> Vec<u32> {
        let Some(desired) = self.desired.borrow().clone() else {
            return Vec::new();
        };
        let history = self.history();
        let Some(number) = history.iter().find(|v| v.seq == seq).map(|v| v.number) else {
            return Vec::new();
        };
        let policy = self.policy.borrow().clone();
        let (rules, versions) =
            effective(&policy.policy, desired.file_version, &history).to_compile();
        rules
            .rules
            .iter()
            .filter(|r| r.rate.is_some() && versions.get(&r.index) == Some(&number))
            .filter_map(|r| desired.settings.first_rule_meter_id.checked_add(r.index))
            .collect()
    }

    fn inputs(&self) -> Result<(Arc<LoadedPolicy>, u16), ChangeError> {
        let desired = self.desired.borrow().clone().ok_or(ChangeError::NotReady)?;
        Ok((self.policy.borrow().clone(), desired.file_version))
    }

    /// Publishes `after`, waits for every connected bridge to take it, then
    /// persists it; on any failure publishes `before` again.
    async fn commit(
        &self,
        store: &mut Option<VersionStore>,
        policy: &LoadedPolicy,
        before: History,
        after: Vec<PolicyVersion>,
        persist: impl FnOnce(&mut VersionStore) -> anyhow::Result<()>,
    ) -> Result<(), ChangeError> {
        let seq = versions::next_seq(&before);
        let previous = versions::effective(&policy.policy, 0, &before).latest;
        if let Some(desired) = self.desired.borrow().clone() {
            compiler::compile_versions(
                policy,
                &after,
                &desired.inventory,
                &self.config,
                self.mode,
                0,
            )
            .map_err(|e| ChangeError::Compile {
                seq,
                error: e.to_string(),
            })?;
        }
        let floor = self.generation();
        self.history.send_replace(Arc::new(after));
        if let Err(why) = self.wait_applied(seq, floor).await {
            self.restore(before).await;
            return Err(ChangeError::NotApplied { why, previous });
        }
        if let Some(store) = store.as_mut() {
            if let Err(e) = persist(store) {
                self.restore(before).await;
                return Err(ChangeError::Store {
                    seq,
                    error: format!("{e:#}"),
                    previous,
                });
            }
        }
        Ok(())
    }

    async fn restore(&self, before: History) {
        let seq = before.iter().map(|v| v.seq).max().unwrap_or(0);
        let floor = self.generation();
        self.history.send_replace(before);
        if let Err(why) = self.wait_applied(seq, floor).await {
            tracing::error!(
                "bringing the bridges back to version {seq}: {why}; each keeps retrying"
            );
        }
    }

    fn generation(&self) -> u64 {
        self.desired.borrow().as_ref().map_or(0, |d| d.generation)
    }

    /// Waits until the compiler has published history entry `seq` in a
    /// generation after `floor` and every connected bridge has taken it.
    async fn wait_applied(&self, seq: Seq, floor: u64) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.settle;
        let mut desired_rx = self.desired.clone();
        let desired = loop {
            let current = desired_rx.borrow_and_update().clone();
            if let Some(d) = current.filter(|d| d.history_seq == seq && d.generation > floor) {
                break d;
            }
            match tokio::time::timeout_at(deadline, desired_rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("augur is shutting down".to_owned()),
                Err(_) => {
                    return Err(format!(
                        "version {seq} was not compiled within {} s",
                        self.settle.as_secs()
                    ));
                }
            }
        };
        let mut synced_rx = self.synced.clone();
        loop {
            let waiting: Vec<String> = {
                let synced = synced_rx.borrow_and_update();
                let mut waiting = Vec::new();
                for bridge in &desired.compiled.bridges {
                    let Some(state) = synced.get(&bridge.datapath_id) else {
                        continue;
                    };
                    if state.generation < desired.generation {
                        waiting.push(bridge.bridge.clone());
                    } else if let Some(error) = &state.error {
                        return Err(format!(
                            "bridge {} refused version {seq}: {error}",
                            bridge.bridge
                        ));
                    }
                }
                waiting
            };
            if waiting.is_empty() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, synced_rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("augur is shutting down".to_owned()),
                Err(_) => {
                    return Err(format!(
                        "bridge(s) {} did not take version {seq} within {} s",
                        waiting.join(", "),
                        self.settle.as_secs()
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Metrics;
    use crate::daemon::compiler::Compiler;
    use crate::inventory::Inventory;
    use crate::policy::{Policy, PortRange, Proto};
    use crate::recommend::{Opening, Peer};
    use tokio_util::sync::CancellationToken;
    use versions::{Decider, Status};

    const POLICY: &str = include_str!("../../examples/policy/three-tier.toml");
    const INVENTORY: &str = include_str!("../../examples/policy/three-tier-inventory.toml");

    /// A daemon without sockets: the real compiler, and two fake switches
    /// that take every generation except those holding history entry
    /// `refused_seq`, which the second one refuses.
    async fn harness(
        refused_seq: Seq,
        store: Option<VersionStore>,
    ) -> (
        VersionControl,
        watch::Receiver<Option<Arc<Desired>>>,
        CancellationToken,
    ) {
        let shutdown = CancellationToken::new();
        let inventory: Inventory = toml::from_str(INVENTORY).unwrap();
        let policy = LoadedPolicy {
            policy: Policy::parse(POLICY, "three-tier.toml", SystemTime::now()).unwrap(),
            path: "three-tier.toml".into(),
        };
        let (_policy_tx, policy_rx) = watch::channel(Arc::new(policy));
        let (_inventory_tx, inventory_rx) = watch::channel(inventory.clone());
        let (history_tx, history_rx) = watch::channel(Arc::new(Vec::new()));
        let (desired_tx, desired_rx) = watch::channel(None);
        let (synced_tx, synced_rx) = watch::channel(BTreeMap::new());
        let mut compiler = Compiler {
            policy: policy_rx.clone(),
            inventory: inventory_rx,
            history: history_rx,
            desired: desired_tx,
            config: CompileConfig::default(),
            mode: Mode::Enforce,
            metrics: Arc::new(Metrics::new()),
            shutdown: shutdown.clone(),
        };
        let mut warnings = Vec::new();
        let next = compiler.step(&mut warnings);
        tokio::spawn(async move {
            // The senders live as long as the compiler runs.
            let _keep = (_policy_tx, _inventory_tx);
            compiler.run(next, warnings).await;
        });
        let mut switches_rx = desired_rx.clone();
        tokio::spawn(async move {
            loop {
                let desired = switches_rx.borrow_and_update().clone();
                if let Some(desired) = desired {
                    synced_tx.send_modify(|synced| {
                        for (n, bridge) in desired.compiled.bridges.iter().enumerate() {
                            let refuse = n == 1 && desired.history_seq == refused_seq;
                            synced.insert(
                                bridge.datapath_id,
                                Synced {
                                    bridge: bridge.bridge.clone(),
                                    generation: desired.generation,
                                    error: refuse.then(|| "OFPBFC_MSG_FAILED".to_owned()),
                                },
                            );
                        }
                    });
                }
                if switches_rx.changed().await.is_err() {
                    return;
                }
            }
        });
        let control = VersionControl::new(Wiring {
            store,
            history: history_tx,
            policy: policy_rx,
            desired: desired_rx.clone(),
            synced: synced_rx,
            meters: watch::channel(BTreeMap::new()).1,
            config: CompileConfig::default(),
            mode: Mode::Enforce,
            settle: Duration::from_secs(10),
        });
        (control, desired_rx, shutdown)
    }

    fn add_pair(port: u16) -> PolicyChange {
        PolicyChange::AddPair {
            rule: Opening {
                name: None,
                from: vec![Peer::Name("web".into())],
                to: vec![Peer::Name("db".into())],
                proto: Proto::Tcp,
                ports: Some(PortRange::single(port)),
                rate: None,
                expires: None,
            },
        }
    }

    fn meta() -> ChangeMeta {
        ChangeMeta {
            decider: Decider::Automatic,
            recommendation: None,
            explanation: "test".into(),
            risk_factors: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_version_one_bridge_refuses_is_undone_everywhere_and_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        let (control, desired, shutdown) = harness(1, Some(store)).await;
        let error = control
            .apply_change(&add_pair(3306), meta())
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(error, ChangeError::NotApplied { previous: 0, .. }),
            "{text}"
        );
        assert!(
            text.contains("refused version 1: OFPBFC_MSG_FAILED"),
            "{text}"
        );
        assert!(control.history().is_empty());
        // Both bridges were sent back to the policy file alone.
        let now = desired.borrow().clone().unwrap();
        assert_eq!(now.history_seq, 0);
        assert!(
            VersionStore::open(dir.path())
                .unwrap()
                .list()
                .unwrap()
                .is_empty()
        );
        shutdown.cancel();
    }

    #[tokio::test]
    async fn versions_apply_roll_back_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let store = VersionStore::open(dir.path()).unwrap();
        let (control, desired, shutdown) = harness(u64::MAX, Some(store)).await;
        let a = control.apply_change(&add_pair(3306), meta()).await.unwrap();
        let b = control.apply_change(&add_pair(3307), meta()).await.unwrap();
        assert_eq!((a.seq, b.seq, b.parent), (1, 2, 1));
        assert_eq!(desired.borrow().as_ref().unwrap().history_seq, 2);
        let in_force = control.in_force().unwrap();
        assert_eq!(in_force.versions.last(), Some(&b.number));
        assert_eq!(in_force.policy.rules.len(), 8);
        let undo = control
            .rollback(
                RollbackTarget::Change(1),
                RollbackBy::Automatic("drops rose".into()),
            )
            .await
            .unwrap();
        assert_eq!(
            undo.decider,
            Decider::AutoRollback {
                of: 1,
                reason: "drops rose".into()
            }
        );
        let refused = control
            .rollback(
                RollbackTarget::Change(1),
                RollbackBy::Operator(String::new()),
            )
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            ChangeError::Version(VersionError::AlreadyRolledBack(1))
        ));
        let stored = VersionStore::open(dir.path()).unwrap().list().unwrap();
        assert_eq!(stored.as_slice(), control.history().as_slice());
        assert!(matches!(stored[0].status, Status::RolledBack { by: 3, .. }));
        shutdown.cancel();
    }
}
