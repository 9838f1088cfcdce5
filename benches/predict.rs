//! One prediction cycle over a million candidate keys, on one core: the
//! candidate search, feature encoding and the trained model's calibrated
//! probabilities (what every cycle of the daemon and of replay does).
//!
//! `cargo bench -p augur --bench predict`
//!
//! The history: 1,000 VMs in 10 labelled tiers, each talking to 1,000
//! destinations on one service: 1,000,000 tracked keys of varied recency,
//! frequency and denied attempts.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use augur::predict::{FEATURES, Predictor, PredictorParams, ScanDetector, ScanParams};
use augur_flows::{Aggregator, Endpoint, FlowRecord, Protocol, Timestamp, Verdict, WindowConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const VMS: u32 = 1_000;
const NOW: i64 = 1_700_000_000;

fn history() -> Aggregator {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    for n in 0..VMS {
        let tier = format!("t{}", n % 10);
        agg.endpoints_mut()
            .set_labels(&Endpoint::vm(&format!("vm-{n}")), [("tier", tier.as_str())]);
    }
    let names: Vec<Endpoint> = (0..VMS).map(|n| Endpoint::vm(&format!("vm-{n}"))).collect();
    let mut state: u64 = 7;
    let mut batch = Vec::with_capacity(100_000);
    // Keys in time order, over the last 30 days.
    for i in 0..u64::from(VMS) * u64::from(VMS) {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = state >> 33;
        let (src, dst) = ((i / u64::from(VMS)) as usize, (i % u64::from(VMS)) as usize);
        batch.push(FlowRecord {
            ts: Timestamp::from_secs(NOW - 30 * 86_400 + (i * 30 * 86_400 / 1_000_000) as i64),
            src: names[src].clone(),
            dst: names[dst].clone(),
            src_port: 40_000,
            dst_port: 8_000 + (r % 4) as u16,
            protocol: Protocol::TCP,
            bytes: 500 + r % 100_000,
            packets: 5 + r % 100,
            connections: 1 + (r % 7) as u32,
            verdict: if r % 13 == 0 {
                Verdict::Denied
            } else {
                Verdict::Allowed
            },
            bridge: None,
        });
        if batch.len() == batch.capacity() {
            agg.ingest(&batch);
            batch.clear();
        }
    }
    agg.ingest(&batch);
    agg.close_window(NOW);
    agg
}

fn trained(params: PredictorParams) -> Predictor {
    let mut predictor = Predictor::new(params.check().unwrap());
    // A model trained on rows of both outcomes: recent, frequent keys used.
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for i in 0..20_000u32 {
        let mut row = [0.0; FEATURES];
        let recent = i % 3 == 0;
        row[0] = if recent { 1.0 } else { 8.0 } + f64::from(i % 7) / 7.0;
        row[1] = f64::from(i % 11);
        row[2] = f64::from(i % 5) / 5.0;
        outcomes.push(recent);
        rows.push(row);
    }
    let raw = vec![0.5; rows.len()];
    predictor.model_mut().learn(&rows, &outcomes, &raw);
    predictor
}

fn bench(c: &mut Criterion) {
    let agg = history();
    let scans = ScanDetector::new(ScanParams::default());
    let predictor = trained(PredictorParams::default());
    let keys = agg.tracked_keys();
    let set = predictor.predict(&agg, &scans, NOW);
    assert!(set.trained);
    println!(
        "{keys} tracked keys, {} candidates per cycle",
        set.predictions.len()
    );
    let mut group = c.benchmark_group("predict");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(set.predictions.len() as u64));
    group.bench_function("cycle over 1M candidate keys", |b| {
        b.iter(|| predictor.predict(&agg, &scans, NOW).predictions.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
