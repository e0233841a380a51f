//! `history_json` writes exactly `safeStringify(history_rows(..))`, for every table and
//! selection, including rows no archiver should write: NULLs, empty strings, text that is not
//! JSON in a JSON column, JSON that is not canonical (spaces, unsorted keys, `2.50`), integers
//! past 2^53, reals, non-ASCII text, booleans stored as 0, 1, 2 or "true". The typed records
//! a resume reads from the same rows hold the same values (one column model for all three).

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
        // Booleans as archivers (and hand edits) leave them: only the integer 1 is true.
        let gm: rusqlite::types::Value = match i % 4 {
            0 => 0.into(),
            1 => 1.into(),
            2 => 2.into(),
            _ => "true".to_owned().into(),
        };
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

/// The typed path (what a resume sends) reads every column as the history API shows it: the
/// same booleans, the same JSON, `null` for NULL.
#[test]
fn typed_records_agree_with_history_rows() {
    use firehose_core::records::{OriginalTxData, Receipt};
    use serde_json::Value;

    let dir = tempfile::tempdir().unwrap();
    let db = ArchiverDb::open(&odd_database(dir.path())).unwrap();
    let all = Selection::Offset {
        skip: 0,
        limit: 1000,
    };
    let or_null = |v: &Option<Value>| v.clone().unwrap_or(Value::Null);

    let tree = db.history_rows(Table::Receipts, all).unwrap();
    let typed: Vec<Receipt> = db.rows_after(0, u64::MAX, None, 1000).unwrap();
    assert_eq!(typed.len(), tree.len());
    let mut flags = std::collections::BTreeSet::new();
    for r in &typed {
        let row = tree
            .iter()
            .find(|row| row["receiptId"] == r.receipt_id.as_str())
            .unwrap();
        let id = &r.receipt_id;
        assert_eq!(row["tx"], r.tx, "{id} tx");
        assert_eq!(row["signedReceipt"], or_null(&r.signed_receipt), "{id}");
        assert_eq!(row["afterStates"], or_null(&r.after_states), "{id}");
        assert_eq!(row["beforeStates"], or_null(&r.before_states), "{id}");
        assert_eq!(row["appReceiptData"], or_null(&r.app_receipt_data), "{id}");
        let flag = r
            .global_modification
            .expect("the column is never NULL here");
        assert_eq!(row["globalModification"], Value::Bool(flag), "{id}");
        assert_eq!(row["cycle"], r.cycle, "{id}");
        assert_eq!(row["timestamp"], r.timestamp, "{id}");
        flags.insert(flag);
    }
    assert_eq!(flags.len(), 2, "both booleans were read");

    let tree = db.history_rows(Table::OriginalTxs, all).unwrap();
    let typed: Vec<OriginalTxData> = db.rows_after(0, u64::MAX, None, 1000).unwrap();
    assert_eq!(typed.len(), tree.len());
    for t in &typed {
        let row = tree
            .iter()
            .find(|row| row["txId"] == t.tx_id.as_str() && row["cycle"] == t.cycle)
            .unwrap();
        assert_eq!(row["originalTxData"], t.original_tx_data, "{}", t.tx_id);
    }

    let tree = db
        .history_rows(Table::Cycles, Selection::Latest { count: 1000 })
        .unwrap();
    let typed = db.latest_cycles(1000).unwrap();
    assert_eq!(typed.len(), tree.len());
    for (c, record) in typed.iter().rev().zip(&tree) {
        assert_eq!(*record, c.cycle_record, "cycle {}", c.counter);
    }
}
