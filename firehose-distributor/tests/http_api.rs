//! The history HTTP API on a fixture database: signed requests, signed replies, limits, errors.

use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::fixtures::id64;
use serde_json::{json, Value};

use firehose_testkit as common;

use common::api::{http, keys, post, post_unchecked, signed, start, Api};

/// The `id` field of every row of `v[key]`.
fn ids(v: &Value, key: &str, id: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list in {v}"))
        .iter()
        .map(|r| r[id].as_str().unwrap().to_owned())
        .collect()
}

/// The fixture's ids `range` (receipt n and original tx n share the id `tx:n`).
fn tx_ids(range: impl Iterator<Item = u64>) -> Vec<String> {
    range.map(|n| id64("tx", n)).collect()
}

/// A refusal: the status and the original's error text.
async fn refused(api: &Api, path: &str, req: Value) -> (u16, String) {
    let (s, v) = post(api, path, req).await;
    assert_eq!(v["success"], json!(false), "{path}: {v}");
    (s, v["error"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totals_and_cycles_as_the_original() {
    let api = start(true).await;
    let (s, v) = post(&api, "/totalData", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        keys(&v),
        [
            "pid",
            "sign",
            "totalAccounts",
            "totalCycles",
            "totalOriginalTxs",
            "totalReceipts",
            "totalTransactions"
        ]
    );
    assert_eq!(
        (
            &v["totalCycles"],
            &v["totalReceipts"],
            &v["totalOriginalTxs"]
        ),
        (&json!(150), &json!(450), &json!(300))
    );
    assert_eq!(
        (&v["totalAccounts"], &v["totalTransactions"]),
        (&json!(30), &json!(30))
    );
    assert_eq!(v["pid"], json!(std::process::id()));

    let counters = |v: &Value| -> Vec<u64> {
        v["cycleInfo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["counter"].as_u64().unwrap())
            .collect()
    };
    let (_, v) = post(&api, "/cycleinfo", json!({"count": 5})).await;
    assert_eq!(
        counters(&v),
        [149, 148, 147, 146, 145],
        "count: newest first"
    );
    let (_, v) = post(&api, "/cycleinfo", json!({"start": 10, "end": 110})).await;
    assert_eq!(
        counters(&v),
        (10..=110).collect::<Vec<_>>(),
        "end - start + 1 cycles"
    );
    assert_eq!(v["cycleInfo"][0]["marker"], json!(id64("cycle", 10)));
    for end in [json!(null), json!(0)] {
        let mut req = json!({"start": 7});
        if !end.is_null() {
            req["end"] = end;
        }
        let (_, v) = post(&api, "/cycleinfo", req).await;
        assert_eq!(counters(&v), [7], "a missing or 0 end means one cycle");
    }
    let (_, v) = post(
        &api,
        "/cycleinfo",
        json!({"count": 0, "start": 0, "end": 2}),
    )
    .await;
    assert_eq!(counters(&v), [0, 1, 2], "count 0 is not a selector");
    let (s, e) = refused(&api, "/cycleinfo", json!({"start": 0, "end": 101})).await;
    assert_eq!((s, e.as_str()), (400, "Exceed maximum limit of 100 cycles"));
    let (_, e) = refused(&api, "/cycleinfo", json!({"start": 5, "end": 4})).await;
    assert_eq!(e, "Invalid start and end counters");
    let (_, e) = refused(&api, "/cycleinfo", json!({"count": 101})).await;
    assert_eq!(e, "Max count is 100.");
    let (_, e) = refused(&api, "/cycleinfo", json!({"start": "5"})).await;
    assert_eq!(e, "Invalid request data start must be, number");
    let (s, v) = post_unchecked(&api, "/cycleinfo", json!({})).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"success": false, "error": "not specified which cycle to show"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_and_original_txs_as_the_original() {
    let api = start(true).await;
    for (path, key, id, total) in [
        ("/receipt", "receipts", "receiptId", 450u64),
        ("/originalTx", "originalTxs", "txId", 300),
    ] {
        // The collector's pages: {start, end: start + 100} is 101 rows.
        let (s, v) = post(&api, path, json!({"start": 0, "end": 100})).await;
        assert_eq!(s, 200);
        assert_eq!(keys(&v), [key, "sign"]);
        assert_eq!(ids(&v, key, id), tx_ids(0..=100), "{path}");
        let (_, v) = post(&api, path, json!({"start": 101, "end": 201})).await;
        assert_eq!(ids(&v, key, id), tx_ids(101..=201));
        let (_, v) = post(&api, path, json!({"start": total - 10, "end": total + 90})).await;
        assert_eq!(
            ids(&v, key, id),
            tx_ids(total - 10..total),
            "the last page is short"
        );
        let (_, v) = post(&api, path, json!({"start": 3})).await;
        assert_eq!(
            ids(&v, key, id),
            tx_ids(3..=3),
            "a missing end means one row"
        );
        let (_, v) = post(&api, path, json!({"start": u64::MAX - 50, "end": u64::MAX})).await;
        assert_eq!(v[key], json!([]), "huge offsets read nothing, never wrap");
        let (s, e) = refused(&api, path, json!({"start": 0, "end": 101})).await;
        assert_eq!(s, 400);
        assert!(e.starts_with("Exceed maximum limit of 100 "), "{e}");
        let (_, e) = refused(&api, path, json!({"start": -1, "end": 5})).await;
        assert_eq!(e, "Invalid start and end counters");
        let (_, e) = refused(&api, path, json!({"count": 101})).await;
        assert_eq!(e, "Max count is 100");
        let (_, v) = post(&api, path, json!({"count": 4})).await;
        assert_eq!(
            ids(&v, key, id),
            tx_ids((total - 4..total).rev()),
            "count: newest first"
        );
        let (_, v) = post(&api, path, json!({"txId": id64("tx", 7)})).await;
        assert_eq!(ids(&v, key, id), tx_ids(7..=7));
        let upper = id64("tx", 7).to_uppercase();
        let (s, v) = post(&api, path, json!({"txId": upper})).await;
        assert_eq!((s, &v[key]), (200, &json!([])), "ids are exact");
        let (_, e) = refused(&api, path, json!({"txId": "xyz"})).await;
        assert_eq!(e, "Invalid txId xyz");
        let list = json!([id64("tx", 9), id64("nope", 1), id64("tx", 5)]).to_string();
        let (_, v) = post(&api, path, json!({"txIdList": list})).await;
        assert_eq!(
            ids(&v, key, id),
            [id64("tx", 9), id64("tx", 5)],
            "in list order"
        );
        let (_, e) = refused(&api, path, json!({"txIdList": "[1]"})).await;
        assert_eq!(e, "Invalid txId 1 in the List");
        // Cycle spans: tally, count, pages of 100.
        let (_, v) = post(
            &api,
            path,
            json!({"startCycle": 5, "endCycle": 7, "type": "tally"}),
        )
        .await;
        let per = total / 150;
        let tally_key = if key == "receipts" {
            "receipts"
        } else {
            "originalTxsData"
        };
        let want: Vec<Value> = (5..=7)
            .map(|c| json!({"cycle": c, tally_key: per}))
            .collect();
        assert_eq!(v[key], json!(want), "{path} tally");
        let (_, v) = post(
            &api,
            path,
            json!({"startCycle": 0, "endCycle": 100, "type": "count"}),
        )
        .await;
        assert_eq!(v[key], json!(101 * per));
        let pages = (101 * per).div_ceil(100);
        let (_, v) = post(
            &api,
            path,
            json!({"startCycle": 0, "endCycle": 100, "page": pages}),
        )
        .await;
        let first = (pages - 1) * 100;
        assert_eq!(
            ids(&v, key, id),
            tx_ids(first..101 * per),
            "last page of the span"
        );
        let (_, v) = post(&api, path, json!({"startCycle": 149})).await;
        assert_eq!(
            ids(&v, key, id),
            tx_ids(149 * per..150 * per),
            "a missing endCycle: one cycle"
        );
        let (_, e) = refused(&api, path, json!({"startCycle": 0, "endCycle": 101})).await;
        assert_eq!(e, "Exceed maximum limit of 100 cycles");
        let (_, e) = refused(&api, path, json!({"startCycle": 0, "page": -1})).await;
        assert_eq!(e, "Invalid page number");
        // Selector order: count, txId, txIdList, start, startCycle; none: an empty list.
        let (_, v) = post(&api, path, json!({"count": 2, "start": 0})).await;
        assert_eq!(ids(&v, key, id), tx_ids((total - 2..total).rev()));
        let (_, v) = post(&api, path, json!({"start": 0, "startCycle": 9})).await;
        assert_eq!(ids(&v, key, id), tx_ids(0..=0));
        let (s, v) = post(&api, path, json!({})).await;
        assert_eq!((s, keys(&v), &v[key]), (200, vec![key, "sign"], &json!([])));
    }
    // Rows: every column, JSON columns parsed; receipts' globalModification a boolean.
    let (_, v) = post(&api, "/receipt", json!({"txId": id64("tx", 7)})).await;
    let r = &v["receipts"][0];
    assert_eq!(
        keys(r),
        [
            "afterStates",
            "appReceiptData",
            "applyTimestamp",
            "beforeStates",
            "cycle",
            "executionShardKey",
            "globalModification",
            "receiptId",
            "signedReceipt",
            "timestamp",
            "tx"
        ]
    );
    assert!(
        r["globalModification"].is_boolean() && r["tx"].is_object(),
        "{r}"
    );
    let (_, v) = post(&api, "/originalTx", json!({"txId": id64("tx", 7)})).await;
    let t = &v["originalTxs"][0];
    assert_eq!(keys(t), ["cycle", "originalTxData", "timestamp", "txId"]);
    assert!(t["originalTxData"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_columns_stay_null() {
    let api = start(true).await;
    let layout = api.db.clone().unwrap();
    let path = layout.path_of(firehose_dbstore::Store::Receipts);
    let conn = rusqlite::Connection::open(path).unwrap();
    let id = id64("nulls", 1);
    conn.execute(
        "INSERT INTO receipts (receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, afterStates, beforeStates, appReceiptData, executionShardKey, globalModification) VALUES (?1, '{\"b\":2,\"a\":1}', 200, 9, 5, '{}', NULL, '', NULL, 'k', 1)",
        [&id],
    )
    .unwrap();
    let (_, v) = post(&api, "/receipt", json!({"txId": id})).await;
    let r = &v["receipts"][0];
    assert_eq!(r["tx"], json!({"a": 1, "b": 2}));
    for k in ["afterStates", "appReceiptData"] {
        assert_eq!(r[k], Value::Null, "{k} stays null");
    }
    assert_eq!(
        r["beforeStates"],
        json!(""),
        "an empty JSON column stays as it is"
    );
    assert_eq!(r["globalModification"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_transactions_as_the_original() {
    let api = start(true).await;
    for (path, key, total_key, id) in [
        ("/account", "accounts", "totalAccounts", "accountId"),
        ("/transaction", "transactions", "totalTransactions", "txId"),
    ] {
        let label = if key == "accounts" { "account" } else { "tx" };
        let want = |r: std::ops::Range<u64>| r.map(|n| id64(label, n)).collect::<Vec<_>>();
        let (s, v) = post(&api, path, json!({"startCycle": 0, "endCycle": 5})).await;
        assert_eq!((s, keys(&v)), (200, vec!["sign", total_key]));
        assert_eq!(v[total_key], json!(30));
        let (_, v) = post(
            &api,
            path,
            json!({"startCycle": 0, "endCycle": 5, "page": 1}),
        )
        .await;
        let mut want_keys = vec![key, "sign", total_key];
        want_keys.sort_unstable();
        assert_eq!(keys(&v), want_keys);
        assert_eq!(
            ids(&v, key, id),
            want(0..30),
            "{path}: in (cycleNumber, timestamp) order"
        );
        let (_, v) = post(
            &api,
            path,
            json!({"startCycle": 1, "endCycle": 1, "page": 2}),
        )
        .await;
        assert_eq!((&v[key], &v[total_key]), (&json!([]), &json!(10)));
        let (_, v) = post(&api, path, json!({"start": 0, "end": 1000})).await;
        assert_eq!(ids(&v, key, id), want(0..30));
        let (_, e) = refused(&api, path, json!({"start": 0, "end": 1001})).await;
        assert_eq!(e, format!("Exceed maximum limit of 1000 {key}"));
        let (_, v) = post(&api, path, json!({"count": 3})).await;
        assert_eq!(
            ids(&v, key, id),
            want(27..30).into_iter().rev().collect::<Vec<_>>()
        );
        let (_, v) = post(&api, path, json!({id: id64(label, 4)})).await;
        assert_eq!(ids(&v, key, id), want(4..5));
        let (s, v) = post_unchecked(&api, path, json!({})).await;
        assert_eq!(s, 400);
        assert_eq!(
            v,
            json!({"success": false, "error": "not specified which account to show"})
        );
    }
    let (_, v) = post(&api, "/account", json!({"accountId": id64("account", 0)})).await;
    let a = &v["accounts"][0];
    assert_eq!(
        keys(a),
        [
            "accountId",
            "cycleNumber",
            "data",
            "hash",
            "isGlobal",
            "timestamp"
        ]
    );
    assert_eq!(
        (&a["isGlobal"], &a["data"]),
        (&json!(1), &json!({"balance": 0})),
        "booleans stay numbers"
    );
    let (_, v) = post(
        &api,
        "/transaction",
        json!({"appReceiptId": id64("app", 6)}),
    )
    .await;
    assert_eq!(ids(&v, "transactions", "txId"), [id64("tx", 6)]);
    assert_eq!(v["transactions"][0]["data"], json!({"n": 6}));
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
        assert!(head.contains("text/plain"), "{head}");
        assert!(
            body.contains(
                "firehose_distributor_http_refused_total{route=\"/receipt\",reason=\"bad_request\"} 1"
            ),
            "{body}"
        );
    }
}
