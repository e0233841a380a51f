//! The queries the distributor needs, on read-only connections.

use std::time::Duration;

use firehose_core::records::{Cycle, OriginalTxData, Receipt};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use serde_json::Value;

use crate::{Error, Layout, Result, Store};
pub use firehose_core::since::PageKey;

/// The largest page any query returns.
pub const MAX_PAGE: usize = 10_000;

/// How long a query waits on a lock held by the writer before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Number of rows in one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CycleCount {
    /// Cycle counter.
    pub cycle: u64,
    /// Rows in that cycle.
    pub count: u64,
}

/// Read-only handle on an archiver's databases.
#[derive(Debug)]
pub struct ArchiverDb {
    cycles: Connection,
    receipts: Connection,
    original_txs: Connection,
    accounts: Option<Connection>,
    transactions: Option<Connection>,
}

fn open_ro(layout: &Layout, store: Store) -> Result<Connection> {
    let path = layout.path_of(store);
    if !path.is_file() {
        return Err(Error::Open {
            path,
            source: rusqlite::Error::InvalidPath("no such database file".into()),
        });
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| Error::Open { path, source })?;
    Ok(conn)
}

pub(crate) fn q(what: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Query { what, source }
}

/// A number from outside (a request, a resume point) as an SQLite integer: past `i64::MAX`
/// it is clamped (and then matches nothing), never wrapped to a negative.
pub(crate) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn page(limit: usize) -> i64 {
    limit.min(MAX_PAGE) as i64
}

/// A JSON column: text parsed as JSON; NULL is `None`.
fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Value>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) | ValueRef::Blob(t) => serde_json::from_slice(t).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
        }),
        ValueRef::Integer(i) => Ok(Some(Value::from(i))),
        ValueRef::Real(f) => Ok(serde_json::Number::from_f64(f).map(Value::Number)),
    }
}

fn u64_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    match row.get_ref(idx)? {
        ValueRef::Integer(i) => Ok(i.max(0) as u64),
        ValueRef::Real(f) => Ok(f.max(0.0) as u64),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(idx, 0)),
        _ => Err(rusqlite::Error::InvalidColumnType(
            idx,
            "integer".into(),
            rusqlite::types::Type::Null,
        )),
    }
}

const CYCLE_COLS: &str = "counter, cycleMarker, cycleRecord";
fn cycle_row(row: &Row<'_>) -> rusqlite::Result<Cycle> {
    Ok(Cycle {
        counter: u64_col(row, 0)?,
        cycle_marker: row.get(1)?,
        cycle_record: json_col(row, 2)?.unwrap_or(Value::Null),
        extra: Default::default(),
    })
}

const RECEIPT_COLS: &str = "receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, afterStates, beforeStates, appReceiptData, executionShardKey, globalModification";
fn receipt_row(row: &Row<'_>) -> rusqlite::Result<Receipt> {
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
        global_modification: match row.get_ref(10)? {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i != 0),
            ValueRef::Text(t) => Some(t == b"true" || t == b"1"),
            _ => None,
        },
        extra: Default::default(),
    })
}

const TX_COLS: &str = "txId, timestamp, cycle, originalTxData";
fn tx_row(row: &Row<'_>) -> rusqlite::Result<OriginalTxData> {
    Ok(OriginalTxData {
        tx_id: row.get(0)?,
        timestamp: u64_col(row, 1)?,
        cycle: u64_col(row, 2)?,
        original_tx_data: json_col(row, 3)?.unwrap_or(Value::Null),
        extra: Default::default(),
    })
}

impl ArchiverDb {
    /// The connection holding `store` (`None`: an optional store the archiver does not have).
    pub(crate) fn conn(&self, store: Store) -> Option<&Connection> {
        match store {
            Store::Cycles => Some(&self.cycles),
            Store::Receipts => Some(&self.receipts),
            Store::OriginalTxs => Some(&self.original_txs),
            Store::Accounts => self.accounts.as_ref(),
            Store::Transactions => self.transactions.as_ref(),
        }
    }

    /// Opens the databases read-only. The cycles, receipts and original-tx stores must exist;
    /// accounts and transactions are optional (their queries answer `None` without them).
    pub fn open(layout: &Layout) -> Result<Self> {
        let optional = |store| open_ro(layout, store).ok();
        let db = Self {
            cycles: open_ro(layout, Store::Cycles)?,
            receipts: open_ro(layout, Store::Receipts)?,
            original_txs: open_ro(layout, Store::OriginalTxs)?,
            accounts: optional(Store::Accounts),
            transactions: optional(Store::Transactions),
        };
        // Fail early, with a clear message, if the tables are not there.
        db.cycles
            .prepare_cached("SELECT 1 FROM cycles LIMIT 1")
            .map_err(q("cycles table"))?;
        db.receipts
            .prepare_cached("SELECT 1 FROM receipts LIMIT 1")
            .map_err(q("receipts table"))?;
        db.original_txs
            .prepare_cached("SELECT 1 FROM originalTxsData LIMIT 1")
            .map_err(q("originalTxsData table"))?;
        Ok(db)
    }

    // ---- cycles ----

    /// The cycle with the highest counter.
    pub fn latest_cycle(&self) -> Result<Option<Cycle>> {
        Ok(self.latest_cycles(1)?.pop())
    }

    /// The `count` latest cycles, oldest first.
    pub fn latest_cycles(&self, count: usize) -> Result<Vec<Cycle>> {
        let sql = format!("SELECT {CYCLE_COLS} FROM cycles ORDER BY counter DESC LIMIT ?1");
        let mut stmt = self
            .cycles
            .prepare_cached(&sql)
            .map_err(q("latest cycles"))?;
        let mut rows: Vec<Cycle> = stmt
            .query_map(params![page(count)], cycle_row)
            .map_err(q("latest cycles"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q("latest cycles"))?;
        rows.reverse();
        Ok(rows)
    }

    /// Cycles with `start <= counter <= end`, ascending, at most `limit`.
    pub fn cycles_between(&self, start: u64, end: u64, limit: usize) -> Result<Vec<Cycle>> {
        let sql = format!(
            "SELECT {CYCLE_COLS} FROM cycles WHERE counter BETWEEN ?1 AND ?2 ORDER BY counter ASC LIMIT ?3"
        );
        let mut stmt = self
            .cycles
            .prepare_cached(&sql)
            .map_err(q("cycles by counter"))?;
        let rows = stmt
            .query_map(
                params![sql_int(start), sql_int(end), page(limit)],
                cycle_row,
            )
            .map_err(q("cycles by counter"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q("cycles by counter"));
        rows
    }

    // ---- receipts ----

    /// Number of receipts.
    pub fn count_receipts(&self) -> Result<u64> {
        count(
            &self.receipts,
            "SELECT COUNT(*) FROM receipts",
            "count receipts",
        )
    }

    /// The receipt with this id.
    pub fn receipt_by_id(&self, id: &str) -> Result<Option<Receipt>> {
        let sql = format!("SELECT {RECEIPT_COLS} FROM receipts WHERE receiptId = ?1");
        let mut stmt = self
            .receipts
            .prepare_cached(&sql)
            .map_err(q("receipt by id"))?;
        stmt.query_row(params![id], receipt_row)
            .optional()
            .map_err(q("receipt by id"))
    }

    /// Receipts of cycles `start ..= end`, strictly after `after` (if given), in
    /// (cycle, timestamp, id) order, at most `limit`. Walk a range by passing the last row's
    /// key back in ([`ArchiverDb::receipt_pages`] does that).
    pub fn receipts_after(
        &self,
        start: u64,
        end: u64,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Vec<Receipt>> {
        let (c, t, id) = key_params(after, start);
        let sql = format!(
            "SELECT {RECEIPT_COLS} FROM receipts WHERE cycle >= ?1 AND cycle >= ?3 AND cycle <= ?2 AND (cycle, timestamp, receiptId) > (?3, ?4, ?5) ORDER BY cycle ASC, timestamp ASC, receiptId ASC LIMIT ?6"
        );
        self.receipt_query(
            &sql,
            params![sql_int(start), sql_int(end), c, t, id, page(limit)],
            "receipts by cycle range",
        )
    }

    /// Receipts of cycles `start ..= end`, page by page: an iterator that never holds more
    /// than one page.
    pub fn receipt_pages(&self, start: u64, end: u64, page_size: usize) -> ReceiptPages<'_> {
        ReceiptPages {
            db: self,
            start,
            end,
            page_size: page_size.clamp(1, MAX_PAGE),
            after: None,
            done: false,
        }
    }

    fn receipt_query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        what: &'static str,
    ) -> Result<Vec<Receipt>> {
        let mut stmt = self.receipts.prepare_cached(sql).map_err(q(what))?;
        let rows = stmt
            .query_map(params, receipt_row)
            .map_err(q(what))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q(what));
        rows
    }

    // ---- original transactions ----

    /// Original transactions of cycles `start ..= end` strictly after `after`, keyset paging.
    pub fn original_txs_after(
        &self,
        start: u64,
        end: u64,
        after: Option<&PageKey>,
        limit: usize,
    ) -> Result<Vec<OriginalTxData>> {
        let (c, t, id) = key_params(after, start);
        let sql = format!(
            "SELECT {TX_COLS} FROM originalTxsData WHERE cycle >= ?1 AND cycle >= ?3 AND cycle <= ?2 AND (cycle, timestamp, txId) > (?3, ?4, ?5) ORDER BY cycle ASC, timestamp ASC, txId ASC LIMIT ?6"
        );
        self.tx_query(
            &sql,
            params![sql_int(start), sql_int(end), c, t, id, page(limit)],
            "original txs by cycle range",
        )
    }

    fn tx_query(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        what: &'static str,
    ) -> Result<Vec<OriginalTxData>> {
        let mut stmt = self.original_txs.prepare_cached(sql).map_err(q(what))?;
        let rows = stmt
            .query_map(params, tx_row)
            .map_err(q(what))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q(what));
        rows
    }
}

/// Which of the two keyed stores a [`ArchiverDb::keys_in_cycles`] query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedStore {
    /// `receipts` (one row per receipt id).
    Receipts,
    /// `originalTxsData` (one row per (tx id, timestamp)).
    OriginalTxs,
}

impl ArchiverDb {
    /// The keys (cycle, timestamp, id) of the rows of cycles `start ..= end`, in key order,
    /// at most `limit`: a cheap way to see what is new or changed without reading the rows.
    pub fn keys_in_cycles(
        &self,
        store: KeyedStore,
        start: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<PageKey>> {
        let (conn, sql) = match store {
            KeyedStore::Receipts => (
                &self.receipts,
                "SELECT cycle, timestamp, receiptId FROM receipts WHERE cycle BETWEEN ?1 AND ?2 ORDER BY cycle ASC, timestamp ASC, receiptId ASC LIMIT ?3",
            ),
            KeyedStore::OriginalTxs => (
                &self.original_txs,
                "SELECT cycle, timestamp, txId FROM originalTxsData WHERE cycle BETWEEN ?1 AND ?2 ORDER BY cycle ASC, timestamp ASC, txId ASC LIMIT ?3",
            ),
        };
        let mut stmt = conn.prepare_cached(sql).map_err(q("keys in cycles"))?;
        let rows = stmt
            .query_map(
                params![
                    sql_int(start),
                    sql_int(end),
                    limit.min(i64::MAX as usize) as i64
                ],
                |r| {
                    Ok(PageKey {
                        cycle: u64_col(r, 0)?,
                        timestamp: u64_col(r, 1)?,
                        id: r.get(2)?,
                    })
                },
            )
            .map_err(q("keys in cycles"))?
            .collect::<rusqlite::Result<_>>()
            .map_err(q("keys in cycles"));
        rows
    }

    /// The original transaction with this id and timestamp.
    pub fn original_tx_by_key(&self, id: &str, timestamp: u64) -> Result<Option<OriginalTxData>> {
        let sql =
            format!("SELECT {TX_COLS} FROM originalTxsData WHERE txId = ?1 AND timestamp = ?2");
        let mut stmt = self
            .original_txs
            .prepare_cached(&sql)
            .map_err(q("original tx by key"))?;
        stmt.query_row(params![id, sql_int(timestamp)], tx_row)
            .optional()
            .map_err(q("original tx by key"))
    }
}

fn key_params(after: Option<&PageKey>, start: u64) -> (i64, i64, String) {
    match after {
        Some(k) => (sql_int(k.cycle), sql_int(k.timestamp), k.id.clone()),
        // Before every row of the range: (start, -1, "").
        None => (sql_int(start), -1, String::new()),
    }
}

fn count(conn: &Connection, sql: &str, what: &'static str) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(q(what))?;
    stmt.query_row([], |r| u64_col(r, 0)).map_err(q(what))
}

/// Pages of receipts of a cycle range; see [`ArchiverDb::receipt_pages`].
#[derive(Debug)]
pub struct ReceiptPages<'a> {
    db: &'a ArchiverDb,
    start: u64,
    end: u64,
    page_size: usize,
    after: Option<PageKey>,
    done: bool,
}

impl Iterator for ReceiptPages<'_> {
    type Item = Result<Vec<Receipt>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self
            .db
            .receipts_after(self.start, self.end, self.after.as_ref(), self.page_size)
        {
            Ok(page) if page.is_empty() => {
                self.done = true;
                None
            }
            Ok(page) => {
                let last = page.last().expect("non-empty");
                self.after = Some(PageKey::from(last));
                if page.len() < self.page_size {
                    self.done = true;
                }
                Some(Ok(page))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
