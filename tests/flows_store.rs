//! The history store: signatures survive restarts, a crash loses at most
//! what was not committed, retention rolls old windows up without losing
//! totals, and the disk use per tracked key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use augur::import::{Format, ImportOptions, import_file};
use augur::store::{SignatureStore, Store, StoreSettings};
use augur_flows::{Endpoint, Endpoints, FlowRecord, Timestamp};

/// 2024-01-01 00:00:00 UTC.
const T0: i64 = 1_704_067_200;

fn record(ts: i64, src: &str, dst: &str, port: u16, bytes: u64) -> FlowRecord {
    let (src, dst) = (Endpoint::vm(src), Endpoint::vm(dst));
    FlowRecord::tcp_connection(Timestamp::from_secs(ts), src, dst, port, bytes, 1)
}

/// Sum of connections and bytes over every stored row.
fn totals(store: &Store) -> (u64, u64, usize) {
    let mut endpoints = Endpoints::new();
    let (mut conns, mut bytes, mut rows_seen) = (0, 0, 0);
    store
        .rows(&mut endpoints, |_, rows| {
            for row in rows {
                conns += u64::from(row.connections);
                bytes += row.bytes;
                rows_seen += 1;
            }
        })
        .unwrap();
    (conns, bytes, rows_seen)
}

#[test]
fn signatures_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::default();
    let live = {
        let mut history = SignatureStore::open(dir.path(), settings, T0).unwrap();
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("tier".to_owned(), "web".to_owned());
        history.set_labels(&Endpoint::vm("web"), &labels).unwrap();
        for k in 0..40 {
            // The observer's poll: records of one window, then the timer.
            history
                .ingest(&[record(T0 + k * 300 + 7, "web", "db", 5432, 1000 + k as u64)])
                .unwrap();
            history.close_window(T0 + k * 300 + 60).unwrap();
        }
        history
            .pair_signature(&Endpoint::vm("web"), &Endpoint::vm("db"))
            .unwrap()
    };
    assert!((live.periodicity.unwrap().period_s - 300.0).abs() < 0.5);
    let reopened = SignatureStore::open(dir.path(), settings, T0 + 39 * 300 + 60).unwrap();
    let rebuilt = reopened
        .pair_signature(&Endpoint::vm("web"), &Endpoint::vm("db"))
        .unwrap();
    assert_eq!(rebuilt, live);
    assert!(
        reopened
            .aggregator()
            .label_signature("tier=web", "@external")
            .is_none()
    );
}

#[test]
fn dropping_without_closing_loses_only_the_open_window() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::default();
    {
        let mut history = SignatureStore::open(dir.path(), settings, T0).unwrap();
        history.ingest(&[record(T0 + 1, "a", "b", 80, 10)]).unwrap();
        history
            .ingest(&[record(T0 + 61, "a", "b", 80, 20)])
            .unwrap();
        history.close_window(T0 + 120).unwrap();
        // The open window: never closed, as if augur died here.
        history
            .ingest(&[record(T0 + 130, "a", "b", 80, 40)])
            .unwrap();
    }
    let store = Store::open(dir.path(), settings).unwrap();
    assert_eq!(totals(&store), (2, 30, 2));
}

/// Writes `lines` flat records to `path`.
fn write_flows(path: &Path, lines: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "ts,src,dst,proto,dport,bytes").unwrap();
    for i in 0..lines {
        writeln!(
            out,
            "{}.{:06},10.{}.{}.{},10.9.0.{},tcp,{},{}",
            T0 + (i / 50) as i64,
            i % 1_000_000,
            i % 7,
            i % 13,
            i % 251,
            i % 17,
            [22, 443, 5432][(i % 3) as usize],
            i % 1500
        )
        .unwrap();
    }
}

/// The records an import of `source` has committed, read without taking
/// any lock the importer could hold.
fn committed_records(database: &Path, source: &str) -> Option<u64> {
    let conn = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    let records: i64 = conn
        .query_row(
            "SELECT records FROM imports WHERE source = ?1",
            [source],
            |r| r.get(0),
        )
        .ok()?;
    u64::try_from(records).ok()
}

#[test]
fn a_killed_import_keeps_its_committed_batches_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows.csv");
    let total: u64 = 300_000;
    write_flows(&flows, total);
    let store_dir = dir.path().join("store");
    let source = std::fs::canonicalize(&flows).unwrap().display().to_string();

    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["import", "csv"])
        .arg(&flows)
        .arg("--store")
        .arg(&store_dir)
        .args(["--batch", "5000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few batches are committed: a crash mid-import. The
    // progress is read through a read-only connection: in WAL mode a
    // reader never waits for the importer's write transactions, so a busy
    // machine cannot make the poll miss the import's whole run.
    let database = store_dir.join(augur::store::DATABASE_FILE);
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        assert!(Instant::now() < deadline, "import made no progress");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before 20,000 committed records were seen");
        }
        std::thread::sleep(Duration::from_millis(20));
        match committed_records(&database, &source) {
            Some(records) if records >= 20_000 => {
                child.kill().unwrap();
                break records;
            }
            _ => {}
        }
    };
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before it was killed"
    );

    // What is on disk is exactly the committed batches: no partial batch,
    // nothing lost that the progress claims.
    let store = Store::open(&store_dir, StoreSettings::default()).unwrap();
    let progress = store.import_progress(&source).unwrap().unwrap();
    assert!(progress.records >= killed_at && progress.records < total);
    assert_eq!(progress.records % 5000, 0);
    assert_eq!(totals(&store).0, progress.records);
    drop(store);

    // Running the import again finishes it, counting nothing twice.
    let mut store = Store::open(&store_dir, StoreSettings::default()).unwrap();
    let report = import_file(&mut store, Format::Flat, &flows, &ImportOptions::default()).unwrap();
    assert_eq!(report.resumed_after_line, progress.lines);
    assert_eq!(report.records, total - progress.records);
    let resumed = totals(&store);

    let reference_dir = dir.path().join("reference");
    let mut reference = Store::open(&reference_dir, StoreSettings::default()).unwrap();
    import_file(
        &mut reference,
        Format::Flat,
        &flows,
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(resumed, totals(&reference));
    assert_eq!(resumed.0, total);
}

#[test]
fn retention_rolls_old_windows_up_and_keeps_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::default();
    let days = 40;
    let end = T0 + days * 86_400;
    let before = {
        let mut history = SignatureStore::open(dir.path(), settings, T0).unwrap();
        // Every 20 minutes for 40 days, plus a daily job at 03:00.
        let mut records = Vec::new();
        for k in 0..days * 72 {
            records.push(record(T0 + k * 1200 + 5, "app", "cache", 6379, 300));
        }
        for d in 0..days {
            records.push(record(
                T0 + d * 86_400 + 3 * 3600 + 30,
                "app",
                "backup",
                22,
                5000,
            ));
        }
        records.sort_by_key(|r| r.ts);
        for r in &records {
            history.ingest(std::slice::from_ref(r)).unwrap();
        }
        history.close_window(end).unwrap();
        let (windows, rollups) = history.store().row_counts().unwrap();
        assert_eq!((windows, rollups), (days as u64 * 73, 0));
        let report = history.apply_retention(end).unwrap();
        assert_eq!(report.windows_rolled_up, 5 * 73);
        history
            .pair_signature(&Endpoint::vm("app"), &Endpoint::vm("cache"))
            .unwrap()
    };
    let store = Store::open(dir.path(), settings).unwrap();
    assert_eq!(store.row_counts().unwrap(), (35 * 73, 5 * 25));
    drop(store);
    let after = SignatureStore::open(dir.path(), settings, end).unwrap();
    let rebuilt = after
        .pair_signature(&Endpoint::vm("app"), &Endpoint::vm("cache"))
        .unwrap();
    assert_eq!(rebuilt.volume.total_bytes, before.volume.total_bytes);
    assert_eq!(rebuilt.active_windows, before.active_windows);
    assert_eq!(
        rebuilt.services[0].connections,
        before.services[0].connections
    );
    assert_eq!(rebuilt.hour_of_day, before.hour_of_day);
    let backup = after
        .pair_signature(&Endpoint::vm("app"), &Endpoint::vm("backup"))
        .unwrap();
    let daily = backup.periodicity.unwrap();
    assert!((daily.period_s - 86_400.0).abs() < 60.0, "{daily:?}");
    assert!((daily.phase_s.unwrap() - (3 * 3600 + 30) as f64).abs() < 60.0);
}

/// Disk use per tracked key: the database size after storing keys with one
/// window each and with many, so the per-row and per-key parts separate.
#[test]
fn disk_use_per_tracked_key() {
    let keys = 5_000u32;
    let measure = |windows: i64| -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut history = SignatureStore::open(dir.path(), StoreSettings::default(), T0).unwrap();
        for w in 0..windows {
            let records: Vec<FlowRecord> = (0..keys)
                .map(|i| FlowRecord {
                    dst: Endpoint::External(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()),
                    ..record(T0 + w * 60 + 1, "vm-1", "x", 443, 1_234_567)
                })
                .collect();
            history.ingest(&records).unwrap();
            history.close_window(T0 + (w + 1) * 60).unwrap();
        }
        history.store().checkpoint().unwrap();
        history.store().database_bytes().unwrap()
    };
    let one = measure(1);
    let many = measure(21);
    let per_row = (many - one) as f64 / (20.0 * f64::from(keys));
    let per_key = one as f64 / f64::from(keys) - per_row;
    println!(
        "disk: {per_row:.1} B per stored window row, {per_key:.1} B per key (endpoint and key tables)"
    );
    assert!(per_row < 80.0, "{per_row}");
    assert!(per_key < 200.0, "{per_key}");
}

/// One daemon run from `from` to `until`: app-1 calls db-1 every minute.
fn run(dir: &Path, from: i64, until: i64) {
    let mut history = SignatureStore::open(dir, StoreSettings::default(), from).unwrap();
    for t in (from..until).step_by(60) {
        history
            .ingest(&[record(t, "app-1", "db-1", 5432, 2_000)])
            .unwrap();
        history.close_window(t + 60).unwrap();
    }
}

#[test]
fn time_nobody_watched_is_not_learned_from() {
    use augur::predict::{PredictorParams, ScanParams};
    use augur::store::learn::learn_history;
    let dir = tempfile::tempdir().unwrap();
    // Six hours, a restart, six hours, a day down, six hours.
    run(dir.path(), T0, T0 + 6 * 3600);
    run(dir.path(), T0 + 6 * 3600 + 30, T0 + 12 * 3600);
    run(dir.path(), T0 + 36 * 3600, T0 + 42 * 3600);
    // This run starts an hour after the last.
    let store = SignatureStore::open(dir.path(), StoreSettings::default(), T0 + 43 * 3600).unwrap();
    assert_eq!(
        store.store().unobserved(120).unwrap(),
        [
            (T0 + 12 * 3600 + 30, T0 + 36 * 3600),
            (T0 + 42 * 3600, T0 + 43 * 3600)
        ],
        "a restart of 30 s is not a gap"
    );
    let params = PredictorParams::default().check().unwrap();
    let learned = learn_history(store.store(), params, ScanParams::default(), 300).unwrap();
    assert_eq!(learned.unobserved.len(), 2);
    // Cycles every 5 min over the 18 watched hours, none in the day down
    // (but the one before the watching resumed).
    assert!(
        (18 * 12..=18 * 12 + 2).contains(&learned.cycles),
        "{} cycles",
        learned.cycles
    );
}

#[test]
fn time_with_every_switch_disconnected_is_not_watched() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = SignatureStore::open(dir.path(), StoreSettings::default(), T0).unwrap();
    // An hour watched, two hours with no switch, an hour watched again; a
    // switch missing at one window close only is no gap.
    for w in 1..=240 {
        let t = T0 + w * 60;
        let connected = !(60..180).contains(&w) && w != 200;
        history.set_watching(connected, t).unwrap();
        history.close_window(t).unwrap();
    }
    assert_eq!(
        history.store().unobserved(120).unwrap(),
        [(T0 + 59 * 60, T0 + 180 * 60)]
    );
    // A store opened for reports records no watched time.
    drop(history);
    let mut report =
        SignatureStore::open_at_last_window(dir.path(), StoreSettings::default()).unwrap();
    report.set_watching(true, T0 + 300 * 60).unwrap();
    report.close_window(T0 + 400 * 60).unwrap();
    assert_eq!(
        report.store().unobserved(120).unwrap(),
        [(T0 + 59 * 60, T0 + 180 * 60)]
    );
}
