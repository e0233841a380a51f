//! Resume without gaps (beyond the original): a collector may add `since` to `collectorInfo`,
//! naming the last record it has of each type:
//!
//! ```json
//! {"since": {"cycle": 41, "originalTx": {"cycle": 41, "timestamp": 1700000000123, "id": "ab…"},
//!            "receipt": {"cycle": 41, "timestamp": 1700000000456, "id": "cd…"}}}
//! ```
//!
//! The session is registered with the hub first (live entries queue up), then every database
//! row after `since` is sent, then the queued live entries that the back-fill already covered
//! are skipped (matched by record id): no gap and no duplicate at the handover. Collectors
//! that send no `since` get the original behaviour (live only).

use std::collections::HashSet;

use axum::extract::ws::Utf8Bytes;

use crate::hub::{Outgoing, Shared};
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::message::encode_signed_entry;
use firehose_core::records::{Cycle, DataType, OriginalTxData, Receipt, Record};
use firehose_dbstore::{ArchiverDb, PageKey};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The last record a collector has, per type.
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
}

const PAGE: usize = 500;

/// Sends every row after `since`, signed like live entries, to `out` as (message, record id).
/// Runs on a blocking thread; stops early if the session went away.
pub fn backfill(
    db: &ArchiverDb,
    crypto: &Crypto,
    keys: &KeyPair,
    since: &Since,
    out: &mpsc::Sender<(Shared, (DataType, String))>,
) -> firehose_dbstore::Result<u64> {
    let mut sent = 0u64;
    let mut send = |r: Record| -> bool {
        let msg = encode_signed_entry(
            crypto,
            keys,
            r.data_type(),
            r.to_canonical_json().as_bytes(),
        );
        let msg = String::from_utf8(msg).expect("canonical JSON is UTF-8");
        sent += 1;
        out.blocking_send((
            Outgoing::new(Utf8Bytes::from(msg)),
            (r.data_type(), r.id().to_owned()),
        ))
        .is_ok()
    };
    // Cycles after the given counter.
    if let Some(last) = since.cycle {
        let mut from = last + 1;
        loop {
            let page: Vec<Cycle> = db.cycles_between(from, u64::MAX >> 1, PAGE)?;
            let Some(end) = page.last().map(|c| c.counter) else {
                break;
            };
            for c in page {
                if !send(Record::Cycle(c)) {
                    return Ok(sent);
                }
            }
            from = end + 1;
        }
    }
    if let Some(k) = &since.original_tx {
        let mut after = k.clone();
        loop {
            let page: Vec<OriginalTxData> =
                db.original_txs_after(after.cycle, u64::MAX >> 1, Some(&after), PAGE)?;
            let Some(last) = page.last() else { break };
            after = PageKey::from(last);
            for t in page {
                if !send(Record::OriginalTx(t)) {
                    return Ok(sent);
                }
            }
        }
    }
    if let Some(k) = &since.receipt {
        let mut after = k.clone();
        loop {
            let page: Vec<Receipt> =
                db.receipts_after(after.cycle, u64::MAX >> 1, Some(&after), PAGE)?;
            let Some(last) = page.last() else { break };
            after = PageKey::from(last);
            for r in page {
                if !send(Record::Receipt(r)) {
                    return Ok(sent);
                }
            }
        }
    }
    Ok(sent)
}

/// The type and record id of a live message (`{"<type>": {...}, "sign": ...}`), for
/// de-duplication (a receipt and its original tx share an id, so the type is part of the key).
pub fn message_id(msg: &str) -> Option<(DataType, String)> {
    let v: serde_json::Value = serde_json::from_str(msg).ok()?;
    let obj = v.as_object()?;
    let (k, entry) = obj.iter().find(|(k, _)| k.as_str() != "sign")?;
    let (t, field) = match k.as_str() {
        "cycle" => (DataType::Cycle, "cycleMarker"),
        "originalTx" => (DataType::OriginalTx, "txId"),
        "receipt" => (DataType::Receipt, "receiptId"),
        _ => return None,
    };
    entry.get(field)?.as_str().map(|id| (t, id.to_owned()))
}

/// (type, id) of the records sent during a back-fill.
pub type SentIds = HashSet<(DataType, String)>;
