//! The audio MCU's cost: mixed participants per core.
//!
//! One iteration is 20 ms of a conference of N participants on a virtual clock: each
//! participant's 20 ms Opus packet in (mono, 48 kHz, 32 kbit/s, FEC), two 10 ms mixes
//! (jitter buffer and decode per participant, N−1 mix and limiter), and one Opus frame out
//! per participant: an own encode per speaker, one shared encode for everyone else. The
//! throughput is participants × 20 ms frames per second, so **mixed participants per core
//! = elements/s ÷ 50**.
//!
//! Conference sizes 3, 10 and 32, with two speakers (the others send quiet background
//! noise, below the voice threshold) and with everyone speaking (the worst case: N
//! encodes), and everyone speaking with the mixes encoded at complexity 2 instead of the
//! default 5.
//!
//! Times are this thread's **CPU time** (`CLOCK_THREAD_CPUTIME_ID`), not wall
//! time: on a shared machine wall time counts the other processes' time slices.
//!
//! `cargo bench -p supernode-media --bench conference`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use supernode_media::codec::opus::OpusConfig;
use supernode_media::conference::{AudioConference, ConferenceConfig, ParticipantId};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::encode_rtp;
use supernode_media::packet::rtp::{set_sequence_number, set_timestamp};

/// Seconds of audio encoded ahead per participant (cycled with fresh sequence numbers).
const SECONDS: usize = 4;

fn source(k: usize, speaking: bool) -> Vec<i16> {
    let n = SECONDS * 48_000;
    if speaking {
        let f = 300.0 + 97.0 * k as f64;
        (0..n)
            .map(|i| (4000.0 * (std::f64::consts::TAU * f * i as f64 / 48_000.0).sin()) as i16)
            .collect()
    } else {
        // Background noise around −60 dBov: not voice.
        let mut x: u32 = 0x9e37_79b9 ^ k as u32;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                ((x % 101) as i16) - 50
            })
            .collect()
    }
}

struct Input {
    packets: Vec<Vec<Vec<u8>>>,
}

impl Input {
    fn new(n: usize, speakers: usize) -> Self {
        let packets = (0..n)
            .map(|k| {
                encode_rtp(
                    &OpusConfig::default(),
                    &source(k, k < speakers),
                    Ssrc(k as u32),
                )
                .unwrap()
                .into_iter()
                .map(|b| b.to_vec())
                .collect()
            })
            .collect();
        Self { packets }
    }

    /// Participant `k`'s packet of frame `i`, renumbered to continue the stream.
    fn packet(&mut self, k: usize, i: u64) -> Bytes {
        let list = &mut self.packets[k];
        let len = list.len();
        let p = &mut list[i as usize % len];
        set_sequence_number(p, i as u16).unwrap();
        set_timestamp(p, (i as u32).wrapping_mul(960)).unwrap();
        Bytes::copy_from_slice(p)
    }
}

/// CPU time this thread has run (`CLOCK_THREAD_CPUTIME_ID`): the machine is shared, so
/// wall time would count other processes' time slices.
fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn run(conf: &mut AudioConference, input: &mut Input, t0: Instant, frame: u64) -> usize {
    let start = t0 + Duration::from_millis(20 * frame);
    for k in 0..input.packets.len() {
        let p = input.packet(k, frame);
        let _ = conf.handle_rtp(start, ParticipantId(k as u32), p);
    }
    let mut bytes = 0;
    for half in 1..=2 {
        let now = start + Duration::from_millis(10 * half);
        while conf.poll_timeout().is_some_and(|t| t <= now) {
            conf.handle_timeout(now);
            while let Some(tx) = conf.poll_transmit() {
                bytes += tx.packet.len();
            }
        }
        while conf.poll_event().is_some() {}
    }
    bytes
}

fn conference(c: &mut Criterion) {
    let mut g = c.benchmark_group("conference_mix");
    g.measurement_time(Duration::from_secs(4));
    g.warm_up_time(Duration::from_secs(1));
    g.sample_size(20);
    for n in [3usize, 10, 32] {
        for (label, speakers, complexity) in [
            ("2_speaking", 2.min(n), 5),
            ("all_speaking", n, 5),
            ("all_speaking_complexity2", n, 2),
        ] {
            let mut config = ConferenceConfig::default();
            config.opus.complexity = complexity;
            let mut input = Input::new(n, speakers);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(label, n), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    let mut conf = AudioConference::new(config).unwrap();
                    for k in 0..n {
                        conf.add(t0, ParticipantId(k as u32), Ssrc(1000 + k as u32))
                            .unwrap();
                    }
                    // A second of warm-up: jitter buffers filled, encoders created.
                    for f in 0..50 {
                        black_box(run(&mut conf, &mut input, t0, f));
                    }
                    let clock = thread_cpu();
                    for f in 50..50 + iters {
                        black_box(run(&mut conf, &mut input, t0, f));
                    }
                    let spent = thread_cpu() - clock;
                    // Every participant got a packet every frame, and the encodes were
                    // shared as claimed.
                    let s = conf.stats();
                    assert_eq!(s.errors, 0);
                    if speakers < n {
                        assert!(s.shared_encodes >= 50 + iters - 2, "{s:?}");
                    }
                    spent
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, conference);
criterion_main!(benches);
