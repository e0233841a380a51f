//! safeJsonParse + stringify: never panics; stringify of a parsed value is a fixed point.
#![no_main]
use firehose_core::canonical::{safe_parse_slice, safe_stringify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = safe_parse_slice(data) {
        let s = safe_stringify(&v);
        let v2 = safe_parse_slice(s.as_bytes()).expect("our output parses");
        assert_eq!(safe_stringify(&v2), s);
    }
});
