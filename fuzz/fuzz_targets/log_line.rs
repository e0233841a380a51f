//! A data-log line of any type: parsing never panics, and what parses re-serialises to a
//! line that parses to the same record.
#![no_main]
use firehose_core::records::{DataType, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for t in DataType::ALL {
        if let Ok(r) = Record::parse_line(t, data) {
            let again = Record::parse_line(t, r.to_canonical_json().as_bytes())
                .expect("canonical JSON of a parsed record parses");
            assert_eq!(again, r);
        }
    }
});
