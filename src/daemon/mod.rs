//! `augur run`: the enforcement daemon.
//!
//! It wires sockets, timers and channels around the pure parts: the policy
//! is compiled by [`crate::policy`], switches are driven by
//! [`crate::switch`], and what is sent is what [`mod@crate::policy::reconcile`]
//! says, fitted to the clock by [`plan`].
//!
//! ```text
//!  policy file ──(reread on change)──┐
//!                                    ├─▶ compiler ──watch: Desired──┬─▶ switch task (bridge 1)
//!  inventory (file, or OVSDB) ───────┘   (recompiles on change      ├─▶ switch task (bridge 2)
//!        │                                and when rules expire)    └─▶ ...
//!        └─▶ bridge settings (OVSDB: fail_mode, connection_mode)
//!
//!  tcp / ssl listeners ── accept ──▶ one task per switch connection
//!  metrics endpoint ◀── every task counts into one registry
//! ```
//!
//! A switch task handshakes (OpenFlow 1.3, 1.4 when offered), finds its
//! bridge in the desired state by datapath id, and keeps the switch's flows
//! equal to it ([`bridge`]). Switches are independent: one that fails, hangs
//! or lies ends its own task only.
//!
//! ## Policy versions
//!
//! The policy in force is the policy file plus the changes of the version
//! history ([`crate::orchestrate`]), kept in the store directory. The file's
//! version is derived from its content and the compile settings
//! ([`plan::policy_version`]), not counted; a change's version is its number
//! in the history. Cookies carry the version of the change that introduced
//! each rule, and a content tag for everything else
//! ([`crate::policy::cookie`]), so a change replaces only its own flows, and
//! a restarted daemon (SIGKILL included) rebuilds the same policy from the
//! file and the history and finds the switches already holding its flows:
//! nothing is removed or re-added.
//!
//! ## Failing closed
//!
//! A policy or inventory that does not load or compile keeps the last good
//! state in force (at start-up, a bad policy or inventory file stops the
//! daemon). A switch whose update fails keeps what it had (bundles are all
//! or nothing) and is retried with backoff. The daemon makes the bridges
//! `fail_mode=secure` with out-of-band controllers ([`bridge_settings`]), so
//! that while augur is away the switches keep enforcing the last version.

pub mod bridge;
pub mod bridge_settings;
pub mod compiler;
pub mod config;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod plan;
pub mod sources;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use augur_openflow::session::SessionConfig;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use compiler::Desired;
pub use config::{Config, ConfigError, Loaded, load};
pub use metrics::Metrics;

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is unusable (a file that cannot be read, an address in use).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The policy file does not load: `file:line:column: reason`.
    #[error("{0}")]
    Policy(String),
    /// The inventory does not load.
    #[error("{0}")]
    Inventory(String),
    /// The observer's history store does not open.
    #[error("observer.store: {0}")]
    History(String),
}

/// How long every connected bridge has to take a new policy version before
/// it is undone everywhere: a dump and a bundle on a busy switch.
const VERSION_SETTLE: Duration = Duration::from_secs(15);

/// How long shutdown waits for tasks to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    tcp: Vec<SocketAddr>,
    ssl: Option<SocketAddr>,
    metrics_address: Option<SocketAddr>,
    desired: watch::Receiver<Option<Arc<Desired>>>,
    metrics: Arc<Metrics>,
    reload: Arc<Notify>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// The history writer, which ends (closing its window) once the switch
    /// tasks holding its sink have stopped.
    history: Option<std::thread::JoinHandle<()>>,
    versions: Arc<crate::orchestrate::VersionControl>,
}

impl Daemon {
    /// Loads the policy and the inventory, binds the listeners and starts
    /// every task. Returns once switches can connect.
    pub async fn start(loaded: Loaded) -> Result<Daemon, StartError> {
        let config = &loaded.config;
        let policy_path = config
            .policy
            .clone()
            .ok_or_else(|| loaded.error("policy", "no policy file given"))?;
        let metrics = Arc::new(Metrics::new());
        let (policy, policy_hash) =
            sources::read_policy(&policy_path).map_err(StartError::Policy)?;
        metrics.load("policy", true);
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let reload = Arc::new(Notify::new());
        let reload_interval = config.reload_interval.get();
        let inventory = sources::start_inventory(
            &config.inventory,
            reload_interval,
            reload.clone(),
            metrics.clone(),
            shutdown.clone(),
        )
        .await
        .map_err(StartError::Inventory)?;

        let acceptor = config
            .listen
            .ssl
            .as_ref()
            .map(|ssl| listener::tls_acceptor(ssl, &loaded))
            .transpose()?;
        let mut tcp_listeners = Vec::new();
        for address in &config.listen.tcp.0 {
            let bound = TcpListener::bind(address.0).await.map_err(|e| {
                loaded.error("listen.tcp", format!("cannot listen on {address}: {e}"))
            })?;
            tcp_listeners.push(bound);
        }
        let ssl_listener = match &config.listen.ssl {
            Some(ssl) => Some(TcpListener::bind(ssl.address.0).await.map_err(|e| {
                loaded.error(
                    "listen.ssl.address",
                    format!("cannot listen on {}: {e}", ssl.address),
                )
            })?),
            None => None,
        };
        let metrics_listener = if config.metrics.enabled {
            Some(metrics::bind(config.metrics.address.0).await.map_err(|e| {
                loaded.error(
                    "metrics.address",
                    format!("cannot listen on {}: {e}", config.metrics.address),
                )
            })?)
        } else {
            None
        };
        let tcp: Vec<SocketAddr> = tcp_listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let ssl = ssl_listener.as_ref().and_then(|l| l.local_addr().ok());
        let metrics_address = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());

        // The first compilation before any switch is accepted, so that the
        // first switches need not wait for it.
        let (version_store, history) = match &config.observer.store {
            Some(dir) => {
                let store = crate::store::versions::VersionStore::open(dir)
                    .map_err(|e| StartError::History(format!("{e:#}")))?;
                let history = store
                    .list()
                    .map_err(|e| StartError::History(format!("{e:#}")))?;
                tracing::info!(
                    versions = history.len(),
                    in_force = history.iter().filter(|v| v.in_force()).count(),
                    "policy version history loaded from {}",
                    store.path().display()
                );
                (Some(store), history)
            }
            None => {
                tracing::warn!(
                    "observer.store is not set: policy versions are kept in memory only, and a \
                     restart returns the switches to the policy file"
                );
                (None, Vec::new())
            }
        };
        let (history_tx, history_rx) = watch::channel(Arc::new(history));
        let (policy_tx, policy_rx) = watch::channel(Arc::new(policy));
        let (desired_tx, desired_rx) = watch::channel(None);
        let (synced_tx, synced_rx) = watch::channel(std::collections::BTreeMap::new());
        let (meters_tx, meters_rx) = watch::channel(std::collections::BTreeMap::new());
        let versions = Arc::new(crate::orchestrate::VersionControl::new(
            crate::orchestrate::Wiring {
                store: version_store,
                history: history_tx,
                policy: policy_rx.clone(),
                desired: desired_rx.clone(),
                synced: synced_rx,
                meters: meters_rx,
                config: config.compile.clone(),
                mode: config.mode,
                settle: VERSION_SETTLE,
            },
        ));
        let mut compiler = compiler::Compiler {
            policy: policy_rx,
            history: history_rx,
            inventory: inventory.inventory.clone(),
            desired: desired_tx,
            config: config.compile.clone(),
            mode: config.mode,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        let mut warnings = Vec::new();
        let next = compiler.step(&mut warnings);
        tasks.spawn(compiler.run(next, warnings));
        tasks.spawn(sources::watch_policy(
            policy_hash,
            policy_path,
            reload_interval,
            reload.clone(),
            metrics.clone(),
            shutdown.clone(),
            policy_tx,
        ));
        let inventory_task = inventory.task;
        let inventory_shutdown = shutdown.clone();
        tasks.spawn(async move {
            // The source stops by itself on shutdown; this only makes
            // shutdown wait for it, and outlive a source that does not.
            let abort = inventory_task.abort_handle();
            tokio::select! {
                _ = inventory_task => {}
                () = inventory_shutdown.cancelled() => abort.abort(),
            }
        });
        tasks.spawn(bridge_settings::run(
            config.ovsdb.clone(),
            inventory.inventory.clone(),
            config.openflow.audit_interval.get(),
            shutdown.clone(),
        ));

        let brain = config
            .orchestrate
            .enabled
            .then(|| -> Result<_, StartError> {
                Ok(observe::BrainSettings {
                    predictor: config
                        .predictor
                        .check()
                        .map_err(|e| loaded.error(&format!("predictor.{}", e.name), e.reason))?,
                    scan: config.scan,
                    recommend: config.recommend.clone(),
                    risk: config.risk.clone(),
                    learn_cycle_s: observe::LEARN_CYCLE_S,
                })
            })
            .transpose()?;
        let (history, history_thread) = match &config.observer.store {
            Some(dir) => {
                let writer = observe::start(dir, config.observer.window.get(), brain)
                    .map_err(|e| StartError::History(format!("{e:#}")))?;
                if let Some(cycles) = writer.cycles {
                    tasks.spawn(
                        crate::orchestrate::service::Service {
                            target: config.ovsdb.target.clone(),
                            cycle: config.orchestrate.cycle.get(),
                            engine: crate::orchestrate::engine::EngineSettings {
                                watch_for_s: i64::try_from(
                                    config.orchestrate.watch_for.get().as_secs(),
                                )
                                .unwrap_or(i64::MAX),
                                harm: config.orchestrate.harm.clone(),
                            },
                            pending: config.orchestrate.pending.clone(),
                            versions: versions.clone(),
                            cycles,
                            shutdown: shutdown.clone(),
                        }
                        .run(),
                    );
                }
                (Some(writer.sink), Some(writer.thread))
            }
            None => (None, None),
        };
        if let Some(sink) = &history {
            tasks.spawn(feed_labels(
                inventory.inventory.clone(),
                sink.clone(),
                shutdown.clone(),
            ));
        }
        let ctx = Arc::new(bridge::Context {
            history,
            poll_interval: config.observer.poll_interval.get(),
            connection_idle: u16::try_from(config.observer.connection_idle.get().as_secs())
                .unwrap_or(u16::MAX)
                .max(1),
            session: session_config(config),
            openflow: config.openflow.clone(),
            desired: desired_rx.clone(),
            metrics: metrics.clone(),
            registry: bridge::Registry::default(),
            shutdown: shutdown.clone(),
            synced: synced_tx,
            meters: meters_tx,
        });
        if config.ovsdb.target.is_empty() {
            tracing::warn!(
                "ovsdb.target is not set: rollback requests (augur rollback) cannot reach augur"
            );
        } else {
            tasks.spawn(crate::orchestrate::requests::serve(
                config.ovsdb.target.clone(),
                versions.clone(),
                shutdown.clone(),
            ));
        }
        for bound in tcp_listeners {
            tasks.spawn(listener::serve_tcp(bound, ctx.clone(), tasks.clone()));
        }
        if let (Some(bound), Some(acceptor)) = (ssl_listener, acceptor) {
            tasks.spawn(listener::serve_ssl(
                bound,
                acceptor,
                ctx.clone(),
                tasks.clone(),
            ));
        }
        if let Some(bound) = metrics_listener {
            tasks.spawn(metrics::serve(bound, metrics.clone(), shutdown.clone()));
        }
        let listening: Vec<String> = tcp
            .iter()
            .map(|a| format!("tcp:{a}"))
            .chain(ssl.map(|a| format!("ssl:{a}")))
            .collect();
        tracing::info!(
            listen = %listening.join(" "),
            metrics = %metrics_address.map_or("off".to_owned(), |a| format!("http://{a}/metrics")),
            "augur is running"
        );
        Ok(Daemon {
            tcp,
            ssl,
            metrics_address,
            desired: desired_rx,
            metrics,
            reload,
            shutdown,
            tasks,
            history: history_thread,
            versions,
        })
    }

    /// The bound TCP listener addresses (with the ports chosen for port 0).
    pub fn tcp_addresses(&self) -> &[SocketAddr] {
        &self.tcp
    }

    /// The bound TLS listener address.
    pub fn ssl_address(&self) -> Option<SocketAddr> {
        self.ssl
    }

    /// The bound metrics endpoint address.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// The desired state as the switches see it.
    pub fn desired(&self) -> watch::Receiver<Option<Arc<Desired>>> {
        self.desired.clone()
    }

    /// Makes and undoes policy versions on every switch.
    pub fn versions(&self) -> Arc<crate::orchestrate::VersionControl> {
        self.versions.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Looks at the policy and inventory files now rather than at the next
    /// poll (SIGHUP).
    pub fn reload(&self) {
        self.reload.notify_waiters();
    }

    /// Stops every task and closes every switch connection; the switches
    /// keep their flows (they are `fail_mode=secure`).
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop in time");
        }
        if let Some(thread) = self.history {
            let joined = tokio::task::spawn_blocking(move || thread.join());
            match tokio::time::timeout(SHUTDOWN_GRACE, joined).await {
                Ok(Ok(Ok(()))) => {}
                Ok(_) => tracing::warn!("the history writer failed"),
                Err(_) => {
                    tracing::warn!("the history writer did not finish its last window in time")
                }
            }
        }
    }

    /// Runs until SIGTERM or SIGINT, then shuts down. SIGHUP rereads the
    /// policy and inventory files.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: rereading the policy and inventory files");
                    self.reload();
                }
            }
        }
        tracing::info!("stopping: switches keep the flows they have");
        self.shutdown().await;
        Ok(())
    }
}

/// The OpenFlow session settings of the configuration.
pub fn session_config(config: &Config) -> SessionConfig {
    SessionConfig {
        handshake_timeout: config.openflow.handshake_timeout.get(),
        echo_interval: config.openflow.echo_interval.get(),
        echo_timeout: config.openflow.echo_timeout.get(),
        request_timeout: config.openflow.request_timeout.get(),
        miss_send_len: config.openflow.miss_send_len,
        ..SessionConfig::default()
    }
}

/// Hands the history writer every VM of the inventory with its labels, at
/// start and whenever the inventory changes.
async fn feed_labels(
    mut inventory: watch::Receiver<crate::inventory::Inventory>,
    sink: observe::HistorySink,
    shutdown: CancellationToken,
) {
    loop {
        let vms = inventory
            .borrow_and_update()
            .vms
            .iter()
            .map(|vm| (augur_flows::Endpoint::vm(&vm.id.0), vm.labels.clone()))
            .collect();
        sink.labels(vms);
        tokio::select! {
            changed = inventory.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
    }
}

/// `augur run --check`: loads the policy, the inventory (from a file) and the
/// TLS files, and compiles, without listening. Returns a summary.
pub fn check(loaded: &Loaded) -> Result<String, StartError> {
    let config = &loaded.config;
    let policy_path = config
        .policy
        .clone()
        .ok_or_else(|| loaded.error("policy", "no policy file given"))?;
    let (policy, _) = sources::read_policy(&policy_path).map_err(StartError::Policy)?;
    if let Some(ssl) = &config.listen.ssl {
        listener::tls_acceptor(ssl, loaded)?;
    }
    let mut summary = format!(
        "{}: {} rules, {} groups, {} endpoints",
        policy_path.display(),
        policy.policy.rules.len(),
        policy.policy.groups.len(),
        policy.policy.endpoints.len()
    );
    match &config.inventory.source {
        config::InventorySource::File(path) => {
            let inventory = sources::read_inventory(path).map_err(StartError::Inventory)?;
            let desired =
                compiler::compile_now(&policy, &inventory, &config.compile, config.mode, 1)
                    .map_err(|e| {
                        StartError::Policy(format!(
                            "{} does not compile against {}: {e}",
                            policy_path.display(),
                            path.display()
                        ))
                    })?;
            summary.push_str(&format!("\npolicy version {:#06x}", desired.version));
            for bridge in &desired.compiled.bridges {
                summary.push_str(&format!(
                    "\n  bridge {} ({:016x}): {} flows, {} meters",
                    bridge.bridge,
                    bridge.datapath_id,
                    bridge.flows.len(),
                    bridge.meters.len()
                ));
            }
            for warning in &desired.compiled.warnings {
                summary.push_str(&format!("\nwarning: {warning}"));
            }
        }
        config::InventorySource::Ovsdb(target) => {
            summary.push_str(&format!(
                "\nthe inventory comes from OVSDB ({target}) at run time: not compiled"
            ));
        }
    }
    Ok(summary)
}
