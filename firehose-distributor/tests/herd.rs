//! Nothing lost at scale: positions exact to what the collector's TCP acknowledged, a herd of
//! collectors returning after a restart served from the replay buffer (no refusal, no slot,
//! no duplicates), and strangers that subscribe and leave never push out a working
//! collector's position.

use firehose_testkit as common;

use std::time::Duration;

use firehose_client::{Client, ClientConfig};
use firehose_core::crypto::KeyPair;
use firehose_core::records::Record;
use firehose_dbstore::fixture::FixtureSpec;
use firehose_sim::ArchiverSim;

use common::clients::{relayer_like, Seen};

fn has_all(seen: &Seen, want: &[Record]) -> bool {
    let s = seen.lock().unwrap();
    want.iter()
        .all(|r| s.contains_key(&(r.data_type(), r.id().to_owned())))
}

/// Receptions of `want`'s records beyond the first.
fn duplicates(seen: &Seen, want: &[Record]) -> usize {
    let s = seen.lock().unwrap();
    want.iter()
        .filter_map(|r| s.get(&(r.data_type(), r.id().to_owned())))
        .map(|n| n - 1)
        .sum()
}

fn spec() -> FixtureSpec {
    FixtureSpec {
        cycles: 0,
        receipts_per_cycle: 5,
        txs_per_cycle: 5,
        receipt_bytes: 256,
        ..FixtureSpec::default()
    }
}

/// 60 relayer-like collectors are live; the distributor stops (SIGTERM) while the archiver
/// writes; it starts again and every collector, reconnecting without `since`, is caught up
/// from the replay buffer: every entry arrives, nobody is refused, no back-fill slot or
/// database back-fill is used, and nothing is sent twice (the positions were exact to what
/// each collector's TCP acknowledged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_herd_returning_after_a_restart_is_caught_up_from_the_replay_buffer() {
    const N: u8 = 60;
    let dir = tempfile::tempdir().unwrap();
    let mut sim = ArchiverSim::create(dir.path(), spec(), 200).unwrap();
    let (cfg, port) = common::process::sim_config(dir.path(), &sim);
    let bin = env!("CARGO_BIN_EXE_firehose-distributor");
    let child = common::process::start_binary(bin, &cfg, "warn");
    let url = format!("ws://127.0.0.1:{port}");
    let herd: Vec<Seen> = (0..N)
        .map(|i| relayer_like(url.clone(), [100 + i; 32], Duration::from_millis(300), None))
        .collect();
    // Every collector live: a probe cycle reaches all of them.
    // (A collector that connects after a probe never gets it: try again with a new one.)
    let mut live = false;
    'probes: for _ in 0..30 {
        let probe = sim.write_cycle().unwrap();
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if herd.iter().all(|s| has_all(s, &probe)) {
                live = true;
                break 'probes;
            }
        }
    }
    assert!(live, "the herd went live");
    let mut before = Vec::new();
    for _ in 0..3 {
        before.extend(sim.write_cycle().unwrap());
    }
    for _ in 0..100 {
        if herd.iter().all(|s| has_all(s, &before)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::process::signal(&child, "-TERM");
    let mut child = child;
    child.wait().unwrap();
    // Written while the distributor is down.
    let mut want = Vec::new();
    for _ in 0..8 {
        want.extend(sim.write_cycle().unwrap());
    }
    let _child = common::process::start_binary(bin, &cfg, "warn");
    for _ in 0..2 {
        want.extend(sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut done = false;
    for _ in 0..600 {
        if herd.iter().all(|s| has_all(s, &want)) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: usize = herd
        .iter()
        .map(|s| {
            let s = s.lock().unwrap();
            want.iter()
                .filter(|r| !s.contains_key(&(r.data_type(), r.id().to_owned())))
                .count()
        })
        .sum();
    assert!(done, "{missing} entries missing across the herd");
    let dups: usize = herd.iter().map(|s| duplicates(s, &want)).sum();
    let resent = want.len() * usize::from(N);
    assert!(
        dups * 100 < resent,
        "{dups} duplicates for {resent} entries re-sent (1% allowed)"
    );
    let metric = |name| common::clients::metric(&url, name);
    assert_eq!(
        metric("firehose_distributor_resumes_refused_total").await,
        0
    );
    assert_eq!(
        metric("firehose_distributor_resumes_from_replay_total").await,
        u64::from(N),
        "every collector caught up from the replay buffer"
    );
    eprintln!(
        "{N} collectors, {} entries written during the outage: {dups} duplicates, 0 refused",
        want.len()
    );
}

/// A collector that reads is remembered at the last message its TCP acknowledged (before:
/// only once 4 MiB more had been written after it, so a resume repeated up to 4 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_exact_to_what_the_collector_acknowledged() {
    let mut run = common::run::start(spec(), 10_000, |_| {}).await;
    let reader = KeyPair::from_seed([7; 32]).public_key();
    let cfg = ClientConfig::new(&run.url, KeyPair::from_seed([7; 32]), run.d.public_key());
    let mut sub = Client::connect(&cfg).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    let mut written = Vec::new();
    for _ in 0..3 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    common::receive_all(&mut sub, &written, "the reading collector").await;
    let last = written
        .iter()
        .rev()
        .find(|r| matches!(r, Record::Receipt(_)))
        .unwrap();
    let want = firehose_core::since::RecordKey::of(last);
    let mut exact = false;
    for _ in 0..100 {
        let p = run.d.positions().get(&reader).unwrap();
        if p.receipt.as_ref().is_some_and(|k| k.id == *want.id) {
            exact = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        exact,
        "the reading collector's point reaches the last receipt it acknowledged"
    );
}

/// With the allow-list off, strangers that subscribe and leave (never delivered anything)
/// do not push a working collector's position out of the cap: it resumes with what it
/// missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_strangers_do_not_evict_a_delivered_collector() {
    let mut run = common::run::start(spec(), 10_000, |c| c.resume_max_keys = 20).await;
    let worker = KeyPair::from_seed([9; 32]).public_key();
    let cfg = ClientConfig::new(&run.url, KeyPair::from_seed([9; 32]), run.d.public_key());
    let mut sub = Client::connect(&cfg).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    let first = run.sim.write_cycle().unwrap();
    for _ in 0..first.len() {
        sub.next().await.unwrap().unwrap();
    }
    for _ in 0..100 {
        if run.d.positions().was_delivered(&worker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(run.d.positions().was_delivered(&worker));
    drop(sub);
    common::run::wait_sessions(&run.d, 0).await;
    // 60 strangers (three times the cap) subscribe and leave.
    for i in 0..60u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        seed[31] = 0xee;
        let c = ClientConfig::new(&run.url, KeyPair::from_seed(seed), run.d.public_key());
        let s = Client::connect(&c).await.unwrap();
        drop(s);
    }
    common::run::wait_sessions(&run.d, 0).await;
    assert!(run.d.positions().len() <= 20);
    assert!(
        run.d.positions().get(&worker).is_some(),
        "the working collector's position survived the churn"
    );
    // Written while it was away: it gets them when it comes back without `since`.
    let missed = run.sim.write_cycle().unwrap();
    let mut sub = Client::connect(&cfg).await.unwrap();
    common::receive_all(&mut sub, &missed, "the working collector after the churn").await;
}

/// A live-only subscription with a collector's key (`firehose tail` beside it) replaces the
/// collector's session but does not move its remembered point: the collector, back without
/// `since`, gets what it missed meanwhile (before: the live session's point replaced the
/// collector's, and the entries in between were skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_only_session_of_the_same_key_leaves_the_point_alone() {
    let mut run = common::run::start(spec(), 10_000, |_| {}).await;
    let cfg = ClientConfig::new(&run.url, KeyPair::from_seed([5; 32]), run.d.public_key());
    let mut sub = Client::connect(&cfg).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    let first = run.sim.write_cycle().unwrap();
    common::receive_all(&mut sub, &first, "the collector, live").await;
    let mut live_cfg = ClientConfig::new(&run.url, KeyPair::from_seed([5; 32]), run.d.public_key());
    live_cfg.implicit_resume = false;
    let mut live = Client::connect(&live_cfg).await.unwrap();
    // The collector's session is replaced (1000).
    assert!(
        tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("the replaced session closes")
            .is_none_or(|r| r.is_err()),
        "the collector's session was replaced"
    );
    let missed = run.sim.write_cycle().unwrap();
    common::receive_all(&mut live, &missed, "the live-only session").await;
    drop(live);
    common::run::wait_sessions(&run.d, 0).await;
    let mut back = Client::connect(&cfg).await.unwrap();
    common::receive_all(&mut back, &missed, "the collector, back without since").await;
}
