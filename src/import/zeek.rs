//! Zeek `conn.log`, as Zeek writes it.
//!
//! - **TSV** (Zeek's default): `#separator \x09`, then `#`-directives
//!   separated by it (`#unset_field`, `#empty_field`, `#fields`, `#types`,
//!   `#open`, `#close`); columns are found by the names in `#fields`, so
//!   logs with extra columns (labels, `community_id`) or a different order
//!   read the same. A log may hold several header blocks (concatenated
//!   rotations); each `#fields` applies to the lines after it.
//! - **JSON** (`LogAscii::use_json`): one object per line, same field names;
//!   `ts` as epoch seconds.
//!
//! What is read: `ts`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`,
//! `proto`, and the volume: `orig_ip_bytes + resp_ip_bytes` (IP-level bytes,
//! closest to what OVS counters count) where present, else
//! `orig_bytes + resp_bytes` (payload); packets are `orig_pkts + resp_pkts`.
//! Zeek's originator is the initiator (Zeek already flips connections whose
//! start it missed). For ICMP, Zeek puts the type in `id.orig_p` and the code
//! in `id.resp_p`; the type is the service. Everything else, labels
//! included, is ignored by an import. (Replay evaluation scores with the
//! `label` column of labelled logs such as Stratosphere's: it asks for it
//! with [`ZeekReader::with_labels`]; the records are the same either way.)

use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;

use augur_flows::{Protocol, Timestamp, Verdict};
use serde_json::{Map, Value};

use super::{AddressBook, FlowReader, Parsed, RawRecord};

/// Column positions of the fields the importer reads.
#[derive(Debug, Clone, Copy)]
struct Columns {
    count: usize,
    ts: usize,
    orig_h: usize,
    orig_p: usize,
    resp_h: usize,
    resp_p: usize,
    proto: usize,
    orig_bytes: Option<usize>,
    resp_bytes: Option<usize>,
    orig_ip_bytes: Option<usize>,
    resp_ip_bytes: Option<usize>,
    orig_pkts: Option<usize>,
    resp_pkts: Option<usize>,
    label: Option<usize>,
    local_orig: Option<usize>,
    local_resp: Option<usize>,
}

impl Columns {
    fn from_names(names: &[&str]) -> Result<Columns, String> {
        let find = |name: &str| names.iter().position(|n| *n == name);
        let need = |name: &str| find(name).ok_or_else(|| format!("#fields lacks {name}"));
        Ok(Columns {
            count: names.len(),
            ts: need("ts")?,
            orig_h: need("id.orig_h")?,
            orig_p: need("id.orig_p")?,
            resp_h: need("id.resp_h")?,
            resp_p: need("id.resp_p")?,
            proto: need("proto")?,
            orig_bytes: find("orig_bytes"),
            resp_bytes: find("resp_bytes"),
            orig_ip_bytes: find("orig_ip_bytes"),
            resp_ip_bytes: find("resp_ip_bytes"),
            orig_pkts: find("orig_pkts"),
            resp_pkts: find("resp_pkts"),
            label: find("label"),
            local_orig: find("local_orig"),
            local_resp: find("local_resp"),
        })
    }
}

/// Reads a Zeek `conn.log` (TSV or JSON).
pub struct ZeekReader<R> {
    input: BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    separator: u8,
    unset: Vec<u8>,
    columns: Option<Result<Columns, String>>,
    fields: Vec<(usize, usize)>,
    /// Whether [`ZeekReader::label`] answers; off for imports.
    keep_labels: bool,
    /// Where the last TSV line's label is in `buf`.
    label_span: Option<(usize, usize)>,
    /// The last JSON line's label.
    json_label: Option<String>,
    /// The last line's `local_orig` and `local_resp`.
    local: Option<[bool; 2]>,
}

impl<R: Read> ZeekReader<R> {
    /// A reader of `input`; `name` is only for messages.
    pub fn new(input: R, _name: &str) -> ZeekReader<R> {
        ZeekReader {
            input: BufReader::with_capacity(1 << 16, input),
            line: 0,
            buf: Vec::with_capacity(512),
            separator: b'\t',
            unset: b"-".to_vec(),
            columns: None,
            fields: Vec::with_capacity(32),
            keep_labels: false,
            label_span: None,
            json_label: None,
            local: None,
        }
    }

    /// The same reader, with [`ZeekReader::label`] answering. Only replay
    /// evaluation asks: labels score decisions and are never learned from.
    #[must_use]
    pub fn with_labels(mut self) -> ZeekReader<R> {
        self.keep_labels = true;
        self
    }

    /// The `label` field of the line [`FlowReader::next_line`] returned last
    /// (`None` if unset, absent, or labels were not asked for).
    pub fn label(&self) -> Option<&str> {
        if !self.keep_labels {
            return None;
        }
        if let Some(label) = &self.json_label {
            return Some(label);
        }
        let (a, b) = self.label_span?;
        let value = self.buf.get(a..b)?;
        if value == self.unset.as_slice() || value.is_empty() {
            return None;
        }
        std::str::from_utf8(value).ok()
    }

    /// Whether the originator and the responder of the line
    /// [`FlowReader::next_line`] returned last are local to the site that
    /// recorded it: Zeek's `local_orig` and `local_resp`, which it sets from
    /// its `Site::local_nets` (`None` if either is unset or absent).
    pub fn local(&self) -> Option<[bool; 2]> {
        self.local
    }

    fn directive(&mut self, line: &[u8]) -> Parsed {
        if let Some(rest) = line.strip_prefix(b"#separator ") {
            return match parse_separator(rest) {
                Some(sep) => {
                    self.separator = sep;
                    Parsed::NotData
                }
                None => Parsed::Bad(format!(
                    "unsupported #separator {:?}",
                    String::from_utf8_lossy(rest)
                )),
            };
        }
        let mut parts = line.split(|&b| b == self.separator);
        let name = parts.next().unwrap_or_default();
        match name {
            b"#unset_field" => {
                self.unset = parts.next().unwrap_or(b"-").to_vec();
                Parsed::NotData
            }
            b"#fields" => {
                let names: Result<Vec<&str>, _> = parts.map(std::str::from_utf8).collect();
                let columns = match names {
                    Ok(names) => Columns::from_names(&names),
                    Err(_) => Err("#fields is not UTF-8".to_owned()),
                };
                let bad = columns.as_ref().err().cloned();
                self.columns = Some(columns);
                bad.map_or(Parsed::NotData, Parsed::Bad)
            }
            _ => Parsed::NotData,
        }
    }

    fn data(&mut self, line: &[u8], book: &AddressBook) -> Parsed {
        let columns = match &self.columns {
            Some(Ok(columns)) => *columns,
            Some(Err(reason)) => {
                return Parsed::Bad(format!("no usable #fields header ({reason})"));
            }
            None => return Parsed::Bad("data before the #fields header".to_owned()),
        };
        self.fields.clear();
        let mut start = 0;
        for (i, &b) in line.iter().enumerate() {
            if b == self.separator {
                self.fields.push((start, i));
                start = i + 1;
            }
        }
        self.fields.push((start, line.len()));
        if self.fields.len() != columns.count {
            return Parsed::Bad(format!(
                "{} fields where #fields names {}",
                self.fields.len(),
                columns.count
            ));
        }
        if self.keep_labels {
            self.label_span = columns.label.and_then(|i| self.fields.get(i).copied());
        }
        let unset = self.unset.as_slice();
        let field = |index: usize| -> Option<&[u8]> {
            let &(a, b) = self.fields.get(index)?;
            let value = line.get(a..b)?;
            (value != unset).then_some(value)
        };
        let flag = |index: Option<usize>| match index.and_then(field) {
            Some(b"T") => Some(true),
            Some(b"F") => Some(false),
            _ => None,
        };
        self.local = flag(columns.local_orig)
            .zip(flag(columns.local_resp))
            .map(<[bool; 2]>::from);
        let text = |index: usize, name: &str| -> Result<&str, String> {
            let value = field(index).ok_or_else(|| format!("{name} is unset"))?;
            std::str::from_utf8(value).map_err(|_| format!("{name} is not UTF-8"))
        };
        let count = |index: Option<usize>, name: &str| -> Result<u64, String> {
            match index.and_then(field) {
                None => Ok(0),
                Some(value) => std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!("{name}: not a count: {:?}", String::from_utf8_lossy(value))
                    }),
            }
        };
        let result = (|| -> Result<RawRecord, String> {
            let fields = Fields {
                ts: text(columns.ts, "ts")?,
                orig_h: text(columns.orig_h, "id.orig_h")?,
                orig_p: text(columns.orig_p, "id.orig_p")?,
                resp_h: text(columns.resp_h, "id.resp_h")?,
                resp_p: text(columns.resp_p, "id.resp_p")?,
                proto: text(columns.proto, "proto")?,
            };
            let ip_bytes = match (columns.orig_ip_bytes, columns.resp_ip_bytes) {
                (Some(o), Some(r)) if field(o).is_some() || field(r).is_some() => Some(
                    count(Some(o), "orig_ip_bytes")?
                        .saturating_add(count(Some(r), "resp_ip_bytes")?),
                ),
                _ => None,
            };
            let bytes = match ip_bytes {
                Some(bytes) => bytes,
                None => count(columns.orig_bytes, "orig_bytes")?
                    .saturating_add(count(columns.resp_bytes, "resp_bytes")?),
            };
            let packets = count(columns.orig_pkts, "orig_pkts")?
                .saturating_add(count(columns.resp_pkts, "resp_pkts")?);
            fields.record(book, bytes, packets)
        })();
        match result {
            Ok(record) => Parsed::Record(record),
            Err(reason) => Parsed::Bad(reason),
        }
    }

    fn json(&mut self, line: &[u8], book: &AddressBook) -> Parsed {
        let object: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(object) => object,
            Err(err) => return Parsed::Bad(format!("not a JSON object: {err}")),
        };
        if self.keep_labels {
            self.json_label = json_text(&object, "label");
        }
        let flag = |name: &str| object.get(name).and_then(Value::as_bool);
        self.local = flag("local_orig")
            .zip(flag("local_resp"))
            .map(<[bool; 2]>::from);
        let result = (|| -> Result<RawRecord, String> {
            let texts: Vec<String> = [
                "ts",
                "id.orig_h",
                "id.orig_p",
                "id.resp_h",
                "id.resp_p",
                "proto",
            ]
            .iter()
            .map(|name| json_text(&object, name).ok_or_else(|| format!("{name} is missing")))
            .collect::<Result<_, _>>()?;
            let [ts, orig_h, orig_p, resp_h, resp_p, proto] = texts.as_slice() else {
                return Err("internal: field count".to_owned());
            };
            let fields = Fields {
                ts,
                orig_h,
                orig_p,
                resp_h,
                resp_p,
                proto,
            };
            let count = |name: &str| -> Result<Option<u64>, String> {
                match object.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => value
                        .as_u64()
                        .map(Some)
                        .ok_or_else(|| format!("{name}: not a count: {value}")),
                }
            };
            let bytes = match (count("orig_ip_bytes")?, count("resp_ip_bytes")?) {
                (None, None) => count("orig_bytes")?
                    .unwrap_or(0)
                    .saturating_add(count("resp_bytes")?.unwrap_or(0)),
                (o, r) => o.unwrap_or(0).saturating_add(r.unwrap_or(0)),
            };
            let packets = count("orig_pkts")?
                .unwrap_or(0)
                .saturating_add(count("resp_pkts")?.unwrap_or(0));
            fields.record(book, bytes, packets)
        })();
        match result {
            Ok(record) => Parsed::Record(record),
            Err(reason) => Parsed::Bad(reason),
        }
    }
}

/// A JSON value as the text the TSV form would hold.
fn json_text(object: &Map<String, Value>, name: &str) -> Option<String> {
    match object.get(name)? {
        Value::String(s) => Some(s.clone()),
        // serde_json prints the shortest text that reads back as the same
        // float, which for Zeek's six-decimal timestamps is the text Zeek
        // wrote.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

struct Fields<'a> {
    ts: &'a str,
    orig_h: &'a str,
    orig_p: &'a str,
    resp_h: &'a str,
    resp_p: &'a str,
    proto: &'a str,
}

impl Fields<'_> {
    fn record(&self, book: &AddressBook, bytes: u64, packets: u64) -> Result<RawRecord, String> {
        let ts = Timestamp::parse_decimal(self.ts)
            .ok_or_else(|| format!("ts: not a time: {:?}", self.ts))?;
        let orig: IpAddr = self
            .orig_h
            .parse()
            .map_err(|_| format!("id.orig_h: not an address: {:?}", self.orig_h))?;
        let resp: IpAddr = self
            .resp_h
            .parse()
            .map_err(|_| format!("id.resp_h: not an address: {:?}", self.resp_h))?;
        let orig_p: u16 = self
            .orig_p
            .parse()
            .map_err(|_| format!("id.orig_p: not a port: {:?}", self.orig_p))?;
        let resp_p: u16 = self
            .resp_p
            .parse()
            .map_err(|_| format!("id.resp_p: not a port: {:?}", self.resp_p))?;
        let mut protocol: Protocol = self
            .proto
            .parse()
            .map_err(|_| format!("proto: unknown transport {:?}", self.proto))?;
        // Zeek calls ICMPv6 "icmp" too.
        if protocol == Protocol::ICMP && orig.is_ipv6() {
            protocol = Protocol::ICMPV6;
        }
        let (src_port, dst_port) = if protocol.has_ports() {
            (Some(orig_p), resp_p)
        } else {
            (None, orig_p)
        };
        Ok(RawRecord {
            ts,
            src: book.endpoint(orig),
            dst: book.endpoint(resp),
            src_port,
            dst_port,
            protocol,
            bytes,
            packets,
            connections: 1,
            verdict: Verdict::Allowed,
            oriented: true,
        })
    }
}

/// `\x09` (Zeek's escape) or a single literal byte.
fn parse_separator(text: &[u8]) -> Option<u8> {
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    if let Some(hex) = text.strip_prefix(b"\\x") {
        let hex = std::str::from_utf8(hex).ok()?;
        return u8::from_str_radix(hex, 16).ok();
    }
    match text {
        [b] => Some(*b),
        _ => None,
    }
}

impl<R: Read> FlowReader for ZeekReader<R> {
    fn next_line(&mut self, book: &AddressBook) -> anyhow::Result<Option<(u64, Parsed)>> {
        self.buf.clear();
        let n = self.input.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.label_span = None;
        self.json_label = None;
        self.local = None;
        let mut line = std::mem::take(&mut self.buf);
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let parsed = if line.is_empty() {
            Parsed::NotData
        } else if line.first() == Some(&b'#') {
            self.directive(&line)
        } else if line.first() == Some(&b'{') {
            self.json(&line, book)
        } else {
            self.data(&line, book)
        };
        self.buf = line;
        Ok(Some((self.line, parsed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\torig_bytes\tresp_bytes\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\tlabel
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tcount\tcount\tcount\tcount\tcount\tcount\tstring
1655071198.444458\tC1\t147.32.81.167\t62771\t40.74.108.123\t443\ttcp\tssl\t1596\t4039\t14\t1016\t16\t1226\tBenign
1655071231.749548\tC2\t193.201.9.232\t46563\t147.32.81.167\t3933\ttcp\t-\t0\t0\t2\t80\t0\t0\tMalicious
1655071277.667808\tC3\t45.154.96.251\t-\t147.32.81.167\t123\tudp\t-\t16\t0\t2\t72\t0\t0\tMalicious
1655071277.000000\tC4\t10.0.0.1\t8\t10.0.0.2\t0\ticmp\t-\t-\t-\t1\t-\t1\t-\tBenign
short\tline
#close\t2022-06-17-00-00-07
";

    fn read_all(text: &str) -> Vec<(u64, Parsed)> {
        let mut reader = ZeekReader::new(text.as_bytes(), "test");
        let book = AddressBook::default();
        let mut out = Vec::new();
        while let Some(item) = reader.next_line(&book).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn reads_a_conn_log_by_its_fields_header() {
        let lines = read_all(LOG);
        assert_eq!(lines.len(), 13);
        let Parsed::Record(first) = &lines[7].1 else {
            panic!("{:?}", lines[7]);
        };
        assert_eq!(first.ts, Timestamp(1_655_071_198_444_458));
        assert_eq!(first.src.to_string(), "147.32.81.167");
        assert_eq!(first.dst.to_string(), "40.74.108.123");
        assert_eq!((first.src_port, first.dst_port), (Some(62771), 443));
        assert_eq!(first.protocol, Protocol::TCP);
        assert_eq!(first.bytes, 1016 + 1226, "IP-level bytes preferred");
        assert_eq!(first.packets, 30);
        match &lines[9].1 {
            Parsed::Bad(reason) => assert_eq!(reason, "id.orig_p is unset"),
            other => panic!("{other:?}"),
        }
        let Parsed::Record(icmp) = &lines[10].1 else {
            panic!("{:?}", lines[10]);
        };
        assert_eq!(
            (icmp.protocol, icmp.dst_port, icmp.src_port),
            (Protocol::ICMP, 8, None)
        );
        assert_eq!(icmp.bytes, 0);
        match &lines[11].1 {
            Parsed::Bad(reason) => assert_eq!(reason, "2 fields where #fields names 15"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(lines[12].1, Parsed::NotData));
    }

    #[test]
    fn reads_zeek_json_logs() {
        let line = r#"{"ts":1655071198.444458,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":40000,"id.resp_h":"10.0.0.2","id.resp_p":22,"proto":"tcp","orig_bytes":10,"resp_bytes":20,"orig_pkts":1,"resp_pkts":2}"#;
        let lines = read_all(line);
        let Parsed::Record(record) = &lines[0].1 else {
            panic!("{:?}", lines[0]);
        };
        assert_eq!(record.ts, Timestamp(1_655_071_198_444_458));
        assert_eq!(record.bytes, 30);
        assert_eq!(record.dst_port, 22);
        let bad = read_all(r#"{"ts":1,"id.orig_h":"x"}"#);
        assert!(matches!(&bad[0].1, Parsed::Bad(r) if r == "id.orig_p is missing"));
    }

    #[test]
    fn local_marks_are_read_in_both_forms() {
        let tsv =
            "#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tlocal_orig\tlocal_resp
1\t10.0.0.1\t40000\t8.8.8.8\t53\tudp\tT\tF
2\t8.8.8.8\t40000\t10.0.0.1\t22\ttcp\t-\tT
";
        let json = r#"{"ts":1,"id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":22,"proto":"tcp","local_orig":true,"local_resp":true}"#;
        let marks = |text: &str| {
            let mut reader = ZeekReader::new(text.as_bytes(), "test");
            let mut out = Vec::new();
            while let Some((_, parsed)) = reader.next_line(&AddressBook::default()).unwrap() {
                if matches!(parsed, Parsed::Record(_)) {
                    out.push(reader.local());
                }
            }
            out
        };
        assert_eq!(marks(tsv), [Some([true, false]), None], "unset is no mark");
        assert_eq!(marks(json), [Some([true, true])]);
        assert_eq!(marks(LOG).iter().flatten().count(), 0, "no such columns");
    }

    #[test]
    fn data_before_a_header_is_malformed() {
        let lines = read_all("1.0\ta\tb\n");
        assert!(matches!(&lines[0].1, Parsed::Bad(r) if r == "data before the #fields header"));
    }
}
