//! Per-transport retransmission cache of bounded memory: the last packets sent toward a
//! transport, as they went on the wire, indexed by their outgoing (SSRC, sequence number) —
//! the entries of each send stream share the transport's ring — so that a NACK from that
//! transport is answered by the relay without bothering the sender.
//!
//! Memory is one byte ring of fixed size plus a fixed index; nothing is allocated after
//! construction. A packet is found only while its bytes have not been overwritten.
//!
//! Keeping what was sent is not free: every kept packet is written into memory last touched a
//! whole ring ago (cold, out of the CPU's caches), which cost the relay a fifth of its CPU
//! per packet. So a cache may start **unarmed** ([`NackCachePolicy::FromFirstNack`], the
//! default): it keeps nothing sent until the transport sends its first NACK; that NACK is a
//! miss (passed on toward the sender, who retransmits), and from then on the transport's
//! packets are kept. A loss-free leg costs nothing; a lossy one is answered here from its
//! second loss on. Early media held for an unlatched transport uses the ring either way.

use supernode_media::ids::Ssrc;

/// When a transport's retransmission cache starts keeping what is sent toward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NackCachePolicy {
    /// From the transport's first NACK on (the first NACK is passed on to the sender).
    #[default]
    FromFirstNack,
    /// From the start (every video packet is copied into the ring).
    Always,
}

/// Bounded cache of sent packets.
#[derive(Debug, Clone)]
pub struct NackCache {
    /// Whether sent packets are kept (see [`NackCachePolicy`]).
    armed: bool,
    ring: Box<[u8]>,
    /// Absolute (monotonic) write position in bytes.
    head: u64,
    index: Box<[Slot]>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    valid: bool,
    ssrc: Ssrc,
    seq: u16,
    len: u16,
    abs: u64,
}

impl NackCache {
    /// A cache of `bytes` bytes of packet data and `slots` index entries (rounded up to a
    /// power of two). `bytes == 0` makes a cache that stores nothing.
    pub fn new(bytes: usize, slots: usize) -> Self {
        Self::with_policy(bytes, slots, NackCachePolicy::Always)
    }

    /// [`NackCache::new`], armed from the start or from the first NACK as `policy` says.
    pub fn with_policy(bytes: usize, slots: usize, policy: NackCachePolicy) -> Self {
        let slots = slots.max(1).next_power_of_two();
        Self {
            armed: policy == NackCachePolicy::Always,
            ring: vec![0u8; bytes].into_boxed_slice(),
            head: 0,
            index: vec![Slot::default(); slots].into_boxed_slice(),
        }
    }

    /// Whether this cache stores anything.
    pub fn is_enabled(&self) -> bool {
        !self.ring.is_empty()
    }

    /// Whether packets sent now are to be kept: enabled and armed.
    #[inline]
    pub fn keeps_sent(&self) -> bool {
        self.armed && !self.ring.is_empty()
    }

    /// Starts keeping sent packets (the transport asked for a retransmission).
    pub fn arm(&mut self) {
        self.armed = true;
    }

    #[inline]
    fn slot_of(&self, ssrc: Ssrc, seq: u16) -> usize {
        (usize::from(seq) ^ (ssrc.0.wrapping_mul(0x9E37_79B9) >> 16) as usize)
            & (self.index.len() - 1)
    }

    /// Stores `pkt`, sent on stream `ssrc` with sequence number `seq`.
    #[inline]
    pub fn insert(&mut self, ssrc: Ssrc, seq: u16, pkt: &[u8]) {
        let cap = self.ring.len() as u64;
        if pkt.len() as u64 > cap || pkt.len() > u16::MAX as usize {
            return;
        }
        let mut pos = self.head % cap;
        if pos + pkt.len() as u64 > cap {
            // Skip the tail so the packet stays contiguous.
            self.head += cap - pos;
            pos = 0;
        }
        self.ring[pos as usize..pos as usize + pkt.len()].copy_from_slice(pkt);
        let i = self.slot_of(ssrc, seq);
        self.index[i] = Slot {
            valid: true,
            ssrc,
            seq,
            len: pkt.len() as u16,
            abs: self.head,
        };
        self.head += pkt.len() as u64;
    }

    /// Stores `pkt` under `seq` and returns the stored copy, for the caller to patch in
    /// place (the relay rewrites headers of packets it holds for a leg not yet latched).
    #[inline]
    pub fn insert_mut(&mut self, ssrc: Ssrc, seq: u16, pkt: &[u8]) -> Option<&mut [u8]> {
        self.insert(ssrc, seq, pkt);
        let slot = self.index[self.slot_of(ssrc, seq)];
        if !slot.valid
            || slot.seq != seq
            || slot.ssrc != ssrc
            || slot.abs + pkt.len() as u64 != self.head
        {
            return None;
        }
        let pos = (slot.abs % self.ring.len() as u64) as usize;
        Some(&mut self.ring[pos..pos + slot.len as usize])
    }

    /// Forgets every packet (the ring's bytes stay allocated).
    pub fn clear(&mut self) {
        self.index.iter_mut().for_each(|s| s.valid = false);
    }

    /// Bytes of packet data the cache holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// The packet sent on stream `ssrc` with sequence number `seq`, if it is still held.
    pub fn get(&self, ssrc: Ssrc, seq: u16) -> Option<&[u8]> {
        let cap = self.ring.len() as u64;
        if cap == 0 {
            return None;
        }
        let slot = self.index[self.slot_of(ssrc, seq)];
        if !slot.valid || slot.seq != seq || slot.ssrc != ssrc || slot.abs + cap < self.head {
            return None;
        }
        let pos = (slot.abs % cap) as usize;
        Some(&self.ring[pos..pos + slot.len as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Ssrc = Ssrc(1);

    #[test]
    fn finds_recent_and_forgets_overwritten() {
        let mut c = NackCache::new(1000, 64);
        for seq in 0..20u16 {
            c.insert(S, seq, &[seq as u8; 100]);
        }
        // 1000 bytes hold the last 10 packets.
        assert_eq!(c.get(S, 19), Some(&[19u8; 100][..]));
        assert_eq!(c.get(S, 10), Some(&[10u8; 100][..]));
        assert_eq!(c.get(S, 9), None);
        assert_eq!(c.get(S, 500), None);
        assert_eq!(c.get(Ssrc(2), 19), None, "another stream's number");
    }

    #[test]
    fn index_collisions_do_not_return_wrong_packet() {
        let mut c = NackCache::new(100_000, 4);
        c.insert(S, 1, b"one");
        c.insert(S, 5, b"five"); // same slot as 1
        assert_eq!(c.get(S, 1), None);
        assert_eq!(c.get(S, 5), Some(&b"five"[..]));
    }

    #[test]
    fn an_unarmed_cache_keeps_nothing_sent_until_armed() {
        let mut c = NackCache::with_policy(1000, 64, NackCachePolicy::FromFirstNack);
        assert!(c.is_enabled() && !c.keeps_sent());
        c.arm();
        assert!(c.keeps_sent());
        assert!(NackCache::new(1000, 64).keeps_sent(), "`new` is armed");
        assert!(!NackCache::new(0, 64).keeps_sent(), "nothing to keep it in");
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let mut c = NackCache::new(0, 4);
        c.insert(S, 1, b"x");
        assert!(c.get(S, 1).is_none());
        assert!(!c.is_enabled());
    }
}
