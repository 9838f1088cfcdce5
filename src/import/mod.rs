//! Importing existing telemetry, so a deployment learns from day one, and
//! exporting the history in the same format.
//!
//! Two formats are read:
//!
//! - **Zeek `conn.log`** ([`zeek`]), as Zeek writes it: tab-separated with
//!   `#` header lines (columns found by `#fields`, `-` unset, `(empty)`
//!   empty), or Zeek's JSON logs (one object per line, same field names).
//! - **Flat flows** ([`flat`]): CSV with a header, or JSON lines, with the
//!   columns `ts,src,dst,proto,dport` and optionally
//!   `sport,bytes,packets,connections,verdict`. Columns are found by name;
//!   any other column (`label`, `source`, ...) is ignored, never read by an
//!   import (replay evaluation asks the readers for `label` to score with).
//!
//! An optional inventory ([`AddressBook`]) maps addresses to VM ids and
//! labels; addresses it does not list are external endpoints.
//!
//! Records are summed into windows ([`augur_flows::WindowBatch`]) and written
//! every [`ImportOptions::batch_records`] records in one transaction that
//! also records how many lines of the file are done. A malformed line is
//! reported as `file:line: reason` and skipped, or stops the import
//! ([`OnError`]); either way every line before it stays imported. An import
//! that was interrupted (killed, or stopped at a bad line) resumes after the
//! last committed line when run again on the same file, as long as the lines
//! it skips are byte for byte those it imported (a hash of them is committed
//! with the progress); a file already imported in full is not counted twice,
//! and a log that grew imports only its new lines.

pub mod export;
pub mod flat;
pub mod zeek;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Context;
use augur_flows::{
    Endpoint, EndpointId, Endpoints, FlowKey, Observation, Protocol, Side, Timestamp, Verdict,
    WindowBatch, guess_initiator,
};
use serde::Deserialize;

use crate::store::{ImportCommit, ImportProgress, Store};

/// What to do with a malformed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Report it and go on with the next line.
    #[default]
    Continue,
    /// Report it and stop; the lines before it stay imported.
    Stop,
}

/// Settings of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Malformed lines: skip or stop.
    pub on_error: OnError,
    /// Records per committed batch (the most a crash can make a re-run
    /// read again).
    pub batch_records: usize,
    /// Malformed lines kept in the report (all are counted).
    pub max_reported_errors: usize,
    /// Addresses of VMs, and their labels.
    pub address_book: AddressBook,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            on_error: OnError::Continue,
            batch_records: 50_000,
            max_reported_errors: 100,
            address_book: AddressBook::default(),
        }
    }
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The file, as given.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

impl std::error::Error for LineError {}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, header and comment lines included.
    pub lines: u64,
    /// Records imported by this run.
    pub records: u64,
    /// Lines of an earlier, interrupted run that were already imported.
    pub resumed_after_line: u64,
    /// Malformed lines.
    pub errors: u64,
    /// The first malformed lines, in order.
    pub first_errors: Vec<LineError>,
    /// Whether the import stopped at a malformed line.
    pub stopped: bool,
    /// Window rows written (added into the store).
    pub rows_written: u64,
    /// Transactions committed.
    pub batches: u64,
}

/// One flow as an importer reads it, before endpoints are interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Connection start.
    pub ts: Timestamp,
    /// First end as the source gives it (the originator, for Zeek).
    pub src: Endpoint,
    /// The other end.
    pub dst: Endpoint,
    /// The first end's port, if the source has one.
    pub src_port: Option<u16>,
    /// The other end's port (ICMP: the type).
    pub dst_port: u16,
    /// IP protocol.
    pub protocol: Protocol,
    /// Bytes, both directions.
    pub bytes: u64,
    /// Packets, both directions.
    pub packets: u64,
    /// Connections this line stands for.
    pub connections: u32,
    /// Forwarded or dropped.
    pub verdict: Verdict,
    /// Whether `src` is known to be the initiator (Zeek's originator); if
    /// not, and both ports are known, the ports decide
    /// ([`augur_flows::guess_initiator`]).
    pub oriented: bool,
}

impl RawRecord {
    /// The record with the initiator first.
    pub fn orient(mut self) -> RawRecord {
        if !self.oriented
            && let Some(src_port) = self.src_port
            && guess_initiator(self.protocol, src_port, self.dst_port) == Some(Side::Dst)
        {
            std::mem::swap(&mut self.src, &mut self.dst);
            self.src_port = Some(self.dst_port);
            self.dst_port = src_port;
        }
        self.oriented = true;
        self
    }
}

/// What a reader makes of one line.
#[derive(Debug)]
pub enum Parsed {
    /// A flow.
    Record(RawRecord),
    /// A header, comment or blank line.
    NotData,
    /// A malformed line, and why.
    Bad(String),
}

/// A source of lines of flows.
pub trait FlowReader {
    /// The next line's number (1-based) and what it holds; `None` at the end.
    /// An `Err` is a failure to read at all (I/O), which ends the import.
    fn next_line(&mut self, book: &AddressBook) -> anyhow::Result<Option<(u64, Parsed)>>;
}

/// Maps addresses to VMs for imports. Reads augur's inventory file as it is
/// (`vms[].interfaces[].ips`, `vms[].labels`) or a shorter form with
/// `vms[].addresses`; JSON, or TOML for files ending in `.toml`.
///
/// ```
/// let book = augur::import::AddressBook::from_json(r#"{"vms": [
///     {"id": "web-1", "labels": {"tier": "web"}, "addresses": ["10.0.0.11"]}
/// ]}"#).unwrap();
/// let endpoint = book.endpoint("10.0.0.11".parse().unwrap());
/// assert_eq!(endpoint, augur_flows::Endpoint::vm("web-1"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AddressBook {
    by_address: HashMap<IpAddr, Endpoint>,
    labels: Vec<(Endpoint, BTreeMap<String, String>)>,
}

#[derive(Debug, Deserialize)]
struct BookFile {
    #[serde(default)]
    vms: Vec<BookVm>,
}

#[derive(Debug, Deserialize)]
struct BookVm {
    id: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    addresses: Vec<IpAddr>,
    #[serde(default)]
    interfaces: Vec<BookInterface>,
}

#[derive(Debug, Deserialize)]
struct BookInterface {
    #[serde(default)]
    ips: Vec<IpAddr>,
}

impl AddressBook {
    /// Reads an inventory file.
    pub fn load(path: &Path) -> anyhow::Result<AddressBook> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read inventory {}", path.display()))?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        let file: BookFile = if is_toml {
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        } else {
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
        };
        AddressBook::from_file(file).with_context(|| format!("{}", path.display()))
    }

    /// Reads an inventory from JSON text.
    pub fn from_json(text: &str) -> anyhow::Result<AddressBook> {
        AddressBook::from_file(serde_json::from_str(text)?)
    }

    fn from_file(file: BookFile) -> anyhow::Result<AddressBook> {
        let mut book = AddressBook::default();
        for vm in file.vms {
            let addresses = vm
                .addresses
                .iter()
                .chain(vm.interfaces.iter().flat_map(|i| i.ips.iter()))
                .copied();
            book.add_vm(&vm.id, vm.labels, addresses)?;
        }
        Ok(book)
    }

    /// Adds a VM with its labels and addresses. Fails if the id is empty
    /// or an address already belongs to another VM.
    pub fn add_vm(
        &mut self,
        id: &str,
        labels: BTreeMap<String, String>,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> anyhow::Result<()> {
        if id.is_empty() {
            anyhow::bail!("a VM has an empty id");
        }
        let endpoint = Endpoint::vm(id);
        for ip in addresses {
            if let Some(Endpoint::Vm(other)) = self.by_address.get(&ip)
                && **other != *id
            {
                anyhow::bail!("address {ip} belongs to both {other} and {id}");
            }
            self.by_address.insert(ip, endpoint.clone());
        }
        self.labels.push((endpoint, labels));
        Ok(())
    }

    /// The addresses of `endpoint`, in ascending order (none for an
    /// external endpoint).
    pub fn addresses_of(&self, endpoint: &Endpoint) -> Vec<IpAddr> {
        let mut addresses: Vec<IpAddr> = self
            .by_address
            .iter()
            .filter(|(_, owner)| *owner == endpoint)
            .map(|(&ip, _)| ip)
            .collect();
        addresses.sort_unstable();
        addresses
    }

    /// The endpoint an address stands for.
    pub fn endpoint(&self, ip: IpAddr) -> Endpoint {
        if self.by_address.is_empty() {
            return Endpoint::External(ip);
        }
        self.by_address
            .get(&ip)
            .cloned()
            .unwrap_or(Endpoint::External(ip))
    }

    /// An endpoint written as text: an address (looked up) or a VM id.
    pub fn endpoint_text(&self, text: &str) -> Result<Endpoint, String> {
        match text.parse::<IpAddr>() {
            Ok(ip) => Ok(self.endpoint(ip)),
            Err(_) if text.is_empty() => Err("empty endpoint".to_owned()),
            Err(_) => Ok(Endpoint::vm(text)),
        }
    }

    /// The VMs and their labels.
    pub fn labels(&self) -> &[(Endpoint, BTreeMap<String, String>)] {
        &self.labels
    }
}

/// A hash of a file's first lines, advanced as an import commits, so that
/// a re-run can tell whether the lines it would skip are still the lines
/// that were imported. A log that grew, or a file fixed after the point
/// where an import stopped, resumes; a file rewritten before that point is
/// imported from its start.
pub struct PrefixHash {
    input: Option<std::io::BufReader<File>>,
    lines: u64,
    hash: u64,
    buf: Vec<u8>,
}

impl PrefixHash {
    /// Hashes lines of the file at `path`.
    pub fn of_file(path: &Path) -> anyhow::Result<PrefixHash> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(PrefixHash {
            input: Some(std::io::BufReader::with_capacity(1 << 16, file)),
            lines: 0,
            hash: FNV_OFFSET,
            buf: Vec::new(),
        })
    }

    /// No file to hash (a reader that is not a file): every fingerprint is
    /// empty, and progress is always taken as valid.
    pub fn none() -> PrefixHash {
        PrefixHash {
            input: None,
            lines: 0,
            hash: FNV_OFFSET,
            buf: Vec::new(),
        }
    }

    /// Starts hashing again from the first line.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(input) = &mut self.input {
            std::io::Seek::seek(input, std::io::SeekFrom::Start(0))?;
        }
        self.lines = 0;
        self.hash = FNV_OFFSET;
        Ok(())
    }

    /// The hash of lines `1..=lines`, as text. Lines must not go backwards.
    pub fn through(&mut self, lines: u64) -> anyhow::Result<String> {
        let Some(input) = &mut self.input else {
            return Ok(String::new());
        };
        while self.lines < lines {
            self.buf.clear();
            if std::io::BufRead::read_until(input, b'\n', &mut self.buf)? == 0 {
                break;
            }
            self.lines += 1;
            // FNV-1a: stable across Rust versions, unlike std's hasher.
            for &b in &self.buf {
                self.hash ^= u64::from(b);
                self.hash = self.hash.wrapping_mul(FNV_PRIME);
            }
        }
        Ok(format!("{:016x}:{}", self.hash, self.lines))
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// Where an import's progress is kept: `source` names the file (its
/// canonical path), `prefix` hashes its lines.
pub struct Source<'a> {
    /// The file's identity in the store.
    pub id: &'a str,
    /// The file's name in messages.
    pub name: &'a str,
    /// The hash of its lines.
    pub prefix: PrefixHash,
}

/// Imports everything `reader` yields into `store`, resuming after the lines
/// a previous run of the same source committed, if those lines are
/// unchanged.
pub fn import(
    store: &mut Store,
    reader: &mut dyn FlowReader,
    mut source: Source<'_>,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let window = store.settings().window;
    let mut done = ImportProgress {
        fingerprint: String::new(),
        lines: 0,
        records: 0,
    };
    if let Some(previous) = store.import_progress(source.id)?
        && source.prefix.through(previous.lines)? == previous.fingerprint
    {
        done = previous;
    } else {
        source.prefix.restart()?;
    }
    for (endpoint, labels) in options.address_book.labels() {
        store.set_labels(endpoint, labels)?;
    }
    let mut report = ImportReport {
        resumed_after_line: done.lines,
        ..ImportReport::default()
    };
    let mut endpoints = Endpoints::new();
    // In front of the endpoint table: the same few addresses recur on
    // every line, and foldhash is several times cheaper than the table's
    // SipHash (see WindowBatch on why that is fine for files).
    let mut ids: HashMap<Endpoint, EndpointId, foldhash::fast::RandomState> = HashMap::default();
    let mut intern = |endpoints: &mut Endpoints, endpoint: Endpoint| -> EndpointId {
        if let Some(&id) = ids.get(&endpoint) {
            return id;
        }
        let id = endpoints.intern(&endpoint);
        ids.insert(endpoint, id);
        id
    };
    let mut batch = WindowBatch::new(window);
    let mut total_records = done.records;
    let mut last_line = 0;
    let batch_size = options.batch_records.max(1) as u64;
    // The time the records read so far cover, for the store's watched
    // spans.
    let mut recorded: Option<(i64, i64)> = None;
    let mut commit = |store: &mut Store,
                      endpoints: &Endpoints,
                      batch: &mut WindowBatch,
                      lines: u64,
                      records: u64,
                      recorded: Option<(i64, i64)>,
                      report: &mut ImportReport|
     -> anyhow::Result<()> {
        let rows = batch.drain();
        let progress = ImportProgress {
            fingerprint: source.prefix.through(lines)?,
            lines,
            records,
        };
        let import = ImportCommit {
            source: source.id,
            progress: &progress,
            recorded,
        };
        store.write_batch(endpoints, &rows, Some(import))?;
        report.rows_written += rows.len() as u64;
        report.batches += 1;
        Ok(())
    };
    while let Some((line, parsed)) = reader.next_line(&options.address_book)? {
        last_line = line;
        report.lines = line;
        if line <= done.lines {
            continue;
        }
        match parsed {
            Parsed::NotData => {}
            Parsed::Record(raw) => {
                let raw = raw.orient();
                let key = FlowKey {
                    src: intern(&mut endpoints, raw.src),
                    dst: intern(&mut endpoints, raw.dst),
                    protocol: raw.protocol,
                    service_port: raw.dst_port,
                };
                batch.add(
                    key,
                    &Observation {
                        ts: raw.ts,
                        bytes: raw.bytes,
                        packets: raw.packets,
                        connections: raw.connections,
                        verdict: raw.verdict,
                    },
                );
                let t = raw.ts.secs();
                recorded = Some(recorded.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                report.records += 1;
                total_records += 1;
                if batch.observations() >= batch_size {
                    commit(
                        store,
                        &endpoints,
                        &mut batch,
                        line,
                        total_records,
                        recorded,
                        &mut report,
                    )?;
                }
            }
            Parsed::Bad(reason) => {
                report.errors += 1;
                let error = LineError {
                    file: source.name.to_owned(),
                    line,
                    reason,
                };
                if report.first_errors.len() < options.max_reported_errors {
                    report.first_errors.push(error);
                }
                if options.on_error == OnError::Stop {
                    // Everything before the bad line is kept; a re-run after
                    // fixing the line resumes at it.
                    let before = line.saturating_sub(1);
                    commit(
                        store,
                        &endpoints,
                        &mut batch,
                        before,
                        total_records,
                        recorded,
                        &mut report,
                    )?;
                    report.stopped = true;
                    return Ok(report);
                }
            }
        }
    }
    if last_line > done.lines {
        commit(
            store,
            &endpoints,
            &mut batch,
            last_line,
            total_records,
            recorded,
            &mut report,
        )?;
    }
    Ok(report)
}

/// Which importer reads a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Zeek `conn.log`, TSV or JSON.
    Zeek,
    /// Flat flows, CSV or JSON lines.
    Flat,
}

/// Opens a flow file for reading, decompressing it on the fly if its name
/// ends in `.xz` (data sets are shipped compressed).
pub fn open_flow_file(path: &Path) -> anyhow::Result<Box<dyn std::io::Read>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let is_xz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xz"));
    Ok(if is_xz {
        // Multi-stream, as the xz tool writes concatenated files.
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(file))
    } else {
        Box::new(file)
    })
}

/// Imports the file at `path` into `store`.
pub fn import_file(
    store: &mut Store,
    format: Format,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let canonical =
        std::fs::canonicalize(path).with_context(|| format!("cannot open {}", path.display()))?;
    let id = canonical.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.display().to_string();
    let mut reader: Box<dyn FlowReader> = match format {
        Format::Zeek => Box::new(zeek::ZeekReader::new(file, &name)),
        Format::Flat => Box::new(flat::FlatReader::new(file, &name)?),
    };
    let source = Source {
        id: &id,
        name: &name,
        prefix: PrefixHash::of_file(&canonical)?,
    };
    import(store, reader.as_mut(), source, options)
}
