//! Criterion benches of H.264 (openh264): encode and decode of a moving test pattern at
//! 640×360 (800 kbit/s) and 1280×720 (2.5 Mbit/s), 30 fps, one thread. Throughput is in
//! frames, so criterion's "elem/s" is frames per second. Also the RFC 6184 packetizer and
//! depacketizer on a 720p access unit.
//!
//! Run with `cargo bench -p supernode-benches --bench h264`. Whether openh264's assembly
//! was built depends on `nasm` being on PATH when `openh264-sys2` compiled.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::payload::h264::{H264Depacketizer, H264Packetizer};

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

criterion_group!(benches, bench_encode, bench_decode, bench_payload);
criterion_main!(benches);
