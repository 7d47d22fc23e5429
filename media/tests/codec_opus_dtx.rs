//! Opus DTX end to end with real libopus: speech, then background noise, then speech again.
//! The encoder's packets shrink to DTX frames with a comfort-noise update every 400 ms; a
//! sender that drops the DTX frames leaves gaps of up to 400 ms; the receiver's
//! `comfort_noise` fills them with low-level noise at the background's level, sample for
//! sample what decoding the dropped frames would have given.

use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder, OpusEncoder, is_dtx_packet};

const FRAME: usize = 960; // 20 ms at 48 kHz, mono

/// A speech-like signal: a 150 Hz voice with harmonics, amplitude-modulated at 3 Hz.
fn voice(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / 48_000.0;
            let mut s = 0.0;
            for h in 1..=6 {
                s += (2.0 * std::f64::consts::PI * 150.0 * h as f64 * t).sin() / h as f64;
            }
            let env = 0.55 + 0.45 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            (s * env * 9000.0) as i16
        })
        .collect()
}

/// Room background: low-passed white noise (xorshift, seeded), scaled to about `rms`.
fn background(n: usize, rms: f64) -> Vec<i16> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut lp = 0.0f64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5; // rms 0.289
            lp = 0.9 * lp + 0.1 * u; // rms ~0.066
            (lp / 0.066 * rms) as i16
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

struct Run {
    /// Encoded size of every frame.
    sizes: Vec<usize>,
    /// What a receiver of every packet (DTX frames included) decodes.
    all: Vec<i16>,
    /// What a receiver of the transmitted packets only decodes, comfort noise in the gaps.
    sent: Vec<i16>,
}

fn run(src: &[i16]) -> Run {
    let cfg = OpusConfig {
        dtx: true,
        ..OpusConfig::default()
    };
    let mut enc = OpusEncoder::new(&cfg).unwrap();
    let mut dec_all = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut dec_sent = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut pkt = [0u8; 1500];
    let mut out = [0i16; FRAME];
    let mut r = Run {
        sizes: Vec::new(),
        all: Vec::new(),
        sent: Vec::new(),
    };
    for frame in src.chunks_exact(FRAME) {
        let n = enc.encode(frame, &mut pkt).unwrap();
        r.sizes.push(n);
        assert_eq!(dec_all.decode(&pkt[..n], &mut out).unwrap(), FRAME);
        r.all.extend_from_slice(&out);
        if is_dtx_packet(&pkt[..n]) {
            // Not transmitted: the receiver sees a timestamp gap with no sequence gap.
            assert_eq!(dec_sent.comfort_noise(&mut out).unwrap(), FRAME);
        } else {
            assert_eq!(dec_sent.decode(&pkt[..n], &mut out).unwrap(), FRAME);
        }
        r.sent.extend_from_slice(&out);
    }
    r
}

#[test]
fn dtx_packets_shrink_and_stop_and_the_gap_is_comfort_noise() {
    const BG_RMS: f64 = 6.0; // about -75 dBFS: a quiet room
    let mut src = voice(48_000); // 1 s of speech: frames 0..50
    src.extend(background(5 * 48_000, BG_RMS)); // 5 s of background: frames 50..300
    src.extend(voice(24_000)); // speech again: frames 300..325
    let r = run(&src);
    let sizes = &r.sizes;

    // Speech is never DTX.
    assert!(sizes[..50].iter().all(|&n| n > 2), "{:?}", &sizes[..50]);
    assert!(sizes[301..].iter().all(|&n| n > 20), "{:?}", &sizes[300..]);
    // The last 3 s of background: mostly DTX frames.
    let tail = &sizes[150..300];
    let dtx = tail.iter().filter(|&&n| n <= 2).count();
    assert!(
        dtx * 10 >= tail.len() * 8,
        "{dtx} DTX frames of {}",
        tail.len()
    );
    // What is still sent are comfort-noise updates with nothing sent in between for up to
    // 400 ms (20 frames), so updates come 15..=21 frames apart.
    let sent_at: Vec<usize> = (150..300).filter(|&i| sizes[i] > 2).collect();
    assert!(sent_at.len() >= 3, "updates at {sent_at:?}");
    for w in sent_at.windows(2) {
        assert!((15..=21).contains(&(w[1] - w[0])), "updates at {sent_at:?}");
    }

    // The receiver that saw nothing in the gaps plays exactly what one that decoded the DTX
    // frames plays.
    assert_eq!(
        r.sent, r.all,
        "comfort noise differs from decoding the DTX frames"
    );

    // In the gaps: low-level noise, not silence, not a burst.
    let mut levels = Vec::new();
    for i in (150..300).filter(|&i| sizes[i] <= 2) {
        let out = &r.sent[i * FRAME..(i + 1) * FRAME];
        let level = rms(out);
        let peak = out.iter().map(|&s| i32::from(s).abs()).max().unwrap();
        assert!(
            level > 0.5,
            "frame {i}: comfort noise RMS {level} (silence)"
        );
        assert!(level < 4.0 * BG_RMS, "frame {i}: RMS {level}");
        assert!(peak < 30 * BG_RMS as i32, "frame {i}: peak {peak}");
        levels.push(level);
    }
    let mean = levels.iter().sum::<f64>() / levels.len() as f64;
    let src_level = rms(&src[150 * FRAME..300 * FRAME]);
    eprintln!(
        "background RMS {src_level:.2}, comfort noise RMS {mean:.2} over {} DTX frames",
        levels.len()
    );
    // At the background's level (within a factor of 3 either way).
    assert!(
        (src_level / 3.0..src_level * 3.0).contains(&mean),
        "{mean} vs {src_level}"
    );
    // Speech comes back at speech level.
    let again = rms(&r.sent[305 * FRAME..325 * FRAME]);
    assert!(again > 1000.0, "speech after DTX at RMS {again}");
}

#[test]
fn digital_silence_stays_silent() {
    let mut src = voice(48_000);
    src.extend(std::iter::repeat_n(0i16, 2 * 48_000));
    let r = run(&src);
    let dtx: Vec<usize> = (50..150).filter(|&i| r.sizes[i] <= 2).collect();
    assert!(dtx.len() >= 60, "{:?}", &r.sizes[50..]);
    assert_eq!(r.sent, r.all);
    // No noise invented where the source had none.
    for i in dtx {
        let out = &r.sent[i * FRAME..(i + 1) * FRAME];
        assert!(out.iter().all(|&s| s.abs() <= 2), "frame {i}");
    }
}

#[test]
fn comfort_noise_checks_its_buffer() {
    let mut dec = OpusDecoder::new(48_000, Channels::Stereo).unwrap();
    let mut out = [0i16; 2 * FRAME];
    assert_eq!(dec.comfort_noise(&mut out).unwrap(), FRAME);
    assert!(dec.comfort_noise(&mut out[..3]).is_err()); // not whole stereo samples
    assert!(dec.comfort_noise(&mut out[..2 * 100]).is_err()); // not a multiple of 2.5 ms
    assert!(dec.comfort_noise(&mut []).is_err());
    assert!(is_dtx_packet(&[0x78]) && !is_dtx_packet(&[0x78, 1, 2]));
}
