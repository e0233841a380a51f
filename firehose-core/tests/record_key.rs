//! `RecordKey::from_line` accepts exactly the lines `Record::parse_line` accepts, and reads
//! the same key: every field of a receipt and an original transaction removed, `null`, or of
//! another type, and unknown fields added.

use firehose_core::fixtures;
use firehose_core::record_key::RecordKey;
use firehose_core::records::{DataType, Record};
use serde_json::{json, Value};

fn agree(t: DataType, v: &Value) {
    let line = serde_json::to_vec(v).unwrap();
    let full = Record::parse_line(t, &line);
    let key = RecordKey::from_line(t, &line);
    match (&full, &key) {
        (Ok(r), Ok((k, _))) => assert_eq!(*k, RecordKey::of(r), "{v}"),
        (Err(_), Err(_)) => {}
        _ => panic!("disagree on {v}: parse_line {full:?}, from_line {key:?}"),
    }
}

#[test]
fn the_same_lines_are_accepted_with_the_same_keys() {
    let samples = [
        (
            DataType::Receipt,
            fixtures::receipt(4, 1_700_000_000_000, 2, 300),
        ),
        (
            DataType::OriginalTx,
            fixtures::original_tx(4, 1_700_000_000_000, 2),
        ),
        (DataType::Cycle, fixtures::cycle(4, 1_700_000_000_000)),
    ];
    let others = [
        Value::Null,
        json!("x"),
        json!(1.5),
        json!(-1),
        json!(7),
        json!(true),
        json!({}),
        json!([]),
        json!(u64::MAX),
    ];
    let mut cases = 0;
    for (t, record) in samples {
        let base = record.entry_value().unwrap();
        agree(t, &base);
        let mut extra = base.clone();
        extra["somethingNew"] = json!({"a": [1, null]});
        agree(t, &extra);
        for field in base.as_object().unwrap().keys() {
            let mut v = base.clone();
            v.as_object_mut().unwrap().remove(field);
            agree(t, &v);
            for other in &others {
                let mut v = base.clone();
                v[field] = other.clone();
                agree(t, &v);
                cases += 1;
            }
        }
    }
    assert!(cases > 100);
}

#[test]
fn a_cycle_reports_its_start_and_others_their_timestamp() {
    let c = fixtures::cycle(4, 1_700_000_000_000).to_canonical_json();
    let (key, ms) = RecordKey::from_line(DataType::Cycle, c.as_bytes()).unwrap();
    assert_eq!((key.data_type, key.cycle), (DataType::Cycle, 4));
    let start = serde_json::from_str::<Value>(&c).unwrap()["cycleRecord"]["start"].as_u64();
    assert_eq!(Some(ms), start.map(|s| s * 1000));
    let t = fixtures::original_tx(1, 1_700_000_000_123, 2).to_canonical_json();
    let (_, ms) = RecordKey::from_line(DataType::OriginalTx, t.as_bytes()).unwrap();
    assert_eq!(ms, 1_700_000_000_123);
}
