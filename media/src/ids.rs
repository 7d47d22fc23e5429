//! Newtypes for protocol identifiers, so that an SSRC is never mistaken for a timestamp.

use std::fmt;

/// RTP synchronisation source identifier (RFC 3550 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

/// RTP payload type, 7 bits (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Pt(pub u8);

/// Extended RTP sequence number: the 16-bit wire value plus the count of wrap-arounds
/// (RFC 3550 A.1), so that ordering and loss arithmetic never wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit value carried on the wire.
    pub fn wire(self) -> u16 {
        self.0 as u16
    }
}

/// A point on a media clock: RTP timestamp ticks, extended to 64 bits, with its clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MediaTime {
    /// Ticks since the stream's origin.
    pub ticks: i64,
    /// Ticks per second (48000 for Opus, 90000 for video).
    pub rate: u32,
}

impl MediaTime {
    /// A media time of `ticks` at `rate` ticks per second.
    pub fn new(ticks: i64, rate: u32) -> Self {
        Self { ticks, rate }
    }

    /// This time in microseconds (rounded toward zero).
    pub fn as_micros(self) -> i64 {
        if self.rate == 0 {
            return 0;
        }
        (self.ticks as i128 * 1_000_000 / self.rate as i128) as i64
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_time_to_micros() {
        assert_eq!(MediaTime::new(48_000, 48_000).as_micros(), 1_000_000);
        assert_eq!(MediaTime::new(960, 48_000).as_micros(), 20_000);
        assert_eq!(MediaTime::new(-90, 90_000).as_micros(), -1_000);
        assert_eq!(MediaTime::new(5, 0).as_micros(), 0);
    }

    #[test]
    fn seqno_wire_is_low_16_bits() {
        assert_eq!(SeqNo(0x1_0005).wire(), 5);
        assert_eq!(Ssrc(0xdead_beef).to_string(), "0xdeadbeef");
    }
}
