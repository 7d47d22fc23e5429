//! `jitterbench`: the adaptive jitter buffer against a fixed-delay buffer on each emulator
//! profile, over several seeds, with the fixed delay calibrated on runs it is not scored on.
//!
//! For each profile (wired, wifi, mobile, drift at +100 ppm, drift-neg at −100 ppm) real
//! speech — the committed espeak-ng clip `benches/data/speech16k.wav` (19 s, 16 kHz,
//! upsampled to 48 kHz) looped to the run length — is Opus-encoded (20 ms, 32 kbit/s, in-band
//! FEC), sent through the seeded network emulator and played out through a [`JitterBuffer`]
//! on simulated time. Seed `s` drives the network; the signal is the same for every seed.
//! Three buffers are compared:
//!
//! - **adaptive**: the default [`Policy::Adaptive`] buffer (no per-profile tuning).
//! - **fixed**: a static buffer whose delay is configured per *profile*, as a deployment
//!   would: on the calibration seeds (default 101–110, disjoint from the evaluation seeds) it
//!   is the smallest delay, in 1 ms steps, whose pooled late loss is at most the adaptive
//!   buffer's pooled late loss on those same calibration runs. It is then scored on the
//!   evaluation seeds (default 1, 2, 3), which it was not tuned on.
//! - **oracle**: a static buffer tuned in hindsight on the very run it is scored on (smallest
//!   delay whose late loss on that run is at most the adaptive buffer's on that run). No
//!   causal buffer can know that delay in advance; it is shown as a bound, not as the
//!   opponent.
//!
//! Delay is per packet, from its arrival to the playout of its first sample; p50/p95 pool the
//! packets of all evaluation runs. Late loss is packets that arrived after their time had
//! been played (or concealed), as a share of packets sent.
//!
//! **Verdict rule** (printed per profile, computed from the pooled evaluation numbers):
//! late loss counts whole packets, so "equal late loss" means within one packet per
//! evaluated run (1 of the 15 000 packets of a 300 s run); the adaptive buffer PASSes when
//! its late loss is at most the calibrated fixed buffer's plus that one packet per run *and*
//! its p95 delay is lower by more than the 0.1 ms histogram resolution. It is a TIE when
//! the late loss condition holds and the p95 values are within 0.1 ms, FAIL otherwise. The
//! same rule is applied to each evaluation seed alone (the `seed verdicts` column).
//!
//! Reading it: both buffers decode on the same 10 ms pull grid. On a stationary path with
//! little jitter (wired) every buffer that loses nothing sits on the same grid point, so the
//! adaptive buffer and the fixed one tie there (the oracle ties as well); the adaptive buffer
//! adds less delay where the path changes under it (Wi-Fi stalls, mobile heavy tails, clock
//! drift), and pays with concealment while it waits out a stall, which the `conceal%` column
//! shows plainly.
//!
//! **Listening quality** (the `PESQ` column): every evaluation run of every buffer writes
//! its played-out audio to a WAV file, and so does the clean decode (every packet decoded in
//! order, no network). `benches/scripts/pesq_score.py` (the `pesq` package from PyPI, ITU-T
//! P.862 with the P.862.2 wideband mapping) cuts the clean decode at the clip boundaries,
//! finds each piece in the buffer's output and scores it; the column is the mean MOS-LQO over
//! the pieces (and over the seeds in the `all` rows). Without Python, `numpy` or `pesq` the
//! bench prints why and leaves PESQ and R empty (`make pesq-tools` installs them).
//!
//! **Conversational score** (the `R` column), ITU-T G.107 via
//! [`supernode_media::quality`]: `R = Ro − Is − Id − Ie,eff + A` at the G.107 defaults, with
//! - `Ie,eff` = Opus's `Ie` (0, an assumption, see `CodecImpairment::OPUS`) + the impairment
//!   the PESQ score shows, `R(4.64) − R(MOS-LQO)` with `R(·)` the inverse of G.107 Annex B
//!   (P.834's method; 4.64 is the clean decode's score against itself, P.862.2);
//! - `Id` (G.107 §7.3) at the mouth-to-ear delay `Ta` = the buffer's p95 delay + the path:
//!   the profile's base one-way delay + Opus's 26.5 ms algorithmic delay (RFC 6716 §2).
//!
//! **R verdict**: PASS when the adaptive buffer's R exceeds the fixed buffer's by more than
//! 0.1 and its PESQ is at most 0.1 below the fixed buffer's; TIE when the R values are within
//! 0.1 and PESQ holds; FAIL otherwise.
//!
//! Usage: `jitterbench [--seconds N] [--seeds 1,2,3] [--calib-seeds 101-110]
//! [--profiles wired,mobile] [--threads T] [--quantile Q] [--forget F] [--stall-budget B]
//! [--stall-window-ms W] [--no-pesq]
//! [--keep-wav]`.
//! Runs on simulated time with `T` threads (default: available cores); the default run takes
//! about two minutes of CPU for the buffers and about as much again for PESQ (45 runs of
//! 15 pieces). Calibration and oracle searches run the fixed buffer with a
//! timing-only decoder (the fixed buffer never time-scales, so its late loss does not depend
//! on the decoded audio; the bench checks this on every scored run); the scored runs use
//! Opus.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_benches::{pesq, speech, wav};
use supernode_media::codec::CodecError;
use supernode_media::codec::opus::{OpusConfig, OpusDecoder};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::{encode_rtp, play_through};
use supernode_media::jitter::{
    AudioDecoder, DelayConfig, DelayHistogram, JitterBuffer, JitterConfig, JitterStats, Policy,
};
use supernode_media::net::{NetEmulator, NetProfile};
use supernode_media::packet::rtp::RtpPacket;
use supernode_media::payload::opus as opus_payload;
use supernode_media::quality::{CodecImpairment, EModel, OPUS_DELAY_MS};

/// Largest fixed delay searched, ms.
const MAX_FIXED_MS: u64 = 2000;
/// Resolution of the delay histogram, ms: p95 values closer than this are equal.
const DELAY_RESOLUTION_MS: f64 = 0.1;
/// Conversational ratings closer than this are equal.
const R_RESOLUTION: f64 = 0.1;
/// How much lower than the fixed buffer's the adaptive buffer's PESQ may be.
const PESQ_TOLERANCE: f64 = 0.1;

/// A decoder that produces silence of the right length: enough for a fixed buffer, whose
/// decisions depend only on timestamps and arrival times.
struct TimingOnly;

impl AudioDecoder for TimingOnly {
    fn sample_rate(&self) -> u32 {
        48_000
    }
    fn channel_count(&self) -> usize {
        1
    }
    fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        opus_payload::duration_48k(payload).ok().map(|d| d as usize)
    }
    fn has_fec(&self, payload: &[u8]) -> bool {
        opus_payload::has_fec(payload)
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let n = self
            .packet_samples(payload)
            .filter(|&n| n <= out.len())
            .ok_or(CodecError::InvalidConfig("packet"))?;
        out[..n].fill(0);
        Ok(n)
    }
    fn decode_fec(&mut self, _next: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        out.fill(0);
        Ok(out.len())
    }
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        out.fill(0);
        Ok(out.len())
    }
}

/// One run's outcome.
struct Run {
    stats: JitterStats,
    delays: DelayHistogram,
}

/// Plays `datagrams` through `profile` (seeded by `seed`) into a buffer of `policy`; when
/// `capture` is given, the played-out audio (48 kHz mono, from the first pull) is written
/// there as a WAV file.
fn play<D: AudioDecoder>(
    dec: D,
    datagrams: &[Bytes],
    profile: NetProfile,
    seed: u64,
    policy: Policy,
    capture: Option<&Path>,
) -> Run {
    let mut jb = JitterBuffer::new(
        dec,
        JitterConfig {
            policy,
            ..Default::default()
        },
    )
    .expect("jitter buffer");
    let mut net = NetEmulator::new(profile, seed);
    let mut pcm = Vec::new();
    play_through(
        datagrams,
        &mut net,
        &mut jb,
        Instant::now(),
        Duration::from_secs(2),
        |_, out, _| {
            if capture.is_some() {
                pcm.extend_from_slice(out);
            }
        },
    );
    if let Some(path) = capture {
        wav::write(path, 48_000, &pcm).expect("writing the played-out audio");
    }
    Run {
        stats: jb.stats(),
        delays: jb.delays().clone(),
    }
}

fn run_opus(
    datagrams: &[Bytes],
    profile: NetProfile,
    seed: u64,
    policy: Policy,
    capture: Option<&Path>,
) -> Run {
    let cfg = OpusConfig::default();
    let dec = OpusDecoder::new(48_000, cfg.channels).expect("decoder");
    play(dec, datagrams, profile, seed, policy, capture)
}

/// The clean decode: every packet decoded in order, no network, no buffer.
fn clean_decode(datagrams: &[Bytes]) -> Vec<i16> {
    let cfg = OpusConfig::default();
    let mut dec = OpusDecoder::new(48_000, cfg.channels).expect("decoder");
    let mut out = Vec::with_capacity(datagrams.len() * 960);
    let mut frame = vec![0i16; 5760];
    for d in datagrams {
        let pkt = RtpPacket::parse(d).expect("our own RTP");
        let n = dec.decode(pkt.payload(), &mut frame).expect("clean decode");
        out.extend_from_slice(&frame[..n]);
    }
    out
}

/// The conversational rating of one buffer on one profile (module docs, "Conversational
/// score"): `None` without a PESQ score.
fn conversational_r(pesq: Option<f64>, p95_ms: f64, path_ms: f64) -> Option<f64> {
    let ie = CodecImpairment::OPUS.ie + EModel::ie_from_listening(pesq::WB_MAX_MOS, pesq?);
    Some(
        EModel::new(CodecImpairment::OPUS)
            .with_delay_ms(p95_ms + path_ms)
            .with_measured_impairment(ie)
            .r(),
    )
}

/// The fixed part of the mouth-to-ear delay on `profile`, ms: Opus's algorithmic delay plus
/// the path's base one-way delay.
fn path_ms(profile: &NetProfile) -> f64 {
    OPUS_DELAY_MS + profile.base_delay.as_secs_f64() * 1000.0
}

/// Late and expected packets of a fixed buffer of `ms`, timing only.
fn fixed_late(datagrams: &[Bytes], profile: NetProfile, seed: u64, ms: u64) -> (u64, u64) {
    let policy = Policy::Fixed(Duration::from_millis(ms));
    let r = play(TimingOnly, datagrams, profile, seed, policy, None);
    (r.stats.late, r.stats.expected)
}

/// Smallest delay in `0..=MAX_FIXED_MS` ms for which `ok(delay)` holds (`ok` must be
/// monotone: a fixed buffer's late loss never grows with its delay).
fn smallest_delay(ok: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0u64, MAX_FIXED_MS);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if ok(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    hi
}

/// Runs `f` over `items` on `threads` threads, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().expect("slot") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().expect("slot").expect("result"))
        .collect()
}

/// Several runs pooled.
struct Pooled {
    late: u64,
    expected: u64,
    concealed: u64,
    played: u64,
    delays: DelayHistogram,
    ops: [u64; 5],
}

impl Pooled {
    fn new<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Self {
        let mut p = Pooled {
            late: 0,
            expected: 0,
            concealed: 0,
            played: 0,
            delays: DelayHistogram::default(),
            ops: [0; 5],
        };
        for r in runs {
            let s = &r.stats;
            p.late += s.late;
            p.expected += s.expected;
            p.concealed += s.samples_concealed;
            p.played += s.samples_output.saturating_sub(s.ops.buffering * 480);
            p.delays.merge(&r.delays);
            for (a, b) in p.ops.iter_mut().zip([
                s.ops.expand,
                s.ops.fec,
                s.ops.accelerate,
                s.ops.preemptive_expand,
                s.ops.merge,
            ]) {
                *a += b;
            }
        }
        p
    }
    fn late_pct(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.late as f64 * 100.0 / self.expected as f64
        }
    }
    fn conceal_pct(&self) -> f64 {
        if self.played == 0 {
            0.0
        } else {
            self.concealed as f64 * 100.0 / self.played as f64
        }
    }
    fn q_ms(&self, q: f64) -> f64 {
        self.delays
            .quantile(q)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

/// The verdict rule of the module docs. `runs` is how many evaluation runs are pooled.
fn verdict(a: &Pooled, f: &Pooled, runs: u64) -> &'static str {
    // The same runs are pooled on both sides, so packet counts compare directly.
    let late_ok = a.late <= f.late + runs;
    let (pa, pf) = (a.q_ms(0.95), f.q_ms(0.95));
    if !late_ok {
        "FAIL (more late loss)"
    } else if pa < pf - DELAY_RESOLUTION_MS - 1e-9 {
        "PASS"
    } else if (pa - pf).abs() <= DELAY_RESOLUTION_MS + 1e-9 {
        "TIE (same p95)"
    } else {
        "FAIL (more delay)"
    }
}

/// The conversational verdict of the module docs: adaptive R and PESQ against the fixed
/// buffer's.
fn r_verdict(ra: Option<f64>, rf: Option<f64>, qa: Option<f64>, qf: Option<f64>) -> &'static str {
    let (Some(ra), Some(rf), Some(qa), Some(qf)) = (ra, rf, qa, qf) else {
        return "n/a (no PESQ)";
    };
    if qa < qf - PESQ_TOLERANCE - 1e-9 {
        "FAIL (lower PESQ)"
    } else if ra > rf + R_RESOLUTION {
        "PASS"
    } else if (ra - rf).abs() <= R_RESOLUTION {
        "TIE (same R)"
    } else {
        "FAIL (lower R)"
    }
}

fn parse_seeds(v: &str) -> Option<Vec<u64>> {
    let mut out = Vec::new();
    for part in v.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    (!out.is_empty()).then_some(out)
}

struct Args {
    seconds: f64,
    seeds: Vec<u64>,
    calib: Vec<u64>,
    profiles: Option<Vec<String>>,
    threads: usize,
    delay: DelayConfig,
    pesq: bool,
    keep_wav: bool,
}

const USAGE: &str = "jitterbench [--seconds N] [--seeds 1,2,3] [--calib-seeds 101-110] \
[--profiles wired,wifi,mobile,drift,drift-neg] [--threads T] [--quantile Q] [--forget F] \
[--stall-budget B] [--stall-window-ms W] [--no-pesq] [--keep-wav]";

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 300.0,
        seeds: vec![1, 2, 3],
        calib: (101..=110).collect(),
        profiles: None,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        delay: DelayConfig::default(),
        pesq: true,
        keep_wav: false,
    };
    let mut it = std::env::args().skip(1);
    let bad = |what: &str| -> ! {
        eprintln!("bad or missing value for {what}\nusage: {USAGE}");
        std::process::exit(2)
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| bad(&arg));
        match arg.as_str() {
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| bad("--seconds")),
            "--seeds" | "--seed" => a.seeds = parse_seeds(&val()).unwrap_or_else(|| bad("--seeds")),
            "--calib-seeds" => {
                a.calib = parse_seeds(&val()).unwrap_or_else(|| bad("--calib-seeds"))
            }
            "--profiles" => a.profiles = Some(val().split(',').map(str::to_owned).collect()),
            "--threads" => a.threads = val().parse().unwrap_or_else(|_| bad("--threads")),
            "--quantile" => a.delay.quantile = val().parse().unwrap_or_else(|_| bad("--quantile")),
            "--forget" => a.delay.forget = val().parse().unwrap_or_else(|_| bad("--forget")),
            "--stall-budget" => {
                a.delay.stall_budget = val().parse().unwrap_or_else(|_| bad("--stall-budget"))
            }
            "--stall-window-ms" => {
                a.delay.stall_window_ms = val().parse().unwrap_or_else(|_| bad("--stall-window-ms"))
            }
            "--no-pesq" => a.pesq = false,
            "--keep-wav" => a.keep_wav = true,
            "-h" | "--help" => {
                println!(
                    "{USAGE}\n  adaptive vs calibrated fixed jitter buffer per emulator profile\n  \
                     --seeds: evaluation seeds; --calib-seeds: seeds the fixed delay is tuned on\n  \
                     --quantile / --forget: the adaptive buffer's tuning (default {} / {})\n  \
                     --stall-budget / --stall-window-ms: concealment allowed to the stalls \
                     remembered over the window, as a share of it (default {} / {})\n  \
                     --no-pesq: skip the listening-quality scoring; --keep-wav: keep the WAVs",
                    a.delay.quantile, a.delay.forget, a.delay.stall_budget, a.delay.stall_window_ms
                );
                std::process::exit(0);
            }
            other => bad(other),
        }
    }
    if a.seeds.iter().any(|s| a.calib.contains(s)) {
        eprintln!("evaluation and calibration seeds must differ");
        std::process::exit(2);
    }
    a
}

fn main() {
    let args = parse_args();
    let all_profiles = [
        ("wired", NetProfile::wired()),
        ("wifi", NetProfile::wifi()),
        ("mobile", NetProfile::mobile()),
        ("drift", NetProfile::drift()),
        ("drift-neg", NetProfile::drift().with_drift_ppm(-100.0)),
    ];
    let profiles: Vec<(&str, NetProfile)> = all_profiles
        .into_iter()
        .filter(|(n, _)| {
            args.profiles
                .as_ref()
                .is_none_or(|p| p.iter().any(|x| x == n))
        })
        .collect();
    let threads = args.threads;
    let policy = Policy::Adaptive(args.delay);

    // Listening quality needs Python with numpy and pesq; without them the bench says so and
    // leaves the PESQ and R columns empty.
    let python = if args.pesq {
        match pesq::find_python() {
            Ok(p) => Some(p),
            Err(e) => {
                println!("PESQ columns skipped: {e}");
                None
            }
        }
    } else {
        println!("PESQ columns skipped: --no-pesq");
        None
    };
    let wav_dir: Option<PathBuf> = python.as_ref().map(|_| {
        let d = std::env::temp_dir().join(format!("jitterbench-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("creating the WAV directory");
        d
    });
    let wav_path = |name: &str, seed: u64, buffer: &str| {
        wav_dir
            .as_ref()
            .map(|d| d.join(format!("{name}-{seed}-{buffer}.wav")))
    };

    // The signal: the committed speech clip, looped to the run length; the same for every
    // seed (the seed drives the network).
    let clip = speech::clip_48k().unwrap_or_else(|e| {
        eprintln!("jitterbench: the speech clip: {e}");
        std::process::exit(1)
    });
    let samples = (args.seconds * 48_000.0) as usize / 960 * 960;
    let pcm = speech::looped(&clip, samples);
    let encoded = encode_rtp(&OpusConfig::default(), &pcm, Ssrc(0x5eed)).expect("encode");
    let data = |_s: u64| &encoded[..];
    let reference = wav_dir.as_ref().map(|d| {
        let path = d.join("reference.wav");
        wav::write(&path, 48_000, &clean_decode(&encoded)).expect("writing the reference");
        path
    });
    let mut seeds: Vec<u64> = args.calib.iter().chain(&args.seeds).copied().collect();
    seeds.sort_unstable();
    seeds.dedup();

    // 1. The adaptive buffer on every (profile, seed); evaluation runs are recorded.
    let jobs: Vec<(usize, u64)> = (0..profiles.len())
        .flat_map(|p| seeds.iter().map(move |&s| (p, s)))
        .collect();
    let adaptive = par_map(&jobs, threads, |&(p, s)| {
        let capture = if args.seeds.contains(&s) {
            wav_path(profiles[p].0, s, "adaptive")
        } else {
            None
        };
        run_opus(data(s), profiles[p].1, s, policy, capture.as_deref())
    });
    let adaptive_run = |p: usize, s: u64| {
        &adaptive[jobs
            .iter()
            .position(|&j| j == (p, s))
            .expect("adaptive run")]
    };

    // 2. The fixed delay per profile, from the calibration seeds.
    let pidx: Vec<usize> = (0..profiles.len()).collect();
    let calibrated = par_map(&pidx, threads, |&p| {
        let a = Pooled::new(args.calib.iter().map(|&s| adaptive_run(p, s)));
        let pooled_late = |ms: u64| {
            args.calib.iter().fold((0u64, 0u64), |(l, e), &s| {
                let (dl, de) = fixed_late(data(s), profiles[p].1, s, ms);
                (l + dl, e + de)
            })
        };
        // late_f / exp_f <= late_a / exp_a, in integers.
        let ok = |ms: u64| {
            let (l, e) = pooled_late(ms);
            l as u128 * a.expected as u128 <= a.late as u128 * e as u128
        };
        let ms = smallest_delay(ok);
        let below = ms.checked_sub(1).map(&pooled_late);
        (ms, a, pooled_late(ms), below)
    });

    // 3. The hindsight oracle per (profile, evaluation seed).
    let eval_jobs: Vec<(usize, u64)> = (0..profiles.len())
        .flat_map(|p| args.seeds.iter().map(move |&s| (p, s)))
        .collect();
    let oracle_ms = par_map(&eval_jobs, threads, |&(p, s)| {
        let target = adaptive_run(p, s).stats.late;
        smallest_delay(|ms| fixed_late(data(s), profiles[p].1, s, ms).0 <= target)
    });

    // 4. Scored runs of both static buffers with Opus, checked against the timing-only runs.
    let scored_jobs: Vec<(usize, u64, u64, &str)> = eval_jobs
        .iter()
        .zip(&oracle_ms)
        .flat_map(|(&(p, s), &o)| [(p, s, calibrated[p].0, "fixed"), (p, s, o, "oracle")])
        .collect();
    let scored = par_map(&scored_jobs, threads, |&(p, s, ms, label)| {
        let capture = wav_path(profiles[p].0, s, label);
        let r = run_opus(
            data(s),
            profiles[p].1,
            s,
            Policy::Fixed(Duration::from_millis(ms)),
            capture.as_deref(),
        );
        let timing = fixed_late(data(s), profiles[p].1, s, ms);
        (r, timing)
    });
    for ((p, s, ms, _), (r, timing)) in scored_jobs.iter().zip(&scored) {
        if (r.stats.late, r.stats.expected) != *timing {
            println!(
                "WARNING: {} seed {s} fixed {ms} ms: Opus run late {} / {}, timing-only run {} / {}",
                profiles[*p].0, r.stats.late, r.stats.expected, timing.0, timing.1
            );
        }
    }

    // 5. PESQ of every recorded run against the clean decode.
    let mut pesq_scores: HashMap<String, pesq::PesqScore> = HashMap::new();
    if let (Some(py), Some(dir), Some(reference)) = (&python, &wav_dir, &reference) {
        let mut pjobs = Vec::new();
        for &(p, s) in &eval_jobs {
            for label in ["adaptive", "fixed", "oracle"] {
                let name = profiles[p].0;
                pjobs.push(pesq::PesqJob {
                    id: format!("{name}-{s}-{label}"),
                    reference: reference.clone(),
                    degraded: wav_path(name, s, label).expect("WAV path"),
                    chunk_samples: clip.len(),
                });
            }
        }
        match pesq::score(py, &pjobs, threads, dir) {
            Ok(m) => pesq_scores = m,
            Err(e) => println!("PESQ columns skipped: {e}"),
        }
        if args.keep_wav {
            println!("WAVs kept in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let pesq_of = |name: &str, s: u64, label: &str| {
        pesq_scores
            .get(&format!("{name}-{s}-{label}"))
            .and_then(|p| p.mos)
    };

    println!(
        "{} s of Opus speech (a {:.1} s espeak-ng clip looped; 20 ms, 32 kbit/s, FEC) per run; \
         evaluation seeds {:?}; fixed delay calibrated per profile on seeds {:?}",
        args.seconds,
        clip.len() as f64 / 48_000.0,
        args.seeds,
        args.calib
    );
    println!(
        "delay = packet arrival to playout (pooled over evaluation runs); late = packets that came \
         after their time was played"
    );
    println!(
        "fixed = smallest delay (1 ms steps) whose pooled late loss on the calibration seeds is <= \
         the adaptive's there; oracle = tuned in hindsight on the scored run itself (a bound)"
    );
    println!(
        "PESQ = P.862.2 wideband MOS-LQO against the clean decode (mean over clip-long pieces); \
         R = G.107 E-model with Ie from PESQ (P.834) and Id at Ta = p95 + path (base delay + \
         {OPUS_DELAY_MS} ms Opus)"
    );
    println!(
        "verdict: PASS if adaptive late <= fixed late + 1 packet per run and adaptive p95 < fixed \
         p95 - {DELAY_RESOLUTION_MS} ms; TIE if late holds and p95 within {DELAY_RESOLUTION_MS} ms; \
         else FAIL"
    );
    println!(
        "R verdict: PASS if adaptive R > fixed R + {R_RESOLUTION} and PESQ >= fixed PESQ - \
         {PESQ_TOLERANCE}; TIE if R within {R_RESOLUTION} and PESQ holds; else FAIL"
    );
    println!(
        "{:<10} {:<6} {:<9} {:>8} {:>7} {:>7} {:>7} {:>5} {:>8} {:>5} {:>5} {:>6} {:>5} {:>6} {:>7} {:>5}",
        "profile",
        "seed",
        "buffer",
        "fixed ms",
        "p50 ms",
        "p95 ms",
        "late %",
        "late",
        "conceal%",
        "PESQ",
        "R",
        "expand",
        "fec",
        "accel",
        "pexpand",
        "merge"
    );
    let opt =
        |v: Option<f64>, prec: usize| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.prec$}"));
    let row = |name: &str,
               seed: &str,
               label: &str,
               fixed: &str,
               p: &Pooled,
               pesq: Option<f64>,
               r: Option<f64>| {
        println!(
            "{:<10} {:<6} {:<9} {:>8} {:>7.1} {:>7.1} {:>7.3} {:>5} {:>8.3} {:>5} {:>5} {:>6} {:>5} {:>6} {:>7} {:>5}",
            name,
            seed,
            label,
            fixed,
            p.q_ms(0.5),
            p.q_ms(0.95),
            p.late_pct(),
            p.late,
            p.conceal_pct(),
            opt(pesq, 2),
            opt(r, 1),
            p.ops[0],
            p.ops[1],
            p.ops[2],
            p.ops[3],
            p.ops[4]
        );
    };
    let mean = |v: &[Option<f64>]| -> Option<f64> {
        let v: Option<Vec<f64>> = v.iter().copied().collect();
        v.filter(|v| !v.is_empty())
            .map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    let json_num = |v: Option<f64>, prec: usize| {
        v.map_or_else(|| "null".to_owned(), |x| format!("{x:.prec$}"))
    };
    let mut json = Vec::new();
    let mut verdicts = Vec::new();
    for (p, (name, profile)) in profiles.iter().enumerate() {
        let (fixed_ms, _, _, _) = &calibrated[p];
        let path = path_ms(profile);
        let mut seed_verdicts = Vec::new();
        let (mut runs_a, mut runs_f, mut runs_o) = (Vec::new(), Vec::new(), Vec::new());
        let (mut pesq_a, mut pesq_f, mut pesq_o) = (Vec::new(), Vec::new(), Vec::new());
        for &s in &args.seeds {
            let j = eval_jobs.iter().position(|&e| e == (p, s)).expect("job") * 2;
            let a = adaptive_run(p, s);
            let (f, _) = &scored[j];
            let (o, _) = &scored[j + 1];
            let (pa, pf, po) = (Pooled::new([a]), Pooled::new([f]), Pooled::new([o]));
            let (qa, qf, qo) = (
                pesq_of(name, s, "adaptive"),
                pesq_of(name, s, "fixed"),
                pesq_of(name, s, "oracle"),
            );
            let seed = s.to_string();
            let r = |q: Option<f64>, pool: &Pooled| conversational_r(q, pool.q_ms(0.95), path);
            row(name, &seed, "adaptive", "-", &pa, qa, r(qa, &pa));
            row(
                name,
                &seed,
                "fixed",
                &fixed_ms.to_string(),
                &pf,
                qf,
                r(qf, &pf),
            );
            row(
                name,
                &seed,
                "oracle",
                &scored_jobs[j + 1].2.to_string(),
                &po,
                qo,
                r(qo, &po),
            );
            seed_verdicts.push(format!("{s}:{}", verdict(&pa, &pf, 1)));
            runs_a.push(a);
            runs_f.push(f);
            runs_o.push(o);
            pesq_a.push(qa);
            pesq_f.push(qf);
            pesq_o.push(qo);
        }
        let n = args.seeds.len() as u64;
        let (pa, pf, po) = (
            Pooled::new(runs_a),
            Pooled::new(runs_f),
            Pooled::new(runs_o),
        );
        let (qa, qf, qo) = (mean(&pesq_a), mean(&pesq_f), mean(&pesq_o));
        let (ra, rf, ro) = (
            conversational_r(qa, pa.q_ms(0.95), path),
            conversational_r(qf, pf.q_ms(0.95), path),
            conversational_r(qo, po.q_ms(0.95), path),
        );
        if n > 1 {
            row(name, "all", "adaptive", "-", &pa, qa, ra);
            row(name, "all", "fixed", &fixed_ms.to_string(), &pf, qf, rf);
            row(name, "all", "oracle", "per run", &po, qo, ro);
        }
        let v = verdict(&pa, &pf, n);
        let vo = verdict(&pa, &po, n);
        let vr = r_verdict(ra, rf, qa, qf);
        verdicts.push(format!(
            "verdict {name:<10} {v:<22} adaptive p95 {:.1} ms late {:.3} % vs fixed {} ms: p95 {:.1} ms late {:.3} %; seed verdicts [{}]; vs oracle: {vo}",
            pa.q_ms(0.95),
            pa.late_pct(),
            fixed_ms,
            pf.q_ms(0.95),
            pf.late_pct(),
            seed_verdicts.join(", ")
        ));
        verdicts.push(format!(
            "R verdict {name:<8} {vr:<22} adaptive R {} PESQ {} (Ta {:.1} ms) vs fixed R {} PESQ {} (Ta {:.1} ms); oracle R {} PESQ {}",
            opt(ra, 1),
            opt(qa, 2),
            pa.q_ms(0.95) + path,
            opt(rf, 1),
            opt(qf, 2),
            pf.q_ms(0.95) + path,
            opt(ro, 1),
            opt(qo, 2),
        ));
        json.push(format!(
            "{{\"profile\": \"{name}\", \"adaptive_p50_ms\": {:.1}, \"fixed_p50_ms\": {:.1}, \"adaptive_p95_ms\": {:.1}, \"fixed_p95_ms\": {:.1}, \"adaptive_late_pct\": {:.3}, \"fixed_late_pct\": {:.3}, \"fixed_ms\": {fixed_ms}, \"oracle_p95_ms\": {:.1}, \"oracle_late_pct\": {:.3}, \"adaptive_conceal_pct\": {:.3}, \"fixed_conceal_pct\": {:.3}, \"oracle_conceal_pct\": {:.3}, \"adaptive_pesq\": {}, \"fixed_pesq\": {}, \"oracle_pesq\": {}, \"adaptive_r\": {}, \"fixed_r\": {}, \"oracle_r\": {}, \"path_ms\": {path:.1}, \"seeds\": {:?}, \"verdict\": \"{}\", \"r_verdict\": \"{}\"}}",
            pa.q_ms(0.5),
            pf.q_ms(0.5),
            pa.q_ms(0.95),
            pf.q_ms(0.95),
            pa.late_pct(),
            pf.late_pct(),
            po.q_ms(0.95),
            po.late_pct(),
            pa.conceal_pct(),
            pf.conceal_pct(),
            po.conceal_pct(),
            json_num(qa, 3),
            json_num(qf, 3),
            json_num(qo, 3),
            json_num(ra, 2),
            json_num(rf, 2),
            json_num(ro, 2),
            args.seeds,
            v.split(' ').next().unwrap_or(v),
            vr.split(' ').next().unwrap_or(vr)
        ));
    }
    println!("calibration (pooled over the calibration seeds):");
    for (p, (name, _)) in profiles.iter().enumerate() {
        let (ms, a, at, below) = &calibrated[p];
        let pct = |(l, e): (u64, u64)| {
            if e == 0 {
                0.0
            } else {
                l as f64 * 100.0 / e as f64
            }
        };
        let below = below.map_or(String::from("-"), |b| {
            format!("{} ms: {:.4} % ({} late)", ms - 1, pct(b), b.0)
        });
        println!(
            "  {name:<10} adaptive late {:.4} % ({} of {}, conceal {:.3} %, p95 {:.1} ms); fixed {ms} ms: {:.4} % ({} late); one step lower, {below}",
            a.late_pct(),
            a.late,
            a.expected,
            a.conceal_pct(),
            a.q_ms(0.95),
            pct(*at),
            at.0
        );
    }
    for v in verdicts {
        println!("{v}");
    }
    for j in json {
        println!("{j}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::jitter::sim::SpeechSynth;

    fn pooled(p95_ms: u64, late: u64) -> Pooled {
        let mut delays = DelayHistogram::default();
        for _ in 0..100 {
            delays.add(Duration::from_millis(p95_ms));
        }
        Pooled {
            late,
            expected: 15_000,
            concealed: 0,
            played: 1,
            delays,
            ops: [0; 5],
        }
    }

    #[test]
    fn verdict_follows_the_printed_rule() {
        assert_eq!(verdict(&pooled(100, 0), &pooled(200, 0), 1), "PASS");
        // One packet more per run is still "equal" late loss; two are not.
        assert_eq!(verdict(&pooled(100, 3), &pooled(200, 1), 2), "PASS");
        assert_eq!(
            verdict(&pooled(100, 2), &pooled(200, 0), 1),
            "FAIL (more late loss)"
        );
        assert_eq!(verdict(&pooled(12, 0), &pooled(12, 0), 1), "TIE (same p95)");
        assert_eq!(
            verdict(&pooled(40, 0), &pooled(30, 0), 1),
            "FAIL (more delay)"
        );
    }

    #[test]
    fn r_verdict_follows_the_printed_rule() {
        let v = |ra, rf, qa, qf| r_verdict(Some(ra), Some(rf), Some(qa), Some(qf));
        assert_eq!(v(90.0, 88.0, 4.0, 4.05), "PASS");
        assert_eq!(v(90.0, 90.05, 4.0, 4.0), "TIE (same R)");
        assert_eq!(v(89.0, 90.0, 4.2, 4.0), "FAIL (lower R)");
        assert_eq!(v(95.0, 90.0, 3.8, 4.0), "FAIL (lower PESQ)");
        assert_eq!(r_verdict(Some(90.0), None, None, None), "n/a (no PESQ)");
    }

    #[test]
    fn conversational_r_is_the_e_model_by_hand() {
        // PESQ 4.024 is R 80 on the Annex B curve: Ie = 100 − 80 = 20 against the wideband top
        // score. Ta = 113.5 ms p95 + 36.5 ms path = 150 ms: Id = 2.81 + 0.84 + 0.16.
        let r = conversational_r(Some(4.024), 113.5, 36.5).unwrap();
        assert!((r - (93.36 - 3.82 - 20.0)).abs() < 0.05, "{r}");
        assert!(conversational_r(None, 100.0, 30.0).is_none());
        // Better listening quality or less delay never lowers R.
        assert!(conversational_r(Some(4.3), 113.5, 36.5).unwrap() > r);
        assert!(conversational_r(Some(4.024), 80.0, 36.5).unwrap() > r);
        assert_eq!(path_ms(&NetProfile::wired()), 26.5 + 20.0);
    }

    #[test]
    fn seed_lists_and_ranges_parse() {
        assert_eq!(parse_seeds("1,2,3"), Some(vec![1, 2, 3]));
        assert_eq!(parse_seeds("101-103,7"), Some(vec![101, 102, 103, 7]));
        assert_eq!(parse_seeds("x"), None);
    }

    #[test]
    fn smallest_delay_finds_the_edge_of_a_monotone_predicate() {
        assert_eq!(smallest_delay(|ms| ms >= 389), 389);
        assert_eq!(smallest_delay(|_| true), 0);
        assert_eq!(smallest_delay(|_| false), MAX_FIXED_MS);
    }

    #[test]
    fn timing_only_decoder_gives_the_fixed_buffer_the_same_late_loss_as_opus() {
        // The calibration shortcut: a fixed buffer never time-scales, so its late loss
        // depends on timestamps and arrivals only, not on the decoded audio.
        let pcm = SpeechSynth::generate(7, 20.0);
        let dg = encode_rtp(&OpusConfig::default(), &pcm, Ssrc(1)).unwrap();
        for ms in [60, 120] {
            let policy = Policy::Fixed(Duration::from_millis(ms));
            let opus = run_opus(&dg, NetProfile::mobile(), 7, policy, None);
            let timing = fixed_late(&dg, NetProfile::mobile(), 7, ms);
            assert!(opus.stats.late > 0, "the test needs late packets");
            assert_eq!((opus.stats.late, opus.stats.expected), timing);
        }
    }
}
