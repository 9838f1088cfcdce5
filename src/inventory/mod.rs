//! What the controller knows about the machines it protects: bridges, the
//! VMs plugged into them, and the ports that are not VMs.
//!
//! - [`model`]: the inventory itself, plain data the policy compiler reads
//!   (also from a JSON or TOML file).
//! - [`settings`]: what the operator decides: which external id names a VM,
//!   the label prefix, and labels and addresses from the config file.
//! - [`mod@build`]: OVSDB rows → inventory, a pure function, with warnings for
//!   whatever in the database cannot be used.
//! - [`ovsdb`]: the live inventory, kept current from an OVSDB monitor.
//!
//! # Naming VMs and labelling them in OVSDB
//!
//! libvirt and OpenStack record who is plugged into an interface in its
//! `external_ids`; augur reads the same keys:
//!
//! ```sh
//! ovs-vsctl set interface vnet3 external_ids:vm-id=web-1 \
//!     external_ids:augur-label-tier=web external_ids:augur-label-tenant=blue
//! ```
//!
//! The VM id is the first of `vm-id`, `vm-uuid`, `iface-id` present (the
//! order is a setting); interfaces with the same id are one VM. Labels are
//! the external ids starting with `augur-label-` (a setting too); names are
//! 1 to 63 ASCII letters, digits, `-`, `_`, `.`. Labels in the config file
//! win over those in OVSDB. The VM's MAC is `attached-mac`, else the
//! interface's `mac_in_use`; addresses come from the config file.
//! [`mod@build`] has the full rules.

pub mod build;
pub mod model;
pub mod ovsdb;
pub mod settings;

pub use build::{Built, InventoryWarning, VswitchTables, build};
pub use model::{Bridge, ExternalPort, Inventory, Vm, VmId, VmInterface, eui64_link_local};
pub use ovsdb::{InventoryError, InventoryWatcher, watch};
pub use settings::{InterfaceSettings, InventorySettings, SettingsError, VmSettings};
