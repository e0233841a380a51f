//! The queries the distributor needs, on read-only connections.

use firehose_core::records::Cycle;
use rusqlite::{params, Connection, Row};

use crate::sql::{open_ro, page, q, sql_int, u64_col};
use crate::{Layout, Result, Store};

/// The largest page any query returns.
pub const MAX_PAGE: usize = 10_000;

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

const CYCLE_COLS: &str = "counter, cycleMarker, cycleRecord";
fn cycle_row(row: &Row<'_>) -> rusqlite::Result<Cycle> {
    Ok(Cycle {
        counter: u64_col(row, 0)?,
        cycle_marker: row.get(1)?,
        cycle_record: Store::Cycles.kind("cycleRecord").value(row.get_ref(2)?),
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
        let order = Store::Cycles.order_by(true, None);
        let sql = format!("SELECT {CYCLE_COLS} FROM cycles ORDER BY {order} LIMIT ?1");
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
            "SELECT {CYCLE_COLS} FROM cycles WHERE counter BETWEEN ?1 AND ?2 ORDER BY {} LIMIT ?3",
            Store::Cycles.order_by(false, None)
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
}
