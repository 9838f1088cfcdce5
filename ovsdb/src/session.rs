//! The client side of an OVSDB connection as a state machine without I/O.
//!
//! The driver feeds received bytes (or decoded messages) and the current
//! time in, sends what [`Session::poll_transmit`] returns, sleeps until
//! [`Session::poll_timeout`], and tells the session when a connection comes
//! up or goes down. Everything the protocol needs across connections lives
//! here: request ids and what each pending reply means, monitors and their
//! replicas (re-established and resynchronised after a reconnect), locks
//! (re-requested after a reconnect) and the inactivity probe (our `echo`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;

use crate::data::DecodeError;
use crate::framing::{FrameBuffer, FrameLimits, FramingError};
use crate::jsonrpc::{Message, MessageError, RpcError};
use crate::monitor::{
    MonitorProtocol, MonitorSpec, cond_change_params, parse_updates, parse_updates2,
};
use crate::ops::{Condition, Operation, TransactReply, transact_params};
use crate::replica::{Replica, ReplicaError, RowChange};
use crate::schema::{ConstraintError, DatabaseSchema};

/// Tunables of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// After this long without hearing from the server, send an `echo`; after
    /// as long again, declare the connection dead. `None` disables probing.
    /// OVS uses 5 seconds by default.
    pub probe_interval: Option<Duration>,
    /// Limits on incoming messages.
    pub limits: FrameLimits,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            probe_interval: Some(Duration::from_secs(5)),
            limits: FrameLimits::default(),
        }
    }
}

/// Identifies a request made through the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies a monitor, across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorId(pub u64);

/// A successful reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `list_dbs`: database names.
    Databases(Vec<String>),
    /// `get_schema`.
    Schema(Arc<DatabaseSchema>),
    /// `transact`. Operation failures are inside the reply, not errors.
    Transact(TransactReply),
    /// `echo`: the parameters echoed back.
    Echo(Vec<Value>),
    /// `lock` or `steal`: whether the lock is now held.
    Lock {
        /// Held now; if not, a `locked` notification follows once it is.
        locked: bool,
    },
    /// `unlock`.
    Unlocked,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RequestError {
    /// The server answered with an error.
    #[error("server error: {0}")]
    Server(RpcError),
    /// The connection went down before the reply arrived. For `transact`, the
    /// transaction may or may not have committed.
    #[error("connection lost before the reply arrived")]
    Disconnected,
    /// There was no connection to send the request on.
    #[error("not connected to the server")]
    NotConnected,
    /// The reply did not decode (the connection is dropped too).
    #[error("malformed reply: {0}")]
    Decode(DecodeError),
    /// The request does not fit the schema, or the session state.
    #[error("invalid request: {0}")]
    Invalid(ConstraintError),
}

/// What happened to a monitor.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    /// A snapshot was loaded into the replica: the first one after the
    /// monitor started (`resync == false`), or a fresh one after a reconnect
    /// or a server-side cancel, in which case `changes` are only the
    /// differences from what the replica held before.
    Snapshot {
        /// Changes to the replica.
        changes: Vec<RowChange>,
        /// Whether this snapshot replaced earlier contents.
        resync: bool,
    },
    /// Changes from one committed transaction.
    Update {
        /// Changes to the replica.
        changes: Vec<RowChange>,
    },
    /// A `monitor_cond_change` took effect or failed. Rows entering or
    /// leaving the condition arrive as `Update`s.
    ConditionChanged {
        /// Success, or why the server refused.
        result: Result<(), RequestError>,
    },
    /// The monitor ended: cancelled by us (`Ok`) or refused by the server.
    Stopped {
        /// `Ok` for a cancel we asked for.
        reason: Result<(), RequestError>,
    },
}

/// What happened to a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockEvent {
    /// We now hold the lock.
    Acquired,
    /// Another client stole the lock. After a `lock` we are queued for it
    /// again; after a `steal` we are not.
    Stolen,
    /// The connection went down while we held it; it is requested again
    /// after the reconnect.
    Lost,
}

/// Something for the driver to hand to whoever is waiting.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A request finished.
    Reply {
        /// The request.
        id: RequestId,
        /// Its outcome.
        result: Result<Reply, RequestError>,
    },
    /// A monitor changed.
    Monitor {
        /// The monitor.
        id: MonitorId,
        /// What happened.
        event: MonitorEvent,
    },
    /// A lock changed hands.
    Lock {
        /// The lock name.
        name: String,
        /// What happened.
        event: LockEvent,
    },
}

/// Why the session gave up on a connection. The driver should close it and
/// reconnect; [`Session::disconnected`] must be called either way.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SessionError {
    /// The byte stream could not be split into messages.
    #[error("framing: {0}")]
    Framing(#[from] FramingError),
    /// A message was not valid JSON-RPC.
    #[error("{0}")]
    Message(#[from] MessageError),
    /// A message was valid JSON-RPC but broke the OVSDB protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The replica could not follow an update.
    #[error("{0}")]
    Replica(#[from] ReplicaError),
    /// Nothing arrived for two probe intervals.
    #[error("no message from the server for {0:?}")]
    PeerTimeout(Duration),
}

/// Counters for observability and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages received on all connections.
    pub messages_received: u64,
    /// `echo` requests from the server that we answered.
    pub server_echoes_answered: u64,
    /// `echo` probes we sent after a quiet period.
    pub probes_sent: u64,
    /// Connections established.
    pub connections: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum UserRequest {
    ListDbs,
    GetSchema,
    Transact {
        tables: Vec<Option<String>>,
        db: String,
    },
    Echo,
    Lock {
        name: String,
    },
    Unlock {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    User {
        id: RequestId,
        request: UserRequest,
    },
    MonitorSchema {
        monitor: MonitorId,
    },
    MonitorStart {
        monitor: MonitorId,
    },
    MonitorCancel {
        monitor: MonitorId,
    },
    CondChange {
        monitor: MonitorId,
        previous: Vec<(String, Option<Vec<Condition>>)>,
    },
    OrphanCancel,
    LockRenew {
        name: String,
    },
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonitorPhase {
    Idle,
    FetchingSchema,
    Starting,
    Active,
    Cancelling,
}

#[derive(Debug)]
struct MonitorState {
    spec: MonitorSpec,
    phase: MonitorPhase,
    schema: Option<Arc<DatabaseSchema>>,
    replica: Option<Replica>,
    has_snapshot: bool,
    condition_change_awaits_snapshot: bool,
    // The conditions the last monitor request carried, to tell whether a
    // change made while it was in flight still has to be sent.
    requested_conditions: Vec<(String, Option<Vec<Condition>>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockMode {
    Lock,
    Steal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LockStatus {
    Requested,
    Waiting,
    Held,
    Unlocking,
}

#[derive(Debug, Clone, Copy)]
struct LockState {
    mode: LockMode,
    status: LockStatus,
}

/// The protocol state of one client, across connections.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    connected: bool,
    frames: FrameBuffer,
    out: Vec<u8>,
    next_id: u64,
    next_monitor: u64,
    pending: HashMap<u64, Pending>,
    events: VecDeque<Event>,
    schemas: HashMap<String, Arc<DatabaseSchema>>,
    monitors: BTreeMap<MonitorId, MonitorState>,
    locks: BTreeMap<String, LockState>,
    last_received: Instant,
    probe_sent: Option<Instant>,
    stats: SessionStats,
}

impl Session {
    /// A session, not yet connected.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let frames = FrameBuffer::new(config.limits);
        Self {
            config,
            connected: false,
            frames,
            out: Vec::new(),
            next_id: 0,
            next_monitor: 0,
            pending: HashMap::new(),
            events: VecDeque::new(),
            schemas: HashMap::new(),
            monitors: BTreeMap::new(),
            locks: BTreeMap::new(),
            last_received: now,
            probe_sent: None,
            stats: SessionStats::default(),
        }
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether a lock of this name is requested or held.
    pub fn has_lock(&self, name: &str) -> bool {
        self.locks.contains_key(name)
    }

    /// The limits on incoming messages.
    pub fn limits(&self) -> FrameLimits {
        self.config.limits
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// A schema fetched earlier on any connection.
    pub fn cached_schema(&self, db: &str) -> Option<&Arc<DatabaseSchema>> {
        self.schemas.get(db)
    }

    /// The replica of a monitor, once its first snapshot is in.
    pub fn replica(&self, id: MonitorId) -> Option<&Replica> {
        self.monitors
            .get(&id)
            .filter(|m| m.has_snapshot)
            .and_then(|m| m.replica.as_ref())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }

    /// When [`Session::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        let interval = self.config.probe_interval?;
        Some(match self.probe_sent {
            Some(sent) => sent + interval,
            None => self.last_received + interval,
        })
    }

    /// Runs timers: sends the inactivity probe, or fails the connection when
    /// the probe went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        let (true, Some(interval)) = (self.connected, self.config.probe_interval) else {
            return Ok(());
        };
        match self.probe_sent {
            Some(sent) if now >= sent + interval => Err(SessionError::PeerTimeout(
                now.saturating_duration_since(self.last_received),
            )),
            None if now >= self.last_received + interval => {
                self.probe_sent = Some(now);
                self.stats.probes_sent += 1;
                self.send_request("echo", &[], Pending::Probe);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A connection came up: re-establishes monitors and locks.
    pub fn connected(&mut self, now: Instant) {
        self.connected = true;
        self.stats.connections += 1;
        self.frames.clear();
        self.out.clear();
        self.last_received = now;
        self.probe_sent = None;
        let ids: Vec<MonitorId> = self.monitors.keys().copied().collect();
        for id in ids {
            self.start_monitor(id);
        }
        let names: Vec<String> = self.locks.keys().cloned().collect();
        for name in names {
            if let Some(lock) = self.locks.get_mut(&name) {
                lock.mode = LockMode::Lock;
                lock.status = LockStatus::Requested;
            }
            self.send_request(
                "lock",
                &[Value::String(name.clone())],
                Pending::LockRenew { name },
            );
        }
    }

    /// The connection went down: fails pending requests and marks monitors
    /// and locks for re-establishment.
    pub fn disconnected(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.frames.clear();
        self.out.clear();
        self.probe_sent = None;
        let mut pending: Vec<(u64, Pending)> = self.pending.drain().collect();
        pending.sort_by_key(|(id, _)| *id);
        for (_, p) in pending {
            match p {
                Pending::User { id, request } => {
                    let result = match request {
                        UserRequest::Lock { name } => {
                            self.locks.remove(&name);
                            Err(RequestError::Disconnected)
                        }
                        // The server drops a session's locks when it goes away.
                        UserRequest::Unlock { name } => {
                            self.locks.remove(&name);
                            Ok(Reply::Unlocked)
                        }
                        _ => Err(RequestError::Disconnected),
                    };
                    self.events.push_back(Event::Reply { id, result });
                }
                Pending::MonitorCancel { monitor } => {
                    self.monitors.remove(&monitor);
                    self.events.push_back(Event::Monitor {
                        id: monitor,
                        event: MonitorEvent::Stopped { reason: Ok(()) },
                    });
                }
                Pending::LockRenew { name } => {
                    // Still wanted: ask again on the next connection.
                    if let Some(lock) = self.locks.get_mut(&name) {
                        lock.status = LockStatus::Waiting;
                    }
                }
                Pending::CondChange { monitor, .. } => {
                    // The new conditions are kept and take effect with the
                    // monitor request after the reconnect.
                    if let Some(m) = self.monitors.get_mut(&monitor) {
                        m.condition_change_awaits_snapshot = true;
                    }
                }
                _ => {}
            }
        }
        for m in self.monitors.values_mut() {
            m.phase = MonitorPhase::Idle;
        }
        let mut lost = Vec::new();
        self.locks.retain(|name, lock| match lock.status {
            LockStatus::Held => {
                lost.push(name.clone());
                true
            }
            LockStatus::Waiting => true,
            LockStatus::Requested | LockStatus::Unlocking => false,
        });
        for name in lost {
            self.events.push_back(Event::Lock {
                name,
                event: LockEvent::Lost,
            });
        }
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn send_request(&mut self, method: &str, params: &[Value], pending: Pending) {
        let id = self.alloc_id();
        Message::encode_request(method, params, &Value::from(id), &mut self.out);
        self.pending.insert(id, pending);
    }

    fn user_request(&mut self, method: &str, params: &[Value], request: UserRequest) -> RequestId {
        let id = RequestId(self.next_id);
        if !self.connected {
            self.alloc_id();
            self.events.push_back(Event::Reply {
                id,
                result: Err(RequestError::NotConnected),
            });
            return id;
        }
        self.send_request(method, params, Pending::User { id, request });
        id
    }

    fn reject(&mut self, error: ConstraintError) -> RequestId {
        let id = RequestId(self.alloc_id());
        self.events.push_back(Event::Reply {
            id,
            result: Err(RequestError::Invalid(error)),
        });
        id
    }

    /// `list_dbs`.
    pub fn list_dbs(&mut self) -> RequestId {
        self.user_request("list_dbs", &[], UserRequest::ListDbs)
    }

    /// `get_schema`. The schema is cached for checking later transactions.
    pub fn get_schema(&mut self, db: &str) -> RequestId {
        self.user_request(
            "get_schema",
            &[Value::String(db.to_owned())],
            UserRequest::GetSchema,
        )
    }

    /// `transact`, checked first against the schema if one is cached.
    pub fn transact(&mut self, db: &str, ops: &[Operation]) -> RequestId {
        if let Some(schema) = self.schemas.get(db).cloned() {
            for (i, op) in ops.iter().enumerate() {
                if let Err(e) = op.check(&schema) {
                    return self.reject(e.within(format!("operation {i}")));
                }
            }
        }
        self.transact_unchecked(db, ops)
    }

    /// `transact` without the local schema check, leaving every judgement to
    /// the server.
    pub fn transact_unchecked(&mut self, db: &str, ops: &[Operation]) -> RequestId {
        let tables = ops
            .iter()
            .map(|op| match op {
                Operation::Select { table, .. } => Some(table.clone()),
                _ => None,
            })
            .collect();
        let params = transact_params(db, ops);
        self.user_request(
            "transact",
            &params,
            UserRequest::Transact {
                tables,
                db: db.to_owned(),
            },
        )
    }

    /// `echo`, to measure a round trip.
    pub fn echo(&mut self, params: Vec<Value>) -> RequestId {
        self.user_request("echo", &params, UserRequest::Echo)
    }

    /// `lock`: queue for a lock; [`LockEvent::Acquired`] follows once held.
    pub fn lock(&mut self, name: &str) -> RequestId {
        self.lock_request(name, LockMode::Lock)
    }

    /// `steal`: take a lock from its holder at once.
    pub fn steal(&mut self, name: &str) -> RequestId {
        self.lock_request(name, LockMode::Steal)
    }

    fn lock_request(&mut self, name: &str, mode: LockMode) -> RequestId {
        if self.locks.contains_key(name) {
            return self.reject(ConstraintError::new(format!(
                "lock {name} already requested; unlock it first"
            )));
        }
        let method = match mode {
            LockMode::Lock => "lock",
            LockMode::Steal => "steal",
        };
        let id = self.user_request(
            method,
            &[Value::String(name.to_owned())],
            UserRequest::Lock {
                name: name.to_owned(),
            },
        );
        if self.connected {
            self.locks.insert(
                name.to_owned(),
                LockState {
                    mode,
                    status: LockStatus::Requested,
                },
            );
        }
        id
    }

    /// `unlock`: release a lock or leave its queue.
    pub fn unlock(&mut self, name: &str) -> RequestId {
        match self.locks.get_mut(name) {
            None => self.reject(ConstraintError::new(format!("lock {name} not requested"))),
            Some(lock) if lock.status == LockStatus::Unlocking => self.reject(
                ConstraintError::new(format!("lock {name} already being unlocked")),
            ),
            Some(lock) if !self.connected => {
                // Nothing is held on a server we are not connected to.
                let _ = lock;
                self.locks.remove(name);
                let id = RequestId(self.alloc_id());
                self.events.push_back(Event::Reply {
                    id,
                    result: Ok(Reply::Unlocked),
                });
                id
            }
            Some(lock) => {
                lock.status = LockStatus::Unlocking;
                self.user_request(
                    "unlock",
                    &[Value::String(name.to_owned())],
                    UserRequest::Unlock {
                        name: name.to_owned(),
                    },
                )
            }
        }
    }

    /// Starts a monitor with a replica of its tables. It is set up (schema
    /// fetched, spec checked, monitor requested) now if connected, otherwise
    /// on connecting, and again after every reconnect.
    pub fn monitor(&mut self, spec: MonitorSpec) -> MonitorId {
        let id = MonitorId(self.next_monitor);
        self.next_monitor = self.next_monitor.wrapping_add(1);
        self.monitors.insert(
            id,
            MonitorState {
                spec,
                phase: MonitorPhase::Idle,
                schema: None,
                replica: None,
                has_snapshot: false,
                condition_change_awaits_snapshot: false,
                requested_conditions: Vec::new(),
            },
        );
        if self.connected {
            self.start_monitor(id);
        }
        id
    }

    fn start_monitor(&mut self, id: MonitorId) {
        let Some(m) = self.monitors.get_mut(&id) else {
            return;
        };
        m.phase = MonitorPhase::FetchingSchema;
        let db = m.spec.db.clone();
        // The schema is fetched afresh on every connection: the server may
        // have been upgraded while we were away.
        self.send_request(
            "get_schema",
            &[Value::String(db)],
            Pending::MonitorSchema { monitor: id },
        );
    }

    /// Changes the conditions of a `monitor_cond` monitor, for some tables
    /// (`None` meaning all rows).
    pub fn change_conditions(
        &mut self,
        id: MonitorId,
        changes: Vec<(String, Option<Vec<Condition>>)>,
    ) -> Result<(), RequestError> {
        let connected = self.connected;
        let m = self
            .monitors
            .get_mut(&id)
            .ok_or_else(|| RequestError::Invalid(ConstraintError::new("no such monitor")))?;
        if m.spec.protocol != MonitorProtocol::MonitorCond {
            return Err(RequestError::Invalid(ConstraintError::new(
                "conditions can only change on a monitor_cond monitor",
            )));
        }
        let mut candidate = m.spec.clone();
        let mut previous = Vec::with_capacity(changes.len());
        for (table, conditions) in &changes {
            let t = candidate
                .tables
                .iter_mut()
                .find(|t| &t.table == table)
                .ok_or_else(|| {
                    RequestError::Invalid(ConstraintError::new(format!(
                        "table {table} is not monitored"
                    )))
                })?;
            previous.push((table.clone(), t.conditions.clone()));
            t.conditions = conditions.clone();
        }
        if let Some(schema) = &m.schema {
            candidate.check(schema).map_err(RequestError::Invalid)?;
        }
        m.spec = candidate;
        if connected && m.phase == MonitorPhase::Active {
            m.requested_conditions = conditions_of(&m.spec);
            let params = cond_change_params(&Value::from(id.0), &changes);
            self.send_request(
                "monitor_cond_change",
                &params,
                Pending::CondChange {
                    monitor: id,
                    previous,
                },
            );
        } else {
            // Not running now: the request that starts it carries the new
            // conditions.
            m.condition_change_awaits_snapshot = true;
        }
        Ok(())
    }

    /// Cancels a monitor; [`MonitorEvent::Stopped`] follows.
    pub fn cancel_monitor(&mut self, id: MonitorId) {
        let Some(m) = self.monitors.get_mut(&id) else {
            return;
        };
        match m.phase {
            MonitorPhase::Active if self.connected => {
                m.phase = MonitorPhase::Cancelling;
                self.send_request(
                    "monitor_cancel",
                    &[Value::from(id.0)],
                    Pending::MonitorCancel { monitor: id },
                );
            }
            MonitorPhase::Cancelling => {}
            _ => {
                // Not running on the server (or its start is in flight, in
                // which case the start reply's handler cancels it there).
                self.monitors.remove(&id);
                self.events.push_back(Event::Monitor {
                    id,
                    event: MonitorEvent::Stopped { reason: Ok(()) },
                });
            }
        }
    }

    /// Feeds received bytes. Any error is fatal for the connection.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), SessionError> {
        self.frames.extend(data);
        loop {
            let message = match self.frames.next_frame()? {
                Some(frame) => Message::decode(frame)?,
                None => return Ok(()),
            };
            self.handle_message(message, now)?;
        }
    }

    /// Handles one decoded message. Any error is fatal for the connection.
    pub fn handle_message(&mut self, message: Message, now: Instant) -> Result<(), SessionError> {
        self.last_received = now;
        self.probe_sent = None;
        self.stats.messages_received += 1;
        match message {
            Message::Request { method, params, id } => {
                if method == "echo" {
                    self.stats.server_echoes_answered += 1;
                    Message::encode_reply(&Value::Array(params), &id, &mut self.out);
                } else {
                    tracing::warn!(%method, "server sent an unknown request");
                    let error = serde_json::json!({"error": "unknown method", "details": method});
                    Message::Error { error, id }.encode(&mut self.out);
                }
                Ok(())
            }
            Message::Notification { method, params } => self.handle_notification(&method, params),
            Message::Reply { result, id } => self.handle_reply(id, Ok(result)),
            Message::Error { error, id } => self.handle_reply(id, Err(RpcError::from_json(error))),
        }
    }

    fn handle_reply(
        &mut self,
        id: Value,
        result: Result<Value, RpcError>,
    ) -> Result<(), SessionError> {
        let Some(pending) = id.as_u64().and_then(|n| self.pending.remove(&n)) else {
            tracing::warn!(%id, "reply to no request of ours; ignored");
            return Ok(());
        };
        match pending {
            Pending::User { id, request } => self.handle_user_reply(id, request, result),
            Pending::Probe => Ok(()),
            Pending::OrphanCancel => Ok(()),
            Pending::LockRenew { name } => {
                match result {
                    Ok(v) => {
                        let locked = parse_locked(&v)?;
                        self.set_lock_status(&name, locked);
                    }
                    Err(e) => {
                        tracing::warn!(%name, error = %e, "re-requesting lock failed");
                        self.locks.remove(&name);
                    }
                }
                Ok(())
            }
            Pending::MonitorSchema { monitor } => self.handle_monitor_schema(monitor, result),
            Pending::MonitorStart { monitor } => self.handle_monitor_start(monitor, result),
            Pending::MonitorCancel { monitor } => {
                self.monitors.remove(&monitor);
                let reason = result.map(|_| ()).map_err(RequestError::Server);
                // A failed cancel still leaves us not wanting the monitor.
                self.events.push_back(Event::Monitor {
                    id: monitor,
                    event: MonitorEvent::Stopped { reason },
                });
                Ok(())
            }
            Pending::CondChange { monitor, previous } => {
                let result = match result {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        if let Some(m) = self.monitors.get_mut(&monitor) {
                            for (table, conditions) in previous {
                                if let Some(t) = m.spec.tables.iter_mut().find(|t| t.table == table)
                                {
                                    t.conditions = conditions;
                                }
                            }
                            m.requested_conditions = conditions_of(&m.spec);
                        }
                        Err(RequestError::Server(e))
                    }
                };
                if self.monitors.contains_key(&monitor) {
                    self.events.push_back(Event::Monitor {
                        id: monitor,
                        event: MonitorEvent::ConditionChanged { result },
                    });
                }
                Ok(())
            }
        }
    }

    fn handle_user_reply(
        &mut self,
        id: RequestId,
        request: UserRequest,
        result: Result<Value, RpcError>,
    ) -> Result<(), SessionError> {
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                // A refused lock request leaves nothing queued; a refused
                // unlock means the server has no request of ours to drop.
                // Either way the lock is no longer ours to track.
                if let UserRequest::Lock { name } | UserRequest::Unlock { name } = &request {
                    self.locks.remove(name);
                }
                self.events.push_back(Event::Reply {
                    id,
                    result: Err(RequestError::Server(e)),
                });
                return Ok(());
            }
        };
        let decoded: Result<Reply, DecodeError> = match request {
            UserRequest::ListDbs => decode_db_list(&value).map(Reply::Databases),
            UserRequest::GetSchema => DatabaseSchema::from_json(&value).map(|s| {
                let s = Arc::new(s);
                self.schemas.insert(s.name.clone(), s.clone());
                Reply::Schema(s)
            }),
            UserRequest::Transact { tables, db } => {
                let schema = self.schemas.get(&db).cloned();
                let table_schemas: Vec<_> = tables
                    .iter()
                    .map(|t| {
                        t.as_deref()
                            .and_then(|t| schema.as_deref().and_then(|s| s.table(t)))
                    })
                    .collect();
                TransactReply::from_json(&value, &table_schemas).map(Reply::Transact)
            }
            UserRequest::Echo => match value {
                Value::Array(a) => Ok(Reply::Echo(a)),
                other => Err(DecodeError::new(format!(
                    "echo reply {other} is not an array"
                ))),
            },
            UserRequest::Lock { name } => parse_locked(&value)
                .map_err(|e| DecodeError::new(e.to_string()))
                .map(|locked| {
                    self.set_lock_status(&name, locked);
                    Reply::Lock { locked }
                }),
            UserRequest::Unlock { name } => {
                self.locks.remove(&name);
                Ok(Reply::Unlocked)
            }
        };
        match decoded {
            Ok(reply) => {
                self.events.push_back(Event::Reply {
                    id,
                    result: Ok(reply),
                });
                Ok(())
            }
            Err(e) => {
                self.events.push_back(Event::Reply {
                    id,
                    result: Err(RequestError::Decode(e.clone())),
                });
                Err(SessionError::Protocol(format!("malformed reply: {e}")))
            }
        }
    }

    fn set_lock_status(&mut self, name: &str, locked: bool) {
        let Some(lock) = self.locks.get_mut(name) else {
            return;
        };
        if locked {
            let was_held = lock.status == LockStatus::Held;
            lock.status = LockStatus::Held;
            if !was_held {
                self.events.push_back(Event::Lock {
                    name: name.to_owned(),
                    event: LockEvent::Acquired,
                });
            }
        } else if lock.status == LockStatus::Requested {
            lock.status = LockStatus::Waiting;
        }
    }

    fn handle_monitor_schema(
        &mut self,
        id: MonitorId,
        result: Result<Value, RpcError>,
    ) -> Result<(), SessionError> {
        let Some(m) = self.monitors.get_mut(&id) else {
            return Ok(());
        };
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                self.stop_monitor(id, RequestError::Server(e));
                return Ok(());
            }
        };
        let schema = match DatabaseSchema::from_json(&value) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                self.stop_monitor(id, RequestError::Decode(e.clone()));
                return Err(SessionError::Protocol(format!("malformed schema: {e}")));
            }
        };
        if let Err(e) = m.spec.check(&schema) {
            self.stop_monitor(id, RequestError::Invalid(e));
            return Ok(());
        }
        let tables: Vec<(String, Vec<String>)> = m
            .spec
            .tables
            .iter()
            .filter_map(|t| {
                schema
                    .table(&t.table)
                    .map(|ts| (t.table.clone(), t.resolved_columns(ts)))
            })
            .collect();
        let configured = match m.replica.as_mut() {
            Some(r) => r.reconfigure(schema.clone(), &tables),
            None => Replica::new(schema.clone(), &tables).map(|r| {
                m.replica = Some(r);
            }),
        };
        if let Err(e) = configured {
            self.stop_monitor(
                id,
                RequestError::Invalid(ConstraintError::new(e.to_string())),
            );
            return Ok(());
        }
        m.schema = Some(schema.clone());
        m.phase = MonitorPhase::Starting;
        m.requested_conditions = conditions_of(&m.spec);
        let method = m.spec.method();
        let params = m.spec.request_params(&Value::from(id.0), &schema);
        self.schemas.insert(schema.name.clone(), schema);
        self.send_request(method, &params, Pending::MonitorStart { monitor: id });
        Ok(())
    }

    fn handle_monitor_start(
        &mut self,
        id: MonitorId,
        result: Result<Value, RpcError>,
    ) -> Result<(), SessionError> {
        let Some(m) = self.monitors.get_mut(&id) else {
            // Cancelled while the request was in flight: cancel it on the
            // server too, so it stops sending updates.
            if result.is_ok() {
                self.send_request(
                    "monitor_cancel",
                    &[Value::from(id.0)],
                    Pending::OrphanCancel,
                );
            }
            return Ok(());
        };
        let value = match result {
            Ok(v) => v,
            Err(e) => {
                self.stop_monitor(id, RequestError::Server(e));
                return Ok(());
            }
        };
        let (Some(schema), Some(replica)) = (m.schema.as_ref(), m.replica.as_mut()) else {
            return Err(SessionError::Protocol(
                "monitor reply before its schema".into(),
            ));
        };
        let updates = match m.spec.protocol {
            MonitorProtocol::Monitor => parse_updates(value, schema),
            MonitorProtocol::MonitorCond => parse_updates2(value, schema),
        }
        .map_err(|e| SessionError::Protocol(format!("monitor snapshot: {e}")))?;
        let changes = replica.load_snapshot(updates)?;
        let resync = m.has_snapshot;
        m.has_snapshot = true;
        m.phase = MonitorPhase::Active;
        let condition_changed = std::mem::take(&mut m.condition_change_awaits_snapshot);
        let current = conditions_of(&m.spec);
        let stale = current != m.requested_conditions;
        let previous = std::mem::replace(&mut m.requested_conditions, current.clone());
        self.events.push_back(Event::Monitor {
            id,
            event: MonitorEvent::Snapshot { changes, resync },
        });
        if stale {
            // The conditions changed while the request was in flight:
            // send them now; ConditionChanged follows the reply.
            let params = cond_change_params(&Value::from(id.0), &current);
            self.send_request(
                "monitor_cond_change",
                &params,
                Pending::CondChange {
                    monitor: id,
                    previous,
                },
            );
        } else if condition_changed {
            self.events.push_back(Event::Monitor {
                id,
                event: MonitorEvent::ConditionChanged { result: Ok(()) },
            });
        }
        Ok(())
    }

    fn stop_monitor(&mut self, id: MonitorId, error: RequestError) {
        self.monitors.remove(&id);
        self.events.push_back(Event::Monitor {
            id,
            event: MonitorEvent::Stopped { reason: Err(error) },
        });
    }

    fn handle_notification(
        &mut self,
        method: &str,
        params: Vec<Value>,
    ) -> Result<(), SessionError> {
        match method {
            "update" | "update2" => {
                if params.len() != 2 {
                    return Err(SessionError::Protocol(format!("{method} needs two params")));
                }
                let mut params = params.into_iter();
                let (Some(monitor_id), Some(updates)) = (params.next(), params.next()) else {
                    return Err(SessionError::Protocol(format!("{method} needs two params")));
                };
                let Some(id) = monitor_id.as_u64().map(MonitorId) else {
                    tracing::warn!(%monitor_id, "update for a monitor id we never use; ignored");
                    return Ok(());
                };
                let Some(m) = self.monitors.get_mut(&id) else {
                    // A monitor cancelled while this update was in flight.
                    return Ok(());
                };
                let expected = match m.spec.protocol {
                    MonitorProtocol::Monitor => "update",
                    MonitorProtocol::MonitorCond => "update2",
                };
                if method != expected {
                    return Err(SessionError::Protocol(format!(
                        "{method} for a {} monitor",
                        m.spec.method()
                    )));
                }
                let (Some(schema), Some(replica), MonitorPhase::Active | MonitorPhase::Cancelling) =
                    (m.schema.as_ref(), m.replica.as_mut(), m.phase)
                else {
                    return Err(SessionError::Protocol(format!(
                        "{method} before the monitor reply"
                    )));
                };
                let parsed = if method == "update" {
                    parse_updates(updates, schema)
                } else {
                    parse_updates2(updates, schema)
                }
                .map_err(|e| SessionError::Protocol(format!("{method}: {e}")))?;
                let changes = replica.apply(parsed)?;
                if !changes.is_empty() {
                    self.events.push_back(Event::Monitor {
                        id,
                        event: MonitorEvent::Update { changes },
                    });
                }
                Ok(())
            }
            "monitor_canceled" => {
                // The server dropped the monitor (database removed or schema
                // converted): set it up again from a fresh schema.
                let Some(id) = params.first().and_then(Value::as_u64).map(MonitorId) else {
                    return Err(SessionError::Protocol(
                        "monitor_canceled without a monitor id".into(),
                    ));
                };
                if self
                    .monitors
                    .get(&id)
                    .is_some_and(|m| m.phase != MonitorPhase::Cancelling)
                {
                    self.start_monitor(id);
                }
                Ok(())
            }
            "locked" | "stolen" => {
                let Some(name) = params.first().and_then(Value::as_str).map(str::to_owned) else {
                    return Err(SessionError::Protocol(format!(
                        "{method} without a lock name"
                    )));
                };
                if method == "locked" {
                    self.set_lock_status(&name, true);
                } else if let Some(lock) = self.locks.get_mut(&name) {
                    if lock.status == LockStatus::Held {
                        match lock.mode {
                            LockMode::Lock => lock.status = LockStatus::Waiting,
                            LockMode::Steal => {
                                self.locks.remove(&name);
                            }
                        }
                        self.events.push_back(Event::Lock {
                            name,
                            event: LockEvent::Stolen,
                        });
                    }
                }
                Ok(())
            }
            other => {
                tracing::debug!(method = other, "ignoring unknown notification");
                Ok(())
            }
        }
    }
}

/// The conditions of every table of a monitor, as `monitor_cond_change` takes them.
fn conditions_of(spec: &MonitorSpec) -> Vec<(String, Option<Vec<Condition>>)> {
    spec.tables
        .iter()
        .map(|t| (t.table.clone(), t.conditions.clone()))
        .collect()
}

fn decode_db_list(value: &Value) -> Result<Vec<String>, DecodeError> {
    let Value::Array(a) = value else {
        return Err(DecodeError::new("list_dbs result is not an array"));
    };
    a.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DecodeError::new("list_dbs result holds a non-string"))
        })
        .collect()
}

fn parse_locked(value: &Value) -> Result<bool, SessionError> {
    value
        .get("locked")
        .and_then(Value::as_bool)
        .ok_or_else(|| SessionError::Protocol(format!("lock reply {value} lacks \"locked\"")))
}

#[cfg(test)]
mod tests;
