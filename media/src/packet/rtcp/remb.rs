//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb, PT 206 FMT 15 "REMB").

use super::{HEADER_LEN, PT_PSFB, RtcpError, WireList, rd32, wr32};
use crate::ids::Ssrc;

pub(super) const FMT: u8 = 15;
const ID: &[u8; 4] = b"REMB";

/// A REMB packet. The bitrate is `mantissa << exponent` bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remb<'a> {
    /// SSRC of the packet's sender.
    pub sender_ssrc: Ssrc,
    /// Media source SSRC field (0 by the draft; kept as received).
    pub media_ssrc: Ssrc,
    /// Bitrate exponent (6 bits).
    pub exponent: u8,
    /// Bitrate mantissa (18 bits).
    pub mantissa: u32,
    /// The sources the estimate applies to (at most 255).
    pub ssrcs: WireList<'a, Ssrc>,
}

impl<'a> Remb<'a> {
    pub(super) fn is_remb(body: &[u8]) -> bool {
        body.get(8..12) == Some(&ID[..])
    }

    pub(super) fn parse_body(body: &'a [u8]) -> Result<Self, RtcpError> {
        if body.len() < 16 {
            return Err(RtcpError::Malformed(PT_PSFB));
        }
        let n = body[12] as usize;
        if body.len() != 16 + 4 * n {
            return Err(RtcpError::Malformed(PT_PSFB));
        }
        let br = rd32(body, 12) & 0x00ff_ffff;
        Ok(Self {
            sender_ssrc: Ssrc(rd32(body, 0)),
            media_ssrc: Ssrc(rd32(body, 4)),
            exponent: (br >> 18) as u8,
            mantissa: br & 0x3_ffff,
            ssrcs: WireList::Wire(&body[16..]),
        })
    }

    /// Sets exponent and mantissa for `bps`, exactly when `bps` fits, else rounded down.
    pub fn set_bitrate(&mut self, bps: u64) {
        let mut exp = 0u8;
        while bps >> exp >= 1 << 18 {
            exp += 1;
        }
        self.exponent = exp;
        self.mantissa = (bps >> exp) as u32;
    }

    /// The bitrate in bits per second (saturating at `u64::MAX`).
    pub fn bitrate_bps(&self) -> u64 {
        let m = self.mantissa as u64;
        if self.exponent >= 64 || m.leading_zeros() < self.exponent as u32 {
            u64::MAX
        } else {
            m << self.exponent
        }
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 16 + self.ssrcs.wire_len()
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.ssrcs.len() > 255 {
            return Err(RtcpError::TooMany);
        }
        if self.exponent > 63 || self.mantissa >= 1 << 18 {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, FMT, PT_PSFB, total)?;
        wr32(out, 4, self.sender_ssrc.0);
        wr32(out, 8, self.media_ssrc.0);
        out[12..16].copy_from_slice(ID);
        let br = ((self.ssrcs.len() as u32) << 24) | ((self.exponent as u32) << 18) | self.mantissa;
        wr32(out, 16, br);
        self.ssrcs.write_into(&mut out[20..total]);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn bitrate_encoding_and_round_trip() {
        let mut remb = Remb::default();
        remb.set_bitrate(2_500_000);
        assert_eq!(
            remb.bitrate_bps(),
            2_500_000 >> remb.exponent << remb.exponent
        );
        assert!(remb.mantissa < 1 << 18);
        remb.set_bitrate(100_000);
        assert_eq!((remb.exponent, remb.bitrate_bps()), (0, 100_000));
        let ssrcs = [Ssrc(7)];
        remb.ssrcs = WireList::Items(&ssrcs);
        let mut out = [0u8; 32];
        let n = remb.write(&mut out).unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            RtcpCompound::parse(&out[..n]).next(),
            Some(Ok(RtcpPacket::Remb(remb)))
        );
        // Count of SSRCs disagreeing with the length.
        out[16] = 2;
        assert_eq!(
            RtcpCompound::parse(&out[..n]).next(),
            Some(Err(RtcpError::Malformed(PT_PSFB)))
        );
        let huge = Remb {
            exponent: 63,
            mantissa: 0x3_ffff,
            ..Default::default()
        };
        assert_eq!(huge.bitrate_bps(), u64::MAX);
    }
}
