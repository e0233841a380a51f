//! Micro benchmarks of the crypto hot paths on a 2 KiB receipt.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::message::encode_signed_entry;
use firehose_core::records::DataType;
use firehose_core::{canonical, fixtures};

fn benches(c: &mut Criterion) {
    let crypto = Crypto::default();
    let keys = KeyPair::from_seed([7; 32]);
    let receipt = fixtures::receipt(1, 1_700_000_000_000, 10, 2048);
    let line = receipt.to_canonical_json();
    let value = receipt.entry_value().unwrap();
    let mut signed = serde_json::json!({ "receipt": value.clone() });
    crypto.sign_obj(&mut signed, &keys).unwrap();

    let mut g = c.benchmark_group("receipt_2k");
    g.throughput(Throughput::Bytes(line.len() as u64));
    g.bench_function("hash_obj", |b| b.iter(|| crypto.hash_obj(&value)));
    g.bench_function("verify_obj", |b| {
        b.iter(|| crypto.verify_obj(&signed).unwrap())
    });
    g.bench_function("sign_obj", |b| {
        b.iter(|| {
            let mut v = signed.clone();
            crypto.sign_obj(&mut v, &keys).unwrap();
            v
        })
    });
    g.bench_function("parse_line", |b| {
        b.iter(|| canonical::safe_parse_slice(line.as_bytes()).unwrap())
    });
    g.bench_function("encode_signed_entry", |b| {
        b.iter(|| encode_signed_entry(&crypto, &keys, DataType::Receipt, line.as_bytes()))
    });
    g.finish();
}

criterion_group!(crypto_benches, benches);
criterion_main!(crypto_benches);
