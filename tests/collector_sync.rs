//! Shardeum's relayer-collector's whole HTTP sync, request by request as its source makes
//! them (`../shared/spec/shardeum-distributor.md`, "How the collector uses it"), against a
//! fixture archiver database with genesis accounts and transactions: every reply has the keys
//! the collector reads, and the collector ends with every row, once, in order.

use firehose_core::fixtures::id64;
use serde_json::{json, Value};

// The distributor's test helpers (a distributor on a simulated archiver, signed HTTP).
use firehose_testkit as common;

use common::api::{keys, post, start_with, Api};

/// Genesis rows: over two pages of 1000.
const GENESIS: u64 = 2500;

/// The collector's `queryFromDistributor`: a signed POST whose reply must be a 200.
async fn query(api: &Api, path: &str, req: Value) -> Value {
    let (status, v) = post(api, path, req.clone()).await;
    assert_eq!(status, 200, "{path} {req}: {v}");
    assert_ne!(v["success"], json!(false), "{path} {req}: {v}");
    v
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collectors_sync_sequence_gets_every_row_once_in_order() {
    let api = start_with(Some(GENESIS)).await;

    // 1. Totals.
    let totals = query(&api, "/totalData", json!({})).await;
    let total = |k: &str| totals[k].as_u64().unwrap();
    assert_eq!(
        (
            total("totalCycles"),
            total("totalReceipts"),
            total("totalOriginalTxs")
        ),
        (150, 450, 300)
    );
    assert_eq!(
        (total("totalAccounts"), total("totalTransactions")),
        (GENESIS, GENESIS)
    );

    // 2. Genesis accounts and transactions: the total, then pages until a short one.
    for (path, key, total_key, id, label) in [
        (
            "/account",
            "accounts",
            "totalAccounts",
            "accountId",
            "account",
        ),
        (
            "/transaction",
            "transactions",
            "totalTransactions",
            "txId",
            "tx",
        ),
    ] {
        let v = query(&api, path, json!({"startCycle": 0, "endCycle": 5})).await;
        assert_eq!(keys(&v), ["sign", total_key]);
        assert_eq!(
            v[total_key],
            json!(GENESIS),
            "the collector needs the total first"
        );
        let mut got = Vec::new();
        for page in 1.. {
            let v = query(
                &api,
                path,
                json!({"startCycle": 0, "endCycle": 5, "page": page}),
            )
            .await;
            assert_eq!(
                v[total_key],
                json!(GENESIS),
                "page {page} carries the total"
            );
            let rows = list(&v, key);
            got.extend(rows.iter().map(|r| r[id].as_str().unwrap().to_owned()));
            if rows.len() < 1000 {
                assert_eq!(page, 3, "{path}: 1000 + 1000 + 500");
                break;
            }
        }
        let want: Vec<String> = (0..GENESIS).map(|n| id64(label, n)).collect();
        assert_eq!(got, want, "{path}: every genesis row once, in order");
    }

    // 3. Receipts, original txs and cycles: {start, end: start + 100}, next start = end + 1.
    // (101 rows, then 100 a request: 450 receipts take 5 requests.)
    for (path, key, id, n, want_requests) in [
        ("/receipt", "receipts", "receiptId", 450u64, 5),
        ("/originalTx", "originalTxs", "txId", 300, 3),
        ("/cycleinfo", "cycleInfo", "marker", 150, 2),
    ] {
        let (mut start, mut end, mut got, mut requests) = (0u64, 100u64, Vec::new(), 0);
        while (got.len() as u64) < n {
            requests += 1;
            assert!(requests <= 10, "{path}: the collector would loop forever");
            let v = query(&api, path, json!({"start": start, "end": end})).await;
            let rows = list(&v, key);
            got.extend(rows.iter().map(|r| r[id].as_str().unwrap().to_owned()));
            start = end + 1;
            end += 100;
        }
        let label = if key == "cycleInfo" { "cycle" } else { "tx" };
        let want: Vec<String> = (0..n).map(|i| id64(label, i)).collect();
        assert_eq!(got, want, "{path}: every row once, in order");
        assert_eq!(requests, want_requests, "{path}");
    }
    // Each page after the first started where the previous one ended: read from there, not
    // by walking the offset again.
    let metrics = common::get(&format!("ws://{}", api.addr), "/metrics").await;
    let counter = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(
        (
            counter("firehose_distributor_history_offset_walks_total"),
            counter("firehose_distributor_history_offset_seeks_total")
        ),
        (2, 6),
        "receipts 1 + 4, original txs 1 + 2"
    );

    // 4. Restart on a synced database: the tallies of the last cycles and the last 20 cycles.
    for (path, key, tally_key, per) in [
        ("/receipt", "receipts", "receipts", 3),
        ("/originalTx", "originalTxs", "originalTxsData", 2),
    ] {
        let v = query(
            &api,
            path,
            json!({"startCycle": 140, "endCycle": 149, "type": "tally"}),
        )
        .await;
        let want: Vec<Value> = (140..=149)
            .map(|c| json!({"cycle": c, tally_key: per}))
            .collect();
        assert_eq!(
            v[key],
            json!(want),
            "{path}: the tally the collector compares"
        );
    }
    let v = query(&api, "/cycleinfo", json!({"start": 130, "end": 149})).await;
    let counters: Vec<u64> = list(&v, "cycleInfo")
        .iter()
        .map(|c| c["counter"].as_u64().unwrap())
        .collect();
    assert_eq!(counters, (130..=149).collect::<Vec<_>>());

    // 5. Catch-up per cycle span: the count, then pages 1..=ceil(n / 100).
    for (path, key, id, per) in [
        ("/receipt", "receipts", "receiptId", 3u64),
        ("/originalTx", "originalTxs", "txId", 2),
    ] {
        let span = json!({"startCycle": 50, "endCycle": 149, "type": "count"});
        let n = query(&api, path, span).await[key].as_u64().unwrap();
        assert_eq!(n, 100 * per);
        let mut got = Vec::new();
        for page in 1..=n.div_ceil(100) {
            let v = query(
                &api,
                path,
                json!({"startCycle": 50, "endCycle": 149, "page": page}),
            )
            .await;
            got.extend(
                list(&v, key)
                    .iter()
                    .map(|r| r[id].as_str().unwrap().to_owned()),
            );
        }
        let want: Vec<String> = (50 * per..150 * per).map(|i| id64("tx", i)).collect();
        assert_eq!(got, want, "{path}: the span once, in order");
    }
}
