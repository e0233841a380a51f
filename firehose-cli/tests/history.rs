//! `firehose history` against the demo distributor (a real process on loopback): verified
//! replies, paging ranges, a refused key and a reply tampered with on the way.

mod support;

use support::*;

#[test]
fn history_verifies_replies_and_pages_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen(dir.path(), "listed.json");
    let (unlisted, _) = keygen(dir.path(), "unlisted.json");
    let demo = Demo::start(dir.path(), &public);
    let key = key.to_str().unwrap();
    let http = demo.http();

    // The simulated archiver writes 20 receipts a cycle: wait for 300.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = firehose(&["history", "/totalData", "--url", &http, "--key-file", key]);
        assert!(out.status.success(), "{}", stderr(&out));
        let totals: Value = serde_json::from_slice(&out.stdout).unwrap();
        if totals["totalReceipts"].as_u64().unwrap() >= 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo wrote too few receipts: {totals}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 250 receipts by row offset: three requests (101 + 101 + 48 rows), in order.
    let out = firehose(&[
        "history",
        "receipt",
        r#"{"start": 0, "end": 249}"#,
        "--all",
        "--url",
        &http,
        "--key-file",
        key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = stdout_lines(&out);
    assert_eq!(rows.len(), 250);
    let ids: std::collections::HashSet<_> = rows
        .iter()
        .map(|r| r["receiptId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 250, "no row twice");
    let order: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["cycle"].as_u64().unwrap(),
                r["timestamp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "rows in (cycle, timestamp) order"
    );

    // Every cycle up to the newest: consecutive counters from 0.
    let out = firehose(&[
        "history",
        "/cycleinfo",
        "--all",
        "--url",
        &http,
        "--key-file",
        key,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counters: Vec<u64> = stdout_lines(&out)
        .iter()
        .map(|c| c["counter"].as_u64().unwrap())
        .collect();
    assert!(counters.len() > 1);
    assert_eq!(counters, (0..counters.len() as u64).collect::<Vec<_>>());

    // A refused request says why.
    let out = firehose(&[
        "history",
        "/totalData",
        "--url",
        &http,
        "--key-file",
        unlisted.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));

    // A reply changed on the way (one digit of `pid`) does not verify, and is not printed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = rt.block_on(tamper_proxy(demo.port));
    let via_proxy = format!("http://{proxy}");
    let out = firehose(&[
        "history",
        "/totalData",
        "--url",
        &via_proxy,
        "--key-file",
        key,
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));
}
