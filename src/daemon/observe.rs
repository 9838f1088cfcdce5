//! The history writer: one thread owning the [`SignatureStore`], fed records
//! by the switch tasks, closing windows on its own timer. SQLite calls block,
//! so they stay off the async runtime; a full queue drops records (counted)
//! rather than slowing the switch tasks.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augur_flows::{FlowRecord, Timestamp, WindowConfig};

use crate::store::{SignatureStore, StoreSettings};

/// Batches the queue holds before records are dropped.
const QUEUE_BATCHES: usize = 1024;

/// Where switch tasks send their records.
#[derive(Debug, Clone)]
pub struct HistorySink {
    tx: SyncSender<Vec<FlowRecord>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl HistorySink {
    /// Queues `records`; drops them (and counts them) if the writer is behind.
    pub fn send(&self, records: Vec<FlowRecord>) {
        if records.is_empty() {
            return;
        }
        let n = records.len() as u64;
        match self.tx.try_send(records) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let total = self
                    .dropped
                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed)
                    + n;
                tracing::warn!(
                    dropped = total,
                    "the history writer is behind: records dropped"
                );
            }
        }
    }
}

/// The current time as a record timestamp.
pub fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    Timestamp(micros)
}

/// Opens the store in `dir` and starts the writer thread. The thread ends,
/// closing the open window, when every sink is dropped.
pub fn start(dir: &Path, window: Duration) -> anyhow::Result<(HistorySink, JoinHandle<()>)> {
    let length_s = u16::try_from(window.as_secs()).unwrap_or(u16::MAX);
    let window = WindowConfig::with_length(length_s)
        .ok_or_else(|| anyhow::anyhow!("observer.window must be at least 1s"))?;
    let settings = StoreSettings {
        window,
        ..StoreSettings::default()
    };
    let mut store = SignatureStore::open(dir, settings, now().secs())?;
    let tick = Duration::from_secs(u64::from(store.aggregator().config().length_s));
    let (tx, rx) = mpsc::sync_channel::<Vec<FlowRecord>>(QUEUE_BATCHES);
    let thread = std::thread::Builder::new()
        .name("augur-history".into())
        .spawn(move || {
            let mut next_close = std::time::Instant::now() + tick;
            loop {
                let wait = next_close.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(records) => {
                        if let Err(e) = store.ingest(&records) {
                            tracing::warn!("history: records not stored: {e:#}");
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        next_close += tick;
                        match store.close_window(now().secs()) {
                            Ok(rows) => tracing::debug!(rows, "history: window closed"),
                            Err(e) => tracing::warn!("history: window not written: {e:#}"),
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        if let Err(e) = store.close_window(now().secs()) {
                            tracing::warn!("history: last window not written: {e:#}");
                        }
                        return;
                    }
                }
            }
        })?;
    Ok((
        HistorySink {
            tx,
            dropped: Arc::default(),
        },
        thread,
    ))
}
