//! Round two of the attacks: each test runs the attack on real sockets and checks that it
//! costs only the attacker.

mod common;

use std::time::Duration;

use common::run::{spec, start, wait_sessions};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::subscription::{SubscriptionRequest, SubscriptionType};
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
