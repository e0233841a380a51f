//! Round two of the attacks: each test runs the attack on real sockets and checks that it
//! costs only the attacker.

use firehose_testkit as common;

use std::time::Duration;

use common::run::{spec, start, wait_sessions};
use firehose_client::{Client, ClientConfig};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::Record;
use firehose_core::subscription::{SubscriptionRequest, SubscriptionType};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::auth::now_ms;

/// The status of an upgrade with `keys`' subscription stamped `ts` (101 when accepted).
async fn upgrade_status(base: &str, keys: &KeyPair, ts: u64) -> u16 {
    let req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), ts);
    let url = format!(
        "{base}/?data={}",
        req.signed_query(&Crypto::default(), keys)
    );
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, resp)) => {
            drop(ws);
            resp.status().as_u16()
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// One listed key floods the replay cache with distinct signed subscriptions: only that key
/// is refused; every other key subscribes at once (before: every key got 401 for ~45 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_cache_flood_costs_only_the_flooding_key() {
    let (flooder, other, third) = (
        KeyPair::from_seed([41; 32]),
        KeyPair::from_seed([42; 32]),
        KeyPair::from_seed([43; 32]),
    );
    let run = start(spec(256), 1000, |_| {}).await;
    let base = run.url.clone();
    let t0 = now_ms();
    let mut accepted = 0;
    for i in 0..2000u64 {
        if upgrade_status(&base, &flooder, t0 - i).await == 101 {
            accepted += 1;
        }
    }
    assert_eq!(
        accepted,
        firehose_distributor::auth::REPLAY_PER_KEY_MAX,
        "the flooding key gets its slots, then 401"
    );
    assert_eq!(upgrade_status(&base, &other, now_ms()).await, 101);
    assert_eq!(upgrade_status(&base, &third, now_ms()).await, 101);
    assert_eq!(upgrade_status(&base, &flooder, now_ms()).await, 401);
    wait_sessions(&run.d, 0).await;
}

/// A distributor over a database of about 16 MB of receipts and original transactions (far
/// more than socket buffers hold), and the records a back-fill from the start sends.
async fn big_history() -> (common::run::Running, Vec<Record>) {
    let spec = FixtureSpec {
        cycles: 0,
        receipts_per_cycle: 50,
        txs_per_cycle: 10,
        receipt_bytes: 8192,
        ..FixtureSpec::default()
    };
    // No replay buffer: these are the database back-fill's policies (slots, yields).
    let mut run = start(spec, 100_000, |c| {
        c.backfill_send_timeout_ms = 120_000;
        c.replay_buffer_bytes = 0;
    })
    .await;
    let mut written = Vec::new();
    for _ in 0..40 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    // A back-fill sends original transactions and receipts (cycles are not resumed here).
    written.retain(|r| !matches!(r, Record::Cycle(_)));
    (run, written)
}

/// A resuming collector of `seed` that never reads.
async fn stalled_resume(run: &common::run::Running, seed: u8) -> impl Sized {
    let mut c = ClientConfig::new(&run.url, KeyPair::from_seed([seed; 32]), run.d.public_key());
    c.since = Some(common::run::from_the_start());
    tokio_tungstenite::connect_async(c.signed_url())
        .await
        .unwrap()
        .0
}

/// A resuming collector that reads everything the history holds.
async fn resume_and_read_all(run: &common::run::Running, seed: u8, written: &[Record], who: &str) {
    let mut c = ClientConfig::new(&run.url, KeyPair::from_seed([seed; 32]), run.d.public_key());
    c.since = Some(common::run::from_the_start());
    let mut sub = Client::connect(&c).await.unwrap();
    common::receive_all(&mut sub, written, who).await;
}

/// One key opens 32 resuming sessions that never read, each replacing the one before: it
/// holds one back-fill slot, and another collector resumes at once (before: 1011 for 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_holds_one_backfill_slot() {
    let (run, written) = big_history().await;
    let mut hoarder = Vec::new();
    for _ in 0..32 {
        hoarder.push(stalled_resume(&run, 50).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let free = run.d.backfill_slots_available();
    assert!(
        free >= firehose_distributor::backfill::slots::MAX_BACKFILLS - 1,
        "a replaced session gives its slot back ({free} free)"
    );
    resume_and_read_all(&run, 51, &written, "a collector beside the hoarding key").await;
}

/// 32 keys resume and never read, holding every slot: a 33rd collector that resumes waits,
/// the stalled back-fills yield their slots to it (4001), and it gets everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_backfills_yield_their_slots_to_a_waiting_collector() {
    let (run, written) = big_history().await;
    let mut stalled = Vec::new();
    for seed in 0..32u8 {
        stalled.push(stalled_resume(&run, 100 + seed).await);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(run.d.backfill_slots_available(), 0, "every slot is held");
    resume_and_read_all(
        &run,
        200,
        &written,
        "a collector behind 32 stalled back-fills",
    )
    .await;
    let metrics = common::get(&run.url, "/metrics").await;
    assert!(
        !metrics.contains("firehose_distributor_backfills_yielded_total 0\n"),
        "{metrics}"
    );
    drop(stalled);
}

/// A shutdown (SIGTERM) while a collector is being back-filled: it gets a close frame with
/// 1001 (before: the socket was dropped, 1006).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_backfill_closes_with_1001() {
    let (mut run, written) = big_history().await;
    let mut c = ClientConfig::new(&run.url, KeyPair::from_seed([60; 32]), run.d.public_key());
    c.since = Some(common::run::from_the_start());
    let mut sub = Client::connect(&c).await.unwrap();
    let mut got = 0;
    while got < 100 {
        sub.next().await.unwrap().unwrap();
        got += 1;
    }
    run.shutdown();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
            Ok(Some(Ok(_))) => got += 1,
            Ok(Some(Err(firehose_client::ClientError::Closed { code, .. }))) => break code,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert!(
        got < written.len(),
        "the shutdown came during the back-fill"
    );
    assert_eq!(code, 1001);
}
