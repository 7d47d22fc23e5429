//! The mixer with real Opus streams through the emulator: N−1 outputs, clipping protection,
//! RFC 6464 levels and active-speaker detection.

use std::time::{Duration, Instant};

use supernode_media::codec::opus::{Channels, OpusConfig, OpusDecoder};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::encode_rtp;
use supernode_media::mixer::{Mixer, MixerConfig};
use supernode_media::net::{NetEmulator, NetProfile};
use supernode_media::packet::rtp::RtpPacket;
use supernode_media::tone::{RATE, level_db, sine};

/// Runs the mixer over `sources` (one per participant, ids 1..), each through its own
/// wired path, and returns each participant's whole output plus the per-frame active speaker
/// and per-frame input levels.
struct Run {
    outputs: Vec<Vec<i16>>,
    speakers: Vec<Option<Ssrc>>,
    levels: Vec<Vec<u8>>,
    min_gain: f32,
}

fn run_mixer(sources: &[Vec<i16>]) -> Run {
    let n = sources.len();
    let ids: Vec<Ssrc> = (1..=n as u32).map(Ssrc).collect();
    let mut mixer = Mixer::new(MixerConfig::default());
    let mut streams = Vec::new();
    for (k, src) in sources.iter().enumerate() {
        mixer
            .add(ids[k], OpusDecoder::new(48_000, Channels::Mono).unwrap())
            .unwrap();
        let dg = encode_rtp(&OpusConfig::default(), src, ids[k]).unwrap();
        streams.push((dg, NetEmulator::new(NetProfile::wired(), k as u64 + 1)));
    }
    let t0 = Instant::now();
    let frames = sources.iter().map(|s| s.len()).max().unwrap() / 480 + 20;
    let mut run = Run {
        outputs: vec![Vec::new(); n],
        speakers: Vec::new(),
        levels: vec![Vec::new(); n],
        min_gain: 1.0,
    };
    for f in 0..frames {
        let now = t0 + Duration::from_millis(10 * f as u64);
        for (k, (dg, net)) in streams.iter_mut().enumerate() {
            if f % 2 == 0
                && let Some(p) = dg.get(f / 2)
            {
                net.send(now, p.clone());
            }
            while let Some(p) = net.poll(now) {
                let pkt = RtpPacket::parse(&p).unwrap();
                let payload = p.slice_ref(pkt.payload());
                mixer
                    .insert(ids[k], now, pkt.sequence_number(), pkt.timestamp(), payload)
                    .unwrap();
            }
        }
        mixer.mix(now).unwrap();
        run.speakers.push(mixer.active_speaker());
        for (k, &id) in ids.iter().enumerate() {
            run.outputs[k].extend_from_slice(mixer.output(id).unwrap());
            run.levels[k].push(mixer.level(id).unwrap().level);
            run.min_gain = run.min_gain.min(mixer.limiter_gain(id).unwrap());
        }
    }
    run
}

#[test]
fn each_participant_hears_everyone_but_themselves() {
    let freqs = [300.0, 700.0, 1100.0];
    let sources: Vec<Vec<i16>> = freqs.iter().map(|&f| sine(f, 6000.0, 4.0)).collect();
    let run = run_mixer(&sources);
    for (k, out) in run.outputs.iter().enumerate() {
        let steady = &out[48_000..48_000 * 3];
        let own = level_db(steady, freqs[k]);
        for (j, &f) in freqs.iter().enumerate() {
            if j == k {
                continue;
            }
            let db = level_db(steady, f) - own;
            assert!(
                db > 30.0,
                "participant {k} hears itself: {f} Hz is only {db:.1} dB above own voice"
            );
        }
    }
    assert_eq!(run.min_gain, 1.0, "a quiet mix must not be limited");
}

#[test]
fn loud_mix_is_limited_and_never_hard_clips() {
    // Three in-phase 200 Hz tones at 20000: each output sums two, 40000 peak.
    let sources: Vec<Vec<i16>> = (0..3).map(|_| sine(200.0, 20_000.0, 3.0)).collect();
    // What a plain saturating sum of two inputs would do:
    let naive_clipped = sources[0]
        .iter()
        .zip(&sources[1])
        .filter(|(a, b)| (**a as i32 + **b as i32).abs() >= 32_767)
        .count();
    assert!(naive_clipped > 1000);
    let run = run_mixer(&sources);
    assert!(
        run.min_gain < 0.9,
        "limiter never engaged: {}",
        run.min_gain
    );
    for out in &run.outputs {
        let steady = &out[48_000..48_000 * 2];
        let clipped = steady
            .iter()
            .filter(|&&s| s == i16::MAX || s <= -i16::MAX)
            .count();
        assert_eq!(clipped, 0);
        let peak = steady.iter().map(|&s| (s as i32).abs()).max().unwrap();
        assert!(peak > 20_000, "output too quiet: {peak}");
    }
}

#[test]
fn levels_and_active_speaker_follow_who_talks() {
    // Participant 1 talks 0–2.5 s; participant 2 talks louder from 2 s to 5 s;
    // participant 3 coughs for 60 ms at 3.5 s.
    let mut a = sine(220.0, 8000.0, 2.5);
    a.extend(vec![0i16; (2.5 * RATE) as usize]);
    let mut b = vec![0i16; (2.0 * RATE) as usize];
    b.extend(sine(330.0, 16000.0, 3.0));
    let mut c = vec![0i16; (3.5 * RATE) as usize];
    c.extend(sine(500.0, 30000.0, 0.06));
    c.extend(vec![0i16; (1.44 * RATE) as usize]);
    let run = run_mixer(&[a, b, c]);
    // Frame indices (10 ms), allowing ~0.1 s of network and buffer delay.
    assert_eq!(run.speakers[150], Some(Ssrc(1)));
    assert!(
        run.levels[0][150] < 20,
        "talking level {}",
        run.levels[0][150]
    );
    // Opus turns digital silence into near-silence (about −110 dBov).
    assert!(
        run.levels[1][150] > 100,
        "silent participant has level {}",
        run.levels[1][150]
    );
    // Overlap 2.0–2.5 s: 2 is 6 dB louder but must hold the floor for the hold time first.
    assert_eq!(run.speakers[215], Some(Ssrc(1)));
    assert_eq!(run.speakers[300], Some(Ssrc(2)));
    // The cough does not steal the floor.
    assert!(
        run.speakers[340..400].iter().all(|s| *s == Some(Ssrc(2))),
        "{:?}",
        &run.speakers[340..400]
    );
    assert!(run.levels[2][345..365].iter().any(|&l| l < 10));
}
