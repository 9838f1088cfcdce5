//! The codec and the switch driver against a real Open vSwitch bridge
//! (userspace datapath): handshake, FLOW_MODs plain and in bundles read back
//! field by field with a FLOW multipart request, a meter, conntrack flows, and
//! the switch's ERROR for a deliberately invalid FLOW_MOD.
//!
//! Skips without OVS unless `AUGUR_REQUIRE_OVS=1`.

// Helpers outside #[test] functions panic on failure too, as tests should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use augur::switch::{self, RequestError, SwitchHandle};
use augur_openflow::action::{Action, Ct};
use augur_openflow::instruction::{Instruction, in_execution_order};
use augur_openflow::meter::MeterConfig;
use augur_openflow::msg::{ErrorType, codes};
use augur_openflow::multipart::{FlowStats, MultipartReply, MultipartReplyBody, MultipartRequest};
use augur_openflow::oxm::Oxm;
use augur_openflow::session::SessionConfig;
use augur_openflow::{
    Body, CtState, FlowMod, FlowModFlags, MacAddr, Match, Message, MeterMod, PortNo, TABLE_ALL,
    Version,
};
use support::ovs::TestBridge;
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Long enough for a loaded two-core machine; OVS connects at once normally.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Every flow these tests install carries a cookie under this prefix, so the
/// read-back can ask for exactly them.
const TEST_COOKIE: u64 = 0xa0a0_0000_0000_0000;
const TEST_COOKIE_MASK: u64 = 0xffff_0000_0000_0000;

/// A bridge connected to our driver, handshake done.
async fn connected_bridge() -> Option<(TestBridge, SwitchHandle)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bridge = TestBridge::new(port)?;
    let (stream, peer) = timeout(CONNECT_TIMEOUT, listener.accept())
        .await
        .unwrap_or_else(|_| panic!("bridge {} did not connect", bridge.name()))
        .unwrap();
    let (handle, _async_messages, _task) = switch::connect(stream, peer, SessionConfig::default())
        .await
        .unwrap();
    Some((bridge, handle))
}

/// All of our test flows the switch holds.
async fn dump(handle: &SwitchHandle) -> Vec<FlowStats> {
    let request =
        MultipartRequest::flow_stats(TABLE_ALL, TEST_COOKIE, TEST_COOKIE_MASK, Match::new());
    let replies = handle
        .request(Body::MultipartRequest(request))
        .await
        .unwrap();
    replies
        .into_iter()
        .flat_map(|m| match m.body {
            Body::MultipartReply(MultipartReply {
                body: MultipartReplyBody::Flow(flows),
                ..
            }) => flows,
            other => panic!("expected a FLOW reply, got {other:?}"),
        })
        .collect()
}

/// The match fields as a sorted list: OVS reports fields in its own order.
fn fields(m: &Match) -> Vec<Oxm> {
    let mut oxms = m.oxms().to_vec();
    oxms.sort_by_key(|o| o.header().map(|h| h.0).unwrap_or(0));
    oxms
}

/// Asserts that the switch holds `sent` exactly as sent: every field.
fn assert_installed(sent: &FlowMod, held: &[FlowStats]) {
    let found = held
        .iter()
        .find(|f| f.cookie == sent.cookie)
        .unwrap_or_else(|| {
            panic!(
                "flow with cookie {:#x} not installed: {held:#?}",
                sent.cookie
            )
        });
    assert_eq!(found.table_id, sent.table_id, "table of {sent}");
    assert_eq!(found.priority, sent.priority, "priority of {sent}");
    assert_eq!(
        found.idle_timeout, sent.idle_timeout,
        "idle_timeout of {sent}"
    );
    assert_eq!(
        found.hard_timeout, sent.hard_timeout,
        "hard_timeout of {sent}"
    );
    assert_eq!(found.flags, sent.flags, "flags of {sent}");
    assert_eq!(found.importance, sent.importance, "importance of {sent}");
    assert_eq!(
        fields(&found.match_),
        fields(&sent.match_),
        "match of {sent}"
    );
    assert_eq!(
        in_execution_order(&found.instructions),
        in_execution_order(&sent.instructions),
        "instructions of {sent}"
    );
    assert_eq!((found.packet_count, found.byte_count), (0, 0));
}

fn normal() -> Action {
    Action::Output {
        port: PortNo::NORMAL,
        max_len: 0,
    }
}

#[tokio::test]
async fn handshake_learns_the_bridge() {
    let Some((bridge, handle)) = connected_bridge().await else {
        return;
    };
    let info = handle.info();
    assert_eq!(info.version, Version::OF14);
    assert_eq!(info.features.datapath_id, bridge.datapath_id());
    assert_eq!(info.desc.mfr_desc, "Nicira, Inc.");
    let local = info
        .ports
        .iter()
        .find(|p| p.port_no == PortNo::LOCAL)
        .expect("the bridge's LOCAL port");
    assert_eq!(local.name, bridge.name());
}

#[tokio::test]
async fn flow_mods_are_installed_and_read_back_field_by_field() {
    let Some((_bridge, handle)) = connected_bridge().await else {
        return;
    };
    let ssh_to_subnet = FlowMod::add(
        0,
        100,
        Match::new()
            .in_port(PortNo(1))
            .eth_type(0x0800)
            .ipv4_dst_masked(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 0))
            .ip_proto(6)
            .tcp_dst(22),
        vec![Instruction::GotoTable(1)],
    )
    .with_cookie(TEST_COOKIE | 1, 0)
    .with_timeouts(0, 300)
    .with_flags(FlowModFlags::SEND_FLOW_REM);
    let dns_from_vm = FlowMod::add(
        1,
        200,
        Match::new()
            .eth_src(MacAddr([0x52, 0x54, 0, 0, 0, 1]))
            .eth_type(0x0800)
            .ipv4_src(Ipv4Addr::new(10, 0, 0, 1))
            .ip_proto(17)
            .udp_dst(53),
        vec![Instruction::ApplyActions(vec![normal()])],
    )
    .with_cookie(TEST_COOKIE | 2, 0)
    .with_timeouts(60, 0)
    .with_importance(7);
    let arp_to_controller = FlowMod::add(
        1,
        50,
        Match::new().eth_type(0x0806),
        vec![
            Instruction::WriteMetadata {
                metadata: 0x42,
                mask: 0xff,
            },
            Instruction::ApplyActions(vec![Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 128,
            }]),
        ],
    )
    .with_cookie(TEST_COOKIE | 3, 0);
    let sent = [ssh_to_subnet, dns_from_vm, arp_to_controller];
    handle
        .apply(sent.iter().cloned().map(Body::FlowMod).collect())
        .await
        .unwrap();

    let held = dump(&handle).await;
    assert_eq!(held.len(), sent.len(), "{held:#?}");
    for flow in &sent {
        assert_installed(flow, &held);
    }

    // Deleting by cookie removes exactly ours.
    handle
        .apply(vec![Body::FlowMod(FlowMod::delete_by_cookie(
            TEST_COOKIE | 2,
            u64::MAX,
        ))])
        .await
        .unwrap();
    let cookies: Vec<u64> = dump(&handle).await.iter().map(|f| f.cookie).collect();
    assert_eq!(cookies.len(), 2);
    assert!(!cookies.contains(&(TEST_COOKIE | 2)));
}

#[tokio::test]
async fn bundles_apply_all_or_nothing() {
    let Some((_bridge, handle)) = connected_bridge().await else {
        return;
    };
    let flow = |n: u64, instructions| {
        FlowMod::add(
            0,
            10 + n as u16,
            Match::new().eth_type(0x0800).ip_proto(n as u8),
            instructions,
        )
        .with_cookie(TEST_COOKIE | n, 0)
    };
    // The third flow needs a meter that does not exist: the whole bundle fails.
    let doomed = vec![
        Body::FlowMod(flow(1, vec![Instruction::ApplyActions(vec![normal()])])),
        Body::FlowMod(flow(2, vec![Instruction::ApplyActions(vec![normal()])])),
        Body::FlowMod(flow(3, vec![Instruction::Meter(99)])),
    ];
    let err = handle.apply_atomically(doomed).await.unwrap_err();
    // OVS checks the bundled messages when the bundle is committed and
    // fails the commit as a whole.
    assert_eq!(e_type(&err), Some(ErrorType::BUNDLE_FAILED), "{err:?}");
    assert!(
        dump(&handle).await.is_empty(),
        "a failed bundle left flows behind"
    );

    let good: Vec<Body> = (1..=3)
        .map(|n| Body::FlowMod(flow(n, vec![Instruction::ApplyActions(vec![normal()])])))
        .collect();
    handle.apply_atomically(good).await.unwrap();
    assert_eq!(dump(&handle).await.len(), 3);
}

/// The error type of a rejection, for assertions.
fn e_type(err: &RequestError) -> Option<ErrorType> {
    match err {
        RequestError::Rejected(e) => Some(e.code.error_type()),
        RequestError::PartlyRejected(all) => all.first().map(|(_, e)| e.code.error_type()),
        _ => None,
    }
}

#[tokio::test]
async fn meters_and_conntrack_flows_are_accepted_and_read_back() {
    let Some((_bridge, handle)) = connected_bridge().await else {
        return;
    };
    handle
        .apply(vec![Body::MeterMod(MeterMod::add_drop(1, 10_000, 1_000))])
        .await
        .unwrap();
    let replies = handle
        .request(Body::MultipartRequest(MultipartRequest::meter_config(1)))
        .await
        .unwrap();
    let [
        Message {
            body:
                Body::MultipartReply(MultipartReply {
                    body: MultipartReplyBody::MeterConfig(configs),
                    ..
                }),
            ..
        },
    ] = &replies[..]
    else {
        panic!("expected one METER_CONFIG reply, got {replies:?}");
    };
    let [
        MeterConfig {
            meter_id: 1, bands, ..
        },
    ] = &configs[..]
    else {
        panic!("expected meter 1, got {configs:?}");
    };
    assert_eq!(bands.len(), 1);
    assert_eq!(bands[0].rate(), 10_000);

    let track = FlowMod::add(
        0,
        10,
        Match::new().eth_type(0x0800),
        vec![Instruction::ApplyActions(vec![Action::Ct(
            Ct::new().zone(5).table(1),
        )])],
    )
    .with_cookie(TEST_COOKIE | 1, 0);
    let trk_new = CtState::TRACKED | CtState::NEW;
    let commit_new = FlowMod::add(
        1,
        20,
        Match::new().eth_type(0x0800).ct_state(trk_new, trk_new),
        vec![
            Instruction::Meter(1),
            Instruction::ApplyActions(vec![Action::Ct(Ct::new().commit().zone(5)), normal()]),
        ],
    )
    .with_cookie(TEST_COOKIE | 2, 0);
    let trk_est = CtState::TRACKED | CtState::ESTABLISHED;
    let established = FlowMod::add(
        1,
        20,
        Match::new().eth_type(0x0800).ct_state(trk_est, trk_est),
        vec![Instruction::ApplyActions(vec![normal()])],
    )
    .with_cookie(TEST_COOKIE | 3, 0);
    let sent = [track, commit_new, established];
    handle
        .apply_atomically(sent.iter().cloned().map(Body::FlowMod).collect())
        .await
        .unwrap();
    let held = dump(&handle).await;
    for flow in &sent {
        assert_installed(flow, &held);
    }
}

#[tokio::test]
async fn an_invalid_flow_mod_gets_a_decoded_error_naming_it() {
    let Some((_bridge, handle)) = connected_bridge().await else {
        return;
    };
    // goto_table may only go forward: table 2 cannot go back to table 1.
    let backwards = FlowMod::add(2, 10, Match::new(), vec![Instruction::GotoTable(1)])
        .with_cookie(TEST_COOKIE | 9, 0);
    let err = handle
        .apply(vec![Body::FlowMod(backwards.clone())])
        .await
        .unwrap_err();
    let RequestError::PartlyRejected(rejected) = err else {
        panic!("expected a rejection, got {err:?}");
    };
    let [(_, error)] = &rejected[..] else {
        panic!("expected one error, got {rejected:?}");
    };
    assert_eq!(
        error.code.error_type(),
        ErrorType::BAD_INSTRUCTION,
        "{error}"
    );
    assert_eq!(
        error.code,
        augur_openflow::msg::ErrorCode::Standard {
            error_type: ErrorType::BAD_INSTRUCTION,
            code: codes::bad_instruction::BAD_TABLE_ID,
        },
        "{error}"
    );
    // The error carries our message back; it decodes to what we sent.
    let offending = error.offending_message().unwrap();
    assert_eq!(offending.body, Body::FlowMod(backwards), "{offending}");
    assert!(dump(&handle).await.is_empty());
}

#[tokio::test]
async fn a_batch_with_an_unencodable_message_fails_instead_of_passing() {
    let Some((_bridge, handle)) = connected_bridge().await else {
        return;
    };
    // tcp_dst without ip_proto and eth_type: refused by the encoder, so it
    // never reaches the switch; the batch must say so.
    let bad = FlowMod::add(0, 10, Match::new().tcp_dst(22), vec![]).with_cookie(TEST_COOKIE | 7, 0);
    let err = handle.apply(vec![Body::FlowMod(bad)]).await.unwrap_err();
    assert!(matches!(err, RequestError::Encode(_)), "{err:?}");
    assert!(dump(&handle).await.is_empty());
}
