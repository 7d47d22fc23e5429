//! Extending 16-bit RTP sequence numbers to [`SeqNo`] and unwrapping 32-bit RTP timestamps.
//!
//! Both unwrappers map each wire value to the extended value nearest to the last one seen
//! (RFC 3550 A.1's cycle counting, decided by the shortest distance on the circle): a
//! forward step across the wrap adds a cycle, a reordered packet from just before a wrap
//! lands in the previous cycle, and state only advances on forward steps, so reordering never
//! moves the reference backwards.
//!
//! ```
//! use supernode_media::packet::seq::SeqExtender;
//! let mut ext = SeqExtender::new();
//! assert_eq!(ext.extend(65534).0, 65534);
//! assert_eq!(ext.extend(1).0, 65537);     // wrapped
//! assert_eq!(ext.extend(65535).0, 65535); // late packet from before the wrap
//! ```

use crate::ids::SeqNo;

/// Extends 16-bit sequence numbers of one stream to 64 bits, across wraps and reordering.
#[derive(Debug, Clone, Default)]
pub struct SeqExtender {
    /// Highest extended value seen, if any.
    last: Option<i64>,
}

impl SeqExtender {
    /// A fresh extender; the first value it sees lands in cycle 0.
    pub fn new() -> Self {
        Self { last: None }
    }

    /// Extends `seq`. The first value is taken as is (cycle 0). A reordered packet that would
    /// fall before cycle 0 (it predates the first packet seen, across a wrap) is clamped to
    /// `SeqNo(0)`; use [`SeqExtender::extend_signed`] to see the true (negative) position.
    pub fn extend(&mut self, seq: u16) -> SeqNo {
        SeqNo(self.extend_signed(seq).max(0) as u64)
    }

    /// Like [`SeqExtender::extend`], but returns the signed extended value, which is negative
    /// for packets that predate the first one seen across a wrap.
    pub fn extend_signed(&mut self, seq: u16) -> i64 {
        let Some(last) = self.last else {
            self.last = Some(seq as i64);
            return seq as i64;
        };
        let delta = seq.wrapping_sub(last as u16) as i16 as i64;
        let v = last + delta;
        if delta > 0 {
            self.last = Some(v);
        }
        v
    }

    /// Highest extended sequence number seen so far.
    pub fn max(&self) -> Option<SeqNo> {
        self.last.map(|v| SeqNo(v.max(0) as u64))
    }
}

/// Unwraps 32-bit RTP timestamps of one stream to 64-bit signed ticks.
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last: Option<i64>,
}

impl TimestampUnwrapper {
    /// A fresh unwrapper; the first timestamp maps to itself.
    pub fn new() -> Self {
        Self { last: None }
    }

    /// Unwraps `ts` relative to the latest timestamp seen (nearest on the 2^32 circle).
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let Some(last) = self.last else {
            self.last = Some(ts as i64);
            return ts as i64;
        };
        let delta = ts.wrapping_sub(last as u32) as i32 as i64;
        let v = last + delta;
        if delta > 0 {
            self.last = Some(v);
        }
        v
    }

    /// The latest (highest) unwrapped timestamp seen.
    pub fn last(&self) -> Option<i64> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_forward_and_handles_reordering() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(65530), SeqNo(65530));
        assert_eq!(e.extend(65535), SeqNo(65535));
        assert_eq!(e.extend(3), SeqNo(65539));
        assert_eq!(e.extend(65533), SeqNo(65533)); // late
        assert_eq!(e.extend(4), SeqNo(65540));
        assert_eq!(e.max(), Some(SeqNo(65540)));
        // Several full cycles.
        for i in 0..300_000u64 {
            let v = 65541 + i;
            assert_eq!(e.extend(v as u16), SeqNo(v));
        }
    }

    #[test]
    fn sequence_before_first_is_clamped() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(2), SeqNo(2));
        assert_eq!(e.extend_signed(65535), -1);
        assert_eq!(e.extend(65534), SeqNo(0));
        assert_eq!(e.max(), Some(SeqNo(2)));
        assert_eq!(e.extend(3), SeqNo(3));
    }

    #[test]
    fn duplicate_sequence_keeps_value() {
        let mut e = SeqExtender::new();
        assert_eq!(e.extend(10), SeqNo(10));
        assert_eq!(e.extend(10), SeqNo(10));
        assert_eq!(e.extend(11), SeqNo(11));
    }

    #[test]
    fn timestamps_unwrap() {
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(u32::MAX - 959), u32::MAX as i64 - 959);
        assert_eq!(u.unwrap(0), 1i64 << 32);
        assert_eq!(u.unwrap(960), (1i64 << 32) + 960);
        assert_eq!(u.unwrap(u32::MAX), u32::MAX as i64); // reordered
        assert_eq!(u.last(), Some((1i64 << 32) + 960));
        let mut u = TimestampUnwrapper::new();
        assert_eq!(u.unwrap(100), 100);
        assert_eq!(u.unwrap(u32::MAX - 99), -100);
    }
}
