//! Rows exactly as the original distributor's history API returns them.
//!
//! The original answers `SELECT *` with every JSON column parsed (only when it holds a
//! non-empty string), SQL `NULL` kept as `null`, integers as numbers (so `isGlobal` stays `0`
//! or `1`) and, for receipts only, `globalModification` turned into a boolean (`=== 1`). The
//! queries here use the original's SQL (same `ORDER BY`, so rows that tie come in the same
//! order) with bound, clamped numbers: an offset past `i64::MAX` reads nothing, never wraps.
//!
//! ```
//! use firehose_dbstore::{fixture, ArchiverDb, Layout};
//! use firehose_dbstore::history::{Selection, Table};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::Directory(dir.path().to_owned());
//! fixture::build(&layout, &fixture::FixtureSpec { cycles: 3, receipts_per_cycle: 4, ..Default::default() }).unwrap();
//! let db = ArchiverDb::open(&layout).unwrap();
//! // `{start: 0, end: 4}` in the original: offset 0, `end - start + 1` rows.
//! let rows = db.history_rows(Table::Receipts, Selection::Offset { skip: 0, limit: 5 }).unwrap();
//! assert_eq!(rows.len(), 5);
//! assert_eq!(db.history_count(Table::Receipts, Some((1, 2))).unwrap(), 8);
//! ```

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Row};
use serde_json::{Map, Value};

use crate::sql::{q, sql_int as int};
use crate::{ArchiverDb, CycleCount, Result};

/// A table the history API reads (the column model's table).
pub use crate::columns::Table;

/// Which rows of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// The `count` newest rows, newest first.
    Latest {
        /// How many.
        count: u64,
    },
    /// `limit` rows from row `skip` of the whole table, in order.
    Offset {
        /// Rows skipped.
        skip: u64,
        /// Rows returned at most.
        limit: u64,
    },
    /// `limit` rows from row `skip` of cycles `start ..= end`, in order.
    InCycles {
        /// First cycle.
        start: u64,
        /// Last cycle (inclusive).
        end: u64,
        /// Rows skipped.
        skip: u64,
        /// Rows returned at most.
        limit: u64,
    },
    /// The first row whose `column` equals `value` (0 or 1 row).
    Equals {
        /// The column (an id column of the table).
        column: &'static str,
        /// The value.
        value: &'a str,
    },
}

impl ArchiverDb {
    /// The rows of `table` chosen by `sel`, as the original returns them. An optional store
    /// the archiver does not have reads as empty (the original's tables would be).
    pub fn history_rows(&self, table: Table, sel: Selection<'_>) -> Result<Vec<Value>> {
        let Some(conn) = self.conn(table.store()) else {
            return Ok(Vec::new());
        };
        let (sql, args) = query(table, sel);
        let what = "history rows";
        let mut stmt = conn.prepare_cached(&sql).map_err(q(what))?;
        let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let rows = stmt
            .query_map(params_from_iter(args), |r| {
                Ok(if table == Table::Cycles {
                    cycle_record(r, &names)
                } else {
                    row_object(table, r, &names)
                })
            })
            .map_err(q(what))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(q(what))?;
        Ok(rows)
    }

    /// Rows of `table`, in cycles `start ..= end` when given (0 without the optional store).
    pub fn history_count(&self, table: Table, cycles: Option<(u64, u64)>) -> Result<u64> {
        let Some(conn) = self.conn(table.store()) else {
            return Ok(0);
        };
        let what = "history count";
        let (name, cycle) = (table.name(), table.cycle_column());
        let n: i64 = match cycles {
            None => conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM {name}"))
                .and_then(|mut s| s.query_row([], |r| r.get(0))),
            Some((start, end)) => conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM {name} WHERE {cycle} BETWEEN ?1 AND ?2"
                ))
                .and_then(|mut s| s.query_row([int(start), int(end)], |r| r.get(0))),
        }
        .map_err(q(what))?;
        Ok(n.max(0) as u64)
    }

    /// Rows per cycle of `start ..= end`, cycles with rows only, ascending.
    pub fn history_tally(&self, table: Table, start: u64, end: u64) -> Result<Vec<CycleCount>> {
        let Some(conn) = self.conn(table.store()) else {
            return Ok(Vec::new());
        };
        let what = "history tally";
        let (name, cycle) = (table.name(), table.cycle_column());
        let sql = format!(
            "SELECT {cycle}, COUNT(*) FROM {name} WHERE {cycle} BETWEEN ?1 AND ?2 GROUP BY {cycle} ORDER BY {cycle} ASC"
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(q(what))?;
        let rows = stmt
            .query_map([int(start), int(end)], |r| {
                Ok(CycleCount {
                    cycle: r.get::<_, i64>(0)?.max(0) as u64,
                    count: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .map_err(q(what))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(q(what));
        rows
    }
}

/// The original's SQL for `sel` on `table`, with bound, clamped arguments.
pub(crate) fn query(table: Table, sel: Selection<'_>) -> (String, Vec<rusqlite::types::Value>) {
    let (name, cycle) = (table.name(), table.cycle_column());
    match sel {
        Selection::Latest { count } => (
            format!(
                "SELECT * FROM {name} ORDER BY {} LIMIT ?1",
                table.order_by(true, None)
            ),
            vec![int(count).into()],
        ),
        Selection::Offset { skip, limit } => (
            format!(
                "SELECT * FROM {name} ORDER BY {} LIMIT ?1 OFFSET ?2",
                table.order_by(false, None)
            ),
            vec![int(limit).into(), int(skip).into()],
        ),
        Selection::InCycles {
            start,
            end,
            skip,
            limit,
        } => (
            format!(
                "SELECT * FROM {name} WHERE {cycle} BETWEEN ?1 AND ?2 ORDER BY {} LIMIT ?3 OFFSET ?4",
                table.order_by(false, None)
            ),
            vec![
                int(start).into(),
                int(end).into(),
                int(limit).into(),
                int(skip).into(),
            ],
        ),
        Selection::Equals { column, value } => (
            format!("SELECT * FROM {name} WHERE {column} = ?1 LIMIT 1"),
            vec![value.to_owned().into()],
        ),
    }
}

/// A cycle row as `/cycleinfo` returns it: its `cycleRecord` column (by the column model).
fn cycle_record(row: &Row<'_>, names: &[String]) -> Value {
    names
        .iter()
        .position(|n| n == "cycleRecord")
        .and_then(|i| row.get_ref(i).ok())
        .map_or(Value::Null, |v| Table::Cycles.kind("cycleRecord").value(v))
}

/// A row as an object keyed by column name, in column order.
fn row_object(table: Table, row: &Row<'_>, names: &[String]) -> Value {
    let mut obj = Map::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let v = row
            .get_ref(i)
            .map_or(Value::Null, |v| column(table, name, v));
        obj.insert(name.clone(), v);
    }
    Value::Object(obj)
}

fn column(table: Table, name: &str, v: ValueRef<'_>) -> Value {
    table.kind(name).value(v)
}
