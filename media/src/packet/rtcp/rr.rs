//! Receiver report (RFC 3550 §6.4.2, PT 201).

use super::{HEADER_LEN, PT_RR, ReportBlock, RtcpError, WireItem, WireList, rd32, wr32};
use crate::ids::Ssrc;

/// A receiver report: reception report blocks and profile-specific extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverReport<'a> {
    /// SSRC of the packet's sender.
    pub ssrc: Ssrc,
    /// Reception report blocks (at most 31).
    pub reports: WireList<'a, ReportBlock>,
    /// Profile-specific extension bytes after the blocks (a multiple of 4 bytes).
    pub profile_extension: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    pub(super) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let blocks_end = 4 + count as usize * ReportBlock::SIZE;
        if body.len() < blocks_end || !body.len().is_multiple_of(4) {
            return Err(RtcpError::Malformed(PT_RR));
        }
        Ok(Self {
            ssrc: Ssrc(rd32(body, 0)),
            reports: WireList::Wire(&body[4..blocks_end]),
            profile_extension: &body[blocks_end..],
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 4 + self.reports.wire_len() + self.profile_extension.len()
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if !self.profile_extension.len().is_multiple_of(4) {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(
            out,
            u8::try_from(self.reports.len()).unwrap_or(u8::MAX),
            PT_RR,
            total,
        )?;
        let b = &mut out[HEADER_LEN..total];
        wr32(b, 0, self.ssrc.0);
        self.reports.write_into(&mut b[4..]);
        let ext_at = 4 + self.reports.wire_len();
        b[ext_at..].copy_from_slice(self.profile_extension);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn empty_rr_is_eight_bytes() {
        let rr = ReceiverReport {
            ssrc: Ssrc(0x1234),
            ..Default::default()
        };
        let mut out = [0u8; 8];
        assert_eq!(rr.write(&mut out), Ok(8));
        assert_eq!(out, [0x80, 201, 0, 1, 0, 0, 0x12, 0x34]);
        let p = RtcpCompound::parse(&out).next().unwrap().unwrap();
        assert_eq!(p, RtcpPacket::ReceiverReport(rr));
        // Count says one block but none follows.
        let mut bad = out;
        bad[0] |= 1;
        assert_eq!(
            RtcpCompound::parse(&bad).next().unwrap(),
            Err(RtcpError::Malformed(PT_RR))
        );
    }
}
