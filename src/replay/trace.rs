//! Labelled traces: flow records in time order, each with the ground truth
//! that scores what replay decided about it.
//!
//! The truth travels *beside* each [`FlowRecord`], never inside it, so that
//! nothing that learns or decides can read it by accident: replay hands the
//! predictor `event.record` and keeps `event.truth` for the score.
//!
//! Records are read by the importer's own readers ([`ZeekReader`],
//! [`FlatReader`]), so a trace holds exactly the records `augur import` would
//! import from the same file: the same endpoints (through the inventory),
//! the same orientation (initiator first, service port as `dst_port`), the
//! same malformed lines. Only replay asks those readers for the label
//! column. Files whose name ends in `.xz` are decompressed as they are read.
//!
//! Label texts map to [`Truth`] by [`Truth::from_label`]; the shared data
//! sets use `Benign` / `Malicious` / `Background` (Stratosphere's Zeek logs),
//! `From-Normal-…` / `From-Botnet-…` / `Background-…` (CTU-13), and
//! `attack-window|…` (OTRF).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use augur_flows::{Endpoint, FlowRecord};
use ipnet::IpNet;

use crate::import::flat::FlatReader;
use crate::import::zeek::ZeekReader;
use crate::import::{AddressBook, FlowReader, Format, LineError, Parsed, open_flow_file};

/// What a flow really was, as the trace's labels say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Truth {
    /// Legitimate traffic: a good policy lets it through.
    Benign,
    /// Part of an attack: must never be opened automatically.
    Attack,
    /// Unlabelled background (CTU-13's "Background"), or no label at all:
    /// counted in neither direction.
    Unknown,
}

impl Truth {
    /// The truth a label text stands for, case-insensitively: texts that
    /// contain `botnet`, `malicious` or `attack` are attacks (CTU-13's
    /// `From-Botnet-V51-1-ICMP`, OTRF's `attack-window|…`); then texts that
    /// contain `background` are unknown (CTU-13's `Background-TCP-Attempt`);
    /// then texts that contain `benign` or `normal` are benign (CTU-13's
    /// `From-Normal-V51-Grill`); anything else, and no label, is unknown.
    pub fn from_label(label: Option<&str>) -> Truth {
        let Some(label) = label else {
            return Truth::Unknown;
        };
        let label = label.to_ascii_lowercase();
        let has = |word: &str| label.contains(word);
        if has("botnet") || has("malicious") || has("attack") {
            Truth::Attack
        } else if has("background") {
            Truth::Unknown
        } else if has("benign") || has("normal") {
            Truth::Benign
        } else {
            Truth::Unknown
        }
    }

    /// The label augur writes for it (and reads back as the same truth).
    pub const fn as_str(self) -> &'static str {
        match self {
            Truth::Benign => "benign",
            Truth::Attack => "attack",
            Truth::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Truth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One flow of a trace and what it really was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The flow, oriented (initiator as `src`, service as `dst_port`): all
    /// that decisions may look at.
    pub record: FlowRecord,
    /// Its label, for scoring only.
    pub truth: Truth,
}

/// A labelled trace.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The flows, sorted by time (lines with the same time keep the file's
    /// order).
    pub events: Vec<TraceEvent>,
    /// The VMs, their addresses and labels.
    pub inventory: AddressBook,
    /// What the trace is called in reports (the file name, or the
    /// scenario).
    pub name: String,
    /// Addresses the recorder marked local to its site (Zeek's
    /// `local_orig` and `local_resp`); empty where the format has no such
    /// mark.
    pub local: BTreeSet<IpAddr>,
}

impl Trace {
    /// How many events have this truth.
    pub fn count(&self, truth: Truth) -> usize {
        self.events.iter().filter(|e| e.truth == truth).count()
    }
}

/// The importer's readers, with the accessors only replay uses.
trait LabelledReader: FlowReader {
    fn label(&self) -> Option<&str>;

    /// Whether the last line's ends are local (see [`ZeekReader::local`]).
    fn local(&self) -> Option<[bool; 2]> {
        None
    }
}

impl<R: Read> LabelledReader for ZeekReader<R> {
    fn label(&self) -> Option<&str> {
        ZeekReader::label(self)
    }

    fn local(&self) -> Option<[bool; 2]> {
        ZeekReader::local(self)
    }
}

impl<R: Read> LabelledReader for FlatReader<R> {
    fn label(&self) -> Option<&str> {
        FlatReader::label(self)
    }
}

/// Reads a labelled trace: `path` in `format` (`.xz` decompressed on the
/// fly), endpoints mapped through the inventory at `inventory` if given.
/// Malformed lines are skipped and returned, as `augur import` reports
/// them; failing to read at all is an error.
pub fn load_trace(
    path: &Path,
    format: Format,
    inventory: Option<&Path>,
) -> anyhow::Result<(Trace, Vec<LineError>)> {
    let book = match inventory {
        Some(inventory) => AddressBook::load(inventory)?,
        None => AddressBook::default(),
    };
    let name = path.display().to_string();
    let input = open_flow_file(path)?;
    let mut local = BTreeSet::new();
    let (mut events, errors) = match format {
        Format::Zeek => read_events(
            &mut ZeekReader::new(input, &name).with_labels(),
            &book,
            &name,
            &mut local,
        ),
        Format::Flat => read_events(
            &mut FlatReader::new(input, &name)?.with_labels(),
            &book,
            &name,
            &mut local,
        ),
    }
    .with_context(|| format!("cannot read {name}"))?;
    // Stable: flows of the same microsecond keep the file's order.
    events.sort_by_key(|e| e.record.ts);
    let trace = Trace {
        events,
        inventory: book,
        name: path
            .file_name()
            .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned()),
        local,
    };
    Ok((trace, errors))
}

fn read_events(
    reader: &mut dyn LabelledReader,
    book: &AddressBook,
    name: &str,
    local: &mut BTreeSet<IpAddr>,
) -> anyhow::Result<(Vec<TraceEvent>, Vec<LineError>)> {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    while let Some((line, parsed)) = reader.next_line(book)? {
        match parsed {
            Parsed::NotData => {}
            Parsed::Bad(reason) => errors.push(LineError {
                file: name.to_owned(),
                line,
                reason,
            }),
            Parsed::Record(raw) => {
                // Before orienting: the marks are the log's originator's
                // and responder's.
                if let Some(marks) = reader.local() {
                    for (end, marked) in [&raw.src, &raw.dst].into_iter().zip(marks) {
                        if let (Endpoint::External(ip), true) = (end, marked) {
                            local.insert(*ip);
                        }
                    }
                }
                let raw = raw.orient();
                let record = FlowRecord {
                    ts: raw.ts,
                    src: raw.src,
                    dst: raw.dst,
                    src_port: raw.src_port.unwrap_or(0),
                    dst_port: raw.dst_port,
                    protocol: raw.protocol,
                    bytes: raw.bytes,
                    packets: raw.packets,
                    connections: raw.connections,
                    verdict: raw.verdict,
                    bridge: None,
                };
                let truth = Truth::from_label(reader.label());
                events.push(TraceEvent { record, truth });
            }
        }
    }
    Ok((events, errors))
}

/// The id [`vm_from_internal`] gives the VM at `ip`. Prefixed, because an
/// id that reads as an address would read back as an external endpoint.
pub fn internal_vm_id(ip: IpAddr) -> String {
    format!("vm-{ip}")
}

/// Turns the external endpoints of `trace` whose address lies in one of
/// `internal` into VMs, so that traces recorded without an inventory (the
/// public data sets) have VMs and label peers: each becomes a VM named
/// [`internal_vm_id`] with the label `subnet=` its /24 (/64 for IPv6), and
/// joins `trace.inventory`. Returns how many VMs it made.
pub fn vm_from_internal(trace: &mut Trace, internal: &[IpNet]) -> usize {
    vm_from(trace, |ip| internal.iter().any(|net| net.contains(ip)))
}

/// As [`vm_from_internal`], for the addresses the recorder marked local
/// ([`Trace::local`]): Zeek's conn.log says which ends are inside the site
/// it watched, so it needs no `--internal`.
pub fn vm_from_local(trace: &mut Trace) -> usize {
    let local = std::mem::take(&mut trace.local);
    let made = vm_from(trace, |ip| local.contains(ip));
    trace.local = local;
    made
}

fn vm_from(trace: &mut Trace, is_internal: impl Fn(&IpAddr) -> bool) -> usize {
    let mut made: BTreeMap<IpAddr, Endpoint> = BTreeMap::new();
    let mut seen: HashMap<IpAddr, Option<Endpoint>> = HashMap::new();
    let inventory = &trace.inventory;
    let mut convert = |endpoint: &mut Endpoint| {
        let Endpoint::External(ip) = *endpoint else {
            return;
        };
        let vm = seen.entry(ip).or_insert_with(|| {
            if !is_internal(&ip) {
                return None;
            }
            // An address the inventory already gives a VM keeps that VM.
            if let known @ Endpoint::Vm(_) = inventory.endpoint(ip) {
                return Some(known);
            }
            let vm = Endpoint::vm(&internal_vm_id(ip));
            made.insert(ip, vm.clone());
            Some(vm)
        });
        if let Some(vm) = vm {
            *endpoint = vm.clone();
        }
    };
    for event in &mut trace.events {
        convert(&mut event.record.src);
        convert(&mut event.record.dst);
    }
    let mut count = 0;
    for (ip, vm) in made {
        let prefix = if ip.is_ipv4() { 24 } else { 64 };
        let subnet =
            IpNet::new(ip, prefix).map_or_else(|_| ip.to_string(), |n| n.trunc().to_string());
        let labels = BTreeMap::from([("subnet".to_owned(), subnet)]);
        // Cannot fail: the id is not empty and the address had no VM.
        if trace
            .inventory
            .add_vm(&vm.to_string(), labels, [ip])
            .is_ok()
        {
            count += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_flows::{Protocol, Timestamp};
    use std::io::Write;
    use std::path::PathBuf;

    #[test]
    fn labels_map_to_truth() {
        let table: &[(Option<&str>, Truth)] = &[
            (Some("Benign"), Truth::Benign),
            (Some("benign"), Truth::Benign),
            (Some("Normal"), Truth::Benign),
            (Some("From-Normal-V51-Grill"), Truth::Benign),
            (Some("To-Normal-UDP-NTP-server"), Truth::Benign),
            (Some("Malicious"), Truth::Attack),
            (Some("Botnet"), Truth::Attack),
            (Some("From-Botnet-V51-1-ICMP"), Truth::Attack),
            (Some("attack"), Truth::Attack),
            (Some("Attack"), Truth::Attack),
            (
                Some("attack-window|covenant_copy_smb_CreateRequest"),
                Truth::Attack,
            ),
            (Some("Background"), Truth::Unknown),
            (Some("Background-TCP-Established"), Truth::Unknown),
            (Some("To-Background-CVUT-Proxy"), Truth::Unknown),
            (Some("unknown"), Truth::Unknown),
            (Some(""), Truth::Unknown),
            (None, Truth::Unknown),
        ];
        for &(label, truth) in table {
            assert_eq!(Truth::from_label(label), truth, "{label:?}");
        }
        for truth in [Truth::Benign, Truth::Attack, Truth::Unknown] {
            assert_eq!(Truth::from_label(Some(truth.as_str())), truth);
        }
    }

    #[test]
    fn imports_never_see_labels() {
        let csv = "ts,src,dst,proto,dport,label\n1,10.0.0.1,10.0.0.2,tcp,22,attack\n";
        let book = AddressBook::default();
        let mut plain = FlatReader::new(csv.as_bytes(), "t").unwrap();
        let mut labelled = FlatReader::new(csv.as_bytes(), "t").unwrap().with_labels();
        for reader in [&mut plain, &mut labelled] {
            reader.next_line(&book).unwrap();
            reader.next_line(&book).unwrap();
        }
        assert_eq!(plain.label(), None);
        assert_eq!(labelled.label(), Some("attack"));
        let log = "#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tlabel\n\
                   1.0\t10.0.0.1\t40000\t10.0.0.2\t22\ttcp\tMalicious\n";
        let mut plain = ZeekReader::new(log.as_bytes(), "t");
        let mut labelled = ZeekReader::new(log.as_bytes(), "t").with_labels();
        for reader in [&mut plain, &mut labelled] {
            reader.next_line(&book).unwrap();
            reader.next_line(&book).unwrap();
        }
        assert_eq!(plain.label(), None);
        assert_eq!(labelled.label(), Some("Malicious"));
    }

    fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn loads_flat_and_zeek_with_labels_order_and_orientation() {
        let dir = tempfile::tempdir().unwrap();
        let inventory = temp_file(
            dir.path(),
            "inv.json",
            br#"{"vms":[{"id":"web-1","labels":{"tier":"web"},"addresses":["10.0.0.11"]},
                        {"id":"db-1","labels":{"tier":"db"},"addresses":["10.0.0.31"]}]}"#,
        );
        // Out of order, a reply-direction row (server first), a bad line,
        // and JSON lines with labels.
        let csv = temp_file(
            dir.path(),
            "t.csv",
            b"ts,src,dst,proto,sport,dport,bytes,label\n\
              20.5,10.0.0.31,10.0.0.11,tcp,5432,40001,900,Benign\n\
              10,10.0.0.11,10.0.0.31,tcp,40000,5432,100,attack\n\
              11,10.0.0.11,10.0.0.31,gre?,40000,5432,100,attack\n\
              12,10.0.0.11,198.51.100.7,udp,40002,53,80,\n",
        );
        let (trace, errors) = load_trace(&csv, Format::Flat, Some(&inventory)).unwrap();
        assert_eq!(trace.name, "t.csv");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
        let summary: Vec<(i64, String, String, u16, u16, Truth)> = trace
            .events
            .iter()
            .map(|e| {
                let r = &e.record;
                (
                    r.ts.0,
                    r.src.to_string(),
                    r.dst.to_string(),
                    r.src_port,
                    r.dst_port,
                    e.truth,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    10_000_000,
                    "web-1".into(),
                    "db-1".into(),
                    40000,
                    5432,
                    Truth::Attack
                ),
                (
                    12_000_000,
                    "web-1".into(),
                    "198.51.100.7".into(),
                    40002,
                    53,
                    Truth::Unknown
                ),
                (
                    20_500_000,
                    "web-1".into(),
                    "db-1".into(),
                    40001,
                    5432,
                    Truth::Benign
                ),
            ]
        );
        let jsonl = temp_file(
            dir.path(),
            "t.jsonl",
            br#"{"ts": 3, "src": "10.0.0.11", "dst": "10.0.0.31", "proto": "tcp", "dport": 5432, "label": "Normal"}
{"ts": 2, "src": "10.0.0.11", "dst": "10.0.0.31", "proto": "tcp", "dport": 5432}
"#,
        );
        let (trace, errors) = load_trace(&jsonl, Format::Flat, None).unwrap();
        assert!(errors.is_empty());
        let truths: Vec<Truth> = trace.events.iter().map(|e| e.truth).collect();
        assert_eq!(truths, [Truth::Unknown, Truth::Benign]);
        assert_eq!(
            trace.events[0].record.src,
            Endpoint::External("10.0.0.11".parse().unwrap())
        );

        let log = temp_file(
            dir.path(),
            "conn.log",
            b"#separator \\x09\n#unset_field\t-\n\
              #fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\torig_pkts\tresp_pkts\tlabel\tdetailedlabel\n\
              5.0\t193.201.9.232\t46563\t10.0.0.11\t3933\ttcp\t2\t0\tMalicious\tExternal-Attack\n\
              4.0\t10.0.0.11\t62771\t40.74.108.123\t443\ttcp\t14\t16\tBenign\tMicrosoft\n\
              6.0\t10.0.0.11\t62772\t40.74.108.123\t443\ttcp\t14\t16\t-\t-\n",
        );
        let (trace, errors) = load_trace(&log, Format::Zeek, Some(&inventory)).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<(String, u16, u64, Truth)> = trace
            .events
            .iter()
            .map(|e| {
                (
                    e.record.src.to_string(),
                    e.record.dst_port,
                    e.record.packets,
                    e.truth,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("web-1".into(), 443, 30, Truth::Benign),
                ("193.201.9.232".into(), 3933, 2, Truth::Attack),
                ("web-1".into(), 443, 30, Truth::Unknown),
            ]
        );
        assert_eq!(trace.inventory.labels().len(), 2);
    }

    #[test]
    fn xz_files_are_decompressed_on_the_fly() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("ts,src,dst,proto,dport,label\n");
        for i in 0..1000 {
            text.push_str(&format!("{i},10.0.0.1,10.0.0.2,icmp,,From-Botnet-1-ICMP\n"));
        }
        let path = dir.path().join("flows.csv.xz");
        let mut encoder = liblzma::write::XzEncoder::new(std::fs::File::create(&path).unwrap(), 6);
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
        let (trace, errors) = load_trace(&path, Format::Flat, None).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(trace.events.len(), 1000);
        assert_eq!(trace.count(Truth::Attack), 1000);
        let last = &trace.events[999].record;
        assert_eq!((last.protocol, last.dst_port), (Protocol::ICMP, 0));
        assert_eq!(last.ts, Timestamp::from_secs(999));
    }

    #[test]
    fn internal_addresses_become_vms_with_subnet_labels() {
        let record = |src: &str, dst: &str| TraceEvent {
            record: FlowRecord::tcp_connection(
                Timestamp(0),
                src.parse().unwrap(),
                dst.parse().unwrap(),
                445,
                0,
                0,
            ),
            truth: Truth::Unknown,
        };
        let mut trace = Trace {
            events: vec![
                record("147.32.84.165", "147.32.96.69"),
                record("147.32.84.165", "8.8.8.8"),
                record("192.168.1.5", "147.32.84.165"),
                record("web-1", "147.32.84.166"),
            ],
            ..Trace::default()
        };
        let internal: Vec<IpNet> = vec!["147.32.0.0/16".parse().unwrap()];
        assert_eq!(vm_from_internal(&mut trace, &internal), 3);
        let ends: Vec<String> = trace
            .events
            .iter()
            .flat_map(|e| [e.record.src.to_string(), e.record.dst.to_string()])
            .collect();
        assert_eq!(
            ends,
            [
                "vm-147.32.84.165",
                "vm-147.32.96.69",
                "vm-147.32.84.165",
                "8.8.8.8",
                "192.168.1.5",
                "vm-147.32.84.165",
                "web-1",
                "vm-147.32.84.166",
            ]
        );
        let labels: Vec<(String, String)> = trace
            .inventory
            .labels()
            .iter()
            .map(|(vm, labels)| (vm.to_string(), labels["subnet"].clone()))
            .collect();
        assert_eq!(
            labels,
            [
                ("vm-147.32.84.165".into(), "147.32.84.0/24".into()),
                ("vm-147.32.84.166".into(), "147.32.84.0/24".into()),
                ("vm-147.32.96.69".into(), "147.32.96.0/24".into()),
            ]
        );
        assert_eq!(
            trace.inventory.endpoint("147.32.96.69".parse().unwrap()),
            Endpoint::vm("vm-147.32.96.69")
        );
        // Run again: nothing left to convert.
        assert_eq!(vm_from_internal(&mut trace, &internal), 0);
    }

    /// The shared data sets, found as the integration tests find them.
    fn dataset(name: &str) -> Option<PathBuf> {
        let shared = std::env::var_os("AUGUR_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
        let path = shared.join("datasets").join(name);
        if path.is_file() {
            Some(path)
        } else {
            eprintln!(
                "skipping: {} not found (set AUGUR_SHARED to the shared/ directory)",
                path.display()
            );
            None
        }
    }

    struct Counts {
        events: usize,
        attack: usize,
        benign: usize,
        unknown: usize,
        errors: usize,
    }

    fn load_counts(name: &str, format: Format) -> Option<(Trace, Counts)> {
        let path = dataset(name)?;
        let (trace, errors) = load_trace(&path, format, None).unwrap();
        assert!(
            trace
                .events
                .windows(2)
                .all(|w| w[0].record.ts <= w[1].record.ts),
            "sorted by time"
        );
        let counts = Counts {
            events: trace.events.len(),
            attack: trace.count(Truth::Attack),
            benign: trace.count(Truth::Benign),
            unknown: trace.count(Truth::Unknown),
            errors: errors.len(),
        };
        Some((trace, counts))
    }

    #[test]
    fn dataset_strato_008() {
        let Some((_, c)) = load_counts("strato-008.conn.log", Format::Zeek) else {
            return;
        };
        assert_eq!((c.events, c.errors), (5663, 0));
        assert_eq!((c.attack, c.benign, c.unknown), (4201, 1402, 60));
    }

    #[test]
    fn dataset_strato_010() {
        let Some((trace, c)) = load_counts("strato-010.conn.log", Format::Zeek) else {
            return;
        };
        assert_eq!((c.events, c.errors), (5347, 0));
        assert_eq!((c.attack, c.benign, c.unknown), (3373, 1937, 37));
        // Zeek's local marks name the campus's addresses: the same VMs as
        // --internal 147.32.0.0/16.
        let mut marked = trace.clone();
        let mut by_network = trace;
        assert_eq!(vm_from_local(&mut marked), 5);
        let campus: Vec<IpNet> = vec!["147.32.0.0/16".parse().unwrap()];
        assert_eq!(vm_from_internal(&mut by_network, &campus), 5);
        assert!(
            marked
                .events
                .iter()
                .zip(&by_network.events)
                .all(|(a, b)| a.record == b.record)
        );
    }

    #[test]
    fn dataset_otrf_lateral() {
        let Some((_, c)) = load_counts("otrf-lateral.csv", Format::Flat) else {
            return;
        };
        assert_eq!((c.events, c.errors), (383, 0));
        assert_eq!((c.attack, c.benign, c.unknown), (383, 0, 0));
    }

    #[test]
    fn dataset_ctu13_s11() {
        let Some((mut trace, c)) = load_counts("ctu13-s11.csv.xz", Format::Flat) else {
            return;
        };
        // Malformed for the importer too: 243 lines that are not IP flows
        // augur knows (ARP, IGMP, RTP, ...), 32 TCP/UDP lines without a port.
        assert_eq!((c.events, c.errors), (106_976, 275));
        assert_eq!((c.attack, c.benign), (8164, 2718));
        assert_eq!(c.unknown, c.events - 8164 - 2718);
        let campus: Vec<IpNet> = vec!["147.32.0.0/16".parse().unwrap()];
        let vms = vm_from_internal(&mut trace, &campus);
        assert!(vms > 300, "{vms} campus hosts");
        // The botnet's ICMP flood comes from campus hosts.
        assert!(
            trace
                .events
                .iter()
                .filter(|e| e.truth == Truth::Attack)
                .all(|e| matches!(e.record.src, Endpoint::Vm(_)))
        );
    }
}
