//! The worker's idle policy: after a round of polling, whether to keep polling without
//! blocking (spin) or to sleep in `epoll_wait` until the next datagram or timer.
//!
//! Spinning saves a sleep and a wake-up per round (two context switches and, in a virtual
//! machine, a vCPU halt and resume), which under heavy traffic is the difference between a
//! median of tens of microseconds and of milliseconds. Under light traffic it only burns the
//! CPU: the next datagram comes long after the spin has given up. [`IdlePolicy`] spins only
//! when it pays:
//!
//! - **when the worker is loaded**: over the last window (about a millisecond of rounds) it
//!   spent at least [`LOADED_PERCENT`] % of the wall time working rather than waiting. Below
//!   that a sleep and a wake-up per round cost less than the spin that would replace them,
//!   and the loop keeps up by itself: it sleeps, whatever the batches look like. (A slow
//!   wake-up, common in virtual machines, lets a batch pile up while the worker is nearly
//!   idle; batch size alone mistook that for load and spun a core at a quarter of the
//!   maximum rate.)
//! - **after a busy round only**: one `recvmmsg` returned at least a quarter of a batch, so
//!   datagrams arrive faster than the loop turns and more are due within microseconds. A
//!   round of a few datagrams means the loop keeps up by itself; it sleeps.
//! - **as long as spins are caught**: a spin that ends with traffic (a hit) doubles the
//!   spin, up to the configured [`IdlePolicy::new`] maximum; a spin that runs out with
//!   nothing (a miss) halves it, down to an eighth of the maximum.
//!
//! Sans-IO: the worker passes when the round's poll returned, `now` and what the round
//! received; the policy says whether the next poll blocks. Driven by a virtual clock in its
//! tests.

use std::time::{Duration, Instant};

/// Share of a receive batch a single `recvmmsg` must fill for the round to count as busy:
/// one quarter.
const BUSY_DIVISOR: usize = 4;
/// The shortest spin, as a fraction of the longest: one eighth.
const MIN_SPIN_DIVISOR: u32 = 8;
/// Share of the wall time, in percent, a worker must spend working (not waiting in or
/// spinning on its poll) for a busy round to start a spin.
pub const LOADED_PERCENT: u32 = 60;
/// How much wall time one load measurement covers.
const LOAD_WINDOW: Duration = Duration::from_millis(1);

/// Whether and how long a worker polls without blocking. See the module docs.
#[derive(Debug, Clone)]
pub struct IdlePolicy {
    max: Duration,
    current: Duration,
    until: Option<Instant>,
    hits: u64,
    misses: u64,
    /// End of the previous round: the wait of a round runs from there to its poll's return.
    last_end: Option<Instant>,
    /// Work and wall time of the window being measured.
    window_work: Duration,
    window_wall: Duration,
    /// Whether the last finished window counted as loaded.
    loaded: bool,
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
            last_end: None,
            window_work: Duration::ZERO,
            window_wall: Duration::ZERO,
            loaded: false,
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

    /// Whether the last measured window found the worker loaded enough to spin.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// Spins that ended with traffic, and spins that ran out.
    pub fn outcomes(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Takes a finished round: its poll returned at `woke`, it ended at `now`; `received`
    /// datagrams in all, `fullest` the most one receive call returned, `batch` the receive
    /// batch size.
    pub fn after_round(
        &mut self,
        woke: Instant,
        now: Instant,
        received: usize,
        fullest: usize,
        batch: usize,
    ) {
        if self.max.is_zero() {
            return;
        }
        self.measure(woke, now);
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
        if self.loaded && received > 0 && fullest * BUSY_DIVISOR >= batch.max(1) {
            self.until = Some(now + self.current);
        }
    }

    /// Adds the round to the load window; closes the window once it covers [`LOAD_WINDOW`].
    fn measure(&mut self, woke: Instant, now: Instant) {
        let start = self.last_end.unwrap_or(woke);
        self.last_end = Some(now);
        self.window_work += now.saturating_duration_since(woke);
        self.window_wall += now.saturating_duration_since(start);
        if self.window_wall >= LOAD_WINDOW {
            self.loaded = self.window_work.as_nanos() * 100
                >= self.window_wall.as_nanos() * u128::from(LOADED_PERCENT);
            self.window_work = Duration::ZERO;
            self.window_wall = Duration::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    /// Runs rounds of `work` each after `wait` of waiting, for two load windows (so at least
    /// one closes); returns the
    /// end of the last round. The rounds are light (one datagram), so none starts a spin.
    fn rounds(p: &mut IdlePolicy, mut now: Instant, wait: Duration, work: Duration) -> Instant {
        let end = now + 2 * LOAD_WINDOW;
        while now < end {
            let woke = now + wait;
            now = woke + work;
            p.after_round(woke, now, 1, 1, 32);
        }
        now
    }

    /// A worker busy 90 % of the time.
    fn loaded(p: &mut IdlePolicy, now: Instant) -> Instant {
        let now = rounds(p, now, 10 * US, 90 * US);
        assert!(p.loaded());
        now
    }

    /// A busy round of `n` datagrams that took 5 µs, ending at `now`.
    fn busy(p: &mut IdlePolicy, now: Instant, n: usize) {
        p.after_round(now - 5 * US, now, n, n, 32);
    }

    #[test]
    fn a_busy_round_spins_and_a_light_one_sleeps() {
        let mut p = IdlePolicy::new(200 * US);
        let t0 = loaded(&mut p, Instant::now());
        p.after_round(t0, t0, 3, 3, 32);
        assert!(!p.spinning(t0), "3 of 32 is a light round");
        busy(&mut p, t0, 8);
        assert!(p.spinning(t0 + 199 * US));
        assert!(!p.spinning(t0 + 200 * US));
    }

    #[test]
    fn a_lightly_loaded_worker_sleeps_even_after_full_batches() {
        let mut p = IdlePolicy::new(200 * US);
        // Working 40 µs of every 100: below the threshold.
        let t0 = rounds(&mut p, Instant::now(), 60 * US, 40 * US);
        assert!(!p.loaded());
        // A slow wake-up piled up a full batch: still no spin.
        busy(&mut p, t0 + 100 * US, 32);
        assert!(!p.spinning(t0 + 101 * US));
        // The load rises above the threshold: the next busy round spins.
        let t1 = loaded(&mut p, t0 + 100 * US);
        busy(&mut p, t1, 32);
        assert!(p.spinning(t1 + US));
    }

    #[test]
    fn spinning_counts_as_waiting_so_a_spinning_idle_worker_unloads() {
        let mut p = IdlePolicy::new(200 * US);
        let mut now = loaded(&mut p, Instant::now());
        // Busy rounds, each followed by a spin that catches a single datagram 150 µs later:
        // the worker works 5 µs of every 155 and stops counting as loaded.
        for _ in 0..20 {
            busy(&mut p, now, 32);
            now += 150 * US;
            p.after_round(now, now, 1, 1, 32);
        }
        assert!(!p.loaded());
        busy(&mut p, now, 32);
        assert!(!p.spinning(now + US));
    }

    #[test]
    fn misses_halve_the_spin_down_to_an_eighth_and_hits_double_it_back() {
        let mut p = IdlePolicy::new(200 * US);
        let mut now = Instant::now();
        for _ in 0..6 {
            now = loaded(&mut p, now);
            busy(&mut p, now, 32);
            now += p.current();
            // Nothing came during the spin.
            p.after_round(now, now, 0, 0, 32);
        }
        assert_eq!(p.current(), 25 * US);
        assert_eq!(p.outcomes(), (0, 6));
        now = loaded(&mut p, now);
        // A busy round starts a spin; traffic 5 µs later is caught, four times in a row.
        for _ in 0..5 {
            busy(&mut p, now, 32);
            now += 5 * US;
        }
        assert_eq!(p.current(), 200 * US);
        assert_eq!(p.outcomes().0, 4);
    }

    #[test]
    fn an_empty_poll_before_the_end_keeps_spinning() {
        let mut p = IdlePolicy::new(200 * US);
        let t0 = loaded(&mut p, Instant::now());
        busy(&mut p, t0, 16);
        p.after_round(t0 + 50 * US, t0 + 50 * US, 0, 0, 32);
        assert!(p.spinning(t0 + 60 * US));
        assert_eq!(p.outcomes(), (0, 0));
    }

    #[test]
    fn zero_never_spins() {
        let mut p = IdlePolicy::new(Duration::ZERO);
        let t0 = Instant::now();
        busy(&mut p, t0, 32);
        assert!(!p.spinning(t0));
    }
}
