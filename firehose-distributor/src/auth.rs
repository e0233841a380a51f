//! Checking a collector's subscription request at the websocket upgrade.
//!
//! The request is `?data=<safeStringify(signed)>` where signed is
//! `signObj({collectorInfo: {subscriptionType, timestamp}, sender})`. Rules, in order:
//! the shape (`collectorInfo` object, `sender` string, `sign.owner`/`sign.sig` strings),
//! `sign.owner == sender`; with `limitToSubscribersOnly`: listed, not expired (correct rule),
//! same `subscriptionType`; the timestamp within ±30 s (beyond the original: future timestamps
//! and `0` are rejected too); the signature; and (beyond the original) a signature already used
//! within the window is a replay.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use firehose_core::bounded::BoundedMap;

use firehose_core::crypto::{Crypto, PublicKey};
use firehose_core::subscription::{RequestError, SignedSubscription};

use crate::config::Subscriber;

/// How far a request's timestamp may be from now.
pub const TIMESTAMP_WINDOW_MS: u64 = 30_000;

/// Why a request was refused (the client only ever sees `401 Unauthorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `data`, or not the request's shape (including `sign.owner` ≠ `sender`).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Not in the allow-list.
    #[error("not a subscriber")]
    NotSubscribed,
    /// Subscription expired.
    #[error("subscription expired")]
    Expired,
    /// Another subscription type.
    #[error("subscription type {0} not allowed")]
    WrongType(String),
    /// Timestamp outside the window.
    #[error("timestamp outside the {TIMESTAMP_WINDOW_MS} ms window")]
    Stale,
    /// Signature invalid.
    #[error("invalid signature: {0}")]
    BadSignature(String),
    /// The same signed request was used before.
    #[error("replayed request")]
    Replayed,
    /// The key used too many signatures within one window ([`REPLAY_PER_KEY_MAX`]).
    #[error("more than {REPLAY_PER_KEY_MAX} subscriptions from this key within the window")]
    TooMany,
}

/// An accepted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The collector.
    pub sender: PublicKey,
    /// The request (its `since` and `encoding` are read by the session).
    pub request: SignedSubscription,
}

/// Keys whose recent signatures are remembered at once; past it the key remembered longest
/// ago is forgotten (with the allow-list on, only listed keys get this far).
pub const REPLAY_KEYS_MAX: usize = 100_000;

/// Signatures one key may use within a timestamp window; more are refused for that key
/// alone (a collector reconnecting every 10 s uses about 6).
pub const REPLAY_PER_KEY_MAX: usize = 32;

/// Remembers, per collector key, the signatures it used within the timestamp window.
///
/// Invariants: a signature is checked only after it verified, so only its signer's entry is
/// touched, and a flood of signed requests fills only the flooding key's
/// [`REPLAY_PER_KEY_MAX`] slots. Memory is bounded by [`REPLAY_KEYS_MAX`] ×
/// [`REPLAY_PER_KEY_MAX`] entries of 16 bytes (a keyed 64-bit hash of the signature and its
/// expiry). Non-guarantee: a key forgotten because [`REPLAY_KEYS_MAX`] newer keys came since
/// (only possible with the allow-list off) may have a request replayed within its window.
#[derive(Debug)]
pub struct ReplayCache {
    seen: Mutex<BoundedMap<PublicKey, Vec<(u64, u64)>>>,
    hasher: RandomState,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self {
            seen: Mutex::new(BoundedMap::new(REPLAY_KEYS_MAX)),
            hasher: RandomState::new(),
        }
    }
}

impl ReplayCache {
    /// Records `sig` of `key` until `expires_ms`; refused if `key` used it before, or used
    /// [`REPLAY_PER_KEY_MAX`] signatures still within their window.
    fn first_use(
        &self,
        key: PublicKey,
        sig: &str,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), AuthError> {
        let h = self.hasher.hash_one(sig);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&key).is_none() {
            seen.insert(key, Vec::new());
        }
        let Some(used) = seen.get_mut(&key) else {
            return Err(AuthError::Replayed); // capacity 0: nothing can be checked
        };
        used.retain(|(_, exp)| *exp > now_ms);
        if used.iter().any(|(x, _)| *x == h) {
            return Err(AuthError::Replayed);
        }
        if used.len() >= REPLAY_PER_KEY_MAX {
            return Err(AuthError::TooMany);
        }
        used.push((h, expires_ms));
        Ok(())
    }
}

/// Checks a `data` query value.
pub fn check(
    data: &str,
    crypto: &Crypto,
    limit_to_subscribers: bool,
    subscribers: &[Subscriber],
    replay: &ReplayCache,
    now_ms: u64,
) -> Result<Accepted, AuthError> {
    // The shape, then `sign.owner == sender` (firehose-core's wire model).
    let request = SignedSubscription::parse(data)?;
    let sender = request.sender();
    if limit_to_subscribers {
        let sub = subscribers
            .iter()
            .find(|s| s.public_key.eq_ignore_ascii_case(sender))
            .ok_or(AuthError::NotSubscribed)?;
        if sub.expired(now_ms) {
            return Err(AuthError::Expired);
        }
        let wanted = request.subscription_type();
        // Only FIREHOSE subscriptions get the stream (other types load from the config).
        if wanted != sub.subscription_type || wanted != crate::config::FIREHOSE {
            return Err(AuthError::WrongType(wanted.to_owned()));
        }
    }
    let ts = request.timestamp_ms().ok_or(AuthError::Stale)?;
    // Saturating: a timestamp of u64::MAX is far in the future, not a wrap-around.
    if ts.saturating_add(TIMESTAMP_WINDOW_MS) < now_ms
        || ts > now_ms.saturating_add(TIMESTAMP_WINDOW_MS)
    {
        return Err(AuthError::Stale);
    }
    let signer = request
        .verify(crypto)
        .map_err(|e| AuthError::BadSignature(e.to_string()))?;
    // The replay identity is the signature's bytes: hex in another case is the same request.
    let expires = ts.saturating_add(TIMESTAMP_WINDOW_MS + 1);
    replay.first_use(
        signer,
        &request.signature().to_ascii_lowercase(),
        now_ms,
        expires,
    )?;
    Ok(Accepted {
        sender: signer,
        request,
    })
}

pub use firehose_core::since::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_key_fills_only_its_own_slots() {
        let c = ReplayCache::default();
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        c.first_use(a, "x", 0, 100).unwrap();
        assert_eq!(c.first_use(a, "x", 50, 150), Err(AuthError::Replayed));
        // The same signature under another key is another key's business (it cannot verify
        // for both, so this only shows the keys are separate).
        c.first_use(b, "x", 50, 150).unwrap();
        for i in 0..100_000 {
            let _ = c.first_use(a, &format!("s{i}"), 60, 1000);
        }
        assert_eq!(c.first_use(a, "new", 60, 1000), Err(AuthError::TooMany));
        c.first_use(b, "fresh", 60, 1000).unwrap();
        c.first_use(PublicKey([3; 32]), "fresh", 60, 1000).unwrap();
        // Once the window has passed, the key is served again.
        c.first_use(a, "new", 1001, 2000).unwrap();
        let seen = c.seen.lock().unwrap();
        assert!(seen.get(&a).unwrap().len() <= 2);
    }

    #[test]
    fn keys_are_bounded() {
        let c = ReplayCache::default();
        for i in 0..(REPLAY_KEYS_MAX as u32 + 10) {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            c.first_use(PublicKey(k), "s", 0, 100).unwrap();
        }
        assert_eq!(c.seen.lock().unwrap().len(), REPLAY_KEYS_MAX);
    }
}
