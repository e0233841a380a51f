//! `history_json` writes exactly `safeStringify(history_rows(..))`, for every table and
//! selection, including rows no archiver should write: NULLs, empty strings, text that is not
//! JSON in a JSON column, JSON that is not canonical (spaces, unsorted keys, `2.50`), integers
//! past 2^53, reals, non-ASCII text, booleans stored as 0, 1 or 2.

use firehose_core::canonical::safe_stringify;
use firehose_dbstore::fixture::{self, FixtureSpec};
use firehose_dbstore::history::{Selection, Table};
use firehose_dbstore::history_json::JsonRows;
use firehose_dbstore::{ArchiverDb, Layout};
use rusqlite::params;

fn odd_database(dir: &std::path::Path) -> Layout {
    let layout = Layout::SingleFile(dir.join("archiver.sqlite3"));
    let spec = FixtureSpec {
        cycles: 6,
        receipts_per_cycle: 3,
        txs_per_cycle: 2,
        receipt_bytes: 200,
        ..FixtureSpec::default()
    };
    fixture::build(&layout, &spec).unwrap();
    let w = fixture::DbWriter::create(&layout).unwrap();
    for i in 0..4u64 {
        let id = firehose_core::fixtures::id64("account", i);
        w.insert_account(
            &id,
            &serde_json::json!({"b": i, "a": "é"}),
            1_700_000_000_000 + i,
            &id,
            i,
            i == 0,
        )
        .unwrap();
    }
    drop(w);
    let c = rusqlite::Connection::open(dir.join("archiver.sqlite3")).unwrap();
    let odd_json = [
        r#"{"b": 1, "a": [1, 2.50, {"z": null, "y": "x"}]}"#,
        "",
        "not json at all",
        r#"{"big":123456789012345678901,"neg":-0.0,"s":"\u00e9\t"}"#,
        "[3,2,1]",
        "\"just a string\"",
        "12.0",
    ];
    for (i, j) in odd_json.iter().enumerate() {
        let i = i as i64;
        let id = format!("{:064x}", 1000 + i);
        let gm: i64 = [0, 1, 2][i as usize % 3];
        c.execute(
            "INSERT INTO receipts (receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, afterStates, beforeStates, appReceiptData, executionShardKey, globalModification) VALUES (?1, ?2, 3, ?3, ?4, ?2, NULL, ?2, '', 'ключ', ?5)",
            params![id, j, i * 1_000_000_000_000_000_000, 1_700_000_000_000i64 + i, gm],
        )
        .unwrap();
        c.execute(
            "INSERT INTO originalTxsData (txId, timestamp, cycle, originalTxData) VALUES (?1, ?2, 4, ?3)",
            params![id, 1.5f64 + i as f64, j],
        )
        .unwrap();
        c.execute(
            "INSERT INTO cycles (cycleMarker, counter, cycleRecord) VALUES (?1, ?2, ?3)",
            params![id, 100 + i, j],
        )
        .unwrap();
    }
    layout
}

#[test]
fn history_json_is_safe_stringify_of_history_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = ArchiverDb::open(&odd_database(dir.path())).unwrap();
    let tables = [
        Table::Cycles,
        Table::Receipts,
        Table::OriginalTxs,
        Table::Accounts,
        Table::Transactions,
    ];
    let id = format!("{:064x}", 1003);
    let selections = [
        Selection::Latest { count: 5 },
        Selection::Latest { count: 1000 },
        Selection::Offset {
            skip: 0,
            limit: 1000,
        },
        Selection::Offset { skip: 7, limit: 3 },
        Selection::Offset {
            skip: u64::MAX,
            limit: u64::MAX,
        },
        Selection::InCycles {
            start: 0,
            end: 200,
            skip: 0,
            limit: 1000,
        },
        Selection::InCycles {
            start: 3,
            end: 4,
            skip: 1,
            limit: 2,
        },
        Selection::Equals {
            column: "rowid",
            value: "2",
        },
        Selection::Equals {
            column: "rowid",
            value: &id,
        },
    ];
    let mut checked = 0;
    for table in tables {
        for sel in selections {
            let tree = db.history_rows(table, sel).unwrap();
            let mut rows = JsonRows::new();
            let n = db.history_json(table, sel, &mut rows).unwrap();
            assert_eq!(n, tree.len());
            let want = safe_stringify(&serde_json::Value::from(tree));
            let got = String::from_utf8(rows.finish()).unwrap();
            assert_eq!(got, want, "{table:?} {sel:?}");
            checked += n;
        }
    }
    assert!(checked > 100, "the selections read rows ({checked})");
}

#[test]
fn rows_of_several_selections_make_one_array() {
    let dir = tempfile::tempdir().unwrap();
    let db = ArchiverDb::open(&odd_database(dir.path())).unwrap();
    let mut rows = JsonRows::new();
    assert!(rows.is_empty());
    for skip in [0, 2] {
        db.history_json(
            Table::Receipts,
            Selection::Offset { skip, limit: 1 },
            &mut rows,
        )
        .unwrap();
    }
    assert_eq!(rows.len(), 2);
    let v: serde_json::Value = serde_json::from_slice(&rows.finish()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
}
