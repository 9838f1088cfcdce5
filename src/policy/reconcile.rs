//! Reconciliation: the least a switch must change to hold exactly the desired
//! flows, touching only augur's.
//!
//! Installed flows come from a FLOW stats reply (filtered by
//! [`Cookie::AUGUR_MASK`] on the switch, and again here: a flow without
//! augur's prefix is never deleted or replaced). A desired flow and an
//! installed one are the same when their table, priority, match, instructions
//! and cookie agree, where
//!
//! - matches are compared as sets of fields: the order of TLVs does not
//!   matter, a full mask equals no mask, and a prerequisite the switch may add
//!   when it reports the flow (`eth_type=0x800` for an `ipv4_src`,
//!   `ip_proto=6` for a `tcp_dst`, ...) counts as present on both sides;
//! - instructions are compared in execution order;
//! - timeouts and counters are not compared (the switch reports a flow's
//!   original timeout, while the compiler computes what is left of it).
//!
//! The changes come out as exact deletes of the installed flows nobody wants
//! any more (`DELETE_STRICT` with the flow's own cookie under a full mask, so
//! a flow that changed meanwhile is not hit), then adds of the desired flows
//! the switch lacks or holds differently (an add replaces the flow with the
//! same table, priority and match). Sent as one bundle, they apply
//! atomically; sent one by one (switches without bundles), deletes first
//! fails closed, and adds go from the last stage to the first and from high
//! priority to low, so that guards land before the flows they guard.

use std::collections::HashMap;

use augur_openflow::instruction::in_execution_order;
use augur_openflow::meter::MeterConfig;
use augur_openflow::multipart::FlowStats;
use augur_openflow::oxm::Oxm;
use augur_openflow::{Field, FlowMod, Match, MatchField, MeterMod};
use bytes::BytesMut;
use serde::Serialize;

use super::compile::{CompileSettings, FlowEntry, MeterSpec};
use super::cookie::Cookie;

/// One change to a switch's flow table.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowChange {
    /// Delete exactly this installed flow.
    Delete {
        /// Its table.
        table_id: u8,
        /// Its priority.
        priority: u16,
        /// Its match, as the switch reported it.
        match_: Match,
        /// Its cookie (augur's).
        cookie: u64,
    },
    /// Add this flow, replacing one with the same table, priority and match.
    Add(FlowEntry),
}

/// A desired flow that would replace a flow that is not augur's (same table,
/// priority and match, another cookie): augur leaves it alone and says so.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocked {
    /// The flow augur wanted.
    pub desired: FlowEntry,
    /// The cookie of the flow in its way.
    pub foreign_cookie: u64,
}

/// The result of comparing desired and installed flows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// The changes, in the order to send them.
    pub changes: Vec<FlowChange>,
    /// Desired flows the switch already holds.
    pub unchanged: usize,
    /// Desired flows a foreign flow is in the way of.
    pub blocked: Vec<Blocked>,
}

/// The changes that make `installed` hold exactly `desired` among augur's
/// flows (see the module documentation).
pub fn diff(desired: &[FlowEntry], installed: &[FlowStats]) -> Vec<FlowChange> {
    reconcile(desired, installed).changes
}

/// [`diff`] with what it left alone and why.
pub fn reconcile(desired: &[FlowEntry], installed: &[FlowStats]) -> Reconciliation {
    let mut wanted: HashMap<Key, usize> = HashMap::with_capacity(desired.len());
    for (n, flow) in desired.iter().enumerate() {
        wanted.insert(Key::new(flow.table_id, flow.priority, &flow.match_), n);
    }
    // What each desired flow finds on the switch at its place.
    let mut found: Vec<Option<Found>> = vec![None; desired.len()];
    let mut deletes = Vec::new();
    for flow in installed {
        let key = Key::new(flow.table_id, flow.priority, &flow.match_);
        let slot = wanted.get(&key).copied();
        let ours = Cookie::is_augur(flow.cookie);
        match slot {
            Some(n) => {
                let same = desired.get(n).is_some_and(|d| {
                    ours && d.cookie.0 == flow.cookie
                        && in_execution_order(&d.instructions)
                            == in_execution_order(&flow.instructions)
                });
                let state = if same {
                    Found::Same
                } else if ours {
                    Found::Different
                } else {
                    Found::Foreign(flow.cookie)
                };
                if let Some(entry) = found.get_mut(n) {
                    *entry = Some(state);
                }
            }
            // Counting flows are the daemon's, one per live connection,
            // and leave on their idle timeout with their final counts.
            None if ours
                && Cookie(flow.cookie).origin() != Some(super::cookie::Origin::Counting) =>
            {
                deletes.push(FlowChange::Delete {
                    table_id: flow.table_id,
                    priority: flow.priority,
                    match_: flow.match_.clone(),
                    cookie: flow.cookie,
                })
            }
            None => {}
        }
    }
    let mut adds: Vec<&FlowEntry> = Vec::new();
    let mut blocked = Vec::new();
    let mut unchanged = 0;
    for (flow, state) in desired.iter().zip(&found) {
        match state {
            Some(Found::Same) => unchanged += 1,
            Some(Found::Foreign(cookie)) => blocked.push(Blocked {
                desired: flow.clone(),
                foreign_cookie: *cookie,
            }),
            Some(Found::Different) | None => adds.push(flow),
        }
    }
    adds.sort_by(|a, b| {
        b.table_id
            .cmp(&a.table_id)
            .then(b.priority.cmp(&a.priority))
    });
    let mut changes = deletes;
    changes.extend(adds.into_iter().cloned().map(FlowChange::Add));
    Reconciliation {
        changes,
        unchanged,
        blocked,
    }
}

/// The FLOW_MODs that carry out `changes`, in order.
pub fn to_flow_mods(changes: &[FlowChange]) -> Vec<FlowMod> {
    changes
        .iter()
        .map(|change| match change {
            FlowChange::Delete {
                table_id,
                priority,
                match_,
                cookie,
            } => FlowMod::delete_strict(*table_id, *priority, match_.clone())
                // Augur's prefix, not the whole cookie: OVS looks a strict
                // delete with a full cookie mask up by walking every flow
                // with that cookie (a whole stage shares one), but any
                // other mask by an exact classifier lookup. 1,000 deletes
                // in a 100,000-flow table took 5.4 s with the full mask.
                // The place (table, priority, match) names one flow; the
                // prefix still keeps a foreign flow there from being touched.
                .with_cookie(*cookie, Cookie::AUGUR_MASK),
            FlowChange::Add(flow) => flow.to_flow_mod(),
        })
        .collect()
}

/// The METER_MODs that make a switch hold the desired meters, split by when
/// they must go: meters are not tagged like flows, so augur owns the ids
/// [`CompileSettings::owns_meter`] says it does and leaves the others alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MeterChanges {
    /// Adds and modifies, to send before the flow changes (a flow that
    /// names a missing meter is refused).
    pub before_flows: Vec<MeterMod>,
    /// Deletes, to send after the flow changes (deleting a meter deletes the
    /// flows that use it).
    pub after_flows: Vec<MeterMod>,
}

/// Compares desired meters with a METER_CONFIG reply.
pub fn diff_meters(
    desired: &[MeterSpec],
    installed: &[MeterConfig],
    settings: &CompileSettings,
) -> MeterChanges {
    let mut changes = MeterChanges::default();
    for spec in desired {
        let wanted = spec.to_meter_mod();
        match installed.iter().find(|m| m.meter_id == spec.id) {
            None => changes.before_flows.push(wanted),
            Some(have) if same_meter(have, &wanted) => {}
            Some(_) => changes.before_flows.push(MeterMod {
                command: augur_openflow::meter::MeterCommand::MODIFY,
                ..wanted
            }),
        }
    }
    for have in installed {
        if settings.owns_meter(have.meter_id) && !desired.iter().any(|d| d.id == have.meter_id) {
            changes.after_flows.push(MeterMod::delete(have.meter_id));
        }
    }
    changes
}

/// Whether an installed meter is the wanted one. Without the BURST flag the
/// burst size is the switch's choice (OVS reports the rate there), so it is
/// not compared.
fn same_meter(have: &MeterConfig, wanted: &MeterMod) -> bool {
    use augur_openflow::meter::{MeterBand, MeterFlags};
    let burst_counts = wanted.flags.contains(MeterFlags::BURST);
    have.flags == wanted.flags
        && have.bands.len() == wanted.bands.len()
        && have
            .bands
            .iter()
            .zip(&wanted.bands)
            .all(|(h, w)| match (h, w) {
                (
                    MeterBand::Drop {
                        rate: hr,
                        burst_size: hb,
                    },
                    MeterBand::Drop {
                        rate: wr,
                        burst_size: wb,
                    },
                ) => hr == wr && (!burst_counts || hb == wb),
                (h, w) => h == w,
            })
}

/// What a desired flow finds on the switch.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// The same flow.
    Same,
    /// augur's flow, but not the same.
    Different,
    /// Someone else's flow.
    Foreign(u64),
}

/// A flow's place in the table: table, priority and its match as a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    table_id: u8,
    priority: u16,
    /// Known fields as (field, value under mask, mask), sorted, with the
    /// prerequisites they imply.
    fields: Vec<(Field, u128, u128)>,
    /// Opaque TLVs by their encoding, sorted.
    opaque: Vec<Vec<u8>>,
}

impl Key {
    fn new(table_id: u8, priority: u16, m: &Match) -> Key {
        let mut fields: Vec<(Field, u128, u128)> = Vec::with_capacity(m.len() + 2);
        let mut opaque = Vec::new();
        for oxm in m.oxms() {
            match oxm {
                Oxm::Field(f) => {
                    let mask = f.effective_mask() & f.field.full_mask();
                    if mask != 0 {
                        fields.push((f.field, f.value & mask, mask));
                    }
                }
                other => {
                    let mut bytes = BytesMut::new();
                    // A TLV that cannot be encoded is compared by what is
                    // left: nothing. It came off the wire, so it encodes.
                    let _ = other.encode(&mut bytes);
                    opaque.push(bytes.to_vec());
                }
            }
        }
        let present: Vec<Field> = fields.iter().map(|f| f.0).collect();
        for field in present {
            for implied in implied_by(field) {
                if !fields.iter().any(|f| f.0 == implied.field) {
                    let mask = implied.effective_mask();
                    fields.push((implied.field, implied.value & mask, mask));
                }
            }
        }
        fields.sort_unstable();
        opaque.sort_unstable();
        Key {
            table_id,
            priority,
            fields,
            opaque,
        }
    }
}

/// The prerequisites a field implies unambiguously (OpenFlow 1.3.5
/// §7.2.3.8), which a switch may add to a match it reports.
fn implied_by(field: Field) -> Vec<MatchField> {
    let eth = |t: u16| MatchField::exact(Field::EthType, t);
    let proto = |p: u8| MatchField::exact(Field::IpProto, p);
    match field {
        Field::Ipv4Src | Field::Ipv4Dst => vec![eth(0x0800)],
        Field::Ipv6Src | Field::Ipv6Dst | Field::Ipv6Flabel | Field::Ipv6Exthdr => {
            vec![eth(0x86dd)]
        }
        Field::ArpOp | Field::ArpSpa | Field::ArpTpa | Field::ArpSha | Field::ArpTha => {
            vec![eth(0x0806)]
        }
        Field::TcpSrc | Field::TcpDst => vec![proto(6)],
        Field::UdpSrc | Field::UdpDst => vec![proto(17)],
        Field::SctpSrc | Field::SctpDst => vec![proto(132)],
        Field::Icmpv4Type | Field::Icmpv4Code => vec![eth(0x0800), proto(1)],
        Field::Icmpv6Type | Field::Icmpv6Code | Field::Ipv6NdTarget => {
            vec![eth(0x86dd), proto(58)]
        }
        Field::Ipv6NdSll => vec![
            eth(0x86dd),
            proto(58),
            MatchField::exact(Field::Icmpv6Type, 135u8),
        ],
        Field::Ipv6NdTll => vec![
            eth(0x86dd),
            proto(58),
            MatchField::exact(Field::Icmpv6Type, 136u8),
        ],
        _ => Vec::new(),
    }
}
