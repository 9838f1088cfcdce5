//! Proptest strategies for the non-multipart message bodies.
//!
//! Every strategy yields values that encode, in the wire version named, to
//! bytes that decode back to the same value. Matches, actions and
//! instructions are drawn from small sets of real encodings, obtained by
//! decoding carrier messages, so these strategies need nothing from the
//! OXM/action modules beyond their public decoding.
#![allow(dead_code)]
// Test support: a carrier message that does not decode is a bug in this file.
#![allow(clippy::expect_used)]

use augur_openflow::action::Action;
use augur_openflow::instruction::Instruction;
use augur_openflow::msg::*;
use augur_openflow::oxm::Match;
use augur_openflow::{Body, ExperimenterId, Message, PortNo, UnknownProperty, Version};
use bytes::Bytes;
use proptest::prelude::*;

#[path = "prop.rs"]
mod prop_strategies;
pub use prop_strategies::{arb_experimenter_id, arb_experimenter_property, arb_unknown_property};

/// OpenFlow 1.3 or 1.4.
pub fn arb_version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::OF13), Just(Version::OF14)]
}

fn message_from_hex(hex_text: &str) -> Message {
    let bytes = hex::decode(hex_text).expect("valid hex");
    Message::decode(&bytes).expect("carrier message decodes")
}

/// `ofp_match` encodings: empty, in_port=6, eth_dst, and an ARP match.
fn sample_matches() -> Vec<Match> {
    [
        "0001000400000000",
        "0001000c800000040000000600000000",
        "0001000e80000606f20ba47df8ea0000",
        "0001001880000a02080680002a0200018000000400000002",
    ]
    .iter()
    .map(|m| {
        // A FLOW_REMOVED whose body ends with the match.
        let len = 8 + 40 + m.len() / 2;
        let msg = message_from_hex(&format!("040b{len:04x}00000000{}{m}", "0".repeat(80)));
        match msg.body {
            Body::FlowRemoved(r) => r.match_,
            other => panic!("carrier decoded as {other:?}"),
        }
    })
    .collect()
}

/// Action encodings: output:6, output:CONTROLLER, pop_vlan, group:99, set_queue:3.
fn sample_actions() -> Vec<Action> {
    let actions = concat!(
        "0000001000000006ffff000000000000",
        "00000010fffffffdffff000000000000",
        "0012000800000000",
        "0016000800000063",
        "0015000800000003",
    );
    let len = 8 + 16 + actions.len() / 2;
    let msg = message_from_hex(&format!(
        "040d{len:04x}00000000fffffffffffffffd{:04x}000000000000{actions}",
        actions.len() / 2
    ));
    match msg.body {
        Body::PacketOut(p) => p.actions,
        other => panic!("carrier decoded as {other:?}"),
    }
}

/// Instruction encodings: goto_table:1, apply_actions(output:6),
/// write_actions(pop_vlan), clear_actions, meter:1.
fn sample_instructions() -> Vec<Instruction> {
    let instructions = concat!(
        "0001000801000000",
        "00040018000000000000001000000006ffff000000000000",
        "00030010000000000012000800000000",
        "0005000800000000",
        "0006000800000001",
    );
    let len = 8 + 40 + 8 + instructions.len() / 2;
    let msg = message_from_hex(&format!(
        "040e{len:04x}00000000{}0001000400000000{instructions}",
        "0".repeat(80)
    ));
    match msg.body {
        Body::FlowMod(f) => f.instructions,
        other => panic!("carrier decoded as {other:?}"),
    }
}

/// One of a few real matches.
pub fn arb_sample_match() -> impl Strategy<Value = Match> {
    prop::sample::select(sample_matches())
}

/// Up to four of a few real actions.
pub fn arb_sample_actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(prop::sample::select(sample_actions()), 0..4)
}

/// Up to three of a few real instructions.
pub fn arb_sample_instructions() -> impl Strategy<Value = Vec<Instruction>> {
    prop::collection::vec(prop::sample::select(sample_instructions()), 0..3)
}

/// Opaque bytes, up to `max` of them.
pub fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

pub fn arb_hello_element() -> impl Strategy<Value = HelloElement> {
    prop_oneof![
        prop::collection::vec(any::<u32>(), 0..4).prop_map(HelloElement::VersionBitmap),
        arb_unknown_property(&[1]).prop_map(HelloElement::Unknown),
    ]
}

pub fn arb_hello() -> impl Strategy<Value = Hello> {
    prop::collection::vec(arb_hello_element(), 0..4).prop_map(|elements| Hello { elements })
}

pub fn arb_error_type() -> impl Strategy<Value = ErrorType> {
    prop_oneof![
        (0u16..18).prop_map(ErrorType),
        (0u16..0xffff).prop_map(ErrorType),
    ]
}

pub fn arb_error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        (arb_error_type(), 0u16..20)
            .prop_map(|(error_type, code)| ErrorCode::Standard { error_type, code }),
        (any::<u16>(), arb_experimenter_id()).prop_map(|(exp_code, experimenter)| {
            ErrorCode::Experimenter {
                exp_code,
                experimenter,
            }
        }),
    ]
}

pub fn arb_error_msg() -> impl Strategy<Value = ErrorMsg> {
    (arb_error_code(), arb_bytes(80)).prop_map(|(code, data)| ErrorMsg { code, data })
}

pub fn arb_experimenter() -> impl Strategy<Value = Experimenter> {
    (arb_experimenter_id(), any::<u32>(), arb_bytes(40))
        .prop_map(|(experimenter, exp_type, data)| Experimenter::new(experimenter, exp_type, data))
}

/// An experimenter message that is not one of the ONF bundle messages the
/// OpenFlow 1.3 layer unwraps.
pub fn arb_plain_experimenter() -> impl Strategy<Value = Experimenter> {
    arb_experimenter().prop_filter("not an ONF bundle message", |e| {
        e.experimenter != ExperimenterId::ONF || !(2300..=2301).contains(&e.exp_type)
    })
}

pub fn arb_switch_features() -> impl Strategy<Value = SwitchFeatures> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(datapath_id, n_buffers, n_tables, auxiliary_id, capabilities, reserved)| {
                SwitchFeatures {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities: Capabilities(capabilities),
                    reserved,
                }
            },
        )
}

pub fn arb_switch_config() -> impl Strategy<Value = SwitchConfig> {
    (any::<u16>(), any::<u16>()).prop_map(|(flags, miss_send_len)| SwitchConfig {
        flags: ConfigFlags(flags),
        miss_send_len,
    })
}

pub fn arb_packet_in() -> impl Strategy<Value = PacketIn> {
    (
        any::<u32>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<u64>(),
        arb_sample_match(),
        arb_bytes(100),
    )
        .prop_map(
            |(buffer_id, total_len, reason, table_id, cookie, match_, data)| PacketIn {
                buffer_id,
                total_len,
                reason: PacketInReason(reason),
                table_id,
                cookie,
                match_,
                data,
            },
        )
}

pub fn arb_packet_out() -> impl Strategy<Value = PacketOut> {
    (
        any::<u32>(),
        any::<u32>(),
        arb_sample_actions(),
        arb_bytes(100),
    )
        .prop_map(|(buffer_id, in_port, actions, data)| PacketOut {
            buffer_id,
            in_port: PortNo(in_port),
            actions,
            data,
        })
}

/// A FLOW_MOD valid in `version` (importance only in OpenFlow 1.4).
pub fn arb_flow_mod_for(version: Version) -> impl Strategy<Value = FlowMod> {
    (
        (any::<u64>(), any::<u64>(), any::<u8>(), 0u8..8),
        (any::<u16>(), any::<u16>(), any::<u16>()),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
        ),
        arb_sample_match(),
        arb_sample_instructions(),
    )
        .prop_map(
            move |(
                (cookie, cookie_mask, table_id, command),
                (idle_timeout, hard_timeout, priority),
                (buffer_id, out_port, out_group, flags, importance),
                match_,
                instructions,
            )| FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command: FlowModCommand(command),
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port: PortNo(out_port),
                out_group,
                flags: FlowModFlags(flags),
                importance: if version >= Version::OF14 {
                    importance
                } else {
                    0
                },
                match_,
                instructions,
            },
        )
}

/// A FLOW_MOD valid in OpenFlow 1.4.
pub fn arb_flow_mod() -> impl Strategy<Value = FlowMod> {
    arb_flow_mod_for(Version::OF14)
}

pub fn arb_flow_removed() -> impl Strategy<Value = FlowRemoved> {
    (
        (any::<u64>(), any::<u16>(), any::<u8>(), any::<u8>()),
        (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()),
        (any::<u64>(), any::<u64>()),
        arb_sample_match(),
    )
        .prop_map(
            |(
                (cookie, priority, reason, table_id),
                (duration_sec, duration_nsec, idle_timeout, hard_timeout),
                (packet_count, byte_count),
                match_,
            )| FlowRemoved {
                cookie,
                priority,
                reason: FlowRemovedReason(reason),
                table_id,
                duration_sec,
                duration_nsec,
                idle_timeout,
                hard_timeout,
                packet_count,
                byte_count,
                match_,
            },
        )
}

pub fn arb_table_mod_prop() -> impl Strategy<Value = TableModProp> {
    prop_oneof![
        any::<u32>().prop_map(|f| TableModProp::Eviction(EvictionFlags(f))),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(vacancy_down, vacancy_up, vacancy)| {
            TableModProp::Vacancy {
                vacancy_down,
                vacancy_up,
                vacancy,
            }
        }),
        arb_experimenter_property().prop_map(TableModProp::Experimenter),
        arb_unknown_property(&[2, 3, 0xffff]).prop_map(TableModProp::Unknown),
    ]
}

/// A TABLE_MOD valid in `version` (properties only in OpenFlow 1.4).
pub fn arb_table_mod_for(version: Version) -> impl Strategy<Value = TableMod> {
    let max_props = if version >= Version::OF14 { 4 } else { 0 };
    (
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(arb_table_mod_prop(), 0..=max_props),
    )
        .prop_map(|(table_id, config, properties)| TableMod {
            table_id,
            config: TableConfig(config),
            properties,
        })
}

/// A TABLE_MOD valid in OpenFlow 1.4.
pub fn arb_table_mod() -> impl Strategy<Value = TableMod> {
    arb_table_mod_for(Version::OF14)
}

pub fn arb_role_message() -> impl Strategy<Value = RoleMessage> {
    (any::<u32>(), any::<u64>()).prop_map(|(role, generation_id)| RoleMessage {
        role: ControllerRole(role),
        generation_id,
    })
}

pub fn arb_async_masks() -> impl Strategy<Value = AsyncMasks> {
    prop::array::uniform6(any::<u32>()).prop_map(|m| AsyncMasks {
        packet_in_master: m[0],
        packet_in_slave: m[1],
        port_status_master: m[2],
        port_status_slave: m[3],
        flow_removed_master: m[4],
        flow_removed_slave: m[5],
    })
}

pub fn arb_async_config_prop() -> impl Strategy<Value = AsyncConfigProp> {
    prop_oneof![
        (0u16..12, any::<u32>()).prop_map(|(t, mask)| AsyncConfigProp::Reasons {
            prop_type: AsyncPropType(t),
            mask
        }),
        (prop::bool::ANY, arb_experimenter_property()).prop_map(|(master, prop)| {
            AsyncConfigProp::Experimenter {
                prop_type: if master {
                    AsyncPropType::EXPERIMENTER_MASTER
                } else {
                    AsyncPropType::EXPERIMENTER_SLAVE
                },
                prop,
            }
        }),
        (12u16..0xfffe, arb_bytes(20)).prop_map(|(prop_type, data)| AsyncConfigProp::Unknown(
            UnknownProperty { prop_type, data }
        )),
    ]
}

/// An asynchronous configuration in the form `version` uses.
pub fn arb_async_config_for(version: Version) -> BoxedStrategy<AsyncConfig> {
    if version >= Version::OF14 {
        prop::collection::vec(arb_async_config_prop(), 0..6)
            .prop_map(AsyncConfig::Properties)
            .boxed()
    } else {
        arb_async_masks().prop_map(AsyncConfig::Masks).boxed()
    }
}

/// An asynchronous configuration in the OpenFlow 1.4 form.
pub fn arb_async_config() -> impl Strategy<Value = AsyncConfig> {
    arb_async_config_for(Version::OF14)
}

pub fn arb_bundle_prop() -> impl Strategy<Value = BundleProp> {
    prop_oneof![
        arb_experimenter_property().prop_map(BundleProp::Experimenter),
        arb_unknown_property(&[0xffff]).prop_map(BundleProp::Unknown),
    ]
}

pub fn arb_bundle_control() -> impl Strategy<Value = BundleControl> {
    (
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        prop::collection::vec(arb_bundle_prop(), 0..3),
    )
        .prop_map(|(bundle_id, ctrl_type, flags, properties)| BundleControl {
            bundle_id,
            ctrl_type: BundleCtrlType(ctrl_type),
            flags: BundleFlags(flags),
            properties,
        })
}

/// A message that can be bundled, in `version`, with transaction id `xid`.
pub fn arb_bundlable_message(version: Version, xid: u32) -> impl Strategy<Value = Message> {
    prop_oneof![
        arb_flow_mod_for(version).prop_map(Body::FlowMod),
        arb_packet_out().prop_map(Body::PacketOut),
        arb_bytes(16).prop_map(Body::EchoRequest),
        Just(Body::BarrierRequest),
    ]
    .prop_map(move |body| Message::new(version, xid, body))
}

/// A BUNDLE_ADD_MESSAGE body for `version`, bundling a message with `xid`.
pub fn arb_bundle_add_for(version: Version, xid: u32) -> impl Strategy<Value = BundleAdd> {
    (
        any::<u32>(),
        any::<u16>(),
        arb_bundlable_message(version, xid),
        prop::collection::vec(arb_bundle_prop(), 0..3),
    )
        .prop_map(|(bundle_id, flags, message, properties)| BundleAdd {
            bundle_id,
            flags: BundleFlags(flags),
            message: Box::new(message),
            properties,
        })
}

/// A BUNDLE_ADD_MESSAGE body in OpenFlow 1.4.
pub fn arb_bundle_add() -> impl Strategy<Value = BundleAdd> {
    arb_bundle_add_for(Version::OF14, 0)
}

/// A body of one of the types of this module, valid in `version`.
pub fn arb_msg_body_for(version: Version, xid: u32) -> BoxedStrategy<Body> {
    prop_oneof![
        arb_hello().prop_map(Body::Hello),
        arb_error_msg().prop_map(Body::Error),
        arb_plain_experimenter().prop_map(Body::Experimenter),
        arb_switch_features().prop_map(Body::FeaturesReply),
        arb_switch_config().prop_map(Body::GetConfigReply),
        arb_switch_config().prop_map(Body::SetConfig),
        arb_packet_in().prop_map(Body::PacketIn),
        arb_packet_out().prop_map(Body::PacketOut),
        arb_flow_mod_for(version).prop_map(Body::FlowMod),
        arb_flow_removed().prop_map(Body::FlowRemoved),
        arb_table_mod_for(version).prop_map(Body::TableMod),
        arb_role_message().prop_map(Body::RoleRequest),
        arb_role_message().prop_map(Body::RoleReply),
        arb_async_config_for(version).prop_map(Body::GetAsyncReply),
        arb_async_config_for(version).prop_map(Body::SetAsync),
        arb_bundle_control().prop_map(Body::BundleControl),
        arb_bundle_add_for(version, xid).prop_map(Body::BundleAdd),
    ]
    .boxed()
}

/// A whole message with a body of this module, valid in its version.
pub fn arb_msg_message() -> impl Strategy<Value = Message> {
    (arb_version(), any::<u32>()).prop_flat_map(|(version, xid)| {
        arb_msg_body_for(version, xid).prop_map(move |body| Message::new(version, xid, body))
    })
}
