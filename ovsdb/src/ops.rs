//! `transact` operations (RFC 7047 section 5.2), their JSON encoding,
//! checking against a schema, and decoding their results.

use std::fmt;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::data::{Atom, Datum, DecodeError, Row, bad, show};
use crate::schema::{AtomicType, ColumnType, ConstraintError, DatabaseSchema, TableSchema};

/// A comparison in a `where` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>=`
    GreaterOrEqual,
    /// `>`
    Greater,
    /// `includes`: the column's value is a superset of the argument.
    Includes,
    /// `excludes`: the column's value has nothing in common with the argument.
    Excludes,
}

impl Function {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Less => "<",
            Function::LessOrEqual => "<=",
            Function::Equal => "==",
            Function::NotEqual => "!=",
            Function::GreaterOrEqual => ">=",
            Function::Greater => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            Function::Less | Function::LessOrEqual | Function::GreaterOrEqual | Function::Greater
        )
    }
}

/// One clause of a `where`: all clauses of a condition list must hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `[column, function, value]`.
    Compare {
        /// The column tested.
        column: String,
        /// How it is compared.
        function: Function,
        /// The value compared against.
        value: Datum,
    },
    /// A literal `true` or `false`, allowed in `monitor_cond` conditions.
    Constant(bool),
}

impl Condition {
    /// `[column, function, value]`.
    pub fn new(column: impl Into<String>, function: Function, value: impl Into<Datum>) -> Self {
        Condition::Compare {
            column: column.into(),
            function,
            value: value.into(),
        }
    }

    /// `[column, "==", value]`.
    pub fn eq(column: impl Into<String>, value: impl Into<Datum>) -> Self {
        Self::new(column, Function::Equal, value)
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> Value {
        match self {
            Condition::Compare {
                column,
                function,
                value,
            } => Value::Array(vec![
                Value::String(column.clone()),
                Value::String(function.as_str().into()),
                value.to_json(),
            ]),
            Condition::Constant(b) => Value::Bool(*b),
        }
    }

    fn check(&self, table: &TableSchema) -> Result<(), ConstraintError> {
        let Condition::Compare {
            column,
            function,
            value,
        } = self
        else {
            return Ok(());
        };
        let ty = table.column_type(column).ok_or_else(|| {
            ConstraintError::new(format!("table {} has no column {column}", table.name))
        })?;
        if function.is_ordering()
            && !(ty.is_scalar() && matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real))
        {
            return Err(ConstraintError::new(format!(
                "{} needs an integer or real column, and {column} is not",
                function.as_str()
            )));
        }
        let check_type = match function {
            Function::Includes | Function::Excludes => ty.unbounded(),
            _ => ty.clone(),
        };
        check_type
            .check(value, true)
            .map_err(|e| e.within(format!("condition on {column}")))
    }
}

/// How a `mutate` changes a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutator {
    /// `+=`
    Add,
    /// `-=`
    Subtract,
    /// `*=`
    Multiply,
    /// `/=`
    Divide,
    /// `%=`
    Remainder,
    /// `insert`: add elements to a set or pairs to a map.
    Insert,
    /// `delete`: remove elements from a set, or pairs (or keys) from a map.
    Delete,
}

impl Mutator {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutator::Add => "+=",
            Mutator::Subtract => "-=",
            Mutator::Multiply => "*=",
            Mutator::Divide => "/=",
            Mutator::Remainder => "%=",
            Mutator::Insert => "insert",
            Mutator::Delete => "delete",
        }
    }
}

/// One mutation of a `mutate` operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The column changed.
    pub column: String,
    /// How.
    pub mutator: Mutator,
    /// The argument.
    pub value: Datum,
}

impl Mutation {
    /// A mutation.
    pub fn new(column: impl Into<String>, mutator: Mutator, value: impl Into<Datum>) -> Self {
        Self {
            column: column.into(),
            mutator,
            value: value.into(),
        }
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            Value::String(self.column.clone()),
            Value::String(self.mutator.as_str().into()),
            self.value.to_json(),
        ])
    }

    fn check(&self, table: &TableSchema) -> Result<(), ConstraintError> {
        let column = table.column(&self.column).ok_or_else(|| {
            ConstraintError::new(format!(
                "table {} has no column {}",
                table.name, self.column
            ))
        })?;
        if !column.mutable {
            return Err(ConstraintError::new(format!(
                "column {} is not mutable",
                self.column
            )));
        }
        let ty = &column.column_type;
        let result = match self.mutator {
            Mutator::Insert => ty.unbounded().check(&self.value, true),
            Mutator::Delete => {
                // A map's pairs may be deleted by key alone.
                if ty.is_map() && matches!(self.value, Datum::Set(_)) {
                    let keys = ColumnType {
                        value: None,
                        ..ty.unbounded()
                    };
                    keys.check(&self.value, true)
                } else {
                    ty.unbounded().check(&self.value, true)
                }
            }
            arith => {
                if ty.is_map() || !matches!(ty.key.atomic, AtomicType::Integer | AtomicType::Real) {
                    return Err(ConstraintError::new(format!(
                        "{} needs an integer or real column, and {} is not",
                        arith.as_str(),
                        self.column
                    )));
                }
                if arith == Mutator::Remainder && ty.key.atomic == AtomicType::Real {
                    return Err(ConstraintError::new("%= is not defined for reals"));
                }
                match self.value.as_scalar() {
                    // The argument is checked for type only: range
                    // constraints apply to the result, which the server checks.
                    Some(a) => {
                        ColumnType::scalar(ty.key.atomic).check(&Datum::scalar(a.clone()), false)
                    }
                    None => Err(ConstraintError::new(
                        "arithmetic mutations take a single value",
                    )),
                }
            }
        };
        result.map_err(|e| e.within(format!("mutation of {}", self.column)))
    }
}

/// What a `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// Until the selected rows equal the given rows.
    Equal,
    /// Until they differ.
    NotEqual,
}

/// One operation of a `transact`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Insert a row.
    Insert {
        /// The table.
        table: String,
        /// The columns to set; others take their defaults.
        row: Row,
        /// A name by which later operations refer to the new row.
        uuid_name: Option<String>,
    },
    /// Read matching rows.
    Select {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// Which columns; all when `None`.
        columns: Option<Vec<String>>,
    },
    /// Set columns of matching rows.
    Update {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// The new values.
        row: Row,
    },
    /// Change columns of matching rows relative to their current values.
    Mutate {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// The changes.
        mutations: Vec<Mutation>,
    },
    /// Delete matching rows.
    Delete {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
    },
    /// Block the transaction until the selected rows do (or do not) equal `rows`.
    Wait {
        /// The table.
        table: String,
        /// Which rows.
        conditions: Vec<Condition>,
        /// Which columns are compared.
        columns: Vec<String>,
        /// Equal or not equal.
        until: WaitUntil,
        /// The rows compared against.
        rows: Vec<Row>,
        /// Give up after this many milliseconds; `None` waits for ever.
        timeout_ms: Option<u64>,
    },
    /// Commit the transaction, durably if asked.
    Commit {
        /// Wait for the change to reach disk.
        durable: bool,
    },
    /// Abort the transaction (always fails, by design).
    Abort,
    /// Log a comment with the transaction.
    Comment(String),
    /// Fail unless this session holds the lock.
    Assert {
        /// The lock name.
        lock: String,
    },
}

fn table_and_where(o: &mut Map<String, Value>, table: &str, conditions: &[Condition]) {
    o.insert("table".into(), Value::String(table.to_owned()));
    o.insert(
        "where".into(),
        Value::Array(conditions.iter().map(Condition::to_json).collect()),
    );
}

impl Operation {
    /// The operation name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Insert { .. } => "insert",
            Operation::Select { .. } => "select",
            Operation::Update { .. } => "update",
            Operation::Mutate { .. } => "mutate",
            Operation::Delete { .. } => "delete",
            Operation::Wait { .. } => "wait",
            Operation::Commit { .. } => "commit",
            Operation::Abort => "abort",
            Operation::Comment(_) => "comment",
            Operation::Assert { .. } => "assert",
        }
    }

    /// The table the operation acts on, if any.
    pub fn table(&self) -> Option<&str> {
        match self {
            Operation::Insert { table, .. }
            | Operation::Select { table, .. }
            | Operation::Update { table, .. }
            | Operation::Mutate { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Wait { table, .. } => Some(table),
            _ => None,
        }
    }

    /// The JSON encoding.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("op".into(), Value::String(self.name().into()));
        match self {
            Operation::Insert {
                table,
                row,
                uuid_name,
            } => {
                o.insert("table".into(), Value::String(table.clone()));
                o.insert("row".into(), row.to_json());
                if let Some(n) = uuid_name {
                    o.insert("uuid-name".into(), Value::String(n.clone()));
                }
            }
            Operation::Select {
                table,
                conditions,
                columns,
            } => {
                table_and_where(&mut o, table, conditions);
                if let Some(c) = columns {
                    o.insert(
                        "columns".into(),
                        c.iter().map(|s| Value::String(s.clone())).collect(),
                    );
                }
            }
            Operation::Update {
                table,
                conditions,
                row,
            } => {
                table_and_where(&mut o, table, conditions);
                o.insert("row".into(), row.to_json());
            }
            Operation::Mutate {
                table,
                conditions,
                mutations,
            } => {
                table_and_where(&mut o, table, conditions);
                o.insert(
                    "mutations".into(),
                    Value::Array(mutations.iter().map(Mutation::to_json).collect()),
                );
            }
            Operation::Delete { table, conditions } => table_and_where(&mut o, table, conditions),
            Operation::Wait {
                table,
                conditions,
                columns,
                until,
                rows,
                timeout_ms,
            } => {
                table_and_where(&mut o, table, conditions);
                o.insert(
                    "columns".into(),
                    columns.iter().map(|s| Value::String(s.clone())).collect(),
                );
                o.insert(
                    "until".into(),
                    Value::String(
                        match until {
                            WaitUntil::Equal => "==",
                            WaitUntil::NotEqual => "!=",
                        }
                        .into(),
                    ),
                );
                o.insert(
                    "rows".into(),
                    Value::Array(rows.iter().map(Row::to_json).collect()),
                );
                if let Some(t) = timeout_ms {
                    o.insert("timeout".into(), Value::from(*t));
                }
            }
            Operation::Commit { durable } => {
                o.insert("durable".into(), Value::Bool(*durable));
            }
            Operation::Abort => {}
            Operation::Comment(c) => {
                o.insert("comment".into(), Value::String(c.clone()));
            }
            Operation::Assert { lock } => {
                o.insert("lock".into(), Value::String(lock.clone()));
            }
        }
        Value::Object(o)
    }

    /// Checks the operation against a schema, so that mistakes are reported
    /// with their cause before anything is sent.
    pub fn check(&self, schema: &DatabaseSchema) -> Result<(), ConstraintError> {
        let table = match self.table() {
            Some(name) => Some(schema.table(name).ok_or_else(|| {
                ConstraintError::new(format!("no table {name} in {}", schema.name))
            })?),
            None => None,
        };
        let Some(table) = table else {
            return Ok(());
        };
        let check_conditions = |conditions: &[Condition]| -> Result<(), ConstraintError> {
            conditions.iter().try_for_each(|c| c.check(table))
        };
        let check_columns = |columns: &[String]| -> Result<(), ConstraintError> {
            for c in columns {
                if table.column_type(c).is_none() {
                    return Err(ConstraintError::new(format!(
                        "table {} has no column {c}",
                        table.name
                    )));
                }
            }
            Ok(())
        };
        match self {
            Operation::Insert { row, .. } => table.check_row(row, false),
            Operation::Select {
                conditions,
                columns,
                ..
            } => {
                check_conditions(conditions)?;
                columns.as_deref().map_or(Ok(()), check_columns)
            }
            Operation::Update {
                conditions, row, ..
            } => {
                check_conditions(conditions)?;
                table.check_row(row, true)
            }
            Operation::Mutate {
                conditions,
                mutations,
                ..
            } => {
                check_conditions(conditions)?;
                mutations.iter().try_for_each(|m| m.check(table))
            }
            Operation::Delete { conditions, .. } => check_conditions(conditions),
            Operation::Wait {
                conditions,
                columns,
                rows,
                ..
            } => {
                check_conditions(conditions)?;
                check_columns(columns)?;
                for row in rows {
                    for (name, datum) in row.iter() {
                        if !columns.iter().any(|c| c == name) {
                            return Err(ConstraintError::new(format!(
                                "wait row has column {name} not in \"columns\""
                            )));
                        }
                        let ty = table.column_type(name).ok_or_else(|| {
                            ConstraintError::new(format!(
                                "table {} has no column {name}",
                                table.name
                            ))
                        })?;
                        ty.check(datum, true)
                            .map_err(|e| e.within(format!("column {name}")))?;
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
        .map_err(|e| e.within(format!("{} on {}", self.name(), table.name)))
    }
}

/// The params of a `transact` request: the database name then the operations.
pub fn transact_params(db: &str, ops: &[Operation]) -> Vec<Value> {
    let mut params = Vec::with_capacity(ops.len() + 1);
    params.push(Value::String(db.to_owned()));
    params.extend(ops.iter().map(Operation::to_json));
    params
}

/// An operation that failed, or the transaction as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError {
    /// The error tag, such as `"constraint violation"` or `"timed out"`.
    pub error: String,
    /// The server's explanation.
    pub details: Option<String>,
}

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.details {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationResult {
    /// `insert`: the new row's UUID.
    Inserted(Uuid),
    /// `select`: the rows found.
    Rows(Vec<Row>),
    /// `update`, `mutate`, `delete`: how many rows matched.
    Count(u64),
    /// `wait`, `commit`, `comment`, `assert`: success without data.
    Empty,
    /// The operation failed.
    Error(OperationError),
}

/// A decoded `transact` reply.
///
/// OVSDB stops at the first failing operation: later entries are `None`.
/// When every operation succeeded but the commit failed (a constraint such as
/// referential integrity checked at commit), the reply has one extra error
/// entry past the operations.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactReply {
    /// One entry per operation, plus possibly a trailing commit error.
    pub results: Vec<Option<OperationResult>>,
}

impl TransactReply {
    /// The first error, with the index of the operation that caused it (equal
    /// to the number of operations for a commit failure).
    pub fn error(&self) -> Option<(usize, &OperationError)> {
        self.results.iter().enumerate().find_map(|(i, r)| match r {
            Some(OperationResult::Error(e)) => Some((i, e)),
            _ => None,
        })
    }

    /// Whether the transaction committed.
    pub fn is_success(&self) -> bool {
        self.error().is_none()
    }

    /// The UUID of the `i`th operation's inserted row.
    pub fn inserted(&self, i: usize) -> Option<Uuid> {
        match self.results.get(i) {
            Some(Some(OperationResult::Inserted(u))) => Some(*u),
            _ => None,
        }
    }

    /// The rows of the `i`th operation's select.
    pub fn rows(&self, i: usize) -> Option<&[Row]> {
        match self.results.get(i) {
            Some(Some(OperationResult::Rows(r))) => Some(r),
            _ => None,
        }
    }

    /// The count of the `i`th operation's update, mutate or delete.
    pub fn count(&self, i: usize) -> Option<u64> {
        match self.results.get(i) {
            Some(Some(OperationResult::Count(c))) => Some(*c),
            _ => None,
        }
    }

    /// Decodes the reply. `tables` gives, for each operation, the schema of
    /// its table when known, so that selected rows are typed.
    pub fn from_json(value: &Value, tables: &[Option<&TableSchema>]) -> Result<Self, DecodeError> {
        let Value::Array(entries) = value else {
            return bad(format!("transact result {} is not an array", show(value)));
        };
        if entries.len() > tables.len() + 1 {
            return bad("transact result has more entries than operations");
        }
        let mut results = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let table = tables.get(i).copied().flatten();
            results.push(decode_result(entry, table).map_err(|e| e.within(format!("result {i}")))?);
        }
        Ok(Self { results })
    }
}

fn decode_result(
    entry: &Value,
    table: Option<&TableSchema>,
) -> Result<Option<OperationResult>, DecodeError> {
    let o = match entry {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        _ => return bad(format!("{} is not an operation result", show(entry))),
    };
    if let Some(e) = o.get("error") {
        let error = e
            .as_str()
            .ok_or_else(|| DecodeError::new("error is not a string"))?
            .to_owned();
        let details = o.get("details").and_then(Value::as_str).map(str::to_owned);
        return Ok(Some(OperationResult::Error(OperationError {
            error,
            details,
        })));
    }
    if let Some(u) = o.get("uuid") {
        let atom = Atom::from_json_typed(u, AtomicType::Uuid)?;
        return Ok(atom.as_uuid().map(OperationResult::Inserted));
    }
    if let Some(rows) = o.get("rows") {
        let Value::Array(rows) = rows else {
            return bad("rows is not an array");
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(match table {
                Some(t) => Row::from_json(r, t, false)?,
                None => Row::from_json_untyped(r)?,
            });
        }
        return Ok(Some(OperationResult::Rows(out)));
    }
    if let Some(c) = o.get("count") {
        let c = c
            .as_u64()
            .ok_or_else(|| DecodeError::new(format!("count {} is not a count", show(c))))?;
        return Ok(Some(OperationResult::Count(c)));
    }
    Ok(Some(OperationResult::Empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({
            "name": "t", "version": "1.0.0",
            "tables": {
                "A": {"columns": {
                    "name": {"type": "string", "mutable": false},
                    "n": {"type": {"key": {"type": "integer", "maxInteger": 10}}},
                    "r": {"type": "real"},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "kv": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                    "ref": {"type": {"key": {"type": "uuid", "refTable": "A"}, "min": 0, "max": 1}}
                }, "isRoot": true}
            }
        }))
        .unwrap()
    }

    #[test]
    fn encodes_every_operation() {
        let cases: Vec<(Operation, Value)> = vec![
            (
                Operation::Insert {
                    table: "A".into(),
                    row: Row::new()
                        .with("name", "x")
                        .with("ref", Atom::NamedUuid("me".into())),
                    uuid_name: Some("me".into()),
                },
                json!({"op": "insert", "table": "A", "row": {"name": "x", "ref": ["named-uuid", "me"]}, "uuid-name": "me"}),
            ),
            (
                Operation::Select {
                    table: "A".into(),
                    conditions: vec![
                        Condition::eq("name", "x"),
                        Condition::new("n", Function::Less, 3i64),
                    ],
                    columns: Some(vec!["n".into()]),
                },
                json!({"op": "select", "table": "A", "where": [["name", "==", "x"], ["n", "<", 3]], "columns": ["n"]}),
            ),
            (
                Operation::Update {
                    table: "A".into(),
                    conditions: vec![],
                    row: Row::new().with("kv", Datum::map([("k", "v")])),
                },
                json!({"op": "update", "table": "A", "where": [], "row": {"kv": ["map", [["k", "v"]]]}}),
            ),
            (
                Operation::Mutate {
                    table: "A".into(),
                    conditions: vec![Condition::new(
                        "tags",
                        Function::Includes,
                        Datum::set(["a"]),
                    )],
                    mutations: vec![
                        Mutation::new("n", Mutator::Add, 1i64),
                        Mutation::new("tags", Mutator::Delete, Datum::set(["a", "b"])),
                    ],
                },
                json!({"op": "mutate", "table": "A", "where": [["tags", "includes", "a"]], "mutations": [["n", "+=", 1], ["tags", "delete", ["set", ["a", "b"]]]]}),
            ),
            (
                Operation::Delete {
                    table: "A".into(),
                    conditions: vec![Condition::eq("n", 1i64)],
                },
                json!({"op": "delete", "table": "A", "where": [["n", "==", 1]]}),
            ),
            (
                Operation::Wait {
                    table: "A".into(),
                    conditions: vec![],
                    columns: vec!["n".into()],
                    until: WaitUntil::NotEqual,
                    rows: vec![Row::new().with("n", 1i64)],
                    timeout_ms: Some(0),
                },
                json!({"op": "wait", "table": "A", "where": [], "columns": ["n"], "until": "!=", "rows": [{"n": 1}], "timeout": 0}),
            ),
            (
                Operation::Commit { durable: false },
                json!({"op": "commit", "durable": false}),
            ),
            (Operation::Abort, json!({"op": "abort"})),
            (
                Operation::Comment("hi".into()),
                json!({"op": "comment", "comment": "hi"}),
            ),
            (
                Operation::Assert { lock: "l".into() },
                json!({"op": "assert", "lock": "l"}),
            ),
        ];
        let s = schema();
        for (op, expected) in cases {
            assert_eq!(op.to_json(), expected);
            op.check(&s)
                .unwrap_or_else(|e| panic!("{} rejected: {e}", op.name()));
        }
    }

    #[test]
    fn schema_check_catches_mistakes() {
        let s = schema();
        let bad_ops = vec![
            Operation::Insert {
                table: "B".into(),
                row: Row::new(),
                uuid_name: None,
            },
            Operation::Insert {
                table: "A".into(),
                row: Row::new().with("nope", 1i64),
                uuid_name: None,
            },
            Operation::Insert {
                table: "A".into(),
                row: Row::new().with("n", "x"),
                uuid_name: None,
            },
            Operation::Insert {
                table: "A".into(),
                row: Row::new().with("n", 11i64),
                uuid_name: None,
            },
            Operation::Update {
                table: "A".into(),
                conditions: vec![],
                row: Row::new().with("name", "y"),
            },
            Operation::Select {
                table: "A".into(),
                conditions: vec![Condition::new("tags", Function::Less, "a")],
                columns: None,
            },
            Operation::Select {
                table: "A".into(),
                conditions: vec![],
                columns: Some(vec!["zz".into()]),
            },
            Operation::Mutate {
                table: "A".into(),
                conditions: vec![],
                mutations: vec![Mutation::new("r", Mutator::Remainder, 2.0)],
            },
            Operation::Mutate {
                table: "A".into(),
                conditions: vec![],
                mutations: vec![Mutation::new("kv", Mutator::Add, 1i64)],
            },
            Operation::Mutate {
                table: "A".into(),
                conditions: vec![],
                mutations: vec![Mutation::new("name", Mutator::Insert, "x")],
            },
        ];
        for op in bad_ops {
            assert!(op.check(&s).is_err(), "{op:?} accepted");
        }
        // Deleting map entries by key is allowed.
        Operation::Mutate {
            table: "A".into(),
            conditions: vec![],
            mutations: vec![Mutation::new("kv", Mutator::Delete, Datum::set(["k"]))],
        }
        .check(&s)
        .unwrap();
    }

    #[test]
    fn decodes_results() {
        let s = schema();
        let a = s.table("A");
        let reply = json!([
            {"uuid": ["uuid", "36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b"]},
            {"rows": [{"n": 3, "tags": ["set", ["a", "b"]]}]},
            {"count": 2},
            {},
            {"error": "constraint violation", "details": "too big"},
            null
        ]);
        let r = TransactReply::from_json(&reply, &[a, a, a, None, a, a]).unwrap();
        assert_eq!(
            r.inserted(0).unwrap().to_string(),
            "36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b"
        );
        assert_eq!(
            r.rows(1).unwrap()[0].get("tags"),
            Some(&Datum::set(["a", "b"]))
        );
        assert_eq!(r.count(2), Some(2));
        assert_eq!(r.results[3], Some(OperationResult::Empty));
        let (i, e) = r.error().unwrap();
        assert_eq!((i, e.error.as_str()), (4, "constraint violation"));
        assert_eq!(r.results[5], None);
        assert!(TransactReply::from_json(&json!({}), &[]).is_err());
        assert!(TransactReply::from_json(&json!([{}, {}, {}]), &[None]).is_err());
        assert!(TransactReply::from_json(&json!([{"count": -1}]), &[None]).is_err());
    }
}
