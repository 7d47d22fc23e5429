//! A speech-like synthetic signal: a harmonic source with a moving pitch, a syllabic
//! amplitude envelope and pauses, deterministic for a seed. Good enough to exercise a
//! speech codec, PLC and pitch-based time-scaling without shipping recordings.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const RATE: f64 = 48_000.0;

/// Generator of 48 kHz mono "speech". Call [`SpeechSynth::fill`] repeatedly.
#[derive(Debug, Clone)]
pub struct SpeechSynth {
    rng: ChaCha8Rng,
    /// Phase of the fundamental, radians.
    phase: f64,
    /// Samples generated.
    t: u64,
    /// Base pitch of the current phrase, Hz.
    base_f0: f64,
    /// Samples left in the current phrase (talking) or pause.
    left: u64,
    talking: bool,
    /// Syllable rate of the current phrase, Hz.
    syllable_hz: f64,
    level: f64,
}

impl SpeechSynth {
    /// A voice whose phrases, pauses and pitch come from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut s = Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            phase: 0.0,
            t: 0,
            base_f0: 140.0,
            left: 0,
            talking: false,
            syllable_hz: 4.0,
            level: 9000.0,
        };
        s.next_segment();
        s
    }

    fn next_segment(&mut self) {
        self.talking = !self.talking;
        if self.talking {
            self.left = (self.rng.random_range(1.2..3.5) * RATE) as u64;
            self.base_f0 = self.rng.random_range(95.0..230.0);
            self.syllable_hz = self.rng.random_range(3.0..6.0);
            self.level = self.rng.random_range(5000.0..11000.0);
        } else {
            self.left = (self.rng.random_range(0.15..0.6) * RATE) as u64;
        }
    }

    /// Writes the next `out.len()` samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for o in out.iter_mut() {
            if self.left == 0 {
                self.next_segment();
            }
            self.left -= 1;
            self.t += 1;
            let secs = self.t as f64 / RATE;
            // Pitch glides slowly around the phrase's base (intonation) with a little vibrato.
            let f0 = self.base_f0 * (1.0 + 0.15 * (secs * 0.7).sin() + 0.02 * (secs * 5.5).sin());
            self.phase = (self.phase + std::f64::consts::TAU * f0 / RATE) % std::f64::consts::TAU;
            if !self.talking {
                *o = 0;
                continue;
            }
            // Syllabic envelope: raised cosine bursts.
            let env = 0.5 - 0.5 * (std::f64::consts::TAU * self.syllable_hz * secs).cos();
            let env = env * env;
            // Harmonics up to 3.5 kHz via the Chebyshev recurrence sin(kφ).
            let (s1, c1) = self.phase.sin_cos();
            let two_c = 2.0 * c1;
            let (mut prev, mut cur) = (0.0f64, s1);
            let mut acc = 0.0;
            let kmax = ((3500.0 / f0) as usize).max(1);
            for k in 1..=kmax {
                // A formant-ish spectral shape: 1/k with a bump near 500–900 Hz.
                let f = k as f64 * f0;
                let formant = 1.0 + 1.5 * (-((f - 700.0) / 250.0).powi(2)).exp();
                acc += cur * formant / k as f64;
                let next = two_c * cur - prev;
                prev = cur;
                cur = next;
            }
            *o = (acc * env * self.level * 0.5).clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// Convenience: `seconds` of speech from a fresh generator of `seed`.
    pub fn generate(seed: u64, seconds: f64) -> Vec<i16> {
        let mut v = vec![0i16; (seconds * RATE) as usize];
        Self::new(seed).fill(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_pauses_and_loud_voiced_parts() {
        let v = SpeechSynth::generate(1, 10.0);
        let frames: Vec<f64> = v
            .chunks(480)
            .map(|c| (c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
            .collect();
        let silent = frames.iter().filter(|&&r| r < 1.0).count();
        let loud = frames.iter().filter(|&&r| r > 1000.0).count();
        assert!(silent > 50, "{silent}");
        assert!(loud > 300, "{loud}");
        assert_eq!(v, SpeechSynth::generate(1, 10.0));
        assert_ne!(v, SpeechSynth::generate(2, 10.0));
    }
}
