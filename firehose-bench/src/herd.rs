//! `herd`: N collectors that behave like relayer-collector (no `since`; after a close, a
//! fresh subscription `--reconnect-delay` later) against a distributor over a simulated
//! archiver (data logs and SQLite), while the archiver writes receipts. Mid-run the
//! distributor is stopped with SIGTERM, stays down for `--outage` seconds while the archiver
//! goes on, and is started again with the same configuration and resume state.
//!
//! Reported: how long after the restart every collector had every receipt written before it
//! (back live), the refusals (1011 closes, failed upgrades), the 4001 closes, receipts lost
//! and receipts received twice (against the receipts delivered after the restart).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firehose_client::ClientConfig;
use firehose_core::crypto::PublicKey;
use firehose_core::records::Record;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_sim::ArchiverSim;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::report::Report;
use crate::stats::Summary;
use crate::sys::{self, ServerProcess};

/// What to run.
#[derive(Debug, Clone)]
pub struct HerdOptions {
    /// The `firehose-distributor` binary (`None`: beside this executable).
    pub server_bin: Option<PathBuf>,
    /// Collectors.
    pub clients: usize,
    /// Receipts a second the archiver writes (in 4 cycles a second).
    pub rate: u64,
    /// Minimum size of each receipt, bytes.
    pub size: usize,
    /// Seconds of live streaming before the restart.
    pub before: Duration,
    /// Seconds the distributor is down.
    pub outage: Duration,
    /// Seconds the archiver goes on writing after the restart.
    pub after: Duration,
    /// A collector's wait before it subscribes again after a close (relayer-collector: 10 s).
    pub reconnect_delay: Duration,
    /// Longest wait for the last receipts once the archiver stopped.
    pub drain: Duration,
    /// Handshakes in flight at once.
    pub connect_concurrency: usize,
}

/// What one collector saw (shared with the monitor).
#[derive(Debug, Default)]
struct Collector {
    /// Receipt ids received (hashed).
    seen: HashSet<u64>,
    dup: u64,
    /// Receipts received after the restart.
    after_restart: u64,
    /// Closes with 1011 (resume again later) and upgrades refused.
    refused: u64,
    /// Closes with 4001 (slow consumer).
    slow: u64,
}

type Shared = Arc<Mutex<Collector>>;

/// The id of the receipt in a message, hashed (`None`: not a receipt).
fn receipt_id(text: &[u8]) -> Option<u64> {
    const KEY: &[u8] = br#""receiptId":""#;
    let at = memchr::memmem::find(text, KEY)? + KEY.len();
    let end = at + memchr::memchr(b'"', &text[at..])?;
    Some(hash(&text[at..end]))
}

fn hash(id: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(id);
    h.finish()
}

/// One collector's life: subscribe without `since`, count receipts, and after any close or
/// failure subscribe again `delay` later, until `stop`.
async fn collector(
    cfg: ClientConfig,
    me: Shared,
    delay: Duration,
    restarted: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match tokio_tungstenite::connect_async(cfg.signed_url()).await {
            Ok((mut ws, _)) => loop {
                let m = match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                    Err(_) if stop.load(Ordering::Relaxed) => return,
                    Err(_) => continue,
                    Ok(None) => break,
                    Ok(Some(m)) => m,
                };
                match m {
                    Ok(Message::Text(t)) => {
                        if let Some(id) = receipt_id(t.as_bytes()) {
                            let mut c = me.lock().unwrap_or_else(|e| e.into_inner());
                            if !c.seen.insert(id) {
                                c.dup += 1;
                            }
                            if restarted.load(Ordering::Relaxed) {
                                c.after_restart += 1;
                            }
                        }
                    }
                    Ok(Message::Close(f)) => {
                        let code = f.map(|f| u16::from(f.code)).unwrap_or(0);
                        let mut c = me.lock().unwrap_or_else(|e| e.into_inner());
                        match code {
                            1011 => c.refused += 1,
                            4001 => c.slow += 1,
                            _ => {}
                        }
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            },
            Err(tokio_tungstenite::tungstenite::Error::Http(_)) => {
                me.lock().unwrap_or_else(|e| e.into_inner()).refused += 1;
            }
            Err(_) => {} // not listening (down): try again later
        }
        tokio::time::sleep(delay).await;
    }
}

/// The distributor's configuration for the run (only keys every build reads).
fn config(dir: &std::path::Path, sim: &ArchiverSim, port: u16) -> anyhow::Result<PathBuf> {
    let firehose_dbstore::Layout::Directory(db) = sim.layout().clone() else {
        anyhow::bail!("the simulator writes a database directory")
    };
    let path = dir.join("distributor-config.json");
    let cfg = serde_json::json!({
        "DISTRIBUTOR_IP": "127.0.0.1",
        "DISTRIBUTOR_PORT": port,
        "DATA_LOG_DIR": sim.log_dir(),
        "ARCHIVER_DB_DIR": db,
        "RESUME_STATE_FILE": dir.join("resume-state.json"),
        "CLIENT_QUEUE_CAPACITY": 8192,
    });
    std::fs::write(&path, cfg.to_string())?;
    Ok(path)
}

fn start(
    bin: &std::path::Path,
    cfg: &std::path::Path,
    addr: &str,
) -> anyhow::Result<ServerProcess> {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--config")
        .arg(cfg)
        .args(["--log-level", "warn"])
        .stdout(std::process::Stdio::null());
    let mut server = ServerProcess::spawn(cmd)?;
    server.wait_listening(addr, Duration::from_secs(30))?;
    Ok(server)
}

/// Receipts written so far, with when.
type Written = Arc<Mutex<Vec<(u64, Instant)>>>;

/// The archiver: `rate` receipts a second in 4 cycles a second, until `stop`.
fn archiver(mut sim: ArchiverSim, written: Written, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let tick = Duration::from_millis(250);
    let mut due = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for r in sim.write_cycle()? {
            if let Record::Receipt(r) = r {
                let id = hash(r.receipt_id.as_bytes());
                written
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((id, Instant::now()));
            }
        }
        due += tick;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}

/// Counts the collectors that have every receipt in `ids`.
fn caught_up(herd: &[Shared], ids: &[u64], live: &mut [Option<Duration>], since: Instant) {
    for (c, at) in herd.iter().zip(live.iter_mut()) {
        if at.is_some() {
            continue;
        }
        let c = c.lock().unwrap_or_else(|e| e.into_inner());
        if ids.iter().all(|id| c.seen.contains(id)) {
            *at = Some(since.elapsed());
        }
    }
}

/// Runs the scenario and reports its figures.
pub async fn run(opts: HerdOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(opts.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(
        opts.rate >= 4,
        "--rate must be at least 4 (4 cycles a second)"
    );
    sys::raise_fd_limit(opts.clients as u64 * 2 + 256);
    let tmp = tempfile::Builder::new()
        .prefix("firehose-bench-herd-")
        .tempdir()?;
    let spec = FixtureSpec {
        cycles: 0,
        receipts_per_cycle: opts.rate / 4,
        txs_per_cycle: 0,
        receipt_bytes: opts.size,
        ..FixtureSpec::default()
    };
    let sim = ArchiverSim::create(tmp.path(), spec, 10_000)?;
    let port = sys::free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let cfg_path = config(tmp.path(), &sim, port)?;
    let bin = sys::find_bin("firehose-distributor", opts.server_bin.as_deref())?;
    let mut server = start(&bin, &cfg_path, &addr)?;
    let url = format!("ws://{addr}");
    let dev = PublicKey::from_hex(firehose_distributor::config::DEV_PUBLIC_KEY)?;

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let herd: Vec<Shared> = (0..opts.clients).map(|_| Shared::default()).collect();
    // Connect in waves of `connect_concurrency`, then wait until every session registered.
    for (i, me) in herd.iter().enumerate() {
        let cfg = ClientConfig::new(&url, crate::keys::collector(9, i), dev);
        tokio::spawn(collector(
            cfg,
            me.clone(),
            opts.reconnect_delay,
            restarted.clone(),
            stop.clone(),
        ));
        if (i + 1) % opts.connect_concurrency.max(1) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while crate::fanout::sessions(&addr).await.unwrap_or(0) < opts.clients {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the collectors did not all connect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let written = Written::default();
    let writer = {
        let (w, s) = (written.clone(), stop.clone());
        tokio::task::spawn_blocking(move || archiver(sim, w, s))
    };
    tokio::time::sleep(opts.before).await;
    let sigterm = Instant::now();
    server.terminate(Duration::from_secs(10))?;
    tokio::time::sleep(opts.outage.saturating_sub(sigterm.elapsed())).await;
    server = start(&bin, &cfg_path, &addr)?;
    let restart = Instant::now();
    restarted.store(true, Ordering::Relaxed);
    // Back live: every receipt written before the restart (the backlog included).
    let backlog: Vec<u64> = written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, at)| *at < restart)
        .map(|(id, _)| *id)
        .collect();
    let mut live: Vec<Option<Duration>> = vec![None; opts.clients];
    let until = restart + opts.after.max(Duration::from_secs(120));
    while live.iter().any(Option::is_none) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        caught_up(&herd, &backlog, &mut live, restart);
    }
    tokio::time::sleep(opts.after.saturating_sub(restart.elapsed())).await;
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    // Drain: every receipt written, or the drain timeout.
    let all: Vec<u64> = written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let drain_until = Instant::now() + opts.drain;
    let missing = || -> u64 {
        herd.iter()
            .map(|c| {
                let c = c.lock().unwrap_or_else(|e| e.into_inner());
                all.iter().filter(|id| !c.seen.contains(id)).count() as u64
            })
            .sum()
    };
    let mut lost = missing();
    while lost > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        lost = missing();
    }
    let metrics = crate::fanout::http_get(&addr, "/metrics")
        .await
        .unwrap_or_default();
    let metric = |name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    drop(server);

    let mut live_ms: Vec<u64> = live
        .iter()
        .flatten()
        .map(|d| d.as_millis() as u64)
        .collect();
    let back = live_ms.len() as u64;
    let lat = Summary::of(&mut live_ms);
    let (mut dup, mut resent, mut refused, mut slow) = (0, 0, 0, 0);
    for c in &herd {
        let c = c.lock().unwrap_or_else(|e| e.into_inner());
        dup += c.dup;
        resent += c.after_restart;
        refused += c.refused;
        slow += c.slow;
    }
    let mut r = Report::new("herd");
    r.text("server", "server", bin.display().to_string())
        .int("clients", "clients", opts.clients as u64, "")
        .int("rate", "receipts written", opts.rate, "/s")
        .float("outage_s", "outage", opts.outage.as_secs_f64(), 1, "s")
        .int("receipts", "receipts written in all", all.len() as u64, "")
        .int(
            "backlog",
            "receipts written before the restart",
            backlog.len() as u64,
            "",
        )
        .int("back_live", "collectors back live", back, "")
        .float(
            "live_p50_s",
            "back live after restart p50",
            lat.p50 as f64 / 1000.0,
            1,
            "s",
        )
        .float(
            "live_max_s",
            "back live after restart max",
            lat.max as f64 / 1000.0,
            1,
            "s",
        )
        .int("refused", "refusals (1011, failed upgrades)", refused, "")
        .int("slow_closes", "4001 closes", slow, "")
        .int("resent", "receipts delivered after the restart", resent, "")
        .int("duplicates", "receipts received twice", dup, "")
        .float(
            "duplicates_pct",
            "duplicates / delivered after restart",
            if resent == 0 {
                0.0
            } else {
                dup as f64 * 100.0 / resent as f64
            },
            2,
            "%",
        )
        .int(
            "lost",
            "receipts missing at the end (lost, or still not sent after the drain)",
            lost,
            "",
        );
    if let Some(n) = metric("firehose_distributor_resumes_from_replay_total") {
        r.int(
            "from_replay",
            "resumes from the replay buffer (server)",
            n,
            "",
        );
    }
    if let Some(n) = metric("firehose_distributor_implicit_resumes_total") {
        r.int("implicit_resumes", "implicit resumes (server)", n, "");
    }
    Ok(r)
}
