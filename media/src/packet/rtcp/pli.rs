//! Picture loss indication (RFC 4585 §6.3.1, PT 206 FMT 1).

use super::{HEADER_LEN, PT_PSFB, RtcpError, rd32, wr32};
use crate::ids::Ssrc;

pub(super) const FMT: u8 = 1;

/// A PLI: the receiver lost picture data of `media_ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pli {
    /// SSRC of the packet's sender.
    pub sender_ssrc: Ssrc,
    /// SSRC of the media source that should send a keyframe.
    pub media_ssrc: Ssrc,
}

impl Pli {
    pub(super) fn parse_body(body: &[u8]) -> Result<Self, RtcpError> {
        if body.len() != 8 {
            return Err(RtcpError::Malformed(PT_PSFB));
        }
        Ok(Self {
            sender_ssrc: Ssrc(rd32(body, 0)),
            media_ssrc: Ssrc(rd32(body, 4)),
        })
    }

    /// Bytes this packet takes on the wire (always 12).
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 8
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        super::write_header(out, FMT, PT_PSFB, 12)?;
        wr32(out, 4, self.sender_ssrc.0);
        wr32(out, 8, self.media_ssrc.0);
        Ok(12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn bytes_and_fci_must_be_empty() {
        let pli = Pli {
            sender_ssrc: Ssrc(1),
            media_ssrc: Ssrc(2),
        };
        let mut out = [0u8; 16];
        assert_eq!(pli.write(&mut out), Ok(12));
        assert_eq!(out[..12], [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(
            RtcpCompound::parse(&out[..12]).next(),
            Some(Ok(RtcpPacket::Pli(pli)))
        );
        let mut bad = out;
        bad[3] = 3;
        assert_eq!(
            RtcpCompound::parse(&bad).next(),
            Some(Err(RtcpError::Malformed(PT_PSFB)))
        );
        assert_eq!(pli.write(&mut out[..11]), Err(RtcpError::BufferTooSmall));
    }
}
