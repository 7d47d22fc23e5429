//! What one WebSocket may cost: a per-socket message budget, and the counters of sockets
//! closed for going past a limit (read by the host's `/metrics`).
//!
//! [`FrameBudget`] is a token bucket, sans-IO: [`FrameBudget::take`] is called with `now` for
//! every frame a socket sends (text, binary, ping, pong); `false` means the socket went past
//! `ws_rate_limit_burst` messages at `ws_rate_limit_per_second` and is closed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A per-socket token bucket of messages.
#[derive(Debug, Clone)]
pub struct FrameBudget {
    per_second: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl FrameBudget {
    /// A full bucket of `burst` messages refilled at `per_second` (both at least a little
    /// above zero).
    pub fn new(per_second: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_second: per_second.max(0.001),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one message at `now`: `false` when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Sockets closed for going past a limit, since start.
#[derive(Debug, Default)]
pub struct WsCounters {
    rate_limited: AtomicU64,
    too_big: AtomicU64,
    login_timeouts: AtomicU64,
}

/// A copy of [`WsCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsLimitCounts {
    /// Closed with `rate_limited` (message flood).
    pub rate_limited: u64,
    /// Closed with `message_too_big` (a message above `ws_max_message_bytes`).
    pub too_big: u64,
    /// Closed with `login_timeout` (no `login` in time).
    pub login_timeouts: u64,
}

impl WsCounters {
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn too_big(&self) {
        self.too_big.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn login_timeout(&self) {
        self.login_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> WsLimitCounts {
        WsLimitCounts {
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            too_big: self.too_big.load(Ordering::Relaxed),
            login_timeouts: self.login_timeouts.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = FrameBudget::new(10.0, 5, t0);
        for _ in 0..5 {
            assert!(b.take(t0));
        }
        assert!(!b.take(t0), "the burst is spent");
        // 10 per second: one more every 100 ms, never more than the burst after a pause.
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(150)));
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert!(b.take(later));
        }
        assert!(!b.take(later));
    }

    #[test]
    fn a_steady_sender_under_the_rate_is_never_refused() {
        let t0 = Instant::now();
        let mut b = FrameBudget::new(50.0, 1, t0);
        for i in 0..1000u64 {
            assert!(b.take(t0 + Duration::from_millis(20 * i)), "message {i}");
        }
    }
}
