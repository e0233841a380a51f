//! The archiver's schema (as created by archiver 3.x), used by the fixture builder.

use crate::Store;

/// `CREATE` statements of one store, as the archiver issues them.
pub(crate) fn create_statements(store: Store) -> &'static [&'static str] {
    match store {
        Store::Cycles => &[
            "CREATE TABLE IF NOT EXISTS cycles (cycleMarker TEXT NOT NULL UNIQUE PRIMARY KEY, counter NUMBER NOT NULL, cycleRecord JSON NOT NULL)",
            "CREATE INDEX IF NOT EXISTS cycles_idx ON cycles (counter ASC)",
        ],
        Store::Receipts => &[
            "CREATE TABLE IF NOT EXISTS receipts (receiptId TEXT NOT NULL UNIQUE PRIMARY KEY, tx JSON NOT NULL, cycle NUMBER NOT NULL, applyTimestamp BIGINT NOT NULL, timestamp BIGINT NOT NULL, signedReceipt JSON NOT NULL, afterStates JSON, beforeStates JSON, appReceiptData JSON, executionShardKey TEXT NOT NULL, globalModification BOOLEAN NOT NULL)",
            "CREATE INDEX IF NOT EXISTS receipts_cycle ON receipts (cycle ASC)",
            "CREATE INDEX IF NOT EXISTS receipts_timestamp ON receipts (timestamp ASC)",
            "CREATE INDEX IF NOT EXISTS receipts_cycle_timestamp ON receipts (cycle ASC, timestamp ASC)",
        ],
        Store::OriginalTxs => &[
            "CREATE TABLE IF NOT EXISTS originalTxsData (txId TEXT NOT NULL, timestamp BIGINT NOT NULL, cycle NUMBER NOT NULL, originalTxData JSON NOT NULL, PRIMARY KEY (txId, timestamp))",
            "CREATE INDEX IF NOT EXISTS originalTxsData_cycle ON originalTxsData (cycle ASC)",
            "CREATE INDEX IF NOT EXISTS originalTxsData_timestamp ON originalTxsData (timestamp ASC)",
            "CREATE INDEX IF NOT EXISTS originalTxsData_cycle_timestamp ON originalTxsData (cycle ASC, timestamp ASC)",
            "CREATE INDEX IF NOT EXISTS originalTxsData_txId ON originalTxsData (txId)",
        ],
        Store::Accounts => &[
            "CREATE TABLE IF NOT EXISTS accounts (accountId TEXT NOT NULL UNIQUE PRIMARY KEY, data JSON NOT NULL, timestamp BIGINT NOT NULL, hash TEXT NOT NULL, cycleNumber NUMBER NOT NULL, isGlobal BOOLEAN NOT NULL)",
            "CREATE INDEX IF NOT EXISTS accounts_cycleNumber ON accounts (cycleNumber ASC)",
        ],
        Store::Transactions => &[
            "CREATE TABLE IF NOT EXISTS transactions (txId TEXT NOT NULL UNIQUE PRIMARY KEY, appReceiptId TEXT, timestamp BIGINT NOT NULL, cycleNumber NUMBER NOT NULL, data JSON NOT NULL, originalTxData JSON NOT NULL)",
            "CREATE INDEX IF NOT EXISTS transactions_cycleNumber ON transactions (cycleNumber ASC)",
        ],
    }
}
