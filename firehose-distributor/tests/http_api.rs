//! The history HTTP API on a fixture database: signed requests, signed replies, limits, errors.

use std::sync::Arc;

use firehose_core::crypto::{Crypto, KeyPair};
use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::Layout;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Api {
    addr: std::net::SocketAddr,
    d: Arc<Distributor>,
    _dir: tempfile::TempDir,
}

async fn start(with_db: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut cfg = Config {
        data_log_dir: logs,
        ..Config::default()
    };
    if with_db {
        let layout = Layout::Directory(dir.path().join("db"));
        let spec = FixtureSpec {
            cycles: 150,
            receipts_per_cycle: 3,
            txs_per_cycle: 2,
            receipt_bytes: 300,
            ..FixtureSpec::default()
        };
        fixture::build(&layout, &spec).unwrap();
        let w = fixture::DbWriter::create(&layout).unwrap();
        for i in 0..30u64 {
            let id = firehose_core::fixtures::id64("account", i);
            w.insert_account(
                &id,
                &json!({"balance": i}),
                1_700_000_000_000 + i,
                &id,
                i / 10,
                i == 0,
            )
            .unwrap();
            let tx = firehose_core::fixtures::id64("tx", i);
            w.insert_transaction(
                &tx,
                Some(&tx),
                1_700_000_000_000 + i,
                i / 10,
                &json!({"n": i}),
                &json!({"raw": "0x"}),
            )
            .unwrap();
        }
        cfg.archiver_db_dir = Some(dir.path().join("db"));
    }
    let d = Distributor::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    Api { addr, d, _dir: dir }
}

/// A minimal HTTP/1.1 request; returns (status, body).
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn signed(mut v: Value, keys: &KeyPair) -> String {
    v["sender"] = json!(keys.public_key().to_hex());
    Crypto::default().sign_obj(&mut v, keys).unwrap();
    firehose_core::canonical::safe_stringify(&v)
}

/// POSTs a signed request; checks the reply's signature; returns (status, reply).
async fn post(api: &Api, path: &str, req: Value) -> (u16, Value) {
    let keys = KeyPair::from_seed([5; 32]);
    let (status, body) = http(api.addr, "POST", path, &signed(req, &keys)).await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    let signer = Crypto::default().verify_obj(&v).expect("reply is signed");
    assert_eq!(signer, api.d.public_key());
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_routes() {
    let api = start(true).await;
    let (s, v) = post(&api, "/totalData", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v["totalCycles"], 150);
    assert_eq!(v["totalAccounts"], 30);
    assert_eq!(v["totalReceipts"], 450);
    assert_eq!(v["totalOriginalTxs"], 300);

    let (_, v) = post(&api, "/cycleinfo", json!({"count": 5})).await;
    let counters: Vec<u64> = v["cycleInfo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["counter"].as_u64().unwrap())
        .collect();
    assert_eq!(counters, vec![145, 146, 147, 148, 149]);
    let (_, v) = post(&api, "/cycleinfo", json!({"start": 10, "end": 19})).await;
    assert_eq!(v["cycleInfo"].as_array().unwrap().len(), 10);
    let (s, v) = post(&api, "/cycleinfo", json!({"start": 0, "end": 100})).await;
    assert_eq!((s, &v["success"]), (400, &json!(false)), "span over 100");
    let (s, _) = post(&api, "/cycleinfo", json!({"count": 101})).await;
    assert_eq!(s, 400);

    let (_, v) = post(&api, "/receipt", json!({"count": 4})).await;
    assert_eq!(v["receipts"].as_array().unwrap().len(), 4);
    let (_, v) = post(&api, "/receipt", json!({"startCycle": 0, "endCycle": 99})).await;
    let page1 = v["receipts"].as_array().unwrap().clone();
    assert_eq!(page1.len(), 100);
    let (_, v) = post(
        &api,
        "/receipt",
        json!({"startCycle": 0, "endCycle": 99, "page": 3}),
    )
    .await;
    let page3 = v["receipts"].as_array().unwrap();
    assert_eq!(page3.len(), 100);
    assert!(page3[0]["cycle"].as_u64().unwrap() >= page1[99]["cycle"].as_u64().unwrap());
    let (_, v) = post(
        &api,
        "/receipt",
        json!({"startCycle": 0, "endCycle": 99, "page": 4}),
    )
    .await;
    assert_eq!(
        v["receipts"].as_array().unwrap().len(),
        0,
        "300 receipts in cycles 0..=99"
    );
    let (_, v) = post(
        &api,
        "/receipt",
        json!({"startCycle": 5, "endCycle": 7, "type": "tally"}),
    )
    .await;
    assert_eq!(
        v["receipts"],
        json!([{"cycle": 5, "receipts": 3}, {"cycle": 6, "receipts": 3}, {"cycle": 7, "receipts": 3}])
    );
    let (_, v) = post(
        &api,
        "/receipt",
        json!({"startCycle": 5, "endCycle": 7, "type": "count"}),
    )
    .await;
    assert_eq!(v["receipts"], 9);
    let id = page1[0]["receiptId"].as_str().unwrap().to_owned();
    let (_, v) = post(&api, "/receipt", json!({"txId": id})).await;
    assert_eq!(v["receipts"][0]["receiptId"], json!(id));
    let list = serde_json::to_string(&vec![
        id.clone(),
        page1[1]["receiptId"].as_str().unwrap().to_owned(),
    ])
    .unwrap();
    let (_, v) = post(&api, "/receipt", json!({"txIdList": list})).await;
    assert_eq!(v["receipts"].as_array().unwrap().len(), 2);
    let (s, _) = post(&api, "/receipt", json!({"txId": "xyz"})).await;
    assert_eq!(s, 400, "txId must be 64 hex");
    let (_, v) = post(&api, "/receipt", json!({"start": 0, "end": 9})).await;
    assert_eq!(v["receipts"].as_array().unwrap().len(), 10);

    let (_, v) = post(
        &api,
        "/originalTx",
        json!({"startCycle": 149, "endCycle": 149}),
    )
    .await;
    assert_eq!(v["originalTxs"].as_array().unwrap().len(), 2);
    let (_, v) = post(
        &api,
        "/originalTx",
        json!({"startCycle": 0, "endCycle": 10, "type": "count"}),
    )
    .await;
    assert_eq!(v["originalTxs"], 22);
    let (s, v) = post(&api, "/originalTx", json!({})).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("startCycle"));

    let (_, v) = post(&api, "/account", json!({"startCycle": 1, "endCycle": 1})).await;
    let accounts = v["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[0]["data"], json!({"balance": 10}));
    assert_eq!(accounts[0]["isGlobal"], json!(false));
    let (_, v) = post(
        &api,
        "/account",
        json!({"accountId": firehose_core::fixtures::id64("account", 0)}),
    )
    .await;
    assert_eq!(v["accounts"][0]["isGlobal"], json!(true));
    let (_, v) = post(&api, "/transaction", json!({"count": 5})).await;
    assert_eq!(v["transactions"].as_array().unwrap().len(), 5);
    let (_, v) = post(
        &api,
        "/transaction",
        json!({"startCycle": 0, "endCycle": 2, "type": "count"}),
    )
    .await;
    assert_eq!(v["transactions"], 30);
    let (_, v) = post(&api, "/totalData", json!({})).await;
    assert_eq!(
        (v["totalAccounts"].as_u64(), v["totalTransactions"].as_u64()),
        (Some(30), Some(30))
    );
}

#[tokio::test]
async fn unsigned_or_tampered_requests_get_401_and_bad_json_400() {
    let api = start(true).await;
    let (s, _) = http(api.addr, "POST", "/totalData", "{}").await;
    assert_eq!(s, 400, "no sender");
    let keys = KeyPair::from_seed([5; 32]);
    let body = signed(json!({"count": 5}), &keys).replace("\"count\":5", "\"count\":6");
    let (s, body) = http(api.addr, "POST", "/cycleinfo", &body).await;
    assert_eq!(s, 401);
    assert!(body.contains("\"success\":false"));
    let (s, _) = http(api.addr, "POST", "/cycleinfo", "not json").await;
    assert_eq!(s, 400);
    let (s, _) = http(api.addr, "POST", "/cycleinfo", &"x".repeat(2 << 20)).await;
    assert_eq!(s, 413, "request size limit");
}

#[tokio::test]
async fn config_health_metrics_and_no_database() {
    let api = start(false).await;
    let (s, body) = http(api.addr, "GET", "/health", "").await;
    assert_eq!((s, body.as_str()), (200, "OK"));
    let (s, body) = http(api.addr, "GET", "/config", "").await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        Crypto::default().verify_obj(&v).unwrap(),
        api.d.public_key()
    );
    assert_eq!(
        v["config"]["DISTRIBUTOR_PUBLIC_KEY"],
        json!(api.d.public_key().to_hex())
    );
    let (s, body) = http(api.addr, "GET", "/metrics", "").await;
    assert_eq!(s, 200);
    assert!(body.contains("firehose_distributor_sessions 0"));
    let (s, v) = post(&api, "/totalData", json!({})).await;
    assert_eq!(s, 503);
    assert_eq!(v["success"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_http_client() {
    use firehose_distributor::http_client::{cycles_from_records, HttpClient, HttpError};
    let api = start(true).await;
    let client = HttpClient::new(
        &format!("http://{}", api.addr),
        KeyPair::from_seed([6; 32]),
        api.d.public_key(),
    );
    assert_eq!(client.total_data().await.unwrap()["totalReceipts"], 450);
    let cycles = cycles_from_records(&client.cycles(3, 5).await.unwrap());
    assert_eq!(
        cycles.iter().map(|c| c.counter).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let receipts = client.receipts(0, 9, 1).await.unwrap();
    assert_eq!(receipts.len(), 30);
    assert!(receipts
        .windows(2)
        .all(|w| (w[0].cycle, w[0].timestamp) <= (w[1].cycle, w[1].timestamp)));
    assert_eq!(client.original_txs(0, 9, 1).await.unwrap().len(), 20);
    match client.cycles(0, 500).await {
        Err(HttpError::Refused { status, .. }) => assert_eq!(status, 400),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A reply signed by someone else is rejected.
    let wrong = HttpClient::new(
        &format!("http://{}", api.addr),
        KeyPair::from_seed([6; 32]),
        KeyPair::from_seed([9; 32]).public_key(),
    );
    assert!(matches!(
        wrong.total_data().await,
        Err(HttpError::BadReply(_))
    ));
}
