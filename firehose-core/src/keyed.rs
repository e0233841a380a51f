//! Receipts and original transactions are both "keyed rows": ordered by
//! (cycle, timestamp, id), paged by [`PageKey`], served by the same history routes. This
//! trait names what differs between them, so paging, resumption and the history API are
//! written once.
//!
//! ```
//! use firehose_core::keyed::KeyedRecord;
//! use firehose_core::records::{OriginalTxData, Receipt};
//!
//! fn describe<T: KeyedRecord>() -> String {
//!     format!("{} {} {}", T::DATA_TYPE, T::ROUTE, T::LIST)
//! }
//! assert_eq!(describe::<Receipt>(), "RECEIPT /receipt receipts");
//! assert_eq!(describe::<OriginalTxData>(), "ORIGINAL_TX_DATA /originalTx originalTxs");
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::records::{DataType, OriginalTxData, Receipt, Record};
use crate::since::PageKey;

/// A record with an id, ordered by (cycle, timestamp, id).
pub trait KeyedRecord: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Its data type.
    const DATA_TYPE: DataType;
    /// Its history route (`/receipt`, `/originalTx`).
    const ROUTE: &'static str;
    /// The key of its list in history replies (`receipts`, `originalTxs`).
    const LIST: &'static str;
    /// The count's key in a per-cycle tally element (`receipts`, `originalTxsData`).
    const TALLY: &'static str;

    /// Its id (receipt id, tx id).
    fn id(&self) -> &str;
    /// Cycle counter.
    fn cycle(&self) -> u64;
    /// Timestamp (ms).
    fn timestamp(&self) -> u64;
    /// As a [`Record`].
    fn into_record(self) -> Record;

    /// Its paging key.
    fn page_key(&self) -> PageKey {
        PageKey {
            cycle: self.cycle(),
            timestamp: self.timestamp(),
            id: self.id().to_owned(),
        }
    }
}

impl KeyedRecord for Receipt {
    const DATA_TYPE: DataType = DataType::Receipt;
    const ROUTE: &'static str = "/receipt";
    const LIST: &'static str = "receipts";
    const TALLY: &'static str = "receipts";

    fn id(&self) -> &str {
        &self.receipt_id
    }
    fn cycle(&self) -> u64 {
        self.cycle
    }
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
    fn into_record(self) -> Record {
        Record::Receipt(self)
    }
}

impl KeyedRecord for OriginalTxData {
    const DATA_TYPE: DataType = DataType::OriginalTx;
    const ROUTE: &'static str = "/originalTx";
    const LIST: &'static str = "originalTxs";
    const TALLY: &'static str = "originalTxsData";

    fn id(&self) -> &str {
        &self.tx_id
    }
    fn cycle(&self) -> u64 {
        self.cycle
    }
    fn timestamp(&self) -> u64 {
        self.timestamp
    }
    fn into_record(self) -> Record {
        Record::OriginalTx(self)
    }
}
