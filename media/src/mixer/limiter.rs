//! Clipping protection for a mix: a gain limiter (1 ms attack with the frame's own peak as
//! look-ahead, slow release) followed by a soft knee that bends what is left above 80 % of full scale
//! smoothly towards full scale, so the output never hard-clips.

const FULL: f32 = 32767.0;
/// Peak the gain stage aims at.
const TARGET_PEAK: f32 = 0.9 * FULL;
/// Start of the soft knee.
const KNEE: f32 = 0.8 * FULL;
/// Per-frame release towards unity gain (about 200 ms to recover at 10 ms frames).
const RELEASE: f32 = 0.05;
/// Samples over which the gain falls when a frame is too loud (1 ms).
const ATTACK_SAMPLES: usize = 48;

/// State of one output's limiter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftLimiter {
    gain: f32,
}

impl Default for SoftLimiter {
    fn default() -> Self {
        Self { gain: 1.0 }
    }
}

impl SoftLimiter {
    /// The gain applied at the end of the last frame (1 = untouched).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limits `input` (a wide mix) into `out`. Both have the same length.
    pub fn process(&mut self, input: &[i32], out: &mut [i16]) {
        let peak = input.iter().map(|&s| s.unsigned_abs()).max().unwrap_or(0) as f32;
        let wanted = if peak > TARGET_PEAK {
            TARGET_PEAK / peak
        } else {
            1.0
        };
        let end = if wanted < self.gain {
            wanted
        } else {
            self.gain + (wanted.min(1.0) - self.gain) * RELEASE
        };
        let start = self.gain;
        // Attack within 1 ms, release over the frame; no sample's gain may push it past the
        // target peak (the look-ahead a whole frame gives).
        let ramp = if end < start {
            ATTACK_SAMPLES
        } else {
            input.len().max(1)
        } as f32;
        for (i, (&x, o)) in input.iter().zip(out.iter_mut()).enumerate() {
            let t = ((i as f32 + 1.0) / ramp).min(1.0);
            let mut g = start + (end - start) * t;
            let a = x.unsigned_abs() as f32;
            if a * g > TARGET_PEAK {
                g = TARGET_PEAK / a;
            }
            *o = soft_knee(x as f32 * g);
        }
        self.gain = end;
    }
}

#[inline]
fn soft_knee(x: f32) -> i16 {
    let a = x.abs();
    let y = if a <= KNEE {
        a
    } else {
        KNEE + (FULL - KNEE) * ((a - KNEE) / (FULL - KNEE)).tanh()
    };
    (y.min(FULL) * x.signum()).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_audio_passes_untouched() {
        let mut l = SoftLimiter::default();
        let input: Vec<i32> = (0..480).map(|i| (i * 37 % 20000) - 10000).collect();
        let mut out = vec![0i16; 480];
        l.process(&input, &mut out);
        assert!(input.iter().zip(&out).all(|(&a, &b)| a == b as i32));
        assert_eq!(l.gain(), 1.0);
    }

    #[test]
    fn loud_mix_is_limited_without_hard_clipping() {
        let mut l = SoftLimiter::default();
        let mut out = vec![0i16; 480];
        let mut clipped = 0;
        for _ in 0..50 {
            let input: Vec<i32> = (0..480)
                .map(|i| (90_000.0 * (i as f32 * 0.05).sin()) as i32)
                .collect();
            l.process(&input, &mut out);
            clipped += out
                .iter()
                .filter(|&&s| s == i16::MAX || s == -i16::MAX || s == i16::MIN)
                .count();
            // Shape is kept: the sign follows the input.
            assert!(
                input
                    .iter()
                    .zip(&out)
                    .all(|(&a, &b)| a == 0 || (a > 0) == (b >= 0))
            );
        }
        assert_eq!(clipped, 0);
        assert!(l.gain() < 0.4);
        // And it recovers once the mix is quiet again.
        for _ in 0..200 {
            l.process(&[1000; 480], &mut out);
        }
        assert!(l.gain() > 0.99);
    }
}
