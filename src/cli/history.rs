//! `augur import`, `augur export`, `augur signatures`, `augur top`: the
//! communication history from the command line.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use augur::import::export::{ExportFormat, export};
use augur::import::{AddressBook, Format, ImportOptions, ImportReport, OnError, import_file};
use augur::store::{SignatureStore, Store, StoreSettings};
use augur_flows::{Endpoint, Signature, WindowConfig};

/// Where the history lives unless `--store` or `AUGUR_STORE` says otherwise.
pub const DEFAULT_STORE: &str = "/var/lib/augur/history";

/// The store directory option shared by the history subcommands.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArg {
    /// The history store directory [default: $AUGUR_STORE, or
    /// /var/lib/augur/history].
    #[arg(long = "store", value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl StoreArg {
    /// The directory: `--store`, else `$AUGUR_STORE`, else the default.
    pub fn path(&self) -> PathBuf {
        self.dir
            .clone()
            .or_else(|| std::env::var_os("AUGUR_STORE").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))
    }
}

/// Formats `augur import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// Zeek conn.log, TSV or JSON.
    Zeek,
    /// Flat flows: CSV with a header, or JSON lines.
    Csv,
}

/// What to do with a malformed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnErrorArg {
    /// Report it and go on.
    Continue,
    /// Report it and stop; earlier lines stay imported.
    Stop,
}

/// Arguments of `augur import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file's format.
    #[arg(value_enum)]
    pub format: ImportFormat,
    /// The file to import.
    pub file: PathBuf,
    /// Inventory mapping addresses to VM ids and labels (augur's inventory
    /// JSON/TOML, or `{"vms": [{"id", "labels", "addresses"}]}`).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
    /// Malformed lines: report and continue, or stop.
    #[arg(long, value_enum, default_value = "continue")]
    pub on_error: OnErrorArg,
    /// Records per committed batch.
    #[arg(long, value_name = "N", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub batch: u64,
    /// Window length in seconds, for a new store (an existing store keeps
    /// its own).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub window: u16,
}

/// Formats `augur export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    /// CSV with a header.
    Csv,
    /// JSON lines.
    Jsonl,
}

/// Arguments of `augur export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The format.
    #[arg(value_enum)]
    pub format: ExportFormatArg,
    /// Where to write (`-` for standard output).
    pub file: PathBuf,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
}

/// Arguments of `augur signatures`.
#[derive(Debug, clap::Args)]
pub struct SignaturesArgs {
    /// One pair: initiator and responder (VM ids or addresses).
    #[arg(long, value_name = "A,B", conflicts_with = "label")]
    pub pair: Option<String>,
    /// Label-pair signatures with this label on either side (`tier=web`,
    /// `@external`).
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Option<String>,
    /// Only signatures with a detected period.
    #[arg(long)]
    pub periodic: bool,
    /// At most this many signatures, busiest first.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
}

/// Arguments of `augur top`.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// How many pairs and services.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub limit: usize,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArg,
}

/// Runs `augur import`.
pub fn run_import(args: &ImportArgs) -> anyhow::Result<()> {
    let address_book = match &args.inventory {
        Some(path) => AddressBook::load(path)?,
        None => AddressBook::default(),
    };
    let settings = StoreSettings {
        window: WindowConfig::with_length(args.window).ok_or_else(|| anyhow!("bad window"))?,
        ..StoreSettings::default()
    };
    let mut store = Store::open(&args.store.path(), settings)?;
    let options = ImportOptions {
        on_error: match args.on_error {
            OnErrorArg::Continue => OnError::Continue,
            OnErrorArg::Stop => OnError::Stop,
        },
        batch_records: usize::try_from(args.batch).unwrap_or(usize::MAX),
        address_book,
        ..ImportOptions::default()
    };
    let format = match args.format {
        ImportFormat::Zeek => Format::Zeek,
        ImportFormat::Csv => Format::Flat,
    };
    let started = std::time::Instant::now();
    let report = import_file(&mut store, format, &args.file, &options)?;
    let elapsed = started.elapsed();
    let mut err = std::io::stderr().lock();
    for error in &report.first_errors {
        writeln!(err, "{error}")?;
    }
    if report.errors > report.first_errors.len() as u64 {
        writeln!(
            err,
            "... and {} more malformed lines",
            report.errors - report.first_errors.len() as u64
        )?;
    }
    print_import_summary(&args.file, &report, elapsed)?;
    if report.stopped {
        bail!(
            "{}: import stopped at a malformed line; the {} records before it are kept",
            args.file.display(),
            report.records
        );
    }
    Ok(())
}

fn print_import_summary(
    file: &std::path::Path,
    report: &ImportReport,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let rate = report.records as f64 / elapsed.as_secs_f64().max(1e-9);
    if report.resumed_after_line > 0 {
        writeln!(
            out,
            "{}: lines 1-{} were imported before; resumed after them",
            file.display(),
            report.resumed_after_line
        )?;
    }
    writeln!(
        out,
        "{}: {} records from {} lines into {} window rows, {} malformed lines ({:.2} s, {:.0} records/s)",
        file.display(),
        report.records,
        report.lines,
        report.rows_written,
        report.errors,
        elapsed.as_secs_f64(),
        rate
    )?;
    Ok(())
}

/// Runs `augur export`.
pub fn run_export(args: &ExportArgs) -> anyhow::Result<()> {
    let store = open_existing(&args.store)?;
    let format = match args.format {
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Jsonl => ExportFormat::JsonLines,
    };
    let lines = if args.file.as_os_str() == "-" {
        let mut out = BufWriter::new(std::io::stdout().lock());
        export(&store, format, &mut out)?
    } else {
        let file = File::create(&args.file)
            .with_context(|| format!("cannot create {}", args.file.display()))?;
        let mut out = BufWriter::new(file);
        let lines = export(&store, format, &mut out)?;
        out.flush()?;
        eprintln!("{}: {lines} lines", args.file.display());
        lines
    };
    let _ = lines;
    Ok(())
}

fn open_existing(store: &StoreArg) -> anyhow::Result<Store> {
    let dir = store.path();
    if !dir.join(augur::store::DATABASE_FILE).exists() {
        bail!(
            "no history store in {} (import something first, or pass --store)",
            dir.display()
        );
    }
    Store::open(&dir, StoreSettings::default())
}

fn open_signatures(store: &StoreArg) -> anyhow::Result<SignatureStore> {
    drop(open_existing(store)?);
    SignatureStore::open_at_last_window(&store.path(), StoreSettings::default())
}

/// Runs `augur signatures`.
pub fn run_signatures(args: &SignaturesArgs) -> anyhow::Result<()> {
    let history = open_signatures(&args.store)?;
    let aggregator = history.aggregator();
    let mut signatures: Vec<Signature> = if let Some(pair) = &args.pair {
        let (a, b) = pair
            .split_once(',')
            .ok_or_else(|| anyhow!("--pair takes A,B"))?;
        let a: Endpoint = a.trim().parse().map_err(|e: String| anyhow!(e))?;
        let b: Endpoint = b.trim().parse().map_err(|e: String| anyhow!(e))?;
        match history.pair_signature(&a, &b) {
            Some(signature) => vec![signature],
            None => bail!("no traffic from {a} to {b} in the history"),
        }
    } else if let Some(label) = &args.label {
        aggregator
            .label_signatures()
            .filter(|s| s.src == *label || s.dst == *label)
            .collect()
    } else {
        aggregator.pair_signatures().collect()
    };
    if args.periodic {
        signatures.retain(|s| s.periodicity.is_some());
    }
    signatures.sort_by(|a, b| {
        b.volume
            .total_bytes
            .cmp(&a.volume.total_bytes)
            .then(b.active_windows.cmp(&a.active_windows))
            .then((&a.src, &a.dst).cmp(&(&b.src, &b.dst)))
    });
    if let Some(limit) = args.limit {
        signatures.truncate(limit);
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    for signature in &signatures {
        if args.json {
            serde_json::to_writer(&mut out, signature)?;
            writeln!(out)?;
        } else {
            write_signature(&mut out, signature)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write_signature(out: &mut dyn Write, s: &Signature) -> anyhow::Result<()> {
    writeln!(out, "{} -> {}", s.src, s.dst)?;
    writeln!(
        out,
        "  seen {} .. {}; active {} of {} windows ({:.1} %)",
        utc(s.first_seen),
        utc(s.last_seen),
        s.active_windows,
        s.windows_observed,
        s.active_window_ratio * 100.0
    )?;
    writeln!(
        out,
        "  bytes per active window: mean {:.0}, p95 {:.0}{}, max {} (total {})",
        s.volume.mean_bytes,
        s.volume.p95_bytes,
        if s.volume.p95_exact { "" } else { " (±1 %)" },
        s.volume.max_bytes,
        s.volume.total_bytes
    )?;
    for service in &s.services {
        write!(
            out,
            "  {}/{}: {} windows, {} connections, {} bytes",
            service.protocol,
            service.port,
            service.active_windows,
            service.connections,
            service.bytes
        )?;
        if service.denied > 0 {
            write!(out, ", {} denied", service.denied)?;
        }
        if let Some(p) = &service.periodicity {
            write!(out, "; every {:.1} s", p.period_s)?;
            if let Some(phase) = p.phase_s {
                write!(out, " at +{phase:.0} s")?;
            }
            write!(out, " (confidence {:.2}, {} runs)", p.confidence, p.cycles)?;
        }
        writeln!(out)?;
    }
    let busiest: Vec<String> = {
        let mut hours: Vec<(usize, u32)> = s
            .hour_of_day
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .collect();
        hours.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        hours
            .iter()
            .take(4)
            .map(|(h, n)| format!("{h:02}h ({n})"))
            .collect()
    };
    if !busiest.is_empty() {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let days: Vec<String> = DAYS
            .iter()
            .zip(s.day_of_week)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        writeln!(out, "  busiest hours UTC: {}", busiest.join(", "))?;
        writeln!(out, "  by weekday: {}", days.join(", "))?;
    }
    if s.denied.attempts > 0 {
        writeln!(
            out,
            "  denied: {} attempts; last 7 days {:?}, {:?}",
            s.denied.attempts, s.denied.last_7_days, s.denied.trend
        )?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` UTC, from Unix seconds (the number itself if it is
/// beyond the years jiff knows, ±9999).
fn utc(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map_or_else(
        |_| secs.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// Runs `augur top`.
pub fn run_top(args: &TopArgs) -> anyhow::Result<()> {
    let history = open_signatures(&args.store)?;
    let aggregator = history.aggregator();
    let pairs = aggregator.top_pairs(args.limit);
    let services = aggregator.top_services(args.limit);
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({ "pairs": pairs, "services": services }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(out, "busiest pairs")?;
        writeln!(
            out,
            "  {:>14} {:>10} {:>9} {:>8}  pair",
            "bytes", "conns", "windows", "denied"
        )?;
        for p in &pairs {
            writeln!(
                out,
                "  {:>14} {:>10} {:>9} {:>8}  {} -> {}",
                p.bytes, p.connections, p.active_windows, p.denied, p.src, p.dst
            )?;
        }
        writeln!(out, "busiest services")?;
        writeln!(
            out,
            "  {:>14} {:>10} {:>7} {:>8}  service",
            "bytes", "conns", "pairs", "denied"
        )?;
        for s in &services {
            writeln!(
                out,
                "  {:>14} {:>10} {:>7} {:>8}  {}/{}",
                s.bytes, s.connections, s.pairs, s.denied, s.protocol, s.port
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_704_067_200 + 7200 + 61), "2024-01-01 02:01:01");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(-1), "1969-12-31 23:59:59");
    }
}
