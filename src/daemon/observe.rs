//! The history writer: one thread owning the [`SignatureStore`], fed records
//! by the switch tasks, closing windows on its own timer. SQLite calls block,
//! so they stay off the async runtime; a full queue drops records (counted)
//! rather than slowing the switch tasks.
//!
//! With `[orchestrate]` enabled the thread also keeps the predictor and the
//! scan detector (they read the live aggregator, which only this thread
//! holds) and answers the decision loop's [`CycleRequest`]s with the
//! cycle's recommendations and the harm measurements.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use augur_flows::{Endpoint, EndpointId, FlowKey, FlowRecord, Timestamp, WindowConfig};

use crate::orchestrate::engine::{Candidate, Concerns, Observation};
use crate::policy::Policy;
use crate::policy::coverage::Coverage;
use crate::predict::{CheckedPredictorParams, Predictor, ScanDetector, ScanParams};
use crate::recommend::{RecommendInput, RecommendSettings, recommend};
use crate::risk::RiskSettings;
use crate::store::learn::learn_history;
use crate::store::{SignatureStore, StoreSettings};

/// Seconds between the prediction cycles the stored history is learned
/// with at start: those of `augur recommend`, so that both recommend the
/// same from the same history. (The predictor learns at its snapshots,
/// every `snapshot_every_s`; cycles in between only age the scan flags.)
pub const LEARN_CYCLE_S: i64 = 300;

/// What the writer thread is sent.
#[derive(Debug)]
enum Message {
    /// A switch task's records.
    Records(Vec<FlowRecord>),
    /// The decision loop asks for a cycle.
    Cycle(CycleRequest),
    /// The inventory's VMs and their labels, whenever it changes.
    Labels(Vec<(Endpoint, BTreeMap<String, String>)>),
}

/// The decision loop's request for one cycle.
#[derive(Debug)]
pub struct CycleRequest {
    /// The policy in force (the file and the versions applied on top).
    pub policy: Policy,
    /// The pairs whose volume the harm rules need.
    pub pairs: BTreeSet<(Endpoint, Endpoint)>,
    /// Unix seconds.
    pub now: i64,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<CycleReply>,
}

/// The answer to a [`CycleRequest`].
#[derive(Debug)]
pub struct CycleReply {
    /// The cycle's recommendations (none while the model is untrained).
    pub candidates: Vec<Candidate>,
    /// The harm measurements.
    pub observation: Observation,
    /// Whether the model is trained.
    pub trained: bool,
}

/// Settings of the predictor the writer thread keeps for the decision
/// loop.
#[derive(Debug, Clone)]
pub struct BrainSettings {
    /// The predictor's parameters.
    pub predictor: CheckedPredictorParams,
    /// Scan detection.
    pub scan: ScanParams,
    /// Recommendation settings.
    pub recommend: RecommendSettings,
    /// Risk settings and operator overrides.
    pub risk: RiskSettings,
    /// Seconds between the prediction cycles the stored history is learned
    /// with at start.
    pub learn_cycle_s: i64,
}

/// The predictor and what it needs besides the aggregator.
struct Brain {
    predictor: Predictor,
    scans: ScanDetector,
    recommend: RecommendSettings,
    risk: RiskSettings,
    /// The sources whose scan was reported, with the start of that scan:
    /// each scan is logged once, when it is first flagged.
    reported_scans: HashMap<EndpointId, i64>,
}

impl Brain {
    /// Trains on the stored history, as `augur recommend` does.
    fn learn(store: &SignatureStore, settings: BrainSettings) -> anyhow::Result<Brain> {
        let learned = learn_history(
            store.store(),
            settings.predictor,
            settings.scan,
            settings.learn_cycle_s,
        )?;
        tracing::info!(
            cycles = learned.cycles,
            unwatched_gaps = learned.unobserved.len(),
            "predictor trained on the stored history (not on the time augur was not running)"
        );
        Ok(Brain {
            predictor: learned.predictor,
            scans: learned.scans,
            recommend: settings.recommend,
            risk: settings.risk,
            reported_scans: HashMap::new(),
        })
    }

    /// Feeds the scan detector the records about to be ingested; `novel`
    /// is whether each key was unknown before them.
    fn observe(&mut self, store: &SignatureStore, records: &[FlowRecord], novel: &[bool]) {
        for (record, novel) in records.iter().zip(novel) {
            if let Some(key) = key_if_known(store, record) {
                self.scans
                    .observe(&key, record.ts.secs(), record.bytes, record.verdict, *novel);
            }
        }
        self.report_scans(store);
    }

    /// Logs every scan flagged since the last call: a security event for
    /// the operator, and the reason augur applies nothing involving the
    /// source by itself.
    fn report_scans(&mut self, store: &SignatureStore) {
        let endpoints = store.aggregator().endpoints();
        for (id, flag) in self.scans.flagged() {
            if self.reported_scans.get(&id) == Some(&flag.since) {
                continue;
            }
            self.reported_scans.insert(id, flag.since);
            let source = endpoints
                .endpoint(id)
                .map_or_else(|| format!("endpoint {}", id.0), ToString::to_string);
            tracing::warn!(
                %source,
                targets = flag.targets,
                hosts = flag.hosts,
                ports = flag.ports,
                "{source} is scanning ({} hosts, {} ports): nothing involving it is applied \
                 without review, and its attempts are not learned from",
                flag.hosts,
                flag.ports
            );
        }
        let flagged: HashSet<EndpointId> = self.scans.flagged().map(|(id, _)| id).collect();
        self.reported_scans.retain(|id, _| flagged.contains(id));
    }

    fn cycle(&mut self, store: &SignatureStore, request: CycleRequest) {
        let aggregator = store.aggregator();
        let at = aggregator.closed_until().min(request.now);
        self.scans.expire(at);
        let set = self.predictor.cycle(aggregator, &self.scans, at);
        let scanning = self.scans.scanning(at);
        let mut candidates = Vec::new();
        if set.trained {
            let coverage = Coverage::new(&request.policy, aggregator.endpoints());
            let input = RecommendInput {
                predictions: &set.predictions,
                aggregator,
                policy: &request.policy,
                coverage: &coverage,
                scanning: &scanning,
            };
            candidates = recommend(&input, &self.recommend, &self.risk, request.now)
                .into_iter()
                .map(|recommendation| Candidate {
                    concerns: Concerns::of_keys(aggregator, &recommendation.keys),
                    recommendation,
                })
                .collect();
        }
        let observation = Observation::measure(aggregator, &request.pairs, &scanning, request.now);
        // The loop may have given up waiting; nothing to do then.
        let _ = request.reply.send(CycleReply {
            candidates,
            observation,
            trained: set.trained,
        });
    }
}

/// The key of a record whose endpoints the aggregator knows.
fn key_if_known(store: &SignatureStore, record: &FlowRecord) -> Option<FlowKey> {
    let endpoints = store.aggregator().endpoints();
    Some(FlowKey {
        src: endpoints.get(&record.src)?,
        dst: endpoints.get(&record.dst)?,
        protocol: record.protocol,
        service_port: record.service_port(),
    })
}

/// Where the decision loop sends its cycle requests.
#[derive(Debug, Clone)]
pub struct CycleSender {
    tx: SyncSender<Message>,
}

impl CycleSender {
    /// Queues `request`; `false` (and the request's reply dropped) if the
    /// writer is behind or gone.
    pub fn send(&self, request: CycleRequest) -> bool {
        self.tx.try_send(Message::Cycle(request)).is_ok()
    }
}

/// Batches the queue holds before records are dropped.
const QUEUE_BATCHES: usize = 1024;

/// Where switch tasks send their records.
#[derive(Debug, Clone)]
pub struct HistorySink {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
    /// Switches connected now: with none, nobody watches the network.
    switches: Arc<AtomicUsize>,
}

/// What the history thread knows of whether augur sees the network: a
/// window closed with no switch connected, or after records were dropped,
/// counts as unwatched (see [`SignatureStore::set_watching`]).
#[derive(Debug)]
struct Sight {
    switches: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    /// Records dropped up to the last window close.
    dropped_seen: u64,
    /// Whether the last window close counted as watched.
    watching: bool,
}

impl Sight {
    /// Sight of the switches counted in `switches`, whose dropped records
    /// are counted in `dropped`.
    fn new(switches: Arc<AtomicUsize>, dropped: Arc<AtomicU64>) -> Sight {
        Sight {
            dropped_seen: dropped.load(Ordering::Relaxed),
            switches,
            dropped,
            watching: true,
        }
    }

    /// Whether the window closing at `now_s` counts as watched; says so
    /// when that changes.
    fn watching(&mut self, now_s: i64) -> bool {
        let dropped = self.dropped.load(Ordering::Relaxed);
        let lost = dropped > self.dropped_seen;
        self.dropped_seen = dropped;
        let connected = self.switches.load(Ordering::Relaxed) > 0;
        let watching = connected && !lost;
        if watching != self.watching {
            if watching {
                tracing::info!(now_s, "history: watching the network again");
            } else {
                let why = if connected {
                    "records were dropped"
                } else {
                    "no switch is connected"
                };
                tracing::warn!(
                    now_s,
                    "history: {why}; until that changes, this time counts as unwatched and \
                     is not learned from"
                );
            }
        }
        self.watching = watching;
        watching
    }
}

/// A connected switch, counted while it lives (see [`HistorySink::watch`]).
#[derive(Debug)]
pub struct Watching(Arc<AtomicUsize>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HistorySink {
    /// Counts a connected switch until the guard is dropped. The history
    /// records the time when no switch was connected as unwatched (see
    /// [`SignatureStore::set_watching`]).
    pub fn watch(&self) -> Watching {
        self.switches.fetch_add(1, Ordering::Relaxed);
        Watching(self.switches.clone())
    }

    /// Hands the writer the inventory's VMs with their labels. A VM is
    /// known to the history (and to the predictor, which proposes for it
    /// what its label peers use) from the moment it appears in the
    /// inventory, before its first packet. Never blocks: a full queue
    /// defers the labels to the next inventory change.
    pub fn labels(&self, vms: Vec<(Endpoint, BTreeMap<String, String>)>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Message::Labels(vms)) {
            tracing::warn!("the history writer is behind: the inventory's labels wait");
        }
    }

    /// Queues `records`; drops them (and counts them) if the writer is behind.
    pub fn send(&self, records: Vec<FlowRecord>) {
        if records.is_empty() {
            return;
        }
        let n = records.len() as u64;
        match self.tx.try_send(Message::Records(records)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
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

/// What [`start`] starts.
#[derive(Debug)]
pub struct HistoryWriter {
    /// For the switch tasks.
    pub sink: HistorySink,
    /// For the decision loop, when it runs.
    pub cycles: Option<CycleSender>,
    /// The thread.
    pub thread: JoinHandle<()>,
}

/// Opens the store in `dir` and starts the writer thread; with `brain`,
/// trains the predictor on the stored history first. The thread ends,
/// closing the open window, when every sink and cycle sender is dropped.
pub fn start(
    dir: &Path,
    window: Duration,
    brain: Option<BrainSettings>,
) -> anyhow::Result<HistoryWriter> {
    let length_s = u16::try_from(window.as_secs()).unwrap_or(u16::MAX);
    let window = WindowConfig::with_length(length_s)
        .ok_or_else(|| anyhow::anyhow!("observer.window must be at least 1s"))?;
    let settings = StoreSettings {
        window,
        ..StoreSettings::default()
    };
    let mut store = SignatureStore::open(dir, settings, now().secs())?;
    let tick = Duration::from_secs(u64::from(store.aggregator().config().length_s));
    let with_brain = brain.is_some();
    let (tx, rx) = mpsc::sync_channel::<Message>(QUEUE_BATCHES);
    let switches = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut sight = Sight::new(switches.clone(), dropped.clone());
    let thread = std::thread::Builder::new()
        .name("augur-history".into())
        .spawn(move || {
            // Learned here rather than before the thread starts, so that
            // switches are enforced while it runs; records and cycle
            // requests wait in the queue meanwhile.
            let mut brain = brain.and_then(|settings| match Brain::learn(&store, settings) {
                Ok(brain) => Some(brain),
                Err(e) => {
                    tracing::error!(
                        "the stored history could not be learned: {e:#}; augur makes no \
                         changes by itself until restarted"
                    );
                    None
                }
            });
            let mut next_close = std::time::Instant::now() + tick;
            // The labels last stored per VM, so that an unchanged inventory
            // writes nothing.
            let mut labelled: HashMap<Endpoint, BTreeMap<String, String>> = HashMap::new();
            loop {
                // Checked before the queue, which a busy network never
                // empties: windows close and watched time is kept on time.
                let wait = next_close.saturating_duration_since(std::time::Instant::now());
                if wait.is_zero() {
                    next_close += tick;
                    let now_s = now().secs();
                    let watching = sight.watching(now_s);
                    if let Err(e) = store.set_watching(watching, now_s) {
                        tracing::warn!("history: watched time not written: {e:#}");
                    }
                    match store.close_window(now_s) {
                        Ok(rows) => tracing::debug!(rows, "history: window closed"),
                        Err(e) => tracing::warn!("history: window not written: {e:#}"),
                    }
                    continue;
                }
                match rx.recv_timeout(wait) {
                    Ok(Message::Records(records)) => {
                        let novel: Vec<bool> = match brain {
                            Some(_) => records
                                .iter()
                                .map(|r| {
                                    key_if_known(&store, r).is_none_or(|k| {
                                        store.aggregator().activity_of(&k).is_none()
                                    })
                                })
                                .collect(),
                            None => Vec::new(),
                        };
                        if let Err(e) = store.ingest(&records) {
                            tracing::warn!("history: records not stored: {e:#}");
                        }
                        if let Some(brain) = brain.as_mut() {
                            brain.observe(&store, &records, &novel);
                        }
                    }
                    Ok(Message::Labels(vms)) => {
                        for (vm, labels) in vms {
                            if labelled.get(&vm) == Some(&labels) {
                                continue;
                            }
                            match store.set_labels(&vm, &labels) {
                                Ok(()) => {
                                    labelled.insert(vm, labels);
                                }
                                Err(e) => tracing::warn!("history: labels not stored: {e:#}"),
                            }
                        }
                    }
                    Ok(Message::Cycle(request)) => match brain.as_mut() {
                        Some(brain) => brain.cycle(&store, request),
                        None => drop(request),
                    },
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        if let Err(e) = store.close_window(now().secs()) {
                            tracing::warn!("history: last window not written: {e:#}");
                        }
                        return;
                    }
                }
            }
        })?;
    let cycles = with_brain.then(|| CycleSender { tx: tx.clone() });
    Ok(HistoryWriter {
        sink: HistorySink {
            tx,
            dropped,
            switches,
        },
        cycles,
        thread,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_window_is_watched_with_a_switch_connected_and_no_record_dropped() {
        let switches = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut sight = Sight::new(switches.clone(), dropped.clone());
        assert!(!sight.watching(60), "no switch");
        switches.store(2, Ordering::Relaxed);
        assert!(sight.watching(120));
        dropped.fetch_add(10, Ordering::Relaxed);
        assert!(!sight.watching(180), "records dropped in the window");
        assert!(sight.watching(240), "none since");
    }

    /// The writer's own clock and thread, with one-second windows: while
    /// no switch is connected, nothing is watched.
    #[test]
    fn time_without_a_connected_switch_is_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        let writer = start(dir.path(), Duration::from_secs(1), None).unwrap();
        let connected = writer.sink.watch();
        std::thread::sleep(Duration::from_millis(2500));
        drop(connected);
        std::thread::sleep(Duration::from_millis(4500));
        let connected = writer.sink.watch();
        std::thread::sleep(Duration::from_millis(2500));
        drop((connected, writer.sink, writer.cycles));
        writer.thread.join().unwrap();
        let settings = StoreSettings {
            window: WindowConfig::with_length(1).unwrap(),
            ..StoreSettings::default()
        };
        let gaps = Store::open(dir.path(), settings)
            .unwrap()
            .unobserved(2)
            .unwrap();
        // Four or five window closes without a switch: the span ends at the
        // last close with one and resumes at the first close with one again.
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let (from, to) = gaps[0];
        assert!((3..=7).contains(&(to - from)), "{gaps:?}");
    }
}
