//! Replica speed against the `ovs` Python IDL, on the same server in the
//! same run. Normally started by `idl_compare.sh`, which sets up the server
//! and the Python environment; it can also be run by hand:
//!
//! ```text
//! cargo bench -p augur-ovsdb --bench idl_compare -- --target unix:/path/db.sock \
//!     [--python venv/bin/python --schema vswitch.ovsschema] [--rows 10000] [--rounds 3]
//! ```
//!
//! Two measurements, each the median of `--rounds`:
//! - load: from connect to a complete replica of the `Interface` table
//!   (`--rows` interfaces with external ids, loaded first if absent);
//! - apply: the time to apply `--rows` single-row update transactions (one
//!   per interface). The reader is paused while a separate writer commits
//!   them, then timed until its replica reflects every one, so the figure is
//!   the client's own cost of reading, parsing and applying the updates,
//!   not the writer's. (While a client is not reading, `ovsdb-server` merges
//!   pending changes into fewer notifications; both clients see the same
//!   merging.)
//!
//! Each is reported as wall time, which includes the server's time to
//! compose and send the data, and as the client's own CPU time (the reader
//! thread's for Rust, the process's for Python), which is the cost the
//! client library itself adds.
// A benchmark driver: failures abort the run with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use augur_ovsdb::client::Client;
use augur_ovsdb::session::MonitorEvent;
use augur_ovsdb::{
    Atom, Condition, Datum, MonitorSpec, Mutation, Mutator, Operation, Row, RowChange,
    TableMonitor, Uuid,
};

struct Args {
    target: String,
    python: Option<String>,
    schema: String,
    rows: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        target: String::new(),
        python: None,
        schema: "/usr/share/openvswitch/vswitch.ovsschema".into(),
        rows: 10_000,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--target" => a.target = it.next().expect("--target value"),
            "--python" => a.python = it.next(),
            "--schema" => a.schema = it.next().expect("--schema value"),
            "--rows" => {
                a.rows = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rows count")
            }
            "--rounds" => {
                a.rounds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--rounds count")
            }
            _ => {}
        }
    }
    a
}

fn ext_ids(i: usize, seq: usize) -> Datum {
    Datum::map([
        (
            "attached-mac",
            format!(
                "fa:16:3e:{:02x}:{:02x}:{:02x}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                i & 0xff
            ),
        ),
        ("iface-id", format!("port-{i:05}")),
        ("iface-status", "active".to_owned()),
        ("vm-uuid", format!("{}", Uuid::from_u128(i as u128 + 1))),
        ("bench-seq", seq.to_string()),
    ])
}

/// Loads `rows` interfaces (each in its own port on one bridge) unless present.
async fn load(client: &Client, rows: usize) -> Vec<Uuid> {
    let db = "Open_vSwitch";
    let select = |table: &str| Operation::Select {
        table: table.into(),
        conditions: vec![],
        columns: Some(vec!["_uuid".into()]),
    };
    let r = client
        .transact(db, vec![select("Interface")])
        .await
        .unwrap();
    if r.rows(0).unwrap().len() < rows {
        let r = client
            .transact(
                db,
                vec![
                    Operation::Delete {
                        table: "Open_vSwitch".into(),
                        conditions: vec![],
                    },
                    Operation::Insert {
                        table: "Open_vSwitch".into(),
                        row: Row::new().with("bridges", Datum::set([Atom::NamedUuid("br".into())])),
                        uuid_name: None,
                    },
                    Operation::Insert {
                        table: "Bridge".into(),
                        row: Row::new().with("name", "br-bench"),
                        uuid_name: Some("br".into()),
                    },
                ],
            )
            .await
            .unwrap();
        assert!(r.is_success(), "{r:?}");
        let bridge = r.inserted(2).unwrap();
        for chunk_start in (0..rows).step_by(1000) {
            let mut ops = Vec::new();
            let mut ports = Vec::new();
            for i in chunk_start..(chunk_start + 1000).min(rows) {
                ops.push(Operation::Insert {
                    table: "Interface".into(),
                    row: Row::new()
                        .with("name", format!("tap{i:05}"))
                        .with("external_ids", ext_ids(i, 0)),
                    uuid_name: Some(format!("i{i}")),
                });
                ops.push(Operation::Insert {
                    table: "Port".into(),
                    row: Row::new()
                        .with("name", format!("tap{i:05}"))
                        .with("interfaces", Datum::set([Atom::NamedUuid(format!("i{i}"))])),
                    uuid_name: Some(format!("p{i}")),
                });
                ports.push(Atom::NamedUuid(format!("p{i}")));
            }
            ops.push(Operation::Mutate {
                table: "Bridge".into(),
                conditions: vec![Condition::eq("_uuid", bridge)],
                mutations: vec![Mutation::new("ports", Mutator::Insert, Datum::set(ports))],
            });
            let r = client.transact(db, ops).await.unwrap();
            assert!(r.is_success(), "{r:?}");
        }
    }
    let r = client
        .transact(db, vec![select("Interface")])
        .await
        .unwrap();
    let mut ids: Vec<Uuid> = r
        .rows(0)
        .unwrap()
        .iter()
        .filter_map(|row| row.get("_uuid").and_then(Datum::as_uuid))
        .collect();
    ids.sort();
    ids.truncate(rows);
    ids
}

/// Commits one transaction per interface, pipelined.
async fn write_updates(client: &Client, ids: &[Uuid], seq: usize) {
    let mut set = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let client = client.clone();
        let op = Operation::Update {
            table: "Interface".into(),
            conditions: vec![Condition::eq("_uuid", *id)],
            row: Row::new().with("external_ids", ext_ids(i, seq)),
        };
        set.spawn(async move { client.transact("Open_vSwitch", vec![op]).await });
    }
    while let Some(r) = set.join_next().await {
        assert!(r.unwrap().unwrap().is_success());
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time of the calling thread, from the scheduler's nanosecond counter.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

#[derive(Clone, Copy)]
struct Result {
    load: Duration,
    load_cpu: Duration,
    apply: Duration,
    apply_cpu: Duration,
}

struct Summary {
    load: Duration,
    load_cpu: Duration,
    apply: Duration,
    apply_cpu: Duration,
}

fn summarise(results: &[Result]) -> Summary {
    Summary {
        load: median(results.iter().map(|r| r.load).collect()),
        load_cpu: median(results.iter().map(|r| r.load_cpu).collect()),
        apply: median(results.iter().map(|r| r.apply).collect()),
        apply_cpu: median(results.iter().map(|r| r.apply_cpu).collect()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_summary(name: &str, s: &Summary, rows: usize) {
    println!(
        "{name:<12} load {:>8.1} ms (cpu {:>8.1} ms)   apply {:>8.1} ms (cpu {:>8.1} ms, {:>7.0} updates/s of cpu)",
        ms(s.load),
        ms(s.load_cpu),
        ms(s.apply),
        ms(s.apply_cpu),
        rows as f64 / s.apply_cpu.as_secs_f64().max(1e-9)
    );
}

/// One Rust round. The reader runs on a current-thread runtime that is
/// simply not driven while the writer works, which pauses its reading.
fn rust_round(
    target: &str,
    writer_rt: &tokio::runtime::Runtime,
    writer: &Client,
    ids: &[Uuid],
    seq: usize,
) -> Result {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = ids.len();
    let t0 = Instant::now();
    let c0 = thread_cpu();
    let (client, mut monitor) = rt.block_on(async {
        let client = Client::connect(target).await.unwrap();
        let mut monitor = client
            .monitor(
                MonitorSpec::monitor_cond("Open_vSwitch").table(TableMonitor::new("Interface")),
            )
            .await
            .unwrap();
        match monitor.next().await.unwrap() {
            MonitorEvent::Snapshot { changes, .. } => assert_eq!(changes.len(), rows),
            other => panic!("{other:?}"),
        }
        (client, monitor)
    });
    let load = t0.elapsed();
    let load_cpu = thread_cpu().saturating_sub(c0);
    writer_rt.block_on(write_updates(writer, ids, seq));
    let t1 = Instant::now();
    let c1 = thread_cpu();
    rt.block_on(async {
        let mut seen = 0;
        while seen < rows {
            match monitor.next().await.unwrap() {
                MonitorEvent::Update { changes } => {
                    seen += changes
                        .iter()
                        .filter(|c| matches!(c, RowChange::Modify { .. }))
                        .count();
                }
                other => panic!("{other:?}"),
            }
        }
    });
    let apply = t1.elapsed();
    let apply_cpu = thread_cpu().saturating_sub(c1);
    drop(monitor);
    drop(client);
    Result {
        load,
        load_cpu,
        apply,
        apply_cpu,
    }
}

const PY_SCRIPT: &str = include_str!("idl_bench.py");

/// One Python round: the script reports READY after loading and waits for
/// GO (sent once the writer is done) before resuming `Idl.run()`.
fn python_round(
    python: &str,
    schema: &str,
    target: &str,
    writer_rt: &tokio::runtime::Runtime,
    writer: &Client,
    ids: &[Uuid],
    seq: usize,
) -> Result {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(PY_SCRIPT)
        .arg(target)
        .arg(schema)
        .arg(ids.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut read_times = |tag: &str| -> (Duration, Duration) {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let v: Vec<f64> = line
            .strip_prefix(tag)
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        match v.as_slice() {
            [wall, cpu] => (
                Duration::from_secs_f64(*wall),
                Duration::from_secs_f64(*cpu),
            ),
            _ => panic!("python said {line:?}"),
        }
    };
    let (load, load_cpu) = read_times("READY ");
    writer_rt.block_on(write_updates(writer, ids, seq));
    writeln!(stdin, "GO").unwrap();
    stdin.flush().unwrap();
    let (apply, apply_cpu) = read_times("DONE ");
    let _ = child.wait();
    Result {
        load,
        load_cpu,
        apply,
        apply_cpu,
    }
}

fn main() {
    let a = args();
    if a.target.is_empty() {
        eprintln!("note: no --target given (run benches/idl_compare.sh); nothing to measure");
        return;
    }
    let writer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let writer = writer_rt.block_on(Client::connect(&a.target)).unwrap();
    let ids = writer_rt.block_on(load(&writer, a.rows));
    assert_eq!(ids.len(), a.rows, "could not load {} interfaces", a.rows);
    println!("{} interfaces, {} rounds, median times", a.rows, a.rounds);

    let mut seq = 1;
    let mut rust = Vec::new();
    for _ in 0..a.rounds {
        rust.push(rust_round(&a.target, &writer_rt, &writer, &ids, seq));
        seq += 1;
    }
    let rust = summarise(&rust);
    print_summary("augur-ovsdb", &rust, a.rows);

    let Some(python) = a.python else {
        println!("(no --python given: Python IDL not measured)");
        return;
    };
    let mut py = Vec::new();
    for _ in 0..a.rounds {
        py.push(python_round(
            &python, &a.schema, &a.target, &writer_rt, &writer, &ids, seq,
        ));
        seq += 1;
    }
    let py = summarise(&py);
    print_summary("python ovs", &py, a.rows);
    let ratio = |p: Duration, r: Duration| p.as_secs_f64() / r.as_secs_f64().max(1e-9);
    println!(
        "ratio python/augur: load {:.1}x wall, {:.1}x cpu; apply {:.1}x wall, {:.1}x cpu",
        ratio(py.load, rust.load),
        ratio(py.load_cpu, rust.load_cpu),
        ratio(py.apply, rust.apply),
        ratio(py.apply_cpu, rust.apply_cpu)
    );
}
