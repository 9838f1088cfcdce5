//! Enforcement, the pure part: the policy file ([`mod@file`]), its
//! compilation into one flow table per bridge ([`mod@compile`]), the cookies
//! that tag augur's flows ([`cookie`]), a model switch that runs packets
//! through the result ([`eval`]), and reconciliation of desired with
//! installed flows ([`mod@reconcile`]).
//!
//! Nothing here does I/O or reads a clock: the daemon passes `now` in, sends
//! the FLOW_MODs and METER_MODs that come out, and feeds back what the switch
//! reports.
//!
//! # The pipeline
//!
//! Every managed bridge gets the same eight stages, one table each. A packet
//! enters table 0; registers carry what one stage learnt to the next (OVS
//! zeroes them on entry and keeps them across conntrack recirculation).
//!
//! | table | stage | what it does |
//! |---|---|---|
//! | 0 | `classify` | **Port security.** From a VM port: ARP with the VM's own MAC and IPv4 (or a 0.0.0.0 probe), ND with its own IPv6 addresses and link-layer options, MLD, router solicitations, DHCP/DHCPv6 client traffic → `forward`; IP with the VM's own MAC and source IP → `src_addr`; anything else (another MAC or IP, router adverts, VLAN tags, other Ethertypes) → `deny` (spoofed). From an external port: a local VM's IP or ARP/ND claim → `deny` (spoofed); ARP, ND, MLD, DHCP server replies → `forward`; IP → `src_addr`, with `reg0` = the port endpoints it came through; non-IP frames for a VM's MAC → `deny`; other non-IP → `forward`. Unknown port → `deny`. |
//! | 1 | `src_addr` | Source address → `reg8=1` if it is a VM's (any bridge's: remote VMs are known by address), and the bits of the groups it is in (`reg1`–`reg3`); CIDR endpoints by longest prefix (never a VM's address). |
//! | 2 | `dst_addr` | The same for the destination (`reg9`, `reg4`–`reg6`). An IP packet for a local VM's MAC but not one of its IPs → `deny` (misaddressed), so `NORMAL` cannot be steered past the ACL. |
//! | 3 | `dst_port` | Destination port endpoints by MAC (`reg7`): LOCAL by the bridge's MAC, the only uplink for any MAC that is not a VM's. |
//! | 4 | `conntrack` | No VM at either end (`reg8=0,reg9=0`: the host's own traffic between LOCAL and the uplink) → `forward`, untracked. Otherwise `ct(zone=Z,table=5)`. |
//! | 5 | `acl` | `+inv` → drop. `+est`/`+rel` of a rate-limited rule's connection (`ct_mark` = its meter) → its meter, `forward`. `+est`/`+rel` → `forward`. `+new` matching a rule (IP version, source bit, destination bit, `ct_nw_proto`, `ct_tp_dst` under prefix masks for ranges; OVS wants the IP version pinned wherever `ct` runs) → its meter if it has one, `ct(commit,zone=Z)` (with `exec(ct_mark=meter)` then), `forward`. Anything else → `deny` (no rule). |
//! | 6 | `forward` | `NORMAL`. |
//! | 7 | `deny` | One flow per [`DenyReason`] (`reg10`): meter (packets/s, a setting), then `CONTROLLER` with a short `max_len`; other packets dropped. |
//!
//! Priorities are in [`compile::priority`]. Rules get `50000 - index`, so the
//! first rule in the file wins where rules overlap.
//!
//! The cookie of each flow names its version and origin (the rule, the stage,
//! or the deny reason); the layout is in [`cookie`].
//!
//! ## What the design assumes
//!
//! - VM ports are access ports (untagged); one conntrack zone per bridge, so
//!   VM addresses are unique across the inventory (checked).
//! - A VM on another bridge is recognised by its source address when its
//!   traffic arrives through an uplink; the sending bridge has checked that
//!   address against the VM's port. Traffic between two VMs on different
//!   bridges is checked on both.
//! - Traffic with no VM at either end is not the policy's business: it is
//!   forwarded without conntrack, so the host's own connections over LOCAL
//!   and the uplink survive the controller starting. That includes broadcast
//!   and multicast from outside, which `NORMAL` floods to VMs too.
//! - DHCP client messages (UDP 68→67, 546→547) from a VM pass to any
//!   destination with the VM's own addresses, as the server may be anywhere.
//! - Meter ids of rate-limited rules follow the order of those rules in the
//!   file; connections admitted under one version keep the `ct_mark` (meter)
//!   they were committed with.
//! - Removing a rule does not end the connections it admitted (like any
//!   stateful firewall that checks only the first packet); they last until
//!   conntrack forgets them.
pub mod compile;
pub mod cookie;
pub mod coverage;
pub mod eval;
pub mod file;
pub mod reconcile;

pub use compile::{
    BridgeFlows, CompileError, CompileSettings, CompiledPolicy, DenyReason, FlowEntry, MeterSpec,
    Mode, Stage, compile,
};
pub use cookie::{Cookie, Origin};
pub use file::{
    Endpoint, Group, Policy, PolicyError, PortRange, Proto, Rate, RateUnit, Rule, Selector,
};
pub use reconcile::{
    FlowChange, MeterChanges, Reconciliation, diff, diff_meters, reconcile, to_flow_mods,
};
