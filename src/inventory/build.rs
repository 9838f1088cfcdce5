//! From the switch's OVSDB rows to an [`Inventory`]: a pure function, so
//! that every rule below is tested with hand-made rows.
//!
//! - **Bridges** are those the `Open_vSwitch` row lists (as `ovs-vswitchd`
//!   configures them), optionally narrowed by [`InventorySettings::bridges`],
//!   with the datapath id `ovs-vswitchd` reports in `Bridge.datapath_id`. A
//!   bridge without one yet (the switch daemon has not configured it) is left
//!   out, with a warning, until it has one. Once known, a datapath id (and
//!   an interface's `mac_in_use`) outlives an `ovsdb-server` restart, which
//!   empties these ephemeral columns until `ovs-vswitchd` writes them again:
//!   see [`VswitchTables::apply`].
//! - **Interfaces** count once `ovs-vswitchd` has given them an OpenFlow port
//!   number (`ofport`): unset means not yet, `-1` means it failed (warned,
//!   with the interface's `error`).
//! - The interface **named like its bridge** is the bridge's LOCAL port.
//! - An interface whose external ids name a VM (the first of
//!   [`InventorySettings::vm_id_keys`] present) belongs to that VM; every
//!   other one is an external port: an uplink, a patch or tunnel port, or a
//!   host interface (type `internal`, which keeps its `mac_in_use`).
//!   Interfaces with the same VM id make one VM with several interfaces.
//! - A VM interface's **MAC** is `external_ids:attached-mac` where set, else
//!   `mac_in_use`. The order matters: libvirt and OpenStack plug a VM in
//!   through a tap device whose own MAC (`mac_in_use`) is the guest's with
//!   the first octet replaced by `fe`, while `attached-mac` is the address
//!   the guest sends from. An internal port used as a VM (in a network
//!   namespace, as Mininet does) has no `attached-mac` and sends from its
//!   `mac_in_use`.
//! - **Labels** are external ids starting with
//!   [`InventorySettings::label_prefix`]; labels of the config file win over
//!   them. Interfaces of one VM that disagree on a label lose that label.
//! - **Addresses** come from the config file.
//!
//! Whatever an operator wrote into OVSDB that cannot be used is reported as
//! an [`InventoryWarning`] and left out, never fatal. Where leaving a value
//! out would make a VM's port look like something else, the whole interface
//! is left out instead: a port the inventory does not know is denied by the
//! compiled policy, while a VM port mistaken for an uplink would be trusted.
//! For the same reason the builder never produces an inventory the compiler
//! would refuse: interfaces that claim a port number or a MAC twice, and
//! addresses claimed by two VMs, are dropped with a warning.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use augur_openflow::{MacAddr, PortNo};
use augur_ovsdb::vswitch::{self, TableRow};
use augur_ovsdb::{Replica, RowChange, Uuid};
use serde::Serialize;

use super::model::{Bridge, ExternalPort, Inventory, Vm, VmId, VmInterface};
use super::settings::{
    InventorySettings, check_ip, check_label_name, check_label_value, check_mac, check_vm_id,
};

/// The highest port number `ovs-vswitchd` gives an interface (OpenFlow 1.0
/// numbering, as OVSDB stores it: 0xff00 and up are reserved ports).
const MAX_OFPORT: i64 = 0xfeff;

/// The typed rows of the tables the inventory is built from, as the
/// replica holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VswitchTables {
    /// `Open_vSwitch` (one row in a working database).
    pub open_vswitch: HashMap<Uuid, vswitch::OpenVSwitch>,
    /// `Bridge`.
    pub bridges: HashMap<Uuid, vswitch::Bridge>,
    /// `Port`.
    pub ports: HashMap<Uuid, vswitch::Port>,
    /// `Interface`.
    pub interfaces: HashMap<Uuid, vswitch::Interface>,
    /// Rows that could not be read as their typed struct, by table and
    /// UUID; each becomes a warning, and the row counts as absent.
    pub unreadable: BTreeMap<(String, Uuid), String>,
}

impl VswitchTables {
    /// The tables a replica holds. A row that does not decode is recorded
    /// in [`unreadable`](Self::unreadable).
    pub fn from_replica(replica: &Replica) -> Self {
        let mut tables = Self::default();
        for name in [
            vswitch::OpenVSwitch::TABLE,
            vswitch::Bridge::TABLE,
            vswitch::Port::TABLE,
            vswitch::Interface::TABLE,
        ] {
            if let Some(table) = replica.table(name) {
                for (uuid, row) in table.rows() {
                    tables.set(name, *uuid, Some(row));
                }
            }
        }
        tables
    }

    /// Applies one change of the replica; whether it concerned these tables.
    /// A bridge's `datapath_id` or an interface's `mac_in_use` that becomes
    /// empty keeps its previous value: these columns are ephemeral, so an
    /// `ovsdb-server` restart empties them until `ovs-vswitchd` writes them
    /// again, and the bridge and its VMs have not changed meanwhile.
    pub fn apply(&mut self, change: &RowChange) -> bool {
        self.set(
            change.table(),
            change.uuid(),
            change.new_row().map(|r| r.as_ref()),
        )
    }

    /// Sets (or, with `None`, removes) one row; whether the table is one of
    /// ours.
    fn set(&mut self, table: &str, uuid: Uuid, row: Option<&augur_ovsdb::Row>) -> bool {
        let unreadable = &mut self.unreadable;
        match table {
            vswitch::OpenVSwitch::TABLE => {
                put(&mut self.open_vswitch, unreadable, uuid, row, |_, _| {});
            }
            vswitch::Bridge::TABLE => put(&mut self.bridges, unreadable, uuid, row, |old, new| {
                if new.datapath_id.is_none() {
                    new.datapath_id.clone_from(&old.datapath_id);
                }
            }),
            vswitch::Port::TABLE => put(&mut self.ports, unreadable, uuid, row, |_, _| {}),
            vswitch::Interface::TABLE => {
                put(&mut self.interfaces, unreadable, uuid, row, |old, new| {
                    if new.mac_in_use.is_none() {
                        new.mac_in_use.clone_from(&old.mac_in_use);
                    }
                });
            }
            _ => return false,
        }
        true
    }
}

/// Stores one typed row (or removes it). `keep` carries values over from
/// the row's previous version: `datapath_id` and `mac_in_use` are
/// ephemeral columns, which `ovsdb-server` forgets when it restarts and
/// `ovs-vswitchd` fills in again a moment later. Meanwhile the bridge and
/// its VMs are the same, and must not drop out of the inventory (and out of
/// enforcement) because we reconnected first.
fn put<T: TableRow>(
    map: &mut HashMap<Uuid, T>,
    unreadable: &mut BTreeMap<(String, Uuid), String>,
    uuid: Uuid,
    row: Option<&augur_ovsdb::Row>,
    keep: impl FnOnce(&T, &mut T),
) {
    unreadable.remove(&(T::TABLE.to_owned(), uuid));
    match row.map(|r| T::from_row(uuid, r)) {
        Some(Ok(mut typed)) => {
            if let Some(old) = map.get(&uuid) {
                keep(old, &mut typed);
            }
            map.insert(uuid, typed);
        }
        Some(Err(e)) => {
            map.remove(&uuid);
            unreadable.insert((T::TABLE.to_owned(), uuid), e.to_string());
        }
        None => {
            map.remove(&uuid);
        }
    }
}

/// Something in OVSDB the inventory could not use, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InventoryWarning {
    /// The bridge, where the problem is on one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The interface (or, for a row that could not be read, `Table row UUID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The column or `external_ids:KEY` at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong and what was done about it.
    pub message: String,
}

impl fmt::Display for InventoryWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (what, value) in [
            ("bridge ", &self.bridge),
            ("interface ", &self.interface),
            ("", &self.key),
        ] {
            if let Some(value) = value {
                write!(f, "{sep}{what}{value}")?;
                sep = ", ";
            }
        }
        if sep.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, ": {}", self.message)
        }
    }
}

/// An inventory and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Built {
    /// The inventory.
    pub inventory: Inventory,
    /// Values that could not be used, in a stable order.
    pub warnings: Vec<InventoryWarning>,
}

/// One usable VM interface before grouping, with its labels from OVSDB.
struct Plugged {
    vm: VmId,
    iface: VmInterface,
    labels: BTreeMap<String, String>,
}

/// Builds the inventory the rows describe. Never fails: see the module
/// documentation for what is left out, and why.
pub fn build(tables: &VswitchTables, settings: &InventorySettings) -> Built {
    let mut warnings = Warnings::default();
    for ((table, uuid), why) in &tables.unreadable {
        warnings.push(None, Some(format!("{table} row {uuid}")), None, why.clone());
    }

    let mut bridge_rows: Vec<&vswitch::Bridge> = tables
        .open_vswitch
        .values()
        .flat_map(|ovs| &ovs.bridges)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter_map(|uuid| tables.bridges.get(uuid))
        .filter(|b| settings.bridges.is_empty() || settings.bridges.contains(&b.name))
        .collect();
    bridge_rows.sort_by(|a, b| a.name.cmp(&b.name));

    let mut bridges = Vec::with_capacity(bridge_rows.len());
    let mut external_ports = Vec::new();
    let mut plugged = Vec::new();
    for bridge in bridge_rows {
        let Some(datapath_id) = datapath_id(bridge, &mut warnings) else {
            continue;
        };
        bridges.push(Bridge {
            name: bridge.name.clone(),
            datapath_id,
        });
        let mut interfaces: Vec<&vswitch::Interface> = bridge
            .ports
            .iter()
            .filter_map(|uuid| tables.ports.get(uuid))
            .flat_map(|port| &port.interfaces)
            .filter_map(|uuid| tables.interfaces.get(uuid))
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        interfaces.dedup_by_key(|i| i.uuid);
        for iface in interfaces {
            classify(
                bridge,
                iface,
                settings,
                &mut warnings,
                &mut |item| match item {
                    Classified::External(port) => external_ports.push(port),
                    Classified::Vm(p) => plugged.push(p),
                },
            );
        }
    }

    drop_duplicate_ports(&mut plugged, &mut external_ports, &mut warnings);
    drop_duplicate_macs(&mut plugged, &mut warnings);
    let mut vms = group(plugged, settings, &mut warnings);
    drop_shared_ips(&mut vms, &mut warnings);

    let mut warnings = warnings.0;
    warnings.sort();
    warnings.dedup();
    Built {
        inventory: Inventory {
            bridges,
            vms,
            external_ports,
        },
        warnings,
    }
}

#[derive(Default)]
struct Warnings(Vec<InventoryWarning>);

impl Warnings {
    fn push(
        &mut self,
        bridge: Option<&str>,
        interface: Option<String>,
        key: Option<String>,
        message: String,
    ) {
        self.0.push(InventoryWarning {
            bridge: bridge.map(str::to_owned),
            interface,
            key,
            message,
        });
    }

    fn iface(&mut self, bridge: &str, iface: &str, key: Option<String>, message: String) {
        self.push(Some(bridge), Some(iface.to_owned()), key, message);
    }
}

/// The bridge's datapath id: 16 hex digits, as `ovs-vswitchd` writes it.
fn datapath_id(bridge: &vswitch::Bridge, warnings: &mut Warnings) -> Option<u64> {
    let key = Some("datapath_id".to_owned());
    let Some(text) = bridge.datapath_id.as_deref() else {
        warnings.push(
            Some(&bridge.name),
            None,
            key,
            "no datapath id yet (ovs-vswitchd has not configured the bridge); left out".into(),
        );
        return None;
    };
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    match u64::from_str_radix(digits, 16) {
        Ok(id) if id != 0 && (1..=16).contains(&digits.len()) && !digits.starts_with('+') => {
            Some(id)
        }
        _ => {
            warnings.push(
                Some(&bridge.name),
                None,
                key,
                format!("{text:?} is not a datapath id; bridge left out"),
            );
            None
        }
    }
}

enum Classified {
    External(ExternalPort),
    Vm(Plugged),
}

/// Decides what one interface of a bridge is.
fn classify(
    bridge: &vswitch::Bridge,
    iface: &vswitch::Interface,
    settings: &InventorySettings,
    warnings: &mut Warnings,
    out: &mut dyn FnMut(Classified),
) {
    let b = bridge.name.as_str();
    let n = iface.name.as_str();
    if iface.name == bridge.name {
        let mac = mac_in_use(b, iface, warnings);
        out(Classified::External(ExternalPort {
            bridge: bridge.name.clone(),
            name: iface.name.clone(),
            ofport: PortNo::LOCAL,
            mac,
        }));
        return;
    }
    let ofport = match iface.ofport {
        None => return, // ovs-vswitchd has not got to it yet.
        Some(-1) => {
            let why = iface.error.as_deref().unwrap_or("no reason given");
            warnings.iface(
                b,
                n,
                Some("ofport".into()),
                format!("ovs-vswitchd could not add the interface ({why}); left out"),
            );
            return;
        }
        Some(p @ 1..=MAX_OFPORT) => PortNo(u32::try_from(p).unwrap_or_default()),
        Some(p) => {
            warnings.iface(
                b,
                n,
                Some("ofport".into()),
                format!("{p} is not an OpenFlow port number; left out"),
            );
            return;
        }
    };

    let vm_id = settings.vm_id_keys.iter().find_map(|key| {
        iface
            .external_ids
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| (key, v))
    });
    let Some((id_key, id)) = vm_id else {
        let mac = if iface.iface_type == "internal" {
            mac_in_use(b, iface, warnings)
        } else {
            None
        };
        out(Classified::External(ExternalPort {
            bridge: bridge.name.clone(),
            name: iface.name.clone(),
            ofport,
            mac,
        }));
        return;
    };
    if let Err(why) = check_vm_id(id) {
        warnings.iface(
            b,
            n,
            Some(format!("external_ids:{id_key}")),
            format!("{why}; interface left out"),
        );
        return;
    }

    let mut mac = None;
    if let Some(text) = iface.external_ids.get("attached-mac") {
        match text.parse::<MacAddr>() {
            Ok(m) => mac = Some(m),
            Err(_) => warnings.iface(
                b,
                n,
                Some("external_ids:attached-mac".into()),
                format!("{text:?} is not a MAC address; ignored"),
            ),
        }
    }
    let mac = mac.or_else(|| mac_in_use(b, iface, warnings));
    let Some(mac) = mac else {
        warnings.iface(
            b,
            n,
            None,
            format!("VM {id} interface has no usable MAC address yet; left out"),
        );
        return;
    };
    if let Err(why) = check_mac(mac) {
        warnings.iface(b, n, None, format!("VM {id}: {why}; interface left out"));
        return;
    }

    let mut labels = BTreeMap::new();
    if !settings.label_prefix.is_empty() {
        for (key, value) in &iface.external_ids {
            let Some(name) = key.strip_prefix(&settings.label_prefix) else {
                continue;
            };
            match check_label_name(name).and_then(|()| check_label_value(value)) {
                Ok(()) => {
                    labels.insert(name.to_owned(), value.clone());
                }
                Err(why) => warnings.iface(
                    b,
                    n,
                    Some(format!("external_ids:{key}")),
                    format!("{why}; label ignored"),
                ),
            }
        }
    }

    out(Classified::Vm(Plugged {
        vm: VmId(id.clone()),
        iface: VmInterface {
            bridge: bridge.name.clone(),
            name: iface.name.clone(),
            ofport,
            mac,
            ips: Vec::new(),
        },
        labels,
    }));
}

/// `mac_in_use`, parsed; unset is normal before `ovs-vswitchd` fills it in.
fn mac_in_use(
    bridge: &str,
    iface: &vswitch::Interface,
    warnings: &mut Warnings,
) -> Option<MacAddr> {
    let text = iface.mac_in_use.as_deref()?;
    match text.parse() {
        Ok(mac) => Some(mac),
        Err(_) => {
            warnings.iface(
                bridge,
                &iface.name,
                Some("mac_in_use".into()),
                format!("{text:?} is not a MAC address; ignored"),
            );
            None
        }
    }
}

/// Leaves out every claimant of a (bridge, port number) claimed twice: which
/// one really has it cannot be known.
fn drop_duplicate_ports(
    plugged: &mut Vec<Plugged>,
    external: &mut Vec<ExternalPort>,
    warnings: &mut Warnings,
) {
    let mut count: HashMap<(&str, PortNo), usize> = HashMap::new();
    for (bridge, port) in plugged
        .iter()
        .map(|p| (p.iface.bridge.as_str(), p.iface.ofport))
        .chain(external.iter().map(|e| (e.bridge.as_str(), e.ofport)))
    {
        *count.entry((bridge, port)).or_default() += 1;
    }
    let twice: BTreeSet<(String, PortNo)> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((b, p), _)| (b.to_owned(), p))
        .collect();
    if twice.is_empty() {
        return;
    }
    let claimed = |bridge: &str, port: PortNo| twice.contains(&(bridge.to_owned(), port));
    plugged.retain(|p| {
        let keep = !claimed(&p.iface.bridge, p.iface.ofport);
        if !keep {
            warnings.iface(
                &p.iface.bridge,
                &p.iface.name,
                Some("ofport".into()),
                format!(
                    "port {} is claimed by more than one interface; left out",
                    p.iface.ofport
                ),
            );
        }
        keep
    });
    external.retain(|e| {
        let keep = !claimed(&e.bridge, e.ofport);
        if !keep {
            warnings.iface(
                &e.bridge,
                &e.name,
                Some("ofport".into()),
                format!(
                    "port {} is claimed by more than one interface; left out",
                    e.ofport
                ),
            );
        }
        keep
    });
}

/// Leaves out every VM interface whose MAC another VM interface has: the
/// compiler's port security needs one owner per MAC.
fn drop_duplicate_macs(plugged: &mut Vec<Plugged>, warnings: &mut Warnings) {
    let mut count: HashMap<MacAddr, usize> = HashMap::new();
    for p in plugged.iter() {
        *count.entry(p.iface.mac).or_default() += 1;
    }
    plugged.retain(|p| {
        let keep = count.get(&p.iface.mac).is_none_or(|n| *n == 1);
        if !keep {
            warnings.iface(
                &p.iface.bridge,
                &p.iface.name,
                None,
                format!(
                    "VM {}: MAC {} is also used by another VM interface; left out",
                    p.vm, p.iface.mac
                ),
            );
        }
        keep
    });
}

/// Groups interfaces into VMs (sorted by id, interfaces by bridge and
/// port), merges labels and adds the config file's labels and addresses.
fn group(plugged: Vec<Plugged>, settings: &InventorySettings, warnings: &mut Warnings) -> Vec<Vm> {
    let mut by_id: BTreeMap<VmId, Vec<Plugged>> = BTreeMap::new();
    for p in plugged {
        by_id.entry(p.vm.clone()).or_default().push(p);
    }
    let mut vms = Vec::with_capacity(by_id.len());
    for (id, mut parts) in by_id {
        parts.sort_by(|a, b| {
            (&a.iface.bridge, a.iface.ofport).cmp(&(&b.iface.bridge, b.iface.ofport))
        });
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut conflicting = BTreeSet::new();
        for p in &parts {
            for (k, v) in &p.labels {
                match labels.get(k) {
                    Some(existing) if existing != v => {
                        conflicting.insert(k.clone());
                    }
                    Some(_) => {}
                    None => {
                        labels.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let configured = settings.vms.get(&id);
        for k in conflicting {
            labels.remove(&k);
            if configured.is_some_and(|c| c.labels.contains_key(&k)) {
                continue; // The config file settles it.
            }
            warnings.push(
                None,
                None,
                Some(format!("external_ids:{}{k}", settings.label_prefix)),
                format!("VM {id}: its interfaces disagree on label {k}; label left out"),
            );
        }
        if let Some(configured) = configured {
            labels.extend(
                configured
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        let interfaces = parts
            .into_iter()
            .map(|p| {
                let mut iface = p.iface;
                iface.ips = settings.ips_for(&id, iface.mac);
                iface
            })
            .collect();
        vms.push(Vm {
            id,
            labels,
            interfaces,
        });
    }
    vms
}

/// Removes unusable addresses and addresses two VMs claim. Validated
/// settings have neither; this keeps the compiler's promise for settings
/// that were not validated.
fn drop_shared_ips(vms: &mut [Vm], warnings: &mut Warnings) {
    let mut owners: HashMap<IpAddr, BTreeSet<&VmId>> = HashMap::new();
    for vm in vms.iter() {
        for ip in vm.interfaces.iter().flat_map(|i| &i.ips) {
            owners.entry(*ip).or_default().insert(&vm.id);
        }
    }
    let shared: BTreeSet<IpAddr> = owners
        .into_iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(ip, _)| ip)
        .collect();
    for vm in vms.iter_mut() {
        for iface in &mut vm.interfaces {
            iface.ips.retain(|ip| {
                let problem = if shared.contains(ip) {
                    Some(format!("{ip} is configured for more than one VM"))
                } else {
                    check_ip(ip).err()
                };
                if let Some(problem) = &problem {
                    warnings.iface(
                        &iface.bridge,
                        &iface.name,
                        None,
                        format!("VM {}: {problem}; address left out", vm.id),
                    );
                }
                problem.is_none()
            });
        }
    }
}

#[cfg(test)]
mod tests;
