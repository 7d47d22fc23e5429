//! The target delay: a high quantile of each packet's *relative* delay.
//!
//! A packet's transit is its arrival time on the playout clock minus its RTP timestamp (both
//! in ms). Its relative delay is how much later it came than the fastest packet of the last
//! two seconds. Measuring arrival in playout ticks (10 ms per pull, see
//! [`crate::jitter::JitterBuffer`]) and taking the minimum over a sliding window means that a
//! sender clock running faster or slower than the receiver's only moves the reference, not
//! the relative delays, so drift is absorbed. Relative delays go into a forgetting histogram.
//!
//! Stalls are too rare to move that quantile, so a [`StallMemory`] keeps the delay peaks of
//! the last seconds beside it and says how long a stall the buffer should ride out to keep
//! their concealment within a budget. The buffer stretches what it holds while a stall
//! lasts (see [`crate::jitter::JitterBuffer`]), so holding that coverage over the stretch
//! factor is enough. The slack to keep is the larger of the quantile and that share of the
//! coverage; the target buffer level is the slack plus one packet.

use super::histogram::ForgetfulHistogram;
use super::peaks::StallMemory;

const WINDOW_CAP: usize = 512;
/// How much later than the jitter quantile the next packet must be for the stream to count
/// as stalled, ms.
pub(crate) const STALL_MARGIN_MS: f64 = 5.0;
/// A gap in arrivals ended by a packet this much later than the fastest is a stall, ms.
const MIN_PEAK_MS: f64 = 20.0;

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
    /// Concealment allowed to the stalls of the last `stall_window_ms`, as a share of that
    /// time (e.g. 0.005); 0 covers every remembered stall in full.
    pub stall_budget: f64,
    /// How long a stall is remembered, ms.
    pub stall_window_ms: f64,
    /// How far the buffered audio is expected to stretch during a stall: the slack kept
    /// for a stall is its coverage divided by this (1 = no stretching assumed).
    pub stall_stretch: f64,
}

impl Default for DelayConfig {
    fn default() -> Self {
        Self {
            quantile: 0.95,
            // ~1000 packets (20 s of 20 ms audio); tuned with the stall window and budget
            // on jitterbench's calibration seeds (docs/design-notes.md, issue 15).
            forget: 0.999,
            window_ms: 2000.0,
            min_target_ms: 20.0,
            max_target_ms: 1000.0,
            initial_target_ms: 60.0,
            stall_budget: 0.004,
            stall_window_ms: 60_000.0,
            stall_stretch: 2.0,
        }
    }
}

/// Relative-delay statistics and the target level they give.
#[derive(Debug, Clone)]
pub(crate) struct DelayManager {
    config: DelayConfig,
    hist: ForgetfulHistogram,
    stalls: StallMemory,
    /// Monotonic deque (increasing transit) of `(arrival_ms, transit_ms)` in a ring.
    ring: Box<[(f64, f64)]>,
    head: usize,
    len: usize,
    target_ms: f64,
    quantile_ms: f64,
    jitter_ms: f64,
    packet_ms: f64,
}

impl DelayManager {
    pub(crate) fn new(config: DelayConfig) -> Self {
        Self {
            config,
            hist: ForgetfulHistogram::new(500, 2.0, config.forget),
            stalls: StallMemory::new(config.stall_window_ms, config.stall_budget, MIN_PEAK_MS),
            ring: vec![(0.0, 0.0); WINDOW_CAP].into_boxed_slice(),
            head: 0,
            len: 0,
            target_ms: config.initial_target_ms,
            quantile_ms: config.initial_target_ms,
            jitter_ms: config.initial_target_ms,
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
        self.stalls.update(arrival_ms, relative, self.packet_ms);
        self.jitter_ms = self.hist.quantile(self.config.quantile);
        let q = self.jitter_ms.max(self.stall_slack_ms());
        self.quantile_ms = q;
        self.target_ms =
            (q + self.packet_ms).clamp(self.config.min_target_ms, self.config.max_target_ms);
        relative
    }

    /// The slack that rides out the remembered stalls within the budget. The buffer sees a
    /// stall once nothing has come for a packet interval plus the jitter quantile plus
    /// `stall_margin` and only then stretches what is left; so a stall of the coverage `c`
    /// needs the slack `o + (c − o) / stretch`, with `o` the jitter quantile plus the margin
    /// (just `c` when `c ≤ o`).
    fn stall_slack_ms(&self) -> f64 {
        let c = self.stalls.coverage_ms();
        let o = self.jitter_ms + STALL_MARGIN_MS;
        if c <= o {
            c
        } else {
            o + (c - o) / self.config.stall_stretch.max(1.0)
        }
    }

    /// Forgets the transit reference (a new stream); the histogram is kept.
    pub(crate) fn reset_reference(&mut self) {
        self.len = 0;
        self.stalls.new_stream();
    }

    /// The slack the buffer must keep, ms: how late (against the fastest packet) a packet may
    /// be and still come in time — the relative-delay quantile, or the share of the stall
    /// coverage the buffer must hold if that is more.
    pub(crate) fn quantile_ms(&self) -> f64 {
        if self.hist.is_empty() {
            self.config.initial_target_ms
        } else {
            self.quantile_ms
        }
    }

    /// The relative-delay quantile alone, ms: how late a packet may come in a flowing
    /// stream (stalls aside).
    pub(crate) fn jitter_ms(&self) -> f64 {
        if self.hist.is_empty() {
            self.config.initial_target_ms
        } else {
            self.jitter_ms
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

    #[test]
    fn repeating_stalls_raise_the_target_and_it_falls_back_once_they_stop() {
        let mut dm = DelayManager::new(DelayConfig::default());
        let mut t = 0.0;
        let mut i = 0u32;
        // 40 s of a steady stream with a 160 ms stall every 5 s: the packets sent during
        // the stall arrive together at its end.
        while t < 40_000.0 {
            let ts = i as f64 * 20.0;
            let stall_end = (ts / 5000.0).floor() * 5000.0 + 5000.0;
            let arrival = if ts % 5000.0 >= 4840.0 { stall_end } else { ts };
            dm.update(arrival + 30.0, ts, 20.0);
            t = ts;
            i += 1;
        }
        // 8 of every 250 packets are held: the 95 % quantile alone stays low, but the
        // target now holds a good part of a stall (eight 160 ms stalls in 40 s with 160 ms
        // of concealment allowed: a coverage of 140 ms, half of it as slack with the
        // stretching).
        assert!(dm.jitter_ms() < 40.0, "{}", dm.jitter_ms());
        assert!(dm.target_ms() > 70.0, "{}", dm.target_ms());
        // The stall window and 10 s more without stalls: they leave the memory and the
        // target goes back down.
        let quiet_ms = DelayConfig::default().stall_window_ms + 10_000.0;
        for _ in 0..(quiet_ms / 20.0) as u32 {
            let ts = i as f64 * 20.0;
            dm.update(ts + 30.0, ts, 20.0);
            i += 1;
        }
        assert!(dm.target_ms() < 30.0, "{}", dm.target_ms());
    }
}
