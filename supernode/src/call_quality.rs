//! `supernode_call_mos`: the histogram of the E-model MOS estimated for each relay leg, from
//! what the relay knows of it — its own receive statistics of the leg's peer (RFC 3550 loss
//! and interarrival jitter) and the round-trip time from the peer's RTCP receiver reports.
//!
//! Per leg: loss = the leg's loss percent; jitter-buffer delay = what a receiver would need
//! for that jitter ([`jitter_buffer_for_jitter_ms`]: 20 ms + 2 × jitter); delay =
//! RTT/2 + that buffer + Opus's 26.5 ms; codec Opus (see
//! `supernode_media::quality::CallFigures`). It rates the leg's upstream path (peer →
//! relay), which is what the relay measures; the far leg gets its own observation.
//!
//! **When**: each leg is observed once, when it ends — released with its session (call
//! hangup, relay REST delete) or freed by the idle timeout — with its final statistics, so
//! a leg is never counted twice and a scrape needs no work. Legs that never received RTP
//! are not observed; every other leg is, a call's one leg per endpoint (audio and video:
//! loss pooled over its streams, the larger jitter) and every media leg of a relay REST
//! session.

use std::fmt::Write as _;

use supernode_media::quality::{CallFigures, jitter_buffer_for_jitter_ms};
use supernode_relay::core::LegStats;

/// Upper bounds of the histogram buckets (MOS), `+Inf` added when rendered.
pub const BUCKETS: [f64; 12] = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.1, 4.2, 4.3, 4.4];

/// The E-model figures of a leg, `None` when it never received RTP.
pub fn leg_figures(s: &LegStats) -> Option<CallFigures> {
    if s.counters.rtp_in == 0 || s.expected == 0 {
        return None;
    }
    Some(CallFigures::opus(
        s.loss_pct.max(0.0),
        jitter_buffer_for_jitter_ms(s.jitter_ms),
        s.rtt.map(|d| d.as_secs_f64() * 1000.0),
    ))
}

/// A Prometheus histogram of MOS values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MosHistogram {
    /// Observations at or below each bucket's bound (not cumulative here).
    counts: [u64; BUCKETS.len()],
    /// Observations above the last bound.
    over: u64,
    sum: f64,
}

impl MosHistogram {
    /// Adds one estimate.
    pub fn observe(&mut self, mos: f64) {
        if !mos.is_finite() {
            return;
        }
        match BUCKETS.iter().position(|&b| mos <= b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.sum += mos;
    }

    /// Observes the leg's estimate if it has one; returns it.
    pub fn observe_leg(&mut self, s: &LegStats) -> Option<f64> {
        let mos = leg_figures(s)?.mos();
        self.observe(mos);
        Some(mos)
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.over
    }

    /// Appends the exposition of histogram `name` with `help`.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cum = 0;
        for (b, c) in BUCKETS.iter().zip(self.counts) {
            cum += c;
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count());
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn leg(loss_pct: f64, jitter_ms: f64, rtt_ms: Option<u64>) -> LegStats {
        let mut s = LegStats {
            expected: 1000,
            received: 970,
            loss_pct,
            jitter_ms,
            rtt: rtt_ms.map(Duration::from_millis),
            ..LegStats::default()
        };
        s.counters.rtp_in = 970;
        s
    }

    #[test]
    fn a_leg_with_known_loss_jitter_and_rtt_gets_the_hand_computed_mos() {
        // 3 % loss, 10 ms jitter → 40 ms buffer, 80 ms RTT: Ta = 40 + 40 + 26.5 = 106.5 ms.
        // G.107 by hand: Ie,eff = 95·3/(3 + 25.1) = 10.14; Idte (T = 106.5) = 2.08,
        // Idle (Tr = 213) = 0.74, Idd = 0.000002 (X = 0.091); Ro − Is = 93.36:
        // R = 93.36 − 2.08 − 0.74 − 10.14 = 80.39; MOS = 1 + 2.8137 + 80.39·20.39·19.61·7e-6
        // = 4.039.
        let f = leg_figures(&leg(3.0, 10.0, Some(80))).unwrap();
        assert!((f.mouth_to_ear_ms() - 106.5).abs() < 1e-9);
        assert!((f.r() - 80.39).abs() < 0.02, "R {}", f.r());
        let mut h = MosHistogram::default();
        let mos = h.observe_leg(&leg(3.0, 10.0, Some(80))).unwrap();
        assert!((mos - 4.039).abs() < 0.002, "MOS {mos}");
        // A clean leg on loopback: 0 loss, no jitter, no RTT yet: Ta = 46.5 ms, R ≈ 92.
        let clean = h.observe_leg(&leg(0.0, 0.0, None)).unwrap();
        assert!(clean > 4.3 && clean <= 4.41, "{clean}");
        // A leg that never carried RTP is not observed.
        assert_eq!(h.observe_leg(&LegStats::default()), None);
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn renders_a_cumulative_prometheus_histogram() {
        let mut h = MosHistogram::default();
        for m in [1.2, 3.9, 4.05, 4.35, 4.5, f64::NAN] {
            h.observe(m);
        }
        let mut out = String::new();
        h.render(&mut out, "supernode_call_mos", "MOS.");
        assert!(out.contains("# TYPE supernode_call_mos histogram"));
        assert!(
            out.contains("supernode_call_mos_bucket{le=\"1.5\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("supernode_call_mos_bucket{le=\"4\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("supernode_call_mos_bucket{le=\"4.4\"} 4\n"),
            "{out}"
        );
        assert!(
            out.contains("supernode_call_mos_bucket{le=\"+Inf\"} 5\n"),
            "{out}"
        );
        assert!(out.contains("supernode_call_mos_count 5\n"), "{out}");
        let sum: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("supernode_call_mos_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 18.0).abs() < 1e-9);
    }
}
