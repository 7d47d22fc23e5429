//! [`SpeechSynth`]: a deterministic, speech-like test signal with timing marks.
//!
//! The signal is a pure function of `(seed, n)` where `n` is the **absolute sample index**:
//! samples at 48 kHz counted from the Unix epoch (`n = wall_time × 48000`). A sender
//! generates the samples it captures "now"; a receiver regenerates any stretch of it from
//! the same seed to compare what it played out with what was sent, without any side
//! channel. Tying the signal to the wall clock is also what makes the timing marks work (see
//! below); it needs both ends to share a clock, which holds when they run on one host (the
//! edge tests and `supernode demo`) and needs synchronised clocks (NTP/PTP) across hosts.
//!
//! ## Speech-like content
//!
//! Time is cut into 200 ms "syllables". Each syllable is, from a hash of `(seed, index)`,
//! either a pause (30 %) or a voiced sound: a harmonic series whose fundamental glides
//! linearly between two pitches in 90–240 Hz, with harmonics up to 4 kHz shaped by two
//! formant bumps, under a raised-sine amplitude envelope that goes to zero at both ends (so
//! syllables join without clicks).
//!
//! ## Timing marks
//!
//! Every `mark_period` of wall-clock time (default 2 s), at the instant `W` that is an exact
//! multiple of the period since the epoch, the signal carries a mark: a 1 kHz tone under a
//! 30 ms Hann window **centred on `W`**, alone in a 200 ms window of silence (the speech is
//! gated out around it). A receiver that finds the centre of a mark in its played-out audio
//! at wall time `P` knows the mark was captured at `W = P − (P mod period)`, so the
//! mouth-to-ear delay is `P mod period` — valid while the delay is below one period.
//! See [`crate::marks::MarkDetector`].

use std::f64::consts::PI;

/// The sample rate of the synthetic signal (Opus' RTP clock).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per syllable (200 ms).
const SYLLABLE: u64 = 9_600;
/// Frequency of the timing-mark tone, Hz.
pub const MARK_HZ: f64 = 1_000.0;
/// Length of the mark's Hann window in samples (30 ms).
pub const MARK_LEN: u64 = 1_440;
/// Half-width of the silent window around each mark, in samples (100 ms).
const MARK_GUARD: u64 = 4_800;
/// Ramp of the speech gate at the guard's edges, in samples (5 ms).
const GATE_RAMP: u64 = 240;
/// Peak amplitude of a mark (full scale 1.0).
const MARK_AMPLITUDE: f64 = 0.6;

/// The speech-like generator. Cheap to clone; holds no state besides its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechSynth {
    seed: u64,
    mark_period: u64,
}

/// splitmix64: a stateless 64-bit mix, enough to derive per-syllable parameters.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform value in `[lo, hi)` from hash `h` and lane `lane`.
fn uniform(h: u64, lane: u64, lo: f64, hi: f64) -> f64 {
    let r = mix(h ^ lane.wrapping_mul(0xD6E8_FEB8_6659_FD93)) >> 11;
    lo + (hi - lo) * (r as f64 / (1u64 << 53) as f64)
}

/// Parameters of one syllable.
struct Syllable {
    voiced: bool,
    f0_start: f64,
    f0_end: f64,
    amplitude: f64,
    f1: f64,
    f2: f64,
    phase: f64,
}

impl SpeechSynth {
    /// A generator for `seed` with timing marks every `mark_period_ms` milliseconds
    /// (at least 500 ms; 2000 is the default used by the engine).
    pub fn new(seed: u64, mark_period_ms: u32) -> Self {
        let ms = u64::from(mark_period_ms.max(500));
        Self {
            seed,
            mark_period: ms * u64::from(SAMPLE_RATE) / 1000,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The mark period in samples.
    pub fn mark_period_samples(&self) -> u64 {
        self.mark_period
    }

    fn syllable(&self, k: u64) -> Syllable {
        let h = mix(self.seed ^ mix(k));
        let f0_start = uniform(h, 1, 90.0, 240.0);
        Syllable {
            voiced: uniform(h, 0, 0.0, 1.0) >= 0.3,
            f0_start,
            f0_end: (f0_start * uniform(h, 2, 0.8, 1.25)).clamp(90.0, 240.0),
            amplitude: uniform(h, 3, 0.2, 0.5),
            f1: uniform(h, 4, 300.0, 850.0),
            f2: uniform(h, 5, 1_000.0, 2_400.0),
            phase: uniform(h, 6, 0.0, 2.0 * PI),
        }
    }

    /// The mark-free speech sample at absolute index `n`, full scale 1.0.
    pub(crate) fn speech(&self, n: u64) -> f64 {
        let k = n / SYLLABLE;
        let s = self.syllable(k);
        if !s.voiced {
            return 0.0;
        }
        let i = (n - k * SYLLABLE) as f64;
        let len = SYLLABLE as f64;
        let x = i / len;
        let env = (PI * x).sin().powi(2);
        let t = i / f64::from(SAMPLE_RATE);
        let dur = len / f64::from(SAMPLE_RATE);
        // Phase of the fundamental for a linear glide f0_start -> f0_end over the syllable.
        let base = 2.0 * PI * (s.f0_start * t + (s.f0_end - s.f0_start) * t * t / (2.0 * dur));
        let f0 = s.f0_start + (s.f0_end - s.f0_start) * x;
        let mut acc = 0.0;
        let mut norm = 0.0;
        let mut h = 1.0f64;
        while h * s.f0_start.max(s.f0_end) < 4_000.0 {
            let f = h * f0;
            let g = (1.0
                + 3.0 * (-((f - s.f1) / 150.0).powi(2)).exp()
                + 2.0 * (-((f - s.f2) / 250.0).powi(2)).exp())
                / h;
            acc += g * (h * base + s.phase * h).sin();
            norm += g;
            h += 1.0;
        }
        s.amplitude * env * acc / norm.max(1e-9) * 1.6
    }

    /// Distance in samples from `n` to the nearest mark centre.
    fn mark_distance(&self, n: u64) -> u64 {
        let r = n % self.mark_period;
        r.min(self.mark_period - r)
    }

    /// The speech gate: 0 inside the guard window around a mark, 1 away from it, with a
    /// short raised-cosine ramp between.
    fn gate(&self, n: u64) -> f64 {
        let d = self.mark_distance(n);
        if d >= MARK_GUARD + GATE_RAMP {
            1.0
        } else if d <= MARK_GUARD {
            0.0
        } else {
            let x = (d - MARK_GUARD) as f64 / GATE_RAMP as f64;
            0.5 - 0.5 * (PI * x).cos()
        }
    }

    /// The mark tone at `n` (zero away from marks).
    fn mark(&self, n: u64) -> f64 {
        let half = MARK_LEN / 2;
        let r = n % self.mark_period;
        // Signed offset from the nearest mark centre.
        let off: i64 = if r <= self.mark_period / 2 {
            r as i64
        } else {
            r as i64 - self.mark_period as i64
        };
        if off.unsigned_abs() >= half {
            return 0.0;
        }
        let w = 0.5 + 0.5 * (PI * off as f64 / half as f64).cos();
        let t = off as f64 / f64::from(SAMPLE_RATE);
        MARK_AMPLITUDE * w * (2.0 * PI * MARK_HZ * t).sin()
    }

    /// The sample at absolute index `n` as a float, full scale 1.0.
    pub fn sample_f64(&self, n: u64) -> f64 {
        self.speech(n) * self.gate(n) + self.mark(n)
    }

    /// Fills `out` with samples `n0, n0 + 1, …` as 16-bit PCM.
    pub fn fill(&self, n0: u64, out: &mut [i16]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = to_i16(self.sample_f64(n0 + i as u64));
        }
    }

    /// Replaces the stretch around each mark of `pcm` (which holds samples `n0, …` of some
    /// other source, e.g. a WAV file) with the silent guard window and the mark tone, so a
    /// file source carries the same timing marks as the synthetic signal.
    pub fn overlay_marks(&self, n0: u64, pcm: &mut [i16]) {
        for (i, s) in pcm.iter_mut().enumerate() {
            let n = n0 + i as u64;
            if self.mark_distance(n) < MARK_GUARD + GATE_RAMP {
                *s = to_i16(f64::from(*s) / 32768.0 * self.gate(n) + self.mark(n));
            }
        }
    }
}

/// Float (full scale 1.0) to 16-bit PCM with saturation.
pub fn to_i16(x: f64) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = SpeechSynth::new(1, 2000);
        let b = SpeechSynth::new(1, 2000);
        let c = SpeechSynth::new(2, 2000);
        let n0 = 1_700_000_000 * 48_000 + 12_345;
        let mut x = vec![0i16; 48_000];
        let mut y = vec![0i16; 48_000];
        let mut z = vec![0i16; 48_000];
        a.fill(n0, &mut x);
        b.fill(n0, &mut y);
        c.fill(n0, &mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        // Random access agrees with a sequential fill.
        let mut part = vec![0i16; 100];
        a.fill(n0 + 777, &mut part);
        assert_eq!(&part[..], &x[777..877]);
    }

    #[test]
    fn has_speech_pauses_and_marks() {
        let s = SpeechSynth::new(7, 2000);
        let n0 = 1_700_000_000u64 * 48_000; // a mark centre (multiple of 2 s)
        assert_eq!(n0 % s.mark_period_samples(), 0);
        let mut pcm = vec![0i16; 48_000 * 4];
        s.fill(n0 - 24_000, &mut pcm);
        // The mark centre is loud, the guard around it outside the tone is silent.
        let centre = 24_000;
        let peak = pcm[centre - 100..centre + 100]
            .iter()
            .map(|v| v.unsigned_abs())
            .max();
        assert!(peak.unwrap() > 15_000);
        assert!(pcm[centre - 4_000..centre - 800].iter().all(|&v| v == 0));
        // Over 4 s there is both voiced audio and silence (pauses / envelope troughs).
        let loud = pcm
            .chunks(480)
            .filter(|c| c.iter().any(|v| v.unsigned_abs() > 2_000));
        assert!(loud.count() > 100);
        let quiet = pcm
            .chunks(480)
            .filter(|c| c.iter().all(|v| v.unsigned_abs() < 50));
        assert!(quiet.count() > 10);
    }

    #[test]
    fn overlay_puts_marks_into_other_audio() {
        let s = SpeechSynth::new(7, 1000);
        let n0 = 1_700_000_000u64 * 48_000 - 1000;
        let mut pcm = vec![10_000i16; 2000];
        s.overlay_marks(n0, &mut pcm);
        assert_eq!(pcm[0], 0); // inside the guard, away from the tone
        assert!(
            pcm[1000 - 100..1000 + 100]
                .iter()
                .any(|v| v.unsigned_abs() > 10_000)
        );
        let mut far = vec![10_000i16; 100];
        s.overlay_marks(n0 + 24_000, &mut far);
        assert!(far.iter().all(|&v| v == 10_000));
    }
}
