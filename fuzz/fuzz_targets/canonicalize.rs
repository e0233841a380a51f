//! The canonical-form scan of data-log lines: never panics, and agrees with the full path
//! (parse + safeStringify) on every input: `Ok` exactly when the input is JSON, and then the
//! same bytes.
#![no_main]
use firehose_core::canonical::{safe_parse_slice, safe_stringify};
use firehose_core::canonicalize::{canonicalize, is_canonical};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = safe_parse_slice(data).map(|v| safe_stringify(&v));
    match (canonicalize(data), full) {
        (Ok(c), Ok(s)) => assert_eq!(&c[..], s.as_bytes()),
        (Err(_), Err(_)) => {}
        (c, s) => panic!("disagree: {c:?} vs {s:?}"),
    }
    if is_canonical(data) {
        assert!(safe_parse_slice(data).is_ok(), "a canonical line is JSON");
    }
});
