//! Where the policy and the inventory come from: files, read at start-up
//! (where a bad one stops the daemon) and reread when their content changes
//! (where a bad one is reported and the last good one stays in force), and,
//! for the inventory, OVSDB.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::{InventoryConfig, InventorySource};
use super::metrics::Metrics;
use super::plan::Fnv1a;
use crate::inventory::Inventory;
use crate::policy::Policy;

/// A parsed policy and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// Its file.
    pub path: PathBuf,
}

/// Reads and parses a policy file; `ttl`s count from now. Also returns the
/// hash of the content, for [`watch_policy`]. The error is
/// `file:line:column: reason`.
pub fn read_policy(path: &Path) -> Result<(LoadedPolicy, u64), String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the policy file {}: {e}", path.display()))?;
    Ok((parse_policy(path, &bytes)?, Fnv1a::hash(&bytes)))
}

fn parse_policy(path: &Path, bytes: &[u8]) -> Result<LoadedPolicy, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{}: the policy file is not UTF-8: {e}", path.display()))?;
    let policy = Policy::parse(text, &path.display().to_string(), SystemTime::now())
        .map_err(|e| e.to_string())?;
    Ok(LoadedPolicy {
        policy,
        path: path.to_path_buf(),
    })
}

/// Reads an inventory file: JSON when its name ends in `.json`, TOML
/// otherwise. The error is `file:line:column: reason`.
pub fn read_inventory(path: &Path) -> Result<Inventory, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the inventory file {}: {e}", path.display()))?;
    parse_inventory(path, &bytes)
}

fn parse_inventory(path: &Path, bytes: &[u8]) -> Result<Inventory, String> {
    let shown = path.display();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return serde_json::from_slice(bytes)
            .map_err(|e| format!("{shown}:{}:{}: {e}", e.line(), e.column()));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{shown}: the inventory file is not UTF-8: {e}"))?;
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start).min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before, |i| before.get(i + 1..).unwrap_or(""))
            .chars()
            .count()
            + 1;
        format!("{shown}:{line}:{column}: {}", e.message().trim_end())
    })
}

/// A running inventory source: the current inventory and the task keeping
/// it current.
#[derive(Debug)]
pub struct InventoryFeed {
    /// The inventory, replaced as it changes.
    pub inventory: watch::Receiver<Inventory>,
    /// The task behind it.
    pub task: JoinHandle<()>,
}

/// Starts the inventory source the configuration names.
pub async fn start_inventory(
    config: &InventoryConfig,
    reload_interval: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<InventoryFeed, String> {
    match &config.source {
        InventorySource::File(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the inventory file {}: {e}", path.display()))?;
            let inventory = parse_inventory(path, &bytes)?;
            metrics.load("inventory", true);
            let (tx, rx) = watch::channel(inventory);
            let task = tokio::spawn(watch_file(
                Watch {
                    path: path.clone(),
                    what: "inventory",
                    last: Some(Fnv1a::hash(&bytes)),
                    interval: reload_interval,
                    wake,
                    metrics,
                    shutdown,
                },
                parse_inventory,
                tx,
            ));
            Ok(InventoryFeed {
                inventory: rx,
                task,
            })
        }
        InventorySource::Ovsdb(target) => {
            // Live: the watcher publishes a new inventory on every change of
            // the monitored rows (no polling), and reconnects by itself.
            let _ = (reload_interval, wake);
            let (inventory, watcher) =
                crate::inventory::ovsdb::watch(target, config.settings.clone())
                    .await
                    .map_err(|e| format!("inventory: {e}"))?;
            metrics.load("inventory", true);
            let mut watcher = watcher;
            let task = tokio::spawn(async move {
                tokio::select! {
                    ended = &mut watcher => match ended {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::error!("the OVSDB inventory stopped: {e}"),
                        Err(e) => tracing::error!("the OVSDB inventory task failed: {e}"),
                    },
                    () = shutdown.cancelled() => watcher.abort(),
                }
            });
            Ok(InventoryFeed { inventory, task })
        }
    }
}

/// Starts rereading the policy file, last read with content hash
/// `initial_bytes_hash`.
pub fn watch_policy(
    initial_bytes_hash: u64,
    path: PathBuf,
    reload_interval: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tx: watch::Sender<Arc<LoadedPolicy>>,
) -> JoinHandle<()> {
    tokio::spawn(watch_file(
        Watch {
            path,
            what: "policy",
            last: Some(initial_bytes_hash),
            interval: reload_interval,
            wake,
            metrics,
            shutdown,
        },
        |path, bytes| parse_policy(path, bytes).map(Arc::new),
        tx,
    ))
}

struct Watch {
    path: PathBuf,
    what: &'static str,
    /// Hash of the content last parsed (good or bad), so that a bad file is
    /// reported once, not at every look.
    last: Option<u64>,
    interval: Duration,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

/// Polls a file: simple, and it works on every filesystem and with editors
/// that replace files rather than write them.
async fn watch_file<T, P>(mut w: Watch, parse: P, tx: watch::Sender<T>)
where
    P: Fn(&Path, &[u8]) -> Result<T, String>,
{
    let mut unreadable = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(w.interval) => {}
            () = w.wake.notified() => {}
            () = w.shutdown.cancelled() => return,
        }
        let path = w.path.clone();
        let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
        let bytes = match read {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                if !unreadable {
                    tracing::warn!(
                        "cannot read the {} file {}: {e}; the last good one stays in force",
                        w.what,
                        w.path.display()
                    );
                    unreadable = true;
                }
                continue;
            }
            Err(e) => {
                tracing::error!("reading the {} file failed: {e}", w.what);
                continue;
            }
        };
        unreadable = false;
        let hash = Fnv1a::hash(&bytes);
        if w.last == Some(hash) {
            continue;
        }
        w.last = Some(hash);
        match parse(&w.path, &bytes) {
            Ok(value) => {
                tracing::info!("{} file {} changed: reloaded", w.what, w.path.display());
                w.metrics.load(w.what, true);
                tx.send_replace(value);
            }
            Err(e) => {
                tracing::error!("{e}; the last good {} stays in force", w.what);
                w.metrics.load(w.what, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_errors_are_located() {
        let toml = "[[bridges]]\nname = \"br0\"\ndatapath_id = \"one\"\n";
        let e = parse_inventory(Path::new("inv.toml"), toml.as_bytes()).unwrap_err();
        assert!(e.starts_with("inv.toml:3:15: "), "{e}");
        let json = "{\"bridges\": [{\"name\": \"br0\"}]}";
        let e = parse_inventory(Path::new("inv.json"), json.as_bytes()).unwrap_err();
        assert!(e.starts_with("inv.json:1:"), "{e}");
        assert!(e.contains("datapath_id"), "{e}");
        let good = include_str!("../../examples/policy/three-tier-inventory.toml");
        let inventory = parse_inventory(Path::new("inv.toml"), good.as_bytes()).unwrap();
        assert_eq!(inventory.bridges.len(), 2);
    }

    #[test]
    fn policy_errors_are_located() {
        let e = parse_policy(Path::new("p.toml"), b"[[allow]]\nfrom = \"x\"\n").unwrap_err();
        assert!(e.starts_with("p.toml:"), "{e}");
        let e = parse_policy(Path::new("p.toml"), &[0xff, 0xfe]).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
