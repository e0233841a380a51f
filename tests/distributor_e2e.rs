//! The distributor end to end on loopback: real files written like the archiver, real
//! websockets, collectors signed like Shardeum's.

// The distributor's test helpers (a distributor on a simulated archiver, signed HTTP).
use firehose_testkit as common;

use common::run::{spec, start, wait_sessions};
use common::{assert_same_per_type, get};
use std::time::Duration;

use firehose_client::{Client, ClientConfig, ClientError};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::{DataType, Record};
use firehose_core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::auth::now_ms;
use firehose_distributor::config::Subscriber;
use firehose_distributor::Distributor;

fn collector(seed: u8, d: &Distributor, url: &str) -> ClientConfig {
    ClientConfig::new(url, KeyPair::from_seed([seed; 32]), d.public_key())
}

fn status_of(err: ClientError) -> u16 {
    match err {
        ClientError::Ws(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            resp.status().as_u16()
        }
        other => panic!("expected an HTTP error, got {other}"),
    }
}

/// A signed request URL with full control over its parts.
fn url_with(base: &str, signer: &KeyPair, sender: &KeyPair, ts: u64) -> String {
    let crypto = Crypto::default();
    let mut v =
        SubscriptionRequest::new(SubscriptionType::Firehose, sender.public_key(), ts).to_value();
    crypto.sign_obj(&mut v, signer).unwrap();
    format!("{base}/?data={}", encode_query_value(&v))
}

async fn connect_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_rules() {
    let k1 = KeyPair::from_seed([1; 32]);
    let k2 = KeyPair::from_seed([2; 32]);
    let k3 = KeyPair::from_seed([3; 32]);
    let k4 = KeyPair::from_seed([4; 32]);
    let sub = |k: &KeyPair, exp: u64| Subscriber {
        public_key: k.public_key().to_hex(),
        expiration_timestamp: exp,
        subscription_type: SubscriptionType::Firehose.as_str().to_owned(),
    };
    let run = start(spec(200), 1000, |c| {
        c.limit_to_subscribers_only = true;
        c.subscribers = vec![
            sub(&k1, 0),
            sub(&k2, now_ms() + 3_600_000),
            sub(&k4, now_ms() - 1),
        ];
    })
    .await;
    let base = &run.url;
    let now = now_ms();
    assert_eq!(connect_status(&format!("{base}/")).await, 401, "no data");
    assert_eq!(
        connect_status(&format!("{base}/?data=%7B%7D")).await,
        401,
        "not a request"
    );
    let unsigned =
        SubscriptionRequest::new(SubscriptionType::Firehose, k1.public_key(), now).to_value();
    assert_eq!(
        connect_status(&format!("{base}/?data={}", encode_query_value(&unsigned))).await,
        401,
        "unsigned"
    );
    assert_eq!(
        connect_status(&url_with(base, &k2, &k1, now)).await,
        401,
        "owner is not the sender"
    );
    assert_eq!(
        connect_status(&url_with(base, &k3, &k3, now)).await,
        401,
        "not subscribed"
    );
    assert_eq!(
        connect_status(&url_with(base, &k4, &k4, now)).await,
        401,
        "expired"
    );
    assert_eq!(
        connect_status(&url_with(base, &k1, &k1, now - 60_000)).await,
        401,
        "stale"
    );
    assert_eq!(
        connect_status(&url_with(base, &k1, &k1, now + 60_000)).await,
        401,
        "future"
    );
    // Tampered: a valid request with one more field.
    let crypto = Crypto::default();
    let mut v =
        SubscriptionRequest::new(SubscriptionType::Firehose, k1.public_key(), now).to_value();
    crypto.sign_obj(&mut v, &k1).unwrap();
    v["collectorInfo"]["timestamp"] = serde_json::json!(now + 1);
    assert_eq!(
        connect_status(&format!("{base}/?data={}", encode_query_value(&v))).await,
        401,
        "bad signature"
    );
    // Valid, then replayed.
    let good = url_with(base, &k1, &k1, now);
    assert_eq!(connect_status(&good).await, 101, "valid");
    assert_eq!(connect_status(&good).await, 401, "replayed");
    // The same request with its signature in upper or mixed case is the same request.
    let sig = {
        let mut v = SubscriptionRequest::new(SubscriptionType::Firehose, k1.public_key(), now + 2)
            .to_value();
        crypto.sign_obj(&mut v, &k1).unwrap();
        v
    };
    let recased = |f: fn(&str) -> String| {
        let mut v = sig.clone();
        let s = v["sign"]["sig"].as_str().unwrap().to_owned();
        v["sign"]["sig"] = serde_json::json!(f(&s));
        format!("{base}/?data={}", encode_query_value(&v))
    };
    assert_eq!(
        connect_status(&recased(str::to_uppercase)).await,
        101,
        "first use"
    );
    assert_eq!(
        connect_status(&recased(str::to_lowercase)).await,
        401,
        "replayed in lower case"
    );
    let mixed = |s: &str| {
        s.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    };
    assert_eq!(
        connect_status(&recased(mixed)).await,
        401,
        "replayed in mixed case"
    );
    // A timestamp of u64::MAX is refused, not wrapped.
    assert_eq!(
        connect_status(&url_with(base, &k1, &k1, u64::MAX)).await,
        401,
        "u64::MAX"
    );
    // A subscriber that has not expired yet (the original's inverted rule would refuse it).
    assert_eq!(
        connect_status(&url_with(base, &k2, &k2, now_ms())).await,
        101
    );
    // The typed client says 401 too.
    let cfg = collector(3, &run.d, base);
    assert_eq!(status_of(Client::connect(&cfg).await.unwrap_err()), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_get_every_entry_once_in_order_through_rotation() {
    let mut run = start(spec(400), 20, |_| {}).await;
    let clients: Vec<ClientConfig> = (0..50)
        .map(|i| collector(10 + i, &run.d, &run.url))
        .collect();
    let clients: &'static [ClientConfig] = Box::leak(clients.into_boxed_slice());
    let mut subs = Vec::new();
    for c in clients {
        subs.push(Client::connect(c).await.unwrap());
    }
    wait_sessions(&run.d, 50).await;
    // 12 cycles: 11 entries each; receipts and txs rotate every 4 cycles, cycles every 20.
    let mut written: Vec<Record> = Vec::new();
    for _ in 0..12 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    let expect = |t: DataType| -> Vec<String> {
        written
            .iter()
            .filter(|r| r.data_type() == t)
            .map(|r| r.id().to_owned())
            .collect()
    };
    let mut tasks = Vec::new();
    for mut sub in subs {
        let n = written.len();
        tasks.push(tokio::spawn(async move {
            let mut got: Vec<(DataType, String)> = Vec::new();
            while got.len() < n {
                let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
                    .await
                    .expect("timed out")
                    .expect("stream ended")
                    .expect("verified message");
                got.push((m.record.data_type(), m.record.id().to_owned()));
            }
            // Nothing more (no duplicates).
            assert!(tokio::time::timeout(Duration::from_millis(300), sub.next())
                .await
                .is_err());
            got
        }));
    }
    for t in tasks {
        let got = t.await.unwrap();
        for dt in DataType::ALL {
            let ids: Vec<String> = got
                .iter()
                .filter(|(t, _)| *t == dt)
                .map(|(_, id)| id.clone())
                .collect();
            assert_eq!(ids, expect(dt), "{dt}");
        }
    }
    assert_eq!(
        run.d
            .hub()
            .metrics
            .slow_consumer_drops
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_key_closes_the_first_with_1000_and_removal_closes_with_1001() {
    let k = KeyPair::from_seed([7; 32]);
    let run = start(spec(200), 100, |c| {
        c.limit_to_subscribers_only = true;
        c.subscribers = vec![Subscriber {
            public_key: k.public_key().to_hex(),
            expiration_timestamp: 0,
            subscription_type: SubscriptionType::Firehose.as_str().to_owned(),
        }];
    })
    .await;
    let cfg = collector(7, &run.d, &run.url);
    let mut first = Client::connect(&cfg).await.unwrap();
    wait_sessions(&run.d, 1).await;
    let mut second = Client::connect(&cfg).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), first.next())
        .await
        .unwrap()
    {
        Some(Err(ClientError::Closed { code, .. })) => assert_eq!(code, 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
    wait_sessions(&run.d, 1).await;
    // The subscriber is removed from the allow-list (what a reload does).
    run.d.update_subscribers(true, Vec::new());
    match tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .unwrap()
    {
        Some(Err(ClientError::Closed { code, .. })) => assert_eq!(code, 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    wait_sessions(&run.d, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_the_others_get_everything() {
    let mut run = start(
        FixtureSpec {
            receipts_per_cycle: 50,
            txs_per_cycle: 0,
            receipt_bytes: 16 * 1024,
            ..FixtureSpec::default()
        },
        10_000,
        |c| c.client_queue_capacity = 256,
    )
    .await;
    // The slow one: connects, never reads.
    let slow = collector(99, &run.d, &run.url);
    let (_slow_ws, _) = tokio_tungstenite::connect_async(slow.signed_url())
        .await
        .unwrap();
    let clients: Vec<ClientConfig> = (0..5)
        .map(|i| collector(40 + i, &run.d, &run.url))
        .collect();
    let clients: &'static [ClientConfig] = Box::leak(clients.into_boxed_slice());
    let mut subs = Vec::new();
    for c in clients {
        subs.push(Client::connect(c).await.unwrap());
    }
    wait_sessions(&run.d, 6).await;
    // 20 cycles of 50 receipts of 16 KiB: ~16 MB, more than the socket buffers hold.
    let mut n = 0;
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut sub| {
            tokio::spawn(async move {
                // Raw reads: these readers only count (signatures are checked in other tests),
                // so that they keep up even in a debug build.
                let mut count = 0usize;
                while count < 20 * 51 {
                    let m = tokio::time::timeout(Duration::from_secs(60), sub.next_raw())
                        .await
                        .unwrap()
                        .unwrap()
                        .unwrap();
                    match m {
                        tokio_tungstenite::tungstenite::Message::Text(_) => count += 1,
                        tokio_tungstenite::tungstenite::Message::Close(c) => {
                            panic!("closed: {c:?}")
                        }
                        _ => {}
                    }
                }
                count
            })
        })
        .collect();
    for _ in 0..20 {
        n += run.sim.write_cycle().unwrap().len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), n);
    }
    // Exactly one session (the one that never read) was dropped by the policy.
    assert_eq!(
        run.d
            .hub()
            .metrics
            .slow_consumer_drops
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// Reads `n` verified records, advancing `since`.
async fn read_n(
    sub: &mut firehose_client::Subscription,
    n: usize,
    since: &mut firehose_core::since::Since,
) -> Vec<Record> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {n}", out.len()))
            .expect("stream ended")
            .expect("verified");
        since.advance(&m.record);
        out.push(m.record);
    }
    out
}

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

/// A counter of `/metrics` (Prometheus text).
async fn metric(url: &str, name: &str) -> u64 {
    let text = get(url, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Collectors that resume over the same rows share the back-fill's signatures: the second
/// gets byte-identical messages and none of them is signed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_over_the_same_rows_share_signatures() {
    use firehose_core::since::{PageKey, Since};
    let mut run = start(spec(300), 25, |_| {}).await;
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

/// A plain HTTP GET on the distributor's listener; the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messagepack_clients_get_the_same_signed_records() {
    let mut run = start(spec(300), 100, |_| {}).await;
    let json_cfg = collector(31, &run.d, &run.url);
    let mut mp_cfg = collector(32, &run.d, &run.url);
    mp_cfg.encoding = firehose_core::codec::Encoding::MessagePack;
    let mut json_sub = Client::connect(&json_cfg).await.unwrap();
    let mut mp_sub = Client::connect(&mp_cfg).await.unwrap();
    wait_sessions(&run.d, 2).await;
    let written = run.sim.write_cycle().unwrap();
    let mut s1 = firehose_core::since::Since::default();
    let mut s2 = firehose_core::since::Since::default();
    let a = read_n(&mut json_sub, written.len(), &mut s1).await;
    let b = read_n(&mut mp_sub, written.len(), &mut s2).await;
    assert_eq!(a, b, "both encodings carry the same records");
    for t in DataType::ALL {
        let w: Vec<String> = written
            .iter()
            .filter(|r| r.data_type() == t)
            .map(|r| r.to_canonical_json())
            .collect();
        let g: Vec<String> = a
            .iter()
            .filter(|r| r.data_type() == t)
            .map(|r| r.to_canonical_json())
            .collect();
        assert_eq!(g, w, "{t}");
    }
    // And the frames really are binary MessagePack.
    run.sim.write_cycle().unwrap();
    match mp_sub.next_raw().await.unwrap().unwrap() {
        tokio_tungstenite::tungstenite::Message::Binary(b) => {
            assert!(b[0] >= 0x80, "a msgpack map")
        }
        other => panic!("expected a binary frame, got {other:?}"),
    }
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
    let drops = run
        .d
        .hub()
        .metrics
        .slow_consumer_drops
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(drops >= 1, "the policy closed it");
    assert!(
        connects >= 2,
        "it reconnected ({connects} connects, {drops} drops)"
    );
    assert_same_per_type(&got, &written, "the collector");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connects_and_refusals_leak_no_fds_or_tasks() {
    let run = start(spec(200), 100, |_| {}).await;
    let rt = tokio::runtime::Handle::current().metrics();
    // Warm up (lazy statics, the first connection's buffers).
    drop(
        Client::connect(&collector(40, &run.d, &run.url))
            .await
            .unwrap(),
    );
    wait_sessions(&run.d, 0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (fds, tasks) = (open_fds(), rt.num_alive_tasks());
    for i in 0..1000u32 {
        let seed = 41 + (i % 200) as u8;
        if i % 4 == 3 {
            // A refused one: a bad signature gets 401 and leaves nothing behind.
            let cfg = collector(seed, &run.d, &run.url);
            let url = cfg
                .signed_url()
                .replace("%22sig%22%3A%22", "%22sig%22%3A%2200");
            assert!(tokio_tungstenite::connect_async(url).await.is_err());
        } else {
            let cfg = collector(seed, &run.d, &run.url);
            let sub = Client::connect(&cfg).await.unwrap();
            drop(sub);
        }
    }
    wait_sessions(&run.d, 0).await;
    // Closing handshakes and task exits settle.
    let mut settled = false;
    for _ in 0..300 {
        if open_fds() <= fds + 2 && rt.num_alive_tasks() <= tasks + 2 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = get(&run.url, "/metrics").await;
    assert!(
        metrics.contains("firehose_distributor_auth_failures_total 250\n"),
        "250 refused as bad signatures"
    );
    assert!(
        settled,
        "fds {} -> {}, tasks {} -> {}",
        fds,
        open_fds(),
        tasks,
        rt.num_alive_tasks()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_messages_are_refused_and_others_unaffected() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut run = start(spec(200), 1000, |_| {}).await;
    let good = collector(60, &run.d, &run.url);
    let mut sub = Client::connect(&good).await.unwrap();
    // A subscription request of 60 KiB (the client library refuses longer URIs): a 4xx.
    let huge = format!("{}/?data={}", run.url, "7B".repeat(30 * 1024));
    let status = connect_status(&huge).await;
    assert!((400..500).contains(&status), "status {status}");
    // A collector that sends a 100 KiB message is closed with 1009 (message too big).
    let big = collector(61, &run.d, &run.url);
    let (mut ws, _) = tokio_tungstenite::connect_async(big.signed_url())
        .await
        .unwrap();
    wait_sessions(&run.d, 2).await;
    ws.send(Message::Text("x".repeat(100 * 1024).into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed");
    assert_eq!(closed, Some(1009));
    wait_sessions(&run.d, 1).await;
    // The other collector still gets everything.
    let written = run.sim.write_cycle().unwrap();
    let mut got = Vec::new();
    while got.len() < written.len() {
        let r = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push(r.record);
    }
    assert_same_per_type(&got, &written, "the collector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_closes_echoed_and_plain_gets_told_how_to_connect() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    let run = start(spec(200), 1000, |_| {}).await;
    // A plain GET (no upgrade) is answered, not refused.
    assert!(get(&run.url, "/")
        .await
        .contains("connect with a websocket"));
    // An upgrade with a websocket version other than 13 is not a websocket either.
    let status = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = run.url.trim_start_matches("ws://");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.split(' ').nth(1).unwrap_or_default().to_owned()
    };
    assert_eq!(status, "200");

    let c = collector(70, &run.d, &run.url);
    let (mut ws, resp) = tokio_tungstenite::connect_async(c.signed_url())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    wait_sessions(&run.d, 1).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = next_control(&mut ws).await.expect("an answer to the ping");
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(p))) if &p[..] == b"are you there"),
        "{pong:?}"
    );
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4000),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let reply = next_control(&mut ws).await.expect("a close reply");
    assert!(
        matches!(&reply, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 4000),
        "{reply:?}"
    );
    wait_sessions(&run.d, 0).await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message that is not a record (10 s at most).
async fn next_control(
    ws: &mut Ws,
) -> Result<
    Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>,
    tokio::time::error::Elapsed,
> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await
}
