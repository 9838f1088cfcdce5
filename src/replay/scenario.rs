//! A seeded generator of realistic labelled traces, in compressed time, for
//! replay evaluation.
//!
//! One cloud tenant in `10.0.0.0/24`, days counted from the UTC midnight of
//! [`ScenarioParams::start`] (day 0), times of day in UTC:
//!
//! | story | flows |
//! |---|---|
//! | web shop | external clients → web tier tcp 443, diurnal (quiet at 04:00, busy at 16:00, weekends lighter), returning clients more often than new ones; web → app tcp 8080 and app → db tcp 5432 through connection pools (new connections follow load, and every pool reconnects now and then at night too); db-1 → db-2 replication |
//! | scale-out | web-3 appears on day 4 and app-3 on day 7 (10:30–11:00), each at once talking as its tier does: served by the load balancer, calling the next tier, resolving, syncing time, backed up, scraped |
//! | port move | the app tier moves from 8080 to 8443 on day 9 at 10:00; every web VM switches at once and 8080 is never used again |
//! | infrastructure | every VM → dns-1 udp 53 (Poisson, busier for web and app), dns-1 → public resolvers on cache misses; every VM → ntp-1 udp 123 every 1024 s, ntp-1 → public NTP servers; every VM → a public package mirror tcp 80 once a day after 06:25 (randomised timer) |
//! | nightly backup | every VM → backup-1 tcp 873 at 02:00 ±5 min, one rsync each, database dumps much larger |
//! | weekly batch | Sundays from 03:00: batch-1 → db-1 tcp 5432 and → the app tier tcp 9000 |
//! | monitoring | mon-1 → every VM tcp 9100 every 60 s, each target at its own phase |
//! | operator | jump-1 → a random VM tcp 22, on most working days between 08:00 and 18:00 |
//! | compromise | web-2 on day 11 from about 13:40: a TCP scan of the whole /24 on 22, 23, 135, 139, 445, 3306, 3389, 5432, 5985, 6379 (hosts and ports in random order, about four probes a second), then lateral movement to db-1:5432 (logins, then a large dump) and app-1:22 |
//!
//! Only the scan and the lateral movement are labelled [`Truth::Attack`];
//! everything else is [`Truth::Benign`] (web-2 keeps serving while it is
//! compromised). Every connection has a client port in Linux's ephemeral
//! range 32768–60999; bytes are log-normal (heavy-tailed), packets follow
//! from bytes. Fourteen days are about 600 k records.
//!
//! The same parameters give the same trace, byte for byte, on every
//! platform and version: randomness is a PCG-64 stream seeded from
//! [`ScenarioParams::seed`], turned into numbers by this module's own
//! sampling (not a library's, whose algorithms may change).
//!
//! [`write_trace`] writes a trace as the flat CSV the importer reads, with a
//! `label` column, and the inventory as the importer's address book reads it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::Context;
use augur_flows::{Endpoint, FlowRecord, Protocol, Side, Timestamp, Verdict, guess_initiator};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::{Rng, SeedableRng};
use serde::Serialize;

use super::trace::{Trace, TraceEvent, Truth};
use crate::import::AddressBook;

const MICROS: i64 = 1_000_000;
const MINUTE: i64 = 60 * MICROS;
const HOUR: i64 = 3600 * MICROS;
const DAY: i64 = 86_400 * MICROS;

/// Settings of a generated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioParams {
    /// Seeds all randomness: the same parameters give the same trace.
    pub seed: u64,
    /// Days of traffic.
    pub days: u32,
    /// Unix seconds of the first instant; day 0 is the UTC day it falls in.
    /// The default is Monday 2024-03-04 00:00 UTC, so that the weekly batch
    /// runs on days 6 and 13.
    pub start: i64,
    /// External client connections per minute to the whole web tier at the
    /// daily peak of a working day.
    pub peak_clients_per_minute: f64,
    /// The day web-3 appears.
    pub web_scale_out_day: u32,
    /// The day app-3 appears.
    pub app_scale_out_day: u32,
    /// The day the app tier moves from port 8080 to 8443.
    pub port_move_day: u32,
    /// The day web-2 is compromised.
    pub compromise_day: u32,
}

impl Default for ScenarioParams {
    fn default() -> ScenarioParams {
        ScenarioParams {
            seed: 1,
            days: 14,
            start: 1_709_510_400,
            peak_clients_per_minute: 24.0,
            web_scale_out_day: 4,
            app_scale_out_day: 7,
            port_move_day: 9,
            compromise_day: 11,
        }
    }
}

/// The ports the compromised VM scans.
pub const SCANNED_PORTS: [u16; 10] = [22, 23, 135, 139, 445, 3306, 3389, 5432, 5985, 6379];

/// The app tier's service port before the move.
pub const APP_PORT_BEFORE: u16 = 8080;
/// The app tier's service port after the move.
pub const APP_PORT_AFTER: u16 = 8443;
/// The ephemeral ports clients pick from (Linux's default range).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// The VMs of the tenant: id, tier, last octet in 10.0.0.0/24, and the
/// scale-out that brings it (none: there from the start).
const FLEET: &[(&str, &str, u8, Option<ScaleOut>)] = &[
    ("dns-1", "infra", 2, None),
    ("ntp-1", "infra", 3, None),
    ("jump-1", "infra", 5, None),
    ("web-1", "web", 11, None),
    ("web-2", "web", 12, None),
    ("web-3", "web", 13, Some(ScaleOut::Web)),
    ("app-1", "app", 21, None),
    ("app-2", "app", 22, None),
    ("app-3", "app", 23, Some(ScaleOut::App)),
    ("db-1", "db", 31, None),
    ("db-2", "db", 32, None),
    ("backup-1", "backup", 40, None),
    ("batch-1", "batch", 50, None),
    ("mon-1", "mon", 60, None),
];

#[derive(Debug, Clone, Copy)]
enum ScaleOut {
    Web,
    App,
}

/// Where external clients come from: /16s of access and mobile networks on
/// several continents.
const CLIENT_NETWORKS: &[[u8; 2]] = &[
    [81, 2],
    [92, 40],
    [86, 150],
    [5, 146],
    [37, 120],
    [78, 46],
    [109, 70],
    [151, 38],
    [176, 9],
    [188, 120],
    [24, 48],
    [71, 190],
    [98, 210],
    [73, 15],
    [68, 41],
    [201, 17],
    [177, 54],
    [41, 210],
    [103, 21],
    [110, 33],
    [121, 44],
    [180, 150],
    [49, 36],
    [2, 84],
];
const CLIENTS: usize = 4000;
const RESOLVERS: [[u8; 4]; 2] = [[9, 9, 9, 9], [149, 112, 112, 112]];
const NTP_SERVERS: [[u8; 4]; 3] = [[162, 159, 200, 1], [162, 159, 200, 123], [45, 87, 78, 35]];
const MIRRORS: [[u8; 4]; 2] = [[91, 189, 91, 82], [185, 125, 190, 36]];

/// Randomness: a PCG-64 stream and the few distributions the scenario
/// needs, written out so that they never change under it.
struct Dice(Pcg64);

impl Dice {
    fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (0 for `n == 0`), without modulo bias (Lemire).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.u64()) * u128::from(n);
            // The low half decides rejection, the high half is the value.
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..hi` (`lo` if the range is empty).
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.saturating_sub(lo).max(0).unsigned_abs();
        lo.saturating_add_unsigned(self.below(span))
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Log-normal with the given median: heavy-tailed sizes.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Exponential with the given mean: gaps between independent events.
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Poisson: events in an interval with `mean` expected.
    fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 {
            return 0;
        }
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            product *= self.unit();
            count += 1;
        }
        count
    }

    fn ephemeral_port(&mut self) -> u16 {
        let (lo, hi) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
        lo.saturating_add(self.below(u64::from(hi - lo) + 1) as u16)
    }

    /// A duration in microseconds, from seconds.
    fn seconds(&mut self, mean_secs: f64) -> i64 {
        (self.exponential(mean_secs) * MICROS as f64) as i64
    }
}

/// A VM of the generated tenant.
struct Vm {
    tier: &'static str,
    endpoint: Endpoint,
    /// When it starts to exist.
    from: i64,
}

/// The instants the stories turn on, in microseconds since the epoch.
struct Plan {
    start: i64,
    end: i64,
    /// Midnight UTC of day 0.
    day0: i64,
    days: u32,
    port_move: i64,
    compromise: i64,
}

impl Plan {
    fn midnight(&self, day: u32) -> i64 {
        self.day0.saturating_add(DAY.saturating_mul(i64::from(day)))
    }

    /// Monday 0 … Sunday 6.
    fn weekday(&self, day: u32) -> i64 {
        // 1970-01-01 was a Thursday.
        (self.midnight(day).div_euclid(DAY) + 3).rem_euclid(7)
    }
}

struct Generator {
    dice: Dice,
    plan: Plan,
    vms: Vec<Vm>,
    events: Vec<TraceEvent>,
}

/// One connection to add.
struct Conn<'a> {
    at: i64,
    src: &'a Endpoint,
    dst: &'a Endpoint,
    protocol: Protocol,
    port: u16,
    bytes: f64,
    truth: Truth,
}

impl Generator {
    fn push(&mut self, conn: Conn<'_>) {
        if conn.at < self.plan.start || conn.at >= self.plan.end {
            return;
        }
        // Float to integer casts saturate: a wild draw cannot wrap.
        let bytes = conn.bytes.max(0.0) as u64;
        let packets = match conn.protocol {
            // Handshake and teardown, then full segments each acknowledged
            // about every other one.
            Protocol::TCP => 6 + bytes / 1400 + bytes / 2800,
            _ => 2 + bytes / 1400,
        };
        let src_port = self.dice.ephemeral_port();
        self.events.push(TraceEvent {
            record: FlowRecord {
                ts: Timestamp(conn.at),
                src: conn.src.clone(),
                dst: conn.dst.clone(),
                src_port,
                dst_port: conn.port,
                protocol: conn.protocol,
                bytes,
                packets,
                connections: 1,
                verdict: Verdict::Allowed,
                bridge: None,
            },
            truth: conn.truth,
        });
    }

    /// The VMs of a tier that exist at `at`.
    fn tier_at<'a>(&'a self, tier: &'a str, at: i64) -> impl Iterator<Item = usize> + 'a {
        self.vms
            .iter()
            .enumerate()
            .filter(move |(_, vm)| vm.tier == tier && vm.from <= at)
            .map(|(i, _)| i)
    }

    /// A uniformly chosen VM of a tier that exists at `at`.
    fn pick(&mut self, tier: &str, at: i64) -> Option<usize> {
        let alive = self.tier_at(tier, at).count();
        let k = self.dice.below(alive as u64) as usize;
        self.tier_at(tier, at).nth(k)
    }

    fn vm_index(&self, id: &str) -> Option<usize> {
        self.vms
            .iter()
            .position(|vm| matches!(&vm.endpoint, Endpoint::Vm(v) if &**v == id))
    }

    fn endpoint(&self, index: usize) -> Endpoint {
        self.vms.get(index).map_or(
            Endpoint::External(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            |vm| vm.endpoint.clone(),
        )
    }

    fn app_port(&self, at: i64) -> u16 {
        if at < self.plan.port_move {
            APP_PORT_BEFORE
        } else {
            APP_PORT_AFTER
        }
    }
}

/// Generates the scenario's trace, sorted by time, with its inventory.
pub fn generate(params: &ScenarioParams) -> Trace {
    let start = params.start.saturating_mul(MICROS);
    let day0 = start.div_euclid(DAY).saturating_mul(DAY);
    let days_us = DAY.saturating_mul(i64::from(params.days));
    let mut dice = Dice(Pcg64::seed_from_u64(params.seed));
    let at_day = |day: u32, hours: i64, minutes: i64| {
        day0.saturating_add(DAY.saturating_mul(i64::from(day)))
            .saturating_add(hours * HOUR + minutes * MINUTE)
    };
    let web_from = at_day(params.web_scale_out_day, 10, 30) + dice.between(0, 30 * MINUTE);
    let app_from = at_day(params.app_scale_out_day, 10, 30) + dice.between(0, 30 * MINUTE);
    let plan = Plan {
        start,
        end: day0.saturating_add(days_us),
        day0,
        days: params.days,
        port_move: at_day(params.port_move_day, 10, 0) + dice.between(0, MINUTE),
        compromise: at_day(params.compromise_day, 13, 40) + dice.between(0, 20 * MINUTE),
    };
    let mut inventory = AddressBook::default();
    let mut vms = Vec::with_capacity(FLEET.len());
    for &(id, tier, octet, scale_out) in FLEET {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, octet));
        let labels = [("tier".to_owned(), tier.to_owned())].into();
        // Ids and addresses are this module's constants, all distinct.
        let _ = inventory.add_vm(id, labels, [ip]);
        let from = match scale_out {
            None => i64::MIN,
            Some(ScaleOut::Web) => web_from,
            Some(ScaleOut::App) => app_from,
        };
        vms.push(Vm {
            tier,
            endpoint: Endpoint::vm(id),
            from,
        });
    }
    let mut generator = Generator {
        dice,
        plan,
        vms,
        events: Vec::with_capacity(700_000),
    };
    let clients = client_pool(&mut generator.dice);
    web_shop(&mut generator, &clients, params.peak_clients_per_minute);
    pool_reconnects(&mut generator);
    infrastructure(&mut generator);
    backups(&mut generator);
    batch(&mut generator);
    monitoring(&mut generator);
    operator(&mut generator);
    compromise(&mut generator);
    // Stable: same-instant flows keep the order they were made in.
    generator.events.sort_by_key(|e| e.record.ts);
    Trace {
        events: generator.events,
        inventory,
        name: format!("scenario-seed{}-{}d", params.seed, params.days),
        local: Default::default(),
    }
}

fn client_pool(dice: &mut Dice) -> Vec<Endpoint> {
    let mut seen = BTreeSet::new();
    let mut clients = Vec::with_capacity(CLIENTS);
    // Collisions are rare; the bound only guards the loop.
    for _ in 0..CLIENTS * 4 {
        if clients.len() == CLIENTS {
            break;
        }
        let [a, b] = CLIENT_NETWORKS
            .get(dice.below(CLIENT_NETWORKS.len() as u64) as usize)
            .copied()
            .unwrap_or([81, 2]);
        let ip = Ipv4Addr::new(a, b, dice.below(256) as u8, 1 + dice.below(254) as u8);
        if seen.insert(ip) {
            clients.push(Endpoint::External(IpAddr::V4(ip)));
        }
    }
    clients
}

/// Client load relative to the peak: lowest at 04:00, highest at 16:00,
/// weekends at 60 %.
fn diurnal(hour: f64, weekday: i64) -> f64 {
    let phase = (std::f64::consts::TAU * (hour - 4.0) / 24.0).cos();
    let shape = (0.5 - 0.5 * phase).powf(1.5);
    let weekend = if weekday >= 5 { 0.6 } else { 1.0 };
    weekend * (0.12 + 0.88 * shape)
}

/// Clients → web 443, and the calls they cause: web → app, app → db.
fn web_shop(g: &mut Generator, clients: &[Endpoint], peak_per_minute: f64) {
    for day in 0..g.plan.days {
        let weekday = g.plan.weekday(day);
        let midnight = g.plan.midnight(day);
        for minute in 0..1440 {
            let minute_start = midnight + i64::from(minute) * MINUTE;
            let rate = peak_per_minute * diurnal(f64::from(minute) / 60.0, weekday);
            for _ in 0..g.dice.poisson(rate) {
                let at = minute_start + g.dice.between(0, MINUTE);
                // Returning clients come far more often than new ones.
                let client = (g.dice.unit().powi(3) * clients.len() as f64) as usize;
                let Some(client) = clients.get(client) else {
                    continue;
                };
                let Some(web) = g.pick("web", at) else {
                    continue;
                };
                let web = g.endpoint(web);
                let bytes = g.dice.lognormal(18_000.0, 1.3).min(5e7);
                g.push(Conn {
                    at,
                    src: client,
                    dst: &web,
                    protocol: Protocol::TCP,
                    port: 443,
                    bytes: bytes.max(400.0),
                    truth: Truth::Benign,
                });
                // The pools open a new connection for about a third of the
                // requests; the rest reuse one.
                if !g.dice.chance(0.3) {
                    continue;
                }
                let at = at + g.dice.between(2_000, 50_000);
                let Some(app) = g.pick("app", at) else {
                    continue;
                };
                let app = g.endpoint(app);
                let port = g.app_port(at);
                let bytes = g.dice.lognormal(6_000.0, 1.0);
                g.push(Conn {
                    at,
                    src: &web,
                    dst: &app,
                    protocol: Protocol::TCP,
                    port,
                    bytes,
                    truth: Truth::Benign,
                });
                if !g.dice.chance(0.4) {
                    continue;
                }
                let at = at + g.dice.between(1_000, 20_000);
                let db = if g.dice.chance(0.8) { "db-1" } else { "db-2" };
                let Some(db) = g.vm_index(db) else {
                    continue;
                };
                let db = g.endpoint(db);
                let bytes = g.dice.lognormal(3_000.0, 1.5);
                g.push(Conn {
                    at,
                    src: &app,
                    dst: &db,
                    protocol: Protocol::TCP,
                    port: 5432,
                    bytes,
                    truth: Truth::Benign,
                });
            }
        }
    }
}

/// Connection pools recycle their connections even when idle: every web →
/// app and app → db pair reconnects about every 10–15 minutes, and db-1
/// streams to its replica db-2 over a connection renewed every few hours.
fn pool_reconnects(g: &mut Generator) {
    let pairs: Vec<(usize, usize, u16, f64)> = {
        let mut pairs = Vec::new();
        for (src_tier, dst_tier, port, mean) in
            [("web", "app", 0, 600.0), ("app", "db", 5432, 900.0)]
        {
            for src in g.tier_at(src_tier, i64::MAX) {
                for dst in g.tier_at(dst_tier, i64::MAX) {
                    pairs.push((src, dst, port, mean));
                }
            }
        }
        pairs
    };
    for (src, dst, port, mean) in pairs {
        let from = g
            .vms
            .get(src)
            .map_or(0, |v| v.from)
            .max(g.vms.get(dst).map_or(0, |v| v.from));
        let (src, dst) = (g.endpoint(src), g.endpoint(dst));
        let mut at = g.plan.start.max(from) + g.dice.seconds(mean);
        while at < g.plan.end {
            // Port 0 stands for the app tier's port of the moment.
            let port = if port == 0 { g.app_port(at) } else { port };
            let bytes = g.dice.lognormal(2_000.0, 0.8);
            g.push(Conn {
                at,
                src: &src,
                dst: &dst,
                protocol: Protocol::TCP,
                port,
                bytes,
                truth: Truth::Benign,
            });
            at += g.dice.seconds(mean).max(MICROS);
        }
    }
    let (Some(primary), Some(replica)) = (g.vm_index("db-1"), g.vm_index("db-2")) else {
        return;
    };
    let (primary, replica) = (g.endpoint(primary), g.endpoint(replica));
    let mut at = g.plan.start + g.dice.between(0, HOUR);
    while at < g.plan.end {
        let bytes = g.dice.lognormal(400e6, 0.6);
        g.push(Conn {
            at,
            src: &primary,
            dst: &replica,
            protocol: Protocol::TCP,
            port: 5432,
            bytes,
            truth: Truth::Benign,
        });
        at += 4 * HOUR + g.dice.between(-30 * MINUTE, 30 * MINUTE);
    }
}

/// DNS, NTP and package updates, for every VM from its first instant.
fn infrastructure(g: &mut Generator) {
    let (Some(dns), Some(ntp)) = (g.vm_index("dns-1"), g.vm_index("ntp-1")) else {
        return;
    };
    let (dns, ntp) = (g.endpoint(dns), g.endpoint(ntp));
    let external = |octets: [u8; 4]| Endpoint::External(IpAddr::V4(Ipv4Addr::from(octets)));
    let resolvers: Vec<Endpoint> = RESOLVERS.into_iter().map(external).collect();
    let ntp_servers: Vec<Endpoint> = NTP_SERVERS.into_iter().map(external).collect();
    let mirrors: Vec<Endpoint> = MIRRORS.into_iter().map(external).collect();
    for index in 0..g.vms.len() {
        let vm = g.endpoint(index);
        let (tier, from) = g.vms.get(index).map_or(("", 0), |v| (v.tier, v.from));
        let begin = g.plan.start.max(from);
        // A VM that boots resolves and syncs its clock at once.
        let first = if from > g.plan.start {
            begin
        } else {
            begin + g.dice.between(0, 1024 * MICROS)
        };
        if vm != dns {
            let per_hour = match tier {
                "web" | "app" => 30.0,
                _ => 6.0,
            };
            let mut at = first;
            while at < g.plan.end {
                let bytes = g.dice.lognormal(190.0, 0.3);
                g.push(Conn {
                    at,
                    src: &vm,
                    dst: &dns,
                    protocol: Protocol::UDP,
                    port: 53,
                    bytes,
                    truth: Truth::Benign,
                });
                // Cache misses go upstream.
                if g.dice.chance(0.25) {
                    let resolver = resolvers.get(g.dice.below(resolvers.len() as u64) as usize);
                    if let Some(resolver) = resolver {
                        let bytes = g.dice.lognormal(220.0, 0.3);
                        let forwarded = at + g.dice.between(300, 3_000);
                        g.push(Conn {
                            at: forwarded,
                            src: &dns,
                            dst: resolver,
                            protocol: Protocol::UDP,
                            port: 53,
                            bytes,
                            truth: Truth::Benign,
                        });
                    }
                }
                at += g.dice.seconds(3600.0 / per_hour).max(1);
            }
        }
        let time_servers: Vec<Endpoint> = if vm == ntp {
            ntp_servers.clone()
        } else {
            vec![ntp.clone()]
        };
        for server in &time_servers {
            let mut at = first + g.dice.between(0, 2 * MICROS);
            while at < g.plan.end {
                g.push(Conn {
                    at,
                    src: &vm,
                    dst: server,
                    protocol: Protocol::UDP,
                    port: 123,
                    bytes: 152.0,
                    truth: Truth::Benign,
                });
                at += 1024 * MICROS + g.dice.between(-2 * MICROS, 2 * MICROS);
            }
        }
        for day in 0..g.plan.days {
            let at = g.plan.midnight(day) + 6 * HOUR + 25 * MINUTE + g.dice.between(0, HOUR);
            let Some(mirror) = mirrors.get(g.dice.below(mirrors.len() as u64) as usize) else {
                continue;
            };
            let bytes = g.dice.lognormal(120_000.0, 1.5);
            if at >= from {
                g.push(Conn {
                    at,
                    src: &vm,
                    dst: mirror,
                    protocol: Protocol::TCP,
                    port: 80,
                    bytes,
                    truth: Truth::Benign,
                });
            }
        }
    }
}

/// Every VM → backup-1:873 at 02:00 ±5 min.
fn backups(g: &mut Generator) {
    let Some(backup) = g.vm_index("backup-1") else {
        return;
    };
    let backup = g.endpoint(backup);
    for day in 0..g.plan.days {
        let two = g.plan.midnight(day) + 2 * HOUR;
        for index in 0..g.vms.len() {
            let vm = g.endpoint(index);
            let (tier, from) = g.vms.get(index).map_or(("", 0), |v| (v.tier, v.from));
            let at = two + g.dice.between(-5 * MINUTE, 5 * MINUTE + 1);
            if vm == backup || from > at {
                continue;
            }
            let median = if tier == "db" { 8e9 } else { 300e6 };
            let bytes = g.dice.lognormal(median, 0.5);
            g.push(Conn {
                at,
                src: &vm,
                dst: &backup,
                protocol: Protocol::TCP,
                port: 873,
                bytes,
                truth: Truth::Benign,
            });
        }
    }
}

/// Sundays from 03:00: batch-1 → db-1:5432 and → the app tier's 9000.
fn batch(g: &mut Generator) {
    let (Some(batch), Some(db)) = (g.vm_index("batch-1"), g.vm_index("db-1")) else {
        return;
    };
    let (batch, db) = (g.endpoint(batch), g.endpoint(db));
    for day in 0..g.plan.days {
        if g.plan.weekday(day) != 6 {
            continue;
        }
        let three = g.plan.midnight(day) + 3 * HOUR;
        let mut at = three + g.dice.between(0, 2 * MINUTE);
        for _ in 0..4 {
            let bytes = g.dice.lognormal(50e6, 1.0);
            g.push(Conn {
                at,
                src: &batch,
                dst: &db,
                protocol: Protocol::TCP,
                port: 5432,
                bytes,
                truth: Truth::Benign,
            });
            at += g.dice.between(5 * MINUTE, 12 * MINUTE);
        }
        let apps: Vec<usize> = g.tier_at("app", three).collect();
        for (round, app) in apps.iter().cycle().take(3).enumerate() {
            let app = g.endpoint(*app);
            let at = three + 10 * MINUTE * (round as i64 + 1) + g.dice.between(0, MINUTE);
            let bytes = g.dice.lognormal(2e6, 1.0);
            g.push(Conn {
                at,
                src: &batch,
                dst: &app,
                protocol: Protocol::TCP,
                port: 9000,
                bytes,
                truth: Truth::Benign,
            });
        }
    }
}

/// mon-1 → every VM:9100 every 60 s, each target at its own phase.
fn monitoring(g: &mut Generator) {
    let Some(mon) = g.vm_index("mon-1") else {
        return;
    };
    let mon = g.endpoint(mon);
    for index in 0..g.vms.len() {
        let vm = g.endpoint(index);
        if vm == mon {
            continue;
        }
        let from = g.vms.get(index).map_or(0, |v| v.from);
        let phase = g.dice.between(0, MINUTE);
        // The first scrape slot at or after the target exists.
        let begin = g.plan.start.max(from);
        let slots = (begin - g.plan.start - phase + MINUTE - 1).div_euclid(MINUTE);
        let mut slot = g.plan.start + phase + slots.max(0) * MINUTE;
        while slot < g.plan.end {
            let at = slot + g.dice.between(0, 50_000);
            let bytes = g.dice.lognormal(25_000.0, 0.2);
            g.push(Conn {
                at,
                src: &mon,
                dst: &vm,
                protocol: Protocol::TCP,
                port: 9100,
                bytes,
                truth: Truth::Benign,
            });
            slot += MINUTE;
        }
    }
}

/// jump-1 → a random VM:22, on most working days.
fn operator(g: &mut Generator) {
    let Some(jump) = g.vm_index("jump-1") else {
        return;
    };
    let jump_endpoint = g.endpoint(jump);
    for day in 0..g.plan.days {
        if g.plan.weekday(day) >= 5 || !g.dice.chance(0.8) {
            continue;
        }
        let at = g.plan.midnight(day) + 8 * HOUR + g.dice.between(0, 10 * HOUR);
        let targets: Vec<usize> = (0..g.vms.len())
            .filter(|&i| i != jump && g.vms.get(i).is_some_and(|v| v.from <= at))
            .collect();
        let Some(&target) = targets.get(g.dice.below(targets.len() as u64) as usize) else {
            continue;
        };
        let target = g.endpoint(target);
        let bytes = g.dice.lognormal(200_000.0, 1.5);
        g.push(Conn {
            at,
            src: &jump_endpoint,
            dst: &target,
            protocol: Protocol::TCP,
            port: 22,
            bytes,
            truth: Truth::Benign,
        });
    }
}

/// web-2 scans the /24 and moves laterally to db-1:5432 and app-1:22.
fn compromise(g: &mut Generator) {
    let (Some(web2), Some(db1), Some(app1)) =
        (g.vm_index("web-2"), g.vm_index("db-1"), g.vm_index("app-1"))
    else {
        return;
    };
    let (attacker, db1, app1) = (g.endpoint(web2), g.endpoint(db1), g.endpoint(app1));
    let own = vm_octet(&attacker);
    let mut hosts: Vec<u8> = (1..=254).filter(|&h| Some(h) != own).collect();
    shuffle(&mut g.dice, &mut hosts);
    let mut at = g.plan.compromise;
    for host in hosts {
        let target = g
            .vms
            .iter()
            .find(|vm| vm_octet(&vm.endpoint) == Some(host) && vm.from <= at)
            .map(|vm| vm.endpoint.clone());
        let mut ports = SCANNED_PORTS;
        shuffle(&mut g.dice, &mut ports);
        for port in ports {
            let (dst, bytes) = match &target {
                // Nobody there: two unanswered SYNs.
                None => (
                    Endpoint::External(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host))),
                    120.0,
                ),
                Some(vm) => {
                    let open = port == 22
                        || (port == 5432 && matches!(vm, Endpoint::Vm(v) if v.starts_with("db-")));
                    // SYN, SYN-ACK, RST; or SYN, RST.
                    (vm.clone(), if open { 164.0 } else { 100.0 })
                }
            };
            g.push(Conn {
                at,
                src: &attacker,
                dst: &dst,
                protocol: Protocol::TCP,
                port,
                bytes,
                truth: Truth::Attack,
            });
            at += g.dice.seconds(0.25).max(1_000);
        }
    }
    // Lateral movement, once the scan's results are read.
    at += g.dice.between(20 * MINUTE, 45 * MINUTE);
    for attempt in 0..4 {
        let bytes = if attempt < 3 {
            g.dice.lognormal(1_500.0, 0.3)
        } else {
            g.dice.lognormal(200e6, 0.8)
        };
        g.push(Conn {
            at,
            src: &attacker,
            dst: &db1,
            protocol: Protocol::TCP,
            port: 5432,
            bytes,
            truth: Truth::Attack,
        });
        at += g.dice.between(5 * MICROS, 90 * MICROS);
    }
    at += g.dice.between(5 * MINUTE, 15 * MINUTE);
    for _ in 0..3 {
        let bytes = g.dice.lognormal(40_000.0, 1.5);
        g.push(Conn {
            at,
            src: &attacker,
            dst: &app1,
            protocol: Protocol::TCP,
            port: 22,
            bytes,
            truth: Truth::Attack,
        });
        at += g.dice.between(30 * MICROS, 10 * MINUTE);
    }
}

fn vm_octet(endpoint: &Endpoint) -> Option<u8> {
    let Endpoint::Vm(id) = endpoint else {
        return None;
    };
    FLEET
        .iter()
        .find(|(name, ..)| *name == &**id)
        .map(|&(_, _, octet, _)| octet)
}

/// Fisher–Yates.
fn shuffle<T>(dice: &mut Dice, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = dice.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[derive(Serialize)]
struct InventoryFile {
    vms: Vec<InventoryVm>,
}

#[derive(Serialize)]
struct InventoryVm {
    id: String,
    labels: std::collections::BTreeMap<String, String>,
    addresses: Vec<IpAddr>,
}

/// Writes `trace` as the flat CSV the importer reads (`ts,src,dst,proto,
/// sport,dport,bytes,packets,connections,verdict,label`; VMs by their
/// address, `connections` and `verdict` empty for 1 and allowed) and its
/// inventory as `{"vms": [{"id", "labels", "addresses"}]}`, so that both
/// `augur import csv` and replay with `--inventory` read them back to the
/// same records. A record whose ports say the other end initiated (a Zeek
/// originator the port guess would turn round) is written without `sport`.
pub fn write_trace(trace: &Trace, out_csv: &Path, out_inventory: &Path) -> anyhow::Result<()> {
    let vms: Vec<InventoryVm> = trace
        .inventory
        .labels()
        .iter()
        .map(|(endpoint, labels)| InventoryVm {
            id: endpoint.to_string(),
            labels: labels.clone(),
            addresses: trace.inventory.addresses_of(endpoint),
        })
        .collect();
    let text = serde_json::to_string_pretty(&InventoryFile { vms })?;
    std::fs::write(out_inventory, text + "\n")
        .with_context(|| format!("cannot write {}", out_inventory.display()))?;

    let mut names = std::collections::HashMap::new();
    for (endpoint, _) in trace.inventory.labels() {
        let name = match trace.inventory.addresses_of(endpoint).first() {
            Some(ip) => ip.to_string(),
            None => endpoint.to_string(),
        };
        names.insert(endpoint.clone(), name);
    }
    let file = std::fs::File::create(out_csv)
        .with_context(|| format!("cannot create {}", out_csv.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    out.write_all(b"ts,src,dst,proto,sport,dport,bytes,packets,connections,verdict,label\n")?;
    let mut line = String::with_capacity(160);
    for event in &trace.events {
        let r = &event.record;
        line.clear();
        let _ = write!(line, "{},", r.ts);
        for end in [&r.src, &r.dst] {
            match names.get(end) {
                Some(name) => push_field(&mut line, name),
                None => push_field(&mut line, &end.to_string()),
            }
            line.push(',');
        }
        let _ = write!(line, "{},", r.protocol);
        let keeps_direction =
            guess_initiator(r.protocol, r.src_port, r.dst_port) != Some(Side::Dst);
        if r.protocol.has_ports() && r.src_port != 0 && keeps_direction {
            let _ = write!(line, "{}", r.src_port);
        }
        let _ = write!(line, ",{},{},{},", r.dst_port, r.bytes, r.packets);
        if r.connections != 1 {
            let _ = write!(line, "{}", r.connections);
        }
        line.push(',');
        if r.verdict == Verdict::Denied {
            line.push_str("denied");
        }
        let _ = writeln!(line, ",{}", event.truth);
        out.write_all(line.as_bytes())?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", out_csv.display()))?;
    Ok(())
}

/// A CSV field, quoted if it must be (a VM id may hold anything).
fn push_field(line: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&text.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Format;
    use crate::replay::trace::load_trace;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::OnceLock;

    /// Seed 1, 14 days: generated once for all the story tests.
    fn fortnight() -> &'static Trace {
        static TRACE: OnceLock<Trace> = OnceLock::new();
        TRACE.get_or_init(|| generate(&ScenarioParams::default()))
    }

    const DAY0: i64 = 1_709_510_400 * MICROS;

    fn day_of(record: &FlowRecord) -> i64 {
        (record.ts.0 - DAY0).div_euclid(DAY)
    }

    fn time_of_day(record: &FlowRecord) -> i64 {
        (record.ts.0 - DAY0).rem_euclid(DAY)
    }

    fn vm(id: &str) -> Endpoint {
        Endpoint::vm(id)
    }

    fn involves(record: &FlowRecord, id: &str) -> bool {
        record.src == vm(id) || record.dst == vm(id)
    }

    fn all_vms() -> Vec<&'static str> {
        FLEET.iter().map(|&(id, ..)| id).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let write = |seed: u64, name: &str| {
            let params = ScenarioParams {
                seed,
                days: 2,
                ..ScenarioParams::default()
            };
            let csv = dir.path().join(format!("{name}.csv"));
            let inventory = dir.path().join(format!("{name}.json"));
            write_trace(&generate(&params), &csv, &inventory).unwrap();
            (
                std::fs::read(csv).unwrap(),
                std::fs::read(inventory).unwrap(),
            )
        };
        let first = write(7, "a");
        assert!(first.0.len() > 1_000_000);
        assert!(first == write(7, "b"), "same seed, same files");
        let other = write(8, "c");
        assert_ne!(first.0, other.0, "another seed, another trace");
        assert_eq!(
            first.1, other.1,
            "the inventory does not depend on the seed"
        );
    }

    #[test]
    fn writing_then_loading_gives_the_same_events() {
        // Three days with every story in them.
        let params = ScenarioParams {
            seed: 3,
            days: 3,
            web_scale_out_day: 1,
            app_scale_out_day: 1,
            port_move_day: 1,
            compromise_day: 2,
            start: 1_709_942_400, // a Saturday: the batch runs on day 1
            ..ScenarioParams::default()
        };
        let trace = generate(&params);
        assert!(trace.count(Truth::Attack) > 2000);
        let dir = tempfile::tempdir().unwrap();
        let (csv, inventory) = (dir.path().join("t.csv"), dir.path().join("inv.json"));
        write_trace(&trace, &csv, &inventory).unwrap();
        let (loaded, errors) = load_trace(&csv, Format::Flat, Some(&inventory)).unwrap();
        assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
        assert_eq!(loaded.events.len(), trace.events.len());
        assert!(loaded.events == trace.events, "same events, same order");
        assert_eq!(loaded.inventory.labels(), trace.inventory.labels());
        for (endpoint, _) in trace.inventory.labels() {
            assert_eq!(
                loaded.inventory.addresses_of(endpoint),
                trace.inventory.addresses_of(endpoint)
            );
        }
    }

    #[test]
    fn every_vm_is_in_the_inventory_with_its_tier() {
        let trace = fortnight();
        let tiers: BTreeMap<String, String> = trace
            .inventory
            .labels()
            .iter()
            .map(|(vm, labels)| (vm.to_string(), labels["tier"].clone()))
            .collect();
        assert_eq!(tiers.len(), FLEET.len());
        assert_eq!(tiers["web-3"], "web");
        assert_eq!(tiers["jump-1"], "infra");
        assert_eq!(
            trace.inventory.endpoint("10.0.0.31".parse().unwrap()),
            vm("db-1")
        );
        for event in &trace.events {
            for end in [&event.record.src, &event.record.dst] {
                if let Endpoint::Vm(id) = end {
                    assert!(tiers.contains_key(&**id), "{id}");
                }
            }
        }
    }

    #[test]
    fn volume_ports_and_sizes_are_realistic() {
        let trace = fortnight();
        let n = trace.events.len();
        assert!((300_000..1_000_000).contains(&n), "{n} records");
        assert!(
            trace
                .events
                .windows(2)
                .all(|w| w[0].record.ts <= w[1].record.ts)
        );
        assert!(trace.events.iter().all(|e| e.truth != Truth::Unknown));
        assert!(
            trace
                .events
                .iter()
                .all(|e| EPHEMERAL_PORTS.contains(&e.record.src_port)),
            "every connection has an ephemeral client port"
        );
        let mut web: Vec<u64> = trace
            .events
            .iter()
            .filter(|e| e.record.dst_port == 443)
            .map(|e| e.record.bytes)
            .collect();
        web.sort_unstable();
        let median = web[web.len() / 2];
        let p999 = web[web.len() * 999 / 1000];
        assert!((12_000..26_000).contains(&median), "median {median}");
        assert!(
            p999 > 30 * median,
            "heavy tail: p99.9 {p999}, median {median}"
        );
        // Diurnal: the busiest hour has several times the quietest's clients.
        let mut by_hour = [0u32; 24];
        for e in trace.events.iter().filter(|e| e.record.dst_port == 443) {
            by_hour[(time_of_day(&e.record) / HOUR) as usize] += 1;
        }
        let (low, high) = (by_hour.iter().min().unwrap(), by_hour.iter().max().unwrap());
        assert!(*high > 4 * *low, "{by_hour:?}");
        assert!(by_hour[16] > by_hour[4] * 4);
        let clients: BTreeSet<&Endpoint> = trace
            .events
            .iter()
            .filter(|e| e.record.dst_port == 443)
            .map(|e| &e.record.src)
            .collect();
        assert!(clients.len() > 2000, "{} clients", clients.len());
        assert!(clients.iter().all(|c| match c {
            Endpoint::External(IpAddr::V4(ip)) => !ip.is_private(),
            _ => false,
        }));
    }

    #[test]
    fn every_vm_is_backed_up_at_two_every_night() {
        let trace = fortnight();
        let backups: Vec<&FlowRecord> = trace
            .events
            .iter()
            .map(|e| &e.record)
            .filter(|r| r.dst_port == 873)
            .collect();
        for r in &backups {
            assert_eq!(r.dst, vm("backup-1"));
            let offset = time_of_day(r) - 2 * HOUR;
            assert!(offset.abs() <= 5 * MINUTE, "{r:?}");
        }
        for day in 0..14 {
            let sources: Vec<String> = backups
                .iter()
                .filter(|r| day_of(r) == day)
                .map(|r| r.src.to_string())
                .collect();
            let mut expected: Vec<&str> = all_vms()
                .into_iter()
                .filter(|id| *id != "backup-1")
                .filter(|id| *id != "web-3" || day > 4)
                .filter(|id| *id != "app-3" || day > 7)
                .collect();
            let mut sources_sorted = sources.clone();
            sources_sorted.sort();
            expected.sort_unstable();
            assert_eq!(sources_sorted, expected, "night of day {day}");
        }
        let db = backups
            .iter()
            .filter(|r| r.src == vm("db-1"))
            .map(|r| r.bytes);
        let web = backups
            .iter()
            .filter(|r| r.src == vm("web-1"))
            .map(|r| r.bytes);
        assert!(db.min().unwrap() > web.max().unwrap() / 4);
    }

    #[test]
    fn scaled_out_vms_appear_on_their_day_and_talk_like_their_tier() {
        let trace = fortnight();
        for (new, peer, day) in [("web-3", "web-1", 4), ("app-3", "app-1", 7)] {
            let flows: Vec<&FlowRecord> = trace
                .events
                .iter()
                .map(|e| &e.record)
                .filter(|r| involves(r, new))
                .collect();
            let first = flows.first().unwrap();
            assert_eq!(day_of(first), day, "{new} starts on day {day}");
            // Within its first hour it does what its peer did that day.
            let services = |id: &str, from: i64, to: i64| -> BTreeSet<(String, String, u16)> {
                let tier = |e: &Endpoint| match e {
                    Endpoint::Vm(v) => v.split('-').next().unwrap().to_owned(),
                    Endpoint::External(_) => "external".to_owned(),
                };
                trace
                    .events
                    .iter()
                    .map(|e| &e.record)
                    .filter(|r| r.ts.0 >= from && r.ts.0 < to && involves(r, id))
                    .filter(|r| r.dst_port != 80 && r.dst_port != 873 && r.dst_port != 22)
                    .map(|r| {
                        let (s, d) = if r.src == vm(id) {
                            ("self".to_owned(), tier(&r.dst))
                        } else {
                            (tier(&r.src), "self".to_owned())
                        };
                        (s, d, r.dst_port)
                    })
                    .collect()
            };
            let t0 = first.ts.0;
            let new_services = services(new, t0, t0 + HOUR);
            let peer_services = services(peer, t0, t0 + HOUR);
            assert_eq!(new_services, peer_services, "{new} vs {peer}");
            assert!(new_services.len() >= 5, "{new_services:?}");
        }
    }

    #[test]
    fn the_batch_job_runs_sundays_at_three() {
        let trace = fortnight();
        let runs: Vec<&FlowRecord> = trace
            .events
            .iter()
            .map(|e| &e.record)
            .filter(|r| r.src == vm("batch-1") && (r.dst_port == 5432 || r.dst_port == 9000))
            .collect();
        let days: BTreeSet<i64> = runs.iter().map(|r| day_of(r)).collect();
        assert_eq!(days, BTreeSet::from([6, 13]), "the Sundays");
        for r in &runs {
            let t = time_of_day(r);
            assert!((3 * HOUR..4 * HOUR).contains(&t), "{r:?}");
        }
        assert_eq!(runs.iter().filter(|r| r.dst == vm("db-1")).count(), 8);
        let apps = runs.iter().filter(|r| r.dst_port == 9000).count();
        assert_eq!(apps, 6);
        assert!(trace.events.iter().all(|e| e.record.dst_port != 9000
            || e.record.src == vm("batch-1")
            || e.truth == Truth::Attack));
    }

    #[test]
    fn the_app_tier_moves_port_once_on_day_nine() {
        let trace = fortnight();
        let app_calls: Vec<&FlowRecord> = trace
            .events
            .iter()
            .map(|e| &e.record)
            .filter(|r| matches!(r.dst_port, APP_PORT_BEFORE | APP_PORT_AFTER))
            .collect();
        let last_old = app_calls
            .iter()
            .filter(|r| r.dst_port == APP_PORT_BEFORE)
            .map(|r| r.ts)
            .max();
        let first_new = app_calls
            .iter()
            .filter(|r| r.dst_port == APP_PORT_AFTER)
            .map(|r| r.ts)
            .min();
        let (last_old, first_new) = (last_old.unwrap(), first_new.unwrap());
        assert!(last_old < first_new);
        assert_eq!((last_old.0 - DAY0).div_euclid(DAY), 9);
        assert_eq!((first_new.0 - DAY0).div_euclid(DAY), 9);
        assert!(
            first_new.0 - last_old.0 < 5 * MINUTE,
            "clients switch at once"
        );
        for r in &app_calls {
            assert!(r.src.to_string().starts_with("web-"), "{r:?}");
            assert!(r.dst.to_string().starts_with("app-"), "{r:?}");
        }
    }

    #[test]
    fn monitoring_scrapes_every_vm_every_minute() {
        let trace = fortnight();
        let mut scrapes: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for r in trace
            .events
            .iter()
            .map(|e| &e.record)
            .filter(|r| r.dst_port == 9100)
        {
            assert_eq!(r.src, vm("mon-1"));
            scrapes.entry(r.dst.to_string()).or_default().push(r.ts.0);
        }
        assert_eq!(scrapes.len(), FLEET.len() - 1);
        for (target, times) in &scrapes {
            for pair in times.windows(2) {
                let gap = pair[1] - pair[0];
                assert!(
                    (MINUTE - 50_000..=MINUTE + 50_000).contains(&gap),
                    "{target}"
                );
            }
            // From the target's first scrape to the end, none missed.
            // (The last one may fall past the end by its jitter.)
            let expected = (DAY0 + 14 * DAY - times[0]).div_euclid(MINUTE);
            let missing = expected - times.len() as i64;
            assert!((-1..=0).contains(&missing), "{target}: {missing}");
            if !matches!(target.as_str(), "web-3" | "app-3") {
                assert!(times[0] < DAY0 + MINUTE, "{target}");
            }
        }
    }

    #[test]
    fn attacks_come_only_from_web2_on_day_eleven() {
        let trace = fortnight();
        let attacks: Vec<&FlowRecord> = trace
            .events
            .iter()
            .filter(|e| e.truth == Truth::Attack)
            .map(|e| &e.record)
            .collect();
        assert!(
            attacks
                .iter()
                .all(|r| r.src == vm("web-2") && day_of(r) == 11)
        );
        let scan: Vec<&&FlowRecord> = attacks.iter().filter(|r| r.bytes < 200).collect();
        assert_eq!(scan.len(), 253 * SCANNED_PORTS.len());
        let ports: BTreeSet<u16> = scan.iter().map(|r| r.dst_port).collect();
        assert_eq!(ports, SCANNED_PORTS.into_iter().collect());
        // A plausible speed: minutes, not a burst, not hours.
        let duration = scan.last().unwrap().ts.0 - scan.first().unwrap().ts.0;
        assert!((5 * MINUTE..30 * MINUTE).contains(&duration), "{duration}");
        let lateral: BTreeSet<(String, u16)> = attacks
            .iter()
            .filter(|r| r.ts > scan.last().unwrap().ts)
            .map(|r| (r.dst.to_string(), r.dst_port))
            .collect();
        assert_eq!(
            lateral,
            BTreeSet::from([("app-1".to_owned(), 22), ("db-1".to_owned(), 5432)])
        );
        // web-2 goes on serving its clients meanwhile.
        assert!(trace.events.iter().any(|e| e.truth == Truth::Benign
            && day_of(&e.record) == 11
            && e.record.dst == vm("web-2")
            && e.record.ts > scan.first().unwrap().ts));
        // Nothing else touches those services from the web tier.
        assert!(trace.events.iter().all(|e| e.truth == Truth::Attack
            || !(e.record.src.to_string().starts_with("web-")
                && matches!(e.record.dst_port, 22 | 5432))));
    }

    #[test]
    fn the_operator_logs_in_a_few_times_a_week() {
        let trace = fortnight();
        let sessions: Vec<&FlowRecord> = trace
            .events
            .iter()
            .filter(|e| e.truth == Truth::Benign && e.record.dst_port == 22)
            .map(|e| &e.record)
            .collect();
        assert!((4..=10).contains(&sessions.len()), "{}", sessions.len());
        for r in sessions {
            assert_eq!(r.src, vm("jump-1"));
            assert!((8 * HOUR..18 * HOUR).contains(&time_of_day(r)));
        }
    }
}
