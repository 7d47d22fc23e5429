//! Audio similarity: how much of the sender's waveform survives to the receiver's playout.
//!
//! ## The measure
//!
//! The played-out audio is cut into 40 ms segments. For each segment whose reference (the
//! sender's signal, regenerated from the seed with [`SpeechSynth`]) is not near-silent, the
//! **normalised cross-correlation** (Pearson's r without mean removal, i.e. the cosine
//! between the two sample vectors) is maximised over lags within ±15 ms of the running
//! alignment and of the nearest timing mark's delay (±150 ms when neither finds a good
//! match: a long concealment shifted the playout), and the alignment follows the best lag. The similarity is the mean over those
//! segments, in `[-1, 1]`.
//!
//! *Why this measure.* It is waveform-level, so it fails for anything that breaks the audio
//! (wrong decoder state, garbage from a wrong key, a mis-ordered stream, heavy concealment)
//! while being insensitive to gain. Tracking the lag per segment absorbs the jitter buffer's
//! time-scaling (accelerate and preemptive expand remove or repeat whole pitch periods, which
//! shifts the alignment by a few milliseconds). Opus at 32 kbit/s is not waveform-exact
//! (SILK codes an excitation, CELT a shaped spectrum), so a clean call does not reach 1; on
//! this signal it scores about 0.95 on a clean loopback call, and concealed or missing audio
//! pulls it toward 0. The tests require more than [`PASS_THRESHOLD`]: well above what
//! unrelated audio scores (near 0) and below what a clean Opus call scores.
//!
//! The alignment starts from, and is checked against, the delays measured at the timing
//! marks (each segment also tries the delay of its nearest mark). The cost is bounded: at
//! most the first 60 s are analysed, with at most 100 wide searches.

use crate::synth::SpeechSynth;

/// The similarity a call must exceed to count as "audio arrived intact".
pub const PASS_THRESHOLD: f64 = 0.7;
/// Segment length in samples (40 ms: short, so few segments straddle a time-scaling step).
const SEGMENT: usize = 1_920;
/// Lag search half-width in samples (15 ms: more than one pitch period, the step that
/// accelerate and preemptive expand take).
const SEARCH: i64 = 720;
/// Below this correlation the search is repeated over [`WIDE_SEARCH`].
const REANCHOR_BELOW: f64 = 0.6;
/// Wide lag search half-width in samples (150 ms).
const WIDE_SEARCH: i64 = 7_200;
/// At most one wide search per this many segments (200 ms), and at most [`MAX_WIDE`] in
/// all, which bounds the cost on audio that matches nothing.
const WIDE_EVERY: usize = 5;
const MAX_WIDE: usize = 100;
/// Audio analysed at most (the first 60 s of the call), which bounds the cost on long calls.
pub const MAX_ANALYSED: usize = 48_000 * 60;
/// Reference RMS (full scale 1.0) below which a segment is skipped.
const MIN_RMS: f64 = 0.02;

/// Computes the similarity of `played` (whose first sample has absolute playout index
/// `n0`) to `reference`. `marks` are the timing marks found in it, as (playout index,
/// delay in samples) (see [`crate::marks::MarkDetector::marks`]): each segment is searched
/// around the running alignment and around the delay of the nearest mark, so a playout
/// delay that drifts (the jitter buffer settling) is followed. `None` without marks or when
/// no segment has enough reference energy.
pub fn similarity(
    reference: &SpeechSynth,
    n0: u64,
    played: &[i16],
    marks: &[(u64, u64)],
) -> Option<f64> {
    let first = marks.first()?;
    let mut lag = first.1 as i64;
    let mut sum = 0.0;
    let mut count = 0usize;
    let mut refbuf = Vec::new();
    let mut seg_f = vec![0f32; SEGMENT];
    let mut last_wide: Option<usize> = None;
    let mut wide_left = MAX_WIDE;
    let played = &played[..played.len().min(MAX_ANALYSED)];
    for (k, seg) in played.chunks_exact(SEGMENT).enumerate() {
        let p0 = (n0 + (k * SEGMENT) as u64) as i64;
        let nearest = marks
            .iter()
            .min_by_key(|(at, _)| at.abs_diff(p0 as u64))
            .map_or(lag, |&(_, d)| d as i64);
        // The reference at the mark's alignment decides whether the segment counts.
        if p0 - nearest < 0 {
            continue;
        }
        let ref_energy: f64 = (0..SEGMENT as i64)
            .map(|i| reference.sample_f64((p0 - nearest + i) as u64).powi(2))
            .sum();
        if (ref_energy / SEGMENT as f64).sqrt() < MIN_RMS {
            continue;
        }
        for (d, &s) in seg_f.iter_mut().zip(seg) {
            *d = f32::from(s) / 32768.0;
        }
        let mut best = best_lag(reference, p0, &seg_f, lag, SEARCH, &mut refbuf);
        if (nearest - lag).abs() > SEARCH / 2 {
            let by_mark = best_lag(reference, p0, &seg_f, nearest, SEARCH, &mut refbuf);
            if by_mark.0 > best.0 {
                best = by_mark;
            }
        }
        if best.0 < REANCHOR_BELOW && wide_left > 0 && last_wide.is_none_or(|w| k >= w + WIDE_EVERY)
        {
            // Lost track (a long concealment or wait shifted the playout): search wider.
            last_wide = Some(k);
            wide_left -= 1;
            let wide = best_lag(reference, p0, &seg_f, nearest, WIDE_SEARCH, &mut refbuf);
            if wide.0 > best.0 {
                best = wide;
            }
        }
        sum += best.0;
        count += 1;
        if best.0 > 0.5 {
            lag = best.1;
        }
    }
    (count > 0).then(|| sum / count as f64)
}

/// The best normalised correlation of `seg` (played from absolute index `p0`) with the
/// reference over lags `lag ± half`, and that lag.
fn best_lag(
    reference: &SpeechSynth,
    p0: i64,
    seg: &[f32],
    lag: i64,
    half: i64,
    refbuf: &mut Vec<f32>,
) -> (f64, i64) {
    // Reference samples covering every candidate: index p0 - lag - half ..
    let r0 = (p0 - lag - half).max(0);
    refbuf.clear();
    refbuf.extend(
        (0..seg.len() as i64 + 2 * half).map(|i| reference.sample_f64((r0 + i) as u64) as f32),
    );
    let seg_energy: f64 = seg.iter().map(|&x| f64::from(x * x)).sum();
    let mut best = (f64::MIN, lag);
    for off in 0..=(2 * half) as usize {
        let r = &refbuf[off..off + seg.len()];
        let mut dot = 0f32;
        let mut re = 0f32;
        for (a, b) in seg.iter().zip(r) {
            dot += a * b;
            re += b * b;
        }
        let den = (seg_energy * f64::from(re)).sqrt();
        let c = if den > 0.0 { f64::from(dot) / den } else { 0.0 };
        if c > best.0 {
            // Reference index r0 + off pairs with played index p0: lag = p0 - r0 - off.
            best = (c, p0 - r0 - off as i64);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play(s: &SpeechSynth, n0: u64, len: usize, delay: u64) -> Vec<i16> {
        let mut v = vec![0i16; len];
        s.fill(n0 - delay, &mut v);
        v
    }

    #[test]
    fn identical_audio_scores_one_and_tracks_small_shifts() {
        let s = SpeechSynth::new(5, 2000);
        let n0 = 1_700_000_001u64 * 48_000;
        let played = play(&s, n0, 48_000 * 3, 3_000);
        let v = similarity(&s, n0, &played, &[(n0, 3_000)]).unwrap();
        assert!(v > 0.999, "{v}");
        // A start alignment 5 ms off is found by the lag search.
        let v = similarity(&s, n0, &played, &[(n0, 3_240)]).unwrap();
        assert!(v > 0.99, "{v}");
    }

    #[test]
    fn unrelated_audio_scores_low() {
        let s = SpeechSynth::new(5, 2000);
        let other = SpeechSynth::new(6, 2000);
        let n0 = 1_700_000_001u64 * 48_000;
        let played = play(&other, n0, 48_000 * 3, 3_000);
        let v = similarity(&s, n0, &played, &[(n0, 3_000)]).unwrap();
        assert!(v < 0.4, "{v}");
        let silence = vec![0i16; 48_000 * 3];
        let v = similarity(&s, n0, &silence, &[(n0, 3_000)]).unwrap();
        assert!(v.abs() < 1e-9, "{v}");
    }
}
