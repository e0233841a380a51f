//! Counts per key, each at most a cap (`KeyedSlots`): pending connections per source
//! address ([`PeerKey`]), so that one peer cannot fill the listener's table of connections not
//! yet sessions, and back-fills per collector key.
//!
//! Invariants: a `Slot` gives its count back when dropped, and a key whose count falls to
//! zero is forgotten, so the map holds only keys with a slot taken (at most the number of
//! slots taken). Non-guarantee: peers behind one NAT share a count, and an attacker with many
//! addresses (or keys) is held only by the caller's global cap.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What a per-address cap counts by: an IPv4 address, or the /64 prefix of an IPv6 address
/// (one host commonly holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKey {
    /// One IPv4 address.
    V4([u8; 4]),
    /// An IPv6 /64.
    V6([u8; 8]),
}

impl PeerKey {
    /// `127.0.0.1` or `::1` (also IPv4-mapped): the host itself.
    pub fn is_host_itself(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
            IpAddr::V6(v6) => {
                v6 == std::net::Ipv6Addr::LOCALHOST
                    || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
            }
        }
    }

    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&o[..8]);
                    Self::V6(prefix)
                }
            },
        }
    }
}

/// Counts per key, each at most a cap.
#[derive(Debug)]
pub(crate) struct KeyedSlots<K> {
    cap: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

/// Pending connections per source address.
pub(crate) type PeerSlots = KeyedSlots<PeerKey>;

impl<K: Hash + Eq + Copy + Send + 'static> KeyedSlots<K> {
    /// Slots of at most `cap` per key.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            counts: Arc::default(),
        }
    }

    /// A slot for `key`, or `None` when it holds `cap` already.
    pub(crate) fn try_acquire(&self, key: K) -> Option<Slot<K>> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            key,
            counts: self.counts.clone(),
        })
    }

    /// Addresses with a pending connection now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.len())
    }
}

/// One slot of a key; released on drop.
#[derive(Debug)]
pub(crate) struct Slot<K: Hash + Eq> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_capped_and_forgotten_when_its_slots_go() {
        let slots = PeerSlots::new(2);
        let a = PeerKey::of("10.0.0.1".parse().unwrap());
        let b = PeerKey::of("10.0.0.2".parse().unwrap());
        let a1 = slots.try_acquire(a).unwrap();
        let a2 = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none());
        let _b1 = slots.try_acquire(b).unwrap();
        drop(a1);
        let a3 = slots.try_acquire(a).unwrap();
        drop((a2, a3));
        assert_eq!(slots.addresses(), 1);
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_v4_as_v4() {
        let x = PeerKey::of("2001:db8:1:2::1".parse().unwrap());
        let y = PeerKey::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let z = PeerKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mapped = PeerKey::of("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(mapped, PeerKey::of("10.0.0.1".parse().unwrap()));
    }
}
