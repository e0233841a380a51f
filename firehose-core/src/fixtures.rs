//! Realistic sample records for tests, simulators, demos and benchmarks.
//!
//! Shapes follow what a Shardeum archiver writes; contents are deterministic functions of the
//! arguments, so two runs produce the same bytes.
//!
//! ```
//! use firehose_core::fixtures;
//!
//! let r = fixtures::receipt(5, 1_700_000_000_000, 3, 2048);
//! assert!(r.to_canonical_json().len() >= 2048);
//! ```

use serde_json::json;

use crate::records::{Cycle, OriginalTxData, Receipt, Record};

pub use crate::protocol::{DEV_PUBLIC_KEY, DEV_SECRET_KEY};

/// A deterministic 64-hex-character id from a label and a number.
pub fn id64(label: &str, n: u64) -> String {
    let crypto = crate::crypto::Crypto::default();
    crypto.hash_hex(format!("{label}:{n}").as_bytes())
}

/// Cycle number `counter`, starting at `start_ms` with 60 s cycles.
pub fn cycle(counter: u64, start_ms: u64) -> Record {
    let marker = id64("cycle", counter);
    let previous = if counter == 0 {
        "0".repeat(64)
    } else {
        id64("cycle", counter - 1)
    };
    Record::Cycle(Cycle {
        counter,
        cycle_marker: marker.clone(),
        cycle_record: json!({
            "activated": [], "active": 128, "counter": counter, "desired": 128,
            "duration": 60, "expired": 0, "joined": [], "lost": [], "marker": marker,
            "mode": "processing", "networkId": id64("network", 1), "previous": previous,
            "refuted": [], "removed": [], "returned": [], "start": start_ms / 1000 + counter * 60,
            "syncing": 0,
        }),
        extra: Default::default(),
    })
}

/// Original transaction `n` of `cycle` at `timestamp`.
pub fn original_tx(n: u64, timestamp: u64, cycle: u64) -> Record {
    let tx_id = id64("tx", n);
    Record::OriginalTx(OriginalTxData {
        tx_id: tx_id.clone(),
        timestamp,
        cycle,
        original_tx_data: json!({
            "tx": {"isInternalTx": false, "raw": format!("0xf86c{}", "ab".repeat(48)), "timestamp": timestamp},
            "timestampReceipt": {"cycleCounter": cycle, "timestamp": timestamp, "txId": tx_id},
        }),
        extra: Default::default(),
    })
}

/// Receipt `n` of `cycle` at `timestamp`, padded so its canonical JSON is at least
/// `min_bytes` long.
pub fn receipt(n: u64, timestamp: u64, cycle: u64, min_bytes: usize) -> Record {
    let tx_id = id64("tx", n);
    let account = id64("account", n % 1000);
    let mut r = Receipt {
        receipt_id: tx_id.clone(),
        tx: json!({"originalTxData": {"tx": {"raw": format!("0xf86c{}", "cd".repeat(32))}}, "timestamp": timestamp, "txId": tx_id}),
        cycle,
        apply_timestamp: Some(timestamp + 3),
        timestamp,
        signed_receipt: Some(json!({
            "proposal": {"accountIDs": [account], "afterStateHashes": [id64("after", n)],
                "applied": true, "appReceiptDataHash": id64("ard", n),
                "beforeStateHashes": [id64("before", n)], "cant_preApply": false, "txid": tx_id},
            "proposalHash": id64("proposal", n),
            "signaturePack": [{"owner": id64("node", n % 7), "sig": format!("{}{}", id64("s1", n), id64("s2", n))}],
            "voteOffsets": [0],
        })),
        after_states: Some(
            json!([{"accountId": account, "cycleNumber": cycle, "data": {"balance": {"dataType": "bi", "value": format!("{:x}", n * 1_000_000_007)}}, "hash": id64("after", n), "isGlobal": false, "timestamp": timestamp}]),
        ),
        before_states: Some(json!([])),
        app_receipt_data: Some(json!({"data": {"readableReceipt": {"status": 1}}, "txId": tx_id})),
        execution_shard_key: Some(id64("shard", n % 16)),
        global_modification: Some(false),
        extra: Default::default(),
    };
    let len = Record::Receipt(r.clone()).to_canonical_json().len();
    if len < min_bytes {
        let pad = "0".repeat(min_bytes - len);
        r.app_receipt_data =
            Some(json!({"data": {"pad": pad, "readableReceipt": {"status": 1}}, "txId": tx_id}));
    }
    Record::Receipt(r)
}
