//! What identifies a record and orders it for resumption ([`RecordKey`]), read from a
//! data-log line without building the record: the reader needs only the key for every line,
//! the whole record rarely.
//!
//! ```
//! use firehose_core::fixtures;
//! use firehose_core::record_key::RecordKey;
//! use firehose_core::records::{DataType, Record};
//!
//! let line = fixtures::receipt(3, 1_700_000_000_000, 9, 256).to_canonical_json();
//! let (key, time_ms) = RecordKey::from_line(DataType::Receipt, line.as_bytes()).unwrap();
//! let record = Record::parse_line(DataType::Receipt, line.as_bytes()).unwrap();
//! assert_eq!(key, RecordKey::of(&record));
//! assert_eq!(time_ms, 1_700_000_000_000);
//! assert!(RecordKey::from_line(DataType::Receipt, br#"{"receiptId":"a","cycle":1}"#).is_err());
//! ```

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Result;
use crate::records::{present, DataType, OriginalTxData, Receipt, Record};

/// A keyset-paging cursor for receipts and original transactions: the order is
/// (cycle, timestamp, id) ascending, and a page starts strictly after its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageKey {
    /// Cycle counter.
    pub cycle: u64,
    /// Timestamp (ms).
    pub timestamp: u64,
    /// Receipt id or tx id.
    pub id: String,
}

impl From<&Receipt> for PageKey {
    fn from(r: &Receipt) -> Self {
        Self {
            cycle: r.cycle,
            timestamp: r.timestamp,
            id: r.receipt_id.clone(),
        }
    }
}

impl From<&OriginalTxData> for PageKey {
    fn from(t: &OriginalTxData) -> Self {
        Self {
            cycle: t.cycle,
            timestamp: t.timestamp,
            id: t.tx_id.clone(),
        }
    }
}

/// What identifies a record and orders it for resumption, computed once when it is read so
/// that sessions can filter messages without parsing them again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    /// Its type.
    pub data_type: DataType,
    /// Its id (cycle marker, tx id, receipt id).
    pub id: Box<str>,
    /// Its cycle (a cycle's counter).
    pub cycle: u64,
    /// Its timestamp (0 for cycles).
    pub timestamp: u64,
}

impl RecordKey {
    /// The key of `record`.
    pub fn of(record: &Record) -> Self {
        let timestamp = match record {
            Record::Cycle(_) => 0,
            Record::OriginalTx(t) => t.timestamp,
            Record::Receipt(r) => r.timestamp,
        };
        Self {
            data_type: record.data_type(),
            id: record.id().into(),
            cycle: record.cycle(),
            timestamp,
        }
    }

    /// The paging key of a receipt or original transaction (for a cycle: its counter, 0, its
    /// marker).
    pub fn page_key(&self) -> PageKey {
        PageKey {
            cycle: self.cycle,
            timestamp: self.timestamp,
            id: self.id.to_string(),
        }
    }

    /// Whether this key sorts at or before `point` (keyed types: (cycle, timestamp, id)).
    pub fn at_or_before(&self, point: &PageKey) -> bool {
        (self.cycle, self.timestamp, &*self.id) <= (point.cycle, point.timestamp, &*point.id)
    }
}

impl RecordKey {
    /// The key of a data-log line of `data_type`, and when the record was made (ms: a
    /// transaction's or receipt's timestamp, a cycle's `cycleRecord.start`, 0 if it has none).
    /// Accepts exactly the lines [`Record::parse_line`] accepts, without building the
    /// record's JSON values.
    pub fn from_line(data_type: DataType, line: &[u8]) -> Result<(RecordKey, u64)> {
        Ok(match data_type {
            // One a cycle: the whole record is cheap enough.
            DataType::Cycle => {
                let record = Record::parse_line(data_type, line)?;
                let Record::Cycle(c) = &record else {
                    unreachable!("parsed as a cycle")
                };
                let start = c
                    .cycle_record
                    .get("start")
                    .and_then(serde_json::Value::as_u64);
                (
                    RecordKey::of(&record),
                    start.map_or(0, |s| s.saturating_mul(1000)),
                )
            }
            DataType::OriginalTx => {
                let t: TxShape<'_> = serde_json::from_slice(line)?;
                (
                    Self::keyed(data_type, &t.tx_id, t.cycle, t.timestamp),
                    t.timestamp,
                )
            }
            DataType::Receipt => {
                let r: ReceiptShape<'_> = serde_json::from_slice(line)?;
                (
                    Self::keyed(data_type, &r.receipt_id, r.cycle, r.timestamp),
                    r.timestamp,
                )
            }
        })
    }

    fn keyed(data_type: DataType, id: &str, cycle: u64, timestamp: u64) -> Self {
        Self {
            data_type,
            id: id.into(),
            cycle,
            timestamp,
        }
    }
}

/// `OriginalTxData`'s fields with the same types (opaque values skipped, not built).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxShape<'a> {
    #[serde(borrow)]
    tx_id: Cow<'a, str>,
    timestamp: u64,
    cycle: u64,
    #[allow(dead_code)]
    original_tx_data: IgnoredAny,
}

/// `Receipt`'s fields with the same types and the same "present means `Some`, even `null`"
/// rule for the optional ones (opaque values skipped, not built).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ReceiptShape<'a> {
    #[serde(borrow)]
    receipt_id: Cow<'a, str>,
    tx: IgnoredAny,
    cycle: u64,
    #[serde(default, deserialize_with = "present")]
    apply_timestamp: Option<u64>,
    timestamp: u64,
    #[serde(default, deserialize_with = "present")]
    signed_receipt: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    after_states: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    before_states: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    app_receipt_data: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    execution_shard_key: Option<AnyStr>,
    #[serde(default, deserialize_with = "present")]
    global_modification: Option<bool>,
}

/// Any string, not kept.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}
