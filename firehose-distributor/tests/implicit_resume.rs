//! Nothing lost across disconnects for a collector that never sends `since` (as
//! relayer-collector): it reconnects after a delay with a fresh subscription, and the
//! distributor back-fills what it missed, (a) across a SIGKILL and restart of the distributor
//! while the archiver writes, and (b) across a cut connection and the reconnect delay.
//! Every entry written after the collector first connected arrives, duplicates allowed.

use firehose_testkit as common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use firehose_client::{Client, ClientConfig};
use firehose_core::crypto::KeyPair;
use firehose_core::records::Record;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_sim::ArchiverSim;

use common::clients::Seen;

/// relayer-collector's behaviour with one key (see [`common::clients::relayer_like`]).
fn collector(url: String, delay: Duration, cut: Arc<tokio::sync::Notify>) -> Seen {
    common::clients::relayer_like(url, [77; 32], delay, Some(cut))
}

fn start(cfg: &std::path::Path) -> common::process::Proc {
    common::process::start_binary(env!("CARGO_BIN_EXE_firehose-distributor"), cfg, "warn")
}

/// Waits until `seen` holds every record of `want` (60 s at most); the duplicates.
async fn wait_all(seen: &Seen, want: &[Record], what: &str) -> usize {
    for _ in 0..600 {
        let done = {
            let s = seen.lock().unwrap();
            let all = want
                .iter()
                .all(|r| s.contains_key(&(r.data_type(), r.id().to_owned())));
            all.then(|| s.values().map(|n| n - 1).sum())
        };
        if let Some(dups) = done {
            return dups;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = seen.lock().unwrap();
    let missing: Vec<_> = want
        .iter()
        .filter(|r| !s.contains_key(&(r.data_type(), r.id().to_owned())))
        .map(|r| (r.data_type(), r.id().to_owned()))
        .collect();
    panic!(
        "{what}: {} of {} missing, e.g. {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_without_since_misses_nothing_across_a_restart_and_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        cycles: 0,
        receipts_per_cycle: 10,
        txs_per_cycle: 10,
        receipt_bytes: 512,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 200).unwrap();
    let (cfg, port) = common::process::sim_config(dir.path(), &sim);
    let state = dir.path().join("resume-state.json");
    let mut child = start(&cfg);
    let url = format!("ws://127.0.0.1:{port}");
    let cut = Arc::new(tokio::sync::Notify::new());
    let seen = collector(url.clone(), Duration::from_millis(500), cut.clone());
    // Connected and live.
    let mut want = Vec::new();
    for _ in 0..100 {
        let probe = sim.write_cycle().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = seen.lock().unwrap();
        if probe
            .iter()
            .all(|r| s.contains_key(&(r.data_type(), r.id().to_owned())))
        {
            break;
        }
    }
    for _ in 0..5 {
        want.extend(sim.write_cycle().unwrap());
    }
    wait_all(&seen, &want, "live").await;
    // Positions are saved every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // (a) SIGKILL while the archiver writes; written while it is down; restarted.
    common::process::signal(&child, "-KILL");
    child.wait().unwrap();
    for _ in 0..10 {
        want.extend(sim.write_cycle().unwrap());
    }
    let mut child = start(&cfg);
    for _ in 0..5 {
        want.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dups_a = wait_all(
        &seen,
        &want,
        "after the distributor was killed and restarted",
    )
    .await;

    // (b) The collector's connection is cut; entries written during its reconnect delay.
    cut.notify_one();
    for _ in 0..10 {
        want.extend(sim.write_cycle().unwrap());
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..5 {
        want.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dups_b = wait_all(&seen, &want, "after a cut connection").await;
    eprintln!(
        "{} entries, every one received; duplicates {dups_a} after the restart, {dups_b} in all",
        want.len()
    );
    let metrics = reqwest_metrics(port).await;
    assert!(
        !metrics.contains("firehose_distributor_implicit_resumes_total 0\n"),
        "{metrics}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    assert!(state.exists(), "positions saved");
}

/// `/metrics` as Prometheus text.
async fn reqwest_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A collector that joined while nothing was being written (its start point is the
/// archiver's newest rows, not an empty one): after a SIGKILL and restart it still gets what
/// was written meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_joined_an_idle_stream_is_resumed_too() {
    let dir = tempfile::tempdir().unwrap();
    let spec = FixtureSpec {
        cycles: 0,
        receipts_per_cycle: 10,
        txs_per_cycle: 10,
        receipt_bytes: 256,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(dir.path(), spec, 200).unwrap();
    // The network had been running: the archiver has cycles before the distributor starts.
    for _ in 0..3 {
        sim.write_cycle().unwrap();
    }
    let (cfg, port) = common::process::sim_config(dir.path(), &sim);
    let mut child = start(&cfg);
    let seen = collector(
        format!("ws://127.0.0.1:{port}"),
        Duration::from_millis(300),
        Arc::new(tokio::sync::Notify::new()),
    );
    // Connected (a session exists) and its start point saved.
    let state = dir.path().join("resume-state.json");
    for _ in 0..100 {
        if std::fs::read_to_string(&state).is_ok_and(|t| t.contains("receipt")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        state.exists(),
        "the start point is saved before any entry is sent"
    );
    common::process::signal(&child, "-KILL");
    child.wait().unwrap();
    let mut want = Vec::new();
    for _ in 0..5 {
        want.extend(sim.write_cycle().unwrap());
    }
    let mut child = start(&cfg);
    wait_all(&seen, &want, "written while the distributor was down").await;
    let _ = child.kill();
    let _ = child.wait();
}

/// An implicit resume past `IMPLICIT_RESUME_MAX` is cut: the collector gets that many, then
/// goes live (new entries arrive), and the cut is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implicit_resume_past_its_maximum_goes_live_and_counts_the_gap() {
    let mut run = common::run::start(common::run::spec(256), 10_000, |c| {
        c.implicit_resume_max = 20;
        c.implicit_resume_rate = 0;
    })
    .await;
    let dev = run.d.public_key();
    let cfg = ClientConfig::new(&run.url, KeyPair::from_seed([78; 32]), dev);
    // First connection: live, and remembered.
    let first = Client::connect(&cfg).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    drop(first);
    common::run::wait_sessions(&run.d, 0).await;
    // 10 cycles of 11 entries while it is away: more than the maximum.
    for _ in 0..10 {
        run.sim.write_cycle().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sub = Client::connect(&cfg).await.unwrap();
    let mut got = 0;
    while got < 20 {
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the back-fill")
            .unwrap()
            .unwrap();
        got += 1;
    }
    // Then live: a new cycle arrives whole.
    let fresh = run.sim.write_cycle().unwrap();
    let mut ids: Vec<String> = fresh.iter().map(|r| r.id().to_owned()).collect();
    while !ids.is_empty() {
        let r = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("live entries after the cut")
            .unwrap()
            .unwrap();
        ids.retain(|id| id != r.record.id());
    }
    let metrics = common::get(&run.url, "/metrics").await;
    assert!(
        metrics.contains("firehose_distributor_implicit_resumes_cut_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("firehose_distributor_implicit_resume_entries_total 20\n"));
}
