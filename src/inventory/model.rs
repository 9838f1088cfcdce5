//! What the controller knows about the machines it protects: bridges, the VMs
//! plugged into them, and the ports that are not VMs.
//!
//! This is plain data. [`mod@super::build`] fills it from OVSDB rows and
//! [`super::ovsdb`] keeps it current; the policy compiler only reads it. It
//! serializes to and from JSON or TOML so that tests, fixtures and
//! `augur policy explain` can feed the compiler an inventory from a file.
//!
//! ```
//! use augur::inventory::Inventory;
//!
//! let inventory: Inventory = serde_json::from_str(r#"{
//!   "bridges": [{"name": "br-int", "datapath_id": 1}],
//!   "vms": [{
//!     "id": "web-1",
//!     "labels": {"tier": "web"},
//!     "interfaces": [{"bridge": "br-int", "ofport": 3,
//!                     "mac": "52:54:00:00:00:01", "ips": ["10.0.0.11"]}]
//!   }],
//!   "external_ports": [{"bridge": "br-int", "name": "br-int", "ofport": "LOCAL"}]
//! }"#)?;
//! assert_eq!(inventory.vms[0].interfaces[0].ofport.0, 3);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use augur_openflow::{MacAddr, PortNo};
use serde::{Deserialize, Serialize};

/// Everything the compiler needs to know about the machines it protects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The managed bridges.
    #[serde(default)]
    pub bridges: Vec<Bridge>,
    /// The VMs, wherever they are plugged in.
    #[serde(default)]
    pub vms: Vec<Vm>,
    /// Ports of managed bridges that are not VMs: uplinks, patch ports, the
    /// bridge's LOCAL port.
    #[serde(default)]
    pub external_ports: Vec<ExternalPort>,
}

/// One managed OVS bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// The bridge's name in OVSDB (`br-int`).
    pub name: String,
    /// The datapath id its OpenFlow connection announces.
    pub datapath_id: u64,
}

/// A VM's identity as the hypervisor's management layer names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VmId(pub String);

impl fmt::Display for VmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for VmId {
    fn from(id: &str) -> VmId {
        VmId(id.to_owned())
    }
}

/// One VM: its identity, the labels policies select it by, and its network
/// interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    /// Its identity.
    pub id: VmId,
    /// Labels (`tier = "web"`, `tenant = "blue"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its interfaces, each plugged into a bridge.
    #[serde(default)]
    pub interfaces: Vec<VmInterface>,
}

/// A VM's interface: where it is plugged in and the addresses it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmInterface {
    /// The bridge it is plugged into.
    pub bridge: String,
    /// Its interface name in OVSDB (`vnet3`, `tap0`), for people reading
    /// the inventory; empty where unknown (an inventory written by hand).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its OpenFlow port number on that bridge.
    #[serde(with = "port_serde")]
    pub ofport: PortNo,
    /// The only source MAC it may send with.
    #[serde(with = "mac_serde")]
    pub mac: MacAddr,
    /// The only source IPs it may send with (the IPv6 link-local address
    /// derived from `mac` is allowed as well).
    #[serde(default)]
    pub ips: Vec<IpAddr>,
}

/// A port of a managed bridge that is not a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalPort {
    /// The bridge it belongs to.
    pub bridge: String,
    /// Its name in OVSDB (the bridge's own name for the LOCAL port).
    pub name: String,
    /// Its OpenFlow port number ([`PortNo::LOCAL`] for the LOCAL port).
    #[serde(with = "port_serde")]
    pub ofport: PortNo,
    /// The port's own MAC address where it is a host's interface (the LOCAL
    /// port's `mac_in_use`): traffic to this MAC is traffic to this port.
    #[serde(
        default,
        with = "opt_mac_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub mac: Option<MacAddr>,
}

impl ExternalPort {
    /// Whether this is the bridge's LOCAL port.
    pub fn is_local(&self) -> bool {
        self.ofport == PortNo::LOCAL
    }
}

impl Inventory {
    /// The bridge named `name`.
    pub fn bridge(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The VM with this id.
    pub fn vm(&self, id: &VmId) -> Option<&Vm> {
        self.vms.iter().find(|vm| &vm.id == id)
    }

    /// The VM interfaces plugged into `bridge`, with their VMs.
    pub fn interfaces_on<'a>(
        &'a self,
        bridge: &'a str,
    ) -> impl Iterator<Item = (&'a Vm, &'a VmInterface)> + 'a {
        self.vms.iter().flat_map(move |vm| {
            vm.interfaces
                .iter()
                .filter(move |i| i.bridge == bridge)
                .map(move |i| (vm, i))
        })
    }

    /// The external ports of `bridge`.
    pub fn external_ports_on<'a>(
        &'a self,
        bridge: &'a str,
    ) -> impl Iterator<Item = &'a ExternalPort> + 'a {
        self.external_ports
            .iter()
            .filter(move |p| p.bridge == bridge)
    }
}

impl VmInterface {
    /// Every source address the interface may use: its configured IPs and
    /// the IPv6 link-local address derived from its MAC (which IPv6 hosts
    /// use for neighbour discovery before any configured address).
    pub fn allowed_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let link_local = IpAddr::V6(eui64_link_local(self.mac));
        let listed = self.ips.contains(&link_local);
        self.ips
            .iter()
            .copied()
            .chain((!listed).then_some(link_local))
    }
}

/// The modified EUI-64 IPv6 link-local address of `mac` (RFC 4291 appendix A).
pub fn eui64_link_local(mac: MacAddr) -> std::net::Ipv6Addr {
    let [a, b, c, d, e, f] = mac.0;
    std::net::Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

/// MAC addresses as `52:54:00:00:00:01` text.
mod mac_serde {
    use augur_openflow::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(mac)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An optional MAC address as text.
mod opt_mac_serde {
    use augur_openflow::MacAddr;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(mac: &Option<MacAddr>, s: S) -> Result<S::Ok, S::Error> {
        match mac {
            Some(mac) => s.collect_str(mac),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<MacAddr>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Port numbers as integers, or reserved port names (`"LOCAL"`) as text.
mod port_serde {
    use augur_openflow::PortNo;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(port: &PortNo, s: S) -> Result<S::Ok, S::Error> {
        match port.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u32(port.0),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrName {
        Number(u32),
        Name(String),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PortNo, D::Error> {
        match NumberOrName::deserialize(d)? {
            NumberOrName::Number(n) => Ok(PortNo(n)),
            NumberOrName::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_follows_rfc4291() {
        let mac: MacAddr = "52:54:00:12:34:56".parse().unwrap();
        assert_eq!(
            eui64_link_local(mac),
            "fe80::5054:ff:fe12:3456"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
        );
    }

    #[test]
    fn round_trips_through_json() {
        let inventory = Inventory {
            bridges: vec![Bridge {
                name: "br0".into(),
                datapath_id: 7,
            }],
            vms: vec![Vm {
                id: "a".into(),
                labels: BTreeMap::from([("tier".into(), "web".into())]),
                interfaces: vec![VmInterface {
                    bridge: "br0".into(),
                    name: "vnet0".into(),
                    ofport: PortNo(4),
                    mac: "02:00:00:00:00:01".parse().unwrap(),
                    ips: vec!["10.0.0.1".parse().unwrap()],
                }],
            }],
            external_ports: vec![ExternalPort {
                bridge: "br0".into(),
                name: "br0".into(),
                ofport: PortNo::LOCAL,
                mac: Some("02:00:00:00:00:ff".parse().unwrap()),
            }],
        };
        let json = serde_json::to_string(&inventory).unwrap();
        assert!(json.contains(r#""ofport":"LOCAL""#), "{json}");
        let back: Inventory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, inventory);
    }
}
