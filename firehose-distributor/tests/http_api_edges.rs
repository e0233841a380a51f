//! The history HTTP API: what is refused (unsigned, tampered, bad JSON), `/config`, health
//! and `/metrics` with and without a database, CORS, and the typed client against it.

use firehose_core::crypto::{Crypto, KeyPair};
use serde_json::{json, Value};

use firehose_testkit as common;

use common::api::{http, keys, post, signed, start};

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
    use firehose_client::{CycleTally, HttpClient, HttpError, Totals};
    use firehose_core::keyed::KeyedRecord;
    use firehose_core::records::{OriginalTxData, Receipt};
    let api = start(true).await;
    let client = HttpClient::new(
        &format!("http://{}", api.addr),
        KeyPair::from_seed([6; 32]),
        api.d.public_key(),
    );
    let totals = client.total_data().await.unwrap();
    let want = Totals {
        cycles: 150,
        accounts: 30,
        transactions: 30,
        receipts: 450,
        original_txs: 300,
    };
    assert_eq!(totals, want);
    let counters =
        |c: Vec<firehose_core::records::Cycle>| c.iter().map(|c| c.counter).collect::<Vec<_>>();
    assert_eq!(counters(client.cycles(3, 5).await.unwrap()), [3, 4, 5]);
    assert_eq!(counters(client.latest_cycles(2).await.unwrap()), [149, 148]);

    let receipts = client.keyed::<Receipt>();
    let page = receipts.in_cycles(0, 9, 1).await.unwrap();
    assert_eq!(page.len(), 30);
    assert!(page
        .windows(2)
        .all(|w| (w[0].cycle, w[0].timestamp) <= (w[1].cycle, w[1].timestamp)));
    assert_eq!(receipts.at(0, 29).await.unwrap(), page);
    assert_eq!(receipts.count(0, 9).await.unwrap(), 30);
    let tally = receipts.tally(0, 1).await.unwrap();
    let per_cycle = |count| {
        vec![
            CycleTally { cycle: 0, count },
            CycleTally { cycle: 1, count },
        ]
    };
    assert_eq!(tally, per_cycle(3));
    let newest = receipts.latest(1).await.unwrap();
    assert_eq!(newest[0].cycle, 149);
    let found = receipts.by_tx_id(newest[0].id()).await.unwrap();
    assert_eq!(found.as_ref(), newest.first());
    assert_eq!(receipts.by_tx_id(&"0".repeat(64)).await.unwrap(), None);

    let txs = client.keyed::<OriginalTxData>();
    assert_eq!(txs.in_cycles(0, 9, 1).await.unwrap().len(), 20);
    assert_eq!(txs.count(0, 100).await.unwrap(), 202);
    assert_eq!(txs.tally(0, 1).await.unwrap(), per_cycle(2));

    assert_eq!(client.account_total(0, 2).await.unwrap(), 30);
    assert_eq!(client.transaction_total(0, 0).await.unwrap(), 10);
    let accounts = client.accounts(0, 2, 1).await.unwrap();
    assert_eq!((accounts.rows.len(), accounts.total), (30, 30));
    let transactions = client.transactions(1, 1, 1).await.unwrap();
    assert_eq!((transactions.rows.len(), transactions.total), (10, 10));

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
        Err(HttpError::WrongSigner(k)) if k == api.d.public_key()
    ));
    // Nobody listening: the transport error keeps its cause.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = HttpClient::new(
        &format!("http://{}", closed.local_addr().unwrap()),
        KeyPair::from_seed([6; 32]),
        api.d.public_key(),
    );
    drop(closed);
    let err = gone.total_data().await.unwrap_err();
    assert!(matches!(err, HttpError::Transport(_)), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_cors_and_metrics_by_accept() {
    use common::api::http_with;
    let api = start(true).await;
    for path in ["/is-alive", "/is-healthy"] {
        let (s, body) = http(api.addr, "GET", path, "").await;
        assert_eq!((s, body.as_str()), (200, "OK"), "{path}");
    }
    // CORS for any origin, preflight included.
    let origin = "Origin: https://explorer.example\r\n";
    let (s, head, _) = http_with(api.addr, "GET", "/is-alive", origin, "").await;
    assert_eq!(s, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{head}"
    );
    let preflight = format!("{origin}Access-Control-Request-Method: POST\r\n");
    let (s, head, _) = http_with(api.addr, "OPTIONS", "/receipt", &preflight, "").await;
    assert!(s == 200 || s == 204, "{s}");
    assert!(
        head.to_ascii_lowercase()
            .contains("access-control-allow-methods"),
        "{head}"
    );

    // A refused request is counted by route and reason.
    let (s, _) = post(&api, "/receipt", json!({"start": 0, "end": 500})).await;
    assert_eq!(s, 400);
    // axios' and fetch's defaults get the original's JSON; Prometheus and no Accept get text.
    for accept in ["application/json, text/plain, */*", "*/*"] {
        let (s, head, body) = http_with(
            api.addr,
            "GET",
            "/metrics",
            &format!("Accept: {accept}\r\n"),
            "",
        )
        .await;
        assert_eq!(s, 200);
        assert!(head.contains("application/json"), "{accept}: {head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(keys(&v), ["cycle", "originalTx", "receipt"]);
        assert_eq!(v["receipt"]["count"], json!(450), "database rows at start");
        assert!(v["cycle"]["lastUpdationTimestamp"].as_u64().unwrap() > 1_700_000_000_000);
    }
    let prometheus = "Accept: application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1\r\n";
    for headers in [prometheus, ""] {
        let (_, head, body) = http_with(api.addr, "GET", "/metrics", headers, "").await;
        assert!(head.contains("application/openmetrics-text"), "{head}");
        assert!(
            body.contains(
                "firehose_distributor_http_refused_total{route=\"/receipt\",reason=\"bad_request\"} 1"
            ),
            "{body}"
        );
    }
}
