//! RTCP packets of a type (or feedback format) this module does not parse, carried as is.

use super::{HEADER_LEN, RtcpError};

/// An RTCP packet kept opaque: its header fields and body (padding removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnknownPacket<'a> {
    /// Packet type (second header byte).
    pub packet_type: u8,
    /// The 5-bit count / FMT field.
    pub count: u8,
    /// The body after the 4-byte header, without padding.
    pub body: &'a [u8],
}

impl UnknownPacket<'_> {
    /// Bytes this packet takes on the wire (a body that is not a multiple of 4 is padded).
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.body.len().div_ceil(4) * 4
    }

    /// Writes the packet at the start of `out`, setting the padding bit when the body needs
    /// padding to a 4-byte boundary; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.count > 31 {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, self.count, self.packet_type, total)?;
        let end = HEADER_LEN + self.body.len();
        out[HEADER_LEN..end].copy_from_slice(self.body);
        if end < total {
            out[0] |= 0x20;
            out[end..total].fill(0);
            out[total - 1] = (total - end) as u8;
        }
        Ok(total)
    }
}
