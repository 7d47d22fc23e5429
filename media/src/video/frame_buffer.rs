//! [`FrameBuffer`]: packets in, decodable frames, NACKs and PLIs out.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::packet::seq::SeqExtender;

/// One received RTP packet of a video stream, with the framing hints its payload gives
/// (for H.264, from `crate::payload::h264::inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoPacket {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (all packets of a frame share it).
    pub timestamp: u32,
    /// RTP marker bit: last packet of a frame.
    pub marker: bool,
    /// The payload starts a frame.
    pub frame_start: bool,
    /// The payload belongs to a keyframe (decodable without earlier frames).
    pub keyframe: bool,
    /// The RTP payload.
    pub payload: Bytes,
}

/// Settings of a [`FrameBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBufferConfig {
    /// Packets held at most (rounded up to a power of two). A gap wider than this is not
    /// NACKed: the buffer asks for a keyframe instead.
    pub capacity: usize,
    /// Wait this long after spotting a gap before the first NACK (reordering allowance).
    pub reorder_wait: Duration,
    /// NACKs per missing packet before giving up on it.
    pub max_nack_retries: u32,
    /// Give up on a missing packet this long after it was spotted.
    pub max_nack_age: Duration,
    /// Floor of the NACK retry interval (retries are otherwise one RTT apart).
    pub min_retry_interval: Duration,
    /// Round-trip time assumed until [`FrameBuffer::set_rtt`] is called.
    pub initial_rtt: Duration,
    /// Minimum time between two PLIs (and at least one RTT).
    pub pli_interval: Duration,
    /// With no keyframe in sight, wait this long before the first PLI (a keyframe's packets
    /// may just be late).
    pub keyframe_grace: Duration,
    /// Tail loss: when the newest packet is not the end of its frame (no marker) and nothing
    /// newer arrives for this long (at least `reorder_wait`), the packet after it is taken as
    /// missing and NACKed like any other (see [`FrameBuffer`]).
    pub tail_wait: Duration,
}

impl Default for FrameBufferConfig {
    fn default() -> Self {
        Self {
            capacity: 2048,
            reorder_wait: Duration::from_millis(5),
            max_nack_retries: 6,
            max_nack_age: Duration::from_millis(500),
            min_retry_interval: Duration::from_millis(10),
            initial_rtt: Duration::from_millis(100),
            pli_interval: Duration::from_millis(250),
            keyframe_grace: Duration::from_millis(50),
            tail_wait: Duration::from_millis(30),
        }
    }
}

/// Why [`FrameBuffer::insert`] did not keep a packet. Each is counted in the stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The packet was already received.
    #[error("duplicate packet")]
    Duplicate,
    /// The packet belongs to a frame already handed out or skipped.
    #[error("packet too old")]
    TooOld,
}

/// Feedback for the sender, to be sent as RTCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    /// Generic NACK (RFC 4585 §6.2.1): please retransmit these sequence numbers.
    Nack(Vec<u16>),
    /// Picture loss indication (RFC 4585 §6.3.1): please send a keyframe.
    Pli,
}

/// A frame handed out by [`FrameBuffer::pop_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// RTP timestamp of the frame.
    pub timestamp: u32,
    /// Sequence number of its first packet.
    pub first_seq: u16,
    /// Sequence number of its last packet.
    pub last_seq: u16,
    /// The frame is a keyframe.
    pub keyframe: bool,
    /// Frames skipped (never complete) to reach this one.
    pub skipped_before: u32,
}

/// Counters of a [`FrameBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameBufferStats {
    /// Packets kept.
    pub packets: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Packets dropped because their frame was already handed out or skipped.
    pub too_old: u64,
    /// Frames handed out.
    pub frames: u64,
    /// Keyframes among them.
    pub keyframes: u64,
    /// Sequence numbers put in NACKs (retries included).
    pub nacked: u64,
    /// Missing packets that arrived after being spotted missing.
    pub recovered: u64,
    /// Missing packets given up on.
    pub abandoned: u64,
    /// Tail losses spotted by the `tail_wait` timer: a frame left open (no marker) with
    /// nothing newer arriving, so the packet after the newest was taken as missing.
    pub tail_probes: u64,
    /// PLIs sent.
    pub plis: u64,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    seq: i64,
    used: bool,
    timestamp: u32,
    marker: bool,
    frame_start: bool,
    keyframe: bool,
    payload: Bytes,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    sent: u32,
    last_sent: Option<Instant>,
}

/// Orders packets into frames and decides when a frame is decodable (see the module docs).
///
/// A frame is *complete* when its packets from the frame-start packet to the marker packet
/// are all here. It is *decodable* when it is complete and either a keyframe or the frame
/// right after the last one handed out (no packet missing in between). Frames come out in
/// order. When a loss cannot be repaired (retries or time exhausted, or a gap too wide), the
/// buffer waits for a keyframe, asks for one with PLI, and repeats the PLI every
/// `max(pli_interval, rtt)` until one arrives; a complete keyframe makes everything older
/// obsolete.
///
/// **Tail loss.** A gap in sequence numbers is only visible once a newer packet arrives. When
/// the *last* packets of a frame are lost and nothing follows (the end of a loss burst, or the
/// sender pausing after that frame), no newer packet ever proves the loss. So when the newest
/// packet has no marker (its frame is still open) and nothing newer has arrived for
/// `max(tail_wait, reorder_wait)`, the next sequence number is entered as missing and goes
/// through the same NACK retries (one RTT apart), age limit and, when they run out, PLI as any
/// other loss. When its retransmission arrives and still does not close the frame, the timer
/// starts again for the packet after it. (A sender that never sets the marker bit gets at
/// most one needless NACK per pause: the frame then ends only when the next frame starts.)
///
/// Storage is a ring of `capacity` slots allocated once; payloads are `Bytes` handles, so a
/// packet costs no allocation.
#[derive(Debug)]
pub struct FrameBuffer {
    cfg: FrameBufferConfig,
    slots: Vec<Slot>,
    mask: usize,
    ext: SeqExtender,
    /// Highest sequence number stored.
    highest: Option<i64>,
    /// When the highest sequence number arrived.
    highest_at: Option<Instant>,
    /// The highest sequence number whose successor was already probed as a tail loss.
    tail_probed: Option<i64>,
    /// First sequence number of the next frame in decode order (everything below is done).
    next: Option<i64>,
    waiting_keyframe: bool,
    waiting_since: Option<Instant>,
    last_pli: Option<Instant>,
    pli_due: bool,
    missing: BTreeMap<i64, Missing>,
    key_starts: VecDeque<i64>,
    rtt: Duration,
    stats: FrameBufferStats,
}

impl FrameBuffer {
    /// An empty buffer waiting for its first keyframe.
    pub fn new(cfg: FrameBufferConfig) -> Self {
        let cap = cfg.capacity.clamp(16, 1 << 16).next_power_of_two();
        Self {
            cfg,
            slots: vec![Slot::default(); cap],
            mask: cap - 1,
            ext: SeqExtender::new(),
            highest: None,
            highest_at: None,
            tail_probed: None,
            next: None,
            waiting_keyframe: true,
            waiting_since: None,
            last_pli: None,
            pli_due: false,
            missing: BTreeMap::new(),
            key_starts: VecDeque::new(),
            rtt: cfg.initial_rtt,
            stats: FrameBufferStats::default(),
        }
    }

    /// Updates the round-trip time that paces NACK retries and PLIs.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Counters so far.
    pub fn stats(&self) -> FrameBufferStats {
        self.stats
    }

    /// Whether the buffer waits for a keyframe before it can hand out frames again.
    pub fn waiting_for_keyframe(&self) -> bool {
        self.waiting_keyframe
    }

    /// Sequence numbers currently known missing.
    pub fn missing_count(&self) -> usize {
        self.missing.len()
    }

    fn slot(&self, seq: i64) -> Option<&Slot> {
        let s = &self.slots[(seq as usize) & self.mask];
        (s.used && s.seq == seq).then_some(s)
    }

    fn start_waiting(&mut self, now: Instant, immediate_pli: bool) {
        if !self.waiting_keyframe {
            self.waiting_keyframe = true;
            self.waiting_since = Some(now);
        }
        if immediate_pli {
            self.pli_due = true;
        }
    }

    /// Takes in one packet received at `now`.
    pub fn insert(&mut self, now: Instant, p: VideoPacket) -> Result<(), InsertError> {
        let seq = self.ext.extend_signed(p.seq);
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now);
        }
        if self.next.is_some_and(|n| seq < n) {
            self.stats.too_old += 1;
            return Err(InsertError::TooOld);
        }
        if self.slot(seq).is_some() {
            self.stats.duplicates += 1;
            return Err(InsertError::Duplicate);
        }
        let cap = self.slots.len() as i64;
        match self.highest {
            Some(h) if seq + cap <= h => {
                self.stats.too_old += 1;
                return Err(InsertError::TooOld);
            }
            Some(h) if seq > h => {
                if seq - h > cap / 2 {
                    // Too wide to repair packet by packet.
                    self.missing.clear();
                    self.start_waiting(now, true);
                } else {
                    // `h + 1` may already be there as a tail probe: keep its retry state.
                    for m in h + 1..seq {
                        self.missing.entry(m).or_insert(Missing {
                            since: now,
                            sent: 0,
                            last_sent: None,
                        });
                    }
                    if self.missing.remove(&seq).is_some() {
                        self.stats.recovered += 1;
                    }
                }
                self.highest = Some(seq);
                self.highest_at = Some(now);
            }
            Some(_) => {
                if self.missing.remove(&seq).is_some() {
                    self.stats.recovered += 1;
                }
            }
            None => {
                self.highest = Some(seq);
                self.highest_at = Some(now);
            }
        }
        // Forget what fell out of the window.
        let floor = self.highest.unwrap_or(seq) - cap;
        while let Some((&m, _)) = self.missing.first_key_value() {
            if m > floor {
                break;
            }
            self.missing.pop_first();
        }
        if p.keyframe && p.frame_start {
            self.key_starts.push_back(seq);
            if self.key_starts.len() > 64 {
                self.key_starts.pop_front();
            }
        }
        self.slots[(seq as usize) & self.mask] = Slot {
            seq,
            used: true,
            timestamp: p.timestamp,
            marker: p.marker,
            frame_start: p.frame_start,
            keyframe: p.keyframe,
            payload: p.payload,
        };
        self.stats.packets += 1;
        Ok(())
    }

    /// If the frame starting at `start` is complete, its last sequence number and whether
    /// any of its packets is a keyframe packet.
    fn complete_from(&self, start: i64) -> Option<(i64, bool)> {
        let first = self.slot(start)?;
        let ts = first.timestamp;
        let mut key = first.keyframe;
        let mut q = start;
        let highest = self.highest?;
        loop {
            let s = self.slot(q)?;
            if s.timestamp != ts {
                // The previous packet ended the frame although it had no marker.
                return (q > start && s.frame_start).then_some((q - 1, key));
            }
            key |= s.keyframe;
            if s.marker {
                return Some((q, key));
            }
            if q >= highest {
                return None;
            }
            q += 1;
        }
    }

    /// Hands out the next decodable frame, if any: its payloads go into `payloads` (cleared
    /// first) in sequence order.
    pub fn pop_frame(&mut self, payloads: &mut Vec<Bytes>) -> Option<FrameInfo> {
        // The frame right after the last one, when nothing is missing in between.
        let mut found = None;
        if !self.waiting_keyframe
            && let Some(n) = self.next
            && let Some((end, key)) = self.complete_from(n)
        {
            found = Some((n, end, key, 0));
        }
        // Otherwise the oldest complete keyframe: it makes everything before obsolete.
        if found.is_none() {
            while let Some(&k) = self.key_starts.front() {
                if self.next.is_some_and(|n| k < n) || self.slot(k).is_none() {
                    self.key_starts.pop_front();
                    continue;
                }
                break;
            }
            for &k in &self.key_starts {
                if let Some((end, true)) = self.complete_from(k) {
                    let skipped = self.count_frames_between(self.next, k);
                    found = Some((k, end, true, skipped));
                    break;
                }
            }
        }
        let (start, end, key, skipped) = found?;
        payloads.clear();
        let first = self.slot(start)?;
        let info = FrameInfo {
            timestamp: first.timestamp,
            first_seq: start as u16,
            last_seq: end as u16,
            keyframe: key,
            skipped_before: skipped,
        };
        for q in start..=end {
            let i = (q as usize) & self.mask;
            let slot = &mut self.slots[i];
            payloads.push(std::mem::take(&mut slot.payload));
            slot.used = false;
        }
        self.next = Some(end + 1);
        // Everything before the frame is obsolete.
        while let Some((&m, _)) = self.missing.first_key_value() {
            if m > end {
                break;
            }
            self.missing.pop_first();
        }
        while self.key_starts.front().is_some_and(|&k| k <= end) {
            self.key_starts.pop_front();
        }
        if key {
            self.waiting_keyframe = false;
            self.waiting_since = None;
            self.pli_due = false;
            self.stats.keyframes += 1;
        }
        self.stats.frames += 1;
        Some(info)
    }

    /// Distinct timestamps stored between `from` and `to` (frames given up on).
    fn count_frames_between(&self, from: Option<i64>, to: i64) -> u32 {
        let Some(from) = from else { return 0 };
        let mut n = 0;
        let mut last_ts = None;
        for q in from.max(to - self.slots.len() as i64)..to {
            if let Some(s) = self.slot(q)
                && last_ts != Some(s.timestamp)
            {
                n += 1;
                last_ts = Some(s.timestamp);
            }
        }
        n
    }

    fn retry_interval(&self) -> Duration {
        self.rtt.max(self.cfg.min_retry_interval)
    }

    fn pli_every(&self) -> Duration {
        self.cfg.pli_interval.max(self.rtt)
    }

    /// If the newest packet leaves its frame open and its successor is not yet probed: the
    /// successor and when it counts as lost.
    fn tail_deadline(&self) -> Option<(i64, Instant)> {
        let h = self.highest?;
        if self.tail_probed == Some(h) || self.slot(h)?.marker {
            return None;
        }
        let wait = self.cfg.tail_wait.max(self.cfg.reorder_wait);
        Some((h + 1, self.highest_at? + wait))
    }

    /// Runs the timers and returns feedback due at `now`: a PLI first if one is due, then
    /// one NACK with every sequence number due. Call until it returns `None`.
    pub fn poll_feedback(&mut self, now: Instant) -> Option<Feedback> {
        // A frame left open at the tail with nothing newer arriving: its next packet is lost.
        if let Some((seq, at)) = self.tail_deadline()
            && now >= at
        {
            self.tail_probed = Some(seq - 1);
            self.stats.tail_probes += 1;
            // Spotted missing when it should have arrived: the reordering allowance is over.
            let since = self.highest_at.unwrap_or(now);
            self.missing.entry(seq).or_insert(Missing {
                since,
                sent: 0,
                last_sent: None,
            });
        }
        // Missing packets whose time is up.
        let mut gave_up = 0;
        let (max_age, max_retries) = (self.cfg.max_nack_age, self.cfg.max_nack_retries);
        let retry = self.retry_interval();
        self.missing.retain(|_, m| {
            let expired = now.saturating_duration_since(m.since) >= max_age
                || (m.sent >= max_retries
                    && m.last_sent
                        .is_some_and(|t| now.saturating_duration_since(t) >= retry));
            gave_up += u64::from(expired);
            !expired
        });
        if gave_up > 0 {
            self.stats.abandoned += gave_up;
            self.start_waiting(now, true);
        }
        if self.waiting_keyframe
            && self.key_starts.is_empty()
            && let Some(since) = self.waiting_since
            && now.saturating_duration_since(since) >= self.cfg.keyframe_grace
        {
            self.pli_due = true;
        }
        if self.waiting_keyframe && self.pli_due {
            let can = self
                .last_pli
                .is_none_or(|t| now.saturating_duration_since(t) >= self.pli_every());
            if can {
                self.last_pli = Some(now);
                self.stats.plis += 1;
                // Repeat later unless a keyframe arrives.
                return Some(Feedback::Pli);
            }
        }
        let mut list = Vec::new();
        for (&seq, m) in self.missing.iter_mut() {
            let due = match m.last_sent {
                None => now.saturating_duration_since(m.since) >= self.cfg.reorder_wait,
                Some(t) => m.sent < max_retries && now.saturating_duration_since(t) >= retry,
            };
            if due {
                m.sent += 1;
                m.last_sent = Some(now);
                list.push(seq as u16);
            }
        }
        if list.is_empty() {
            return None;
        }
        self.stats.nacked += list.len() as u64;
        Some(Feedback::Nack(list))
    }

    /// When [`Self::poll_feedback`] next has something to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = self.retry_interval();
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some((_, due)) = self.tail_deadline() {
            at(due);
        }
        for m in self.missing.values() {
            at(m.since + self.cfg.max_nack_age);
            match m.last_sent {
                None => at(m.since + self.cfg.reorder_wait),
                Some(s) => at(s + retry),
            }
        }
        if self.waiting_keyframe {
            // When a PLI becomes wanted, then when the rate limit lets it go.
            let wanted = if self.pli_due {
                self.waiting_since.or(self.last_pli)
            } else if self.key_starts.is_empty() {
                self.waiting_since.map(|s| s + self.cfg.keyframe_grace)
            } else {
                None
            };
            if let Some(w) = wanted {
                at(self.last_pli.map_or(w, |p| w.max(p + self.pli_every())));
            }
        }
        t
    }
}
