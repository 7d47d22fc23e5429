//! What a jitter buffer counts: drops by reason, operations, samples, and a histogram of the
//! delay each packet spends between arrival and playout.

use std::time::Duration;

/// How many times each playout operation ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Output silence before playout started.
    pub buffering: u64,
    /// A packet decoded and played as is.
    pub normal: u64,
    /// Concealment (Opus PLC) of 2.5–10 ms, for a missing or not yet arrived packet.
    pub expand: u64,
    /// A lost packet rebuilt from the next packet's in-band FEC.
    pub fec: u64,
    /// A decoded packet shortened by one pitch period (buffer too full).
    pub accelerate: u64,
    /// A decoded packet lengthened by one pitch period (buffer too empty).
    pub preemptive_expand: u64,
    /// A decoded packet cross-faded in after concealment.
    pub merge: u64,
}

/// Counters of a [`crate::jitter::JitterBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Packets accepted into the buffer.
    pub accepted: u64,
    /// Packets seen before (same sequence number or same timestamp), dropped.
    pub duplicates: u64,
    /// Packets that came after their time was played (or concealed), dropped.
    pub late: u64,
    /// Payloads that are empty or not packets of the codec, dropped.
    pub malformed: u64,
    /// Packets dropped because the buffer was full.
    pub evicted: u64,
    /// Packets the decoder refused (concealed instead).
    pub decode_errors: u64,
    /// Times the stream restarted (a jump of more than 10 s or 3000 packets).
    pub resets: u64,
    /// Packets the sender sent, from the sequence numbers seen (first to highest).
    pub expected: u64,
    /// Operations run.
    pub ops: OperationCounts,
    /// Samples per channel output by `pull`.
    pub samples_output: u64,
    /// Of those, samples synthesised by concealment.
    pub samples_concealed: u64,
    /// Of those, samples rebuilt from FEC.
    pub samples_fec: u64,
    /// Samples per channel removed by accelerate.
    pub samples_removed: u64,
    /// Samples per channel added by preemptive expand.
    pub samples_added: u64,
    /// Current target buffer level (the fixed delay for a fixed buffer), ms.
    pub target_ms: f64,
    /// Current smoothed buffer level, ms.
    pub level_ms: f64,
}

impl JitterStats {
    /// Late packets as a share of the packets the sender sent, in %.
    pub fn late_loss_pct(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        self.late as f64 * 100.0 / self.expected as f64
    }

    /// Concealed samples as a share of all samples output after playout started, in %.
    pub fn concealment_pct(&self) -> f64 {
        let played = self.samples_output.saturating_sub(self.ops.buffering * 480);
        if played == 0 {
            return 0.0;
        }
        self.samples_concealed as f64 * 100.0 / played as f64
    }
}

const DELAY_BINS: usize = 50_000;
const BIN_US: u64 = 100;

/// Histogram of per-packet added delay (arrival to playout of its first sample), 0.1 ms
/// bins up to 5 s. Allocated once.
#[derive(Debug, Clone)]
pub struct DelayHistogram {
    bins: Box<[u32]>,
    count: u64,
    sum_us: u64,
}

impl Default for DelayHistogram {
    fn default() -> Self {
        Self {
            bins: vec![0; DELAY_BINS].into_boxed_slice(),
            count: 0,
            sum_us: 0,
        }
    }
}

impl DelayHistogram {
    /// Records one packet's delay.
    pub fn add(&mut self, d: Duration) {
        let i = ((d.as_micros() as u64 / BIN_US) as usize).min(DELAY_BINS - 1);
        self.bins[i] = self.bins[i].saturating_add(1);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(d.as_micros() as u64);
    }

    /// Adds everything `other` recorded (to pool several runs).
    pub fn merge(&mut self, other: &DelayHistogram) {
        for (a, b) in self.bins.iter_mut().zip(other.bins.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// Packets recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean delay, if anything was recorded.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.sum_us / self.count))
    }

    /// The delay at quantile `q` (0..=1), to 0.1 ms (upper bin edge).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += n as u64;
            if seen >= rank {
                return Some(Duration::from_micros((i as u64 + 1) * BIN_US));
            }
        }
        Some(Duration::from_micros(DELAY_BINS as u64 * BIN_US))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_quantiles_and_mean() {
        let mut h = DelayHistogram::default();
        assert_eq!(h.quantile(0.5), None);
        for ms in 0..100u64 {
            h.add(Duration::from_micros(ms * 1000 + 450));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(49_500)));
        assert_eq!(h.quantile(0.95), Some(Duration::from_micros(94_500)));
        assert_eq!(h.mean(), Some(Duration::from_micros(49_950)));
        h.add(Duration::from_secs(3600));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(5000)));
        let mut pooled = DelayHistogram::default();
        pooled.merge(&h);
        pooled.merge(&h);
        assert_eq!(pooled.count(), 2 * h.count());
        assert_eq!(pooled.quantile(0.5), h.quantile(0.5));
    }

    #[test]
    fn ratios_are_zero_when_nothing_happened() {
        let s = JitterStats::default();
        assert_eq!(s.late_loss_pct(), 0.0);
        assert_eq!(s.concealment_pct(), 0.0);
        let s = JitterStats {
            late: 3,
            expected: 300,
            ..Default::default()
        };
        assert!((s.late_loss_pct() - 1.0).abs() < 1e-9);
    }
}
