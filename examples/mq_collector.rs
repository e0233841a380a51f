//! A collector in MQ mode: consumes the three queues of a consumer group (declared by
//! `firehose-distributor --mode mq --mq-queue-prefix GROUP`, or by anyone), verifies every
//! message's distributor signature, appends the records to one JSON-lines file per queue, and
//! acks a message only after it is written. Duplicates (same `message_id`, after a redelivery)
//! can be dropped by that id. It uses `firehose-client` (feature `mq`) alone.
//!
//! ```text
//! MQ_QUEUE_PREFIX=collector1 DISTRIBUTOR_MODE=MQ ARCHIVER_DB_DIR=... DATA_LOG_DIR=... \
//!     cargo run --release -p firehose-distributor
//! cargo run --release --example mq_collector -- collector1
//! ```
//!
//! Settings (relayer-collector's names): RMQ_HOST, RMQ_PORT, RMQ_USER, RMQ_PASS, and
//! RMQ_CYCLES_QUEUE_NAME / RMQ_RECEIPTS_QUEUE_NAME / RMQ_ORIGINAL_TXS_QUEUE_NAME to override
//! the group's queue names; DISTRIBUTOR_PUBKEY (default: the dev key).

use std::io::Write;
use std::time::{Duration, Instant};

use firehose::client::core::crypto::PublicKey;
use firehose::client::core::protocol::DEV_PUBLIC_KEY;
use firehose::client::core::records::DataType;
use firehose::client::mq::{broker_uri, queue_names, redacted, MqConsumer};

#[tokio::main]
async fn main() {
    let group = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "collector1".into());
    let env = |k: &str| std::env::var(k).ok();
    let uri = broker_uri(env).unwrap_or_else(|e| {
        eprintln!("mq_collector: {e}");
        std::process::exit(2)
    });
    let key = PublicKey::from_hex(&env("DISTRIBUTOR_PUBKEY").unwrap_or(DEV_PUBLIC_KEY.into()))
        .unwrap_or_else(|e| {
            eprintln!("mq_collector: DISTRIBUTOR_PUBKEY: {e}");
            std::process::exit(2)
        });
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_dir = tmp.path().join("collected");
    std::fs::create_dir_all(&out_dir).expect("output dir");
    println!(
        "mq_collector: group {group} on {}, storing into {}",
        redacted(&uri),
        out_dir.display()
    );
    let counts = std::sync::Arc::new(std::sync::Mutex::new([0u64; 3]));
    for (t, default_queue) in queue_names(&group) {
        let queue = match t {
            DataType::Cycle => env("RMQ_CYCLES_QUEUE_NAME"),
            DataType::OriginalTx => env("RMQ_ORIGINAL_TXS_QUEUE_NAME"),
            DataType::Receipt => env("RMQ_RECEIPTS_QUEUE_NAME"),
        }
        .unwrap_or(default_queue);
        let path = out_dir.join(format!("{queue}.jsonl"));
        let mut out = std::fs::File::create(&path).expect("output file");
        let (uri, counts) = (uri.clone(), counts.clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            loop {
                let mut c = match MqConsumer::connect(&uri, &queue, 20, key).await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("mq_collector: {queue}: {e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                };
                backoff = Duration::from_millis(250);
                while let Some(d) = c.next().await {
                    let d = match d {
                        Ok(d) => d,
                        Err(e) => {
                            eprintln!("mq_collector: {queue}: {e}");
                            continue;
                        }
                    };
                    let line = d.record.record.to_canonical_json() + "\n";
                    let ok = match out.write_all(line.as_bytes()) {
                        Ok(()) => d.ack().await,
                        Err(e) => {
                            eprintln!("mq_collector: storing: {e}; requeueing");
                            d.nack_requeue().await
                        }
                    };
                    if ok.is_err() {
                        break;
                    }
                    counts.lock().expect("counts")[t.index()] += 1;
                }
                eprintln!("mq_collector: {queue}: connection lost; reconnecting");
            }
        });
    }
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let n = std::mem::take(&mut *counts.lock().expect("counts"));
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        println!(
            "mq_collector: cycles {:.0}/s, original txs {:.0}/s, receipts {:.0}/s",
            n[0] as f64 / secs,
            n[1] as f64 / secs,
            n[2] as f64 / secs
        );
    }
}
