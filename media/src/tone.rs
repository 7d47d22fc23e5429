//! Test tones and a Goertzel level meter, 48 kHz mono PCM.
//!
//! Conference checks (the MCU tests, the conference host, `edge conference`) give each
//! participant a sine of its own and measure, in what a participant hears, the level of each
//! other participant's frequency and of its own (which a mix-minus must leave out):
//!
//! ```
//! use supernode_media::tone::{level_db, sine};
//! let a = sine(440.0, 8000.0, 1.0);
//! assert!((level_db(&a, 440.0) - (-12.3)).abs() < 0.1); // 8000 / 32768 = -12.3 dBFS
//! assert!(level_db(&a, 660.0) < -60.0);
//! ```

/// Samples per second of the PCM these functions make and measure.
pub const RATE: f64 = 48_000.0;

/// `seconds` of a sine at `hz` with peak `amplitude` (sample units). A whole number of
/// seconds at a whole `hz` loops without a click.
pub fn sine(hz: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
    (0..(seconds * RATE) as usize)
        .map(|i| (amplitude * (std::f64::consts::TAU * hz * i as f64 / RATE).sin()) as i16)
        .collect()
}

/// Level of `x` at `hz` (a Goertzel filter over all of `x`), in dB relative to a full-scale
/// sine at that frequency (0 dBFS); −200 for no samples.
pub fn level_db(x: &[i16], hz: f64) -> f64 {
    if x.is_empty() {
        return -200.0;
    }
    let w = std::f64::consts::TAU * hz / RATE;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = x.len() as f64;
    // A full-scale sine gives (n/2)^2.
    let p = (s1 * s1 + s2 * s2 - c * s1 * s2) / (n * n / 4.0);
    10.0 * p.max(1e-20).log10()
}

/// Level of `x` at `hz` measured in Hann-windowed pieces of `window` samples (a shorter
/// tail is left out), their powers averaged, in dB relative to a full-scale sine (0 dBFS);
/// −200 for less than one piece. One Goertzel filter over a long signal ([`level_db`]) is a
/// fraction of a hertz wide: a tone whose phase jumps now and then (a jitter buffer
/// stretching time, a capture device that skips) or that is off by a fraction of a hertz
/// reads far below its level there; here the band is about `4 × 48000 / window` Hz wide and
/// a jump costs one piece.
pub fn level_db_windowed(x: &[i16], hz: f64, window: usize) -> f64 {
    if window < 2 || x.len() < window {
        return -200.0;
    }
    let w = std::f64::consts::TAU * hz / RATE;
    let c = 2.0 * w.cos();
    let hann: Vec<f64> = (0..window)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / (window - 1) as f64).cos())
        .collect();
    // A full-scale sine gives (sum(w) / 2)^2.
    let full = (hann.iter().sum::<f64>() / 2.0).powi(2);
    let mut total = 0.0;
    let mut pieces = 0usize;
    for piece in x.chunks_exact(window) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for (&v, h) in piece.iter().zip(&hann) {
            let s0 = h * f64::from(v) / 32768.0 + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        total += (s1 * s1 + s2 * s2 - c * s1 * s2) / full;
        pieces += 1;
    }
    10.0 * (total / pieces as f64).max(1e-20).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_finds_the_tone_and_not_the_others() {
        let mut x = sine(440.0, 8000.0, 1.0);
        let y = sine(1000.0, 8000.0, 1.0);
        for (a, b) in x.iter_mut().zip(&y) {
            *a = (*a / 2).saturating_add(*b / 2);
        }
        let at = level_db(&x, 440.0);
        assert!((at - (-18.3)).abs() < 1.0, "{at}");
        assert!(level_db(&sine(440.0, 8000.0, 1.0), 660.0) < at - 60.0);
        assert!(level_db(&[], 440.0) < -100.0);
    }

    /// Pieces of 200 ms read a tone at its level across phase jumps and a small frequency
    /// offset, where one long filter does not; neighbouring tones stay far below.
    #[test]
    fn windowed_levels_survive_phase_jumps() {
        let mut x = Vec::new();
        for k in 0..10 {
            // 1 s pieces of 440.3 Hz, each starting at another phase.
            let hz = 440.3;
            x.extend((0..48_000).map(|i| {
                (8000.0 * (std::f64::consts::TAU * hz * i as f64 / RATE + k as f64).sin()) as i16
            }));
        }
        let long = level_db(&x, 440.0);
        let windowed = level_db_windowed(&x, 440.0, 9600);
        assert!((windowed - (-12.3)).abs() < 1.0, "{windowed}");
        assert!(long < windowed - 10.0, "{long} vs {windowed}");
        assert!(level_db_windowed(&x, 620.0, 9600) < windowed - 60.0);
        assert!(level_db_windowed(&x[..100], 440.0, 9600) < -100.0);
    }
}
