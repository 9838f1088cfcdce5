//! One observation of traffic between two endpoints: the flow record.
//!
//! Records are *oriented*: `src` opened the connection and `dst_port` is the
//! destination port of its first packet, which is what augur calls the
//! service port. Everything that produces records (the live observer from
//! conntrack's view, the importers from a log's originator columns) orients
//! them first, with [`FlowRecord::oriented`]; where a source has no notion of
//! direction, [`guess_initiator`] decides from the ports. A reply travelling
//! from a server's port to a client's ephemeral port is therefore counted
//! under the client's connection and never becomes a service of its own.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A point in time: microseconds since the Unix epoch, UTC.
///
/// Microseconds because Zeek writes them and an export must give back what an
/// import read; aggregation only ever looks at whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// The whole second this instant falls in (rounding towards the past, so
    /// instants before 1970 land in the right window too).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The microseconds past [`Timestamp::secs`].
    pub const fn subsec_micros(self) -> u32 {
        // rem_euclid of a positive divisor is in 0..1_000_000.
        self.0.rem_euclid(1_000_000) as u32
    }

    /// Parses decimal seconds as logs write them (`1655071198.444458`,
    /// `1655071198`, `-1.5`), without going through a float so that no
    /// microsecond is lost. Digits past the sixth decimal are truncated.
    pub fn parse_decimal(text: &str) -> Option<Timestamp> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        let (int_part, frac_part) = (int_part.as_bytes(), frac_part.as_bytes());
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let mut secs: i64 = 0;
        for &b in int_part {
            let digit = ascii_digit(b)?;
            secs = secs.checked_mul(10)?.checked_add(i64::from(digit))?;
        }
        let mut micros: i64 = 0;
        let mut scale: i64 = 100_000;
        for &b in frac_part {
            let digit = ascii_digit(b)?;
            micros += i64::from(digit) * scale;
            scale /= 10;
        }
        let total = secs.checked_mul(1_000_000)?.checked_add(micros)?;
        Some(Timestamp(if negative { -total } else { total }))
    }
}

fn ascii_digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

impl fmt::Display for Timestamp {
    /// Decimal seconds with six decimals, as Zeek writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            let abs = self.0.unsigned_abs();
            write!(f, "-{}.{:06}", abs / 1_000_000, abs % 1_000_000)
        } else {
            write!(f, "{}.{:06}", self.secs(), self.subsec_micros())
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One end of a conversation: a VM of the inventory, or an address that no
/// VM owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A VM, by the id the inventory gives it. Shared, because a busy VM
    /// appears in millions of records.
    Vm(Arc<str>),
    /// An address outside the inventory.
    External(IpAddr),
}

impl Endpoint {
    /// A VM endpoint.
    pub fn vm(id: &str) -> Endpoint {
        Endpoint::Vm(Arc::from(id))
    }

    /// Every address outside the inventory taken together (written as the
    /// unspecified address): what a prediction or rule about "the outside
    /// world" is about, since a policy admits clients by network, not one
    /// address at a time.
    pub fn outside() -> Endpoint {
        Endpoint::External(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    /// Whether this is [`Endpoint::outside`].
    pub fn is_outside(&self) -> bool {
        matches!(self, Endpoint::External(ip) if ip.is_unspecified())
    }
}

impl fmt::Display for Endpoint {
    /// A VM's id, or the external address: the text [`Endpoint::from_str`]
    /// reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Vm(id) => f.write_str(id),
            Endpoint::External(ip) => write!(f, "{ip}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    /// An IP address is an external endpoint; any other non-empty text is a
    /// VM id. (VM ids that look like IP addresses would be ambiguous; the
    /// inventory's ids are names.)
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("empty endpoint".to_owned());
        }
        Ok(match s.parse::<IpAddr>() {
            Ok(ip) => Endpoint::External(ip),
            Err(_) => Endpoint::vm(s),
        })
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IP protocol number. A newtype rather than an enum so that protocols
/// augur has no name for are still counted and exported as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Protocol(pub u8);

impl Protocol {
    /// ICMP.
    pub const ICMP: Protocol = Protocol(1);
    /// TCP.
    pub const TCP: Protocol = Protocol(6);
    /// UDP.
    pub const UDP: Protocol = Protocol(17);
    /// ICMPv6.
    pub const ICMPV6: Protocol = Protocol(58);
    /// SCTP.
    pub const SCTP: Protocol = Protocol(132);

    /// The lowercase name logs use, where there is one.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Protocol::ICMP => Some("icmp"),
            Protocol::TCP => Some("tcp"),
            Protocol::UDP => Some("udp"),
            Protocol::ICMPV6 => Some("icmp6"),
            Protocol::SCTP => Some("sctp"),
            _ => None,
        }
    }

    /// Whether the protocol has ports (for the others the "port" fields carry
    /// whatever the source put there: ICMP type and code in Zeek).
    pub const fn has_ports(self) -> bool {
        matches!(self, Protocol::TCP | Protocol::UDP | Protocol::SCTP)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// A name (`tcp`, `UDP`, `icmp`, `icmp6`/`ipv6-icmp`, `sctp`) or a
    /// number 0–255.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(number) = s.parse::<u8>() {
            return Ok(Protocol(number));
        }
        let known = [
            ("tcp", Protocol::TCP),
            ("udp", Protocol::UDP),
            ("icmp", Protocol::ICMP),
            ("icmp6", Protocol::ICMPV6),
            ("ipv6-icmp", Protocol::ICMPV6),
            ("icmpv6", Protocol::ICMPV6),
            ("sctp", Protocol::SCTP),
        ];
        known
            .iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|&(_, protocol)| protocol)
            .ok_or_else(|| format!("unknown protocol {s:?}"))
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What augur's policy did with the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forwarded.
    #[default]
    Allowed,
    /// Dropped by the deny path: an attempt that did not get through.
    Denied,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
        })
    }
}

impl FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("allowed") || s.eq_ignore_ascii_case("allow") {
            Ok(Verdict::Allowed)
        } else if s.eq_ignore_ascii_case("denied") || s.eq_ignore_ascii_case("deny") {
            Ok(Verdict::Denied)
        } else {
            Err(format!("unknown verdict {s:?} (allowed or denied)"))
        }
    }
}

/// Which end of a record opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The record's `src`.
    Src,
    /// The record's `dst`.
    Dst,
}

/// One observation of traffic: a connection from a log, a counter delta of
/// one of augur's flows, or a denied attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// When it was seen (a log's connection start; the observer's poll time).
    pub ts: Timestamp,
    /// The endpoint that opened the connection.
    pub src: Endpoint,
    /// The endpoint it was opened to.
    pub dst: Endpoint,
    /// The initiator's port (0 where the source does not know it).
    pub src_port: u16,
    /// The destination port of the connection's first packet: the service.
    pub dst_port: u16,
    /// The IP protocol.
    pub protocol: Protocol,
    /// Bytes carried, both directions of the connection together.
    pub bytes: u64,
    /// Packets carried, both directions together.
    pub packets: u64,
    /// Connections this record opens: 1 for a log's connection or a
    /// conntrack-new event, 0 for a counter delta of a connection already
    /// counted. Periodicity and services look at openings, volume at bytes.
    pub connections: u32,
    /// Forwarded or dropped.
    pub verdict: Verdict,
    /// The bridge it was seen on, where known (imports have none).
    pub bridge: Option<Arc<str>>,
}

impl FlowRecord {
    /// One allowed TCP connection that opened at `ts` from `src` to the
    /// service `dst_port` of `dst` and carried `bytes` in `packets`, from
    /// an unknown source port and on no known bridge. Callers that need
    /// another protocol or verdict change those fields by struct update.
    pub fn tcp_connection(
        ts: Timestamp,
        src: Endpoint,
        dst: Endpoint,
        dst_port: u16,
        bytes: u64,
        packets: u64,
    ) -> FlowRecord {
        FlowRecord {
            ts,
            src,
            dst,
            src_port: 0,
            dst_port,
            protocol: Protocol::TCP,
            bytes,
            packets,
            connections: 1,
            verdict: Verdict::Allowed,
            bridge: None,
        }
    }

    /// The service this record belongs to: the destination port of the
    /// connection's first packet.
    pub const fn service_port(&self) -> u16 {
        self.dst_port
    }

    /// The record seen from the initiator: unchanged if `initiator` is
    /// [`Side::Src`], ends and ports swapped if the packets were counted in
    /// the reply direction. Volume stays with the connection: a reply's bytes
    /// are the same connection's bytes.
    #[must_use]
    pub fn oriented(mut self, initiator: Side) -> FlowRecord {
        if initiator == Side::Dst {
            std::mem::swap(&mut self.src, &mut self.dst);
            std::mem::swap(&mut self.src_port, &mut self.dst_port);
        }
        self
    }
}

/// The first port of the ephemeral range of Linux (`ip_local_port_range`
/// defaults to 32768–60999); IANA's range (49152–65535, used by Windows and
/// the BSDs) lies inside it.
pub const EPHEMERAL_PORT_MIN: u16 = 32768;

/// Guesses which end opened a connection from its two ports, for sources
/// that do not say (flow exports without a direction flag). The rules, in
/// order:
///
/// 1. ports mean nothing for protocols without them: no guess;
/// 2. exactly one port below 1024 (a well-known, privileged port): that end
///    is the server, the other the initiator;
/// 3. exactly one port in the ephemeral range (≥ 32768): that end is the
///    client, so it is the initiator;
/// 4. otherwise (both low, both ephemeral, both registered): no guess, and the
///    caller keeps the order the source gave.
///
/// A server on an ephemeral port talking to a client that picked a port
/// below 32768 is misread; conntrack's view (the live observer) does not
/// need this guess.
pub fn guess_initiator(protocol: Protocol, src_port: u16, dst_port: u16) -> Option<Side> {
    if !protocol.has_ports() {
        return None;
    }
    let src_low = src_port < 1024;
    let dst_low = dst_port < 1024;
    if src_low != dst_low {
        return Some(if dst_low { Side::Src } else { Side::Dst });
    }
    let src_ephemeral = src_port >= EPHEMERAL_PORT_MIN;
    let dst_ephemeral = dst_port >= EPHEMERAL_PORT_MIN;
    if src_ephemeral != dst_ephemeral {
        return Some(if src_ephemeral { Side::Src } else { Side::Dst });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_without_float_loss() {
        let table: &[(&str, Option<i64>)] = &[
            ("1655071198.444458", Some(1_655_071_198_444_458)),
            ("1655071198", Some(1_655_071_198_000_000)),
            ("0.000001", Some(1)),
            ("1.5", Some(1_500_000)),
            (".5", Some(500_000)),
            ("1.1234567", Some(1_123_456)),
            ("-1.5", Some(-1_500_000)),
            ("", None),
            (".", None),
            ("-", None),
            ("1e9", None),
            ("12a", None),
            ("99999999999999999999", None),
        ];
        for (text, expected) in table {
            assert_eq!(
                Timestamp::parse_decimal(text).map(|t| t.0),
                *expected,
                "{text:?}"
            );
        }
        assert_eq!(
            Timestamp(1_655_071_198_444_458).to_string(),
            "1655071198.444458"
        );
        assert_eq!(Timestamp(-1_500_000).to_string(), "-1.500000");
        assert_eq!(Timestamp(-1_500_000).secs(), -2);
    }

    #[test]
    fn protocols_read_names_and_numbers() {
        assert_eq!("tcp".parse::<Protocol>(), Ok(Protocol::TCP));
        assert_eq!("UDP".parse::<Protocol>(), Ok(Protocol::UDP));
        assert_eq!("6".parse::<Protocol>(), Ok(Protocol::TCP));
        assert_eq!("ipv6-icmp".parse::<Protocol>(), Ok(Protocol::ICMPV6));
        assert_eq!("47".parse::<Protocol>(), Ok(Protocol(47)));
        assert_eq!(Protocol(47).to_string(), "47");
        assert!("gre".parse::<Protocol>().is_err());
    }

    #[test]
    fn endpoints_are_addresses_or_vm_ids() {
        assert_eq!(
            "10.0.0.1".parse::<Endpoint>(),
            Ok(Endpoint::External("10.0.0.1".parse().unwrap()))
        );
        assert_eq!("web-1".parse::<Endpoint>(), Ok(Endpoint::vm("web-1")));
        assert!("".parse::<Endpoint>().is_err());
    }

    #[test]
    fn initiator_guess_follows_the_documented_rules() {
        let tcp = Protocol::TCP;
        assert_eq!(guess_initiator(tcp, 51234, 443), Some(Side::Src));
        assert_eq!(guess_initiator(tcp, 443, 51234), Some(Side::Dst));
        assert_eq!(guess_initiator(tcp, 40000, 8080), Some(Side::Src));
        assert_eq!(guess_initiator(tcp, 8080, 40000), Some(Side::Dst));
        assert_eq!(guess_initiator(tcp, 22, 80), None);
        assert_eq!(guess_initiator(tcp, 50000, 60000), None);
        assert_eq!(guess_initiator(tcp, 5000, 8080), None);
        assert_eq!(guess_initiator(Protocol::ICMP, 8, 0), None);
    }

    #[test]
    fn a_reply_oriented_by_its_initiator_keeps_the_service_port() {
        let reply = FlowRecord {
            ts: Timestamp::from_secs(100),
            src: Endpoint::vm("db"),
            dst: Endpoint::vm("web"),
            src_port: 5432,
            dst_port: 51000,
            protocol: Protocol::TCP,
            bytes: 900,
            packets: 3,
            connections: 0,
            verdict: Verdict::Allowed,
            bridge: None,
        };
        let oriented = reply.oriented(Side::Dst);
        assert_eq!(oriented.src, Endpoint::vm("web"));
        assert_eq!(oriented.dst, Endpoint::vm("db"));
        assert_eq!(oriented.service_port(), 5432);
        assert_eq!(oriented.src_port, 51000);
        assert_eq!(oriented.bytes, 900);
    }
}
