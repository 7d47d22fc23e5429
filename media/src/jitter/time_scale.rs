//! Pitch-synchronous time-scaling of decoded PCM: remove one period (accelerate), repeat one
//! period (preemptive expand), and cross-fade into new audio after concealment (merge).
//!
//! A period is the lag that maximises the normalised autocorrelation of the frame (searched
//! on a 4× decimated mono mix, then refined at full rate). Removing or repeating whole
//! periods with a linear cross-fade over one period keeps the waveform continuous, so the
//! buffer grows or shrinks by 2.5–10 ms without an audible click (the idea of WSOLA and of
//! NetEQ's accelerate/preemptive-expand). Frames whose best correlation is too low are left
//! alone, unless they are near silence, where any lag will do.

/// Shortest period searched: 2.5 ms at 48 kHz.
pub(crate) const MIN_LAG: usize = 120;
/// Longest period searched: 10 ms at 48 kHz.
pub(crate) const MAX_LAG: usize = 480;
/// Correlation a frame needs before its period is removed or repeated.
const MIN_CORRELATION: f32 = 0.6;
/// RMS (of i16 samples) under which a frame counts as silence.
const SILENCE_RMS: f32 = 60.0;

/// Reusable scratch for the pitch search (allocated once).
#[derive(Debug, Clone)]
pub(crate) struct TimeScaler {
    mono: Box<[f32]>,
    decimated: Box<[f32]>,
}

impl TimeScaler {
    /// Room for frames up to `max_frame` samples per channel.
    pub(crate) fn new(max_frame: usize) -> Self {
        Self {
            mono: vec![0.0; max_frame].into_boxed_slice(),
            decimated: vec![0.0; max_frame / 4 + 1].into_boxed_slice(),
        }
    }

    /// The period (samples per channel) to remove or repeat in `x` (`n` samples per channel,
    /// `ch` interleaved channels), searched in `[min_lag, max_lag]`, or `None` when the
    /// frame is too short or not periodic enough. A silent frame gets `preferred` (clamped
    /// into the range): any lag is inaudible there.
    pub(crate) fn find_period(
        &mut self,
        x: &[i16],
        ch: usize,
        n: usize,
        (min_lag, max_lag): (usize, usize),
        preferred: usize,
    ) -> Option<usize> {
        let max_lag = max_lag.min(n / 2).min(MAX_LAG);
        if ch == 0 || n > self.mono.len() || x.len() < n * ch || max_lag < min_lag.max(1) {
            return None;
        }
        let mono = &mut self.mono[..n];
        let mut energy = 0.0f32;
        for (i, m) in mono.iter_mut().enumerate() {
            let mut s = 0.0f32;
            for c in 0..ch {
                s += x[i * ch + c] as f32;
            }
            *m = s / ch as f32;
            energy += *m * *m;
        }
        if (energy / n as f32).sqrt() < SILENCE_RMS {
            return Some(preferred.clamp(min_lag.max(1), max_lag));
        }
        // Voiced: whole pitch periods only.
        let min_lag = min_lag.max(MIN_LAG);
        if max_lag < min_lag {
            return None;
        }
        // Coarse search on the decimated signal.
        let nd = n / 4;
        let d = &mut self.decimated[..nd];
        for (i, v) in d.iter_mut().enumerate() {
            *v = (mono[4 * i] + mono[4 * i + 1] + mono[4 * i + 2] + mono[4 * i + 3]) * 0.25;
        }
        let (lo, hi) = (min_lag / 4, max_lag / 4);
        let w = nd - hi;
        let mut best = (lo, f32::MIN);
        for lag in lo..=hi {
            let c = norm_corr(&d[..w], &d[lag..lag + w]);
            if c > best.1 {
                best = (lag, c);
            }
        }
        // Refine at full rate around the coarse lag.
        let wf = n - max_lag;
        let mut fine = (best.0 * 4, f32::MIN);
        let from = (best.0 * 4).saturating_sub(3).max(min_lag);
        let to = (best.0 * 4 + 3).min(max_lag);
        for lag in from..=to {
            let c = norm_corr(&mono[..wf], &mono[lag..lag + wf]);
            if c > fine.1 {
                fine = (lag, c);
            }
        }
        (fine.1 >= MIN_CORRELATION).then_some(fine.0)
    }
}

fn norm_corr(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

#[inline]
fn mix(a: i16, b: i16, w: f32) -> i16 {
    (a as f32 * (1.0 - w) + b as f32 * w)
        .round()
        .clamp(-32768.0, 32767.0) as i16
}

/// Accelerate: writes `x` (n per channel) shortened by `lag` into `out`, returning the
/// samples per channel written (`n − lag`). Needs `2·lag ≤ n`.
pub(crate) fn remove_period(x: &[i16], ch: usize, n: usize, lag: usize, out: &mut [i16]) -> usize {
    debug_assert!(2 * lag <= n && out.len() >= (n - lag) * ch);
    for i in 0..lag {
        let w = (i as f32 + 0.5) / lag as f32;
        for c in 0..ch {
            out[i * ch + c] = mix(x[i * ch + c], x[(i + lag) * ch + c], w);
        }
    }
    out[lag * ch..(n - lag) * ch].copy_from_slice(&x[2 * lag * ch..n * ch]);
    n - lag
}

/// Preemptive expand: writes `x` lengthened by `lag` into `out`, returning `n + lag`.
/// Needs `2·lag ≤ n`.
pub(crate) fn repeat_period(x: &[i16], ch: usize, n: usize, lag: usize, out: &mut [i16]) -> usize {
    repeat_periods(x, ch, n, lag, 1, out)
}

/// Preemptive expand by `times` periods: writes `x` lengthened by `times · lag` into `out`,
/// returning `n + times · lag`. The first period is followed by `times` cross-fades from the
/// second period back into the first, each of which ends where the next may start. Needs
/// `2·lag ≤ n`.
pub(crate) fn repeat_periods(
    x: &[i16],
    ch: usize,
    n: usize,
    lag: usize,
    times: usize,
    out: &mut [i16],
) -> usize {
    debug_assert!(2 * lag <= n && out.len() >= (n + times * lag) * ch);
    out[..lag * ch].copy_from_slice(&x[..lag * ch]);
    for t in 0..times {
        let at = lag * (1 + t);
        for i in 0..lag {
            let w = (i as f32 + 0.5) / lag as f32;
            for c in 0..ch {
                out[(at + i) * ch + c] = mix(x[(lag + i) * ch + c], x[i * ch + c], w);
            }
        }
    }
    let at = lag * (1 + times);
    out[at * ch..(n + times * lag) * ch].copy_from_slice(&x[lag * ch..n * ch]);
    n + times * lag
}

/// Merge: cross-fades the first `m` samples per channel of `x` in place from `tail` (the
/// concealment's continuation).
pub(crate) fn fade_in_from(tail: &[i16], x: &mut [i16], ch: usize, m: usize) {
    let m = m.min(tail.len() / ch.max(1)).min(x.len() / ch.max(1));
    for i in 0..m {
        let w = (i as f32 + 0.5) / m as f32;
        for c in 0..ch {
            x[i * ch + c] = mix(tail[i * ch + c], x[i * ch + c], w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, period: f32, amp: f32) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let p = i as f32 / period * std::f32::consts::TAU;
                (amp * (p.sin() + 0.5 * (2.0 * p).sin())) as i16
            })
            .collect()
    }

    #[test]
    fn finds_the_period_of_a_harmonic_tone() {
        let x = tone(960, 240.0, 8000.0); // 200 Hz
        let mut ts = TimeScaler::new(960);
        let lag = ts.find_period(&x, 1, 960, (MIN_LAG, MAX_LAG), 300).unwrap();
        assert!(lag == 240 || lag == 480, "{lag}");
        let lag = ts.find_period(&x, 1, 960, (MIN_LAG, 300), 300).unwrap();
        assert_eq!(lag, 240);
    }

    #[test]
    fn noise_is_not_time_scaled_but_silence_is() {
        let mut seed = 1u32;
        let noise: Vec<i16> = (0..960)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 16) as i16
            })
            .collect();
        let mut ts = TimeScaler::new(960);
        assert_eq!(
            ts.find_period(&noise, 1, 960, (MIN_LAG, MAX_LAG), 300),
            None
        );
        assert_eq!(
            ts.find_period(&[3i16; 960], 1, 960, (MIN_LAG, MAX_LAG), 300),
            Some(300)
        );
    }

    #[test]
    fn remove_and_repeat_keep_the_waveform_continuous() {
        let x = tone(960, 240.0, 8000.0);
        let mut out = vec![0i16; 2000];
        let n = remove_period(&x, 1, 960, 240, &mut out);
        assert_eq!(n, 720);
        let max_step = out[..n]
            .windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max()
            .unwrap();
        let src_step = x
            .windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max()
            .unwrap();
        assert!(max_step <= src_step + 2, "{max_step} vs {src_step}");
        let n = repeat_period(&x, 1, 960, 240, &mut out);
        assert_eq!(n, 1200);
        let max_step = out[..n]
            .windows(2)
            .map(|w| (w[1] as i32 - w[0] as i32).abs())
            .max()
            .unwrap();
        assert!(max_step <= src_step + 2, "{max_step} vs {src_step}");
    }

    #[test]
    fn stereo_frames_are_scaled_per_channel() {
        let mono = tone(960, 240.0, 8000.0);
        let x: Vec<i16> = mono.iter().flat_map(|&s| [s, s / 2]).collect();
        let mut ts = TimeScaler::new(960);
        let lag = ts.find_period(&x, 2, 960, (MIN_LAG, 300), 300).unwrap();
        let mut out = vec![0i16; 4000];
        let n = remove_period(&x, 2, 960, lag, &mut out);
        for i in 0..n {
            assert!((out[2 * i] / 2 - out[2 * i + 1]).abs() <= 1);
        }
    }
}
