//! [`AudioConference`]: the audio MCU of one conference, sans-IO.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ParticipantId;
use super::error::ConferenceError;
use super::event::{ConferenceEvent, Transmit};
use super::out_stream::{MAX_PACKET, OutStream};
use super::rate::PacketBucket;
use crate::codec::CodecError;
use crate::codec::opus::{Channels, OpusConfig, OpusDecoder, OpusEncoder};
use crate::ids::{Pt, Ssrc};
use crate::jitter::{FRAME_SAMPLES, InsertOutcome};
use crate::mixer::{AudioLevel, Mixer, MixerConfig};
use crate::packet::rtp::RtpPacket;

/// The mixer's clock: one mix every 10 ms.
pub const TICK: Duration = Duration::from_millis(10);

/// Configuration of an [`AudioConference`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConferenceConfig {
    /// Jitter buffers, most participants, active-speaker hysteresis.
    pub mixer: MixerConfig,
    /// The encoder of each mix (48 kHz mono; 10, 20, 40 or 60 ms frames).
    pub opus: OpusConfig,
    /// RTP payload type of Opus, in and out.
    pub payload_type: Pt,
    /// RFC 8285 one-byte extension id of the RFC 6464 audio level written in every mixed
    /// packet (the level of that mix); `None` writes no extension.
    pub audio_level_ext: Option<u8>,
    /// Packets per second a participant may send (more are dropped and counted).
    pub max_packets_per_second: u32,
    /// How long a participant stays "speaking" after its last voiced 10 ms.
    pub speaking_hangover: Duration,
    /// Most overdue 10 ms ticks run at once when the driver was late; beyond that the
    /// mixer skips ahead (counted in [`ConferenceStats::ticks_skipped`]).
    pub max_catch_up_ticks: u32,
}

impl Default for ConferenceConfig {
    fn default() -> Self {
        Self {
            mixer: MixerConfig {
                max_participants: 32,
                ..MixerConfig::default()
            },
            opus: OpusConfig {
                complexity: 5,
                ..OpusConfig::default()
            },
            payload_type: Pt(111),
            audio_level_ext: Some(1),
            max_packets_per_second: 200,
            speaking_hangover: Duration::from_millis(400),
            max_catch_up_ticks: 5,
        }
    }
}

/// Counters of one participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParticipantStats {
    /// RTP packets accepted into its jitter buffer.
    pub packets_in: u64,
    /// Dropped: over the packet-rate cap.
    pub dropped_rate: u64,
    /// Dropped: not RTP, not the conference's payload type, not Opus.
    pub dropped_malformed: u64,
    /// Dropped by the jitter buffer: duplicate, late or evicted.
    pub dropped_late: u64,
    /// Mixed packets sent to it.
    pub packets_out: u64,
    /// Of those, encoded for it alone (it was speaking: its own N−1 mix).
    pub own_mix_packets: u64,
}

/// Counters of the conference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConferenceStats {
    /// 10 ms mixes run.
    pub ticks: u64,
    /// 10 ms ticks skipped because the driver fell behind.
    pub ticks_skipped: u64,
    /// Opus encodes of the full mix (shared by every participant not speaking).
    pub shared_encodes: u64,
    /// Opus encodes of a speaker's own N−1 mix.
    pub own_encodes: u64,
    /// Encoder or mixer failures (the frame was not sent).
    pub errors: u64,
}

struct Member {
    id: ParticipantId,
    out: OutStream,
    /// Created the first time this participant speaks, then kept.
    encoder: Option<OpusEncoder>,
    /// Its N−1 mix of the packet being assembled.
    pcm: Box<[i16]>,
    voice_in_packet: bool,
    speaking_until: Option<Instant>,
    speaking: bool,
    bucket: PacketBucket,
    stats: ParticipantStats,
    tx: Box<[u8]>,
    tx_len: Option<usize>,
}

/// The audio MCU of one conference. See the [module docs](super).
pub struct AudioConference {
    config: ConferenceConfig,
    mixer: Mixer<OpusDecoder>,
    members: Vec<Member>,
    frames_per_packet: usize,
    frame_in_packet: usize,
    next_tick: Option<Instant>,
    shared_encoder: OpusEncoder,
    shared_pcm: Box<[i16]>,
    shared_packet: Box<[u8]>,
    encode_scratch: Box<[u8]>,
    active: Option<ParticipantId>,
    events: VecDeque<ConferenceEvent>,
    tx_cursor: usize,
    stats: ConferenceStats,
}

impl std::fmt::Debug for AudioConference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioConference")
            .field(
                "participants",
                &self.members.iter().map(|m| m.id).collect::<Vec<_>>(),
            )
            .field("active_speaker", &self.active)
            .field("stats", &self.stats)
            .finish()
    }
}

fn key(id: ParticipantId) -> Ssrc {
    Ssrc(id.0)
}

impl AudioConference {
    /// An empty conference. Fails if the Opus settings are not 48 kHz mono with a frame
    /// of 10 ms or a multiple of it.
    pub fn new(config: ConferenceConfig) -> Result<Self, ConferenceError> {
        if config.opus.sample_rate != 48_000 || config.opus.channels != Channels::Mono {
            return Err(CodecError::InvalidConfig("the conference mixes 48 kHz mono").into());
        }
        let samples = config.opus.samples_per_frame();
        let shared_encoder = OpusEncoder::new(&config.opus)?;
        Ok(Self {
            config,
            mixer: Mixer::new(config.mixer),
            members: Vec::new(),
            frames_per_packet: samples / FRAME_SAMPLES,
            frame_in_packet: 0,
            next_tick: None,
            shared_encoder,
            shared_pcm: vec![0; samples].into_boxed_slice(),
            shared_packet: vec![0; MAX_PACKET].into_boxed_slice(),
            encode_scratch: vec![0; MAX_PACKET].into_boxed_slice(),
            active: None,
            events: VecDeque::with_capacity(64),
            tx_cursor: 0,
            stats: ConferenceStats::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ConferenceConfig {
        &self.config
    }

    fn index(&self, id: ParticipantId) -> Result<usize, ConferenceError> {
        self.members
            .iter()
            .position(|m| m.id == id)
            .ok_or(ConferenceError::UnknownParticipant(id))
    }

    /// Adds participant `id` at `now`; its mix goes out as RTP with SSRC `out_ssrc`.
    /// Errors: [`ConferenceError::Full`] past `max_participants`,
    /// [`ConferenceError::DuplicateParticipant`].
    pub fn add(
        &mut self,
        now: Instant,
        id: ParticipantId,
        out_ssrc: Ssrc,
    ) -> Result<(), ConferenceError> {
        if self.members.iter().any(|m| m.id == id) {
            return Err(ConferenceError::DuplicateParticipant(id));
        }
        if self.members.len() >= self.config.mixer.max_participants {
            return Err(ConferenceError::Full(self.config.mixer.max_participants));
        }
        let decoder = OpusDecoder::new(48_000, Channels::Mono)?;
        self.mixer.add(key(id), decoder)?;
        let pps = self.config.max_packets_per_second;
        self.members.push(Member {
            id,
            out: OutStream::new(
                out_ssrc,
                self.config.payload_type,
                self.config.audio_level_ext,
            ),
            encoder: None,
            pcm: vec![0; self.shared_pcm.len()].into_boxed_slice(),
            voice_in_packet: false,
            speaking_until: None,
            speaking: false,
            bucket: PacketBucket::new(pps, (pps / 5).max(4)),
            stats: ParticipantStats::default(),
            tx: vec![0; MAX_PACKET].into_boxed_slice(),
            tx_len: None,
        });
        if self.next_tick.is_none() {
            self.next_tick = Some(now + TICK);
        }
        Ok(())
    }

    /// Removes participant `id`; false if it was not there. The others' mixes go on
    /// without a gap.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        let Ok(i) = self.index(id) else {
            return false;
        };
        self.members.remove(i);
        self.mixer.remove(key(id));
        if self.members.is_empty() {
            self.next_tick = None;
        }
        if self.active == Some(id) {
            self.active = None;
            self.events.push_back(ConferenceEvent::ActiveSpeaker(None));
        }
        self.tx_cursor = 0;
        true
    }

    /// Participants, in the order they joined.
    pub fn participants(&self) -> impl ExactSizeIterator<Item = ParticipantId> + '_ {
        self.members.iter().map(|m| m.id)
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether nobody is in.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Gives the conference one RTP datagram (SRTP already removed) from participant
    /// `from`, received at `now`. Errors are drops, counted in the participant's
    /// [`ParticipantStats`]; they never affect anyone else's mix.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        from: ParticipantId,
        datagram: Bytes,
    ) -> Result<InsertOutcome, ConferenceError> {
        let i = self.index(from)?;
        let m = &mut self.members[i];
        if !m.bucket.take(now) {
            m.stats.dropped_rate += 1;
            return Err(ConferenceError::RateLimited(from));
        }
        let (seq, ts, range) = match RtpPacket::parse(&datagram) {
            Ok(p) if p.payload_type() == self.config.payload_type => {
                let at = p.payload_offset();
                (
                    p.sequence_number(),
                    p.timestamp(),
                    at..at + p.payload().len(),
                )
            }
            Ok(p) => {
                m.stats.dropped_malformed += 1;
                return Err(ConferenceError::WrongPayloadType(p.payload_type()));
            }
            Err(e) => {
                m.stats.dropped_malformed += 1;
                return Err(ConferenceError::Malformed(e));
            }
        };
        match self
            .mixer
            .insert(key(from), now, seq, ts, datagram.slice(range))
        {
            Ok(outcome) => {
                match outcome {
                    InsertOutcome::Accepted | InsertOutcome::AcceptedEvicting => {
                        m.stats.packets_in += 1
                    }
                    _ => m.stats.dropped_late += 1,
                }
                Ok(outcome)
            }
            Err(e) => {
                m.stats.dropped_malformed += 1;
                Err(e.into())
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next (`None` while empty).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Runs the 10 ms mixes due by `now`, up to and including the next Opus frame's
    /// encode, which leaves one packet per participant for
    /// [`poll_transmit`](Self::poll_transmit); drain it (and
    /// [`poll_event`](Self::poll_event)), then call again while
    /// [`poll_timeout`](Self::poll_timeout) is still due. A driver more than
    /// `max_catch_up_ticks` behind has the oldest ticks skipped (counted in
    /// [`ConferenceStats::ticks_skipped`]; the streams' timestamps jump by the skipped time).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(mut t) = self.next_tick else {
            return;
        };
        if t > now {
            return;
        }
        let due = (now.saturating_duration_since(t).as_nanos() / TICK.as_nanos()) as u64 + 1;
        let max = u64::from(self.config.max_catch_up_ticks.max(1));
        if due > max {
            let skip = due - max;
            self.stats.ticks_skipped += skip;
            let samples = (skip as u32).wrapping_mul(FRAME_SAMPLES as u32);
            for m in &mut self.members {
                m.out.skip(samples);
            }
            t += TICK * skip as u32;
        }
        while t <= now {
            let encoded = self.tick(t);
            t += TICK;
            if encoded {
                break;
            }
        }
        self.next_tick = Some(t);
    }

    /// One 10 ms mix; true if it completed an Opus frame (packets are waiting).
    fn tick(&mut self, now: Instant) -> bool {
        self.stats.ticks += 1;
        if self.mixer.mix(now).is_err() {
            self.stats.errors += 1;
        }
        let k = self.frame_in_packet;
        let span = k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES;
        for m in &mut self.members {
            if self.mixer.level(key(m.id)).is_some_and(|l| l.voice) {
                m.voice_in_packet = true;
            }
            if let Some(out) = self.mixer.output(key(m.id)) {
                m.pcm[span.clone()].copy_from_slice(out);
            }
        }
        self.shared_pcm[span].copy_from_slice(self.mixer.full_output());
        let active = self.mixer.active_speaker().map(|s| ParticipantId(s.0));
        if active != self.active {
            self.active = active;
            self.events
                .push_back(ConferenceEvent::ActiveSpeaker(active));
        }
        self.frame_in_packet += 1;
        if self.frame_in_packet == self.frames_per_packet {
            self.frame_in_packet = 0;
            self.encode(now);
            return true;
        }
        false
    }

    /// Encodes and packetizes one Opus frame for everyone: a speaker's own N−1 mix with its
    /// own encoder, everyone else the one shared encode of the full mix.
    fn encode(&mut self, now: Instant) {
        let Self {
            config,
            members,
            shared_encoder,
            shared_pcm,
            shared_packet,
            encode_scratch,
            events,
            stats,
            ..
        } = self;
        let samples = shared_pcm.len() as u32;
        let mut shared: Option<Result<usize, CodecError>> = None;
        let mut shared_level = AudioLevel::SILENT;
        for m in members.iter_mut() {
            if m.voice_in_packet {
                m.speaking_until = Some(now + config.speaking_hangover);
            }
            let speaking = m.voice_in_packet || m.speaking_until.is_some_and(|u| now < u);
            m.voice_in_packet = false;
            if speaking != m.speaking {
                m.speaking = speaking;
                events.push_back(ConferenceEvent::Speaking {
                    participant: m.id,
                    speaking,
                });
            }
            let written = if speaking {
                let enc = match &mut m.encoder {
                    Some(e) => Ok(e),
                    None => OpusEncoder::new(&config.opus).map(|e| m.encoder.insert(e)),
                };
                match enc.and_then(|e| e.encode(&m.pcm, encode_scratch)) {
                    Ok(n) => {
                        stats.own_encodes += 1;
                        m.stats.own_mix_packets += 1;
                        let level = AudioLevel::measure(&m.pcm);
                        m.out
                            .write(&encode_scratch[..n], samples, level, &mut m.tx)
                            .ok()
                    }
                    Err(_) => None,
                }
            } else {
                let r = *shared.get_or_insert_with(|| {
                    shared_level = AudioLevel::measure(shared_pcm);
                    let r = shared_encoder.encode(shared_pcm, shared_packet);
                    if r.is_ok() {
                        stats.shared_encodes += 1;
                    }
                    r
                });
                r.ok().and_then(|n| {
                    m.out
                        .write(&shared_packet[..n], samples, shared_level, &mut m.tx)
                        .ok()
                })
            };
            match written {
                Some(n) => {
                    m.tx_len = Some(n);
                    m.stats.packets_out += 1;
                }
                None => {
                    stats.errors += 1;
                    m.out.skip(samples);
                }
            }
        }
        self.tx_cursor = 0;
    }

    /// The next mixed packet to send, if any (each participant's packet once per Opus frame).
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        while self.tx_cursor < self.members.len() {
            let i = self.tx_cursor;
            self.tx_cursor += 1;
            if let Some(n) = self.members[i].tx_len.take() {
                let m = &self.members[i];
                return Some(Transmit {
                    to: m.id,
                    packet: &m.tx[..n],
                });
            }
        }
        None
    }

    /// The next roster change, if any.
    pub fn poll_event(&mut self) -> Option<ConferenceEvent> {
        self.events.pop_front()
    }

    /// Whether participant `id` is speaking (voice, with the hangover).
    pub fn is_speaking(&self, id: ParticipantId) -> Option<bool> {
        self.index(id).ok().map(|i| self.members[i].speaking)
    }

    /// Participant `id`'s last input level (RFC 6464).
    pub fn level(&self, id: ParticipantId) -> Option<AudioLevel> {
        self.mixer.level(key(id))
    }

    /// The active speaker (loudest, with hysteresis).
    pub fn active_speaker(&self) -> Option<ParticipantId> {
        self.active
    }

    /// The SSRC of participant `id`'s mixed stream.
    pub fn out_ssrc(&self, id: ParticipantId) -> Option<Ssrc> {
        self.index(id).ok().map(|i| self.members[i].out.ssrc())
    }

    /// Participant `id`'s counters.
    pub fn participant_stats(&self, id: ParticipantId) -> Option<ParticipantStats> {
        self.index(id).ok().map(|i| self.members[i].stats)
    }

    /// Participant `id`'s jitter-buffer statistics.
    pub fn jitter_stats(&self, id: ParticipantId) -> Option<crate::jitter::JitterStats> {
        self.mixer.jitter_buffer(key(id)).map(|jb| jb.stats())
    }

    /// The conference's counters.
    pub fn stats(&self) -> ConferenceStats {
        self.stats
    }
}
