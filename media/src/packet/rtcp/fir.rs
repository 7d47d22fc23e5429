//! Full intra request (RFC 5104 §4.3.1, PT 206 FMT 4).

use super::{HEADER_LEN, PT_PSFB, RtcpError, WireItem, WireList, rd32, wr32};
use crate::ids::Ssrc;

pub(super) const FMT: u8 = 4;

/// One FIR FCI entry: which source should send a keyframe, and the request number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FirEntry {
    /// The media source asked for a keyframe.
    pub ssrc: Ssrc,
    /// Command sequence number (incremented per new request).
    pub seq: u8,
}

impl WireItem for FirEntry {
    const SIZE: usize = 8;
    fn read(b: &[u8]) -> Self {
        Self {
            ssrc: Ssrc(rd32(b, 0)),
            seq: b[4],
        }
    }
    fn write(&self, b: &mut [u8]) {
        wr32(b, 0, self.ssrc.0);
        b[4] = self.seq;
        b[5..8].fill(0);
    }
}

/// A FIR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fir<'a> {
    /// SSRC of the packet's sender.
    pub sender_ssrc: Ssrc,
    /// Media source SSRC field (0 by RFC 5104; kept as received).
    pub media_ssrc: Ssrc,
    /// The requests.
    pub entries: WireList<'a, FirEntry>,
}

impl<'a> Fir<'a> {
    pub(super) fn parse_body(body: &'a [u8]) -> Result<Self, RtcpError> {
        // RFC 5104 §4.3.1.2: one or more FIR entries.
        if body.len() < 16 || !(body.len() - 8).is_multiple_of(FirEntry::SIZE) {
            return Err(RtcpError::Malformed(PT_PSFB));
        }
        Ok(Self {
            sender_ssrc: Ssrc(rd32(body, 0)),
            media_ssrc: Ssrc(rd32(body, 4)),
            entries: WireList::Wire(&body[8..]),
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 8 + self.entries.wire_len()
    }

    /// Writes the packet at the start of `out`; returns its length.
    /// An empty list of entries is [`RtcpError::BadValue`] (RFC 5104 wants at least one).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.entries.is_empty() {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, FMT, PT_PSFB, total)?;
        wr32(out, 4, self.sender_ssrc.0);
        wr32(out, 8, self.media_ssrc.0);
        self.entries.write_into(&mut out[12..total]);
        Ok(total)
    }
}
