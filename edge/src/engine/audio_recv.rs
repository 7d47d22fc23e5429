//! [`AudioReceiver`]: received Opus RTP through the adaptive jitter buffer and decoder,
//! pulled every 10 ms of playout; keeps receive statistics, finds timing marks and records
//! the played-out audio.

use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::codec::opus::{Channels, OpusDecoder};
use supernode_media::jitter::{JitterBuffer, JitterConfig, JitterStats, Operation};

use crate::EdgeError;
use crate::marks::MarkDetector;
use supernode_media::rfc3550::{ReceiveStats, SeqVerdict};

use super::clock::MediaClock;

/// Samples per 10 ms pull.
pub const PULL: usize = 480;
const PULL_DURATION: Duration = Duration::from_millis(10);
/// Most audio recorded for the report and `--audio-out` (10 minutes).
const MAX_RECORD: usize = 48_000 * 600;

/// The audio receiving half of the engine.
#[derive(Debug)]
pub struct AudioReceiver {
    jb: JitterBuffer<OpusDecoder>,
    /// RTP receive statistics.
    pub stats: ReceiveStats,
    marks: MarkDetector,
    start: Instant,
    /// Absolute sample index of pull 0.
    n0: u64,
    pulls: u64,
    out: Vec<i16>,
    started: bool,
    /// Played-out audio since the first packet, and the absolute index of its first sample.
    record: Vec<i16>,
    record_start: Option<u64>,
    /// Payloads the jitter buffer refused as malformed.
    pub bad_payloads: u64,
}

impl AudioReceiver {
    /// A receiver whose pulls start at the clock's start.
    pub fn new(clock: &MediaClock, mark_period_samples: u64) -> Result<Self, EdgeError> {
        let dec = OpusDecoder::new(48_000, Channels::Mono)?;
        let jb = JitterBuffer::new(dec, JitterConfig::default())?;
        Ok(Self {
            jb,
            stats: ReceiveStats::new(48_000),
            marks: MarkDetector::new(mark_period_samples),
            start: clock.start(),
            n0: clock.sample_index(clock.start()),
            pulls: 0,
            out: vec![0; PULL],
            started: false,
            record: Vec::new(),
            record_start: None,
            bad_payloads: 0,
        })
    }

    /// A received RTP packet.
    pub fn on_packet(&mut self, now: Instant, seq: u16, ts: u32, payload: &[u8]) {
        if self.stats.on_packet(now, seq, ts) == SeqVerdict::Duplicate {
            return;
        }
        if payload.is_empty() {
            self.bad_payloads += 1;
            return;
        }
        match self
            .jb
            .insert(now, seq, ts, Bytes::copy_from_slice(payload))
        {
            Ok(_) => self.started = true,
            Err(_) => self.bad_payloads += 1,
        }
    }

    /// When the next 10 ms pull is due.
    pub fn next_due(&self) -> Instant {
        self.start + PULL_DURATION * self.pulls as u32
    }

    /// Runs every pull due at `now` (each at its own scheduled instant).
    pub fn on_timeout(&mut self, now: Instant) {
        while self.next_due() <= now {
            let at = self.next_due();
            let n = self.n0 + self.pulls * PULL as u64;
            self.pulls += 1;
            let op = match self.jb.pull(at, &mut self.out) {
                Ok(op) => op,
                Err(_) => {
                    self.out.fill(0);
                    Operation::Buffering
                }
            };
            if !self.started {
                continue;
            }
            let _ = op;
            self.marks.push(n, &self.out);
            if self.record_start.is_none() {
                self.record_start = Some(n);
            }
            if self.record.len() < MAX_RECORD {
                self.record.extend_from_slice(&self.out);
            }
        }
    }

    /// Jitter-buffer statistics.
    pub fn jitter_stats(&self) -> JitterStats {
        self.jb.stats()
    }

    /// The timing-mark detector (mouth-to-ear delays).
    pub fn marks(&self) -> &MarkDetector {
        &self.marks
    }

    /// The played-out audio since the first packet arrived, with the absolute playout index
    /// of its first sample.
    pub fn recording(&self) -> (u64, &[i16]) {
        (self.record_start.unwrap_or(self.n0), &self.record)
    }

    /// Takes the recorded audio out.
    pub fn take_recording(&mut self) -> (u64, Vec<i16>) {
        (
            self.record_start.unwrap_or(self.n0),
            std::mem::take(&mut self.record),
        )
    }
}
