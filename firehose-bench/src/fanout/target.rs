//! The server under test (spawned, raw or external) and the writer's side of it: entries
//! appended to the data log the distributor tails, or broadcast by the raw server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firehose_core::crypto::Crypto;
use firehose_core::fixtures;
use firehose_distributor::config::Config;
use firehose_logreader::{DataLogWriter, WriterOptions};
use tokio_tungstenite::tungstenite::Message;

use super::raw;
use crate::sys::{self, ServerProcess};

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

/// The distributor under test, and where the writer puts the entries.
pub(super) struct Prepared {
    pub(super) url: String,
    pub(super) sink: Sink,
    /// The distributor's public key (hex).
    pub(super) key_hex: String,
    pub(super) pid: Option<u32>,
    /// Kept alive for the run (killed when dropped).
    pub(super) _server: Option<ServerProcess>,
    /// The raw broadcaster's own runtime (stopped when dropped).
    pub(super) _raw: Option<raw::Runtime>,
}

/// Starts (or checks) the target and opens the writer's side of it.
pub(super) async fn prepare(
    opts: &FanoutOptions,
    tmp: &std::path::Path,
) -> anyhow::Result<Prepared> {
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

/// Appends `entries` receipts at `rate` per second (0: at once); each carries its index in
/// `cycle` and its append time (µs since `epoch`) in `timestamp`. Returns the mean line size.
pub(super) fn write_entries(
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

/// Where the writer puts each entry.
pub(super) enum Sink {
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
