//! The websocket upgrade's `?data=` check: any input is accepted or refused, never a panic.
#![no_main]
use firehose_core::crypto::Crypto;
use firehose_distributor::auth::{check, ReplayCache};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let replay = ReplayCache::default();
        let _ = check(s, &Crypto::default(), false, &[], &replay, 1_700_000_000_000);
    }
});
