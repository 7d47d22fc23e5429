//! [`MarkDetector`]: finds the timing marks of [`crate::synth::SpeechSynth`] in played-out
//! audio and turns each into a mouth-to-ear delay.
//!
//! Feed it the audio as it is played, with the absolute sample index (48 kHz since the Unix
//! epoch, on the receiver's wall clock) of each chunk's first sample. It measures, for every
//! 2.5 ms hop, the power at the mark frequency (Goertzel) and the hop's total energy. A mark
//! is a run of 3–24 hops where the mark frequency holds most of the energy, preceded by near
//! silence (the synthetic signal gates speech out for 100 ms around each mark, so speech
//! that happens to have a harmonic near 1 kHz does not qualify). The run's peak, refined by
//! a parabola through the peak hop and its neighbours, is the mark's centre `P`, and the
//! delay is `P mod period` (the mark was captured at the last multiple of the period).

use crate::synth::{MARK_HZ, SAMPLE_RATE};

/// Samples per analysis hop (2.5 ms).
const HOP: usize = 120;
/// Fewest and most hops a mark may last.
const MIN_HOPS: usize = 3;
const MAX_HOPS: usize = 24;
/// A hop is "tonal" when the mark frequency holds this share of its energy.
const TONAL_SHARE: f64 = 0.5;
/// Hops of near-silence required before a mark (the two hops right before its first tonal
/// hop may hold the window's faint onset and are not looked at).
const QUIET_HOPS: usize = 8;
/// Energy of a near-silent hop (RMS about 0.005 of full scale).
const QUIET_ENERGY: f64 = 0.003;

/// Detects timing marks and collects mouth-to-ear delays.
#[derive(Debug, Clone)]
pub struct MarkDetector {
    period: u64,
    /// Samples not yet forming a whole hop, and the absolute index of the first of them.
    pending: Vec<f64>,
    pending_start: Option<u64>,
    /// Energies of the latest hops, newest last.
    recent: std::collections::VecDeque<f64>,
    /// The current tonal run: (hop centre index, tone power) per hop.
    run: Vec<(u64, f64)>,
    /// Whether the current run was preceded by enough quiet.
    run_armed: bool,
    delays: Vec<u64>,
    /// Playout index of each mark's centre, parallel to `delays`.
    positions: Vec<u64>,
    coeff: f64,
}

impl MarkDetector {
    /// A detector for marks every `period_samples` (see
    /// [`crate::synth::SpeechSynth::mark_period_samples`]).
    pub fn new(period_samples: u64) -> Self {
        let w = 2.0 * std::f64::consts::PI * MARK_HZ / f64::from(SAMPLE_RATE);
        Self {
            period: period_samples.max(1),
            pending: Vec::with_capacity(HOP),
            pending_start: None,
            recent: std::collections::VecDeque::with_capacity(QUIET_HOPS + 3),
            run: Vec::with_capacity(MAX_HOPS + 1),
            run_armed: false,
            delays: Vec::new(),
            positions: Vec::new(),
            coeff: 2.0 * w.cos(),
        }
    }

    /// Feeds played-out audio whose first sample has absolute index `n0`. A gap in the
    /// indices (a chunk that does not follow the previous one) restarts the analysis.
    pub fn push(&mut self, n0: u64, pcm: &[i16]) {
        if let Some(start) = self.pending_start
            && start + self.pending.len() as u64 != n0
        {
            self.pending.clear();
            self.pending_start = None;
            self.run.clear();
            self.recent.clear();
        }
        for (i, &s) in pcm.iter().enumerate() {
            if self.pending.is_empty() {
                self.pending_start = Some(n0 + i as u64);
            }
            self.pending.push(f64::from(s) / 32768.0);
            if self.pending.len() == HOP {
                let start = self.pending_start.unwrap_or(n0);
                self.hop(start);
                self.pending.clear();
                self.pending_start = Some(start + HOP as u64);
            }
        }
    }

    fn hop(&mut self, start: u64) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        let mut energy = 0.0;
        for &x in &self.pending {
            let s0 = x + self.coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
            energy += x * x;
        }
        let tone = (s1 * s1 + s2 * s2 - self.coeff * s1 * s2) * 2.0 / HOP as f64;
        let centre = start + (HOP as u64) / 2;
        let tonal = energy > 1e-4 && tone / energy > TONAL_SHARE;
        if tonal {
            if self.run.is_empty() {
                let n = self.recent.len();
                self.run_armed = n >= QUIET_HOPS + 2
                    && self
                        .recent
                        .iter()
                        .take(n - 2)
                        .skip(n - 2 - QUIET_HOPS)
                        .all(|&e| e < QUIET_ENERGY);
            }
            self.run.push((centre, tone));
            if self.run.len() > MAX_HOPS {
                self.run_armed = false;
            }
        } else if !self.run.is_empty() {
            self.finish_run();
        }
        if self.recent.len() == QUIET_HOPS + 2 {
            self.recent.pop_front();
        }
        self.recent.push_back(energy);
    }

    fn finish_run(&mut self) {
        let run = std::mem::take(&mut self.run);
        if self.run_armed && (MIN_HOPS..=MAX_HOPS).contains(&run.len()) {
            let (i, _) = run
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
                .unwrap_or((0, &(0, 0.0)));
            let centre = run[i].0 as f64;
            let refine = if i > 0 && i + 1 < run.len() {
                let (a, b, c) = (run[i - 1].1, run[i].1, run[i + 1].1);
                let den = a - 2.0 * b + c;
                if den.abs() > 1e-12 {
                    (0.5 * (a - c) / den).clamp(-0.5, 0.5)
                } else {
                    0.0
                }
            } else {
                0.0
            };
            let peak = (centre + refine * HOP as f64).round() as u64;
            self.delays.push(peak % self.period);
            self.positions.push(peak);
        }
        self.run = run;
        self.run.clear();
        self.run_armed = false;
    }

    /// Delays measured so far, in samples, in detection order.
    pub fn delays_samples(&self) -> &[u64] {
        &self.delays
    }

    /// Each mark found as (playout index of its centre, delay in samples).
    pub fn marks(&self) -> Vec<(u64, u64)> {
        self.positions
            .iter()
            .copied()
            .zip(self.delays.iter().copied())
            .collect()
    }

    /// Delays measured so far, in milliseconds.
    pub fn delays_ms(&self) -> Vec<f64> {
        self.delays
            .iter()
            .map(|&d| d as f64 * 1000.0 / f64::from(SAMPLE_RATE))
            .collect()
    }

    /// The median delay in milliseconds, if any mark was found.
    pub fn median_ms(&self) -> Option<f64> {
        let mut v = self.delays_ms();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::SpeechSynth;

    #[test]
    fn finds_marks_at_the_applied_delay() {
        let synth = SpeechSynth::new(3, 1000);
        let mut det = MarkDetector::new(synth.mark_period_samples());
        let start = 1_700_000_000u64 * 48_000 + 5_000;
        let delay = 4_321u64; // ~90 ms
        // Play the signal `delay` samples late, in 10 ms chunks.
        let mut chunk = vec![0i16; 480];
        for j in 0..600u64 {
            let play = start + j * 480;
            synth.fill(play - delay, &mut chunk);
            det.push(play, &chunk);
        }
        let d = det.delays_samples();
        assert!(d.len() >= 5, "found {d:?}");
        for &x in d {
            assert!(x.abs_diff(delay) <= 24, "{x} vs {delay}");
        }
        let ms = det.median_ms().unwrap();
        assert!((ms - 90.0).abs() < 1.0, "{ms}");
    }

    #[test]
    fn speech_alone_has_no_marks() {
        // Speech with the marks left out: plain speech never qualifies as a mark.
        let synth = SpeechSynth::new(11, 1000);
        let mut det = MarkDetector::new(48_000);
        let start = 1_700_000_000u64 * 48_000;
        let mut chunk = vec![0i16; 480];
        for j in 0..1000u64 {
            let n = start + j * 480;
            for (i, c) in chunk.iter_mut().enumerate() {
                *c = crate::synth::to_i16(synth_speech_only(&synth, n + i as u64));
            }
            det.push(n, &chunk);
        }
        assert!(
            det.delays_samples().is_empty(),
            "{:?}",
            det.delays_samples()
        );
    }

    fn synth_speech_only(s: &SpeechSynth, n: u64) -> f64 {
        s.speech(n)
    }
}
