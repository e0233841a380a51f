//! The three record types the archiver writes and the distributor streams.
//!
//! Field names are exactly the archiver's (camelCase). Opaque sub-objects (cycle records,
//! transactions, states, ...) stay [`serde_json::Value`] and fields this crate does not know are
//! kept in `extra`, so nothing is lost or renamed when a record passes through. Optional fields
//! distinguish "absent" (`None`) from an explicit `null` (`Some(Value::Null)`), because the two
//! hash differently.
//!
//! ```
//! use firehose_core::records::{DataType, Record};
//!
//! let line = br#"{"counter":7,"cycleMarker":"ab","cycleRecord":{"counter":7,"mode":"processing"}}"#;
//! let record = Record::parse_line(DataType::Cycle, line).unwrap();
//! let Record::Cycle(cycle) = &record else { unreachable!() };
//! assert_eq!(cycle.counter, 7);
//! assert_eq!(record.to_canonical_json().as_bytes(), line);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::canonical::safe_stringify;
use crate::error::{Error, Result};

/// Deserializes a present field (even `null`) as `Some`; absent fields get `None` via
/// `#[serde(default)]`.
pub(crate) fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A cycle, as written to `cycle-log<N>.txt` and stored in the `cycles` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cycle {
    /// Cycle counter (0, 1, 2, ...).
    pub counter: u64,
    /// Hash of the cycle record: the cycle's unique id.
    pub cycle_marker: String,
    /// The whole cycle record, opaque.
    pub cycle_record: Value,
    /// Fields this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An original transaction, as written to `originalTx-log<N>.txt` and stored in
/// `originalTxsData`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginalTxData {
    /// Transaction id (64 hex characters).
    pub tx_id: String,
    /// Timestamp in milliseconds.
    pub timestamp: u64,
    /// Cycle counter the transaction belongs to.
    pub cycle: u64,
    /// The transaction as submitted, opaque.
    pub original_tx_data: Value,
    /// Fields this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A receipt, as written to `receipt-log<N>.txt` and stored in `receipts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Receipt id (the transaction id).
    pub receipt_id: String,
    /// The transaction (`{originalTxData, txId, timestamp}`), opaque.
    pub tx: Value,
    /// Cycle counter the receipt belongs to.
    pub cycle: u64,
    /// When the transaction was applied (ms).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub apply_timestamp: Option<u64>,
    /// Timestamp of the transaction (ms).
    pub timestamp: u64,
    /// The signed receipt (proposal and signatures), opaque.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub signed_receipt: Option<Value>,
    /// Account states after the transaction, opaque.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub after_states: Option<Value>,
    /// Account states before the transaction, opaque.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub before_states: Option<Value>,
    /// Application receipt data, opaque.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub app_receipt_data: Option<Value>,
    /// Shard key of the executing group.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub execution_shard_key: Option<String>,
    /// Whether this is a global modification.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub global_modification: Option<bool>,
    /// Fields this crate does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The kinds of data the distributor streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataType {
    /// Cycles.
    #[serde(rename = "CYCLE")]
    Cycle,
    /// Original transactions.
    #[serde(rename = "ORIGINAL_TX_DATA")]
    OriginalTx,
    /// Receipts.
    #[serde(rename = "RECEIPT")]
    Receipt,
}

impl DataType {
    /// All data types, in the order the distributor reads them.
    pub const ALL: [DataType; 3] = [DataType::Cycle, DataType::OriginalTx, DataType::Receipt];

    /// Position in [`DataType::ALL`]: an index for per-type arrays.
    pub fn index(self) -> usize {
        match self {
            DataType::Cycle => 0,
            DataType::OriginalTx => 1,
            DataType::Receipt => 2,
        }
    }

    /// The name used in data-log file names (`cycle`, `originalTx`, `receipt`) and as the key
    /// that wraps an entry in a distributor message (`{"receipt": ...}`).
    pub fn log_name(self) -> &'static str {
        match self {
            DataType::Cycle => "cycle",
            DataType::OriginalTx => "originalTx",
            DataType::Receipt => "receipt",
        }
    }

    /// The enum name the originals use (`CYCLE`, `ORIGINAL_TX_DATA`, `RECEIPT`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Cycle => "CYCLE",
            DataType::OriginalTx => "ORIGINAL_TX_DATA",
            DataType::Receipt => "RECEIPT",
        }
    }

    /// The data type whose log name or enum name is `name`.
    pub fn from_name(name: &str) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|t| t.log_name() == name || t.as_str() == name)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DataType::from_name(s).ok_or_else(|| Error::Unsupported(format!("unknown data type `{s}`")))
    }
}

/// One record of any type. Serialises externally tagged with the distributor's message keys:
/// `{"cycle": {...}}`, `{"originalTx": {...}}`, `{"receipt": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A cycle.
    #[serde(rename = "cycle")]
    Cycle(Cycle),
    /// An original transaction.
    #[serde(rename = "originalTx")]
    OriginalTx(OriginalTxData),
    /// A receipt.
    #[serde(rename = "receipt")]
    Receipt(Receipt),
}

impl Record {
    /// Parses one data-log line (without its newline) of the given type.
    pub fn parse_line(data_type: DataType, line: &[u8]) -> Result<Record> {
        Ok(match data_type {
            DataType::Cycle => Record::Cycle(serde_json::from_slice(line)?),
            DataType::OriginalTx => Record::OriginalTx(serde_json::from_slice(line)?),
            DataType::Receipt => Record::Receipt(serde_json::from_slice(line)?),
        })
    }

    /// The record's data type.
    pub fn data_type(&self) -> DataType {
        match self {
            Record::Cycle(_) => DataType::Cycle,
            Record::OriginalTx(_) => DataType::OriginalTx,
            Record::Receipt(_) => DataType::Receipt,
        }
    }

    /// The cycle counter the record belongs to.
    pub fn cycle(&self) -> u64 {
        match self {
            Record::Cycle(c) => c.counter,
            Record::OriginalTx(t) => t.cycle,
            Record::Receipt(r) => r.cycle,
        }
    }

    /// The record's key within its type: cycle marker, tx id or receipt id.
    pub fn id(&self) -> &str {
        match self {
            Record::Cycle(c) => &c.cycle_marker,
            Record::OriginalTx(t) => &t.tx_id,
            Record::Receipt(r) => &r.receipt_id,
        }
    }

    /// The entry as a JSON value (without the type wrapper).
    pub fn entry_value(&self) -> Result<Value> {
        Ok(match self {
            Record::Cycle(c) => serde_json::to_value(c)?,
            Record::OriginalTx(t) => serde_json::to_value(t)?,
            Record::Receipt(r) => serde_json::to_value(r)?,
        })
    }

    /// The entry in `safeStringify` form, exactly as the archiver writes it to a data log.
    pub fn to_canonical_json(&self) -> String {
        // Records are built from JSON-compatible parts; to_value cannot fail on them.
        safe_stringify(&self.entry_value().expect("records serialise to JSON"))
    }
}
