//! Keeps the desired state current: compiles the policy in force (the policy
//! file plus the changes of the version history, see
//! [`crate::orchestrate::versions`]) against the inventory whenever either
//! changes, and again when a rule expires, and publishes the result to every
//! switch task.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::CompileConfig;
use super::metrics::Metrics;
use super::plan;
use super::sources::LoadedPolicy;
use crate::inventory::Inventory;
use crate::observer::RuleTargets;
use crate::orchestrate::versions::{self, PolicyVersion, Seq};
use crate::policy::compile::{Mode, VersionTags, compile_tagged};
use crate::policy::{CompileError, CompileSettings, CompiledPolicy};

/// The version history as the compiler sees it, in sequence order.
pub type History = Arc<Vec<PolicyVersion>>;

/// What every switch is to be brought to.
#[derive(Debug)]
pub struct Desired {
    /// The version in force: the latest change's number, or the policy
    /// file's version when no change is in the history. Counting flows
    /// carry it.
    pub version: u16,
    /// The policy file's version (its rules' cookies carry it).
    pub file_version: u16,
    /// The last history entry compiled in (0: none).
    pub history_seq: Seq,
    /// The compiled tables, one per bridge of the inventory.
    pub compiled: CompiledPolicy,
    /// The settings it was compiled with.
    pub settings: CompileSettings,
    /// When it was compiled: hard timeouts count from here.
    pub compiled_at: SystemTime,
    /// Increases with every publication.
    pub generation: u64,
    /// What each rule's traffic is attributed to, for the observer.
    pub targets: Arc<RuleTargets>,
    /// The inventory it was compiled against, for the observer's lookups.
    pub inventory: Arc<Inventory>,
}

/// Slack after a rule's deadline before recompiling, so that the switch
/// has removed its flows by then (OVS expires flows about once a second).
const EXPIRY_GRACE: Duration = Duration::from_secs(2);

/// Compiles the policy file `policy` alone against `inventory` now (what a
/// daemon with an empty version history installs).
pub fn compile_now(
    policy: &LoadedPolicy,
    inventory: &Inventory,
    config: &CompileConfig,
    mode: Mode,
    generation: u64,
) -> Result<Desired, CompileError> {
    compile_versions(policy, &[], inventory, config, mode, generation)
}

/// Compiles the policy in force, `policy` plus the changes of `history`,
/// against `inventory` now. Cookies are tagged per change
/// ([`VersionTags::per_change`]), so that what a change did not touch
/// compiles to the same flows, and a restarted daemon with the same file and
/// history to the flows the switches hold.
pub fn compile_versions(
    policy: &LoadedPolicy,
    history: &[PolicyVersion],
    inventory: &Inventory,
    config: &CompileConfig,
    mode: Mode,
    generation: u64,
) -> Result<Desired, CompileError> {
    let file_version = plan::policy_version(&policy.policy, &config.settings(mode, 0));
    let effective = versions::effective(&policy.policy, file_version, history);
    let version = history
        .iter()
        .filter(|v| v.seq == effective.latest)
        .map(|v| v.number)
        .next()
        .unwrap_or(file_version);
    let (in_force, rule_versions) = effective.to_compile();
    let settings = config.settings(mode, version);
    let compiled_at = SystemTime::now();
    let compiled = compile_tagged(
        &in_force,
        inventory,
        &settings,
        &VersionTags::per_change(rule_versions.clone()),
        compiled_at,
    )?;
    Ok(Desired {
        version,
        file_version,
        history_seq: effective.latest,
        compiled,
        settings,
        compiled_at,
        generation,
        // Each rule's flows carry its own change's version, as tagged above.
        targets: Arc::new(RuleTargets::per_rule(
            &in_force,
            inventory,
            version,
            &rule_versions,
        )),
        inventory: Arc::new(inventory.clone()),
    })
}

/// The compiler's loop state.
pub struct Compiler {
    /// The policy as last loaded.
    pub policy: watch::Receiver<Arc<LoadedPolicy>>,
    /// The inventory as last loaded.
    pub inventory: watch::Receiver<Inventory>,
    /// The version history as last changed.
    pub history: watch::Receiver<History>,
    /// Where results go.
    pub desired: watch::Sender<Option<Arc<Desired>>>,
    /// Compile settings.
    pub config: CompileConfig,
    /// Enforce or learn.
    pub mode: Mode,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Stops the loop.
    pub shutdown: CancellationToken,
}

impl Compiler {
    /// Compiles once and publishes the result if it changes anything;
    /// returns when to compile again for expiring rules.
    pub fn step(&mut self, warnings: &mut Vec<String>) -> Option<SystemTime> {
        let policy = self.policy.borrow_and_update().clone();
        let inventory = self.inventory.borrow_and_update().clone();
        let history = self.history.borrow_and_update().clone();
        let previous = self.desired.borrow().clone();
        let generation = previous
            .as_ref()
            .map_or(1, |d| d.generation.wrapping_add(1));
        let desired = match compile_versions(
            &policy,
            &history,
            &inventory,
            &self.config,
            self.mode,
            generation,
        ) {
            Ok(desired) => desired,
            Err(e) => {
                self.metrics.load("compile", false);
                let keeping = previous
                    .as_ref()
                    .map_or("no policy is applied until it compiles".to_owned(), |d| {
                        format!("policy version {:#06x} stays in force", d.version)
                    });
                tracing::error!(
                    "{} does not compile against the inventory: {e}; {keeping}",
                    policy.path.display()
                );
                return None;
            }
        };
        self.metrics.load("compile", true);
        if desired.compiled.warnings != *warnings {
            for warning in &desired.compiled.warnings {
                tracing::warn!("{}: {warning}", policy.path.display());
            }
            warnings.clone_from(&desired.compiled.warnings);
        }
        let next = desired.compiled.next_refresh.map(|at| at + EXPIRY_GRACE);
        let unchanged = previous.as_ref().is_some_and(|p| {
            p.history_seq == desired.history_seq
                && plan::same_tables(&p.compiled, &desired.compiled)
        });
        if unchanged {
            tracing::debug!("recompiled: nothing changes");
            return next;
        }
        let flows: usize = desired.compiled.bridges.iter().map(|b| b.flows.len()).sum();
        tracing::info!(
            version = format_args!("{:#06x}", desired.version),
            rules = policy.policy.rules.len(),
            bridges = desired.compiled.bridges.len(),
            flows,
            "policy version {:#06x} compiled from {}",
            desired.version,
            policy.path.display()
        );
        self.metrics.policy_version.set(i64::from(desired.version));
        self.desired.send_replace(Some(Arc::new(desired)));
        next
    }

    /// Runs until shutdown; `next` and `warnings` are what the first
    /// [`step`](Self::step) left.
    pub async fn run(mut self, mut next: Option<SystemTime>, mut warnings: Vec<String>) {
        let mut inventory_alive = true;
        loop {
            let wait = next.map(|at| {
                at.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            });
            let timer = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let inventory = &mut self.inventory;
            let inventory_changed = async {
                if inventory_alive {
                    inventory.changed().await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                changed = self.policy.changed() => if changed.is_err() { return },
                changed = self.history.changed() => if changed.is_err() { return },
                changed = inventory_changed => if changed.is_err() {
                    tracing::error!("the inventory source stopped; the last inventory stays in force");
                    inventory_alive = false;
                    continue;
                },
                () = timer => {}
                () = self.shutdown.cancelled() => return,
            }
            next = self.step(&mut warnings);
        }
    }
}
