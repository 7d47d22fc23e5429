//! Source description (RFC 3550 §6.5, PT 202): chunks of an SSRC and its items.

use super::{HEADER_LEN, PT_SDES, RtcpError, rd32, wr32};
use crate::ids::Ssrc;

/// One SDES item: its type (1 = CNAME … 8 = PRIV) and text (at most 255 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type, 1–255 (0 ends the item list on the wire and cannot be written).
    pub kind: u8,
    /// Item text as bytes (UTF-8 by the RFC, not checked here).
    pub text: &'a [u8],
}

impl SdesItem<'_> {
    /// The CNAME item type.
    pub const CNAME: u8 = 1;
}

/// The items of one chunk: wire bytes (parsed) or a slice of values (to write).
#[derive(Debug, Clone, Copy)]
pub enum SdesItems<'a> {
    /// Encoded items of a parsed chunk (validated; ends at the first null octet).
    Wire(&'a [u8]),
    /// Items as values.
    Items(&'a [SdesItem<'a>]),
}

impl<'a> SdesItems<'a> {
    /// Iterates over the items.
    pub fn iter(&self) -> impl Iterator<Item = SdesItem<'a>> + 'a {
        let (mut wire, items) = match *self {
            SdesItems::Wire(b) => (b, [].iter()),
            SdesItems::Items(s) => (&[][..], s.iter()),
        };
        let from_wire = std::iter::from_fn(move || {
            let (&kind, rest) = wire.split_first()?;
            if kind == 0 {
                return None;
            }
            let (&len, rest) = rest.split_first()?;
            let text = rest.get(..len as usize)?;
            wire = &rest[len as usize..];
            Some(SdesItem { kind, text })
        });
        from_wire.chain(items.copied())
    }

    /// Bytes of the items including the terminating null octet(s) up to a 4-byte boundary,
    /// counted from the chunk start (which holds a 4-byte SSRC).
    fn wire_len(&self) -> usize {
        let items: usize = self.iter().map(|i| 2 + i.text.len()).sum();
        (items + 1).div_ceil(4) * 4
    }
}

impl PartialEq for SdesItems<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SdesItems<'_> {}

/// One SDES chunk: an SSRC and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    /// The source described.
    pub ssrc: Ssrc,
    /// Its items.
    pub items: SdesItems<'a>,
}

/// The chunks of an SDES packet: wire bytes (parsed) or a slice of values (to write).
#[derive(Debug, Clone, Copy)]
pub enum SdesChunks<'a> {
    /// Encoded chunks of a parsed packet (validated) and their count.
    Wire(&'a [u8], u8),
    /// Chunks as values.
    Items(&'a [SdesChunk<'a>]),
}

impl<'a> SdesChunks<'a> {
    /// Number of chunks.
    pub fn len(&self) -> usize {
        match self {
            SdesChunks::Wire(_, n) => *n as usize,
            SdesChunks::Items(s) => s.len(),
        }
    }

    /// Whether there is no chunk.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the chunks.
    pub fn iter(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let (mut wire, items) = match *self {
            SdesChunks::Wire(b, _) => (b, [].iter()),
            SdesChunks::Items(s) => (&[][..], s.iter()),
        };
        let from_wire = std::iter::from_fn(move || {
            let len = chunk_len(wire).ok()?;
            let chunk = SdesChunk {
                ssrc: Ssrc(rd32(wire, 0)),
                items: SdesItems::Wire(&wire[4..len]),
            };
            wire = &wire[len..];
            Some(chunk)
        });
        from_wire.chain(items.copied())
    }
}

impl PartialEq for SdesChunks<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SdesChunks<'_> {}

/// Length of the chunk at the start of `b`, checking its items and null terminator.
fn chunk_len(b: &[u8]) -> Result<usize, RtcpError> {
    let bad = RtcpError::Malformed(PT_SDES);
    if b.len() < 8 {
        return Err(bad);
    }
    let mut at = 4;
    loop {
        let kind = *b.get(at).ok_or(bad)?;
        if kind == 0 {
            // Null terminator, then pad to the next 4-byte boundary.
            let end = (at + 1).div_ceil(4) * 4;
            if end > b.len() || b[at..end].iter().any(|&x| x != 0) {
                return Err(bad);
            }
            return Ok(end);
        }
        let len = *b.get(at + 1).ok_or(bad)? as usize;
        at += 2 + len;
        if at > b.len() {
            return Err(bad);
        }
    }
}

/// A source description packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    /// The chunks (at most 31).
    pub chunks: SdesChunks<'a>,
}

impl<'a> Sdes<'a> {
    pub(super) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let mut at = 0;
        for _ in 0..count {
            at += chunk_len(&body[at..])?;
        }
        if at != body.len() {
            return Err(RtcpError::Malformed(PT_SDES));
        }
        Ok(Self {
            chunks: SdesChunks::Wire(body, count),
        })
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN
            + self
                .chunks
                .iter()
                .map(|c| 4 + c.items.wire_len())
                .sum::<usize>()
    }

    /// Writes the packet at the start of `out`; returns its length. Items of kind 0 or with
    /// more than 255 bytes of text are [`RtcpError::BadValue`].
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        let count = self.chunks.len();
        if count > 31 {
            return Err(RtcpError::TooMany);
        }
        for c in self.chunks.iter() {
            if c.items.iter().any(|i| i.kind == 0 || i.text.len() > 255) {
                return Err(RtcpError::BadValue);
            }
        }
        let total = self.wire_len();
        super::write_header(out, count as u8, PT_SDES, total)?;
        let mut at = HEADER_LEN;
        for c in self.chunks.iter() {
            wr32(out, at, c.ssrc.0);
            let end = at + 4 + c.items.wire_len();
            at += 4;
            for item in c.items.iter() {
                out[at] = item.kind;
                out[at + 1] = item.text.len() as u8;
                out[at + 2..at + 2 + item.text.len()].copy_from_slice(item.text);
                at += 2 + item.text.len();
            }
            out[at..end].fill(0);
            at = end;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    #[test]
    fn cname_chunk_layout_and_errors() {
        let items = [SdesItem {
            kind: SdesItem::CNAME,
            text: b"a",
        }];
        let chunks = [SdesChunk {
            ssrc: Ssrc(5),
            items: SdesItems::Items(&items),
        }];
        let sdes = Sdes {
            chunks: SdesChunks::Items(&chunks),
        };
        let mut out = [0u8; 16];
        assert_eq!(sdes.write(&mut out), Ok(12));
        assert_eq!(out[..12], [0x81, 202, 0, 2, 0, 0, 0, 5, 1, 1, b'a', 0]);
        // Items of 6 bytes: the null octet and padding take the chunk to 12 bytes.
        let mut out = [0u8; 16];
        let items = [SdesItem {
            kind: 1,
            text: b"abcd",
        }];
        let chunks = [SdesChunk {
            ssrc: Ssrc(5),
            items: SdesItems::Items(&items),
        }];
        let sdes = Sdes {
            chunks: SdesChunks::Items(&chunks),
        };
        assert_eq!(sdes.write(&mut out), Ok(16));
        let p = RtcpCompound::parse(&out).next().unwrap().unwrap();
        assert_eq!(p, RtcpPacket::Sdes(sdes));
        // Missing terminator.
        let raw = [0x81, 202, 0, 2, 0, 0, 0, 5, 1, 2, b'a', b'b'];
        let _ = RtcpCompound::parse(&raw).next().unwrap().unwrap_err();
        // Item length overruns.
        let raw = [0x81, 202, 0, 2, 0, 0, 0, 5, 1, 9, b'a', 0];
        assert_eq!(
            RtcpCompound::parse(&raw).next().unwrap(),
            Err(RtcpError::Malformed(PT_SDES))
        );
        let bad = [SdesItem { kind: 0, text: b"" }];
        let chunks = [SdesChunk {
            ssrc: Ssrc(5),
            items: SdesItems::Items(&bad),
        }];
        assert_eq!(
            Sdes {
                chunks: SdesChunks::Items(&chunks)
            }
            .write(&mut [0u8; 64]),
            Err(RtcpError::BadValue)
        );
    }
}
