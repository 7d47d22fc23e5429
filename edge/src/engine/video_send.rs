//! [`VideoSender`]: one picture per 1/fps (the moving test pattern or Y4M frames), encoded
//! with H.264 and packetized per RFC 6184 (packetization mode 1), with a retransmission
//! history for NACK and keyframes on demand.
//!
//! The RTP timestamp of a picture is `index × (90000 / fps)` (wrapping), where `index` is
//! the picture's absolute frame index (frames since the Unix epoch at `fps`, reduced modulo
//! `2^32 / (90000 / fps)`): the receiver recovers the index as `timestamp / (90000 / fps)`
//! and regenerates the same test pattern picture to measure PSNR.

use std::sync::Arc;
use std::time::{Duration, Instant};

use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Encoder};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::RtpHeader;
use supernode_media::payload::h264::H264Packetizer;

use crate::EdgeError;

use super::EngineConfig;
use super::clock::MediaClock;

/// RTP payload size limit for video.
const MTU: usize = 1200;
/// Packets kept for retransmission.
const HISTORY: usize = 1024;

/// Where the sent video comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VideoSource {
    /// The moving test pattern (`I420Frame::draw_test_pattern`) at this size.
    Pattern {
        /// Width in pixels (even).
        width: usize,
        /// Height in pixels (even).
        height: usize,
    },
    /// These pictures (e.g. from a Y4M file), looped.
    Frames(Arc<Vec<I420Frame>>),
    /// Send no video.
    Off,
}

/// The ticks per frame at 90 kHz.
pub fn ticks_per_frame(fps: u32) -> u32 {
    90_000 / fps.clamp(1, 90_000)
}

/// The picture index carried by a video RTP timestamp.
pub fn frame_index_of(ts: u32, fps: u32) -> u64 {
    u64::from(ts / ticks_per_frame(fps))
}

/// The video sending half of the engine.
#[derive(Debug)]
pub struct VideoSender {
    source: VideoSource,
    encoder: H264Encoder,
    packetizer: H264Packetizer,
    picture: I420Frame,
    au: Vec<u8>,
    ssrc: Ssrc,
    pt: Pt,
    seq: u16,
    fps: u32,
    start: Instant,
    /// Absolute index of frame 0.
    index0: u64,
    frame: u64,
    history: Vec<Option<(u16, Vec<u8>)>>,
    /// Pictures sent.
    pub frames: u64,
    /// Packets sent, retransmissions included.
    pub packets: u64,
    /// Payload octets sent.
    pub octets: u64,
    /// Keyframes forced by PLI/FIR.
    pub keyframes_requested: u64,
    /// Packets resent for NACK.
    pub retransmissions: u64,
    keyframe_pending: bool,
    /// The test pattern variant drawn.
    variant: u8,
}

impl VideoSender {
    /// A sender whose frame 0 is captured at the clock's start, with the source, frame
    /// rate, bitrate, keyframe interval and payload type of `cfg`.
    pub fn new(
        clock: &MediaClock,
        cfg: &EngineConfig,
        ssrc: Ssrc,
        seq0: u16,
    ) -> Result<Self, EdgeError> {
        let source = cfg.video.clone();
        let (fps, bitrate_bps, keyframe_interval, pt) = (
            cfg.fps,
            cfg.video_bitrate_bps,
            cfg.keyframe_interval,
            Pt(cfg.video_pt),
        );
        let fps = fps.clamp(1, 120);
        let (width, height) = match &source {
            VideoSource::Pattern { width, height } => (*width, *height),
            VideoSource::Frames(f) => f
                .first()
                .map(|p| (p.width(), p.height()))
                .ok_or_else(|| EdgeError::Config("the video file has no frames".into()))?,
            VideoSource::Off => (640, 360),
        };
        let encoder = H264Encoder::new(&H264Config {
            width,
            height,
            bitrate_bps,
            frame_rate: fps as f32,
            keyframe_interval,
        })?;
        let ticks = u64::from(ticks_per_frame(fps));
        let modulus = (1u64 << 32) / ticks;
        Ok(Self {
            source,
            encoder,
            packetizer: H264Packetizer::new(MTU)?,
            picture: I420Frame::new(width, height)?,
            au: Vec::new(),
            ssrc,
            pt,
            seq: seq0,
            fps,
            start: clock.start(),
            index0: clock.frame_index(clock.start(), fps) % modulus,
            frame: 0,
            history: vec![None; HISTORY],
            frames: 0,
            packets: 0,
            octets: 0,
            keyframes_requested: 0,
            retransmissions: 0,
            keyframe_pending: false,
            variant: cfg.pattern_variant,
        })
    }

    /// The SSRC sent.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// When the next picture is due.
    pub fn next_due(&self) -> Instant {
        self.start + Duration::from_secs(1) * self.frame as u32 / self.fps
    }

    fn ts_of(&self, frame: u64) -> u32 {
        let ticks = u64::from(ticks_per_frame(self.fps));
        let modulus = (1u64 << 32) / ticks;
        (((self.index0 + frame) % modulus) * ticks) as u32
    }

    /// The RTP timestamp that corresponds to `now` (for sender reports).
    pub fn rtp_time_at(&self, now: Instant, _clock: &MediaClock) -> u32 {
        let ticks = now.saturating_duration_since(self.start).as_nanos() * 90_000 / 1_000_000_000;
        self.ts_of(0).wrapping_add(ticks as u32)
    }

    /// Asks for the next picture to be a keyframe (PLI/FIR).
    pub fn request_keyframe(&mut self) {
        if !self.keyframe_pending {
            self.keyframe_pending = true;
            self.keyframes_requested += 1;
            self.encoder.force_keyframe();
        }
    }

    /// Encodes and packetizes every picture due at `now`; appends plain RTP packets.
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        // Never fall more than a few frames behind: skip pictures when late.
        while self.next_due() + Duration::from_millis(100) < now {
            self.frame += 1;
        }
        while self.next_due() <= now {
            let frame = self.frame;
            self.frame += 1;
            let _ = self.send_picture(frame, out);
        }
    }

    fn send_picture(&mut self, frame: u64, out: &mut Vec<Vec<u8>>) -> Result<(), EdgeError> {
        let ts = self.ts_of(frame);
        match &self.source {
            VideoSource::Pattern { .. } => self
                .picture
                .draw_test_pattern_variant(frame_index_of(ts, self.fps), self.variant),
            VideoSource::Frames(f) => {
                if let Some(p) = f.get(frame as usize % f.len().max(1)) {
                    self.picture.clone_from(p);
                }
            }
            VideoSource::Off => return Ok(()),
        }
        let info = self.encoder.encode(&self.picture, &mut self.au)?;
        if info.keyframe {
            self.keyframe_pending = false;
        }
        let mut payloads: Vec<(Vec<u8>, bool)> = Vec::new();
        self.packetizer
            .packetize(&self.au, |p, marker| payloads.push((p.to_vec(), marker)))?;
        for (payload, marker) in payloads {
            let header = RtpHeader {
                marker,
                payload_type: self.pt,
                sequence_number: self.seq,
                timestamp: ts,
                ssrc: self.ssrc,
                ..RtpHeader::default()
            };
            let mut buf = vec![0u8; payload.len() + 12];
            let n = header.write(&payload, &mut buf)?;
            buf.truncate(n);
            self.history[usize::from(self.seq) % HISTORY] = Some((self.seq, buf.clone()));
            self.seq = self.seq.wrapping_add(1);
            self.packets += 1;
            self.octets += payload.len() as u64;
            out.push(buf);
        }
        self.frames += 1;
        Ok(())
    }

    /// Resends packet `seq` if it is still in the history.
    pub fn retransmit(&mut self, seq: u16, out: &mut Vec<Vec<u8>>) {
        if let Some((s, pkt)) = &self.history[usize::from(seq) % HISTORY]
            && *s == seq
        {
            out.push(pkt.clone());
            self.retransmissions += 1;
            self.packets += 1;
        }
    }
}
