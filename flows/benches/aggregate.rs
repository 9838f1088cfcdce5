//! The live state at scale: one million active flow keys.
//!
//! `cargo bench -p augur-flows --bench aggregate`
//!
//! - `ingest_1m_records`: one window's records, one per key, into the open
//!   window (records/s).
//! - `close_window_1m_keys`: closing that window: a row per key, folded
//!   into its key state and its pair and label-pair signatures.
//! - Before the timings, the memory of the live state with a million keys is
//!   printed twice: as counted from the allocations (`Aggregator::memory`)
//!   and as the growth of the process's resident set while building it.
//!
//! Times are CPU time of the benchmarking thread
//! (`/proc/thread-self/schedstat`), so that a busy shared machine does not
//! count against the code.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::time::Duration;

use augur_flows::{
    Aggregator, Endpoint, FlowKey, Observation, Protocol, Timestamp, Verdict, WindowConfig,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const KEYS: u32 = 1_000_000;
const T0: i64 = 1_704_067_200;

fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn resident_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A million keys: 10,000 VMs, each talking to 100 peers (VMs and external
/// addresses) on one of three services.
fn keys(agg: &mut Aggregator) -> Vec<FlowKey> {
    let vms: Vec<_> = (0..10_000)
        .map(|i| {
            let vm = Endpoint::vm(&format!("vm-{i}"));
            let tier = ["web", "app", "db", "batch"][i % 4];
            agg.endpoints_mut().set_labels(&vm, [("tier", tier)])
        })
        .collect();
    (0..KEYS)
        .map(|i| {
            let src = vms[(i % 10_000) as usize];
            let peer = i / 10_000;
            let dst = if peer % 2 == 0 {
                vms[((i + peer * 7) % 10_000) as usize]
            } else {
                agg.endpoints_mut()
                    .intern(&Endpoint::External(Ipv4Addr::from(0x0a00_0000 + i).into()))
            };
            FlowKey {
                src,
                dst,
                protocol: Protocol::TCP,
                service_port: [443, 5432, 8080][(i % 3) as usize],
            }
        })
        .collect()
}

fn fill_window(agg: &mut Aggregator, keys: &[FlowKey], window: i64) {
    for (i, &key) in keys.iter().enumerate() {
        agg.add(
            key,
            &Observation {
                ts: Timestamp::from_secs(T0 + window * 60 + (i % 60) as i64),
                bytes: 1000 + (i % 5000) as u64,
                packets: 10,
                connections: u32::from(i % 4 == 0),
                verdict: Verdict::Allowed,
            },
        );
    }
}

fn report_memory() {
    let before = resident_bytes();
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    let keys = keys(&mut agg);
    fill_window(&mut agg, &keys, 0);
    agg.close_window(T0 + 60);
    fill_window(&mut agg, &keys, 1);
    let grown = resident_bytes().saturating_sub(before);
    drop(keys);
    let memory = agg.memory();
    println!(
        "memory with {} keys: {:.0} B per key of key state (index, state, open-window slot); \
         signatures {} B for {} pair and label-pair signatures ({:.0} B each); \
         endpoints {} B; resident set grew {:.0} B per key in all",
        memory.keys,
        memory.bytes_per_key(),
        memory.signature_bytes,
        memory.signatures,
        memory.signature_bytes as f64 / memory.signatures.max(1) as f64,
        memory.endpoint_bytes,
        grown as f64 / f64::from(KEYS),
    );
}

fn aggregate(c: &mut Criterion) {
    report_memory();
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    let keys = keys(&mut agg);
    let mut window = 0i64;
    let mut group = c.benchmark_group("live_1m_keys_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(KEYS)));
    group.bench_function("ingest_1m_records", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let started = thread_cpu();
                fill_window(&mut agg, &keys, window);
                spent += thread_cpu().saturating_sub(started);
                window += 1;
                agg.close_window(T0 + window * 60);
            }
            spent
        });
    });
    group.bench_function("close_window_1m_keys", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                fill_window(&mut agg, &keys, window);
                window += 1;
                let started = thread_cpu();
                agg.close_window(T0 + window * 60);
                spent += thread_cpu().saturating_sub(started);
            }
            spent
        });
    });
    group.finish();
}

criterion_group!(benches, aggregate);
criterion_main!(benches);
