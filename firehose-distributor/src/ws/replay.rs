//! The replay buffer: the most recent signed messages, kept in publish order, so that
//! resuming collectors catch up from the same shared bytes the live stream used (read and
//! signed once, fanned out), without a database back-fill, a slot or a thread each.
//!
//! Invariants:
//!
//! * Messages are numbered in publish order (`seq`); the buffer holds `first..next`.
//! * The **floor** says what the buffer is complete from: for each type, every message the
//!   stream published after the floor's point is still held. A resume point at or after the
//!   floor (every type) is [`Replay::covers`]ed: catching up from the buffer leaves no gap.
//!   Dropping the oldest message to stay within the byte budget moves the floor past it.
//! * Until the floor is set ([`Replay::set_floor`], once the readers know where the retained
//!   logs begin), nothing is covered.
//!
//! Non-guarantees: an entry without typed fields has no key and is never replayed (resumes
//! skip it, as a database back-fill does). The order within a type is the data log's; a row
//! that reaches the archiver's database without a data-log entry is not in the buffer (nor in
//! the live stream).

use std::collections::VecDeque;
use std::sync::RwLock;

use firehose_core::records::DataType;
use firehose_core::since::{RecordKey, Since};

use crate::ws::message::Shared;

/// Bytes a message costs in the buffer besides its frame (the `Arc`, the key, the slot).
const OVERHEAD: usize = 128;

/// The catch-up reader fell behind the buffer: the messages it needs next were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lapped;

/// The replay buffer of one hub (see the module docs).
#[derive(Debug)]
pub struct Replay {
    ring: RwLock<Ring>,
    budget: usize,
}

#[derive(Debug, Default)]
struct Ring {
    msgs: VecDeque<Shared>,
    /// Seq of `msgs[0]`.
    first: u64,
    bytes: usize,
    /// Raised past every message dropped, and by [`Replay::set_floor`].
    floor: Since,
    /// The floor was set: resumes may be served.
    ready: bool,
}

fn cost(m: &Shared) -> usize {
    m.json().len() + OVERHEAD
}

impl Default for Replay {
    /// No buffer: nothing kept, nothing covered.
    fn default() -> Self {
        Self::new(0)
    }
}

impl Replay {
    /// A buffer of at most `budget` bytes (0: nothing is kept and nothing is covered).
    pub fn new(budget: usize) -> Self {
        Self {
            ring: RwLock::default(),
            budget,
        }
    }

    fn read_ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.ring.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_ring(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a published message (the hub calls this in publish order); drops the oldest
    /// past the budget.
    pub fn push(&self, msg: &Shared) {
        let mut r = self.write_ring();
        if self.budget == 0 {
            r.first += 1;
            if let Some(k) = msg.key() {
                raise(&mut r.floor, k);
            }
            return;
        }
        r.bytes += cost(msg);
        r.msgs.push_back(msg.clone());
        while r.bytes > self.budget {
            let Some(old) = r.msgs.pop_front() else { break };
            r.first += 1;
            r.bytes -= cost(&old);
            if let Some(k) = old.key() {
                raise(&mut r.floor, k);
            }
        }
    }

    /// Sets where the buffer is complete from (see the module docs), raised past anything
    /// dropped meanwhile.
    pub fn set_floor(&self, floor: &Since) {
        let mut r = self.write_ring();
        for t in DataType::ALL {
            if let Some(k) = key_of(floor, t) {
                raise(&mut r.floor, &k);
            }
        }
        r.ready = true;
    }

    /// Whether messages are kept at all (a budget above 0).
    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The seq the next published message gets.
    pub fn next_seq(&self) -> u64 {
        let r = self.read_ring();
        r.first + r.msgs.len() as u64
    }

    /// Where a catch-up from `since` starts reading (the oldest message held), if the buffer
    /// holds everything published after `since` for every type; `None` otherwise.
    pub fn covers(&self, since: &Since) -> Option<u64> {
        let r = self.read_ring();
        if !r.ready {
            return None;
        }
        let floor = &r.floor;
        let cycle = match floor.cycle {
            None => true,
            Some(f) => since.cycle.is_some_and(|p| p >= f),
        };
        let keyed = |f: &Option<firehose_core::since::PageKey>,
                     p: &Option<firehose_core::since::PageKey>| match f {
            None => true,
            Some(f) => p.as_ref().is_some_and(|p| p >= f),
        };
        let ok = cycle
            && keyed(&floor.original_tx, &since.original_tx)
            && keyed(&floor.receipt, &since.receipt);
        ok.then_some(r.first)
    }

    /// Up to `max` messages from seq `from` on (fewer at the newest end; none when `from` is
    /// the next seq). [`Lapped`] when `from` was dropped already.
    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Shared>, Lapped> {
        let r = self.read_ring();
        let Some(skip) = from.checked_sub(r.first) else {
            return Err(Lapped);
        };
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        Ok(r.msgs.iter().skip(skip).take(max).cloned().collect())
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.read_ring().bytes
    }

    /// Messages held now.
    pub fn len(&self) -> usize {
        self.read_ring().msgs.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `since`'s point for type `t` as a key (for raising another point to it).
pub fn key_of(since: &Since, t: DataType) -> Option<RecordKey> {
    let page = match t {
        DataType::Cycle => {
            return since.cycle.map(|c| RecordKey {
                data_type: t,
                id: "".into(),
                cycle: c,
                timestamp: 0,
            })
        }
        DataType::OriginalTx => since.original_tx.as_ref(),
        DataType::Receipt => since.receipt.as_ref(),
    }?;
    Some(RecordKey {
        data_type: t,
        id: page.id.as_str().into(),
        cycle: page.cycle,
        timestamp: page.timestamp,
    })
}

/// Moves `point` past `key` if it is not there already (never backwards).
pub fn raise(point: &mut Since, key: &RecordKey) {
    if !point.has(key) {
        point.advance_key(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::message::Outgoing;

    fn cycle(i: u64) -> Shared {
        let k = RecordKey {
            data_type: DataType::Cycle,
            id: format!("c{i}").into(),
            cycle: i,
            timestamp: 0,
        };
        Outgoing::new(
            format!("{{\"counter\":{i},\"pad\":\"{}\"}}", "x".repeat(100)),
            Some(k),
        )
    }

    fn at(c: u64) -> Since {
        Since {
            cycle: Some(c),
            ..Since::default()
        }
    }

    #[test]
    fn covers_nothing_until_the_floor_is_set_then_what_it_holds() {
        let r = Replay::new(1 << 20);
        for i in 1..=10 {
            r.push(&cycle(i));
        }
        assert_eq!(r.covers(&at(5)), None, "no floor yet");
        r.set_floor(&at(0));
        assert_eq!(r.covers(&at(5)), Some(0));
        assert_eq!(r.read(0, 3).unwrap().len(), 3);
        assert_eq!(r.read(8, 100).unwrap().len(), 2);
        assert!(r.read(10, 100).unwrap().is_empty());
        assert_eq!(r.next_seq(), 10);
    }

    #[test]
    fn dropping_the_oldest_raises_the_floor_and_laps_slow_readers() {
        let one = cost(&cycle(1));
        let r = Replay::new(one * 5);
        r.set_floor(&at(0));
        for i in 1..=8 {
            r.push(&cycle(i));
        }
        assert_eq!(r.len(), 5);
        // Cycles 1..=3 were dropped: a collector at 2 would miss 3.
        assert_eq!(r.covers(&at(2)), None);
        assert_eq!(r.covers(&at(3)), Some(3));
        assert!(matches!(r.read(2, 1), Err(Lapped)));
        assert!(r.bytes() <= one * 5);
    }

    #[test]
    fn a_type_without_a_point_is_covered_only_if_nothing_of_it_was_dropped() {
        let r = Replay::new(1 << 20);
        r.set_floor(&Since::default());
        assert!(r.covers(&Since::default()).is_some());
        r.set_floor(&at(4));
        assert!(r.covers(&Since::default()).is_none());
        assert!(r.covers(&at(4)).is_some());
    }
}
