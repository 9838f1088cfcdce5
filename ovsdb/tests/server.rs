//! Tests against a real `ovsdb-server` started for each test.
// Test helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use augur_ovsdb::client::{Client, ClientConfig, Error, Monitor, TlsConfig};
use augur_ovsdb::ops::{
    Condition, Function, Mutation, Mutator, Operation, OperationResult, WaitUntil,
};
use augur_ovsdb::session::{LockEvent, MonitorEvent, RequestError};
use augur_ovsdb::{Atom, Datum, MonitorSpec, Row, RowChange, TableMonitor, Uuid, vswitch};
use common::Server;
use serde_json::json;

const TEST_DB: &str = "Test";
const WAIT: Duration = Duration::from_secs(15);

fn config(target: &str) -> ClientConfig {
    let mut c = ClientConfig::new(target).unwrap();
    c.min_backoff = Duration::from_millis(50);
    c.max_backoff = Duration::from_millis(400);
    c
}

async fn connect(target: &str) -> Client {
    Client::connect_with(config(target)).await.unwrap()
}

async fn next_event(m: &mut Monitor) -> MonitorEvent {
    tokio::time::timeout(WAIT, m.next())
        .await
        .expect("timed out waiting for a monitor event")
        .expect("monitor stream ended")
}

fn insert(table: &str, row: Row) -> Operation {
    Operation::Insert {
        table: table.into(),
        row,
        uuid_name: None,
    }
}

fn select_all(table: &str) -> Operation {
    Operation::Select {
        table: table.into(),
        conditions: vec![],
        columns: None,
    }
}

fn item(name: &str, count: i64) -> Row {
    Row::new().with("name", name).with("count", count)
}

#[tokio::test]
async fn lists_databases_and_fetches_schemas() {
    let Some(server) = Server::start() else {
        return;
    };
    for target in [server.unix_target(), server.tcp_target()] {
        let client = connect(&target).await;
        let mut dbs = client.list_dbs().await.unwrap();
        dbs.sort();
        assert_eq!(dbs, ["Open_vSwitch", "Test", "_Server"]);
        let schema = client.get_schema("Open_vSwitch").await.unwrap();
        vswitch::check_schema(&schema).unwrap();
        let test = client.get_schema(TEST_DB).await.unwrap();
        assert_eq!(test.table("Limited").unwrap().max_rows, Some(2));
        match client.get_schema("Nope").await {
            Err(Error::Request(RequestError::Server(e))) => assert_eq!(e.error, "unknown database"),
            other => panic!("expected unknown database, got {other:?}"),
        }
        assert_eq!(
            client.echo(vec![json!("ping"), json!(1)]).await.unwrap(),
            vec![json!("ping"), json!(1)]
        );
    }
}

#[tokio::test]
async fn transact_every_operation() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = connect(&server.unix_target()).await;
    client.get_schema(TEST_DB).await.unwrap();

    // insert, with a named-uuid reference resolved inside the transaction.
    let reply = client
        .transact(
            TEST_DB,
            vec![
                Operation::Insert {
                    table: "Item".into(),
                    row: item("a", 1)
                        .with("score", 1.5)
                        .with("flag", true)
                        .with("tags", Datum::set(["x", "y"]))
                        .with("attrs", Datum::map([("k1", "v1"), ("k2", "v2")]))
                        .with("color", "red")
                        .with("fixed", "f"),
                    uuid_name: Some("a".into()),
                },
                insert(
                    "Item",
                    item("b", 2).with("parent", Atom::NamedUuid("a".into())),
                ),
                Operation::Comment("augur test".into()),
                Operation::Commit { durable: true },
            ],
        )
        .await
        .unwrap();
    assert!(reply.is_success(), "{reply:?}");
    let a = reply.inserted(0).unwrap();
    let b = reply.inserted(1).unwrap();
    assert_eq!(reply.results[2], Some(OperationResult::Empty));

    // select, with conditions of several functions and a column list.
    let reply = client
        .transact(
            TEST_DB,
            vec![
                Operation::Select {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("name", "a")],
                    columns: None,
                },
                Operation::Select {
                    table: "Item".into(),
                    conditions: vec![Condition::new("count", Function::GreaterOrEqual, 2i64)],
                    columns: Some(vec!["_uuid".into(), "parent".into()]),
                },
                Operation::Select {
                    table: "Item".into(),
                    conditions: vec![Condition::new(
                        "tags",
                        Function::Includes,
                        Datum::set(["x"]),
                    )],
                    columns: Some(vec!["name".into()]),
                },
                Operation::Select {
                    table: "Item".into(),
                    conditions: vec![Condition::new(
                        "tags",
                        Function::Excludes,
                        Datum::set(["x"]),
                    )],
                    columns: Some(vec!["name".into()]),
                },
            ],
        )
        .await
        .unwrap();
    let row = &reply.rows(0).unwrap()[0];
    assert_eq!(row.get("_uuid").and_then(Datum::as_uuid), Some(a));
    assert_eq!(row.get("score").and_then(Datum::as_f64), Some(1.5));
    assert_eq!(row.get("flag").and_then(Datum::as_bool), Some(true));
    assert_eq!(row.get("tags"), Some(&Datum::set(["x", "y"])));
    assert_eq!(
        row.get("attrs"),
        Some(&Datum::map([("k1", "v1"), ("k2", "v2")]))
    );
    assert_eq!(row.get("color").and_then(Datum::as_str), Some("red"));
    assert_eq!(row.get("parent"), Some(&Datum::empty_set()));
    let rows = reply.rows(1).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get("_uuid").and_then(Datum::as_uuid), Some(b));
    assert_eq!(rows[0].get("parent").and_then(Datum::as_uuid), Some(a));
    assert_eq!(reply.rows(2).unwrap().len(), 1);
    assert_eq!(
        reply.rows(3).unwrap()[0]
            .get("name")
            .and_then(Datum::as_str),
        Some("b")
    );

    // update, mutate (arithmetic, set and map insert/delete), wait, delete.
    let reply = client
        .transact(
            TEST_DB,
            vec![
                Operation::Update {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", b)],
                    row: Row::new()
                        .with("color", Datum::empty_set())
                        .with("score", 2.0),
                },
                Operation::Mutate {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", a)],
                    mutations: vec![
                        Mutation::new("count", Mutator::Add, 10i64),
                        Mutation::new("count", Mutator::Multiply, 3i64),
                        Mutation::new("count", Mutator::Subtract, 3i64),
                        Mutation::new("count", Mutator::Divide, 2i64),
                        Mutation::new("count", Mutator::Remainder, 7i64),
                        Mutation::new("tags", Mutator::Insert, Datum::set(["z"])),
                        Mutation::new("tags", Mutator::Delete, Datum::set(["x"])),
                        Mutation::new("attrs", Mutator::Insert, Datum::map([("k3", "v3")])),
                        Mutation::new("attrs", Mutator::Delete, Datum::set(["k1"])),
                    ],
                },
                Operation::Wait {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", a)],
                    columns: vec!["count".into()],
                    until: WaitUntil::Equal,
                    // ((1 + 10) * 3 - 3) / 2 % 7, applied in order by the server.
                    rows: vec![Row::new().with("count", 1i64)],
                    timeout_ms: Some(0),
                },
                select_all("Item"),
            ],
        )
        .await
        .unwrap();
    assert!(reply.is_success(), "{reply:?}");
    assert_eq!(reply.count(0), Some(1));
    assert_eq!(reply.count(1), Some(1));
    assert_eq!(reply.results[2], Some(OperationResult::Empty));
    let rows = reply.rows(3).unwrap();
    let ra = rows
        .iter()
        .find(|r| r.get("_uuid").and_then(Datum::as_uuid) == Some(a))
        .unwrap();
    assert_eq!(ra.get("count").and_then(Datum::as_i64), Some(1));
    assert_eq!(ra.get("tags"), Some(&Datum::set(["y", "z"])));
    assert_eq!(
        ra.get("attrs"),
        Some(&Datum::map([("k2", "v2"), ("k3", "v3")]))
    );

    let reply = client
        .transact(
            TEST_DB,
            vec![
                Operation::Update {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", b)],
                    row: Row::new().with("parent", Datum::empty_set()),
                },
                Operation::Delete {
                    table: "Item".into(),
                    conditions: vec![Condition::new("count", Function::Less, 100i64)],
                },
                select_all("Item"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(reply.count(1), Some(2));
    assert!(reply.rows(2).unwrap().is_empty());
}

async fn single_error(client: &Client, ops: Vec<Operation>) -> (usize, String, Option<String>) {
    let reply = client.transact_unchecked(TEST_DB, ops).await.unwrap();
    let (i, e) = reply
        .error()
        .unwrap_or_else(|| panic!("expected an error, got {reply:?}"));
    // Results after the failing operation are null.
    assert!(
        reply.results.iter().skip(i + 1).all(Option::is_none),
        "{reply:?}"
    );
    (i, e.error.clone(), e.details.clone())
}

#[tokio::test]
async fn transact_error_replies() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = connect(&server.unix_target()).await;
    let r = client
        .transact(TEST_DB, vec![insert("Item", item("one", 1))])
        .await
        .unwrap();
    let one = r.inserted(0).unwrap();

    let (i, e, _) = single_error(
        &client,
        vec![insert("Item", item("two", 2)), Operation::Abort],
    )
    .await;
    assert_eq!((i, e.as_str()), (1, "aborted"));

    let (i, e, _) = single_error(
        &client,
        vec![Operation::Assert {
            lock: "nobody".into(),
        }],
    )
    .await;
    assert_eq!((i, e.as_str()), (0, "not owner"));

    let wait = Operation::Wait {
        table: "Item".into(),
        conditions: vec![Condition::eq("_uuid", one)],
        columns: vec!["count".into()],
        until: WaitUntil::Equal,
        rows: vec![Row::new().with("count", 99i64)],
        timeout_ms: Some(0),
    };
    let (i, e, _) = single_error(&client, vec![wait]).await;
    assert_eq!((i, e.as_str()), (0, "timed out"));

    // Unique index: detected at commit, reported one past the operations.
    let (i, e, d) = single_error(&client, vec![insert("Item", item("one", 3))]).await;
    assert_eq!((i, e.as_str()), (1, "constraint violation"), "{d:?}");

    // Reference to a row that does not exist: also at commit.
    let (i, e, _) = single_error(
        &client,
        vec![insert(
            "Item",
            item("dangling", 1).with("parent", Uuid::from_u128(42)),
        )],
    )
    .await;
    assert_eq!((i, e.as_str()), (1, "referential integrity violation"));

    // maxRows.
    let (i, e, _) = single_error(
        &client,
        (0..3)
            .map(|n| insert("Limited", Row::new().with("n", n)))
            .collect(),
    )
    .await;
    assert_eq!((i, e.as_str()), (3, "constraint violation"));

    // A mutation leaving the column's range.
    let (i, e, _) = single_error(
        &client,
        vec![Operation::Mutate {
            table: "Item".into(),
            conditions: vec![],
            mutations: vec![Mutation::new("count", Mutator::Add, 5000i64)],
        }],
    )
    .await;
    assert_eq!((i, e.as_str()), (0, "constraint violation"));

    // Values outside an enum, immutable columns, unknown tables and columns:
    // our schema check refuses them before sending...
    let bad_enum = insert("Item", item("c", 1).with("color", "pink"));
    let immutable = Operation::Update {
        table: "Item".into(),
        conditions: vec![],
        row: Row::new().with("fixed", "g"),
    };
    let no_table = select_all("Nope");
    let no_column = insert("Item", Row::new().with("nope", 1i64));
    client.get_schema(TEST_DB).await.unwrap();
    for op in [&bad_enum, &immutable, &no_table, &no_column] {
        match client.transact(TEST_DB, vec![op.clone()]).await {
            Err(Error::Request(RequestError::Invalid(_))) => {}
            other => panic!("{op:?} not refused locally: {other:?}"),
        }
    }
    // ...and the server refuses them too.
    let (_, e, _) = single_error(&client, vec![bad_enum]).await;
    assert_eq!(e, "constraint violation");
    let (_, e, _) = single_error(&client, vec![immutable]).await;
    assert_eq!(e, "constraint violation");
    let (_, e, d) = single_error(&client, vec![no_table]).await;
    assert_eq!(e, "syntax error");
    assert!(d.unwrap_or_default().contains("No table named Nope"));
    let (_, e, _) = single_error(&client, vec![no_column]).await;
    assert_eq!(e, "unknown column");

    match client
        .transact_unchecked("Nope", vec![Operation::Comment("x".into())])
        .await
    {
        Err(Error::Request(RequestError::Server(e))) => assert_eq!(e.error, "unknown database"),
        other => panic!("expected unknown database, got {other:?}"),
    }
    // Nothing above changed the table.
    let r = client
        .transact(TEST_DB, vec![select_all("Item"), select_all("Limited")])
        .await
        .unwrap();
    assert_eq!(r.rows(0).unwrap().len(), 1);
    assert!(r.rows(1).unwrap().is_empty());
}

fn changes(event: MonitorEvent) -> Vec<RowChange> {
    match event {
        MonitorEvent::Snapshot { changes, .. } | MonitorEvent::Update { changes } => changes,
        other => panic!("expected changes, got {other:?}"),
    }
}

#[tokio::test]
async fn monitor_snapshot_and_incremental_updates() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer = connect(&server.unix_target()).await;
    let r = writer
        .transact(TEST_DB, vec![insert("Item", item("pre", 1))])
        .await
        .unwrap();
    let pre = r.inserted(0).unwrap();

    let client = connect(&server.tcp_target()).await;
    let mut monitor = client
        .monitor(
            MonitorSpec::monitor(TEST_DB)
                .table(TableMonitor::new("Item").columns(["name", "count", "tags", "attrs"])),
        )
        .await
        .unwrap();
    match next_event(&mut monitor).await {
        MonitorEvent::Snapshot {
            changes,
            resync: false,
        } => {
            assert_eq!(changes.len(), 1);
            assert!(
                matches!(&changes[0], RowChange::Insert { uuid, new, .. } if *uuid == pre && new.get("name").and_then(Datum::as_str) == Some("pre"))
            );
        }
        other => panic!("{other:?}"),
    }

    let r = writer
        .transact(
            TEST_DB,
            vec![insert(
                "Item",
                item("new", 2).with("tags", Datum::set(["t"])),
            )],
        )
        .await
        .unwrap();
    let new = r.inserted(0).unwrap();
    let ch = changes(next_event(&mut monitor).await);
    assert!(
        matches!(&ch[..], [RowChange::Insert { uuid, new: row, .. }] if *uuid == new && row.get("tags") == Some(&Datum::set(["t"])))
    );

    writer
        .transact(
            TEST_DB,
            vec![Operation::Mutate {
                table: "Item".into(),
                conditions: vec![Condition::eq("_uuid", new)],
                mutations: vec![Mutation::new(
                    "attrs",
                    Mutator::Insert,
                    Datum::map([("k", "v")]),
                )],
            }],
        )
        .await
        .unwrap();
    let ch = changes(next_event(&mut monitor).await);
    let [RowChange::Modify { old, new: row, .. }] = &ch[..] else {
        panic!("{ch:?}")
    };
    assert_eq!(old.get("attrs"), Some(&Datum::empty_map()));
    assert_eq!(row.get("attrs"), Some(&Datum::map([("k", "v")])));

    // A change to an unmonitored column produces no event; the next one does.
    writer
        .transact(
            TEST_DB,
            vec![Operation::Update {
                table: "Item".into(),
                conditions: vec![Condition::eq("_uuid", pre)],
                row: Row::new().with("score", 9.0),
            }],
        )
        .await
        .unwrap();
    writer
        .transact(
            TEST_DB,
            vec![Operation::Delete {
                table: "Item".into(),
                conditions: vec![Condition::eq("_uuid", pre)],
            }],
        )
        .await
        .unwrap();
    let ch = changes(next_event(&mut monitor).await);
    assert!(
        matches!(&ch[..], [RowChange::Delete { uuid, .. }] if *uuid == pre),
        "{ch:?}"
    );

    let replica = monitor.replica().await.unwrap().unwrap();
    assert_eq!(replica.table("Item").unwrap().len(), 1);
    assert!(replica.row("Item", &new).is_some());

    monitor.cancel().unwrap();
    assert_eq!(
        next_event(&mut monitor).await,
        MonitorEvent::Stopped { reason: Ok(()) }
    );
    // After the cancel, changes no longer arrive.
    writer
        .transact(TEST_DB, vec![insert("Item", item("late", 3))])
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), monitor.next())
            .await
            .map_or(true, |e| e.is_none())
    );
}

#[tokio::test]
async fn monitor_cond_with_changing_condition() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer = connect(&server.unix_target()).await;
    let r = writer
        .transact(
            TEST_DB,
            (0..6)
                .map(|n| insert("Item", item(&format!("i{n}"), n)))
                .collect(),
        )
        .await
        .unwrap();
    let ids: Vec<Uuid> = (0..6).map(|i| r.inserted(i).unwrap()).collect();

    let client = connect(&server.unix_target()).await;
    let mut monitor = client
        .monitor(MonitorSpec::monitor_cond(TEST_DB).table(
            TableMonitor::new("Item").conditions(vec![Condition::new(
                "count",
                Function::Less,
                2i64,
            )]),
        ))
        .await
        .unwrap();
    let ch = changes(next_event(&mut monitor).await);
    let mut got: Vec<Uuid> = ch.iter().map(RowChange::uuid).collect();
    got.sort();
    let mut want = ids[..2].to_vec();
    want.sort();
    assert_eq!(got, want);

    // Rows entering the condition are inserts, rows leaving it deletes.
    monitor
        .change_conditions(vec![(
            "Item".into(),
            Some(vec![Condition::new(
                "count",
                Function::GreaterOrEqual,
                4i64,
            )]),
        )])
        .await
        .unwrap();
    let mut inserted = Vec::new();
    let mut deleted = Vec::new();
    loop {
        match next_event(&mut monitor).await {
            MonitorEvent::Update { changes } => {
                for c in changes {
                    match c {
                        RowChange::Insert { uuid, .. } => inserted.push(uuid),
                        RowChange::Delete { uuid, .. } => deleted.push(uuid),
                        other => panic!("{other:?}"),
                    }
                }
            }
            MonitorEvent::ConditionChanged { result } => {
                result.unwrap();
                if inserted.len() == 2 && deleted.len() == 2 {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    inserted.sort();
    deleted.sort();
    let mut want_in = ids[4..].to_vec();
    want_in.sort();
    let mut want_out = ids[..2].to_vec();
    want_out.sort();
    assert_eq!((inserted, deleted), (want_in, want_out));

    // Writes follow the new condition.
    writer
        .transact(
            TEST_DB,
            vec![
                Operation::Update {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", ids[0])],
                    row: Row::new().with("count", 50i64),
                },
                Operation::Update {
                    table: "Item".into(),
                    conditions: vec![Condition::eq("_uuid", ids[5])],
                    row: Row::new().with("count", 1i64),
                },
            ],
        )
        .await
        .unwrap();
    let ch = changes(next_event(&mut monitor).await);
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(
        ch.iter()
            .any(|c| matches!(c, RowChange::Insert { uuid, .. } if *uuid == ids[0]))
    );
    assert!(
        ch.iter()
            .any(|c| matches!(c, RowChange::Delete { uuid, .. } if *uuid == ids[5]))
    );
    let replica = monitor.replica().await.unwrap().unwrap();
    let mut held: Vec<Uuid> = replica
        .table("Item")
        .unwrap()
        .rows()
        .map(|(u, _)| *u)
        .collect();
    held.sort();
    let mut want = vec![ids[0], ids[4]];
    want.sort();
    assert_eq!(held, want);

    // A condition on a column the table lacks is refused.
    assert!(
        monitor
            .change_conditions(vec![(
                "Item".into(),
                Some(vec![Condition::eq("nope", 1i64)])
            )])
            .await
            .is_err()
    );
}

async fn next_lock_event(l: &mut augur_ovsdb::client::Lock) -> LockEvent {
    tokio::time::timeout(WAIT, l.next())
        .await
        .expect("timed out waiting for a lock event")
        .expect("lock stream ended")
}

#[tokio::test]
async fn locks_contended_by_two_clients() {
    let Some(server) = Server::start() else {
        return;
    };
    let a = connect(&server.unix_target()).await;
    let b = connect(&server.tcp_target()).await;
    let assert_lock = || {
        vec![
            Operation::Assert {
                lock: "leader".into(),
            },
            insert("Item", item("x", 1)),
        ]
    };

    let mut la = a.lock("leader").await.unwrap();
    assert!(la.locked_on_reply());
    assert_eq!(next_lock_event(&mut la).await, LockEvent::Acquired);
    let mut lb = b.lock("leader").await.unwrap();
    assert!(!lb.locked_on_reply());
    // Only the holder passes "assert".
    assert!(
        a.transact(TEST_DB, assert_lock())
            .await
            .unwrap()
            .is_success()
    );
    let r = b
        .transact(
            TEST_DB,
            vec![Operation::Assert {
                lock: "leader".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.error().unwrap().1.error, "not owner");
    // Asking twice on one session is refused.
    assert!(b.lock("leader").await.is_err());

    // When A releases it, B (queued) gets it.
    la.unlock().await.unwrap();
    assert_eq!(next_lock_event(&mut lb).await, LockEvent::Acquired);

    // A steals it back; B learns, and stays queued behind A.
    let mut la = a.steal("leader").await.unwrap();
    assert!(la.locked_on_reply());
    assert_eq!(next_lock_event(&mut la).await, LockEvent::Acquired);
    assert_eq!(next_lock_event(&mut lb).await, LockEvent::Stolen);
    let r = b
        .transact(
            TEST_DB,
            vec![Operation::Assert {
                lock: "leader".into(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.error().unwrap().1.error, "not owner");
    // Dropping A's handle unlocks; B, still queued, acquires.
    drop(la);
    assert_eq!(next_lock_event(&mut lb).await, LockEvent::Acquired);
    let r = b
        .transact(
            TEST_DB,
            vec![Operation::Assert {
                lock: "leader".into(),
            }],
        )
        .await
        .unwrap();
    assert!(r.is_success());
}

#[tokio::test]
async fn replica_converges_after_server_restart() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let client = connect(&server.unix_target()).await;
    let r = client
        .transact(
            TEST_DB,
            vec![
                insert("Item", item("keep", 1)),
                insert("Item", item("change", 2)),
                insert("Item", item("drop", 3)),
            ],
        )
        .await
        .unwrap();
    let (keep, change, dropped) = (
        r.inserted(0).unwrap(),
        r.inserted(1).unwrap(),
        r.inserted(2).unwrap(),
    );
    let mut monitor = client
        .monitor(MonitorSpec::monitor_cond(TEST_DB).table(TableMonitor::new("Item")))
        .await
        .unwrap();
    assert_eq!(changes(next_event(&mut monitor).await).len(), 3);
    let mut lock = client.lock("owner").await.unwrap();
    assert_eq!(next_lock_event(&mut lock).await, LockEvent::Acquired);

    // Kill the server, change the database behind its back, restart it.
    server.kill();
    let db = server.dbs[1].clone();
    let out = server.offline_transact(
        &db,
        &json!(["Test",
            {"op": "update", "table": "Item", "where": [["_uuid", "==", ["uuid", change.to_string()]]], "row": {"count": 20}},
            {"op": "delete", "table": "Item", "where": [["_uuid", "==", ["uuid", dropped.to_string()]]]},
            {"op": "insert", "table": "Item", "row": {"name": "added", "count": 4}}
        ]),
    );
    let added = Uuid::parse_str(out[2]["uuid"][1].as_str().unwrap()).unwrap();
    // While the server is down, requests fail fast rather than hang.
    let failed = client.list_dbs().await;
    assert!(
        matches!(
            failed,
            Err(Error::Request(
                RequestError::NotConnected | RequestError::Disconnected
            ))
        ),
        "{failed:?}"
    );
    assert_eq!(next_lock_event(&mut lock).await, LockEvent::Lost);
    server.restart();

    let (changes, resync) = match next_event(&mut monitor).await {
        MonitorEvent::Snapshot { changes, resync } => (changes, resync),
        other => panic!("{other:?}"),
    };
    assert!(resync);
    // Exactly the three differences, each once; the unchanged row is silent.
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes.iter().any(|c| matches!(c, RowChange::Modify { uuid, new, .. } if *uuid == change && new.get("count") == Some(&Datum::scalar(20i64)))));
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, RowChange::Delete { uuid, .. } if *uuid == dropped))
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, RowChange::Insert { uuid, .. } if *uuid == added))
    );
    assert!(!changes.iter().any(|c| c.uuid() == keep));

    // The replica now equals what the server holds.
    let replica = monitor.replica().await.unwrap().unwrap();
    let r = client
        .transact(TEST_DB, vec![select_all("Item")])
        .await
        .unwrap();
    let server_rows = r.rows(0).unwrap();
    assert_eq!(server_rows.len(), replica.table("Item").unwrap().len());
    for row in server_rows {
        let uuid = row.get("_uuid").and_then(Datum::as_uuid).unwrap();
        let mine = replica.row("Item", &uuid).unwrap();
        for (col, value) in mine.iter() {
            assert_eq!(row.get(col), Some(value), "{uuid} {col}");
        }
    }
    // The lock was re-requested and is held again.
    assert_eq!(next_lock_event(&mut lock).await, LockEvent::Acquired);
    assert!(
        client
            .transact(
                TEST_DB,
                vec![Operation::Assert {
                    lock: "owner".into()
                }]
            )
            .await
            .unwrap()
            .is_success()
    );
    // Live updates flow again.
    client
        .transact(TEST_DB, vec![insert("Item", item("after", 5))])
        .await
        .unwrap();
    let ch = self::changes(next_event(&mut monitor).await);
    assert!(matches!(&ch[..], [RowChange::Insert { .. }]));
    assert_eq!(client.stats().await.unwrap().connections, 2);
}

#[tokio::test]
async fn answers_the_servers_echo() {
    let Some(server) = Server::start() else {
        return;
    };
    // Over TCP ovsdb-server probes an idle client every 5 s. Our own probe is
    // off, so only the server's echo and our answer keep the connection.
    let mut c = config(&server.tcp_target());
    c.session.probe_interval = None;
    let client = Client::connect_with(c).await.unwrap();
    client.list_dbs().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = client.stats().await.unwrap();
        if stats.server_echoes_answered >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no echo from the server: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Answering kept the first connection alive.
    client.list_dbs().await.unwrap();
    assert_eq!(client.stats().await.unwrap().connections, 1);
}

#[tokio::test]
async fn our_probe_keeps_an_idle_connection_checked() {
    let Some(server) = Server::start() else {
        return;
    };
    let mut c = config(&server.unix_target());
    c.session.probe_interval = Some(Duration::from_millis(200));
    let client = Client::connect_with(c).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let stats = client.stats().await.unwrap();
    assert!(stats.probes_sent >= 3, "{stats:?}");
    assert_eq!(stats.connections, 1);
}

#[tokio::test]
async fn connects_over_ssl_with_ovs_pki_certificates() {
    let Some(server) = Server::start_with_ssl() else {
        return;
    };
    let pki = server.pki().unwrap().clone();
    let target = server.ssl_target().unwrap();
    let tls = TlsConfig {
        private_key: pki.client_key.clone(),
        certificate: pki.client_cert.clone(),
        ca_cert: pki.switch_ca.clone(),
    };
    let client = Client::connect_with(config(&target).with_tls(tls))
        .await
        .unwrap();
    let mut dbs = client.list_dbs().await.unwrap();
    dbs.sort();
    assert_eq!(dbs, ["Open_vSwitch", "Test", "_Server"]);
    let mut monitor = client
        .monitor(MonitorSpec::monitor_cond(TEST_DB).table(TableMonitor::new("Item")))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut monitor).await,
        MonitorEvent::Snapshot { .. }
    ));

    // A server certificate from a CA we do not trust is refused.
    let wrong_ca = TlsConfig {
        ca_cert: pki.controller_ca.clone(),
        ..TlsConfig {
            private_key: pki.client_key.clone(),
            certificate: pki.client_cert.clone(),
            ca_cert: pki.switch_ca.clone(),
        }
    };
    assert!(
        Client::connect_with(config(&target).with_tls(wrong_ca))
            .await
            .is_err()
    );
    // Missing files are reported as TLS errors.
    let missing = TlsConfig {
        private_key: server.dir.path().join("nope.pem"),
        certificate: pki.client_cert,
        ca_cert: pki.switch_ca,
    };
    assert!(matches!(
        Client::connect_with(config(&target).with_tls(missing)).await,
        Err(Error::Tls(_))
    ));
}

#[tokio::test]
async fn typed_vswitch_tables() {
    let Some(server) = Server::start() else {
        return;
    };
    let client = connect(&server.unix_target()).await;
    let schema = client.get_schema(vswitch::DB).await.unwrap();
    vswitch::check_schema(&schema).unwrap();
    let reply = client
        .transact(
            vswitch::DB,
            vec![
                Operation::Insert {
                    table: "Open_vSwitch".into(),
                    row: Row::new()
                        .with("bridges", Datum::set([Atom::NamedUuid("br".into())]))
                        .with("external_ids", Datum::map([("system-id", "hv1")])),
                    uuid_name: None,
                },
                Operation::Insert {
                    table: "Bridge".into(),
                    row: Row::new()
                        .with("name", "br-int")
                        .with("ports", Datum::set([Atom::NamedUuid("p".into())]))
                        .with("controller", Datum::set([Atom::NamedUuid("c".into())]))
                        .with("fail_mode", "secure")
                        .with("protocols", Datum::set(["OpenFlow13", "OpenFlow14"])),
                    uuid_name: Some("br".into()),
                },
                Operation::Insert {
                    table: "Controller".into(),
                    row: Row::new().with("target", "tcp:127.0.0.1:6653"),
                    uuid_name: Some("c".into()),
                },
                Operation::Insert {
                    table: "Port".into(),
                    row: Row::new()
                        .with("name", "tap0")
                        .with("interfaces", Datum::set([Atom::NamedUuid("i".into())]))
                        .with("tag", 10i64),
                    uuid_name: Some("p".into()),
                },
                Operation::Insert {
                    table: "Interface".into(),
                    row: Row::new().with("name", "tap0").with(
                        "external_ids",
                        Datum::map([
                            ("iface-id", "port-1"),
                            ("attached-mac", "fa:16:3e:00:00:01"),
                            ("vm-uuid", "vm-1"),
                        ]),
                    ),
                    uuid_name: Some("i".into()),
                },
            ],
        )
        .await
        .unwrap();
    assert!(reply.is_success(), "{reply:?}");
    let mut monitor = client.monitor(vswitch::monitor_spec()).await.unwrap();
    assert!(matches!(
        next_event(&mut monitor).await,
        MonitorEvent::Snapshot { .. }
    ));
    let replica = monitor.replica().await.unwrap().unwrap();
    let ovs = vswitch::rows::<vswitch::OpenVSwitch>(&replica).unwrap();
    assert_eq!(ovs.len(), 1);
    assert_eq!(
        ovs[0].external_ids.get("system-id").map(String::as_str),
        Some("hv1")
    );
    let bridges = vswitch::rows::<vswitch::Bridge>(&replica).unwrap();
    assert_eq!(bridges[0].name, "br-int");
    assert_eq!(bridges[0].fail_mode.as_deref(), Some("secure"));
    assert_eq!(bridges[0].protocols, ["OpenFlow13", "OpenFlow14"]);
    assert_eq!(ovs[0].bridges, [bridges[0].uuid]);
    let ports = vswitch::rows::<vswitch::Port>(&replica).unwrap();
    assert_eq!(ports[0].tag, Some(10));
    assert_eq!(bridges[0].ports, [ports[0].uuid]);
    let ifaces = vswitch::rows::<vswitch::Interface>(&replica).unwrap();
    assert_eq!(ports[0].interfaces, [ifaces[0].uuid]);
    assert_eq!(ifaces[0].iface_id(), Some("port-1"));
    assert_eq!(ifaces[0].attached_mac(), Some("fa:16:3e:00:00:01"));
    assert_eq!(ifaces[0].ofport, None);
    let controllers = vswitch::rows::<vswitch::Controller>(&replica).unwrap();
    assert_eq!(controllers[0].target, "tcp:127.0.0.1:6653");
    assert!(!controllers[0].is_connected);
}

#[tokio::test]
async fn spawned_client_waits_for_a_late_server() {
    let Some(mut server) = Server::start() else {
        return;
    };
    server.kill();
    let client = Client::spawn(config(&server.unix_target())).await.unwrap();
    // Registered while no server runs; set up once one does.
    let mut monitor = client
        .monitor(MonitorSpec::monitor_cond(TEST_DB).table(TableMonitor::new("Item")))
        .await
        .unwrap();
    assert!(matches!(
        client.list_dbs().await,
        Err(Error::Request(RequestError::NotConnected))
    ));
    server.restart();
    match next_event(&mut monitor).await {
        MonitorEvent::Snapshot {
            changes,
            resync: false,
        } => assert!(changes.is_empty()),
        other => panic!("{other:?}"),
    }
    client
        .transact(TEST_DB, vec![insert("Item", item("late", 1))])
        .await
        .unwrap();
    assert_eq!(changes(next_event(&mut monitor).await).len(), 1);
}
