//! The flat flow format: CSV with a header line, or JSON lines, one flow per
//! line.
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `ts` | yes | connection start, Unix seconds (decimals allowed) |
//! | `src` | yes | initiator: an IP address (mapped through the inventory) or a VM id |
//! | `dst` | yes | responder, the same way |
//! | `proto` | yes | `tcp`, `udp`, `icmp`, `icmp6`, `sctp` or a protocol number |
//! | `dport` | yes | service port (ICMP: type; empty where unknown, read as 0; Argus's hex notation `0x0008` accepted) |
//! | `sport` | no | initiator's port; with it, a row whose ports say the other end was the client (`sport` below 1024 and `dport` ephemeral, see [`augur_flows::guess_initiator`]) is turned round |
//! | `bytes` | no, 0 | bytes, both directions |
//! | `packets` | no, 0 | packets, both directions |
//! | `connections` | no, 1 | connections the row stands for (0: more traffic of one already counted) |
//! | `verdict` | no, `allowed` | `allowed` or `denied` |
//!
//! Columns are found by name, in any order; other columns (`label`,
//! `source`, ...) are ignored and never read by an import. (Replay
//! evaluation scores with `label`: it asks for it with
//! [`FlatReader::with_labels`]; the records are the same either way.) An
//! empty optional field is
//! absent. In JSON lines the same names are keys, with string or number
//! values. `augur export` writes this format, and an export imports back to
//! the same windows.

use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, bail};
use augur_flows::{Protocol, Timestamp, Verdict};
use serde_json::{Map, Value};

use super::{AddressBook, FlowReader, Parsed, RawRecord};

/// Column positions in a CSV header.
#[derive(Debug, Clone, Copy)]
struct Columns {
    ts: usize,
    src: usize,
    dst: usize,
    proto: usize,
    dport: usize,
    sport: Option<usize>,
    bytes: Option<usize>,
    packets: Option<usize>,
    connections: Option<usize>,
    verdict: Option<usize>,
    label: Option<usize>,
}

enum Mode<R: Read> {
    Csv {
        reader: Box<csv::Reader<BufReader<R>>>,
        record: csv::ByteRecord,
        columns: Columns,
    },
    Json {
        input: BufReader<R>,
        line: u64,
        buf: Vec<u8>,
    },
}

/// Reads flat flows, CSV or JSON lines (told apart by the first byte).
pub struct FlatReader<R: Read> {
    mode: Mode<R>,
    started: bool,
    /// Whether [`FlatReader::label`] answers; off for imports.
    keep_labels: bool,
    /// The last JSON line's label, when kept.
    json_label: Option<String>,
}

impl<R: Read> FlatReader<R> {
    /// A reader of `input`; fails if a CSV header lacks a required column.
    pub fn new(input: R, name: &str) -> anyhow::Result<FlatReader<R>> {
        let mut input = BufReader::with_capacity(1 << 16, input);
        let first = input
            .fill_buf()
            .with_context(|| format!("cannot read {name}"))?
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .copied();
        let mode = if first == Some(b'{') {
            Mode::Json {
                input,
                line: 0,
                buf: Vec::with_capacity(256),
            }
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .buffer_capacity(1 << 16)
                .from_reader(input);
            let header = reader
                .byte_headers()
                .with_context(|| format!("{name}:1: cannot read the header"))?
                .clone();
            let names: Vec<String> = header
                .iter()
                .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
                .collect();
            let find = |n: &str| names.iter().position(|h| h == n);
            let need = |n: &str| -> anyhow::Result<usize> {
                match find(n) {
                    Some(i) => Ok(i),
                    None => bail!(
                        "{name}:1: the header has no {n} column (columns: {})",
                        names.join(",")
                    ),
                }
            };
            let columns = Columns {
                ts: need("ts")?,
                src: need("src")?,
                dst: need("dst")?,
                proto: need("proto")?,
                dport: need("dport")?,
                sport: find("sport"),
                bytes: find("bytes"),
                packets: find("packets"),
                connections: find("connections"),
                verdict: find("verdict"),
                label: find("label"),
            };
            Mode::Csv {
                reader: Box::new(reader),
                record: csv::ByteRecord::new(),
                columns,
            }
        };
        Ok(FlatReader {
            mode,
            started: false,
            keep_labels: false,
            json_label: None,
        })
    }

    /// The same reader, with [`FlatReader::label`] answering. Only replay
    /// evaluation asks: labels score decisions and are never learned from.
    #[must_use]
    pub fn with_labels(mut self) -> FlatReader<R> {
        self.keep_labels = true;
        self
    }

    /// The `label` column of the line [`FlowReader::next_line`] returned
    /// last (`None` if empty, absent, or labels were not asked for).
    pub fn label(&self) -> Option<&str> {
        if !self.keep_labels {
            return None;
        }
        match &self.mode {
            Mode::Csv {
                record, columns, ..
            } => csv_field(record, columns.label).ok().flatten(),
            Mode::Json { .. } => self.json_label.as_deref(),
        }
    }
}

/// A flat row's fields as text, absent where the column is missing or empty.
struct Row<'a> {
    ts: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    proto: Option<&'a str>,
    dport: Option<&'a str>,
    sport: Option<&'a str>,
    bytes: Option<&'a str>,
    packets: Option<&'a str>,
    connections: Option<&'a str>,
    verdict: Option<&'a str>,
}

impl Row<'_> {
    fn record(&self, book: &AddressBook) -> Result<RawRecord, String> {
        let need = |value: Option<&str>, name: &str| -> Result<(), String> {
            value.map(|_| ()).ok_or_else(|| format!("{name} is empty"))
        };
        need(self.ts, "ts")?;
        let ts_text = self.ts.unwrap_or_default();
        let ts = Timestamp::parse_decimal(ts_text)
            .ok_or_else(|| format!("ts: not a time: {ts_text:?}"))?;
        need(self.src, "src")?;
        let src = book.endpoint_text(self.src.unwrap_or_default())?;
        need(self.dst, "dst")?;
        let dst = book.endpoint_text(self.dst.unwrap_or_default())?;
        need(self.proto, "proto")?;
        let protocol: Protocol = self
            .proto
            .unwrap_or_default()
            .parse()
            .map_err(|e: String| format!("proto: {e}"))?;
        let dst_port = match self.dport {
            Some(text) if protocol.has_ports() => port(text, "dport")?,
            // Argus writes ICMP's fields in hex, and leaves them empty when
            // it has none; the flow is still a flow.
            Some(text) => {
                hex_or_decimal(text).ok_or_else(|| format!("dport: not a type: {text:?}"))?
            }
            None if protocol.has_ports() => return Err("dport is empty".to_owned()),
            None => 0,
        };
        let src_port = self.sport.map(|s| port(s, "sport")).transpose()?;
        let count = |value: Option<&str>, name: &str, default: u64| -> Result<u64, String> {
            match value {
                None => Ok(default),
                // Some exports write counts as floats ("1.0").
                Some(text) => text
                    .parse::<u64>()
                    .ok()
                    .or_else(|| text.strip_suffix(".0").and_then(|t| t.parse::<u64>().ok()))
                    .ok_or_else(|| format!("{name}: not a count: {text:?}")),
            }
        };
        let connections = count(self.connections, "connections", 1)?;
        let verdict = match self.verdict {
            None => Verdict::Allowed,
            Some(text) => text.parse().map_err(|e: String| format!("verdict: {e}"))?,
        };
        Ok(RawRecord {
            ts,
            src,
            dst,
            src_port,
            dst_port,
            protocol,
            bytes: count(self.bytes, "bytes", 0)?,
            packets: count(self.packets, "packets", 0)?,
            connections: u32::try_from(connections)
                .map_err(|_| format!("connections: {connections} is too many"))?,
            verdict,
            oriented: false,
        })
    }
}

fn port(text: &str, name: &str) -> Result<u16, String> {
    text.parse()
        .ok()
        .or_else(|| text.strip_suffix(".0").and_then(|t| t.parse().ok()))
        .ok_or_else(|| format!("{name}: not a port: {text:?}"))
}

fn hex_or_decimal(text: &str) -> Option<u16> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => port(text, "dport").ok(),
    }
}

fn csv_field(record: &csv::ByteRecord, index: Option<usize>) -> Result<Option<&str>, String> {
    let Some(index) = index else {
        return Ok(None);
    };
    match record.get(index) {
        None => Ok(None),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("field {} is not UTF-8", index + 1))?
                .trim();
            Ok((!text.is_empty()).then_some(text))
        }
    }
}

fn json_field(object: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{name}: expected a string or number, got {other}")),
    }
}

impl<R: Read> FlowReader for FlatReader<R> {
    fn next_line(&mut self, book: &AddressBook) -> anyhow::Result<Option<(u64, Parsed)>> {
        match &mut self.mode {
            Mode::Csv {
                reader,
                record,
                columns,
            } => {
                if !self.started {
                    // The header was line 1; report it so line numbers and
                    // resume points count it.
                    self.started = true;
                    return Ok(Some((1, Parsed::NotData)));
                }
                if !reader.read_byte_record(record)? {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                let columns = *columns;
                let parsed = (|| -> Result<RawRecord, String> {
                    let row = Row {
                        ts: csv_field(record, Some(columns.ts))?,
                        src: csv_field(record, Some(columns.src))?,
                        dst: csv_field(record, Some(columns.dst))?,
                        proto: csv_field(record, Some(columns.proto))?,
                        dport: csv_field(record, Some(columns.dport))?,
                        sport: csv_field(record, columns.sport)?,
                        bytes: csv_field(record, columns.bytes)?,
                        packets: csv_field(record, columns.packets)?,
                        connections: csv_field(record, columns.connections)?,
                        verdict: csv_field(record, columns.verdict)?,
                    };
                    row.record(book)
                })();
                let parsed = match parsed {
                    Ok(record) => Parsed::Record(record),
                    Err(reason) => Parsed::Bad(reason),
                };
                Ok(Some((line, parsed)))
            }
            Mode::Json { input, line, buf } => {
                self.json_label = None;
                buf.clear();
                if input.read_until(b'\n', buf)? == 0 {
                    return Ok(None);
                }
                *line += 1;
                let text = buf.trim_ascii();
                if text.is_empty() {
                    return Ok(Some((*line, Parsed::NotData)));
                }
                let parsed = match serde_json::from_slice::<Map<String, Value>>(text) {
                    Err(err) => Parsed::Bad(format!("not a JSON object: {err}")),
                    Ok(object) => {
                        if self.keep_labels {
                            self.json_label = json_field(&object, "label").ok().flatten();
                        }
                        let result = (|| -> Result<RawRecord, String> {
                            let names = [
                                "ts",
                                "src",
                                "dst",
                                "proto",
                                "dport",
                                "sport",
                                "bytes",
                                "packets",
                                "connections",
                                "verdict",
                            ];
                            let values: Vec<Option<String>> = names
                                .iter()
                                .map(|n| json_field(&object, n))
                                .collect::<Result<_, _>>()?;
                            let get = |i: usize| values.get(i).and_then(|v| v.as_deref());
                            Row {
                                ts: get(0),
                                src: get(1),
                                dst: get(2),
                                proto: get(3),
                                dport: get(4),
                                sport: get(5),
                                bytes: get(6),
                                packets: get(7),
                                connections: get(8),
                                verdict: get(9),
                            }
                            .record(book)
                        })();
                        match result {
                            Ok(record) => Parsed::Record(record),
                            Err(reason) => Parsed::Bad(reason),
                        }
                    }
                };
                Ok(Some((*line, parsed)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_flows::Endpoint;

    fn read_all(text: &str, book: &AddressBook) -> Vec<(u64, Parsed)> {
        let mut reader = FlatReader::new(text.as_bytes(), "test").unwrap();
        let mut out = Vec::new();
        while let Some(item) = reader.next_line(book).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn reads_the_shared_dataset_columns_and_ignores_labels() {
        let text = "ts,src,dst,proto,dport,bytes,label,source
1619503367.300312,192.168.2.6,192.168.2.5,6,80,145059,attack-window|x,otrf
1313674853.826372,76.76.172.248,147.32.84.229,tcp,13363,184,Background,ctu13-s11
1313674853.826372,76.76.172.248,147.32.84.229,gre?,13363,184,Background,ctu13-s11
";
        let lines = read_all(text, &AddressBook::default());
        assert!(matches!(lines[0], (1, Parsed::NotData)));
        let (line, Parsed::Record(r)) = &lines[1] else {
            panic!("{:?}", lines[1]);
        };
        assert_eq!(*line, 2);
        assert_eq!(r.ts, Timestamp(1_619_503_367_300_312));
        assert_eq!(r.protocol, Protocol::TCP);
        assert_eq!((r.dst_port, r.bytes, r.connections), (80, 145_059, 1));
        assert!(matches!(&lines[2].1, Parsed::Record(r) if r.protocol == Protocol::TCP));
        assert!(matches!(&lines[3], (4, Parsed::Bad(reason)) if reason.starts_with("proto:")));
    }

    #[test]
    fn icmp_rows_may_leave_the_type_empty_or_write_it_in_hex() {
        let text = "ts,src,dst,proto,dport
1,147.32.84.191,147.32.96.69,icmp,
2,147.32.84.59,210.49.64.185,icmp,0x0008
3,147.32.84.59,210.49.64.185,tcp,
4,147.32.84.59,210.49.64.185,icmp,0xfffff
";
        let lines = read_all(text, &AddressBook::default());
        assert!(matches!(&lines[1].1, Parsed::Record(r) if r.dst_port == 0));
        assert!(matches!(&lines[2].1, Parsed::Record(r) if r.dst_port == 8));
        assert!(matches!(&lines[3].1, Parsed::Bad(r) if r == "dport is empty"));
        assert!(matches!(&lines[4].1, Parsed::Bad(r) if r.starts_with("dport: not a type")));
    }

    #[test]
    fn a_missing_required_column_is_refused_up_front() {
        let err = FlatReader::new("ts,src,dst,proto\n".as_bytes(), "f.csv")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("f.csv:1: the header has no dport column"),
            "{err}"
        );
    }

    #[test]
    fn json_lines_and_the_inventory() {
        let book = AddressBook::from_json(
            r#"{"vms":[{"id":"web-1","labels":{"tier":"web"},"interfaces":[{"ips":["10.0.0.11"]}]}]}"#,
        )
        .unwrap();
        let text = r#"{"ts": 10.5, "src": "10.0.0.11", "dst": "db-1", "proto": "udp", "dport": 53, "sport": 40000, "bytes": 90, "label": "ignored"}

{"ts": "11", "src": "10.0.0.12", "dst": "10.0.0.11", "proto": 6, "dport": "51000", "sport": 443, "verdict": "denied"}
not json
"#;
        let lines = read_all(text, &book);
        let Parsed::Record(first) = &lines[0].1 else {
            panic!("{:?}", lines[0]);
        };
        assert_eq!(first.src, Endpoint::vm("web-1"));
        assert_eq!(first.dst, Endpoint::vm("db-1"));
        assert!(matches!(lines[1].1, Parsed::NotData));
        let Parsed::Record(reply) = &lines[2].1 else {
            panic!("{:?}", lines[2]);
        };
        // Turned round by its ports: web-1 is the client of 10.0.0.12:443.
        let oriented = reply.clone().orient();
        assert_eq!(oriented.src, Endpoint::vm("web-1"));
        assert_eq!(oriented.dst_port, 443);
        assert_eq!(oriented.verdict, Verdict::Denied);
        assert!(matches!(&lines[3], (4, Parsed::Bad(r)) if r.starts_with("not a JSON object")));
    }
}
