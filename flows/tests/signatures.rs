//! Signatures of synthetic series whose shape is known.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augur_flows::{
    Aggregator, Endpoint, FlowRecord, Protocol, Side, Signature, Timestamp, Trend, Verdict,
    WindowBatch, WindowConfig, guess_initiator,
};

/// 2024-01-01 00:00:00 UTC, a Monday.
const MONDAY: i64 = 1_704_067_200;

fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    ((*state >> 33) as f64) / f64::from(1u32 << 31)
}

fn record(ts: i64, src: &str, dst: &str, dport: u16, bytes: u64) -> FlowRecord {
    let (src, dst) = (Endpoint::vm(src), Endpoint::vm(dst));
    let packets = bytes.div_ceil(1000);
    FlowRecord::tcp_connection(Timestamp::from_secs(ts), src, dst, dport, bytes, packets)
}

fn aggregator() -> Aggregator {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    agg
}

fn pair(agg: &Aggregator, src: &str, dst: &str) -> Signature {
    let endpoints = agg.endpoints();
    let src = endpoints.get(&Endpoint::vm(src)).unwrap();
    let dst = endpoints.get(&Endpoint::vm(dst)).unwrap();
    agg.pair_signature(src, dst).unwrap()
}

#[test]
fn a_300_s_job_is_found_within_5_percent() {
    let mut agg = aggregator();
    let mut rng = 3;
    let mut records = Vec::new();
    let mut t = MONDAY;
    let mut dns_t = MONDAY;
    for k in 0..200 {
        // ±20 s of jitter and one run in nine skipped.
        let jitter = ((lcg(&mut rng) - 0.5) * 40.0) as i64;
        if k % 9 != 4 {
            records.push(record(t + jitter, "backup", "store", 873, 50_000));
        }
        t += 300;
        // Unrelated chatter of the same VM, at random times, neither
        // disturbs it nor looks periodic itself.
        while dns_t < t {
            dns_t += 60 + (lcg(&mut rng) * 1500.0) as i64;
            records.push(record(dns_t, "backup", "dns", 53, 90));
        }
    }
    records.sort_by_key(|r| r.ts);
    agg.ingest(&records);
    agg.close_window(dns_t + 600);
    let sig = pair(&agg, "backup", "store");
    let period = sig.periodicity.expect("periodic").period_s;
    assert!(
        (period - 300.0).abs() / 300.0 < 0.05,
        "period {period} not within 5 % of 300 s"
    );
    assert!((period - 300.0).abs() < 3.0, "period {period}");
    let service = &sig.services[0];
    assert_eq!((service.protocol, service.port), (Protocol::TCP, 873));
    assert!(pair(&agg, "backup", "dns").periodicity.is_none());
}

#[test]
fn a_daily_0200_job_has_its_phase() {
    let mut agg = aggregator();
    let mut rng = 5;
    for day in 0..14 {
        // Starts 0–50 s late, so the burst stays within 02:00's window.
        let jitter = (lcg(&mut rng) * 50.0) as i64;
        let start = MONDAY + day * 86_400 + 2 * 3600 + jitter;
        // A burst of three connections per run: one onset.
        for c in 0..3 {
            agg.ingest(&[record(start + c * 4, "db", "backup", 22, 10_000_000)]);
        }
        // Daytime traffic of another service of the same pair, every hour.
        for hour in 9..17 {
            agg.ingest(&[record(
                MONDAY + day * 86_400 + hour * 3600 + 600,
                "db",
                "backup",
                9100,
                400,
            )]);
        }
    }
    agg.close_window(MONDAY + 14 * 86_400);
    let sig = pair(&agg, "db", "backup");
    let ssh = sig.services.iter().find(|s| s.port == 22).unwrap();
    let fit = ssh.periodicity.expect("daily job found");
    assert!((fit.period_s - 86_400.0).abs() < 864.0, "{fit:?}");
    let phase = fit.phase_s.unwrap();
    assert!(
        (phase - 7200.0).abs() < 120.0,
        "phase {phase} s is not 02:00 UTC"
    );
    let next = fit.next_expected_s.unwrap();
    assert!((next - (MONDAY + 14 * 86_400 + 7200) as f64).abs() < 300.0);
    assert_eq!(ssh.connections, 42);
    // The hour profile has the backup at 02:00 and the daytime service.
    assert_eq!(sig.hour_of_day[2], 14);
    assert_eq!(sig.hour_of_day[9], 14);
    assert_eq!(sig.hour_of_day[3], 0);
    assert_eq!(sig.day_of_week, [18, 18, 18, 18, 18, 18, 18]);
}

#[test]
fn volume_quantiles_are_exact_on_known_data() {
    let mut agg = aggregator();
    // Twenty active windows carrying 100, 200, ..., 2000 bytes, shuffled,
    // each split over two services of the pair so the pair sums them.
    let order = [
        7, 3, 19, 1, 12, 5, 16, 9, 0, 14, 2, 18, 11, 6, 15, 4, 10, 17, 8, 13,
    ];
    for (window, &k) in order.iter().enumerate() {
        let ts = MONDAY + window as i64 * 120;
        let bytes = (k + 1) * 100;
        agg.ingest(&[record(ts, "a", "b", 80, bytes - 30)]);
        agg.ingest(&[record(ts + 5, "a", "b", 443, 30)]);
    }
    agg.close_window(MONDAY + 20 * 120);
    let sig = pair(&agg, "a", "b");
    assert_eq!(sig.volume.windows, 20);
    assert_eq!(sig.volume.total_bytes, 21_000);
    assert_eq!(sig.volume.mean_bytes, 1050.0);
    // Nearest rank: ⌈0.95 × 20⌉ = 19th of 100..2000 → 1900.
    assert_eq!(sig.volume.p95_bytes, 1900.0);
    assert_eq!(sig.volume.max_bytes, 2000);
    assert!(sig.volume.p95_exact);
    // Active every other window: 20 of the 40 windows since the first.
    assert_eq!(sig.active_windows, 20);
    assert_eq!(sig.windows_observed, 40);
    assert_eq!(sig.active_window_ratio, 0.5);
}

#[test]
fn replies_do_not_create_services() {
    let mut agg = aggregator();
    let request = record(MONDAY, "web", "db", 5432, 300);
    let mut reply = record(MONDAY + 1, "db", "web", 51_514, 9000);
    reply.src_port = 5432;
    reply.connections = 0;
    // Conntrack says web opened it: the reply is counted under web → db/5432.
    agg.ingest(&[request, reply.clone().oriented(Side::Dst)]);
    // A log without direction: the ports say who the client was.
    let mut unoriented = reply;
    unoriented.ts = Timestamp::from_secs(MONDAY + 2);
    let initiator = guess_initiator(
        unoriented.protocol,
        unoriented.src_port,
        unoriented.dst_port,
    )
    .unwrap();
    assert_eq!(initiator, Side::Dst);
    agg.ingest(&[unoriented.oriented(initiator)]);
    agg.close_window(MONDAY + 120);

    let sig = pair(&agg, "web", "db");
    assert_eq!(sig.services.len(), 1);
    assert_eq!(sig.services[0].port, 5432);
    assert_eq!(sig.services[0].bytes, 18_300);
    assert_eq!(sig.services[0].connections, 1);
    let db = agg.endpoints().get(&Endpoint::vm("db")).unwrap();
    let web = agg.endpoints().get(&Endpoint::vm("web")).unwrap();
    assert!(agg.pair_signature(db, web).is_none(), "no db → web pair");
    assert!(
        agg.top_services(10).iter().all(|s| s.port == 5432),
        "{:?}",
        agg.top_services(10)
    );
}

#[test]
fn denied_attempts_and_their_trend() {
    let mut agg = aggregator();
    // Attempts growing day by day: 1, 2, ..., 7 per day, then a quiet day.
    for day in 0..7i64 {
        for n in 0..=day {
            let mut r = record(MONDAY + day * 86_400 + n * 600, "web", "db", 22, 0);
            r.verdict = Verdict::Denied;
            agg.ingest(&[r]);
        }
    }
    agg.close_window(MONDAY + 7 * 86_400 + 3600);
    let sig = pair(&agg, "web", "db");
    assert_eq!(sig.denied.attempts, 28);
    assert_eq!(sig.denied.last_7_days, [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(sig.denied.trend, Trend::Rising);
    assert_eq!(sig.active_windows, 0, "denied attempts are not activity");
    assert_eq!(sig.services[0].denied, 28);
    assert_eq!(sig.services[0].active_windows, 0);
}

#[test]
fn a_denied_daily_job_keeps_its_period() {
    // The policy denies a nightly backup; it still runs every night at
    // 02:00, and that recurrence is what an opening before the next run
    // rests on.
    let mut agg = aggregator();
    let mut rng = 7;
    for day in 0..10 {
        let start = MONDAY + day * 86_400 + 2 * 3600 + (lcg(&mut rng) * 50.0) as i64;
        for c in 0..3 {
            let mut r = record(start + c * 5, "db", "backup", 22, 0);
            r.verdict = Verdict::Denied;
            agg.ingest(&[r]);
        }
    }
    agg.close_window(MONDAY + 10 * 86_400);
    let sig = pair(&agg, "db", "backup");
    let ssh = &sig.services[0];
    assert_eq!((ssh.denied, ssh.active_windows), (30, 0));
    let fit = ssh.periodicity.expect("the denied job's period");
    assert!((fit.period_s - 86_400.0).abs() < 864.0, "{fit:?}");
    let next = fit.next_expected_s.expect("a next run");
    assert!(
        (next - (MONDAY + 10 * 86_400 + 7200) as f64).abs() < 300.0,
        "{next}"
    );
    let key = agg.key_activity().next().expect("one key");
    assert_eq!(key.onsets, 10, "one onset per night, not per attempt");
}

#[test]
fn label_pairs_sum_their_members() {
    let mut agg = aggregator();
    for (vm, tier) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db")] {
        agg.endpoints_mut()
            .set_labels(&Endpoint::vm(vm), [("tier", tier)]);
    }
    for k in 0..30 {
        // Each web VM polls the database every 600 s, at its own phase.
        agg.ingest(&[record(MONDAY + k * 600, "web-1", "db-1", 5432, 1000)]);
        agg.ingest(&[record(MONDAY + k * 600 + 250, "web-2", "db-1", 5432, 3000)]);
    }
    let mut out = record(MONDAY + 30 * 600, "web-1", "db-1", 443, 10);
    out.dst = Endpoint::External("192.0.2.7".parse().unwrap());
    agg.ingest(&[out]);
    agg.close_window(MONDAY + 31 * 600);

    let sig = agg.label_signature("tier=web", "tier=db").unwrap();
    assert_eq!(sig.volume.total_bytes, 30 * 4000);
    assert_eq!(sig.active_windows, 60);
    let service = &sig.services[0];
    assert_eq!(service.port, 5432);
    let period = service.periodicity.unwrap();
    assert!((period.period_s - 600.0).abs() < 1.0, "{period:?}");
    assert_eq!(period.phase_s, None);
    assert_eq!(period.cycles, 2);
    let external = agg.label_signature("tier=web", "@external").unwrap();
    assert_eq!(external.volume.total_bytes, 10);
}

#[test]
fn late_records_land_in_the_open_window() {
    let mut agg = aggregator();
    agg.ingest(&[record(MONDAY + 10, "a", "b", 80, 1)]);
    agg.close_window(MONDAY + 60);
    agg.ingest(&[record(MONDAY + 70, "a", "b", 80, 2)]);
    agg.ingest(&[record(MONDAY + 20, "a", "b", 80, 4)]);
    assert_eq!(agg.late_records(), 1);
    agg.close_window(MONDAY + 120);
    let sig = pair(&agg, "a", "b");
    assert_eq!(sig.volume.total_bytes, 7);
    assert_eq!(sig.active_windows, 2);
}

#[test]
fn rebuilding_from_rows_gives_the_same_signatures() {
    let mut live = Aggregator::new(WindowConfig::default());
    let mut batch = WindowBatch::new(WindowConfig::default());
    let mut rng = 9;
    let mut records = Vec::new();
    for k in 0..500 {
        let t = MONDAY + k * 97 + (lcg(&mut rng) * 50.0) as i64;
        let dport = [80, 443, 5432][(k % 3) as usize];
        records.push(record(t, "x", "y", dport, 100 + k as u64));
    }
    let mut rows = Vec::new();
    for r in &records {
        live.ingest(std::slice::from_ref(r));
        rows.extend(live.take_closed());
    }
    live.close_window(MONDAY + 500 * 97 + 3600);
    rows.extend(live.take_closed());

    let mut rebuilt = Aggregator::new(WindowConfig::default());
    // Keys in the same interning order as the live aggregator.
    for r in &records {
        let key = rebuilt.key_of(r);
        batch.add(
            key,
            &augur_flows::Observation {
                ts: r.ts,
                bytes: r.bytes,
                packets: r.packets,
                connections: r.connections,
                verdict: r.verdict,
            },
        );
    }
    let batch_rows = batch.drain();
    assert_eq!(batch_rows, rows, "live windows equal batch windows");
    rebuilt.apply_rows(&rows);
    rebuilt.advance_clock(MONDAY + 500 * 97 + 3600);
    assert_eq!(pair(&rebuilt, "x", "y"), pair(&live, "x", "y"));
}

#[test]
fn live_state_is_within_256_bytes_per_key() {
    let mut agg = aggregator();
    let n = 120_000u32;
    for i in 0..n {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        agg.ingest(&[FlowRecord {
            dst: Endpoint::External(ip.into()),
            ..record(MONDAY + 1, "a", "b", 443, 100)
        }]);
    }
    let memory = agg.memory();
    assert_eq!(memory.keys, n as usize);
    let per_key = memory.bytes_per_key();
    assert!(per_key <= 256.0, "{per_key} bytes per key: {memory:?}");
    println!(
        "key state {} B, {per_key:.0} B per key with its index and open-window slot",
        Aggregator::key_state_size()
    );
}
