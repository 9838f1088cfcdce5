//! Typed, schema-checked access to the `Open_vSwitch` database tables augur
//! uses: `Open_vSwitch`, `Bridge`, `Port`, `Interface` and `Controller`.
//!
//! [`check_schema`] confirms that the server's schema has every column we
//! read with the shape we expect, so a mismatch is reported once at startup
//! instead of as odd values later. [`monitor_spec`] asks for exactly those
//! columns, and the `from_row` constructors turn replica rows into structs.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::data::{Atom, Datum, DecodeError, Row};
use crate::monitor::{MonitorSpec, TableMonitor};
use crate::replica::Replica;
use crate::schema::{AtomicType, ColumnType, ConstraintError, DatabaseSchema};

/// The database name.
pub const DB: &str = "Open_vSwitch";

/// The shape a column must have for the typed accessors to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Exactly one value.
    Scalar(AtomicType),
    /// Zero or one value.
    Optional(AtomicType),
    /// Any number of values.
    Set(AtomicType),
    /// A map.
    Map(AtomicType, AtomicType),
}

impl Shape {
    /// Whether a schema column type has this shape.
    pub fn matches(self, ty: &ColumnType) -> bool {
        match self {
            Shape::Scalar(a) => ty.is_scalar() && ty.key.atomic == a,
            Shape::Optional(a) => ty.is_optional() && ty.value.is_none() && ty.key.atomic == a,
            Shape::Set(a) => ty.value.is_none() && ty.is_composite() && ty.key.atomic == a,
            Shape::Map(k, v) => {
                ty.key.atomic == k && ty.value.as_ref().is_some_and(|vt| vt.atomic == v)
            }
        }
    }
}

/// A table with a typed row struct.
pub trait TableRow: Sized {
    /// The table name.
    const TABLE: &'static str;
    /// The columns read, with their expected shapes.
    const COLUMNS: &'static [(&'static str, Shape)];
    /// Reads a replica row.
    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError>;
}

use AtomicType::{Boolean as B, Integer as I, String as S, Uuid as U};

fn column<'a>(row: &'a Row, name: &str) -> Result<&'a Datum, DecodeError> {
    row.get(name)
        .ok_or_else(|| DecodeError::new(format!("column {name} missing from the row")))
}

fn string(row: &Row, name: &str) -> Result<String, DecodeError> {
    column(row, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| DecodeError::new(format!("column {name} is not a string")))
}

fn integer(row: &Row, name: &str) -> Result<i64, DecodeError> {
    column(row, name)?
        .as_i64()
        .ok_or_else(|| DecodeError::new(format!("column {name} is not an integer")))
}

fn boolean(row: &Row, name: &str) -> Result<bool, DecodeError> {
    column(row, name)?
        .as_bool()
        .ok_or_else(|| DecodeError::new(format!("column {name} is not a boolean")))
}

fn opt_string(row: &Row, name: &str) -> Result<Option<String>, DecodeError> {
    let d = column(row, name)?;
    match d.as_set() {
        [] => Ok(None),
        [Atom::String(s)] => Ok(Some(s.clone())),
        _ => Err(DecodeError::new(format!(
            "column {name} is not an optional string"
        ))),
    }
}

fn opt_integer(row: &Row, name: &str) -> Result<Option<i64>, DecodeError> {
    let d = column(row, name)?;
    match d.as_set() {
        [] => Ok(None),
        [Atom::Integer(i)] => Ok(Some(*i)),
        _ => Err(DecodeError::new(format!(
            "column {name} is not an optional integer"
        ))),
    }
}

fn uuids(row: &Row, name: &str) -> Result<Vec<Uuid>, DecodeError> {
    column(row, name)?
        .as_set()
        .iter()
        .map(|a| {
            a.as_uuid()
                .ok_or_else(|| DecodeError::new(format!("column {name} holds a non-UUID")))
        })
        .collect()
}

fn strings(row: &Row, name: &str) -> Result<Vec<String>, DecodeError> {
    column(row, name)?
        .as_set()
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DecodeError::new(format!("column {name} holds a non-string")))
        })
        .collect()
}

fn integers(row: &Row, name: &str) -> Result<Vec<i64>, DecodeError> {
    column(row, name)?
        .as_set()
        .iter()
        .map(|a| {
            a.as_i64()
                .ok_or_else(|| DecodeError::new(format!("column {name} holds a non-integer")))
        })
        .collect()
}

fn string_map(row: &Row, name: &str) -> Result<BTreeMap<String, String>, DecodeError> {
    let d = column(row, name)?;
    if let Datum::Set(v) = d {
        // An empty map can only be told from an empty set by the schema.
        if v.is_empty() {
            return Ok(BTreeMap::new());
        }
        return Err(DecodeError::new(format!("column {name} is not a map")));
    }
    d.as_map()
        .iter()
        .map(|(k, v)| match (k, v) {
            (Atom::String(k), Atom::String(v)) => Ok((k.clone(), v.clone())),
            _ => Err(DecodeError::new(format!(
                "column {name} is not a string map"
            ))),
        })
        .collect()
}

/// The single row of the `Open_vSwitch` table: system-wide configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenVSwitch {
    /// Row UUID.
    pub uuid: Uuid,
    /// Bridges.
    pub bridges: Vec<Uuid>,
    /// Manager connections.
    pub manager_options: Vec<Uuid>,
    /// Open vSwitch version, once `ovs-vswitchd` has started.
    pub ovs_version: Option<String>,
    /// Schema version the database was created with.
    pub db_version: Option<String>,
    /// OS or distribution name.
    pub system_type: Option<String>,
    /// OS or distribution version.
    pub system_version: Option<String>,
    /// Integrator keys, such as `system-id` and `hostname`.
    pub external_ids: BTreeMap<String, String>,
    /// Global tuning.
    pub other_config: BTreeMap<String, String>,
    /// Configuration sequence number requested.
    pub next_cfg: i64,
    /// Configuration sequence number applied by `ovs-vswitchd`.
    pub cur_cfg: i64,
    /// Datapath types supported.
    pub datapath_types: Vec<String>,
    /// Interface types supported.
    pub iface_types: Vec<String>,
}

impl TableRow for OpenVSwitch {
    const TABLE: &'static str = "Open_vSwitch";
    const COLUMNS: &'static [(&'static str, Shape)] = &[
        ("bridges", Shape::Set(U)),
        ("manager_options", Shape::Set(U)),
        ("ovs_version", Shape::Optional(S)),
        ("db_version", Shape::Optional(S)),
        ("system_type", Shape::Optional(S)),
        ("system_version", Shape::Optional(S)),
        ("external_ids", Shape::Map(S, S)),
        ("other_config", Shape::Map(S, S)),
        ("next_cfg", Shape::Scalar(I)),
        ("cur_cfg", Shape::Scalar(I)),
        ("datapath_types", Shape::Set(S)),
        ("iface_types", Shape::Set(S)),
    ];

    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid,
            bridges: uuids(row, "bridges")?,
            manager_options: uuids(row, "manager_options")?,
            ovs_version: opt_string(row, "ovs_version")?,
            db_version: opt_string(row, "db_version")?,
            system_type: opt_string(row, "system_type")?,
            system_version: opt_string(row, "system_version")?,
            external_ids: string_map(row, "external_ids")?,
            other_config: string_map(row, "other_config")?,
            next_cfg: integer(row, "next_cfg")?,
            cur_cfg: integer(row, "cur_cfg")?,
            datapath_types: strings(row, "datapath_types")?,
            iface_types: strings(row, "iface_types")?,
        })
    }
}

/// A bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    /// Row UUID.
    pub uuid: Uuid,
    /// Bridge name, such as `br-int`.
    pub name: String,
    /// Ports.
    pub ports: Vec<Uuid>,
    /// OpenFlow controllers.
    pub controller: Vec<Uuid>,
    /// `standalone` or `secure`.
    pub fail_mode: Option<String>,
    /// Datapath id in use, 16 hex digits.
    pub datapath_id: Option<String>,
    /// Datapath type (`system`, `netdev`; empty means `system`).
    pub datapath_type: String,
    /// OpenFlow versions enabled, such as `OpenFlow13`.
    pub protocols: Vec<String>,
    /// Integrator keys.
    pub external_ids: BTreeMap<String, String>,
    /// Tuning.
    pub other_config: BTreeMap<String, String>,
}

impl TableRow for Bridge {
    const TABLE: &'static str = "Bridge";
    const COLUMNS: &'static [(&'static str, Shape)] = &[
        ("name", Shape::Scalar(S)),
        ("ports", Shape::Set(U)),
        ("controller", Shape::Set(U)),
        ("fail_mode", Shape::Optional(S)),
        ("datapath_id", Shape::Optional(S)),
        ("datapath_type", Shape::Scalar(S)),
        ("protocols", Shape::Set(S)),
        ("external_ids", Shape::Map(S, S)),
        ("other_config", Shape::Map(S, S)),
    ];

    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid,
            name: string(row, "name")?,
            ports: uuids(row, "ports")?,
            controller: uuids(row, "controller")?,
            fail_mode: opt_string(row, "fail_mode")?,
            datapath_id: opt_string(row, "datapath_id")?,
            datapath_type: string(row, "datapath_type")?,
            protocols: strings(row, "protocols")?,
            external_ids: string_map(row, "external_ids")?,
            other_config: string_map(row, "other_config")?,
        })
    }
}

/// A port: one or more interfaces (more for a bond) with VLAN settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Row UUID.
    pub uuid: Uuid,
    /// Port name.
    pub name: String,
    /// Interfaces.
    pub interfaces: Vec<Uuid>,
    /// Access VLAN.
    pub tag: Option<i64>,
    /// Trunked VLANs.
    pub trunks: Vec<i64>,
    /// VLAN mode.
    pub vlan_mode: Option<String>,
    /// Integrator keys.
    pub external_ids: BTreeMap<String, String>,
    /// Tuning.
    pub other_config: BTreeMap<String, String>,
}

impl TableRow for Port {
    const TABLE: &'static str = "Port";
    const COLUMNS: &'static [(&'static str, Shape)] = &[
        ("name", Shape::Scalar(S)),
        ("interfaces", Shape::Set(U)),
        ("tag", Shape::Optional(I)),
        ("trunks", Shape::Set(I)),
        ("vlan_mode", Shape::Optional(S)),
        ("external_ids", Shape::Map(S, S)),
        ("other_config", Shape::Map(S, S)),
    ];

    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid,
            name: string(row, "name")?,
            interfaces: uuids(row, "interfaces")?,
            tag: opt_integer(row, "tag")?,
            trunks: integers(row, "trunks")?,
            vlan_mode: opt_string(row, "vlan_mode")?,
            external_ids: string_map(row, "external_ids")?,
            other_config: string_map(row, "other_config")?,
        })
    }
}

/// An interface: where a VM's vNIC (a tap or vhost-user port) meets the switch.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Row UUID.
    pub uuid: Uuid,
    /// Interface name, such as `tap0` or `vnet3`.
    pub name: String,
    /// Interface type; empty means a system device.
    pub iface_type: String,
    /// OpenFlow port number assigned by `ovs-vswitchd` (-1 on failure).
    pub ofport: Option<i64>,
    /// OpenFlow port number requested.
    pub ofport_request: Option<i64>,
    /// MAC address in use.
    pub mac_in_use: Option<String>,
    /// MAC address requested.
    pub mac: Option<String>,
    /// Administrative state.
    pub admin_state: Option<String>,
    /// Link state.
    pub link_state: Option<String>,
    /// Integrator keys: `attached-mac`, `iface-id`, `vm-uuid`, `iface-status`.
    pub external_ids: BTreeMap<String, String>,
    /// Type-specific options (tunnel endpoints, ...).
    pub options: BTreeMap<String, String>,
    /// Tuning.
    pub other_config: BTreeMap<String, String>,
    /// Status reported by `ovs-vswitchd`.
    pub status: BTreeMap<String, String>,
    /// Why the interface could not be configured.
    pub error: Option<String>,
}

impl Interface {
    /// The VM-facing identity the cloud layer recorded, if any.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_ids.get("iface-id").map(String::as_str)
    }

    /// The MAC the VM uses, as recorded by the cloud layer.
    pub fn attached_mac(&self) -> Option<&str> {
        self.external_ids.get("attached-mac").map(String::as_str)
    }

    /// The VM's UUID, as recorded by the cloud layer.
    pub fn vm_uuid(&self) -> Option<&str> {
        self.external_ids.get("vm-uuid").map(String::as_str)
    }
}

impl TableRow for Interface {
    const TABLE: &'static str = "Interface";
    const COLUMNS: &'static [(&'static str, Shape)] = &[
        ("name", Shape::Scalar(S)),
        ("type", Shape::Scalar(S)),
        ("ofport", Shape::Optional(I)),
        ("ofport_request", Shape::Optional(I)),
        ("mac_in_use", Shape::Optional(S)),
        ("mac", Shape::Optional(S)),
        ("admin_state", Shape::Optional(S)),
        ("link_state", Shape::Optional(S)),
        ("external_ids", Shape::Map(S, S)),
        ("options", Shape::Map(S, S)),
        ("other_config", Shape::Map(S, S)),
        ("status", Shape::Map(S, S)),
        ("error", Shape::Optional(S)),
    ];

    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid,
            name: string(row, "name")?,
            iface_type: string(row, "type")?,
            ofport: opt_integer(row, "ofport")?,
            ofport_request: opt_integer(row, "ofport_request")?,
            mac_in_use: opt_string(row, "mac_in_use")?,
            mac: opt_string(row, "mac")?,
            admin_state: opt_string(row, "admin_state")?,
            link_state: opt_string(row, "link_state")?,
            external_ids: string_map(row, "external_ids")?,
            options: string_map(row, "options")?,
            other_config: string_map(row, "other_config")?,
            status: string_map(row, "status")?,
            error: opt_string(row, "error")?,
        })
    }
}

/// An OpenFlow controller of a bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    /// Row UUID.
    pub uuid: Uuid,
    /// Where the switch connects, such as `tcp:127.0.0.1:6653`.
    pub target: String,
    /// Role in a multi-controller setup.
    pub role: Option<String>,
    /// Whether the switch is connected to it now.
    pub is_connected: bool,
    /// `in-band` or `out-of-band`.
    pub connection_mode: Option<String>,
    /// Inactivity probe interval in ms.
    pub inactivity_probe: Option<i64>,
    /// Longest reconnect backoff in ms.
    pub max_backoff: Option<i64>,
    /// Connection status reported by `ovs-vswitchd`.
    pub status: BTreeMap<String, String>,
    /// Integrator keys.
    pub external_ids: BTreeMap<String, String>,
    /// Tuning.
    pub other_config: BTreeMap<String, String>,
}

impl TableRow for Controller {
    const TABLE: &'static str = "Controller";
    const COLUMNS: &'static [(&'static str, Shape)] = &[
        ("target", Shape::Scalar(S)),
        ("role", Shape::Optional(S)),
        ("is_connected", Shape::Scalar(B)),
        ("connection_mode", Shape::Optional(S)),
        ("inactivity_probe", Shape::Optional(I)),
        ("max_backoff", Shape::Optional(I)),
        ("status", Shape::Map(S, S)),
        ("external_ids", Shape::Map(S, S)),
        ("other_config", Shape::Map(S, S)),
    ];

    fn from_row(uuid: Uuid, row: &Row) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid,
            target: string(row, "target")?,
            role: opt_string(row, "role")?,
            is_connected: boolean(row, "is_connected")?,
            connection_mode: opt_string(row, "connection_mode")?,
            inactivity_probe: opt_integer(row, "inactivity_probe")?,
            max_backoff: opt_integer(row, "max_backoff")?,
            status: string_map(row, "status")?,
            external_ids: string_map(row, "external_ids")?,
            other_config: string_map(row, "other_config")?,
        })
    }
}

fn check_table<T: TableRow>(schema: &DatabaseSchema) -> Result<(), ConstraintError> {
    let table = schema.table(T::TABLE).ok_or_else(|| {
        ConstraintError::new(format!("schema {} has no table {}", schema.name, T::TABLE))
    })?;
    for (name, shape) in T::COLUMNS {
        let column = table.column(name).ok_or_else(|| {
            ConstraintError::new(format!("table {} has no column {name}", T::TABLE))
        })?;
        if !shape.matches(&column.column_type) {
            return Err(ConstraintError::new(format!(
                "column {}.{name} is not {shape:?} in schema version {}",
                T::TABLE,
                schema.version
            )));
        }
    }
    Ok(())
}

/// Confirms the server's schema has every column the typed rows read, with
/// the expected shapes.
pub fn check_schema(schema: &DatabaseSchema) -> Result<(), ConstraintError> {
    if schema.name != DB {
        return Err(ConstraintError::new(format!(
            "schema is {}, not {DB}",
            schema.name
        )));
    }
    check_table::<OpenVSwitch>(schema)?;
    check_table::<Bridge>(schema)?;
    check_table::<Port>(schema)?;
    check_table::<Interface>(schema)?;
    check_table::<Controller>(schema)
}

/// A monitor of table `T` limited to the columns its typed row reads.
pub fn table_monitor<T: TableRow>() -> TableMonitor {
    TableMonitor::new(T::TABLE).columns(T::COLUMNS.iter().map(|(c, _)| *c))
}

/// A `monitor_cond` of the five tables, limited to the columns read.
pub fn monitor_spec() -> MonitorSpec {
    MonitorSpec::monitor_cond(DB)
        .table(table_monitor::<OpenVSwitch>())
        .table(table_monitor::<Bridge>())
        .table(table_monitor::<Port>())
        .table(table_monitor::<Interface>())
        .table(table_monitor::<Controller>())
}

/// All rows of a table in a replica, typed, in UUID order.
pub fn rows<T: TableRow>(replica: &Replica) -> Result<Vec<T>, DecodeError> {
    let Some(table) = replica.table(T::TABLE) else {
        return Ok(Vec::new());
    };
    let mut rows: Vec<(&Uuid, &std::sync::Arc<Row>)> = table.rows().collect();
    rows.sort_unstable_by_key(|(u, _)| **u);
    rows.into_iter()
        .map(|(u, r)| T::from_row(*u, r).map_err(|e| e.within(format!("{} row {u}", T::TABLE))))
        .collect()
}

/// One typed row of a table in a replica.
pub fn row<T: TableRow>(replica: &Replica, uuid: &Uuid) -> Option<Result<T, DecodeError>> {
    replica.row(T::TABLE, uuid).map(|r| T::from_row(*uuid, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_schema_has_what_we_read() {
        let path = std::path::Path::new("/usr/share/openvswitch/vswitch.ovsschema");
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("note: {} absent, skipping", path.display());
            return;
        };
        let schema = DatabaseSchema::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        check_schema(&schema).unwrap();
        monitor_spec().check(&schema).unwrap();
    }

    #[test]
    fn interface_from_row() {
        let u = Uuid::from_u128(7);
        let row = Row::new()
            .with("name", "tap0")
            .with("type", "")
            .with("ofport", Datum::scalar(3i64))
            .with("ofport_request", Datum::empty_set())
            .with("mac_in_use", Datum::scalar("aa:bb:cc:dd:ee:ff"))
            .with("mac", Datum::empty_set())
            .with("admin_state", Datum::scalar("up"))
            .with("link_state", Datum::empty_set())
            .with(
                "external_ids",
                Datum::map([("iface-id", "port-1"), ("vm-uuid", "vm-9")]),
            )
            .with("options", Datum::empty_map())
            .with("other_config", Datum::empty_set())
            .with("status", Datum::empty_map())
            .with("error", Datum::empty_set());
        let i = Interface::from_row(u, &row).unwrap();
        assert_eq!(i.ofport, Some(3));
        assert_eq!(i.iface_id(), Some("port-1"));
        assert_eq!(i.vm_uuid(), Some("vm-9"));
        let bad = row.clone().with("ofport", Datum::scalar("x"));
        assert!(Interface::from_row(u, &bad).is_err());
        let mut missing = row;
        missing.remove("name");
        assert!(Interface::from_row(u, &missing).is_err());
    }
}
