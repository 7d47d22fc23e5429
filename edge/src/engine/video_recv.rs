//! [`VideoReceiver`]: received H.264 RTP to decoded pictures, with NACK and PLI.
//!
//! Packets go through the media crate's video frame buffer
//! (`supernode_media::video::FrameBuffer`), which orders them, hands out complete frames and
//! says when to NACK missing packets or ask for a keyframe (PLI); the engine sends that
//! feedback as RTCP. A complete frame is depacketized (`payload::h264::H264Depacketizer`)
//! and decoded (`codec::h264::H264Decoder`); a frame that fails to decode makes the
//! receiver send a PLI.
//!
//! Each decoded picture is compared with the test pattern picture whose index its RTP
//! timestamp carries (see `video_send`), and handed to the optional [`VideoSink`].

use std::time::{Duration, Instant};

use bytes::Bytes;

use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::H264Decoder;
use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{Nack, NackPair, Pli, RtcpPacket, WireList, write_compound};
use supernode_media::packet::rtp::RtpPacket;
use supernode_media::payload::h264::{H264Depacketizer, inspect};
use supernode_media::video::{Feedback, FrameBuffer, FrameBufferConfig, VideoPacket};

use crate::EdgeError;
use crate::report::VideoReport;
use supernode_media::rfc3550::{ReceiveStats, SeqVerdict};

use super::video_send::frame_index_of;

/// PSNR recorded for a picture identical to its reference.
const PSNR_CAP: f64 = 100.0;
/// At most one decoder-triggered PLI per this interval.
const PLI_EVERY: Duration = Duration::from_millis(250);

/// Where decoded pictures go (e.g. a Y4M file).
pub trait VideoSink: Send {
    /// One decoded picture and the frame index its timestamp carries.
    fn frame(&mut self, picture: &I420Frame, index: u64);
}

/// The video receiving half of the engine.
pub struct VideoReceiver {
    /// RTP receive statistics.
    pub stats: ReceiveStats,
    buffer: FrameBuffer,
    payloads: Vec<Bytes>,
    depacketizer: H264Depacketizer,
    decoder: H264Decoder,
    au: Vec<u8>,
    picture: I420Frame,
    reference: Option<I420Frame>,
    compare: bool,
    fps: u32,
    sink: Option<Box<dyn VideoSink>>,
    last_pli: Option<Instant>,
    want_pli: bool,
    frames_decoded: u64,
    decode_errors: u64,
    psnr_sum: f64,
    psnr_min: f64,
    psnr_count: u64,
    nacks_sent: u64,
    plis_sent: u64,
    have_frame: bool,
    remote_ssrc: Option<Ssrc>,
    /// How many test pattern variants the sender may use (more than one: the variant is
    /// identified on the first decoded picture, by best PSNR).
    variants: u8,
    /// The pattern variant compared with.
    variant: Option<u8>,
    first_frame_at: Option<Instant>,
    last_frame_at: Option<Instant>,
    max_frame_gap: Duration,
    /// Payloads that are not RFC 6184 (counted, dropped).
    pub bad_payloads: u64,
}

impl std::fmt::Debug for VideoReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoReceiver")
            .field("frames_decoded", &self.frames_decoded)
            .finish_non_exhaustive()
    }
}

impl VideoReceiver {
    /// A receiver; `compare` turns on PSNR against the test pattern.
    pub fn new(
        compare: bool,
        fps: u32,
        sink: Option<Box<dyn VideoSink>>,
    ) -> Result<Self, EdgeError> {
        Ok(Self {
            stats: ReceiveStats::new(90_000),
            buffer: FrameBuffer::new(FrameBufferConfig::default()),
            payloads: Vec::new(),
            depacketizer: H264Depacketizer::default(),
            decoder: H264Decoder::new()?,
            au: Vec::new(),
            picture: I420Frame::new(2, 2)?,
            reference: None,
            compare,
            fps: fps.max(1),
            sink,
            last_pli: None,
            want_pli: false,
            frames_decoded: 0,
            decode_errors: 0,
            psnr_sum: 0.0,
            psnr_min: f64::INFINITY,
            psnr_count: 0,
            nacks_sent: 0,
            plis_sent: 0,
            have_frame: false,
            remote_ssrc: None,
            variants: 1,
            variant: None,
            first_frame_at: None,
            last_frame_at: None,
            max_frame_gap: Duration::ZERO,
            bad_payloads: 0,
        })
    }

    /// Compares with the test pattern variant (`0..variants`) that the first decoded
    /// picture matches best, instead of variant 0 (a conference: each sender has its own).
    pub fn identify_variant(mut self, variants: u8) -> Self {
        self.variants = variants.max(1);
        self
    }

    /// The test pattern variant compared with (identified, or 0).
    pub fn variant(&self) -> Option<u8> {
        self.variant
    }

    /// When the first and the last picture were decoded, and the longest time between two
    /// decoded pictures.
    pub fn frame_times(&self) -> (Option<Instant>, Option<Instant>, Duration) {
        (self.first_frame_at, self.last_frame_at, self.max_frame_gap)
    }

    /// Tells the frame buffer the round-trip time (paces NACK retries).
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.buffer.set_rtt(rtt);
    }

    /// One received RTP packet of the video stream.
    pub fn on_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) {
        if self
            .stats
            .on_packet(now, pkt.sequence_number(), pkt.timestamp())
            == SeqVerdict::Duplicate
        {
            return;
        }
        self.remote_ssrc = Some(pkt.ssrc());
        let Ok(hints) = inspect(pkt.payload()) else {
            self.bad_payloads += 1;
            return;
        };
        let vp = VideoPacket {
            seq: pkt.sequence_number(),
            timestamp: pkt.timestamp(),
            marker: pkt.marker(),
            frame_start: hints.frame_start,
            keyframe: hints.keyframe,
            payload: Bytes::copy_from_slice(pkt.payload()),
        };
        if self.buffer.insert(now, vp).is_err() {
            return;
        }
        let mut payloads = std::mem::take(&mut self.payloads);
        let before = self.frames_decoded;
        while let Some(info) = self.buffer.pop_frame(&mut payloads) {
            if !self.decode(&payloads, info.timestamp) {
                self.want_pli = true;
            }
        }
        self.payloads = payloads;
        if self.frames_decoded > before {
            if let Some(last) = self.last_frame_at {
                self.max_frame_gap = self.max_frame_gap.max(now.saturating_duration_since(last));
            }
            self.first_frame_at.get_or_insert(now);
            self.last_frame_at = Some(now);
        }
    }

    fn decode(&mut self, payloads: &[Bytes], ts: u32) -> bool {
        let payloads = payloads.iter().map(|p| &p[..]);
        if self
            .depacketizer
            .depacketize_ordered(payloads, &mut self.au)
            .is_err()
        {
            self.decode_errors += 1;
            return false;
        }
        match self.decoder.decode(&self.au, &mut self.picture) {
            Ok(true) => {}
            Ok(false) => return true,
            Err(_) => {
                self.decode_errors += 1;
                return false;
            }
        }
        self.frames_decoded += 1;
        self.have_frame = true;
        let index = frame_index_of(ts, self.fps);
        if self.compare {
            let (w, h) = (self.picture.width(), self.picture.height());
            if self.variant.is_none() {
                self.variant = Some(self.best_variant(index));
            }
            let variant = self.variant.unwrap_or(0);
            let reference = match self.reference.take() {
                Some(r) if r.width() == w && r.height() == h => Some(r),
                _ => I420Frame::new(w, h).ok(),
            }
            .map(|mut r| {
                r.draw_test_pattern_variant(index, variant);
                r
            });
            if let Some(r) = reference {
                if let Ok(p) = self.picture.psnr(&r) {
                    let p = p.min(PSNR_CAP);
                    self.psnr_sum += p;
                    self.psnr_min = self.psnr_min.min(p);
                    self.psnr_count += 1;
                }
                self.reference = Some(r);
            }
        }
        if let Some(sink) = &mut self.sink {
            sink.frame(&self.picture, index);
        }
        true
    }

    /// The pattern variant of `0..variants` closest to the decoded picture of `index`.
    fn best_variant(&self, index: u64) -> u8 {
        if self.variants <= 1 {
            return 0;
        }
        let Ok(mut r) = I420Frame::new(self.picture.width(), self.picture.height()) else {
            return 0;
        };
        let mut best = (f64::NEG_INFINITY, 0u8);
        for v in 0..self.variants {
            r.draw_test_pattern_variant(index, v);
            if let Ok(p) = self.picture.psnr(&r)
                && p > best.0
            {
                best = (p, v);
            }
        }
        best.1
    }

    /// When feedback may next be due (`None` when nothing is pending).
    pub fn next_due(&self) -> Option<Instant> {
        let pli = self
            .want_pli
            .then(|| self.last_pli.map(|t| t + PLI_EVERY))
            .flatten();
        match (self.buffer.poll_timeout(), pli) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends due NACKs and PLIs (plain RTCP, appended to `out`).
    pub fn on_timeout(&mut self, now: Instant, own: Ssrc, out: &mut Vec<Vec<u8>>) {
        let Some(media) = self.remote_ssrc else {
            return;
        };
        let mut pli = false;
        while let Some(fb) = self.buffer.poll_feedback(now) {
            match fb {
                Feedback::Pli => pli = true,
                Feedback::Nack(lost) => {
                    let mut pairs = [NackPair::default(); 64];
                    for chunk in lost.chunks(64) {
                        let Some(n) = Nack::pack(chunk.iter().copied(), &mut pairs) else {
                            continue;
                        };
                        let nack = RtcpPacket::Nack(Nack {
                            sender_ssrc: own,
                            media_ssrc: media,
                            pairs: WireList::Items(&pairs[..n]),
                        });
                        let mut buf = vec![0u8; 1200];
                        if let Ok(len) = write_compound(&[nack], &mut buf) {
                            buf.truncate(len);
                            out.push(buf);
                            self.nacks_sent += 1;
                        }
                    }
                }
            }
        }
        if self.want_pli && self.last_pli.is_none_or(|t| now >= t + PLI_EVERY) {
            pli = true;
        }
        if pli {
            let p = RtcpPacket::Pli(Pli {
                sender_ssrc: own,
                media_ssrc: media,
            });
            let mut buf = vec![0u8; 64];
            if let Ok(len) = write_compound(&[p], &mut buf) {
                buf.truncate(len);
                out.push(buf);
                self.plis_sent += 1;
                self.last_pli = Some(now);
                self.want_pli = false;
            }
        }
    }

    /// The last decoded picture.
    pub fn last_frame(&self) -> Option<&I420Frame> {
        self.have_frame.then_some(&self.picture)
    }

    /// Fills the video part of the call report.
    pub fn fill_report(&self, r: &mut VideoReport) {
        r.packets_received = self.stats.received();
        r.loss_pct = self.stats.loss_pct();
        r.jitter_ms = self.stats.jitter_ms();
        r.frames_decoded = self.frames_decoded;
        r.nacks_sent = self.nacks_sent;
        r.plis_sent = self.plis_sent;
        if self.psnr_count > 0 {
            r.psnr_db = Some(self.psnr_sum / self.psnr_count as f64);
            r.psnr_min_db = Some(self.psnr_min);
        }
    }
}
