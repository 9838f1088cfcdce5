//! The controller side of one switch connection, as a state machine without I/O.
//!
//! Like `quinn-proto`, the session never touches a socket or a clock: the
//! driver feeds it decoded messages and the current time, and asks it what to
//! send, what happened, and when to wake it next.
//!
//! ```text
//!   driver                          SwitchSession
//!   ──────                          ─────────────
//!   bytes in ─ Deframer ─ decode ─▶ handle_message(msg, now)
//!   timer fired ──────────────────▶ handle_timeout(now)
//!   write to socket ◀───────────── poll_transmit()
//!   act on it ◀─────────────────── poll_event()
//!   arm timer ◀─────────────────── poll_timeout()
//! ```
//!
//! The session negotiates the version (OpenFlow 1.3 required, 1.4 preferred),
//! learns the switch (FEATURES, DESC, PORT_DESC), answers the switch's echo
//! requests, probes an idle switch with its own and declares it dead when they
//! go unanswered, and tracks requests by xid with deadlines, reassembling
//! multipart replies.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::header::Version;
use crate::message::{Body, Message};
use crate::msg::{ConfigFlags, ErrorMsg, Hello, SwitchConfig, SwitchFeatures, negotiate};
use crate::multipart::{Desc, MultipartReplyBody, MultipartRequest};
use crate::port::{Port, PortReason, PortStatus};

/// Timing and version choices of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Versions offered in HELLO; the highest common one is used.
    pub versions: Vec<Version>,
    /// Time the handshake may take, from the connection to the last reply.
    pub handshake_timeout: Duration,
    /// Idle time after which the session sends an ECHO_REQUEST.
    pub echo_interval: Duration,
    /// Time an idle switch has to answer before it is declared dead.
    pub echo_timeout: Duration,
    /// Time a tracked request has to be answered.
    pub request_timeout: Duration,
    /// Bytes of a packet sent to the controller on a table miss or an explicit
    /// output to CONTROLLER without `max_len`.
    pub miss_send_len: u16,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            versions: vec![Version::OF13, Version::OF14],
            handshake_timeout: Duration::from_secs(10),
            echo_interval: Duration::from_secs(5),
            echo_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            miss_send_len: 128,
        }
    }
}

/// What the controller learned about a switch during the handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchInfo {
    /// The negotiated OpenFlow version.
    pub version: Version,
    /// FEATURES_REPLY: datapath id, tables, buffers, capabilities.
    pub features: SwitchFeatures,
    /// DESC reply: manufacturer, hardware, software, serial, datapath description.
    pub desc: Desc,
    /// PORT_DESC reply, kept current by PORT_STATUS.
    pub ports: Vec<Port>,
}

impl fmt::Display for SwitchInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "switch {:016x} speaks {}",
            self.features.datapath_id, self.version
        )?;
        writeln!(f, "  features: {}", self.features)?;
        writeln!(f, "  description: {}", self.desc)?;
        for port in &self.ports {
            writeln!(f, "  port {port}")?;
        }
        Ok(())
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CloseReason {
    /// The switch offers no version we speak.
    NoCommonVersion {
        /// The version in the switch's HELLO header.
        theirs: Version,
    },
    /// The handshake did not finish in time.
    HandshakeTimeout,
    /// The switch did not answer an echo request in time.
    EchoTimeout,
    /// The switch broke the protocol (e.g. a reply before HELLO).
    ProtocolViolation(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::NoCommonVersion { theirs } => {
                write!(f, "no common OpenFlow version (switch offers {theirs})")
            }
            CloseReason::HandshakeTimeout => f.write_str("handshake timed out"),
            CloseReason::EchoTimeout => f.write_str("switch stopped answering echo requests"),
            CloseReason::ProtocolViolation(what) => write!(f, "protocol violation: {what}"),
        }
    }
}

/// Something the driver or the controller above it should act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake finished; requests may be sent.
    Ready(Box<SwitchInfo>),
    /// The reply to a tracked request; all parts of a multipart reply, in order.
    Reply {
        /// The request's transaction id.
        xid: u32,
        /// The reply message(s).
        messages: Vec<Message>,
    },
    /// The switch rejected a message the session sent (tracked or not).
    Rejected {
        /// The transaction id of the rejected message.
        xid: u32,
        /// The switch's error.
        error: ErrorMsg,
    },
    /// A tracked request got no reply in time.
    TimedOut {
        /// The request's transaction id.
        xid: u32,
    },
    /// A message the switch sent on its own: PACKET_IN, FLOW_REMOVED,
    /// PORT_STATUS, an error not tied to a request we sent, ...
    Async(Message),
    /// The session is over; the driver should close the connection.
    Closed(CloseReason),
}

/// Returned when a request is made on a session that cannot carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The handshake has not finished.
    #[error("the switch handshake has not finished")]
    NotReady,
    /// The session has been closed.
    #[error("the switch session is closed")]
    Closed,
}

#[derive(Debug)]
enum Phase {
    /// HELLO sent, waiting for the switch's.
    AwaitingHello,
    /// Version agreed, waiting for FEATURES, DESC and PORT_DESC.
    Learning(Learning),
    /// Handshake done.
    Ready,
    /// Over.
    Closed,
}

#[derive(Debug, Default)]
struct Learning {
    features: Option<SwitchFeatures>,
    desc: Option<Desc>,
    ports: Option<Vec<Port>>,
    features_xid: u32,
    desc_xid: u32,
    ports_xid: u32,
}

#[derive(Debug)]
struct Pending {
    deadline: Instant,
    parts: Vec<Message>,
}

/// The controller's side of one OpenFlow connection.
#[derive(Debug)]
pub struct SwitchSession {
    config: SessionConfig,
    phase: Phase,
    version: Version,
    next_xid: u32,
    handshake_deadline: Instant,
    last_heard: Instant,
    echo: Option<(u32, Instant)>,
    pending: HashMap<u32, Pending>,
    info: Option<SwitchInfo>,
    transmit: VecDeque<Message>,
    events: VecDeque<Event>,
}

impl SwitchSession {
    /// Starts a session on a freshly accepted connection; HELLO is queued.
    pub fn new(config: SessionConfig, now: Instant) -> Self {
        let highest = config
            .versions
            .iter()
            .copied()
            .max()
            .unwrap_or(Version::OF13);
        let mut session = SwitchSession {
            handshake_deadline: now + config.handshake_timeout,
            phase: Phase::AwaitingHello,
            version: highest,
            next_xid: 1,
            last_heard: now,
            echo: None,
            pending: HashMap::new(),
            info: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            config,
        };
        let hello = Body::Hello(Hello::offering(&session.config.versions));
        session.queue(hello);
        session
    }

    /// The negotiated version (before negotiation, the version HELLO is sent in).
    pub fn version(&self) -> Version {
        self.version
    }

    /// What the handshake learned, once it has finished.
    pub fn switch(&self) -> Option<&SwitchInfo> {
        self.info.as_ref()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Sends `body` and expects a reply: an [`Event::Reply`], [`Event::Rejected`]
    /// or [`Event::TimedOut`] will carry the returned xid.
    pub fn request(&mut self, body: Body, now: Instant) -> Result<u32, SessionError> {
        self.check_ready()?;
        let xid = self.queue(body);
        self.pending.insert(
            xid,
            Pending {
                deadline: now + self.config.request_timeout,
                parts: Vec::new(),
            },
        );
        Ok(xid)
    }

    /// Sends `body` without expecting a reply (FLOW_MOD, PACKET_OUT, ...).
    /// The switch reports failure with an [`Event::Rejected`] for the xid;
    /// follow with a BARRIER request to learn when it has been processed.
    pub fn send(&mut self, body: Body) -> Result<u32, SessionError> {
        self.check_ready()?;
        Ok(self.queue(body))
    }

    /// Feeds one message received from the switch.
    pub fn handle_message(&mut self, msg: Message, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.last_heard = now;
        self.echo = None;
        if let Phase::AwaitingHello = self.phase {
            self.on_hello(msg);
            return;
        }
        match msg.body {
            Body::EchoRequest(data) => {
                let reply = Message::new(self.version, msg.xid, Body::EchoReply(data));
                self.transmit.push_back(reply);
            }
            Body::EchoReply(_) => {}
            Body::Hello(_) => self.close(CloseReason::ProtocolViolation(
                "second HELLO on the connection".into(),
            )),
            _ if matches!(self.phase, Phase::Learning(_)) => self.on_learning(msg),
            _ => self.on_ready(msg),
        }
    }

    /// Advances timers to `now`: handshake and request deadlines, echo probes.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => return,
            Phase::AwaitingHello | Phase::Learning(_) if now >= self.handshake_deadline => {
                self.close(CloseReason::HandshakeTimeout);
                return;
            }
            _ => {}
        }
        match self.echo {
            Some((_, deadline)) if now >= deadline => {
                self.close(CloseReason::EchoTimeout);
                return;
            }
            None if now >= self.last_heard + self.config.echo_interval => {
                let xid = self.queue(Body::EchoRequest(Bytes::new()));
                self.echo = Some((xid, now + self.config.echo_timeout));
            }
            _ => {}
        }
        let mut expired: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(xid, _)| *xid)
            .collect();
        expired.sort_unstable();
        for xid in expired {
            self.pending.remove(&xid);
            self.events.push_back(Event::TimedOut { xid });
        }
    }

    /// The next message to write to the switch.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    /// The next event for the controller.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timers = match self.phase {
            Phase::Closed => return None,
            Phase::AwaitingHello | Phase::Learning(_) => Some(self.handshake_deadline),
            Phase::Ready => None,
        };
        let echo = match self.echo {
            Some((_, deadline)) => deadline,
            None => self.last_heard + self.config.echo_interval,
        };
        let requests = self.pending.values().map(|p| p.deadline).min();
        [timers, Some(echo), requests].into_iter().flatten().min()
    }

    fn check_ready(&self) -> Result<(), SessionError> {
        match self.phase {
            Phase::Ready => Ok(()),
            Phase::Closed => Err(SessionError::Closed),
            _ => Err(SessionError::NotReady),
        }
    }

    fn queue(&mut self, mut body: Body) -> u32 {
        let xid = self.next_xid;
        // Zero is left out: some switches treat xid 0 as "no transaction".
        self.next_xid = self.next_xid.checked_add(1).unwrap_or(1);
        if let Body::BundleAdd(add) = &mut body {
            // OpenFlow 1.4 §7.3.9.7: the bundled message carries the outer
            // message's version and xid (OVS rejects others as MSG_BAD_XID).
            add.message.version = self.version;
            add.message.xid = xid;
        }
        self.transmit
            .push_back(Message::new(self.version, xid, body));
        xid
    }

    fn close(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed;
        self.pending.clear();
        self.events.push_back(Event::Closed(reason));
    }

    fn on_hello(&mut self, msg: Message) {
        let Body::Hello(hello) = &msg.body else {
            self.close(CloseReason::ProtocolViolation(format!(
                "{} before HELLO",
                msg.body.msg_type(msg.version)
            )));
            return;
        };
        let Some(version) = negotiate(&self.config.versions, msg.version, hello) else {
            let error = ErrorMsg::hello_incompatible(&format!(
                "augur supports OpenFlow 1.3 and 1.4, the switch offered {}",
                msg.version
            ));
            self.transmit
                .push_back(Message::new(msg.version, msg.xid, Body::Error(error)));
            self.close(CloseReason::NoCommonVersion {
                theirs: msg.version,
            });
            return;
        };
        self.version = version;
        let features_xid = self.queue(Body::FeaturesRequest);
        self.queue(Body::SetConfig(SwitchConfig {
            flags: ConfigFlags::FRAG_NORMAL,
            miss_send_len: self.config.miss_send_len,
        }));
        let desc_xid = self.queue(Body::MultipartRequest(MultipartRequest::desc()));
        let ports_xid = self.queue(Body::MultipartRequest(MultipartRequest::port_desc()));
        self.phase = Phase::Learning(Learning {
            features_xid,
            desc_xid,
            ports_xid,
            ..Learning::default()
        });
    }

    fn on_learning(&mut self, msg: Message) {
        let Phase::Learning(learning) = &mut self.phase else {
            return;
        };
        let xid = msg.xid;
        match msg.body {
            Body::FeaturesReply(features) if xid == learning.features_xid => {
                learning.features = Some(features);
            }
            Body::MultipartReply(reply) if xid == learning.desc_xid => {
                if let MultipartReplyBody::Desc(desc) = reply.body {
                    learning.desc = Some(desc);
                }
            }
            Body::MultipartReply(reply) if xid == learning.ports_xid => {
                let more = reply.has_more();
                if let MultipartReplyBody::PortDesc(ports) = reply.body {
                    learning.ports.get_or_insert_with(Vec::new).extend(ports);
                }
                if more {
                    return;
                }
                learning.ports.get_or_insert_with(Vec::new);
            }
            Body::Error(error)
                if [learning.features_xid, learning.desc_xid, learning.ports_xid]
                    .contains(&xid) =>
            {
                let reason = format!("handshake request rejected: {error}");
                self.close(CloseReason::ProtocolViolation(reason));
                return;
            }
            body => {
                // Asynchronous messages may arrive during the handshake.
                self.events
                    .push_back(Event::Async(Message::new(msg.version, xid, body)));
                return;
            }
        }
        if let Learning {
            features: Some(_),
            desc: Some(_),
            ports: Some(_),
            ..
        } = learning
        {
            let learning = std::mem::take(learning);
            if let (Some(features), Some(desc), Some(mut ports)) =
                (learning.features, learning.desc, learning.ports)
            {
                ports.sort_by_key(|p| p.port_no);
                let info = SwitchInfo {
                    version: self.version,
                    features,
                    desc,
                    ports,
                };
                self.info = Some(info.clone());
                self.phase = Phase::Ready;
                self.events.push_back(Event::Ready(Box::new(info)));
            }
        }
    }

    fn on_ready(&mut self, msg: Message) {
        let xid = msg.xid;
        if let Body::Error(error) = &msg.body {
            // An error names the xid of the message it rejects, tracked or not.
            self.pending.remove(&xid);
            self.events.push_back(Event::Rejected {
                xid,
                error: error.clone(),
            });
            return;
        }
        if let Body::PortStatus(status) = &msg.body {
            self.apply_port_status(status);
        }
        let is_reply = matches!(
            msg.body,
            Body::MultipartReply(_)
                | Body::BarrierReply
                | Body::FeaturesReply(_)
                | Body::GetConfigReply(_)
                | Body::RoleReply(_)
                | Body::GetAsyncReply(_)
                | Body::BundleControl(_)
                | Body::Experimenter(_)
        );
        if is_reply {
            if let Some(pending) = self.pending.get_mut(&xid) {
                let more = matches!(&msg.body, Body::MultipartReply(r) if r.has_more());
                pending.parts.push(msg);
                if !more {
                    if let Some(done) = self.pending.remove(&xid) {
                        self.events.push_back(Event::Reply {
                            xid,
                            messages: done.parts,
                        });
                    }
                }
                return;
            }
        }
        self.events.push_back(Event::Async(msg));
    }

    fn apply_port_status(&mut self, status: &PortStatus) {
        let Some(info) = self.info.as_mut() else {
            return;
        };
        let port_no = status.desc.port_no;
        info.ports.retain(|p| p.port_no != port_no);
        if status.reason != PortReason::DELETE {
            info.ports.push(status.desc.clone());
            info.ports.sort_by_key(|p| p.port_no);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Capabilities, ErrorType, FlowMod};
    use crate::multipart::{MultipartReply, MultipartReplyFlags};
    use crate::oxm::Match;
    use crate::port::{PortConfig, PortState};
    use crate::{MacAddr, PortNo};

    /// The switch side of the conversation, scripted.
    struct Clock(Instant);

    impl Clock {
        fn advance(&mut self, d: Duration) -> Instant {
            self.0 += d;
            self.0
        }
    }

    fn drain(session: &mut SwitchSession) -> Vec<Message> {
        std::iter::from_fn(|| session.poll_transmit()).collect()
    }

    fn events(session: &mut SwitchSession) -> Vec<Event> {
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    fn port(port_no: u32, name: &str) -> Port {
        Port {
            port_no: PortNo(port_no),
            hw_addr: MacAddr([0x02, 0, 0, 0, 0, port_no as u8]),
            name: name.into(),
            config: PortConfig::default(),
            state: PortState::default(),
            properties: Vec::new(),
        }
    }

    fn features() -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: 0x1,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: Capabilities::FLOW_STATS,
            reserved: 0,
        }
    }

    fn reply(version: Version, xid: u32, more: bool, body: MultipartReplyBody) -> Message {
        let flags = if more {
            MultipartReplyFlags::REPLY_MORE
        } else {
            MultipartReplyFlags::default()
        };
        Message::new(
            version,
            xid,
            Body::MultipartReply(MultipartReply { flags, body }),
        )
    }

    /// Runs the handshake with a switch offering OF1.0–1.4; returns the session.
    fn ready_session(clock: &mut Clock) -> SwitchSession {
        let mut s = SwitchSession::new(SessionConfig::default(), clock.0);
        let hello = drain(&mut s);
        assert!(matches!(
            hello[..],
            [Message {
                body: Body::Hello(_),
                ..
            }]
        ));
        let offer = Hello::offering(&[Version::OF10, Version::OF13, Version::OF14]);
        s.handle_message(Message::new(Version::OF14, 7, Body::Hello(offer)), clock.0);
        let sent = drain(&mut s);
        assert!(sent.iter().all(|m| m.version == Version::OF14));
        let xid_of = |pred: fn(&Body) -> bool| sent.iter().find(|m| pred(&m.body)).unwrap().xid;
        let features_xid = xid_of(|b| matches!(b, Body::FeaturesRequest));
        let desc_xid =
            xid_of(|b| matches!(b, Body::MultipartRequest(r) if *r == MultipartRequest::desc()));
        let ports_xid = xid_of(
            |b| matches!(b, Body::MultipartRequest(r) if *r == MultipartRequest::port_desc()),
        );
        let now = clock.advance(Duration::from_millis(5));
        let v = Version::OF14;
        s.handle_message(
            Message::new(v, features_xid, Body::FeaturesReply(features())),
            now,
        );
        s.handle_message(
            reply(
                v,
                ports_xid,
                true,
                MultipartReplyBody::PortDesc(vec![port(2, "vm2")]),
            ),
            now,
        );
        assert!(
            events(&mut s).is_empty(),
            "a partial port list is not the end"
        );
        s.handle_message(
            reply(
                v,
                ports_xid,
                false,
                MultipartReplyBody::PortDesc(vec![port(1, "vm1")]),
            ),
            now,
        );
        s.handle_message(
            reply(
                v,
                desc_xid,
                false,
                MultipartReplyBody::Desc(Desc::default()),
            ),
            now,
        );
        let ready = events(&mut s);
        let [Event::Ready(info)] = &ready[..] else {
            panic!("expected Ready, got {ready:?}");
        };
        assert_eq!(info.version, Version::OF14);
        assert_eq!(info.features.n_tables, 254);
        let names: Vec<_> = info.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["vm1", "vm2"], "ports are kept in port order");
        s
    }

    #[test]
    fn handshake_negotiates_and_learns_the_switch() {
        let mut clock = Clock(Instant::now());
        let s = ready_session(&mut clock);
        assert_eq!(s.version(), Version::OF14);
        assert!(s.switch().is_some());
    }

    #[test]
    fn an_of10_only_switch_is_refused_with_hello_failed() {
        let now = Instant::now();
        let mut s = SwitchSession::new(SessionConfig::default(), now);
        drain(&mut s);
        s.handle_message(
            Message::new(Version::OF10, 1, Body::Hello(Hello::default())),
            now,
        );
        let sent = drain(&mut s);
        let [
            Message {
                body: Body::Error(e),
                version,
                ..
            },
        ] = &sent[..]
        else {
            panic!("expected an ERROR, got {sent:?}");
        };
        assert_eq!(e.code.error_type(), ErrorType::HELLO_FAILED);
        assert_eq!(*version, Version::OF10);
        assert_eq!(
            events(&mut s),
            [Event::Closed(CloseReason::NoCommonVersion {
                theirs: Version::OF10
            })]
        );
        assert!(s.is_closed());
    }

    #[test]
    fn a_silent_switch_times_out_the_handshake() {
        let mut clock = Clock(Instant::now());
        let mut s = SwitchSession::new(SessionConfig::default(), clock.0);
        let deadline = s.poll_timeout().unwrap();
        assert!(deadline <= clock.0 + Duration::from_secs(10));
        s.handle_timeout(clock.advance(Duration::from_secs(10)));
        assert_eq!(
            events(&mut s),
            [Event::Closed(CloseReason::HandshakeTimeout)]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn the_switch_echo_is_answered_with_its_xid_and_payload() {
        let mut clock = Clock(Instant::now());
        let mut s = ready_session(&mut clock);
        drain(&mut s);
        let payload = Bytes::from_static(b"ping");
        s.handle_message(
            Message::new(Version::OF14, 99, Body::EchoRequest(payload.clone())),
            clock.0,
        );
        assert_eq!(
            drain(&mut s),
            [Message::new(Version::OF14, 99, Body::EchoReply(payload))]
        );
    }

    #[test]
    fn an_idle_switch_is_probed_and_declared_dead_when_silent() {
        let mut clock = Clock(Instant::now());
        let mut s = ready_session(&mut clock);
        drain(&mut s);
        let config = SessionConfig::default();
        // Idle for the interval: a probe goes out.
        let wake = s.poll_timeout().unwrap();
        assert_eq!(wake, clock.0 + config.echo_interval);
        s.handle_timeout(clock.advance(config.echo_interval));
        let sent = drain(&mut s);
        let [
            Message {
                body: Body::EchoRequest(_),
                xid,
                ..
            },
        ] = sent[..]
        else {
            panic!("expected an echo request, got {sent:?}");
        };
        // Answered: the session stays up and probes again later.
        s.handle_message(
            Message::new(Version::OF14, xid, Body::EchoReply(Bytes::new())),
            clock.advance(Duration::from_millis(3)),
        );
        s.handle_timeout(clock.0);
        assert!(!s.is_closed());
        // Next probe unanswered: dead after the echo timeout.
        s.handle_timeout(clock.advance(config.echo_interval));
        assert_eq!(drain(&mut s).len(), 1);
        s.handle_timeout(clock.advance(config.echo_timeout - Duration::from_millis(1)));
        assert!(!s.is_closed());
        s.handle_timeout(clock.advance(Duration::from_millis(1)));
        assert_eq!(events(&mut s), [Event::Closed(CloseReason::EchoTimeout)]);
    }

    #[test]
    fn requests_are_answered_rejected_or_timed_out_by_xid() {
        let mut clock = Clock(Instant::now());
        let mut s = ready_session(&mut clock);
        drain(&mut s);
        let barrier = s.request(Body::BarrierRequest, clock.0).unwrap();
        let lost = s.request(Body::BarrierRequest, clock.0).unwrap();
        let flow = s
            .send(Body::FlowMod(FlowMod::add(0, 10, Match::default(), vec![])))
            .unwrap();
        assert_eq!(drain(&mut s).len(), 3);
        let v = Version::OF14;
        let error = ErrorMsg::hello_incompatible("stand-in error");
        s.handle_message(Message::new(v, flow, Body::Error(error.clone())), clock.0);
        s.handle_message(Message::new(v, barrier, Body::BarrierReply), clock.0);
        s.handle_timeout(clock.advance(SessionConfig::default().request_timeout));
        let got = events(&mut s);
        assert_eq!(
            got,
            [
                Event::Rejected { xid: flow, error },
                Event::Reply {
                    xid: barrier,
                    messages: vec![Message::new(v, barrier, Body::BarrierReply)]
                },
                Event::TimedOut { xid: lost },
            ]
        );
    }

    #[test]
    fn port_status_keeps_the_port_list_current() {
        let mut clock = Clock(Instant::now());
        let mut s = ready_session(&mut clock);
        let status = |reason, p| {
            Message::new(
                Version::OF14,
                0,
                Body::PortStatus(PortStatus { reason, desc: p }),
            )
        };
        s.handle_message(status(PortReason::ADD, port(3, "vm3")), clock.0);
        s.handle_message(status(PortReason::DELETE, port(2, "vm2")), clock.0);
        let names: Vec<_> = s
            .switch()
            .unwrap()
            .ports
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(names, ["vm1", "vm3"]);
        assert_eq!(events(&mut s).len(), 2, "each PORT_STATUS is also an event");
    }

    #[test]
    fn requests_before_the_handshake_are_refused() {
        let mut s = SwitchSession::new(SessionConfig::default(), Instant::now());
        assert_eq!(
            s.request(Body::BarrierRequest, Instant::now()),
            Err(SessionError::NotReady)
        );
    }
}
