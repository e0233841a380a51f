//! A Rust collector built on `firehose-client` alone: connects to a distributor (default: the
//! demo on 127.0.0.1:6100), checks every message's distributor signature, appends the records
//! to one JSON-lines file per type and prints a progress line every second. It reconnects
//! with back-off and resumes with `since`, so a dropped connection loses nothing. Several
//! URLs, comma-separated, are distributors to fail over between (over the same archiver
//! data, signing with the same key): a close or an error resumes on the next one.
//!
//! ```text
//! cargo run --release -p firehose-distributor -- demo        # in one terminal
//! cargo run --example collector -- [WS_URL[,WS_URL...]] [DISTRIBUTOR_PUBLIC_KEY] [OUT_DIR]
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use firehose::client::core::crypto::{KeyPair, PublicKey};
use firehose::client::core::protocol::DEV_PUBLIC_KEY;
use firehose::client::core::records::{DataType, Record};
use firehose::client::core::since::now_ms;
use firehose::client::{ClientConfig, ResumingClient};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let urls = args.next().unwrap_or_else(|| "ws://127.0.0.1:6100".into());
    let mut urls = urls.split(',').map(str::trim).filter(|u| !u.is_empty());
    let url = urls.next().unwrap_or("ws://127.0.0.1:6100").to_owned();
    let fallbacks: Vec<String> = urls.map(str::to_owned).collect();
    let key = args.next().unwrap_or_else(|| DEV_PUBLIC_KEY.into());
    let distributor_key = PublicKey::from_hex(&key).unwrap_or_else(|e| {
        eprintln!("collector: distributor public key: {e}");
        std::process::exit(2)
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let out_dir = args
        .next()
        .map(Into::into)
        .unwrap_or_else(|| tmp.path().join("collected"));
    let mut files = Files::create(&out_dir).unwrap_or_else(|e| {
        eprintln!("collector: {}: {e}", out_dir.display());
        std::process::exit(2)
    });
    let cfg = ClientConfig::new(&url, KeyPair::generate(), distributor_key);
    println!(
        "collector {} storing into {}",
        cfg.keys.public_key(),
        out_dir.display()
    );

    let mut counts: BTreeMap<DataType, u64> = BTreeMap::new();
    let mut last_print = Instant::now();
    let mut client = fallbacks.iter().fold(ResumingClient::new(cfg), |c, u| {
        c.with_fallback(u, distributor_key)
    });
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
            lag_ms = now_ms().saturating_sub(r.timestamp);
        }
        if let Err(e) = files.append(&signed.record) {
            eprintln!("collector: storing: {e}");
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = files.flush() {
                eprintln!("collector: storing: {e}");
            }
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

/// `<dir>/<type>.jsonl`, one canonical record per line.
struct Files([std::io::BufWriter<std::fs::File>; 3]);

impl Files {
    fn create(dir: &std::path::Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let open = |t: DataType| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{}.jsonl", t.log_name())))
                .map(std::io::BufWriter::new)
        };
        Ok(Self([
            open(DataType::Cycle)?,
            open(DataType::OriginalTx)?,
            open(DataType::Receipt)?,
        ]))
    }

    fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let file = &mut self.0[record.data_type().index()];
        file.write_all(record.to_canonical_json().as_bytes())?;
        file.write_all(b"\n")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(Write::flush)
    }
}
