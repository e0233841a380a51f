//! Helpers shared by the workspace's integration tests (the distributor's and the root
//! `tests/`): the broker under test, unique names, a collecting consumer (MQ tests); the
//! exactly-once-in-order check (all); a distributor in-process ([`run`]) or as a process
//! ([`process`]); the history API's test client ([`api`]).
#![allow(missing_docs)]

pub mod api;
pub mod clients;
pub mod process;
pub mod run;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use firehose_client::mq::MqConsumer;
use firehose_core::crypto::PublicKey;
use firehose_core::records::{DataType, Record};
use firehose_distributor::mq::{queue_names, Exchanges, MqConfig};

/// The broker's URI (`FIREHOSE_TEST_AMQP`, default the local RabbitMQ with guest/guest), or
/// `None` with a loud message when it cannot be reached outside CI. In CI (`CI=true`) a
/// missing broker fails the test.
pub async fn broker() -> Option<String> {
    let uri = std::env::var("FIREHOSE_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let host = uri
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:5672")
        .to_owned();
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&host),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if reachable {
        return Some(uri);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("no RabbitMQ at {host}: CI must start one (see .ci/run)");
    }
    eprintln!(
        "\n!!!!! SKIPPED: no RabbitMQ at {host} (start one, or set FIREHOSE_TEST_AMQP) !!!!!\n"
    );
    None
}

/// Names no other test (or earlier run) uses.
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("firehose-test-{tag}-{}-{nanos}", std::process::id())
}

/// An MQ config on the test broker with unique exchanges and a state file in `dir`.
pub fn mq_config(uri: &str, tag: &str, dir: &std::path::Path) -> MqConfig {
    let base = unique(tag);
    let mut cfg = MqConfig::from_env(|_| None, dir).unwrap();
    cfg.uri = uri.to_owned();
    cfg.exchanges = Exchanges {
        cycles: format!("{base}.x.cycles"),
        original_txs: format!("{base}.x.originalTxs"),
        receipts: format!("{base}.x.receipts"),
    };
    cfg.poll_interval = Duration::from_millis(100);
    cfg
}

/// Declares the queues of consumer group `prefix` (before publishing starts).
pub async fn declare(uri: &str, exchanges: &Exchanges, prefix: &str) {
    let conn = lapin::Connection::connect(uri, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    firehose_distributor::mq::declare_group(&ch, exchanges, prefix)
        .await
        .unwrap();
    conn.close(200, "ok".into()).await.unwrap();
}

/// One record as received: message id and record, in arrival order per queue.
pub type Received = Vec<(String, Record)>;

/// Consumes the three queues of group `prefix` until every id of `want` has arrived (or
/// `timeout`), then for `linger` more to catch extras; acks everything. Records come
/// verified against `key`.
pub async fn collect(
    uri: &str,
    prefix: &str,
    key: PublicKey,
    want: &HashSet<String>,
    timeout: Duration,
    linger: Duration,
) -> Received {
    let mut consumers = Vec::new();
    for (_, q) in queue_names(prefix) {
        consumers.push(MqConsumer::connect(uri, &q, 50, key).await.unwrap());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for mut c in consumers {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(d) = c.next().await {
                let d = d.expect("verified delivery");
                let id = d.message_id.clone().expect("message_id set");
                let rec = d.record.record.clone();
                d.ack().await.unwrap();
                if tx.send((id, rec)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let mut got: Received = Vec::new();
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !want.iter().all(|w| seen.contains(w)) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((id, r))) => {
                seen.insert(id.clone());
                got.push((id, r));
            }
            _ => break,
        }
    }
    let end = tokio::time::Instant::now() + linger;
    while let Ok(Some((id, r))) = tokio::time::timeout_at(end, rx.recv()).await {
        got.push((id, r));
    }
    for t in tasks {
        t.abort();
    }
    got
}

/// Ids that arrived more than once, with how often.
pub fn duplicates(got: &Received) -> HashMap<String, usize> {
    let mut n: HashMap<String, usize> = HashMap::new();
    for (id, _) in got {
        *n.entry(id.clone()).or_default() += 1;
    }
    n.retain(|_, c| *c > 1);
    n
}

/// Per data type, `got` holds exactly the records of `written`, once each, in order (the order
/// across types is not defined). `who` names the receiver in the failure message.
pub fn assert_same_per_type(got: &[Record], written: &[Record], who: &str) {
    for t in DataType::ALL {
        let ids = |rs: &[Record]| -> Vec<String> {
            rs.iter()
                .filter(|r| r.data_type() == t)
                .map(|r| r.id().to_owned())
                .collect()
        };
        let (g, w) = (ids(got), ids(written));
        if g != w {
            let at = g.iter().zip(&w).take_while(|(a, b)| a == b).count();
            let pos = |id: &String| w.iter().position(|x| x == id);
            let missing = w.iter().filter(|id| !g.contains(id)).count();
            panic!(
                "{who}, {t}: not exactly once in order: got {} of {} ({missing} missing); first \
                 difference at {at}: got written[{:?}], want written[{at}]; next got: {:?}",
                g.len(),
                w.len(),
                g.get(at).and_then(pos),
                g[at..].iter().take(8).map(pos).collect::<Vec<_>>(),
            );
        }
    }
}

/// `GET path` on a distributor given by its `ws://` URL (HTTP/1.0); the body of a 200.
pub async fn get(ws_url: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = ws_url.trim_start_matches("ws://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    body.to_owned()
}

/// Receives until `sub` has delivered as many records as `written` (each within 30 s, or the
/// test fails naming how far it got); then checks them against `written`.
pub async fn receive_all(sub: &mut firehose_client::Subscription, written: &[Record], who: &str) {
    let mut got: Vec<Record> = Vec::new();
    while got.len() < written.len() {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Some(Ok(r))) => got.push(r.record),
            other => panic!(
                "{who} stalled after {} of {}: {other:?}",
                got.len(),
                written.len()
            ),
        }
    }
    assert_same_per_type(&got, written, who);
}
