//! The compiler: (policy, inventory, settings, now) → one typed flow table per
//! bridge, plus the meters its flows use.
//!
//! The pipeline and the register layout are described in the [module
//! documentation](super). Everything here is a pure function of its inputs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use augur_openflow::action::{Controller2Prop, Ct};
use augur_openflow::meter::{MeterBand, MeterCommand, MeterFlags};
use augur_openflow::{
    Action, CtState, Field, FlowMod, Instruction, MacAddr, Match, MatchField, MeterMod, PortNo,
};
use ipnet::IpNet;
use serde::Serialize;

use super::cookie::{Cookie, Origin};
use super::file::{Policy, PortRange, Proto, RateUnit, Rule};
use crate::inventory::{ExternalPort, Inventory, Vm, VmInterface};

/// A stage of the pipeline; its number is its table id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Table 0: port security and infrastructure traffic.
    Classify,
    /// Table 1: who sent it, by source address.
    SrcAddr,
    /// Table 2: who it is for, by destination address.
    DstAddr,
    /// Table 3: which external port it is for, by destination MAC.
    DstPort,
    /// Table 4: through the connection tracker (when a VM is involved).
    Conntrack,
    /// Table 5: connection state and the allow rules.
    Acl,
    /// Table 6: OVS `NORMAL` switching.
    Forward,
    /// Table 7: drop, sampling to the controller through a meter.
    Deny,
}

impl Stage {
    /// Every stage in pipeline order.
    pub const ALL: [Stage; 8] = [
        Stage::Classify,
        Stage::SrcAddr,
        Stage::DstAddr,
        Stage::DstPort,
        Stage::Conntrack,
        Stage::Acl,
        Stage::Forward,
        Stage::Deny,
    ];

    /// Its number, which is also its table id.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The table holding the stage's flows.
    pub fn table_id(self) -> u8 {
        self.number()
    }

    /// The stage numbered `n`.
    pub fn from_number(n: u8) -> Option<Stage> {
        Stage::ALL.get(usize::from(n)).copied()
    }

    /// Its name in logs and explanations.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Classify => "classify",
            Stage::SrcAddr => "src_addr",
            Stage::DstAddr => "dst_addr",
            Stage::DstPort => "dst_port",
            Stage::Conntrack => "conntrack",
            Stage::Acl => "acl",
            Stage::Forward => "forward",
            Stage::Deny => "deny",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a packet was sent to the deny stage; held in [`regs::DENY_REASON`]
/// and visible in the cookie of the deny flow that sampled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// A VM sent with an address that is not its own, a frame type it may
    /// not send, or a packet from outside claimed a local VM's address.
    Spoofed = 1,
    /// A new connection no rule allows.
    NoRule = 2,
    /// The packet came in on a port the inventory does not know.
    UnknownPort = 3,
    /// An IP packet for a local VM's MAC carried another destination IP.
    Misaddressed = 4,
}

impl DenyReason {
    /// Every reason.
    pub const ALL: [DenyReason; 4] = [
        DenyReason::Spoofed,
        DenyReason::NoRule,
        DenyReason::UnknownPort,
        DenyReason::Misaddressed,
    ];

    /// Its number in [`regs::DENY_REASON`] and in cookies.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The reason numbered `n`.
    pub fn from_number(n: u8) -> Option<DenyReason> {
        DenyReason::ALL.into_iter().find(|r| r.number() == n)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            DenyReason::Spoofed => "spoofed",
            DenyReason::NoRule => "no_rule",
            DenyReason::UnknownPort => "unknown_port",
            DenyReason::Misaddressed => "misaddressed",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The Nicira registers the pipeline uses to carry what it learnt about a
/// packet from one stage to the next (OVS zeroes them when a packet enters
/// the bridge and keeps them across conntrack recirculation).
pub mod regs {
    use augur_openflow::Field;

    /// Bits of the source port endpoints (external ports, LOCAL) the packet
    /// came in on.
    pub const SRC_PORT: Field = Field::Reg0;
    /// Bits of the source address selectors (groups, CIDR endpoints).
    pub const SRC_ADDR: [Field; 3] = [Field::Reg1, Field::Reg2, Field::Reg3];
    /// Bits of the destination address selectors.
    pub const DST_ADDR: [Field; 3] = [Field::Reg4, Field::Reg5, Field::Reg6];
    /// Bits of the destination port endpoints.
    pub const DST_PORT: Field = Field::Reg7;
    /// 1 when the source address is a VM's.
    pub const SRC_IS_VM: Field = Field::Reg8;
    /// 1 when the destination address is a VM's.
    pub const DST_IS_VM: Field = Field::Reg9;
    /// The [`DenyReason`](super::DenyReason) of a packet sent to the deny stage.
    pub const DENY_REASON: Field = Field::Reg10;
}

/// Flow priorities, highest first within each stage.
pub mod priority {
    /// Classify: tagged frames from a VM (VM ports are access ports).
    pub const VM_TAGGED: u16 = 600;
    /// Classify: a local VM's address claimed from outside (ARP, ND).
    pub const OUTSIDE_CLAIMS_VM: u16 = 510;
    /// Classify: ARP, ND, DHCP with the right addresses.
    pub const INFRASTRUCTURE: u16 = 500;
    /// Classify: IP with a local VM's source address from outside.
    pub const OUTSIDE_SPOOF: u16 = 450;
    /// Classify: ND messages that failed the address checks above.
    pub const ND_SPOOF: u16 = 400;
    /// Classify: IP with the port's own addresses.
    pub const PORT_IP: u16 = 100;
    /// Classify: non-IP frames from outside for a VM's MAC.
    pub const OUTSIDE_TO_VM_NON_IP: u16 = 50;
    /// Classify: anything else from a known port.
    pub const PORT_OTHER: u16 = 10;
    /// SrcAddr/DstAddr: a local VM's MAC with one of its IPs.
    pub const VM_MAC_AND_IP: u16 = 400;
    /// DstAddr: a local VM's MAC with another IP.
    pub const VM_MAC_OTHER_IP: u16 = 350;
    /// SrcAddr/DstAddr: a VM's IP; DstPort: a VM's MAC.
    pub const VM_ADDRESS: u16 = 300;
    /// DstPort: an external port's own MAC.
    pub const PORT_MAC: u16 = 200;
    /// SrcAddr/DstAddr: CIDR endpoints (plus the prefix length, so the
    /// longest prefix wins); DstPort: the bridge's only uplink.
    pub const CIDR_BASE: u16 = 100;
    /// Conntrack: neither end is a VM.
    pub const UNTRACKED: u16 = 200;
    /// Conntrack: everything else.
    pub const TRACK: u16 = 100;
    /// Acl: invalid packets.
    pub const INVALID: u16 = 65_000;
    /// Acl: established traffic of a rate-limited rule.
    pub const METERED_ESTABLISHED: u16 = 64_000;
    /// Acl: established and related traffic.
    pub const ESTABLISHED: u16 = 63_000;
    /// Acl: the first rule; rule n has `RULE_FIRST - n`.
    pub const RULE_FIRST: u16 = 50_000;
    /// Acl in learn mode: new connections no rule matched, below every
    /// rule so allowed traffic keeps its rule's cookie and counters.
    pub const LEARN: u16 = 1;
    /// The number of rules that fit between [`RULE_FIRST`] and [`LEARN`].
    pub const MAX_RULES: u32 = RULE_FIRST as u32 - 2;
    /// The rules a policy file may have: indexes from here on are the
    /// places of the rules augur's changes add (below every rule of the
    /// file, and unmoved when the file gains or loses rules).
    pub const MAX_FILE_RULES: u32 = 20_000;
    /// Deny: one flow per reason.
    pub const DENY_REASON: u16 = 100;
    /// Every stage's table-miss flow.
    pub const MISS: u16 = 0;
}

/// Whether the policy is enforced or only observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// New connections no rule allows are denied.
    #[default]
    Enforce,
    /// Nothing a rule would deny is blocked: a fresh deployment knows no
    /// traffic yet, so every new connection is admitted (still committed to
    /// conntrack, still behind classification and anti-spoofing) and
    /// sampled to the controller to be observed.
    Learn,
}

impl Mode {
    /// Its name in configuration and logs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Learn => "learn",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the compiler needs besides the policy and the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompileSettings {
    /// Enforce the rules, or admit and observe everything.
    pub mode: Mode,
    /// The policy version, carried in every cookie.
    pub version: u16,
    /// The conntrack zone of the pipeline.
    pub ct_zone: u16,
    /// Packets per second of denied traffic sampled to the controller
    /// (0: none, denied packets are only dropped).
    pub deny_sample_pps: u32,
    /// Burst of the sampling meter, in packets (0: the switch's default).
    pub deny_sample_burst: u32,
    /// Bytes of each denied packet sent to the controller.
    pub deny_sample_max_len: u16,
    /// The meter id of the sampling meter.
    pub deny_meter_id: u32,
    /// The meter id of the first rate-limited rule; the others follow.
    pub first_rule_meter_id: u32,
}

impl Default for CompileSettings {
    fn default() -> CompileSettings {
        CompileSettings {
            mode: Mode::Enforce,
            version: 1,
            ct_zone: 1,
            deny_sample_pps: 100,
            deny_sample_burst: 0,
            deny_sample_max_len: 128,
            deny_meter_id: 1,
            first_rule_meter_id: 2,
        }
    }
}

impl CompileSettings {
    /// Whether meter `id` is augur's to add, change and delete: the sampling
    /// meter and every id from [`CompileSettings::first_rule_meter_id`] up.
    /// Meters of other controllers belong below that.
    pub fn owns_meter(&self, id: u32) -> bool {
        id == self.deny_meter_id
            || (id >= self.first_rule_meter_id && id <= augur_openflow::METER_MAX)
    }
}

/// One flow the bridge should have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowEntry {
    /// The stage it belongs to.
    pub stage: Stage,
    /// Its table.
    pub table_id: u8,
    /// Its priority.
    pub priority: u16,
    /// Its match.
    pub match_: Match,
    /// Its instructions, in execution order.
    pub instructions: Vec<Instruction>,
    /// Its cookie.
    pub cookie: Cookie,
    /// Seconds until the switch removes it (0: never).
    pub hard_timeout: u16,
    /// Seconds without traffic until the switch removes it (0: never).
    pub idle_timeout: u16,
}

impl FlowEntry {
    /// The FLOW_MOD that adds it.
    pub fn to_flow_mod(&self) -> FlowMod {
        FlowMod::add(
            self.table_id,
            self.priority,
            self.match_.clone(),
            self.instructions.clone(),
        )
        .with_cookie(self.cookie.0, 0)
        .with_timeouts(self.idle_timeout, self.hard_timeout)
    }
}

impl fmt::Display for FlowEntry {
    /// `ovs-ofctl` style: `cookie=0x…, table=5, priority=…,match actions=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cookie={:#x}, table={}, ", self.cookie.0, self.table_id)?;
        if self.hard_timeout != 0 {
            write!(f, "hard_timeout={}, ", self.hard_timeout)?;
        }
        write!(f, "priority={}", self.priority)?;
        if !self.match_.is_empty() {
            write!(f, ",{}", self.match_)?;
        }
        write!(
            f,
            " actions={}",
            augur_openflow::instruction::display_list(&self.instructions)
        )
    }
}

/// A meter a bridge should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MeterSpec {
    /// The meter id.
    pub id: u32,
    /// The rate, in `unit`s per second.
    pub rate: u32,
    /// The burst, in kilobits or packets (0: the switch's default).
    pub burst: u32,
    /// What it counts.
    pub unit: RateUnit,
}

impl MeterSpec {
    /// The METER_MOD that adds it: one drop band, with statistics.
    pub fn to_meter_mod(&self) -> MeterMod {
        let mut flags = MeterFlags::STATS
            | match self.unit {
                RateUnit::Kbps => MeterFlags::KBPS,
                RateUnit::Pktps => MeterFlags::PKTPS,
            };
        if self.burst != 0 {
            flags |= MeterFlags::BURST;
        }
        MeterMod {
            command: MeterCommand::ADD,
            flags,
            meter_id: self.id,
            bands: vec![MeterBand::Drop {
                rate: self.rate,
                burst_size: self.burst,
            }],
        }
    }
}

/// The desired state of one bridge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BridgeFlows {
    /// The bridge's name.
    pub bridge: String,
    /// Its datapath id.
    pub datapath_id: u64,
    /// Its flows, stage by stage.
    pub flows: Vec<FlowEntry>,
    /// The meters its flows use.
    pub meters: Vec<MeterSpec>,
}

impl BridgeFlows {
    /// The flows of one stage.
    pub fn stage(&self, stage: Stage) -> impl Iterator<Item = &FlowEntry> {
        self.flows.iter().filter(move |f| f.stage == stage)
    }
}

/// The compiler's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompiledPolicy {
    /// The policy version.
    pub version: u16,
    /// One desired table per bridge of the inventory.
    pub bridges: Vec<BridgeFlows>,
    /// When the desired tables change by themselves (the earliest hard
    /// timeout): the daemon recompiles then so that it does not re-add what
    /// the switch just expired.
    pub next_refresh: Option<SystemTime>,
    /// Things the operator should know that do not stop the policy (a group
    /// that selects no VM, an expired rule, ...).
    pub warnings: Vec<String>,
}

impl CompiledPolicy {
    /// The desired state of the bridge named `name`.
    pub fn bridge(&self, name: &str) -> Option<&BridgeFlows> {
        self.bridges.iter().find(|b| b.bridge == name)
    }

    /// The desired state of the bridge with this datapath id.
    pub fn by_datapath(&self, datapath_id: u64) -> Option<&BridgeFlows> {
        self.bridges.iter().find(|b| b.datapath_id == datapath_id)
    }
}

/// Why a policy could not be compiled against an inventory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A VM interface or external port names a bridge the inventory lacks.
    #[error("{what} is on bridge `{bridge}`, which is not in the inventory")]
    UnknownBridge {
        /// The interface or port.
        what: String,
        /// The bridge it names.
        bridge: String,
    },
    /// Two ports of one bridge have the same OpenFlow port number.
    #[error("bridge `{bridge}` has two ports numbered {ofport}")]
    DuplicatePort {
        /// The bridge.
        bridge: String,
        /// The port number.
        ofport: PortNo,
    },
    /// Two VM interfaces claim one address: anti-spoofing cannot tell them
    /// apart.
    #[error("address {address} belongs to both {first} and {second}")]
    DuplicateAddress {
        /// The address.
        address: String,
        /// One owner.
        first: String,
        /// The other.
        second: String,
    },
    /// A VM interface has an address no host can send from.
    #[error("{owner} has unusable address {address}")]
    BadAddress {
        /// The VM.
        owner: String,
        /// The address.
        address: String,
    },
    /// More selectors are in use on one side than the registers hold.
    #[error(
        "bridge `{bridge}`: more than {limit} {side} selectors are used by rules (merge groups)"
    )]
    TooManySelectors {
        /// The bridge.
        bridge: String,
        /// Which side and kind.
        side: &'static str,
        /// How many fit.
        limit: usize,
    },
    /// More rules than priorities.
    #[error("the policy has {count} rules; at most {limit} fit")]
    TooManyRules {
        /// How many it has.
        count: usize,
        /// How many fit.
        limit: u32,
    },
    /// Too many rate-limited rules for the meter id range.
    #[error("meter ids run out after {first} for the rate-limited rules")]
    TooManyMeters {
        /// The first rule meter id.
        first: u32,
    },
}

/// Which version the cookie of each flow carries (see [`super::cookie`]).
///
/// The default tags every flow with [`CompileSettings::version`] and numbers
/// rule meters in rule order: a new version then replaces every flow. The
/// daemon compiles [`VersionTags::per_change`] instead, so that a change
/// replaces only the flows whose content or origin changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VersionTags {
    /// The version of the change that introduced each rule, by rule index
    /// (rules not listed carry [`CompileSettings::version`]).
    pub rules: BTreeMap<u32, u16>,
    /// Tag pipeline, deny and learn flows with a hash of their own content
    /// ([`Cookie::content_tag`]) and give each rate-limited rule the meter
    /// `first_rule_meter_id + index`, so that neither depends on which
    /// other rules exist.
    pub per_change: bool,
}

impl VersionTags {
    /// Per-change tags with these rule versions.
    pub fn per_change(rules: BTreeMap<u32, u16>) -> VersionTags {
        VersionTags {
            rules,
            per_change: true,
        }
    }
}

/// Compiles `policy` against `inventory` as of `now`, every flow tagged with
/// [`CompileSettings::version`].
pub fn compile(
    policy: &Policy,
    inventory: &Inventory,
    settings: &CompileSettings,
    now: SystemTime,
) -> Result<CompiledPolicy, CompileError> {
    compile_tagged(policy, inventory, settings, &VersionTags::default(), now)
}

/// Compiles `policy` against `inventory` as of `now`, tagging cookies as
/// `tags` says. Rule indexes need not be contiguous (a rule removed by a
/// change leaves its index free, so that the others keep their priorities
/// and cookies); each must stay below [`priority::MAX_RULES`].
pub fn compile_tagged(
    policy: &Policy,
    inventory: &Inventory,
    settings: &CompileSettings,
    tags: &VersionTags,
    now: SystemTime,
) -> Result<CompiledPolicy, CompileError> {
    if policy.rules.len() > priority::MAX_RULES as usize {
        return Err(CompileError::TooManyRules {
            count: policy.rules.len(),
            limit: priority::MAX_RULES,
        });
    }
    if let Some(beyond) = policy
        .rules
        .iter()
        .map(|r| r.index)
        .find(|i| *i >= priority::MAX_RULES)
    {
        return Err(CompileError::TooManyRules {
            count: usize::try_from(beyond)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
            limit: priority::MAX_RULES,
        });
    }
    check_inventory(inventory)?;
    let mut warnings = Vec::new();
    let members = resolve_groups(policy, inventory, &mut warnings);
    for endpoint in &policy.endpoints {
        for port in &endpoint.ports {
            if !inventory.external_ports.iter().any(|p| &p.name == port) {
                warnings.push(format!(
                    "endpoint `{}`: no external port is named `{port}`",
                    endpoint.name
                ));
            }
        }
    }
    let live = live_rules(policy, now, &mut warnings);
    let meters = rule_meters(&live, settings, tags.per_change)?;
    let mut bridges = Vec::with_capacity(inventory.bridges.len());
    let mut next_refresh: Option<SystemTime> = None;
    for bridge in &inventory.bridges {
        let mut compiler = BridgeCompiler {
            policy,
            inventory,
            settings,
            tags,
            members: &members,
            bridge: &bridge.name,
            flows: Vec::new(),
            warnings: &mut warnings,
        };
        compiler.compile(&live, &meters)?;
        let mut flows = compiler.flows;
        if tags.per_change {
            for flow in &mut flows {
                if let Some(origin @ (Origin::Pipeline(_) | Origin::Deny(_) | Origin::Learn)) =
                    flow.cookie.origin()
                {
                    flow.cookie = Cookie::new(content_tag(flow), origin);
                }
            }
        }
        for flow in &flows {
            if flow.hard_timeout != 0 {
                let at = now + Duration::from_secs(u64::from(flow.hard_timeout));
                next_refresh = Some(next_refresh.map_or(at, |t| t.min(at)));
            }
        }
        let mut bridge_meters = Vec::with_capacity(meters.len() + 1);
        if settings.deny_sample_pps != 0 {
            bridge_meters.push(MeterSpec {
                id: settings.deny_meter_id,
                rate: settings.deny_sample_pps,
                burst: settings.deny_sample_burst,
                unit: RateUnit::Pktps,
            });
        }
        bridge_meters.extend(meters.values().copied());
        bridges.push(BridgeFlows {
            bridge: bridge.name.clone(),
            datapath_id: bridge.datapath_id,
            flows,
            meters: bridge_meters,
        });
    }
    Ok(CompiledPolicy {
        version: settings.version,
        bridges,
        next_refresh,
        warnings,
    })
}

/// A rule still in force, with the hard timeout its flows get.
struct LiveRule<'a> {
    rule: &'a Rule,
    hard_timeout: u16,
}

/// The rules that have not expired, with their timeouts. A deadline beyond
/// what OpenFlow's 16-bit timeout holds is capped: the switch then removes
/// the flows early (failing closed) and the daemon re-adds them at
/// [`CompiledPolicy::next_refresh`].
fn live_rules<'a>(
    policy: &'a Policy,
    now: SystemTime,
    warnings: &mut Vec<String>,
) -> Vec<LiveRule<'a>> {
    let mut live = Vec::with_capacity(policy.rules.len());
    for rule in &policy.rules {
        let hard_timeout = match rule.expires_at {
            None => 0,
            Some(deadline) => {
                // Whole seconds left, rounded down so the switch never keeps
                // a rule past its deadline.
                let left = deadline.duration_since(now).map_or(0, |d| d.as_secs());
                if left == 0 {
                    warnings.push(format!("{} has expired and is not installed", rule.label()));
                    continue;
                }
                u16::try_from(left).unwrap_or(u16::MAX)
            }
        };
        live.push(LiveRule { rule, hard_timeout });
    }
    live
}

/// The content tag of a flow: 16 bits of an FNV-1a hash of its table,
/// priority, match and instructions as encoded on the wire, so that it is
/// the same in every build and every run.
fn content_tag(flow: &FlowEntry) -> u16 {
    let mut bytes = bytes::BytesMut::new();
    bytes.extend_from_slice(&[flow.table_id]);
    bytes.extend_from_slice(&flow.priority.to_be_bytes());
    if flow.match_.encode(&mut bytes).is_err()
        || Instruction::encode_list(&flow.instructions, &mut bytes).is_err()
    {
        // Compiled flows encode; should one not, its description still
        // changes with its content.
        bytes.extend_from_slice(format!("{flow}").as_bytes());
    }
    Cookie::content_tag(&bytes)
}

/// One meter per rate-limited rule: ids in rule order, or, per change,
/// `first_rule_meter_id + index` so that a rule keeps its meter (and the
/// `ct_mark` of the connections it admitted) whatever other rules come and go.
fn rule_meters(
    live: &[LiveRule<'_>],
    settings: &CompileSettings,
    by_index: bool,
) -> Result<BTreeMap<u32, MeterSpec>, CompileError> {
    let mut meters = BTreeMap::new();
    let mut next = settings.first_rule_meter_id;
    for LiveRule { rule, .. } in live {
        let Some(rate) = rule.rate else { continue };
        if by_index {
            next = settings.first_rule_meter_id.checked_add(rule.index).ok_or(
                CompileError::TooManyMeters {
                    first: settings.first_rule_meter_id,
                },
            )?;
        }
        if next == 0 || next > augur_openflow::METER_MAX || next == settings.deny_meter_id {
            return Err(CompileError::TooManyMeters {
                first: settings.first_rule_meter_id,
            });
        }
        meters.insert(
            rule.index,
            MeterSpec {
                id: next,
                rate: rate.rate,
                burst: rate.burst,
                unit: rate.unit,
            },
        );
        next = next.checked_add(1).ok_or(CompileError::TooManyMeters {
            first: settings.first_rule_meter_id,
        })?;
    }
    Ok(meters)
}

/// Refuses inventories the pipeline cannot enforce: unknown bridges, port
/// numbers or addresses used twice, unusable addresses.
fn check_inventory(inventory: &Inventory) -> Result<(), CompileError> {
    let mut ports: HashMap<(&str, PortNo), ()> = HashMap::new();
    let mut macs: HashMap<MacAddr, &str> = HashMap::new();
    let mut ips: HashMap<IpAddr, &str> = HashMap::new();
    let mut claim_port = |bridge: &str, ofport: PortNo, what: String| {
        if inventory.bridge(bridge).is_none() {
            return Err(CompileError::UnknownBridge {
                what,
                bridge: bridge.to_owned(),
            });
        }
        // Borrowed from the inventory, which outlives the map.
        let key = inventory
            .bridges
            .iter()
            .find(|b| b.name == bridge)
            .map(|b| b.name.as_str())
            .unwrap_or_default();
        if ports.insert((key, ofport), ()).is_some() {
            return Err(CompileError::DuplicatePort {
                bridge: bridge.to_owned(),
                ofport,
            });
        }
        Ok(())
    };
    for vm in &inventory.vms {
        for iface in &vm.interfaces {
            claim_port(&iface.bridge, iface.ofport, format!("VM {}", vm.id))?;
            if iface.mac.is_multicast() || iface.mac == MacAddr::ZERO {
                return Err(CompileError::BadAddress {
                    owner: format!("VM {}", vm.id),
                    address: iface.mac.to_string(),
                });
            }
            if let Some(first) = macs.insert(iface.mac, vm.id.0.as_str()) {
                return Err(CompileError::DuplicateAddress {
                    address: iface.mac.to_string(),
                    first: format!("VM {first}"),
                    second: format!("VM {}", vm.id),
                });
            }
            for ip in &iface.ips {
                if ip.is_unspecified() || ip.is_multicast() || is_broadcast(*ip) {
                    return Err(CompileError::BadAddress {
                        owner: format!("VM {}", vm.id),
                        address: ip.to_string(),
                    });
                }
                if let Some(first) = ips.insert(*ip, vm.id.0.as_str()) {
                    if first != vm.id.0 {
                        return Err(CompileError::DuplicateAddress {
                            address: ip.to_string(),
                            first: format!("VM {first}"),
                            second: format!("VM {}", vm.id),
                        });
                    }
                }
            }
        }
    }
    for port in &inventory.external_ports {
        claim_port(
            &port.bridge,
            port.ofport,
            format!("external port `{}`", port.name),
        )?;
    }
    Ok(())
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// The VMs of each group, by group name (indexes into `inventory.vms`).
fn resolve_groups(
    policy: &Policy,
    inventory: &Inventory,
    warnings: &mut Vec<String>,
) -> HashMap<String, BTreeSet<usize>> {
    let mut members = HashMap::with_capacity(policy.groups.len());
    for group in &policy.groups {
        let mut set = BTreeSet::new();
        for id in &group.vms {
            match inventory.vms.iter().position(|vm| &vm.id == id) {
                Some(n) => {
                    set.insert(n);
                }
                None => warnings.push(format!("group `{}`: no VM is named `{id}`", group.name)),
            }
        }
        if !group.labels.is_empty() {
            for (n, vm) in inventory.vms.iter().enumerate() {
                if group
                    .labels
                    .iter()
                    .all(|(k, v)| vm.labels.get(k) == Some(v))
                {
                    set.insert(n);
                }
            }
        }
        if set.is_empty() {
            warnings.push(format!("group `{}` selects no VM", group.name));
        }
        members.insert(group.name.clone(), set);
    }
    members
}

/// A set of selector bits spread over several 32-bit registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Bits(u128);

impl Bits {
    fn bit(n: usize) -> Bits {
        Bits(1u128 << n)
    }

    /// The value of register `i` of the set.
    fn word(self, i: usize) -> u32 {
        (self.0 >> (32 * i)) as u32
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `set_field` actions writing every non-zero register of `fields`.
    fn loads(self, fields: &[Field]) -> Vec<Action> {
        fields
            .iter()
            .enumerate()
            .filter(|(i, _)| self.word(*i) != 0)
            .map(|(i, &f)| Action::set_field(MatchField::exact(f, self.word(i))))
            .collect()
    }

    /// The register and single-bit mask that test bit `n`.
    fn test(n: usize, fields: &[Field]) -> Option<MatchField> {
        let field = *fields.get(n / 32)?;
        let bit = 1u32 << (n % 32);
        Some(MatchField::masked(field, bit, bit))
    }
}

impl std::ops::BitOrAssign for Bits {
    fn bitor_assign(&mut self, rhs: Bits) {
        self.0 |= rhs.0;
    }
}

/// Bit allocations for one bridge: which selector has which bit on which side.
#[derive(Default)]
struct Selectors {
    src_port: Vec<String>,
    src_addr: Vec<String>,
    dst_addr: Vec<String>,
    dst_port: Vec<String>,
}

/// How a selector name can be recognised on one side.
struct Atoms {
    /// Its bit among the port selectors, if it selects ports here.
    port: Option<usize>,
    /// Its bit among the address selectors, if it selects addresses.
    addr: Option<usize>,
}

fn allocate(list: &mut Vec<String>, name: &str) -> usize {
    match list.iter().position(|n| n == name) {
        Some(n) => n,
        None => {
            list.push(name.to_owned());
            list.len() - 1
        }
    }
}

/// Compiles the flows of one bridge.
struct BridgeCompiler<'a> {
    policy: &'a Policy,
    inventory: &'a Inventory,
    settings: &'a CompileSettings,
    tags: &'a VersionTags,
    members: &'a HashMap<String, BTreeSet<usize>>,
    bridge: &'a str,
    flows: Vec<FlowEntry>,
    warnings: &'a mut Vec<String>,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// ICMPv6 neighbour discovery and MLD types.
const ICMPV6_RS: u8 = 133;
const ICMPV6_RA: u8 = 134;
const ICMPV6_NS: u8 = 135;
const ICMPV6_NA: u8 = 136;
const ICMPV6_REDIRECT: u8 = 137;
const ICMPV6_MLD: [u8; 4] = [130, 131, 132, 143];

/// Registers a selector bit may live in, per side and kind.
const PORT_BITS: usize = 32;
const ADDR_BITS: usize = 32 * regs::SRC_ADDR.len();

impl<'a> BridgeCompiler<'a> {
    fn cookie(&self, origin: Origin) -> Cookie {
        let version = match origin {
            Origin::Rule(index) => self.tags.rules.get(&index).copied(),
            _ => None,
        };
        Cookie::new(version.unwrap_or(self.settings.version), origin)
    }

    fn push(&mut self, stage: Stage, priority: u16, m: Match, instructions: Vec<Instruction>) {
        let cookie = self.cookie(Origin::Pipeline(stage));
        self.push_with(stage, priority, m, instructions, cookie, 0);
    }

    fn push_with(
        &mut self,
        stage: Stage,
        priority: u16,
        m: Match,
        instructions: Vec<Instruction>,
        cookie: Cookie,
        hard_timeout: u16,
    ) {
        self.flows.push(FlowEntry {
            stage,
            table_id: stage.table_id(),
            priority,
            match_: m,
            instructions,
            cookie,
            hard_timeout,
            idle_timeout: 0,
        });
    }

    /// Instructions sending the packet to the deny stage for `reason`.
    fn deny(reason: DenyReason) -> Vec<Instruction> {
        vec![
            Instruction::ApplyActions(vec![Action::set_field(MatchField::exact(
                regs::DENY_REASON,
                u32::from(reason.number()),
            ))]),
            Instruction::GotoTable(Stage::Deny.table_id()),
        ]
    }

    fn goto(stage: Stage) -> Vec<Instruction> {
        vec![Instruction::GotoTable(stage.table_id())]
    }

    /// Set-field actions then a goto, or only the goto.
    fn then(actions: Vec<Action>, stage: Stage) -> Vec<Instruction> {
        let mut out = Vec::with_capacity(2);
        if !actions.is_empty() {
            out.push(Instruction::ApplyActions(actions));
        }
        out.push(Instruction::GotoTable(stage.table_id()));
        out
    }

    fn local_interfaces(&self) -> Vec<(&'a Vm, &'a VmInterface)> {
        let inventory: &'a Inventory = self.inventory;
        inventory.interfaces_on(self.bridge).collect()
    }

    fn external_ports(&self) -> Vec<&'a ExternalPort> {
        let inventory: &'a Inventory = self.inventory;
        inventory.external_ports_on(self.bridge).collect()
    }

    fn compile(
        &mut self,
        live: &[LiveRule<'_>],
        meters: &BTreeMap<u32, MeterSpec>,
    ) -> Result<(), CompileError> {
        let selectors = self.allocate(live)?;
        self.classify(&selectors);
        self.addresses(&selectors, Side::Src);
        self.addresses(&selectors, Side::Dst);
        self.dst_ports(&selectors);
        self.conntrack();
        self.acl(live, meters, &selectors);
        self.push(
            Stage::Forward,
            priority::MISS,
            Match::new(),
            vec![Instruction::ApplyActions(vec![Action::output(
                PortNo::NORMAL,
            )])],
        );
        self.deny_stage();
        Ok(())
    }

    /// Gives every selector used by a live rule its bits on this bridge.
    fn allocate(&mut self, live: &[LiveRule<'_>]) -> Result<Selectors, CompileError> {
        let mut s = Selectors::default();
        for LiveRule { rule, .. } in live {
            for name in &rule.from {
                let kinds = self.selector_kinds(name);
                if kinds.ports {
                    allocate(&mut s.src_port, name);
                }
                if kinds.addrs {
                    allocate(&mut s.src_addr, name);
                }
            }
            for name in &rule.to {
                let kinds = self.selector_kinds(name);
                if kinds.ports {
                    allocate(&mut s.dst_port, name);
                }
                if kinds.addrs {
                    allocate(&mut s.dst_addr, name);
                }
            }
        }
        let too_many = |side, limit| CompileError::TooManySelectors {
            bridge: self.bridge.to_owned(),
            side,
            limit,
        };
        if s.src_port.len() > PORT_BITS {
            return Err(too_many("source port", PORT_BITS));
        }
        if s.dst_port.len() > PORT_BITS {
            return Err(too_many("destination port", PORT_BITS));
        }
        if s.src_addr.len() > ADDR_BITS {
            return Err(too_many("source address", ADDR_BITS));
        }
        if s.dst_addr.len() > ADDR_BITS {
            return Err(too_many("destination address", ADDR_BITS));
        }
        Ok(s)
    }

    /// Whether a selector name selects ports of this bridge and/or addresses.
    fn selector_kinds(&self, name: &str) -> Kinds {
        if let Some(members) = self.members.get(name) {
            return Kinds {
                ports: false,
                addrs: !members.is_empty(),
            };
        }
        match self.policy.endpoint(name) {
            Some(endpoint) => Kinds {
                ports: self
                    .external_ports()
                    .iter()
                    .any(|p| endpoint_has_port(endpoint, p)),
                addrs: !endpoint.cidrs.is_empty(),
            },
            None => Kinds {
                ports: false,
                addrs: false,
            },
        }
    }

    fn atoms(selectors: &Selectors, name: &str, side: Side) -> Atoms {
        let (ports, addrs) = match side {
            Side::Src => (&selectors.src_port, &selectors.src_addr),
            Side::Dst => (&selectors.dst_port, &selectors.dst_addr),
        };
        Atoms {
            port: ports.iter().position(|n| n == name),
            addr: addrs.iter().position(|n| n == name),
        }
    }

    /// Table 0: port security and infrastructure.
    fn classify(&mut self, selectors: &Selectors) {
        let local = self.local_interfaces();
        let local_v4: Vec<Ipv4Addr> = local
            .iter()
            .flat_map(|(_, i)| i.allowed_ips())
            .filter_map(v4)
            .collect();
        let local_v6: Vec<Ipv6Addr> = local
            .iter()
            .flat_map(|(_, i)| i.allowed_ips())
            .filter_map(v6)
            .collect();
        let vm_macs: Vec<MacAddr> = local.iter().map(|(_, i)| i.mac).collect();
        for (_, iface) in &local {
            self.classify_vm_port(iface);
        }
        for port in self.external_ports() {
            self.classify_external_port(port, selectors, &local_v4, &local_v6, &vm_macs);
        }
        self.push(
            Stage::Classify,
            priority::MISS,
            Match::new(),
            Self::deny(DenyReason::UnknownPort),
        );
    }

    fn classify_vm_port(&mut self, iface: &VmInterface) {
        let (port, mac) = (iface.ofport, iface.mac);
        let own_v4: Vec<Ipv4Addr> = iface.allowed_ips().filter_map(v4).collect();
        let own_v6: Vec<Ipv6Addr> = iface.allowed_ips().filter_map(v6).collect();
        let from_vm = || Match::new().in_port(port).eth_src(mac);
        let forward = || Self::goto(Stage::Forward);
        let spoofed = || Self::deny(DenyReason::Spoofed);
        // VM ports are access ports: a tag from a VM is an attempt to reach
        // another VLAN.
        self.push(
            Stage::Classify,
            priority::VM_TAGGED,
            Match::new().in_port(port).vlan_vid_masked(0x1000, 0x1000),
            spoofed(),
        );
        // ARP with its own addresses, and probes (sender 0.0.0.0) before it
        // has one.
        for spa in own_v4.iter().copied().chain([Ipv4Addr::UNSPECIFIED]) {
            self.push(
                Stage::Classify,
                priority::INFRASTRUCTURE,
                from_vm().eth_type(ETH_ARP).arp_spa(spa).arp_sha(mac),
                forward(),
            );
        }
        // DHCP client to server, from 0.0.0.0 or its own address.
        for src in own_v4.iter().copied().chain([Ipv4Addr::UNSPECIFIED]) {
            self.push(
                Stage::Classify,
                priority::INFRASTRUCTURE,
                from_vm()
                    .eth_type(ETH_IPV4)
                    .ipv4_src(src)
                    .ip_proto(PROTO_UDP)
                    .udp_src(68)
                    .udp_dst(67),
                forward(),
            );
        }
        // IPv6 neighbour discovery, MLD and DHCPv6 from its own addresses
        // (or :: during duplicate address detection), with its own
        // link-layer address in the options and its own targets in adverts.
        let icmp6 = |src: Ipv6Addr, t: u8| {
            from_vm()
                .eth_type(ETH_IPV6)
                .ipv6_src(src)
                .ip_proto(PROTO_ICMPV6)
                .icmpv6_type(t)
        };
        for src in own_v6.iter().copied().chain([Ipv6Addr::UNSPECIFIED]) {
            let dad = src.is_unspecified();
            for sll in [MacAddr::ZERO, mac] {
                if dad && sll != MacAddr::ZERO {
                    continue;
                }
                self.push(
                    Stage::Classify,
                    priority::INFRASTRUCTURE,
                    icmp6(src, ICMPV6_NS).ipv6_nd_sll(sll),
                    forward(),
                );
            }
            if !dad {
                for &target in &own_v6 {
                    for tll in [MacAddr::ZERO, mac] {
                        self.push(
                            Stage::Classify,
                            priority::INFRASTRUCTURE,
                            icmp6(src, ICMPV6_NA)
                                .ipv6_nd_target(target)
                                .ipv6_nd_tll(tll),
                            forward(),
                        );
                    }
                }
                self.push(
                    Stage::Classify,
                    priority::INFRASTRUCTURE,
                    from_vm()
                        .eth_type(ETH_IPV6)
                        .ipv6_src(src)
                        .ip_proto(PROTO_UDP)
                        .udp_src(546)
                        .udp_dst(547),
                    forward(),
                );
            }
            for t in ICMPV6_MLD.into_iter().chain([ICMPV6_RS]) {
                self.push(
                    Stage::Classify,
                    priority::INFRASTRUCTURE,
                    icmp6(src, t),
                    forward(),
                );
            }
        }
        // Whatever ND failed the checks above (and router adverts or
        // redirects, which a VM has no business sending).
        for t in [ICMPV6_RS, ICMPV6_RA, ICMPV6_NS, ICMPV6_NA, ICMPV6_REDIRECT] {
            self.push(
                Stage::Classify,
                priority::ND_SPOOF,
                Match::new()
                    .in_port(port)
                    .eth_type(ETH_IPV6)
                    .ip_proto(PROTO_ICMPV6)
                    .icmpv6_type(t),
                spoofed(),
            );
        }
        for &src in &own_v4 {
            self.push(
                Stage::Classify,
                priority::PORT_IP,
                from_vm().eth_type(ETH_IPV4).ipv4_src(src),
                Self::goto(Stage::SrcAddr),
            );
        }
        for &src in &own_v6 {
            self.push(
                Stage::Classify,
                priority::PORT_IP,
                from_vm().eth_type(ETH_IPV6).ipv6_src(src),
                Self::goto(Stage::SrcAddr),
            );
        }
        self.push(
            Stage::Classify,
            priority::PORT_OTHER,
            Match::new().in_port(port),
            spoofed(),
        );
    }

    fn classify_external_port(
        &mut self,
        port: &ExternalPort,
        selectors: &Selectors,
        local_v4: &[Ipv4Addr],
        local_v6: &[Ipv6Addr],
        vm_macs: &[MacAddr],
    ) {
        let p = port.ofport;
        let from = || Match::new().in_port(p);
        let spoofed = || Self::deny(DenyReason::Spoofed);
        // Nobody outside may claim a local VM's addresses.
        for &ip in local_v4 {
            self.push(
                Stage::Classify,
                priority::OUTSIDE_CLAIMS_VM,
                from().eth_type(ETH_ARP).arp_spa(ip),
                spoofed(),
            );
            self.push(
                Stage::Classify,
                priority::OUTSIDE_SPOOF,
                from().eth_type(ETH_IPV4).ipv4_src(ip),
                spoofed(),
            );
        }
        for &ip in local_v6 {
            self.push(
                Stage::Classify,
                priority::OUTSIDE_CLAIMS_VM,
                from()
                    .eth_type(ETH_IPV6)
                    .ip_proto(PROTO_ICMPV6)
                    .icmpv6_type(ICMPV6_NA)
                    .ipv6_nd_target(ip),
                spoofed(),
            );
            self.push(
                Stage::Classify,
                priority::OUTSIDE_SPOOF,
                from().eth_type(ETH_IPV6).ipv6_src(ip),
                spoofed(),
            );
        }
        // Infrastructure from outside: ARP, ND and MLD, DHCP servers.
        self.push(
            Stage::Classify,
            priority::INFRASTRUCTURE,
            from().eth_type(ETH_ARP),
            Self::goto(Stage::Forward),
        );
        for t in ICMPV6_MLD.into_iter().chain([
            ICMPV6_RS,
            ICMPV6_RA,
            ICMPV6_NS,
            ICMPV6_NA,
            ICMPV6_REDIRECT,
        ]) {
            self.push(
                Stage::Classify,
                priority::INFRASTRUCTURE,
                from()
                    .eth_type(ETH_IPV6)
                    .ip_proto(PROTO_ICMPV6)
                    .icmpv6_type(t),
                Self::goto(Stage::Forward),
            );
        }
        self.push(
            Stage::Classify,
            priority::INFRASTRUCTURE,
            from()
                .eth_type(ETH_IPV4)
                .ip_proto(PROTO_UDP)
                .udp_src(67)
                .udp_dst(68),
            Self::goto(Stage::Forward),
        );
        self.push(
            Stage::Classify,
            priority::INFRASTRUCTURE,
            from()
                .eth_type(ETH_IPV6)
                .ip_proto(PROTO_UDP)
                .udp_src(547)
                .udp_dst(546),
            Self::goto(Stage::Forward),
        );
        // IP: remember which port endpoints it came through.
        let mut bits = Bits::default();
        for (n, name) in selectors.src_port.iter().enumerate() {
            if self
                .policy
                .endpoint(name)
                .is_some_and(|e| endpoint_has_port(e, port))
            {
                bits |= Bits::bit(n);
            }
        }
        let loads = bits.loads(&[regs::SRC_PORT]);
        for eth_type in [ETH_IPV4, ETH_IPV6] {
            self.push(
                Stage::Classify,
                priority::PORT_IP,
                from().eth_type(eth_type),
                Self::then(loads.clone(), Stage::SrcAddr),
            );
        }
        // Other frames for a VM are not the policy's to let through; other
        // frames between external ports (LLDP, LACP, ...) are not its
        // business.
        for &mac in vm_macs {
            self.push(
                Stage::Classify,
                priority::OUTSIDE_TO_VM_NON_IP,
                from().eth_dst(mac),
                Self::deny(DenyReason::NoRule),
            );
        }
        self.push(
            Stage::Classify,
            priority::PORT_OTHER,
            from(),
            Self::goto(Stage::Forward),
        );
    }

    /// Tables 1 and 2: the address selectors of the source or destination.
    fn addresses(&mut self, selectors: &Selectors, side: Side) {
        let (stage, next, bit_regs, flag) = match side {
            Side::Src => (
                Stage::SrcAddr,
                Stage::DstAddr,
                &regs::SRC_ADDR,
                regs::SRC_IS_VM,
            ),
            Side::Dst => (
                Stage::DstAddr,
                Stage::DstPort,
                &regs::DST_ADDR,
                regs::DST_IS_VM,
            ),
        };
        let names = match side {
            Side::Src => &selectors.src_addr,
            Side::Dst => &selectors.dst_addr,
        };
        // Every VM address, wherever the VM is: remote VMs are recognised by
        // address when their traffic arrives through an uplink.
        for (n, vm) in self.inventory.vms.iter().enumerate() {
            let mut bits = Bits::default();
            for (bit, name) in names.iter().enumerate() {
                if self.members.get(name).is_some_and(|m| m.contains(&n)) {
                    bits |= Bits::bit(bit);
                }
            }
            let mut actions = vec![Action::set_field(MatchField::exact(flag, 1u32))];
            actions.extend(bits.loads(bit_regs));
            for iface in &vm.interfaces {
                let local = iface.bridge == self.bridge;
                for ip in iface.allowed_ips() {
                    let m = address_match(ip, side);
                    if side == Side::Dst && local {
                        self.push(
                            stage,
                            priority::VM_MAC_AND_IP,
                            Match::new().eth_dst(iface.mac).exact_all(&m),
                            Self::then(actions.clone(), next),
                        );
                    }
                    self.push(
                        stage,
                        priority::VM_ADDRESS,
                        m,
                        Self::then(actions.clone(), next),
                    );
                }
                if side == Side::Dst && local {
                    for eth_type in [ETH_IPV4, ETH_IPV6] {
                        self.push(
                            stage,
                            priority::VM_MAC_OTHER_IP,
                            Match::new().eth_dst(iface.mac).eth_type(eth_type),
                            Self::deny(DenyReason::Misaddressed),
                        );
                    }
                }
            }
        }
        // CIDR endpoints, longest prefix first: the flow of a prefix carries
        // the bits of every endpoint whose CIDRs contain it, so the longest
        // match yields all the endpoints an address is in.
        let mut prefixes: BTreeMap<IpNet, Bits> = BTreeMap::new();
        let cidrs: Vec<(usize, IpNet)> = names
            .iter()
            .enumerate()
            .filter_map(|(bit, name)| self.policy.endpoint(name).map(|e| (bit, e)))
            .flat_map(|(bit, e)| e.cidrs.iter().map(move |c| (bit, *c)))
            .collect();
        for &(_, net) in &cidrs {
            let mut bits = Bits::default();
            for &(bit, other) in &cidrs {
                if other.contains(&net) {
                    bits |= Bits::bit(bit);
                }
            }
            prefixes.insert(net, bits);
        }
        for (net, bits) in prefixes {
            self.push(
                stage,
                priority::CIDR_BASE + u16::from(net.prefix_len()),
                prefix_match(net, side),
                Self::then(bits.loads(bit_regs), next),
            );
        }
        self.push(stage, priority::MISS, Match::new(), Self::goto(next));
    }

    /// Table 3: destination port endpoints, by destination MAC.
    fn dst_ports(&mut self, selectors: &Selectors) {
        let ports = self.external_ports();
        let bits_of = |port: &ExternalPort| {
            let mut bits = Bits::default();
            for (n, name) in selectors.dst_port.iter().enumerate() {
                if self
                    .policy
                    .endpoint(name)
                    .is_some_and(|e| endpoint_has_port(e, port))
                {
                    bits |= Bits::bit(n);
                }
            }
            bits
        };
        let mut flows = Vec::new();
        let mut uplinks = Vec::new();
        for port in &ports {
            let bits = bits_of(port);
            match port.mac {
                Some(mac) if !bits.is_empty() => {
                    flows.push((priority::PORT_MAC, Match::new().eth_dst(mac), bits))
                }
                Some(_) => {}
                None if !port.is_local() => uplinks.push((port, bits)),
                None => {}
            }
        }
        // Where NORMAL will send a frame for an unknown MAC cannot be known
        // here, unless there is one way out.
        match uplinks.as_slice() {
            [(_, bits)] if !bits.is_empty() => {
                flows.push((priority::CIDR_BASE, Match::new(), *bits));
            }
            [_] | [] => {}
            several => {
                for (port, bits) in several {
                    if !bits.is_empty() {
                        self.warnings.push(format!(
                            "bridge `{}`: port `{}` is one of several uplinks, so traffic to it \
                             cannot be told apart; select its destinations by CIDR",
                            self.bridge, port.name
                        ));
                    }
                }
            }
        }
        if !flows.is_empty() {
            let vm_macs: Vec<MacAddr> = self
                .inventory
                .vms
                .iter()
                .flat_map(|vm| vm.interfaces.iter().map(|i| i.mac))
                .collect();
            for mac in vm_macs {
                self.push(
                    Stage::DstPort,
                    priority::VM_ADDRESS,
                    Match::new().eth_dst(mac),
                    Self::goto(Stage::Conntrack),
                );
            }
        }
        for (prio, m, bits) in flows {
            self.push(
                Stage::DstPort,
                prio,
                m,
                Self::then(bits.loads(&[regs::DST_PORT]), Stage::Conntrack),
            );
        }
        self.push(
            Stage::DstPort,
            priority::MISS,
            Match::new(),
            Self::goto(Stage::Conntrack),
        );
    }

    /// Table 4: traffic that involves a VM goes through the connection
    /// tracker; traffic between non-VMs (the host's own, over LOCAL and the
    /// uplink) is not the policy's and is forwarded untouched.
    fn conntrack(&mut self) {
        self.push(
            Stage::Conntrack,
            priority::UNTRACKED,
            Match::new()
                .exact(regs::SRC_IS_VM, 0u32)
                .exact(regs::DST_IS_VM, 0u32),
            Self::goto(Stage::Forward),
        );
        let ct = Action::Ct(
            Ct::new()
                .zone(self.settings.ct_zone)
                .table(Stage::Acl.table_id()),
        );
        for eth_type in [ETH_IPV4, ETH_IPV6] {
            self.push(
                Stage::Conntrack,
                priority::TRACK,
                Match::new().eth_type(eth_type),
                vec![Instruction::ApplyActions(vec![ct.clone()])],
            );
        }
        self.push(
            Stage::Conntrack,
            priority::MISS,
            Match::new(),
            Self::deny(DenyReason::NoRule),
        );
    }

    /// Table 5: connection state, then the rules.
    fn acl(
        &mut self,
        live: &[LiveRule<'_>],
        meters: &BTreeMap<u32, MeterSpec>,
        selectors: &Selectors,
    ) {
        let state = |value: CtState, mask: CtState| Match::new().ct_state(value, mask);
        let trk = CtState::TRACKED;
        let inv = CtState::INVALID;
        self.push(
            Stage::Acl,
            priority::INVALID,
            state(trk | inv, trk | inv),
            Vec::new(),
        );
        let settled = [CtState::ESTABLISHED, CtState::RELATED];
        for LiveRule { rule, hard_timeout } in live {
            let Some(meter) = meters.get(&rule.index) else {
                continue;
            };
            for s in settled {
                self.push_with(
                    Stage::Acl,
                    priority::METERED_ESTABLISHED,
                    state(trk | s, trk | s | inv).ct_mark(meter.id),
                    vec![
                        Instruction::Meter(meter.id),
                        Instruction::GotoTable(Stage::Forward.table_id()),
                    ],
                    self.cookie(Origin::Rule(rule.index)),
                    *hard_timeout,
                );
            }
        }
        for s in settled {
            self.push(
                Stage::Acl,
                priority::ESTABLISHED,
                state(trk | s, trk | s | inv),
                Self::goto(Stage::Forward),
            );
        }
        for live_rule in live {
            self.rule_flows(live_rule, meters.get(&live_rule.rule.index), selectors);
        }
        if self.settings.mode == Mode::Learn {
            self.learn();
        }
        self.push(
            Stage::Acl,
            priority::MISS,
            Match::new(),
            Self::deny(DenyReason::NoRule),
        );
    }

    fn rule_flows(
        &mut self,
        live: &LiveRule<'_>,
        meter: Option<&MeterSpec>,
        selectors: &Selectors,
    ) {
        let rule = live.rule;
        // Rule n outranks rule n+1 where they overlap.
        let prio = priority::RULE_FIRST
            - u16::try_from(rule.index)
                .unwrap_or(u16::MAX - 1)
                .min(priority::RULE_FIRST - priority::LEARN - 1);
        let mut sources: Vec<MatchField> = Vec::new();
        for name in &rule.from {
            let atoms = Self::atoms(selectors, name, Side::Src);
            sources.extend(atoms.port.and_then(|n| Bits::test(n, &[regs::SRC_PORT])));
            sources.extend(atoms.addr.and_then(|n| Bits::test(n, &regs::SRC_ADDR)));
        }
        let mut dests: Vec<MatchField> = Vec::new();
        for name in &rule.to {
            let atoms = Self::atoms(selectors, name, Side::Dst);
            dests.extend(atoms.port.and_then(|n| Bits::test(n, &[regs::DST_PORT])));
            dests.extend(atoms.addr.and_then(|n| Bits::test(n, &regs::DST_ADDR)));
        }
        if sources.is_empty() || dests.is_empty() {
            return;
        }
        // OVS refuses `ct` in a flow whose match does not pin the IP
        // version, so each rule has a flow per version.
        let versions: [(u16, Option<u8>); 2] = match rule.proto {
            Proto::Tcp => [(ETH_IPV4, Some(PROTO_TCP)), (ETH_IPV6, Some(PROTO_TCP))],
            Proto::Udp => [(ETH_IPV4, Some(PROTO_UDP)), (ETH_IPV6, Some(PROTO_UDP))],
            Proto::Icmp => [(ETH_IPV4, Some(PROTO_ICMP)), (ETH_IPV6, Some(PROTO_ICMPV6))],
            Proto::Ip => [(ETH_IPV4, None), (ETH_IPV6, None)],
        };
        let port_masks = rule.ports.map(port_prefixes).unwrap_or_default();
        let mut commit = Ct::new().commit().zone(self.settings.ct_zone);
        let mut instructions = Vec::with_capacity(3);
        if let Some(meter) = meter {
            commit = commit.then(Action::set_field(MatchField::exact(
                Field::CtMark,
                meter.id,
            )));
            instructions.push(Instruction::Meter(meter.id));
        }
        let mut actions = vec![Action::Ct(commit)];
        // Each admitted opening is copied to the controller, which records
        // it per VM pair and installs the connection's counting flow. As in
        // learn mode, the meter sits on the copy only: when it drops a
        // sample the connection still passes, and the rule's counters still
        // count the opening.
        if self.settings.deny_sample_pps != 0 {
            actions.push(Action::Controller2(vec![
                Controller2Prop::MaxLen(self.settings.deny_sample_max_len),
                Controller2Prop::MeterId(self.settings.deny_meter_id),
            ]));
        }
        instructions.push(Instruction::ApplyActions(actions));
        instructions.push(Instruction::GotoTable(Stage::Forward.table_id()));
        let cookie = self.cookie(Origin::Rule(rule.index));
        let new = CtState::TRACKED | CtState::NEW;
        for src in &sources {
            for dst in &dests {
                let mut matches = Vec::new();
                for (eth_type, proto) in versions {
                    let base = Match::new()
                        .ct_state(new, new | CtState::INVALID)
                        .eth_type(eth_type)
                        .exact_all(&Match::from(vec![(*src).into(), (*dst).into()]));
                    let Some(proto) = proto else {
                        matches.push(base);
                        continue;
                    };
                    let with_proto = base.ct_nw_proto(proto);
                    if port_masks.is_empty() {
                        matches.push(with_proto);
                        continue;
                    }
                    for &(value, mask) in &port_masks {
                        matches.push(if mask == u16::MAX {
                            with_proto.clone().ct_tp_dst(value)
                        } else {
                            with_proto.clone().ct_tp_dst_masked(value, mask)
                        });
                    }
                }
                for m in matches {
                    self.push_with(
                        Stage::Acl,
                        prio,
                        m,
                        instructions.clone(),
                        cookie,
                        live.hard_timeout,
                    );
                }
            }
        }
    }

    /// Acl in learn mode: every new connection no rule admitted is admitted
    /// anyway and committed, and its first packet is copied to the
    /// controller. The meter sits on the copy (`controller(meter_id=...)`),
    /// not on the flow: an OpenFlow meter instruction would drop the
    /// connection's packets too once the rate is exceeded. The copy carries
    /// the conntrack original tuple in its match, which is what names the
    /// service side of the connection.
    fn learn(&mut self) {
        let settings = self.settings;
        let new = CtState::TRACKED | CtState::NEW;
        let commit = Action::Ct(Ct::new().commit().zone(settings.ct_zone));
        let mut actions = vec![commit];
        if settings.deny_sample_pps != 0 {
            actions.push(Action::Controller2(vec![
                Controller2Prop::MaxLen(settings.deny_sample_max_len),
                Controller2Prop::MeterId(settings.deny_meter_id),
            ]));
        }
        let cookie = self.cookie(Origin::Learn);
        // OVS refuses `ct` in a flow whose match does not pin the IP version.
        for eth_type in [ETH_IPV4, ETH_IPV6] {
            self.push_with(
                Stage::Acl,
                priority::LEARN,
                Match::new()
                    .ct_state(new, new | CtState::INVALID)
                    .eth_type(eth_type),
                vec![
                    Instruction::ApplyActions(actions.clone()),
                    Instruction::GotoTable(Stage::Forward.table_id()),
                ],
                cookie,
                0,
            );
        }
    }

    /// Table 7: drop, sampling to the controller through the meter.
    fn deny_stage(&mut self) {
        let settings = self.settings;
        for reason in DenyReason::ALL {
            let instructions = if settings.deny_sample_pps == 0 {
                Vec::new()
            } else {
                vec![
                    Instruction::Meter(settings.deny_meter_id),
                    Instruction::ApplyActions(vec![Action::controller(
                        settings.deny_sample_max_len,
                    )]),
                ]
            };
            let cookie = self.cookie(Origin::Deny(reason));
            self.push_with(
                Stage::Deny,
                priority::DENY_REASON,
                Match::new().exact(regs::DENY_REASON, u32::from(reason.number())),
                instructions,
                cookie,
                0,
            );
        }
        self.push(Stage::Deny, priority::MISS, Match::new(), Vec::new());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Src,
    Dst,
}

struct Kinds {
    ports: bool,
    addrs: bool,
}

fn endpoint_has_port(endpoint: &super::file::Endpoint, port: &ExternalPort) -> bool {
    (endpoint.local && port.is_local()) || endpoint.ports.iter().any(|n| n == &port.name)
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

fn v6(ip: IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(v6) => Some(v6),
        IpAddr::V4(_) => None,
    }
}

/// `eth_type` and the source or destination address.
fn address_match(ip: IpAddr, side: Side) -> Match {
    match (ip, side) {
        (IpAddr::V4(a), Side::Src) => Match::new().eth_type(ETH_IPV4).ipv4_src(a),
        (IpAddr::V4(a), Side::Dst) => Match::new().eth_type(ETH_IPV4).ipv4_dst(a),
        (IpAddr::V6(a), Side::Src) => Match::new().eth_type(ETH_IPV6).ipv6_src(a),
        (IpAddr::V6(a), Side::Dst) => Match::new().eth_type(ETH_IPV6).ipv6_dst(a),
    }
}

/// `eth_type` and a prefix of the source or destination address (no
/// address match for a /0).
fn prefix_match(net: IpNet, side: Side) -> Match {
    match net {
        IpNet::V4(n) => {
            let m = Match::new().eth_type(ETH_IPV4);
            match (n.prefix_len(), side) {
                (0, _) => m,
                (32, Side::Src) => m.ipv4_src(n.addr()),
                (32, Side::Dst) => m.ipv4_dst(n.addr()),
                (_, Side::Src) => m.ipv4_src_masked(n.network(), n.netmask()),
                (_, Side::Dst) => m.ipv4_dst_masked(n.network(), n.netmask()),
            }
        }
        IpNet::V6(n) => {
            let m = Match::new().eth_type(ETH_IPV6);
            match (n.prefix_len(), side) {
                (0, _) => m,
                (128, Side::Src) => m.ipv6_src(n.addr()),
                (128, Side::Dst) => m.ipv6_dst(n.addr()),
                (_, Side::Src) => m.ipv6_src_masked(n.network(), n.netmask()),
                (_, Side::Dst) => m.ipv6_dst_masked(n.network(), n.netmask()),
            }
        }
    }
}

/// A port range as the fewest value/mask pairs that cover exactly it.
pub fn port_prefixes(range: PortRange) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    let mut start = u32::from(range.first);
    let end = u32::from(range.last);
    while start <= end {
        // The largest aligned block starting at `start` that fits.
        let mut size = if start == 0 {
            1u32 << 16
        } else {
            1u32 << start.trailing_zeros()
        };
        while start + size - 1 > end {
            size >>= 1;
        }
        let mask = !(size - 1) & 0xffff;
        // Both fit in 16 bits: start <= end <= 65535.
        out.push((start as u16, mask as u16));
        start += size;
    }
    out
}

/// Appending every field of another match.
trait ExactAll {
    fn exact_all(self, other: &Match) -> Match;
}

impl ExactAll for Match {
    fn exact_all(mut self, other: &Match) -> Match {
        for oxm in other.oxms() {
            if let Some(field) = oxm.known() {
                self.set(*field);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_become_exact_prefixes() {
        let cover = |first, last| {
            let pieces = port_prefixes(PortRange { first, last });
            for port in 0..=u16::MAX {
                let hits = pieces.iter().filter(|(v, m)| port & m == *v).count();
                let inside = (first..=last).contains(&port);
                assert_eq!(hits, usize::from(inside), "{first}-{last} port {port}");
            }
            pieces.len()
        };
        assert_eq!(cover(80, 80), 1);
        assert_eq!(cover(8000, 8080), 3);
        assert_eq!(cover(1, 65535), 16);
        assert_eq!(cover(1024, 65535), 6);
        assert_eq!(port_prefixes(PortRange::single(22)), [(22, 0xffff)]);
    }

    #[test]
    fn rule_flows_copy_each_opening_through_the_sampling_meter() {
        let policy = Policy::parse(
            "[groups.web]\nvms = [\"a\"]\n[[allow]]\nfrom = \"web\"\nto = \"web\"\nproto = \"tcp\"\nport = 80\n",
            "p.toml",
            std::time::UNIX_EPOCH,
        )
        .unwrap();
        let inventory: Inventory = serde_json::from_str(
            r#"{"bridges": [{"name": "br0", "datapath_id": 1}], "vms": [{"id": "a", "interfaces": [{"bridge": "br0", "ofport": 1, "mac": "02:00:00:00:00:01", "ips": ["10.0.0.1"]}]}], "external_ports": []}"#,
        )
        .unwrap();
        let rule_flows = |settings: &CompileSettings| {
            let compiled = compile(&policy, &inventory, settings, std::time::UNIX_EPOCH).unwrap();
            let cookie = Cookie::new(settings.version, Origin::Rule(0));
            let flows: Vec<FlowEntry> = compiled
                .bridge("br0")
                .unwrap()
                .stage(Stage::Acl)
                .filter(|f| f.cookie == cookie)
                .cloned()
                .collect();
            assert_eq!(flows.len(), 2, "one flow per IP version");
            flows
        };
        let settings = CompileSettings::default();
        for flow in rule_flows(&settings) {
            let Some(Instruction::ApplyActions(actions)) = flow.instructions.first() else {
                panic!("{:?}", flow.instructions);
            };
            assert!(
                matches!(actions.first(), Some(Action::Ct(_))),
                "{actions:?}"
            );
            // The copy is metered, the connection is not.
            assert_eq!(
                actions.get(1),
                Some(&Action::Controller2(vec![
                    Controller2Prop::MaxLen(settings.deny_sample_max_len),
                    Controller2Prop::MeterId(settings.deny_meter_id),
                ]))
            );
            assert_eq!(
                flow.instructions.get(1),
                Some(&Instruction::GotoTable(Stage::Forward.table_id()))
            );
        }
        // Without a sampling meter nothing is copied.
        let quiet = CompileSettings {
            deny_sample_pps: 0,
            ..CompileSettings::default()
        };
        for flow in rule_flows(&quiet) {
            let Some(Instruction::ApplyActions(actions)) = flow.instructions.first() else {
                panic!("{:?}", flow.instructions);
            };
            assert_eq!(actions.len(), 1, "{actions:?}");
        }
    }
}
