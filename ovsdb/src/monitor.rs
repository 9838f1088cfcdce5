//! `monitor` and `monitor_cond` requests, and the table updates the server
//! sends in their replies and in `update`/`update2` notifications.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::data::{DecodeError, Row, bad, show};
use crate::ops::Condition;
use crate::schema::{ConstraintError, DatabaseSchema, TableSchema};

/// Which kinds of change a monitor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSelect {
    /// Rows present when the monitor starts.
    pub initial: bool,
    /// Rows inserted later.
    pub insert: bool,
    /// Rows deleted.
    pub delete: bool,
    /// Rows modified.
    pub modify: bool,
}

impl Default for MonitorSelect {
    /// Everything: what a replica needs to stay exact.
    fn default() -> Self {
        Self {
            initial: true,
            insert: true,
            delete: true,
            modify: true,
        }
    }
}

/// What to monitor in one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMonitor {
    /// The table.
    pub table: String,
    /// The columns; all of the table's columns when `None`.
    pub columns: Option<Vec<String>>,
    /// Which changes to report.
    pub select: MonitorSelect,
    /// For `monitor_cond`, which rows (all clauses must hold; `None` means all rows).
    pub conditions: Option<Vec<Condition>>,
}

impl TableMonitor {
    /// All columns and all rows of `table`.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            columns: None,
            select: MonitorSelect::default(),
            conditions: None,
        }
    }

    /// Only these columns.
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Only rows matching all `conditions` (`monitor_cond` only).
    pub fn conditions(mut self, conditions: Vec<Condition>) -> Self {
        self.conditions = Some(conditions);
        self
    }

    /// Only these kinds of change.
    pub fn select(mut self, select: MonitorSelect) -> Self {
        self.select = select;
        self
    }

    /// The monitored columns, resolved against the schema.
    pub fn resolved_columns(&self, table: &TableSchema) -> Vec<String> {
        match &self.columns {
            Some(c) => c.clone(),
            None => table.columns.keys().cloned().collect(),
        }
    }
}

/// Which monitor request, and so which notification format, to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorProtocol {
    /// RFC 7047 `monitor`, with `update` notifications.
    Monitor,
    /// OVS's `monitor_cond`, with `update2` notifications carrying diffs, and
    /// conditions that can change while the monitor runs.
    MonitorCond,
}

/// A monitor: a database and the tables to watch in it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSpec {
    /// The database.
    pub db: String,
    /// Request and notification format.
    pub protocol: MonitorProtocol,
    /// The tables.
    pub tables: Vec<TableMonitor>,
}

impl MonitorSpec {
    /// An RFC 7047 `monitor` of `db`.
    pub fn monitor(db: impl Into<String>) -> Self {
        Self {
            db: db.into(),
            protocol: MonitorProtocol::Monitor,
            tables: Vec::new(),
        }
    }

    /// A `monitor_cond` of `db`.
    pub fn monitor_cond(db: impl Into<String>) -> Self {
        Self {
            db: db.into(),
            protocol: MonitorProtocol::MonitorCond,
            tables: Vec::new(),
        }
    }

    /// Adds a table.
    pub fn table(mut self, table: TableMonitor) -> Self {
        self.tables.push(table);
        self
    }

    /// Checks tables, columns and conditions against the schema.
    pub fn check(&self, schema: &DatabaseSchema) -> Result<(), ConstraintError> {
        if self.tables.is_empty() {
            return Err(ConstraintError::new("a monitor needs at least one table"));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if self.tables.iter().skip(i + 1).any(|o| o.table == t.table) {
                return Err(ConstraintError::new(format!(
                    "table {} monitored twice",
                    t.table
                )));
            }
            let table = schema.table(&t.table).ok_or_else(|| {
                ConstraintError::new(format!("no table {} in {}", t.table, schema.name))
            })?;
            for c in t.columns.iter().flatten() {
                if table.column(c).is_none() {
                    return Err(ConstraintError::new(format!(
                        "table {} has no column {c}",
                        t.table
                    )));
                }
            }
            if let Some(conditions) = &t.conditions {
                if self.protocol == MonitorProtocol::Monitor {
                    return Err(ConstraintError::new("conditions need monitor_cond"));
                }
                let probe = crate::ops::Operation::Select {
                    table: t.table.clone(),
                    conditions: conditions.clone(),
                    columns: None,
                };
                probe.check(schema)?;
            }
        }
        Ok(())
    }

    /// The request method.
    pub fn method(&self) -> &'static str {
        match self.protocol {
            MonitorProtocol::Monitor => "monitor",
            MonitorProtocol::MonitorCond => "monitor_cond",
        }
    }

    /// The request params: `[db, monitor-id, {table: request}]`, with column
    /// lists spelled out so the replica knows exactly what it holds.
    pub fn request_params(&self, monitor_id: &Value, schema: &DatabaseSchema) -> Vec<Value> {
        let mut requests = Map::new();
        for t in &self.tables {
            let Some(table) = schema.table(&t.table) else {
                continue;
            };
            let mut r = Map::new();
            r.insert(
                "columns".into(),
                t.resolved_columns(table)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            );
            let s = t.select;
            if s != MonitorSelect::default() {
                let mut sel = Map::new();
                sel.insert("initial".into(), Value::Bool(s.initial));
                sel.insert("insert".into(), Value::Bool(s.insert));
                sel.insert("delete".into(), Value::Bool(s.delete));
                sel.insert("modify".into(), Value::Bool(s.modify));
                r.insert("select".into(), Value::Object(sel));
            }
            if self.protocol == MonitorProtocol::MonitorCond {
                if let Some(conditions) = &t.conditions {
                    r.insert(
                        "where".into(),
                        Value::Array(conditions.iter().map(Condition::to_json).collect()),
                    );
                }
            }
            requests.insert(t.table.clone(), Value::Array(vec![Value::Object(r)]));
        }
        vec![
            Value::String(self.db.clone()),
            monitor_id.clone(),
            Value::Object(requests),
        ]
    }
}

/// The params of `monitor_cond_change`: new conditions for some tables of a
/// running monitor (`None` meaning all rows).
pub fn cond_change_params(
    monitor_id: &Value,
    changes: &[(String, Option<Vec<Condition>>)],
) -> Vec<Value> {
    let mut tables = Map::new();
    for (table, conditions) in changes {
        let conditions = conditions
            .as_ref()
            .map(|c| c.iter().map(Condition::to_json).collect())
            .unwrap_or_else(|| vec![Value::Bool(true)]);
        let mut r = Map::new();
        r.insert("where".into(), Value::Array(conditions));
        tables.insert(table.clone(), Value::Array(vec![Value::Object(r)]));
    }
    vec![
        monitor_id.clone(),
        monitor_id.clone(),
        Value::Object(tables),
    ]
}

/// How one row changed, unified over `update` and `update2`.
#[derive(Debug, Clone, PartialEq)]
pub enum RowUpdate {
    /// The row's full contents (`initial`/`insert`; `update2` omits columns
    /// at their default values, which the replica fills in).
    Insert(Row),
    /// `update` modify: the new values of the monitored columns.
    Modify(Row),
    /// `update2` modify: per-column diffs, applied with [`crate::data::Datum::apply_diff`].
    Diff(Row),
    /// The row was deleted.
    Delete,
}

/// Updates to the rows of one table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableUpdate {
    /// The table.
    pub table: String,
    /// Row UUID and change, in UUID order.
    pub rows: Vec<(Uuid, RowUpdate)>,
}

/// Parses `<table-updates>` (`update`, and the reply to `monitor`).
pub fn parse_updates(
    value: Value,
    schema: &DatabaseSchema,
) -> Result<Vec<TableUpdate>, DecodeError> {
    parse_tables(value, schema, |row, table| {
        let Value::Object(mut o) = row else {
            return bad(format!("{} is not a row update", show(&row)));
        };
        let old = o.remove("old").filter(|v| !v.is_null());
        let new = o.remove("new").filter(|v| !v.is_null());
        if let Some(k) = o.keys().next() {
            return bad(format!("unexpected member \"{k}\" in a row update"));
        }
        match (old, new) {
            (None, Some(new)) => Ok(RowUpdate::Insert(Row::from_json_owned(new, table, false)?)),
            (Some(_), Some(new)) => Ok(RowUpdate::Modify(Row::from_json_owned(new, table, false)?)),
            (Some(_), None) => Ok(RowUpdate::Delete),
            (None, None) => bad("row update has neither old nor new"),
        }
    })
}

/// Parses `<table-updates2>` (`update2`, and the reply to `monitor_cond`).
pub fn parse_updates2(
    value: Value,
    schema: &DatabaseSchema,
) -> Result<Vec<TableUpdate>, DecodeError> {
    parse_tables(value, schema, |row, table| {
        let Value::Object(o) = row else {
            return bad(format!("{} is not a row update", show(&row)));
        };
        if o.len() != 1 {
            return bad("a row update2 must have exactly one member");
        }
        let Some((kind, body)) = o.into_iter().next() else {
            return bad("a row update2 must have exactly one member");
        };
        match kind.as_str() {
            "initial" | "insert" => {
                Ok(RowUpdate::Insert(Row::from_json_owned(body, table, false)?))
            }
            "modify" => Ok(RowUpdate::Diff(Row::from_json_owned(body, table, true)?)),
            "delete" => Ok(RowUpdate::Delete),
            other => bad(format!("unknown row update2 kind \"{other}\"")),
        }
    })
}

fn parse_tables(
    value: Value,
    schema: &DatabaseSchema,
    parse_row: impl Fn(Value, &TableSchema) -> Result<RowUpdate, DecodeError>,
) -> Result<Vec<TableUpdate>, DecodeError> {
    let Value::Object(tables) = value else {
        return bad(format!("{} is not a table-updates object", show(&value)));
    };
    let mut out = Vec::with_capacity(tables.len());
    for (name, rows) in tables {
        let table = schema
            .table(&name)
            .ok_or_else(|| DecodeError::new(format!("update for unknown table {name}")))?;
        let Value::Object(rows) = rows else {
            return bad(format!("updates for table {name} are not an object"));
        };
        let mut parsed = Vec::with_capacity(rows.len());
        for (uuid, row) in rows {
            let uuid = parse_row_uuid(&uuid)
                .ok_or_else(|| DecodeError::new(format!("row key \"{uuid}\" is not a UUID")))?;
            parsed.push((
                uuid,
                parse_row(row, table).map_err(|e| e.within(format!("{name} row {uuid}")))?,
            ));
        }
        out.push(TableUpdate {
            table: name,
            rows: parsed,
        });
    }
    Ok(out)
}

/// A row key: a UUID in the 36-character form RFC 7047 requires.
fn parse_row_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 {
        return None;
    }
    Uuid::parse_str(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Datum;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({
            "name": "t", "version": "1.0.0",
            "tables": {"A": {"columns": {
                "n": {"type": "integer"},
                "kv": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
            }}}
        }))
        .unwrap()
    }

    const U: &str = "36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b";

    #[test]
    fn request_params_spell_out_columns() {
        let s = schema();
        let spec = MonitorSpec::monitor_cond("t")
            .table(TableMonitor::new("A").conditions(vec![Condition::eq("n", 1i64)]));
        spec.check(&s).unwrap();
        assert_eq!(
            Value::Array(spec.request_params(&json!(1), &s)),
            json!(["t", 1, {"A": [{"columns": ["kv", "n"], "where": [["n", "==", 1]]}]}])
        );
        assert!(
            MonitorSpec::monitor("t")
                .table(TableMonitor::new("B"))
                .check(&s)
                .is_err()
        );
        assert!(
            MonitorSpec::monitor("t")
                .table(TableMonitor::new("A").columns(["x"]))
                .check(&s)
                .is_err()
        );
        assert!(
            MonitorSpec::monitor("t")
                .table(TableMonitor::new("A").conditions(vec![]))
                .check(&s)
                .is_err()
        );
    }

    #[test]
    fn parses_update_v1() {
        let s = schema();
        let v = json!({"A": {U: {"old": {"n": 1}, "new": {"n": 2, "kv": ["map", []]}}}});
        let u = parse_updates(v.clone(), &s).unwrap();
        assert_eq!(
            u[0].rows[0].1,
            RowUpdate::Modify(Row::new().with("n", 2i64).with("kv", Datum::empty_map()))
        );
        let v = json!({"A": {U: {"old": {"n": 1, "kv": ["map", []]}}}});
        assert_eq!(
            parse_updates(v.clone(), &s).unwrap()[0].rows[0].1,
            RowUpdate::Delete
        );
        for bad in [
            json!({"A": {U: {}}}),
            json!({"A": {"not-a-uuid": {"new": {"n": 1}}}}),
            json!({"B": {}}),
            json!({"A": {U: {"new": {"n": "x"}}}}),
            json!({"A": {U: {"new": {"zz": 1}}}}),
            json!({"A": {U: {"new": {"n": 1}, "extra": 1}}}),
            json!({"A": []}),
            json!([]),
        ] {
            assert!(parse_updates(bad.clone(), &s).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_update2() {
        let s = schema();
        let v = json!({"A": {U: {"modify": {"kv": ["map", [["a", "1"]]]}}}});
        let u = parse_updates2(v.clone(), &s).unwrap();
        assert_eq!(
            u[0].rows[0].1,
            RowUpdate::Diff(Row::new().with("kv", Datum::map([("a", "1")])))
        );
        let v = json!({"A": {U: {"delete": null}}});
        assert_eq!(
            parse_updates2(v.clone(), &s).unwrap()[0].rows[0].1,
            RowUpdate::Delete
        );
        for bad in [
            json!({"A": {U: {"initial": {}, "insert": {}}}}),
            json!({"A": {U: {"replace": {}}}}),
            json!({"A": {U: {}}}),
        ] {
            assert!(parse_updates2(bad.clone(), &s).is_err(), "{bad} accepted");
        }
    }
}
