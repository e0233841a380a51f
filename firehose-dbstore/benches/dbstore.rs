//! DB paging figures on a 100k-receipt archiver fixture.
//!
//! `cargo bench -p firehose-dbstore --bench dbstore` prints the figures; under `cargo test`
//! (no `--bench` flag) it runs on a small fixture.
#![allow(missing_docs)]

use std::time::Instant;

use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::{ArchiverDb, Layout};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let spec = FixtureSpec {
        cycles: if full { 1000 } else { 10 },
        receipts_per_cycle: 100,
        txs_per_cycle: 100,
        receipt_bytes: 1024,
        ..FixtureSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::Directory(dir.path().to_owned());
    let t = Instant::now();
    fixture::build(&layout, &spec).unwrap();
    let total = spec.cycles * spec.receipts_per_cycle;
    println!(
        "fixture: {total} receipts + {} original txs built in {:.1} s",
        spec.cycles * spec.txs_per_cycle,
        t.elapsed().as_secs_f64()
    );

    let db = ArchiverDb::open(&layout).unwrap();
    for page in [100usize, 1000] {
        let t = Instant::now();
        let mut n = 0u64;
        for p in db.pages::<firehose_core::records::Receipt>(0, spec.cycles, page) {
            n += p.unwrap().len() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(n, total);
        println!(
            "db paging: receipts, page {page}: {:.0} entries/s ({n} in {secs:.2} s)",
            n as f64 / secs
        );
    }
    let t = Instant::now();
    let mut key = None;
    let mut n = 0u64;
    loop {
        let page = db
            .rows_after::<firehose_core::records::OriginalTxData>(
                0,
                spec.cycles,
                key.as_ref(),
                1000,
            )
            .unwrap();
        let Some(last) = page.last() else { break };
        key = Some(firehose_dbstore::PageKey::from(last));
        n += page.len() as u64;
    }
    println!(
        "db paging: original txs, page 1000: {:.0} entries/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for c in 0..100 {
        db.history_tally(
            firehose_dbstore::history::Table::Receipts,
            c * 10,
            c * 10 + 99,
        )
        .unwrap();
    }
    println!(
        "db tally: 100-cycle receipt counts: {:.0} us/query",
        t.elapsed().as_micros() as f64 / 100.0
    );
}
