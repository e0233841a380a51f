//! A distributor on a fixture archiver database, and signed HTTP requests to it.

use std::sync::Arc;

use firehose_core::crypto::{Crypto, KeyPair};
use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::Layout;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fixture's records: 150 cycles of 3 receipts and 2 original txs.
pub fn spec() -> FixtureSpec {
    FixtureSpec {
        cycles: 150,
        receipts_per_cycle: 3,
        txs_per_cycle: 2,
        receipt_bytes: 300,
        ..FixtureSpec::default()
    }
}

/// A running distributor.
pub struct Api {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The distributor.
    pub d: Arc<Distributor>,
    /// The archiver database directory (with a database).
    pub db: Option<Layout>,
    _dir: tempfile::TempDir,
}

/// A distributor with the fixture database and 30 accounts and transactions (cycles 0..=2),
/// or with no database.
pub async fn start(with_db: bool) -> Api {
    start_with(with_db.then_some(30)).await
}

/// A distributor with the fixture database and `rows` accounts and as many transactions,
/// spread over cycles 0..=4 (at least 10 a cycle); `None`: no database.
pub async fn start_with(rows: Option<u64>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut cfg = Config {
        data_log_dir: logs,
        ..Config::default()
    };
    let mut db = None;
    if let Some(n) = rows {
        let layout = Layout::Directory(dir.path().join("db"));
        fixture::build(&layout, &spec()).unwrap();
        let w = fixture::DbWriter::create(&layout).unwrap();
        let per_cycle = (n / 5).max(10);
        for i in 0..n {
            let id = firehose_core::fixtures::id64("account", i);
            let ts = 1_700_000_000_000 + i;
            let cycle = i / per_cycle;
            w.insert_account(&id, &json!({"balance": i}), ts, &id, cycle, i == 0)
                .unwrap();
            let tx = firehose_core::fixtures::id64("tx", i);
            let app = firehose_core::fixtures::id64("app", i);
            let data = json!({"n": i});
            w.insert_transaction(&tx, Some(&app), ts, cycle, &data, &json!({"raw": "0x"}))
                .unwrap();
        }
        cfg.archiver_db_dir = Some(dir.path().join("db"));
        db = Some(layout);
    }
    let d = Distributor::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    Api {
        addr,
        d,
        db,
        _dir: dir,
    }
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_with(addr, method, path, "", body).await;
    (status, body)
}

/// An HTTP/1.1 request with extra header lines (`"Accept: x\r\n"`); (status, head, body).
pub async fn http_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_owned(), body.to_owned())
}

/// `v` with `sender` and `sign` of `keys`, as the collector sends it.
pub fn signed(mut v: Value, keys: &KeyPair) -> String {
    v["sender"] = json!(keys.public_key().to_hex());
    Crypto::default().sign_obj(&mut v, keys).unwrap();
    firehose_core::canonical::safe_stringify(&v)
}

/// POSTs a signed request; checks the reply's signature; returns (status, reply).
pub async fn post(api: &Api, path: &str, req: Value) -> (u16, Value) {
    let (status, v) = post_unchecked(api, path, req).await;
    let signer = Crypto::default().verify_obj(&v).expect("reply is signed");
    assert_eq!(signer, api.d.public_key());
    (status, v)
}

/// POSTs a signed request; returns (status, reply) without checking the reply's signature.
pub async fn post_unchecked(api: &Api, path: &str, req: Value) -> (u16, Value) {
    let keys = KeyPair::from_seed([5; 32]);
    let (status, body) = http(api.addr, "POST", path, &signed(req, &keys)).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// The keys of a reply object, sorted.
pub fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}
