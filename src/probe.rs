//! `augur probe`: accept one switch connection, complete the OpenFlow
//! handshake (HELLO, version negotiation, FEATURES_REQUEST) and print every
//! message the switch sends until the time is up.
//!
//! It is the first thing to run against a new switch, and what the demo and
//! the smoke tests use to prove a switch reaches augur. The handshake is a
//! small sans-I/O state machine ([`Handshake`]); [`run`] only drives it with
//! tokio.
//!
//! Output contract (the demo and the Mininet tests read it): the first line
//! names the bound address (`listening on tcp:IP:PORT`, or
//! `{"event":"listening","address":"IP:PORT"}` with `--json`), and once the
//! switch answers FEATURES_REQUEST a line names its datapath id as 16 hex
//! digits (`switch dpid=0000000000000001 ...`, or `{"event":"switch",
//! "datapath_id":"0000000000000001",...}`).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use augur_openflow::msg::Hello;
use augur_openflow::{Body, Deframer, HEADER_LEN, Message, MsgType, Version};
use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, timeout_at};

use crate::cli::ProbeArgs;

/// The OpenFlow versions augur speaks, as a HELLO version bitmap.
const SUPPORTED_VERSIONS: u32 = 1 << Version::OF13.0 | 1 << Version::OF14.0;

/// The version augur opens with: the highest it speaks.
const OPENING_VERSION: Version = Version::OF14;

/// `OFPHET_VERSIONBITMAP`, the HELLO element listing the versions a peer speaks.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// Runs `augur probe`.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(probe(args))
}

async fn probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let out = Output { json: args.json };
    // A signal stream rather than `ctrl_c()`: it can be awaited again after
    // each select, and a registration failure is an error, not an interrupt.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;

    let listener = TcpListener::bind(args.listen.0)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    out.listening(listener.local_addr()?);

    let (mut stream, peer) = tokio::select! {
        accepted = timeout_at(deadline, listener.accept()) => match accepted {
            Ok(accepted) => accepted.context("accepting the switch's connection failed")?,
            Err(_) => bail!("no switch connected within {} s", args.timeout),
        },
        _ = interrupt.recv() => bail!("interrupted before a switch connected"),
    };
    // One switch per probe: later connection attempts are refused.
    drop(listener);
    stream.set_nodelay(true)?;
    out.connected(peer);

    let mut handshake = Handshake::default();
    send(&mut stream, &out, &handshake.start()).await?;

    let deframer = Deframer::default();
    let mut buf = BytesMut::with_capacity(4096);
    let ended = loop {
        while let Some(frame) = deframer
            .next_frame(&mut buf)
            .context("the switch sent a stream that is not OpenFlow")?
        {
            let message = match Message::decode(&frame) {
                Ok(message) => message,
                Err(e) => {
                    // Framing is intact, so the connection can go on.
                    out.undecodable(&frame, &e);
                    continue;
                }
            };
            out.received(&message);
            let step = handshake.on_message(&message, &frame)?;
            for reply in &step.send {
                send(&mut stream, &out, reply).await?;
            }
            if let Some(switch) = &step.learned {
                out.switch(switch);
            }
        }
        let read = tokio::select! {
            read = timeout_at(deadline, stream.read_buf(&mut buf)) => match read {
                Ok(read) => read.context("reading from the switch failed")?,
                Err(_) => break format!("within {} s", args.timeout),
            },
            _ = interrupt.recv() => break "before the probe was interrupted".to_owned(),
        };
        if read == 0 {
            out.closed();
            break "before it closed the connection".to_owned();
        }
    };

    if handshake.switch.is_none() {
        bail!("the switch at {peer} did not complete the handshake (no FEATURES_REPLY) {ended}");
    }
    Ok(())
}

async fn send(stream: &mut TcpStream, out: &Output, message: &Message) -> anyhow::Result<()> {
    let bytes = message.encode()?;
    stream
        .write_all(&bytes)
        .await
        .context("writing to the switch failed")?;
    out.sent(message);
    Ok(())
}

/// What the handshake wants done after a message from the switch.
#[derive(Debug, Default, PartialEq)]
struct Step {
    /// Messages to send, in order.
    send: Vec<Message>,
    /// The switch's identity, when this message revealed it.
    learned: Option<SwitchSummary>,
}

/// The controller side of the OpenFlow handshake, without I/O.
#[derive(Debug)]
struct Handshake {
    next_xid: u32,
    /// The negotiated version, once the switch's HELLO has arrived.
    version: Option<Version>,
    /// The transaction id of our FEATURES_REQUEST.
    features_xid: Option<u32>,
    /// What FEATURES_REPLY told.
    switch: Option<SwitchSummary>,
}

impl Default for Handshake {
    fn default() -> Self {
        Handshake {
            next_xid: 1,
            version: None,
            features_xid: None,
            switch: None,
        }
    }
}

impl Handshake {
    fn xid(&mut self) -> u32 {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        xid
    }

    /// Our HELLO, offering every version we speak.
    fn start(&mut self) -> Message {
        let mut element = Vec::with_capacity(8);
        element.extend_from_slice(&HELLO_ELEM_VERSIONBITMAP.to_be_bytes());
        element.extend_from_slice(&8u16.to_be_bytes());
        element.extend_from_slice(&SUPPORTED_VERSIONS.to_be_bytes());
        let hello = Hello {
            raw: Bytes::from(element),
        };
        Message::new(OPENING_VERSION, self.xid(), Body::Hello(hello))
    }

    /// Reacts to one decoded message; `frame` is its wire form.
    fn on_message(&mut self, message: &Message, frame: &[u8]) -> anyhow::Result<Step> {
        let mut step = Step::default();
        match &message.body {
            Body::Hello(_) if self.version.is_none() => {
                let version = negotiate(message.version, hello_version_bitmap(frame))?;
                self.version = Some(version);
                let xid = self.xid();
                self.features_xid = Some(xid);
                step.send
                    .push(Message::new(version, xid, Body::FeaturesRequest));
            }
            Body::EchoRequest(payload) => step.send.push(Message::new(
                message.version,
                message.xid,
                Body::EchoReply(payload.clone()),
            )),
            Body::FeaturesReply(_) if self.features_xid == Some(message.xid) => {
                let summary = SwitchSummary::from_frame(message.version, frame)
                    .context("FEATURES_REPLY is too short")?;
                self.switch = Some(summary);
                step.learned = Some(summary);
            }
            _ => {}
        }
        Ok(step)
    }
}

/// The version to speak, from the switch's HELLO version and its version
/// bitmap if it sent one (OpenFlow 1.3.5 §6.3.1).
fn negotiate(their_version: Version, their_bitmap: Option<u32>) -> anyhow::Result<Version> {
    let chosen = match their_bitmap {
        Some(bitmap) => {
            let common = bitmap & SUPPORTED_VERSIONS;
            if common == 0 {
                None
            } else {
                // Highest common version; bit n is wire version n (< 32).
                u8::try_from(31 - common.leading_zeros()).ok().map(Version)
            }
        }
        None => Some(their_version.min(OPENING_VERSION)).filter(|v| v.is_supported()),
    };
    chosen.with_context(|| {
        format!(
            "no common OpenFlow version: the switch offers {} (bitmap {}), augur speaks {} and {}",
            their_version,
            their_bitmap.map_or_else(|| "none".to_owned(), |b| format!("{b:#x}")),
            Version::OF13,
            Version::OF14,
        )
    })
}

/// The first version bitmap of a HELLO's elements, if it has one. Reads the
/// wire form so it does not depend on how the codec models HELLO elements.
fn hello_version_bitmap(frame: &[u8]) -> Option<u32> {
    let mut rest = frame.get(HEADER_LEN..)?;
    while rest.len() >= 4 {
        let elem_type = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < 4 || len > rest.len() {
            return None;
        }
        if elem_type == HELLO_ELEM_VERSIONBITMAP {
            let bitmap = rest.get(4..len.min(8))?;
            let bitmap: &[u8; 4] = bitmap.try_into().ok()?;
            return Some(u32::from_be_bytes(*bitmap));
        }
        // Elements are padded to 8 bytes.
        let padded = len.div_ceil(8).saturating_mul(8).min(rest.len());
        rest = &rest[padded..];
    }
    None
}

/// What FEATURES_REPLY says about a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SwitchSummary {
    version: Version,
    datapath_id: u64,
    n_buffers: u32,
    n_tables: u8,
    auxiliary_id: u8,
    capabilities: u32,
}

impl SwitchSummary {
    /// Reads `ofp_switch_features` (OpenFlow 1.3/1.4: 32 bytes with the header).
    fn from_frame(version: Version, frame: &[u8]) -> Option<SwitchSummary> {
        let b: &[u8; 24] = frame.get(HEADER_LEN..HEADER_LEN + 24)?.try_into().ok()?;
        Some(SwitchSummary {
            version,
            datapath_id: u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            n_buffers: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            n_tables: b[12],
            auxiliary_id: b[13],
            capabilities: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
        })
    }
}

impl fmt::Display for SwitchSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dpid={:016x} version={} n_tables={} n_buffers={} auxiliary_id={} capabilities={:#x}",
            self.datapath_id,
            self.version,
            self.n_tables,
            self.n_buffers,
            self.auxiliary_id,
            self.capabilities
        )
    }
}

/// Prints the probe's events as text or JSON lines. Standard output is
/// line-buffered, so each event reaches a pipe as soon as it happens.
struct Output {
    json: bool,
}

impl Output {
    fn listening(&self, addr: SocketAddr) {
        if self.json {
            println!(
                "{}",
                json!({"event": "listening", "address": addr.to_string()})
            );
        } else {
            println!("listening on tcp:{addr}");
        }
    }

    fn connected(&self, peer: SocketAddr) {
        if self.json {
            println!(
                "{}",
                json!({"event": "connected", "peer": peer.to_string()})
            );
        } else {
            println!("switch connected from {peer}");
        }
    }

    fn sent(&self, message: &Message) {
        if self.json {
            println!("{}", json!({"event": "sent", "message": message}));
        } else {
            println!("sent: {message}");
        }
    }

    fn received(&self, message: &Message) {
        if self.json {
            println!("{}", json!({"event": "received", "message": message}));
        } else {
            println!("received: {message}");
        }
    }

    fn undecodable(&self, frame: &[u8], error: &augur_openflow::DecodeError) {
        let msg_type = augur_openflow::Header::peek(frame).map_or(MsgType(0), |h| h.msg_type);
        if self.json {
            println!(
                "{}",
                json!({
                    "event": "undecodable",
                    "type": msg_type.to_string(),
                    "error": error.to_string(),
                    "hex": hex::encode(frame),
                })
            );
        } else {
            println!(
                "received an undecodable {msg_type} ({error}): {}",
                hex::encode(frame)
            );
        }
    }

    fn switch(&self, switch: &SwitchSummary) {
        if self.json {
            println!(
                "{}",
                json!({
                    "event": "switch",
                    "datapath_id": format!("{:016x}", switch.datapath_id),
                    "version": switch.version.to_string(),
                    "n_tables": switch.n_tables,
                    "n_buffers": switch.n_buffers,
                    "auxiliary_id": switch.auxiliary_id,
                    "capabilities": switch.capabilities,
                })
            );
        } else {
            println!("switch {switch}");
        }
    }

    fn closed(&self) {
        if self.json {
            println!("{}", json!({"event": "closed"}));
        } else {
            println!("the switch closed the connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Message {
        Message::decode(bytes).unwrap()
    }

    #[test]
    fn hello_offers_openflow_13_and_14() {
        let hello = Handshake::default().start().encode().unwrap();
        assert_eq!(
            &hello[..],
            &[5, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x30]
        );
    }

    #[test]
    fn version_negotiation() {
        let table: &[(u8, Option<u32>, Option<u8>)] = &[
            // OVS with protocols=OpenFlow13,OpenFlow14.
            (5, Some(0x30), Some(5)),
            // OVS with OpenFlow10..OpenFlow15: highest common is 1.4.
            (6, Some(0x72), Some(5)),
            (4, Some(0x12), Some(4)),
            (4, None, Some(4)),
            (6, None, Some(5)),
            (1, Some(0x02), None),
            (1, None, None),
            (6, Some(0x40), None),
        ];
        for &(version, bitmap, expected) in table {
            let got = negotiate(Version(version), bitmap).ok().map(|v| v.0);
            assert_eq!(got, expected, "version {version} bitmap {bitmap:?}");
        }
    }

    #[test]
    fn bitmap_is_found_among_hello_elements() {
        let with_bitmap = [5, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x30];
        assert_eq!(hello_version_bitmap(&with_bitmap), Some(0x30));
        // An unknown 5-byte element (padded to 8) before the bitmap.
        let after_unknown = [
            5, 0, 0, 24, 0, 0, 0, 1, 0, 9, 0, 5, 0xee, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0x10,
        ];
        assert_eq!(hello_version_bitmap(&after_unknown), Some(0x10));
        assert_eq!(hello_version_bitmap(&[4, 0, 0, 8, 0, 0, 0, 1]), None);
        // Element lengths that overrun or underrun are not trusted.
        assert_eq!(
            hello_version_bitmap(&[5, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 80, 0, 0, 0, 0x30]),
            None
        );
        assert_eq!(
            hello_version_bitmap(&[5, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 2, 0, 0, 0, 0x30]),
            None
        );
        // A bitmap element with no bitmap in it does not borrow the next element's bytes.
        assert_eq!(
            hello_version_bitmap(&[5, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 0, 0, 9, 0, 8]),
            None
        );
        assert_eq!(hello_version_bitmap(&[]), None);
    }

    #[test]
    fn handshake_requests_features_and_learns_the_switch() {
        let mut hs = Handshake::default();
        let _ = hs.start();
        let hello = [5, 0, 0, 16, 0, 0, 0, 9, 0, 1, 0, 8, 0, 0, 0, 0x30];
        let step = hs.on_message(&decode(&hello), &hello).unwrap();
        assert_eq!(
            step.send,
            [Message::new(Version::OF14, 2, Body::FeaturesRequest)]
        );

        // A reply to someone else's request teaches nothing.
        let mut reply = vec![5, 6, 0, 32, 0, 0, 0, 7];
        reply.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0xa1]); // datapath_id
        reply.extend_from_slice(&[0, 0, 1, 0, 254, 0, 0, 0]); // buffers, tables, aux, pad
        reply.extend_from_slice(&[0, 0, 0, 0x4f, 0, 0, 0, 0]); // capabilities, reserved
        let step = hs.on_message(&decode(&reply), &reply).unwrap();
        assert_eq!(step, Step::default());

        reply[7] = 2;
        let step = hs.on_message(&decode(&reply), &reply).unwrap();
        let learned = step.learned.unwrap();
        assert_eq!(learned.datapath_id, 0xa1);
        assert_eq!(learned.n_buffers, 256);
        assert_eq!(learned.n_tables, 254);
        assert_eq!(learned.capabilities, 0x4f);
        assert_eq!(
            learned.to_string(),
            "dpid=00000000000000a1 version=OF1.4 n_tables=254 n_buffers=256 \
             auxiliary_id=0 capabilities=0x4f"
        );
        assert_eq!(hs.switch, Some(learned));
    }

    #[test]
    fn echo_requests_are_answered_in_kind() {
        let mut hs = Handshake::default();
        let echo = [4, 2, 0, 11, 0, 0, 0x12, 0x34, 1, 2, 3];
        let step = hs.on_message(&decode(&echo), &echo).unwrap();
        assert_eq!(step.send.len(), 1);
        assert_eq!(
            &step.send[0].encode().unwrap()[..],
            &[4, 3, 0, 11, 0, 0, 0x12, 0x34, 1, 2, 3]
        );
    }

    #[test]
    fn incompatible_switch_is_an_error() {
        let mut hs = Handshake::default();
        let hello = [1, 0, 0, 16, 0, 0, 0, 9, 0, 1, 0, 8, 0, 0, 0, 0x02];
        let err = hs.on_message(&decode(&hello), &hello).unwrap_err();
        assert!(
            err.to_string().contains("no common OpenFlow version"),
            "{err}"
        );
    }

    #[test]
    fn short_features_reply_is_an_error() {
        let mut hs = Handshake {
            features_xid: Some(2),
            version: Some(Version::OF13),
            ..Handshake::default()
        };
        let reply = [4, 6, 0, 16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
        assert!(hs.on_message(&decode(&reply), &reply).is_err());
    }
}
