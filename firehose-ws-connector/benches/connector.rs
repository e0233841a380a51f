//! Connector throughput: blocks/s and MB/s from a simulated observer through the connector,
//! beside the raw websocket receive rate (receive + ack, no decoding, no output) on the same
//! machine: the physical limit. The connector's output is /dev/null through the writer
//! thread, and a pipe drained by a reader thread (as a Firehose reader drains it) written by
//! the thread or from the runtime ([`Writer::pipe`], what the binary does on a pipe).
//!
//! `cargo bench -p firehose-ws-connector --bench connector`; under `cargo test` (no `--bench`
//! flag) it runs a few blocks of each size as a smoke test.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use firehose_sim::observer::{block_payload, HeaderKind, Observer};
use firehose_ws_connector::codec::Marshaller;
use firehose_ws_connector::output::{FirehoseFormat, OutputFormat, Writer};
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
        "{:>8} {:>8} | {:>10} {:>9} | {:>14} {:>14} {:>14}",
        "block", "count", "raw blk/s", "raw MB/s", "null (thread)", "pipe (thread)", "pipe (async)"
    );
    for (size, count) in [(1024usize, 20_000u64), (64 * 1024, 5_000), (4 << 20, 100)] {
        let count = if full { count } else { 5 };
        let blocks: Vec<bytes::Bytes> = (1..=count.min(64))
            .map(|n| block_payload(HeaderKind::HeaderV2, 0, n, size))
            .collect();
        let raw = rt.block_on(raw_rate(&blocks, count));
        let mb = |secs: f64| (size as f64 * count as f64) / secs / 1e6;
        let rate = |out: Out| {
            let secs = rt.block_on(connector_rate(&blocks, count, out));
            format!("{:.0} ({:.0}%)", count as f64 / secs, raw / secs * 100.0)
        };
        println!(
            "{:>8} {:>8} | {:>10.0} {:>9.1} | {:>14} {:>14} {:>14}",
            human(size),
            count,
            count as f64 / raw,
            mb(raw),
            rate(Out::NullThread),
            rate(Out::PipeThread),
            rate(Out::PipeAsync),
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

/// Where the connector prints.
#[derive(Clone, Copy)]
enum Out {
    /// /dev/null, through the writer thread.
    NullThread,
    /// A pipe drained by a reader thread, through the writer thread.
    PipeThread,
    /// The same pipe written from the runtime.
    PipeAsync,
}

/// A pipe whose reader thread reads and drops everything, as fast as it comes.
fn drained_pipe() -> std::io::PipeWriter {
    use std::io::Read;
    let (mut r, w) = std::io::pipe().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
    });
    w
}

/// The connector in server mode, printing to `out`.
async fn connector_rate(blocks: &[bytes::Bytes], count: u64, out: Out) -> f64 {
    let format: Arc<dyn OutputFormat> = Arc::new(FirehoseFormat::default());
    let mut init = Vec::new();
    format.init(&mut init);
    let writer = match out {
        Out::NullThread => {
            Writer::spawn(std::fs::File::create("/dev/null").unwrap(), init)
                .unwrap()
                .0
        }
        Out::PipeThread => Writer::spawn(drained_pipe(), init).unwrap().0,
        Out::PipeAsync => Writer::pipe(drained_pipe().into(), init).unwrap(),
    };
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
