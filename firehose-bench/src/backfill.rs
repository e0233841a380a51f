//! `backfill`: collectors that read the whole history of receipts and original transactions
//! of a fixture database, either by resuming from its very start over the websocket (`since`
//! in `collectorInfo`, [`Via::Websocket`]) or page by page from the original's history API
//! (`POST /receipt` and `/originalTx`, 100 rows a page, signed requests and replies,
//! [`Via::Http`]).
//!
//! The bench builds the archiver-shaped database, starts `firehose-distributor` on it, and
//! checks that every collector gets every row exactly once, in key order, per type.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use firehose_client::{Client, ClientConfig};
use firehose_client::{HttpClient, HttpError};
use firehose_core::crypto::PublicKey;
use firehose_core::keyed::KeyedRecord;
use firehose_core::records::{OriginalTxData, Receipt};
use firehose_core::since::Since;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_dbstore::{Layout, PageKey};
use firehose_distributor::config::Config;
use firehose_distributor::server::api::MAX_SPAN;
use firehose_logreader::{DataLogWriter, WriterOptions};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;
use crate::sys::{self, ProcCpu, ProcMem};

/// How the collectors ask for the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// One websocket resumed from the start (`since`).
    Websocket,
    /// The HTTP history API, page by page.
    Http,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// How the history is read.
    pub via: Via,
    /// `firehose-distributor`; `None` = beside this executable.
    pub server_bin: Option<PathBuf>,
    /// Collectors reading the history at the same time.
    pub clients: usize,
    /// Cycles in the fixture database.
    pub cycles: u64,
    /// Receipts (and as many original txs) per cycle.
    pub per_cycle: u64,
    /// Minimum size of each receipt's JSON, bytes.
    pub size: usize,
    /// Seed of the collector keys.
    pub key_seed: u64,
    /// Give up on a collector that receives nothing for this long.
    pub idle_timeout: Duration,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            via: Via::Websocket,
            server_bin: None,
            clients: 1,
            cycles: 100,
            per_cycle: 500,
            size: 1024,
            key_seed: 2,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    receipt: Option<ReceiptKey>,
    original_tx: Option<TxKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptKey {
    receipt_id: String,
    timestamp: u64,
    cycle: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxKey {
    tx_id: String,
    timestamp: u64,
    cycle: u64,
}

/// What one collector saw, per type (receipts, original txs).
#[derive(Debug, Default)]
struct Seen {
    unique: [HashSet<String>; 2],
    last: [Option<PageKey>; 2],
    received: u64,
    dup: u64,
    out_of_order: u64,
    bytes: u64,
    secs: f64,
    error: Option<String>,
}

impl Seen {
    fn record(&mut self, slot: usize, key: PageKey) {
        self.received += 1;
        if self.last[slot].as_ref().is_some_and(|last| key <= *last) {
            self.out_of_order += 1;
        }
        if !self.unique[slot].insert(key.id.clone()) {
            self.dup += 1;
        }
        self.last[slot] = Some(key);
    }

    fn total(&self) -> u64 {
        (self.unique[0].len() + self.unique[1].len()) as u64
    }
}

async fn read_history(cfg: ClientConfig, expected: u64, idle: Duration) -> Seen {
    let mut seen = Seen::default();
    let start = Instant::now();
    let mut sub = match Client::connect(&cfg).await {
        Ok(s) => s,
        Err(e) => {
            seen.error = Some(e.to_string());
            return seen;
        }
    };
    while seen.total() < expected {
        let msg = match tokio::time::timeout(idle, sub.next_raw()).await {
            Err(_) => {
                seen.error = Some(format!("nothing received for {idle:?}"));
                break;
            }
            Ok(None) => {
                seen.error = Some("connection ended".into());
                break;
            }
            Ok(Some(Err(e))) => {
                seen.error = Some(e.to_string());
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(t) = msg else { continue };
        seen.bytes += t.len() as u64;
        match serde_json::from_str::<Probe>(t.as_str()) {
            Ok(Probe {
                receipt: Some(r), ..
            }) => seen.record(
                0,
                PageKey {
                    cycle: r.cycle,
                    timestamp: r.timestamp,
                    id: r.receipt_id,
                },
            ),
            Ok(Probe {
                original_tx: Some(t),
                ..
            }) => seen.record(
                1,
                PageKey {
                    cycle: t.cycle,
                    timestamp: t.timestamp,
                    id: t.tx_id,
                },
            ),
            Ok(_) => {}
            Err(e) => {
                seen.error = Some(format!("bad message: {e}"));
                break;
            }
        }
    }
    seen.secs = start.elapsed().as_secs_f64();
    seen
}

/// Reads cycles `0..cycles` through the history API: `/receipt` then `/originalTx`, spans of
/// at most 100 cycles, every page until an empty one.
async fn read_history_http(api: HttpClient, cycles: u64) -> Seen {
    let mut seen = Seen::default();
    let start = Instant::now();
    let spans: Vec<(u64, u64)> = (0..cycles)
        .step_by(MAX_SPAN as usize)
        .map(|s| (s, (s + MAX_SPAN - 1).min(cycles.saturating_sub(1))))
        .collect();
    let result: Result<(), HttpError> = async {
        // Receipts (slot 0), then original transactions (slot 1), span by span, page by page.
        for slot in 0..2 {
            for &(from, to) in &spans {
                for page in 1.. {
                    let keys = if slot == 0 {
                        page_keys::<Receipt>(&api, from, to, page).await?
                    } else {
                        page_keys::<OriginalTxData>(&api, from, to, page).await?
                    };
                    if keys.is_empty() {
                        break;
                    }
                    for k in keys {
                        seen.record(slot, k);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        seen.error = Some(e.to_string());
    }
    seen.secs = start.elapsed().as_secs_f64();
    seen
}

/// The keys of one `/receipt` or `/originalTx` page.
async fn page_keys<T: KeyedRecord>(
    api: &HttpClient,
    from: u64,
    to: u64,
    page: u64,
) -> Result<Vec<PageKey>, HttpError> {
    let rows = api.keyed::<T>().in_cycles(from, to, page).await?;
    Ok(rows.iter().map(T::page_key).collect())
}

/// A distributor started on a fixture archiver database (removed when dropped).
#[derive(Debug)]
pub(crate) struct FixtureServer {
    /// The distributor process.
    pub(crate) server: sys::ServerProcess,
    /// `ws://127.0.0.1:port`.
    pub(crate) url: String,
    /// Its public key.
    pub(crate) key: PublicKey,
    /// Seconds it took to build the database.
    pub(crate) build_secs: f64,
    _tmp: tempfile::TempDir,
}

impl FixtureServer {
    /// Builds `spec` and starts the distributor on it, admitting `clients` collector keys.
    pub(crate) async fn start(
        spec: &FixtureSpec,
        server_bin: Option<&std::path::Path>,
        key_seed: u64,
        clients: usize,
    ) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix("firehose-bench-")
            .tempdir()?;
        let db_dir = tmp.path().join("db");
        let build = Instant::now();
        {
            let layout = Layout::Directory(db_dir.clone());
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || firehose_dbstore::fixture::build(&layout, &spec))
                .await??;
        }
        let build_secs = build.elapsed().as_secs_f64();
        let log_dir = tmp.path().join("data-logs");
        std::fs::create_dir_all(&log_dir)?;
        for name in ["cycle", "originalTx", "receipt"] {
            DataLogWriter::open(&log_dir, name, WriterOptions::archiver_default(name))?.flush()?;
        }
        let cfg = Config {
            data_log_dir: log_dir,
            archiver_db_dir: Some(db_dir),
            limit_to_subscribers_only: true,
            subscribers: crate::keys::subscribers(key_seed, clients),
            ..Config::default()
        };
        let (server, url) = sys::spawn_distributor(server_bin, tmp.path(), cfg.clone())?;
        Ok(Self {
            server,
            url,
            key: PublicKey::from_hex(&cfg.public_key)?,
            build_secs,
            _tmp: tmp,
        })
    }
}

/// Runs the scenario and reports its figures.
pub async fn run(opts: BackfillOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.clients > 0, "--clients must be at least 1");
    sys::raise_fd_limit(opts.clients as u64 * 2 + 256);
    let spec = FixtureSpec {
        cycles: opts.cycles,
        receipts_per_cycle: opts.per_cycle,
        txs_per_cycle: opts.per_cycle,
        receipt_bytes: opts.size,
        ..FixtureSpec::default()
    };
    let fx = FixtureServer::start(
        &spec,
        opts.server_bin.as_deref(),
        opts.key_seed,
        opts.clients,
    )
    .await?;
    let (server, url, key, build_secs) = (&fx.server, fx.url.clone(), fx.key, fx.build_secs);
    // "I have nothing yet": a resume point before every row of both types.
    let start_key = PageKey {
        cycle: 0,
        timestamp: 0,
        id: String::new(),
    };
    let expected = opts.cycles * opts.per_cycle * 2;
    let cpu_start = ProcCpu::read(server.pid());
    let t = Instant::now();
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            let keys = crate::keys::collector(opts.key_seed, i);
            if opts.via == Via::Http {
                let base = url.replacen("ws://", "http://", 1);
                let api = HttpClient::new(&base, keys, key);
                return tokio::spawn(read_history_http(api, opts.cycles));
            }
            let mut c = ClientConfig::new(&url, keys, key);
            c.since = Some(Since {
                cycle: None,
                original_tx: Some(start_key.clone()),
                receipt: Some(start_key.clone()),
            });
            tokio::spawn(read_history(c, expected, opts.idle_timeout))
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await?);
    }
    let secs = t.elapsed().as_secs_f64();
    let server_cpu = cpu_start
        .zip(ProcCpu::read(server.pid()))
        .map(|(a, b)| b.secs - a.secs);
    let mem = ProcMem::read(server.pid());
    let received: u64 = seen.iter().map(|s| s.received).sum();
    let lost: u64 = seen
        .iter()
        .map(|s| expected - s.total().min(expected))
        .sum();
    let dup: u64 = seen.iter().map(|s| s.dup).sum();
    let out_of_order: u64 = seen.iter().map(|s| s.out_of_order).sum();
    let bytes: u64 = seen.iter().map(|s| s.bytes).sum();
    let slowest = seen.iter().map(|s| s.secs).fold(0.0, f64::max);
    let errors: Vec<&String> = seen.iter().filter_map(|s| s.error.as_ref()).collect();

    let mut r = Report::new("backfill");
    let via = match opts.via {
        Via::Websocket => "websocket resume (since)",
        Via::Http => "HTTP /receipt + /originalTx pages",
    };
    r.text("via", "via", via)
        .int("clients", "clients", opts.clients as u64, "")
        .int("rows_per_client", "rows per client", expected, "")
        .float("fixture_build_s", "fixture build", build_secs, 1, "s")
        .int("received", "received", received, "")
        .float("seconds", "slowest client", slowest, 2, "s")
        .float(
            "entries_per_s",
            "entries/s (all clients)",
            received as f64 / secs,
            0,
            "/s",
        )
        .float(
            "entries_per_s_per_client",
            "entries/s per client",
            received as f64 / secs / opts.clients as f64,
            0,
            "/s",
        )
        .int("out_of_order", "out of order", out_of_order, "")
        .int("client_errors", "client errors", errors.len() as u64, "");
    if let Some(cpu) = server_cpu {
        r.server_cpu(cpu, received, "entry");
    }
    if opts.via == Via::Websocket {
        // The HTTP client hands out typed rows: bytes are counted on the websocket only.
        r.float("mb_per_s", "received", bytes as f64 / secs / 1e6, 1, "MB/s");
    }
    if let Some(e) = errors.first() {
        r.text("first_error", "first error", (*e).clone());
    }
    if let Some(m) = mem {
        r.memory("server", m);
    }
    r.losses(lost, dup);
    Ok(r)
}
