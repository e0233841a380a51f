//! Checking a collector's subscription request at the websocket upgrade.
//!
//! The request is `?data=<safeStringify(signed)>` where signed is
//! `signObj({collectorInfo: {subscriptionType, timestamp}, sender})`. Rules, in order:
//! the shape (`collectorInfo` object, `sender` string, `sign.owner`/`sign.sig` strings),
//! `sign.owner == sender`; with `limitToSubscribersOnly`: listed, not expired (correct rule),
//! same `subscriptionType`; the timestamp within ±30 s (beyond the original: future timestamps
//! and `0` are rejected too); the signature; and (beyond the original) a signature already used
//! within the window is a replay.

use std::collections::HashMap;
use std::sync::Mutex;

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
}

/// An accepted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The collector.
    pub sender: PublicKey,
    /// The request (its `since` and `encoding` are read by the session).
    pub request: SignedSubscription,
}

/// Most signatures remembered at once (about 25 MB); past it new subscriptions are refused
/// until the oldest expire (one timestamp window).
pub const REPLAY_CACHE_MAX: usize = 100_000;

/// Remembers signatures seen within the timestamp window.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<Seen>,
}

/// Signatures and when they expire; pruned when the map doubles (amortised O(1) per use).
#[derive(Debug, Default)]
struct Seen {
    map: HashMap<String, u64>,
    prune_at: usize,
    /// While full: no new prune before this time (ms), so a flood costs no scan per request.
    full_until_ms: u64,
}

impl ReplayCache {
    /// True if `sig` was not seen before (and records it until `expires_ms`).
    fn first_use(&self, sig: &str, now_ms: u64, expires_ms: u64) -> bool {
        let mut guard = self.seen.lock().expect("replay cache lock");
        let Seen {
            map: seen,
            prune_at,
            full_until_ms,
        } = &mut *guard;
        let full = seen.len() >= REPLAY_CACHE_MAX;
        if (!full && seen.len() >= (*prune_at).max(1024)) || (full && now_ms >= *full_until_ms) {
            seen.retain(|_, exp| *exp > now_ms);
            *prune_at = seen.len() * 2;
            *full_until_ms = now_ms.saturating_add(1000);
        }
        if seen.len() >= REPLAY_CACHE_MAX {
            // A flood of distinct signed requests within one window: fail closed (refuse)
            // rather than grow without bound or forget signatures that could be replayed.
            tracing::warn!(
                entries = seen.len(),
                "replay cache full; refusing subscriptions until entries expire"
            );
            return false;
        }
        match seen.get(sig) {
            Some(exp) if *exp > now_ms => false,
            _ => {
                seen.insert(sig.to_owned(), expires_ms);
                true
            }
        }
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
    if !replay.first_use(&request.signature().to_ascii_lowercase(), now_ms, expires) {
        return Err(AuthError::Replayed);
    }
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
    fn the_replay_cache_is_bounded_and_fails_closed() {
        let c = ReplayCache::default();
        assert!(c.first_use("a", 0, 100));
        assert!(!c.first_use("a", 50, 150), "a replay within the window");
        for i in 0..REPLAY_CACHE_MAX {
            c.first_use(&format!("s{i}"), 60, 1000);
        }
        assert!(
            !c.first_use("new", 60, 1000),
            "full: refused, not forgotten"
        );
        assert!(c.first_use("new", 2001, 3000), "once the window has passed");
        assert!(c.seen.lock().unwrap().map.len() < 10);
    }
}
