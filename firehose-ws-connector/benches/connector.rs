//! Connector throughput: blocks/s and MB/s from a simulated observer through the connector
//! into /dev/null, beside the raw websocket receive rate (receive + ack, no decoding, no
//! output) on the same machine: the physical limit.
//!
//! `cargo bench -p firehose-ws-connector --bench connector`; under `cargo test` (no `--bench`
//! flag) it runs a few blocks of each size as a smoke test.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use firehose_ws_connector::codec::Marshaller;
use firehose_ws_connector::output::{FirehoseFormat, OutputFormat, Writer};
use firehose_ws_connector::sim::{block_payload, HeaderKind, Observer};
use firehose_ws_connector::{Config, Connector, Mode};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:>8} {:>8} | {:>12} {:>10} | {:>12} {:>10}",
        "block", "count", "raw blk/s", "raw MB/s", "conn blk/s", "conn MB/s"
    );
    for (size, count) in [(1024usize, 20_000u64), (64 * 1024, 5_000), (4 << 20, 100)] {
        let count = if full { count } else { 5 };
        let blocks: Vec<bytes::Bytes> = (1..=count.min(64))
            .map(|n| block_payload(HeaderKind::HeaderV2, 0, n, size))
            .collect();
        let raw = rt.block_on(raw_rate(&blocks, count));
        let conn = rt.block_on(connector_rate(&blocks, count));
        let mb = |secs: f64| (size as f64 * count as f64) / secs / 1e6;
        println!(
            "{:>8} {:>8} | {:>12.0} {:>10.1} | {:>12.0} {:>10.1}",
            human(size),
            count,
            count as f64 / raw,
            mb(raw),
            count as f64 / conn,
            mb(conn)
        );
    }
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(512 << 20))
        .max_frame_size(Some(512 << 20))
}

/// Sends `count` blocks with acks to `addr`; returns the seconds taken.
async fn drive(addr: std::net::SocketAddr, blocks: &[bytes::Bytes], count: u64) -> f64 {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/save"),
        Some(ws_config()),
        true,
    )
    .await
    .unwrap();
    let mut o = Observer::new(ws, Marshaller::Protobuf);
    o.ack_timeout = Duration::from_secs(30);
    let start = Instant::now();
    for i in 0..count {
        o.send_block(blocks[(i % blocks.len() as u64) as usize].clone(), true)
            .await
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    o.close().await;
    secs
}

/// A bare websocket receiver that acks each message as soon as it has it.
async fn raw_rate(blocks: &[bytes::Bytes], count: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = s.set_nodelay(true);
        let ws = tokio_tungstenite::accept_async_with_config(s, Some(ws_config()))
            .await
            .unwrap();
        let (mut tx, mut rx) = ws.split();
        let mut counter = 0u64;
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Binary(_) = m {
                counter += 1;
                tx.send(Message::Binary(Marshaller::Protobuf.ack(counter).into()))
                    .await
                    .unwrap();
            }
        }
    });
    let secs = drive(addr, blocks, count).await;
    let _ = server.await;
    secs
}

/// The connector in server mode, printing to /dev/null.
async fn connector_rate(blocks: &[bytes::Bytes], count: u64) -> f64 {
    let format: Arc<dyn OutputFormat> = Arc::new(FirehoseFormat::default());
    let mut init = Vec::new();
    format.init(&mut init);
    let (writer, _t) = Writer::spawn(std::fs::File::create("/dev/null").unwrap(), init).unwrap();
    let cfg = Config {
        mode: Mode::Server,
        ..Config::default()
    };
    let connector = Connector::new(cfg, format, writer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let c = connector.clone();
    let server = tokio::spawn(async move {
        c.serve(listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let secs = drive(addr, blocks, count).await;
    let _ = stop.send(());
    let _ = server.await;
    secs
}
