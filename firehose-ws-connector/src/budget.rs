//! The memory budget of server mode: everything a connection can hold is reserved before the
//! connection is served.
//!
//! A connection holds, at most, one message being received (up to the largest message) and
//! the lines of the block before it, waiting for the output (the format says how long they
//! can get: [`crate::output::OutputFormat::line_bytes`]; a block's payload is let go once its
//! lines are made). It reads no further message while a block waits and the next one is in,
//! so that is all. The reservation ([`Budget::reservation`]) is
//! taken at `accept` and given back when the connection ends *and* its last lines are written
//! (lines handed to the output are written whole even after their observer left, and stay
//! counted until then). Connections that do not fit wait in the kernel's backlog.
//!
//! Invariant: the bytes reserved never exceed the budget, whatever peers send or how long the
//! output blocks. Non-guarantee: allocator overhead and tungstenite's read buffer (128 KiB a
//! connection) are not counted.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budget units are KiB (a semaphore counts at most `u32::MAX` permits at once).
const UNIT: usize = 1024;

/// A byte budget shared by every connection.
#[derive(Debug, Clone)]
pub struct Budget {
    sem: Arc<Semaphore>,
    total_units: usize,
}

/// Bytes reserved from a [`Budget`]; given back when the last clone is dropped.
pub type Reserved = Arc<OwnedSemaphorePermit>;

impl Budget {
    /// A budget of `bytes` (rounded down to KiB, at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let total_units = (bytes / UNIT).clamp(1, u32::MAX as usize);
        Self {
            sem: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    /// What one connection reserves: its largest message and that message's lines.
    pub fn reservation(max_message: usize, line_bytes_of_largest: usize) -> usize {
        max_message.saturating_add(line_bytes_of_largest)
    }

    /// Connections that fit at once with `reservation` bytes each (at least 1: a budget
    /// smaller than one reservation serves one connection at a time, with all of it).
    pub fn connections(&self, reservation: usize) -> usize {
        (self.total_units / Self::units(reservation).max(1)).max(1)
    }

    /// Waits until `bytes` (at most the whole budget) are free and reserves them.
    pub async fn reserve(&self, bytes: usize) -> Reserved {
        let units = Self::units(bytes).min(self.total_units);
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(units as u32)
            .await
            .expect("the budget's semaphore is never closed");
        Arc::new(permit)
    }

    /// Bytes reserved now.
    pub fn reserved_bytes(&self) -> usize {
        (self.total_units - self.sem.available_permits()) * UNIT
    }

    /// The whole budget, in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_units * UNIT
    }

    fn units(bytes: usize) -> usize {
        bytes.div_ceil(UNIT).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_never_exceed_the_budget() {
        let b = Budget::new(10 << 20);
        let each = Budget::reservation(2 << 20, (2 << 20) * 4 / 3 + 512);
        assert_eq!(b.connections(each), 2);
        let r1 = b.reserve(each).await;
        let r2 = b.reserve(each).await;
        assert!(b.reserved_bytes() <= b.total_bytes());
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), b.reserve(each));
        assert!(third.await.is_err(), "a third waits");
        // A reservation shared with a pending write is freed only when both let it go.
        let pending_write = r1.clone();
        drop(r1);
        assert!(b.reserved_bytes() >= 2 * each);
        drop(pending_write);
        let _r3 = b.reserve(each).await;
        drop(r2);
    }
}
