//! Application-defined packet (RFC 3550 §6.7, PT 204).

use super::{HEADER_LEN, PT_APP, RtcpError, rd32, wr32};
use crate::ids::Ssrc;

/// An APP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct App<'a> {
    /// Subtype (5 bits, in the header's count field).
    pub subtype: u8,
    /// SSRC of the sender.
    pub ssrc: Ssrc,
    /// Four ASCII characters naming the application.
    pub name: [u8; 4],
    /// Application data (a multiple of 4 bytes).
    pub data: &'a [u8],
}

impl<'a> App<'a> {
    pub(super) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        if body.len() < 8 || !body.len().is_multiple_of(4) {
            return Err(RtcpError::Malformed(PT_APP));
        }
        Ok(Self {
            subtype: count,
            ssrc: Ssrc(rd32(body, 0)),
            name: [body[4], body[5], body[6], body[7]],
            data: &body[8..],
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 8 + self.data.len()
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if !self.data.len().is_multiple_of(4) || self.subtype > 31 {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, self.subtype, PT_APP, total)?;
        wr32(out, 4, self.ssrc.0);
        out[8..12].copy_from_slice(&self.name);
        out[12..total].copy_from_slice(self.data);
        Ok(total)
    }
}
