//! The jitter buffer: packets in with their arrival time, one 10 ms frame out per pull.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::JitterError;
use super::decoder::AudioDecoder;
use super::delay_manager::{DelayConfig, DelayManager, STALL_MARGIN_MS};
use super::packet_buffer::{PacketBuffer, SeqHistory, SeqSeen, Slot, Stored};
use super::stats::{DelayHistogram, JitterStats};
use super::time_scale::{self, MIN_LAG, TimeScaler};
use crate::packet::seq::{SeqExtender, TimestampUnwrapper};

/// Samples per channel in one pull (10 ms at 48 kHz).
pub const FRAME_SAMPLES: usize = 480;
/// Ticks per millisecond of the 48 kHz RTP clock.
const PER_MS: f64 = 48.0;
/// Longest packet accepted: 120 ms.
const MAX_PACKET: usize = 5760;
/// Cross-fade length of a merge: 2.5 ms.
const MERGE_SAMPLES: usize = 120;
/// A forward jump larger than this restarts the stream (10 s).
const RESET_TS_JUMP: i64 = 480_000;
/// A forward jump of more sequence numbers than this restarts the stream.
const RESET_SEQ_JUMP: i64 = 3000;
/// A gap in timestamps longer than this (1 s) is skipped at once rather than concealed
/// (the sender paused).
const JUMP_GAP: i64 = 48_000;
/// Slack kept above the relative-delay quantile, ms.
const SLACK_MARGIN_MS: f64 = 2.0;
/// Accelerate when the smoothed slack exceeds its target by more than this, ms.
const ACCELERATE_ABOVE_MS: f64 = 12.0;
/// Preemptive-expand when the smoothed slack is below its target by more than this, ms.
const EXPAND_BELOW_MS: f64 = 1.0;
/// How long a missing packet is waited for once a later packet is here (its reordering
/// horizon), ms — NetEQ's limit of ten 10 ms expands. The wait is also bounded by the
/// concealment already played for it (see `step`), so it only runs this long while the
/// buffer holds its target level.
const REORDER_WAIT_MS: f64 = 100.0;

/// Longest wait for a missing packet while less than the target level of later audio is
/// buffered (a stalled or ended stream), ms.
const MAX_WAIT_MS: f64 = 1000.0;

/// How long a missing packet is waited for once its successor is here while the stream
/// keeps flowing, ms: a reordered packet trails its successor by its extra delay less the
/// packet interval (tens of ms on Wi-Fi and cellular paths).
const FLOW_REORDER_WAIT_MS: f64 = 40.0;

/// While stalled, a decoded packet is stretched to this many times its length (pitch
/// periods repeated), so the audio still buffered rides out more of the stall before
/// concealment starts.
const STALL_STRETCH: usize = 2;

/// How the buffer chooses its delay.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Policy {
    /// Follow the network: target level from the relative-delay quantile; accelerate,
    /// preemptive expand, wait (expand) for a late packet and merge it.
    Adaptive(DelayConfig),
    /// A static playout buffer: the first packet plays this long after it arrived (rounded
    /// up to the next pull), every later one at its fixed place on that timeline; no
    /// time-scaling; what is not there in time is concealed and dropped when it comes.
    Fixed(Duration),
}

impl Default for Policy {
    fn default() -> Self {
        Policy::Adaptive(DelayConfig::default())
    }
}

/// Configuration of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterConfig {
    /// Adaptive or fixed.
    pub policy: Policy,
    /// Packets held at most; the oldest is dropped beyond (counted as evicted).
    pub capacity: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            capacity: 250,
        }
    }
}

/// What [`JitterBuffer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// Buffered.
    Accepted,
    /// Buffered; the oldest packet was dropped to make room.
    AcceptedEvicting,
    /// Dropped: already received.
    Duplicate,
    /// Dropped: its time was already played.
    Late,
    /// Dropped: the buffer is full and this packet is older than everything in it.
    Evicted,
}

/// What one [`JitterBuffer::pull`] produced (the last operation that fed the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Silence: playout has not started.
    Buffering,
    /// Decoded audio.
    Normal,
    /// Concealment.
    Expand,
    /// Audio rebuilt from in-band FEC.
    Fec,
    /// Decoded audio shortened by one pitch period.
    Accelerate,
    /// Decoded audio lengthened by one pitch period.
    PreemptiveExpand,
    /// Decoded audio cross-faded in after concealment.
    Merge,
}

/// An audio jitter buffer with its decoder. See the [module docs](super).
#[derive(Debug)]
pub struct JitterBuffer<D: AudioDecoder> {
    decoder: D,
    policy: Policy,
    ch: usize,
    seq: SeqExtender,
    ts: TimestampUnwrapper,
    history: SeqHistory,
    first_seq: Option<i64>,
    max_seq: i64,
    expected_before_reset: u64,
    packets: PacketBuffer,
    sync: VecDeque<i16>,
    decoded: Box<[i16]>,
    scaled: Box<[i16]>,
    tail: Box<[i16]>,
    scaler: TimeScaler,
    delay: DelayManager,
    /// Timestamp of the next sample to decode.
    play_ts: Option<i64>,
    expanding: bool,
    waited: usize,
    /// Of `waited`, samples already counted as the stand-in for given-up audio.
    credited: usize,
    level_ms: Option<f64>,
    /// Smoothed slack: each decoded packet's wait plus its relative delay, i.e. how long
    /// the fastest recent packet would have waited.
    slack_ms: Option<f64>,
    origin: Option<Instant>,
    /// Latest arrival of an accepted packet.
    last_arrival: Option<Instant>,
    last_pull: Option<(Instant, f64)>,
    first_arrival_clock: Option<f64>,
    stats: JitterStats,
    delays: DelayHistogram,
}

impl<D: AudioDecoder> JitterBuffer<D> {
    /// A buffer playing what `decoder` decodes. The decoder must run at 48 kHz, 1 or 2
    /// channels.
    pub fn new(decoder: D, config: JitterConfig) -> Result<Self, JitterError> {
        if decoder.sample_rate() != 48_000 {
            return Err(JitterError::UnsupportedFormat("sample rate must be 48 kHz"));
        }
        let ch = decoder.channel_count();
        if !(1..=2).contains(&ch) {
            return Err(JitterError::UnsupportedFormat("1 or 2 channels"));
        }
        let delay_config = match config.policy {
            Policy::Adaptive(c) => c,
            Policy::Fixed(_) => DelayConfig::default(),
        };
        let mut stats = JitterStats::default();
        if let Policy::Fixed(d) = config.policy {
            stats.target_ms = d.as_secs_f64() * 1000.0;
        }
        Ok(Self {
            decoder,
            policy: config.policy,
            ch,
            seq: SeqExtender::new(),
            ts: TimestampUnwrapper::new(),
            history: SeqHistory::new(),
            first_seq: None,
            max_seq: 0,
            expected_before_reset: 0,
            packets: PacketBuffer::new(config.capacity),
            // Never holds more than one frame plus one stretched 120 ms packet.
            sync: VecDeque::with_capacity((FRAME_SAMPLES + 2 * MAX_PACKET) * ch),
            decoded: vec![0; MAX_PACKET * ch].into_boxed_slice(),
            scaled: vec![0; 2 * MAX_PACKET * ch].into_boxed_slice(),
            tail: vec![0; MERGE_SAMPLES * ch].into_boxed_slice(),
            scaler: TimeScaler::new(MAX_PACKET),
            delay: DelayManager::new(delay_config),
            play_ts: None,
            expanding: false,
            waited: 0,
            credited: 0,
            level_ms: None,
            slack_ms: None,
            origin: None,
            last_arrival: None,
            last_pull: None,
            first_arrival_clock: None,
            stats,
            delays: DelayHistogram::default(),
        })
    }

    /// Interleaved channels of the output.
    pub fn channels(&self) -> usize {
        self.ch
    }

    /// Values one [`pull`](Self::pull) writes: 480 × channels.
    pub fn frame_len(&self) -> usize {
        FRAME_SAMPLES * self.ch
    }

    /// The counters so far.
    pub fn stats(&self) -> JitterStats {
        let mut s = self.stats;
        s.expected = self.expected_before_reset
            + self
                .first_seq
                .map_or(0, |f| (self.max_seq - f + 1).max(0) as u64);
        if let Policy::Adaptive(_) = self.policy {
            s.target_ms = self.delay.target_ms();
        }
        s.level_ms = self.level_ms.unwrap_or(0.0);
        s
    }

    /// Per-packet added delay (arrival to playout).
    pub fn delays(&self) -> &DelayHistogram {
        &self.delays
    }

    /// Packets waiting to be decoded.
    pub fn buffered_packets(&self) -> usize {
        self.packets.len()
    }

    /// The decoder (for its own statistics).
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The playout clock in ms: 10 ms per pull, plus the time since the last pull (at most
    /// one pull). Before the first pull, time since the first packet.
    fn clock_ms(&mut self, now: Instant) -> f64 {
        let origin = *self.origin.get_or_insert(now);
        match self.last_pull {
            None => now.saturating_duration_since(origin).as_secs_f64() * 1000.0,
            Some((at, clock)) => {
                clock + (now.saturating_duration_since(at).as_secs_f64() * 1000.0).min(10.0)
            }
        }
    }

    /// Gives the buffer one RTP packet's sequence number, timestamp (48 kHz) and payload,
    /// received at `now`. Bad payloads are an error (and counted); duplicates and late
    /// packets are dropped, counted and reported in the outcome.
    pub fn insert(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<InsertOutcome, JitterError> {
        if payload.is_empty() {
            self.stats.malformed += 1;
            return Err(JitterError::EmptyPayload);
        }
        let samples = match self.decoder.packet_samples(&payload) {
            Some(s) if s > 0 && s <= MAX_PACKET => s,
            _ => {
                self.stats.malformed += 1;
                return Err(JitterError::MalformedPayload);
            }
        };
        let prev_seq = self.seq.max().map(|s| s.0 as i64);
        let prev_ts = self.ts.last();
        let mut ext_seq = self.seq.extend_signed(seq);
        let mut ext_ts = self.ts.unwrap(timestamp);
        let seq_jump = prev_seq.is_some_and(|p| ext_seq - p > RESET_SEQ_JUMP);
        let ts_jump = prev_ts.is_some_and(|p| ext_ts - p > RESET_TS_JUMP);
        if seq_jump || ts_jump {
            self.reset_stream();
            ext_seq = self.seq.extend_signed(seq);
            ext_ts = self.ts.unwrap(timestamp);
        }
        match self.history.mark(ext_seq) {
            SeqSeen::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(InsertOutcome::Duplicate);
            }
            SeqSeen::TooOld => {
                self.stats.late += 1;
                return Ok(InsertOutcome::Late);
            }
            SeqSeen::New => {}
        }
        let clock = self.clock_ms(now);
        match self.first_seq {
            None => {
                self.first_seq = Some(ext_seq);
                self.max_seq = ext_seq;
            }
            Some(f) => {
                self.first_seq = Some(f.min(ext_seq));
                self.max_seq = self.max_seq.max(ext_seq);
            }
        }
        let relative_ms = match self.policy {
            Policy::Adaptive(_) => {
                self.delay
                    .update(clock, ext_ts as f64 / PER_MS, samples as f64 / PER_MS)
            }
            Policy::Fixed(_) => 0.0,
        };
        if self.play_ts.is_some_and(|p| ext_ts < p) {
            self.stats.late += 1;
            return Ok(InsertOutcome::Late);
        }
        let slot = Slot {
            ts: ext_ts,
            samples,
            arrival: now,
            relative_ms,
            payload,
        };
        let outcome = match self.packets.insert(slot) {
            Stored::Ok => InsertOutcome::Accepted,
            Stored::Duplicate => {
                self.stats.duplicates += 1;
                return Ok(InsertOutcome::Duplicate);
            }
            Stored::Evicted if self.packets.first().is_some_and(|f| f.ts > ext_ts) => {
                self.stats.evicted += 1;
                return Ok(InsertOutcome::Evicted);
            }
            Stored::Evicted => {
                self.stats.evicted += 1;
                InsertOutcome::AcceptedEvicting
            }
        };
        self.stats.accepted += 1;
        self.first_arrival_clock.get_or_insert(clock);
        self.last_arrival = Some(self.last_arrival.map_or(now, |l| l.max(now)));
        Ok(outcome)
    }

    fn reset_stream(&mut self) {
        self.stats.resets += 1;
        if let Some(f) = self.first_seq.take() {
            self.expected_before_reset += (self.max_seq - f + 1).max(0) as u64;
        }
        self.seq = SeqExtender::new();
        self.ts = TimestampUnwrapper::new();
        self.history.reset();
        self.packets.clear();
        self.play_ts = None;
        self.expanding = false;
        self.waited = 0;
        self.credited = 0;
        self.first_arrival_clock = None;
        self.last_arrival = None;
        self.delay.reset_reference();
    }

    /// Writes the next 10 ms of audio (480 × channels interleaved values) into `out` and
    /// says how it was made. Call it every 10 ms of the playout device's clock.
    pub fn pull(&mut self, now: Instant, out: &mut [i16]) -> Result<Operation, JitterError> {
        let need = self.frame_len();
        if out.len() != need {
            return Err(JitterError::OutputSize {
                needed: need,
                got: out.len(),
            });
        }
        let clock = match self.last_pull {
            None => self.clock_ms(now),
            Some((_, c)) => c + 10.0,
        };
        self.origin.get_or_insert(now);
        self.last_pull = Some((now, clock));

        let level = (self.sync.len() / self.ch + self.packets.samples()) as f64 / PER_MS;
        let filtered = match self.level_ms {
            None => level,
            Some(f) => f + (level - f) / 8.0,
        };
        self.level_ms = Some(filtered);

        if self.play_ts.is_none() && !self.try_start(clock) {
            out.fill(0);
            self.stats.ops.buffering += 1;
            self.stats.samples_output += FRAME_SAMPLES as u64;
            return Ok(Operation::Buffering);
        }
        let mut op = Operation::Normal;
        while self.sync.len() < need {
            op = self.step(now);
        }
        let (a, b) = self.sync.as_slices();
        let from_a = a.len().min(need);
        out[..from_a].copy_from_slice(&a[..from_a]);
        out[from_a..].copy_from_slice(&b[..need - from_a]);
        self.sync.drain(..need);
        self.stats.samples_output += FRAME_SAMPLES as u64;
        Ok(op)
    }

    fn try_start(&mut self, clock: f64) -> bool {
        let Some(first) = self.packets.first() else {
            return false;
        };
        let first_ts = first.ts;
        let waited = clock - self.first_arrival_clock.unwrap_or(clock);
        let go = match self.policy {
            Policy::Fixed(d) => waited + 1e-9 >= d.as_secs_f64() * 1000.0,
            Policy::Adaptive(_) => {
                let target = self.delay.target_ms();
                self.packets.samples() as f64 / PER_MS >= target || waited >= target
            }
        };
        if go {
            self.play_ts = Some(first_ts);
            self.expanding = false;
            self.waited = 0;
            self.credited = 0;
        }
        go
    }

    /// The slack to keep: the relative-delay quantile plus a small margin.
    fn target_slack_ms(&self) -> f64 {
        self.delay.quantile_ms() + SLACK_MARGIN_MS
    }

    /// Produces some audio into the sync buffer.
    fn step(&mut self, now: Instant) -> Operation {
        let play = self.play_ts.unwrap_or(0);
        self.stats.late += self.packets.drop_before(play);
        let adaptive = matches!(self.policy, Policy::Adaptive(_));
        let Some(next) = self.packets.first() else {
            return self.conceal(FRAME_SAMPLES, !adaptive);
        };
        let (next_ts, next_samples, next_arrival) = (next.ts, next.samples, next.arrival);
        if next_ts == play {
            return self.decode_next(now, adaptive);
        }
        let gap = next_ts - play;
        // Give the packet up only once the target level of later audio is buffered, and then
        // when its successor has been here for the reordering horizon or it has been
        // concealed for max(target, 60 ms). A shorter horizon loses reordered packets: after
        // a stall the held packets arrive in one burst and a reordered one trails the burst
        // by its whole reordering delay, not by that delay less the packet interval as in a
        // steady flow. Less than the target level buffered means the path is not delivering
        // (a stall that one reordered packet overtook, as on FIFO mobile and Wi-Fi links):
        // the missing packets are delayed, not lost, and playing the one packet would not
        // save concealment anyway, so keep waiting (up to MAX_WAIT_MS, for a stream that
        // ended). A lost packet in a flowing stream is given up as before: later packets
        // keep coming and fill the target level within about the target's time.
        let successor_age = now.saturating_duration_since(next_arrival).as_secs_f64() * 1000.0;
        let buffered_ms = self.packets.samples() as f64 / PER_MS;
        let waited_ms = self.waited as f64 / PER_MS;
        let target = self.delay.target_ms();
        let give_up = !adaptive
            || (self.flowing(now, next_samples) && successor_age >= FLOW_REORDER_WAIT_MS)
            || (buffered_ms >= target
                && (successor_age >= REORDER_WAIT_MS || waited_ms >= target.max(60.0)))
            || waited_ms >= MAX_WAIT_MS;
        if !give_up {
            return self.conceal(FRAME_SAMPLES, false);
        }
        if adaptive && gap > JUMP_GAP {
            self.play_ts = Some(next_ts);
            return self.decode_next(now, adaptive);
        }
        let gap = gap as usize;
        let fec = next_samples.is_multiple_of(MIN_LAG)
            && self
                .decoder
                .has_fec(self.packets.first().map_or(&[][..], |s| &s.payload[..]));
        if fec && gap == next_samples {
            return self.fec(gap);
        }
        // The concealment already played while waiting stands in for the given-up audio
        // (as NetEQ's expand does): move past it without concealing it a second time, so a
        // lost packet costs its wait once, not its wait plus its own length. The packet
        // just before `next` is left to FEC when `next` carries it.
        let creditable = if fec {
            gap - next_samples.min(gap)
        } else {
            gap
        };
        let credit = self.waited.saturating_sub(self.credited).min(creditable);
        if adaptive && credit > 0 {
            self.credited += credit;
            if let Some(p) = self.play_ts.as_mut() {
                *p += credit as i64;
            }
            return Operation::Expand;
        }
        self.conceal(gap.min(FRAME_SAMPLES), true)
    }

    /// Milliseconds since the latest arrival (infinite before any).
    fn since_arrival_ms(&self, now: Instant) -> f64 {
        self.last_arrival.map_or(f64::INFINITY, |l| {
            now.saturating_duration_since(l).as_secs_f64() * 1000.0
        })
    }

    /// Whether nothing has come for longer than a flowing stream ever leaves between two
    /// packets of `samples`: a packet interval plus the jitter quantile plus a margin.
    fn overdue(&self, now: Instant, samples: usize) -> bool {
        self.since_arrival_ms(now)
            > samples as f64 / PER_MS + self.delay.jitter_ms() + STALL_MARGIN_MS
    }

    /// Whether the stream is flowing past a missing packet: later packets keep coming (at
    /// least two are buffered and the latest is not overdue). A lost packet then only needs
    /// waiting for as long as a reordered one would trail its successor.
    fn flowing(&self, now: Instant, samples: usize) -> bool {
        self.packets.len() >= 2 && !self.overdue(now, samples)
    }

    /// Samples worth stretching the packet just decoded (`n` samples) by, when `queued` samples are
    /// ahead of the next packet's place (the sync buffer plus this packet) and that packet
    /// will have to be waited for: the stream stalled (nothing buffered and the next
    /// arrival overdue; as much as possible) or the next packet is missing and its
    /// successor came too recently to give it up when its turn comes (the rest of the
    /// reordering wait).
    fn wait_ahead(&self, now: Instant, n: usize, queued: usize) -> Option<usize> {
        if self.overdue(now, n) {
            // Stalled: nothing came for longer than a flowing stream allows. Stretch while
            // less than the target level is left.
            let level = (queued + self.packets.samples()) as f64 / PER_MS;
            return (level < self.delay.target_ms()).then_some(usize::MAX);
        }
        let next = self.packets.first()?;
        let play = self.play_ts?;
        if next.ts <= play {
            return None;
        }
        let age = now.saturating_duration_since(next.arrival).as_secs_f64() * 1000.0
            + queued as f64 / PER_MS;
        let left = FLOW_REORDER_WAIT_MS - age;
        (left > 0.0).then_some((left * PER_MS) as usize)
    }

    /// A pitch-synchronous lag near `want` (within ±2.5 ms) and at most `max`, if the frame
    /// allows one.
    fn scale_lag(&mut self, n: usize, want: usize, max: usize) -> Option<usize> {
        let lo = want.saturating_sub(MIN_LAG).max(MIN_LAG);
        let hi = (want + MIN_LAG).min(max);
        if hi < lo {
            return None;
        }
        self.scaler
            .find_period(&self.decoded, self.ch, n, (lo, hi), want)
    }

    fn push_sync(&mut self, from_decoded: bool, n: usize) {
        let src = if from_decoded {
            &self.decoded[..n * self.ch]
        } else {
            &self.scaled[..n * self.ch]
        };
        self.sync.extend(src);
    }

    /// Conceals `n` samples (rounded up to 2.5 ms); `advance` moves past them in the
    /// stream (the packet is given up), otherwise the buffer waits for it.
    fn conceal(&mut self, n: usize, advance: bool) -> Operation {
        let len = n.div_ceil(MIN_LAG).clamp(1, FRAME_SAMPLES / MIN_LAG) * MIN_LAG;
        let out = &mut self.decoded[..len * self.ch];
        if self.decoder.conceal(out).is_err() {
            out.fill(0);
        }
        self.push_sync(true, len);
        self.stats.ops.expand += 1;
        self.stats.samples_concealed += len as u64;
        self.expanding = true;
        if advance {
            if let Some(p) = self.play_ts.as_mut() {
                *p += n as i64;
            }
        } else {
            self.waited += len;
        }
        Operation::Expand
    }

    fn fec(&mut self, gap: usize) -> Operation {
        let Some(next) = self.packets.first() else {
            return self.conceal(gap, true);
        };
        let payload = next.payload.clone();
        let out = &mut self.decoded[..gap * self.ch];
        match self.decoder.decode_fec(&payload, out) {
            Ok(n) if n == gap => {}
            _ => return self.conceal(gap, true),
        }
        self.push_sync(true, gap);
        self.stats.ops.fec += 1;
        self.stats.samples_fec += gap as u64;
        if let Some(p) = self.play_ts.as_mut() {
            *p += gap as i64;
        }
        self.expanding = false;
        self.waited = 0;
        self.credited = 0;
        Operation::Fec
    }

    fn decode_next(&mut self, now: Instant, adaptive: bool) -> Operation {
        let Some(slot) = self.packets.pop_first() else {
            return self.conceal(FRAME_SAMPLES, !adaptive);
        };
        if let Some(p) = self.play_ts.as_mut() {
            *p = slot.ts + slot.samples as i64;
        }
        self.waited = 0;
        self.credited = 0;
        let ch = self.ch;
        let n = match self.decoder.decode(&slot.payload, &mut self.decoded) {
            Ok(n) if n > 0 && n <= MAX_PACKET => n,
            _ => {
                self.stats.decode_errors += 1;
                // Treat as lost: conceal its duration (already advanced past it).
                let op = self.conceal(slot.samples.min(FRAME_SAMPLES), false);
                self.waited = 0;
                self.credited = 0;
                return op;
            }
        };
        let ahead = self.sync.len() / ch;
        let played_at = now + Duration::from_secs_f64(ahead as f64 / 48_000.0);
        self.delays
            .add(played_at.saturating_duration_since(slot.arrival));
        // Slack against the decode deadline (this pull): how long the fastest recent packet
        // would have waited here. Decoding happens on the 10 ms pull grid, so this is what a
        // later packet can be late by without a pause.
        let waited = now.saturating_duration_since(slot.arrival).as_secs_f64() * 1000.0;
        let slack = waited + slot.relative_ms;
        let slack = match self.slack_ms {
            None => slack,
            Some(f) => f + (slack - f) / 8.0,
        };
        self.slack_ms = Some(slack);

        if self.expanding {
            self.expanding = false;
            let tail = &mut self.tail[..MERGE_SAMPLES * ch];
            if self.decoder.conceal(tail).is_ok() {
                time_scale::fade_in_from(tail, &mut self.decoded[..n * ch], ch, MERGE_SAMPLES);
            }
            self.push_sync(true, n);
            self.stats.ops.merge += 1;
            return Operation::Merge;
        }
        // The next packet is not here and will be waited for (a stall, or a hole whose
        // successor came only just now): stretch this packet (repeat pitch periods) so that
        // real audio, not concealment, fills the wait.
        if adaptive
            && n >= 2 * MIN_LAG
            && let Some(want) = self.wait_ahead(now, n, ahead + n)
            && let Some(lag) = self.scaler.find_period(
                &self.decoded,
                ch,
                n,
                (MIN_LAG, time_scale::MAX_LAG),
                time_scale::MAX_LAG,
            )
        {
            let most = (STALL_STRETCH - 1) * n;
            let times = want.min(most).div_ceil(lag).clamp(1, most / lag);
            let m = time_scale::repeat_periods(&self.decoded, ch, n, lag, times, &mut self.scaled);
            self.push_sync(false, m);
            self.stats.ops.preemptive_expand += 1;
            self.stats.samples_added += (m - n) as u64;
            self.slack_ms = Some(slack + (m - n) as f64 / PER_MS);
            return Operation::PreemptiveExpand;
        }
        if adaptive && n >= 2 * MIN_LAG {
            // Time-scale so that the audio queued ahead ends on the pull grid again: decoding
            // only happens at pulls, so samples left over after a pull only add delay.
            let rem = (ahead + n) % FRAME_SAMPLES;
            let excess = slack - self.target_slack_ms();
            if excess > ACCELERATE_ABOVE_MS {
                let want = if rem >= MIN_LAG {
                    rem
                } else {
                    rem + FRAME_SAMPLES
                };
                if let Some(lag) = self.scale_lag(n, want, n / 2) {
                    let m = time_scale::remove_period(&self.decoded, ch, n, lag, &mut self.scaled);
                    self.push_sync(false, m);
                    self.stats.ops.accelerate += 1;
                    self.stats.samples_removed += lag as u64;
                    self.slack_ms = Some(slack - lag as f64 / PER_MS);
                    return Operation::Accelerate;
                }
            } else if excess < -EXPAND_BELOW_MS {
                let fill = (FRAME_SAMPLES - rem) % FRAME_SAMPLES;
                let want = if fill >= MIN_LAG {
                    fill
                } else {
                    fill + FRAME_SAMPLES
                };
                if let Some(lag) = self.scale_lag(n, want, n) {
                    let m = time_scale::repeat_period(&self.decoded, ch, n, lag, &mut self.scaled);
                    self.push_sync(false, m);
                    self.stats.ops.preemptive_expand += 1;
                    self.stats.samples_added += lag as u64;
                    self.slack_ms = Some(slack + lag as f64 / PER_MS);
                    return Operation::PreemptiveExpand;
                }
            } else if rem > 0 {
                // Realign: drop the leftover that would delay the next packet without
                // moving its decode deadline (any lag in silence, a pitch period otherwise).
                let lo = rem.saturating_sub(MIN_LAG / 2).max(1);
                if let Some(lag) = self
                    .scaler
                    .find_period(&self.decoded, ch, n, (lo, rem), rem)
                {
                    let m = time_scale::remove_period(&self.decoded, ch, n, lag, &mut self.scaled);
                    self.push_sync(false, m);
                    self.stats.ops.accelerate += 1;
                    self.stats.samples_removed += lag as u64;
                    return Operation::Accelerate;
                }
            }
        }
        self.push_sync(true, n);
        self.stats.ops.normal += 1;
        Operation::Normal
    }
}
