//! Who may run a back-fill: [`MAX_BACKFILLS`] at once, one per collector key, and a slot
//! that is needed elsewhere goes to whoever makes progress.
//!
//! A back-fill holds a database connection and a thread while it waits on its collector, so
//! slots are scarce. The rules, each against a way of hoarding them:
//!
//! * **One per key** ([`PER_KEY`]): a key that opens many resuming sessions holds one slot.
//!   A session replaced by a newer one of the same key gives its slot back at once (the
//!   session watches its close signal during the back-fill), and the newcomer waits up to
//!   [`SLOT_WAIT`] for it.
//! * **Progress when contended**: while a newcomer waits for a slot
//!   ([`BackfillSlots::contended`]), a back-fill that wrote less than its minimum rate over
//!   the last [`PROGRESS_WINDOW`] yields its slot ([`Progress::too_slow`]): its session is
//!   closed with 4001 and the collector resumes later from what it has. Without contention
//!   a slow collector keeps its slot (bounded by the per-batch send deadline).
//!
//! Non-guarantee: a newcomer that finds every slot held by back-fills that all progress fast
//! enough still gets 1011 after [`SLOT_WAIT`], and resumes again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use firehose_core::crypto::PublicKey;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::http::peers::{KeyedSlots, Slot};

/// Back-fills running at once (each holds a connection and a thread while it waits on its
/// collector).
pub const MAX_BACKFILLS: usize = 32;
/// Back-fills one collector key may run at once.
pub const PER_KEY: usize = 1;
/// Longest wait of a resuming session for a slot before it is closed with 1011.
pub const SLOT_WAIT: Duration = Duration::from_secs(10);
/// The window over which a back-fill's rate is measured.
pub const PROGRESS_WINDOW: Duration = Duration::from_secs(5);

/// The back-fill slots of one distributor.
#[derive(Debug)]
pub struct BackfillSlots {
    global: Arc<Semaphore>,
    per_key: KeyedSlots<PublicKey>,
    waiting: AtomicUsize,
}

impl Default for BackfillSlots {
    fn default() -> Self {
        Self {
            global: Arc::new(Semaphore::new(MAX_BACKFILLS)),
            per_key: KeyedSlots::new(PER_KEY),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// A back-fill's right to run; released on drop.
#[derive(Debug)]
pub struct BackfillSlot {
    _global: OwnedSemaphorePermit,
    _key: Slot<PublicKey>,
}

impl BackfillSlots {
    /// A slot for `key`, waiting up to [`SLOT_WAIT`] (while others yield theirs); `None`
    /// when none came free.
    pub async fn acquire(&self, key: PublicKey) -> Option<BackfillSlot> {
        let until = tokio::time::Instant::now() + SLOT_WAIT;
        // The key's own slot first: a replaced session of this key gives it back promptly
        // (waiting for it is no reason for other back-fills to yield).
        let key_slot = loop {
            if let Some(s) = self.per_key.try_acquire(key) {
                break s;
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let global = match self.global.clone().try_acquire_owned() {
            Ok(g) => g,
            Err(_) => {
                self.waiting.fetch_add(1, Ordering::AcqRel);
                let g = tokio::time::timeout_at(until, self.global.clone().acquire_owned()).await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                g.ok()?.ok()?
            }
        };
        Some(BackfillSlot {
            _global: global,
            _key: key_slot,
        })
    }

    /// True while a session waits for a slot: slow back-fills should yield theirs.
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// Slots free now.
    pub fn available(&self) -> usize {
        self.global.available_permits()
    }
}

/// Bytes a back-fill has written, sampled over the last [`PROGRESS_WINDOW`].
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    written: u64,
    samples: VecDeque<(Instant, u64)>,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl Progress {
    /// Nothing written yet, at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            written: 0,
            samples: VecDeque::from([(now, 0)]),
        }
    }

    /// `bytes` more written to the socket.
    pub fn wrote(&mut self, bytes: u64) {
        self.written = self.written.saturating_add(bytes);
    }

    /// Takes a sample at `now` (call it regularly, e.g. every second).
    pub fn sample(&mut self, now: Instant) {
        self.samples.push_back((now, self.written));
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= PROGRESS_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// True when, over a whole [`PROGRESS_WINDOW`] up to `now`, fewer than `min_per_sec`
    /// bytes a second were written.
    pub fn too_slow(&self, now: Instant, min_per_sec: u64) -> bool {
        let Some(&(t0, w0)) = self.samples.front() else {
            return false;
        };
        let span = now.duration_since(t0);
        if span < PROGRESS_WINDOW || now.duration_since(self.started) < PROGRESS_WINDOW {
            return false;
        }
        let rate = (self.written - w0) as f64 / span.as_secs_f64();
        rate < min_per_sec as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_judged_over_a_whole_window() {
        let t = Instant::now();
        let mut p = Progress::new(t);
        p.wrote(1000);
        p.sample(t + Duration::from_secs(1));
        assert!(
            !p.too_slow(t + Duration::from_secs(1), 1 << 20),
            "too early"
        );
        for s in 2..=6 {
            p.sample(t + Duration::from_secs(s));
        }
        assert!(p.too_slow(t + Duration::from_secs(6), 1 << 20));
        for s in 7..=12 {
            p.wrote(2 << 20);
            p.sample(t + Duration::from_secs(s));
        }
        assert!(!p.too_slow(t + Duration::from_secs(12), 1 << 20));
    }

    #[tokio::test]
    async fn one_slot_per_key_and_a_replaced_session_gives_it_back() {
        let slots = BackfillSlots::default();
        let a = PublicKey([1; 32]);
        let first = slots.acquire(a).await.unwrap();
        let other = slots.acquire(PublicKey([2; 32])).await.unwrap();
        assert_eq!(slots.available(), MAX_BACKFILLS - 2);
        let waiter = slots.acquire(a);
        tokio::pin!(waiter);
        tokio::select! {
            _ = &mut waiter => panic!("a second slot for the same key"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        assert!(
            !slots.contended(),
            "waiting for its own key's slot is not contention"
        );
        drop(first);
        assert!(waiter.await.is_some());
        drop(other);
    }
}
