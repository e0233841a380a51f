//! The subscriber list reloaded from the config file while running (`firehose_distributor::
//! reload`): a collector taken off the list is closed and refused; a file that does not parse
//! changes nothing; a collector put on the list is let in.

use firehose_testkit as common;

use std::time::Duration;

use common::run::{spec, start, wait_sessions};
use firehose_client::{Client, ClientConfig, ClientError};
use firehose_core::crypto::KeyPair;
use firehose_distributor::config::source::ConfigSource;
use firehose_distributor::server::reload;
use serde_json::json;

fn write_config(path: &std::path::Path, keys: &[&KeyPair]) {
    let subscribers: Vec<_> = keys
        .iter()
        .map(|k| json!({"publicKey": k.public_key().to_hex(), "expirationTimestamp": 0, "subscriptionType": "FIREHOSE"}))
        .collect();
    let cfg = json!({"limitToSubscribersOnly": true, "subscribers": subscribers});
    std::fs::write(path, cfg.to_string()).unwrap();
}

/// Whether the distributor lets `cfg` subscribe now (401 if not).
async fn admitted(cfg: &ClientConfig) -> bool {
    match Client::connect(cfg).await {
        Ok(_) => true,
        Err(ClientError::Ws(tokio_tungstenite::tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 401);
            false
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Polls `cond` for up to 10 s.
async fn eventually(mut cond: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within 10 s: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_file_reloads_the_subscribers() {
    let (a, b) = (KeyPair::from_seed([21; 32]), KeyPair::from_seed([22; 32]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("distributor-config.json");
    write_config(&path, &[&a]);
    let run = start(spec(256), 1000, |c| {
        c.limit_to_subscribers_only = true;
        c.subscribers = firehose_distributor::config::Config::from_file(&path)
            .unwrap()
            .subscribers;
    })
    .await;
    let source = ConfigSource::new(&path).with_env(|_| None);
    let watcher = reload::watch(
        run.d.clone(),
        source.clone(),
        Duration::from_millis(50),
        false,
    );
    let (cfg_a, cfg_b) = (
        ClientConfig::new(&run.url, a, run.d.public_key()),
        ClientConfig::new(&run.url, b, run.d.public_key()),
    );
    let mut session_a = Client::connect(&cfg_a).await.unwrap();
    wait_sessions(&run.d, 1).await;
    assert!(!admitted(&cfg_b).await);

    // Broken JSON: logged, the current list stays.
    std::fs::write(&path, "{\"subscribers\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reload::reload(&run.d, &source));
    assert_eq!(run.d.hub().len(), 1, "a's session survives a bad file");
    assert!(!admitted(&cfg_b).await);

    // b replaces a: a's session is closed with 1001, b gets in, a is refused.
    write_config(&path, &[&cfg_b.keys]);
    let closed = tokio::time::timeout(Duration::from_secs(10), session_a.next())
        .await
        .expect("a closed within 10 s");
    assert!(
        matches!(closed, Some(Err(ClientError::Closed { code: 1001, .. }))),
        "{closed:?}"
    );
    eventually(async || admitted(&cfg_b).await, "b admitted").await;
    assert!(!admitted(&cfg_a).await);
    watcher.abort();
}
