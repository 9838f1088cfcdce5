//! CSV import throughput on one core: records parsed, windowed and written
//! into a fresh SQLite store, end to end (what `augur import csv` does).
//!
//! `cargo bench -p augur --bench import`
//!
//! The input is 500,000 generated rows in the shared datasets' flat columns
//! (`ts,src,dst,proto,dport,bytes,label,source`), 2,000 hosts talking to
//! 500 servers on three services over 10,000 s: about 330,000 window rows.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;

use augur::import::flat::FlatReader;
use augur::import::{ImportOptions, PrefixHash, Source, import};
use augur::store::{Store, StoreSettings};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: u64 = 500_000;

fn flows() -> String {
    let mut text = String::with_capacity(ROWS as usize * 80);
    text.push_str("ts,src,dst,proto,dport,bytes,label,source\n");
    let mut state: u64 = 1;
    for i in 0..ROWS {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = state >> 33;
        writeln!(
            text,
            "{}.{:06},147.32.{}.{},10.0.{}.{},{},{},{},Background-TCP-Established,ctu13-s11",
            1_313_674_853 + i / 50,
            r % 1_000_000,
            r % 8,
            r % 250,
            r % 2,
            r % 250,
            ["tcp", "udp", "6"][(r % 3) as usize],
            [443, 53, 80][(r % 3) as usize],
            r % 20_000
        )
        .unwrap();
    }
    text
}

/// CPU time this thread has run, from the scheduler's own accounting
/// (`/proc/thread-self/schedstat`, nanoseconds): the machine is shared, and
/// "records per second on one core" means per second of CPU, not of waiting
/// for it.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn import_once(text: &str, batch_records: usize) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), StoreSettings::default()).unwrap();
    let options = ImportOptions {
        batch_records,
        ..ImportOptions::default()
    };
    let started = thread_cpu();
    let mut reader = FlatReader::new(text.as_bytes(), "bench.csv").unwrap();
    let source = Source {
        id: "bench.csv",
        name: "bench.csv",
        prefix: PrefixHash::none(),
    };
    let report = import(&mut store, &mut reader, source, &options).unwrap();
    let spent = thread_cpu().saturating_sub(started);
    assert_eq!(report.records, ROWS);
    spent
}

fn import_csv(c: &mut Criterion) {
    let text = flows();
    let mut group = c.benchmark_group("import_csv_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    for batch in [50_000, 250_000] {
        group.bench_function(format!("500k_rows_batch_{batch}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| import_once(&text, batch)).sum());
        });
    }
    group.finish();
}

criterion_group!(benches, import_csv);
criterion_main!(benches);
