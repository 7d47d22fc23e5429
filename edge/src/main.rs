//! The `edge` CLI: place or answer a call through a supernode, or bridge plain relay legs,
//! sending real media and printing a call report. See the `supernode_edge` crate docs.
//!
//! Exit status: 0 when the call worked, 1 when media failed (nothing received or decoded),
//! 2 when signaling failed (login, busy, unavailable, answered elsewhere, …), 3 on bad
//! arguments or files.
#![forbid(unsafe_code)]

use std::io::{BufWriter, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
use supernode_edge::engine::{
    AudioSource, CallOutcome, DEFAULT_AUDIO_PT, DEFAULT_VIDEO_PT, EngineConfig, VideoSink,
    VideoSource,
};
use supernode_edge::report::CallReport;
use supernode_edge::runner::{MediaOptions, run_media};
use supernode_edge::srtp::{SrtpKey, SrtpKeyB64};
use supernode_edge::y4m::Y4mWriter;
use supernode_proto::ids::AccountId;
use supernode_proto::protocol::MediaKind;

/// The supernode edge client.
#[derive(Parser, Debug)]
#[command(name = "edge", version, about, long_about = None)]
struct Cli {
    /// The supernode's HTTP address (its WebSocket is `/v1/ws` there).
    #[arg(
        long,
        env = "EDGE_SERVER",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Login credential (from `POST /v1/accounts/{id}/credentials`).
    #[arg(long, env = "EDGE_TOKEN", global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Call an account, run media for `--duration`, hang up.
    Call {
        /// The callee's account id.
        account_id: String,
        /// How long to let it ring.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ring_timeout: Duration,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Wait for a call, answer it, run media until the caller hangs up (or `--duration`).
    Answer {
        /// Accept the first incoming call without asking.
        #[arg(long)]
        auto_accept: bool,
        /// How long to wait for a call.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        wait: Duration,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Take part in a conference (group call): create it and invite accounts, or wait for
    /// an invite and join; send a tone (or the usual test audio), record the mix received,
    /// report (with `--report-json`: one JSON object with the tone levels measured).
    Conference {
        /// Create the conference (else: wait for an invite and join it).
        #[arg(long)]
        create: bool,
        /// An account to invite (the creator; repeat for more).
        #[arg(long)]
        invite: Vec<String>,
        /// How long a joiner waits for an invite.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        wait: Duration,
        /// Send a sine of this frequency (Hz) instead of the synthetic speech.
        #[arg(long)]
        tone: Option<u32>,
        /// Measure the received mix at this frequency (Hz; repeat for more).
        #[arg(long)]
        measure: Vec<u32>,
        /// Received audio skipped before measuring.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        skip: Duration,
        /// Measure the tones in Hann-windowed pieces this long, powers averaged (robust to
        /// phase jumps); 0s: one filter over all of the measured audio.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        measure_window: Duration,
        /// The test pattern variant this participant sends (0 to 7; each participant its
        /// own, so that receivers tell the videos apart).
        #[arg(long, default_value_t = 0)]
        pattern: u8,
        /// A joiner waits this long after the invite before it joins.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        join_delay: Duration,
        /// Keep the timing marks (`--mark-period-ms`): sent in the synthetic speech (without
        /// `--tone`) and looked for in the received mix, whose report then has
        /// `mouth_to_ear_ms` through the mixer. Meaningful when one participant sends marks
        /// and the others tones away from 1 kHz (a mark needs near silence before it).
        #[arg(long)]
        marks: bool,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Send and receive on given relay legs without signaling (plain RTP or SRTP with keys
    /// from flags), e.g. legs of a relay REST session bridged to GStreamer.
    Media {
        /// Local address to bind (port 0: any; the bound address is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        local: SocketAddr,
        /// Where audio goes (and comes from).
        #[arg(long)]
        remote_audio: SocketAddr,
        /// Where video goes (and comes from); defaults to the audio address.
        #[arg(long)]
        remote_video: Option<SocketAddr>,
        /// Plain RTP (no SRTP). The default when no key is given.
        #[arg(long, conflicts_with = "srtp_key")]
        no_srtp: bool,
        /// SRTP master key‖salt, base64 (both directions).
        #[arg(long)]
        srtp_key: Option<String>,
        /// SRTP profile.
        #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
        srtp_profile: String,
        #[command(flatten)]
        media: MediaArgs,
    },
}

#[derive(Args, Debug, Clone)]
struct MediaArgs {
    /// How long media runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Send this WAV file (48 kHz, 16-bit) instead of the synthetic speech.
    #[arg(long)]
    audio_in: Option<PathBuf>,
    /// Send this Y4M file (4:2:0) instead of the test pattern.
    #[arg(long)]
    video_in: Option<PathBuf>,
    /// Write the played-out audio here (WAV, 48 kHz mono).
    #[arg(long)]
    audio_out: Option<PathBuf>,
    /// Write the decoded video here (Y4M).
    #[arg(long)]
    video_out: Option<PathBuf>,
    /// Print the report as one JSON object on stdout (the human report goes to stderr).
    #[arg(long)]
    report_json: bool,
    /// Audio only: send and expect no video.
    #[arg(long)]
    no_video: bool,
    /// Seed of the synthetic speech this edge sends.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seed of the synthetic speech the peer sends (for `audio.similarity`).
    #[arg(long, default_value_t = 1)]
    peer_seed: u64,
    /// The peer sends something other than the synthetic speech and test pattern: report
    /// no similarity or PSNR.
    #[arg(long)]
    no_reference: bool,
    /// Test pattern width.
    #[arg(long, default_value_t = 640)]
    width: usize,
    /// Test pattern height.
    #[arg(long, default_value_t = 360)]
    height: usize,
    /// H.264 bitrate, bit/s.
    #[arg(long, default_value_t = 800_000)]
    video_bitrate: u32,
    /// A keyframe every this many pictures (0: only at the start and on PLI/FIR).
    #[arg(long, default_value_t = 0)]
    keyframe_interval: u32,
    /// Timing-mark period in milliseconds (mouth-to-ear must stay below it).
    #[arg(long, default_value_t = 2_000)]
    mark_period_ms: u32,
    /// Opus payload type.
    #[arg(long, default_value_t = DEFAULT_AUDIO_PT)]
    audio_pt: u8,
    /// H.264 payload type.
    #[arg(long, default_value_t = DEFAULT_VIDEO_PT)]
    video_pt: u8,
    /// Local UDP address for media in `call`/`answer`.
    #[arg(long, default_value = "0.0.0.0:0")]
    media_bind: SocketAddr,
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(v) = s.strip_suffix("ms") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60.0)
    } else {
        (s, 1.0)
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (try 10s, 500ms, 2m)"))?;
    if !(0.0..=86_400.0).contains(&(x * mult)) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(x * mult))
}

struct Y4mSink(Y4mWriter<BufWriter<std::fs::File>>);

impl VideoSink for Y4mSink {
    fn frame(&mut self, picture: &supernode_media::codec::I420Frame, _index: u64) {
        let _ = self.0.write_frame(picture);
    }
}

enum Failure {
    Media,
    Signaling,
    Usage,
}

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(Failure::Media) => 1,
        Err(Failure::Signaling) => 2,
        Err(Failure::Usage) => 3,
    };
    std::process::exit(code);
}

fn progress(msg: &str) {
    eprintln!("edge: {msg}");
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Media {
            local,
            remote_audio,
            remote_video,
            no_srtp,
            srtp_key,
            srtp_profile,
            media,
        } => {
            let srtp = match (no_srtp, srtp_key) {
                (false, Some(k)) => Some(SrtpKey::from_b64(&srtp_profile, &k).map_err(|e| {
                    progress(&e.to_string());
                    Failure::Usage
                })?),
                _ => None,
            };
            let socket = UdpSocket::bind(local).map_err(|e| {
                progress(&format!("cannot bind {local}: {e}"));
                Failure::Usage
            })?;
            if let Ok(a) = socket.local_addr() {
                progress(&format!("media on {a}"));
            }
            let video_remote = remote_video.unwrap_or(remote_audio);
            let cfg = engine_config(&media, remote_audio, video_remote, srtp)?;
            let outcome = run_engine(socket, cfg, &media)?;
            finish(outcome.report, &media, outcome.audio)
        }
        Command::Call {
            account_id,
            ring_timeout,
            media,
        } => {
            let token = need_token(cli.token)?;
            let to = AccountId::parse(&account_id).ok_or_else(|| {
                progress(&format!("{account_id:?} is not an account id"));
                Failure::Usage
            })?;
            let kind = if media.no_video {
                MediaKind::Audio
            } else {
                MediaKind::AudioVideo
            };
            signaled(
                &cli.server,
                &token,
                &media,
                Role::Call {
                    to,
                    media: kind,
                    ring_timeout,
                },
            )
        }
        Command::Conference {
            create,
            invite,
            wait,
            tone,
            measure,
            skip,
            measure_window,
            pattern,
            join_delay,
            marks,
            media,
        } => {
            let token = need_token(cli.token)?;
            let invite = invite
                .iter()
                .map(|a| {
                    AccountId::parse(a).ok_or_else(|| {
                        progress(&format!("{a:?} is not an account id"));
                        Failure::Usage
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
            let mut engine = supernode_edge::conference::engine_defaults(
                engine_config(&media, unspecified, unspecified, None)?,
                pattern,
            );
            if marks {
                engine.mark_period_ms = media.mark_period_ms;
            }
            let setup = supernode_edge::conference::ConferenceSetup {
                server: cli.server.clone(),
                token,
                create,
                invite,
                wait,
                duration: media.duration,
                tone_hz: tone,
                engine,
                media_bind: media.media_bind,
                measure,
                skip,
                measure_window,
                join_delay,
            };
            conference(setup, &media)
        }
        Command::Answer {
            auto_accept,
            wait,
            media,
        } => {
            let token = need_token(cli.token)?;
            let decide: Option<supernode_edge::call::Decide> = if auto_accept {
                None
            } else {
                Some(Box::new(|_, _| ask_accept()))
            };
            signaled(&cli.server, &token, &media, Role::Answer { wait, decide })
        }
    }
}

/// Runs `edge conference` in a fresh runtime and prints its outcome.
fn conference(
    setup: supernode_edge::conference::ConferenceSetup,
    media: &MediaArgs,
) -> Result<(), Failure> {
    use supernode_edge::conference::{ConferenceError, run_conference};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            progress(&format!("runtime: {e}"));
            Failure::Usage
        })?;
    match rt.block_on(run_conference(setup, progress)) {
        Ok(out) => {
            if let Some(p) = &media.audio_out
                && let Err(e) = supernode_edge::wav::write_wav(p, &out.audio)
            {
                progress(&e.to_string());
            }
            for l in &out.levels {
                progress(&format!("received {} Hz at {:.1} dB", l.hz, l.db));
            }
            if media.report_json {
                println!(
                    "{}",
                    serde_json::to_string(&out).unwrap_or_else(|_| "{}".into())
                );
            } else {
                print!("{}", out.report.to_human());
            }
            if out.report.audio.packets_received == 0 {
                progress("no audio received");
                return Err(Failure::Media);
            }
            Ok(())
        }
        Err(ConferenceError::Media(e)) => {
            progress(&format!("media failed: {e}"));
            Err(Failure::Media)
        }
        Err(e) => {
            progress(&e.to_string());
            Err(Failure::Signaling)
        }
    }
}

fn ask_accept() -> bool {
    eprint!("accept? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("y")
}

fn need_token(token: Option<String>) -> Result<String, Failure> {
    token.ok_or_else(|| {
        progress("--token (or EDGE_TOKEN) is required to log in");
        Failure::Usage
    })
}

/// Runs a signaled call in a fresh runtime and prints its report.
fn signaled(server: &str, token: &str, media: &MediaArgs, role: Role) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            progress(&format!("runtime: {e}"));
            Failure::Usage
        })?;
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut call = SignaledCall::new(server, token, role, media.duration);
    call.media_bind = media.media_bind;
    call.engine = engine_config(media, unspecified, unspecified, None)?;
    call.video_sink = media_options(media)?.video_sink;
    call.progress = Some(Box::new(progress));
    match rt.block_on(run_signaled_call(call)) {
        Ok(CallOutcome { report, audio }) => finish(report, media, audio),
        Err(f) => {
            print_report(&f.report, media);
            Err(if f.signaling {
                Failure::Signaling
            } else {
                Failure::Media
            })
        }
    }
}

fn engine_config(
    media: &MediaArgs,
    remote_audio: SocketAddr,
    remote_video: SocketAddr,
    srtp: Option<SrtpKey>,
) -> Result<EngineConfig, Failure> {
    let mut cfg = EngineConfig::new(Duration::ZERO, remote_audio);
    cfg.remote_video = remote_video;
    cfg.srtp = srtp;
    cfg.audio = match &media.audio_in {
        Some(p) => AudioSource::Pcm(Arc::new(supernode_edge::wav::read_wav(p).map_err(|e| {
            progress(&e.to_string());
            Failure::Usage
        })?)),
        None => AudioSource::Synth { seed: media.seed },
    };
    cfg.video = if media.no_video {
        VideoSource::Off
    } else {
        match &media.video_in {
            Some(p) => {
                let (frames, _fps) = supernode_edge::y4m::read_y4m(p).map_err(|e| {
                    progress(&e.to_string());
                    Failure::Usage
                })?;
                VideoSource::Frames(Arc::new(frames))
            }
            None => VideoSource::Pattern {
                width: media.width,
                height: media.height,
            },
        }
    };
    cfg.receive_video = !media.no_video;
    cfg.video_bitrate_bps = media.video_bitrate;
    cfg.keyframe_interval = media.keyframe_interval;
    cfg.mark_period_ms = media.mark_period_ms;
    cfg.audio_pt = media.audio_pt;
    cfg.video_pt = media.video_pt;
    cfg.reference_seed = (!media.no_reference).then_some(media.peer_seed);
    cfg.reference_pattern = !media.no_reference;
    cfg.ssrc_seed = u64::from(std::process::id()) ^ media.seed.rotate_left(17);
    Ok(cfg)
}

fn media_options(media: &MediaArgs) -> Result<MediaOptions, Failure> {
    let mut opts = MediaOptions::for_duration(media.duration);
    if let Some(p) = &media.video_out {
        let f = std::fs::File::create(p).map_err(|e| {
            progress(&format!("{}: {e}", p.display()));
            Failure::Usage
        })?;
        opts.video_sink = Some(Box::new(Y4mSink(Y4mWriter::new(BufWriter::new(f), 30))));
    }
    Ok(opts)
}

fn run_engine(
    socket: UdpSocket,
    cfg: EngineConfig,
    media: &MediaArgs,
) -> Result<CallOutcome, Failure> {
    let opts = media_options(media)?;
    run_media(socket, cfg, opts).map_err(|e| {
        progress(&format!("media failed: {e}"));
        Failure::Media
    })
}

fn print_report(report: &CallReport, media: &MediaArgs) {
    if media.report_json {
        eprint!("{}", report.to_human());
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_human());
    }
}

fn finish(report: CallReport, media: &MediaArgs, audio: Vec<i16>) -> Result<(), Failure> {
    if let Some(p) = &media.audio_out
        && let Err(e) = supernode_edge::wav::write_wav(p, &audio)
    {
        progress(&e.to_string());
    }
    print_report(&report, media);
    if report.ok {
        Ok(())
    } else {
        Err(Failure::Media)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from([
            "edge",
            "--server",
            "http://127.0.0.1:1",
            "--token",
            "t",
            "call",
            "acc_x",
            "--duration",
            "3s",
            "--report-json",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Call { .. }));
        let c = Cli::try_parse_from([
            "edge",
            "media",
            "--remote-audio",
            "127.0.0.1:5000",
            "--no-srtp",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::Media { no_srtp: true, .. }));
    }
}
