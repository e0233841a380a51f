//! One collector that resumes from the start and never reads, plus a burst of history
//! requests, must cost a healthy collector nothing: it receives every entry of a whole lap of
//! the log ring, and the readers never gap. (Before: the stalled back-fill held the database
//! lock while it waited on its socket, history requests queued behind it on the blocking pool,
//! and the log readers, on the same pool, were lapped by the ring.)

use firehose_testkit as common;

use std::time::Duration;

use common::api::signed;
use common::run::start;
use firehose_client::{Client, ClientConfig};
use firehose_core::crypto::KeyPair;
use firehose_core::records::Record;
use firehose_dbstore::fixture::FixtureSpec;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A signed POST on a fresh connection; the status (0 if the connection failed).
async fn post_status(addr: &str, path: &str, body: String) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_backfill_and_a_request_burst_cost_a_live_collector_nothing() {
    let spec = FixtureSpec {
        receipts_per_cycle: 40,
        txs_per_cycle: 10,
        receipt_bytes: 4096,
        ..FixtureSpec::default()
    };
    // 200 receipts a file, a ring of 10: a lap is 50 cycles. The healthy collector does not
    // read until the end: its queue holds everything (90 cycles of 51 messages).
    let mut run = start(spec, 200, |c| c.client_queue_capacity = 10_000).await;
    // The healthy collector, live from the start: it must get every record written.
    let healthy = ClientConfig::new(&run.url, KeyPair::from_seed([2; 32]), run.d.public_key());
    let mut sub = Client::connect(&healthy).await.unwrap();
    common::run::wait_sessions(&run.d, 1).await;
    // History for the back-fill: 40 cycles, about 7 MB, far more than socket buffers hold.
    let mut written: Vec<Record> = Vec::new();
    for _ in 0..40 {
        written.extend(run.sim.write_cycle().unwrap());
    }
    // The stalled collector: resumes from the start, then never reads.
    let mut stalled = ClientConfig::new(&run.url, KeyPair::from_seed([1; 32]), run.d.public_key());
    stalled.since = Some(common::run::from_the_start());
    let (_stalled_ws, _) = tokio_tungstenite::connect_async(stalled.signed_url())
        .await
        .unwrap();
    common::run::wait_sessions(&run.d, 2).await;
    // Let the back-fill fill the stalled socket.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A burst of history requests, all at once.
    let addr = run.url.trim_start_matches("ws://").to_owned();
    let keys = KeyPair::from_seed([3; 32]);
    let burst: Vec<_> = (0..300)
        .map(|i| {
            let (path, body) = if i % 2 == 0 {
                ("/totalData", signed(json!({}), &keys))
            } else {
                (
                    "/receipt",
                    signed(json!({"start": i, "end": i + 100}), &keys),
                )
            };
            let addr = addr.clone();
            tokio::spawn(async move { post_status(&addr, path, body).await })
        })
        .collect();

    // Meanwhile the archiver writes a whole lap of every ring.
    for _ in 0..50 {
        written.extend(run.sim.write_cycle().unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    common::receive_all(&mut sub, &written, "healthy collector").await;
    let mut statuses = std::collections::BTreeMap::new();
    for b in burst {
        *statuses.entry(b.await.unwrap()).or_insert(0) += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 503),
        "every history request answered (200, or 503 when busy): {statuses:?}"
    );
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "{statuses:?}");
    let metrics = common::get(&run.url, "/metrics").await;
    for t in ["cycle", "receipt", "originalTx"] {
        let line = format!("firehose_distributor_reader_gaps_total{{data_type=\"{t}\"}} 0");
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    assert_eq!(run.d.hub().metrics.slow_consumer_drops.get(), 0);
}

/// A back-fill whose collector stops reading is closed with 4001 after the send deadline,
/// like a slow live session, and holds nothing after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_the_collector_does_not_read_is_closed_with_4001() {
    use futures::StreamExt;
    let spec = FixtureSpec {
        receipts_per_cycle: 40,
        txs_per_cycle: 0,
        receipt_bytes: 16 * 1024,
        ..FixtureSpec::default()
    };
    let mut run = start(spec, 1000, |c| c.backfill_send_timeout_ms = 300).await;
    // About 40 MB: more than loopback socket buffers hold.
    for _ in 0..60 {
        run.sim.write_cycle().unwrap();
    }
    let mut stalled = ClientConfig::new(&run.url, KeyPair::from_seed([4; 32]), run.d.public_key());
    stalled.since = Some(common::run::from_the_start());
    let (mut ws, _) = tokio_tungstenite::connect_async(stalled.signed_url())
        .await
        .unwrap();
    // Not reading: the server's sends block, then the deadline passes and the session ends.
    for _ in 0..1000 {
        if run.d.hub().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(run.d.hub().is_empty(), "the stalled session is gone");
    assert_eq!(run.d.hub().metrics.slow_consumer_drops.get(), 1);
    // The collector reads what its socket still holds, then the end: the close frame (4001)
    // if it fit behind the data, or the connection's end.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                if let Some(f) = frame {
                    assert_eq!(u16::from(f.code), 4001);
                }
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the connection was not closed"),
        }
    }
}
