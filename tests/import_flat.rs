//! The flat CSV / JSON-lines importer: malformed lines, stopping and
//! resuming, labels that must never be read, the inventory, and export
//! round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use augur::import::export::{ExportFormat, export};
use augur::import::{AddressBook, Format, ImportOptions, OnError, import_file};
use augur::store::{SignatureStore, Store, StoreSettings};
use augur_flows::Endpoints;

/// Every stored row with its endpoints spelt out, comparable across stores.
fn contents(store: &Store) -> BTreeSet<String> {
    let mut endpoints = Endpoints::new();
    let mut out = BTreeSet::new();
    store
        .rows(&mut endpoints, |endpoints, rows| {
            for row in rows {
                out.insert(format!(
                    "{} {} {} {} {} {} {} {} {} {} {} {}",
                    row.start_s,
                    endpoints.endpoint(row.key.src).unwrap(),
                    endpoints.endpoint(row.key.dst).unwrap(),
                    row.key.protocol,
                    row.key.service_port,
                    row.bytes,
                    row.packets,
                    row.connections,
                    row.denied,
                    row.active_windows,
                    row.first_offset_s,
                    row.last_offset_s
                ));
            }
        })
        .unwrap();
    out
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD_AND_BAD: &str = "ts,src,dst,proto,dport,bytes,label
1700000000.5,10.0.0.1,10.0.0.2,tcp,443,100,Benign
1700000001,10.0.0.1,10.0.0.2,tcp,not-a-port,100,Benign
1700000070,10.0.0.1,10.0.0.2,tcp,443,50,Benign
";

#[test]
fn malformed_lines_are_reported_by_file_and_line_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "flows.csv", GOOD_AND_BAD);
    let mut store = Store::open(&dir.path().join("store"), StoreSettings::default()).unwrap();
    let report = import_file(&mut store, Format::Flat, &file, &ImportOptions::default()).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(report.errors, 1);
    assert_eq!(
        report.first_errors[0].to_string(),
        format!("{}:3: dport: not a port: \"not-a-port\"", file.display())
    );
    assert!(!report.stopped);
    assert_eq!(contents(&store).len(), 2);
}

#[test]
fn stopping_keeps_what_came_before_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "flows.csv", GOOD_AND_BAD);
    let mut store = Store::open(&dir.path().join("store"), StoreSettings::default()).unwrap();
    let options = ImportOptions {
        on_error: OnError::Stop,
        ..ImportOptions::default()
    };
    let report = import_file(&mut store, Format::Flat, &file, &options).unwrap();
    assert!(report.stopped);
    assert_eq!(report.records, 1);
    assert_eq!(report.first_errors[0].line, 3);
    let kept = contents(&store);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept.iter().next().unwrap().contains(" 100 "), "{kept:?}");

    // The operator fixes line 3 in place (same header, same fingerprint):
    // the re-run starts at line 3 and imports lines 3 and 4 only.
    let fixed = GOOD_AND_BAD.replace("not-a-port", "443");
    std::fs::write(&file, fixed).unwrap();
    let report = import_file(&mut store, Format::Flat, &file, &options).unwrap();
    assert_eq!(report.resumed_after_line, 2);
    assert_eq!(report.records, 2);
    assert!(!report.stopped);
    let rows = contents(&store);
    // Window 1699999980: 100 + 100 bytes; window 1700000040: 50 bytes.
    assert!(rows.iter().any(|r| r.contains(" 200 ")), "{rows:?}");

    // Running it again imports nothing twice.
    let again = import_file(&mut store, Format::Flat, &file, &options).unwrap();
    assert_eq!(again.records, 0);
    assert_eq!(contents(&store), rows);
}

#[test]
fn label_columns_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let benign = write(
        dir.path(),
        "a.csv",
        "ts,src,dst,proto,dport,bytes,label,source
10,10.0.0.1,10.0.0.2,6,445,7101,Benign,x
20,10.0.0.2,10.0.0.1,17,53,190,Benign,x
",
    );
    let malicious = write(
        dir.path(),
        "b.csv",
        "label,source,ts,src,dst,proto,dport,bytes
attack|psexec,otrf,10,10.0.0.1,10.0.0.2,6,445,7101
Botnet,ctu,20,10.0.0.2,10.0.0.1,17,53,190
",
    );
    let mut a = Store::open(&dir.path().join("a"), StoreSettings::default()).unwrap();
    let mut b = Store::open(&dir.path().join("b"), StoreSettings::default()).unwrap();
    import_file(&mut a, Format::Flat, &benign, &ImportOptions::default()).unwrap();
    import_file(&mut b, Format::Flat, &malicious, &ImportOptions::default()).unwrap();
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(contents(&a).len(), 2);
}

#[test]
fn exports_import_back_to_the_same_windows() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("ts,src,dst,proto,sport,dport,bytes,packets,verdict\n");
    for i in 0..500u64 {
        let ts = 1_700_000_000 + i * 37;
        let verdict = if i % 11 == 0 { "denied" } else { "allowed" };
        text.push_str(&format!(
            "{ts}.{:06},10.0.{}.1,10.0.0.{},{},4{:04},{},{},{},{verdict}\n",
            i * 7919 % 1_000_000,
            i % 3,
            i % 5,
            ["tcp", "udp"][(i % 2) as usize],
            i % 10_000,
            [22, 53, 443][(i % 3) as usize],
            i * 10,
            i % 7 + 1
        ));
    }
    // A reply row, turned round by its ports on import.
    text.push_str("1700000005,10.0.0.9,10.0.1.1,tcp,443,51000,77,1,allowed\n");
    let file = write(dir.path(), "flows.csv", &text);
    let mut first = Store::open(&dir.path().join("first"), StoreSettings::default()).unwrap();
    let report = import_file(&mut first, Format::Flat, &file, &ImportOptions::default()).unwrap();
    assert_eq!((report.records, report.errors), (501, 0));
    let original = contents(&first);
    assert!(
        original
            .iter()
            .any(|r| r.contains("10.0.1.1 10.0.0.9 tcp 443 77")),
        "the reply is counted under its client: {original:?}"
    );

    for (format, name) in [
        (ExportFormat::Csv, "export.csv"),
        (ExportFormat::JsonLines, "export.jsonl"),
    ] {
        let path = dir.path().join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        export(&first, format, &mut out).unwrap();
        drop(out);
        let mut second = Store::open(
            &dir.path().join(format!("{name}.store")),
            StoreSettings::default(),
        )
        .unwrap();
        let report =
            import_file(&mut second, Format::Flat, &path, &ImportOptions::default()).unwrap();
        assert_eq!(report.errors, 0, "{:?}", report.first_errors);
        assert_eq!(contents(&second), original, "{name}");
    }
}

#[test]
fn the_inventory_names_vms_and_gives_label_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write(
        dir.path(),
        "inventory.toml",
        r#"
[[vms]]
id = "web-1"
labels = { tier = "web" }
addresses = ["10.0.0.11"]

[[vms]]
id = "db-1"
labels = { tier = "db" }
[[vms.interfaces]]
ips = ["10.0.0.21", "fd00::21"]
"#,
    );
    let file = write(
        dir.path(),
        "flows.jsonl",
        r#"{"ts": 1700000000, "src": "10.0.0.11", "dst": "10.0.0.21", "proto": "tcp", "dport": 5432, "bytes": 1000}
{"ts": 1700000100, "src": "10.0.0.11", "dst": "fd00::21", "proto": "tcp", "dport": 5432, "bytes": 500}
{"ts": 1700000200, "src": "10.0.0.11", "dst": "198.51.100.7", "proto": "tcp", "dport": 443, "bytes": 20}
"#,
    );
    let options = ImportOptions {
        address_book: AddressBook::load(&inventory).unwrap(),
        ..ImportOptions::default()
    };
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir, StoreSettings::default()).unwrap();
    let report = import_file(&mut store, Format::Flat, &file, &options).unwrap();
    assert_eq!(report.records, 3);
    drop(store);
    let history =
        SignatureStore::open_at_last_window(&store_dir, StoreSettings::default()).unwrap();
    let pair = history
        .pair_signature(
            &augur_flows::Endpoint::vm("web-1"),
            &augur_flows::Endpoint::vm("db-1"),
        )
        .unwrap();
    assert_eq!(pair.volume.total_bytes, 1500);
    let labels = history
        .aggregator()
        .label_signature("tier=web", "tier=db")
        .unwrap();
    assert_eq!(labels.volume.total_bytes, 1500);
    let out = history
        .aggregator()
        .label_signature("tier=web", "@external")
        .unwrap();
    assert_eq!(out.services[0].port, 443);
}

#[test]
fn the_shared_flat_datasets_import_cleanly() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), StoreSettings::default()).unwrap();
    let file = shared.join("datasets/otrf-lateral.csv");
    let report = import_file(&mut store, Format::Flat, &file, &ImportOptions::default()).unwrap();
    assert_eq!(report.records, 383);
    assert_eq!(report.errors, 0, "{:?}", report.first_errors);
}

mod never_panics {
    use augur::import::flat::FlatReader;
    use augur::import::zeek::ZeekReader;
    use augur::import::{AddressBook, FlowReader};
    use proptest::prelude::*;

    fn drain(reader: &mut dyn FlowReader) {
        let book = AddressBook::default();
        let mut lines = 0;
        while let Ok(Some(_)) = reader.next_line(&book) {
            lines += 1;
            assert!(lines < 100_000);
        }
    }

    proptest! {
        #[test]
        fn on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            drain(&mut ZeekReader::new(bytes.as_slice(), "fuzz"));
            if let Ok(mut reader) = FlatReader::new(bytes.as_slice(), "fuzz") {
                drain(&mut reader);
            }
        }

        #[test]
        fn on_mangled_logs(
            cut in 0usize..600,
            junk in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let log = "#separator \\x09\n#unset_field\t-\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\torig_bytes\n1.5\t10.0.0.1\t40000\t10.0.0.2\t443\ttcp\t12\n";
            let csv = "ts,src,dst,proto,dport,bytes\n1.5,10.0.0.1,10.0.0.2,tcp,443,12\n{\"ts\":1}\n";
            for text in [log, csv] {
                let mut bytes = text.as_bytes().to_vec();
                let at = cut.min(bytes.len());
                bytes.splice(at..at, junk.iter().copied());
                drain(&mut ZeekReader::new(bytes.as_slice(), "fuzz"));
                if let Ok(mut reader) = FlatReader::new(bytes.as_slice(), "fuzz") {
                    drain(&mut reader);
                }
            }
        }
    }
}

#[test]
fn an_import_records_the_time_its_log_covers_as_watched() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let day = "ts,src,dst,proto,dport,bytes
1700000000,10.0.0.1,10.0.0.2,tcp,443,100
1700003600,10.0.0.1,10.0.0.2,tcp,443,100
";
    let later = "ts,src,dst,proto,dport,bytes
1700086400,10.0.0.1,10.0.0.2,tcp,443,100
1700090000,10.0.0.1,10.0.0.2,tcp,443,100
";
    let mut store = Store::open(&store_dir, StoreSettings::default()).unwrap();
    for (name, text) in [("day.csv", day), ("later.csv", later)] {
        let file = write(dir.path(), name, text);
        import_file(&mut store, Format::Flat, &file, &ImportOptions::default()).unwrap();
    }
    drop(store);
    // augur starts an hour after the second log ends.
    let history =
        SignatureStore::open(&store_dir, StoreSettings::default(), 1_700_093_600).unwrap();
    assert_eq!(
        history.store().unobserved(120).unwrap(),
        [
            (1_700_003_600, 1_700_086_400),
            (1_700_090_000, 1_700_093_600)
        ],
        "nothing recorded between the two logs nor since the second"
    );
}
