//! Where each collector got to, remembered by the server (beyond the original): the resume
//! point per collector key and data type, so that a collector that reconnects *without*
//! `since` (relayer-collector always does) is back-filled from where its last connection
//! ended instead of losing what was written meanwhile.
//!
//! * A session tracks the messages it has written to its socket ([`Tracker`]); a message
//!   counts as delivered once the collector's TCP has acknowledged its last byte: bytes
//!   written minus the socket's unacknowledged send queue ([`firehose_tcpq`]), minus a
//!   configurable margin (`RESUME_ACK_MARGIN_BYTES`, for a TCP-terminating proxy in between),
//!   sampled when the point is handed to [`Positions`]. Where the queue cannot be read, a
//!   message counts once [`LAG_BYTES`] more were written after it. So a resume repeats at most
//!   what was unacknowledged when the last point was handed over (duplicates, never a gap).
//! * A session starts from the point the live stream had reached when it joined the hub
//!   (what was published before, a live-only collector was never going to get).
//! * [`Positions`] keeps at most a number of keys. Keys that were never delivered anything
//!   (strangers that subscribed and left) are forgotten first, oldest first; then the key
//!   updated longest ago. Evictions are counted. It is saved atomically to a state file
//!   ([`crate::backfill::positions_file`]).
//!
//! Non-guarantee: a collector that lost data on its own side after its kernel acknowledged
//! it (a crash before it stored what it read) is not resent that data.

use crate::metrics::Counter;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use firehose_core::crypto::PublicKey;
use firehose_core::since::Since;

use crate::ws::hub::Shared;

/// Where the socket's unacknowledged queue cannot be read: bytes written after a message
/// before it counts as delivered (Linux's largest automatic TCP send buffer is 4 MiB).
pub const LAG_BYTES: u64 = 4 << 20;

/// Counters of implicit resumes, for `/metrics`.
#[derive(Debug, Default)]
pub struct ImplicitStats {
    /// Sessions resumed from a remembered point.
    pub resumes: Counter,
    /// Entries they were back-filled.
    pub backfilled: Counter,
    /// Implicit resumes cut at their maximum (a gap was left).
    pub cut: Counter,
    /// Resumes (implicit or with `since`) that caught up from the replay buffer, without a
    /// database back-fill or a slot.
    pub from_replay: Counter,
}

/// How often a session hands its delivered point to [`Positions`] (and at its end).
pub const SAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A session's start: `since` where it names a type, else `live` (where the stream was).
pub fn merge(since: Option<&Since>, live: &Since) -> Since {
    let Some(s) = since else {
        return live.clone();
    };
    Since {
        cycle: s.cycle.or(live.cycle),
        original_tx: s.original_tx.clone().or_else(|| live.original_tx.clone()),
        receipt: s.receipt.clone().or_else(|| live.receipt.clone()),
    }
}

/// The remembered resume points, at most `cap` keys.
#[derive(Debug)]
pub struct Positions {
    inner: Mutex<Inner>,
    cap: usize,
    /// Keys forgotten to stay within the cap.
    pub evicted: Counter,
    /// Changed since the state file was last written.
    dirty: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    points: HashMap<PublicKey, Point>,
    /// Keys that were delivered something, by the sequence number of their last update
    /// (oldest first).
    order: BTreeMap<u64, PublicKey>,
    /// Keys never delivered anything (forgotten before any of `order`), the same way.
    strangers: BTreeMap<u64, PublicKey>,
    seq: u64,
}

#[derive(Debug)]
struct Point {
    since: Since,
    seq: u64,
    /// Something was delivered to this key once (it stays so).
    delivered: bool,
}

impl Inner {
    fn order_of(&mut self, delivered: bool) -> &mut BTreeMap<u64, PublicKey> {
        if delivered {
            &mut self.order
        } else {
            &mut self.strangers
        }
    }
}

impl Positions {
    /// An empty store of at most `cap` keys (at least 1).
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::default(),
            cap: cap.max(1),
            evicted: Counter::default(),
            dirty: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The resume point of `key`, if one is remembered.
    pub fn get(&self, key: &PublicKey) -> Option<Since> {
        self.lock().points.get(key).map(|p| p.since.clone())
    }

    /// Whether `key` was ever delivered something (as far as the store remembers).
    pub fn was_delivered(&self, key: &PublicKey) -> bool {
        self.lock().points.get(key).is_some_and(|p| p.delivered)
    }

    /// Remembers `since` for `key`; `delivered`: the collector was delivered something (a
    /// key once delivered stays so). Past the cap, keys never delivered anything are
    /// forgotten first, then the one updated longest ago.
    pub fn set(&self, key: PublicKey, since: Since, delivered: bool) {
        let mut g = self.lock();
        g.seq += 1;
        let seq = g.seq;
        let mut delivered = delivered;
        if let Some(old) = g.points.remove(&key) {
            delivered |= old.delivered;
            g.order_of(old.delivered).remove(&old.seq);
        }
        g.points.insert(
            key,
            Point {
                since,
                seq,
                delivered,
            },
        );
        g.order_of(delivered).insert(seq, key);
        while g.points.len() > self.cap {
            let Some((_, oldest)) = g.strangers.pop_first().or_else(|| g.order.pop_first()) else {
                break;
            };
            g.points.remove(&oldest);
            self.evicted.inc();
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// Forgets every key for which `keep` is false (subscribers taken off the allow-list).
    pub fn retain(&self, keep: impl Fn(&PublicKey) -> bool) {
        let mut g = self.lock();
        let before = g.points.len();
        g.points.retain(|k, _| keep(k));
        if g.points.len() != before {
            let Inner {
                points,
                order,
                strangers,
                ..
            } = &mut *g;
            order.retain(|_, k| points.contains_key(k));
            strangers.retain(|_, k| points.contains_key(k));
            self.dirty.store(true, Ordering::Release);
        }
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.lock().points.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every point with whether it was delivered something, oldest update first (what the
    /// state file holds).
    pub fn snapshot(&self) -> Vec<(PublicKey, Since, bool)> {
        let g = self.lock();
        let mut all: Vec<(u64, PublicKey)> = g
            .order
            .iter()
            .chain(g.strangers.iter())
            .map(|(s, k)| (*s, *k))
            .collect();
        all.sort_unstable_by_key(|(s, _)| *s);
        all.into_iter()
            .filter_map(|(_, k)| g.points.get(&k).map(|p| (k, p.since.clone(), p.delivered)))
            .collect()
    }

    /// Takes the "changed" mark (true if there was a change to save).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    /// Marks the store changed again (a save failed).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// One session's progress: the messages written to its socket, and the resume point of
/// those that count as delivered.
#[derive(Debug)]
pub struct Tracker {
    /// Off when implicit resume is: then nothing is kept per message.
    enabled: bool,
    delivered: Since,
    /// Per flush: the byte offset where it ended and the last message of each type in it.
    written: VecDeque<(u64, [Option<Shared>; 3])>,
    /// The last message of each type pushed since the last flush.
    unflushed: [Option<Shared>; 3],
    written_bytes: u64,
    changed: bool,
    delivered_any: bool,
}

/// Flushes a tracker keeps unsettled before it applies the [`LAG_BYTES`] rule itself.
const MAX_UNSETTLED: usize = 4096;

impl Tracker {
    /// A session whose collector has everything up to `start`.
    pub fn new(start: Since) -> Self {
        Self {
            enabled: true,
            delivered: start,
            written: VecDeque::new(),
            unflushed: Default::default(),
            written_bytes: 0,
            changed: false,
            delivered_any: false,
        }
    }

    /// A tracker that keeps nothing (implicit resume is off: the live path pays nothing).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new(Since::default())
        }
    }

    /// `msg` was pushed to the socket writer.
    pub fn pushed(&mut self, msg: &Shared) {
        if !self.enabled {
            return;
        }
        if let Some(k) = msg.key() {
            self.first_of_type(k);
            self.unflushed[k.data_type.index()] = Some(msg.clone());
        }
    }

    /// A type without a start point (nothing of it existed when the session joined) gets one
    /// from its first message: the collector has everything before it.
    fn first_of_type(&mut self, k: &firehose_core::since::RecordKey) {
        use firehose_core::records::DataType;
        let start_of_cycle = || firehose_core::since::PageKey {
            cycle: k.cycle,
            timestamp: 0,
            id: String::new(),
        };
        let d = &mut self.delivered;
        let set = match k.data_type {
            DataType::Cycle if d.cycle.is_none() => {
                d.cycle = k.cycle.checked_sub(1);
                d.cycle.is_some()
            }
            DataType::OriginalTx if d.original_tx.is_none() => {
                d.original_tx = Some(start_of_cycle());
                true
            }
            DataType::Receipt if d.receipt.is_none() => {
                d.receipt = Some(start_of_cycle());
                true
            }
            _ => false,
        };
        self.changed |= set;
    }

    /// Everything pushed so far is written, and the socket has been written `written` bytes
    /// in all (one entry per flush, not per message).
    pub fn flushed(&mut self, written: u64) {
        if !self.enabled {
            return;
        }
        self.written_bytes = written;
        if self.unflushed.iter().any(Option::is_some) {
            let last = std::mem::take(&mut self.unflushed);
            self.written.push_back((self.written_bytes, last));
        }
        // Unacknowledged flushes are kept until the next settle; without one (a socket whose
        // queue cannot be read), the LAG_BYTES rule keeps the list short.
        if self.written.len() > MAX_UNSETTLED {
            self.settle(written, None, 0);
        }
    }

    /// Counts as delivered every message whose last byte the collector's TCP acknowledged:
    /// the socket has been written `written` bytes in all and `unacked` of them are still in
    /// its send queue (`None`: unknown, then messages [`LAG_BYTES`] behind count), less
    /// `margin` more bytes.
    pub fn settle(&mut self, written: u64, unacked: Option<u64>, margin: u64) {
        if !self.enabled {
            return;
        }
        let acked = match unacked {
            Some(q) => written.saturating_sub(q).saturating_sub(margin),
            None => written.saturating_sub(LAG_BYTES.max(margin)),
        };
        while let Some((end, _)) = self.written.front() {
            if *end > acked {
                break;
            }
            if let Some((_, last)) = self.written.pop_front() {
                for msg in last.iter().flatten() {
                    if let Some(k) = msg.key() {
                        self.delivered.advance_key(k);
                        self.changed = true;
                        self.delivered_any = true;
                    }
                }
            }
        }
    }

    /// Whether anything was ever counted delivered in this session.
    pub fn delivered_any(&self) -> bool {
        self.delivered_any
    }

    /// Whether the delivered point moved since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The delivered point.
    pub fn delivered(&self) -> &Since {
        &self.delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firehose_core::since::RecordKey;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    #[test]
    fn the_cap_forgets_the_key_updated_longest_ago() {
        let p = Positions::new(2);
        p.set(key(1), Since::default(), true);
        p.set(key(2), Since::default(), true);
        p.set(key(1), Since::default(), true); // 1 is now the most recent
        p.set(key(3), Since::default(), true);
        assert!(p.get(&key(2)).is_none());
        assert!(p.get(&key(1)).is_some() && p.get(&key(3)).is_some());
        assert_eq!(p.evicted.get(), 1);
        assert!(p.take_dirty() && !p.take_dirty());
    }

    #[test]
    fn strangers_are_forgotten_before_delivered_keys() {
        let p = Positions::new(3);
        p.set(key(1), Since::default(), true); // a working collector, updated longest ago
        for n in 2..=200 {
            p.set(key(n), Since::default(), false); // strangers churning
        }
        assert!(p.get(&key(1)).is_some() && p.was_delivered(&key(1)));
        assert_eq!(p.len(), 3);
        // Once delivered, always delivered: a later update without delivery keeps the mark.
        p.set(key(1), Since::default(), false);
        assert!(p.was_delivered(&key(1)));
        // Among delivered keys, the oldest update goes first.
        p.set(key(201), Since::default(), true);
        p.set(key(202), Since::default(), true);
        p.set(key(203), Since::default(), true);
        assert!(p.get(&key(1)).is_none());
        assert_eq!(p.snapshot().len(), 3);
    }

    fn cycle_msg(i: u64) -> Shared {
        let k = RecordKey {
            data_type: firehose_core::records::DataType::Cycle,
            id: format!("c{i}").into(),
            cycle: i,
            timestamp: 0,
        };
        crate::ws::hub::Outgoing::new(format!("{{\"c\":{i}}}"), Some(k))
    }

    #[test]
    fn a_message_counts_once_its_last_byte_is_acknowledged() {
        let mut t = Tracker::new(Since {
            cycle: Some(0),
            ..Since::default()
        });
        t.pushed(&cycle_msg(1));
        t.flushed(100);
        t.pushed(&cycle_msg(2));
        t.flushed(200);
        t.settle(200, Some(200), 0);
        assert!(!t.take_changed(), "nothing acknowledged");
        t.settle(200, Some(101), 0);
        assert!(!t.take_changed(), "one byte of message 1 unacknowledged");
        t.settle(200, Some(100), 0);
        assert!(t.take_changed() && t.delivered_any());
        assert_eq!(t.delivered().cycle, Some(1));
        // A margin for a proxy that acknowledges for the collector.
        t.settle(200, Some(0), 50);
        assert!(!t.take_changed());
        // A close frame written after message 2, still unacknowledged.
        t.settle(210, Some(10), 0);
        assert_eq!(t.delivered().cycle, Some(2));
    }

    #[test]
    fn a_message_counts_once_lag_bytes_were_written_after_it() {
        let msg = cycle_msg;
        // Nothing of a type when the session joined: its first message sets the point just
        // before it.
        let mut first = Tracker::new(Since::default());
        first.pushed(&msg(5));
        assert!(first.take_changed());
        assert_eq!(first.delivered().cycle, Some(4));
        let mut t = Tracker::new(Since {
            cycle: Some(0),
            ..Since::default()
        });
        t.pushed(&msg(1));
        t.flushed(1000);
        t.settle(1000, None, 0);
        assert!(!t.take_changed(), "still within the lag");
        t.pushed(&msg(2));
        t.flushed(1000 + LAG_BYTES);
        t.settle(1000 + LAG_BYTES, None, 0);
        assert!(t.take_changed());
        assert_eq!(t.delivered().cycle, Some(1));
        assert_eq!(t.delivered().cycle, Some(1), "2 is still within the lag");
    }
}
