//! Per-API-key token buckets.
//!
//! Each partner has a bucket of `burst` tokens refilled at `per_second`; a request takes one.
//! An empty bucket answers how long until the next token (the `Retry-After` of the `429`).
//! Sans-IO: the caller passes `now`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by partner id.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_second` sustained requests with bursts of `burst` (both at least 1).
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second: per_second.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`: `Ok` or `Err(wait)` until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Full buckets carry no information: drop them to bound memory.
            let burst = self.burst;
            let rate = self.per_second;
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_key() {
        let rl = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("a", t0).is_ok());
        }
        let wait = rl.check("a", t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(rl.check("b", t0).is_ok(), "keys are independent");
        assert!(rl.check("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check("a", t0 + Duration::from_millis(500)).is_err());
        // Long idle refills to the burst only.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(rl.check("a", later).is_ok());
        }
        assert!(rl.check("a", later).is_err());
    }
}
