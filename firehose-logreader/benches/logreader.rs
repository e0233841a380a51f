//! Log reader figures: parse throughput and live append-to-yield latency with inotify.
#![allow(missing_docs)]
//!
//! `cargo bench -p firehose-logreader --bench logreader` prints the figures; under
//! `cargo test` (no `--bench` flag) it runs a tiny smoke version.

use std::time::{Duration, Instant};

use firehose_core::fixtures;
use firehose_core::records::DataType;
use firehose_logreader::{
    DataLogReader, DataLogWriter, LogEvent, LogTail, StartAt, TailOptions, WriterOptions,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (n_parse, n_live) = if full { (200_000, 3_000) } else { (2_000, 50) };
    parse_throughput(n_parse);
    live_latency(n_live);
}

fn parse_throughput(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    // Eight files: one lap of the ring, so nothing is retired before it is read.
    let opts = WriterOptions {
        max_entries: n.div_ceil(8),
        ..WriterOptions::default()
    };
    let mut w = DataLogWriter::open(dir.path(), "receipt", opts).unwrap();
    let mut bytes = 0u64;
    for i in 0..n {
        let line = fixtures::receipt(i, 1_700_000_000_000 + i, i / 1000, 1024).to_canonical_json();
        bytes += line.len() as u64 + 1;
        w.append(line.as_bytes()).unwrap();
    }
    w.flush().unwrap();
    let start = Instant::now();
    let mut r = DataLogReader::new(dir.path(), DataType::Receipt, StartAt::Oldest);
    let mut events = Vec::with_capacity(1024);
    let mut count = 0u64;
    loop {
        events.clear();
        if r.read_available(1024, &mut events).unwrap() == 0 {
            break;
        }
        count += events
            .iter()
            .filter(|e| matches!(e, LogEvent::Entry(_)))
            .count() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, n);
    println!(
        "log parse: {n} receipts of ~1 KiB across {} files: {:.0} entries/s, {:.1} MB/s",
        n.div_ceil(opts.max_entries),
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn live_latency(n: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let mut w = DataLogWriter::open(
        &path,
        "receipt",
        WriterOptions {
            max_entries: 500,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    w.flush().unwrap();
    let reader = DataLogReader::new(&path, DataType::Receipt, StartAt::Live);
    let mut lat = rt.block_on(async move {
        let mut tail = LogTail::spawn(reader, TailOptions::default())
            .await
            .unwrap();
        let epoch = Instant::now();
        let writer = std::thread::spawn(move || {
            for i in 0..n {
                // The entry carries its append time (µs since `epoch`) as its timestamp.
                let t = epoch.elapsed().as_micros() as u64;
                let line = fixtures::receipt(i, t, 1, 1024).to_canonical_json();
                w.append(line.as_bytes()).unwrap();
                w.flush().unwrap();
                std::thread::sleep(Duration::from_micros(1000));
            }
        });
        let mut lat = Vec::with_capacity(n as usize);
        while (lat.len() as u64) < n {
            if let Some(LogEvent::Entry(e)) = tail.recv().await {
                let sent = e.key.timestamp;
                lat.push(epoch.elapsed().as_micros() as u64 - sent);
            }
        }
        writer.join().unwrap();
        lat
    });
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "live append->yield (inotify, 1 KiB receipts, 1 kHz, rotation every 500): p50 {} us, p99 {} us, max {} us over {n}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
