//! Data-log lines as the original forwards them: any JSON object, keys in any order, `null` or
//! missing fields. Each reaches a collector signed over its canonical form, so the Shardus
//! crypto check (`verifyObj`: hash of `safeStringify` of the message) passes.

use std::time::Duration;

use firehose_core::canonical::safe_stringify;
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::subscription::{encode_query_value, SubscriptionRequest, SubscriptionType};
use firehose_distributor::auth::now_ms;
use firehose_distributor::config::Config;
use firehose_distributor::Distributor;
use firehose_logreader::writer::{DataLogWriter, WriterOptions};
use futures::StreamExt;
use serde_json::Value;

use firehose_testkit as common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_null_and_missing_fields_are_forwarded_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "originalTx", WriterOptions::default()).unwrap();
    w.flush().unwrap();
    let cfg = Config {
        data_log_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let d = Distributor::new(cfg).unwrap();
    d.start_readers().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });

    // A collector as Shardeum's connects: a signed subscription in `?data=`.
    let keys = KeyPair::from_seed([3; 32]);
    let crypto = Crypto::default();
    let req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), now_ms());
    let url = format!(
        "{base}/?data={}",
        encode_query_value(&req.sign(&crypto, &keys))
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    common::run::wait_sessions(&d, 1).await;

    let lines = [
        // JSON.stringify of an older writer: insertion order, not sorted.
        r#"{"txId":"aa","timestamp":5,"cycle":1,"originalTxData":{"z":1,"a":[2.50,1e3]}}"#,
        // Python's json.dumps: spaces.
        r#"{"cycle": 1, "originalTxData": {}, "timestamp": 6, "txId": "bb"}"#,
        // A null where the typed record wants a number.
        r#"{"cycle":null,"originalTxData":{"x":1},"timestamp":7,"txId":"cc"}"#,
        // A missing field.
        r#"{"originalTxData":{},"timestamp":8,"txId":"dd"}"#,
        // Canonical already.
        r#"{"cycle":2,"originalTxData":{},"timestamp":9,"txId":"ee"}"#,
    ];
    for l in lines {
        w.append(l.as_bytes()).unwrap();
    }
    w.flush().unwrap();

    for (i, l) in lines.iter().enumerate() {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("line {i} was not forwarded"))
            .unwrap()
            .unwrap();
        let text = msg.into_text().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            crypto.verify_obj(&v).unwrap(),
            d.public_key(),
            "line {i} verifies"
        );
        let entry: Value = serde_json::from_str(l).unwrap();
        assert_eq!(
            safe_stringify(&v["originalTx"]),
            safe_stringify(&entry),
            "line {i}: the same entry (as JavaScript reads it), nulls kept"
        );
        assert_eq!(
            text,
            safe_stringify(&v),
            "line {i}: the message is canonical"
        );
    }
    let metrics = common::get(&base, "/metrics").await;
    for want in [
        "firehose_distributor_reader_untyped_total{data_type=\"originalTx\"} 2",
        "firehose_distributor_reader_recanonicalized_total{data_type=\"originalTx\"} 2",
        "firehose_distributor_reader_entries_total{data_type=\"originalTx\"} 5",
        "firehose_distributor_reader_malformed_total{data_type=\"originalTx\"} 0",
    ] {
        assert!(metrics.contains(want), "{want}\n{metrics}");
    }
}

/// Lines JavaScript reads and `serde_json` alone does not (lone surrogates, `1e400`, deep
/// nesting), and keys `safeJsonParse` drops: forwarded as lib-types would canonicalise them
/// (the vectors of `firehose-core/tests/data/js-compat.json`, made with the JS library), and
/// each verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_only_javascript_reads_are_forwarded_as_it_reads_them() {
    use firehose_core::message::SignedRecord;
    let doc: Value = serde_json::from_str(include_str!(
        "../../firehose-core/tests/data/js-compat.json"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut w = DataLogWriter::open(dir.path(), "originalTx", WriterOptions::default()).unwrap();
    w.flush().unwrap();
    let cfg = Config {
        data_log_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let d = Distributor::new(cfg).unwrap();
    d.start_readers().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let server = d.clone();
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    let keys = KeyPair::from_seed([4; 32]);
    let crypto = Crypto::default();
    let req = SubscriptionRequest::new(SubscriptionType::Firehose, keys.public_key(), now_ms());
    let url = format!(
        "{base}/?data={}",
        encode_query_value(&req.sign(&crypto, &keys))
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    common::run::wait_sessions(&d, 1).await;

    // Each vector as an original transaction's data (one level deeper than the vector).
    let mut want = Vec::new();
    for (i, v) in doc["vectors"].as_array().unwrap().iter().enumerate() {
        let (Some(canonical), line) = (v["canonical"].as_str(), v["line"].as_str().unwrap()) else {
            continue;
        };
        if v["name"].as_str().unwrap().starts_with("512") {
            continue; // one level more is past the bound
        }
        let entry = |data: &str| {
            format!(r#"{{"txId":"t{i}","timestamp":{i},"cycle":1,"originalTxData":{data}}}"#)
        };
        w.append(entry(line).as_bytes()).unwrap();
        let expected =
            format!(r#"{{"cycle":1,"originalTxData":{canonical},"timestamp":{i},"txId":"t{i}"}}"#);
        want.push((v["name"].as_str().unwrap().to_owned(), expected));
    }
    // Deeper than the bound: reported and skipped, and the next line still arrives.
    let deep = format!(
        r#"{{"txId":"deep","x":{}1{}}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    w.append(deep.as_bytes()).unwrap();
    let last = r#"{"cycle":2,"originalTxData":{},"timestamp":99,"txId":"last"}"#;
    w.append(last.as_bytes()).unwrap();
    want.push(("after the deep line".into(), last.to_owned()));
    w.flush().unwrap();

    for (name, expected) in &want {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("{name}: not forwarded"))
            .unwrap()
            .unwrap();
        let text = msg.into_text().unwrap();
        let signed = SignedRecord::verify_json(&crypto, text.as_bytes(), &d.public_key())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            signed.record.id(),
            expected
                .split("\"txId\":\"")
                .nth(1)
                .unwrap()
                .trim_end_matches("\"}")
        );
        let v = firehose_core::canonical::safe_parse(&text).unwrap();
        assert_eq!(
            safe_stringify(&v["originalTx"]),
            *expected,
            "{name}: forwarded as lib-types canonicalises it"
        );
    }
    let metrics = common::get(&base, "/metrics").await;
    assert!(
        metrics.contains("firehose_distributor_reader_malformed_total{data_type=\"originalTx\"} 1"),
        "{metrics}"
    );
}
