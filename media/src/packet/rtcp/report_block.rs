//! The reception report block shared by SR and RR (RFC 3550 §6.4.1).

use super::{WireItem, rd32, wr32};
use crate::ids::Ssrc;

/// One reception report block (24 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Fraction of packets lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a signed 24-bit value (-8388608 ..= 8388607).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Smallest cumulative loss the 24-bit field holds.
    pub const MIN_CUMULATIVE_LOST: i32 = -(1 << 23);
    /// Largest cumulative loss the 24-bit field holds.
    pub const MAX_CUMULATIVE_LOST: i32 = (1 << 23) - 1;
}

impl WireItem for ReportBlock {
    const SIZE: usize = 24;

    fn read(b: &[u8]) -> Self {
        let lost = rd32(b, 4);
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Self {
            ssrc: Ssrc(rd32(b, 0)),
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost,
            extended_highest_seq: rd32(b, 8),
            jitter: rd32(b, 12),
            last_sr: rd32(b, 16),
            delay_since_last_sr: rd32(b, 20),
        }
    }

    /// Writes the block; the cumulative loss is clamped to the 24-bit range.
    fn write(&self, b: &mut [u8]) {
        let lost = self
            .cumulative_lost
            .clamp(Self::MIN_CUMULATIVE_LOST, Self::MAX_CUMULATIVE_LOST) as u32
            & 0x00ff_ffff;
        wr32(b, 0, self.ssrc.0);
        wr32(b, 4, ((self.fraction_lost as u32) << 24) | lost);
        wr32(b, 8, self.extended_highest_seq);
        wr32(b, 12, self.jitter);
        wr32(b, 16, self.last_sr);
        wr32(b, 20, self.delay_since_last_sr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_cumulative_loss_sign_extends_and_clamps() {
        let rb = ReportBlock {
            ssrc: Ssrc(7),
            fraction_lost: 255,
            cumulative_lost: -2,
            ..Default::default()
        };
        let mut b = [0u8; 24];
        rb.write(&mut b);
        assert_eq!(&b[4..8], &[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(ReportBlock::read(&b), rb);
        let big = ReportBlock {
            cumulative_lost: i32::MAX,
            ..rb
        };
        big.write(&mut b);
        assert_eq!(
            ReportBlock::read(&b).cumulative_lost,
            ReportBlock::MAX_CUMULATIVE_LOST
        );
    }
}
