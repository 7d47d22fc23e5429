//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions,
//! PT 205 FMT 15): per-packet receive status and arrival time deltas.
//!
//! Parsing checks every packet chunk (run-length and 1- or 2-bit status vectors) and that a
//! receive delta is present for every received packet; [`TwccPackets::iter`] then yields one
//! [`TwccStatus`] per transport sequence number from `base_seq` on. Writing picks chunk
//! kinds itself (run-length for runs of 7 or more), so a rewritten packet may use other
//! chunks than the one parsed while carrying the same statuses.

use super::{HEADER_LEN, PT_RTPFB, RtcpError, rd16, rd32, wr32};
use crate::ids::Ssrc;

pub(super) const FMT: u8 = 15;
const FIXED_LEN: usize = 16;
/// Receive deltas count in units of 250 µs.
pub const DELTA_UNIT_US: i64 = 250;
/// The reference time counts in units of 64 ms.
pub const REFERENCE_UNIT_MS: i64 = 64;

/// What the feedback says about one transport sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwccStatus {
    /// Not received (yet).
    NotReceived,
    /// Received; arrival time minus the previous received packet's (or the reference
    /// time, for the first), in units of 250 µs. 0–255 goes on the wire as a small delta.
    Received(i16),
}

impl TwccStatus {
    fn symbol(self) -> u8 {
        match self {
            TwccStatus::NotReceived => 0,
            TwccStatus::Received(d) if (0..=255).contains(&d) => 1,
            TwccStatus::Received(_) => 2,
        }
    }
}

/// The statuses of a feedback packet: validated wire bytes (parsed) or values (to write).
#[derive(Debug, Clone, Copy)]
pub enum TwccPackets<'a> {
    /// Encoded: packet chunks, receive deltas, and the packet status count.
    Wire {
        /// The packet chunks.
        chunks: &'a [u8],
        /// The receive deltas.
        deltas: &'a [u8],
        /// Packet status count.
        count: u16,
    },
    /// One status per sequence number from `base_seq` on (at most 65535).
    Items(&'a [TwccStatus]),
}

impl<'a> TwccPackets<'a> {
    /// Number of statuses.
    pub fn len(&self) -> usize {
        match self {
            TwccPackets::Wire { count, .. } => *count as usize,
            TwccPackets::Items(s) => s.len(),
        }
    }

    /// Whether there is no status.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the statuses in sequence-number order.
    pub fn iter(&self) -> TwccIter<'a> {
        match *self {
            TwccPackets::Wire {
                chunks,
                deltas,
                count,
            } => TwccIter::Wire(WireWalk {
                chunks,
                deltas,
                left: count,
                chunk: 0,
                in_chunk: 0,
            }),
            TwccPackets::Items(s) => TwccIter::Items(s.iter()),
        }
    }
}

impl PartialEq for TwccPackets<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for TwccPackets<'_> {}

/// Walks packet chunks and deltas. Used both to validate (checked) and to iterate.
#[derive(Debug, Clone)]
pub struct WireWalk<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    left: u16,
    chunk: u16,
    /// Symbols still to take from `chunk`.
    in_chunk: u16,
}

impl WireWalk<'_> {
    fn next_symbol(&mut self) -> Option<u8> {
        if self.in_chunk == 0 {
            if self.chunks.len() < 2 {
                return None;
            }
            self.chunk = rd16(self.chunks, 0);
            self.chunks = &self.chunks[2..];
            self.in_chunk = if self.chunk & 0x8000 == 0 {
                self.chunk & 0x1fff
            } else if self.chunk & 0x4000 == 0 {
                14
            } else {
                7
            };
            if self.in_chunk == 0 {
                return self.next_symbol();
            }
        }
        let c = self.chunk;
        let sym = if c & 0x8000 == 0 {
            ((c >> 13) & 0x3) as u8
        } else if c & 0x4000 == 0 {
            ((c >> (self.in_chunk - 1)) & 0x1) as u8
        } else {
            ((c >> (2 * (self.in_chunk - 1))) & 0x3) as u8
        };
        self.in_chunk -= 1;
        Some(sym)
    }

    fn next_checked(&mut self) -> Result<Option<TwccStatus>, ()> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        match self.next_symbol().ok_or(())? {
            0 => Ok(Some(TwccStatus::NotReceived)),
            1 => {
                let (&d, rest) = self.deltas.split_first().ok_or(())?;
                self.deltas = rest;
                Ok(Some(TwccStatus::Received(d as i16)))
            }
            2 => {
                if self.deltas.len() < 2 {
                    return Err(());
                }
                let d = rd16(self.deltas, 0) as i16;
                self.deltas = &self.deltas[2..];
                Ok(Some(TwccStatus::Received(d)))
            }
            _ => Err(()),
        }
    }
}

/// Iterator over [`TwccPackets`].
#[derive(Debug, Clone)]
pub enum TwccIter<'a> {
    /// Decoding wire bytes.
    Wire(WireWalk<'a>),
    /// Copying values.
    Items(std::slice::Iter<'a, TwccStatus>),
}

impl Iterator for TwccIter<'_> {
    type Item = TwccStatus;
    fn next(&mut self) -> Option<TwccStatus> {
        match self {
            TwccIter::Wire(w) => w.next_checked().ok().flatten(),
            TwccIter::Items(i) => i.next().copied(),
        }
    }
}

/// A transport-wide congestion control feedback packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportFeedback<'a> {
    /// SSRC of the packet's sender.
    pub sender_ssrc: Ssrc,
    /// SSRC of the media source.
    pub media_ssrc: Ssrc,
    /// Transport sequence number of the first status.
    pub base_seq: u16,
    /// Reference time, signed 24 bits, in units of 64 ms.
    pub reference_time: i32,
    /// Feedback packet counter.
    pub fb_pkt_count: u8,
    /// The per-packet statuses.
    pub packets: TwccPackets<'a>,
}

impl<'a> TransportFeedback<'a> {
    pub(super) fn parse_body(body: &'a [u8]) -> Result<Self, RtcpError> {
        let bad = RtcpError::Malformed(PT_RTPFB);
        if body.len() < FIXED_LEN {
            return Err(bad);
        }
        let count = rd16(body, 10);
        let rt = rd32(body, 12);
        // Walk the chunks to find where they end.
        let rest = &body[FIXED_LEN..];
        let mut covered = 0u32;
        let mut chunks_len = 0;
        let mut received_bytes = 0usize;
        while covered < count as u32 {
            let c = rest.get(chunks_len..chunks_len + 2).ok_or(bad)?;
            let c = u16::from_be_bytes([c[0], c[1]]);
            chunks_len += 2;
            let take = |n: u32| n.min(count as u32 - covered);
            if c & 0x8000 == 0 {
                let n = take((c & 0x1fff) as u32);
                match (c >> 13) & 0x3 {
                    0 => {}
                    1 => received_bytes += n as usize,
                    2 => received_bytes += 2 * n as usize,
                    _ => return Err(bad),
                }
                covered += n;
            } else {
                let two = c & 0x4000 != 0;
                let (cap, bits) = if two { (7, 2) } else { (14, 1) };
                let n = take(cap);
                for k in 0..n {
                    let sym = (c >> (bits * (cap - 1 - k))) & if two { 3 } else { 1 };
                    match sym {
                        0 => {}
                        1 => received_bytes += 1,
                        2 => received_bytes += 2,
                        _ => return Err(bad),
                    }
                }
                covered += n;
            }
        }
        let deltas_end = chunks_len + received_bytes;
        if deltas_end > rest.len() {
            return Err(bad);
        }
        let tail = &rest[deltas_end..];
        if tail.len() >= 4 || tail.iter().any(|&b| b != 0) {
            return Err(bad);
        }
        Ok(Self {
            sender_ssrc: Ssrc(rd32(body, 0)),
            media_ssrc: Ssrc(rd32(body, 4)),
            base_seq: rd16(body, 8),
            reference_time: ((rt as i32) >> 8),
            fb_pkt_count: rt as u8,
            packets: TwccPackets::Wire {
                chunks: &rest[..chunks_len],
                deltas: &rest[chunks_len..deltas_end],
                count,
            },
        })
    }

    /// `(sequence number, status)` for every packet the feedback covers.
    pub fn statuses(&self) -> impl Iterator<Item = (u16, TwccStatus)> + 'a {
        let base = self.base_seq;
        self.packets
            .iter()
            .enumerate()
            .map(move |(i, s)| (base.wrapping_add(i as u16), s))
    }

    /// Encodes the packet chunks, calling `emit` for each 16-bit chunk. Greedy over a
    /// 14-symbol lookahead: a run of 7 or more equal symbols becomes a run-length chunk
    /// (extended past the lookahead), otherwise a 1-bit vector of 14 symbols when they are
    /// all "not received" or "small delta" (and more than 7 remain), else a 2-bit vector of 7.
    fn encode_chunks(&self, mut emit: impl FnMut(u16)) {
        let mut it = self.packets.iter().map(TwccStatus::symbol).peekable();
        let mut pending = [0u8; 14];
        let mut len = 0usize;
        loop {
            while len < 14 {
                match it.next() {
                    Some(s) => {
                        pending[len] = s;
                        len += 1;
                    }
                    None => break,
                }
            }
            if len == 0 {
                return;
            }
            let window = &pending[..len];
            let first = window[0];
            let run = window.iter().take_while(|&&s| s == first).count();
            let taken;
            if run >= 7 {
                let mut n = run;
                if run == len {
                    while n < 0x1fff && it.peek() == Some(&first) {
                        it.next();
                        n += 1;
                    }
                }
                emit(((first as u16) << 13) | n as u16);
                taken = run;
            } else if len > 7 && window.iter().all(|&s| s <= 1) {
                let mut c = 0x8000u16;
                for (k, &s) in window.iter().enumerate() {
                    c |= (s as u16) << (13 - k);
                }
                emit(c);
                taken = len;
            } else {
                let n = len.min(7);
                let mut c = 0xc000u16;
                for (k, &s) in window[..n].iter().enumerate() {
                    c |= (s as u16) << (2 * (6 - k));
                }
                emit(c);
                taken = n;
            }
            pending.copy_within(taken..len, 0);
            len -= taken;
        }
    }

    fn deltas_len(&self) -> usize {
        self.packets
            .iter()
            .map(|s| match s.symbol() {
                1 => 1,
                2 => 2,
                _ => 0,
            })
            .sum()
    }

    /// Bytes this packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        let mut chunks = 0;
        self.encode_chunks(|_| chunks += 1);
        (HEADER_LEN + FIXED_LEN + 2 * chunks + self.deltas_len()).div_ceil(4) * 4
    }

    /// Writes the packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        if self.packets.len() > u16::MAX as usize {
            return Err(RtcpError::TooMany);
        }
        if !(-(1 << 23)..(1 << 23)).contains(&self.reference_time) {
            return Err(RtcpError::BadValue);
        }
        let total = self.wire_len();
        super::write_header(out, FMT, PT_RTPFB, total)?;
        wr32(out, 4, self.sender_ssrc.0);
        wr32(out, 8, self.media_ssrc.0);
        out[12..14].copy_from_slice(&self.base_seq.to_be_bytes());
        out[14..16].copy_from_slice(&(self.packets.len() as u16).to_be_bytes());
        wr32(
            out,
            16,
            ((self.reference_time as u32) << 8) | self.fb_pkt_count as u32,
        );
        let mut at = HEADER_LEN + FIXED_LEN;
        self.encode_chunks(|c| {
            out[at..at + 2].copy_from_slice(&c.to_be_bytes());
            at += 2;
        });
        for s in self.packets.iter() {
            match (s.symbol(), s) {
                (1, TwccStatus::Received(d)) => {
                    out[at] = d as u8;
                    at += 1;
                }
                (2, TwccStatus::Received(d)) => {
                    out[at..at + 2].copy_from_slice(&d.to_be_bytes());
                    at += 2;
                }
                _ => {}
            }
        }
        out[at..total].fill(0);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::rtcp::{RtcpCompound, RtcpPacket};

    fn parse(bytes: &[u8]) -> Result<TransportFeedback<'_>, RtcpError> {
        match RtcpCompound::parse(bytes).next().unwrap()? {
            RtcpPacket::TransportFeedback(t) => Ok(t),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_run_length_and_vector_chunks() {
        // base 100, 4 statuses: run of 2 small, then a 2-bit vector: large, not received.
        let raw = [
            0x8f, 205, 0, 6, 0, 0, 0, 1, 0, 0, 0, 2, // header, sender, media
            0, 100, 0, 4, 0xff, 0xff, 0xfe, 7, // base, count, ref -2, fb 7
            0x20, 0x02, // run-length: small x2
            0xe0, 0x00, // 2-bit vector: 10 00 ...
            10, 20, 0xff, 0xf0, // deltas: 10, 20, -16 (large)
        ];
        let t = parse(&raw).unwrap();
        assert_eq!((t.base_seq, t.reference_time, t.fb_pkt_count), (100, -2, 7));
        let st: Vec<_> = t.statuses().collect();
        assert_eq!(
            st,
            vec![
                (100, TwccStatus::Received(10)),
                (101, TwccStatus::Received(20)),
                (102, TwccStatus::Received(-16)),
                (103, TwccStatus::NotReceived),
            ]
        );
        // Missing delta bytes.
        let mut short = raw;
        short[3] = 5;
        assert_eq!(
            parse(&short[..24]).unwrap_err(),
            RtcpError::Malformed(PT_RTPFB)
        );
        // Reserved symbol in a run-length chunk.
        let mut bad = raw;
        bad[20] = 0x60;
        assert_eq!(parse(&bad).unwrap_err(), RtcpError::Malformed(PT_RTPFB));
    }

    #[test]
    fn write_then_parse_keeps_statuses() {
        let mut st = vec![TwccStatus::NotReceived; 3];
        st.extend((0..40).map(TwccStatus::Received));
        st.extend([
            TwccStatus::Received(-300),
            TwccStatus::NotReceived,
            TwccStatus::Received(1000),
        ]);
        st.extend(vec![TwccStatus::NotReceived; 9000]);
        st.push(TwccStatus::Received(3));
        let fb = TransportFeedback {
            sender_ssrc: Ssrc(1),
            media_ssrc: Ssrc(2),
            base_seq: 65530,
            reference_time: 1234,
            fb_pkt_count: 9,
            packets: TwccPackets::Items(&st),
        };
        let mut out = vec![0u8; 2048];
        let n = fb.write(&mut out).unwrap();
        assert_eq!(n, fb.wire_len());
        assert_eq!(parse(&out[..n]).unwrap(), fb);
    }
}
