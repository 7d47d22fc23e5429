//! The media engine: one call's audio (and video) over UDP legs, sans-IO.
//!
//! [`MediaEngine`] holds everything between the socket and the codecs; an I/O shell (see
//! [`crate::runner`]) owns the socket and the clock and drives it:
//!
//! ```text
//! let mut engine = MediaEngine::new(start, config)?;
//! loop {
//!     while let Some(t) = engine.poll_transmit() { socket.send_to(&t.data, t.to) }
//!     wait for a datagram or until engine.poll_timeout()
//!     engine.handle_datagram(now, from, &datagram)   // when one came
//!     engine.handle_timeout(now)
//! }
//! let outcome = engine.finish(now);                  // report + recordings
//! ```
//!
//! What happens inside:
//!
//! - **send**: every 20 ms one Opus frame (48 kHz mono, RFC 7587) of the synthetic speech
//!   or a WAV file; every 1/30 s one H.264 picture (RFC 6184, packetization mode 1) of the
//!   moving test pattern or a Y4M file; RTP timestamps of video are `frame_index × 3000` so
//!   the receiver recovers the pattern index; SRTP protection when keyed; answers to NACK
//!   (retransmission from a history) and PLI/FIR (next frame is a keyframe).
//! - **receive**: SRTP unprotection (failures counted, never decoded), RTP demultiplexed to
//!   audio or video by source address and payload type; audio through the adaptive jitter
//!   buffer and Opus decoder, pulled every 10 ms; video through the frame buffer,
//!   depacketizer and H.264 decoder, with NACK/PLI sent when the frame buffer asks.
//! - **RTCP**: every second an SR per sent stream with report blocks for the received
//!   streams (loss, jitter, LSR/DLSR); report blocks about our streams give the RTT.
//! - **measure**: loss and jitter (RFC 3550), audio similarity against the peer's seed
//!   ([`crate::similarity`]), PSNR against the regenerated pattern, mouth-to-ear delay from
//!   the timing marks ([`crate::marks`]).
//!
//! Wall-clock time enters once, as [`EngineConfig::wall_at_start`]; see [`MediaClock`].

mod audio_recv;
mod audio_send;
mod clock;
mod rtcp;
mod video_recv;
mod video_send;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_media::codec::I420Frame;
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtcp::RtcpCompound;
use supernode_media::packet::rtp::RtpPacket;

pub use audio_recv::AudioReceiver;
pub use audio_send::{AudioSender, AudioSource};
pub use clock::MediaClock;
pub use video_recv::{VideoReceiver, VideoSink};
pub use video_send::{VideoSender, VideoSource};

use crate::EdgeError;
use crate::report::{CallReport, DropReport};
use crate::srtp::{SrtpError, SrtpKey, SrtpSession};
use crate::synth::SpeechSynth;

/// Default payload type of Opus.
pub const DEFAULT_AUDIO_PT: u8 = 111;
/// Default payload type of H.264.
pub const DEFAULT_VIDEO_PT: u8 = 96;

/// A datagram for the I/O shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Bytes (already SRTP-protected when the call is encrypted).
    pub data: Vec<u8>,
}

/// Everything a [`MediaEngine`] needs to know about the call.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Unix time at the engine's start instant (read once by the I/O shell).
    pub wall_at_start: Duration,
    /// Where audio RTP/RTCP goes (the relay leg).
    pub remote_audio: SocketAddr,
    /// Where video RTP/RTCP goes (the same leg as audio for signaled calls).
    pub remote_video: SocketAddr,
    /// SRTP key, `None` for plain RTP. One key serves both directions (a relay leg's key).
    pub srtp: Option<SrtpKey>,
    /// What audio to send.
    pub audio: AudioSource,
    /// What video to send; [`VideoSource::Off`] sends none (video is still received).
    pub video: VideoSource,
    /// Whether to expect and decode video.
    pub receive_video: bool,
    /// H.264 target bitrate, bit/s.
    pub video_bitrate_bps: u32,
    /// Video frames per second.
    pub fps: u32,
    /// A keyframe every this many pictures; 0: only at the start and on PLI/FIR (receivers
    /// that never send PLI, e.g. a plain GStreamer pipeline joining late, want a period).
    pub keyframe_interval: u32,
    /// Timing-mark period, milliseconds.
    pub mark_period_ms: u32,
    /// Payload type of Opus.
    pub audio_pt: u8,
    /// Payload type of H.264.
    pub video_pt: u8,
    /// Seed of the peer's synthetic audio, to compute `audio.similarity`; `None` when the
    /// peer sends something else.
    pub reference_seed: Option<u64>,
    /// Whether the peer sends the test pattern (to compute `video.psnr_db`).
    pub reference_pattern: bool,
    /// Seed for SSRCs, initial sequence numbers and timestamps; 0 lets
    /// [`crate::runner::run_media`] pick one from the clock, the process id and a counter.
    pub ssrc_seed: u64,
    /// The test pattern variant sent (0: the usual pattern; a conference's participants
    /// each send their own).
    pub pattern_variant: u8,
    /// Receive several video streams, one decoder per SSRC (a conference's forwarded
    /// videos), instead of one; with `reference_pattern`, each is compared with the pattern
    /// variant (of `0..video_variants`) its first picture matches. At most
    /// [`MAX_VIDEO_SOURCES`]; more are dropped as `unknown_stream`.
    pub video_sources: bool,
    /// How many pattern variants the senders may use (see `video_sources`).
    pub video_variants: u8,
}

/// Most video streams an engine decodes with [`EngineConfig::video_sources`].
pub const MAX_VIDEO_SOURCES: usize = 32;

impl EngineConfig {
    /// The SSRCs this configuration sends (audio, video) when `ssrc_seed` is not 0.
    pub fn ssrcs(&self) -> (Ssrc, Ssrc) {
        let r = |lane: u64| mix(self.ssrc_seed ^ lane.wrapping_mul(0x2545_F491_4F6C_DD1D));
        (Ssrc(r(1) as u32 | 1), Ssrc(r(4) as u32 & !1))
    }
}

impl EngineConfig {
    /// A configuration with the defaults: synthetic audio (seed 1) and 640×360 test
    /// pattern at 30 fps and 800 kbit/s, marks every 2 s, PT 111/96, the peer assumed to
    /// send the same.
    pub fn new(wall_at_start: Duration, remote: SocketAddr) -> Self {
        Self {
            wall_at_start,
            remote_audio: remote,
            remote_video: remote,
            srtp: None,
            audio: AudioSource::Synth { seed: 1 },
            video: VideoSource::Pattern {
                width: 640,
                height: 360,
            },
            receive_video: true,
            video_bitrate_bps: 800_000,
            fps: 30,
            keyframe_interval: 0,
            mark_period_ms: 2_000,
            audio_pt: DEFAULT_AUDIO_PT,
            video_pt: DEFAULT_VIDEO_PT,
            reference_seed: Some(1),
            reference_pattern: true,
            ssrc_seed: 0,
            pattern_variant: 0,
            video_sources: false,
            video_variants: 1,
        }
    }
}

/// What a finished engine gives back.
#[derive(Debug)]
pub struct CallOutcome {
    /// The call report (verdict applied).
    pub report: CallReport,
    /// The played-out audio (48 kHz mono) since the first packet.
    pub audio: Vec<i16>,
}

/// Which medium a received RTP packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Medium {
    Audio,
    Video,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One call's media, sans-IO. See the [module docs](self).
pub struct MediaEngine {
    cfg: EngineConfig,
    clock: MediaClock,
    /// SRTP: protects what is sent, and (a separate session) unprotects what is received.
    srtp: Option<(SrtpSession, SrtpSession)>,
    /// Where a received SRTP datagram is unprotected in place (reused, taken per packet).
    srtp_rx_buf: Vec<u8>,
    audio_tx: AudioSender,
    audio_rx: AudioReceiver,
    video_tx: Option<VideoSender>,
    video_rx: Option<VideoReceiver>,
    /// With `video_sources`: one receiver per video SSRC, in order of arrival.
    sources: Vec<(Ssrc, VideoReceiver)>,
    remote_audio_ssrc: Option<Ssrc>,
    remote_video_ssrc: Option<Ssrc>,
    rtcp: rtcp::RtcpState,
    out: VecDeque<Transmit>,
    buf: Vec<u8>,
    drops: DropReport,
    last_now: Instant,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("remote_audio", &self.cfg.remote_audio)
            .field("remote_video", &self.cfg.remote_video)
            .finish_non_exhaustive()
    }
}

impl MediaEngine {
    /// An engine whose media clock starts at `start`.
    pub fn new(start: Instant, cfg: EngineConfig) -> Result<Self, EdgeError> {
        Self::with_sink(start, cfg, None)
    }

    /// Like [`Self::new`], handing every decoded video frame to `sink` (e.g. a Y4M file).
    pub fn with_sink(
        start: Instant,
        cfg: EngineConfig,
        sink: Option<Box<dyn VideoSink>>,
    ) -> Result<Self, EdgeError> {
        let clock = MediaClock::new(start, cfg.wall_at_start);
        let r = |lane: u64| mix(cfg.ssrc_seed ^ lane.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let srtp = match &cfg.srtp {
            Some(k) => Some((crate::srtp::session(k)?, crate::srtp::session(k)?)),
            None => None,
        };
        let synth = SpeechSynth::new(0, cfg.mark_period_ms);
        let audio_tx = AudioSender::new(
            &clock,
            cfg.audio.clone(),
            cfg.mark_period_ms,
            Ssrc(r(1) as u32 | 1),
            Pt(cfg.audio_pt),
            r(2) as u16 & 0x3fff,
            r(3) as u32,
        )?;
        let audio_rx = AudioReceiver::new(&clock, synth.mark_period_samples())?;
        let video_tx = match &cfg.video {
            VideoSource::Off => None,
            _ => Some(VideoSender::new(
                &clock,
                &cfg,
                Ssrc(r(4) as u32 & !1),
                r(5) as u16 & 0x3fff,
            )?),
        };
        let video_rx = if cfg.receive_video && !cfg.video_sources {
            Some(VideoReceiver::new(cfg.reference_pattern, cfg.fps, sink)?)
        } else {
            None
        };
        Ok(Self {
            rtcp: rtcp::RtcpState::new(start),
            cfg,
            clock,
            srtp,
            srtp_rx_buf: Vec::with_capacity(2048),
            audio_tx,
            audio_rx,
            video_tx,
            video_rx,
            sources: Vec::new(),
            remote_audio_ssrc: None,
            remote_video_ssrc: None,
            out: VecDeque::new(),
            buf: vec![0; 1500],
            drops: DropReport::default(),
            last_now: start,
        })
    }

    /// The media clock.
    pub fn clock(&self) -> &MediaClock {
        &self.clock
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.audio_rx.next_due().min(self.rtcp.next_due());
        if let Some(a) = self.audio_tx.next_due() {
            t = t.min(a);
        }
        if let Some(v) = &self.video_tx {
            t = t.min(v.next_due());
        }
        for v in self
            .video_rx
            .iter()
            .chain(self.sources.iter().map(|(_, v)| v))
        {
            if let Some(d) = v.next_due() {
                t = t.min(d);
            }
        }
        t
    }

    fn push(&mut self, to: SocketAddr, plain: &[u8], is_rtcp: bool) {
        let data = match &mut self.srtp {
            None => Some(plain.to_vec()),
            Some((tx, _)) => {
                // In place in the datagram's own buffer, with room for the tag.
                let mut v = plain.to_vec();
                v.resize(plain.len() + tx.profile().rtcp_overhead(), 0);
                let r = if is_rtcp {
                    tx.protect_rtcp(&mut v, plain.len())
                } else {
                    tx.protect_rtp(&mut v, plain.len())
                };
                r.ok().map(|n| {
                    v.truncate(n);
                    v
                })
            }
        };
        if let Some(data) = data {
            self.out.push_back(Transmit { to, data });
        }
    }

    /// Does everything due at `now`: sends audio and video frames, pulls audio, runs the
    /// video receiver's feedback timers and sends RTCP.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        // Reports go out alone, before any codec work, so that their NTP time and DLSR are
        // not stale by an encode's duration when they leave (the shell sends them as soon
        // as this returns and calls again for the rest, which is then overdue).
        if self.rtcp.next_due() <= now {
            let pkt = self.rtcp.build_reports(
                now,
                &self.clock,
                &self.audio_tx,
                self.video_tx.as_ref(),
                &mut self.audio_rx.stats,
                self.remote_audio_ssrc,
                self.video_rx.as_mut().map(|v| &mut v.stats),
                self.remote_video_ssrc,
            );
            if let Some(pkt) = pkt {
                self.push(self.cfg.remote_audio, &pkt, true);
                return;
            }
        }
        // Audio next, also alone: it must not wait behind a picture's encode.
        let mut sent_audio = false;
        while let Some(due) = self.audio_tx.next_due()
            && due <= now
        {
            let mut buf = std::mem::take(&mut self.buf);
            if let Ok(n) = self.audio_tx.next_packet(&mut buf) {
                self.push(self.cfg.remote_audio, &buf[..n], false);
                sent_audio = true;
            }
            self.buf = buf;
        }
        if sent_audio {
            return;
        }
        self.audio_rx.on_timeout(now);
        if let Some(mut v) = self.video_tx.take() {
            let mut pkts = Vec::new();
            v.on_timeout(now, &mut pkts);
            self.video_tx = Some(v);
            for p in pkts {
                self.push(self.cfg.remote_video, &p, false);
            }
        }
        let own = self.own_ssrcs();
        if let Some(mut v) = self.video_rx.take() {
            let mut fb = Vec::new();
            v.on_timeout(now, own.1.unwrap_or(own.0), &mut fb);
            self.video_rx = Some(v);
            for p in fb {
                self.push(self.cfg.remote_video, &p, true);
            }
        }
        let mut fb = Vec::new();
        for (_, v) in &mut self.sources {
            v.on_timeout(now, own.1.unwrap_or(own.0), &mut fb);
        }
        for p in fb {
            self.push(self.cfg.remote_video, &p, true);
        }
    }

    fn own_ssrcs(&self) -> (Ssrc, Option<Ssrc>) {
        (
            self.audio_tx.ssrc(),
            self.video_tx.as_ref().map(VideoSender::ssrc),
        )
    }

    /// One received datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.last_now = self.last_now.max(now);
        let rtcp = match classify(data) {
            PacketKind::Rtp => false,
            PacketKind::Rtcp => true,
            _ => {
                self.drops.not_rtp += 1;
                return;
            }
        };
        let mut buf = std::mem::take(&mut self.srtp_rx_buf);
        let plain: &[u8] = match &mut self.srtp {
            Some((_, rx)) => {
                buf.clear();
                buf.extend_from_slice(data);
                let r = if rtcp {
                    rx.unprotect_rtcp(&mut buf)
                } else {
                    rx.unprotect_rtp(&mut buf)
                };
                match r {
                    Ok(n) => &buf[..n],
                    Err(e) => {
                        if e == SrtpError::Replay {
                            self.drops.srtp_replay += 1;
                        } else {
                            self.drops.srtp_auth += 1;
                        }
                        self.srtp_rx_buf = buf;
                        return;
                    }
                }
            }
            None => data,
        };
        if rtcp {
            self.on_rtcp(now, plain);
        } else {
            self.on_rtp(now, from, plain);
        }
        self.srtp_rx_buf = buf;
    }

    fn medium_of(&self, from: SocketAddr, pt: u8) -> Option<Medium> {
        let split = self.cfg.remote_audio != self.cfg.remote_video;
        if split && from == self.cfg.remote_video && self.cfg.receive_video {
            return Some(Medium::Video);
        }
        if split && from == self.cfg.remote_audio {
            return Some(Medium::Audio);
        }
        if pt == self.cfg.audio_pt {
            Some(Medium::Audio)
        } else if pt == self.cfg.video_pt && self.cfg.receive_video {
            Some(Medium::Video)
        } else {
            None
        }
    }

    fn on_rtp(&mut self, now: Instant, from: SocketAddr, plain: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(plain) else {
            self.drops.malformed += 1;
            return;
        };
        let Some(medium) = self.medium_of(from, pkt.payload_type().0) else {
            self.drops.unknown_stream += 1;
            return;
        };
        if medium == Medium::Video && self.cfg.video_sources {
            let ssrc = pkt.ssrc();
            let k = match self.sources.iter().position(|(s, _)| *s == ssrc) {
                Some(k) => k,
                None if self.sources.len() < MAX_VIDEO_SOURCES => {
                    let Ok(v) = VideoReceiver::new(self.cfg.reference_pattern, self.cfg.fps, None)
                    else {
                        self.drops.unknown_stream += 1;
                        return;
                    };
                    let v = v.identify_variant(self.cfg.video_variants);
                    self.sources.push((ssrc, v));
                    self.sources.len() - 1
                }
                None => {
                    self.drops.unknown_stream += 1;
                    return;
                }
            };
            self.sources[k].1.on_packet(now, &pkt);
            return;
        }
        let slot = match medium {
            Medium::Audio => &mut self.remote_audio_ssrc,
            Medium::Video => &mut self.remote_video_ssrc,
        };
        if *slot.get_or_insert(pkt.ssrc()) != pkt.ssrc() {
            self.drops.unknown_stream += 1;
            return;
        }
        match medium {
            Medium::Audio => {
                self.audio_rx
                    .on_packet(now, pkt.sequence_number(), pkt.timestamp(), pkt.payload())
            }
            Medium::Video => {
                if let Some(v) = &mut self.video_rx {
                    v.on_packet(now, &pkt);
                }
            }
        }
    }

    fn on_rtcp(&mut self, now: Instant, plain: &[u8]) {
        let (own_audio, own_video) = self.own_ssrcs();
        let mut keyframe = false;
        let mut nacked: Vec<u16> = Vec::new();
        for p in RtcpCompound::parse(plain) {
            let Ok(p) = p else {
                self.drops.malformed += 1;
                return;
            };
            match rtcp::classify_feedback(&p, own_audio, own_video) {
                rtcp::Feedback::Keyframe => keyframe = true,
                rtcp::Feedback::Nack(list) => nacked.extend(list),
                rtcp::Feedback::None => {}
            }
            self.rtcp.on_packet(
                now,
                &self.clock,
                &p,
                [Some(own_audio), own_video],
                (self.remote_audio_ssrc, &mut self.audio_rx.stats),
                (
                    self.remote_video_ssrc,
                    self.video_rx.as_mut().map(|v| &mut v.stats),
                ),
            );
        }
        if let Some(rtt) = self.rtcp.rtt_ms() {
            let rtt = Duration::from_secs_f64(rtt / 1000.0);
            for v in self
                .video_rx
                .iter_mut()
                .chain(self.sources.iter_mut().map(|(_, v)| v))
            {
                v.set_rtt(rtt);
            }
        }
        if let Some(mut v) = self.video_tx.take() {
            if keyframe {
                v.request_keyframe();
            }
            let mut pkts = Vec::new();
            for seq in nacked {
                v.retransmit(seq, &mut pkts);
            }
            self.video_tx = Some(v);
            for p in pkts {
                self.push(self.cfg.remote_video, &p, false);
            }
        }
    }

    /// Ends the call at `now`: measures what needs the whole recording and returns the
    /// report and the played-out audio.
    pub fn finish(mut self, now: Instant) -> CallOutcome {
        let mut r = CallReport {
            duration_s: now
                .saturating_duration_since(self.clock.start())
                .as_secs_f64(),
            ..CallReport::default()
        };
        let js = self.audio_rx.jitter_stats();
        let st = &self.audio_rx.stats;
        r.audio.packets_sent = self.audio_tx.packets;
        r.audio.packets_received = st.received();
        r.audio.loss_pct = st.loss_pct();
        r.audio.jitter_ms = st.jitter_ms();
        r.audio.concealment_pct = js.concealment_pct();
        r.audio.late_loss_pct = js.late_loss_pct();
        r.audio.jitter_buffer_ms = js.target_ms;
        let marks = self.audio_rx.marks();
        r.audio.marks_detected = marks.delays_samples().len() as u64;
        r.mouth_to_ear_ms = marks.median_ms();
        r.mouth_to_ear_samples_ms = marks.delays_ms();
        let found = marks.marks();
        let (n0, audio) = self.audio_rx.take_recording();
        r.audio.seconds_played = audio.len() as f64 / 48_000.0;
        if let Some(seed) = self.cfg.reference_seed {
            let reference = SpeechSynth::new(seed, self.cfg.mark_period_ms);
            r.audio.similarity = crate::similarity::similarity(&reference, n0, &audio, &found);
        }
        if let Some(v) = &self.video_tx {
            r.video.enabled = true;
            r.video.frames_sent = v.frames;
            r.video.packets_sent = v.packets;
            r.video.keyframes_requested = v.keyframes_requested;
            r.video.retransmissions = v.retransmissions;
        }
        if let Some(v) = &mut self.video_rx {
            r.video.enabled = true;
            v.fill_report(&mut r.video);
        }
        if self.cfg.video_sources && self.cfg.receive_video {
            r.video.enabled = true;
            let start = self.clock.start();
            let secs =
                |t: Option<Instant>| t.map(|t| t.saturating_duration_since(start).as_secs_f64());
            for (ssrc, v) in &self.sources {
                let mut one = crate::report::VideoReport::default();
                v.fill_report(&mut one);
                r.video.frames_decoded += one.frames_decoded;
                r.video.packets_received += one.packets_received;
                r.video.nacks_sent += one.nacks_sent;
                r.video.plis_sent += one.plis_sent;
                let (first, last, gap) = v.frame_times();
                r.video_sources.push(crate::report::VideoSourceReport {
                    ssrc: ssrc.0,
                    participant: None,
                    pattern_variant: v.variant(),
                    packets_received: one.packets_received,
                    loss_pct: one.loss_pct,
                    frames_decoded: one.frames_decoded,
                    psnr_db: one.psnr_db,
                    psnr_min_db: one.psnr_min_db,
                    nacks_sent: one.nacks_sent,
                    plis_sent: one.plis_sent,
                    first_frame_s: secs(first),
                    last_frame_s: secs(last),
                    max_frame_gap_ms: gap.as_secs_f64() * 1000.0,
                });
            }
        }
        r.rtt_ms = self.rtcp.rtt_ms();
        r.estimate_quality();
        r.drops = self.drops.clone();
        r.drops.malformed += self.audio_rx.bad_payloads
            + self.video_rx.as_ref().map_or(0, |v| v.bad_payloads)
            + self
                .sources
                .iter()
                .map(|(_, v)| v.bad_payloads)
                .sum::<u64>();
        r.verdict();
        CallOutcome { report: r, audio }
    }

    /// The last decoded video frame, if any (for tests and previews).
    pub fn last_video_frame(&self) -> Option<&I420Frame> {
        self.video_rx.as_ref().and_then(VideoReceiver::last_frame)
    }
}
