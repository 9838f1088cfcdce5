//! Exporting the history in the flat format, so it can be moved to another
//! store, inspected, or imported back.
//!
//! Each stored window row becomes up to three lines: the allowed traffic at
//! the window's first observation (its bytes, packets and connections), a
//! line with no volume at its last observation (so the window's span
//! survives the round trip), and the denied attempts. Importing an export
//! into an empty store with the same window length gives the same rows.
//! Rollup rows (older than the raw retention) are exported the same way, at
//! their coarser resolution.

use std::io::Write;

use augur_flows::{Endpoint, Endpoints, Timestamp, Verdict, WindowRow};
use serde::Serialize;

use crate::store::Store;

/// CSV or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// One exported line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    ts: String,
    src: &'a str,
    dst: &'a str,
    proto: String,
    dport: u16,
    bytes: u64,
    packets: u64,
    connections: u32,
    verdict: Verdict,
}

enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Json(&'a mut dyn Write),
}

/// Writes every stored row to `out` (buffer it: lines are written one by
/// one); returns the lines written.
pub fn export(store: &Store, format: ExportFormat, out: &mut dyn Write) -> anyhow::Result<u64> {
    let mut endpoints = Endpoints::new();
    let mut sink = match format {
        ExportFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        ExportFormat::JsonLines => Sink::Json(out),
    };
    let mut lines = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    store.rows(&mut endpoints, |endpoints, rows| {
        if failure.is_some() {
            return;
        }
        for row in rows {
            if let Err(err) = write_row(endpoints, row, &mut sink, &mut lines) {
                failure = Some(err);
                return;
            }
        }
    })?;
    if let Some(err) = failure {
        return Err(err);
    }
    match sink {
        Sink::Csv(mut writer) => writer.flush()?,
        Sink::Json(out) => out.flush()?,
    }
    Ok(lines)
}

fn write_row(
    endpoints: &Endpoints,
    row: &WindowRow,
    sink: &mut Sink<'_>,
    lines: &mut u64,
) -> anyhow::Result<()> {
    let name = |id| {
        endpoints
            .endpoint(id)
            .map_or_else(String::new, Endpoint::to_string)
    };
    let src = name(row.key.src);
    let dst = name(row.key.dst);
    let at = |offset: u32| {
        Timestamp::from_secs(row.start_s.saturating_add(i64::from(offset))).to_string()
    };
    let mut emit = |line: Line<'_>| -> anyhow::Result<()> {
        match sink {
            Sink::Csv(writer) => writer.serialize(&line)?,
            Sink::Json(out) => {
                serde_json::to_writer(&mut **out, &line)?;
                out.write_all(b"\n")?;
            }
        }
        *lines += 1;
        Ok(())
    };
    let base = |ts: String, bytes, packets, connections, verdict| Line {
        ts,
        src: &src,
        dst: &dst,
        proto: row.key.protocol.to_string(),
        dport: row.key.service_port,
        bytes,
        packets,
        connections,
        verdict,
    };
    if row.active_windows > 0 {
        emit(base(
            at(row.first_offset_s),
            row.bytes,
            row.packets,
            row.connections,
            Verdict::Allowed,
        ))?;
        if row.last_offset_s != row.first_offset_s {
            emit(base(at(row.last_offset_s), 0, 0, 0, Verdict::Allowed))?;
        }
    }
    if row.denied > 0 {
        emit(base(at(0), 0, 0, row.denied, Verdict::Denied))?;
    }
    Ok(())
}
