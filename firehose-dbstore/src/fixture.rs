//! Archiver-shaped databases for tests, demos and benchmarks: the real schema, realistic rows.
//!
//! [`DbWriter`] writes rows the way the archiver does (WAL mode, one transaction per batch);
//! [`build`] fills a database with N cycles and their receipts and original transactions.

use firehose_core::fixtures;
use firehose_core::records::{Cycle, OriginalTxData, Receipt, Record};
use rusqlite::{params, Connection};
use serde_json::Value;

use crate::schema::create_statements;
use crate::{Error, Layout, Result, Store};

/// What [`build`] creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureSpec {
    /// Cycles 0 .. cycles.
    pub cycles: u64,
    /// Receipts per cycle.
    pub receipts_per_cycle: u64,
    /// Original transactions per cycle.
    pub txs_per_cycle: u64,
    /// Minimum size of each receipt's JSON, in bytes.
    pub receipt_bytes: usize,
    /// Unix ms of cycle 0.
    pub start_ms: u64,
}

impl Default for FixtureSpec {
    fn default() -> Self {
        Self {
            cycles: 10,
            receipts_per_cycle: 10,
            txs_per_cycle: 10,
            receipt_bytes: 1024,
            start_ms: 1_700_000_000_000,
        }
    }
}

/// The records [`build`] writes for cycle `c`: the cycle, its original txs, its receipts.
/// Timestamps increase with the index; receipt `n` and tx `n` share an id.
pub fn records_of_cycle(spec: &FixtureSpec, c: u64) -> (Record, Vec<Record>, Vec<Record>) {
    let cycle = fixtures::cycle(c, spec.start_ms);
    let base_ms = spec.start_ms + c * 60_000;
    let txs = (0..spec.txs_per_cycle)
        .map(|i| {
            let n = c * spec.txs_per_cycle + i;
            fixtures::original_tx(n, base_ms + i * 10, c)
        })
        .collect();
    let receipts = (0..spec.receipts_per_cycle)
        .map(|i| {
            let n = c * spec.receipts_per_cycle + i;
            fixtures::receipt(n, base_ms + i * 10, c, spec.receipt_bytes)
        })
        .collect();
    (cycle, txs, receipts)
}

/// Creates (or extends) the databases of `layout` with the rows of `spec`.
pub fn build(layout: &Layout, spec: &FixtureSpec) -> Result<()> {
    let mut w = DbWriter::create(layout)?;
    for c in 0..spec.cycles {
        let (cycle, txs, receipts) = records_of_cycle(spec, c);
        w.write_batch(std::iter::once(&cycle).chain(&txs).chain(&receipts))?;
    }
    Ok(())
}

/// Writes archiver rows (read-write, WAL mode), as an archiver or collector would.
#[derive(Debug)]
pub struct DbWriter {
    cycles: Connection,
    receipts: Connection,
    original_txs: Connection,
    accounts: Connection,
    transactions: Connection,
}

fn open_rw(layout: &Layout, store: Store) -> Result<Connection> {
    let path = layout.path_of(store);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(&path).map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        for sql in create_statements(store) {
            conn.execute(sql, [])?;
        }
        if matches!(layout, Layout::SingleFile(_)) {
            for s in [
                Store::Cycles,
                Store::Receipts,
                Store::OriginalTxs,
                Store::Accounts,
                Store::Transactions,
            ] {
                for sql in create_statements(s) {
                    conn.execute(sql, [])?;
                }
            }
        }
        Ok(())
    };
    setup().map_err(|source| Error::Open { path, source })?;
    Ok(conn)
}

fn text(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(firehose_core::canonical::safe_stringify)
}

impl DbWriter {
    /// Opens (creating if needed) the databases of `layout` with the archiver's schema.
    pub fn create(layout: &Layout) -> Result<Self> {
        Ok(Self {
            cycles: open_rw(layout, Store::Cycles)?,
            receipts: open_rw(layout, Store::Receipts)?,
            original_txs: open_rw(layout, Store::OriginalTxs)?,
            accounts: open_rw(layout, Store::Accounts)?,
            transactions: open_rw(layout, Store::Transactions)?,
        })
    }

    /// Inserts (or replaces) an account row.
    pub fn insert_account(
        &self,
        id: &str,
        data: &Value,
        timestamp: u64,
        hash: &str,
        cycle: u64,
        is_global: bool,
    ) -> Result<()> {
        self.accounts
            .prepare_cached("INSERT OR REPLACE INTO accounts (accountId, data, timestamp, hash, cycleNumber, isGlobal) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .and_then(|mut s| s.execute(params![id, firehose_core::canonical::safe_stringify(data), timestamp as i64, hash, cycle as i64, is_global]))
            .map_err(|source| Error::Query { what: "insert account", source })?;
        Ok(())
    }

    /// Inserts (or replaces) a transaction row.
    pub fn insert_transaction(
        &self,
        tx_id: &str,
        app_receipt_id: Option<&str>,
        timestamp: u64,
        cycle: u64,
        data: &Value,
        original_tx_data: &Value,
    ) -> Result<()> {
        self.transactions
            .prepare_cached("INSERT OR REPLACE INTO transactions (txId, appReceiptId, timestamp, cycleNumber, data, originalTxData) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .and_then(|mut s| {
                s.execute(params![
                    tx_id,
                    app_receipt_id,
                    timestamp as i64,
                    cycle as i64,
                    firehose_core::canonical::safe_stringify(data),
                    firehose_core::canonical::safe_stringify(original_tx_data)
                ])
            })
            .map_err(|source| Error::Query { what: "insert transaction", source })?;
        Ok(())
    }

    /// Inserts (or replaces) records: one transaction per store, one store after the other
    /// (in the single-file layout the stores share one database and its write lock).
    pub fn write_batch<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) -> Result<()> {
        let records: Vec<&Record> = records.into_iter().collect();
        let wrap = |what| move |source| Error::Query { what, source };
        let tx = self.cycles.transaction().map_err(wrap("begin"))?;
        for r in &records {
            if let Record::Cycle(c) = r {
                insert_cycle(&tx, c).map_err(wrap("insert cycle"))?;
            }
        }
        tx.commit().map_err(wrap("commit cycles"))?;
        let tx = self.receipts.transaction().map_err(wrap("begin"))?;
        for r in &records {
            if let Record::Receipt(x) = r {
                insert_receipt(&tx, x).map_err(wrap("insert receipt"))?;
            }
        }
        tx.commit().map_err(wrap("commit receipts"))?;
        let tx = self.original_txs.transaction().map_err(wrap("begin"))?;
        for r in &records {
            if let Record::OriginalTx(t) = r {
                insert_tx(&tx, t).map_err(wrap("insert original tx"))?;
            }
        }
        tx.commit().map_err(wrap("commit original txs"))?;
        Ok(())
    }
}

fn insert_cycle(conn: &Connection, c: &Cycle) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO cycles (cycleMarker, counter, cycleRecord) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        c.cycle_marker,
        c.counter as i64,
        firehose_core::canonical::safe_stringify(&c.cycle_record)
    ])?;
    Ok(())
}

fn insert_receipt(conn: &Connection, r: &Receipt) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO receipts (receiptId, tx, cycle, applyTimestamp, timestamp, signedReceipt, afterStates, beforeStates, appReceiptData, executionShardKey, globalModification) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        r.receipt_id,
        firehose_core::canonical::safe_stringify(&r.tx),
        r.cycle as i64,
        r.apply_timestamp.unwrap_or(r.timestamp) as i64,
        r.timestamp as i64,
        text(&r.signed_receipt).unwrap_or_else(|| "{}".into()),
        text(&r.after_states),
        text(&r.before_states),
        text(&r.app_receipt_data),
        r.execution_shard_key.clone().unwrap_or_default(),
        r.global_modification.unwrap_or(false),
    ])?;
    Ok(())
}

fn insert_tx(conn: &Connection, t: &OriginalTxData) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO originalTxsData (txId, timestamp, cycle, originalTxData) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![t.tx_id, t.timestamp as i64, t.cycle as i64, firehose_core::canonical::safe_stringify(&t.original_tx_data)])?;
    Ok(())
}
