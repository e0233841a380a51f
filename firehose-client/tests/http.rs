//! The history client against a tiny in-test HTTP server on loopback: requests are signed by
//! the collector, replies must be signed by the distributor, busy replies are retried.

use std::sync::{Arc, Mutex};

use firehose_client::{HttpClient, HttpError};
use firehose_core::canonical::safe_stringify;
use firehose_core::crypto::{Crypto, KeyPair, PublicKey};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned reply: status, extra header lines, body.
type Reply = (u16, &'static str, String);

/// A server answering request n with `replies[n]` (the last again for later ones); returns
/// its URL and the request bodies it got.
async fn server(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = got.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let body = read_body(&mut s).await;
            log.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            let (status, headers, body) = replies[n.min(replies.len() - 1)].clone();
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(reply.as_bytes()).await.unwrap();
            let _ = s.shutdown().await;
        }
    });
    (url, got)
}

/// The body of one request (by its `content-length`).
async fn read_body(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() >= end + 4 + len {
            return buf[end + 4..end + 4 + len].to_vec();
        }
    }
}

fn signed_by(keys: &KeyPair, mut v: Value) -> String {
    Crypto::default().sign_obj(&mut v, keys).unwrap();
    safe_stringify(&v)
}

fn client(url: &str, collector: &KeyPair, distributor: PublicKey) -> HttpClient {
    let keys = KeyPair::from_secret_hex(&collector.secret_key_hex()).unwrap();
    HttpClient::new(url, keys, distributor)
}

#[tokio::test]
async fn requests_are_signed_and_replies_verified() {
    let (distributor, collector) = (KeyPair::generate(), KeyPair::generate());
    let totals = json!({"totalCycles": 3, "totalAccounts": 0, "totalTransactions": 0,
        "totalReceipts": 7, "totalOriginalTxs": 7});
    let (url, got) = server(vec![(200, "", signed_by(&distributor, totals))]).await;
    let api = client(&url, &collector, distributor.public_key());
    let t = api.total_data().await.unwrap();
    assert_eq!((t.cycles, t.receipts), (3, 7));
    // The request named its sender and was signed by it.
    let req = got.lock().unwrap()[0].clone();
    assert_eq!(req["sender"], collector.public_key().to_hex());
    assert_eq!(
        Crypto::default().verify_obj(&req).unwrap(),
        collector.public_key()
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_reply_is_an_error() {
    let (distributor, impostor, collector) = (
        KeyPair::generate(),
        KeyPair::generate(),
        KeyPair::generate(),
    );
    let reply = signed_by(&distributor, json!({"totalCycles": 3}));
    let tampered = reply.replace("\"totalCycles\":3", "\"totalCycles\":4");
    assert_ne!(tampered, reply);
    let foreign = signed_by(&impostor, json!({"totalCycles": 3}));
    let (url, _) = server(vec![(200, "", tampered), (200, "", foreign)]).await;
    let api = client(&url, &collector, distributor.public_key());
    let e = api.post("/totalData", json!({})).await.unwrap_err();
    assert!(matches!(e, HttpError::Signature(_)), "{e}");
    let e = api.post("/totalData", json!({})).await.unwrap_err();
    assert!(
        matches!(e, HttpError::WrongSigner(k) if k == impostor.public_key()),
        "{e}"
    );
}

#[tokio::test]
async fn a_refusal_keeps_its_status_and_reason() {
    let (distributor, collector) = (KeyPair::generate(), KeyPair::generate());
    let refused = signed_by(
        &distributor,
        json!({"success": false, "error": "Exceed maximum limit of 100 cycles"}),
    );
    let (url, _) = server(vec![(400, "", refused)]).await;
    let api = client(&url, &collector, distributor.public_key());
    match api
        .post("/cycleinfo", json!({"start": 0, "end": 500}))
        .await
    {
        Err(HttpError::Refused { status, error }) => {
            assert_eq!(status, 400);
            assert!(error.contains("maximum limit"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_busy_distributor_is_retried_after_its_retry_after() {
    let (distributor, collector) = (KeyPair::generate(), KeyPair::generate());
    let busy = signed_by(&distributor, json!({"success": false, "error": "busy"}));
    let ok = signed_by(&distributor, json!({"totalCycles": 1}));
    let replies = vec![
        (503, "retry-after: 1\r\n", busy.clone()),
        (503, "retry-after: 1\r\n", busy),
        (200, "", ok),
    ];
    let (url, got) = server(replies).await;
    let api = client(&url, &collector, distributor.public_key());
    let started = std::time::Instant::now();
    let v = api.post("/totalData", json!({})).await.unwrap();
    assert_eq!(v["totalCycles"], 1);
    assert_eq!(got.lock().unwrap().len(), 3, "two retries");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "each after its Retry-After"
    );
}
