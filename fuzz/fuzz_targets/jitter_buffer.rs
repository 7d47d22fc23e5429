//! Fuzz target: the audio jitter buffer (adaptive or fixed, mono or stereo Opus) under
//! arbitrary packet sequences and timings.
//!
//! The first byte picks the policy, the channel count and the fixed delay. Then each 4-byte
//! record is one step: insert a packet (sequence number and timestamp moved by signed
//! deltas from the input, either a real Opus packet from a small pre-encoded set, with or
//! without FEC, or raw bytes from the input), pull 10 ms, or move the clock (forwards, or
//! backwards now and then). Checked: no panic; every pull writes exactly one frame;
//! statistics stay consistent (output samples = 480 per pull, accepted ≤ inserted,
//! concealed ≤ output).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder, OpusEncoder};
use supernode_media::jitter::{JitterBuffer, JitterConfig, Policy};

/// Opus packets of a short harmonic signal: mono with FEC, stereo, and a 10 ms one.
fn packets() -> &'static [Bytes] {
    static P: OnceLock<Vec<Bytes>> = OnceLock::new();
    P.get_or_init(|| {
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        for (channels, frame_ms) in [
            (Channels::Mono, 20u32),
            (Channels::Stereo, 20),
            (Channels::Mono, 10),
        ] {
            let cfg = OpusConfig {
                channels,
                frame_ms: frame_ms.try_into().unwrap(),
                ..OpusConfig::default()
            };
            let mut enc = OpusEncoder::new(&cfg).unwrap();
            let n = cfg.samples_per_frame();
            for f in 0..8 {
                let pcm: Vec<i16> = (0..n)
                    .map(|i| ((((f * n + i) as f64) * 0.03).sin() * 9000.0) as i16)
                    .collect();
                let len = enc.encode(&pcm, &mut buf).unwrap();
                out.push(Bytes::copy_from_slice(&buf[..len]));
            }
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, steps)) = data.split_first() else {
        return;
    };
    let policy = if cfg & 1 == 0 {
        Policy::default()
    } else {
        Policy::Fixed(Duration::from_millis(u64::from(cfg >> 2) * 4))
    };
    let channels = if cfg & 2 == 0 {
        Channels::Mono
    } else {
        Channels::Stereo
    };
    let dec = OpusDecoder::new(48_000, channels).unwrap();
    let mut jb = JitterBuffer::new(
        dec,
        JitterConfig {
            policy,
            capacity: 8 + usize::from(cfg % 64),
        },
    )
    .unwrap();
    let mut out = vec![0i16; jb.frame_len()];
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut now = t0;
    let (mut seq, mut ts) = (65_500u16, u32::MAX - 5000);
    let (mut inserted, mut pulls) = (0u64, 0u64);
    let pk = packets();
    let mut rest = steps;
    while rest.len() >= 4 {
        let (rec, tail) = rest.split_at(4);
        rest = tail;
        match rec[0] % 4 {
            0 | 1 => {
                seq = seq.wrapping_add(i16::from(rec[1] as i8) as u16);
                ts = ts.wrapping_add((i32::from(rec[2] as i8) * 480) as u32);
                let payload = if rec[0] & 0x80 == 0 {
                    pk[usize::from(rec[3]) % pk.len()].clone()
                } else {
                    // Raw bytes from the input as the payload.
                    let n = usize::from(rec[3]).min(rest.len());
                    let (raw, tail) = rest.split_at(n);
                    rest = tail;
                    Bytes::copy_from_slice(raw)
                };
                inserted += 1;
                let _ = jb.insert(now, seq, ts, payload);
            }
            2 => {
                jb.pull(now, &mut out)
                    .expect("a frame-sized output is always accepted");
                pulls += 1;
                now += Duration::from_millis(10);
            }
            _ => {
                let d = Duration::from_micros(u64::from(u16::from_le_bytes([rec[1], rec[2]])) * 4);
                if rec[3] == 0xff {
                    now = now.checked_sub(d).unwrap_or(now);
                } else {
                    now += d;
                }
            }
        }
    }
    let st = jb.stats();
    assert_eq!(st.samples_output, pulls * 480);
    assert!(st.accepted <= inserted);
    assert!(st.samples_concealed <= st.samples_output + 5760);
    assert!(jb.pull(now, &mut [0i16; 7]).is_err());
});
