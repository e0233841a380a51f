//! Pages read from seek points are the rows the original's `OFFSET` query returns: with many
//! rows tied on (cycle, timestamp), rows inserted out of order, and rows added between pages
//! before and after the point.

use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::history::{Selection, Table};
use firehose_dbstore::history_json::JsonRows;
use firehose_dbstore::seek::SeekPoints;
use firehose_dbstore::{ArchiverDb, Layout};
use rusqlite::params;

/// A receipt row with `cycle` and `timestamp`, id `n`.
fn insert_receipt(c: &rusqlite::Connection, n: u64, cycle: u64, timestamp: u64) {
    c.execute(
        "INSERT INTO receipts (receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, \
         afterStates, beforeStates, appReceiptData, executionShardKey, globalModification) \
         VALUES (?1, '{}', ?2, ?3, ?3, '{}', '[]', '[]', '{}', 'k', 0)",
        params![format!("extra-{n:06}"), cycle as i64, timestamp as i64],
    )
    .unwrap();
}

fn insert_tx(c: &rusqlite::Connection, n: u64, cycle: u64, timestamp: u64) {
    c.execute(
        "INSERT INTO originalTxsData (txId, timestamp, cycle, originalTxData) VALUES (?1, ?2, ?3, '{}')",
        params![format!("extra-{n:06}"), timestamp as i64, cycle as i64],
    )
    .unwrap();
}

/// A database whose rows tie on (cycle, timestamp) in groups of up to 40, written in an order
/// unrelated to the sort order (so rowid order within a tie is the only tie-break).
fn tied_database(dir: &std::path::Path) -> (Layout, rusqlite::Connection) {
    let layout = Layout::SingleFile(dir.join("archiver.sqlite3"));
    let spec = FixtureSpec {
        cycles: 8,
        receipts_per_cycle: 20,
        txs_per_cycle: 20,
        receipt_bytes: 64,
        ..FixtureSpec::default()
    };
    fixture::build(&layout, &spec).unwrap();
    let c = rusqlite::Connection::open(dir.join("archiver.sqlite3")).unwrap();
    // A permutation walk over 0..600 (7 is prime to 600): cycles and timestamps jump around.
    for i in 0..600u64 {
        let n = (i * 7) % 600;
        let (cycle, timestamp) = (n % 8, 1_000 + (n / 40) % 5);
        insert_receipt(&c, n, cycle, timestamp);
        insert_tx(&c, n, cycle, timestamp);
    }
    (layout, c)
}

fn page(
    db: &ArchiverDb,
    table: Table,
    skip: u64,
    limit: u64,
    seeks: Option<&SeekPoints>,
) -> Vec<u8> {
    let mut rows = JsonRows::new();
    let sel = Selection::Offset { skip, limit };
    match seeks {
        Some(s) => db.history_json_seeking(table, sel, &mut rows, s),
        None => db.history_json(table, sel, &mut rows),
    }
    .unwrap();
    rows.finish()
}

#[test]
fn seeking_pages_are_the_offset_pages_in_both_collector_styles() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _c) = tied_database(dir.path());
    let db = ArchiverDb::open(&layout).unwrap();
    for table in [Table::Receipts, Table::OriginalTxs] {
        // `end = start + 100` (101 rows), stepping by 100 (overlap) or by 101.
        for step in [100u64, 101, 7] {
            let seeks = SeekPoints::default();
            let mut start = 0;
            let mut pages = 0;
            loop {
                let got = page(&db, table, start, step + 1, Some(&seeks));
                let want = page(&db, table, start, step + 1, None);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "{table:?} step {step} start {start}"
                );
                pages += 1;
                if want == b"[]" {
                    break;
                }
                start += step;
            }
            assert_eq!(seeks.hits() + seeks.misses(), pages);
            // Only the first page walks, and the one past the end when the last page was
            // short (no page ended where it starts).
            assert!(
                seeks.misses() <= 2,
                "{table:?} step {step}: {}",
                seeks.misses()
            );
        }
    }
}

#[test]
fn rows_added_before_a_point_send_the_page_back_to_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, c) = tied_database(dir.path());
    let db = ArchiverDb::open(&layout).unwrap();
    let seeks = SeekPoints::default();
    let table = Table::Receipts;
    page(&db, table, 0, 101, Some(&seeks));
    // After the point (a later cycle): the point still holds.
    insert_receipt(&c, 10_001, 50, 5);
    let got = page(&db, table, 101, 101, Some(&seeks));
    assert_eq!(got, page(&db, table, 101, 101, None));
    assert_eq!(seeks.hits(), 1);
    // Before the point (cycle 0, in a tie group already passed): offsets moved by one.
    insert_receipt(&c, 10_002, 0, 1_000);
    let got = page(&db, table, 202, 101, Some(&seeks));
    assert_eq!(got, page(&db, table, 202, 101, None));
    assert_eq!((seeks.hits(), seeks.misses()), (1, 2));
    // Rows added after the point: the point holds.
    let next = page(&db, table, 303, 101, Some(&seeks));
    assert_eq!(next, page(&db, table, 303, 101, None));
    assert_eq!(seeks.hits(), 2);
    // Too many rows added since the point to check them all (all after it): walked again.
    c.execute_batch("BEGIN").unwrap();
    for n in 0..=firehose_dbstore::seek::MAX_ROWS_ADDED as u64 {
        insert_receipt(&c, 20_000 + n, 60, 5);
    }
    c.execute_batch("COMMIT").unwrap();
    let got = page(&db, table, 404, 101, Some(&seeks));
    assert_eq!(got, page(&db, table, 404, 101, None));
    assert_eq!((seeks.hits(), seeks.misses()), (2, 3));
}

#[test]
fn a_bounded_number_of_points_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, _c) = tied_database(dir.path());
    let db = ArchiverDb::open(&layout).unwrap();
    let seeks = SeekPoints::new(4);
    for start in 0..50 {
        page(&db, Table::Receipts, start * 3, 3, Some(&seeks));
    }
    // Consecutive pages: each one after the first starts at a point the previous one left.
    assert_eq!(seeks.misses(), 1);
    // Going back to the start finds nothing kept for it.
    page(&db, Table::Receipts, 3, 3, Some(&seeks));
    assert_eq!(seeks.misses(), 2);
    // No points at all: every page walks.
    let none = SeekPoints::new(0);
    page(&db, Table::Receipts, 0, 3, Some(&none));
    page(&db, Table::Receipts, 3, 3, Some(&none));
    assert_eq!((none.hits(), none.misses()), (0, 2));
}
