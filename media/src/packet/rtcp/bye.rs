//! Goodbye (RFC 3550 §6.6, PT 203): sources leaving, with an optional reason.

use super::{HEADER_LEN, PT_BYE, RtcpError, WireItem, WireList};
use crate::ids::Ssrc;

/// A BYE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bye<'a> {
    /// The sources leaving (at most 31).
    pub sources: WireList<'a, Ssrc>,
    /// Reason for leaving (at most 255 bytes), if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub(super) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let bad = RtcpError::Malformed(PT_BYE);
        let list_end = count as usize * Ssrc::SIZE;
        let rest = body.get(list_end..).ok_or(bad)?;
        let reason = match rest.split_first() {
            None => None,
            Some((&len, text)) => {
                let len = len as usize;
                let padded = (1 + len).div_ceil(4) * 4;
                if padded != rest.len() || text[len..].iter().any(|&b| b != 0) {
                    return Err(bad);
                }
                Some(&text[..len])
            }
        };
        Ok(Self {
            sources: WireList::Wire(&body[..list_end]),
            reason,
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        let reason = self.reason.map_or(0, |r| (1 + r.len()).div_ceil(4) * 4);
        HEADER_LEN + self.sources.wire_len() + reason
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.reason.is_some_and(|r| r.len() > 255) {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        let count = u8::try_from(self.sources.len()).unwrap_or(u8::MAX);
        super::write_header(out, count, PT_BYE, total)?;
        let mut at = HEADER_LEN;
        self.sources.write_into(&mut out[at..]);
        at += self.sources.wire_len();
        if let Some(r) = self.reason {
            out[at] = r.len() as u8;
            out[at + 1..at + 1 + r.len()].copy_from_slice(r);
            out[at + 1 + r.len()..total].fill(0);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn reason_round_trip_and_overrun() {
        let srcs = [Ssrc(1), Ssrc(2)];
        let bye = Bye {
            sources: WireList::Items(&srcs),
            reason: Some(b"done"),
        };
        let mut out = [0u8; 32];
        let n = bye.write(&mut out).unwrap();
        assert_eq!(n, 4 + 8 + 8);
        let p = RtcpCompound::parse(&out[..n]).next().unwrap().unwrap();
        assert_eq!(p, RtcpPacket::Bye(bye));
        let mut bad = out;
        bad[12] = 9; // reason length past the packet
        assert_eq!(
            RtcpCompound::parse(&bad[..n]).next().unwrap(),
            Err(RtcpError::Malformed(PT_BYE))
        );
    }
}
