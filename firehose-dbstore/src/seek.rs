//! Row-offset pages without walking the offset.
//!
//! The history API's `{start, end}` selects `ORDER BY cycle, timestamp LIMIT n OFFSET start`:
//! SQLite steps over `start` index entries for every page, so a collector that syncs a table
//! of N rows page by page (as relayer-collector does) costs O(N²). Each page answered here
//! leaves a [`SeekPoints`] entry: the sort key and rowid of the row before the next page. A
//! request that starts there seeks to it through the `(cycle, timestamp)` index instead.
//!
//! Same rows as the original: the order is the index's, `(cycle, timestamp, rowid)` (ties in
//! rowid order, as SQLite walks the index for the original's query; the tests hold both
//! queries to it). A point is used only while no row has been inserted before it since it was
//! taken (checked on the rowids added since, a short range scan, and only while fewer than
//! [`MAX_ROWS_ADDED`] were added); otherwise the page is read by offset again. One case is not detected: a row *deleted* before the point, then the page
//! goes on after the row the collector last received, where the original would repeat it.
//!
//! ```
//! use firehose_dbstore::history::{Selection, Table};
//! use firehose_dbstore::history_json::JsonRows;
//! use firehose_dbstore::seek::SeekPoints;
//! use firehose_dbstore::{fixture, ArchiverDb, Layout};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::Directory(dir.path().to_owned());
//! fixture::build(&layout, &fixture::FixtureSpec { cycles: 4, receipts_per_cycle: 5, ..Default::default() }).unwrap();
//! let db = ArchiverDb::open(&layout).unwrap();
//! let seeks = SeekPoints::default();
//! let page = |skip| {
//!     let mut rows = JsonRows::new();
//!     let sel = Selection::Offset { skip, limit: 6 };
//!     db.history_json_seeking(Table::Receipts, sel, &mut rows, &seeks).unwrap();
//!     rows.finish()
//! };
//! let first = page(0);
//! let second = page(6); // seeks from where the first page ended
//! assert_eq!(seeks.hits(), 1);
//! let mut plain = JsonRows::new();
//! db.history_json(Table::Receipts, Selection::Offset { skip: 6, limit: 6 }, &mut plain).unwrap();
//! assert_eq!(second, plain.finish());
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use firehose_core::bounded::BoundedMap;
use rusqlite::types::Value as SqlValue;
use rusqlite::OptionalExtension;

use crate::history::{Selection, Table};
use crate::history_json::{write_query, JsonRows};
use crate::sql::{q, sql_int as int};
use crate::{ArchiverDb, Result};

/// Rows added since a point was taken beyond which it is not checked but dropped (the check
/// scans them; a collector paging along takes milliseconds between pages).
pub const MAX_ROWS_ADDED: i64 = 10_000;

/// Seek points kept by default (two per page answered).
pub const DEFAULT_CAPACITY: usize = 4096;

/// Where row-offset pages of the receipts and original-tx tables start, shared by every
/// connection to the same database. Bounded: the oldest points are forgotten first.
#[derive(Debug)]
pub struct SeekPoints {
    kept: Mutex<BoundedMap<(Table, u64), Point>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The row just before a page: its sort key and rowid, and the table's largest rowid when it
/// was read (rows added after it are checked before the point is used).
#[derive(Debug, Clone)]
struct Point {
    cycle: SqlValue,
    timestamp: SqlValue,
    rowid: i64,
    max_rowid: i64,
}

impl Default for SeekPoints {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl SeekPoints {
    /// Keeps at most `capacity` points (0 keeps none: every page is read by offset).
    pub fn new(capacity: usize) -> Self {
        Self {
            kept: Mutex::new(BoundedMap::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Pages read from a seek point.
    pub fn hits(&self) -> u64 {
        self.hits.load(Relaxed)
    }

    /// Row-offset pages read by walking the offset (no valid point).
    pub fn misses(&self) -> u64 {
        self.misses.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedMap<(Table, u64), Point>> {
        // A panic elsewhere cannot leave the map inconsistent: use it as it is.
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, table: Table, offset: u64) -> Option<Point> {
        self.lock().get(&(table, offset)).cloned()
    }

    fn forget(&self, table: Table, offset: u64) {
        self.lock().remove(&(table, offset));
    }

    fn keep(&self, table: Table, offset: u64, point: Point) {
        self.lock().insert((table, offset), point);
    }
}

impl ArchiverDb {
    /// [`ArchiverDb::history_json`], with row-offset pages of receipts and original
    /// transactions read from `seeks` when a page starts where an earlier one ended (see the
    /// module docs). Other selections and tables are read as `history_json` reads them.
    pub fn history_json_seeking(
        &self,
        table: Table,
        sel: Selection<'_>,
        out: &mut JsonRows,
        seeks: &SeekPoints,
    ) -> Result<usize> {
        let (Selection::Offset { skip, limit }, Table::Receipts | Table::OriginalTxs) =
            (sel, table)
        else {
            return self.history_json(table, sel, out);
        };
        let Some(conn) = self.conn(table.store()) else {
            return Ok(0);
        };
        let (name, cycle) = (table.name(), table.cycle_column());
        // Read before the page: a row added in between counts as added after the point.
        let max_rowid: Option<i64> = conn
            .prepare_cached(&format!("SELECT max(rowid) FROM {name}"))
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(q("largest rowid"))?;
        let max_rowid = max_rowid.unwrap_or(0);
        let point = match seeks.get(table, skip) {
            Some(p) if still_holds(conn, table, &p, max_rowid)? => Some(p),
            // Rows moved it, or too many to check were added: read by offset from now on.
            Some(_) => {
                seeks.forget(table, skip);
                None
            }
            None => None,
        };
        let (sql, args) = match &point {
            Some(p) => {
                seeks.hits.fetch_add(1, Relaxed);
                (
                    seek_sql(table),
                    vec![
                        p.cycle.clone(),
                        p.timestamp.clone(),
                        p.rowid.into(),
                        int(limit).into(),
                    ],
                )
            }
            None => {
                seeks.misses.fetch_add(1, Relaxed);
                (offset_sql(table), vec![int(limit).into(), int(skip).into()])
            }
        };
        // The last two rows' keys: the next page may start after either (`end = start + 100`
        // asks for 101 rows; a collector steps by 100 or by what it got).
        let mut last: [Option<Point>; 2] = [None, None];
        let mut columns: Option<(usize, usize, usize)> = None;
        let n = write_query(conn, table, &sql, args, 1, out, |row, names| {
            let (c, t, r) = *columns.get_or_insert_with(|| {
                let at = |col: &str| names.iter().position(|n| n == col).unwrap_or(0);
                (at(cycle), at("timestamp"), names.len().saturating_sub(1))
            });
            last.swap(0, 1);
            last[1] = Some(Point {
                cycle: row.get(c)?,
                timestamp: row.get(t)?,
                rowid: row.get(r)?,
                max_rowid,
            });
            Ok(())
        })?;
        let [before_last, last] = last;
        if let Some(end) = skip.checked_add(n as u64) {
            if let Some(p) = last {
                seeks.keep(table, end, p);
            }
            if let Some(p) = before_last {
                seeks.keep(table, end - 1, p);
            }
        }
        Ok(n)
    }
}

/// Whether `p` still marks the same offset: no row added since it was taken sorts at or before
/// it. Checking scans the rows added since, so past [`MAX_ROWS_ADDED`] of them the answer is
/// no (walking the offset costs less).
fn still_holds(
    conn: &rusqlite::Connection,
    table: Table,
    p: &Point,
    max_rowid: i64,
) -> Result<bool> {
    if max_rowid.saturating_sub(p.max_rowid) > MAX_ROWS_ADDED {
        return Ok(false);
    }
    let moved = conn
        .prepare_cached(&added_before_sql(table))
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![p.max_rowid, p.cycle, p.timestamp, p.rowid],
                |_| Ok(()),
            )
            .optional()
        })
        .map_err(q("rows added before a seek point"))?;
    Ok(moved.is_none())
}

/// The page after a point: `?1, ?2, ?3` the point's cycle, timestamp and rowid, `?4` rows.
fn seek_sql(table: Table) -> String {
    let (name, cycle) = (table.name(), table.cycle_column());
    let order = table.order_by(false, Some("rowid"));
    format!(
        "SELECT *, rowid FROM {name} WHERE ({cycle}, timestamp, rowid) > (?1, ?2, ?3) \
         ORDER BY {order} LIMIT ?4"
    )
}

/// The page at an offset (`?1` rows, `?2` offset), in the same order, rowid included.
fn offset_sql(table: Table) -> String {
    let (name, order) = (table.name(), table.order_by(false, Some("rowid")));
    format!("SELECT *, rowid FROM {name} ORDER BY {order} LIMIT ?1 OFFSET ?2")
}

/// A row added after rowid `?1` that sorts at or before the point `?2, ?3, ?4`: a scan of the
/// rowids added since (`NOT INDEXED` keeps SQLite from walking the sort index instead).
fn added_before_sql(table: Table) -> String {
    let (name, cycle) = (table.name(), table.cycle_column());
    format!(
        "SELECT 1 FROM {name} NOT INDEXED WHERE rowid > ?1 \
         AND ({cycle}, timestamp, rowid) <= (?2, ?3, ?4) LIMIT 1"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixture, Layout};

    /// What SQLite plans for `sql` (EXPLAIN QUERY PLAN details, one per line).
    fn plan(db: &ArchiverDb, table: Table, sql: &str, args: usize) -> String {
        let conn = db.conn(table.store()).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params: Vec<i64> = vec![0; args];
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
    }

    /// The claims the module rests on, on the archiver's schema: pages are read through the
    /// `(cycle, timestamp)` index, in its order, without a sort; the check scans new rowids.
    #[test]
    fn the_queries_walk_the_index_and_the_check_scans_new_rowids() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::Directory(dir.path().to_owned());
        let spec = fixture::FixtureSpec {
            cycles: 3,
            receipts_per_cycle: 3,
            txs_per_cycle: 3,
            ..Default::default()
        };
        fixture::build(&layout, &spec).unwrap();
        let db = ArchiverDb::open(&layout).unwrap();
        for table in [Table::Receipts, Table::OriginalTxs] {
            let index = format!("{}_cycle_timestamp", table.name());
            let original = crate::history::query(table, Selection::Offset { skip: 1, limit: 1 }).0;
            for (sql, args) in [(seek_sql(table), 4), (offset_sql(table), 2), (original, 2)] {
                let p = plan(&db, table, &sql, args);
                assert!(p.contains(&index), "{sql}: {p}");
                assert!(!p.contains("TEMP B-TREE"), "{sql}: {p}");
            }
            let p = plan(&db, table, &added_before_sql(table), 4);
            assert!(p.contains("rowid>?"), "{p}");
            assert!(!p.contains(&index), "{p}");
        }
    }
}
