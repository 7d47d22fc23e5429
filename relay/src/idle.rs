//! The worker's idle policy: after a round of polling, whether to keep polling without
//! blocking (spin) or to sleep in `epoll_wait` until the next datagram or timer.
//!
//! Spinning saves a sleep and a wake-up per round (two context switches and, in a virtual
//! machine, a vCPU halt and resume), which under heavy traffic is the difference between a
//! median of tens of microseconds and of milliseconds. Under light traffic it only burns the
//! CPU: the next datagram comes long after the spin has given up. [`IdlePolicy`] spins only
//! when it pays:
//!
//! - **after a busy round only**: one `recvmmsg` returned at least a quarter of a batch, so
//!   datagrams arrive faster than the loop turns and more are due within microseconds. A
//!   round of a few datagrams means the loop keeps up by itself; it sleeps.
//! - **as long as spins are caught**: a spin that ends with traffic (a hit) doubles the
//!   spin, up to the configured [`IdlePolicy::new`] maximum; a spin that runs out with
//!   nothing (a miss) halves it, down to an eighth of the maximum.
//!
//! Sans-IO: the worker passes `now` and what the round received; the policy says whether the
//! next poll blocks. Driven by a virtual clock in its tests.

use std::time::{Duration, Instant};

/// Share of a receive batch a single `recvmmsg` must fill for the round to count as busy:
/// one quarter.
const BUSY_DIVISOR: usize = 4;
/// The shortest spin, as a fraction of the longest: one eighth.
const MIN_SPIN_DIVISOR: u32 = 8;

/// Whether and how long a worker polls without blocking. See the module docs.
#[derive(Debug, Clone)]
pub struct IdlePolicy {
    max: Duration,
    current: Duration,
    until: Option<Instant>,
    hits: u64,
    misses: u64,
}

impl IdlePolicy {
    /// A policy that spins for at most `max` after a busy round (zero: never spins).
    pub fn new(max: Duration) -> Self {
        Self {
            max,
            current: max,
            until: None,
            hits: 0,
            misses: 0,
        }
    }

    /// Whether the next poll should not block.
    pub fn spinning(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now < t)
    }

    /// The spin the next busy round gets.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// Spins that ended with traffic, and spins that ran out.
    pub fn outcomes(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Takes a finished round: `received` datagrams in all, `fullest` the most one receive
    /// call returned, `batch` the receive batch size.
    pub fn after_round(&mut self, now: Instant, received: usize, fullest: usize, batch: usize) {
        if self.max.is_zero() {
            return;
        }
        if let Some(until) = self.until {
            if received > 0 {
                // Traffic while spinning (or right at its end): the spin paid.
                self.hits += 1;
                self.current = (self.current * 2).min(self.max);
                self.until = None;
            } else if now >= until {
                self.misses += 1;
                self.current = (self.current / 2).max(self.max / MIN_SPIN_DIVISOR);
                self.until = None;
                return;
            } else {
                return;
            }
        }
        if received > 0 && fullest * BUSY_DIVISOR >= batch.max(1) {
            self.until = Some(now + self.current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_busy_round_spins_and_a_light_one_sleeps() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(200 * US);
        p.after_round(t0, 3, 3, 32);
        assert!(!p.spinning(t0), "3 of 32 is a light round");
        p.after_round(t0, 8, 8, 32);
        assert!(p.spinning(t0 + 199 * US));
        assert!(!p.spinning(t0 + 200 * US));
    }

    #[test]
    fn misses_halve_the_spin_down_to_an_eighth_and_hits_double_it_back() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(200 * US);
        let mut now = t0;
        for _ in 0..6 {
            p.after_round(now, 32, 32, 32);
            now += p.current();
            // Nothing came during the spin.
            p.after_round(now, 0, 0, 32);
            now += 1000 * US;
        }
        assert_eq!(p.current(), 25 * US);
        assert_eq!(p.outcomes(), (0, 6));
        // A busy round starts a spin; traffic 5 µs later is caught, four times in a row.
        for _ in 0..5 {
            p.after_round(now, 32, 32, 32);
            now += 5 * US;
        }
        assert_eq!(p.current(), 200 * US);
        assert_eq!(p.outcomes().0, 4);
    }

    #[test]
    fn an_empty_poll_before_the_end_keeps_spinning() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(200 * US);
        p.after_round(t0, 16, 16, 32);
        p.after_round(t0 + 50 * US, 0, 0, 32);
        assert!(p.spinning(t0 + 60 * US));
        assert_eq!(p.outcomes(), (0, 0));
    }

    #[test]
    fn zero_never_spins() {
        let t0 = Instant::now();
        let mut p = IdlePolicy::new(Duration::ZERO);
        p.after_round(t0, 32, 32, 32);
        assert!(!p.spinning(t0));
    }
}
