//! The one place that talks to a switch: drives a [`SwitchSession`] over a
//! byte stream with tokio.
//!
//! Everything that decides what to say lives in the sans-I/O session; this
//! module only moves bytes, arms the session's timer and hands results to
//! whoever asked. A malformed message ends that connection (and only it) with
//! a logged error: after a bad frame the byte stream cannot be trusted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use augur_openflow::msg::{BundleAdd, BundleControl, BundleFlags, ErrorMsg};
use augur_openflow::session::{CloseReason, Event, SessionConfig, SwitchInfo, SwitchSession};
use augur_openflow::{Body, DecodeError, Deframer, EncodeError, Message};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How a request to a switch can fail.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The switch answered with an OpenFlow error.
    #[error("the switch rejected the request: {0}")]
    Rejected(ErrorMsg),
    /// Some messages of a batch were rejected (xid and error of each).
    #[error("the switch rejected {} of the messages", .0.len())]
    PartlyRejected(Vec<(u32, ErrorMsg)>),
    /// No answer in time.
    #[error("the switch did not answer in time")]
    TimedOut,
    /// The message could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    /// The connection is gone.
    #[error("the switch connection is closed")]
    Closed,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionEnd {
    /// The session ended it (timeouts, negotiation, protocol violations).
    #[error("{0}")]
    Session(CloseReason),
    /// The switch sent bytes that are not OpenFlow.
    #[error("the switch sent a stream that is not OpenFlow: {0}")]
    Malformed(DecodeError),
    /// The switch closed the connection.
    #[error("the switch closed the connection")]
    PeerClosed,
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// Every handle was dropped; nobody is listening any more.
    #[error("the controller let go of the connection")]
    Released,
}

enum Command {
    Request {
        body: Body,
        reply: oneshot::Sender<Result<Vec<Message>, RequestError>>,
    },
    Batch {
        bodies: Vec<Body>,
        reply: oneshot::Sender<Result<(), RequestError>>,
    },
}

/// A connected, handshaken switch.
#[derive(Debug, Clone)]
pub struct SwitchHandle {
    info: SwitchInfo,
    peer: SocketAddr,
    commands: mpsc::Sender<Command>,
    next_bundle: Arc<AtomicU32>,
}

impl SwitchHandle {
    /// What the handshake learned.
    pub fn info(&self) -> &SwitchInfo {
        &self.info
    }

    /// The switch's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends a request and waits for its reply (every part of a multipart reply).
    pub async fn request(&self, body: Body) -> Result<Vec<Message>, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request { body, reply })
            .await
            .map_err(|_| RequestError::Closed)?;
        answer.await.map_err(|_| RequestError::Closed)?
    }

    /// Sends messages that have no reply of their own (FLOW_MOD, METER_MOD,
    /// bundle adds...), followed by a barrier, and waits for the barrier:
    /// `Ok` means the switch processed all of them without error.
    pub async fn apply(&self, bodies: Vec<Body>) -> Result<(), RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Batch { bodies, reply })
            .await
            .map_err(|_| RequestError::Closed)?;
        answer.await.map_err(|_| RequestError::Closed)?
    }

    /// Applies messages all or nothing, in order, in one bundle (OpenFlow 1.4
    /// bundles, or the ONF extension OVS accepts in 1.3). On any error the
    /// bundle is discarded and the switch is left as it was.
    pub async fn apply_atomically(&self, bodies: Vec<Body>) -> Result<(), RequestError> {
        let id = self.next_bundle.fetch_add(1, Ordering::Relaxed);
        let flags = BundleFlags::ATOMIC | BundleFlags::ORDERED;
        let version = self.info.version;
        self.request(Body::BundleControl(BundleControl::open(id, flags)))
            .await?;
        let adds = bodies
            .into_iter()
            .map(|body| Body::BundleAdd(BundleAdd::new(id, flags, Message::new(version, 0, body))))
            .collect();
        if let Err(e) = self.apply(adds).await {
            // The switch would discard it when the connection ends anyway;
            // saying so frees it now. Its own failure changes nothing.
            let _ = self
                .request(Body::BundleControl(BundleControl::discard(id, flags)))
                .await;
            return Err(e);
        }
        self.request(Body::BundleControl(BundleControl::commit(id, flags)))
            .await
            .map(|_| ())
    }
}

/// A batch waiting for its barrier.
struct Batch {
    xids: Vec<u32>,
    rejected: Vec<(u32, ErrorMsg)>,
    /// A member we could not encode (it never reached the switch).
    unencodable: Option<EncodeError>,
    reply: oneshot::Sender<Result<(), RequestError>>,
}

/// Drives the handshake on `stream`, then returns a handle for requests, a
/// receiver of the switch's asynchronous messages (PACKET_IN, PORT_STATUS,
/// FLOW_REMOVED, ...), and the task that runs the connection until it ends.
pub async fn connect<S>(
    stream: S,
    peer: SocketAddr,
    config: SessionConfig,
) -> Result<
    (
        SwitchHandle,
        mpsc::Receiver<Message>,
        tokio::task::JoinHandle<ConnectionEnd>,
    ),
    ConnectionEnd,
>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut driver = Driver {
        stream,
        session: SwitchSession::new(config, Instant::now().into_std()),
        deframer: Deframer::default(),
        rx: BytesMut::with_capacity(64 * 1024),
        tx: BytesMut::with_capacity(64 * 1024),
        requests: HashMap::new(),
        batches: HashMap::new(),
        batch_members: HashMap::new(),
        peer,
    };
    let (async_tx, async_rx) = mpsc::channel(1024);
    let info = driver.handshake(&async_tx).await?;
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let task = tokio::spawn(async move { driver.run(commands_rx, async_tx).await });
    Ok((
        SwitchHandle {
            info,
            peer,
            commands: commands_tx,
            next_bundle: Arc::new(AtomicU32::new(1)),
        },
        async_rx,
        task,
    ))
}

struct Driver<S> {
    stream: S,
    session: SwitchSession,
    deframer: Deframer,
    rx: BytesMut,
    tx: BytesMut,
    requests: HashMap<u32, oneshot::Sender<Result<Vec<Message>, RequestError>>>,
    /// Batches by the xid of their closing barrier.
    batches: HashMap<u32, Batch>,
    /// Members of open batches: message xid → barrier xid.
    batch_members: HashMap<u32, u32>,
    peer: SocketAddr,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    async fn handshake(
        &mut self,
        async_tx: &mpsc::Sender<Message>,
    ) -> Result<SwitchInfo, ConnectionEnd> {
        loop {
            self.flush().await?;
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Ready(info) => return Ok(*info),
                    Event::Closed(reason) => return Err(ConnectionEnd::Session(reason)),
                    Event::Async(msg) => {
                        let _ = async_tx.try_send(msg);
                    }
                    other => tracing::debug!(peer = %self.peer, ?other, "event during handshake"),
                }
            }
            self.step(None).await?;
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        async_tx: mpsc::Sender<Message>,
    ) -> ConnectionEnd {
        let end = loop {
            if let Err(end) = self.flush().await {
                break end;
            }
            if let Some(end) = self.dispatch(&async_tx) {
                break end;
            }
            if let Err(end) = self.step(Some(&mut commands)).await {
                break end;
            }
        };
        tracing::info!(peer = %self.peer, "switch connection ended: {end}");
        for (_, reply) in self.requests.drain() {
            let _ = reply.send(Err(RequestError::Closed));
        }
        for (_, batch) in self.batches.drain() {
            let _ = batch.reply.send(Err(RequestError::Closed));
        }
        end
    }

    /// Waits for one thing to happen: bytes, a command, or the session's timer.
    async fn step(
        &mut self,
        commands: Option<&mut mpsc::Receiver<Command>>,
    ) -> Result<(), ConnectionEnd> {
        let wake = self.session.poll_timeout().map(Instant::from_std);
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let command = async {
            match commands {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = self.stream.read_buf(&mut self.rx) => {
                if read? == 0 {
                    return Err(ConnectionEnd::PeerClosed);
                }
                self.receive()
            }
            command = command => match command {
                Some(command) => self.command(command),
                None => Err(ConnectionEnd::Released),
            },
            () = sleep => {
                self.session.handle_timeout(std::time::Instant::now());
                Ok(())
            }
        }
    }

    fn receive(&mut self) -> Result<(), ConnectionEnd> {
        while let Some(frame) = self
            .deframer
            .next_frame(&mut self.rx)
            .map_err(ConnectionEnd::Malformed)?
        {
            let msg = Message::decode(&frame).map_err(|e| {
                tracing::error!(peer = %self.peer, frame = %hex::encode(&frame), "undecodable message: {e}");
                ConnectionEnd::Malformed(e)
            })?;
            tracing::trace!(peer = %self.peer, "received {msg}");
            self.session.handle_message(msg, std::time::Instant::now());
        }
        Ok(())
    }

    fn command(&mut self, command: Command) -> Result<(), ConnectionEnd> {
        let now = std::time::Instant::now();
        match command {
            Command::Request { body, reply } => match self.session.request(body, now) {
                Ok(xid) => {
                    self.requests.insert(xid, reply);
                }
                Err(_) => {
                    let _ = reply.send(Err(RequestError::Closed));
                }
            },
            Command::Batch { bodies, reply } => {
                let mut xids = Vec::with_capacity(bodies.len());
                for body in bodies {
                    match self.session.send(body) {
                        Ok(xid) => xids.push(xid),
                        Err(_) => {
                            let _ = reply.send(Err(RequestError::Closed));
                            return Ok(());
                        }
                    }
                }
                match self.session.request(Body::BarrierRequest, now) {
                    Ok(barrier) => {
                        for xid in &xids {
                            self.batch_members.insert(*xid, barrier);
                        }
                        self.batches.insert(
                            barrier,
                            Batch {
                                xids,
                                rejected: Vec::new(),
                                unencodable: None,
                                reply,
                            },
                        );
                    }
                    Err(_) => {
                        let _ = reply.send(Err(RequestError::Closed));
                    }
                }
            }
        }
        Ok(())
    }

    /// Routes the session's events to whoever waits for them.
    fn dispatch(&mut self, async_tx: &mpsc::Sender<Message>) -> Option<ConnectionEnd> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Reply { xid, messages } => {
                    if let Some(batch) = self.batches.remove(&xid) {
                        for member in &batch.xids {
                            self.batch_members.remove(member);
                        }
                        let result = match batch.unencodable {
                            Some(e) => Err(RequestError::Encode(e)),
                            None if batch.rejected.is_empty() => Ok(()),
                            None => Err(RequestError::PartlyRejected(batch.rejected)),
                        };
                        let _ = batch.reply.send(result);
                    } else if let Some(reply) = self.requests.remove(&xid) {
                        let _ = reply.send(Ok(messages));
                    }
                }
                Event::Rejected { xid, error } => {
                    if let Some(reply) = self.requests.remove(&xid) {
                        let _ = reply.send(Err(RequestError::Rejected(error)));
                    } else if let Some(batch) = self
                        .batch_members
                        .get(&xid)
                        .and_then(|barrier| self.batches.get_mut(barrier))
                    {
                        batch.rejected.push((xid, error));
                    } else {
                        tracing::warn!(peer = %self.peer, xid, "switch error: {error}");
                    }
                }
                Event::TimedOut { xid } => {
                    if let Some(reply) = self.requests.remove(&xid) {
                        let _ = reply.send(Err(RequestError::TimedOut));
                    } else if let Some(batch) = self.batches.remove(&xid) {
                        for member in &batch.xids {
                            self.batch_members.remove(member);
                        }
                        let _ = batch.reply.send(Err(RequestError::TimedOut));
                    }
                }
                Event::Async(msg) => {
                    if async_tx.try_send(msg).is_err() {
                        // Nobody reads fast enough: dropping a sample is
                        // better than stalling the switch connection.
                        tracing::debug!(peer = %self.peer, "asynchronous message dropped");
                    }
                }
                Event::Ready(_) => {}
                Event::Closed(reason) => return Some(ConnectionEnd::Session(reason)),
            }
        }
        None
    }

    /// Writes everything the session wants sent.
    async fn flush(&mut self) -> Result<(), ConnectionEnd> {
        while let Some(msg) = self.session.poll_transmit() {
            tracing::trace!(peer = %self.peer, "sending {msg}");
            let start = self.tx.len();
            if let Err(e) = msg.encode_into(&mut self.tx) {
                // A message we built and cannot encode is our bug, not the
                // switch's: report it to whoever asked and carry on.
                tracing::error!(peer = %self.peer, xid = msg.xid, "cannot encode {}: {e}", msg.body.msg_type(msg.version));
                self.tx.truncate(start);
                if let Some(reply) = self.requests.remove(&msg.xid) {
                    let _ = reply.send(Err(RequestError::Encode(e)));
                } else if let Some(batch) = self
                    .batch_members
                    .get(&msg.xid)
                    .and_then(|barrier| self.batches.get_mut(barrier))
                {
                    // Its barrier still goes out; the batch then fails.
                    batch.unencodable.get_or_insert(e);
                }
                continue;
            }
        }
        if !self.tx.is_empty() {
            self.stream.write_all(&self.tx).await?;
            self.tx.clear();
        }
        Ok(())
    }
}
