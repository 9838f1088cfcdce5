//! Benchmark inputs and a decode timer shared with the peer comparison.
//!
//! `codec_bench write DIR` writes the two inputs the benchmarks use:
//! `flow_stats.bin`, a FLOW multipart reply of 10,000 realistic ACL entries
//! split into MULTIPART_REPLY messages of at most 64 KiB the way a switch
//! sends them, and `packet_in.bin`, 10,000 PACKET_INs of denied TCP SYNs as
//! OVS sends them to a controller. `codec_bench decode FILE` decodes a file
//! of concatenated messages repeatedly and prints the best pass as JSON, so a
//! script can time a peer on the very same bytes in the same run.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use augur_openflow::action::{Action, Ct};
use augur_openflow::instruction::Instruction;
use augur_openflow::msg::{PacketIn, PacketInReason};
use augur_openflow::multipart::{
    FlowStats, MultipartReply, MultipartReplyBody, MultipartReplyFlags,
};
use augur_openflow::{Body, Deframer, FlowModFlags, MacAddr, Match, Message, PortNo, Version};
use bytes::{Bytes, BytesMut};

/// Entries in the FLOW reply and messages in the PACKET_IN stream.
pub const ENTRIES: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", dir] => {
            let dir = Path::new(dir);
            std::fs::write(dir.join("flow_stats.bin"), flow_stats_reply(ENTRIES)?)?;
            std::fs::write(dir.join("packet_in.bin"), packet_ins(ENTRIES)?)?;
            Ok(())
        }
        ["decode", file] | ["decode", file, _] => {
            let repeat = args.get(2).map_or(Ok(20), |r| r.parse())?;
            let buf = std::fs::read(file)?;
            let (seconds, messages, entries) = time_decode(&buf, repeat)?;
            println!(
                "{{\"seconds\": {seconds}, \"messages\": {messages}, \"entries\": {entries}, \"bytes\": {}}}",
                buf.len()
            );
            Ok(())
        }
        _ => Err("usage: codec_bench write DIR | codec_bench decode FILE [REPEAT]".into()),
    }
}

/// One ACL entry as augur's policy compiler writes them: source VM by port or
/// MAC, destination address, protocol and service port, the rule's cookie,
/// and live counters.
pub fn acl_entry(n: usize) -> FlowStats {
    let n32 = n as u32;
    let mut m = Match::new();
    m = if n % 2 == 0 {
        m.in_port(PortNo(1 + n32 % 48))
    } else {
        m.eth_src(MacAddr([
            0x52,
            0x54,
            0,
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
        ]))
    };
    let m = m
        .eth_type(0x0800)
        .ipv4_dst(Ipv4Addr::from(0x0a00_0000 | (n32 & 0xffff)))
        .ip_proto(6)
        .tcp_dst([22, 80, 443, 5432, 6379][n % 5]);
    FlowStats {
        table_id: 2,
        duration_sec: 3600 + n32,
        duration_nsec: 500_000,
        priority: 1000,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: FlowModFlags::SEND_FLOW_REM,
        importance: 0,
        cookie: 0xa000_0000_0000_0000 | (7 << 32) | n as u64,
        packet_count: 12_345 + n as u64,
        byte_count: 9_876_543 + n as u64,
        match_: m,
        instructions: vec![Instruction::ApplyActions(vec![
            Action::Ct(Ct::new().commit().zone(1)),
            Action::Output {
                port: PortNo::NORMAL,
                max_len: 0,
            },
        ])],
    }
}

/// The FLOW reply to one request, as the switch sends it: as many
/// MULTIPART_REPLY messages as 64 KiB allows, all but the last flagged MORE.
pub fn flow_stats_reply(entries: usize) -> Result<Vec<u8>, augur_openflow::EncodeError> {
    let mut out = BytesMut::new();
    let mut part: Vec<FlowStats> = Vec::new();
    let mut part_len = 0;
    let flush = |part: &mut Vec<FlowStats>, more: bool, out: &mut BytesMut| {
        let flags = if more {
            MultipartReplyFlags::REPLY_MORE
        } else {
            MultipartReplyFlags::default()
        };
        let body = MultipartReplyBody::Flow(std::mem::take(part));
        Message::new(
            Version::OF14,
            7,
            Body::MultipartReply(MultipartReply { flags, body }),
        )
        .encode_into(out)
    };
    for n in 0..entries {
        let entry = acl_entry(n);
        // 56 bytes of fixed part, the match, and the instructions.
        let len = 56 + entry.match_.wire_len() + 48;
        if part_len + len > 65_000 {
            flush(&mut part, true, &mut out)?;
            part_len = 0;
        }
        part_len += len;
        part.push(entry);
    }
    flush(&mut part, false, &mut out)?;
    Ok(out.to_vec())
}

/// PACKET_INs of denied TCP SYNs, sampled to the controller by the deny rule.
pub fn packet_ins(count: usize) -> Result<Vec<u8>, augur_openflow::EncodeError> {
    let mut out = BytesMut::new();
    for n in 0..count {
        let frame = tcp_syn(n);
        let msg = Message::new(
            Version::OF14,
            0,
            Body::PacketIn(PacketIn {
                buffer_id: augur_openflow::NO_BUFFER,
                total_len: frame.len() as u16,
                reason: PacketInReason::ACTION,
                table_id: 3,
                cookie: 0xa000_0000_0000_0000 | (7 << 32) | 0xffff,
                match_: Match::new().in_port(PortNo(1 + (n as u32) % 48)),
                data: frame,
            }),
        );
        msg.encode_into(&mut out)?;
    }
    Ok(out.to_vec())
}

/// A 74-byte Ethernet/IPv4/TCP SYN from a VM to a service port.
fn tcp_syn(n: usize) -> Bytes {
    let mut f = Vec::with_capacity(74);
    f.extend_from_slice(&[0x52, 0x54, 0, 0, 0, 2]);
    f.extend_from_slice(&[0x52, 0x54, 0, 0, (n >> 8) as u8, n as u8]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&[10, 0, (n >> 8) as u8, n as u8, 10, 0, 0, 2]);
    f.extend_from_slice(&((40_000 + n % 20_000) as u16).to_be_bytes());
    f.extend_from_slice(&5432u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    f.extend_from_slice(&[
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    Bytes::from(f)
}

/// Decodes every message of `buf` `repeat` times; the best pass's seconds,
/// the messages, and the entries (flow stats entries, or messages).
fn time_decode(
    buf: &[u8],
    repeat: usize,
) -> Result<(f64, usize, usize), augur_openflow::DecodeError> {
    let mut best = f64::INFINITY;
    let mut counts = (0, 0);
    for _ in 0..repeat {
        let start = Instant::now();
        let (mut messages, mut entries) = (0, 0);
        for frame in Deframer::default().frames(buf) {
            let (_, frame) = frame?;
            let msg = Message::decode(frame)?;
            entries += match &msg.body {
                Body::MultipartReply(MultipartReply {
                    body: MultipartReplyBody::Flow(flows),
                    ..
                }) => flows.len(),
                _ => 1,
            };
            messages += 1;
            std::hint::black_box(msg);
        }
        best = best.min(start.elapsed().as_secs_f64());
        counts = (messages, entries);
    }
    Ok((best, counts.0, counts.1))
}
