//! An in-memory copy of monitored tables, like the one OVS's IDL keeps,
//! updated from monitor snapshots and notifications, reporting each change
//! as a [`RowChange`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use thiserror::Error;
use uuid::Uuid;

use crate::data::{Datum, Row};
use crate::monitor::{RowUpdate, TableUpdate};
use crate::schema::{DatabaseSchema, TableSchema};

/// A notification that does not fit what the replica holds: a sign that
/// the replica and the server disagree, which only a fresh snapshot fixes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("replica out of step with the server: {0}")]
pub struct ReplicaError(pub String);

/// One row's change.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// A row appeared.
    Insert {
        /// The table.
        table: Arc<str>,
        /// The row.
        uuid: Uuid,
        /// Its contents.
        new: Arc<Row>,
    },
    /// A row's contents changed.
    Modify {
        /// The table.
        table: Arc<str>,
        /// The row.
        uuid: Uuid,
        /// The contents before.
        old: Arc<Row>,
        /// The contents after.
        new: Arc<Row>,
    },
    /// A row disappeared (or, with `monitor_cond`, stopped matching).
    Delete {
        /// The table.
        table: Arc<str>,
        /// The row.
        uuid: Uuid,
        /// Its last contents.
        old: Arc<Row>,
    },
}

impl RowChange {
    /// The table changed.
    pub fn table(&self) -> &str {
        match self {
            RowChange::Insert { table, .. }
            | RowChange::Modify { table, .. }
            | RowChange::Delete { table, .. } => table,
        }
    }

    /// The row changed.
    pub fn uuid(&self) -> Uuid {
        match self {
            RowChange::Insert { uuid, .. }
            | RowChange::Modify { uuid, .. }
            | RowChange::Delete { uuid, .. } => *uuid,
        }
    }

    /// The contents before, unless inserted.
    pub fn old(&self) -> Option<&Arc<Row>> {
        match self {
            RowChange::Modify { old, .. } | RowChange::Delete { old, .. } => Some(old),
            RowChange::Insert { .. } => None,
        }
    }

    /// The contents after, unless deleted.
    pub fn new_row(&self) -> Option<&Arc<Row>> {
        match self {
            RowChange::Insert { new, .. } | RowChange::Modify { new, .. } => Some(new),
            RowChange::Delete { .. } => None,
        }
    }
}

/// The replica of one monitored table.
#[derive(Debug, Clone)]
pub struct ReplicaTable {
    name: Arc<str>,
    // Shared, so that copies of the replica handed to consumers are cheap.
    schema: Arc<TableSchema>,
    columns: Vec<String>,
    // The default value of each monitored column, to complete rows from
    // `update2`, which leaves default values out.
    defaults: Vec<(Arc<str>, Datum)>,
    rows: HashMap<Uuid, Arc<Row>>,
}

impl ReplicaTable {
    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's schema.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// The columns monitored, which every row holds.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// A row by UUID.
    pub fn get(&self, uuid: &Uuid) -> Option<&Arc<Row>> {
        self.rows.get(uuid)
    }

    /// All rows, in no particular order.
    pub fn rows(&self) -> impl Iterator<Item = (&Uuid, &Arc<Row>)> {
        self.rows.iter()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Completes a row from `initial`/`insert` with the defaults of the
    /// monitored columns it omits (as `update2` does for default values).
    fn complete(&self, mut row: Row) -> Row {
        for (name, default) in &self.defaults {
            if row.get(name).is_none() {
                row.insert_shared(name.clone(), default.clone());
            }
        }
        row
    }

    /// The row after a modification, or `None` when no monitored value
    /// actually changed. Only changed columns are compared, and the old row
    /// is copied only when something changed.
    fn modified(&self, old: &Row, update: RowUpdate) -> Option<Row> {
        let mut changed: Vec<(Arc<str>, Datum)> = Vec::new();
        match update {
            RowUpdate::Modify(cols) => {
                for (c, v) in cols.into_columns() {
                    if old.get(&c) != Some(&v) {
                        changed.push((c, v));
                    }
                }
            }
            RowUpdate::Diff(diff) => {
                for (c, d) in diff.into_columns() {
                    let Some(ty) = self.schema.column_type(&c) else {
                        continue;
                    };
                    let new = match old.get(&c) {
                        Some(base) => base.apply_diff(&d, ty),
                        None => ty.default_datum().apply_diff(&d, ty),
                    };
                    if old.get(&c) != Some(&new) {
                        changed.push((c, new));
                    }
                }
            }
            RowUpdate::Insert(_) | RowUpdate::Delete => {}
        }
        if changed.is_empty() {
            return None;
        }
        let mut new = old.clone();
        for (c, v) in changed {
            new.insert_shared(c, v);
        }
        Some(new)
    }
}

/// The replica of the tables one monitor watches.
#[derive(Debug, Clone)]
pub struct Replica {
    schema: Arc<DatabaseSchema>,
    tables: BTreeMap<String, ReplicaTable>,
}

impl Replica {
    /// An empty replica of `tables` (name and monitored columns).
    pub fn new(
        schema: Arc<DatabaseSchema>,
        tables: &[(String, Vec<String>)],
    ) -> Result<Self, ReplicaError> {
        let mut replica = Self {
            schema: schema.clone(),
            tables: BTreeMap::new(),
        };
        replica.reconfigure(schema, tables)?;
        Ok(replica)
    }

    /// Adopts a (possibly changed) schema and column set, as after a
    /// reconnect; the rows stay until the next snapshot replaces them.
    pub fn reconfigure(
        &mut self,
        schema: Arc<DatabaseSchema>,
        tables: &[(String, Vec<String>)],
    ) -> Result<(), ReplicaError> {
        let mut new_tables = BTreeMap::new();
        for (name, columns) in tables {
            let table_schema = Arc::new(
                schema
                    .table(name)
                    .ok_or_else(|| ReplicaError(format!("no table {name} in the schema")))?
                    .clone(),
            );
            let rows = self.tables.remove(name).map(|t| t.rows).unwrap_or_default();
            let mut defaults = Vec::with_capacity(columns.len());
            for c in columns {
                let (shared, ty) = table_schema
                    .column_entry(c)
                    .ok_or_else(|| ReplicaError(format!("no column {c} in table {name}")))?;
                defaults.push((shared.clone(), ty.default_datum()));
            }
            new_tables.insert(
                name.clone(),
                ReplicaTable {
                    name: Arc::from(name.as_str()),
                    schema: table_schema,
                    columns: columns.clone(),
                    defaults,
                    rows,
                },
            );
        }
        self.schema = schema;
        self.tables = new_tables;
        Ok(())
    }

    /// The schema the replica follows.
    pub fn schema(&self) -> &Arc<DatabaseSchema> {
        &self.schema
    }

    /// A replicated table.
    pub fn table(&self, name: &str) -> Option<&ReplicaTable> {
        self.tables.get(name)
    }

    /// All replicated tables.
    pub fn tables(&self) -> impl Iterator<Item = &ReplicaTable> {
        self.tables.values()
    }

    /// A row of a table.
    pub fn row(&self, table: &str, uuid: &Uuid) -> Option<&Arc<Row>> {
        self.tables.get(table).and_then(|t| t.get(uuid))
    }

    /// Applies an incremental update (one notification, which OVSDB sends
    /// per committed transaction). Either every row update applies or,
    /// when one contradicts the replica, none does.
    pub fn apply(&mut self, updates: Vec<TableUpdate>) -> Result<Vec<RowChange>, ReplicaError> {
        for tu in &updates {
            let table = self.tables.get(&tu.table).ok_or_else(|| {
                ReplicaError(format!("update for unmonitored table {}", tu.table))
            })?;
            for (uuid, update) in &tu.rows {
                let exists = table.rows.contains_key(uuid);
                match update {
                    RowUpdate::Insert(_) if exists => {
                        return Err(ReplicaError(format!(
                            "insert of existing row {uuid} in {}",
                            tu.table
                        )));
                    }
                    RowUpdate::Modify(_) | RowUpdate::Diff(_) | RowUpdate::Delete if !exists => {
                        return Err(ReplicaError(format!(
                            "change to missing row {uuid} in {}",
                            tu.table
                        )));
                    }
                    _ => {}
                }
            }
        }
        let mut changes = Vec::new();
        for tu in updates {
            let Some(table) = self.tables.get_mut(&tu.table) else {
                continue;
            };
            for (uuid, update) in tu.rows {
                match update {
                    RowUpdate::Insert(row) => {
                        let new = Arc::new(table.complete(row));
                        table.rows.insert(uuid, new.clone());
                        changes.push(RowChange::Insert {
                            table: table.name.clone(),
                            uuid,
                            new,
                        });
                    }
                    RowUpdate::Delete => {
                        if let Some(old) = table.rows.remove(&uuid) {
                            changes.push(RowChange::Delete {
                                table: table.name.clone(),
                                uuid,
                                old,
                            });
                        }
                    }
                    update @ (RowUpdate::Modify(_) | RowUpdate::Diff(_)) => {
                        let Some(old) = table.rows.get(&uuid).cloned() else {
                            continue;
                        };
                        // A modify that changes nothing monitored is not a change.
                        if let Some(new) = table.modified(&old, update) {
                            let new = Arc::new(new);
                            table.rows.insert(uuid, new.clone());
                            changes.push(RowChange::Modify {
                                table: table.name.clone(),
                                uuid,
                                old,
                                new,
                            });
                        }
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Replaces the contents with a snapshot (a monitor reply), reporting
    /// only the differences from what the replica held: after a reconnect
    /// nothing is reported twice and nothing that changed while disconnected
    /// is missed.
    pub fn load_snapshot(
        &mut self,
        updates: Vec<TableUpdate>,
    ) -> Result<Vec<RowChange>, ReplicaError> {
        let mut fresh: BTreeMap<String, HashMap<Uuid, Row>> = BTreeMap::new();
        for tu in updates {
            if !self.tables.contains_key(&tu.table) {
                return Err(ReplicaError(format!(
                    "snapshot of unmonitored table {}",
                    tu.table
                )));
            }
            let rows = fresh.entry(tu.table.clone()).or_default();
            for (uuid, update) in tu.rows {
                match update {
                    RowUpdate::Insert(row) => {
                        rows.insert(uuid, row);
                    }
                    _ => {
                        return Err(ReplicaError(format!(
                            "snapshot row {uuid} is not an initial row"
                        )));
                    }
                }
            }
        }
        let mut changes = Vec::new();
        for (name, table) in self.tables.iter_mut() {
            let mut incoming = fresh.remove(name).unwrap_or_default();
            let mut kept = HashMap::with_capacity(incoming.len());
            let mut old_rows: Vec<(Uuid, Arc<Row>)> = table.rows.drain().collect();
            old_rows.sort_unstable_by_key(|(u, _)| *u);
            for (uuid, old) in old_rows {
                match incoming.remove(&uuid) {
                    None => changes.push(RowChange::Delete {
                        table: table.name.clone(),
                        uuid,
                        old,
                    }),
                    Some(row) => {
                        let row = table.complete(row);
                        if row == *old {
                            kept.insert(uuid, old);
                        } else {
                            let new = Arc::new(row);
                            kept.insert(uuid, new.clone());
                            changes.push(RowChange::Modify {
                                table: table.name.clone(),
                                uuid,
                                old,
                                new,
                            });
                        }
                    }
                }
            }
            let mut added: Vec<(Uuid, Row)> = incoming.into_iter().collect();
            added.sort_unstable_by_key(|(u, _)| *u);
            for (uuid, row) in added {
                let new = Arc::new(table.complete(row));
                kept.insert(uuid, new.clone());
                changes.push(RowChange::Insert {
                    table: table.name.clone(),
                    uuid,
                    new,
                });
            }
            table.rows = kept;
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Datum;
    use crate::monitor::{parse_updates, parse_updates2};
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        Arc::new(
            DatabaseSchema::from_json(&json!({
                "name": "t", "version": "1.0.0",
                "tables": {"A": {"columns": {
                    "n": {"type": "integer"},
                    "o": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "kv": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
                }}}
            }))
            .unwrap(),
        )
    }

    fn replica() -> Replica {
        let s = schema();
        let cols = s.table("A").unwrap().columns.keys().cloned().collect();
        Replica::new(s, &[("A".into(), cols)]).unwrap()
    }

    const U1: &str = "00000000-0000-0000-0000-000000000001";
    const U2: &str = "00000000-0000-0000-0000-000000000002";

    fn u(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap()
    }

    #[test]
    fn update2_lifecycle() {
        let mut r = replica();
        let s = schema();
        // The snapshot omits default values; the replica fills them in.
        let snap = parse_updates2(json!({"A": {U1: {"initial": {"n": 1}}}}), &s).unwrap();
        let ch = r.load_snapshot(snap).unwrap();
        assert_eq!(ch.len(), 1);
        let row = r.row("A", &u(U1)).unwrap();
        assert_eq!(row.get("tags"), Some(&Datum::empty_set()));
        assert_eq!(row.get("kv"), Some(&Datum::empty_map()));
        assert_eq!(row.get("o"), Some(&Datum::empty_set()));

        let up = parse_updates2(
            json!({"A": {U1: {"modify": {"tags": ["set", ["a", "b"]], "kv": ["map", [["k", "v"]]], "o": 7}}, U2: {"insert": {"n": 2}}}}),
            &s,
        )
        .unwrap();
        let ch = r.apply(up).unwrap();
        assert_eq!(ch.len(), 2);
        let row = r.row("A", &u(U1)).unwrap();
        assert_eq!(row.get("tags"), Some(&Datum::set(["a", "b"])));
        assert_eq!(row.get("o"), Some(&Datum::scalar(7i64)));

        let up = parse_updates2(json!({"A": {U1: {"modify": {"tags": "a", "kv": ["map", [["k", "v"]]], "o": ["set", []]}}}}), &s).unwrap();
        let ch = r.apply(up).unwrap();
        let RowChange::Modify { old, new, .. } = &ch[0] else {
            panic!()
        };
        assert_eq!(old.get("tags"), Some(&Datum::set(["a", "b"])));
        assert_eq!(new.get("tags"), Some(&Datum::set(["b"])));
        assert_eq!(new.get("kv"), Some(&Datum::empty_map()));
        assert_eq!(new.get("o"), Some(&Datum::empty_set()));

        let up = parse_updates2(json!({"A": {U2: {"delete": null}}}), &s).unwrap();
        let ch = r.apply(up).unwrap();
        assert!(matches!(&ch[0], RowChange::Delete { uuid, .. } if *uuid == u(U2)));
        assert_eq!(r.table("A").unwrap().len(), 1);
    }

    #[test]
    fn inconsistent_updates_change_nothing() {
        let mut r = replica();
        let s = schema();
        r.load_snapshot(parse_updates2(json!({"A": {U1: {"initial": {"n": 1}}}}), &s).unwrap())
            .unwrap();
        // The valid insert of U2 must not be applied when U1's insert is bad.
        let bad = parse_updates2(
            json!({"A": {U1: {"insert": {"n": 5}}, U2: {"insert": {"n": 2}}}}),
            &s,
        )
        .unwrap();
        assert!(r.apply(bad).is_err());
        assert!(r.row("A", &u(U2)).is_none());
        let bad = parse_updates2(json!({"A": {U2: {"modify": {"n": 5}}}}), &s).unwrap();
        assert!(r.apply(bad).is_err());
        let bad = parse_updates2(json!({"A": {U2: {"delete": null}}}), &s).unwrap();
        assert!(r.apply(bad).is_err());
    }

    #[test]
    fn resync_reports_only_differences() {
        let mut r = replica();
        let s = schema();
        let v1 = |v| parse_updates(v, &s).unwrap();
        r.load_snapshot(v1(json!({"A": {
            U1: {"new": {"n": 1, "o": ["set", []], "tags": ["set", []], "kv": ["map", []]}},
            U2: {"new": {"n": 2, "o": ["set", []], "tags": ["set", []], "kv": ["map", []]}}
        }})))
        .unwrap();
        let u3 = "00000000-0000-0000-0000-000000000003";
        let ch = r
            .load_snapshot(v1(json!({"A": {
                U2: {"new": {"n": 2, "o": ["set", []], "tags": ["set", []], "kv": ["map", []]}},
                U1: {"new": {"n": 9, "o": ["set", []], "tags": ["set", []], "kv": ["map", []]}},
                u3: {"new": {"n": 3, "o": ["set", []], "tags": ["set", []], "kv": ["map", []]}}
            }})))
            .unwrap();
        assert_eq!(ch.len(), 2, "{ch:?}");
        assert!(matches!(&ch[0], RowChange::Modify { uuid, .. } if *uuid == u(U1)));
        assert!(matches!(&ch[1], RowChange::Insert { uuid, .. } if *uuid == u(u3)));
        let ch = r.load_snapshot(v1(json!({}))).unwrap();
        assert_eq!(ch.len(), 3);
        assert!(ch.iter().all(|c| matches!(c, RowChange::Delete { .. })));
    }

    #[test]
    fn v1_modify_of_unchanged_values_is_silent() {
        let mut r = replica();
        let s = schema();
        r.load_snapshot(parse_updates(json!({"A": {U1: {"new": {"n": 1}}}}), &s).unwrap())
            .unwrap();
        let ch = r
            .apply(parse_updates(json!({"A": {U1: {"old": {}, "new": {"n": 1}}}}), &s).unwrap())
            .unwrap();
        assert!(ch.is_empty());
        let ch = r
            .apply(
                parse_updates(json!({"A": {U1: {"old": {"n": 1}, "new": {"n": 2}}}}), &s).unwrap(),
            )
            .unwrap();
        assert_eq!(ch.len(), 1);
    }
}
