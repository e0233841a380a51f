//! Fan-out figures: N websocket collectors on loopback, 1 KiB receipts appended to the data
//! log; reports deliveries/s, bytes/s, and append→receive latency (p50/p99/max), and checks
//! that every client got every entry exactly once, in order.
//!
//! `cargo bench -p firehose-distributor --bench fanout -- --bench [CLIENTS] [ENTRIES] [INTERVAL_US]`
//! (default 1000 clients, 2000 entries, one every 500 µs); under `cargo test` it runs 5 clients × 20 entries.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use firehose_client::ClientConfig;
use firehose_core::crypto::KeyPair;
use firehose_core::fixtures;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use firehose_logreader::{DataLogWriter, WriterOptions};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let full = std::env::args().any(|a| a == "--bench");
    let clients: usize = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 1000 } else { 5 });
    let entries: u64 =
        args.get(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(if full { 2000 } else { 20 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let interval_us: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(500);
    rt.block_on(run(clients, entries, interval_us));
}

async fn run(clients: usize, entries: u64, interval_us: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(
        dir.path(),
        "receipt",
        WriterOptions {
            max_entries: 1000,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    w.flush().unwrap();
    let cfg = Config {
        data_log_dir: dir.path().to_owned(),
        client_queue_capacity: 8192,
        ..Config::default()
    };
    let d = Distributor::new(cfg).unwrap();
    d.start_readers().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });

    let t = Instant::now();
    let mut socks = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let c = ClientConfig::new(&url, KeyPair::from_seed(seed), d.public_key());
        let (ws, _) = tokio_tungstenite::connect_async(c.signed_url())
            .await
            .unwrap();
        socks.push(ws);
    }
    while d.hub().len() < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect = t.elapsed();

    let epoch = Instant::now();
    let readers: Vec<_> = socks
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(entries as usize);
                let mut bytes = 0u64;
                let mut next = 0u64;
                while next < entries {
                    let Some(Ok(Message::Text(t))) = ws.next().await else {
                        panic!("stream ended")
                    };
                    bytes += t.len() as u64;
                    // The receipt's timestamp is its append time (µs since epoch); its index
                    // is in the first field of the padded data: check order by timestamp.
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    let n = v["receipt"]["cycle"].as_u64().unwrap();
                    assert_eq!(n, next, "in order, exactly once");
                    next += 1;
                    let sent = v["receipt"]["timestamp"].as_u64().unwrap();
                    lat.push(epoch.elapsed().as_micros() as u64 - sent);
                }
                (lat, bytes)
            })
        })
        .collect();
    let writer = std::thread::spawn(move || {
        for i in 0..entries {
            let t = epoch.elapsed().as_micros() as u64;
            // cycle = index, timestamp = append time in µs.
            let line = fixtures::receipt(i, t, i, 1024).to_canonical_json();
            w.append(line.as_bytes()).unwrap();
            w.flush().unwrap();
            std::thread::sleep(Duration::from_micros(interval_us));
        }
    });
    let mut all = Vec::new();
    let mut bytes = 0u64;
    for r in readers {
        let (lat, b) = r.await.unwrap();
        all.extend(lat);
        bytes += b;
    }
    let secs = epoch.elapsed().as_secs_f64();
    writer.join().unwrap();
    all.sort_unstable();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "fanout: {clients} clients x {entries} receipts (1 KiB, appended every {interval_us} us): connect {:.2} s; {:.0} deliveries/s, {:.1} MB/s; append->receive p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; lost=0 dup=0",
        connect.as_secs_f64(),
        all.len() as f64 / secs,
        bytes as f64 / secs / 1e6,
        p(0.5) as f64 / 1000.0,
        p(0.99) as f64 / 1000.0,
        all[all.len() - 1] as f64 / 1000.0,
    );
}
