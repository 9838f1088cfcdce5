//! The policy file: what the operator writes, parsed and checked.
//!
//! # Format
//!
//! A policy is a TOML file with three parts: **groups** of VMs, **endpoints**
//! that are not VMs, and **allow** rules between them. Everything between VMs
//! that no rule allows is denied; the traffic a VM needs to exist on a network
//! (ARP, IPv6 neighbour discovery, DHCP and DHCPv6 with a server beyond an
//! external port) is always allowed and needs no rule.
//!
//! ```toml
//! # A group selects VMs by id, by labels (every label listed must match),
//! # or both (the union).
//! [groups.web]
//! labels = { tier = "web" }
//!
//! [groups.db]
//! vms = ["db-1", "db-2"]
//!
//! # An endpoint selects what is not a VM: ports of the bridge by name, the
//! # bridge's LOCAL port, and addresses by CIDR. A CIDR never selects a VM's
//! # address: VMs are reached only through groups.
//! [endpoints.outside]
//! ports = ["eth0"]
//! cidrs = ["0.0.0.0/0", "::/0"]
//!
//! [endpoints.host]
//! local = true
//!
//! # Rules allow connections from -> to. `from` and `to` name a group or an
//! # endpoint, or list several; `vm:ID` (one VM) and `label:KEY=VALUE`
//! # (every VM with that label) select VMs without declaring a group.
//! [[allow]]
//! name = "web serves the world"   # optional; shows in logs
//! from = "outside"
//! to = "web"
//! proto = "tcp"                    # tcp, udp, icmp (v4 and v6) or ip (any)
//! port = 443                       # tcp/udp destination port or "8000-8080"
//!
//! [[allow]]
//! from = "web"
//! to = "db"
//! proto = "tcp"
//! port = 5432
//! rate = "10Mbit"                  # a meter: kbit, Mbit, Gbit or pps, kpps
//! burst = 1000                     # optional, in kbit (or packets for pps)
//! ttl = "2h"                       # or expires = 2030-01-01T00:00:00Z
//! ```
//!
//! - A rule admits *connections*: their first packet is checked, then the
//!   connection tracker lets the rest and the replies through. The rate limit
//!   of a rule covers both directions of the connections it admitted.
//! - When rules overlap, the first in the file decides (its rate limit, its
//!   expiry).
//! - `expires` is an absolute RFC 3339 time with an offset (a TOML date-time
//!   or a string); `ttl` is a duration (`90s`, `30m`, `2h`, `1d`, `1h30m`)
//!   counted from when the file was loaded. Once it passes, the switch
//!   removes the rule's flows by itself, controller or not; connections the
//!   rule already admitted continue.
//! - Names of groups and endpoints share one namespace.
//! - An inline selector ([`Selector`]) becomes a group named by its own text
//!   (`vm:web-1`, `label:tier=web`), which no declared name can be, so
//!   `[[allow]] from = "label:tier=web"` compiles exactly like a declared
//!   group with `labels = { tier = "web" }`.
//!
//! Errors point at the offending text as `file:line:column: reason`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::inventory::VmId;

/// A parsed and checked policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The groups of VMs, by name order.
    pub groups: Vec<Group>,
    /// The external endpoints, by name order.
    pub endpoints: Vec<Endpoint>,
    /// The allow rules, in file order.
    pub rules: Vec<Rule>,
}

/// A named set of VMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// VMs selected by id.
    pub vms: Vec<VmId>,
    /// If not empty, also every VM carrying all of these labels.
    pub labels: BTreeMap<String, String>,
}

/// A named set of things that are not VMs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Its name.
    pub name: String,
    /// External ports by name.
    pub ports: Vec<String>,
    /// Whether the bridge's LOCAL port is included.
    pub local: bool,
    /// Addresses that are not VMs'.
    pub cidrs: Vec<IpNet>,
}

/// Transport protocols a rule can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP for IPv4 and ICMPv6 for IPv6.
    Icmp,
    /// Any IP protocol.
    Ip,
}

impl Proto {
    /// The name as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Ip => "ip",
        }
    }
}

/// An inclusive range of destination ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// The single port `port`.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Whether `port` lies in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    /// Kilobits (1000 bits) per second.
    Kbps,
    /// Packets per second.
    Pktps,
}

/// A rate limit: `rate` units per second, with bursts of `burst` units
/// (kilobits or packets; 0 leaves the burst to the switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rate {
    /// The rate.
    pub rate: u32,
    /// The unit of `rate` and `burst`.
    pub unit: RateUnit,
    /// The burst size (0: the switch's default).
    pub burst: u32,
}

/// Where something is in the policy file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// One allow rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Its position among the rules (from 0): earlier rules win overlaps.
    pub index: u32,
    /// The operator's name for it, if given.
    pub name: Option<String>,
    /// Where it starts in the file.
    pub location: Location,
    /// Names of the groups or endpoints traffic may come from.
    pub from: Vec<String>,
    /// Names of the groups or endpoints traffic may go to.
    pub to: Vec<String>,
    /// The protocol.
    pub proto: Proto,
    /// The destination ports (TCP and UDP only; `None`: all).
    pub ports: Option<PortRange>,
    /// The rate limit, if any.
    pub rate: Option<Rate>,
    /// When the rule stops applying, if ever.
    pub expires_at: Option<SystemTime>,
}

impl Rule {
    /// A short description for logs: its name, or `rule #n (line l)`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("rule #{} \"{name}\"", self.index),
            None => format!("rule #{} (line {})", self.index, self.location.line),
        }
    }
}

/// A policy file that could not be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {reason}")]
pub struct PolicyError {
    /// The file's name, as given to [`Policy::parse`].
    pub origin: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

impl Policy {
    /// Parses and checks a policy file. `origin` names it in errors; `ttl`s
    /// are counted from `loaded_at`.
    pub fn parse(text: &str, origin: &str, loaded_at: SystemTime) -> Result<Policy, PolicyError> {
        let at = |span: std::ops::Range<usize>, reason: String| {
            let location = locate(text, span.start);
            PolicyError {
                origin: origin.to_owned(),
                line: location.line,
                column: location.column,
                reason,
            }
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, e.message().trim_end().to_owned())
        })?;
        let checker = Checker { at: &at };
        checker.check(raw, text, loaded_at)
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The endpoint named `name`.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// The file as TOML has it, with spans for the checks TOML cannot do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    groups: BTreeMap<Spanned<String>, RawGroup>,
    #[serde(default)]
    endpoints: BTreeMap<Spanned<String>, RawEndpoint>,
    #[serde(default)]
    allow: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    vms: Vec<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    local: bool,
    #[serde(default)]
    cidrs: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    from: Spanned<toml::Value>,
    to: Spanned<toml::Value>,
    proto: Spanned<String>,
    port: Option<Spanned<toml::Value>>,
    rate: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    expires: Option<Spanned<toml::Value>>,
    ttl: Option<Spanned<String>>,
}

/// The semantic checks, each pointing at a span.
struct Checker<'a, F: Fn(std::ops::Range<usize>, String) -> PolicyError> {
    at: &'a F,
}

impl<F: Fn(std::ops::Range<usize>, String) -> PolicyError> Checker<'_, F> {
    fn check(
        &self,
        raw: RawPolicy,
        text: &str,
        loaded_at: SystemTime,
    ) -> Result<Policy, PolicyError> {
        let at = self.at;
        let mut names = HashSet::new();
        let mut groups = Vec::with_capacity(raw.groups.len());
        for (name, group) in raw.groups {
            check_name(at, &name)?;
            if group.vms.is_empty() && group.labels.is_empty() {
                return Err(at(
                    name.span(),
                    format!(
                        "group `{}` selects nothing: give `vms` or `labels`",
                        name.get_ref()
                    ),
                ));
            }
            let mut vms = Vec::with_capacity(group.vms.len());
            for vm in group.vms {
                if vm.get_ref().is_empty() {
                    return Err(at(vm.span(), "empty VM id".to_owned()));
                }
                vms.push(VmId(vm.into_inner()));
            }
            names.insert(name.get_ref().clone());
            groups.push(Group {
                name: name.into_inner(),
                vms,
                labels: group.labels,
            });
        }
        let mut endpoints = Vec::with_capacity(raw.endpoints.len());
        for (name, endpoint) in raw.endpoints {
            check_name(at, &name)?;
            if !names.insert(name.get_ref().clone()) {
                return Err(at(
                    name.span(),
                    format!(
                        "`{}` is already a group: groups and endpoints share one namespace",
                        name.get_ref()
                    ),
                ));
            }
            if endpoint.ports.is_empty() && !endpoint.local && endpoint.cidrs.is_empty() {
                return Err(at(
                    name.span(),
                    format!(
                        "endpoint `{}` selects nothing: give `ports`, `local = true` or `cidrs`",
                        name.get_ref()
                    ),
                ));
            }
            let mut cidrs = Vec::with_capacity(endpoint.cidrs.len());
            for cidr in &endpoint.cidrs {
                cidrs.push(parse_cidr(cidr.get_ref()).map_err(|reason| at(cidr.span(), reason))?);
            }
            let mut ports = Vec::with_capacity(endpoint.ports.len());
            for port in endpoint.ports {
                if port.get_ref().is_empty() {
                    return Err(at(port.span(), "empty port name".to_owned()));
                }
                ports.push(port.into_inner());
            }
            endpoints.push(Endpoint {
                name: name.into_inner(),
                ports,
                local: endpoint.local,
                cidrs,
            });
        }
        let mut implicit = BTreeMap::new();
        let mut rules = Vec::with_capacity(raw.allow.len());
        for (n, rule) in raw.allow.into_iter().enumerate() {
            let span = rule.span();
            let index = u32::try_from(n)
                .ok()
                .filter(|&i| i < super::compile::priority::MAX_FILE_RULES)
                .ok_or_else(|| {
                    at(
                        span.clone(),
                        format!(
                            "too many rules: a policy file holds at most {} (the \
                             priorities below them are the rules augur's changes add)",
                            super::compile::priority::MAX_FILE_RULES
                        ),
                    )
                })?;
            rules.push(self.rule(
                index,
                locate(text, span.start),
                rule.into_inner(),
                &names,
                &mut implicit,
                loaded_at,
            )?);
        }
        // Inline selectors become groups named by their own text, which no
        // declared name can clash with (`:` is not allowed in one).
        groups.extend(implicit.into_values());
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Policy {
            groups,
            endpoints,
            rules,
        })
    }

    fn rule(
        &self,
        index: u32,
        location: Location,
        raw: RawRule,
        names: &HashSet<String>,
        implicit: &mut BTreeMap<String, Group>,
        loaded_at: SystemTime,
    ) -> Result<Rule, PolicyError> {
        let at = self.at;
        let from = self.names(&raw.from, "from", names, implicit)?;
        let to = self.names(&raw.to, "to", names, implicit)?;
        let proto = match raw.proto.get_ref().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            "ip" | "any" => Proto::Ip,
            other => {
                return Err(at(
                    raw.proto.span(),
                    format!("unknown protocol `{other}` (expected tcp, udp, icmp or ip)"),
                ));
            }
        };
        let ports = match &raw.port {
            None => None,
            Some(port) => {
                if !matches!(proto, Proto::Tcp | Proto::Udp) {
                    return Err(at(
                        port.span(),
                        format!("a port needs proto tcp or udp, not {}", proto.name()),
                    ));
                }
                Some(parse_ports(port.get_ref()).map_err(|reason| at(port.span(), reason))?)
            }
        };
        let rate = match &raw.rate {
            None => {
                if let Some(burst) = &raw.burst {
                    return Err(at(burst.span(), "`burst` needs a `rate`".to_owned()));
                }
                None
            }
            Some(rate) => {
                let (value, unit) =
                    parse_rate(rate.get_ref()).map_err(|reason| at(rate.span(), reason))?;
                let burst = match &raw.burst {
                    None => 0,
                    Some(b) => u32::try_from(*b.get_ref())
                        .ok()
                        .filter(|&b| b > 0)
                        .ok_or_else(|| {
                            at(
                                b.span(),
                                "burst must be a positive 32-bit number".to_owned(),
                            )
                        })?,
                };
                Some(Rate {
                    rate: value,
                    unit,
                    burst,
                })
            }
        };
        let expires_at = match (&raw.expires, &raw.ttl) {
            (Some(_), Some(ttl)) => {
                return Err(at(
                    ttl.span(),
                    "give `expires` or `ttl`, not both".to_owned(),
                ));
            }
            (Some(expires), None) => Some(
                parse_expires(expires.get_ref()).map_err(|reason| at(expires.span(), reason))?,
            ),
            (None, Some(ttl)) => {
                let ttl = parse_duration(ttl.get_ref()).map_err(|reason| at(ttl.span(), reason))?;
                Some(
                    loaded_at
                        .checked_add(ttl)
                        .ok_or_else(|| at(0..0, "ttl too long".to_owned()))?,
                )
            }
            (None, None) => None,
        };
        Ok(Rule {
            index,
            name: raw.name,
            location,
            from,
            to,
            proto,
            ports,
            rate,
            expires_at,
        })
    }

    /// A `from`/`to` value: one name or a non-empty list, each defined or an
    /// inline selector (added to `implicit` as a group).
    fn names(
        &self,
        value: &Spanned<toml::Value>,
        key: &str,
        names: &HashSet<String>,
        implicit: &mut BTreeMap<String, Group>,
    ) -> Result<Vec<String>, PolicyError> {
        let at = self.at;
        let list: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if list.is_empty() {
            return Err(at(value.span(), format!("`{key}` names nothing")));
        }
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let Some(name) = item.as_str() else {
                return Err(at(
                    value.span(),
                    format!("`{key}` must be a group or endpoint name, or a list of them"),
                ));
            };
            if let Some(selector) = Selector::parse(name) {
                let selector = selector.map_err(|reason| at(value.span(), reason))?;
                let text = selector.to_string();
                implicit
                    .entry(text.clone())
                    .or_insert_with(|| selector.to_group());
                if !out.contains(&text) {
                    out.push(text);
                }
                continue;
            }
            if !names.contains(name) {
                return Err(at(
                    value.span(),
                    format!("`{key}` names `{name}`, which is neither a group nor an endpoint"),
                ));
            }
            if !out.iter().any(|n: &String| n == name) {
                out.push(name.to_owned());
            }
        }
        Ok(out)
    }
}

/// An inline selector: a `from`/`to` entry that selects VMs without a
/// declared group. `vm:ID` selects one VM; `label:KEY=VALUE` every VM with
/// that label. The parser turns each into a group named by the selector's
/// text, so the compiler sees ordinary groups; recommendations are written
/// in this form so that an operator can paste them into the policy file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// One VM by id.
    Vm(VmId),
    /// Every VM carrying the label `key=value`.
    Label {
        /// The label's key.
        key: String,
        /// The label's value.
        value: String,
    },
}

impl Selector {
    /// `None` if `text` is not written as an inline selector (then it is a
    /// group or endpoint name); otherwise the selector or why it is invalid.
    pub fn parse(text: &str) -> Option<Result<Selector, String>> {
        if let Some(id) = text.strip_prefix("vm:") {
            return Some(if id.is_empty() || id.chars().any(char::is_whitespace) {
                Err(format!(
                    "`{text}` needs a VM id without spaces after `vm:` (such as vm:web-1)"
                ))
            } else {
                Ok(Selector::Vm(VmId(id.to_owned())))
            });
        }
        let label = text.strip_prefix("label:")?;
        Some(match label.split_once('=') {
            Some((key, value))
                if !key.is_empty()
                    && !value.is_empty()
                    && !value.contains('=')
                    && !label.chars().any(char::is_whitespace) =>
            {
                Ok(Selector::Label {
                    key: key.to_owned(),
                    value: value.to_owned(),
                })
            }
            _ => Err(format!(
                "`{text}` needs KEY=VALUE without spaces after `label:` (such as label:tier=web)"
            )),
        })
    }

    /// The group it stands for, named by the selector's text.
    pub fn to_group(&self) -> Group {
        match self {
            Selector::Vm(id) => Group {
                name: self.to_string(),
                vms: vec![id.clone()],
                labels: BTreeMap::new(),
            },
            Selector::Label { key, value } => Group {
                name: self.to_string(),
                vms: Vec::new(),
                labels: BTreeMap::from([(key.clone(), value.clone())]),
            },
        }
    }
}

impl fmt::Display for Selector {
    /// The text [`Selector::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Vm(id) => write!(f, "vm:{id}"),
            Selector::Label { key, value } => write!(f, "label:{key}={value}"),
        }
    }
}

fn check_name<F: Fn(std::ops::Range<usize>, String) -> PolicyError>(
    at: &F,
    name: &Spanned<String>,
) -> Result<(), PolicyError> {
    let ok = !name.get_ref().is_empty()
        && name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(at(
            name.span(),
            format!(
                "invalid name `{}` (letters, digits, `-`, `_` and `.` only)",
                name.get_ref()
            ),
        ))
    }
}

/// Line and column (1-based, in characters) of byte `offset` of `text`.
fn locate(text: &str, offset: usize) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    Location {
        line: before.matches('\n').count() + 1,
        column: before.get(line_start..).map_or(0, |s| s.chars().count()) + 1,
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128).
fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let net = match IpNet::from_str(text) {
        Ok(net) => net,
        Err(_) => match IpAddr::from_str(text) {
            Ok(addr) => IpNet::from(addr),
            Err(_) => return Err(format!("`{text}` is not a CIDR (such as 10.0.0.0/8)")),
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `80`, `"80"` or `"8000-8080"`.
fn parse_ports(value: &toml::Value) -> Result<PortRange, String> {
    let port = |n: i64| {
        u16::try_from(n)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("port {n} is out of range (1-65535)"))
    };
    let number = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("`{s}` is not a port number"))
            .and_then(port)
    };
    match value {
        toml::Value::Integer(n) => port(*n).map(PortRange::single),
        toml::Value::String(s) => match s.split_once('-') {
            None => number(s).map(PortRange::single),
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!(
                        "port range `{s}` is inverted (the first port must not exceed the last)"
                    ));
                }
                Ok(PortRange { first, last })
            }
        },
        _ => Err("`port` must be a number or a range such as \"8000-8080\"".to_owned()),
    }
}

/// `10Mbit`, `500kbit`, `1Gbit`, `500pps`, `2kpps` (also with a space, and
/// `/s` tolerated: `10 Mbit/s`).
fn parse_rate(text: &str) -> Result<(u32, RateUnit), String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let bad = || {
        format!("rate `{text}` is not a whole number and a unit (kbit, Mbit, Gbit, pps or kpps)")
    };
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let (scale, unit) = match unit.trim() {
        "kbit" | "Kbit" | "kbps" => (1, RateUnit::Kbps),
        "Mbit" | "mbit" | "Mbps" => (1_000, RateUnit::Kbps),
        "Gbit" | "gbit" | "Gbps" => (1_000_000, RateUnit::Kbps),
        "pps" => (1, RateUnit::Pktps),
        "kpps" => (1_000, RateUnit::Pktps),
        other => {
            return Err(format!(
                "unknown rate unit `{other}` (kbit, Mbit, Gbit, pps or kpps)"
            ));
        }
    };
    let value = number
        .checked_mul(scale)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("rate `{text}` is zero or too large"))?;
    Ok((value, unit))
}

/// `90s`, `30m`, `2h`, `1d`, `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let bad = || format!("`{text}` is not a duration (such as 90s, 30m, 2h, 1d or 1h30m)");
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// An RFC 3339 time with an offset, as a TOML date-time or a string.
fn parse_expires(value: &toml::Value) -> Result<SystemTime, String> {
    let datetime = match value {
        toml::Value::Datetime(d) => *d,
        toml::Value::String(s) => toml::value::Datetime::from_str(s)
            .map_err(|_| format!("`{s}` is not an RFC 3339 time (such as 2030-01-01T00:00:00Z)"))?,
        _ => return Err("`expires` must be an RFC 3339 time".to_owned()),
    };
    let (Some(date), Some(time), Some(offset)) = (datetime.date, datetime.time, datetime.offset)
    else {
        return Err(format!(
            "`{datetime}` needs a date, a time and an offset (such as 2030-01-01T00:00:00Z)"
        ));
    };
    let offset_seconds = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i32::from(minutes) * 60,
    };
    let local = jiff::civil::DateTime::new(
        date.year.try_into().unwrap_or(i16::MAX),
        date.month.try_into().unwrap_or(i8::MAX),
        date.day.try_into().unwrap_or(i8::MAX),
        time.hour.try_into().unwrap_or(i8::MAX),
        time.minute.try_into().unwrap_or(i8::MAX),
        time.second.unwrap_or(0).try_into().unwrap_or(i8::MAX),
        0,
    )
    .and_then(|local| jiff::tz::Offset::from_seconds(offset_seconds)?.to_timestamp(local))
    .map_err(|e| format!("`{datetime}` is not a time: {e}"))?;
    let seconds =
        u64::try_from(local.as_second()).map_err(|_| "`expires` is before 1970".to_owned())?;
    let nanos = time.nanosecond.unwrap_or(0);
    Ok(UNIX_EPOCH + Duration::new(seconds, nanos.min(999_999_999)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADED: SystemTime = UNIX_EPOCH;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, "p.toml", LOADED)
    }

    /// The error, as the operator sees it.
    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const BASE: &str = "[groups.web]\nlabels = { tier = \"web\" }\n\
                        [groups.db]\nvms = [\"db-1\"]\n\
                        [endpoints.out]\ncidrs = [\"0.0.0.0/0\"]\n";

    fn with_rule(rule: &str) -> String {
        format!("{BASE}[[allow]]\n{rule}\n")
    }

    #[test]
    fn parses_a_full_rule() {
        let p = parse(&with_rule(
            "name = \"w\"\nfrom = [\"web\", \"out\"]\nto = \"db\"\nproto = \"tcp\"\n\
             port = \"8000-8080\"\nrate = \"10Mbit\"\nburst = 100\nttl = \"1h30m\"",
        ))
        .unwrap();
        let rule = &p.rules[0];
        assert_eq!(rule.from, ["web", "out"]);
        assert_eq!(rule.to, ["db"]);
        assert_eq!(rule.proto, Proto::Tcp);
        assert_eq!(
            rule.ports,
            Some(PortRange {
                first: 8000,
                last: 8080
            })
        );
        assert_eq!(
            rule.rate,
            Some(Rate {
                rate: 10_000,
                unit: RateUnit::Kbps,
                burst: 100
            })
        );
        assert_eq!(rule.expires_at, Some(LOADED + Duration::from_secs(5400)));
        assert_eq!(rule.location.line, 7, "the [[allow]] header");
        assert_eq!(p.group("web").unwrap().labels["tier"], "web");
        assert_eq!(
            p.endpoint("out").unwrap().cidrs,
            ["0.0.0.0/0".parse::<IpNet>().unwrap()]
        );
    }

    #[test]
    fn expires_takes_toml_and_string_times() {
        for expires in [
            "2030-01-01T01:00:00+01:00",
            "\"2030-01-01T00:00:00Z\"",
            "2030-01-01 00:00:00Z",
            "2029-12-31T19:00:00-05:00",
        ] {
            let p = parse(&with_rule(&format!(
                "from = \"web\"\nto = \"db\"\nproto = \"ip\"\nexpires = {expires}"
            )))
            .unwrap();
            // 2030-01-01T00:00:00Z.
            assert_eq!(
                p.rules[0].expires_at,
                Some(UNIX_EPOCH + Duration::from_secs(1_893_456_000)),
                "{expires}"
            );
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500pps"), Ok((500, RateUnit::Pktps)));
        assert_eq!(parse_rate("2kpps"), Ok((2000, RateUnit::Pktps)));
        assert_eq!(parse_rate("1Gbit"), Ok((1_000_000, RateUnit::Kbps)));
        assert_eq!(parse_rate("10 Mbit/s"), Ok((10_000, RateUnit::Kbps)));
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("0kbit").is_err());
        assert!(parse_rate("10MB").is_err());
        assert!(parse_rate("9999999Gbit").is_err());
    }

    #[test]
    fn syntax_errors_point_at_the_text() {
        assert_eq!(
            error("[groups.web]\nlabels = { tier = \"web\" \n"),
            "p.toml:2:24: unclosed inline table, expected `}`"
        );
        let e = error("[groups.web]\nvms = [\"a\"]\ncolour = \"red\"\n");
        assert!(e.starts_with("p.toml:3:1: unknown field `colour`"), "{e}");
    }

    #[test]
    fn each_semantic_error_points_at_its_cause() {
        let cases = [
            // Unknown name in `to`, pointing at the value.
            (
                "from = \"web\"\nto = \"dbs\"\nproto = \"tcp\"",
                "p.toml:9:6: `to` names `dbs`, which is neither a group nor an endpoint",
            ),
            (
                "from = []\nto = \"db\"\nproto = \"tcp\"",
                "p.toml:8:8: `from` names nothing",
            ),
            (
                "from = 3\nto = \"db\"\nproto = \"tcp\"",
                "p.toml:8:8: `from` must be a group or endpoint name, or a list of them",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"sctp\"",
                "p.toml:10:9: unknown protocol `sctp` (expected tcp, udp, icmp or ip)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nport = \"9000-8000\"",
                "p.toml:11:8: port range `9000-8000` is inverted (the first port must not exceed the last)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nport = 70000",
                "p.toml:11:8: port 70000 is out of range (1-65535)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"icmp\"\nport = 22",
                "p.toml:11:8: a port needs proto tcp or udp, not icmp",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nrate = \"fast\"",
                "p.toml:11:8: rate `fast` is not a whole number and a unit (kbit, Mbit, Gbit, pps or kpps)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nburst = 5",
                "p.toml:11:9: `burst` needs a `rate`",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nttl = \"soon\"",
                "p.toml:11:7: `soon` is not a duration (such as 90s, 30m, 2h, 1d or 1h30m)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nttl = \"1h\"\nexpires = 2030-01-01T00:00:00Z",
                "p.toml:11:7: give `expires` or `ttl`, not both",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nexpires = 2030-01-01T00:00:00",
                "p.toml:11:11: `2030-01-01T00:00:00` needs a date, a time and an offset (such as 2030-01-01T00:00:00Z)",
            ),
            (
                "from = \"web\"\nto = \"db\"\nproto = \"tcp\"\nexpires = 1969-12-31T23:59:59Z",
                "p.toml:11:11: `expires` is before 1970",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(error(&with_rule(rule)), expected, "{rule}");
        }
    }

    #[test]
    fn group_and_endpoint_errors() {
        assert_eq!(
            error("[groups.web]\n"),
            "p.toml:1:9: group `web` selects nothing: give `vms` or `labels`"
        );
        assert_eq!(
            error("[groups.web]\nvms = [\"a\"]\n[endpoints.web]\nlocal = true\n"),
            "p.toml:3:12: `web` is already a group: groups and endpoints share one namespace"
        );
        assert_eq!(
            error("[endpoints.x]\ncidrs = [\"10.0.0.1/8\"]\n"),
            "p.toml:2:10: `10.0.0.1/8` has host bits set (did you mean 10.0.0.0/8?)"
        );
        assert_eq!(
            error("[endpoints.x]\ncidrs = [\"10.0.0/8\"]\n"),
            "p.toml:2:10: `10.0.0/8` is not a CIDR (such as 10.0.0.0/8)"
        );
        assert_eq!(
            error("[endpoints.x]\nlocal = false\n"),
            "p.toml:1:12: endpoint `x` selects nothing: give `ports`, `local = true` or `cidrs`"
        );
        assert_eq!(
            error("[groups.\"a b\"]\nvms = [\"a\"]\n"),
            "p.toml:1:9: invalid name `a b` (letters, digits, `-`, `_` and `.` only)"
        );
    }

    #[test]
    fn inline_selectors_become_groups() {
        let p = parse(&with_rule(
            "from = [\"vm:web-1\", \"label:tier=app\", \"vm:web-1\"]\nto = \"label:tier=db\"\nproto = \"tcp\"",
        ))
        .unwrap();
        let rule = &p.rules[0];
        assert_eq!(rule.from, ["vm:web-1", "label:tier=app"]);
        assert_eq!(rule.to, ["label:tier=db"]);
        assert_eq!(p.group("vm:web-1").unwrap().vms, [VmId::from("web-1")]);
        assert!(p.group("vm:web-1").unwrap().labels.is_empty());
        let db = p.group("label:tier=db").unwrap();
        assert!(db.vms.is_empty());
        assert_eq!(db.labels, BTreeMap::from([("tier".into(), "db".into())]));
        // Declared groups and implicit ones, in name order, each once.
        let names: Vec<&str> = p.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            ["db", "label:tier=app", "label:tier=db", "vm:web-1", "web"]
        );
    }

    #[test]
    fn one_selector_used_by_two_rules_is_one_group() {
        let text = format!(
            "{BASE}[[allow]]\nfrom = \"vm:a\"\nto = \"db\"\nproto = \"tcp\"\n\
             [[allow]]\nfrom = \"web\"\nto = \"vm:a\"\nproto = \"udp\"\n"
        );
        let p = parse(&text).unwrap();
        assert_eq!(p.groups.iter().filter(|g| g.name == "vm:a").count(), 1);
    }

    #[test]
    fn selectors_round_trip_through_text() {
        for text in [
            "vm:web-1",
            "label:tier=web",
            "label:app.kubernetes.io/name=x",
        ] {
            let selector = Selector::parse(text).unwrap().unwrap();
            assert_eq!(selector.to_string(), text);
        }
        assert_eq!(Selector::parse("web"), None);
    }

    #[test]
    fn bad_selectors_are_located() {
        let cases = [
            (
                "from = \"vm:\"\nto = \"db\"\nproto = \"tcp\"",
                "p.toml:8:8: `vm:` needs a VM id without spaces after `vm:` (such as vm:web-1)",
            ),
            (
                "from = \"web\"\nto = [\"db\", \"label:tier\"]\nproto = \"tcp\"",
                "p.toml:9:6: `label:tier` needs KEY=VALUE without spaces after `label:` (such as label:tier=web)",
            ),
            (
                "from = \"label:=web\"\nto = \"db\"\nproto = \"tcp\"",
                "p.toml:8:8: `label:=web` needs KEY=VALUE without spaces after `label:` (such as label:tier=web)",
            ),
            (
                "from = \"label:tier=\"\nto = \"db\"\nproto = \"tcp\"",
                "p.toml:8:8: `label:tier=` needs KEY=VALUE without spaces after `label:` (such as label:tier=web)",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(error(&with_rule(rule)), expected, "{rule}");
        }
    }
}
