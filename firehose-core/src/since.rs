//! Resume points: where a collector's history ends, per data type.
//!
//! A collector that reconnects names the last record it has of each type in `since` (part of
//! its signed subscription request, see [`crate::subscription`]); the distributor sends
//! everything after it first. The same keys order keyset pages of the archiver database.
//!
//! ```
//! use firehose_core::fixtures;
//! use firehose_core::since::Since;
//!
//! let mut since = Since::default();
//! let r = fixtures::receipt(5, 1_700_000_000_000, 41, 256);
//! assert!(!since.precedes(&r)); // no point for receipts yet: nothing is "after" it
//! since.advance(&r);
//! let later = fixtures::receipt(6, 1_700_000_060_000, 42, 256);
//! assert!(since.precedes(&later) && !since.precedes(&r));
//! assert!(since.has(&firehose_core::since::RecordKey::of(&r)));
//! assert!(serde_json::to_string(&since).unwrap().starts_with(r#"{"receipt":{"cycle":41,"#));
//! ```

use serde::{Deserialize, Serialize};

pub use crate::record_key::{PageKey, RecordKey};
use crate::records::{DataType, Record};

/// The last record a collector has, per type: `{"cycle": 41, "originalTx": {…}, "receipt": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Since {
    /// Last cycle counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u64>,
    /// Last original transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_tx: Option<PageKey>,
    /// Last receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<PageKey>,
}

impl Since {
    /// Moves the resume point past `record`.
    pub fn advance(&mut self, record: &Record) {
        match record {
            Record::Cycle(c) => self.cycle = Some(c.counter),
            Record::OriginalTx(t) => self.original_tx = Some(PageKey::from(t)),
            Record::Receipt(r) => self.receipt = Some(PageKey::from(r)),
        }
    }

    /// Whether this resume point comes before `record` (types without a point: no).
    pub fn precedes(&self, record: &Record) -> bool {
        self.precedes_key(&RecordKey::of(record))
    }

    /// Moves the resume point past the record of `key`.
    pub fn advance_key(&mut self, key: &RecordKey) {
        match key.data_type {
            DataType::Cycle => self.cycle = Some(key.cycle),
            DataType::OriginalTx => self.original_tx = Some(key.page_key()),
            DataType::Receipt => self.receipt = Some(key.page_key()),
        }
    }

    /// Whether this resume point comes before the record of `key`: its type has a point,
    /// and the collector does not have the record yet ([`Since::precedes`] by key).
    pub fn precedes_key(&self, key: &RecordKey) -> bool {
        let has_point = match key.data_type {
            DataType::Cycle => self.cycle.is_some(),
            DataType::OriginalTx => self.original_tx.is_some(),
            DataType::Receipt => self.receipt.is_some(),
        };
        has_point && !self.has(key)
    }

    /// Whether a collector at this resume point already has the record of `key` (its type
    /// has a point, and the record is at or before it).
    pub fn has(&self, key: &RecordKey) -> bool {
        match key.data_type {
            DataType::Cycle => self.cycle.is_some_and(|last| key.cycle <= last),
            DataType::OriginalTx => self
                .original_tx
                .as_ref()
                .is_some_and(|k| key.at_or_before(k)),
            DataType::Receipt => self.receipt.as_ref().is_some_and(|k| key.at_or_before(k)),
        }
    }

    /// True when no type has a point (a resume from here sends nothing).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
