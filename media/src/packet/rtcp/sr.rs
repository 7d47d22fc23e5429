//! Sender report (RFC 3550 §6.4.1, PT 200).

use super::{HEADER_LEN, PT_SR, ReportBlock, RtcpError, WireItem, WireList, rd32, wr32};
use crate::ids::Ssrc;

const SENDER_INFO_LEN: usize = 24;

/// A sender report: sender info, reception report blocks and profile-specific extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderReport<'a> {
    /// SSRC of the sender.
    pub ssrc: Ssrc,
    /// 64-bit NTP timestamp of this report.
    pub ntp_time: u64,
    /// RTP timestamp corresponding to `ntp_time`.
    pub rtp_time: u32,
    /// Packets sent so far.
    pub packet_count: u32,
    /// Payload octets sent so far.
    pub octet_count: u32,
    /// Reception report blocks (at most 31).
    pub reports: WireList<'a, ReportBlock>,
    /// Profile-specific extension bytes after the blocks (a multiple of 4 bytes).
    pub profile_extension: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub(super) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let blocks_end = SENDER_INFO_LEN + count as usize * ReportBlock::SIZE;
        if body.len() < blocks_end || !body.len().is_multiple_of(4) {
            return Err(RtcpError::Malformed(PT_SR));
        }
        Ok(Self {
            ssrc: Ssrc(rd32(body, 0)),
            ntp_time: ((rd32(body, 4) as u64) << 32) | rd32(body, 8) as u64,
            rtp_time: rd32(body, 12),
            packet_count: rd32(body, 16),
            octet_count: rd32(body, 20),
            reports: WireList::Wire(&body[SENDER_INFO_LEN..blocks_end]),
            profile_extension: &body[blocks_end..],
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + SENDER_INFO_LEN + self.reports.wire_len() + self.profile_extension.len()
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
            PT_SR,
            total,
        )?;
        let b = &mut out[HEADER_LEN..total];
        wr32(b, 0, self.ssrc.0);
        wr32(b, 4, (self.ntp_time >> 32) as u32);
        wr32(b, 8, self.ntp_time as u32);
        wr32(b, 12, self.rtp_time);
        wr32(b, 16, self.packet_count);
        wr32(b, 20, self.octet_count);
        self.reports.write_into(&mut b[SENDER_INFO_LEN..]);
        let ext_at = SENDER_INFO_LEN + self.reports.wire_len();
        b[ext_at..].copy_from_slice(self.profile_extension);
        Ok(total)
    }
}
