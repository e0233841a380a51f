//! Signatures shared between back-fills. Collectors that resume at about the same time (after
//! a distributor restart, or a network blip that dropped many of them) ask for the same rows:
//! the message for a row is the same bytes for all of them, so its Ed25519 signature (the
//! costly part, ~20 µs) is computed once and reused. Entries are keyed by the keyed BLAKE2b
//! hash of the signed object itself, so a row whose bytes changed is signed afresh.
//!
//! ```
//! use firehose_core::crypto::{Crypto, KeyPair};
//! use firehose_core::message::encode_signed_entry;
//! use firehose_core::records::DataType;
//! use firehose_distributor::backfill::signatures::SignatureCache;
//!
//! let (crypto, keys) = (Crypto::default(), KeyPair::from_seed([8; 32]));
//! let cache = SignatureCache::new(16);
//! let entry = br#"{"counter":1,"cycleMarker":"a","cycleRecord":{}}"#;
//! let first = cache.signed_entry(&crypto, &keys, DataType::Cycle, entry);
//! let again = cache.signed_entry(&crypto, &keys, DataType::Cycle, entry);
//! assert_eq!(first, encode_signed_entry(&crypto, &keys, DataType::Cycle, entry));
//! assert_eq!(again, first);
//! assert_eq!((cache.hits(), cache.misses()), (1, 1));
//! ```

use crate::metrics::Counter;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use firehose_core::bounded::BoundedMap;
use firehose_core::crypto::{Crypto, KeyPair, Sign};
use firehose_core::message::{append_sign, entry_object};
use firehose_core::records::DataType;
use rayon::prelude::*;

/// Signatures kept (about 300 bytes each: 5 MB), oldest dropped first: enough for resumes
/// that start within a few seconds of each other to share every row.
pub const CAPACITY: usize = 16_384;

/// Recently made signatures by the hash of what they sign.
#[derive(Debug)]
pub struct SignatureCache {
    by_hash: Mutex<BoundedMap<[u8; 32], Arc<str>>>,
    hits: Counter,
    misses: Counter,
}

impl Default for SignatureCache {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl SignatureCache {
    /// A cache of at most `capacity` signatures (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            by_hash: Mutex::new(BoundedMap::new(capacity)),
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    /// The signed message for `entry` (canonical JSON), the same bytes as
    /// [`firehose_core::message::encode_signed_entry`]; signed only if these bytes were not
    /// signed recently.
    pub fn signed_entry(
        &self,
        crypto: &Crypto,
        keys: &KeyPair,
        data_type: DataType,
        entry: &[u8],
    ) -> Vec<u8> {
        let batch = [(data_type, Bytes::copy_from_slice(entry))];
        self.signed_entries(crypto, keys, &batch).remove(0)
    }

    /// [`SignatureCache::signed_entry`] for a batch, in order, on rayon's pool. Each entry is
    /// looked up just before it would be signed, so back-fills running side by side over the
    /// same rows share as much as they can.
    pub fn signed_entries(
        &self,
        crypto: &Crypto,
        keys: &KeyPair,
        entries: &[(DataType, Bytes)],
    ) -> Vec<Vec<u8>> {
        let owner = keys.public_key().to_hex();
        entries
            .par_iter()
            .map(|(t, entry)| {
                let object = entry_object(*t, entry);
                let hash = crypto.hash(&object);
                let known = self.lock().get(&hash).cloned();
                let sign = match known {
                    Some(sig) => {
                        self.hits.inc();
                        Sign {
                            owner: owner.clone(),
                            sig: sig.to_string(),
                        }
                    }
                    None => {
                        self.misses.inc();
                        let sign = crypto.sign_of_hash(&hash, keys);
                        self.lock().insert(hash, sign.sig.as_str().into());
                        sign
                    }
                };
                append_sign(object, &sign)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BoundedMap<[u8; 32], Arc<str>>> {
        // A panic elsewhere cannot leave the map inconsistent: use it as it is.
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Messages whose signature came from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Messages signed afresh.
    pub fn misses(&self) -> u64 {
        self.misses.get()
    }

    /// The counters (shared, afresh), for the metrics registry.
    pub fn counters(&self) -> (&Counter, &Counter) {
        (&self.hits, &self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keyed_by_the_bytes() {
        let (crypto, keys) = (Crypto::default(), KeyPair::from_seed([9; 32]));
        let cache = SignatureCache::new(2);
        let entry = |n: u32| format!(r#"{{"counter":{n},"cycleMarker":"a","cycleRecord":{{}}}}"#);
        for n in 0..5 {
            cache.signed_entry(&crypto, &keys, DataType::Cycle, entry(n).as_bytes());
        }
        assert_eq!(cache.lock().len(), 2);
        // The newest two are shared; the oldest were dropped and are signed again.
        cache.signed_entry(&crypto, &keys, DataType::Cycle, entry(4).as_bytes());
        cache.signed_entry(&crypto, &keys, DataType::Cycle, entry(0).as_bytes());
        assert_eq!((cache.hits(), cache.misses()), (1, 6));
        // Another data type wraps the same bytes differently: a different object.
        let off = SignatureCache::new(0);
        let a = off.signed_entry(&crypto, &keys, DataType::Receipt, entry(1).as_bytes());
        assert!(a.starts_with(br#"{"receipt":"#));
        assert_eq!(off.lock().len(), 0);
    }
}
