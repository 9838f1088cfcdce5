//! Database schemas (RFC 7047 section 3.2): tables, columns and their types
//! with constraints, and checking data against them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::data::{Atom, Datum, DecodeError, bad, show};

/// The five atomic types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtomicType {
    /// `integer`: 64-bit signed.
    Integer,
    /// `real`: IEEE double.
    Real,
    /// `boolean`.
    Boolean,
    /// `string`: UTF-8.
    String,
    /// `uuid`: a row reference.
    Uuid,
}

impl AtomicType {
    /// Parses the schema name of an atomic type.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }

    /// The schema name.
    pub fn name(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }
}

impl fmt::Display for AtomicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether references keep their target alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefType {
    /// Deleting a referenced row is an error (the default).
    #[default]
    Strong,
    /// References to a deleted row are dropped.
    Weak,
}

/// An atomic type with its constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    /// The atomic type.
    pub atomic: AtomicType,
    /// The only values allowed, if restricted.
    pub enumeration: Option<Vec<Atom>>,
    /// Smallest integer allowed.
    pub min_integer: Option<i64>,
    /// Largest integer allowed.
    pub max_integer: Option<i64>,
    /// Smallest real allowed.
    pub min_real: Option<f64>,
    /// Largest real allowed.
    pub max_real: Option<f64>,
    /// Shortest string allowed, in Unicode characters.
    pub min_length: Option<u64>,
    /// Longest string allowed, in Unicode characters.
    pub max_length: Option<u64>,
    /// For UUIDs, the table referred to.
    pub ref_table: Option<String>,
    /// For UUIDs with `ref_table`, the reference strength.
    pub ref_type: RefType,
}

impl BaseType {
    /// An unconstrained base type.
    pub fn new(atomic: AtomicType) -> Self {
        Self {
            atomic,
            enumeration: None,
            min_integer: None,
            max_integer: None,
            min_real: None,
            max_real: None,
            min_length: None,
            max_length: None,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }

    /// Parses a `<base-type>`.
    pub fn from_json(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::String(name) => AtomicType::from_name(name)
                .map(Self::new)
                .ok_or_else(|| DecodeError::new(format!("unknown atomic type \"{name}\""))),
            Value::Object(o) => {
                let name = o
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| DecodeError::new("base type lacks \"type\""))?;
                let atomic = AtomicType::from_name(name)
                    .ok_or_else(|| DecodeError::new(format!("unknown atomic type \"{name}\"")))?;
                let mut base = Self::new(atomic);
                for key in o.keys() {
                    let allowed = match key.as_str() {
                        "type" | "enum" => true,
                        "minInteger" | "maxInteger" => atomic == AtomicType::Integer,
                        "minReal" | "maxReal" => atomic == AtomicType::Real,
                        "minLength" | "maxLength" => atomic == AtomicType::String,
                        "refTable" | "refType" => atomic == AtomicType::Uuid,
                        _ => false,
                    };
                    if !allowed {
                        return bad(format!(
                            "member \"{key}\" not allowed in {atomic} base type"
                        ));
                    }
                }
                if let Some(e) = o.get("enum") {
                    let scalar_type = ColumnType {
                        key: Self::new(atomic),
                        value: None,
                        min: 0,
                        max: None,
                    };
                    let datum = Datum::from_json_loose(e, &scalar_type)
                        .map_err(|err| err.within("enum"))?;
                    base.enumeration = Some(datum.as_set().to_vec());
                }
                base.min_integer = opt_i64(o, "minInteger")?;
                base.max_integer = opt_i64(o, "maxInteger")?;
                base.min_real = opt_f64(o, "minReal")?;
                base.max_real = opt_f64(o, "maxReal")?;
                base.min_length = opt_u64(o, "minLength")?;
                base.max_length = opt_u64(o, "maxLength")?;
                base.ref_table = match o.get("refTable") {
                    None => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(v) => return bad(format!("refTable {} is not a string", show(v))),
                };
                base.ref_type = match o.get("refType").map(|v| v.as_str()) {
                    None | Some(Some("strong")) => RefType::Strong,
                    Some(Some("weak")) => RefType::Weak,
                    Some(_) => return bad("refType must be \"strong\" or \"weak\""),
                };
                Ok(base)
            }
            _ => bad(format!("{} is not a base type", show(value))),
        }
    }

    /// Checks one atom against the type and its constraints. `allow_named`
    /// admits `named-uuid` atoms, which are valid only inside a transaction.
    pub fn check(&self, atom: &Atom, allow_named: bool) -> Result<(), ConstraintError> {
        let type_ok = match (self.atomic, atom) {
            (AtomicType::Integer, Atom::Integer(_))
            | (AtomicType::Real, Atom::Real(_) | Atom::Integer(_))
            | (AtomicType::Boolean, Atom::Boolean(_))
            | (AtomicType::String, Atom::String(_))
            | (AtomicType::Uuid, Atom::Uuid(_)) => true,
            (AtomicType::Uuid, Atom::NamedUuid(_)) => allow_named,
            _ => false,
        };
        if !type_ok {
            return Err(ConstraintError::new(format!(
                "{atom} is not of type {}",
                self.atomic
            )));
        }
        if let Some(allowed) = &self.enumeration {
            if allowed.binary_search(atom).is_err() {
                return Err(ConstraintError::new(format!(
                    "{atom} is not one of the allowed values"
                )));
            }
        }
        match atom {
            Atom::Integer(i)
                if self.atomic == AtomicType::Integer
                    && (self.min_integer.is_some_and(|m| *i < m)
                        || self.max_integer.is_some_and(|m| *i > m)) =>
            {
                return Err(ConstraintError::new(format!("{i} is out of range")));
            }
            Atom::Integer(_) if self.atomic == AtomicType::Integer => {}
            Atom::Integer(_) | Atom::Real(_) if self.atomic == AtomicType::Real => {
                let r = atom.as_f64().unwrap_or(f64::NAN);
                if !r.is_finite() {
                    return Err(ConstraintError::new("reals must be finite"));
                }
                if self.min_real.is_some_and(|m| r < m) || self.max_real.is_some_and(|m| r > m) {
                    return Err(ConstraintError::new(format!("{r} is out of range")));
                }
            }
            Atom::String(s) => {
                let n = s.chars().count() as u64;
                if self.min_length.is_some_and(|m| n < m) || self.max_length.is_some_and(|m| n > m)
                {
                    return Err(ConstraintError::new(format!(
                        "{atom} has a length out of range"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn opt_i64(o: &Map<String, Value>, key: &str) -> Result<Option<i64>, DecodeError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| DecodeError::new(format!("{key} {} is not an integer", show(v)))),
    }
}

fn opt_u64(o: &Map<String, Value>, key: &str) -> Result<Option<u64>, DecodeError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            DecodeError::new(format!("{key} {} is not a non-negative integer", show(v)))
        }),
    }
}

fn opt_f64(o: &Map<String, Value>, key: &str) -> Result<Option<f64>, DecodeError> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| DecodeError::new(format!("{key} {} is not a number", show(v)))),
    }
}

fn opt_bool(o: &Map<String, Value>, key: &str) -> Result<Option<bool>, DecodeError> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => bad(format!("{key} {} is not a boolean", show(v))),
    }
}

/// Data that break a schema's type or constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConstraintError {
    message: String,
}

impl ConstraintError {
    /// An error with the given explanation.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The same error, prefixed with where it happened.
    pub fn within(self, context: impl fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
        }
    }
}

/// A column's type: a set of `key` atoms, or a map from `key` to `value`
/// atoms, holding between `min` and `max` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// Type of set elements or map keys.
    pub key: BaseType,
    /// Type of map values; `None` for sets and scalars.
    pub value: Option<BaseType>,
    /// Fewest elements (0 or 1).
    pub min: u64,
    /// Most elements; `None` means unlimited.
    pub max: Option<u64>,
}

impl ColumnType {
    /// A scalar of the given atomic type.
    pub fn scalar(atomic: AtomicType) -> Self {
        Self {
            key: BaseType::new(atomic),
            value: None,
            min: 1,
            max: Some(1),
        }
    }

    /// Parses a `<type>`.
    pub fn from_json(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::String(_) => Ok(Self {
                key: BaseType::from_json(value)?,
                value: None,
                min: 1,
                max: Some(1),
            }),
            Value::Object(o) => {
                for key in o.keys() {
                    if !matches!(key.as_str(), "key" | "value" | "min" | "max") {
                        return bad(format!("member \"{key}\" not allowed in a type"));
                    }
                }
                let key = BaseType::from_json(
                    o.get("key")
                        .ok_or_else(|| DecodeError::new("type lacks \"key\""))?,
                )
                .map_err(|e| e.within("key"))?;
                let value_type = match o.get("value") {
                    None => None,
                    Some(v) => Some(BaseType::from_json(v).map_err(|e| e.within("value"))?),
                };
                let min = opt_u64(o, "min")?.unwrap_or(1);
                let max = match o.get("max") {
                    None => Some(1),
                    Some(Value::String(s)) if s == "unlimited" => None,
                    Some(v) => Some(v.as_u64().ok_or_else(|| {
                        DecodeError::new(format!("max {} is not a count", show(v)))
                    })?),
                };
                if min > 1 {
                    return bad("min must be 0 or 1");
                }
                if max.is_some_and(|m| m < 1 || m < min) {
                    return bad("max must be at least 1 and at least min");
                }
                Ok(Self {
                    key,
                    value: value_type,
                    min,
                    max,
                })
            }
            _ => bad(format!("{} is not a type", show(value))),
        }
    }

    /// Whether the column is a map.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Whether the column can hold more than one element, which decides how
    /// `update2` diffs apply to it.
    pub fn is_composite(&self) -> bool {
        self.max.is_none_or(|m| m > 1)
    }

    /// Whether exactly one element is required.
    pub fn is_scalar(&self) -> bool {
        self.min == 1 && self.max == Some(1) && self.value.is_none()
    }

    /// Whether the column holds zero or one element.
    pub fn is_optional(&self) -> bool {
        self.min == 0 && self.max == Some(1)
    }

    /// Checks an element count against `min` and `max`.
    pub fn check_count(&self, n: usize) -> Result<(), DecodeError> {
        let n = n as u64;
        if n < self.min || self.max.is_some_and(|m| n > m) {
            return bad(format!(
                "{n} elements, but the type allows {} to {}",
                self.min,
                self.max.map_or("unlimited".to_owned(), |m| m.to_string())
            ));
        }
        Ok(())
    }

    /// Checks a whole datum: kind, count, and every atom's constraints.
    pub fn check(&self, datum: &Datum, allow_named: bool) -> Result<(), ConstraintError> {
        match (datum, &self.value) {
            (Datum::Map(_), None) => {
                return Err(ConstraintError::new("a map given for a set column"));
            }
            (Datum::Set(v), Some(_)) if !v.is_empty() => {
                return Err(ConstraintError::new("a set given for a map column"));
            }
            _ => {}
        }
        self.check_count(datum.len())
            .map_err(|e| ConstraintError::new(e.to_string()))?;
        self.check_elements(datum, allow_named)
    }

    /// Checks every atom's type and constraints, but not the count.
    pub fn check_elements(&self, datum: &Datum, allow_named: bool) -> Result<(), ConstraintError> {
        match datum {
            Datum::Set(v) => {
                for a in v {
                    self.key.check(a, allow_named)?;
                }
            }
            Datum::Map(v) => {
                let value_type = self
                    .value
                    .as_ref()
                    .ok_or_else(|| ConstraintError::new("a map given for a set column"))?;
                for (k, val) in v {
                    self.key.check(k, allow_named)?;
                    value_type.check(val, allow_named)?;
                }
            }
        }
        Ok(())
    }

    /// The value a column of this type holds when nothing was set.
    pub fn default_datum(&self) -> Datum {
        if self.min == 0 {
            if self.value.is_some() {
                Datum::empty_map()
            } else {
                Datum::empty_set()
            }
        } else {
            match &self.value {
                Some(v) => Datum::Map(vec![(
                    crate::data::default_atom(&self.key),
                    crate::data::default_atom(v),
                )]),
                None => Datum::scalar(crate::data::default_atom(&self.key)),
            }
        }
    }

    /// The same type with any number of elements allowed, as the argument of
    /// `insert`/`delete` mutations and `includes`/`excludes` conditions needs.
    pub fn unbounded(&self) -> Self {
        Self {
            min: 0,
            max: None,
            ..self.clone()
        }
    }
}

/// One column's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    /// The column name.
    pub name: String,
    /// The column's type.
    pub column_type: ColumnType,
    /// Not persisted to disk.
    pub ephemeral: bool,
    /// Whether `update` and `mutate` may change it.
    pub mutable: bool,
}

/// One table's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// The table name.
    pub name: String,
    /// Declared columns by name (the implicit `_uuid` and `_version` are not listed).
    pub columns: BTreeMap<String, ColumnSchema>,
    /// Row limit, if any.
    pub max_rows: Option<u64>,
    /// Whether rows survive without references to them.
    pub is_root: bool,
    /// Sets of columns whose values must be unique across rows.
    pub indexes: Vec<Vec<String>>,
    uuid_type: ColumnType,
    // Column names (including `_uuid` and `_version`) shared by every row.
    names: BTreeMap<String, Arc<str>>,
}

impl TableSchema {
    /// Parses a `<table-schema>`.
    pub fn from_json(name: &str, value: &Value) -> Result<Self, DecodeError> {
        let Value::Object(o) = value else {
            return bad(format!("{} is not a table schema", show(value)));
        };
        let Some(Value::Object(cols)) = o.get("columns") else {
            return bad("table lacks \"columns\"");
        };
        let mut columns = BTreeMap::new();
        for (col_name, col) in cols {
            if col_name.starts_with('_') {
                return bad(format!("column name {col_name} is reserved"));
            }
            let Value::Object(c) = col else {
                return bad(format!("column {col_name} is not an object"));
            };
            let column_type =
                ColumnType::from_json(c.get("type").ok_or_else(|| {
                    DecodeError::new(format!("column {col_name} lacks \"type\""))
                })?)
                .map_err(|e| e.within(format!("column {col_name}")))?;
            columns.insert(
                col_name.clone(),
                ColumnSchema {
                    name: col_name.clone(),
                    column_type,
                    ephemeral: opt_bool(c, "ephemeral")?.unwrap_or(false),
                    mutable: opt_bool(c, "mutable")?.unwrap_or(true),
                },
            );
        }
        let mut indexes = Vec::new();
        if let Some(ix) = o.get("indexes") {
            let Value::Array(ix) = ix else {
                return bad("indexes is not an array");
            };
            for index in ix {
                let Value::Array(cols) = index else {
                    return bad("an index is not an array");
                };
                let mut names = Vec::with_capacity(cols.len());
                for c in cols {
                    let Some(c) = c.as_str() else {
                        return bad("an index column is not a string");
                    };
                    names.push(c.to_owned());
                }
                indexes.push(names);
            }
        }
        let names = columns
            .keys()
            .map(String::as_str)
            .chain(["_uuid", "_version"])
            .map(|n| (n.to_owned(), Arc::from(n)))
            .collect();
        Ok(Self {
            name: name.to_owned(),
            columns,
            names,
            max_rows: opt_u64(o, "maxRows")?,
            is_root: opt_bool(o, "isRoot")?.unwrap_or(false),
            indexes,
            uuid_type: ColumnType::scalar(AtomicType::Uuid),
        })
    }

    /// The type of a column, including the implicit `_uuid` and `_version`.
    pub fn column_type(&self, column: &str) -> Option<&ColumnType> {
        match column {
            "_uuid" | "_version" => Some(&self.uuid_type),
            _ => self.columns.get(column).map(|c| &c.column_type),
        }
    }

    /// The shared name and type of a column, including `_uuid` and `_version`.
    pub fn column_entry(&self, column: &str) -> Option<(&Arc<str>, &ColumnType)> {
        Some((self.names.get(column)?, self.column_type(column)?))
    }

    /// A declared column.
    pub fn column(&self, column: &str) -> Option<&ColumnSchema> {
        self.columns.get(column)
    }

    /// Checks a row's columns against the schema, for `insert` and `update`.
    /// `for_update` also refuses immutable columns.
    pub fn check_row(
        &self,
        row: &crate::data::Row,
        for_update: bool,
    ) -> Result<(), ConstraintError> {
        for (name, datum) in row.iter() {
            let column = self.columns.get(name).ok_or_else(|| {
                ConstraintError::new(format!("table {} has no column {name}", self.name))
            })?;
            if for_update && !column.mutable {
                return Err(ConstraintError::new(format!(
                    "column {name} is not mutable"
                )));
            }
            column
                .column_type
                .check(datum, true)
                .map_err(|e| e.within(format!("column {name}")))?;
        }
        Ok(())
    }
}

/// A whole database schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    /// The database name.
    pub name: String,
    /// The schema version, `x.y.z`.
    pub version: String,
    /// The checksum recorded in the schema file, if any.
    pub cksum: Option<String>,
    /// Tables by name.
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parses a `<database-schema>`, as returned by `get_schema`.
    pub fn from_json(value: &Value) -> Result<Self, DecodeError> {
        let Value::Object(o) = value else {
            return bad(format!("{} is not a database schema", show(value)));
        };
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| DecodeError::new("schema lacks \"name\""))?
            .to_owned();
        let version = o
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let cksum = o.get("cksum").and_then(Value::as_str).map(str::to_owned);
        let Some(Value::Object(tables_json)) = o.get("tables") else {
            return bad("schema lacks \"tables\"");
        };
        let mut tables = BTreeMap::new();
        for (table_name, t) in tables_json {
            tables.insert(
                table_name.clone(),
                TableSchema::from_json(table_name, t)
                    .map_err(|e| e.within(format!("table {table_name}")))?,
            );
        }
        for table in tables.values() {
            for column in table.columns.values() {
                let ty = &column.column_type;
                for base in std::iter::once(&ty.key).chain(ty.value.as_ref()) {
                    if let Some(target) = &base.ref_table {
                        if !tables.contains_key(target) {
                            return bad(format!(
                                "column {}.{} refers to unknown table {target}",
                                table.name, column.name
                            ));
                        }
                    }
                }
            }
            for index in &table.indexes {
                for c in index {
                    if table.column_type(c).is_none() {
                        return bad(format!("index on unknown column {}.{c}", table.name));
                    }
                }
            }
        }
        Ok(Self {
            name,
            version,
            cksum,
            tables,
        })
    }

    /// A table's schema.
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_types_and_constraints() {
        let t = ColumnType::from_json(&json!({
            "key": {"type": "string", "enum": ["set", ["secure", "standalone"]]},
            "min": 0, "max": 1
        }))
        .unwrap();
        assert!(t.is_optional());
        assert!(t.check(&Datum::scalar("secure"), false).is_ok());
        assert!(t.check(&Datum::scalar("other"), false).is_err());
        assert!(t.check(&Datum::empty_set(), false).is_ok());
        assert!(
            t.check(&Datum::set(["secure", "standalone"]), false)
                .is_err()
        );

        let t = ColumnType::from_json(&json!({"key": {"type": "integer", "minInteger": 1, "maxInteger": 4095}, "min": 0, "max": 4096})).unwrap();
        assert!(t.is_composite());
        assert!(t.check(&Datum::set([1i64, 4095]), false).is_ok());
        assert!(t.check(&Datum::set([0i64]), false).is_err());

        let t = ColumnType::from_json(&json!({"key": {"type": "uuid", "refTable": "Port", "refType": "weak"}, "min": 0, "max": "unlimited"})).unwrap();
        assert_eq!(t.key.ref_type, RefType::Weak);
        assert_eq!(t.max, None);
        assert!(
            t.check(&Datum::set([Atom::NamedUuid("p".into())]), true)
                .is_ok()
        );
        assert!(
            t.check(&Datum::set([Atom::NamedUuid("p".into())]), false)
                .is_err()
        );

        let t = ColumnType::from_json(
            &json!({"key": {"type": "string", "minLength": 2, "maxLength": 3}}),
        )
        .unwrap();
        assert!(t.check(&Datum::scalar("ab"), false).is_ok());
        assert!(t.check(&Datum::scalar("a"), false).is_err());
        assert!(t.check(&Datum::scalar("äöü"), false).is_ok());
        assert!(t.check(&Datum::scalar("abcd"), false).is_err());
    }

    #[test]
    fn rejects_malformed_types() {
        for bad in [
            json!("int"),
            json!({"value": "string"}),
            json!({"key": "string", "min": 2}),
            json!({"key": "string", "max": 0}),
            json!({"key": {"type": "string", "minInteger": 1}}),
            json!({"key": "string", "extra": 1}),
            json!({"key": {"type": "uuid", "refType": "soft"}}),
            json!(5),
        ] {
            assert!(ColumnType::from_json(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            ColumnType::scalar(AtomicType::Integer).default_datum(),
            Datum::scalar(0i64)
        );
        assert_eq!(
            ColumnType::scalar(AtomicType::String).default_datum(),
            Datum::scalar("")
        );
        let map = ColumnType::from_json(
            &json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}),
        )
        .unwrap();
        assert_eq!(map.default_datum(), Datum::empty_map());
    }

    #[test]
    fn parses_installed_vswitch_schema() {
        let path = std::path::Path::new("/usr/share/openvswitch/vswitch.ovsschema");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("note: {} absent, skipping", path.display());
            return;
        };
        let schema = DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(schema.name, "Open_vSwitch");
        let iface = schema.table("Interface").unwrap();
        assert!(iface.column("external_ids").unwrap().column_type.is_map());
        assert!(iface.column("ofport").unwrap().column_type.is_optional());
        assert!(!iface.column("name").unwrap().mutable);
        assert_eq!(schema.table("Open_vSwitch").unwrap().max_rows, Some(1));
    }

    #[test]
    fn rejects_dangling_references() {
        let s = json!({"name": "d", "version": "1.0.0", "tables": {"A": {"columns": {"r": {"type": {"key": {"type": "uuid", "refTable": "B"}}}}}}});
        assert!(DatabaseSchema::from_json(&s).is_err());
    }
}
