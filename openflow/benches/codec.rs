//! Decode and encode throughput on the inputs of `examples/codec_bench.rs`:
//! a 10,000-entry FLOW reply of ACL entries and a stream of 10,000 PACKET_INs.
//!
//! `cargo bench -p augur-openflow --bench codec`; `scripts/bench-codec.sh`
//! runs os-ken on the same bytes and prints the ratio.

#![allow(missing_docs, clippy::unwrap_used)]

#[path = "../examples/codec_bench.rs"]
#[allow(dead_code)]
mod inputs;

use augur_openflow::{Deframer, Message};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn decode_all(buf: &[u8]) -> usize {
    let mut n = 0;
    for frame in Deframer::default().frames(buf) {
        let (_, frame) = frame.unwrap();
        n += usize::from(Message::decode(frame).is_ok());
    }
    n
}

fn codec(c: &mut Criterion) {
    let flow_stats = inputs::flow_stats_reply(inputs::ENTRIES).unwrap();
    let packet_ins = inputs::packet_ins(inputs::ENTRIES).unwrap();
    let messages: Vec<Message> = Deframer::default()
        .frames(&flow_stats)
        .map(|f| Message::decode(f.unwrap().1).unwrap())
        .collect();

    let mut group = c.benchmark_group("flow_stats_reply_10k_entries");
    group.throughput(Throughput::Elements(inputs::ENTRIES as u64));
    group.bench_function("decode", |b| b.iter(|| decode_all(&flow_stats)));
    group.bench_function("encode", |b| {
        b.iter(|| {
            let mut out = bytes::BytesMut::with_capacity(flow_stats.len());
            for m in &messages {
                m.encode_into(&mut out).unwrap();
            }
            out
        })
    });
    group.finish();

    let mut group = c.benchmark_group("flow_stats_reply_bytes");
    group.throughput(Throughput::Bytes(flow_stats.len() as u64));
    group.bench_function("decode", |b| b.iter(|| decode_all(&flow_stats)));
    group.finish();

    let mut group = c.benchmark_group("packet_in_10k");
    group.throughput(Throughput::Elements(inputs::ENTRIES as u64));
    group.bench_function("decode", |b| b.iter(|| decode_all(&packet_ins)));
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
