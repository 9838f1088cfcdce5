//! The async client: a tokio task that owns the socket, the timers and the
//! reconnect loop, and drives a [`Session`](crate::session::Session).
//!
//! ```no_run
//! # async fn example() -> Result<(), augur_ovsdb::client::Error> {
//! use augur_ovsdb::client::Client;
//! use augur_ovsdb::{MonitorSpec, TableMonitor};
//!
//! let client = Client::connect("unix:/var/run/openvswitch/db.sock").await?;
//! println!("{:?}", client.list_dbs().await?);
//! let mut monitor = client
//!     .monitor(MonitorSpec::monitor_cond("Open_vSwitch").table(TableMonitor::new("Interface")))
//!     .await?;
//! while let Some(event) = monitor.next().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```

mod codec;
mod driver;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use codec::{CodecError, JsonRpcCodec};
pub use tls::{CaVerifier, TlsConfig};

use crate::monitor::MonitorSpec;
use crate::ops::{Condition, Operation, TransactReply};
use crate::replica::Replica;
use crate::schema::DatabaseSchema;
use crate::session::{
    LockEvent, MonitorEvent, MonitorId, Reply, RequestError, SessionConfig, SessionStats,
};
use crate::target::{Target, TargetError};

/// Errors of the async client.
#[derive(Debug, Error)]
pub enum Error {
    /// The target string does not parse.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The first connection failed.
    #[error("connecting to {target}: {source}")]
    Connect {
        /// The target tried last.
        target: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS files or settings are unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// A request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A reply of an unexpected kind arrived (a bug, not a server problem).
    #[error("unexpected reply kind")]
    UnexpectedReply,
    /// The driver task has stopped.
    #[error("the client has shut down")]
    Closed,
}

/// How to connect and how to behave.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Targets, tried in turn.
    pub targets: Vec<Target>,
    /// Key, certificate and CA for `ssl:` targets.
    pub tls: Option<TlsConfig>,
    /// Protocol settings: probe interval and message limits.
    pub session: SessionConfig,
    /// First reconnect delay; doubled after each failure. OVS uses 1 s.
    pub min_backoff: Duration,
    /// Longest reconnect delay. OVS uses 8 s.
    pub max_backoff: Duration,
    /// How long one connection attempt (with TLS handshake) may take.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for a target list in `ovs-vsctl --db` syntax.
    pub fn new(targets: &str) -> Result<Self, Error> {
        Ok(Self {
            targets: Target::parse_list(targets)?,
            tls: None,
            session: SessionConfig::default(),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// The targets as `ovs-vsctl --db` takes them (comma-separated), the
    /// way errors name the database.
    pub fn target_list(&self) -> String {
        self.targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// With TLS files for `ssl:` targets.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
}

pub(crate) enum Command {
    Request {
        request: RequestKind,
        reply: oneshot::Sender<Result<Reply, RequestError>>,
    },
    Monitor {
        spec: MonitorSpec,
        events: mpsc::UnboundedSender<MonitorEvent>,
        reply: oneshot::Sender<MonitorId>,
    },
    ChangeConditions {
        id: MonitorId,
        changes: Vec<(String, Option<Vec<Condition>>)>,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
    CancelMonitor {
        id: MonitorId,
    },
    Replica {
        id: MonitorId,
        reply: oneshot::Sender<Option<Replica>>,
    },
    Lock {
        name: String,
        steal: bool,
        events: mpsc::UnboundedSender<LockEvent>,
        reply: oneshot::Sender<Result<Reply, RequestError>>,
    },
    Stats {
        reply: oneshot::Sender<SessionStats>,
    },
}

pub(crate) enum RequestKind {
    ListDbs,
    GetSchema(String),
    Transact {
        db: String,
        ops: Vec<Operation>,
        checked: bool,
    },
    Echo(Vec<Value>),
    Unlock(String),
}

/// A handle to an OVSDB connection. Cheap to clone; the connection (and its
/// reconnect loop) ends when the last handle, monitor and lock is dropped.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
}

impl Client {
    /// Connects to a target list in `ovs-vsctl --db` syntax with default
    /// settings. Fails if no target can be reached now; once connected,
    /// reconnects by itself.
    pub async fn connect(targets: &str) -> Result<Self, Error> {
        Self::connect_with(ClientConfig::new(targets)?).await
    }

    /// Connects with explicit settings.
    pub async fn connect_with(config: ClientConfig) -> Result<Self, Error> {
        let commands = driver::start(config, true).await?;
        Ok(Self { commands })
    }

    /// Starts without waiting for a connection: the client connects in the
    /// background and keeps trying with backoff, as a daemon that may start
    /// before `ovsdb-server` wants. Monitors and locks requested meanwhile
    /// are set up once connected; other requests fail with `NotConnected`
    /// until then. Fails only on bad settings (such as unreadable TLS files).
    /// Must be called within a tokio runtime.
    pub async fn spawn(config: ClientConfig) -> Result<Self, Error> {
        let commands = driver::start(config, false).await?;
        Ok(Self { commands })
    }

    fn send(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).map_err(|_| Error::Closed)
    }

    async fn request(&self, request: RequestKind) -> Result<Reply, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Request { request, reply: tx })?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        match self.request(RequestKind::ListDbs).await? {
            Reply::Databases(d) => Ok(d),
            _ => Err(Error::UnexpectedReply),
        }
    }

    /// `get_schema`. Later transactions on the database are checked against it.
    pub async fn get_schema(&self, db: &str) -> Result<Arc<DatabaseSchema>, Error> {
        match self.request(RequestKind::GetSchema(db.to_owned())).await? {
            Reply::Schema(s) => Ok(s),
            _ => Err(Error::UnexpectedReply),
        }
    }

    /// `transact`, checked against the schema first when one has been
    /// fetched. Operation errors are in the reply, not an `Err`.
    pub async fn transact(&self, db: &str, ops: Vec<Operation>) -> Result<TransactReply, Error> {
        self.transact_inner(db, ops, true).await
    }

    /// `transact` without the local schema check.
    pub async fn transact_unchecked(
        &self,
        db: &str,
        ops: Vec<Operation>,
    ) -> Result<TransactReply, Error> {
        self.transact_inner(db, ops, false).await
    }

    async fn transact_inner(
        &self,
        db: &str,
        ops: Vec<Operation>,
        checked: bool,
    ) -> Result<TransactReply, Error> {
        let request = RequestKind::Transact {
            db: db.to_owned(),
            ops,
            checked,
        };
        match self.request(request).await? {
            Reply::Transact(r) => Ok(r),
            _ => Err(Error::UnexpectedReply),
        }
    }

    /// `echo`: a round trip to the server.
    pub async fn echo(&self, params: Vec<Value>) -> Result<Vec<Value>, Error> {
        match self.request(RequestKind::Echo(params)).await? {
            Reply::Echo(v) => Ok(v),
            _ => Err(Error::UnexpectedReply),
        }
    }

    /// Starts a monitor (`monitor` or `monitor_cond` per the spec) with a
    /// replica. Events, starting with the initial snapshot, arrive on the
    /// returned handle; after a reconnect the monitor is set up again and
    /// a `Snapshot { resync: true }` reports what changed meanwhile.
    pub async fn monitor(&self, spec: MonitorSpec) -> Result<Monitor, Error> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        self.send(Command::Monitor {
            spec,
            events: events_tx,
            reply: tx,
        })?;
        let id = rx.await.map_err(|_| Error::Closed)?;
        Ok(Monitor {
            id,
            events,
            client: self.clone(),
            cancelled: false,
        })
    }

    /// `lock`: joins the queue for a lock. The handle reports whether it is
    /// held now and, as events, when it is acquired, stolen or lost.
    pub async fn lock(&self, name: &str) -> Result<Lock, Error> {
        self.lock_inner(name, false).await
    }

    /// `steal`: takes a lock from whoever holds it.
    pub async fn steal(&self, name: &str) -> Result<Lock, Error> {
        self.lock_inner(name, true).await
    }

    async fn lock_inner(&self, name: &str, steal: bool) -> Result<Lock, Error> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        self.send(Command::Lock {
            name: name.to_owned(),
            steal,
            events: events_tx,
            reply: tx,
        })?;
        match rx.await.map_err(|_| Error::Closed)?? {
            Reply::Lock { locked } => Ok(Lock {
                name: name.to_owned(),
                locked_on_reply: locked,
                events,
                client: self.clone(),
                released: false,
            }),
            _ => Err(Error::UnexpectedReply),
        }
    }

    /// Counters of the underlying session.
    pub async fn stats(&self) -> Result<SessionStats, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats { reply: tx })?;
        rx.await.map_err(|_| Error::Closed)
    }
}

/// A running monitor. Dropping it cancels the monitor.
#[derive(Debug)]
pub struct Monitor {
    id: MonitorId,
    events: mpsc::UnboundedReceiver<MonitorEvent>,
    client: Client,
    cancelled: bool,
}

impl Monitor {
    /// The monitor's id.
    pub fn id(&self) -> MonitorId {
        self.id
    }

    /// The next event; `None` once the monitor has stopped and all events
    /// were taken. Unbounded, because the driver must never block on a slow
    /// consumer (it would stop answering the server's echo).
    pub async fn next(&mut self) -> Option<MonitorEvent> {
        self.events.recv().await
    }

    /// The event receiver, for use in `select!` or with stream adapters.
    pub fn events(&mut self) -> &mut mpsc::UnboundedReceiver<MonitorEvent> {
        &mut self.events
    }

    /// A copy of the replica as it stands (rows are shared, so this is
    /// cheap); `None` before the first snapshot.
    pub async fn replica(&self) -> Result<Option<Replica>, Error> {
        let (tx, rx) = oneshot::channel();
        self.client.send(Command::Replica {
            id: self.id,
            reply: tx,
        })?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// `monitor_cond_change`: new conditions for some tables (`None` = all
    /// rows). The outcome arrives as [`MonitorEvent::ConditionChanged`], after
    /// the rows entering and leaving the condition.
    pub async fn change_conditions(
        &self,
        changes: Vec<(String, Option<Vec<Condition>>)>,
    ) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.client.send(Command::ChangeConditions {
            id: self.id,
            changes,
            reply: tx,
        })?;
        Ok(rx.await.map_err(|_| Error::Closed)??)
    }

    /// `monitor_cancel`; [`MonitorEvent::Stopped`] follows.
    pub fn cancel(&mut self) -> Result<(), Error> {
        self.cancelled = true;
        self.client.send(Command::CancelMonitor { id: self.id })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if !self.cancelled {
            let _ = self.client.send(Command::CancelMonitor { id: self.id });
        }
    }
}

/// A lock request. Dropping it unlocks.
#[derive(Debug)]
pub struct Lock {
    name: String,
    locked_on_reply: bool,
    events: mpsc::UnboundedReceiver<LockEvent>,
    client: Client,
    released: bool,
}

impl Lock {
    /// The lock name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lock was held when the server answered the request.
    pub fn locked_on_reply(&self) -> bool {
        self.locked_on_reply
    }

    /// The next change: acquired, stolen, lost with the connection.
    pub async fn next(&mut self) -> Option<LockEvent> {
        self.events.recv().await
    }

    /// The event receiver.
    pub fn events(&mut self) -> &mut mpsc::UnboundedReceiver<LockEvent> {
        &mut self.events
    }

    /// `unlock`.
    pub async fn unlock(mut self) -> Result<(), Error> {
        self.released = true;
        match self
            .client
            .request(RequestKind::Unlock(self.name.clone()))
            .await?
        {
            Reply::Unlocked => Ok(()),
            _ => Err(Error::UnexpectedReply),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.released {
            let (tx, _rx) = oneshot::channel();
            let _ = self.client.send(Command::Request {
                request: RequestKind::Unlock(self.name.clone()),
                reply: tx,
            });
        }
    }
}
