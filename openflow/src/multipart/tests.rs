//! Byte tables and malformed inputs for multipart messages.

use super::*;
use crate::msg::FlowModFlags;
use crate::{Body, DecodeErrorKind, GROUP_ALL, GROUP_ANY, METER_ALL, Message, PortNo, TABLE_ALL};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|n| u8::from_str_radix(&s[n..n + 2], 16).unwrap())
        .collect()
}

/// Decodes, checks the re-encoding is identical, and returns the message.
fn round_trip(bytes: &[u8]) -> Message {
    let msg = Message::decode(bytes).unwrap();
    assert_eq!(&msg.encode().unwrap()[..], bytes, "{msg}");
    msg
}

fn request(msg: &Message) -> &MultipartRequest {
    match &msg.body {
        Body::MultipartRequest(r) => r,
        other => panic!("not a multipart request: {other:?}"),
    }
}

fn reply(msg: &Message) -> &MultipartReply {
    match &msg.body {
        Body::MultipartReply(r) => r,
        other => panic!("not a multipart reply: {other:?}"),
    }
}

fn encode_request(version: Version, req: MultipartRequest) -> Vec<u8> {
    let msg = Message {
        version,
        xid: 0x10,
        body: Body::MultipartRequest(req),
    };
    msg.encode().unwrap().to_vec()
}

/// An empty OXM match, as decoded by the match codec.
fn empty_match() -> Match {
    let (_, m) = Match::decode(&hex("0001 0004 00000000")).unwrap();
    m
}

/// FLOW request over all tables for cookie 0x10/0xff (Ryu's 4-11 shape).
const FLOW_REQUEST: &str = "04120038 00000010 0001 0000 00000000
    ff 000000 ffffffff ffffffff 00000000 0000000000000010 00000000000000ff
    0001 0004 00000000";

#[test]
fn flow_request_round_trips_and_matches_its_constructor() {
    let bytes = hex(FLOW_REQUEST);
    let msg = round_trip(&bytes);
    let req = request(&msg);
    let MultipartRequestBody::Flow(flow) = &req.body else {
        panic!()
    };
    assert_eq!(flow.table_id, TABLE_ALL);
    assert_eq!((flow.out_port, flow.out_group), (PortNo::ANY, GROUP_ANY));
    assert_eq!((flow.cookie, flow.cookie_mask), (0x10, 0xff));
    let built = MultipartRequest::flow_stats(TABLE_ALL, 0x10, 0xff, empty_match());
    assert_eq!(encode_request(Version::OF13, built), bytes);
    // As ovs-ofctl: no table when it is all of them, and no trailing space
    // for the empty match.
    assert_eq!(req.to_string(), "flow cookie=0x10/0xff");
}

#[test]
fn aggregate_request_shares_the_flow_layout() {
    let mut bytes = hex(FLOW_REQUEST);
    bytes[9] = 2;
    let msg = round_trip(&bytes);
    assert!(matches!(
        request(&msg).body,
        MultipartRequestBody::Aggregate(_)
    ));
    let built = MultipartRequest::aggregate_stats(TABLE_ALL, 0x10, 0xff, empty_match());
    assert_eq!(encode_request(Version::OF13, built), bytes);
}

#[test]
fn bodiless_and_id_requests_match_their_constructors() {
    let cases: [(MultipartRequest, &str); 9] = [
        (MultipartRequest::desc(), "0000 0000 00000000"),
        (MultipartRequest::table_stats(), "0003 0000 00000000"),
        (MultipartRequest::port_desc(), "000d 0000 00000000"),
        (MultipartRequest::group_desc(), "0007 0000 00000000"),
        (MultipartRequest::group_features(), "0008 0000 00000000"),
        (MultipartRequest::meter_features(), "000b 0000 00000000"),
        (
            MultipartRequest::port_stats(PortNo::ANY),
            "0004 0000 00000000 ffffffff 00000000",
        ),
        (
            MultipartRequest::group_stats(GROUP_ALL),
            "0006 0000 00000000 fffffffc 00000000",
        ),
        (
            MultipartRequest::meter_config(METER_ALL),
            "000a 0000 00000000 ffffffff 00000000",
        ),
    ];
    for (req, body) in cases {
        for version in [Version::OF13, Version::OF14] {
            let bytes = encode_request(version, req.clone());
            assert_eq!(&bytes[8..], &hex(body)[..], "{req}");
            let msg = round_trip(&bytes);
            assert_eq!(request(&msg), &req);
        }
    }
    assert_eq!(
        MultipartRequest::meter_stats(7).to_string(),
        "meter meter=7"
    );
    assert_eq!(
        MultipartRequest::group_stats(GROUP_ALL).to_string(),
        "group group_id=all"
    );
    assert_eq!(
        MultipartRequest::port_stats(PortNo::ANY).to_string(),
        "port port=ANY"
    );
}

#[test]
fn request_bodies_must_be_exact() {
    // A PORT_DESC request with a port number (OpenFlow 1.5 only).
    let bytes = hex("05120018 00000001 000d 0000 00000000 00000001 00000000");
    let err = Message::decode(&bytes).unwrap_err();
    assert_eq!(err.offset, 16);
    assert_eq!(
        err.kind,
        DecodeErrorKind::TrailingBytes("multipart request")
    );
    // A PORT_STATS request cut short.
    let bytes = hex("04120014 00000001 0004 0000 00000000 ffffffff");
    let err = Message::decode(&bytes).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Truncated);
    // A multipart header cut short.
    let bytes = hex("0412000c 00000001 0004 0000");
    assert_eq!(
        Message::decode(&bytes).unwrap_err().kind,
        DecodeErrorKind::Truncated
    );
}

#[test]
fn opaque_types_round_trip_byte_for_byte() {
    // QUEUE request, an experimenter request and a TABLE_FEATURES reply fragment.
    for bytes in [
        "04120018 00000001 0005 0000 00000000 ffffffff ffffffff",
        "05120020 00000002 ffff 0001 00000000 00002320 00000001 01020304 05060708",
        "04130018 00000003 000c 0001 00000000 0123456789abcdef",
    ] {
        let bytes = hex(bytes);
        let msg = round_trip(&bytes);
        let body_len = bytes.len() - 16;
        match &msg.body {
            Body::MultipartRequest(MultipartRequest {
                body: MultipartRequestBody::Other { body, .. },
                ..
            })
            | Body::MultipartReply(MultipartReply {
                body: MultipartReplyBody::Other { body, .. },
                ..
            }) => assert_eq!(body.len(), body_len),
            other => panic!("expected an opaque body: {other:?}"),
        }
    }
    let msg = Message::decode(&hex(
        "05120020 00000002 ffff 0001 00000000 00002320 00000001 01020304 05060708",
    ))
    .unwrap();
    assert_eq!(request(&msg).flags, MultipartRequestFlags::REQ_MORE);
    assert_eq!(
        request(&msg).to_string(),
        "experimenter flags=more 16 bytes"
    );
}

/// A FLOW reply with two entries: in_port=6 → goto_table:1 (OF1.3 layout,
/// flags REPLY_MORE), then an empty match with no instructions.
const FLOW_REPLY_OF13: &str = "04130090 00000005 0001 0001 00000000
    0048 00 00 0004d33c 1e7e1f30 007b 000a 0000 0001 00000000
    00000000000000ab 0000000000000003 00000000000000ee
    0001 000c 80000004 00000006 00000000
    0001 0008 01 000000
    0038 01 00 00000001 00000002 0000 0000 0000 0000 00000000
    0000000000000000 0000000000000000 0000000000000000
    0001 0004 00000000";

#[test]
fn of13_flow_reply_round_trips() {
    let bytes = hex(FLOW_REPLY_OF13);
    let msg = round_trip(&bytes);
    let reply = reply(&msg);
    assert!(reply.has_more());
    let MultipartReplyBody::Flow(flows) = &reply.body else {
        panic!()
    };
    assert_eq!(flows.len(), 2);
    let f = &flows[0];
    assert_eq!(f.table_id, 0);
    assert_eq!((f.duration_sec, f.duration_nsec), (316_220, 511_582_000));
    assert_eq!((f.priority, f.idle_timeout, f.hard_timeout), (123, 10, 0));
    assert_eq!((f.flags, f.importance), (FlowModFlags::SEND_FLOW_REM, 0));
    assert_eq!((f.cookie, f.packet_count, f.byte_count), (0xab, 3, 238));
    assert_eq!(f.instructions.len(), 1);
    assert_eq!(flows[1].table_id, 1);
    assert!(flows[1].instructions.is_empty());
    let text = reply.to_string();
    assert!(
        text.starts_with(
            "flow flags=more\n cookie=0xab, duration=316220.511s, table=0, n_packets=3, \
             n_bytes=238, idle_timeout=10, flags=send_flow_rem, priority=123,"
        ),
        "{text}"
    );
    assert!(text.ends_with(" actions=drop"), "{text}");
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn of14_flow_reply_carries_importance() {
    let mut bytes = hex(FLOW_REPLY_OF13);
    bytes[0] = 5;
    // importance of the first entry, where OF1.3 has padding.
    bytes[0x24..0x26].copy_from_slice(&[0x12, 0x34]);
    let msg = round_trip(&bytes);
    let MultipartReplyBody::Flow(flows) = &reply(&msg).body else {
        panic!()
    };
    assert_eq!(flows[0].importance, 0x1234);
    // The same entry cannot be said in OpenFlow 1.3.
    let as_of13 = Message {
        version: Version::OF13,
        ..msg
    };
    assert_eq!(
        as_of13.encode().unwrap_err(),
        EncodeError::WrongVersion {
            what: "flow importance",
            version: 4
        }
    );
}

#[test]
fn flow_entry_lengths_are_checked_at_their_field() {
    let bytes = hex(FLOW_REPLY_OF13);
    // First entry shorter than its fixed part.
    let mut bad = bytes.clone();
    bad[0x10..0x12].copy_from_slice(&[0, 0x2f]);
    let err = Message::decode(&bad).unwrap_err();
    assert_eq!(err.offset, 0x10);
    assert!(matches!(
        err.kind,
        DecodeErrorKind::LengthTooShort {
            what: "flow stats",
            length: 0x2f,
            min: 48
        }
    ));
    // Second entry longer than what is left.
    let mut bad = bytes.clone();
    bad[0x58..0x5a].copy_from_slice(&[0, 0x40]);
    let err = Message::decode(&bad).unwrap_err();
    assert_eq!(err.offset, 0x58);
    assert!(matches!(
        err.kind,
        DecodeErrorKind::LengthTooLong {
            what: "flow stats",
            length: 0x40,
            max: 0x38
        }
    ));
    // An entry too short for the match it holds.
    let mut bad = bytes.clone();
    bad[0x10..0x12].copy_from_slice(&[0, 0x38]);
    assert!(Message::decode(&bad).is_err());
    // A message cut inside the second entry.
    let mut cut = bytes[..0x70].to_vec();
    cut[2..4].copy_from_slice(&[0, 0x70]);
    let err = Message::decode(&cut).unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::LengthTooLong { .. }));
    assert_eq!(err.offset, 0x58);
}

#[test]
fn desc_reply_round_trips() {
    let mut body = hex("0000 0000 00000000");
    for (text, width) in [
        ("Nicira, Inc.", 256),
        ("Open vSwitch", 256),
        ("3.3.0", 256),
        ("None", 32),
        ("br-int", 256),
    ] {
        let mut field = text.as_bytes().to_vec();
        field.resize(width, 0);
        body.extend(field);
    }
    let mut bytes = hex("0413 0430 00000009");
    bytes.extend(body);
    let msg = round_trip(&bytes);
    let MultipartReplyBody::Desc(desc) = &reply(&msg).body else {
        panic!()
    };
    assert_eq!(desc.mfr_desc, "Nicira, Inc.");
    assert_eq!(desc.sw_desc, "3.3.0");
    assert_eq!(desc.dp_desc, "br-int");
    // The fixed 1056-byte body admits nothing after it.
    let mut long = bytes.clone();
    long.extend([0; 8]);
    long[2..4].copy_from_slice(&[0x04, 0x38]);
    assert_eq!(
        Message::decode(&long).unwrap_err().kind,
        DecodeErrorKind::TrailingBytes("multipart reply")
    );
}

#[test]
fn aggregate_table_and_port_stats_replies_round_trip() {
    let msg = round_trip(&hex(
        "04130028 00000000 0002 0000 00000000 0000000000000007 000000000000023e 00000006 00000000",
    ));
    assert_eq!(
        reply(&msg).body,
        MultipartReplyBody::Aggregate(AggregateStats {
            packet_count: 7,
            byte_count: 574,
            flow_count: 6
        })
    );

    let msg = round_trip(&hex("05130040 00000000 0003 0000 00000000
         00 000000 00000004 0000000000000004 0000000000000004
         01 000000 00000004 0000000000000004 0000000000000004"));
    let MultipartReplyBody::Table(tables) = &reply(&msg).body else {
        panic!()
    };
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[1].table_id, 1);

    // OF1.4 port stats: one entry with an ethernet property.
    let msg = round_trip(&hex(
        "05130088 00000000 0004 0000 00000000
         0078 0000 00000006 00000001 00000002
         0000000000000004 0000000000000004 0000000000000150 0000000000000150
         0000000000000000 0000000000000000 0000000000000000 0000000000000000
         0000 0028 00000000 0000000000000001 0000000000000002 0000000000000003 0000000000000004",
    ));
    let MultipartReplyBody::PortStats(ports) = &reply(&msg).body else {
        panic!()
    };
    assert_eq!((ports[0].port_no, ports[0].duration_sec), (PortNo(6), 1));
    assert_eq!(ports[0].ethernet().unwrap().collisions, 4);
    // Table stats must come in whole 24-byte entries.
    let err = Message::decode(&hex(
        "05130020 00000000 0003 0000 00000000 00 000000 00000004 0000000000000004",
    ))
    .unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::Truncated);
}

#[test]
fn port_desc_reply_of13_round_trips() {
    let port = "00000007 00000000 f20ba4d03f70 0000 506f7274370000000000000000000000
        00000000 00000004 00002808 00002800 00002808 00002808 00001388 00001388";
    let mut bytes = hex("04130090 00000000 000d 0000 00000000");
    bytes.extend(hex(port));
    bytes.extend(hex(port));
    let msg = round_trip(&bytes);
    let MultipartReplyBody::PortDesc(ports) = &reply(&msg).body else {
        panic!()
    };
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0].name, "Port7");
    // A trailing partial port.
    let mut bad = bytes.clone();
    bad.truncate(0x88);
    bad[2..4].copy_from_slice(&[0, 0x88]);
    assert_eq!(
        Message::decode(&bad).unwrap_err().kind,
        DecodeErrorKind::Truncated
    );
}

#[test]
fn group_and_meter_replies_round_trip() {
    for bytes in [
        // GROUP_DESC
        "04130038 00000000 0007 0000 00000000 0028 00 00 00000001
         0020 0001 00000001 00000001 00000000 0000 0010 00000002 ffff 000000000000",
        // GROUP
        "04130048 00000000 0006 0000 00000000 0038 0000 00000001 00000002 00000000
         000000000000007b 0000000000003039 00000009 244d26e0 00000000000000ea 0000000000000929",
        // GROUP_FEATURES
        "04130038 00000000 0008 0000 00000000 0000000f 00000005 01000000 01000000 01000000
         01000000 03ff9801 03ff9801 03ff9801 03ff9801",
        // METER
        "04130048 00000000 0009 0000 00000000 00000064 0038 000000000000 00000000
         0000000000000000 0000000000000000 00000000 00075300 0000000000000000 0000000000000000",
        // METER_CONFIG
        "04130028 00000000 000a 0000 00000000 0018 000e 00000064 0001 0010 000003e8 0000000a 00000000",
        // METER_FEATURES
        "04130020 00000000 000b 0000 00000000 01000000 80000006 0000000f ff 00 0000",
    ] {
        let msg = round_trip(&hex(bytes));
        let _ = msg.to_string();
    }
    // A meter configuration whose band overruns it.
    let err = Message::decode(&hex(
        "04130028 00000000 000a 0000 00000000 0010 000e 00000064 0001 0010 000003e8 0000000a 00000000",
    ))
    .unwrap_err();
    assert_eq!(err.offset, 0x1a);
    assert!(matches!(
        err.kind,
        DecodeErrorKind::LengthTooLong {
            what: "meter band",
            ..
        }
    ));
}

#[test]
fn other_versions_are_refused() {
    let msg = Message {
        version: Version::OF15,
        xid: 0,
        body: Body::MultipartRequest(MultipartRequest::desc()),
    };
    assert!(matches!(
        msg.encode(),
        Err(EncodeError::WrongVersion { version: 6, .. })
    ));
    let (i, v) = (&[0u8; 8][..], Version::OF10);
    assert!(MultipartReply::decode_body(v, i).is_err());
}
