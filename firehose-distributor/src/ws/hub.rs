//! The fan-out hub: every live entry is signed once, serialised once, and shared with every
//! session as a cheap clone of the same bytes.
//!
//! Slow-consumer policy: each session has a bounded queue. Publishing never waits: a session
//! whose queue is full is closed with code [`CLOSE_SLOW_CONSUMER`] and counted; it reconnects
//! when it can keep up. A slow session never blocks the readers or the other sessions.

use crate::metrics::Counter;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use firehose_core::crypto::PublicKey;
use tokio::sync::{mpsc, oneshot};

pub use crate::ws::message::{Outgoing, Shared};

/// Close code: a newer connection with the same key replaced this one.
pub const CLOSE_REPLACED: u16 = firehose_core::protocol::CLOSE_REPLACED;
/// Close code: subscription expired or removed, or the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = firehose_core::protocol::CLOSE_GOING_AWAY;
/// Close code: the session's queue overflowed (slow consumer).
pub const CLOSE_SLOW_CONSUMER: u16 = firehose_core::protocol::CLOSE_SLOW_CONSUMER;

/// Why a session is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// Websocket close code.
    pub code: u16,
    /// Human-readable reason.
    pub reason: &'static str,
}

/// The close reason at shutdown: sessions first send what is queued (bounded in time).
pub const SHUTDOWN: CloseReason = CloseReason {
    code: CLOSE_GOING_AWAY,
    reason: "server shutting down",
};

/// How long a session may spend sending its queue at shutdown.
pub const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

struct Handle {
    id: u64,
    tx: mpsc::Sender<Shared>,
    close: Option<oneshot::Sender<CloseReason>>,
    /// Queued published messages: false while the session catches up from the replay
    /// buffer ([`Hub::attach`] turns it on).
    live: bool,
}

/// One registered session's receiving ends.
#[derive(Debug)]
pub struct SessionRx {
    /// Session id (unique for the process).
    pub id: u64,
    /// Messages to send.
    pub messages: mpsc::Receiver<Shared>,
    /// Where the live stream was when the session joined: everything published before is at
    /// or before it, everything after is queued.
    pub start: firehose_core::since::Since,
    /// Fires when the hub closes the session.
    pub close: oneshot::Receiver<CloseReason>,
}

/// Counters of the hub.
#[derive(Debug, Default)]
pub struct HubMetrics {
    /// Messages published.
    pub published: Counter,
    /// Messages queued to sessions.
    pub deliveries: Counter,
    /// Sessions closed as slow consumers.
    pub slow_consumer_drops: Counter,
    /// Sessions replaced by a newer connection with the same key.
    pub replaced: Counter,
}

/// The sessions, and the key of the last message published per type: one lock, so that a
/// session's start point and its first queued message agree.
#[derive(Default)]
struct Registry {
    map: HashMap<PublicKey, Handle>,
    last: firehose_core::since::Since,
}

/// The registry of live sessions, one per collector key, and the replay buffer of what was
/// published.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<Registry>,
    next_id: AtomicU64,
    /// Counters.
    pub metrics: HubMetrics,
    /// The most recent messages, for resuming sessions ([`crate::ws::replay`]).
    replay: crate::ws::replay::Replay,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("sessions", &self.len())
            .finish()
    }
}

impl Hub {
    /// A hub whose replay buffer keeps up to `replay_bytes` of the newest messages.
    pub fn with_replay(replay_bytes: usize) -> Self {
        Self {
            replay: crate::ws::replay::Replay::new(replay_bytes),
            ..Self::default()
        }
    }

    /// The replay buffer.
    pub fn replay(&self) -> &crate::ws::replay::Replay {
        &self.replay
    }

    /// Registers a session for `key` with a queue of `capacity` messages. An existing session
    /// with the same key is closed with [`CLOSE_REPLACED`].
    pub fn register(&self, key: PublicKey, capacity: usize) -> SessionRx {
        self.register_as(key, capacity, true)
    }

    /// Registers a session that catches up from the replay buffer first: closable like any
    /// other, but nothing is queued to it until [`Hub::attach`].
    pub fn register_catching_up(&self, key: PublicKey, capacity: usize) -> SessionRx {
        self.register_as(key, capacity, false)
    }

    /// Turns session `id` of `key` live if it has read the replay buffer up to `next_seq`
    /// (the seq the next published message gets): from then on every message is queued to
    /// it, so nothing is missed or repeated. `false`: more was published meanwhile (read it,
    /// then try again), or the session is gone.
    pub fn attach(&self, key: &PublicKey, id: u64, next_seq: u64) -> bool {
        let mut reg = self.sessions.lock().expect("hub lock");
        if self.replay.next_seq() != next_seq {
            return false;
        }
        match reg.map.get_mut(key) {
            Some(h) if h.id == id => {
                h.live = true;
                true
            }
            _ => false,
        }
    }

    /// Puts a message read before the live readers started into the replay buffer (no
    /// session is sent it), in publish order.
    pub fn prefill(&self, msg: &Shared) {
        let mut reg = self.sessions.lock().expect("hub lock");
        if let Some(k) = msg.key() {
            reg.last.advance_key(k);
        }
        self.replay.push(msg);
    }

    fn register_as(&self, key: PublicKey, capacity: usize, live: bool) -> SessionRx {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, messages) = mpsc::channel(capacity.max(1));
        let (close_tx, close) = oneshot::channel();
        let mut reg = self.sessions.lock().expect("hub lock");
        let start = reg.last.clone();
        let old = reg.map.insert(
            key,
            Handle {
                id,
                tx,
                close: Some(close_tx),
                live,
            },
        );
        drop(reg);
        if let Some(mut old) = old {
            self.metrics.replaced.inc();
            if let Some(c) = old.close.take() {
                let _ = c.send(CloseReason {
                    code: CLOSE_REPLACED,
                    reason: "replaced by a newer connection with the same key",
                });
            }
        }
        SessionRx {
            id,
            messages,
            start,
            close,
        }
    }

    /// Where the stream stood before the readers started (the archiver's newest rows), for
    /// the types nothing has been published of yet: a session that joins before the first
    /// entry still starts from a point.
    pub fn seed_start(&self, newest: &firehose_core::since::Since) {
        let mut reg = self.sessions.lock().expect("hub lock");
        let last = &mut reg.last;
        last.cycle = last.cycle.or(newest.cycle);
        if last.original_tx.is_none() {
            last.original_tx.clone_from(&newest.original_tx);
        }
        if last.receipt.is_none() {
            last.receipt.clone_from(&newest.receipt);
        }
    }

    /// Forgets session `id` of `key` (if it is still the registered one).
    pub fn unregister(&self, key: &PublicKey, id: u64) {
        let mut reg = self.sessions.lock().expect("hub lock");
        if reg.map.get(key).is_some_and(|h| h.id == id) {
            reg.map.remove(key);
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("hub lock").map.len()
    }

    /// True without sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `msg` to every session; never waits.
    pub fn publish(&self, msg: &Shared) {
        self.metrics.published.inc();
        let mut delivered = 0;
        let mut reg = self.sessions.lock().expect("hub lock");
        if let Some(k) = msg.key() {
            reg.last.advance_key(k);
        }
        // Under the registry lock: a session attaches exactly at a seq (see `attach`).
        self.replay.push(msg);
        reg.map.retain(|key, h| {
            if !h.live {
                return true; // catching up: it reads the replay buffer
            }
            match h.tx.try_send(msg.clone()) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.metrics.slow_consumer_drops.inc();
                    tracing::warn!(collector = %key, "slow consumer: queue full, closing");
                    if let Some(c) = h.close.take() {
                        let _ = c.send(CloseReason {
                            code: CLOSE_SLOW_CONSUMER,
                            reason: "slow consumer: queue overflowed",
                        });
                    }
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.metrics.deliveries.inc_by(delivered);
    }

    /// Closes every session whose key matches `pred` with `reason`.
    pub fn close_where(&self, pred: impl Fn(&PublicKey) -> bool, reason: CloseReason) {
        let mut reg = self.sessions.lock().expect("hub lock");
        reg.map.retain(|key, h| {
            if pred(key) {
                if let Some(c) = h.close.take() {
                    let _ = c.send(reason.clone());
                }
                false
            } else {
                true
            }
        });
    }
}
