//! Every query on real SQLite files, in both layouts, including while a writer writes.

use firehose_core::records::{OriginalTxData, Receipt, Record};
use firehose_dbstore::fixture::{self, DbWriter, FixtureSpec};
use firehose_dbstore::history::{Selection, Table};
use firehose_dbstore::{ArchiverDb, Error, Layout, PageKey};

fn spec() -> FixtureSpec {
    FixtureSpec {
        cycles: 20,
        receipts_per_cycle: 7,
        txs_per_cycle: 5,
        receipt_bytes: 300,
        ..FixtureSpec::default()
    }
}

fn layouts(dir: &std::path::Path) -> Vec<Layout> {
    vec![
        Layout::Directory(dir.join("db")),
        Layout::SingleFile(dir.join("archiver.sqlite3")),
    ]
}

#[test]
fn queries_in_both_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    for layout in layouts(dir.path()) {
        fixture::build(&layout, &spec).unwrap();
        let db = ArchiverDb::open(&layout).unwrap();

        assert_eq!(db.history_count(Table::Cycles, None).unwrap(), 20);
        assert_eq!(db.count_rows::<Receipt>().unwrap(), 140);
        assert_eq!(db.history_count(Table::OriginalTxs, None).unwrap(), 100);
        assert_eq!(db.history_count(Table::Accounts, None).unwrap(), 0);
        assert_eq!(db.latest_cycle().unwrap().unwrap().counter, 19);
        let latest: Vec<u64> = db
            .latest_cycles(3)
            .unwrap()
            .iter()
            .map(|c| c.counter)
            .collect();
        assert_eq!(latest, vec![17, 18, 19]);
        let range: Vec<u64> = db
            .cycles_between(5, 9, 100)
            .unwrap()
            .iter()
            .map(|c| c.counter)
            .collect();
        assert_eq!(range, vec![5, 6, 7, 8, 9]);
        assert_eq!(db.cycles_between(5, 9, 2).unwrap().len(), 2);

        // Rows come back exactly as written.
        let (cycle, txs, receipts) = fixture::records_of_cycle(&spec, 4);
        assert_eq!(
            Record::Cycle(db.cycles_between(4, 4, 1).unwrap().remove(0)),
            cycle
        );
        let Record::Receipt(r0) = &receipts[0] else {
            panic!()
        };
        assert_eq!(
            Record::Receipt(
                db.row_by_key::<Receipt>(&PageKey::from(r0))
                    .unwrap()
                    .unwrap()
            ),
            receipts[0]
        );
        let Record::OriginalTx(t0) = &txs[0] else {
            panic!()
        };
        assert_eq!(
            Record::OriginalTx(
                db.row_by_key::<OriginalTxData>(&PageKey::from(t0))
                    .unwrap()
                    .unwrap()
            ),
            txs[0]
        );
        assert!(db
            .row_by_key::<Receipt>(&PageKey {
                cycle: 0,
                timestamp: 0,
                id: "nope".into()
            })
            .unwrap()
            .is_none());

        // Counts per cycle.
        let counts = db.history_tally(Table::Receipts, 3, 5).unwrap();
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.cycle, c.count))
                .collect::<Vec<_>>(),
            vec![(3, 7), (4, 7), (5, 7)]
        );
        assert_eq!(
            db.history_tally(Table::OriginalTxs, 0, 100).unwrap().len(),
            20
        );
        assert_eq!(db.history_count(Table::Receipts, Some((0, 1))).unwrap(), 14);
        assert_eq!(
            db.history_count(Table::OriginalTxs, Some((19, 30)))
                .unwrap(),
            5
        );

        // Offsets, latest.
        let rows = |t, sel| db.history_rows(t, sel).unwrap();
        let by_offset = rows(Table::Receipts, Selection::Offset { skip: 7, limit: 7 });
        assert!(by_offset.iter().all(|r| r["cycle"] == 1));
        let latest = rows(Table::Receipts, Selection::Latest { count: 3 });
        assert_eq!(latest[0]["cycle"], 19, "newest first");
        let sel = Selection::Offset {
            skip: 95,
            limit: 100,
        };
        assert_eq!(rows(Table::OriginalTxs, sel).len(), 5);
        assert_eq!(
            rows(Table::OriginalTxs, Selection::Latest { count: 2 }).len(),
            2
        );

        // Keyset paging walks a range exactly once, in order.
        let mut seen = Vec::new();
        for page in db.pages::<Receipt>(2, 11, 4) {
            let page = page.unwrap();
            assert!(page.len() <= 4);
            seen.extend(
                page.into_iter()
                    .map(|r| (r.cycle, r.timestamp, r.receipt_id)),
            );
        }
        assert_eq!(seen.len(), 70);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let after = PageKey {
            cycle: 3,
            timestamp: seen[7].1,
            id: seen[7].2.clone(),
        };
        let next = db
            .rows_after::<OriginalTxData>(3, 3, Some(&after), 100)
            .unwrap();
        assert!(next
            .iter()
            .all(|t| (t.cycle, t.timestamp, t.tx_id.clone())
                > (3, after.timestamp, after.id.clone())));
        assert_eq!(
            db.rows_after::<OriginalTxData>(0, 19, None, 1000)
                .unwrap()
                .len(),
            100
        );
    }
}

#[test]
fn reads_while_the_archiver_writes() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::Directory(dir.path().join("db"));
    let spec = spec();
    let mut w = DbWriter::create(&layout).unwrap();
    let (c0, t0, r0) = fixture::records_of_cycle(&spec, 0);
    w.write_batch(std::iter::once(&c0).chain(&t0).chain(&r0))
        .unwrap();
    let db = ArchiverDb::open(&layout).unwrap();
    let writer = std::thread::spawn(move || {
        for c in 1..spec.cycles {
            let (cy, t, r) = fixture::records_of_cycle(&spec, c);
            w.write_batch(std::iter::once(&cy).chain(&t).chain(&r))
                .unwrap();
        }
    });
    let mut last = 0;
    while last < 19 {
        let now = db.latest_cycle().unwrap().unwrap().counter;
        assert!(now >= last);
        last = now;
        // The read-only handle sees committed data only: never a cycle without its rows.
        let _ = db.history_count(Table::Receipts, Some((0, now))).unwrap();
    }
    writer.join().unwrap();
    assert_eq!(db.count_rows::<Receipt>().unwrap(), 140);
}

#[test]
fn clear_errors_for_missing_or_wrong_databases() {
    let dir = tempfile::tempdir().unwrap();
    let missing = ArchiverDb::open(&Layout::Directory(dir.path().join("nope"))).unwrap_err();
    assert!(matches!(missing, Error::Open { .. }));
    assert!(missing.to_string().contains("cycles.sqlite3"), "{missing}");
    // A file that is not a database.
    let bogus = dir.path().join("bogus.sqlite3");
    std::fs::write(&bogus, b"this is not sqlite").unwrap();
    let err = ArchiverDb::open(&Layout::SingleFile(bogus)).unwrap_err();
    assert!(
        err.to_string().contains("bogus.sqlite3") || err.to_string().contains("table"),
        "{err}"
    );
    // An empty database without the tables.
    let empty = dir.path().join("empty.sqlite3");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE x(a)")
        .unwrap();
    let err = ArchiverDb::open(&Layout::SingleFile(empty)).unwrap_err();
    assert!(err.to_string().contains("cycles"), "{err}");
}

#[test]
fn keys_in_cycles_match_the_rows_and_fetch_back() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec();
    for layout in layouts(dir.path()) {
        fixture::build(&layout, &spec).unwrap();
        let db = ArchiverDb::open(&layout).unwrap();
        let keys = db.keys_in_cycles::<Receipt>(3, 5, 1000).unwrap();
        let sel = Selection::InCycles {
            start: 3,
            end: 5,
            skip: 0,
            limit: 1000,
        };
        let rows: Vec<PageKey> = db
            .history_rows(Table::Receipts, sel)
            .unwrap()
            .iter()
            .map(|r| PageKey {
                cycle: r["cycle"].as_u64().unwrap(),
                timestamp: r["timestamp"].as_u64().unwrap(),
                id: r["receiptId"].as_str().unwrap().to_owned(),
            })
            .collect();
        assert_eq!(keys.len(), 21);
        assert_eq!(keys, rows, "same keys, same order as the rows");
        assert_eq!(db.keys_in_cycles::<Receipt>(3, 5, 4).unwrap().len(), 4);
        let tx_keys = db.keys_in_cycles::<OriginalTxData>(7, 7, 1000).unwrap();
        assert_eq!(tx_keys.len(), 5);
        for k in &tx_keys {
            let t = db.row_by_key::<OriginalTxData>(k).unwrap().unwrap();
            assert_eq!(PageKey::from(&t), *k);
        }
        assert!(db
            .row_by_key::<OriginalTxData>(&PageKey {
                timestamp: tx_keys[0].timestamp + 1,
                ..tx_keys[0].clone()
            })
            .unwrap()
            .is_none());
    }
}
