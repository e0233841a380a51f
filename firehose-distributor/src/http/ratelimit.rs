//! Per-IP request limit for the HTTP API (`RATE_LIMIT` requests per minute; loopback exempt).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window `RATE_LIMIT` counts requests in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Fixed-window counters per client address.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    exempt_loopback: bool,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    /// `limit` requests per [`WINDOW`] per address (0 = unlimited).
    pub fn new(limit: u32, exempt_loopback: bool) -> Self {
        Self {
            limit,
            exempt_loopback,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `ip` at `now`; false if it is over the limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit == 0 || (self.exempt_loopback && ip.is_loopback()) {
            return true;
        }
        let mut w = self.windows.lock().expect("rate limiter lock");
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let e = w.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) >= WINDOW {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let r = RateLimiter::new(3, true);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!((0..3).all(|_| r.allow(a, t0)));
        assert!(!r.allow(a, t0), "fourth in the window");
        assert!(r.allow(b, t0), "another address has its own count");
        assert!(r.allow(a, t0 + WINDOW), "a new window");
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..10).all(|_| r.allow(lo, t0)), "loopback exempt");
        let strict = RateLimiter::new(1, false);
        assert!(strict.allow(lo, t0));
        assert!(!strict.allow(lo, t0));
    }
}
