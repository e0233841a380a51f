//! Receipts and original transactions, written once: [`KeyedRow`] says where each lives and
//! how its row maps, and the queries (keyset pages, keys of a cycle span, a row by key,
//! counts) are generic over it.
//!
//! ```
//! use firehose_core::records::{OriginalTxData, Receipt};
//! use firehose_dbstore::{fixture, ArchiverDb, Layout};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::Directory(dir.path().to_owned());
//! let spec = fixture::FixtureSpec { cycles: 4, receipts_per_cycle: 3, txs_per_cycle: 2, ..Default::default() };
//! fixture::build(&layout, &spec).unwrap();
//! let db = ArchiverDb::open(&layout).unwrap();
//! let pages: Vec<Vec<Receipt>> = db.pages::<Receipt>(1, 2, 4).collect::<Result<_, _>>().unwrap();
//! assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
//! assert_eq!(db.count_rows::<OriginalTxData>().unwrap(), 8);
//! ```

use firehose_core::keyed::KeyedRecord;
use firehose_core::records::{OriginalTxData, Receipt};
use firehose_core::since::PageKey;
use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;

use crate::sql::{count, json_col, page, q, sql_int, u64_col};
use crate::{ArchiverDb, Result, Store, MAX_PAGE};

/// A record stored as a row of a keyed table, ordered by (cycle, timestamp, id).
pub trait KeyedRow: KeyedRecord {
    /// The database file that holds the table.
    const STORE: Store;
    /// The table.
    const TABLE: &'static str;
    /// The id column.
    const ID: &'static str;
    /// The columns [`KeyedRow::from_row`] reads, in order.
    const COLUMNS: &'static str;
    /// Whether a row is identified by (id, timestamp) (original transactions: an id may be
    /// stored again with a later timestamp) rather than by its id alone.
    const KEYED_BY_TIMESTAMP: bool;

    /// The record of a row selected with [`KeyedRow::COLUMNS`].
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

impl KeyedRow for Receipt {
    const STORE: Store = Store::Receipts;
    const TABLE: &'static str = "receipts";
    const ID: &'static str = "receiptId";
    const COLUMNS: &'static str = "receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, afterStates, beforeStates, appReceiptData, executionShardKey, globalModification";
    const KEYED_BY_TIMESTAMP: bool = false;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Receipt {
            receipt_id: row.get(0)?,
            tx: json_col(row, 1)?.unwrap_or(Value::Null),
            cycle: u64_col(row, 2)?,
            apply_timestamp: Some(u64_col(row, 3)?),
            timestamp: u64_col(row, 4)?,
            signed_receipt: json_col(row, 5)?,
            after_states: json_col(row, 6)?,
            before_states: json_col(row, 7)?,
            app_receipt_data: json_col(row, 8)?,
            execution_shard_key: row.get(9)?,
            global_modification: Store::Receipts
                .kind("globalModification")
                .field(row.get_ref(10)?)
                .and_then(|v| v.as_bool()),
            extra: Default::default(),
        })
    }
}

impl KeyedRow for OriginalTxData {
    const STORE: Store = Store::OriginalTxs;
    const TABLE: &'static str = "originalTxsData";
    const ID: &'static str = "txId";
    const COLUMNS: &'static str = "txId, timestamp, cycle, originalTxData";
    const KEYED_BY_TIMESTAMP: bool = true;

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(OriginalTxData {
            tx_id: row.get(0)?,
            timestamp: u64_col(row, 1)?,
            cycle: u64_col(row, 2)?,
            original_tx_data: json_col(row, 3)?.unwrap_or(Value::Null),
            extra: Default::default(),
        })
    }
}

impl ArchiverDb {
    /// Rows of cycles `start ..= end`, strictly after `after` (if given), in
    /// (cycle, timestamp, id) order, at most `limit`. Walk a range by passing the last row's
    /// key back in ([`ArchiverDb::pages`] does that).
    pub fn rows_after<T: KeyedRow>(
        &self,
        start: u64,
        end: u64,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let (c, t, id) = key_params(after, start);
        let sql = format!(
            "SELECT {cols} FROM {table} WHERE cycle >= ?1 AND cycle >= ?3 AND cycle <= ?2 AND (cycle, timestamp, {id_col}) > (?3, ?4, ?5) ORDER BY {order} LIMIT ?6",
            cols = T::COLUMNS,
            table = T::TABLE,
            id_col = T::ID,
            order = T::STORE.order_by(false, Some(T::ID)),
        );
        let what = "keyed rows by cycle range";
        let mut stmt = self
            .keyed_conn::<T>()
            .prepare_cached(&sql)
            .map_err(q(what))?;
        let rows = stmt
            .query_map(
                params![sql_int(start), sql_int(end), c, t, id, page(limit)],
                T::from_row,
            )
            .map_err(q(what))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q(what));
        rows
    }

    /// Rows of cycles `start ..= end`, page by page: an iterator that never holds more than
    /// one page.
    pub fn pages<T: KeyedRow>(&self, start: u64, end: u64, page_size: usize) -> Pages<'_, T> {
        Pages {
            db: self,
            start,
            end,
            page_size: page_size.clamp(1, MAX_PAGE),
            after: None,
            done: false,
            _record: std::marker::PhantomData,
        }
    }

    /// The keys (cycle, timestamp, id) of the rows of cycles `start ..= end`, in key order,
    /// at most `limit`: a cheap way to see what is new or changed without reading the rows.
    pub fn keys_in_cycles<T: KeyedRow>(
        &self,
        start: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<PageKey>> {
        let sql = format!(
            "SELECT cycle, timestamp, {id_col} FROM {table} WHERE cycle BETWEEN ?1 AND ?2 ORDER BY {order} LIMIT ?3",
            id_col = T::ID,
            table = T::TABLE,
            order = T::STORE.order_by(false, Some(T::ID)),
        );
        let what = "keys in cycles";
        let mut stmt = self
            .keyed_conn::<T>()
            .prepare_cached(&sql)
            .map_err(q(what))?;
        let rows = stmt
            .query_map(
                params![sql_int(start), sql_int(end), sql_int(limit as u64)],
                |r| {
                    Ok(PageKey {
                        cycle: u64_col(r, 0)?,
                        timestamp: u64_col(r, 1)?,
                        id: r.get(2)?,
                    })
                },
            )
            .map_err(q(what))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q(what));
        rows
    }

    /// The row with `key`'s id (and timestamp, where that is part of the identity).
    pub fn row_by_key<T: KeyedRow>(&self, key: &PageKey) -> Result<Option<T>> {
        let what = "keyed row by key";
        let (cols, table, id_col) = (T::COLUMNS, T::TABLE, T::ID);
        let conn = self.keyed_conn::<T>();
        if T::KEYED_BY_TIMESTAMP {
            let sql = format!("SELECT {cols} FROM {table} WHERE {id_col} = ?1 AND timestamp = ?2");
            let mut stmt = conn.prepare_cached(&sql).map_err(q(what))?;
            stmt.query_row(params![key.id, sql_int(key.timestamp)], T::from_row)
        } else {
            let sql = format!("SELECT {cols} FROM {table} WHERE {id_col} = ?1");
            let mut stmt = conn.prepare_cached(&sql).map_err(q(what))?;
            stmt.query_row(params![key.id], T::from_row)
        }
        .optional()
        .map_err(q(what))
    }

    /// The key of the last row in key order (cycle, timestamp, id), if any.
    pub fn last_key<T: KeyedRow>(&self) -> Result<Option<PageKey>> {
        let sql = format!(
            "SELECT cycle, timestamp, {id_col} FROM {table} ORDER BY {order} LIMIT 1",
            id_col = T::ID,
            table = T::TABLE,
            order = T::STORE.order_by(true, Some(T::ID)),
        );
        let what = "last key";
        let mut stmt = self
            .keyed_conn::<T>()
            .prepare_cached(&sql)
            .map_err(q(what))?;
        stmt.query_row([], |r| {
            Ok(PageKey {
                cycle: u64_col(r, 0)?,
                timestamp: u64_col(r, 1)?,
                id: r.get(2)?,
            })
        })
        .optional()
        .map_err(q(what))
    }

    /// Number of rows.
    pub fn count_rows<T: KeyedRow>(&self) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {}", T::TABLE);
        count(self.keyed_conn::<T>(), &sql, "count keyed rows")
    }

    fn keyed_conn<T: KeyedRow>(&self) -> &rusqlite::Connection {
        self.conn(T::STORE)
            .expect("the keyed stores are always open")
    }
}

fn key_params(after: Option<&PageKey>, start: u64) -> (i64, i64, String) {
    match after {
        Some(k) => (sql_int(k.cycle), sql_int(k.timestamp), k.id.clone()),
        // Before every row of the range: (start, -1, "").
        None => (sql_int(start), -1, String::new()),
    }
}

/// Pages of keyed rows of a cycle range; see [`ArchiverDb::pages`].
#[derive(Debug)]
pub struct Pages<'a, T> {
    db: &'a ArchiverDb,
    start: u64,
    end: u64,
    page_size: usize,
    after: Option<PageKey>,
    done: bool,
    _record: std::marker::PhantomData<T>,
}

impl<T: KeyedRow> Iterator for Pages<'_, T> {
    type Item = Result<Vec<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let page =
            self.db
                .rows_after::<T>(self.start, self.end, self.after.as_ref(), self.page_size);
        match page {
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                self.after = page.last().map(T::page_key);
                self.done = page.len() < self.page_size;
                Some(Ok(page))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
