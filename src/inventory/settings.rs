//! What the operator decides about the inventory: which external id names a
//! VM, which external ids are labels, which bridges count, and the labels
//! and addresses the config file adds.
//!
//! In a TOML config file (the `[inventory]` table of `augur.toml`):
//!
//! ```toml
//! [inventory]
//! vm_id_keys = ["vm-id", "vm-uuid", "iface-id"]   # the default
//! label_prefix = "augur-label-"                    # the default; "" reads no labels from OVSDB
//! bridges = ["br-int"]                             # default: every bridge
//!
//! [inventory.vms.web-1]
//! labels = { tier = "web", tenant = "blue" }       # win over OVSDB labels with the same key
//! ips = ["10.0.0.11", "2001:db8::11"]              # every interface of the VM
//!
//! [inventory.vms.web-1.interfaces."52:54:00:00:00:02"]
//! ips = ["192.168.7.11"]                           # this interface instead
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use augur_openflow::MacAddr;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::model::VmId;

/// The external ids that name a VM, most authoritative first, as libvirt
/// (`vm-id` where set by the operator's tooling, `vm-uuid`) and OpenStack
/// (`vm-uuid`, `iface-id`: the Neutron port) set them.
pub const DEFAULT_VM_ID_KEYS: [&str; 3] = ["vm-id", "vm-uuid", "iface-id"];

/// The prefix of external ids that carry labels: `augur-label-tier=web` is
/// the label `tier = "web"`.
pub const DEFAULT_LABEL_PREFIX: &str = "augur-label-";

/// The longest label name (as a DNS label: short enough to read in a flow
/// dump or a log line).
pub const MAX_LABEL_NAME_LEN: usize = 63;

/// The longest label value or VM id, in bytes.
pub const MAX_VALUE_LEN: usize = 255;

/// How OVSDB rows become an [`Inventory`](super::Inventory), and what the
/// config file adds to them.
///
/// Unknown keys at this level are ignored, so that the daemon's `[inventory]`
/// table can also hold the source (`file = ...` or `ovsdb = ...`); inside a
/// VM's table they are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InventorySettings {
    /// Interface external ids that name the VM, tried in order; the first
    /// one present with a non-empty value wins. An interface with none of
    /// them is an external port (uplink, patch port, host interface).
    pub vm_id_keys: Vec<String>,
    /// Interface external ids starting with this are labels of the VM (the
    /// rest of the key is the label name). Empty: no labels from OVSDB,
    /// only from [`vms`](Self::vms).
    pub label_prefix: String,
    /// The bridges to include, by name; empty means every bridge.
    pub bridges: Vec<String>,
    /// Labels and addresses by VM id. Labels here win over labels with the
    /// same name from OVSDB: the config file is the operator's own record,
    /// while anyone able to run `ovs-vsctl` can write external ids.
    pub vms: BTreeMap<VmId, VmSettings>,
}

impl Default for InventorySettings {
    fn default() -> Self {
        Self {
            vm_id_keys: DEFAULT_VM_ID_KEYS.iter().map(|&k| k.to_owned()).collect(),
            label_prefix: DEFAULT_LABEL_PREFIX.to_owned(),
            bridges: Vec::new(),
            vms: BTreeMap::new(),
        }
    }
}

/// What the config file says about one VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmSettings {
    /// Labels, merged with those from OVSDB (these win).
    pub labels: BTreeMap<String, String>,
    /// Addresses of every interface of the VM that has no entry of its own
    /// in [`interfaces`](Self::interfaces).
    pub ips: Vec<IpAddr>,
    /// Addresses of single interfaces, keyed by the interface's MAC address
    /// (stable across VM restarts, unlike interface names).
    pub interfaces: BTreeMap<String, InterfaceSettings>,
}

/// What the config file says about one VM interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterfaceSettings {
    /// The addresses the interface may send from (replacing the VM's `ips`).
    pub ips: Vec<IpAddr>,
}

/// A setting that cannot be used, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("inventory setting {setting}: {reason}")]
pub struct SettingsError {
    /// The setting, as a TOML path (`vms.web-1.labels.tier`).
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

fn error(setting: impl Into<String>, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.into(),
        reason: reason.into(),
    }
}

impl InventorySettings {
    /// Checks everything the builder relies on, so that a mistake in the
    /// config file stops start-up instead of silently changing enforcement.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.vm_id_keys.is_empty() {
            return Err(error("vm_id_keys", "must name at least one external id"));
        }
        for (n, key) in self.vm_id_keys.iter().enumerate() {
            if key.is_empty() || key.chars().any(char::is_control) {
                return Err(error(
                    format!("vm_id_keys[{n}]"),
                    format!("{key:?} is not an external id key"),
                ));
            }
            if !self.label_prefix.is_empty() && key.starts_with(&self.label_prefix) {
                return Err(error(
                    format!("vm_id_keys[{n}]"),
                    format!("{key:?} starts with the label prefix"),
                ));
            }
        }
        if self.label_prefix.chars().any(char::is_control) {
            return Err(error("label_prefix", "contains control characters"));
        }
        let mut owners: HashMap<IpAddr, &VmId> = HashMap::new();
        for (id, vm) in &self.vms {
            let at = |what: &str| format!("vms.{}.{what}", toml_key(&id.0));
            check_vm_id(&id.0)
                .map_err(|reason| error(format!("vms.{}", toml_key(&id.0)), reason))?;
            for (name, value) in &vm.labels {
                check_label_name(name)
                    .map_err(|r| error(at(&format!("labels.{}", toml_key(name))), r))?;
                check_label_value(value)
                    .map_err(|r| error(at(&format!("labels.{}", toml_key(name))), r))?;
            }
            let mut claim = |ip: &IpAddr, setting: String| -> Result<(), SettingsError> {
                check_ip(ip).map_err(|r| error(setting.clone(), r))?;
                match owners.insert(*ip, id) {
                    Some(other) if other != id => Err(error(
                        setting,
                        format!("{ip} is also an address of VM {other}"),
                    )),
                    _ => Ok(()),
                }
            };
            for ip in &vm.ips {
                claim(ip, at("ips"))?;
            }
            for (mac, iface) in &vm.interfaces {
                let setting = at(&format!("interfaces.{}", toml_key(mac)));
                let parsed: MacAddr = mac
                    .parse()
                    .map_err(|_| error(setting.clone(), format!("{mac:?} is not a MAC address")))?;
                check_mac(parsed).map_err(|r| error(setting.clone(), r))?;
                for ip in &iface.ips {
                    claim(ip, format!("{setting}.ips"))?;
                }
            }
        }
        Ok(())
    }

    /// The addresses the config gives the interface with `mac` of VM `id`.
    pub(crate) fn ips_for(&self, id: &VmId, mac: MacAddr) -> Vec<IpAddr> {
        let Some(vm) = self.vms.get(id) else {
            return Vec::new();
        };
        vm.interfaces
            .iter()
            .find(|(key, _)| key.parse::<MacAddr>().is_ok_and(|m| m == mac))
            .map_or_else(|| vm.ips.clone(), |(_, iface)| iface.ips.clone())
    }
}

/// Quotes a TOML key when it needs quoting, for error messages.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Whether `name` may be a label name: 1 to 63 ASCII letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or digit. Policies match
/// labels by exact name, so a name with stray spaces or case games would
/// match nothing and silently leave a VM out of its group.
pub fn check_label_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    if bytes.is_empty() || bytes.len() > MAX_LABEL_NAME_LEN {
        return Err(format!(
            "label name {name:?} must have 1 to {MAX_LABEL_NAME_LEN} characters"
        ));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        || !edge_ok(bytes.first())
        || !edge_ok(bytes.last())
    {
        return Err(format!(
            "label name {name:?} must be ASCII letters, digits, '-', '_' and '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Whether `value` may be a label value: at most 255 bytes, no control
/// characters (it ends up in logs and terminal output).
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_LEN {
        return Err(format!("label value is longer than {MAX_VALUE_LEN} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("label value {value:?} contains control characters"));
    }
    Ok(())
}

/// Whether `id` may be a VM id: 1 to 255 bytes without control characters.
pub fn check_vm_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_VALUE_LEN {
        return Err(format!("VM id must have 1 to {MAX_VALUE_LEN} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(format!("VM id {id:?} contains control characters"));
    }
    Ok(())
}

/// Whether a VM may own `mac`: unicast and not all zeros (the compiler
/// refuses any other, and a VM sending from one is spoofing).
pub fn check_mac(mac: MacAddr) -> Result<(), String> {
    if mac.is_multicast() || mac == MacAddr::ZERO {
        return Err(format!("{mac} is not a unicast MAC address"));
    }
    Ok(())
}

/// Whether a VM may own `ip`: not unspecified, multicast or broadcast.
pub fn check_ip(ip: &IpAddr) -> Result<(), String> {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(format!("{ip} cannot be a VM's own address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> InventorySettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults() {
        let s = InventorySettings::default();
        assert_eq!(s.vm_id_keys, ["vm-id", "vm-uuid", "iface-id"]);
        assert_eq!(s.label_prefix, "augur-label-");
        assert!(s.bridges.is_empty());
        assert_eq!(parse(""), s);
        s.validate().unwrap();
    }

    #[test]
    fn parses_the_documented_example() {
        let s = parse(
            r#"
            vm_id_keys = ["vm-uuid"]
            label_prefix = "lbl:"
            [vms.web-1]
            labels = { tier = "web" }
            ips = ["10.0.0.11"]
            [vms.web-1.interfaces."52:54:00:00:00:02"]
            ips = ["192.168.7.11"]
            "#,
        );
        s.validate().unwrap();
        let id = VmId::from("web-1");
        assert_eq!(
            s.ips_for(&id, "52:54:00:00:00:02".parse().unwrap()),
            ["192.168.7.11".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            s.ips_for(&id, "52:54:00:00:00:01".parse().unwrap()),
            ["10.0.0.11".parse::<IpAddr>().unwrap()]
        );
        assert!(
            s.ips_for(&"other".into(), "52:54:00:00:00:01".parse().unwrap())
                .is_empty()
        );
    }

    #[test]
    fn unknown_keys_inside_a_vm_are_refused() {
        let e = toml::from_str::<InventorySettings>("[vms.a]\nlabel = { x = \"y\" }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `label`"), "{e}");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let table: &[(&str, &str, &str)] = &[
            ("vm_id_keys = []", "vm_id_keys", "at least one"),
            (
                "vm_id_keys = [\"\"]",
                "vm_id_keys[0]",
                "not an external id key",
            ),
            (
                "vm_id_keys = [\"augur-label-x\"]",
                "vm_id_keys[0]",
                "label prefix",
            ),
            (
                "[vms.a]\nlabels = { \"bad name\" = \"x\" }",
                "vms.a.labels.\"bad name\"",
                "label name",
            ),
            (
                "[vms.a]\nlabels = { \"-x\" = \"x\" }",
                "vms.a.labels.-x",
                "starting and ending",
            ),
            (
                "[vms.a]\nlabels = { x = \"a\\nb\" }",
                "vms.a.labels.x",
                "control characters",
            ),
            ("[vms.a]\nips = [\"0.0.0.0\"]", "vms.a.ips", "cannot be"),
            ("[vms.a]\nips = [\"ff02::1\"]", "vms.a.ips", "cannot be"),
            (
                "[vms.a]\nips = [\"255.255.255.255\"]",
                "vms.a.ips",
                "cannot be",
            ),
            (
                "[vms.a.interfaces.nope]\nips = []",
                "vms.a.interfaces.nope",
                "not a MAC",
            ),
            (
                "[vms.a.interfaces.\"01:00:5e:00:00:01\"]\nips = []",
                "vms.a.interfaces.\"01:00:5e:00:00:01\"",
                "not a unicast",
            ),
            (
                "[vms.a]\nips = [\"10.0.0.1\"]\n[vms.b]\nips = [\"10.0.0.1\"]",
                "vms.b.ips",
                "also an address of VM a",
            ),
            (
                "[vms.a]\nips = [\"10.0.0.1\"]\n\
                 [vms.b.interfaces.\"52:54:00:00:00:01\"]\nips = [\"10.0.0.1\"]",
                "vms.b.interfaces.\"52:54:00:00:00:01\".ips",
                "also an address of VM a",
            ),
            ("[vms.\"\"]", "vms.\"\"", "1 to 255"),
        ];
        for (text, setting, reason) in table {
            let e = parse(text).validate().unwrap_err();
            assert_eq!(e.setting, *setting, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
        }
    }

    #[test]
    fn one_vm_may_repeat_an_address_on_two_interfaces() {
        parse(
            "[vms.a]\nips = [\"10.0.0.1\"]\n\
             [vms.a.interfaces.\"52:54:00:00:00:01\"]\nips = [\"10.0.0.1\"]",
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn label_names() {
        for good in ["tier", "a", "app.kubernetes.io", "t_1-2", &"x".repeat(63)] {
            check_label_name(good).unwrap();
        }
        for bad in ["", "-a", "a-", ".a", "a b", "ä", "a=b", &"x".repeat(64)] {
            assert!(check_label_name(bad).is_err(), "{bad:?}");
        }
    }
}
