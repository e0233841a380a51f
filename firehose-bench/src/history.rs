//! `history`: collectors paging the history HTTP API the way relayer-collector's sync does
//! (`/totalData`, then `/cycleinfo`, `/receipt` and `/originalTx` with `{start, end: start +
//! 100}`, 101 rows a request), every request signed and every reply verified. Reports rows/s,
//! per-request latency and the server's memory, and checks that each collector got every row
//! once, in order.
//!
//! It runs against a distributor it starts on a fixture database, or against any running
//! one (`--url`, the original included: its allow-list must admit `firehose-bench keys`).

use std::time::Instant;

use firehose_client::{HttpClient, HttpError};
use firehose_core::crypto::PublicKey;
use firehose_core::keyed::KeyedRecord;
use firehose_core::records::{OriginalTxData, Receipt};
use firehose_dbstore::fixture::FixtureSpec;

use crate::backfill::FixtureServer;
use crate::report::Report;
use crate::stats::Summary;
use crate::sys::{self, ProcMem};

/// Rows a request asks for beyond `start` (the collector's `end = start + 100`).
const SPAN: u64 = 100;

/// Where the distributor is.
#[derive(Debug, Clone)]
pub enum HistoryTarget {
    /// Start `firehose-distributor` on a fixture database of `cycles` × `per_cycle` rows.
    Spawn {
        /// The binary [default: beside this one].
        server_bin: Option<std::path::PathBuf>,
        /// Cycles in the fixture.
        cycles: u64,
        /// Receipts and original transactions per cycle (each).
        per_cycle: u64,
        /// Minimum size of each receipt, bytes.
        size: usize,
    },
    /// A distributor already running at `url` (`http://host:port`).
    External {
        /// Its base URL.
        url: String,
        /// Its public key.
        distributor_key: PublicKey,
        /// Its process id, to report its memory.
        pid: Option<u32>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// The distributor.
    pub target: HistoryTarget,
    /// Collectors syncing at the same time.
    pub clients: usize,
    /// Seed of the collector keys.
    pub key_seed: u64,
}

/// What one collector saw.
#[derive(Debug, Default)]
struct Sync {
    rows: u64,
    expected: u64,
    dup_or_disorder: u64,
    latencies_us: Vec<u64>,
    error: Option<String>,
}

impl Sync {
    async fn timed<T>(
        &mut self,
        req: impl std::future::Future<Output = Result<T, HttpError>>,
    ) -> Result<T, HttpError> {
        let t = Instant::now();
        let r = req.await;
        self.latencies_us.push(t.elapsed().as_micros() as u64);
        r
    }

    /// Pages `/receipt` or `/originalTx` by row offset up to `total` rows.
    async fn keyed<T: KeyedRecord>(
        &mut self,
        api: &HttpClient,
        total: u64,
    ) -> Result<(), HttpError> {
        let mut last = None;
        let mut start = 0;
        while start < total {
            let rows = self.timed(api.keyed::<T>().at(start, start + SPAN)).await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let key = r.page_key();
                if last.as_ref().is_some_and(|l| key <= *l) {
                    self.dup_or_disorder += 1;
                }
                last = Some(key);
            }
            self.rows += rows.len() as u64;
            start += rows.len() as u64;
        }
        Ok(())
    }

    async fn run(&mut self, api: &HttpClient) -> Result<(), HttpError> {
        let totals = self.timed(api.total_data()).await?;
        self.expected = totals.cycles + totals.receipts + totals.original_txs;
        let mut next = 0;
        while next < totals.cycles {
            let cycles = self.timed(api.cycles(next, next + SPAN)).await?;
            let Some(last) = cycles.last() else { break };
            if cycles.first().is_some_and(|c| c.counter != next) {
                self.dup_or_disorder += 1;
            }
            self.rows += cycles.len() as u64;
            next = last.counter + 1;
        }
        self.keyed::<Receipt>(api, totals.receipts).await?;
        self.keyed::<OriginalTxData>(api, totals.original_txs).await
    }
}

/// Runs the scenario and reports its figures.
pub async fn run(opts: HistoryOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.clients > 0, "--clients must be at least 1");
    sys::raise_fd_limit(opts.clients as u64 * 2 + 256);
    let (fixture, base, key, pid) = match &opts.target {
        HistoryTarget::Spawn {
            server_bin,
            cycles,
            per_cycle,
            size,
        } => {
            let spec = FixtureSpec {
                cycles: *cycles,
                receipts_per_cycle: *per_cycle,
                txs_per_cycle: *per_cycle,
                receipt_bytes: *size,
                ..FixtureSpec::default()
            };
            let fx =
                FixtureServer::start(&spec, server_bin.as_deref(), opts.key_seed, opts.clients)
                    .await?;
            let (base, key, pid) = (
                fx.url.replacen("ws://", "http://", 1),
                fx.key,
                fx.server.pid(),
            );
            (Some(fx), base, key, Some(pid))
        }
        HistoryTarget::External {
            url,
            distributor_key,
            pid,
        } => (
            None,
            url.trim_end_matches('/').to_owned(),
            *distributor_key,
            *pid,
        ),
    };
    let before = pid.and_then(ProcMem::read);
    let t = Instant::now();
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            let api = HttpClient::new(&base, crate::keys::collector(opts.key_seed, i), key);
            tokio::spawn(async move {
                let mut s = Sync::default();
                if let Err(e) = s.run(&api).await {
                    s.error = Some(e.to_string());
                }
                s
            })
        })
        .collect();
    let mut syncs = Vec::new();
    for task in tasks {
        syncs.push(task.await?);
    }
    let secs = t.elapsed().as_secs_f64();
    let after = pid.and_then(ProcMem::read);
    // Memory a few seconds after the burst: what the server gives back when idle.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let idle = pid.and_then(ProcMem::read);
    drop(fixture);

    let rows: u64 = syncs.iter().map(|s| s.rows).sum();
    let lost: u64 = syncs
        .iter()
        .map(|s| s.expected.saturating_sub(s.rows))
        .sum();
    let dup: u64 = syncs
        .iter()
        .map(|s| s.dup_or_disorder + s.rows.saturating_sub(s.expected))
        .sum();
    let mut lat: Vec<u64> = syncs
        .iter()
        .flat_map(|s| s.latencies_us.iter().copied())
        .collect();
    let lat = Summary::of(&mut lat);
    let errors: Vec<&String> = syncs.iter().filter_map(|s| s.error.as_ref()).collect();

    let mut r = Report::new("history");
    r.text("url", "distributor", base)
        .int("clients", "clients", opts.clients as u64, "")
        .int("rows", "rows received", rows, "")
        .int("requests", "requests", lat.count as u64, "")
        .float("seconds", "wall time", secs, 2, "s")
        .float(
            "rows_per_s",
            "rows/s (all clients)",
            rows as f64 / secs,
            0,
            "/s",
        )
        .float(
            "requests_per_s",
            "requests/s",
            lat.count as f64 / secs,
            0,
            "/s",
        )
        .float(
            "latency_p50_ms",
            "request p50",
            lat.p50 as f64 / 1e3,
            2,
            "ms",
        )
        .float(
            "latency_p99_ms",
            "request p99",
            lat.p99 as f64 / 1e3,
            2,
            "ms",
        )
        .float(
            "latency_max_ms",
            "request max",
            lat.max as f64 / 1e3,
            2,
            "ms",
        )
        .int("client_errors", "client errors", errors.len() as u64, "");
    if let Some(e) = errors.first() {
        r.text("first_error", "first error", (*e).clone());
    }
    if let Some(m) = before {
        r.int(
            "server_rss_before_kib",
            "server RSS before",
            m.rss_kib,
            "KiB",
        );
    }
    if let Some(m) = after {
        r.memory("server", m);
    }
    if let Some(m) = idle {
        r.int(
            "server_rss_idle_kib",
            "server RSS 3 s later",
            m.rss_kib,
            "KiB",
        );
    }
    r.losses(lost, dup);
    Ok(r)
}
