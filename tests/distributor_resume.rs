//! The distributor end to end on loopback: real files written like the archiver, real
//! websockets, collectors signed like Shardeum's: resuming with `since` (database, retained
//! logs, shared signatures, a resuming client across slow-consumer closes).

use firehose_testkit as common;

use common::run::{spec, start, wait_sessions};
use common::{assert_same_per_type, get};
use std::time::Duration;

use common::clients::{collector, metric, read_n};
use firehose_client::Client;
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::{DataType, Record};
use firehose_core::subscription::{SubscriptionRequest, SubscriptionType};
use firehose_distributor::auth::now_ms;

/// A resume point at the very end of every range (`u64::MAX` everywhere, written as exact
/// integers by a client that does not use canonical JSON; the signature covers the canonical
/// form, so it verifies) has nothing after it: no overflow (the back-fill used to panic and
/// close the session with 1011) and no wrap-around to the first rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_at_u64_max_backfills_nothing_and_goes_live() {
    let mut run = start(spec(300), 25, |_| {}).await;
    for _ in 0..3 {
        run.sim.write_cycle().unwrap();
    }
    let keys = KeyPair::from_seed([23; 32]);
    let end = serde_json::json!({"cycle": u64::MAX, "timestamp": u64::MAX, "id": "z".repeat(64)});
    let mut v = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), now_ms())
        .to_value();
    v["collectorInfo"]["since"] =
        serde_json::json!({"cycle": u64::MAX, "originalTx": end, "receipt": end});
    Crypto::default().sign_obj(&mut v, &keys).unwrap();
    let exact = serde_json::to_string(&v).unwrap();
    assert!(exact.contains("18446744073709551615"));
    let data: String =
        percent_encoding::utf8_percent_encode(&exact, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/?data={data}", run.url))
        .await
        .unwrap();
    wait_sessions(&run.d, 1).await;
    // It claims to have every record up to the end: the history is not sent (a wrap-around
    // would send it all), and live records at or before its point are skipped too.
    run.sim.write_cycle().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(1), futures::StreamExt::next(&mut ws))
            .await
            .is_err(),
        "nothing is sent: the collector has it all"
    );
    assert_eq!(
        run.d.hub().len(),
        1,
        "the session is alive (not closed with 1011)"
    );
    assert!(common::get(&run.url, "/metrics")
        .await
        .contains("firehose_distributor_resumes_refused_total 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_since_gets_exactly_what_was_missed_then_live() {
    let mut run = start(spec(300), 25, |_| {}).await;
    let mut cfg = collector(21, &run.d, &run.url);
    let mut since = firehose_core::since::Since::default();
    let mut written: Vec<Record> = Vec::new();
    let mut got: Vec<Record> = Vec::new();
    {
        let mut sub = Client::connect(&cfg).await.unwrap();
        wait_sessions(&run.d, 1).await;
        for _ in 0..3 {
            written.extend(run.sim.write_cycle().unwrap());
        }
        got.extend(read_n(&mut sub, written.len(), &mut since).await);
    }
    wait_sessions(&run.d, 0).await;
    // Missed while away (the logs rotate meanwhile).
    for _ in 0..4 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    cfg.since = Some(since.clone());
    let mut sub = Client::connect(&cfg).await.unwrap();
    // A writer keeps going during the back-fill and the handover.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut sim = run.sim;
    let writer = std::thread::spawn(move || {
        let mut more = Vec::new();
        for _ in 0..6 {
            more.extend(sim.write_cycle().unwrap());
            std::thread::sleep(Duration::from_millis(15));
        }
        done_tx.send(()).unwrap();
        more
    });
    let more = {
        let m = writer.join().unwrap();
        done_rx.recv().unwrap();
        m
    };
    written.extend(more);
    let rest = written.len() - got.len();
    got.extend(read_n(&mut sub, rest, &mut since).await);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sub.next())
            .await
            .is_err(),
        "no duplicates after the handover"
    );
    assert_same_per_type(&got, &written, "the collector");
}

/// gets byte-identical messages and none of them is signed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_over_the_same_rows_share_signatures() {
    use firehose_core::since::{PageKey, Since};
    // The database back-fill's sharing (the replay buffer shares the live bytes themselves).
    let mut run = start(spec(300), 25, |c| c.replay_buffer_bytes = 0).await;
    let mut rows = 0;
    for _ in 0..4 {
        let cycle = run.sim.write_cycle().unwrap();
        rows += cycle
            .iter()
            .filter(|r| r.data_type() != DataType::Cycle)
            .count();
    }
    let nothing_yet = PageKey {
        cycle: 0,
        timestamp: 0,
        id: String::new(),
    };
    let since = Since {
        cycle: None,
        original_tx: Some(nothing_yet.clone()),
        receipt: Some(nothing_yet),
    };
    let mut texts = Vec::new();
    for seed in [31, 32] {
        let mut cfg = collector(seed, &run.d, &run.url);
        cfg.since = Some(since.clone());
        let mut sub = Client::connect(&cfg).await.unwrap();
        let mut got = Vec::new();
        while got.len() < rows {
            let m = tokio::time::timeout(Duration::from_secs(20), sub.next_raw())
                .await
                .expect("the back-fill within 20 s")
                .expect("open")
                .expect("a message");
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                got.push(t.to_string());
            }
        }
        texts.push(got);
    }
    assert_eq!(texts[0], texts[1], "the same bytes for both collectors");
    let shared = metric(
        &run.url,
        "firehose_distributor_backfill_signatures_shared_total",
    )
    .await;
    let signed = metric(&run.url, "firehose_distributor_backfill_signatures_total").await;
    assert_eq!((signed, shared), (rows as u64, rows as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_covers_entries_logged_before_the_archiver_committed_them() {
    let mut run = start(spec(200), 12, |_| {}).await;
    let mut cfg = collector(22, &run.d, &run.url);
    let mut since = firehose_core::since::Since::default();
    let mut written: Vec<Record> = Vec::new();
    let mut got: Vec<Record> = Vec::new();
    {
        let mut sub = Client::connect(&cfg).await.unwrap();
        wait_sessions(&run.d, 1).await;
        written.extend(run.sim.write_cycle().unwrap());
        got.extend(read_n(&mut sub, written.len(), &mut since).await);
    }
    wait_sessions(&run.d, 0).await;
    for _ in 0..2 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    // The archiver appends a cycle to its logs; its database commit lags behind. The live
    // reader publishes it while nobody is connected.
    let pending = run.sim.write_cycle_logs_first().unwrap();
    written.extend(pending.iter().cloned());
    let target = written
        .iter()
        .filter(|r| r.data_type() == DataType::Receipt)
        .count() as u64;
    for _ in 0..500 {
        if run.d.entries_read(DataType::Receipt) >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(run.d.entries_read(DataType::Receipt), target);
    // Resuming now: SQLite has the first three cycles only; the fourth is in the logs.
    cfg.since = Some(since.clone());
    let mut sub = Client::connect(&cfg).await.unwrap();
    let rest = written.len() - got.len();
    got.extend(read_n(&mut sub, rest, &mut since).await);
    // The commit lands, and live goes on.
    run.sim.commit(&pending).unwrap();
    let live = run.sim.write_cycle().unwrap();
    got.extend(read_n(&mut sub, live.len(), &mut since).await);
    written.extend(live);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sub.next())
            .await
            .is_err(),
        "no duplicates"
    );
    assert_same_per_type(&got, &written, "the collector");
    // The readers' metrics count what they read, per type.
    let metrics = get(&run.url, "/metrics").await;
    for t in DataType::ALL {
        let n = written.iter().filter(|r| r.data_type() == t).count();
        let line = format!(
            "firehose_distributor_reader_entries_total{{data_type=\"{}\"}} {n}\n",
            t.log_name()
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("firehose_distributor_lag_ms{data_type=\"receipt\"} "));
    assert!(!metrics.contains("firehose_distributor_lag_ms{data_type=\"receipt\"} -1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_client_survives_slow_consumer_closes_without_gap_or_duplicate() {
    use firehose_client::ResumingClient;
    // A queue of 4 messages: every cycle (11 records published at once) overflows it, so the
    // session is closed with 4001 again and again; the client resumes each time.
    let mut run = start(spec(2000), 30, |c| c.client_queue_capacity = 4).await;
    let mut since = firehose_core::since::Since::default();
    for r in run.sim.write_cycle().unwrap() {
        since.advance(&r);
    }
    let mut cfg = collector(23, &run.d, &run.url);
    cfg.since = Some(since);
    let mut client = ResumingClient::new(cfg);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let r = client.next().await.expect("verified");
            if tx.send((r.record, client.connects())).is_err() {
                return;
            }
        }
    });
    let mut written = Vec::new();
    for _ in 0..6 {
        written.extend(run.sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut got = Vec::new();
    let mut connects = 0;
    while got.len() < written.len() {
        let (r, c) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {}", got.len(), written.len()))
            .unwrap();
        got.push(r);
        connects = c;
    }
    if let Ok(Some((extra, _))) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
    {
        panic!(
            "after all {} records, an extra one: {} {} of cycle {}",
            written.len(),
            extra.data_type(),
            extra.id(),
            extra.cycle()
        );
    }
    reader.abort();
    let drops = run.d.hub().metrics.slow_consumer_drops.get();
    assert!(drops >= 1, "the policy closed it");
    assert!(
        connects >= 2,
        "it reconnected ({connects} connects, {drops} drops)"
    );
    assert_same_per_type(&got, &written, "the collector");
}
