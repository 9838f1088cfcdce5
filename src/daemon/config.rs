//! The daemon's settings: a TOML file, then `AUGUR_…` environment variables
//! over it, merged by the `config` crate.
//!
//! The file is first read on its own with the `toml` crate, which keeps
//! spans, so that a mistake in it is reported as `file:line:column: setting:
//! reason`. Environment variables name a setting as its path in capitals with
//! `__` between levels: `AUGUR_LISTEN__TCP=0.0.0.0:6653`,
//! `AUGUR_OPENFLOW__ECHO_INTERVAL=3s`, `AUGUR_POLICY=/etc/augur/policy.toml`.
//! Lists (only `listen.tcp`) take commas. Variables whose first part is not a
//! section of the file (`AUGUR_LOG`, which the other subcommands read) are
//! not settings and are ignored, unless they contain `__`, which only a
//! setting would: those are refused as unknown.
//!
//! Every setting and its default is described in `examples/augur.toml`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::policy::CompileSettings;
use crate::policy::compile::Mode;

/// The port OpenFlow switches connect to unless told otherwise (IANA).
pub const OPENFLOW_PORT: u16 = 6653;

/// The prefix of the environment variables that override settings.
pub const ENV_PREFIX: &str = "AUGUR_";

/// The sections and top-level settings of the file; environment variables
/// whose first part is one of these are settings.
const TOP_LEVEL: &[&str] = &[
    "mode",
    "policy",
    "inventory",
    "reload_interval",
    "listen",
    "openflow",
    "compile",
    "ovsdb",
    "logging",
    "metrics",
    "observer",
    "risk",
    "recommend",
    "predictor",
    "scan",
];

/// Everything `augur run` can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Enforce the policy, or admit everything and observe it.
    pub mode: Mode,
    /// The policy file (required).
    pub policy: Option<PathBuf>,
    /// Where the inventory of bridges, VMs and ports comes from.
    pub inventory: InventoryConfig,
    /// How often the policy file (and an inventory file) are checked for
    /// changes.
    pub reload_interval: Interval,
    /// Where switches connect.
    pub listen: ListenConfig,
    /// OpenFlow session timing and reconciliation.
    pub openflow: OpenFlowConfig,
    /// What the policy compiles to besides the rules.
    pub compile: CompileConfig,
    /// The OVSDB server holding the bridges' own settings.
    pub ovsdb: OvsdbConfig,
    /// Diagnostics.
    pub logging: LoggingConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The live observer: counter polls and denied samples into the history.
    pub observer: ObserverConfig,
    /// How proposed policy changes are scored, and operator overrides.
    pub risk: crate::risk::RiskSettings,
    /// What the recommender proposes.
    pub recommend: crate::recommend::RecommendSettings,
    /// The predictor: horizon, learning samples, candidate search.
    pub predictor: crate::predict::PredictorParams,
    /// When a source counts as scanning.
    pub scan: crate::predict::ScanParams,
    /// The decision loop: automatic changes, reviews, automatic rollback.
    pub orchestrate: OrchestrateConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Enforce,
            policy: None,
            inventory: InventoryConfig::default(),
            reload_interval: Interval(Duration::from_secs(2)),
            listen: ListenConfig::default(),
            openflow: OpenFlowConfig::default(),
            compile: CompileConfig::default(),
            ovsdb: OvsdbConfig::default(),
            logging: LoggingConfig::default(),
            metrics: MetricsConfig::default(),
            observer: ObserverConfig::default(),
            risk: crate::risk::RiskSettings::default(),
            recommend: crate::recommend::RecommendSettings::default(),
            predictor: crate::predict::PredictorParams::default(),
            scan: crate::predict::ScanParams::default(),
            orchestrate: OrchestrateConfig::default(),
        }
    }
}

/// The `[orchestrate]` table: the decision loop
/// ([`crate::orchestrate::service`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrchestrateConfig {
    /// Whether augur changes the policy by itself (needs `observer.store`
    /// for the history it learns from, and `ovsdb.target` for reviews).
    pub enabled: bool,
    /// How often recommendations are computed and acted on.
    pub cycle: Interval,
    /// How long an applied change is watched for harm (0s: not watched).
    pub watch_for: Interval,
    /// When a watched change counts as harmful.
    pub harm: crate::orchestrate::engine::HarmSettings,
    /// How long reviews wait and their outcomes stay.
    pub pending: crate::pending::PendingSettings,
}

impl Default for OrchestrateConfig {
    fn default() -> OrchestrateConfig {
        OrchestrateConfig {
            enabled: false,
            cycle: Interval(Duration::from_secs(30)),
            watch_for: Interval(Duration::from_secs(600)),
            harm: crate::orchestrate::engine::HarmSettings::default(),
            pending: crate::pending::PendingSettings::default(),
        }
    }
}

/// The conventional OVSDB socket of a packaged Open vSwitch.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

/// The `inventory` table: where the inventory comes from and, for OVSDB, how
/// interface rows become VMs (the keys of
/// [`InventorySettings`](crate::inventory::InventorySettings): `vm_id_keys`,
/// `label_prefix`, `bridges`, `vms`), as `augur inventory --config` reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InventoryConfig {
    /// The source: `file = "..."` or `ovsdb = "..."`.
    #[serde(flatten)]
    pub source: InventorySource,
    /// How OVSDB rows become VMs; unused with a file.
    #[serde(flatten)]
    pub settings: crate::inventory::InventorySettings,
}

impl<'de> Deserialize<'de> for InventoryConfig {
    /// Written out rather than derived: serde's `flatten` would turn a
    /// misspelt key into "no variant found" instead of naming it.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<InventoryConfig, D::Error> {
        use serde::de::Error as _;
        const KEYS: &[&str] = &[
            "file",
            "ovsdb",
            "vm_id_keys",
            "label_prefix",
            "bridges",
            "vms",
        ];
        let table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut source = None;
        let mut settings = serde_json::Map::new();
        for (key, value) in table {
            let text = |v: serde_json::Value| match v {
                serde_json::Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!(
                    "`{key}` must be a string, not {other}"
                ))),
            };
            let chosen = match key.as_str() {
                "file" => InventorySource::File(PathBuf::from(text(value)?)),
                "ovsdb" => InventorySource::Ovsdb(text(value)?),
                k if KEYS.contains(&k) => {
                    settings.insert(key, value);
                    continue;
                }
                _ => return Err(D::Error::unknown_field(&key, KEYS)),
            };
            if source.replace(chosen).is_some() {
                return Err(D::Error::custom("give either `file` or `ovsdb`, not both"));
            }
        }
        let settings =
            crate::inventory::InventorySettings::deserialize(serde_json::Value::Object(settings))
                .map_err(D::Error::custom)?;
        Ok(InventoryConfig {
            source: source.unwrap_or_default(),
            settings,
        })
    }
}

/// Where the inventory comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InventorySource {
    /// A TOML or JSON file (by extension: `.json` is JSON) in the form
    /// [`Inventory`](crate::inventory::Inventory) deserializes from, reread
    /// when it changes.
    File(PathBuf),
    /// Live from OVSDB at this target (`unix:PATH`, `tcp:IP:PORT`, `ssl:...`).
    Ovsdb(String),
}

impl Default for InventorySource {
    fn default() -> InventorySource {
        InventorySource::Ovsdb(DEFAULT_OVSDB.to_owned())
    }
}

/// Listeners for switch connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Plain TCP addresses (none: no TCP listener).
    pub tcp: ListenList,
    /// A TLS listener with mutual authentication.
    pub ssl: Option<SslConfig>,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            tcp: ListenList(vec![ListenAddress(SocketAddr::from((
                [127, 0, 0, 1],
                OPENFLOW_PORT,
            )))]),
            ssl: None,
        }
    }
}

/// A TLS listener: the files `ovs-pki` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SslConfig {
    /// Where to listen.
    pub address: ListenAddress,
    /// The controller's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// The controller's certificate chain (PEM), leaf first.
    pub certificate: PathBuf,
    /// The CA that signs the switches' certificates (`switchca/cacert.pem`):
    /// a switch without a certificate it signed is refused.
    pub ca_cert: PathBuf,
}

/// OpenFlow timing and reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenFlowConfig {
    /// Time from the connection to the end of the handshake.
    pub handshake_timeout: Interval,
    /// Idle time after which the switch is sent an echo request.
    pub echo_interval: Interval,
    /// Time an idle switch has to answer before it is declared dead.
    pub echo_timeout: Interval,
    /// Time a request (flow dump, barrier, bundle commit) has to be answered.
    pub request_timeout: Interval,
    /// How often each switch's flows are dumped and repaired even when
    /// nothing changed (0: never).
    pub audit_interval: Interval,
    /// Delay before retrying a failed update; doubles up to 5 minutes.
    pub retry_interval: Interval,
    /// Bytes of a table-miss packet sent to the controller.
    pub miss_send_len: u16,
}

impl Default for OpenFlowConfig {
    fn default() -> OpenFlowConfig {
        OpenFlowConfig {
            handshake_timeout: Interval(Duration::from_secs(10)),
            echo_interval: Interval(Duration::from_secs(5)),
            echo_timeout: Interval(Duration::from_secs(10)),
            request_timeout: Interval(Duration::from_secs(60)),
            audit_interval: Interval(Duration::from_secs(300)),
            retry_interval: Interval(Duration::from_secs(5)),
            miss_send_len: 128,
        }
    }
}

/// Compilation settings other than the policy version (which the daemon
/// derives from the policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompileConfig {
    /// The conntrack zone of the pipeline.
    pub ct_zone: u16,
    /// Denied packets per second sampled to the controller (0: none).
    pub deny_sample_pps: u32,
    /// Burst of the sampling meter in packets (0: the switch's default).
    pub deny_sample_burst: u32,
    /// Bytes of each sampled packet.
    pub deny_sample_max_len: u16,
    /// The sampling meter's id.
    pub deny_meter_id: u32,
    /// The first rate-limited rule's meter id; the others follow.
    pub first_rule_meter_id: u32,
}

impl Default for CompileConfig {
    fn default() -> CompileConfig {
        let d = CompileSettings::default();
        CompileConfig {
            ct_zone: d.ct_zone,
            deny_sample_pps: d.deny_sample_pps,
            deny_sample_burst: d.deny_sample_burst,
            deny_sample_max_len: d.deny_sample_max_len,
            deny_meter_id: d.deny_meter_id,
            first_rule_meter_id: d.first_rule_meter_id,
        }
    }
}

impl CompileConfig {
    /// The compiler's settings for policy `version` in `mode`.
    pub fn settings(&self, mode: Mode, version: u16) -> CompileSettings {
        CompileSettings {
            mode,
            version,
            ct_zone: self.ct_zone,
            deny_sample_pps: self.deny_sample_pps,
            deny_sample_burst: self.deny_sample_burst,
            deny_sample_max_len: self.deny_sample_max_len,
            deny_meter_id: self.deny_meter_id,
            first_rule_meter_id: self.first_rule_meter_id,
        }
    }
}

/// The bridges' own settings in OVSDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OvsdbConfig {
    /// The OVSDB server (`unix:PATH`, `tcp:IP:PORT`); empty: none, and the
    /// daemon warns that it cannot check the bridges.
    pub target: String,
    /// Set `fail_mode=secure` and `connection_mode=out-of-band` where they
    /// are not (false: only check and warn).
    pub configure_bridges: bool,
    /// `controller_rate_limit` of the managed bridges' controllers, in
    /// packets per second (at least 100; unset: left alone).
    pub controller_rate_limit: Option<u32>,
    /// `controller_burst_limit`, in packets (at least 25; unset: left alone).
    pub controller_burst_limit: Option<u32>,
}

impl Default for OvsdbConfig {
    fn default() -> OvsdbConfig {
        OvsdbConfig {
            target: DEFAULT_OVSDB.to_owned(),
            configure_bridges: true,
            controller_rate_limit: None,
            controller_burst_limit: None,
        }
    }
}

/// How diagnostics look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `human` (one line per event) or `json` (one object per line).
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `info,augur::daemon=debug`.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> LoggingConfig {
        LoggingConfig {
            format: LogFormat::Human,
            level: "info".to_owned(),
        }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Text for people.
    Human,
    /// One JSON object per line.
    Json,
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether to serve `/metrics` at all.
    pub enabled: bool,
    /// Where to serve it.
    pub address: ListenAddress,
}

/// The live observer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObserverConfig {
    /// The history store's directory; without one nothing is observed (the
    /// history is worth keeping only where the operator chose a place).
    pub store: Option<PathBuf>,
    /// How often each switch's counters of augur's flows are read.
    pub poll_interval: Interval,
    /// The aggregation window of a new store (an existing store keeps its
    /// own).
    pub window: Interval,
    /// Idle timeout of a sampled connection's counting flow (whole seconds,
    /// at most 65535): the connection's volume is reported when it ends.
    pub connection_idle: Interval,
}

impl Default for ObserverConfig {
    fn default() -> ObserverConfig {
        ObserverConfig {
            store: None,
            poll_interval: Interval(Duration::from_secs(10)),
            window: Interval(Duration::from_secs(60)),
            connection_idle: Interval(Duration::from_secs(60)),
        }
    }
}

/// The port of the metrics endpoint unless told otherwise.
pub const METRICS_PORT: u16 = 9653;

impl Default for MetricsConfig {
    fn default() -> MetricsConfig {
        MetricsConfig {
            enabled: true,
            address: ListenAddress(SocketAddr::from(([127, 0, 0, 1], METRICS_PORT))),
        }
    }
}

/// A socket address to listen on: `IP:PORT`, `[IPv6]:PORT`, or an IP alone
/// for the default port of the listener (6653 for switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddress(pub SocketAddr);

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddress, String> {
        let s = s.trim();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(ListenAddress(addr));
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ListenAddress(SocketAddr::new(ip, OPENFLOW_PORT)));
        }
        Err(format!(
            "{s:?} is not a listen address: expected IP:PORT with a numeric IP \
             ([IPv6]:PORT for IPv6), e.g. \"127.0.0.1:{OPENFLOW_PORT}\""
        ))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ListenAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ListenAddress, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One listen address or several (a list, or one string with commas); an
/// empty string or list means none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenList(pub Vec<ListenAddress>);

impl Serialize for ListenList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ListenList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ListenList, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let texts = match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected an address \"IP:PORT\" or a list of them")
        })? {
            // Commas separate addresses given as one string (the
            // environment's only way to give several).
            OneOrMany::One(text) => text
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            OneOrMany::Many(texts) => texts,
        };
        texts
            .iter()
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(ListenList)
    }
}

/// A span of time written with units: `500ms`, `5s`, `2m`, `1h30m`, `1d`;
/// a bare integer counts seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(pub Duration);

impl Interval {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Interval, String> {
        let text = s.trim();
        let bad = || {
            format!(
                "{s:?} is not a duration: write a number and a unit, e.g. \"500ms\", \"5s\", \"2m\", \"1h30m\""
            )
        };
        if text.is_empty() {
            return Err(bad());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(Interval(Duration::from_secs(secs)));
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (number, after) = rest.split_at(digits);
            let value: u64 = number.parse().map_err(|_| bad())?;
            let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (unit, after) = after.split_at(unit_len);
            let millis_per_unit: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            let part = value.checked_mul(millis_per_unit).ok_or_else(bad)?;
            total = total
                .checked_add(Duration::from_millis(part))
                .ok_or_else(bad)?;
            rest = after;
        }
        Ok(Interval(total))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis % 1000 != 0 {
            write!(f, "{millis}ms")
        } else {
            write!(f, "{}s", self.0.as_secs())
        }
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Interval, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum TextOrSeconds {
            Text(String),
            Seconds(u64),
        }
        match TextOrSeconds::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"5s\" or \"500ms\"")
        })? {
            TextOrSeconds::Text(text) => text.parse().map_err(serde::de::Error::custom),
            TextOrSeconds::Seconds(secs) => Ok(Interval(Duration::from_secs(secs))),
        }
    }
}

/// Where a setting's value came from, to point at it in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the configuration file.
    File {
        /// The file as given.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column in characters, from 1.
        column: usize,
    },
    /// An environment variable.
    Env(String),
    /// The configuration as a whole (a missing setting, a default).
    Unplaced,
}

/// A configuration that cannot be used: where, which setting, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the offending value is.
    pub origin: Origin,
    /// The setting's path (`listen.ssl.ca_cert`), when one is to blame.
    pub setting: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}: ", path.display())?
            }
            Origin::Env(var) => write!(f, "environment variable {var}: ")?,
            Origin::Unplaced => {}
        }
        if let Some(setting) = &self.setting {
            write!(f, "{setting}: ")?;
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The loaded configuration, with what is needed to point at its settings
/// in later errors (files that cannot be read, addresses in use).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged settings.
    pub config: Config,
    /// The file they came from, if any.
    pub path: Option<PathBuf>,
    /// Where each setting is.
    locator: Locator,
}

impl Loaded {
    /// An error about `setting`, placed where its value came from.
    pub fn error(&self, setting: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.locator.origin(setting),
            setting: Some(setting.to_owned()),
            reason: reason.into(),
        }
    }

    /// A configuration made in code (tests): errors are not placed.
    pub fn from_config(config: Config) -> Loaded {
        Loaded {
            config,
            path: None,
            locator: Locator::default(),
        }
    }
}

/// Setting paths → where their values are.
#[derive(Debug, Clone, Default)]
struct Locator {
    file: Option<PathBuf>,
    /// Setting path → (line, column) of its key in the file.
    lines: HashMap<String, (usize, usize)>,
    /// Setting path → environment variable.
    env: HashMap<String, String>,
}

impl Locator {
    fn origin(&self, setting: &str) -> Origin {
        // The most specific known part of the path: `listen.ssl.ca_cert` may
        // have come as a whole `ssl = {...}` table or an `AUGUR_LISTEN__SSL__…`.
        let mut path = setting;
        loop {
            if let Some(var) = self.env.get(path) {
                return Origin::Env(var.clone());
            }
            if let (Some(file), Some((line, column))) = (&self.file, self.lines.get(path)) {
                return Origin::File {
                    path: file.clone(),
                    line: *line,
                    column: *column,
                };
            }
            match path.rfind('.') {
                Some(dot) => path = &path[..dot],
                None => return Origin::Unplaced,
            }
        }
    }
}

/// Loads the configuration: `file` (if any) with the environment `env`
/// over it, then checks it. `env` is usually `std::env::vars()`.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: Origin::Unplaced,
            setting: None,
            reason: format!("cannot read the configuration file {}: {e}", path.display()),
        })?,
        None => String::new(),
    };
    load_text(&text, file, env)
}

/// [`load`] with the file's text already read.
pub fn load_text(
    text: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let shown = file.map_or_else(|| PathBuf::from("<config>"), Path::to_path_buf);
    // The file alone first, for errors with a line.
    let spans = match toml::de::DeTable::parse(text) {
        Ok(table) => table,
        Err(e) => return Err(toml_error(text, &shown, None, &e)),
    };
    if let Err(e) = toml::from_str::<Config>(text) {
        return Err(toml_error(text, &shown, Some(spans.get_ref()), &e));
    }
    let mut locator = Locator {
        file: file.map(Path::to_path_buf),
        ..Locator::default()
    };
    index_keys(text, spans.get_ref(), "", &mut locator.lines);

    let settings_env = settings_from_env(env)?;
    for (key, var) in settings_env.iter().map(|(k, (var, _))| (k, var)) {
        locator.env.insert(key.clone(), var.clone());
    }
    let env_map: config::Map<String, String> = settings_env.into_values().collect();
    let merged = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
                .prefix_separator("_")
                .separator("__")
                .source(Some(env_map)),
        )
        .build()
        .and_then(config::Config::try_deserialize::<Config>)
        .map_err(|e| merged_error(&e, &locator))?;
    let mut loaded = Loaded {
        config: merged,
        path: file.map(Path::to_path_buf),
        locator,
    };
    if let Some(base) = file.and_then(Path::parent) {
        resolve_paths(&mut loaded, base);
    }
    validate(&loaded)?;
    Ok(loaded)
}

/// Makes the relative file names the configuration file gives relative to
/// its own directory, as people expect when they keep them side by side
/// (names from the environment stay relative to the working directory).
fn resolve_paths(loaded: &mut Loaded, base: &Path) {
    let from_file =
        |locator: &Locator, setting: &str| matches!(locator.origin(setting), Origin::File { .. });
    let locator = loaded.locator.clone();
    let resolve = |path: &mut PathBuf, setting: &str| {
        if path.is_relative() && !path.as_os_str().is_empty() && from_file(&locator, setting) {
            *path = base.join(&*path);
        }
    };
    let c = &mut loaded.config;
    if let Some(policy) = c.policy.as_mut() {
        resolve(policy, "policy");
    }
    if let InventorySource::File(path) = &mut c.inventory.source {
        resolve(path, "inventory.file");
    }
    if let Some(ssl) = c.listen.ssl.as_mut() {
        resolve(&mut ssl.private_key, "listen.ssl.private_key");
        resolve(&mut ssl.certificate, "listen.ssl.certificate");
        resolve(&mut ssl.ca_cert, "listen.ssl.ca_cert");
    }
}

/// The `AUGUR_…` variables that are settings, by setting path, with the
/// variable and its value.
fn settings_from_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, (String, String)>, ConfigError> {
    let mut settings = BTreeMap::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path = rest.to_ascii_lowercase().replace("__", ".");
        let first = path.split('.').next().unwrap_or_default();
        if !TOP_LEVEL.contains(&first) {
            if rest.contains("__") {
                return Err(ConfigError {
                    origin: Origin::Env(var.clone()),
                    setting: Some(path),
                    reason: format!(
                        "no such setting (the sections are {})",
                        TOP_LEVEL.join(", ")
                    ),
                });
            }
            continue;
        }
        settings.insert(path, (var, value));
    }
    Ok(settings)
}

/// Records the line and column of every key of the file by its path.
fn index_keys(
    text: &str,
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    lines: &mut HashMap<String, (usize, usize)>,
) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        lines.insert(path.clone(), line_column(text, key.span().start));
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            index_keys(text, inner, &path, lines);
        }
    }
}

/// The path of the innermost key whose value (or the key itself) contains
/// `span`. Tables are searched first: a `[header]` table's own span covers
/// only its header.
fn key_at(table: &toml::de::DeTable<'_>, span: &std::ops::Range<usize>) -> Option<String> {
    let inside = |r: std::ops::Range<usize>| {
        r.start <= span.start && span.end <= r.end.max(r.start.saturating_add(1))
    };
    for (key, value) in table {
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            if let Some(deeper) = key_at(inner, span) {
                return Some(format!("{}.{deeper}", key.get_ref()));
            }
        }
        if inside(value.span()) || inside(key.span()) {
            return Some(key.get_ref().to_string());
        }
    }
    None
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn toml_error(
    text: &str,
    path: &Path,
    table: Option<&toml::de::DeTable<'_>>,
    e: &toml::de::Error,
) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let (line, column) = line_column(text, span.start);
    let setting = table.and_then(|t| key_at(t, &span));
    ConfigError {
        origin: Origin::File {
            path: path.to_path_buf(),
            line,
            column,
        },
        setting,
        reason: e.message().trim_end().to_owned(),
    }
}

/// An error of the merge or of deserializing the merged settings: the file
/// alone was fine, so an environment variable is to blame.
fn merged_error(e: &config::ConfigError, locator: &Locator) -> ConfigError {
    let (key, reason) = match e {
        config::ConfigError::Type {
            key,
            unexpected,
            expected,
            ..
        } => (
            key.clone(),
            format!("found {unexpected}, expected {expected}"),
        ),
        config::ConfigError::At { error, key, .. } => (key.clone(), error.to_string()),
        other => (None, other.to_string()),
    };
    let origin = key
        .as_deref()
        .map_or(Origin::Unplaced, |k| locator.origin(k));
    // The file alone deserialized, so the environment is to blame; when a
    // single variable is set, it is the one.
    let origin = match origin {
        Origin::Unplaced if locator.env.len() == 1 => locator
            .env
            .values()
            .next()
            .map_or(Origin::Unplaced, |v| Origin::Env(v.clone())),
        other => other,
    };
    ConfigError {
        origin,
        setting: key,
        reason,
    }
}

/// The checks serde cannot make.
fn validate(loaded: &Loaded) -> Result<(), ConfigError> {
    let c = &loaded.config;
    let err = |setting: &str, reason: &str| Err(loaded.error(setting, reason));
    if c.policy.as_deref().is_none_or(|p| p.as_os_str().is_empty()) {
        return Err(ConfigError {
            origin: Origin::Unplaced,
            setting: Some("policy".into()),
            reason: "no policy file given: set `policy = \"FILE\"` in the configuration \
                     file or AUGUR_POLICY"
                .into(),
        });
    }
    match &c.inventory.source {
        InventorySource::File(path) if path.as_os_str().is_empty() => {
            return err("inventory.file", "the inventory file name is empty");
        }
        InventorySource::Ovsdb(target) => {
            if let Err(e) = augur_ovsdb::Target::parse_list(target) {
                return err("inventory.ovsdb", &e.to_string());
            }
        }
        InventorySource::File(_) => {}
    }
    if !c.ovsdb.target.trim().is_empty() {
        if let Err(e) = augur_ovsdb::Target::parse_list(&c.ovsdb.target) {
            return err("ovsdb.target", &e.to_string());
        }
    }
    for (setting, value) in [
        ("reload_interval", c.reload_interval),
        ("openflow.handshake_timeout", c.openflow.handshake_timeout),
        ("openflow.echo_interval", c.openflow.echo_interval),
        ("openflow.echo_timeout", c.openflow.echo_timeout),
        ("openflow.request_timeout", c.openflow.request_timeout),
        ("openflow.retry_interval", c.openflow.retry_interval),
    ] {
        if value.get().is_zero() {
            return err(setting, "must be longer than 0");
        }
    }
    if c.listen.tcp.0.is_empty() && c.listen.ssl.is_none() {
        return err(
            "listen",
            "no listener: give `tcp` addresses or an `ssl` listener, or switches cannot connect",
        );
    }
    if let Some(ssl) = &c.listen.ssl {
        if let Some(clash) = c.listen.tcp.0.iter().find(|t| overlaps(t.0, ssl.address.0)) {
            return err(
                "listen.ssl.address",
                &format!("{} is also a tcp listener ({clash})", ssl.address),
            );
        }
    }
    let meter_max = augur_openflow::METER_MAX;
    let cc = &c.compile;
    if cc.deny_meter_id == 0 || cc.deny_meter_id > meter_max {
        return err(
            "compile.deny_meter_id",
            &format!("meter ids run from 1 to {meter_max}"),
        );
    }
    if cc.first_rule_meter_id <= cc.deny_meter_id || cc.first_rule_meter_id > meter_max {
        return err(
            "compile.first_rule_meter_id",
            &format!(
                "must be above compile.deny_meter_id ({}) and at most {meter_max}",
                cc.deny_meter_id
            ),
        );
    }
    if let Some(rate) = c.ovsdb.controller_rate_limit {
        if rate < 100 {
            return err(
                "ovsdb.controller_rate_limit",
                "Open vSwitch takes at least 100 packets per second",
            );
        }
    }
    if let Some(burst) = c.ovsdb.controller_burst_limit {
        if burst < 25 {
            return err(
                "ovsdb.controller_burst_limit",
                "Open vSwitch takes at least 25 packets",
            );
        }
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.logging.level) {
        return err("logging.level", &format!("not a tracing filter: {e}"));
    }
    if let Err((setting, reason)) = c.risk.validate() {
        return err(&setting, &reason);
    }
    if let Err((setting, reason)) = c.orchestrate.harm.validate() {
        return err(&format!("orchestrate.harm.{setting}"), &reason);
    }
    if c.orchestrate.enabled && c.observer.store.is_none() {
        return err(
            "orchestrate.enabled",
            "the decision loop learns from the history: set observer.store",
        );
    }
    if c.orchestrate.enabled && c.orchestrate.cycle.get() < Duration::from_secs(1) {
        return err("orchestrate.cycle", "must be at least 1s");
    }
    if let Err((setting, reason)) = c.recommend.validate() {
        return err(&setting, &reason);
    }
    if let Err(e) = c.predictor.check() {
        return err(&format!("predictor.{}", e.name), e.reason);
    }
    if c.scan.window_s < 1 || c.scan.min_targets < 2 || c.scan.memory_s < 0 {
        return err(
            "scan",
            "window_s must be at least 1, min_targets at least 2, memory_s not negative",
        );
    }
    Ok(())
}

/// Whether two listen addresses would compete for one port.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_str(text: &str, env: Vec<(String, String)>) -> Result<Config, String> {
        load_text(text, Some(Path::new("augur.toml")), env)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn orchestrate_needs_a_store_and_sane_thresholds() {
        let base = "policy = \"p.toml\"\n";
        let error =
            load_str(&format!("{base}[orchestrate]\nenabled = true\n"), no_env()).unwrap_err();
        assert!(error.contains("orchestrate.enabled"), "{error}");
        assert!(error.contains("observer.store"), "{error}");
        let c = load_str(
            &format!(
                "{base}[observer]\nstore = \"/h\"\n[orchestrate]\nenabled = true\n\
                 cycle = \"5s\"\nwatch_for = \"2m\"\n[orchestrate.harm]\n\
                 denied_rise_min = 5\n[orchestrate.pending]\nexpire_after_secs = 60\n"
            ),
            no_env(),
        )
        .unwrap();
        assert_eq!(c.orchestrate.cycle.get(), Duration::from_secs(5));
        assert_eq!(c.orchestrate.watch_for.get(), Duration::from_secs(120));
        assert_eq!(c.orchestrate.harm.denied_rise_min, 5);
        assert_eq!(c.orchestrate.harm.denied_rise_factor, 3);
        assert_eq!(c.orchestrate.pending.expire_after_secs, 60);
        for bad in [
            "[orchestrate.harm]\ndenied_rise_factor = 0\n",
            "[orchestrate.harm]\nstarved_share = 1.5\n",
        ] {
            let error = load_str(&format!("{base}{bad}"), no_env()).unwrap_err();
            assert!(
                error.contains("denied_rise_factor") || error.contains("between 0 and 1"),
                "{error}"
            );
        }
    }

    #[test]
    fn defaults_need_only_a_policy() {
        let c = load_str("policy = \"p.toml\"\n", no_env()).unwrap();
        assert_eq!(c.policy, Some(PathBuf::from("p.toml")));
        assert_eq!(
            c.listen.tcp.0,
            [ListenAddress("127.0.0.1:6653".parse().unwrap())]
        );
        assert_eq!(c.openflow.echo_interval.get(), Duration::from_secs(5));
        assert_eq!(
            c.inventory.source,
            InventorySource::Ovsdb(DEFAULT_OVSDB.into())
        );
        assert_eq!(c.logging.format, LogFormat::Human);
        assert_eq!(c.mode, Mode::Enforce);
    }

    #[test]
    fn mode_is_read_from_the_file_and_the_environment() {
        let c = load_str("policy = \"p.toml\"\nmode = \"learn\"\n", no_env()).unwrap();
        assert_eq!(c.mode, Mode::Learn);
        assert_eq!(c.compile.settings(c.mode, 3).mode, Mode::Learn);
        let c = load_str(
            "policy = \"p.toml\"\nmode = \"learn\"\n",
            env(&[("AUGUR_MODE", "enforce")]),
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        let e = load_str("policy = \"p.toml\"\nmode = \"watch\"\n", no_env()).unwrap_err();
        assert!(e.contains("unknown variant `watch`"), "{e}");
    }

    #[test]
    fn the_example_file_is_the_defaults() {
        let text = include_str!("../../examples/augur.toml");
        let c = load_str(text, no_env()).unwrap();
        let defaults = Config {
            policy: c.policy.clone(),
            inventory: c.inventory.clone(),
            ..Config::default()
        };
        assert_eq!(c, defaults, "examples/augur.toml states every default");
    }

    #[test]
    fn a_full_file_parses() {
        let text = r#"
policy = "/etc/augur/policy.toml"
inventory = { file = "/etc/augur/inventory.toml" }
reload_interval = "500ms"

[listen]
tcp = ["0.0.0.0:6653", "::1"]
ssl = { address = "0.0.0.0:6654", private_key = "k.pem", certificate = "c.pem", ca_cert = "ca.pem" }

[openflow]
echo_interval = "3s"
echo_timeout = 6
audit_interval = "0s"

[compile]
deny_sample_pps = 0

[ovsdb]
target = ""
controller_rate_limit = 1000
controller_burst_limit = 100

[logging]
format = "json"
level = "debug"

[metrics]
enabled = false
address = "[::1]:9100"
"#;
        let c = load_str(text, no_env()).unwrap();
        assert_eq!(
            c.inventory.source,
            InventorySource::File("/etc/augur/inventory.toml".into())
        );
        assert_eq!(c.reload_interval.get(), Duration::from_millis(500));
        assert_eq!(c.listen.tcp.0.len(), 2);
        assert_eq!(c.listen.tcp.0[1].0, "[::1]:6653".parse().unwrap());
        assert_eq!(
            c.listen.ssl.unwrap().address.0,
            "0.0.0.0:6654".parse().unwrap()
        );
        assert_eq!(c.openflow.echo_timeout.get(), Duration::from_secs(6));
        assert!(c.openflow.audit_interval.get().is_zero());
        assert_eq!(c.ovsdb.controller_rate_limit, Some(1000));
        assert_eq!(c.logging.format, LogFormat::Json);
        assert!(!c.metrics.enabled);
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "policy = \"p.toml\"\n[openflow]\necho_interval = \"3s\"\n";
        let c = load_str(
            text,
            env(&[
                ("AUGUR_LISTEN__TCP", "0.0.0.0:7000,[::1]:7001"),
                ("AUGUR_OPENFLOW__ECHO_INTERVAL", "9s"),
                ("AUGUR_POLICY", "/other.toml"),
                ("AUGUR_INVENTORY__FILE", "/inv.json"),
                ("AUGUR_COMPILE__DENY_SAMPLE_PPS", "7"),
                ("AUGUR_METRICS__ENABLED", "false"),
                // Not settings: read by other parts of augur and its tests.
                ("AUGUR_LOG", "debug"),
                ("AUGUR_SHARED", "/x"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.policy, Some(PathBuf::from("/other.toml")));
        assert_eq!(c.openflow.echo_interval.get(), Duration::from_secs(9));
        assert_eq!(
            c.listen.tcp.0,
            [
                ListenAddress("0.0.0.0:7000".parse().unwrap()),
                ListenAddress("[::1]:7001".parse().unwrap())
            ]
        );
        assert_eq!(
            c.inventory.source,
            InventorySource::File("/inv.json".into())
        );
        assert_eq!(c.compile.deny_sample_pps, 7);
        assert!(!c.metrics.enabled);
    }

    /// Each bad file: the error names the file, line, setting and reason.
    #[test]
    fn bad_files_are_located() {
        let table: &[(&str, &str)] = &[
            (
                "policy = \"p\"\n[listen]\ntcp = \"localhost:6653\"\n",
                "augur.toml:3:7: listen.tcp: \"localhost:6653\" is not a listen address",
            ),
            (
                "policy = \"p\"\n[openflow]\necho_interval = \"5 parsecs\"\n",
                "augur.toml:3:17: openflow.echo_interval: \"5 parsecs\" is not a duration",
            ),
            (
                "policy = \"p\"\n[openflow]\necho_intervall = \"5s\"\n",
                "augur.toml:3:1: openflow.echo_intervall: unknown field `echo_intervall`",
            ),
            (
                "policy = \"p\"\n[logging]\nformat = \"xml\"\n",
                "augur.toml:3:10: logging.format: unknown variant `xml`",
            ),
            (
                "policy = \"p\"\n[compile]\nct_zone = 70000\n",
                "augur.toml:3:11: compile.ct_zone: invalid value",
            ),
            (
                "policy = \"p\"\n[openflow]\necho_timeout = \"0s\"\n",
                "augur.toml:3:1: openflow.echo_timeout: must be longer than 0",
            ),
            (
                "policy = \"p\"\n\n[compile]\ndeny_meter_id = 5\nfirst_rule_meter_id = 5\n",
                "augur.toml:5:1: compile.first_rule_meter_id: must be above compile.deny_meter_id (5)",
            ),
            (
                "policy = \"p\"\n[ovsdb]\ncontroller_rate_limit = 10\n",
                "augur.toml:3:1: ovsdb.controller_rate_limit: Open vSwitch takes at least 100",
            ),
            (
                "policy = \"p\"\n[ovsdb]\ntarget = \"carrier-pigeon:x\"\n",
                "augur.toml:3:1: ovsdb.target: ",
            ),
            (
                "policy = \"p\"\n[listen]\ntcp = []\n",
                "augur.toml:2:2: listen: no listener",
            ),
            (
                "policy = \"p\"\n[listen]\ntcp = \"0.0.0.0:6653\"\nssl = { address = \"127.0.0.1:6653\", private_key = \"k\", certificate = \"c\", ca_cert = \"a\" }\n",
                "augur.toml:4:9: listen.ssl.address: 127.0.0.1:6653 is also a tcp listener",
            ),
            (
                "policy = \"p\"\n[listen]\nssl = { address = \"127.0.0.1:6654\" }\n",
                "augur.toml:3:7: listen.ssl: missing field `private_key`",
            ),
            (
                "policy = \"p\"\n[logging]\nlevel = \"info,=[\"\n",
                "augur.toml:3:1: logging.level: not a tracing filter",
            ),
            (
                "policy = \"p\"\ninventory = { files = \"x\" }\n",
                "augur.toml:2:13: inventory: unknown field `files`, expected one of `file`, `ovsdb`",
            ),
            ("policy = \"p\"\n[listen\n", "augur.toml:2:8: "),
            ("[listen]\n", "policy: no policy file given"),
        ];
        for (text, expected) in table {
            let got = load_str(text, no_env()).unwrap_err();
            assert!(
                got.starts_with(expected),
                "for {text:?}\n  got      {got}\n  expected {expected}…"
            );
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let text = "policy = \"p\"\n";
        let table: &[(&str, &str, &str)] = &[
            (
                "AUGUR_OPENFLOW__ECHO_INTERVAL",
                "soon",
                "environment variable AUGUR_OPENFLOW__ECHO_INTERVAL: openflow.echo_interval: ",
            ),
            (
                "AUGUR_OPENFLOW__ECHO_TIMEOUT",
                "0",
                "environment variable AUGUR_OPENFLOW__ECHO_TIMEOUT: openflow.echo_timeout: must be longer than 0",
            ),
            (
                "AUGUR_LISTN__TCP",
                "0.0.0.0:1",
                "environment variable AUGUR_LISTN__TCP: listn.tcp: no such setting",
            ),
            (
                "AUGUR_COMPILE__CT_ZONE",
                "many",
                "environment variable AUGUR_COMPILE__CT_ZONE: compile.ct_zone: ",
            ),
        ];
        for (var, value, expected) in table {
            let got = load_str(text, env(&[(var, value)])).unwrap_err();
            assert!(
                got.starts_with(expected),
                "for {var}={value}\n  got      {got}\n  expected {expected}…"
            );
        }
    }

    #[test]
    fn relative_file_names_are_relative_to_the_configuration_file() {
        let text = "policy = \"p.toml\"\ninventory = { file = \"/abs/inv.toml\" }\n\
                    [listen]\nssl = { address = \"127.0.0.1:7\", private_key = \"k.pem\", \
                    certificate = \"pki/c.pem\", ca_cert = \"ca.pem\" }\n";
        let loaded = load_text(
            text,
            Some(Path::new("/etc/augur/augur.toml")),
            env(&[("AUGUR_LISTEN__SSL__CA_CERT", "here.pem")]),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.policy, Some(PathBuf::from("/etc/augur/p.toml")));
        assert_eq!(
            c.inventory.source,
            InventorySource::File("/abs/inv.toml".into())
        );
        let ssl = c.listen.ssl.unwrap();
        assert_eq!(ssl.private_key, PathBuf::from("/etc/augur/k.pem"));
        assert_eq!(ssl.certificate, PathBuf::from("/etc/augur/pki/c.pem"));
        assert_eq!(
            ssl.ca_cert,
            PathBuf::from("here.pem"),
            "from the environment"
        );
    }

    #[test]
    fn durations_take_units() {
        let table: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("5s", Some(5_000)),
            ("2m", Some(120_000)),
            ("1h30m", Some(5_400_000)),
            ("1d", Some(86_400_000)),
            ("7", Some(7_000)),
            ("", None),
            ("5", Some(5_000)),
            ("5x", None),
            ("s", None),
            ("-1s", None),
            ("99999999999999999999d", None),
        ];
        for (text, millis) in table {
            let got = text.parse::<Interval>().ok().map(|i| i.get().as_millis());
            assert_eq!(got, millis.map(u128::from), "{text:?}");
        }
        assert_eq!(Interval(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Interval(Duration::from_secs(60)).to_string(), "60s");
    }

    #[test]
    fn listen_addresses_default_the_port() {
        let table: &[(&str, Option<&str>)] = &[
            ("127.0.0.1:6653", Some("127.0.0.1:6653")),
            ("0.0.0.0", Some("0.0.0.0:6653")),
            ("::1", Some("[::1]:6653")),
            ("[::1]", Some("[::1]:6653")),
            ("[::1]:7", Some("[::1]:7")),
            ("localhost", None),
            ("tcp:127.0.0.1:6653", None),
            ("127.0.0.1:99999", None),
        ];
        for (text, expected) in table {
            let got = text.parse::<ListenAddress>().ok().map(|a| a.0);
            assert_eq!(
                got,
                expected.map(|e| e.parse::<SocketAddr>().unwrap()),
                "{text}"
            );
        }
    }
}
