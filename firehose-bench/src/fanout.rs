//! `fanout`: N signed collectors against a distributor while a writer appends receipts to its
//! data logs exactly as the archiver writes them.
//!
//! Each receipt carries its index in `cycle` and its append time (µs since the run's epoch) in
//! `timestamp`, so every collector checks order and completeness (`lost`, `dup`) and measures
//! append→receive latency without any clock but the bench's own.
//!
//! The distributor is either started by the bench ([`Target::Spawn`]: the `firehose-distributor`
//! binary with a generated config whose allow-list holds the bench's collectors) or any
//! compatible implementation already running ([`Target::External`]: allow-list the keys of
//! `firehose-bench keys`, give the data-log directory it tails).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use firehose_client::ClientConfig;
use firehose_core::crypto::{Crypto, PublicKey};
use firehose_core::fixtures;
use firehose_core::message::SignedRecord;
use firehose_core::records::Record;
use firehose_distributor::config::Config;
use firehose_logreader::{DataLogWriter, WriterOptions};
use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::report::Report;
use crate::stats::Summary;
use crate::sys::{self, ProcCpu, ProcMem, ServerProcess};

/// Which distributor to measure.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `firehose-distributor` (this path, or the one beside the bench) on loopback.
    Spawn {
        /// The binary; `None` = beside this executable.
        server_bin: Option<PathBuf>,
        /// Its per-session queue (`CLIENT_QUEUE_CAPACITY`).
        queue_capacity: usize,
    },
    /// The loopback limit: a bare websocket server in the bench process that broadcasts each
    /// signed message (signed once, like ours) to every connection, batching what is queued
    /// into one flush, with no data logs, no readers, no auth and no per-session queues.
    /// Same clients, same checks.
    Raw,
    /// A distributor already running.
    External {
        /// `ws://host:port`.
        url: String,
        /// The data-log directory it tails (the bench appends there).
        data_log_dir: PathBuf,
        /// Its public key (hex), for `--verify`.
        distributor_key: String,
        /// Its process id, to report its memory.
        pid: Option<u32>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// The distributor.
    pub target: Target,
    /// Collectors.
    pub clients: usize,
    /// Receipts appended.
    pub entries: u64,
    /// Receipts per second (0: as fast as the writer can).
    pub rate: f64,
    /// Minimum size of each receipt's JSON, bytes.
    pub size: usize,
    /// Seed of the collector keys (see [`crate::keys`]).
    pub key_seed: u64,
    /// Handshakes in flight at once.
    pub connect_concurrency: usize,
    /// How long to wait for the last deliveries once the writer is done.
    pub drain_timeout: Duration,
    /// Verify every message's signature (as a real collector does; costs client CPU).
    pub verify: bool,
    /// Entries per data-log file before the writer rotates.
    pub max_log_entries: u64,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        Self {
            target: Target::Spawn {
                server_bin: None,
                queue_capacity: 8192,
            },
            clients: 100,
            entries: 1000,
            rate: 500.0,
            size: 1024,
            key_seed: 1,
            connect_concurrency: 256,
            drain_timeout: Duration::from_secs(30),
            verify: false,
            max_log_entries: 10_000,
        }
    }
}

/// What one collector saw.
#[derive(Debug, Default)]
struct Seen {
    next: u64,
    received: u64,
    lost: u64,
    dup: u64,
    bytes: u64,
    latencies_us: Vec<u64>,
    error: Option<String>,
}

impl Seen {
    fn record(&mut self, index: u64, latency_us: u64) {
        self.received += 1;
        if index < self.next {
            self.dup += 1;
            return;
        }
        self.lost += index - self.next;
        self.next = index + 1;
        self.latencies_us.push(latency_us);
    }
}

#[derive(Deserialize)]
struct Probe {
    receipt: Option<ProbeReceipt>,
}

#[derive(Deserialize)]
struct ProbeReceipt {
    cycle: u64,
    timestamp: u64,
}

/// (index, append time) of a bench receipt in `text`, if it is one.
fn probe(text: &[u8], verify: Option<&(Crypto, PublicKey)>) -> Result<Option<(u64, u64)>, String> {
    if let Some((crypto, key)) = verify {
        let s = SignedRecord::verify_json(crypto, text, key).map_err(|e| e.to_string())?;
        return Ok(match s.record {
            Record::Receipt(r) => Some((r.cycle, r.timestamp)),
            _ => None,
        });
    }
    let p: Probe = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    Ok(p.receipt.map(|r| (r.cycle, r.timestamp)))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn read_collector(
    mut ws: Ws,
    entries: u64,
    epoch: Instant,
    verify: Option<(Crypto, PublicKey)>,
    mut stop: watch::Receiver<bool>,
) -> Seen {
    let mut seen = Seen {
        latencies_us: Vec::with_capacity(entries as usize),
        ..Seen::default()
    };
    while seen.next < entries {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.wait_for(|s| *s) => break,
        };
        let bytes: &[u8] = match &msg {
            Some(Ok(Message::Text(t))) => t.as_bytes(),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(f))) => {
                seen.error = Some(format!("closed by the server: {f:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                seen.error = Some(e.to_string());
                break;
            }
            None => {
                seen.error = Some("connection ended".into());
                break;
            }
        };
        let len = bytes.len() as u64;
        match probe(bytes, verify.as_ref()) {
            Ok(Some((index, sent))) => {
                seen.bytes += len;
                let now = epoch.elapsed().as_micros() as u64;
                seen.record(index, now.saturating_sub(sent));
            }
            Ok(None) => {}
            Err(e) => {
                seen.error = Some(format!("bad message: {e}"));
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}

/// A GET on the distributor's HTTP side (HTTP/1.0: the server closes after the reply).
async fn http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .ok()?
        .ok()?;
    Some(out)
}

/// The `firehose_distributor_sessions` gauge, if the server exposes it.
async fn sessions(addr: &str) -> Option<usize> {
    let body = http_get(addr, "/metrics").await?;
    body.lines()
        .find_map(|l| l.strip_prefix("firehose_distributor_sessions "))
        .and_then(|v| v.trim().parse().ok())
}

/// The distributor under test, and where the writer puts the entries.
struct Prepared {
    url: String,
    sink: Sink,
    /// The distributor's public key (hex).
    key_hex: String,
    pid: Option<u32>,
    /// Kept alive for the run (killed when dropped).
    _server: Option<ServerProcess>,
    /// The raw broadcaster's own runtime (stopped when dropped).
    _raw: Option<raw::Runtime>,
}

/// Starts (or checks) the target and opens the writer's side of it.
async fn prepare(opts: &FanoutOptions, tmp: &std::path::Path) -> anyhow::Result<Prepared> {
    let writer_opts = WriterOptions {
        max_entries: opts.max_log_entries,
        ..WriterOptions::archiver_default("receipt")
    };
    Ok(match &opts.target {
        Target::Spawn {
            server_bin,
            queue_capacity,
        } => {
            let log_dir = tmp.join("data-logs");
            // The log files exist before the distributor starts (as with a running archiver).
            let mut w = DataLogWriter::open(&log_dir, "receipt", writer_opts)?;
            w.flush()?;
            let cfg = Config {
                data_log_dir: log_dir,
                limit_to_subscribers_only: true,
                subscribers: crate::keys::subscribers(opts.key_seed, opts.clients),
                client_queue_capacity: *queue_capacity,
                ..Config::default()
            };
            let (server, url) = sys::spawn_distributor(server_bin.as_deref(), tmp, cfg.clone())?;
            Prepared {
                url,
                sink: Sink::Log(w),
                key_hex: cfg.public_key,
                pid: Some(server.pid()),
                _server: Some(server),
                _raw: None,
            }
        }
        Target::Raw => {
            let (rt, url, tx) = raw::start().await?;
            let cfg = Config::default();
            Prepared {
                url,
                sink: Sink::Raw(tx, cfg.keys()?),
                key_hex: cfg.public_key,
                pid: None,
                _server: None,
                _raw: Some(rt),
            }
        }
        Target::External {
            url,
            data_log_dir,
            distributor_key,
            pid,
        } => {
            anyhow::ensure!(
                data_log_dir.is_dir(),
                "--data-log-dir {}: not a directory",
                data_log_dir.display()
            );
            Prepared {
                url: url.trim_end_matches('/').to_owned(),
                sink: Sink::Log(DataLogWriter::open(data_log_dir, "receipt", writer_opts)?),
                key_hex: distributor_key.clone(),
                pid: *pid,
                _server: None,
                _raw: None,
            }
        }
    })
}

/// Connects every collector (signed requests), `concurrency` handshakes at once; returns the
/// sockets and each handshake's time (µs), or says why some could not connect.
async fn connect_all(
    configs: &[ClientConfig],
    concurrency: usize,
) -> anyhow::Result<(Vec<Ws>, Vec<u64>)> {
    let results: Vec<Result<(Ws, u64), String>> = futures::stream::iter(configs)
        .map(|c| async move {
            let t = Instant::now();
            let (ws, _) = tokio_tungstenite::connect_async(c.signed_url())
                .await
                .map_err(|e| e.to_string())?;
            Ok((ws, t.elapsed().as_micros() as u64))
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut socks = Vec::with_capacity(configs.len());
    let mut connect_us = Vec::with_capacity(configs.len());
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok((ws, us)) => {
                socks.push(ws);
                connect_us.push(us);
            }
            Err(e) => refused.push(e),
        }
    }
    if let Some(first) = refused.first() {
        let hint = if first.contains("401") {
            "; is the allow-list set? (`firehose-bench keys`)"
        } else {
            ""
        };
        anyhow::bail!(
            "{} of {} collectors could not connect (first: {first}){hint}",
            refused.len(),
            configs.len(),
        );
    }
    Ok((socks, connect_us))
}

/// Sessions register just after the upgrade: waits for the sessions gauge to reach `n` where
/// the server has one (ours), else a second.
async fn wait_registered(host: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sessions(host).await {
            Some(have) if have >= n => return Ok(()),
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Some(have) => anyhow::bail!("only {have} of {n} sessions registered"),
            None => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(());
            }
        }
    }
}

/// Appends `entries` receipts at `rate` per second (0: at once); each carries its index in
/// `cycle` and its append time (µs since `epoch`) in `timestamp`. Returns the mean line size.
fn write_entries(
    mut sink: Sink,
    entries: u64,
    rate: f64,
    size: usize,
    epoch: Instant,
) -> anyhow::Result<u64> {
    let mut line_bytes = 0;
    for i in 0..entries {
        if rate > 0.0 {
            let due = epoch + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let t = epoch.elapsed().as_micros() as u64;
        let line = fixtures::receipt(i, t, i, size).to_canonical_json();
        line_bytes += line.len() as u64;
        sink.append(line.as_bytes())?;
    }
    Ok(line_bytes / entries)
}

/// Runs the scenario and reports its figures.
pub async fn run(opts: FanoutOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(opts.entries > 0, "--entries must be at least 1");
    // Each collector is a socket here; with the raw broadcaster its server end is too.
    let per_client = if matches!(opts.target, Target::Raw) {
        2
    } else {
        1
    };
    let fd_limit = sys::raise_fd_limit(opts.clients as u64 * 2 + 256);
    anyhow::ensure!(
        fd_limit >= opts.clients as u64 * per_client + 64,
        "{} collectors need more open files than the limit of {fd_limit} allows (raise `ulimit -Hn`)",
        opts.clients
    );
    let tmp = tempfile::Builder::new()
        .prefix("firehose-bench-")
        .tempdir()?;
    let Prepared {
        url,
        sink,
        key_hex,
        pid,
        _server,
        _raw: raw_runtime,
    } = prepare(&opts, tmp.path()).await?;
    // CPU the server has used so far: the distributor's process, or the raw broadcaster's
    // worker threads.
    let server_cpu = || match raw_runtime {
        Some(_) => ProcCpu::threads(raw::THREAD_NAME),
        None => pid.and_then(ProcCpu::read),
    };
    let distributor_key = PublicKey::from_hex(&key_hex).context("distributor public key")?;
    let host = url
        .trim_start_matches("ws://")
        .trim_start_matches("wss://")
        .to_owned();
    let verify = opts.verify.then(|| (Crypto::default(), distributor_key));

    let connect_start = Instant::now();
    let configs: Vec<ClientConfig> = (0..opts.clients)
        .map(|i| {
            ClientConfig::new(
                &url,
                crate::keys::collector(opts.key_seed, i),
                distributor_key,
            )
        })
        .collect();
    let (socks, mut connect_us) = connect_all(&configs, opts.connect_concurrency).await?;
    let connect_secs = connect_start.elapsed().as_secs_f64();
    wait_registered(&host, opts.clients).await?;
    let connect = Summary::of(&mut connect_us);

    // Readers, then the writer.
    let epoch = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> = socks
        .into_iter()
        .map(|ws| {
            tokio::spawn(read_collector(
                ws,
                opts.entries,
                epoch,
                verify,
                stop_rx.clone(),
            ))
        })
        .collect();
    let (entries, rate, size) = (opts.entries, opts.rate, opts.size);
    let cpu_start = server_cpu();
    let writer =
        tokio::task::spawn_blocking(move || write_entries(sink, entries, rate, size, epoch));
    let line_bytes = writer.await??;
    let written_secs = epoch.elapsed().as_secs_f64();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(opts.drain_timeout).await;
        let _ = stop_tx.send(true);
    });
    let mem = pid.and_then(ProcMem::read);
    let mut all = Vec::new();
    let (mut received, mut lost, mut dup, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut errors = Vec::new();
    for r in readers {
        let mut s = r.await?;
        s.lost += entries - s.next;
        received += s.received;
        lost += s.lost;
        dup += s.dup;
        bytes += s.bytes;
        all.append(&mut s.latencies_us);
        if let Some(e) = s.error {
            errors.push(e);
        }
    }
    let secs = epoch.elapsed().as_secs_f64();
    let server_cpu = cpu_start.zip(server_cpu()).map(|(a, b)| b.secs - a.secs);
    stopper.abort();
    let lat = Summary::of(&mut all);
    let ms = |us: u64| us as f64 / 1000.0;

    let mut r = Report::new("fanout");
    r.text("server", "server", url.clone())
        .int("clients", "clients", opts.clients as u64, "")
        .int("entries", "entries", entries, "")
        .int("entry_bytes", "entry size (log line)", line_bytes, "B")
        .float("rate_target", "append rate target", rate, 0, "/s")
        .float(
            "append_rate",
            "append rate achieved",
            entries as f64 / written_secs,
            0,
            "/s",
        )
        .float("connect_total_s", "connect all", connect_secs, 2, "s")
        .float("connect_p50_ms", "connect p50", ms(connect.p50), 2, "ms")
        .float("connect_p99_ms", "connect p99", ms(connect.p99), 2, "ms")
        .int("deliveries", "deliveries", received, "")
        .float(
            "deliveries_per_s",
            "deliveries/s",
            received as f64 / secs,
            0,
            "/s",
        )
        .float("mb_per_s", "received", bytes as f64 / secs / 1e6, 1, "MB/s")
        .float("latency_p50_ms", "append→receive p50", ms(lat.p50), 2, "ms")
        .float("latency_p99_ms", "append→receive p99", ms(lat.p99), 2, "ms")
        .float("latency_max_ms", "append→receive max", ms(lat.max), 2, "ms")
        .int("client_errors", "client errors", errors.len() as u64, "");
    if let Some(cpu) = server_cpu {
        // Work per delivery: steadier than deliveries/s when the bench shares the cores.
        r.float("server_cpu_s", "server CPU", cpu, 2, "s").float(
            "server_cpu_ns_per_delivery",
            "server CPU per delivery",
            cpu * 1e9 / received.max(1) as f64,
            0,
            "ns",
        );
    }
    if let Some(e) = errors.first() {
        r.text("first_error", "first error", e.clone());
    }
    if let Some(m) = mem {
        r.memory("server", m);
    }
    r.losses(lost, dup);
    Ok(r)
}

/// Where the writer puts each entry.
enum Sink {
    /// Appended to the data log, as the archiver does (flushed per entry).
    Log(DataLogWriter),
    /// Signed once and broadcast by the raw server.
    Raw(
        tokio::sync::broadcast::Sender<Message>,
        firehose_core::crypto::KeyPair,
    ),
}

impl Sink {
    fn append(&mut self, line: &[u8]) -> anyhow::Result<()> {
        match self {
            Sink::Log(w) => {
                w.append(line)?;
                w.flush()?;
            }
            Sink::Raw(tx, keys) => {
                let msg = firehose_core::message::encode_signed_entry(
                    &Crypto::default(),
                    keys,
                    firehose_core::records::DataType::Receipt,
                    line,
                );
                let text = String::from_utf8(msg)?;
                // No receivers is not an error here: the collectors count what they miss.
                let _ = tx.send(Message::Text(text.into()));
            }
        }
        Ok(())
    }
}

/// The raw broadcaster behind [`Target::Raw`].
mod raw {
    use futures::{SinkExt, StreamExt};
    use tokio::sync::broadcast;
    use tokio_tungstenite::tungstenite::Message;

    /// The raw broadcaster's worker threads (their CPU time is the server's).
    pub const THREAD_NAME: &str = "raw-server";

    /// The broadcaster's own runtime: two workers, like the distributor's, so that its CPU
    /// can be told from the collectors'. Stopped when dropped.
    pub struct Runtime(Option<tokio::runtime::Runtime>);

    impl Drop for Runtime {
        fn drop(&mut self) {
            if let Some(rt) = self.0.take() {
                rt.shutdown_background();
            }
        }
    }

    /// Starts it on loopback; returns its runtime, its URL and the sender every connection
    /// listens to.
    pub async fn start() -> anyhow::Result<(Runtime, String, broadcast::Sender<Message>)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()?;
        let (tx, _) = broadcast::channel::<Message>(1 << 16);
        let sender = tx.clone();
        let (bound_tx, bound) = tokio::sync::oneshot::channel();
        rt.spawn(async move {
            let listener = match firehose_distributor::server::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = bound_tx.send(Err(e));
                    return;
                }
            };
            let _ = bound_tx.send(listener.local_addr());
            while let Ok((sock, _)) = listener.accept().await {
                let mut rx = sender.subscribe();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    let Ok(ws) = tokio_tungstenite::accept_async(sock).await else {
                        return;
                    };
                    let (mut out, mut incoming) = ws.split();
                    loop {
                        tokio::select! {
                            m = rx.recv() => {
                                // Everything already queued goes out in one flush.
                                let Ok(mut m) = m else { return };
                                loop {
                                    if out.feed(m).await.is_err() {
                                        return;
                                    }
                                    match rx.try_recv() {
                                        Ok(next) => m = next,
                                        Err(broadcast::error::TryRecvError::Empty) => break,
                                        Err(_) => return,
                                    }
                                }
                                if out.flush().await.is_err() {
                                    return;
                                }
                            }
                            m = incoming.next() => if !matches!(m, Some(Ok(_))) { return },
                        }
                    }
                });
            }
        });
        let url = format!("ws://{}", bound.await??);
        Ok((Runtime(Some(rt)), url, tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_gaps_and_repeats() {
        let mut s = Seen::default();
        for i in [0, 1, 1, 3, 2, 4] {
            s.record(i, 10);
        }
        assert_eq!((s.received, s.lost, s.dup, s.next), (6, 1, 2, 5));
    }

    #[test]
    fn probe_reads_bench_receipts_only() {
        let line = fixtures::receipt(7, 1234, 7, 100).to_canonical_json();
        let msg = format!(r#"{{"receipt":{line},"sign":{{"owner":"x","sig":"y"}}}}"#);
        assert_eq!(probe(msg.as_bytes(), None), Ok(Some((7, 1234))));
        assert_eq!(probe(br#"{"cycle":{"counter":1}}"#, None), Ok(None));
        assert!(probe(b"not json", None).is_err());
    }
}
