//! A per-participant packet-rate cap (token bucket), so a participant that floods costs
//! itself its audio and nobody else anything.

use std::time::{Duration, Instant};

/// A token bucket of packets.
#[derive(Debug, Clone, Copy)]
pub(super) struct PacketBucket {
    per_second: u32,
    burst: u32,
    tokens: f64,
    at: Option<Instant>,
}

impl PacketBucket {
    /// `per_second` packets on average, bursts of `burst`.
    pub(super) fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst: burst.max(1),
            tokens: f64::from(burst.max(1)),
            at: None,
        }
    }

    /// Takes one packet's token at `now`; false when the bucket is empty.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = self
            .at
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or(Duration::ZERO);
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
        self.tokens = (self.tokens + elapsed.as_secs_f64() * f64::from(self.per_second))
            .min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_bursts_and_refills() {
        let t0 = Instant::now();
        let mut b = PacketBucket::new(100, 10);
        assert_eq!((0..50).filter(|_| b.take(t0)).count(), 10);
        // 100 ms later: 10 more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..50).filter(|_| b.take(t1)).count(), 10);
        // A steady 50/s stream passes whole.
        let mut b = PacketBucket::new(100, 10);
        let passed = (0..500)
            .filter(|i| b.take(t0 + Duration::from_millis(20 * i)))
            .count();
        assert_eq!(passed, 500);
    }
}
