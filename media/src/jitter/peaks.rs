//! Stall memory: the delay peaks of the last seconds and the buffer level that keeps the
//! concealment they would cause within a budget.
//!
//! A stall (a Wi-Fi retry burst, a cellular queue behind one slow packet) shows up as a gap
//! in arrivals followed by a burst whose first packet is late by about the stall's length.
//! Such peaks are too rare to move a 95 % quantile of per-packet delays (a 150 ms stall
//! every 4 s is 4 % of the packets), yet each one costs its length less the buffered audio
//! in concealment. NetEQ keeps a peak detector beside its histogram for this and, once
//! peaks repeat, holds the level at the highest peak; that covers every stall but pays the
//! longest stall's delay all the time. Here the level is chosen by a budget instead: the
//! smallest coverage `c` for which the stalls remembered over the last `window` would have
//! concealed at most `budget` of that time, `Σ max(0, hᵢ − c) ≤ budget · span`. It rises at
//! the first stall of a call (the span is short then) and falls once stalls stop coming
//! (they leave the window), so a steady path keeps its quantile target.

/// Stalls remembered at most (the oldest is forgotten first).
const CAP: usize = 128;

/// Recent delay peaks and the coverage they call for.
#[derive(Debug, Clone)]
pub(crate) struct StallMemory {
    /// `(arrival_ms, height_ms)`, oldest first, in a ring.
    ring: [(f64, f64); CAP],
    head: usize,
    len: usize,
    /// Scratch for the coverage computation (heights, sorted descending).
    sorted: [f64; CAP],
    /// Whether `sorted` is stale.
    dirty: bool,
    last_arrival_ms: Option<f64>,
    /// Start of the time the remembered peaks describe: the first arrival, or the last
    /// peak forgotten for want of room.
    since_ms: Option<f64>,
    coverage_ms: f64,
    window_ms: f64,
    budget: f64,
    min_peak_ms: f64,
}

impl StallMemory {
    /// Peaks of at least `min_peak_ms` are remembered for `window_ms`; the coverage keeps
    /// their concealment within `budget` (a share of time, e.g. 0.01).
    pub(crate) fn new(window_ms: f64, budget: f64, min_peak_ms: f64) -> Self {
        Self {
            ring: [(0.0, 0.0); CAP],
            head: 0,
            len: 0,
            sorted: [0.0; CAP],
            dirty: false,
            last_arrival_ms: None,
            since_ms: None,
            coverage_ms: 0.0,
            window_ms: window_ms.max(1.0),
            budget: budget.clamp(0.0, 1.0),
            min_peak_ms: min_peak_ms.max(0.0),
        }
    }

    /// Records an arrival at `arrival_ms` (playout clock) of a packet `relative_ms` later
    /// than the fastest recent one, in a stream of `packet_ms` packets. A packet that ends
    /// a gap in arrivals longer than a packet interval plus the minimum peak, and is itself
    /// late by at least the minimum peak, is a stall's peak of its relative delay. A pause
    /// of the sender is a gap too, but its first packet is not late.
    pub(crate) fn update(&mut self, arrival_ms: f64, relative_ms: f64, packet_ms: f64) {
        self.since_ms.get_or_insert(arrival_ms);
        let gap = self
            .last_arrival_ms
            .map_or(0.0, |last| arrival_ms - last - packet_ms);
        self.last_arrival_ms = Some(
            self.last_arrival_ms
                .map_or(arrival_ms, |l| l.max(arrival_ms)),
        );
        let mut changed = self.expire(arrival_ms);
        if gap >= self.min_peak_ms && relative_ms >= self.min_peak_ms {
            if self.len == CAP {
                self.since_ms = Some(self.ring[self.head].0);
                self.head = (self.head + 1) % CAP;
                self.len -= 1;
            }
            self.ring[(self.head + self.len) % CAP] = (arrival_ms, relative_ms);
            self.len += 1;
            changed = true;
        }
        self.dirty |= changed;
        if self.len > 0 || changed {
            self.recompute(arrival_ms);
        }
    }

    /// Drops peaks older than the window; whether any was dropped.
    fn expire(&mut self, now_ms: f64) -> bool {
        let mut dropped = false;
        while self.len > 0 && self.ring[self.head].0 < now_ms - self.window_ms {
            self.head = (self.head + 1) % CAP;
            self.len -= 1;
            dropped = true;
        }
        dropped
    }

    fn recompute(&mut self, now_ms: f64) {
        let n = self.len;
        if n == 0 {
            self.coverage_ms = 0.0;
            return;
        }
        if self.dirty {
            for i in 0..n {
                self.sorted[i] = self.ring[(self.head + i) % CAP].1;
            }
            self.sorted[..n].sort_unstable_by(|a, b| b.total_cmp(a));
            self.dirty = false;
        }
        let s = &self.sorted[..n];
        let span = (now_ms - self.since_ms.unwrap_or(now_ms)).clamp(0.0, self.window_ms);
        let allowed = self.budget * span;
        // Σ max(0, hᵢ − c) is piecewise linear and decreasing in c: with the k highest
        // peaks above c, c = (Σ_{i<k} hᵢ − allowed) / k; take the k where it falls between
        // the k-th and the (k+1)-th height.
        let mut sum = 0.0;
        let mut c = 0.0;
        for k in 0..n {
            sum += s[k];
            let ck = (sum - allowed) / (k + 1) as f64;
            let next = if k + 1 < n { s[k + 1] } else { 0.0 };
            if ck >= next {
                c = ck.max(0.0);
                break;
            }
        }
        self.coverage_ms = c;
    }

    /// The stall length the buffer should be able to ride out, ms (0 without stalls).
    pub(crate) fn coverage_ms(&self) -> f64 {
        self.coverage_ms
    }

    /// A new stream on the same path: the stalls seen stay (they describe the path), the
    /// gap to the new stream's first packet is not one.
    pub(crate) fn new_stream(&mut self) {
        self.last_arrival_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 20 ms packets for `secs` seconds with a stall of `stall_ms` every `every_ms`.
    fn feed(m: &mut StallMemory, from_ms: f64, secs: f64, every_ms: f64, stall_ms: f64) -> f64 {
        let mut t = from_ms;
        let end = from_ms + secs * 1000.0;
        let mut next_stall = from_ms + every_ms;
        while t < end {
            if stall_ms > 0.0 && t >= next_stall {
                // Packets sent during the stall arrive together at its end.
                let at = t + stall_ms;
                let mut rel = stall_ms;
                while rel > 0.0 {
                    m.update(at, rel, 20.0);
                    rel -= 20.0;
                    t += 20.0;
                }
                next_stall += every_ms;
                continue;
            }
            m.update(t, 0.0, 20.0);
            t += 20.0;
        }
        t
    }

    #[test]
    fn a_steady_stream_needs_no_coverage() {
        let mut m = StallMemory::new(20_000.0, 0.01, 40.0);
        feed(&mut m, 0.0, 30.0, 1e9, 0.0);
        assert_eq!(m.coverage_ms(), 0.0);
    }

    #[test]
    fn repeating_stalls_raise_the_coverage_within_the_budget_and_it_falls_after() {
        let mut m = StallMemory::new(20_000.0, 0.01, 40.0);
        let t = feed(&mut m, 0.0, 30.0, 4000.0, 200.0);
        // Five 200 ms stalls in 20 s with 200 ms of concealment allowed: c = 160 ms.
        assert!((m.coverage_ms() - 160.0).abs() < 1.0, "{}", m.coverage_ms());
        // The first stall of a call counts against the short span seen so far.
        let mut first = StallMemory::new(20_000.0, 0.01, 40.0);
        feed(&mut first, 0.0, 4.1, 4000.0, 200.0);
        assert!(first.coverage_ms() > 150.0, "{}", first.coverage_ms());
        // Stalls stop: they leave the window and the coverage goes back to zero.
        feed(&mut m, t, 25.0, 1e9, 0.0);
        assert_eq!(m.coverage_ms(), 0.0);
    }

    #[test]
    fn a_pause_of_the_sender_is_not_a_stall() {
        let mut m = StallMemory::new(20_000.0, 0.01, 40.0);
        for i in 0..100 {
            m.update(i as f64 * 20.0, 0.0, 20.0);
        }
        // 500 ms without packets, then the stream resumes on time (relative delay 0).
        m.update(2500.0, 0.0, 20.0);
        assert_eq!(m.coverage_ms(), 0.0);
    }
}
