//! One switch connection, in its own task: handshake, identify the bridge,
//! then keep its flows equal to the desired table.
//!
//! Each update dumps augur's flows (by cookie mask) and meters, reconciles
//! them with the desired table, and sends the difference: new and changed
//! meters, then the flow deletes and adds as one atomic bundle (ordered
//! messages and a barrier where the switch has no bundles), then meter
//! deletes. Updates run on connect, when the desired state changes, before
//! a capped hard timeout would remove a rule's flows early, every audit
//! interval, and after a failure with backoff. Nothing here decides what to
//! install: that is [`crate::policy`], fitted to the clock by [`super::plan`].
//!
//! A failure of one switch (a bad message, a dead peer, a refused update)
//! ends or delays that switch's task only.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use augur_openflow::meter::{MeterConfig, MeterStats};
use augur_openflow::multipart::FlowStats;
use augur_openflow::session::SessionConfig;
use augur_openflow::{
    Body, Match, Message, MultipartReplyBody, MultipartRequest, MultipartRequestBody, TABLE_ALL,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::compiler::Desired;
use super::config::OpenFlowConfig;
use super::metrics::{
    BridgeLabel, ChangeLabels, ConnectedGuard, DenyLabels, Metrics, TransportLabel,
};
use super::{observe, plan};
use crate::observer::{self, CounterTracker, FlowIdentity, OpeningsLedger, RecentConnections};
use crate::orchestrate::engine::MeterUse;
use crate::policy::{
    Cookie, FlowChange, MeterChanges, Origin, diff_meters, reconcile, to_flow_mods,
};
use crate::switch::{ConnectionEnd, RequestError, SwitchHandle};

/// Polls a vanished counting flow's counters are remembered for its late
/// FLOW_REMOVED.
const COUNTING_GRACE_POLLS: u64 = 3;
/// Connections remembered to tell a resent opening from a new connection.
const RECENT_CONNECTIONS: usize = 65_536;
/// The shortest time a sampled connection is remembered after its last
/// sign of life (SYN retransmissions come 1 s and 3 s after the first).
const RECENT_HOLD_MIN: Duration = Duration::from_secs(5);

/// The longest delay between retries of a failed update.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How a switch reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS with a verified client certificate.
    Ssl,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ssl => "ssl",
        }
    }
}

/// What every switch task shares.
#[derive(Debug)]
pub struct Context {
    /// OpenFlow session settings.
    pub session: SessionConfig,
    /// Audit and retry timing.
    pub openflow: OpenFlowConfig,
    /// The desired state.
    pub desired: watch::Receiver<Option<Arc<Desired>>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Which task serves which datapath.
    pub registry: Registry,
    /// Ends every task.
    pub shutdown: CancellationToken,
    /// Where observed records go (`None`: not observing).
    pub history: Option<super::observe::HistorySink>,
    /// How often augur's flow counters are read while observing.
    pub poll_interval: Duration,
    /// Idle timeout of counting flows, in seconds.
    pub connection_idle: u16,
    /// How the last update of each connected switch ended, by datapath id:
    /// a policy version is in force once every connected bridge has taken
    /// its generation ([`crate::orchestrate::VersionControl`] waits on it).
    pub synced: watch::Sender<BTreeMap<u64, Synced>>,
    /// The counters of each connected switch's rule meters (rate limits),
    /// by datapath id and meter id, as of its last counter poll: the
    /// decision loop's evidence that a limit drops traffic.
    pub meters: watch::Sender<BTreeMap<u64, MeterReadings>>,
}

/// A switch's rule meters' counters, by meter id.
pub type MeterReadings = BTreeMap<u32, MeterUse>;

/// How a switch's last update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The bridge's name.
    pub bridge: String,
    /// The generation of the desired state it was brought to, or failed to.
    pub generation: u64,
    /// Why it failed (`None`: the switch holds that generation).
    pub error: Option<String>,
}

/// The task serving each datapath id: a switch that connects again while
/// its old connection lingers (a half-open TCP connection) takes over, and
/// the old task stops, so that two tasks never update one bridge.
#[derive(Debug, Default)]
pub struct Registry {
    serving: Mutex<HashMap<u64, (u64, oneshot::Sender<()>)>>,
    next_id: AtomicU64,
}

impl Registry {
    fn claim(&self, datapath_id: u64) -> (u64, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, previous)) = serving.insert(datapath_id, (id, tx)) {
            tracing::warn!(
                datapath_id = format_args!("{datapath_id:016x}"),
                "switch connected again while its previous connection was open: \
                 the new connection takes over (two controller targets of one bridge \
                 pointing at augur also do this)"
            );
            let _ = previous.send(());
        }
        (id, rx)
    }

    fn release(&self, datapath_id: u64, id: u64) {
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        if serving
            .get(&datapath_id)
            .is_some_and(|(current, _)| *current == id)
        {
            serving.remove(&datapath_id);
        }
    }
}

/// Releases a registry claim when the task ends, however it ends.
struct Claim {
    ctx: Arc<Context>,
    datapath_id: u64,
    id: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.ctx.registry.release(self.datapath_id, self.id);
        // A switch that is gone holds nothing augur waits for; if another
        // connection of the same bridge took over, it reports again.
        self.ctx.synced.send_modify(|synced| {
            synced.remove(&self.datapath_id);
        });
        self.ctx
            .meters
            .send_if_modified(|meters| meters.remove(&self.datapath_id).is_some());
    }
}

/// Serves one accepted switch connection until it ends or the daemon stops.
pub async fn serve<S>(stream: S, peer: SocketAddr, transport: Transport, ctx: Arc<Context>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    ctx.metrics
        .connections
        .get_or_create(&TransportLabel {
            transport: transport.name().to_owned(),
        })
        .inc();
    let connected = tokio::select! {
        connected = crate::switch::connect(stream, peer, ctx.session.clone()) => connected,
        () = ctx.shutdown.cancelled() => return,
    };
    let (handle, async_rx, task) = match connected {
        Ok(parts) => parts,
        Err(end) => {
            tracing::warn!(%peer, transport = transport.name(), "switch handshake failed: {end}");
            ctx.metrics.error("handshake");
            disconnected(&ctx.metrics, &end);
            return;
        }
    };
    let info = handle.info();
    let datapath_id = info.features.datapath_id;
    tracing::info!(
        %peer,
        transport = transport.name(),
        datapath_id = format_args!("{datapath_id:016x}"),
        version = %info.version,
        "switch connected"
    );
    let (id, superseded) = ctx.registry.claim(datapath_id);
    let _claim = Claim {
        ctx: ctx.clone(),
        datapath_id,
        id,
    };
    let _connected = ConnectedGuard::new(ctx.metrics.clone());
    let _watching = ctx.history.as_ref().map(super::observe::HistorySink::watch);
    let switch = Switch {
        desired: ctx.desired.clone(),
        handle,
        datapath_id,
        bridge: None,
        bundles: true,
        backoff: None,
        warned_unknown: None,
        warned_blocked: None,
        counters: CounterTracker::new(),
        connections: CounterTracker::with_grace(COUNTING_GRACE_POLLS),
        // Longer than a poll interval, so that a connection whose counting
        // flow the polls still see is never taken for a new one.
        recent: RecentConnections::new(
            RECENT_CONNECTIONS,
            u64::try_from(RECENT_HOLD_MIN.max(ctx.poll_interval * 3).as_millis())
                .unwrap_or(u64::MAX),
        ),
        openings: OpeningsLedger::new(),
        clock: std::time::Instant::now(),
        polled: false,
        generation: None,
        ctx: ctx.clone(),
    };
    let why = switch.run(async_rx, task, superseded).await;
    tracing::info!(
        %peer,
        datapath_id = format_args!("{datapath_id:016x}"),
        "switch disconnected: {why}"
    );
}

fn disconnected(metrics: &Metrics, end: &ConnectionEnd) {
    let reason = match end {
        ConnectionEnd::Session(reason) => match reason {
            augur_openflow::session::CloseReason::NoCommonVersion { .. } => "no_common_version",
            augur_openflow::session::CloseReason::HandshakeTimeout => "handshake_timeout",
            augur_openflow::session::CloseReason::EchoTimeout => "echo_timeout",
            augur_openflow::session::CloseReason::ProtocolViolation(_) => "protocol_violation",
        },
        ConnectionEnd::Malformed(_) => "malformed",
        ConnectionEnd::PeerClosed => "peer_closed",
        ConnectionEnd::Io(_) => "io",
        ConnectionEnd::Released => "released",
    };
    metrics
        .disconnects
        .get_or_create(&super::metrics::ReasonLabel {
            reason: reason.to_owned(),
        })
        .inc();
}

/// A failed update, and what it was doing.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("{during}: {error}")]
    Request {
        during: &'static str,
        error: RequestError,
    },
    #[error("{during}: the switch answered with {what}")]
    Unexpected { during: &'static str, what: String },
}

struct Switch {
    ctx: Arc<Context>,
    desired: watch::Receiver<Option<Arc<Desired>>>,
    handle: SwitchHandle,
    datapath_id: u64,
    /// The bridge's name, once the inventory has named it.
    bridge: Option<String>,
    /// Whether to try bundles (until the switch refuses one).
    bundles: bool,
    /// The last retry delay, while updates fail.
    backoff: Option<Duration>,
    /// The generation for which "not in the inventory" was logged.
    warned_unknown: Option<u64>,
    /// The generation for which blocked flows were logged.
    warned_blocked: Option<u64>,
    /// Counters of the previous poll, of every flow but counting flows.
    counters: CounterTracker,
    /// Counters of the previous poll, of counting flows.
    connections: CounterTracker,
    /// Connections sampled or counting recently, by tuple.
    recent: RecentConnections,
    /// Samples of rule flows, to be matched with their counters.
    openings: OpeningsLedger,
    /// The origin of the millisecond clock `recent` runs on.
    clock: std::time::Instant,
    /// Whether the counters' baseline was taken.
    polled: bool,
    /// The generation of the desired state the running update works on.
    generation: Option<u64>,
}

impl Switch {
    async fn run(
        mut self,
        mut async_rx: mpsc::Receiver<Message>,
        mut task: JoinHandle<ConnectionEnd>,
        mut superseded: oneshot::Receiver<()>,
    ) -> String {
        let mut wake = Some(Instant::now());
        let mut async_open = true;
        let mut next_poll = self
            .ctx
            .history
            .is_some()
            .then(|| Instant::now() + self.ctx.poll_interval);
        loop {
            let poll_timer = async {
                match next_poll {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let next_async = async {
                if async_open {
                    async_rx.recv().await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                biased;
                () = self.ctx.shutdown.cancelled() => return "augur is shutting down".into(),
                _ = &mut superseded => return "a new connection from the same switch took over".into(),
                end = &mut task => {
                    return match end {
                        Ok(end) => {
                            disconnected(&self.ctx.metrics, &end);
                            end.to_string()
                        }
                        Err(e) => format!("the connection task failed: {e}"),
                    };
                }
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        return "augur is shutting down".into();
                    }
                    wake = Some(Instant::now());
                }
                msg = next_async => match msg {
                    Some(msg) => self.on_async(msg).await,
                    None => async_open = false,
                },
                () = poll_timer => {
                    next_poll = Some(Instant::now() + self.ctx.poll_interval);
                    let shutdown = self.ctx.shutdown.clone();
                    tokio::select! {
                        () = self.poll_counters(&mut async_rx) => {}
                        () = shutdown.cancelled() => return "augur is shutting down".into(),
                    }
                }
                () = timer => {
                    let shutdown = self.ctx.shutdown.clone();
                    tokio::select! {
                        next = self.update() => {
                            wake = next;
                            // The counters' baseline is taken as soon as
                            // the bridge is known, not a poll interval later.
                            if !self.polled && self.bridge.is_some() && next_poll.is_some() {
                                next_poll = Some(Instant::now());
                            }
                        }
                        () = shutdown.cancelled() => return "augur is shutting down".into(),
                    }
                }
            }
        }
    }

    fn name(&self) -> String {
        self.bridge
            .clone()
            .unwrap_or_else(|| format!("{:016x}", self.datapath_id))
    }

    /// Brings the switch to the desired state; returns when to look again.
    async fn update(&mut self) -> Option<Instant> {
        let started = Instant::now();
        let audit = self.ctx.openflow.audit_interval.get();
        let audit_at = (!audit.is_zero()).then(|| started + audit);
        self.generation = None;
        let result = self.sync().await;
        let generation = self.generation;
        if let (Some(generation), Some(bridge)) = (generation, self.bridge.clone()) {
            let error = result.as_ref().err().map(ToString::to_string);
            let datapath_id = self.datapath_id;
            self.ctx.synced.send_modify(|synced| {
                synced.insert(
                    datapath_id,
                    Synced {
                        bridge,
                        generation,
                        error,
                    },
                );
            });
        }
        match result {
            Ok(refresh) => {
                self.backoff = None;
                let refresh_at = refresh.map(|secs| started + Duration::from_secs(u64::from(secs)));
                [audit_at, refresh_at].into_iter().flatten().min()
            }
            Err(e) => {
                let delay = plan::backoff(
                    self.backoff,
                    self.ctx.openflow.retry_interval.get(),
                    MAX_BACKOFF,
                );
                self.backoff = Some(delay);
                tracing::error!(
                    bridge = %self.name(),
                    "updating the switch failed: {e}; retrying in {}s",
                    delay.as_secs_f64()
                );
                self.count_error(&e);
                Some(started + delay)
            }
        }
    }

    fn count_error(&self, e: &SyncError) {
        let metrics = &self.ctx.metrics;
        match e {
            SyncError::Request { error, .. } => match error {
                RequestError::Rejected(msg) => metrics.error(&error_kind(msg)),
                RequestError::PartlyRejected(all) => {
                    for (_, msg) in all {
                        metrics.error(&error_kind(msg));
                    }
                }
                RequestError::TimedOut => metrics.error("timeout"),
                RequestError::Encode(_) => metrics.error("encode"),
                RequestError::Closed => metrics.error("connection_closed"),
            },
            SyncError::Unexpected { .. } => metrics.error("unexpected_reply"),
        }
    }

    /// One update. `Ok(Some(secs))`: flows must be refreshed in `secs`.
    async fn sync(&mut self) -> Result<Option<u32>, SyncError> {
        let Some(desired) = self.desired.borrow_and_update().clone() else {
            tracing::debug!(bridge = %self.name(), "no policy compiled yet: the switch is left as it is");
            return Ok(None);
        };
        self.generation = Some(desired.generation);
        let Some(bridge) = desired.compiled.by_datapath(self.datapath_id) else {
            if self.warned_unknown != Some(desired.generation) {
                tracing::warn!(
                    datapath_id = format_args!("{:016x}", self.datapath_id),
                    "the switch is not a bridge of the inventory: its flows are left alone \
                     until the inventory names it"
                );
                self.warned_unknown = Some(desired.generation);
            }
            return Ok(None);
        };
        if self.bridge.as_deref() != Some(bridge.bridge.as_str()) {
            tracing::info!(
                datapath_id = format_args!("{:016x}", self.datapath_id),
                bridge = %bridge.bridge,
                "switch identified"
            );
            self.bridge = Some(bridge.bridge.clone());
        }
        let name = bridge.bridge.clone();
        let started = Instant::now();
        let mut installed = self.dump_flows().await?;
        let meters = self.dump_meters().await?;
        let elapsed = plan::elapsed_secs(desired.compiled_at, SystemTime::now());
        let refresh = plan::refresh_expiring(&bridge.flows, &mut installed, elapsed);
        let mut reconciliation = reconcile(&bridge.flows, &installed);
        let aged = plan::age_adds(&mut reconciliation.changes, elapsed);
        let meter_changes = diff_meters(&bridge.meters, &meters, &desired.settings);
        if !reconciliation.blocked.is_empty() && self.warned_blocked != Some(desired.generation) {
            for blocked in &reconciliation.blocked {
                tracing::warn!(
                    bridge = %name,
                    "a flow that is not augur's (cookie {:#x}) holds the place of {}: it is left alone, \
                     and augur's flow is not installed",
                    blocked.foreign_cookie,
                    blocked.desired
                );
            }
            self.warned_blocked = Some(desired.generation);
        }
        let counts = plan::count(&reconciliation.changes);
        let installed_flows = reconciliation.unchanged + counts.adds;
        let wake = [refresh, aged.wake].into_iter().flatten().min();
        let meters_changed = meter_changes.before_flows.len() + meter_changes.after_flows.len();
        if reconciliation.changes.is_empty() && meters_changed == 0 {
            tracing::debug!(
                bridge = %name,
                version = format_args!("{:#06x}", desired.version),
                flows = installed_flows,
                "the switch holds the desired flows"
            );
            self.record(&name, installed_flows, bridge.meters.len(), counts, None);
            return Ok(wake);
        }
        let atomic = self.apply(&reconciliation.changes, meter_changes).await?;
        let took = started.elapsed();
        tracing::info!(
            bridge = %name,
            version = format_args!("{:#06x}", desired.version),
            adds = counts.adds,
            deletes = counts.deletes,
            unchanged = reconciliation.unchanged,
            meters = meters_changed,
            expired = aged.expired,
            atomic,
            ms = took.as_millis() as u64,
            "applied policy version {:#06x}: {} added, {} deleted, {} unchanged in {:.1} ms",
            desired.version,
            counts.adds,
            counts.deletes,
            reconciliation.unchanged,
            took.as_secs_f64() * 1000.0
        );
        self.record(
            &name,
            installed_flows,
            bridge.meters.len(),
            counts,
            Some(took),
        );
        Ok(wake)
    }

    fn record(
        &self,
        bridge: &str,
        flows: usize,
        meters: usize,
        counts: plan::ChangeCount,
        took: Option<Duration>,
    ) {
        let m = &self.ctx.metrics;
        let label = BridgeLabel {
            bridge: bridge.to_owned(),
        };
        m.flows_installed
            .get_or_create(&label)
            .set(i64::try_from(flows).unwrap_or(i64::MAX));
        m.meters_installed
            .get_or_create(&label)
            .set(i64::try_from(meters).unwrap_or(i64::MAX));
        for (change, n) in [("add", counts.adds), ("delete", counts.deletes)] {
            if n > 0 {
                m.flow_changes
                    .get_or_create(&ChangeLabels {
                        bridge: bridge.to_owned(),
                        change: change.to_owned(),
                    })
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
        if let Some(took) = took {
            m.apply_seconds
                .get_or_create(&label)
                .observe(took.as_secs_f64());
        }
    }

    /// Sends the changes; returns whether the flows went in one bundle.
    async fn apply(
        &mut self,
        changes: &[FlowChange],
        meters: MeterChanges,
    ) -> Result<bool, SyncError> {
        let metrics = &self.ctx.metrics;
        if !meters.before_flows.is_empty() {
            metrics.sent("meter_mod", meters.before_flows.len());
            self.handle
                .apply(
                    meters
                        .before_flows
                        .into_iter()
                        .map(Body::MeterMod)
                        .collect(),
                )
                .await
                .map_err(|error| SyncError::Request {
                    during: "adding and changing meters",
                    error,
                })?;
        }
        let mut atomic = false;
        if !changes.is_empty() {
            let bodies = || -> Vec<Body> {
                to_flow_mods(changes)
                    .into_iter()
                    .map(Body::FlowMod)
                    .collect()
            };
            let mut sent = false;
            if self.bundles {
                metrics.sent("bundle_add", changes.len());
                metrics.sent("bundle_control", 2);
                match self.handle.apply_atomically(bodies()).await {
                    Ok(()) => {
                        sent = true;
                        atomic = true;
                    }
                    Err(RequestError::Rejected(e)) if plan::bundles_unsupported(&e) => {
                        tracing::warn!(
                            bridge = %self.name(),
                            "the switch refuses bundles ({e}): its updates go as ordered \
                             messages with a barrier, deletes first, not atomically"
                        );
                        self.bundles = false;
                    }
                    Err(error) => {
                        return Err(SyncError::Request {
                            during: "applying the flow changes in a bundle (nothing was changed)",
                            error,
                        });
                    }
                }
            }
            if !sent {
                metrics.sent("flow_mod", changes.len());
                self.handle
                    .apply(bodies())
                    .await
                    .map_err(|error| SyncError::Request {
                        during: "applying the flow changes",
                        error,
                    })?;
            }
            metrics.sent("barrier_request", 1);
        }
        if !meters.after_flows.is_empty() {
            metrics.sent("meter_mod", meters.after_flows.len());
            self.handle
                .apply(meters.after_flows.into_iter().map(Body::MeterMod).collect())
                .await
                .map_err(|error| SyncError::Request {
                    during: "deleting meters",
                    error,
                })?;
        }
        Ok(atomic)
    }

    /// augur's flows, by cookie mask.
    async fn dump_flows(&self) -> Result<Vec<FlowStats>, SyncError> {
        let during = "dumping augur's flows";
        let (cookie, mask) = Cookie::augur_filter();
        let request = MultipartRequest::flow_stats(TABLE_ALL, cookie, mask, Match::new());
        let mut flows = Vec::new();
        for body in self.multipart(request, during).await? {
            match body {
                MultipartReplyBody::Flow(mut part) => flows.append(&mut part),
                other => {
                    return Err(SyncError::Unexpected {
                        during,
                        what: format!("{:?}", other.mp_type()),
                    });
                }
            }
        }
        Ok(flows)
    }

    /// Every meter (augur's are picked out by id when diffing).
    async fn dump_meters(&self) -> Result<Vec<MeterConfig>, SyncError> {
        let during = "dumping meters";
        let request = MultipartRequest::new(MultipartRequestBody::MeterConfig {
            meter_id: augur_openflow::METER_ALL,
        });
        let mut meters = Vec::new();
        for body in self.multipart(request, during).await? {
            match body {
                MultipartReplyBody::MeterConfig(mut part) => meters.append(&mut part),
                other => {
                    return Err(SyncError::Unexpected {
                        during,
                        what: format!("{:?}", other.mp_type()),
                    });
                }
            }
        }
        Ok(meters)
    }

    async fn multipart(
        &self,
        request: MultipartRequest,
        during: &'static str,
    ) -> Result<Vec<MultipartReplyBody>, SyncError> {
        self.ctx.metrics.sent("multipart_request", 1);
        let replies = self
            .handle
            .request(Body::MultipartRequest(request))
            .await
            .map_err(|error| SyncError::Request { during, error })?;
        let mut bodies = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply.body {
                Body::MultipartReply(r) => {
                    self.ctx.metrics.received("multipart_reply");
                    bodies.push(r.body);
                }
                other => {
                    return Err(SyncError::Unexpected {
                        during,
                        what: other.msg_type(reply.version).to_string(),
                    });
                }
            }
        }
        Ok(bodies)
    }

    /// Milliseconds since the task started, for [`RecentConnections`].
    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Reads augur's flow counters and sends the allowed traffic since the
    /// last poll to the history: rule flows' deltas (less the openings
    /// that were sampled), and each counting flow's delta, so that a long
    /// connection is recorded window by window while it runs.
    async fn poll_counters(&mut self, async_rx: &mut mpsc::Receiver<Message>) {
        let Some(history) = self.ctx.history.clone() else {
            return;
        };
        let Some(desired) = self.desired.borrow().clone() else {
            return;
        };
        let Some(bridge) = self.bridge.clone() else {
            return;
        };
        let flows = match self.dump_flows().await {
            Ok(flows) => flows,
            Err(e) => {
                tracing::debug!(bridge = %bridge, "counter poll failed: {e}");
                return;
            }
        };
        // Samples and FLOW_REMOVEDs the switch sent before its reply are
        // taken first: the reply's counters already include them. Only
        // those queued now, so that a stream of new ones cannot hold the
        // poll up.
        for _ in 0..async_rx.len() {
            let Ok(msg) = async_rx.try_recv() else {
                break;
            };
            self.on_async(msg).await;
        }
        let (counting, rules): (Vec<&FlowStats>, Vec<&FlowStats>) = flows.iter().partition(|f| {
            Cookie::from_raw(f.cookie).and_then(Cookie::origin) == Some(Origin::Counting)
        });
        if !self.polled {
            // The flows' counts so far may be recorded already (by augur
            // before a restart, or by the task of an earlier connection):
            // the first poll is the baseline, later ones give deltas.
            self.polled = true;
            let (_, rules) = self.counters.update(rules);
            let (_, counting) = self.connections.update(counting);
            tracing::debug!(
                bridge = %bridge,
                flows = rules.flows,
                connections = counting.flows,
                "counters' baseline taken"
            );
            return;
        }
        let (deltas, polled) = self.counters.update(rules);
        let deltas = self.openings.settle(deltas);
        let bridge: Arc<str> = Arc::from(bridge.as_str());
        let now = observe::now();
        let (mut records, summary) =
            observer::allowed_records(&deltas, &desired.targets, now, &bridge);
        let now_ms = self.now_ms();
        for flow in &counting {
            if let Some(tuple) = observer::counted_connection(flow.cookie, &flow.match_) {
                self.recent.touch(tuple, now_ms);
            }
        }
        let (counted, _) = self.connections.update(counting);
        let counted_records = counted.iter().filter_map(|delta| {
            let tuple = observer::counted_connection(delta.flow.cookie, &delta.flow.match_)?;
            observer::counted_record(
                &tuple,
                delta.packets,
                delta.bytes,
                &desired.inventory,
                &bridge,
                now,
            )
        });
        records.extend(counted_records);
        tracing::debug!(
            bridge = %bridge,
            flows = polled.flows,
            restarted = polled.restarted,
            vanished = polled.vanished,
            records = summary.records,
            unattributed = summary.unattributed,
            connections = self.connections.len(),
            "counters polled"
        );
        history.send(records);
        self.poll_meters(&desired, &bridge).await;
    }

    /// Reads the counters of the bridge's rule meters (not the sampling
    /// meter) into [`Context::meters`]; nothing is asked of a bridge
    /// without rate-limited rules.
    async fn poll_meters(&self, desired: &Desired, bridge: &str) {
        let wanted: std::collections::BTreeSet<u32> = desired
            .compiled
            .bridge(bridge)
            .map(|b| {
                b.meters
                    .iter()
                    .map(|m| m.id)
                    .filter(|id| *id != desired.settings.deny_meter_id)
                    .collect()
            })
            .unwrap_or_default();
        let readings: MeterReadings = if wanted.is_empty() {
            BTreeMap::new()
        } else {
            match self.dump_meter_stats().await {
                Ok(stats) => stats
                    .iter()
                    .filter(|m| wanted.contains(&m.meter_id))
                    .map(|m| {
                        let dropped = m
                            .band_stats
                            .iter()
                            .fold(0u64, |sum, band| sum.saturating_add(band.packet_band_count));
                        (
                            m.meter_id,
                            MeterUse {
                                packets: m.packet_in_count,
                                dropped,
                            },
                        )
                    })
                    .collect(),
                Err(e) => {
                    tracing::debug!(bridge = %bridge, "meter statistics poll failed: {e}");
                    return;
                }
            }
        };
        self.ctx.meters.send_if_modified(|meters| {
            if meters.get(&self.datapath_id) == Some(&readings) {
                return false;
            }
            meters.insert(self.datapath_id, readings);
            true
        });
    }

    /// Statistics of every meter.
    async fn dump_meter_stats(&self) -> Result<Vec<MeterStats>, SyncError> {
        let during = "reading meter statistics";
        let request = MultipartRequest::meter_stats(augur_openflow::METER_ALL);
        let mut meters = Vec::new();
        for body in self.multipart(request, during).await? {
            match body {
                MultipartReplyBody::Meter(mut part) => meters.append(&mut part),
                other => {
                    return Err(SyncError::Unexpected {
                        during,
                        what: format!("{:?}", other.mp_type()),
                    });
                }
            }
        }
        Ok(meters)
    }

    /// Sends a sampled denied packet to the history.
    fn observe_denied(&self, packet: &augur_openflow::PacketIn) {
        let (Some(history), Some(bridge)) = (&self.ctx.history, &self.bridge) else {
            return;
        };
        let Some(desired) = self.desired.borrow().clone() else {
            return;
        };
        let bridge: Arc<str> = Arc::from(bridge.as_str());
        match observer::denied_record(packet, &desired.inventory, &bridge, observe::now()) {
            Ok((record, _)) => history.send(vec![record]),
            Err(skipped) => {
                tracing::debug!(bridge = %bridge, "packet-in not observed: {skipped:?}")
            }
        }
    }

    /// Sends a sample of an admitted new connection (an allow rule's or,
    /// in learn mode, the learn flow's) to the history and installs the
    /// connection's counting flow. A sample of a connection already known
    /// (a resent SYN, a UDP stream still without a reply) adds its packet
    /// to the connection's volume only.
    async fn observe_admitted(&mut self, packet: &augur_openflow::PacketIn) {
        let (Some(history), Some(bridge)) = (self.ctx.history.clone(), self.bridge.clone()) else {
            return;
        };
        let Some(desired) = self.desired.borrow().clone() else {
            return;
        };
        let bridge: Arc<str> = Arc::from(bridge.as_str());
        let record =
            match observer::learned_record(packet, &desired.inventory, &bridge, observe::now()) {
                Ok(record) => record,
                Err(skipped) => {
                    tracing::debug!(bridge = %bridge, "packet-in not observed: {skipped:?}");
                    return;
                }
            };
        self.openings.sampled(packet.cookie, record.bytes);
        let Some(tuple) = observer::connection_tuple(packet) else {
            return;
        };
        let now_ms = self.now_ms();
        if !self.recent.sampled(tuple, now_ms) {
            // Still `+new` (no reply yet), so not counted by the counting
            // flow: its packet is volume of the known connection.
            tracing::debug!(bridge = %bridge, ?tuple, "known connection sampled again");
            history.send(vec![augur_flows::FlowRecord {
                connections: 0,
                ..record
            }]);
            return;
        }
        history.send(vec![record]);
        let forward = desired
            .compiled
            .bridge(&bridge)
            .and_then(|flows| {
                flows
                    .stage(crate::policy::Stage::Forward)
                    .find(|f| f.match_.is_empty())
            })
            .map(|f| f.instructions.clone());
        let Some(forward) = forward else {
            tracing::debug!(bridge = %bridge, "no forward stage: connection not counted");
            return;
        };
        let Some(flow_mod) =
            observer::counting_flow(packet, desired.version, self.ctx.connection_idle, forward)
        else {
            tracing::debug!(bridge = %bridge, "sample without an IP packet: not counted");
            return;
        };
        tracing::debug!(bridge = %bridge, "counting flow: {flow_mod:?}");
        if let Err(e) = self.handle.apply(vec![Body::FlowMod(flow_mod)]).await {
            tracing::warn!(bridge = %bridge, "counting flow not installed: {e}");
        }
    }

    /// Sends what a removed counting flow counted since the last poll to
    /// the history.
    fn observe_removed(&mut self, removed: &augur_openflow::FlowRemoved) {
        let (Some(history), Some(bridge)) = (&self.ctx.history, &self.bridge) else {
            return;
        };
        let Some(desired) = self.desired.borrow().clone() else {
            return;
        };
        let Some(tuple) = observer::counted_connection(removed.cookie, &removed.match_) else {
            return;
        };
        let flow = FlowIdentity {
            cookie: removed.cookie,
            table_id: removed.table_id,
            priority: removed.priority,
            match_: removed.match_.clone(),
        };
        let (packets, bytes) =
            self.connections
                .finish(&flow, removed.packet_count, removed.byte_count);
        self.recent.forget(&tuple);
        let bridge: Arc<str> = Arc::from(bridge.as_str());
        if let Some(record) = observer::counted_record(
            &tuple,
            packets,
            bytes,
            &desired.inventory,
            &bridge,
            observe::now(),
        ) {
            history.send(vec![record]);
        }
    }

    async fn on_async(&mut self, msg: Message) {
        let kind = msg
            .body
            .msg_type(msg.version)
            .to_string()
            .to_ascii_lowercase();
        self.ctx.metrics.received(&kind);
        match &msg.body {
            Body::PacketIn(packet) => {
                let reason = match Cookie::from_raw(packet.cookie).and_then(Cookie::origin) {
                    Some(Origin::Deny(reason)) => reason.name().to_owned(),
                    Some(Origin::Learn | Origin::Rule(_)) => {
                        // An admitted connection, not a denied attempt.
                        tracing::debug!(
                            bridge = %self.name(),
                            "new connection sampled: {}",
                            packet.match_
                        );
                        self.observe_admitted(packet).await;
                        return;
                    }
                    _ => "other".to_owned(),
                };
                self.ctx
                    .metrics
                    .denied_sampled
                    .get_or_create(&DenyLabels {
                        bridge: self.name(),
                        reason: reason.clone(),
                    })
                    .inc();
                tracing::debug!(
                    bridge = %self.name(),
                    reason,
                    "denied packet sampled: {}",
                    packet.match_
                );
                self.observe_denied(packet);
            }
            Body::FlowRemoved(removed) => self.observe_removed(removed),
            Body::PortStatus(status) => tracing::info!(
                bridge = %self.name(),
                port = %status.desc.name,
                port_no = %status.desc.port_no,
                "port {}",
                status.reason
            ),
            Body::Error(error) => {
                self.ctx.metrics.error(&error_kind(error));
                tracing::warn!(bridge = %self.name(), xid = msg.xid, "the switch reported an error: {error}");
            }
            _ => tracing::debug!(bridge = %self.name(), "asynchronous message: {msg}"),
        }
    }
}

/// An OpenFlow error's metric label: its type, in lower case.
fn error_kind(error: &augur_openflow::ErrorMsg) -> String {
    error.code.error_type().to_string().to_ascii_lowercase()
}
