//! The history HTTP API on a fixture database: signed requests, signed replies, limits, errors.

use firehose_core::fixtures::id64;
use serde_json::{json, Value};

use firehose_testkit as common;

use common::api::{keys, post, post_unchecked, start, Api};

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
