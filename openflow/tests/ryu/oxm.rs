//! Matches, actions and instructions in Ryu's JSON shape (`OFPMatch`,
//! `OFPActionOutput`, `NXActionCT`, `OFPInstructionActions`, ...), so decoded
//! structures can be compared key by key with Ryu's decoding of its fixtures.
#![allow(dead_code)]

use augur_openflow::PortNo;
use augur_openflow::action::{Action, Controller2Prop, CtZone, Nat, Sample, Subfield};
use augur_openflow::instruction::Instruction;
use augur_openflow::oxm::{Match, Oxm};
use base64::Engine;
use serde_json::{Value, json};

/// ONF's experimenter id; Ryu decodes its old-style EXT-256 `pbb_uca` OXM in
/// OpenFlow 1.3 (experimenter type 2560 in the first two payload bytes).
const ONF_EXPERIMENTER_ID: u32 = 0x4f4e_4600;
const ONF_ET_PBB_UCA: [u8; 2] = [0x0a, 0x00];
const NX_EXPERIMENTER_ID: u32 = 0x2320;

fn base64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `{"OFPMatch": {"length", "oxm_fields", "type"}}`.
pub fn match_to_ryu(m: &Match) -> Value {
    json!({
        "OFPMatch": {
            "length": m.unpadded_len(),
            "oxm_fields": m.oxms().iter().map(oxm_to_ryu).collect::<Vec<_>>(),
            "type": 1,
        }
    })
}

/// `{"OXMTlv": {"field", "mask", "value"}}`.
pub fn oxm_to_ryu(oxm: &Oxm) -> Value {
    let tlv = match oxm {
        // Our serde form of a known field is Ryu's: name, value as a number or
        // an address string, mask likewise or null.
        Oxm::Field(m) => serde_json::to_value(m).unwrap_or(Value::Null),
        Oxm::Experimenter(e)
            if e.experimenter.0 == ONF_EXPERIMENTER_ID
                && e.payload.len() == 3
                && e.payload[..2] == ONF_ET_PBB_UCA =>
        {
            json!({"field": "pbb_uca", "value": e.payload[2], "mask": null})
        }
        Oxm::Experimenter(e) => json!({
            "field": format!("experimenter_{:08x}_{}", e.experimenter.0, e.field),
            "value": hex::encode(&e.payload),
            "mask": null,
        }),
        Oxm::Unknown(u) => json!({
            "field": format!("unknown_{:04x}_{}", u.class.0, u.field),
            "value": hex::encode(&u.payload),
            "mask": null,
        }),
    };
    json!({ "OXMTlv": tlv })
}

fn nat_to_ryu(nat: &Nat, len: usize) -> Value {
    let addr = |a: Option<String>| a.unwrap_or_default();
    json!({
        "NXActionNAT": {
            "experimenter": NX_EXPERIMENTER_ID,
            "flags": nat.flags.0,
            "len": len,
            "range_ipv4_max": addr(nat.ipv4_max.map(|a| a.to_string())),
            "range_ipv4_min": addr(nat.ipv4_min.map(|a| a.to_string())),
            "range_ipv6_max": addr(nat.ipv6_max.map(|a| a.to_string())),
            "range_ipv6_min": addr(nat.ipv6_min.map(|a| a.to_string())),
            "range_proto_max": nat.proto_max,
            "range_proto_min": nat.proto_min,
            "subtype": 36,
            "type": 65535,
        }
    })
}

fn of10(port: PortNo) -> Value {
    port.to_of10().map_or(Value::Null, Value::from)
}

/// `{"OFPActionOutput": {...}}` and friends, `{"NXActionCT": {...}}` for the
/// Nicira actions.
pub fn action_to_ryu(a: &Action) -> Value {
    let len = a.wire_len();
    let ty = a.action_type().0;
    let plain = |name: &str| json!({ name: {"len": len, "type": ty} });
    match a {
        Action::Output { port, max_len } => json!({
            "OFPActionOutput": {"len": len, "max_len": max_len, "port": port.0, "type": ty}
        }),
        Action::CopyTtlOut => plain("OFPActionCopyTtlOut"),
        Action::CopyTtlIn => plain("OFPActionCopyTtlIn"),
        Action::DecMplsTtl => plain("OFPActionDecMplsTtl"),
        Action::PopVlan => plain("OFPActionPopVlan"),
        Action::DecNwTtl => plain("OFPActionDecNwTtl"),
        Action::PopPbb => plain("OFPActionPopPbb"),
        Action::SetMplsTtl(ttl) => {
            json!({"OFPActionSetMplsTtl": {"len": len, "mpls_ttl": ttl, "type": ty}})
        }
        Action::SetNwTtl(ttl) => {
            json!({"OFPActionSetNwTtl": {"len": len, "nw_ttl": ttl, "type": ty}})
        }
        Action::PushVlan(e) => {
            json!({"OFPActionPushVlan": {"ethertype": e, "len": len, "type": ty}})
        }
        Action::PushMpls(e) => {
            json!({"OFPActionPushMpls": {"ethertype": e, "len": len, "type": ty}})
        }
        Action::PopMpls(e) => json!({"OFPActionPopMpls": {"ethertype": e, "len": len, "type": ty}}),
        Action::PushPbb(e) => json!({"OFPActionPushPbb": {"ethertype": e, "len": len, "type": ty}}),
        Action::SetQueue(q) => {
            json!({"OFPActionSetQueue": {"len": len, "queue_id": q, "type": ty}})
        }
        Action::Group(g) => json!({"OFPActionGroup": {"group_id": g, "len": len, "type": ty}}),
        Action::SetField(oxm) => json!({
            "OFPActionSetField": {"field": oxm_to_ryu(oxm), "len": len, "type": ty}
        }),
        Action::Ct(ct) => {
            let (zone_src, zone_ofs_nbits) = match ct.zone {
                CtZone::Immediate(zone) => (String::new(), zone),
                CtZone::Field(sf) => (sf.field.to_string(), ofs_nbits(&sf)),
            };
            json!({
                "NXActionCT": {
                    "actions": ct.actions.iter().map(action_to_ryu).collect::<Vec<_>>(),
                    "alg": ct.alg,
                    "experimenter": NX_EXPERIMENTER_ID,
                    "flags": ct.flags.0,
                    "len": len,
                    "recirc_table": ct.recirc_table.unwrap_or(255),
                    "subtype": 35,
                    "type": ty,
                    "zone_ofs_nbits": zone_ofs_nbits,
                    "zone_src": zone_src,
                }
            })
        }
        Action::Nat(nat) => nat_to_ryu(nat, len),
        Action::CtClear => json!({
            "NXActionCTClear": {"experimenter": NX_EXPERIMENTER_ID, "len": len, "subtype": 43, "type": ty}
        }),
        Action::Resubmit { in_port } => json!({
            "NXActionResubmit": {
                "experimenter": NX_EXPERIMENTER_ID,
                "in_port": of10(*in_port),
                "len": len,
                "subtype": 1,
                "type": ty,
            }
        }),
        Action::ResubmitTable { in_port, table, ct } => json!({
            (if *ct { "NXActionResubmitTableCT" } else { "NXActionResubmitTable" }): {
                "experimenter": NX_EXPERIMENTER_ID,
                "in_port": of10(*in_port),
                "len": len,
                "subtype": if *ct { 44 } else { 14 },
                "table_id": table,
                "type": ty,
            }
        }),
        Action::Conjunction(c) => nx(
            a,
            "NXActionConjunction",
            json!({
                "clause": c.clause, "id": c.id, "n_clauses": c.n_clauses,
            }),
        ),
        Action::RegLoad(load) => nx(
            a,
            "NXActionRegLoad",
            json!({
                "dst": load.dst.field.to_string(),
                "ofs_nbits": ofs_nbits(&load.dst),
                "value": load.value,
            }),
        ),
        Action::RegLoad2(oxm) => {
            let tlv = &oxm_to_ryu(oxm)["OXMTlv"];
            nx(
                a,
                "NXActionRegLoad2",
                json!({
                    "dst": tlv["field"], "mask": tlv["mask"], "value": tlv["value"],
                }),
            )
        }
        Action::RegMove(mv) => nx(
            a,
            "NXActionRegMove",
            json!({
                "dst_field": mv.dst.field.to_string(),
                "dst_ofs": mv.dst.ofs,
                "n_bits": mv.src.n_bits,
                "src_field": mv.src.field.to_string(),
                "src_ofs": mv.src.ofs,
            }),
        ),
        Action::StackPush(sf) => nx(a, "NXActionStackPush", stack(sf)),
        Action::StackPop(sf) => nx(a, "NXActionStackPop", stack(sf)),
        Action::Note(note) => nx(a, "NXActionNote", json!({ "note": note.to_vec() })),
        Action::NxController(c) => nx(
            a,
            "NXActionController",
            json!({
                "controller_id": c.controller_id, "max_len": c.max_len, "reason": c.reason.0,
            }),
        ),
        Action::Controller2(props) => {
            let mut body = serde_json::Map::new();
            for prop in props {
                let (key, value) = match prop {
                    Controller2Prop::MaxLen(n) => ("max_len", json!(n)),
                    Controller2Prop::ControllerId(id) => ("controller_id", json!(id)),
                    Controller2Prop::Reason(r) => ("reason", json!(r.0)),
                    Controller2Prop::Userdata(data) => ("userdata", json!(data.to_vec())),
                    Controller2Prop::Pause => ("pause", json!(true)),
                    Controller2Prop::MeterId(id) => ("meter_id", json!(id)),
                    Controller2Prop::Unknown(u) => ("unknown", json!(u.prop_type)),
                };
                body.insert(key.to_owned(), value);
            }
            nx(a, "NXActionController2", Value::Object(body))
        }
        Action::OutputTrunc { port, max_len } => nx(
            a,
            "NXActionOutputTrunc",
            json!({
                "max_len": max_len, "port": of10(*port),
            }),
        ),
        Action::FinTimeout {
            idle_timeout,
            hard_timeout,
        } => nx(
            a,
            "NXActionFinTimeout",
            json!({
                "fin_hard_timeout": hard_timeout, "fin_idle_timeout": idle_timeout,
            }),
        ),
        Action::DecTtlCntIds(ids) => nx(a, "NXActionDecTtlCntIds", json!({ "cnt_ids": ids })),
        Action::Sample(sample) => sample_to_ryu(a, sample),
        // Kept opaque by design (learn, bundle, ...): Ryu's decoding of a
        // subtype it does not know has this shape; `learn` fixtures, which
        // Ryu does decode, are listed in NOT_COMPARED.
        Action::Nicira(opaque) => nx(
            a,
            "NXActionUnknown",
            json!({
                "data": base64(&opaque.data), "subtype": opaque.subtype.0,
            }),
        ),
        Action::Experimenter(e) => json!({
            "OFPActionExperimenterUnknown": {
                "data": base64(&e.data),
                "experimenter": e.experimenter.0,
                "len": len,
                "type": ty,
            }
        }),
        Action::Unknown(u) => json!({
            "OFPActionUnknown": {"data": base64(&u.data), "len": len, "type": ty}
        }),
    }
}

/// `{class: {fields.., "experimenter", "len", "subtype", "type"}}` for a
/// Nicira action, whose wire subtype comes from encoding it.
fn nx(a: &Action, class: &str, fields: Value) -> Value {
    let mut wire = bytes::BytesMut::new();
    let subtype = match a.encode(&mut wire) {
        Ok(()) if wire.len() >= 10 => Value::from(u16::from_be_bytes([wire[8], wire[9]])),
        _ => Value::Null,
    };
    let mut body = match fields {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    body.insert("experimenter".into(), json!(NX_EXPERIMENTER_ID));
    body.insert("len".into(), json!(a.wire_len()));
    body.insert("subtype".into(), subtype);
    body.insert("type".into(), json!(0xffff));
    json!({ class: body })
}

/// Ryu's packed `ofs << 6 | (n_bits - 1)`.
fn ofs_nbits(sf: &Subfield) -> u16 {
    sf.ofs << 6 | sf.n_bits.saturating_sub(1)
}

/// `field[start..end]` of the stack actions, as Ryu writes it.
fn stack(sf: &Subfield) -> Value {
    json!({
        "end": u32::from(sf.ofs) + u32::from(sf.n_bits).saturating_sub(1),
        "field": sf.field.to_string(),
        "start": sf.ofs,
    })
}

fn sample_to_ryu(a: &Action, s: &Sample) -> Value {
    let mut fields = json!({
        "collector_set_id": s.collector_set_id,
        "obs_domain_id": s.obs_domain_id,
        "obs_point_id": s.obs_point_id,
        "probability": s.probability,
    });
    let class = match (s.sampling_port, s.direction) {
        (None, _) => "NXActionSample",
        (Some(port), direction) => {
            fields["sampling_port"] = of10(port);
            match direction {
                None => "NXActionSample2",
                Some(d) => {
                    fields["direction"] = json!(d);
                    "NXActionSample3"
                }
            }
        }
    };
    nx(a, class, fields)
}

/// `{"OFPInstructionActions": {...}}` and friends.
pub fn instruction_to_ryu(i: &Instruction) -> Value {
    let len = i.wire_len();
    let ty = i.instruction_type().0;
    let actions = |list: &[Action]| list.iter().map(action_to_ryu).collect::<Vec<_>>();
    match i {
        Instruction::GotoTable(table) => json!({
            "OFPInstructionGotoTable": {"len": len, "table_id": table, "type": ty}
        }),
        Instruction::WriteMetadata { metadata, mask } => json!({
            "OFPInstructionWriteMetadata": {
                "len": len, "metadata": metadata, "metadata_mask": mask, "type": ty
            }
        }),
        Instruction::WriteActions(list) | Instruction::ApplyActions(list) => json!({
            "OFPInstructionActions": {"actions": actions(list), "len": len, "type": ty}
        }),
        Instruction::ClearActions => json!({
            "OFPInstructionActions": {"actions": [], "len": len, "type": ty}
        }),
        Instruction::Meter(id) => json!({
            "OFPInstructionMeter": {"len": len, "meter_id": id, "type": ty}
        }),
        Instruction::Experimenter(e) => json!({
            "OFPInstructionExperimenter": {
                "data": base64(&e.data), "experimenter": e.experimenter.0, "len": len, "type": ty
            }
        }),
        Instruction::Unknown(u) => json!({
            "OFPInstructionUnknown": {"data": base64(&u.data), "len": len, "type": ty}
        }),
    }
}
