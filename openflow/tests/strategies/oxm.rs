//! Proptest strategies for matches, actions and instructions. Every value they
//! produce is valid: it encodes, and decodes back to itself.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

use augur_openflow::action::{
    Action, ActionType, Conjunction, Controller2Prop, Ct, CtFlags, CtZone, ExperimenterAction, Nat,
    NatFlags, NxAction, NxController, NxSubtype, RegLoad, RegMove, Sample, Subfield, UnknownAction,
};
use augur_openflow::instruction::{
    ExperimenterInstruction, Instruction, InstructionType, UnknownInstruction,
};
use augur_openflow::msg::PacketInReason;
use augur_openflow::oxm::{
    ExperimenterOxm, Field, Match, MatchField, Oxm, OxmClass, OxmHeader, UnknownOxm,
};
use augur_openflow::{CtState, ExperimenterId, MacAddr, PortNo, UnknownProperty};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;

/// Any port number, reserved ones included.
pub fn arb_port_no() -> impl Strategy<Value = PortNo> {
    prop_oneof![
        (1u32..=0xffff_ff00).prop_map(PortNo),
        prop::sample::select(vec![
            PortNo::IN_PORT,
            PortNo::TABLE,
            PortNo::NORMAL,
            PortNo::FLOOD,
            PortNo::ALL,
            PortNo::CONTROLLER,
            PortNo::LOCAL,
            PortNo::ANY,
        ]),
    ]
}

/// A port that has a 16-bit OpenFlow 1.0 form (for Nicira actions).
pub fn arb_of10_port_no() -> impl Strategy<Value = PortNo> {
    any::<u16>().prop_map(PortNo::from_of10)
}

/// Any Ethernet address.
pub fn arb_mac_addr() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

/// Any conntrack state bits.
pub fn arb_ct_state() -> impl Strategy<Value = CtState> {
    any::<u32>().prop_map(CtState)
}

fn bytes(len: impl Into<prop::collection::SizeRange>) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), len).prop_map(Bytes::from)
}

/// A valid match of `field`: value within the field's bits, a mask only if
/// the field is maskable, no value bit outside the mask.
pub fn arb_match_field_of(field: Field) -> BoxedStrategy<MatchField> {
    let full = field.full_mask();
    let exact = any::<u128>().prop_map(move |v| MatchField {
        field,
        value: v & full,
        mask: None,
    });
    if field.is_maskable() {
        let masked = (any::<u128>(), any::<u128>()).prop_map(move |(v, m)| {
            let mask = m & full;
            MatchField {
                field,
                value: v & mask,
                mask: Some(mask),
            }
        });
        prop_oneof![exact, masked].boxed()
    } else {
        exact.boxed()
    }
}

/// A valid match of any known field, with no prerequisite (for set-field).
pub fn arb_match_field() -> impl Strategy<Value = MatchField> {
    prop::sample::select(Field::ALL.to_vec()).prop_flat_map(arb_match_field_of)
}

fn exact(field: Field, value: u128) -> MatchField {
    MatchField {
        field,
        value,
        mask: None,
    }
}

/// Each of `fields` present or not, in order.
fn some_of(fields: &[Field]) -> impl Strategy<Value = Vec<MatchField>> + use<> {
    fields
        .iter()
        .map(|&f| prop::option::of(arb_match_field_of(f)))
        .collect::<Vec<_>>()
        .prop_map(|v| v.into_iter().flatten().collect())
}

/// An opaque TLV of a class or field this crate does not know.
pub fn arb_unknown_oxm() -> impl Strategy<Value = UnknownOxm> {
    (0u16..0xffff, 0u8..128, any::<bool>(), bytes(0..24))
        .prop_filter("known fields decode as such", |(class, field, _, _)| {
            Field::from_code(OxmClass(*class), *field).is_none()
        })
        .prop_map(|(class, field, hasmask, payload)| UnknownOxm {
            class: OxmClass(class),
            field,
            hasmask,
            payload,
        })
}

/// An experimenter OXM.
pub fn arb_experimenter_oxm() -> impl Strategy<Value = ExperimenterOxm> {
    (0u8..128, any::<bool>(), any::<u32>(), bytes(0..24)).prop_map(
        |(field, hasmask, experimenter, payload)| ExperimenterOxm {
            field,
            hasmask,
            experimenter: ExperimenterId(experimenter),
            payload,
        },
    )
}

/// Any single TLV (for set-field actions).
pub fn arb_oxm() -> impl Strategy<Value = Oxm> {
    prop_oneof![
        4 => arb_match_field().prop_map(Oxm::Field),
        1 => arb_unknown_oxm().prop_map(Oxm::Unknown),
        1 => arb_experimenter_oxm().prop_map(Oxm::Experimenter),
    ]
}

/// The fields after an IP `eth_type`: transport ports or ICMP per protocol.
fn arb_ip_payload(v6: bool) -> BoxedStrategy<Vec<MatchField>> {
    let icmp = if v6 {
        let nd = prop_oneof![
            Just(vec![exact(Field::Icmpv6Type, 128)]),
            some_of(&[Field::Ipv6NdTarget, Field::Ipv6NdSll]).prop_map(|mut v| {
                v.insert(0, exact(Field::Icmpv6Type, 135));
                v
            }),
            some_of(&[Field::Ipv6NdTarget, Field::Ipv6NdTll]).prop_map(|mut v| {
                v.insert(0, exact(Field::Icmpv6Type, 136));
                v
            }),
        ];
        (nd, some_of(&[Field::Icmpv6Code]))
            .prop_map(|(mut a, b)| {
                a.insert(0, exact(Field::IpProto, 58));
                a.extend(b);
                a
            })
            .boxed()
    } else {
        some_of(&[Field::Icmpv4Type, Field::Icmpv4Code])
            .prop_map(|mut v| {
                v.insert(0, exact(Field::IpProto, 1));
                v
            })
            .boxed()
    };
    let ports = |proto: u128, src: Field, dst: Field| {
        some_of(&[src, dst]).prop_map(move |mut v| {
            v.insert(0, exact(Field::IpProto, proto));
            v
        })
    };
    prop_oneof![
        Just(Vec::new()),
        ports(6, Field::TcpSrc, Field::TcpDst),
        ports(17, Field::UdpSrc, Field::UdpDst),
        ports(132, Field::SctpSrc, Field::SctpDst),
        icmp,
        any::<u8>().prop_map(|p| vec![exact(Field::IpProto, u128::from(p))]),
    ]
    .boxed()
}

/// `eth_type` and the fields that depend on it.
fn arb_l3() -> BoxedStrategy<Vec<MatchField>> {
    let with_type = |eth_type: u128, rest: BoxedStrategy<Vec<MatchField>>| {
        rest.prop_map(move |mut v| {
            v.insert(0, exact(Field::EthType, eth_type));
            v
        })
        .boxed()
    };
    let ipv4 = (
        some_of(&[Field::IpDscp, Field::IpEcn, Field::Ipv4Src, Field::Ipv4Dst]),
        arb_ip_payload(false),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
        .boxed();
    let ipv6 = (
        some_of(&[
            Field::IpDscp,
            Field::IpEcn,
            Field::Ipv6Src,
            Field::Ipv6Dst,
            Field::Ipv6Flabel,
            Field::Ipv6Exthdr,
        ]),
        arb_ip_payload(true),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
        .boxed();
    let arp = some_of(&[
        Field::ArpOp,
        Field::ArpSpa,
        Field::ArpTpa,
        Field::ArpSha,
        Field::ArpTha,
    ])
    .boxed();
    let mpls = some_of(&[Field::MplsLabel, Field::MplsTc, Field::MplsBos]).boxed();
    let pbb = some_of(&[Field::PbbIsid, Field::PbbUca]).boxed();
    prop_oneof![
        Just(Vec::new()),
        with_type(0x0800, ipv4),
        with_type(0x86dd, ipv6),
        with_type(0x0806, arp),
        with_type(0x8847, mpls.clone()),
        with_type(0x8848, mpls),
        with_type(0x88e7, pbb),
        any::<u16>().prop_map(|t| vec![exact(Field::EthType, u128::from(t))]),
    ]
    .boxed()
}

/// Nicira fields: registers, tunnel, mark, conjunction and conntrack, with
/// the original-direction tuple only after a `ct_state` that implies a valid
/// connection.
fn arb_nicira_fields() -> impl Strategy<Value = Vec<MatchField>> {
    let plain = some_of(&[
        Field::Reg0,
        Field::Reg3,
        Field::Reg15,
        Field::TunIpv4Src,
        Field::TunIpv4Dst,
        Field::PktMark,
        Field::ConjId,
        Field::CtZone,
        Field::CtMark,
        Field::CtLabel,
    ]);
    let valid = CtState::TRACKED | CtState::ESTABLISHED;
    let ct = prop_oneof![
        Just(Vec::new()),
        arb_match_field_of(Field::CtState).prop_map(|m| vec![m]),
        some_of(&[
            Field::CtNwProto,
            Field::CtNwSrc,
            Field::CtNwDst,
            Field::CtIpv6Src,
            Field::CtIpv6Dst,
            Field::CtTpSrc,
            Field::CtTpDst,
        ])
        .prop_map(move |mut v| {
            let state = u128::from(valid.0);
            v.insert(
                0,
                MatchField {
                    field: Field::CtState,
                    value: state,
                    mask: Some(state),
                },
            );
            v
        }),
    ];
    (plain, ct).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

/// Opaque TLVs with distinct headers.
fn arb_opaque_oxms() -> impl Strategy<Value = Vec<Oxm>> {
    (vec(arb_unknown_oxm(), 0..3), vec(arb_experimenter_oxm(), 0..3)).prop_map(|(u, e)| {
        let mut out: Vec<Oxm> = Vec::new();
        for x in u {
            if !out.iter().any(|o| matches!(o, Oxm::Unknown(y) if (y.class, y.field) == (x.class, x.field))) {
                out.push(Oxm::Unknown(x));
            }
        }
        for x in e {
            if !out.iter().any(|o| matches!(o, Oxm::Experimenter(y) if (y.experimenter, y.field) == (x.experimenter, x.field))) {
                out.push(Oxm::Experimenter(x));
            }
        }
        out
    })
}

/// A valid match built through the public API: each field at most once,
/// prerequisites first, masks only where allowed.
pub fn arb_match() -> impl Strategy<Value = Match> {
    let l2 = (
        prop::option::of(arb_port_no()),
        any::<bool>(),
        some_of(&[
            Field::Metadata,
            Field::EthDst,
            Field::EthSrc,
            Field::TunnelId,
        ]),
        prop::option::of((arb_match_field_of(Field::VlanVid), any::<bool>(), 0u8..8)),
    );
    (l2, arb_l3(), arb_nicira_fields(), arb_opaque_oxms()).prop_map(
        |((in_port, phy, l2, vlan), l3, nx, opaque)| {
            let mut m = Match::new();
            if let Some(port) = in_port {
                m = m.in_port(port);
                if phy {
                    m = m.in_phy_port(port);
                }
            }
            l2.into_iter().for_each(|f| m.set(f));
            if let Some((mut vid, pcp, prio)) = vlan {
                if pcp {
                    // vlan_pcp needs the present bit required set.
                    vid.value |= 0x1000;
                    vid.mask = vid.mask.map(|mask| mask | 0x1000);
                }
                m.set(vid);
                if pcp {
                    m = m.vlan_pcp(prio);
                }
            }
            l3.into_iter().chain(nx).for_each(|f| m.set(f));
            opaque.into_iter().for_each(|o| m.push(o));
            m
        },
    )
}

/// A Nicira subfield with a non-zero header, in the packed form of `ct`
/// zones and `load` (offset below 1024, 1 to 64 bits).
pub fn arb_subfield() -> impl Strategy<Value = Subfield> {
    (1u32.., 0u16..1024, 1u16..=64).prop_map(|(h, ofs, n_bits)| Subfield {
        field: OxmHeader(h),
        ofs,
        n_bits,
    })
}

/// A header of a class other than experimenter (whose 8-byte headers the
/// register actions keep opaque).
fn arb_plain_header() -> impl Strategy<Value = OxmHeader> {
    any::<u32>()
        .prop_filter("not an experimenter OXM", |h| h >> 16 != 0xffff)
        .prop_map(OxmHeader)
}

/// A subfield of the register actions with a free offset and `n_bits`.
fn arb_wide_subfield(n_bits: u16) -> impl Strategy<Value = Subfield> {
    (arb_plain_header(), any::<u16>()).prop_map(move |(field, ofs)| Subfield { field, ofs, n_bits })
}

/// A property of `controller2`.
pub fn arb_controller2_prop() -> impl Strategy<Value = Controller2Prop> {
    prop_oneof![
        any::<u16>().prop_map(Controller2Prop::MaxLen),
        any::<u16>().prop_map(Controller2Prop::ControllerId),
        any::<u8>().prop_map(|r| Controller2Prop::Reason(PacketInReason(r))),
        bytes(0..12).prop_map(Controller2Prop::Userdata),
        Just(Controller2Prop::Pause),
        any::<u32>().prop_map(Controller2Prop::MeterId),
        (6u16.., bytes(0..12)).prop_map(|(prop_type, data)| {
            Controller2Prop::Unknown(UnknownProperty { prop_type, data })
        }),
    ]
}

/// A `sample` in one of its three wire forms.
pub fn arb_sample() -> impl Strategy<Value = Sample> {
    (
        any::<(u16, u32, u32, u32)>(),
        prop_oneof![
            Just((None, None)),
            arb_of10_port_no().prop_map(|p| (Some(p), None)),
            (arb_of10_port_no(), any::<u8>()).prop_map(|(p, d)| (Some(p), Some(d))),
        ],
    )
        .prop_map(
            |((probability, collector_set_id, obs_domain_id, obs_point_id), (port, dir))| Sample {
                probability,
                collector_set_id,
                obs_domain_id,
                obs_point_id,
                sampling_port: port,
                direction: dir,
            },
        )
}

/// The Nicira actions with typed fields other than `ct` and `nat`.
pub fn arb_nicira_misc_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        any::<(u32, u8, u8)>().prop_map(|(id, clause, n_clauses)| {
            Action::Conjunction(Conjunction {
                id,
                clause,
                n_clauses,
            })
        }),
        (arb_plain_header(), 0u16..1024, 1u16..=64, any::<u64>()).prop_map(
            |(field, ofs, n_bits, value)| Action::RegLoad(RegLoad {
                dst: Subfield { field, ofs, n_bits },
                value,
            })
        ),
        arb_oxm().prop_map(Action::RegLoad2),
        (1u16..=256)
            .prop_flat_map(|n| (arb_wide_subfield(n), arb_wide_subfield(n)))
            .prop_map(|(src, dst)| Action::RegMove(RegMove { src, dst })),
        (1u16..=256)
            .prop_flat_map(arb_wide_subfield)
            .prop_map(Action::StackPush),
        (1u16..=256)
            .prop_flat_map(arb_wide_subfield)
            .prop_map(Action::StackPop),
        (0usize..3)
            .prop_flat_map(|k| bytes(6 + 8 * k))
            .prop_map(Action::Note),
        any::<(u16, u16, u8)>().prop_map(|(max_len, controller_id, reason)| {
            Action::NxController(NxController {
                max_len,
                controller_id,
                reason: PacketInReason(reason),
            })
        }),
        vec(arb_controller2_prop(), 0..4).prop_map(Action::Controller2),
        (arb_of10_port_no(), any::<u32>())
            .prop_map(|(port, max_len)| Action::OutputTrunc { port, max_len }),
        any::<(u16, u16)>().prop_map(|(idle_timeout, hard_timeout)| Action::FinTimeout {
            idle_timeout,
            hard_timeout
        }),
        vec(any::<u16>(), 0..6).prop_map(Action::DecTtlCntIds),
        arb_sample().prop_map(Action::Sample),
    ]
}

/// A `nat` action.
pub fn arb_nat() -> impl Strategy<Value = Nat> {
    (
        any::<u16>(),
        prop::option::of(any::<[u8; 4]>()),
        prop::option::of(any::<[u8; 4]>()),
        prop::option::of(any::<[u8; 16]>()),
        prop::option::of(any::<[u8; 16]>()),
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(flags, v4min, v4max, v6min, v6max, pmin, pmax)| Nat {
            flags: NatFlags(flags),
            ipv4_min: v4min.map(Ipv4Addr::from),
            ipv4_max: v4max.map(Ipv4Addr::from),
            ipv6_min: v6min.map(Ipv6Addr::from),
            ipv6_max: v6max.map(Ipv6Addr::from),
            proto_min: pmin,
            proto_max: pmax,
        })
}

/// Action types this crate decodes as such (an "unknown" one must avoid them).
const KNOWN_ACTION_TYPES: &[u16] = &[
    0, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 0xffff,
];
/// Nicira subtypes decoded into typed actions (an opaque one must avoid them).
const DECODED_NX_SUBTYPES: &[u16] = &[
    1, 6, 7, 8, 14, 19, 20, 21, 27, 28, 29, 33, 34, 35, 36, 37, 38, 39, 41, 43, 44,
];

/// Any action that is not a `ct` (the contents of a `ct`).
pub fn arb_simple_action() -> BoxedStrategy<Action> {
    let standard = prop_oneof![
        (arb_port_no(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        any::<u32>().prop_map(Action::SetQueue),
        any::<u32>().prop_map(Action::Group),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
        arb_oxm().prop_map(Action::SetField),
        any::<u16>().prop_map(Action::PushPbb),
        Just(Action::PopPbb),
    ];
    let nicira = prop_oneof![
        Just(Action::CtClear),
        arb_nat().prop_map(Action::Nat),
        arb_of10_port_no().prop_map(|in_port| Action::Resubmit { in_port }),
        (arb_of10_port_no(), any::<u8>(), any::<bool>())
            .prop_map(|(in_port, table, ct)| Action::ResubmitTable { in_port, table, ct }),
        arb_nicira_misc_action(),
        (any::<u16>(), 0usize..4, any::<u8>())
            .prop_filter("decoded subtypes", |(s, _, _)| !DECODED_NX_SUBTYPES
                .contains(s))
            .prop_flat_map(|(s, k, _)| bytes(6 + 8 * k).prop_map(move |data| {
                Action::Nicira(NxAction {
                    subtype: NxSubtype(s),
                    data,
                })
            })),
    ];
    let opaque = prop_oneof![
        (any::<u32>(), 0usize..4)
            .prop_filter("Nicira is decoded", |(e, _)| ExperimenterId(*e)
                != ExperimenterId::NICIRA)
            .prop_flat_map(|(experimenter, k)| bytes(8 * k).prop_map(move |data| {
                Action::Experimenter(ExperimenterAction {
                    experimenter: ExperimenterId(experimenter),
                    data,
                })
            })),
        (any::<u16>(), 0usize..4)
            .prop_filter("known types", |(t, _)| !KNOWN_ACTION_TYPES.contains(t))
            .prop_flat_map(|(t, k)| bytes(4 + 8 * k).prop_map(move |data| {
                Action::Unknown(UnknownAction {
                    action_type: ActionType(t),
                    data,
                })
            })),
    ];
    Union::new_weighted(vec![
        (6, standard.boxed()),
        (3, nicira.boxed()),
        (1, opaque.boxed()),
    ])
    .boxed()
}

/// A `ct` action with nested simple actions.
pub fn arb_ct() -> impl Strategy<Value = Ct> {
    (
        any::<u16>(),
        prop_oneof![
            any::<u16>().prop_map(CtZone::Immediate),
            arb_subfield().prop_map(CtZone::Field)
        ],
        prop::option::of(0u8..255),
        any::<u16>(),
        vec(arb_simple_action(), 0..3),
    )
        .prop_map(|(flags, zone, recirc_table, alg, actions)| Ct {
            flags: CtFlags(flags),
            zone,
            recirc_table,
            alg,
            actions,
        })
}

/// Any action.
pub fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        5 => arb_simple_action(),
        1 => arb_ct().prop_map(Action::Ct),
    ]
}

/// Any instruction.
pub fn arb_instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        vec(arb_action(), 0..4).prop_map(Instruction::WriteActions),
        vec(arb_action(), 0..4).prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
        (any::<u32>(), bytes(0..16)).prop_map(|(experimenter, data)| {
            Instruction::Experimenter(ExperimenterInstruction {
                experimenter: ExperimenterId(experimenter),
                data,
            })
        }),
        (7u16..0xffff, bytes(0..16)).prop_map(|(t, data)| {
            Instruction::Unknown(UnknownInstruction {
                instruction_type: InstructionType(t),
                data,
            })
        }),
    ]
}
