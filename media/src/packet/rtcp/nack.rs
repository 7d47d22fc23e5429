//! Generic NACK (RFC 4585 §6.2.1, PT 205 FMT 1): lost RTP sequence numbers.

use super::{HEADER_LEN, PT_RTPFB, RtcpError, WireItem, WireList, rd16, rd32, wr32};
use crate::ids::Ssrc;

pub(super) const FMT: u8 = 1;

/// One NACK FCI entry: a packet id and a bitmask of the 16 following lost packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NackPair {
    /// Sequence number of a lost packet (PID).
    pub pid: u16,
    /// Bit i set: `pid + i + 1` is lost too (BLP).
    pub blp: u16,
}

impl NackPair {
    /// The lost sequence numbers this entry names, in order.
    pub fn lost(&self) -> impl Iterator<Item = u16> + use<> {
        let (pid, blp) = (self.pid, self.blp);
        std::iter::once(pid).chain(
            (0..16u16)
                .filter(move |i| blp & (1 << i) != 0)
                .map(move |i| pid.wrapping_add(i + 1)),
        )
    }
}

impl WireItem for NackPair {
    const SIZE: usize = 4;
    fn read(b: &[u8]) -> Self {
        Self {
            pid: rd16(b, 0),
            blp: rd16(b, 2),
        }
    }
    fn write(&self, b: &mut [u8]) {
        b[0..2].copy_from_slice(&self.pid.to_be_bytes());
        b[2..4].copy_from_slice(&self.blp.to_be_bytes());
    }
}

/// A generic NACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nack<'a> {
    /// SSRC of the packet's sender.
    pub sender_ssrc: Ssrc,
    /// SSRC of the media source whose packets are lost.
    pub media_ssrc: Ssrc,
    /// The FCI entries.
    pub pairs: WireList<'a, NackPair>,
}

impl<'a> Nack<'a> {
    pub(super) fn parse_body(body: &'a [u8]) -> Result<Self, RtcpError> {
        // RFC 4585 §6.2.1: at least one FCI entry.
        if body.len() < 12 || !body.len().is_multiple_of(4) {
            return Err(RtcpError::Malformed(PT_RTPFB));
        }
        Ok(Self {
            sender_ssrc: Ssrc(rd32(body, 0)),
            media_ssrc: Ssrc(rd32(body, 4)),
            pairs: WireList::Wire(&body[8..]),
        })
    }

    /// Every lost sequence number, PIDs and BLP bits expanded, in FCI order.
    pub fn lost(&self) -> impl Iterator<Item = u16> + 'a {
        self.pairs.iter().flat_map(|p| p.lost())
    }

    /// Packs sorted or unsorted lost sequence numbers into FCI entries, writing them into
    /// `out`; returns how many entries were used, or `None` if `out` is too small.
    /// Consecutive numbers within 16 of an entry's PID share that entry.
    pub fn pack(lost: impl IntoIterator<Item = u16>, out: &mut [NackPair]) -> Option<usize> {
        let mut n = 0usize;
        for seq in lost {
            if n > 0 {
                let last = &mut out[n - 1];
                let d = seq.wrapping_sub(last.pid);
                if d == 0 {
                    continue;
                }
                if (1..=16).contains(&d) {
                    last.blp |= 1 << (d - 1);
                    continue;
                }
            }
            *out.get_mut(n)? = NackPair { pid: seq, blp: 0 };
            n += 1;
        }
        Some(n)
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 8 + self.pairs.wire_len()
    }

    /// Writes the packet at the start of `out`; returns its length.
    /// An empty list of pairs is [`RtcpError::BadValue`] (RFC 4585 wants at least one).
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.pairs.is_empty() {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, FMT, PT_RTPFB, total)?;
        wr32(out, 4, self.sender_ssrc.0);
        wr32(out, 8, self.media_ssrc.0);
        self.pairs.write_into(&mut out[12..total]);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_pid_and_blp_across_wrap() {
        let pair = NackPair {
            pid: 65534,
            blp: 0b1000_0000_0000_0101,
        };
        assert_eq!(pair.lost().collect::<Vec<_>>(), vec![65534, 65535, 1, 14]);
    }

    #[test]
    fn pack_then_expand() {
        let lost = [10u16, 11, 13, 26, 27, 40, 65535, 0];
        let mut pairs = [NackPair::default(); 8];
        let n = Nack::pack(lost, &mut pairs).unwrap();
        assert_eq!(n, 3);
        let nack = Nack {
            pairs: WireList::Items(&pairs[..n]),
            ..Default::default()
        };
        assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
        assert_eq!(Nack::pack(lost, &mut pairs[..2]), None);
    }
}
