//! The repository's example three-tier policy and inventory
//! (`examples/policy/`), placed on test bridges.

use augur::inventory::Inventory;

use crate::support::ovs::TestBridge;

/// The example policy.
pub const POLICY: &str = include_str!("../../examples/policy/three-tier.toml");
/// The example inventory: bridges `s1` and `s2`.
pub const INVENTORY: &str = include_str!("../../examples/policy/three-tier-inventory.toml");

/// The example inventory with its bridges `s1` and `s2` renamed to the test
/// bridges that stand for them. A bridge given as `None` is left out with
/// the interfaces and external ports on it, and VMs left with no interface.
pub fn inventory_on(s1: Option<&TestBridge>, s2: Option<&TestBridge>) -> Inventory {
    let mut inventory: Inventory = toml::from_str(INVENTORY).unwrap();
    let test_bridge = |name: &str| match name {
        "s1" => s1,
        "s2" => s2,
        _ => None,
    };
    inventory
        .bridges
        .retain_mut(|b| match test_bridge(&b.name) {
            Some(bridge) => {
                b.name = bridge.name().to_owned();
                b.datapath_id = bridge.datapath_id();
                true
            }
            None => false,
        });
    for vm in &mut inventory.vms {
        vm.interfaces.retain_mut(|i| match test_bridge(&i.bridge) {
            Some(bridge) => {
                i.bridge = bridge.name().to_owned();
                true
            }
            None => false,
        });
    }
    inventory.vms.retain(|vm| !vm.interfaces.is_empty());
    inventory
        .external_ports
        .retain_mut(|p| match test_bridge(&p.bridge) {
            Some(bridge) => {
                p.bridge = bridge.name().to_owned();
                true
            }
            None => false,
        });
    inventory
}
