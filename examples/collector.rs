//! A Rust collector: connects to a distributor (default: the demo on 127.0.0.1:6100), checks
//! every message's distributor signature, stores the records in its own SQLite database and
//! prints a progress line every second. Reconnects with back-off and resumes with `since`.
//!
//! ```text
//! cargo run --release -p firehose-distributor -- demo        # in one terminal
//! cargo run --example collector -- [WS_URL] [DISTRIBUTOR_PUBLIC_KEY] [DB_DIR]
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firehose::core::crypto::{KeyPair, PublicKey};
use firehose::core::records::{DataType, Record};
use firehose::dbstore::fixture::DbWriter;
use firehose::dbstore::Layout;
use firehose::distributor::client::{ClientConfig, ResumingClient};
use firehose::distributor::config::DEV_PUBLIC_KEY;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:6100".into());
    let key = args.next().unwrap_or_else(|| DEV_PUBLIC_KEY.into());
    let distributor_key = PublicKey::from_hex(&key).unwrap_or_else(|e| {
        eprintln!("collector: distributor public key: {e}");
        std::process::exit(2)
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let db_dir = args
        .next()
        .map(Into::into)
        .unwrap_or_else(|| tmp.path().join("collector-db"));
    let mut db = DbWriter::create(&Layout::Directory(db_dir.clone())).unwrap_or_else(|e| {
        eprintln!("collector: {e}");
        std::process::exit(2)
    });
    let cfg = ClientConfig::new(&url, KeyPair::generate(), distributor_key);
    println!(
        "collector {} storing into {}",
        cfg.keys.public_key(),
        db_dir.display()
    );

    let mut counts: BTreeMap<DataType, u64> = BTreeMap::new();
    let mut last_print = Instant::now();
    // Reconnects with back-off and resumes where it left off (`since`), so a dropped
    // connection loses nothing.
    let mut client = ResumingClient::new(cfg);
    let mut batch: Vec<Record> = Vec::new();
    let mut lag_ms = 0u64;
    loop {
        let signed = match client.next().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("collector: skipped a bad message: {e}");
                continue;
            }
        };
        *counts.entry(signed.record.data_type()).or_default() += 1;
        if let Record::Receipt(r) = &signed.record {
            lag_ms = firehose::distributor::auth::now_ms().saturating_sub(r.timestamp);
        }
        batch.push(signed.record);
        if last_print.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = db.write_batch(&batch) {
                eprintln!("collector: storing: {e}");
            }
            batch.clear();
            let secs = last_print.elapsed().as_secs_f64();
            let rates: Vec<String> = counts
                .iter()
                .map(|(t, n)| format!("{t} {:.0}/s", *n as f64 / secs))
                .collect();
            println!(
                "collector: {} | receipt lag {lag_ms} ms | connections {}",
                rates.join(", "),
                client.connects()
            );
            counts.clear();
            last_print = Instant::now();
        }
    }
}
