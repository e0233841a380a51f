//! Micro benchmark of the connector's per-block hot path: decode the OutportBlock header and
//! format its `FIRE BLOCK` line (base64 of the whole payload), for 4 KiB, 1 MiB and 4 MiB blocks.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firehose_sim::observer::{block_payload, HeaderKind};
use firehose_ws_connector::codec::decode_block;
use firehose_ws_connector::output::{FirehoseFormat, OutputFormat};

fn benches(c: &mut Criterion) {
    let format = FirehoseFormat::default();
    for (name, size) in [
        ("block_4k", 4096usize),
        ("block_1m", 1 << 20),
        ("block_4m", 4 << 20),
    ] {
        let payload = block_payload(HeaderKind::HeaderV2, 0, 42, size);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function("decode_block", |b| {
            b.iter(|| decode_block(&payload).unwrap())
        });
        let info = decode_block(&payload).unwrap();
        let mut line = Vec::with_capacity(payload.len() * 2);
        g.bench_function("fire_line", |b| {
            b.iter(|| {
                line.clear();
                format.block(&info, &payload, &mut line);
                line.len()
            })
        });
        g.finish();
    }
}

criterion_group!(fire_line_benches, benches);
criterion_main!(fire_line_benches);
