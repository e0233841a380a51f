//! The simulated archiver on its own: writes cycles, original transactions and receipts into
//! data logs (rotating exactly like the archiver's DataLogWriter) and an archiver-shaped SQLite
//! database, in a directory of your choice. Point a distributor at it:
//!
//! ```text
//! cargo run --release --example archiver_sim -- /tmp/arch --interval-ms 500
//! DATA_LOG_DIR=/tmp/arch/data-logs/127.0.0.1_4000 ARCHIVER_DB_DIR=/tmp/arch/db \
//!     cargo run --release -p firehose-distributor -- serve
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use firehose::dbstore::fixture::FixtureSpec;
use firehose::sim::ArchiverSim;

/// Simulated Shardeum archiver: data logs + SQLite.
#[derive(Debug, Parser)]
struct Args {
    /// Directory to write into (`data-logs/127.0.0.1_4000/` and `db/` are created in it).
    dir: PathBuf,
    /// Pause between cycles.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many cycles (default: run until interrupted).
    #[arg(long)]
    cycles: Option<u64>,
    /// Receipts (and original transactions) per cycle.
    #[arg(long, default_value_t = 20)]
    per_cycle: u64,
    /// Approximate size of a receipt in bytes.
    #[arg(long, default_value_t = 1024)]
    receipt_bytes: usize,
    /// Entries per log file before rotating (the archiver's maxEntries).
    #[arg(long, default_value_t = 10_000)]
    max_entries: u64,
}

fn main() {
    let a = Args::parse();
    let spec = FixtureSpec {
        receipts_per_cycle: a.per_cycle,
        txs_per_cycle: a.per_cycle,
        receipt_bytes: a.receipt_bytes,
        ..FixtureSpec::default()
    };
    let mut sim = ArchiverSim::create(&a.dir, spec, a.max_entries).unwrap_or_else(|e| {
        eprintln!("archiver_sim: {}: {e:#}", a.dir.display());
        std::process::exit(2)
    });
    println!(
        "archiver_sim: DATA_LOG_DIR={} ARCHIVER_DB_DIR={}",
        sim.log_dir().display(),
        match sim.layout() {
            firehose::dbstore::Layout::Directory(d) | firehose::dbstore::Layout::Named(d, _) =>
                d.display().to_string(),
            firehose::dbstore::Layout::SingleFile(f) => f.display().to_string(),
        }
    );
    let mut n = 0u64;
    while a.cycles.is_none_or(|max| n < max) {
        if let Err(e) = sim.write_cycle() {
            eprintln!("archiver_sim: write failed: {e:#}");
            std::process::exit(1);
        }
        n += 1;
        if n.is_multiple_of(10) {
            println!("archiver_sim: {n} cycles written");
        }
        std::thread::sleep(Duration::from_millis(a.interval_ms));
    }
}
