//! [`AudioSender`]: captures 20 ms of audio per tick (synthetic or from a file), encodes it
//! with Opus and wraps it in RTP per RFC 7587.

use std::sync::Arc;
use std::time::{Duration, Instant};

use supernode_media::codec::opus::{OpusConfig, OpusEncoder};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::RtpHeader;

use crate::EdgeError;
use crate::synth::SpeechSynth;

use super::clock::MediaClock;

/// Samples per 20 ms frame at 48 kHz.
pub const FRAME: usize = 960;
const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Where the sent audio comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AudioSource {
    /// The speech-like synthetic signal of this seed (with timing marks).
    Synth {
        /// Seed of [`SpeechSynth`].
        seed: u64,
    },
    /// 48 kHz mono PCM (e.g. a WAV file), looped; timing marks are overlaid on it.
    Pcm(Arc<Vec<i16>>),
    /// Send no audio.
    Off,
}

/// The audio sending half of the engine.
#[derive(Debug)]
pub struct AudioSender {
    source: AudioSource,
    synth: SpeechSynth,
    encoder: OpusEncoder,
    ssrc: Ssrc,
    pt: Pt,
    seq: u16,
    ts0: u32,
    /// Absolute sample index of frame 0's first sample.
    n0: u64,
    start: Instant,
    frame: u64,
    pcm: Vec<i16>,
    enc: Vec<u8>,
    /// Packets and payload bytes sent.
    pub packets: u64,
    /// Payload octets sent.
    pub octets: u64,
    last_ts: u32,
}

impl AudioSender {
    /// A sender whose first frame starts at the clock's start.
    pub fn new(
        clock: &MediaClock,
        source: AudioSource,
        mark_period_ms: u32,
        ssrc: Ssrc,
        pt: Pt,
        seq0: u16,
        ts0: u32,
    ) -> Result<Self, EdgeError> {
        let seed = match &source {
            AudioSource::Synth { seed } => *seed,
            _ => 0,
        };
        let encoder = OpusEncoder::new(&OpusConfig::default())?;
        Ok(Self {
            source,
            synth: SpeechSynth::new(seed, mark_period_ms),
            encoder,
            ssrc,
            pt,
            seq: seq0,
            ts0,
            n0: clock.sample_index(clock.start()),
            start: clock.start(),
            frame: 0,
            pcm: vec![0; FRAME],
            enc: vec![0; 1500],
            packets: 0,
            octets: 0,
            last_ts: ts0,
        })
    }

    /// The SSRC sent.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// When the next frame is complete and due to be sent (its last sample is captured).
    pub fn next_due(&self) -> Option<Instant> {
        if matches!(self.source, AudioSource::Off) {
            return None;
        }
        Some(self.start + FRAME_DURATION * (self.frame as u32 + 1))
    }

    /// The RTP timestamp that corresponds to `now` (for sender reports).
    pub fn rtp_time_at(&self, now: Instant) -> u32 {
        let samples = now.saturating_duration_since(self.start).as_nanos() * 48_000 / 1_000_000_000;
        self.ts0.wrapping_add(samples as u32)
    }

    /// The last RTP timestamp sent.
    pub fn last_ts(&self) -> u32 {
        self.last_ts
    }

    /// Produces the next frame's RTP packet (plain, unprotected) into `out`; returns its
    /// length. Call when `now >= next_due()`.
    pub fn next_packet(&mut self, out: &mut [u8]) -> Result<usize, EdgeError> {
        let n = self.n0 + self.frame * FRAME as u64;
        match &self.source {
            AudioSource::Synth { .. } => self.synth.fill(n, &mut self.pcm),
            AudioSource::Pcm(pcm) => {
                if pcm.is_empty() {
                    self.pcm.fill(0);
                } else {
                    let mut at = (self.frame as usize * FRAME) % pcm.len();
                    for s in self.pcm.iter_mut() {
                        *s = pcm[at];
                        at = (at + 1) % pcm.len();
                    }
                }
                self.synth.overlay_marks(n, &mut self.pcm);
            }
            AudioSource::Off => self.pcm.fill(0),
        }
        let len = self.encoder.encode(&self.pcm, &mut self.enc)?;
        let ts = self
            .ts0
            .wrapping_add((self.frame as u32).wrapping_mul(FRAME as u32));
        let header = RtpHeader {
            marker: self.frame == 0,
            payload_type: self.pt,
            sequence_number: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
            ..RtpHeader::default()
        };
        let written = header.write(&self.enc[..len], out)?;
        self.seq = self.seq.wrapping_add(1);
        self.frame += 1;
        self.packets += 1;
        self.octets += len as u64;
        self.last_ts = ts;
        Ok(written)
    }
}
