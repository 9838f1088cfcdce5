//! The predictor on synthetic histories of known shape, in simulated time.

use augur_flows::{
    Aggregator, Endpoint, FlowKey, FlowRecord, Protocol, Timestamp, Verdict, WindowConfig,
};

use super::*;

const DAY: i64 = 86_400;
const START: i64 = 1_700_006_400; // a Wednesday, 00:00 UTC

/// An allowed TCP connection of 2 kB between two VMs.
fn record(ts: i64, src: &str, dst: &str, port: u16) -> FlowRecord {
    let (src, dst) = (Endpoint::vm(src), Endpoint::vm(dst));
    FlowRecord::tcp_connection(Timestamp::from_secs(ts), src, dst, port, 2_000, 10)
}

/// web VMs call the app tier every few minutes in office hours, the app
/// calls the database all day, every VM runs a backup at 02:00, and an
/// operator's one-off ssh happens once.
fn traffic(t: i64, vms: &[&str]) -> Vec<FlowRecord> {
    let mut out = Vec::new();
    let hour = t.rem_euclid(DAY) / 3600;
    for web in vms.iter().filter(|v| v.starts_with("web")) {
        if (8..18).contains(&hour) && t % 300 == 0 {
            out.push(record(t, web, "app-1", 8080));
        }
    }
    if t % 120 == 0 {
        out.push(record(t, "app-1", "db-1", 5432));
    }
    if t.rem_euclid(DAY) == 2 * 3600 {
        for vm in vms {
            out.push(record(t, vm, "backup-1", 873));
        }
    }
    if t == START + DAY + 3 * 3600 {
        out.push(record(t, "jump-1", "db-1", 22));
    }
    out
}

fn labelled(agg: &mut Aggregator, vm: &str, tier: &str) {
    agg.endpoints_mut()
        .set_labels(&Endpoint::vm(vm), [("tier", tier)]);
}

#[test]
fn learns_a_history_and_ranks_what_comes_next() {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    for (vm, tier) in [
        ("web-1", "web"),
        ("web-2", "web"),
        ("web-3", "web"),
        ("app-1", "app"),
        ("db-1", "db"),
        ("backup-1", "backup"),
        ("jump-1", "admin"),
    ] {
        labelled(&mut agg, vm, tier);
    }
    let scans = ScanDetector::new(ScanParams::default());
    let params = PredictorParams::default().check().unwrap();
    let mut predictor = Predictor::new(params);
    let mut vms = vec!["web-1", "web-2", "app-1", "db-1"];
    let mut last = PredictionSet::default();
    for t in (START..START + 6 * DAY).step_by(60) {
        if t == START + 4 * DAY {
            vms.push("web-3");
        }
        agg.ingest(&traffic(t, &vms));
        agg.close_window(t);
        if t % 300 == 0 {
            if t == START + 3 * DAY {
                predictor.reset_quality();
            }
            last = predictor.cycle(&agg, &scans, t);
        }
    }
    assert!(last.trained);
    let quality = predictor.quality();
    assert!(quality.examples > 1_000, "{quality:?}");
    assert!(quality.roc_auc > 0.9, "{quality:?}");
    assert!(quality.brier < quality.brier_base_rate, "{quality:?}");
    // Per kind of key: the kinds partition the predictions.
    assert!(!quality.by_kind.is_empty());
    assert_eq!(
        quality.by_kind.iter().map(|k| k.examples).sum::<u64>(),
        quality.examples
    );
    assert_eq!(
        quality.by_kind.iter().map(|k| k.positives).sum::<u64>(),
        quality.positives
    );

    let id = |name: &str| agg.endpoints().get(&Endpoint::vm(name)).unwrap();
    let find = |set: &PredictionSet, src: &str, dst: &str, port: u16| {
        let key = FlowKey {
            src: id(src),
            dst: id(dst),
            protocol: Protocol::TCP,
            service_port: port,
        };
        set.predictions.iter().find(|p| p.key == key).copied()
    };
    // At the end of day 6 (23:55): the database link is busy all the time.
    let db = find(&last, "app-1", "db-1", 5432).unwrap();
    assert!(db.probability > 0.8, "{db:?}");
    // The one-off ssh of day 2 is far less likely.
    let ssh = find(&last, "jump-1", "db-1", 22).unwrap();
    assert!(ssh.probability < db.probability / 2.0, "{ssh:?}");
    // The backup runs daily at 02:00: its recurrence is known.
    let backup = find(&last, "web-1", "backup-1", 873).unwrap();
    assert_eq!(backup.evidence.source, CandidateSource::Seen);

    // Just before 02:00 the backup is due; at noon it is not.
    let before = predictor.predict(&agg, &scans, START + 6 * DAY + 3600 + 1800);
    let noon = predictor.predict(&agg, &scans, START + 6 * DAY + 12 * 3600);
    let due = find(&before, "web-1", "backup-1", 873).unwrap();
    let not_due = find(&noon, "web-1", "backup-1", 873).unwrap();
    assert!(
        due.probability > not_due.probability,
        "{due:?} vs {not_due:?}"
    );
}

#[test]
fn a_new_vm_is_predicted_to_do_what_its_peers_do() {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    for vm in ["web-1", "web-2", "web-9"] {
        labelled(&mut agg, vm, "web");
    }
    labelled(&mut agg, "app-1", "app");
    for t in (START..START + DAY).step_by(300) {
        agg.ingest(&[
            record(t, "web-1", "app-1", 8080),
            record(t, "web-2", "app-1", 8080),
        ]);
    }
    agg.close_window(START + DAY);
    let scans = ScanDetector::new(ScanParams::default());
    let predictor = Predictor::new(PredictorParams::default().check().unwrap());
    let set = predictor.predict(&agg, &scans, START + DAY);
    let web9 = agg.endpoints().get(&Endpoint::vm("web-9")).unwrap();
    let p = set
        .predictions
        .iter()
        .find(|p| p.key.src == web9)
        .expect("web-9 is a candidate");
    assert_eq!(p.key.service_port, 8080);
    assert_eq!(p.evidence.source, CandidateSource::NewVm);
    assert_eq!(p.evidence.peer_support, 1.0);
    assert_eq!(p.evidence.peers, 2);
    assert!(!set.trained);
}

#[test]
fn a_scanner_lends_no_support_and_is_flagged() {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    for vm in ["web-1", "web-2", "db-1", "db-2"] {
        labelled(
            &mut agg,
            vm,
            if vm.starts_with("web") { "web" } else { "db" },
        );
    }
    let mut scans = ScanDetector::new(ScanParams::default());
    let mut t = START;
    for port in [22, 23, 135, 445, 3306, 3389, 5432, 5985] {
        for db in ["db-1", "db-2"] {
            let mut r = record(t, "web-2", db, port);
            r.bytes = 0;
            let key = agg.key_of(&r);
            let novel = agg.activity_of(&key).is_none();
            scans.observe(&key, t, 0, Verdict::Allowed, novel);
            agg.ingest(&[r]);
            t += 1;
        }
    }
    agg.close_window(START + 600);
    let web2 = agg.endpoints().get(&Endpoint::vm("web-2")).unwrap();
    assert!(scans.is_scanning(web2, START + 600));
    let predictor = Predictor::new(PredictorParams::default().check().unwrap());
    let set = predictor.predict(&agg, &scans, START + 600);
    // web-1 gets no label-peer candidates from what web-2 probed.
    let web1 = agg.endpoints().get(&Endpoint::vm("web-1")).unwrap();
    assert!(set.predictions.iter().all(|p| p.key.src != web1));
    assert!(
        set.predictions
            .iter()
            .filter(|p| p.key.src == web2)
            .all(|p| p.evidence.source_scanning)
    );
}

#[test]
fn settings_are_checked() {
    let bad = PredictorParams {
        horizon_s: 10,
        ..PredictorParams::default()
    };
    assert_eq!(bad.check().unwrap_err().name, "horizon_s");
    let bad = PredictorParams {
        snapshot_every_s: 7200,
        ..PredictorParams::default()
    };
    assert_eq!(bad.check().unwrap_err().name, "snapshot_every_s");
}

#[test]
fn samples_reaching_into_an_unobserved_time_are_not_learned() {
    let mut agg = Aggregator::new(WindowConfig::default());
    agg.set_keep_closed(false);
    let scans = ScanDetector::new(ScanParams::default());
    let mut predictor = Predictor::new(PredictorParams::default().check().unwrap());
    // A sample every 15 min for the first half hour.
    for t in (START..=START + 1800).step_by(300) {
        agg.ingest(&[record(t, "app-1", "db-1", 5432)]);
        agg.close_window(t + 60);
        let _ = predictor.cycle(&agg, &scans, t + 60);
    }
    let taken: Vec<i64> = predictor.pending.iter().map(|s| s.at).collect();
    assert_eq!(taken, [START + 60, START + 960, START + 1860]);
    // Nothing seen from the hour's end on: only the first sample's horizon
    // ends before that.
    predictor.unobserved(START + 3700, START + DAY);
    let kept: Vec<i64> = predictor.pending.iter().map(|s| s.at).collect();
    assert_eq!(kept, [START + 60]);
}
