//! Criterion benches of H.264 (openh264): encode and decode of a moving test pattern at
//! 640×360 (800 kbit/s) and 1280×720 (2.5 Mbit/s), 30 fps, one thread. Throughput is in
//! frames, so criterion's "elem/s" is frames per second. Also the RFC 6184 packetizer and
//! depacketizer on a 720p access unit; the cost of a bitrate change on a running encoder
//! (`h264_rate_change`: the encoder is rebuilt and the picture after a change is an IDR, to
//! compare with `h264_encode` and with a forced keyframe); and the video frame buffer's
//! per-packet path (`video_frame_buffer`: insert, pop, timers; elements are packets).
//!
//! Run with `cargo bench -p supernode-benches --bench h264`. Whether openh264's assembly
//! was built depends on `nasm` being on PATH when `openh264-sys2` compiled.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::payload::h264::{H264Depacketizer, H264Packetizer};
use supernode_media::video::{FrameBuffer, FrameBufferConfig, VideoPacket};

const SIZES: [(usize, usize, u32, &str); 2] = [
    (640, 360, 800_000, "640x360"),
    (1280, 720, 2_500_000, "1280x720"),
];
const CLIP: u64 = 30;

fn clip(w: usize, h: usize) -> Vec<I420Frame> {
    (0..CLIP)
        .map(|n| I420Frame::test_pattern(w, h, n).unwrap())
        .collect()
}

fn encoder(w: usize, h: usize, bps: u32) -> H264Encoder {
    H264Encoder::new(&H264Config {
        width: w,
        height: h,
        bitrate_bps: bps,
        frame_rate: 30.0,
        keyframe_interval: CLIP as u32,
    })
    .unwrap()
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("h264_encode");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    for (w, h, bps, name) in SIZES {
        let frames = clip(w, h);
        let mut enc = encoder(w, h, bps);
        let mut au = Vec::new();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let info = enc.encode(&frames[i % frames.len()], &mut au).unwrap();
                i += 1;
                black_box(info)
            })
        });
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("h264_decode");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    for (w, h, bps, name) in SIZES {
        // One GOP: an IDR then 29 P pictures; decoding cycles through it (the IDR resets).
        let mut enc = encoder(w, h, bps);
        let mut aus = Vec::new();
        for f in clip(w, h) {
            let mut au = Vec::new();
            enc.encode(&f, &mut au).unwrap();
            aus.push(au);
        }
        let mut dec = H264Decoder::new().unwrap();
        let mut out = I420Frame::new(w, h).unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let ok = dec.decode(&aus[i % aus.len()], &mut out).unwrap();
                i += 1;
                black_box(ok)
            })
        });
    }
    g.finish();
}

fn bench_payload(c: &mut Criterion) {
    let mut enc = encoder(1280, 720, 2_500_000);
    let mut au = Vec::new();
    let pic = I420Frame::test_pattern(1280, 720, 1).unwrap();
    enc.encode(&pic, &mut au).unwrap(); // a 720p IDR access unit
    let mut pk = H264Packetizer::new(1200).unwrap();
    let mut pkts: Vec<Vec<u8>> = Vec::new();
    pk.packetize(&au, |p, _| pkts.push(p.to_vec())).unwrap();

    let mut g = c.benchmark_group("h264_rtp");
    g.throughput(Throughput::Bytes(au.len() as u64));
    g.bench_function("packetize_720p_idr", |b| {
        b.iter(|| {
            let mut n = 0usize;
            pk.packetize(black_box(&au), |p, _| n += p.len()).unwrap();
            black_box(n)
        })
    });
    let mut de = H264Depacketizer::default();
    let mut out = Vec::new();
    g.bench_function("depacketize_720p_idr", |b| {
        b.iter(|| {
            let info = de
                .depacketize_ordered(pkts.iter().map(|p| &p[..]), &mut out)
                .unwrap();
            black_box(info)
        })
    });
    g.finish();
}

fn bench_rate_change(c: &mut Criterion) {
    let mut g = c.benchmark_group("h264_rate_change");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    let (w, h) = (640, 360);
    let frames = clip(w, h);
    let mut au = Vec::new();
    // Every picture after a bitrate change: rebuild + IDR.
    let mut enc = encoder(w, h, 800_000);
    let mut i = 0usize;
    g.bench_function("640x360_set_bitrate_then_encode", |b| {
        b.iter(|| {
            let bps = if i.is_multiple_of(2) {
                700_000
            } else {
                800_000
            };
            enc.set_bitrate(bps).unwrap();
            let info = enc.encode(&frames[i % frames.len()], &mut au).unwrap();
            i += 1;
            black_box(info)
        })
    });
    // The same with a forced keyframe on the same encoder: the IDR's share of the cost.
    let mut enc = encoder(w, h, 800_000);
    g.bench_function("640x360_force_keyframe_then_encode", |b| {
        b.iter(|| {
            enc.force_keyframe();
            let info = enc.encode(&frames[i % frames.len()], &mut au).unwrap();
            i += 1;
            black_box(info)
        })
    });
    g.finish();
}

fn bench_frame_buffer(c: &mut Criterion) {
    // 30 fps, 4 packets a frame, every 50th packet first lost and then retransmitted 1 ms
    // later (one NACK each): insert every packet, pop every frame, serve the timers.
    const PER_FRAME: u16 = 4;
    const FRAMES: u16 = 300;
    let payload = Bytes::from_static(&[0u8; 1100]);
    let mut schedule: Vec<VideoPacket> = Vec::new();
    let mut late = None;
    for f in 0..FRAMES {
        for k in 0..PER_FRAME {
            let seq = f * PER_FRAME + k;
            let p = VideoPacket {
                seq,
                timestamp: u32::from(f) * 3000,
                marker: k + 1 == PER_FRAME,
                frame_start: k == 0,
                keyframe: f == 0,
                payload: payload.clone(),
            };
            if seq % 50 == 49 {
                late = Some(p);
                continue;
            }
            schedule.push(p);
            if let Some(l) = late.take() {
                schedule.push(l);
            }
        }
    }
    let mut g = c.benchmark_group("video_frame_buffer");
    g.throughput(Throughput::Elements(schedule.len() as u64));
    g.bench_function("insert_pop_poll_1200_packets", |b| {
        let mut out = Vec::with_capacity(16);
        // A fresh buffer per run, built (and dropped) outside the measurement.
        let setup = || {
            (
                Instant::now(),
                FrameBuffer::new(FrameBufferConfig::default()),
            )
        };
        b.iter_batched(
            setup,
            |(t0, mut fb)| {
                let mut frames = 0u32;
                for (i, p) in schedule.iter().enumerate() {
                    let now = t0 + Duration::from_micros(i as u64 * 8_333);
                    let _ = fb.insert(now, p.clone());
                    while fb.pop_frame(&mut out).is_some() {
                        frames += 1;
                    }
                    if fb.poll_timeout().is_some_and(|t| t <= now) {
                        while fb.poll_feedback(now).is_some() {}
                    }
                }
                black_box(frames);
                fb
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_encode,
    bench_decode,
    bench_payload,
    bench_rate_change,
    bench_frame_buffer
);
criterion_main!(benches);
