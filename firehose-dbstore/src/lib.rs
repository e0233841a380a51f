//! # firehose-dbstore
//!
//! Read-only access to a Shardeum archiver's (or collector's) SQLite databases, while the
//! archiver keeps writing them in WAL mode.
//!
//! Two layouts are supported ([`Layout`]): one file holding every table (older archivers,
//! `ARCHIVER_DB_PATH`) or a directory with one file per table group (newer archivers:
//! `cycles.sqlite3`, `receipts.sqlite3`, `originalTxsData.sqlite3`, `accounts.sqlite3`,
//! `transactions.sqlite3`).
//!
//! The API is synchronous (SQLite is blocking): an async caller runs it on a dedicated thread
//! or `spawn_blocking`. Every query is bounded ([`MAX_PAGE`]); whole tables are walked with
//! keyset paging ([`ArchiverDb::rows_after`], [`ArchiverDb::pages`]), never loaded.
//!
//! | module | what it holds |
//! |---|---|
//! | `queries` | [`ArchiverDb`]: the read-only connections, cycles |
//! | [`keyed`] | receipts and original transactions through one generic [`KeyedRow`] path |
//! | [`history`] | the history API's rows, as the original selects them |
//! | [`history_json`] | the same rows written straight to canonical JSON, ready to sign |
//! | [`seek`] | row-offset pages that seek where the previous page ended instead of walking |
//! | [`checkpoint`] | the original MQ distributor's cursor |
//! | `fixture` | building archiver databases for tests, demos and benchmarks (feature `sim`) |
//! | `sql` | connections and column helpers |
//!
//! ```
//! use firehose_dbstore::{fixture, ArchiverDb, Layout};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let layout = Layout::Directory(dir.path().to_owned());
//! fixture::build(&layout, &fixture::FixtureSpec { cycles: 3, receipts_per_cycle: 4, txs_per_cycle: 2, ..Default::default() }).unwrap();
//! let db = ArchiverDb::open(&layout).unwrap();
//! assert_eq!(db.latest_cycle().unwrap().unwrap().counter, 2);
//! assert_eq!(db.count_rows::<firehose_core::records::Receipt>().unwrap(), 12);
//! ```

pub mod checkpoint;
pub mod columns;
#[cfg(feature = "sim")]
pub mod fixture;
pub mod history;
pub mod history_json;
pub mod keyed;
mod queries;
#[cfg(feature = "sim")]
mod schema;
pub mod seek;
mod sql;

use std::path::{Path, PathBuf};

pub use firehose_core::since::PageKey;
pub use keyed::{KeyedRow, Pages};
pub use queries::{ArchiverDb, CycleCount, MAX_PAGE};

/// Where the archiver keeps its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One SQLite file with every table (`ARCHIVER_DB_PATH`).
    SingleFile(PathBuf),
    /// A directory with `cycles.sqlite3`, `receipts.sqlite3`, `originalTxsData.sqlite3`,
    /// `accounts.sqlite3` and `transactions.sqlite3` (`ARCHIVER_DB_DIR`).
    Directory(PathBuf),
    /// A directory whose files have other names (`ARCHIVER_DB_DIR` + `ARCHIVER_DATA`).
    Named(PathBuf, StoreNames),
}

/// The file name of each store in a directory (`ARCHIVER_DATA`: `cycleDB`, `receiptDB`,
/// `originalTxDataDB`, `accountDB`, `transactionDB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreNames {
    /// `cycleDB`.
    pub cycles: String,
    /// `receiptDB`.
    pub receipts: String,
    /// `originalTxDataDB`.
    pub original_txs: String,
    /// `accountDB`.
    pub accounts: String,
    /// `transactionDB`.
    pub transactions: String,
}

impl Default for StoreNames {
    fn default() -> Self {
        let name = |s: Store| s.file_name().to_owned();
        Self {
            cycles: name(Store::Cycles),
            receipts: name(Store::Receipts),
            original_txs: name(Store::OriginalTxs),
            accounts: name(Store::Accounts),
            transactions: name(Store::Transactions),
        }
    }
}

impl StoreNames {
    /// The file name of `store`.
    pub fn of(&self, store: Store) -> &str {
        match store {
            Store::Cycles => &self.cycles,
            Store::Receipts => &self.receipts,
            Store::OriginalTxs => &self.original_txs,
            Store::Accounts => &self.accounts,
            Store::Transactions => &self.transactions,
        }
    }
}

/// The table groups, each in its own file in the directory layout: the same type as
/// [`columns::Table`].
pub type Store = columns::Table;

impl Layout {
    /// The database file holding `store`.
    pub fn path_of(&self, store: Store) -> PathBuf {
        match self {
            Layout::SingleFile(p) => p.clone(),
            Layout::Directory(d) => d.join(store.file_name()),
            Layout::Named(d, names) => d.join(names.of(store)),
        }
    }

    /// Guesses the layout of `path`: a directory or a file.
    pub fn detect(path: &Path) -> Layout {
        if path.is_dir() {
            Layout::Directory(path.to_owned())
        } else {
            Layout::SingleFile(path.to_owned())
        }
    }
}

/// What can go wrong reading the archiver's databases.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file cannot be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// A query failed (locked, corrupt, missing table, ...).
    #[error("{what}: {source}")]
    Query {
        /// Which query.
        what: &'static str,
        /// SQLite's complaint.
        source: rusqlite::Error,
    },
    /// A row whose JSON columns do not hold what the schema says.
    #[error("{table} row {key}: {reason}")]
    BadRow {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
