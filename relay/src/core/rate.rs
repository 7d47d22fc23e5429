//! Per-leg rate cap: two token buckets (packets per second and bytes per second), refilled
//! from the `now` the caller passes in.

use std::time::Instant;

/// A leg's rate limit. Zero means "no limit" for that dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateCap {
    /// Sustained packets per second.
    pub packets_per_sec: u32,
    /// Sustained bytes per second.
    pub bytes_per_sec: u32,
    /// How many seconds' worth of tokens may accumulate (burst), in milliseconds.
    pub burst_ms: u32,
}

/// Token-bucket state for one leg. Tokens are kept in micro-units so that refills never need
/// floating point.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    cap: RateCap,
    pkt_tokens: u64,
    byte_tokens: u64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket for `cap` at `now`.
    pub fn new(cap: RateCap, now: Instant) -> Self {
        let mut r = Self {
            cap,
            pkt_tokens: 0,
            byte_tokens: 0,
            last: now,
        };
        r.pkt_tokens = r.max_pkt();
        r.byte_tokens = r.max_bytes();
        r
    }

    fn burst_us(&self) -> u64 {
        u64::from(self.cap.burst_ms.max(1)) * 1000
    }

    fn max_pkt(&self) -> u64 {
        u64::from(self.cap.packets_per_sec) * self.burst_us()
    }

    fn max_bytes(&self) -> u64 {
        u64::from(self.cap.bytes_per_sec) * self.burst_us()
    }

    /// Whether this limiter limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.cap.packets_per_sec == 0 && self.cap.bytes_per_sec == 0
    }

    /// Takes one packet of `len` bytes at `now`; `false` means over the cap (drop it).
    #[inline]
    pub fn admit(&mut self, now: Instant, len: usize) -> bool {
        if self.is_unlimited() {
            return true;
        }
        let us = now.saturating_duration_since(self.last).as_micros() as u64;
        self.last = now;
        // One token per packet is 1_000_000 micro-units; refill rate*us micro-units per µs.
        self.pkt_tokens =
            (self.pkt_tokens + us * u64::from(self.cap.packets_per_sec)).min(self.max_pkt());
        self.byte_tokens =
            (self.byte_tokens + us * u64::from(self.cap.bytes_per_sec)).min(self.max_bytes());
        let need_pkt = if self.cap.packets_per_sec > 0 {
            1_000_000
        } else {
            0
        };
        let need_bytes = if self.cap.bytes_per_sec > 0 {
            len as u64 * 1_000_000
        } else {
            0
        };
        if self.pkt_tokens < need_pkt || self.byte_tokens < need_bytes {
            return false;
        }
        self.pkt_tokens -= need_pkt;
        self.byte_tokens -= need_bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unlimited_admits_everything() {
        let t = Instant::now();
        let mut r = RateLimiter::new(RateCap::default(), t);
        assert!((0..10_000).all(|_| r.admit(t, 1500)));
    }

    #[test]
    fn packet_cap_admits_burst_then_rate() {
        let t = Instant::now();
        let cap = RateCap {
            packets_per_sec: 100,
            bytes_per_sec: 0,
            burst_ms: 100,
        };
        let mut r = RateLimiter::new(cap, t);
        // Burst of 100 ms at 100 pps: 10 packets.
        let admitted = (0..50).filter(|_| r.admit(t, 100)).count();
        assert_eq!(admitted, 10);
        // One second later: another 10 (bucket capped at the burst).
        let t2 = t + Duration::from_secs(1);
        let admitted = (0..50).filter(|_| r.admit(t2, 100)).count();
        assert_eq!(admitted, 10);
        // 10 ms later: exactly one more token.
        let t3 = t2 + Duration::from_millis(10);
        assert!(r.admit(t3, 100));
        assert!(!r.admit(t3, 100));
    }

    #[test]
    fn byte_cap_counts_bytes() {
        let t = Instant::now();
        let cap = RateCap {
            packets_per_sec: 0,
            bytes_per_sec: 10_000,
            burst_ms: 100,
        };
        let mut r = RateLimiter::new(cap, t);
        // 1000 bytes of burst: four 250-byte packets, not five.
        assert_eq!((0..5).filter(|_| r.admit(t, 250)).count(), 4);
    }
}
