//! Criterion benches of the audio pipeline:
//!
//! - `opus/encode_20ms`, `opus/decode_20ms`: one 20 ms, 48 kHz mono frame at 32 kbit/s
//!   (realtime factor = 20 ms / time).
//! - `receive/bare_decode` vs `receive/pipeline`: per 20 ms packet, the bare decoder vs the
//!   whole receive path (RTP parse and RFC 7587 depacketization, jitter-buffer insert, two
//!   10 ms pulls that decode). The pipeline should cost at most 10 % more. Because other
//!   processes' load lands on the two criterion measurements unequally, the bench also
//!   prints the ratio measured interleaved (`receive/ratio`).
//! - `mixer/10_participants_10ms`: one 10 ms mix of 10 participants (10 jitter buffers and
//!   decoders, 10 N−1 outputs with limiters); and the same plus encoding every output
//!   (`mixer/10_participants_encode_10ms`). Participants per core = 10 × 10 ms / time.
//!
//! Run with `cargo bench -p supernode-benches --bench audio`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder, OpusEncoder};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::{SpeechSynth, encode_rtp, receive_rtp};
use supernode_media::jitter::{JitterBuffer, JitterConfig};
use supernode_media::mixer::{Mixer, MixerConfig};
use supernode_media::packet::rtp::RtpPacket;

const SECONDS: f64 = 30.0;

fn packets() -> (Vec<i16>, Vec<Bytes>) {
    let pcm = SpeechSynth::generate(1, SECONDS);
    let dg = encode_rtp(&OpusConfig::default(), &pcm, Ssrc(1)).expect("encode");
    (pcm, dg)
}

fn opus(c: &mut Criterion) {
    let (pcm, dg) = packets();
    let cfg = OpusConfig::default();
    let mut g = c.benchmark_group("opus");
    let mut enc = OpusEncoder::new(&cfg).unwrap();
    let mut out = [0u8; 1500];
    let mut i = 0usize;
    g.bench_function("encode_20ms", |b| {
        b.iter(|| {
            let frame = &pcm[(i % 1000) * 960..(i % 1000 + 1) * 960];
            i += 1;
            black_box(enc.encode(black_box(frame), &mut out).unwrap())
        })
    });
    let payloads: Vec<Bytes> = dg
        .iter()
        .map(|d| d.slice_ref(RtpPacket::parse(d).unwrap().payload()))
        .collect();
    let mut dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
    let mut pcm_out = vec![0i16; 5760];
    let mut k = 0usize;
    g.bench_function("decode_20ms", |b| {
        b.iter(|| {
            let p = &payloads[k % payloads.len()];
            k += 1;
            black_box(dec.decode(black_box(p), &mut pcm_out).unwrap())
        })
    });
    g.finish();
}

fn receive(c: &mut Criterion) {
    let (_, dg) = packets();
    let payloads: Vec<Bytes> = dg
        .iter()
        .map(|d| d.slice_ref(RtpPacket::parse(d).unwrap().payload()))
        .collect();
    let mut g = c.benchmark_group("receive");
    g.bench_function("bare_decode", |b| {
        b.iter_custom(|iters| {
            let mut dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
            let mut out = vec![0i16; 5760];
            let start = Instant::now();
            for i in 0..iters as usize {
                black_box(
                    dec.decode(black_box(&payloads[i % payloads.len()]), &mut out)
                        .unwrap(),
                );
            }
            start.elapsed()
        })
    });
    g.bench_function("pipeline", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                // A fresh stream per pass over the packets (set-up not timed).
                let dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
                let mut jb = JitterBuffer::new(dec, JitterConfig::default()).unwrap();
                let mut out = vec![0i16; jb.frame_len()];
                let t0 = Instant::now();
                let n = (iters - done).min(dg.len() as u64) as usize;
                let start = Instant::now();
                for (i, d) in dg[..n].iter().enumerate() {
                    let now = t0 + Duration::from_millis(20 * i as u64);
                    receive_rtp(&mut jb, now, d);
                    black_box(jb.pull(now, &mut out).unwrap());
                    black_box(jb.pull(now + Duration::from_millis(10), &mut out).unwrap());
                }
                total += start.elapsed();
                done += n as u64;
            }
            total
        })
    });
    g.finish();
}

/// The pipeline/bare ratio measured interleaved (blocks of 50 packets alternately through the
/// bare decoder and through the pipeline, same process, same moment), eight rounds over the
/// 30 s stream, each side's fastest round kept: load from other processes then hits both
/// sides alike. Printed, not a criterion measurement.
fn receive_ratio(_: &mut Criterion) {
    let (_, dg) = packets();
    let payloads: Vec<Bytes> = dg
        .iter()
        .map(|d| d.slice_ref(RtpPacket::parse(d).unwrap().payload()))
        .collect();
    let (mut best_bare, mut best_pipe) = (Duration::MAX, Duration::MAX);
    let mut counted = 0u32;
    for _round in 0..8 {
        let (mut bare, mut pipe) = (Duration::ZERO, Duration::ZERO);
        counted = 0;
        let mut dec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
        let mut pcm = vec![0i16; 5760];
        let jdec = OpusDecoder::new(48_000, Channels::Mono).unwrap();
        let mut jb = JitterBuffer::new(jdec, JitterConfig::default()).unwrap();
        let mut out = vec![0i16; jb.frame_len()];
        let t0 = Instant::now();
        for block in (0..dg.len()).step_by(50) {
            let end = (block + 50).min(dg.len());
            let s = Instant::now();
            for p in &payloads[block..end] {
                black_box(dec.decode(black_box(p), &mut pcm).unwrap());
            }
            let b = s.elapsed();
            let s = Instant::now();
            for (i, d) in dg[block..end].iter().enumerate() {
                let now = t0 + Duration::from_millis(20 * (block + i) as u64);
                receive_rtp(&mut jb, now, d);
                black_box(jb.pull(now, &mut out).unwrap());
                black_box(jb.pull(now + Duration::from_millis(10), &mut out).unwrap());
            }
            let p = s.elapsed();
            if block >= 50 {
                // Skip the start-up block (buffering, first time-scaling).
                bare += b;
                pipe += p;
                counted += (end - block) as u32;
            }
        }
        best_bare = best_bare.min(bare);
        best_pipe = best_pipe.min(pipe);
    }
    println!(
        "receive/ratio (interleaved, best of 8): bare decode {:.2} µs/packet, pipeline {:.2} µs/packet, pipeline/bare = {:.3}",
        best_bare.as_secs_f64() * 1e6 / counted as f64,
        best_pipe.as_secs_f64() * 1e6 / counted as f64,
        best_pipe.as_secs_f64() / best_bare.as_secs_f64()
    );
}

fn mixer(c: &mut Criterion) {
    const N: usize = 10;
    let streams: Vec<Vec<Bytes>> = (0..N)
        .map(|k| {
            let pcm = SpeechSynth::generate(k as u64 + 1, 10.0);
            encode_rtp(&OpusConfig::default(), &pcm, Ssrc(k as u32 + 1)).unwrap()
        })
        .collect();
    let mut g = c.benchmark_group("mixer");
    for encode in [false, true] {
        let name = if encode {
            "10_participants_encode_10ms"
        } else {
            "10_participants_10ms"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let mut m = Mixer::new(MixerConfig::default());
                    let mut encoders = Vec::new();
                    for k in 0..N {
                        m.add(
                            Ssrc(k as u32 + 1),
                            OpusDecoder::new(48_000, Channels::Mono).unwrap(),
                        )
                        .unwrap();
                        encoders.push((
                            OpusEncoder::new(&OpusConfig::default()).unwrap(),
                            vec![0i16; 960],
                        ));
                    }
                    let mut out = [0u8; 1500];
                    let t0 = Instant::now();
                    let frames = (iters - done).min(streams[0].len() as u64 * 2) as usize;
                    let start = Instant::now();
                    for f in 0..frames {
                        let now = t0 + Duration::from_millis(10 * f as u64);
                        if f % 2 == 0 {
                            for (k, s) in streams.iter().enumerate() {
                                let d = &s[f / 2];
                                let p = RtpPacket::parse(d).unwrap();
                                let payload = d.slice_ref(p.payload());
                                let _ = m.insert(
                                    Ssrc(k as u32 + 1),
                                    now,
                                    p.sequence_number(),
                                    p.timestamp(),
                                    payload,
                                );
                            }
                        }
                        m.mix(now).unwrap();
                        if encode {
                            for (k, (enc, buf)) in encoders.iter_mut().enumerate() {
                                let half = (f % 2) * 480;
                                buf[half..half + 480]
                                    .copy_from_slice(m.output(Ssrc(k as u32 + 1)).unwrap());
                                if f % 2 == 1 {
                                    black_box(enc.encode(buf, &mut out).unwrap());
                                }
                            }
                        }
                    }
                    total += start.elapsed();
                    done += frames as u64;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, opus, receive, receive_ratio, mixer);
criterion_main!(benches);
