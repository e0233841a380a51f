//! Deterministic collector keys, so that a distributor run elsewhere can allow-list the
//! bench's collectors in advance (`firehose-bench keys`).

use firehose_core::crypto::KeyPair;
use firehose_core::subscription::SubscriptionType;
use firehose_distributor::config::Subscriber;

/// The key pair of collector `i` of a run with `seed`.
pub fn collector(seed: u64, i: usize) -> KeyPair {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(b"fh-bench");
    s[8..16].copy_from_slice(&seed.to_le_bytes());
    s[16..24].copy_from_slice(&(i as u64).to_le_bytes());
    KeyPair::from_seed(s)
}

/// The allow-list entries (`subscribers` of `distributor-config.json`) for collectors
/// `0..n` of `seed`, never expiring, subscribed to the firehose.
pub fn subscribers(seed: u64, n: usize) -> Vec<Subscriber> {
    (0..n)
        .map(|i| Subscriber {
            public_key: collector(seed, i).public_key().to_string(),
            expiration_timestamp: 0,
            subscription_type: SubscriptionType::Firehose.as_str().to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn distinct_and_stable() {
        let a = super::subscribers(1, 3);
        assert_eq!(a, super::subscribers(1, 3));
        assert_ne!(a[0].public_key, a[1].public_key);
        assert_ne!(a[0].public_key, super::subscribers(2, 1)[0].public_key);
    }
}
