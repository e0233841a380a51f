//! `connector`: simulated MultiversX observer nodes drive the ws-connector over the outport
//! protocol (protobuf envelopes, one ack per block); blocks/s, MB/s, ack latency.
//!
//! With [`ConnectorTarget::Spawn`] the bench starts `firehose-ws-connector --mode server`, reads
//! its stdout (the pipe a Firehose reader would read) and checks that every block was printed
//! exactly once (`lost`, `dup`). With [`ConnectorTarget::External`] it drives a connector
//! already listening and reports throughput and ack latency only.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use firehose_sim::observer::{block_hash, block_payload, HeaderKind, Observer};
use firehose_ws_connector::Marshaller;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::report::Report;
use crate::stats::Summary;
use crate::sys::{self, ProcMem, ServerProcess};

/// Which connector to drive.
#[derive(Debug, Clone)]
pub enum ConnectorTarget {
    /// Start `firehose-ws-connector` (this path, or the one beside the bench) on loopback.
    Spawn {
        /// The binary; `None` = beside this executable.
        server_bin: Option<PathBuf>,
    },
    /// A connector already listening in server mode at `host:port`.
    External {
        /// `host:port`.
        addr: String,
        /// Its process id, to report its memory.
        pid: Option<u32>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// The connector.
    pub target: ConnectorTarget,
    /// Observer nodes, each on its own connection and shard.
    pub observers: usize,
    /// Blocks per observer.
    pub blocks: u64,
    /// Approximate size of each block, bytes.
    pub size: usize,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        Self {
            target: ConnectorTarget::Spawn { server_bin: None },
            observers: 1,
            blocks: 1000,
            size: 4096,
        }
    }
}

/// Largest block the bench sends and accepts.
const MAX_MESSAGE: usize = 512 << 20;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// One observer: connects, sends every block and waits for its ack; returns ack latencies.
async fn observe(addr: String, blocks: Vec<Bytes>) -> Result<(Vec<u64>, u64), String> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/save"),
        Some(ws_config()),
        true,
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut o = Observer::new(ws, Marshaller::Protobuf);
    o.ack_timeout = Duration::from_secs(30);
    let mut lat = Vec::with_capacity(blocks.len());
    for b in blocks {
        let t = Instant::now();
        o.send_block(b, true).await.map_err(|e| e.to_string())?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    let resends = o.resends;
    o.close().await;
    Ok((lat, resends))
}

/// Runs the scenario and reports its figures.
pub async fn run(opts: ConnectorOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.observers > 0, "--observers must be at least 1");
    anyhow::ensure!(opts.blocks > 0, "--blocks must be at least 1");
    anyhow::ensure!(opts.size < MAX_MESSAGE, "--size must be below 512 MiB");
    let total_bytes = opts.observers as u64 * opts.blocks * opts.size as u64;
    anyhow::ensure!(
        total_bytes <= 4 << 30,
        "{} observers x {} blocks x {} bytes: the bench prepares every block in memory first; keep it under 4 GiB",
        opts.observers,
        opts.blocks,
        opts.size
    );
    // Every block prepared before the clock starts: the figures measure the connector.
    let payloads: Vec<Vec<Bytes>> = (0..opts.observers)
        .map(|o| {
            (1..=opts.blocks)
                .map(|n| block_payload(HeaderKind::HeaderV2, o as u32, n, opts.size))
                .collect()
        })
        .collect();
    let wire_bytes: u64 = payloads.iter().flatten().map(|b| b.len() as u64).sum();

    let mut server = None;
    let mut printed = None;
    let (addr, pid) = match &opts.target {
        ConnectorTarget::Spawn { server_bin } => {
            let bin = sys::find_bin("firehose-ws-connector", server_bin.as_deref())?;
            let port = sys::free_port()?;
            let addr = format!("127.0.0.1:{port}");
            let mut cmd = Command::new(bin);
            cmd.args(["--mode", "server", "--url", &addr, "--log-level", "warn"])
                .stdout(Stdio::piped());
            let mut s = ServerProcess::spawn(cmd)?;
            // Its stdout, as a Firehose reader reads it: one hash per printed block.
            let out = s.take_stdout().expect("stdout is piped");
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { return };
                    if let Some(rest) = line.strip_prefix("FIRE BLOCK ") {
                        if let Some(hash) = rest.split(' ').nth(1) {
                            if tx.send(hash.to_owned()).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            printed = Some(rx);
            s.wait_listening(&addr, Duration::from_secs(20))?;
            let pid = s.pid();
            server = Some(s);
            (addr, Some(pid))
        }
        ConnectorTarget::External { addr, pid } => (addr.clone(), *pid),
    };

    let t = Instant::now();
    let tasks: Vec<_> = payloads
        .into_iter()
        .map(|blocks| tokio::spawn(observe(addr.clone(), blocks)))
        .collect();
    let mut lat = Vec::new();
    let mut resends = 0;
    for task in tasks {
        let (mut l, r) = task.await?.map_err(|e| anyhow::anyhow!("observer: {e}"))?;
        lat.append(&mut l);
        resends += r;
    }
    let secs = t.elapsed().as_secs_f64();
    let mem = pid.and_then(ProcMem::read);
    let blocks = opts.observers as u64 * opts.blocks;
    let ack = Summary::of(&mut lat);
    let ms = |us: u64| us as f64 / 1000.0;

    let mut r = Report::new("connector");
    r.text("connector", "connector", format!("ws://{addr}/save"))
        .int("observers", "observers", opts.observers as u64, "")
        .int("blocks", "blocks", blocks, "")
        .int("block_bytes", "block size", opts.size as u64, "B")
        .float("blocks_per_s", "blocks/s", blocks as f64 / secs, 0, "/s")
        .float(
            "mb_per_s",
            "payload",
            wire_bytes as f64 / secs / 1e6,
            1,
            "MB/s",
        )
        .float("ack_p50_ms", "send→ack p50", ms(ack.p50), 3, "ms")
        .float("ack_p99_ms", "send→ack p99", ms(ack.p99), 3, "ms")
        .float("ack_max_ms", "send→ack max", ms(ack.max), 3, "ms")
        .int("resends", "resends (ack timeouts)", resends, "");
    if let Some(m) = mem {
        r.memory("connector", m);
    }
    if let Some(rx) = printed {
        // Every block is acked only after its line was flushed: the lines are in the pipe.
        let mut want: HashMap<String, u32> = (0..opts.observers as u32)
            .flat_map(|o| (1..=opts.blocks).map(move |n| (hex::encode(block_hash(o, n)), 0)))
            .collect();
        let mut unknown = 0u64;
        let mut seen = 0u64;
        while seen < blocks {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(h) => {
                    seen += 1;
                    match want.get_mut(&h) {
                        Some(c) => *c += 1,
                        None => unknown += 1,
                    }
                }
                Err(_) => break,
            }
        }
        let lost = want.values().filter(|c| **c == 0).count() as u64;
        let dup: u64 = want
            .values()
            .map(|c| c.saturating_sub(1) as u64)
            .sum::<u64>()
            + unknown;
        r.losses(lost, dup);
    }
    drop(server);
    Ok(r)
}
