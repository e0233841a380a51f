//! History rows written straight to canonical JSON, for replies that are signed as they are.
//!
//! [`ArchiverDb::history_json`] writes exactly the bytes of `safeStringify` applied to what
//! [`ArchiverDb::history_rows`] returns, without building the value tree: columns in sorted
//! order, a JSON column's text spliced in as it is when it is already canonical (the common
//! case: archivers write them with `JSON.stringify` of sorted or small objects) and parsed and
//! re-serialised only when it is not.
//!
//! ```
//! use firehose_core::canonical::safe_stringify;
//! use firehose_dbstore::history::{Selection, Table};
//! use firehose_dbstore::history_json::JsonRows;
//! use firehose_dbstore::{fixture, ArchiverDb, Layout};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::Directory(dir.path().to_owned());
//! fixture::build(&layout, &fixture::FixtureSpec { cycles: 2, receipts_per_cycle: 3, ..Default::default() }).unwrap();
//! let db = ArchiverDb::open(&layout).unwrap();
//! let sel = Selection::Offset { skip: 1, limit: 4 };
//! let mut rows = JsonRows::new();
//! db.history_json(Table::Receipts, sel, &mut rows).unwrap();
//! let tree = serde_json::Value::from(db.history_rows(Table::Receipts, sel).unwrap());
//! assert_eq!(rows.finish(), safe_stringify(&tree).into_bytes());
//! ```

use firehose_core::canonical::{cmp_utf16, write_str};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params_from_iter, Connection, Row};

use crate::history::{query, Selection, Table};
use crate::sql::q;
use crate::{ArchiverDb, Result};

/// A JSON array of rows being written (`[row,row,...]`), in canonical form.
#[derive(Debug)]
pub struct JsonRows {
    buf: Vec<u8>,
    rows: usize,
}

impl Default for JsonRows {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonRows {
    /// An empty array.
    pub fn new() -> Self {
        Self {
            buf: b"[".to_vec(),
            rows: 0,
        }
    }

    /// Rows written so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was written.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The array's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b']');
        self.buf
    }

    fn next_row(&mut self) -> &mut Vec<u8> {
        if self.rows > 0 {
            self.buf.push(b',');
        }
        self.rows += 1;
        &mut self.buf
    }
}

impl ArchiverDb {
    /// Appends the rows of `table` chosen by `sel` to `out`, as canonical JSON (the same rows
    /// and bytes as `safeStringify` of [`ArchiverDb::history_rows`]). Returns how many.
    pub fn history_json(
        &self,
        table: Table,
        sel: Selection<'_>,
        out: &mut JsonRows,
    ) -> Result<usize> {
        let Some(conn) = self.conn(table.store()) else {
            return Ok(0);
        };
        let (sql, args) = query(table, sel);
        write_query(conn, table, &sql, args, 0, out, |_, _| Ok(()))
    }
}

/// Runs `sql` and appends its rows to `out`, leaving out the last `hidden` columns (keys the
/// caller selected for itself); `seen` gets every row and the column names.
pub(crate) fn write_query(
    conn: &Connection,
    table: Table,
    sql: &str,
    args: Vec<SqlValue>,
    hidden: usize,
    out: &mut JsonRows,
    mut seen: impl FnMut(&Row<'_>, &[String]) -> rusqlite::Result<()>,
) -> Result<usize> {
    let what = "history rows";
    let mut stmt = conn.prepare_cached(sql).map_err(q(what))?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let shown = names.len().saturating_sub(hidden);
    // Column indices in the canonical key order (UTF-16 code units, as JavaScript sorts).
    let mut order: Vec<usize> = (0..shown).collect();
    order.sort_by(|&a, &b| cmp_utf16(&names[a], &names[b]));
    let record = names.iter().position(|n| n == "cycleRecord");
    let mut rows = stmt.query(params_from_iter(args)).map_err(q(what))?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(q(what))? {
        let buf = out.next_row();
        if table == Table::Cycles {
            match record.map(|i| row.get_ref(i)) {
                Some(Ok(v)) => write_column(buf, table, "cycleRecord", v),
                _ => buf.extend_from_slice(b"null"),
            }
        } else {
            write_row(buf, table, row, &names, &order);
        }
        seen(row, &names).map_err(q(what))?;
        n += 1;
    }
    Ok(n)
}

/// A row as an object with its columns in canonical order.
fn write_row(buf: &mut Vec<u8>, table: Table, row: &Row<'_>, names: &[String], order: &[usize]) {
    buf.push(b'{');
    for (k, &i) in order.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        let name = &names[i];
        write_str(buf, name);
        buf.push(b':');
        match row.get_ref(i) {
            Ok(v) => write_column(buf, table, name, v),
            Err(_) => buf.extend_from_slice(b"null"),
        }
    }
    buf.push(b'}');
}

/// One column, as [`crate::history`] turns it into a value, written canonically.
fn write_column(buf: &mut Vec<u8>, table: Table, name: &str, v: ValueRef<'_>) {
    table.kind(name).write(buf, v)
}
