//! The distributor end to end on loopback: real files written like the archiver, real
//! websockets, collectors signed like Shardeum's: subscription rules, fan-out through
//! rotation, replaced and removed sessions, slow clients, MessagePack.

use firehose_testkit as common;

use common::run::{spec, start, wait_sessions};
use std::time::Duration;

use common::clients::{collector, connect_status, read_n, status_of, url_with};
use firehose_client::{Client, ClientConfig, ClientError};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::{DataType, Record};
use firehose_core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};
use firehose_dbstore::fixture::FixtureSpec;
use firehose_distributor::auth::now_ms;
use firehose_distributor::config::Subscriber;

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
    assert_eq!(run.d.hub().metrics.slow_consumer_drops.get(), 0);
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
    assert_eq!(run.d.hub().metrics.slow_consumer_drops.get(), 1);
}

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
