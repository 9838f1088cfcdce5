//! The live inventory: a monitor of the switch's `Open_vSwitch` database,
//! rebuilt into an [`Inventory`] whenever a change arrives.
//!
//! ```no_run
//! # async fn example() -> Result<(), augur::inventory::InventoryError> {
//! use augur::inventory::{InventorySettings, ovsdb};
//!
//! let (mut inventory, task) =
//!     ovsdb::watch(ovsdb::DEFAULT_TARGET, InventorySettings::default()).await?;
//! while inventory.changed().await.is_ok() {
//!     println!("{} VMs", inventory.borrow().vms.len());
//! }
//! task.await.ok();
//! # Ok(())
//! # }
//! ```
//!
//! There is no polling: `ovsdb-server` sends each committed change at once,
//! and the watcher applies every change that has arrived before rebuilding,
//! so a burst of changes costs one rebuild. The [`augur_ovsdb::client`]
//! reconnects by itself and resynchronises the replica from a fresh
//! snapshot; meanwhile the last inventory stands, as the switch's flows do.

use std::collections::BTreeSet;

use augur_ovsdb::client::{self, Client, ClientConfig, Monitor};
use augur_ovsdb::schema::ConstraintError;
use augur_ovsdb::vswitch;
use augur_ovsdb::{MonitorEvent, MonitorSpec, RequestError};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::build::{Built, InventoryWarning, VswitchTables, build};
use super::model::Inventory;
use super::settings::{InventorySettings, SettingsError};

/// Where `ovs-vsctl` finds the database by default.
pub const DEFAULT_TARGET: &str = "unix:/var/run/openvswitch/db.sock";

/// Why the live inventory could not be started or stopped.
#[derive(Debug, Error)]
pub enum InventoryError {
    /// The settings are unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Connecting or a request failed.
    #[error("{}", client_message(target, error))]
    Client {
        /// The database target.
        target: String,
        /// The client's error.
        error: client::Error,
    },
    /// The server's schema lacks a table or column the inventory reads.
    #[error("OVSDB at {target} is not a usable Open_vSwitch database: {error}")]
    Schema {
        /// The database target.
        target: String,
        /// What is missing.
        error: ConstraintError,
    },
    /// The server refused or ended the monitor.
    #[error("OVSDB at {target} ended the monitor: {error}")]
    MonitorStopped {
        /// The database target.
        target: String,
        /// The server's reason.
        error: RequestError,
    },
    /// The client's connection task has stopped.
    #[error("OVSDB at {target}: the client has shut down")]
    Closed {
        /// The database target.
        target: String,
    },
}

// The underlying errors are part of the message rather than `source()`:
// they already print their own causes, and `{:#}` would repeat them.
fn client_message(target: &str, error: &client::Error) -> String {
    match error {
        // Already names the target, and is the error people will see most.
        client::Error::Connect { .. } | client::Error::Target(_) => error.to_string(),
        other => format!("OVSDB at {target}: {other}"),
    }
}

/// A monitor of the four tables the inventory is built from, with exactly
/// the columns the typed rows read.
pub fn monitor_spec() -> MonitorSpec {
    use vswitch::table_monitor;
    MonitorSpec::monitor_cond(vswitch::DB)
        .table(table_monitor::<vswitch::OpenVSwitch>())
        .table(table_monitor::<vswitch::Bridge>())
        .table(table_monitor::<vswitch::Port>())
        .table(table_monitor::<vswitch::Interface>())
}

/// The inventory of one switch database, kept current from a monitor.
#[derive(Debug)]
pub struct InventoryWatcher {
    target: String,
    // Keeps the connection alive for as long as the watcher is.
    client: Client,
    monitor: Monitor,
    tables: VswitchTables,
    settings: InventorySettings,
    built: Built,
}

impl InventoryWatcher {
    /// Connects to `target` (`unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`,
    /// as `ovs-vsctl --db` takes them) and waits for the first complete
    /// inventory. Fails at once if the database cannot be reached.
    pub async fn connect(
        target: &str,
        settings: InventorySettings,
    ) -> Result<Self, InventoryError> {
        let config = ClientConfig::new(target).map_err(|error| InventoryError::Client {
            target: target.to_owned(),
            error,
        })?;
        Self::connect_with(config, settings).await
    }

    /// [`connect`](Self::connect) with explicit client settings (TLS files,
    /// timeouts, backoff).
    pub async fn connect_with(
        config: ClientConfig,
        settings: InventorySettings,
    ) -> Result<Self, InventoryError> {
        settings.validate()?;
        let target = config.target_list();
        let failed = |error| InventoryError::Client {
            target: target.clone(),
            error,
        };
        let client = Client::connect_with(config).await.map_err(failed)?;
        let schema = client.get_schema(vswitch::DB).await.map_err(failed)?;
        vswitch::check_schema(&schema).map_err(|error| InventoryError::Schema {
            target: target.clone(),
            error,
        })?;
        let monitor = client.monitor(monitor_spec()).await.map_err(failed)?;
        let mut watcher = Self {
            target,
            client,
            monitor,
            tables: VswitchTables::default(),
            settings,
            built: Built::default(),
        };
        loop {
            let event = watcher.monitor.next().await;
            let snapshot = matches!(event, Some(MonitorEvent::Snapshot { .. }));
            watcher.apply(event)?;
            if snapshot {
                break;
            }
        }
        watcher.built = build(&watcher.tables, &watcher.settings);
        Ok(watcher)
    }

    /// The inventory as of the last change, with its warnings.
    pub fn current(&self) -> &Built {
        &self.built
    }

    /// The typed rows the inventory was built from.
    pub fn tables(&self) -> &VswitchTables {
        &self.tables
    }

    /// The connection, for other requests to the same database.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Replaces the settings (a reloaded config file) and rebuilds.
    pub fn set_settings(&mut self, settings: InventorySettings) -> Result<&Built, InventoryError> {
        settings.validate()?;
        self.settings = settings;
        self.built = build(&self.tables, &self.settings);
        Ok(&self.built)
    }

    /// Waits until the inventory or its warnings change, and returns them.
    /// Cancel-safe: it can be a branch of `tokio::select!`.
    pub async fn changed(&mut self) -> Result<&Built, InventoryError> {
        loop {
            let event = self.monitor.next().await;
            let mut relevant = self.apply(event)?;
            // Take everything already queued, so a burst costs one rebuild.
            while let Ok(event) = self.monitor.events().try_recv() {
                relevant |= self.apply(Some(event))?;
            }
            if !relevant {
                continue;
            }
            let built = build(&self.tables, &self.settings);
            if built != self.built {
                self.built = built;
                return Ok(&self.built);
            }
        }
    }

    /// Applies one monitor event to the typed tables; whether it changed a
    /// row of them.
    fn apply(&mut self, event: Option<MonitorEvent>) -> Result<bool, InventoryError> {
        let changes = match event {
            Some(MonitorEvent::Snapshot { changes, .. } | MonitorEvent::Update { changes }) => {
                changes
            }
            Some(MonitorEvent::ConditionChanged { .. })
            | Some(MonitorEvent::Stopped { reason: Ok(()) }) => {
                return Ok(false);
            }
            Some(MonitorEvent::Stopped { reason: Err(error) }) => {
                return Err(InventoryError::MonitorStopped {
                    target: self.target.clone(),
                    error,
                });
            }
            None => {
                return Err(InventoryError::Closed {
                    target: self.target.clone(),
                });
            }
        };
        let mut relevant = false;
        for change in &changes {
            relevant |= self.tables.apply(change);
        }
        Ok(relevant)
    }

    /// Publishes the inventory on a watch channel from a task of its own,
    /// which logs each warning once when it appears, and ends (with `Ok`)
    /// when every receiver is gone.
    pub fn spawn(
        self,
    ) -> (
        watch::Receiver<Inventory>,
        JoinHandle<Result<(), InventoryError>>,
    ) {
        let (tx, rx) = watch::channel(self.built.inventory.clone());
        let task = tokio::spawn(self.publish(tx));
        (rx, task)
    }

    async fn publish(mut self, tx: watch::Sender<Inventory>) -> Result<(), InventoryError> {
        let mut logged = BTreeSet::new();
        let target = self.target.clone();
        log_warnings(&target, &mut logged, &self.built.warnings);
        log_summary(&target, &self.built.inventory);
        loop {
            let built = tokio::select! {
                () = tx.closed() => return Ok(()),
                built = self.changed() => built?,
            };
            log_warnings(&target, &mut logged, &built.warnings);
            let changed = tx.send_if_modified(|published| {
                if *published == built.inventory {
                    false
                } else {
                    published.clone_from(&built.inventory);
                    true
                }
            });
            if changed {
                log_summary(&target, &built.inventory);
            }
        }
    }
}

fn log_summary(target: &str, inventory: &Inventory) {
    tracing::info!(
        target: "augur::inventory",
        db = target,
        bridges = inventory.bridges.len(),
        vms = inventory.vms.len(),
        external_ports = inventory.external_ports.len(),
        "inventory updated"
    );
}

/// Logs the warnings not logged before, and forgets those that went away
/// (so a problem that comes back is logged again).
fn log_warnings(target: &str, logged: &mut BTreeSet<InventoryWarning>, now: &[InventoryWarning]) {
    for warning in now {
        if !logged.contains(warning) {
            tracing::warn!(target: "augur::inventory", db = target, "{warning}");
        }
    }
    *logged = now.iter().cloned().collect();
}

/// Connects to `target`, waits for the first complete inventory, and keeps
/// it current on the returned channel from a task of its own. The task ends
/// with `Ok` once every receiver is dropped, and with an error if the
/// monitor ends (the server refused it, or the client shut down);
/// disconnections in between are the client's to repair, and the channel
/// keeps the last inventory meanwhile. Warnings are logged through
/// `tracing`, each once when it appears.
pub async fn watch(
    target: &str,
    settings: InventorySettings,
) -> Result<
    (
        watch::Receiver<Inventory>,
        JoinHandle<Result<(), InventoryError>>,
    ),
    InventoryError,
> {
    Ok(InventoryWatcher::connect(target, settings).await?.spawn())
}
