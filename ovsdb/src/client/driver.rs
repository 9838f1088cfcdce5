//! The task that owns the socket: connects, pumps bytes between the socket
//! and the session, runs the session's timer, and reconnects with backoff.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;
use tokio_util::codec::Decoder;
use tracing::{debug, info, warn};

use super::codec::JsonRpcCodec;
use super::{ClientConfig, Command, Error, RequestKind, tls};
use crate::session::{
    Event, LockEvent, MonitorEvent, MonitorId, Reply, RequestError, RequestId, Session,
};
use crate::target::Target;

trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

type BoxedConnection = Box<dyn Connection>;

/// Reads are issued with at least this much free buffer space, so a large
/// snapshot arrives in few reads; the buffer only grows as bytes arrive.
const READ_CHUNK: usize = 64 * 1024;

struct Connector {
    targets: Vec<Target>,
    tls: Option<TlsConnector>,
    timeout: Duration,
    next: usize,
}

impl Connector {
    async fn connect_one(&self, target: &Target) -> io::Result<BoxedConnection> {
        let attempt = async {
            match target {
                #[cfg(unix)]
                Target::Unix(path) => {
                    let s = tokio::net::UnixStream::connect(path).await?;
                    Ok(Box::new(s) as BoxedConnection)
                }
                #[cfg(not(unix))]
                Target::Unix(_) => Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unix sockets need a Unix system",
                )),
                Target::Tcp { host, port } => {
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Ok(Box::new(s) as BoxedConnection)
                }
                Target::Ssl { host, port } => {
                    let tls = self.tls.as_ref().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "ssl: target without TLS settings",
                        )
                    })?;
                    let name = rustls::pki_types::ServerName::try_from(host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let s = TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    let s = tls.connect(name, s).await?;
                    Ok(Box::new(s) as BoxedConnection)
                }
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection attempt timed out",
                ))
            })
    }

    /// Tries each target once, starting after the one used last.
    async fn connect_any(&mut self) -> Result<BoxedConnection, (String, io::Error)> {
        let mut last = None;
        for _ in 0..self.targets.len() {
            let index = self.next % self.targets.len().max(1);
            self.next = index + 1;
            let Some(target) = self.targets.get(index).cloned() else {
                break;
            };
            match self.connect_one(&target).await {
                Ok(c) => {
                    info!(%target, "connected to OVSDB server");
                    // Stay on a working target after the next failure.
                    self.next = index;
                    return Ok(c);
                }
                Err(e) => {
                    debug!(%target, error = %e, "connection attempt failed");
                    last = Some((target.to_string(), e));
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            (
                "(none)".into(),
                io::Error::new(io::ErrorKind::InvalidInput, "no target"),
            )
        }))
    }
}

/// Starts the driver task. With `wait_for_first`, fails unless a target
/// answers now; without, connects (and keeps trying) in the background.
pub(super) async fn start(
    config: ClientConfig,
    wait_for_first: bool,
) -> Result<mpsc::UnboundedSender<Command>, Error> {
    let tls = match (&config.tls, config.targets.iter().any(Target::is_ssl)) {
        (Some(t), _) => Some(tls::connector(t)?),
        (None, true) => {
            return Err(Error::Tls(
                "an ssl: target needs a private key, certificate and CA certificate".into(),
            ));
        }
        (None, false) => None,
    };
    let mut connector = Connector {
        targets: config.targets.clone(),
        tls,
        timeout: config.connect_timeout,
        next: 0,
    };
    let first = if wait_for_first {
        Some(
            connector
                .connect_any()
                .await
                .map_err(|(target, source)| Error::Connect { target, source })?,
        )
    } else {
        None
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = Driver {
        session: Session::new(config.session.clone(), Instant::now()),
        connector,
        min_backoff: config.min_backoff,
        max_backoff: config.max_backoff.max(config.min_backoff),
        commands: rx,
        replies: HashMap::new(),
        monitors: HashMap::new(),
        locks: HashMap::new(),
        lock_requests: HashMap::new(),
        unlock_requests: HashMap::new(),
    };
    tokio::spawn(driver.run(first));
    Ok(tx)
}

enum Ended {
    Shutdown,
    Lost(String),
}

struct Driver {
    session: Session,
    connector: Connector,
    min_backoff: Duration,
    max_backoff: Duration,
    commands: mpsc::UnboundedReceiver<Command>,
    replies: HashMap<RequestId, oneshot::Sender<Result<Reply, RequestError>>>,
    monitors: HashMap<MonitorId, mpsc::UnboundedSender<MonitorEvent>>,
    locks: HashMap<String, mpsc::UnboundedSender<LockEvent>>,
    lock_requests: HashMap<RequestId, String>,
    unlock_requests: HashMap<RequestId, String>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Driver {
    async fn run(mut self, first: Option<BoxedConnection>) {
        let mut next = match first {
            Some(c) => Some(c),
            None => match self.connector.connect_any().await {
                Ok(c) => Some(c),
                Err((target, e)) => {
                    warn!(%target, error = %e, "connection failed; retrying with backoff");
                    None
                }
            },
        };
        let mut backoff = self.min_backoff;
        loop {
            let connection = match next.take() {
                Some(c) => c,
                None => match self.reconnect(&mut backoff).await {
                    Some(c) => c,
                    None => return,
                },
            };
            self.session.connected(now());
            self.dispatch();
            let received_before = self.session.stats().messages_received;
            let ended = self.serve(connection).await;
            self.session.disconnected();
            self.dispatch();
            match ended {
                Ended::Shutdown => {
                    debug!("all client handles dropped; closing the OVSDB connection");
                    return;
                }
                Ended::Lost(reason) => warn!(%reason, "OVSDB connection lost; reconnecting"),
            }
            // A connection that carried traffic proves the server healthy:
            // start the backoff afresh rather than where it left off.
            if self.session.stats().messages_received > received_before {
                backoff = self.min_backoff;
            }
        }
    }

    /// Waits out the backoff (serving commands meanwhile, which fail fast
    /// for want of a connection) and tries the targets, until one answers.
    /// `None` when every handle was dropped.
    async fn reconnect(&mut self, backoff: &mut Duration) -> Option<BoxedConnection> {
        loop {
            let now = tokio::time::Instant::now();
            let wake = now
                .checked_add(*backoff)
                .unwrap_or(now + Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    command = self.commands.recv() => match command {
                        Some(c) => {
                            self.handle_command(c);
                            self.dispatch();
                        }
                        None => return None,
                    },
                }
            }
            match self.connector.connect_any().await {
                Ok(c) => return Some(c),
                Err((target, e)) => {
                    *backoff = backoff.saturating_mul(2).min(self.max_backoff);
                    warn!(%target, error = %e, retry_in = ?*backoff, "reconnect failed");
                }
            }
        }
    }

    async fn serve(&mut self, connection: BoxedConnection) -> Ended {
        let (mut reader, mut writer) = tokio::io::split(connection);
        let mut codec = JsonRpcCodec::new(self.session_limits());
        let mut read_buf = BytesMut::new();
        let mut write_buf: Vec<u8> = Vec::new();
        loop {
            while let Some(bytes) = self.session.poll_transmit() {
                if write_buf.is_empty() {
                    write_buf = bytes;
                } else {
                    write_buf.extend_from_slice(&bytes);
                }
            }
            self.dispatch();
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            if read_buf.capacity() - read_buf.len() < READ_CHUNK / 2 {
                read_buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                read = reader.read_buf(&mut read_buf) => match read {
                    Ok(0) => return Ended::Lost("the server closed the connection".into()),
                    Ok(_) => {
                        let at = now();
                        loop {
                            match codec.decode(&mut read_buf) {
                                Ok(Some(message)) => {
                                    if let Err(e) = self.session.handle_message(message, at) {
                                        return Ended::Lost(e.to_string());
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => return Ended::Lost(e.to_string()),
                            }
                        }
                    }
                    Err(e) => return Ended::Lost(format!("read: {e}")),
                },
                written = writer.write(&write_buf), if !write_buf.is_empty() => match written {
                    Ok(0) => return Ended::Lost("the connection refused more data".into()),
                    Ok(n) => {
                        write_buf.drain(..n.min(write_buf.len()));
                    }
                    Err(e) => return Ended::Lost(format!("write: {e}")),
                },
                command = self.commands.recv() => match command {
                    Some(c) => self.handle_command(c),
                    None => {
                        // Let an unlock or cancel sent by a dropped handle go out.
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Some(bytes) = self.session.poll_transmit() {
                                write_buf.extend_from_slice(&bytes);
                            }
                            let _ = writer.write_all(&write_buf).await;
                            let _ = writer.shutdown().await;
                        })
                        .await;
                        return Ended::Shutdown;
                    }
                },
                _ = sleep_until_opt(deadline) => {
                    if let Err(e) = self.session.handle_timeout(now()) {
                        return Ended::Lost(e.to_string());
                    }
                }
            }
        }
    }

    fn session_limits(&self) -> crate::framing::FrameLimits {
        self.session.limits()
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Request { request, reply } => {
                let id = match request {
                    RequestKind::ListDbs => self.session.list_dbs(),
                    RequestKind::GetSchema(db) => self.session.get_schema(&db),
                    RequestKind::Transact {
                        db,
                        ops,
                        checked: true,
                    } => self.session.transact(&db, &ops),
                    RequestKind::Transact {
                        db,
                        ops,
                        checked: false,
                    } => self.session.transact_unchecked(&db, &ops),
                    RequestKind::Echo(params) => self.session.echo(params),
                    RequestKind::Unlock(name) => {
                        let id = self.session.unlock(&name);
                        self.unlock_requests.insert(id, name);
                        id
                    }
                };
                self.replies.insert(id, reply);
            }
            Command::Monitor {
                spec,
                events,
                reply,
            } => {
                let id = self.session.monitor(spec);
                self.monitors.insert(id, events);
                if reply.send(id).is_err() {
                    // The caller gave up waiting; nobody will read the events.
                    self.monitors.remove(&id);
                    self.session.cancel_monitor(id);
                }
            }
            Command::ChangeConditions { id, changes, reply } => {
                let _ = reply.send(self.session.change_conditions(id, changes));
            }
            Command::CancelMonitor { id } => self.session.cancel_monitor(id),
            Command::Replica { id, reply } => {
                let _ = reply.send(self.session.replica(id).cloned());
            }
            Command::Lock {
                name,
                steal,
                events,
                reply,
            } => {
                let fresh = !self.session.has_lock(&name);
                let id = if steal {
                    self.session.steal(&name)
                } else {
                    self.session.lock(&name)
                };
                if fresh {
                    self.locks.insert(name.clone(), events);
                    self.lock_requests.insert(id, name);
                }
                self.replies.insert(id, reply);
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.session.stats());
            }
        }
    }

    fn dispatch(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Reply { id, result } => {
                    if let Some(name) = self.lock_requests.remove(&id) {
                        if result.is_err() {
                            self.locks.remove(&name);
                        }
                    }
                    if let Some(name) = self.unlock_requests.remove(&id) {
                        if result.is_ok() {
                            self.locks.remove(&name);
                        }
                    }
                    if let Some(tx) = self.replies.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                Event::Monitor { id, event } => {
                    let stopped = matches!(event, MonitorEvent::Stopped { .. });
                    if let Some(tx) = self.monitors.get(&id) {
                        let _ = tx.send(event);
                    }
                    if stopped {
                        self.monitors.remove(&id);
                    }
                }
                Event::Lock { name, event } => {
                    if let Some(tx) = self.locks.get(&name) {
                        let _ = tx.send(event);
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
