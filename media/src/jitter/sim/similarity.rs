//! How much a received signal still sounds like its source, for codec round-trip tests.
//!
//! Opus is not waveform-exact (it codes spectra, not samples), and an adaptive jitter
//! buffer moves the delay around while it plays (accelerate, expand, merge), so a
//! sample-wise SNR says little. This measure compares *spectro-temporal modulations*
//! instead: both signals become 10 ms-hop, 20 ms log-power spectra (50 Hz bins from 100 Hz to
//! 3.2 kHz, computed at 8 kHz); each one-second segment of the output is compared with the
//! source at every delay up to `max_delay` (10 ms steps), after removing each bin's mean over
//! the segment (so a shared long-term spectrum, e.g. the same vocal tract, does not count);
//! the segment's score is the best Pearson correlation. The result is the mean over
//! segments in which the output is not silent. Same speech through a working codec and
//! buffer scores high (harmonics move together in time); unrelated speech scores near 0.

use std::time::Duration;

const DECIMATE: usize = 6; // 48 kHz -> 8 kHz
const FRAME: usize = 160; // 20 ms at 8 kHz
const HOP: usize = 80; // 10 ms at 8 kHz
const BIN_LO: usize = 2; // 100 Hz
const BIN_HI: usize = 64; // 3.2 kHz
const BINS: usize = BIN_HI - BIN_LO + 1;
const SEGMENT: usize = 100; // frames: 1 s
/// Frames whose power is below this (mean square at 8 kHz) count as silent.
const SILENT_POWER: f64 = 100.0;
/// How far (frames of 10 ms) a segment's delay may stray from the median delay.
const LAG_SPREAD: usize = 15;

/// Result of [`similarity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// Mean over scored segments of the best correlation, −1..=1.
    pub score: f64,
    /// One-second segments scored.
    pub segments: usize,
    /// Median delay of the best alignments.
    pub median_delay: Duration,
}

struct Spectra {
    /// `frames × BINS` log powers.
    log: Vec<f64>,
    /// Per-frame power.
    power: Vec<f64>,
}

fn spectra(x: &[i16]) -> Spectra {
    let low: Vec<f64> = x
        .chunks_exact(DECIMATE)
        .map(|c| c.iter().map(|&s| s as f64).sum::<f64>() / DECIMATE as f64)
        .collect();
    let window: Vec<f64> = (0..FRAME)
        .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / FRAME as f64).cos())
        .collect();
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..FRAME)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / FRAME as f64;
            (a.cos(), a.sin())
        })
        .unzip();
    let frames = if low.len() >= FRAME {
        (low.len() - FRAME) / HOP + 1
    } else {
        0
    };
    let mut log = Vec::with_capacity(frames * BINS);
    let mut power = Vec::with_capacity(frames);
    let mut buf = [0.0f64; FRAME];
    for f in 0..frames {
        let seg = &low[f * HOP..f * HOP + FRAME];
        let mut p = 0.0;
        for i in 0..FRAME {
            buf[i] = seg[i] * window[i];
            p += seg[i] * seg[i];
        }
        power.push(p / FRAME as f64);
        for k in BIN_LO..=BIN_HI {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in buf.iter().enumerate() {
                let j = (i * k) % FRAME;
                re += v * cos[j];
                im -= v * sin[j];
            }
            log.push((re * re + im * im + 1e3).log10());
        }
    }
    Spectra { log, power }
}

/// Pearson correlation of two `SEGMENT × BINS` blocks after removing each bin's mean.
fn block_corr(a: &[f64], b: &[f64]) -> f64 {
    let mut mean_a = [0.0f64; BINS];
    let mut mean_b = [0.0f64; BINS];
    for f in 0..SEGMENT {
        for k in 0..BINS {
            mean_a[k] += a[f * BINS + k];
            mean_b[k] += b[f * BINS + k];
        }
    }
    for k in 0..BINS {
        mean_a[k] /= SEGMENT as f64;
        mean_b[k] /= SEGMENT as f64;
    }
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for f in 0..SEGMENT {
        for k in 0..BINS {
            let x = a[f * BINS + k] - mean_a[k];
            let y = b[f * BINS + k] - mean_b[k];
            ab += x * y;
            aa += x * x;
            bb += y * y;
        }
    }
    if aa <= 0.0 || bb <= 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// Similarity of `output` to `source` (48 kHz mono), allowing the output to lag by up to
/// `max_delay`. See the [module docs](self) for the measure.
pub fn similarity(source: &[i16], output: &[i16], max_delay: Duration) -> Similarity {
    let src = spectra(source);
    let out = spectra(output);
    let max_lag = (max_delay.as_millis() / 10) as usize;
    // The source, preceded by `max_lag` frames of silence (what the output holds while the
    // first packets are still on their way).
    let mut src_log = vec![3.0; max_lag * BINS];
    src_log.extend_from_slice(&src.log);
    let src_frames = src.power.len() + max_lag;
    let out_frames = out.power.len();
    // Pass 1: each active segment's best lag over the whole range.
    let active: Vec<usize> = (0..out_frames / SEGMENT)
        .map(|i| i * SEGMENT)
        .filter(|&start| {
            out.power[start..start + SEGMENT]
                .iter()
                .filter(|&&p| p > SILENT_POWER)
                .count()
                >= SEGMENT / 4
        })
        .collect();
    let best_in = |start: usize, lags: std::ops::RangeInclusive<usize>| -> Option<(f64, usize)> {
        let block = &out.log[start * BINS..(start + SEGMENT) * BINS];
        let mut best: Option<(f64, usize)> = None;
        for lag in lags {
            let s = start + max_lag - lag;
            if s + SEGMENT > src_frames {
                continue;
            }
            let c = block_corr(block, &src_log[s * BINS..(s + SEGMENT) * BINS]);
            if best.is_none_or(|(b, _)| c > b) {
                best = Some((c, lag));
            }
        }
        best
    };
    let mut lags: Vec<usize> = active
        .iter()
        .filter_map(|&st| best_in(st, 0..=max_lag))
        .map(|b| b.1)
        .collect();
    if lags.is_empty() {
        return Similarity {
            score: 0.0,
            segments: 0,
            median_delay: Duration::ZERO,
        };
    }
    lags.sort_unstable();
    let median = lags[lags.len() / 2];
    // Pass 2: score every segment within ±LAG_SPREAD of the median delay. A real stream's
    // delay wanders around one value; an unrelated signal's chance alignments do not.
    let range = median.saturating_sub(LAG_SPREAD)..=(median + LAG_SPREAD).min(max_lag);
    let scores: Vec<f64> = active
        .iter()
        .filter_map(|&st| best_in(st, range.clone()))
        .map(|b| b.0)
        .collect();
    if scores.is_empty() {
        return Similarity {
            score: 0.0,
            segments: 0,
            median_delay: Duration::ZERO,
        };
    }
    Similarity {
        score: scores.iter().sum::<f64>() / scores.len() as f64,
        segments: scores.len(),
        median_delay: Duration::from_millis(median as u64 * 10),
    }
}

#[cfg(test)]
mod tests {
    use super::super::SpeechSynth;
    use super::*;

    #[test]
    fn identical_delayed_signal_scores_one_and_finds_the_delay() {
        let src = SpeechSynth::generate(3, 6.0);
        let mut delayed = vec![0i16; 48 * 70];
        delayed.extend_from_slice(&src);
        let s = similarity(&src, &delayed, Duration::from_millis(300));
        assert!(s.score > 0.99, "{s:?}");
        assert_eq!(s.median_delay, Duration::from_millis(70));
    }

    #[test]
    fn unrelated_speech_scores_low() {
        let a = SpeechSynth::generate(3, 6.0);
        let b = SpeechSynth::generate(4, 6.0);
        let s = similarity(&a, &b, Duration::from_millis(300));
        assert!(s.score < 0.4, "{s:?}");
        assert!(s.segments >= 3);
    }
}
