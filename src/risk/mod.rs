//! Risk: how dangerous a proposed policy change is, from explicit factors.
//!
//! Every recommendation gets a [`RiskAssessment`]: a score in 0–1, a
//! [`RiskLevel`] and the factors that produced it. `Low` may be applied
//! automatically; `High` waits for a person; `Forbidden` is never applied.
//!
//! # The score
//!
//! Each factor present contributes `c = weight × strength` (strength 0–1,
//! 1 for the yes/no factors), and the factors combine as independent
//! chances of harm:
//!
//! ```text
//! score = 1 − Π (1 − c_i)
//! ```
//!
//! so one strong factor is enough to reach the threshold, several weak ones
//! add up, and the score never exceeds 1. `High` when `score ≥
//! high_threshold` (default 0.5).
//!
//! | factor | present when | strength | default weight |
//! |---|---|---|---|
//! | `sensitive_port` | the change opens a port of `sensitive_ports` (remote administration, file sharing, RPC, databases, container and cluster APIs) | 1 | 0.6 |
//! | `crosses_label` | source and destination differ on a boundary label key (`boundary_labels`, default `tier`, `tenant`); one factor per key | 1 | 0.3 |
//! | `breadth` | the change spans more than one pair or port | `max((pairs−1)/(full_breadth_pairs−1), (ports−1)/(full_breadth_ports−1))`, capped at 1 | 0.35 |
//! | `novelty` | no key of the change ever carried allowed traffic with a payload, and no label peer of its source uses it (a key only ever denied, or only ever probed, is novel) | 1 | 0.5 |
//! | `low_confidence` | the predicted probability `p` is below `confident_above` | `(confident_above − p) / confident_above` | 0.4 |
//! | `limit_increase` | a transfer limit grows by `factor` | `ln(factor) / ln(full_limit_factor)`, capped at 1 | 0.3 |
//! | `external_endpoint` | the destination is outside the inventory | 1 | 0.4 |
//! | `inbound_external` | the source is outside the inventory: the outside may open connections into VMs | 1 | 0.5 |
//! | `scanning_source` | the source (or a member of a source label) was flagged as scanning | 1 | 1.0, and the level is at least `High` whatever the score |
//! | `override` | an operator rule (`[[risk.override]]`) matches | — | `forbid` → `Forbidden`, `review` → at least `High` |
//!
//! Closing or narrowing a rule never opens anything, so only `breadth`
//! (how much traffic a mistake would cut off) and overrides apply to it.
//!
//! With the defaults: a cross-tier opening seen before scores 0.3 (Low); a
//! new web VM reaching the app tier like its peers 0.3 (Low: its peers do);
//! anything to SSH 0.6 or more (High); anything never seen working 0.5 or
//! more (High: augur does not open on its own what it has only seen denied
//! or probed); anything inbound from outside 0.5 or more (High).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::{PortRange, Proto, Selector};
use crate::recommend::{Peer, PolicyChange};

/// A number in 0–1 (a weight, a threshold, a probability).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Unit(f64);

impl Unit {
    /// `value` if it is within 0–1.
    pub fn new(value: f64) -> Option<Unit> {
        (0.0..=1.0).contains(&value).then_some(Unit(value))
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

// NaN is refused by `Unit::new`, so equality is total.
impl Eq for Unit {}

impl Serialize for Unit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Unit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unit, D::Error> {
        let value = f64::deserialize(d)?;
        Unit::new(value)
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not between 0 and 1")))
    }
}

/// A risk score, 0 (harmless) to 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct RiskScore(f64);

impl RiskScore {
    /// The score, clamped into 0–1 (NaN counts as the worst).
    pub fn new(value: f64) -> RiskScore {
        RiskScore(if value.is_nan() {
            1.0
        } else {
            value.clamp(0.0, 1.0)
        })
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// What may be done with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// May be applied automatically.
    Low,
    /// Needs a person's review.
    High,
    /// An operator rule forbids it.
    Forbidden,
}

impl fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskLevel::Low => "low",
            RiskLevel::High => "high",
            RiskLevel::Forbidden => "forbidden",
        })
    }
}

/// One reason a change is risky, with its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RiskFactor {
    /// It opens a sensitive service port.
    SensitivePort {
        /// The port.
        port: u16,
        /// The service's name.
        name: String,
    },
    /// Source and destination differ on a boundary label.
    CrossesLabel {
        /// The label key (`tier`, `tenant`).
        key: String,
        /// The source's value (`-` when it has none).
        from: String,
        /// The destination's value (`-` when it has none).
        to: String,
    },
    /// It spans several pairs or ports.
    Breadth {
        /// Source × destination pairs.
        pairs: u64,
        /// Ports.
        ports: u32,
    },
    /// None of its keys was ever observed allowed.
    Novelty,
    /// The prediction behind it is weak.
    LowConfidence {
        /// The predicted probability.
        p: f64,
    },
    /// A transfer limit grows.
    LimitIncrease {
        /// New limit over old.
        factor: f64,
    },
    /// The destination is an address outside the inventory.
    ExternalEndpoint,
    /// The source is outside the inventory: the change lets the outside
    /// open connections into a VM.
    InboundFromOutside,
    /// The source was flagged as scanning.
    ScanningSource,
    /// An operator override matched.
    Override {
        /// Its position among the overrides (from 0).
        index: usize,
        /// What it demands.
        action: OverrideAction,
    },
}

impl fmt::Display for RiskFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskFactor::SensitivePort { port, name } => write!(f, "sensitive port {port} ({name})"),
            RiskFactor::CrossesLabel { key, from, to } => write!(f, "crosses {key} {from}→{to}"),
            RiskFactor::Breadth { pairs, ports } => write!(f, "{pairs} pairs × {ports} ports"),
            RiskFactor::Novelty => f.write_str("never observed"),
            RiskFactor::LowConfidence { p } => write!(f, "low confidence p={p:.2}"),
            RiskFactor::LimitIncrease { factor } => write!(f, "limit ×{factor:.1}"),
            RiskFactor::ExternalEndpoint => f.write_str("external destination"),
            RiskFactor::InboundFromOutside => f.write_str("inbound from outside"),
            RiskFactor::ScanningSource => f.write_str("source has scanned"),
            RiskFactor::Override { index, action } => write!(f, "override #{index}: {action}"),
        }
    }
}

/// The verdict on one change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RiskAssessment {
    /// The combined score.
    pub score: RiskScore,
    /// What may be done with it.
    pub level: RiskLevel,
    /// Every factor present and its contribution `weight × strength`.
    pub factors: Vec<(RiskFactor, f64)>,
}

/// What an operator override demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideAction {
    /// Never apply a matching change.
    Forbid,
    /// Always have a person review a matching change.
    Review,
}

impl fmt::Display for OverrideAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OverrideAction::Forbid => "forbid",
            OverrideAction::Review => "review",
        })
    }
}

/// A port or an inclusive range, written `22` or `"137-139"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports(pub PortRange);

impl Serialize for Ports {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.first == self.0.last {
            s.serialize_u16(self.0.first)
        } else {
            s.collect_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ports, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let bad = |what: &str| {
            serde::de::Error::custom(format!(
                "{what} is not a port (1-65535) or a range such as \"137-139\""
            ))
        };
        let port = |text: &str| -> Result<u16, D::Error> {
            text.trim()
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(text))
        };
        let range = match Raw::deserialize(d)? {
            Raw::Number(n) => {
                let p = u16::try_from(n)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad(&n.to_string()))?;
                PortRange::single(p)
            }
            Raw::Text(text) => match text.split_once('-') {
                None => PortRange::single(port(&text)?),
                Some((a, b)) => {
                    let (first, last) = (port(a)?, port(b)?);
                    if first > last {
                        return Err(bad(&text));
                    }
                    PortRange { first, last }
                }
            },
        };
        Ok(Ports(range))
    }
}

/// A named sensitive service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivePort {
    /// The service (`ssh`).
    pub name: String,
    /// Its port or ports.
    pub ports: Ports,
}

/// An operator's rule about changes, obeyed whatever the score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskOverride {
    /// The source, in inline selector syntax (`vm:ID`, `label:KEY=VALUE`),
    /// or `"*"` (the default) for any. A label matches a change whose source
    /// carries it.
    #[serde(default = "any")]
    pub from: String,
    /// The destination, likewise; an address matches `"*"` only.
    #[serde(default = "any")]
    pub to: String,
    /// `tcp`, `udp`, `icmp`, `ip`, or absent for any.
    #[serde(default)]
    pub proto: Option<OverrideProto>,
    /// Ports; a change matches if it opens any of them. Absent: any.
    #[serde(default)]
    pub ports: Option<Ports>,
    /// What to do with a matching change.
    pub action: OverrideAction,
}

/// The protocol an override names (the policy file's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// Any protocol: matches every change.
    Ip,
}

impl From<OverrideProto> for Proto {
    fn from(p: OverrideProto) -> Proto {
        match p {
            OverrideProto::Tcp => Proto::Tcp,
            OverrideProto::Udp => Proto::Udp,
            OverrideProto::Icmp => Proto::Icmp,
            OverrideProto::Ip => Proto::Ip,
        }
    }
}

fn any() -> String {
    "*".to_owned()
}

/// The weight of each factor (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskWeights {
    /// A sensitive service port.
    pub sensitive_port: Unit,
    /// Crossing one boundary label.
    pub crosses_label: Unit,
    /// Breadth at full strength.
    pub breadth: Unit,
    /// Never observed.
    pub novelty: Unit,
    /// Low confidence at `p = 0`.
    pub low_confidence: Unit,
    /// A limit increase at full strength.
    pub limit_increase: Unit,
    /// An external destination.
    pub external_endpoint: Unit,
    /// An external source (inbound from outside the inventory).
    pub inbound_external: Unit,
    /// A scanning source.
    pub scanning_source: Unit,
}

impl Default for RiskWeights {
    fn default() -> RiskWeights {
        RiskWeights {
            sensitive_port: Unit(0.6),
            crosses_label: Unit(0.3),
            breadth: Unit(0.35),
            novelty: Unit(0.5),
            low_confidence: Unit(0.4),
            limit_increase: Unit(0.3),
            external_endpoint: Unit(0.4),
            inbound_external: Unit(0.5),
            scanning_source: Unit(1.0),
        }
    }
}

/// The `[risk]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSettings {
    /// Scores at or above this are `High`.
    pub high_threshold: Unit,
    /// Label keys whose values are boundaries (tiers, tenants).
    pub boundary_labels: Vec<String>,
    /// Services whose ports are sensitive.
    pub sensitive_ports: Vec<SensitivePort>,
    /// Pairs at which breadth reaches full strength (at least 2).
    pub full_breadth_pairs: u32,
    /// Ports at which breadth reaches full strength (at least 2).
    pub full_breadth_ports: u32,
    /// Predictions at or above this probability are confident.
    pub confident_above: Unit,
    /// The limit growth factor at which `limit_increase` has full strength
    /// (above 1).
    pub full_limit_factor: u32,
    /// The factors' weights.
    pub weights: RiskWeights,
    /// Operator rules, obeyed whatever the score.
    #[serde(rename = "override")]
    pub overrides: Vec<RiskOverride>,
}

impl Default for RiskSettings {
    fn default() -> RiskSettings {
        let sensitive = [
            ("ssh", 22, 22),
            ("telnet", 23, 23),
            ("msrpc", 135, 135),
            ("netbios", 137, 139),
            ("smb", 445, 445),
            ("mssql", 1433, 1433),
            ("oracle", 1521, 1521),
            ("mysql", 3306, 3306),
            ("postgres", 5432, 5432),
            ("redis", 6379, 6379),
            ("mongodb", 27017, 27017),
            ("rdp", 3389, 3389),
            ("vnc", 5900, 5900),
            ("winrm", 5985, 5986),
            ("docker", 2375, 2376),
            ("kube-api", 6443, 6443),
            ("elasticsearch", 9200, 9200),
            ("memcached", 11211, 11211),
        ];
        RiskSettings {
            high_threshold: Unit(0.5),
            boundary_labels: vec!["tier".to_owned(), "tenant".to_owned()],
            sensitive_ports: sensitive
                .iter()
                .map(|&(name, first, last)| SensitivePort {
                    name: name.to_owned(),
                    ports: Ports(PortRange { first, last }),
                })
                .collect(),
            full_breadth_pairs: 10,
            full_breadth_ports: 10,
            confident_above: Unit(0.8),
            full_limit_factor: 10,
            weights: RiskWeights::default(),
            overrides: Vec::new(),
        }
    }
}

impl RiskSettings {
    /// The checks serde cannot make: `(setting, reason)` of the first
    /// problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.full_breadth_pairs < 2 {
            return Err((
                "risk.full_breadth_pairs".into(),
                "must be at least 2".into(),
            ));
        }
        if self.full_breadth_ports < 2 {
            return Err((
                "risk.full_breadth_ports".into(),
                "must be at least 2".into(),
            ));
        }
        if self.full_limit_factor < 2 {
            return Err(("risk.full_limit_factor".into(), "must be at least 2".into()));
        }
        for (n, o) in self.overrides.iter().enumerate() {
            for (side, text) in [("from", &o.from), ("to", &o.to)] {
                if text != "*" && !matches!(Selector::parse(text), Some(Ok(_))) {
                    return Err((
                        format!("risk.override.{n}.{side}"),
                        format!("`{text}` is not \"*\", vm:ID or label:KEY=VALUE"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The name of the sensitive service on `port`, if any.
    pub fn sensitive_port(&self, port: u16) -> Option<&str> {
        self.sensitive_ports
            .iter()
            .find(|s| s.ports.0.contains(port))
            .map(|s| s.name.as_str())
    }
}

/// What the risk engine needs to know besides the change: facts about the
/// traffic and the endpoints behind it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RiskContext {
    /// The predicted probability the change is needed (for removals: that
    /// the rule is still needed).
    pub probability: f64,
    /// Whether any key of the change ever carried allowed traffic.
    pub observed: bool,
    /// Whether the source (any member of a source label) was flagged as
    /// scanning.
    pub source_scanning: bool,
    /// Source × destination pairs the change spans.
    pub pairs: u64,
    /// Labels of the source side (shared by all its members), `(key, value)`.
    pub src_labels: Vec<(String, String)>,
    /// Labels of the destination side.
    pub dst_labels: Vec<(String, String)>,
}

/// Assesses `change` in `context` under `settings`.
pub fn assess(
    change: &PolicyChange,
    context: &RiskContext,
    settings: &RiskSettings,
) -> RiskAssessment {
    let w = &settings.weights;
    let mut factors: Vec<(RiskFactor, f64)> = Vec::new();
    let mut forced = RiskLevel::Low;
    let breadth = |pairs: u64, ports: u32| {
        let scale = |n: u64, full: u32| {
            (n.saturating_sub(1) as f64 / f64::from(full.saturating_sub(1).max(1))).min(1.0)
        };
        scale(pairs, settings.full_breadth_pairs)
            .max(scale(u64::from(ports), settings.full_breadth_ports))
    };
    let ports_opened = change
        .ports()
        .map_or(1, |r| u32::from(r.last.saturating_sub(r.first)) + 1);
    if let Some(opening) = change.opening() {
        if change
            .proto()
            .is_some_and(|p| matches!(p, Proto::Tcp | Proto::Udp | Proto::Ip))
        {
            let range = change.ports().unwrap_or(PortRange {
                first: 1,
                last: u16::MAX,
            });
            for s in &settings.sensitive_ports {
                let r = s.ports.0;
                if r.first <= range.last && range.first <= r.last {
                    let port = r.first.max(range.first);
                    factors.push((
                        RiskFactor::SensitivePort {
                            port,
                            name: s.name.clone(),
                        },
                        w.sensitive_port.get(),
                    ));
                }
            }
        }
        let peer_external = |peers: &[Peer]| {
            peers
                .iter()
                .any(|p| matches!(p, Peer::Address(_) | Peer::Outside))
        };
        let inbound = peer_external(&opening.from);
        let external = inbound || peer_external(&opening.to);
        if !external {
            for key in &settings.boundary_labels {
                let value = |labels: &[(String, String)]| {
                    labels
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                };
                let (from, to) = (value(&context.src_labels), value(&context.dst_labels));
                // Differing values, or one side without the key.
                if from != to {
                    factors.push((
                        RiskFactor::CrossesLabel {
                            key: key.clone(),
                            from: from.unwrap_or_else(|| "-".into()),
                            to: to.unwrap_or_else(|| "-".into()),
                        },
                        w.crosses_label.get(),
                    ));
                }
            }
        } else if inbound {
            factors.push((RiskFactor::InboundFromOutside, w.inbound_external.get()));
        } else {
            factors.push((RiskFactor::ExternalEndpoint, w.external_endpoint.get()));
        }
        if !context.observed {
            factors.push((RiskFactor::Novelty, w.novelty.get()));
        }
        let confident = settings.confident_above.get();
        if context.probability < confident && confident > 0.0 {
            let strength = ((confident - context.probability.max(0.0)) / confident).min(1.0);
            factors.push((
                RiskFactor::LowConfidence {
                    p: context.probability,
                },
                w.low_confidence.get() * strength,
            ));
        }
        if let Some(factor) = change.limit_factor() {
            if factor > 1.0 {
                let full = f64::from(settings.full_limit_factor.max(2)).ln();
                factors.push((
                    RiskFactor::LimitIncrease { factor },
                    w.limit_increase.get() * (factor.ln() / full).min(1.0),
                ));
            }
        }
        if context.source_scanning {
            factors.push((RiskFactor::ScanningSource, w.scanning_source.get()));
            forced = RiskLevel::High;
        }
    }
    let b = breadth(context.pairs, ports_opened);
    if b > 0.0 {
        factors.push((
            RiskFactor::Breadth {
                pairs: context.pairs,
                ports: ports_opened,
            },
            w.breadth.get() * b,
        ));
    }
    for (index, o) in settings.overrides.iter().enumerate() {
        if override_matches(o, change, context) {
            factors.push((
                RiskFactor::Override {
                    index,
                    action: o.action,
                },
                0.0,
            ));
            forced = forced.max(match o.action {
                OverrideAction::Forbid => RiskLevel::Forbidden,
                OverrideAction::Review => RiskLevel::High,
            });
        }
    }
    let score = RiskScore::new(1.0 - factors.iter().map(|(_, c)| 1.0 - c).product::<f64>());
    let by_score = if score.get() >= settings.high_threshold.get() {
        RiskLevel::High
    } else {
        RiskLevel::Low
    };
    RiskAssessment {
        score,
        level: by_score.max(forced),
        factors,
    }
}

/// Whether an override names a change: each of its parts must match.
fn override_matches(o: &RiskOverride, change: &PolicyChange, context: &RiskContext) -> bool {
    let side = |pattern: &str, peers: &[Peer], labels: &[(String, String)]| {
        if pattern == "*" {
            return true;
        }
        match Selector::parse(pattern) {
            Some(Ok(Selector::Vm(id))) => peers.iter().any(|p| matches!(p, Peer::Selector(Selector::Vm(v)) if *v == id)),
            Some(Ok(Selector::Label { key, value })) => {
                labels.iter().any(|(k, v)| *k == key && *v == value)
                    || peers.iter().any(|p| matches!(p, Peer::Selector(Selector::Label { key: k, value: v }) if *k == key && *v == value))
            }
            _ => false,
        }
    };
    let (from, to) = change.sides();
    if !side(&o.from, from, &context.src_labels) || !side(&o.to, to, &context.dst_labels) {
        return false;
    }
    if let Some(proto) = o.proto.map(Proto::from) {
        match change.proto() {
            Some(p) if p == proto || p == Proto::Ip || proto == Proto::Ip => {}
            _ => return false,
        }
    }
    if let Some(Ports(want)) = o.ports {
        let have = change.ports().unwrap_or(PortRange {
            first: 1,
            last: u16::MAX,
        });
        if want.first > have.last || have.first > want.last {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
