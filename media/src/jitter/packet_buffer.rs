//! Packets waiting to be decoded, kept sorted by timestamp in a fixed-capacity vector, and
//! the record of which sequence numbers were seen (to tell duplicates from late packets).

use std::time::Instant;

use bytes::Bytes;

/// One buffered packet.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// Unwrapped RTP timestamp (48 kHz ticks).
    pub ts: i64,
    /// Duration in samples per channel.
    pub samples: usize,
    /// When it arrived.
    pub arrival: Instant,
    /// Its relative delay (ms later than the fastest recent packet).
    pub relative_ms: f64,
    /// The codec payload.
    pub payload: Bytes,
}

/// What [`PacketBuffer::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// Stored.
    Ok,
    /// A packet with that timestamp is already there.
    Duplicate,
    /// Stored, and the oldest packet was dropped to make room.
    Evicted,
}

/// Sorted packets with a fixed capacity (the vector never grows after `new`).
#[derive(Debug, Clone)]
pub(crate) struct PacketBuffer {
    slots: Vec<Slot>,
    cap: usize,
    samples: usize,
}

impl PacketBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        let cap = cap.max(2);
        Self {
            slots: Vec::with_capacity(cap),
            cap,
            samples: 0,
        }
    }

    pub(crate) fn insert(&mut self, slot: Slot) -> Stored {
        let pos = match self.slots.binary_search_by_key(&slot.ts, |s| s.ts) {
            Ok(_) => return Stored::Duplicate,
            Err(pos) => pos,
        };
        let mut stored = Stored::Ok;
        let mut pos = pos;
        if self.slots.len() == self.cap {
            if pos == 0 {
                // Older than everything in a full buffer: it would be evicted at once.
                return Stored::Evicted;
            }
            let old = self.slots.remove(0);
            self.samples -= old.samples;
            pos -= 1;
            stored = Stored::Evicted;
        }
        self.samples += slot.samples;
        self.slots.insert(pos, slot);
        stored
    }

    pub(crate) fn first(&self) -> Option<&Slot> {
        self.slots.first()
    }

    pub(crate) fn pop_first(&mut self) -> Option<Slot> {
        if self.slots.is_empty() {
            return None;
        }
        let s = self.slots.remove(0);
        self.samples -= s.samples;
        Some(s)
    }

    /// Drops packets that start before `ts`; returns how many.
    pub(crate) fn drop_before(&mut self, ts: i64) -> u64 {
        let mut n = 0;
        while self.slots.first().is_some_and(|s| s.ts < ts) {
            self.pop_first();
            n += 1;
        }
        n
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.samples = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Sum of the durations of the buffered packets, samples per channel.
    pub(crate) fn samples(&self) -> usize {
        self.samples
    }
}

const HISTORY_BITS: i64 = 1024;

/// Which of the last 1024 sequence numbers were received.
#[derive(Debug, Clone)]
pub(crate) struct SeqHistory {
    bits: [u64; (HISTORY_BITS / 64) as usize],
    max: Option<i64>,
}

/// What [`SeqHistory::mark`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqSeen {
    /// Not seen before.
    New,
    /// Seen before.
    Duplicate,
    /// Too old to tell (older than the window).
    TooOld,
}

impl SeqHistory {
    pub(crate) fn new() -> Self {
        Self {
            bits: [0; (HISTORY_BITS / 64) as usize],
            max: None,
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    fn bit(seq: i64) -> (usize, u64) {
        let i = seq.rem_euclid(HISTORY_BITS) as usize;
        (i / 64, 1u64 << (i % 64))
    }

    /// Marks `seq` as received and says whether it was new.
    pub(crate) fn mark(&mut self, seq: i64) -> SeqSeen {
        match self.max {
            None => self.max = Some(seq),
            Some(max) if seq > max => {
                if seq - max >= HISTORY_BITS {
                    self.bits = [0; (HISTORY_BITS / 64) as usize];
                } else {
                    for s in max + 1..=seq {
                        let (w, b) = Self::bit(s);
                        self.bits[w] &= !b;
                    }
                }
                self.max = Some(seq);
            }
            Some(max) if seq <= max - HISTORY_BITS => return SeqSeen::TooOld,
            Some(_) => {}
        }
        let (w, b) = Self::bit(seq);
        if self.bits[w] & b != 0 {
            return SeqSeen::Duplicate;
        }
        self.bits[w] |= b;
        SeqSeen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ts: i64) -> Slot {
        Slot {
            ts,
            samples: 960,
            arrival: Instant::now(),
            relative_ms: 0.0,
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn keeps_order_rejects_duplicates_and_evicts_oldest() {
        let mut b = PacketBuffer::new(3);
        assert_eq!(b.insert(slot(1920)), Stored::Ok);
        assert_eq!(b.insert(slot(0)), Stored::Ok);
        assert_eq!(b.insert(slot(0)), Stored::Duplicate);
        assert_eq!(b.insert(slot(960)), Stored::Ok);
        assert_eq!(b.samples(), 2880);
        assert_eq!(b.insert(slot(-960)), Stored::Evicted);
        assert_eq!(b.len(), 3);
        assert_eq!(b.insert(slot(2880)), Stored::Evicted);
        assert_eq!(b.first().unwrap().ts, 960);
        assert_eq!(b.drop_before(1920), 1);
        assert_eq!(b.pop_first().unwrap().ts, 1920);
        assert_eq!(b.samples(), 960);
    }

    #[test]
    fn seq_history_tells_new_duplicate_and_too_old() {
        let mut h = SeqHistory::new();
        assert_eq!(h.mark(10), SeqSeen::New);
        assert_eq!(h.mark(12), SeqSeen::New);
        assert_eq!(h.mark(10), SeqSeen::Duplicate);
        assert_eq!(h.mark(11), SeqSeen::New);
        assert_eq!(h.mark(11), SeqSeen::Duplicate);
        assert_eq!(h.mark(5000), SeqSeen::New);
        assert_eq!(h.mark(12), SeqSeen::TooOld);
        // The same bit one window later is a new packet: bits are cleared as the window moves.
        let mut h = SeqHistory::new();
        assert_eq!(h.mark(12), SeqSeen::New);
        assert_eq!(h.mark(12 + 1024), SeqSeen::New);
        assert_eq!(h.mark(12 + 1024), SeqSeen::Duplicate);
    }
}
