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

use std::time::{Duration, Instant};

use anyhow::Context as _;
use firehose_client::ClientConfig;
use firehose_core::crypto::{Crypto, PublicKey};
use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

mod collector;
mod raw;
mod target;

use crate::report::Report;
use crate::stats::Summary;
use crate::sys::{self, ProcCpu, ProcMem};
use collector::{read_collector, Ws};
use target::{prepare, write_entries, Prepared};
pub use target::{FanoutOptions, Target};

/// A GET on the distributor's HTTP side (HTTP/1.0: the server closes after the reply).
pub(crate) async fn http_get(addr: &str, path: &str) -> Option<String> {
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
pub(crate) async fn sessions(addr: &str) -> Option<usize> {
    let body = http_get(addr, "/metrics").await?;
    body.lines()
        .find_map(|l| l.strip_prefix("firehose_distributor_sessions "))
        .and_then(|v| v.trim().parse().ok())
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
        r.server_cpu(cpu, received, "delivery");
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
