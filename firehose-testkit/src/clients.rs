//! Collector-side helpers for the distributor's end-to-end tests: keys, signed upgrade URLs,
//! the HTTP status of a refused upgrade, reading records, `/metrics` counters.

use std::time::Duration;

use firehose_client::{ClientConfig, ClientError};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::records::Record;
use firehose_core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};
use firehose_distributor::Distributor;

use crate::get;

pub fn collector(seed: u8, d: &Distributor, url: &str) -> ClientConfig {
    ClientConfig::new(url, KeyPair::from_seed([seed; 32]), d.public_key())
}

pub fn status_of(err: ClientError) -> u16 {
    match err {
        ClientError::Ws(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            resp.status().as_u16()
        }
        other => panic!("expected an HTTP error, got {other}"),
    }
}

/// A signed request URL with full control over its parts.
pub fn url_with(base: &str, signer: &KeyPair, sender: &KeyPair, ts: u64) -> String {
    let crypto = Crypto::default();
    let mut v =
        SubscriptionRequest::new(SubscriptionType::Firehose, sender.public_key(), ts).to_value();
    crypto.sign_obj(&mut v, signer).unwrap();
    format!("{base}/?data={}", encode_query_value(&v))
}

pub async fn connect_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

/// Reads `n` verified records, advancing `since`.
pub async fn read_n(
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

/// A counter of `/metrics` (Prometheus text).
pub async fn metric(url: &str, name: &str) -> u64 {
    let text = get(url, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// What a [`relayer_like`] collector received: how often each (type, id).
pub type Seen = std::sync::Arc<
    std::sync::Mutex<std::collections::HashMap<(firehose_core::records::DataType, String), usize>>,
>;

/// A collector that behaves like relayer-collector: no `since`, and after a close or an
/// error a fresh subscription `delay` later. `cut` (when given) drops its connection.
pub fn relayer_like(
    url: String,
    seed: [u8; 32],
    delay: Duration,
    cut: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> Seen {
    let seen = Seen::default();
    let out = seen.clone();
    let cut = cut.unwrap_or_default();
    tokio::spawn(async move {
        let dev = firehose_core::crypto::PublicKey::from_hex(
            firehose_distributor::config::DEV_PUBLIC_KEY,
        )
        .unwrap();
        loop {
            let cfg = ClientConfig::new(&url, KeyPair::from_seed(seed), dev);
            if let Ok(mut sub) = firehose_client::Client::connect(&cfg).await {
                loop {
                    tokio::select! {
                        m = sub.next() => match m {
                            Some(Ok(r)) => {
                                let key = (r.record.data_type(), r.record.id().to_owned());
                                *out.lock().unwrap().entry(key).or_default() += 1;
                            }
                            _ => break,
                        },
                        () = cut.notified() => break,
                    }
                }
            }
            tokio::time::sleep(delay).await;
        }
    });
    seen
}
