//! The target delay: a high quantile of each packet's *relative* delay.
//!
//! A packet's transit is its arrival time on the playout clock minus its RTP timestamp (both
//! in ms). Its relative delay is how much later it came than the fastest packet of the last
//! two seconds. Measuring arrival in playout ticks (10 ms per pull, see
//! [`crate::jitter::JitterBuffer`]) and taking the minimum over a sliding window means that a
//! sender clock running faster or slower than the receiver's only moves the reference, not
//! the relative delays, so drift is absorbed. Relative delays go into a forgetting histogram;
//! the target buffer level is its `quantile` plus one packet.

use super::histogram::ForgetfulHistogram;

const WINDOW_CAP: usize = 512;

/// Tuning of the adaptive target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayConfig {
    /// Share of packets that must come in time (e.g. 0.95).
    pub quantile: f64,
    /// Per-packet forget factor of the histogram (memory ≈ 1/(1 − f) packets).
    pub forget: f64,
    /// Length of the window for the fastest-packet reference, in ms.
    pub window_ms: f64,
    /// Lowest target level, ms.
    pub min_target_ms: f64,
    /// Highest target level, ms.
    pub max_target_ms: f64,
    /// Target before anything was measured, ms.
    pub initial_target_ms: f64,
}

impl Default for DelayConfig {
    fn default() -> Self {
        Self {
            quantile: 0.95,
            forget: 0.996,
            window_ms: 2000.0,
            min_target_ms: 20.0,
            max_target_ms: 1000.0,
            initial_target_ms: 60.0,
        }
    }
}

/// Relative-delay statistics and the target level they give.
#[derive(Debug, Clone)]
pub(crate) struct DelayManager {
    config: DelayConfig,
    hist: ForgetfulHistogram,
    /// Monotonic deque (increasing transit) of `(arrival_ms, transit_ms)` in a ring.
    ring: Box<[(f64, f64)]>,
    head: usize,
    len: usize,
    target_ms: f64,
    quantile_ms: f64,
    packet_ms: f64,
}

impl DelayManager {
    pub(crate) fn new(config: DelayConfig) -> Self {
        Self {
            config,
            hist: ForgetfulHistogram::new(500, 2.0, config.forget),
            ring: vec![(0.0, 0.0); WINDOW_CAP].into_boxed_slice(),
            head: 0,
            len: 0,
            target_ms: config.initial_target_ms,
            quantile_ms: config.initial_target_ms,
            packet_ms: 20.0,
        }
    }

    /// Records a packet of `packet_ms` with timestamp `ts_ms` arriving at `arrival_ms` on the
    /// playout clock. Returns its relative delay in ms.
    pub(crate) fn update(&mut self, arrival_ms: f64, ts_ms: f64, packet_ms: f64) -> f64 {
        let transit = arrival_ms - ts_ms;
        // Expire old entries from the front.
        while self.len > 0 && self.ring[self.head].0 < arrival_ms - self.config.window_ms {
            self.head = (self.head + 1) % WINDOW_CAP;
            self.len -= 1;
        }
        // Keep transits increasing: drop larger ones from the back.
        while self.len > 0 {
            let back = (self.head + self.len - 1) % WINDOW_CAP;
            if self.ring[back].1 >= transit {
                self.len -= 1;
            } else {
                break;
            }
        }
        if self.len == WINDOW_CAP {
            self.head = (self.head + 1) % WINDOW_CAP;
            self.len -= 1;
        }
        self.ring[(self.head + self.len) % WINDOW_CAP] = (arrival_ms, transit);
        self.len += 1;
        let fastest = self.ring[self.head].1;
        let relative = transit - fastest;
        self.hist.add(relative);
        if packet_ms > 0.0 && packet_ms <= 120.0 {
            self.packet_ms = packet_ms;
        }
        let q = self.hist.quantile(self.config.quantile);
        self.quantile_ms = q;
        self.target_ms =
            (q + self.packet_ms).clamp(self.config.min_target_ms, self.config.max_target_ms);
        relative
    }

    /// Forgets the transit reference (a new stream); the histogram is kept.
    pub(crate) fn reset_reference(&mut self) {
        self.len = 0;
    }

    /// The relative-delay quantile in ms: how late (against the fastest packet) a packet may
    /// be and still come in time, the slack the buffer must keep.
    pub(crate) fn quantile_ms(&self) -> f64 {
        if self.hist.is_empty() {
            self.config.initial_target_ms
        } else {
            self.quantile_ms
        }
    }

    /// The current target buffer level in ms.
    pub(crate) fn target_ms(&self) -> f64 {
        if self.hist.is_empty() {
            self.config.initial_target_ms
        } else {
            self.target_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_stream_gives_minimum_target() {
        let mut dm = DelayManager::new(DelayConfig::default());
        for i in 0..500 {
            let ts = i as f64 * 20.0;
            assert!(dm.update(ts + 30.0, ts, 20.0).abs() < 1e-9);
        }
        assert_eq!(dm.target_ms(), 22.0);
    }

    #[test]
    fn target_covers_the_jitter_quantile() {
        let mut dm = DelayManager::new(DelayConfig::default());
        // Every tenth packet is 60 ms late, the rest on time: 10 % > the 5 % allowed.
        for i in 0..2000 {
            let ts = i as f64 * 20.0;
            let extra = if i % 10 == 0 { 60.0 } else { 0.0 };
            dm.update(ts + 30.0 + extra, ts, 20.0);
        }
        assert!((dm.target_ms() - 82.0).abs() < 2.5, "{}", dm.target_ms());
    }

    #[test]
    fn drift_does_not_inflate_the_target() {
        let mut dm = DelayManager::new(DelayConfig::default());
        // Receiver clock 1000 ppm fast: transit grows 0.02 ms per packet.
        for i in 0..20_000 {
            let ts = i as f64 * 20.0;
            dm.update(ts * 1.001 + 30.0, ts, 20.0);
        }
        assert!(dm.target_ms() < 25.0, "{}", dm.target_ms());
    }
}
