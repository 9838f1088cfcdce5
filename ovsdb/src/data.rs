//! The RFC 7047 data model: atoms, data (sets and maps) and rows, with their
//! JSON encodings.
//!
//! A datum is kept in the canonical form OVS uses: elements sorted and
//! unique (maps by key), so that two data compare equal exactly when the
//! database would consider them equal, and a datum with a single element is
//! the same thing as a scalar.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use thiserror::Error;
use uuid::Uuid;

use crate::schema::{AtomicType, BaseType, ColumnType, TableSchema};

/// Why a JSON value is not the OVSDB value expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
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

/// Shorthand for building a `DecodeError` result.
pub(crate) fn bad<T>(message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError::new(message))
}

/// Truncated rendering of a JSON value for error messages, so that a huge
/// bad value does not become a huge log line.
pub(crate) fn show(value: &Value) -> String {
    let mut s = value.to_string();
    if s.len() > 80 {
        let mut cut = 77;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A single value of one of the atomic types.
#[derive(Debug, Clone)]
pub enum Atom {
    /// A 64-bit signed integer.
    Integer(i64),
    /// A double-precision real.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string.
    String(String),
    /// A row reference.
    Uuid(Uuid),
    /// A reference, within one transaction, to a row inserted with `uuid-name`.
    /// Only meaningful in requests.
    NamedUuid(String),
}

impl Atom {
    /// Builds a string atom.
    pub fn string(s: impl Into<String>) -> Self {
        Atom::String(s.into())
    }

    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The atomic type this atom belongs to (a named UUID is a UUID).
    pub fn atomic_type(&self) -> AtomicType {
        match self {
            Atom::Integer(_) => AtomicType::Integer,
            Atom::Real(_) => AtomicType::Real,
            Atom::Boolean(_) => AtomicType::Boolean,
            Atom::String(_) => AtomicType::String,
            Atom::Uuid(_) | Atom::NamedUuid(_) => AtomicType::Uuid,
        }
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The real, if this is a real atom (an integer atom widens).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atom::Real(r) => Some(*r),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean atom.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The UUID, if this is a UUID atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }

    /// The JSON encoding (RFC 7047 section 5.1).
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => Value::from(*i),
            Atom::Real(r) => serde_json::Number::from_f64(*r)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Atom::Boolean(b) => Value::Bool(*b),
            Atom::String(s) => Value::String(s.clone()),
            Atom::Uuid(u) => Value::Array(vec!["uuid".into(), Value::String(u.to_string())]),
            Atom::NamedUuid(n) => Value::Array(vec!["named-uuid".into(), Value::String(n.clone())]),
        }
    }

    /// Decodes an atom without knowing its type: numbers that fit `i64` are
    /// integers, other numbers reals.
    pub fn from_json_untyped(value: &Value) -> Result<Self, DecodeError> {
        match value {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| DecodeError::new(format!("number {n} out of range"))),
            },
            Value::Array(a) => match a.as_slice() {
                [Value::String(tag), Value::String(s)] if tag == "uuid" => {
                    parse_uuid(s).map(Atom::Uuid)
                }
                [Value::String(tag), Value::String(s)] if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(s.clone()))
                }
                _ => bad(format!("{} is not an atom", show(value))),
            },
            _ => bad(format!("{} is not an atom", show(value))),
        }
    }

    /// As [`Atom::from_json_typed`], taking the value so that strings move
    /// instead of being copied.
    pub fn from_json_typed_owned(value: Value, ty: AtomicType) -> Result<Self, DecodeError> {
        match (ty, value) {
            (AtomicType::String, Value::String(s)) => Ok(Atom::String(s)),
            (_, other) => Self::from_json_typed(&other, ty),
        }
    }

    /// Decodes an atom of a known type, as received from the server (so a
    /// `named-uuid` is rejected).
    pub fn from_json_typed(value: &Value, ty: AtomicType) -> Result<Self, DecodeError> {
        match (ty, value) {
            (AtomicType::Integer, Value::Number(n)) => n
                .as_i64()
                .map(Atom::Integer)
                .ok_or_else(|| DecodeError::new(format!("{n} is not a 64-bit integer"))),
            (AtomicType::Real, Value::Number(n)) => n
                .as_f64()
                .map(Atom::Real)
                .ok_or_else(|| DecodeError::new(format!("{n} is not a real"))),
            (AtomicType::Boolean, Value::Bool(b)) => Ok(Atom::Boolean(*b)),
            (AtomicType::String, Value::String(s)) => Ok(Atom::String(s.clone())),
            (AtomicType::Uuid, Value::Array(a)) => match a.as_slice() {
                [Value::String(tag), Value::String(s)] if tag == "uuid" => {
                    parse_uuid(s).map(Atom::Uuid)
                }
                _ => bad(format!("{} is not a uuid", show(value))),
            },
            _ => bad(format!("{} is not of type {ty}", show(value))),
        }
    }
}

fn parse_uuid(s: &str) -> Result<Uuid, DecodeError> {
    // RFC 7047 requires the 36-character hyphenated form; uuid also accepts
    // braced and simple forms, which OVS would reject.
    if s.len() != 36 {
        return bad(format!("\"{s}\" is not a UUID"));
    }
    Uuid::parse_str(s).map_err(|_| DecodeError::new(format!("\"{s}\" is not a UUID")))
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

impl From<i64> for Atom {
    fn from(v: i64) -> Self {
        Atom::Integer(v)
    }
}
impl From<f64> for Atom {
    fn from(v: f64) -> Self {
        Atom::Real(v)
    }
}
impl From<bool> for Atom {
    fn from(v: bool) -> Self {
        Atom::Boolean(v)
    }
}
impl From<&str> for Atom {
    fn from(v: &str) -> Self {
        Atom::String(v.to_owned())
    }
}
impl From<String> for Atom {
    fn from(v: String) -> Self {
        Atom::String(v)
    }
}
impl From<Uuid> for Atom {
    fn from(v: Uuid) -> Self {
        Atom::Uuid(v)
    }
}

/// The value of a column: a set of atoms (a scalar is a set of one) or a map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Datum {
    /// Sorted, unique atoms.
    Set(Vec<Atom>),
    /// Pairs sorted by key, keys unique.
    Map(Vec<(Atom, Atom)>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(Vec::new())
    }
}

impl Datum {
    /// A set holding one atom.
    pub fn scalar(atom: impl Into<Atom>) -> Self {
        Datum::Set(vec![atom.into()])
    }

    /// The empty set.
    pub fn empty_set() -> Self {
        Datum::Set(Vec::new())
    }

    /// The empty map.
    pub fn empty_map() -> Self {
        Datum::Map(Vec::new())
    }

    /// A set of the given atoms, sorted and with duplicates removed.
    pub fn set<A: Into<Atom>>(atoms: impl IntoIterator<Item = A>) -> Self {
        let mut v: Vec<Atom> = atoms.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        Datum::Set(v)
    }

    /// A map of the given pairs, sorted by key; of duplicate keys the last wins.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut v: Vec<(Atom, Atom)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable sort keeps insertion order among equal keys, so keeping the
        // last of each run implements "last wins".
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Atom, Atom)> = Vec::with_capacity(v.len());
        for pair in v {
            match out.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => out.push(pair),
            }
        }
        Datum::Map(out)
    }

    /// An optional value: the empty set or a set of one.
    pub fn optional(atom: Option<impl Into<Atom>>) -> Self {
        match atom {
            Some(a) => Datum::scalar(a),
            None => Datum::empty_set(),
        }
    }

    /// Number of elements (pairs for a map).
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(v) => v.len(),
            Datum::Map(v) => v.len(),
        }
    }

    /// Whether the datum has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The single atom of a one-element set.
    pub fn as_scalar(&self) -> Option<&Atom> {
        match self {
            Datum::Set(v) if v.len() == 1 => v.first(),
            _ => None,
        }
    }

    /// The atoms of a set (empty for a map).
    pub fn as_set(&self) -> &[Atom] {
        match self {
            Datum::Set(v) => v,
            Datum::Map(_) => &[],
        }
    }

    /// The pairs of a map (empty for a set).
    pub fn as_map(&self) -> &[(Atom, Atom)] {
        match self {
            Datum::Map(v) => v,
            Datum::Set(_) => &[],
        }
    }

    /// The string of a one-element string set.
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().and_then(Atom::as_str)
    }

    /// The integer of a one-element integer set.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_scalar().and_then(Atom::as_i64)
    }

    /// The real of a one-element real (or integer) set.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_scalar().and_then(Atom::as_f64)
    }

    /// The boolean of a one-element boolean set.
    pub fn as_bool(&self) -> Option<bool> {
        self.as_scalar().and_then(Atom::as_bool)
    }

    /// The UUID of a one-element UUID set.
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.as_scalar().and_then(Atom::as_uuid)
    }

    /// Looks up a map value by key (binary search: maps are sorted).
    pub fn get(&self, key: &Atom) -> Option<&Atom> {
        let pairs = self.as_map();
        pairs
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .and_then(|i| pairs.get(i))
            .map(|(_, v)| v)
    }

    /// Looks up a string-keyed map value.
    pub fn get_str(&self, key: &str) -> Option<&Atom> {
        let pairs = self.as_map();
        pairs
            .binary_search_by(|(k, _)| match k {
                Atom::String(s) => s.as_str().cmp(key),
                other => other.rank().cmp(&Atom::String(String::new()).rank()),
            })
            .ok()
            .and_then(|i| pairs.get(i))
            .map(|(_, v)| v)
    }

    /// Whether a set contains `atom`, or a map has it as a key.
    pub fn contains(&self, atom: &Atom) -> bool {
        match self {
            Datum::Set(v) => v.binary_search(atom).is_ok(),
            Datum::Map(v) => v.binary_search_by(|(k, _)| k.cmp(atom)).is_ok(),
        }
    }

    /// The JSON encoding (RFC 7047 section 5.1): a one-element set is written
    /// as the bare atom.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(v) if v.len() == 1 => v.first().map(Atom::to_json).unwrap_or(Value::Null),
            Datum::Set(v) => Value::Array(vec![
                "set".into(),
                Value::Array(v.iter().map(Atom::to_json).collect()),
            ]),
            Datum::Map(v) => Value::Array(vec![
                "map".into(),
                Value::Array(
                    v.iter()
                        .map(|(k, val)| Value::Array(vec![k.to_json(), val.to_json()]))
                        .collect(),
                ),
            ]),
        }
    }

    /// Decodes without a schema. An empty `["set",[]]` stays a set; use
    /// [`Datum::from_json`] where the column type is known.
    pub fn from_json_untyped(value: &Value) -> Result<Self, DecodeError> {
        if let Value::Array(a) = value {
            match a.as_slice() {
                [Value::String(tag), Value::Array(elems)] if tag == "set" => {
                    let atoms = elems
                        .iter()
                        .map(Atom::from_json_untyped)
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(Datum::set(atoms));
                }
                [Value::String(tag), Value::Array(pairs)] if tag == "map" => {
                    let mut out = Vec::with_capacity(pairs.len());
                    for pair in pairs {
                        match pair {
                            Value::Array(kv) => match kv.as_slice() {
                                [k, v] => out.push((
                                    Atom::from_json_untyped(k)?,
                                    Atom::from_json_untyped(v)?,
                                )),
                                _ => return bad(format!("{} is not a map pair", show(pair))),
                            },
                            _ => return bad(format!("{} is not a map pair", show(pair))),
                        }
                    }
                    return Ok(Datum::map(out));
                }
                _ => {}
            }
        }
        Atom::from_json_untyped(value).map(Datum::scalar)
    }

    /// Decodes a value of a known column type, as received from the server:
    /// atoms must have the right types and the element count must fit.
    pub fn from_json(value: &Value, ty: &ColumnType) -> Result<Self, DecodeError> {
        Self::from_json_owned(value.clone(), ty)
    }

    /// As [`Datum::from_json`], taking the value so that strings move.
    pub fn from_json_owned(value: Value, ty: &ColumnType) -> Result<Self, DecodeError> {
        let datum = Self::from_json_loose_owned(value, ty)?;
        ty.check_count(datum.len())?;
        Ok(datum)
    }

    /// Like [`Datum::from_json`] without the element count check, for the
    /// partial data in `update2` diffs and mutations.
    pub fn from_json_loose(value: &Value, ty: &ColumnType) -> Result<Self, DecodeError> {
        Self::from_json_loose_owned(value.clone(), ty)
    }

    /// As [`Datum::from_json_loose`], taking the value so that strings move.
    pub fn from_json_loose_owned(value: Value, ty: &ColumnType) -> Result<Self, DecodeError> {
        match &ty.value {
            Some(value_type) => {
                let pairs = match value {
                    Value::Array(a) if is_tagged(&a, "map") => match a.into_iter().nth(1) {
                        Some(Value::Array(pairs)) => pairs,
                        _ => return bad("a map without pairs"),
                    },
                    other => return bad(format!("{} is not a map", show(&other))),
                };
                let mut out = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    let Value::Array(kv) = pair else {
                        return bad(format!("{} is not a map pair", show(&pair)));
                    };
                    if kv.len() != 2 {
                        return bad(format!("{} is not a map pair", show(&Value::Array(kv))));
                    }
                    let mut kv = kv.into_iter();
                    let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                        return bad("a map pair lost its members");
                    };
                    out.push((
                        Atom::from_json_typed_owned(k, ty.key.atomic)?,
                        Atom::from_json_typed_owned(v, value_type.atomic)?,
                    ));
                }
                Ok(sorted_map(out))
            }
            None => match value {
                Value::Array(a) if is_tagged(&a, "set") => {
                    let Some(Value::Array(elems)) = a.into_iter().nth(1) else {
                        return bad("a set without elements");
                    };
                    let mut out = Vec::with_capacity(elems.len());
                    for e in elems {
                        out.push(Atom::from_json_typed_owned(e, ty.key.atomic)?);
                    }
                    Ok(sorted_set(out))
                }
                other => Atom::from_json_typed_owned(other, ty.key.atomic).map(Datum::scalar),
            },
        }
    }

    /// Applies an `update2` "modify" diff for a column of type `ty`, as OVS's
    /// `ovsdb_datum_apply_diff` does: for columns holding at most one element
    /// the diff is the new value; for sets it is the symmetric difference; for
    /// maps a pair whose key is absent is added, one matching an existing
    /// pair removes it, and one with a new value for an existing key replaces it.
    pub fn apply_diff(&self, diff: &Datum, ty: &ColumnType) -> Datum {
        if !ty.is_composite() {
            return diff.clone();
        }
        if ty.value.is_some() {
            let mut out: BTreeMap<&Atom, &Atom> =
                self.as_map().iter().map(|(k, v)| (k, v)).collect();
            for (k, v) in diff.as_map() {
                match out.get(k) {
                    Some(existing) if *existing == v => {
                        out.remove(k);
                    }
                    _ => {
                        out.insert(k, v);
                    }
                }
            }
            return Datum::Map(
                out.into_iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
        }
        let old = self.as_set();
        let d = diff.as_set();
        let mut out = Vec::with_capacity(old.len() + d.len());
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (old.get(i), d.get(j)) {
            match a.cmp(b) {
                Ordering::Less => {
                    out.push(a.clone());
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b.clone());
                    j += 1;
                }
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend(old.iter().skip(i).cloned());
        out.extend(d.iter().skip(j).cloned());
        Datum::Set(out)
    }
}

/// Whether `a` is `[tag, [...]]`, the shape of a set or map.
fn is_tagged(a: &[Value], tag: &str) -> bool {
    matches!(a, [Value::String(t), Value::Array(_)] if t == tag)
}

fn sorted_set(mut v: Vec<Atom>) -> Datum {
    // Server data arrive sorted almost always; checking first avoids the sort.
    if !v.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        v.sort();
        v.dedup();
    }
    Datum::Set(v)
}

fn sorted_map(mut v: Vec<(Atom, Atom)>) -> Datum {
    if !v.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
    }
    Datum::Map(v)
}

impl From<Atom> for Datum {
    fn from(a: Atom) -> Self {
        Datum::scalar(a)
    }
}

macro_rules! scalar_datum_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Datum {
            fn from(v: $t) -> Self {
                Datum::scalar(Atom::from(v))
            }
        }
    )*};
}
scalar_datum_from!(i64, f64, bool, &str, String, Uuid);

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Set(v) if v.len() == 1 => match v.first() {
                Some(a) => write!(f, "{a}"),
                None => Ok(()),
            },
            Datum::Set(v) => {
                write!(f, "[")?;
                for (i, a) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{a}")?;
                }
                write!(f, "]")
            }
            Datum::Map(v) => {
                write!(f, "{{")?;
                for (i, (k, val)) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}={val}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// A row: column names to values. Rows from the server hold the columns
/// requested; rows in requests hold the columns to set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    // Names are shared with the schema, so that parsing and copying rows
    // does not allocate a string per column.
    columns: BTreeMap<Arc<str>, Datum>,
}

impl Row {
    /// An empty row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a column, builder style.
    pub fn with(mut self, column: impl Into<Arc<str>>, value: impl Into<Datum>) -> Self {
        self.columns.insert(column.into(), value.into());
        self
    }

    /// Sets a column.
    pub fn insert(&mut self, column: impl Into<Arc<str>>, value: impl Into<Datum>) {
        self.columns.insert(column.into(), value.into());
    }

    /// A column's value.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.columns.get(column)
    }

    /// Sets a column whose name is already shared.
    pub(crate) fn insert_shared(&mut self, column: Arc<str>, value: Datum) {
        self.columns.insert(column, value);
    }

    /// Takes the row apart.
    pub(crate) fn into_columns(self) -> impl Iterator<Item = (Arc<str>, Datum)> {
        self.columns.into_iter()
    }

    /// Removes a column.
    pub fn remove(&mut self, column: &str) -> Option<Datum> {
        self.columns.remove(column)
    }

    /// The columns, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Datum)> {
        self.columns.iter().map(|(k, v)| (&**k, v))
    }

    /// Number of columns present.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether no column is present.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The JSON object encoding.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.columns
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect::<Map<String, Value>>(),
        )
    }

    /// Decodes a row without a schema.
    pub fn from_json_untyped(value: &Value) -> Result<Self, DecodeError> {
        let Value::Object(o) = value else {
            return bad(format!("{} is not a row", show(value)));
        };
        let mut columns = BTreeMap::new();
        for (k, v) in o {
            columns.insert(
                Arc::from(k.as_str()),
                Datum::from_json_untyped(v).map_err(|e| e.within(format!("column {k}")))?,
            );
        }
        Ok(Self { columns })
    }

    /// Decodes a row of `table`, typing each column by the schema.
    /// `loose` skips element count checks, for `update2` diffs.
    pub fn from_json(value: &Value, table: &TableSchema, loose: bool) -> Result<Self, DecodeError> {
        Self::from_json_owned(value.clone(), table, loose)
    }

    /// As [`Row::from_json`], taking the value so that strings move.
    pub fn from_json_owned(
        value: Value,
        table: &TableSchema,
        loose: bool,
    ) -> Result<Self, DecodeError> {
        let Value::Object(o) = value else {
            return bad(format!("{} is not a row", show(&value)));
        };
        let mut columns = BTreeMap::new();
        for (k, v) in o {
            let (name, ty) = table
                .column_entry(&k)
                .ok_or_else(|| DecodeError::new(format!("unknown column {k}")))?;
            let datum = if loose {
                Datum::from_json_loose_owned(v, ty)
            } else {
                Datum::from_json_owned(v, ty)
            }
            .map_err(|e| e.within(format!("column {k}")))?;
            columns.insert(name.clone(), datum);
        }
        Ok(Self { columns })
    }
}

impl FromIterator<(String, Datum)> for Row {
    fn from_iter<I: IntoIterator<Item = (String, Datum)>>(iter: I) -> Self {
        Self {
            columns: iter.into_iter().map(|(k, v)| (Arc::from(k), v)).collect(),
        }
    }
}

/// The default value of a base type: what OVS stores in a column of
/// minimum size one that a client did not set.
pub fn default_atom(base: &BaseType) -> Atom {
    match base.atomic {
        AtomicType::Integer => Atom::Integer(0),
        AtomicType::Real => Atom::Real(0.0),
        AtomicType::Boolean => Atom::Boolean(false),
        AtomicType::String => Atom::String(String::new()),
        AtomicType::Uuid => Atom::Uuid(Uuid::nil()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn col(v: Value) -> ColumnType {
        ColumnType::from_json(&v).unwrap()
    }

    #[test]
    fn atom_json_table() {
        let u = Uuid::parse_str("36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b").unwrap();
        let cases: &[(Atom, Value)] = &[
            (Atom::Integer(-5), json!(-5)),
            (Atom::Integer(i64::MAX), json!(i64::MAX)),
            (Atom::Real(1.5), json!(1.5)),
            (Atom::Boolean(true), json!(true)),
            (Atom::string("br-int"), json!("br-int")),
            (
                Atom::Uuid(u),
                json!(["uuid", "36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b"]),
            ),
            (
                Atom::NamedUuid("row1".into()),
                json!(["named-uuid", "row1"]),
            ),
        ];
        for (atom, js) in cases {
            assert_eq!(&atom.to_json(), js);
            assert_eq!(&Atom::from_json_untyped(js).unwrap(), atom);
        }
    }

    #[test]
    fn typed_atoms_reject_wrong_types() {
        assert!(Atom::from_json_typed(&json!("x"), AtomicType::Integer).is_err());
        assert!(Atom::from_json_typed(&json!(1.5), AtomicType::Integer).is_err());
        assert!(Atom::from_json_typed(&json!(u64::MAX), AtomicType::Integer).is_err());
        assert!(Atom::from_json_typed(&json!(["named-uuid", "a"]), AtomicType::Uuid).is_err());
        assert!(
            Atom::from_json_typed(
                &json!(["uuid", "{36bc4ab8-0d8b-4e4f-9d46-0f7a4a4c7a3b}"]),
                AtomicType::Uuid
            )
            .is_err()
        );
        assert!(Atom::from_json_typed(&json!(["uuid", "nope"]), AtomicType::Uuid).is_err());
        // A real column accepts an integer in JSON, as OVS does.
        assert_eq!(
            Atom::from_json_typed(&json!(3), AtomicType::Real).unwrap(),
            Atom::Real(3.0)
        );
    }

    #[test]
    fn datum_json_table() {
        let cases: &[(Datum, Value)] = &[
            (Datum::scalar("a"), json!("a")),
            (Datum::empty_set(), json!(["set", []])),
            (Datum::set([3i64, 1, 2, 3]), json!(["set", [1, 2, 3]])),
            (
                Datum::map([("b", "2"), ("a", "1")]),
                json!(["map", [["a", "1"], ["b", "2"]]]),
            ),
            (Datum::empty_map(), json!(["map", []])),
        ];
        for (datum, js) in cases {
            assert_eq!(&datum.to_json(), js);
            assert_eq!(&Datum::from_json_untyped(js).unwrap(), datum);
        }
    }

    #[test]
    fn typed_datum_checks_counts_and_kinds() {
        let optional_int = col(json!({"key": "integer", "min": 0, "max": 1}));
        assert_eq!(
            Datum::from_json(&json!(["set", []]), &optional_int).unwrap(),
            Datum::empty_set()
        );
        assert!(Datum::from_json(&json!(["set", [1, 2]]), &optional_int).is_err());
        let string_map =
            col(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}));
        assert_eq!(
            Datum::from_json(&json!(["map", []]), &string_map).unwrap(),
            Datum::empty_map()
        );
        assert!(Datum::from_json(&json!(["set", []]), &string_map).is_err());
        assert!(Datum::from_json(&json!(["map", [["a"]]]), &string_map).is_err());
        assert!(Datum::from_json(&json!(["map", [["a", 1]]]), &string_map).is_err());
        let scalar = col(json!("string"));
        assert!(Datum::from_json(&json!(["set", []]), &scalar).is_err());
        // Unsorted input is put in canonical order.
        let set = col(json!({"key": "integer", "min": 0, "max": "unlimited"}));
        assert_eq!(
            Datum::from_json(&json!(["set", [3, 1, 2]]), &set).unwrap(),
            Datum::set([1i64, 2, 3])
        );
    }

    #[test]
    fn map_lookup() {
        let m = Datum::map([("iface-id", "vm1"), ("attached-mac", "aa")]);
        assert_eq!(m.get_str("iface-id").and_then(Atom::as_str), Some("vm1"));
        assert_eq!(m.get_str("nope"), None);
        let mixed = Datum::map([
            (Atom::Integer(1), Atom::from("x")),
            (Atom::from("k"), Atom::from("v")),
        ]);
        assert_eq!(mixed.get_str("k").and_then(Atom::as_str), Some("v"));
    }

    #[test]
    fn diff_application_matches_ovs() {
        let set = col(json!({"key": "integer", "min": 0, "max": "unlimited"}));
        let old = Datum::set([1i64, 2, 3]);
        assert_eq!(
            old.apply_diff(&Datum::set([2i64, 4]), &set),
            Datum::set([1i64, 3, 4])
        );
        let map = col(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}));
        let old = Datum::map([("a", "1"), ("b", "2"), ("c", "3")]);
        let diff = Datum::map([("a", "1"), ("b", "9"), ("d", "4")]);
        assert_eq!(
            old.apply_diff(&diff, &map),
            Datum::map([("b", "9"), ("c", "3"), ("d", "4")])
        );
        let optional = col(json!({"key": "integer", "min": 0, "max": 1}));
        assert_eq!(
            Datum::scalar(5i64).apply_diff(&Datum::empty_set(), &optional),
            Datum::empty_set()
        );
        assert_eq!(
            Datum::scalar(5i64).apply_diff(&Datum::scalar(6i64), &optional),
            Datum::scalar(6i64)
        );
    }
}
