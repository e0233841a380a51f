//! Records: archiver field names, lossless round trips through JSON and MessagePack.

use firehose_core::codec::Encoding;
use firehose_core::crypto::{Crypto, KeyPair};
use firehose_core::message::{encode_signed_entry, SignedRecord};
use firehose_core::records::{DataType, Record};
use firehose_core::{canonical, fixtures};
use serde_json::json;

fn samples() -> Vec<Record> {
    vec![
        fixtures::cycle(12, 1_700_000_000_000),
        fixtures::original_tx(3, 1_700_000_000_123, 12),
        fixtures::receipt(3, 1_700_000_000_123, 12, 2048),
    ]
}

#[test]
fn archiver_field_names() {
    let [c, t, r]: [Record; 3] = samples().try_into().unwrap();
    let c = c.entry_value().unwrap();
    assert!(
        c.get("cycleMarker").is_some()
            && c.get("cycleRecord").is_some()
            && c.get("counter").is_some()
    );
    let t = t.entry_value().unwrap();
    for k in ["txId", "timestamp", "cycle", "originalTxData"] {
        assert!(t.get(k).is_some(), "{k}");
    }
    let r = r.entry_value().unwrap();
    for k in [
        "receiptId",
        "tx",
        "cycle",
        "applyTimestamp",
        "timestamp",
        "signedReceipt",
        "afterStates",
        "beforeStates",
        "appReceiptData",
        "executionShardKey",
        "globalModification",
    ] {
        assert!(r.get(k).is_some(), "{k}");
    }
}

#[test]
fn json_and_msgpack_round_trips() {
    for record in samples() {
        for enc in [Encoding::Json, Encoding::MessagePack] {
            let bytes = enc.encode(&record).unwrap();
            let back: Record = enc.decode(&bytes).unwrap();
            assert_eq!(back, record, "{enc:?}");
        }
        // MessagePack is named: maps with the archiver's keys, not positional arrays.
        let bytes = Encoding::MessagePack.encode(&record).unwrap();
        let generic: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert!(generic
            .get(record.data_type().log_name())
            .unwrap()
            .is_object());
    }
}

#[test]
fn lines_round_trip_byte_for_byte_with_unknown_fields_and_nulls() {
    // Unknown fields, explicit nulls and tagged values all survive a parse and re-stringify.
    let line = r#"{"afterStates":null,"appReceiptData":{"v":{"dataType":"bi","value":"ff"}},"cycle":4,"futureField":{"z":[1,2.5]},"receiptId":"aa","timestamp":1700000000000,"tx":{"b":{"value":"AQID","dataType":"bb"}}}"#;
    let record = Record::parse_line(DataType::Receipt, line.as_bytes()).unwrap();
    let Record::Receipt(r) = &record else {
        panic!()
    };
    assert_eq!(r.after_states, Some(serde_json::Value::Null));
    assert_eq!(r.before_states, None);
    assert!(r.extra.contains_key("futureField"));
    assert_eq!(record.to_canonical_json(), line);
    for enc in [Encoding::Json, Encoding::MessagePack] {
        let back: Record = enc.decode(&enc.encode(&record).unwrap()).unwrap();
        assert_eq!(back.to_canonical_json(), line);
    }
}

#[test]
fn malformed_lines_are_errors_not_panics() {
    for line in [
        &b""[..],
        b"{",
        b"[]",
        b"{\"counter\":\"x\"}",
        b"End: Number of entries: 3",
        b"\xff\xfe",
    ] {
        assert!(Record::parse_line(DataType::Cycle, line).is_err());
        assert!(Record::parse_line(DataType::Receipt, line).is_err());
    }
}

#[test]
fn fast_signed_entry_equals_sign_obj() {
    let crypto = Crypto::default();
    let keys = KeyPair::from_seed([5; 32]);
    for record in samples() {
        let line = record.to_canonical_json();
        let fast = encode_signed_entry(&crypto, &keys, record.data_type(), line.as_bytes());
        let mut slow = json!({ record.data_type().log_name(): record.entry_value().unwrap() });
        crypto.sign_obj(&mut slow, &keys).unwrap();
        assert_eq!(
            String::from_utf8(fast.clone()).unwrap(),
            canonical::safe_stringify(&slow)
        );
        let typed = SignedRecord::verify_json(&crypto, &fast, &keys.public_key()).unwrap();
        assert_eq!(typed.record, record);
        // Signed by someone else: rejected.
        let other = KeyPair::from_seed([6; 32]).public_key();
        assert!(SignedRecord::verify_json(&crypto, &fast, &other).is_err());
    }
}

#[test]
fn data_type_names() {
    for t in DataType::ALL {
        assert_eq!(DataType::from_name(t.log_name()), Some(t));
        assert_eq!(t.as_str().parse::<DataType>().unwrap(), t);
        assert_eq!(serde_json::to_value(t).unwrap(), json!(t.as_str()));
    }
    assert!("nope".parse::<DataType>().is_err());
}
