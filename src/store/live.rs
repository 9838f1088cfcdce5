//! The history store and the live signatures together: what the observer
//! feeds and the predictor reads.
//!
//! Everything here is synchronous and takes the time from its caller, so
//! the async daemon calls it from a blocking task (or inline: a window close
//! is one SQLite transaction) and tests drive it with made-up clocks.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use augur_flows::{Aggregator, Endpoint, FlowRecord, Signature, WindowRow};

use super::{RetentionReport, Store, StoreSettings};

/// Signatures kept up to date from records, backed by the history store.
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// use augur::store::{SignatureStore, StoreSettings};
/// # let records: Vec<augur_flows::FlowRecord> = Vec::new();
/// # let now = 1_700_000_000;
/// let mut history = SignatureStore::open("/var/lib/augur/history".as_ref(), StoreSettings::default(), now)?;
/// history.ingest(&records)?;          // each poll's records
/// history.close_window(now + 60)?;    // on the window timer
/// for signature in history.aggregator().pair_signatures() { /* ... */ }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SignatureStore {
    store: Store,
    aggregator: Aggregator,
    /// Closed rows whose write failed, retried with the next write.
    unwritten: Vec<WindowRow>,
    /// Whether this run is watching the network, for the store's watched
    /// spans.
    watch: Watch,
}

/// Whether a [`SignatureStore`] is watching the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Opened to report on its history: it records no watched time.
    Report,
    /// Watching since then (Unix seconds): each window close extends the
    /// span that starts there.
    Since(i64),
    /// Not watching (no switch connected, records dropped): the time
    /// until watching resumes is a gap.
    Paused,
}

impl SignatureStore {
    /// Opens the store in `dir` to watch the network from `now_s` (Unix
    /// seconds, the caller's clock) and rebuilds the signatures from every
    /// row it holds. The time since the last stored window counts as quiet
    /// for the signatures; for learning, the store keeps that nobody watched
    /// it (see [`Store::unobserved`]).
    pub fn open(dir: &Path, settings: StoreSettings, now_s: i64) -> anyhow::Result<SignatureStore> {
        let mut store = Store::open(dir, settings)?;
        let mut aggregator = Aggregator::new(store.settings().window);
        store.replay(&mut aggregator)?;
        aggregator.advance_clock(now_s);
        store.observed(now_s, now_s)?;
        Ok(SignatureStore {
            store,
            aggregator,
            unwritten: Vec::new(),
            watch: Watch::Since(now_s),
        })
    }

    /// Opens the store and rebuilds the signatures up to the last stored
    /// window, without moving the clock (for reports on imported history).
    pub fn open_at_last_window(
        dir: &Path,
        settings: StoreSettings,
    ) -> anyhow::Result<SignatureStore> {
        let store = Store::open(dir, settings)?;
        let mut aggregator = Aggregator::new(store.settings().window);
        store.replay(&mut aggregator)?;
        Ok(SignatureStore {
            store,
            aggregator,
            unwritten: Vec::new(),
            watch: Watch::Report,
        })
    }

    /// Adds oriented records. A record past the open window closes it, and
    /// the closed window is written before this returns.
    pub fn ingest(&mut self, records: &[FlowRecord]) -> anyhow::Result<()> {
        self.aggregator.ingest(records);
        self.flush().map(|_| ())
    }

    /// Closes the windows that end at or before `now_s` and writes them in
    /// one transaction, and notes that this run watched until `now_s` (if
    /// it is watching). Returns how many rows were written.
    pub fn close_window(&mut self, now_s: i64) -> anyhow::Result<usize> {
        self.aggregator.close_window(now_s);
        let written = self.flush()?;
        if let Watch::Since(since) = self.watch {
            self.store
                .observed(since, now_s)
                .context("the window's rows are written, the watched span is not")?;
        }
        Ok(written)
    }

    /// Notes whether this run can see the network from `now_s`: with every
    /// switch disconnected (an OVS restart, a controller address changed)
    /// augur records nothing, and that time must not look quiet to the
    /// predictor any more than time augur was stopped. Watching ends at the
    /// last window close before it stopped, and resumes as a new span from
    /// `now_s`. A store opened for reports ignores this.
    pub fn set_watching(&mut self, watching: bool, now_s: i64) -> anyhow::Result<()> {
        match (self.watch, watching) {
            (Watch::Since(_), false) => self.watch = Watch::Paused,
            (Watch::Paused, true) => {
                self.store.observed(now_s, now_s)?;
                self.watch = Watch::Since(now_s);
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes closed rows (and any a failed write left behind).
    fn flush(&mut self) -> anyhow::Result<usize> {
        let mut rows = std::mem::take(&mut self.unwritten);
        rows.extend(self.aggregator.take_closed());
        if rows.is_empty() {
            return Ok(0);
        }
        match self.store.write_rows(self.aggregator.endpoints(), &rows) {
            Ok(()) => Ok(rows.len()),
            Err(err) => {
                // Signatures already include these rows; keep them so the
                // history catches up once the disk does.
                self.unwritten = rows;
                Err(err)
            }
        }
    }

    /// Sets the labels of a VM, in the signatures from now on and in the
    /// store for later rebuilds.
    pub fn set_labels(
        &mut self,
        endpoint: &Endpoint,
        labels: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        self.store.set_labels(endpoint, labels)?;
        self.aggregator.endpoints_mut().set_labels(
            endpoint,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        Ok(())
    }

    /// Applies the retention policy (see [`Store::apply_retention`]).
    pub fn apply_retention(&mut self, now_s: i64) -> anyhow::Result<RetentionReport> {
        self.store.apply_retention(now_s)
    }

    /// The live state, for queries.
    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }

    /// The signature of two endpoints, if they ever talked.
    pub fn pair_signature(&self, src: &Endpoint, dst: &Endpoint) -> Option<Signature> {
        let endpoints = self.aggregator.endpoints();
        self.aggregator
            .pair_signature(endpoints.get(src)?, endpoints.get(dst)?)
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Closed rows not yet on disk (a failed write is retried by the next
    /// ingest or window close).
    pub fn unwritten_rows(&self) -> usize {
        self.unwritten.len()
    }
}
