//! The committed speech clip (`benches/data/speech16k.wav`: a few English sentences spoken by
//! espeak-ng at 16 kHz, made by `benches/data/make-speech.sh`) at 48 kHz, looped to any
//! length: real speech for listening-quality measurements.

use std::path::PathBuf;

use crate::wav;

/// Where the clip is in the source tree.
pub fn clip_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/speech16k.wav")
}

/// Upsamples by 3 (16 → 48 kHz): zero insertion and a windowed-sinc low-pass at 0.95 of the
/// input's Nyquist frequency (Hann window, 16 input samples each side), gain 3.
pub fn upsample3(x: &[i16]) -> Vec<i16> {
    const L: usize = 3;
    const HALF: isize = 16 * L as isize;
    let fc = 0.95 / (2.0 * L as f64); // cycles per output sample
    let taps: Vec<f64> = (-HALF..=HALF)
        .map(|n| {
            let n = n as f64;
            let sinc = if n == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * n).sin() / (std::f64::consts::PI * n)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * n / (HALF as f64 + 1.0)).cos();
            sinc * w * L as f64
        })
        .collect();
    let mut out = vec![0i16; x.len() * L];
    for (i, o) in out.iter_mut().enumerate() {
        // Output i gets input j (at output index j·L) weighted by taps[i − j·L + HALF].
        let mut acc = 0.0;
        let lo = (i as isize - HALF).max(0) as usize;
        let hi = ((i as isize + HALF) as usize).min(x.len() * L - 1);
        let mut j = lo.div_ceil(L);
        while j * L <= hi {
            acc += f64::from(x[j]) * taps[(i as isize - (j * L) as isize + HALF) as usize];
            j += 1;
        }
        *o = acc.round().clamp(-32768.0, 32767.0) as i16;
    }
    out
}

/// The clip at 48 kHz, once: `Err` when the file is missing or not 16 kHz 16-bit PCM.
pub fn clip_48k() -> Result<Vec<i16>, String> {
    let path = clip_path();
    let w = wav::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if w.rate != 16_000 {
        return Err(format!(
            "{}: need 16 kHz, got {}",
            clip_path().display(),
            w.rate
        ));
    }
    Ok(upsample3(&w.samples))
}

/// `clip` repeated end to end to `len` samples.
pub fn looped(clip: &[i16], len: usize) -> Vec<i16> {
    clip.iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_keeps_a_tone_and_its_level() {
        // A 1 kHz tone at 16 kHz becomes a 1 kHz tone at 48 kHz, same amplitude.
        let x: Vec<i16> = (0..1600)
            .map(|n| {
                (10_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 16_000.0).sin())
                    as i16
            })
            .collect();
        let y = upsample3(&x);
        assert_eq!(y.len(), 4800);
        for (n, &v) in y.iter().enumerate().skip(200).take(4000) {
            let want = 10_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48_000.0).sin();
            assert!(
                (f64::from(v) - want).abs() < 150.0,
                "sample {n}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn the_committed_clip_loads_and_is_speech_length() {
        let c = clip_48k().expect("benches/data/speech16k.wav");
        let secs = c.len() as f64 / 48_000.0;
        assert!((10.0..=25.0).contains(&secs), "{secs} s");
        assert!(c.iter().any(|&s| s.unsigned_abs() > 5000), "not silence");
        assert_eq!(looped(&c, c.len() * 2 + 5)[c.len() + 3], c[3]);
    }
}
