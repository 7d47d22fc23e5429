//! The N−1 mixer: one jitter buffer and decoder per participant, one output per participant.

use std::time::Instant;

use bytes::Bytes;

use super::MixerError;
use super::level::AudioLevel;
use super::limiter::SoftLimiter;
use super::speaker::{SpeakerConfig, SpeakerDetector};
use crate::ids::Ssrc;
use crate::jitter::{
    AudioDecoder, FRAME_SAMPLES, InsertOutcome, JitterBuffer, JitterConfig, Operation,
};

/// Configuration of a [`Mixer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixerConfig {
    /// Jitter buffer of each input.
    pub jitter: JitterConfig,
    /// Most participants mixed at once.
    pub max_participants: usize,
    /// Active-speaker detection.
    pub speaker: SpeakerConfig,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            jitter: JitterConfig::default(),
            max_participants: 64,
            speaker: SpeakerConfig::default(),
        }
    }
}

struct Participant<D: AudioDecoder> {
    id: Ssrc,
    jb: JitterBuffer<D>,
    input: Box<[i16]>,
    output: Box<[i16]>,
    limiter: SoftLimiter,
    level: AudioLevel,
    last_op: Operation,
}

/// Mixes N mono 48 kHz participants into N outputs, each without its own voice. See the
/// [module docs](super).
pub struct Mixer<D: AudioDecoder> {
    config: MixerConfig,
    parts: Vec<Participant<D>>,
    sum: Box<[i32]>,
    wide: Box<[i32]>,
    full: Box<[i16]>,
    full_limiter: SoftLimiter,
    speaker: SpeakerDetector,
}

impl<D: AudioDecoder> std::fmt::Debug for Mixer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer")
            .field(
                "participants",
                &self.parts.iter().map(|p| p.id).collect::<Vec<_>>(),
            )
            .field("speaker", &self.active_speaker())
            .finish()
    }
}

impl<D: AudioDecoder> Mixer<D> {
    /// An empty mixer.
    pub fn new(config: MixerConfig) -> Self {
        Self {
            config,
            parts: Vec::new(),
            sum: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            wide: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            full: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            full_limiter: SoftLimiter::default(),
            speaker: SpeakerDetector::new(config.speaker),
        }
    }

    fn index(&self, id: Ssrc) -> Result<usize, MixerError> {
        self.parts
            .iter()
            .position(|p| p.id == id)
            .ok_or(MixerError::UnknownParticipant(id))
    }

    /// Adds participant `id`, whose packets `decoder` (mono, 48 kHz) decodes.
    pub fn add(&mut self, id: Ssrc, decoder: D) -> Result<(), MixerError> {
        if self.parts.iter().any(|p| p.id == id) {
            return Err(MixerError::DuplicateParticipant(id));
        }
        if self.parts.len() >= self.config.max_participants {
            return Err(MixerError::Full(self.config.max_participants));
        }
        if decoder.channel_count() != 1 {
            return Err(MixerError::NotMono);
        }
        let jb = JitterBuffer::new(decoder, self.config.jitter)?;
        self.parts.push(Participant {
            id,
            jb,
            input: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            output: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            limiter: SoftLimiter::default(),
            level: AudioLevel::SILENT,
            last_op: Operation::Buffering,
        });
        self.speaker.push();
        Ok(())
    }

    /// Removes participant `id`; false if it was not there.
    pub fn remove(&mut self, id: Ssrc) -> bool {
        let Ok(i) = self.index(id) else {
            return false;
        };
        self.parts.remove(i);
        self.speaker.remove(i);
        true
    }

    /// Participants, in the order they were added.
    pub fn participants(&self) -> impl ExactSizeIterator<Item = Ssrc> + '_ {
        self.parts.iter().map(|p| p.id)
    }

    /// Gives participant `id`'s jitter buffer one RTP packet (see
    /// [`JitterBuffer::insert`]).
    pub fn insert(
        &mut self,
        id: Ssrc,
        now: Instant,
        seq: u16,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<InsertOutcome, MixerError> {
        let i = self.index(id)?;
        Ok(self.parts[i].jb.insert(now, seq, timestamp, payload)?)
    }

    /// Mixes the next 10 ms: pulls every input, measures its level, updates the active
    /// speaker and computes each participant's output (everyone else, limited). Call it every
    /// 10 ms; then read [`output`](Self::output).
    pub fn mix(&mut self, now: Instant) -> Result<(), MixerError> {
        self.sum.fill(0);
        for p in self.parts.iter_mut() {
            p.last_op = p.jb.pull(now, &mut p.input)?;
            p.level = AudioLevel::measure(&p.input);
            for (s, &x) in self.sum.iter_mut().zip(p.input.iter()) {
                *s += x as i32;
            }
        }
        self.speaker
            .update(self.parts.iter().map(|p| p.level.dbov()));
        self.full_limiter.process(&self.sum, &mut self.full);
        for p in self.parts.iter_mut() {
            for ((w, &s), &own) in self
                .wide
                .iter_mut()
                .zip(self.sum.iter())
                .zip(p.input.iter())
            {
                *w = s - own as i32;
            }
            p.limiter.process(&self.wide, &mut p.output);
        }
        Ok(())
    }

    /// Participant `id`'s last mixed 10 ms (everyone but them), 480 mono samples.
    pub fn output(&self, id: Ssrc) -> Option<&[i16]> {
        self.index(id).ok().map(|i| &self.parts[i].output[..])
    }

    /// The last mixed 10 ms of everyone (the full mix, limited on its own): what a
    /// participant who is not speaking hears, since their own input adds (nearly) nothing.
    pub fn full_output(&self) -> &[i16] {
        &self.full
    }

    /// Participant `id`'s last input level (RFC 6464), what their client sent us.
    pub fn level(&self, id: Ssrc) -> Option<AudioLevel> {
        self.index(id).ok().map(|i| self.parts[i].level)
    }

    /// The operation participant `id`'s jitter buffer ran for the last frame.
    pub fn last_operation(&self, id: Ssrc) -> Option<Operation> {
        self.index(id).ok().map(|i| self.parts[i].last_op)
    }

    /// Participant `id`'s jitter buffer (for its statistics).
    pub fn jitter_buffer(&self, id: Ssrc) -> Option<&JitterBuffer<D>> {
        self.index(id).ok().map(|i| &self.parts[i].jb)
    }

    /// Gain of participant `id`'s output limiter (1 = not limiting).
    pub fn limiter_gain(&self, id: Ssrc) -> Option<f32> {
        self.index(id).ok().map(|i| self.parts[i].limiter.gain())
    }

    /// Who is speaking, with hysteresis.
    pub fn active_speaker(&self) -> Option<Ssrc> {
        self.speaker
            .current()
            .and_then(|i| self.parts.get(i))
            .map(|p| p.id)
    }
}
