//! RTCP (RFC 3550 §6, RFC 4585, RFC 5104, REMB, transport-wide congestion control).
//!
//! Parse a compound datagram with [`RtcpCompound::parse`], which iterates over
//! [`RtcpPacket`]s borrowing the datagram; [`validate_compound`] applies RFC 3550's compound
//! rules (first packet SR or RR, lengths consistent, padding only in the last packet) where a
//! caller wants them enforced. Packet types this module does not know are carried through as
//! [`UnknownPacket`] instead of being rejected. Each packet type lives in its own file and has
//! a `write` method; [`write_compound`] writes several into one datagram.
//!
//! Lists inside packets (report blocks, NACK pairs, FIR entries, SSRCs) are [`WireList`]s:
//! parsed packets borrow the wire bytes, built packets borrow a slice of values, and both
//! iterate the same way and compare equal when their items do.
//!
//! ```
//! use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket, Pli, write_compound};
//! use supernode_media::ids::Ssrc;
//!
//! let pli = RtcpPacket::Pli(Pli { sender_ssrc: Ssrc(1), media_ssrc: Ssrc(2) });
//! let mut buf = [0u8; 64];
//! let n = write_compound(&[pli], &mut buf).unwrap();
//! let parsed: Vec<_> = RtcpCompound::parse(&buf[..n]).collect::<Result<_, _>>().unwrap();
//! assert_eq!(parsed, vec![pli]);
//! ```

mod app;
mod bye;
mod fir;
mod nack;
mod pli;
mod remb;
mod report_block;
mod rr;
mod sdes;
mod sr;
mod twcc;
mod unknown;

pub use app::App;
pub use bye::Bye;
pub use fir::{Fir, FirEntry};
pub use nack::{Nack, NackPair};
pub use pli::Pli;
pub use remb::Remb;
pub use report_block::ReportBlock;
pub use rr::ReceiverReport;
pub use sdes::{Sdes, SdesChunk, SdesChunks, SdesItem, SdesItems};
pub use sr::SenderReport;
pub use twcc::{
    DELTA_UNIT_US, REFERENCE_UNIT_MS, TransportFeedback, TwccIter, TwccPackets, TwccStatus,
    WireWalk,
};
pub use unknown::UnknownPacket;

use crate::ids::Ssrc;

/// Packet type of a sender report.
pub const PT_SR: u8 = 200;
/// Packet type of a receiver report.
pub const PT_RR: u8 = 201;
/// Packet type of source description.
pub const PT_SDES: u8 = 202;
/// Packet type of BYE.
pub const PT_BYE: u8 = 203;
/// Packet type of APP.
pub const PT_APP: u8 = 204;
/// Packet type of transport-layer feedback (RFC 4585).
pub const PT_RTPFB: u8 = 205;
/// Packet type of payload-specific feedback (RFC 4585).
pub const PT_PSFB: u8 = 206;

/// Length of the common RTCP header.
pub const HEADER_LEN: usize = 4;

/// Why an RTCP datagram or packet was rejected, or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer than 4 bytes left for a packet header.
    #[error("RTCP packet shorter than its 4-byte header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The header's length field runs past the end of the datagram.
    #[error("RTCP length field overruns the datagram")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet body.
    #[error("RTCP padding count is zero or exceeds the packet")]
    BadPadding,
    /// A packet's body does not match its type's layout (packet type given).
    #[error("RTCP packet of type {0} has a malformed body")]
    Malformed(u8),
    /// Compound rule: the first packet is neither SR nor RR.
    #[error("compound RTCP does not start with SR or RR")]
    FirstNotReport,
    /// Compound rule: a packet other than the last has the padding bit.
    #[error("padding in a packet that is not the last of the compound")]
    PaddingNotLast,
    /// Compound rule: the datagram holds no packet.
    #[error("empty compound RTCP")]
    Empty,
    /// A writer was given more items than the packet format can count.
    #[error("too many items for one RTCP packet")]
    TooMany,
    /// A writer was given a value that the format cannot carry (e.g. APP data not a multiple
    /// of 4 bytes, an SDES item longer than 255 bytes).
    #[error("value not representable in RTCP")]
    BadValue,
    /// The output buffer is too small.
    #[error("output buffer too small for the RTCP packet")]
    BufferTooSmall,
}

/// A fixed-size item of an RTCP list (report block, NACK pair, FIR entry, SSRC).
pub trait WireItem: Copy {
    /// Bytes one item takes on the wire.
    const SIZE: usize;
    /// Reads one item from exactly `SIZE` bytes.
    fn read(b: &[u8]) -> Self;
    /// Writes one item into exactly `SIZE` bytes.
    fn write(&self, b: &mut [u8]);
}

impl WireItem for Ssrc {
    const SIZE: usize = 4;
    fn read(b: &[u8]) -> Self {
        Ssrc(rd32(b, 0))
    }
    fn write(&self, b: &mut [u8]) {
        b[..4].copy_from_slice(&self.0.to_be_bytes());
    }
}

/// A list of fixed-size items: borrowed wire bytes (from a parse) or a borrowed slice of
/// values (to write). Iterate with [`WireList::iter`].
#[derive(Debug, Clone, Copy)]
pub enum WireList<'a, T> {
    /// Items still encoded, as parsed; a trailing partial item is ignored.
    Wire(&'a [u8]),
    /// Items as values, for writing.
    Items(&'a [T]),
}

impl<'a, T: WireItem> WireList<'a, T> {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            WireList::Wire(b) => b.len() / T::SIZE,
            WireList::Items(s) => s.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the items.
    pub fn iter(&self) -> WireListIter<'a, T> {
        match *self {
            WireList::Wire(b) => WireListIter::Wire(b.chunks_exact(T::SIZE)),
            WireList::Items(s) => WireListIter::Items(s.iter()),
        }
    }

    /// Bytes the list takes on the wire.
    pub fn wire_len(&self) -> usize {
        self.len() * T::SIZE
    }

    /// Writes the items at the start of `out` (which must hold [`WireList::wire_len`] bytes).
    fn write_into(&self, out: &mut [u8]) {
        for (item, chunk) in self.iter().zip(out.chunks_exact_mut(T::SIZE)) {
            item.write(chunk);
        }
    }
}

impl<T: WireItem> Default for WireList<'_, T> {
    fn default() -> Self {
        WireList::Items(&[])
    }
}

impl<T: WireItem + PartialEq> PartialEq for WireList<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: WireItem + Eq> Eq for WireList<'_, T> {}

/// Iterator over a [`WireList`].
#[derive(Debug, Clone)]
pub enum WireListIter<'a, T> {
    /// Decoding wire bytes.
    Wire(std::slice::ChunksExact<'a, u8>),
    /// Copying values.
    Items(std::slice::Iter<'a, T>),
}

impl<T: WireItem> Iterator for WireListIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            WireListIter::Wire(c) => c.next().map(T::read),
            WireListIter::Items(i) => i.next().copied(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            WireListIter::Wire(c) => c.size_hint(),
            WireListIter::Items(i) => i.size_hint(),
        }
    }
}

impl<T: WireItem> ExactSizeIterator for WireListIter<'_, T> {}

/// One RTCP packet of a compound datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// Sender report (PT 200).
    SenderReport(SenderReport<'a>),
    /// Receiver report (PT 201).
    ReceiverReport(ReceiverReport<'a>),
    /// Source description (PT 202).
    Sdes(Sdes<'a>),
    /// Goodbye (PT 203).
    Bye(Bye<'a>),
    /// Application-defined (PT 204).
    App(App<'a>),
    /// Generic NACK (PT 205, FMT 1).
    Nack(Nack<'a>),
    /// Transport-wide congestion control feedback (PT 205, FMT 15).
    TransportFeedback(TransportFeedback<'a>),
    /// Picture loss indication (PT 206, FMT 1).
    Pli(Pli),
    /// Full intra request (PT 206, FMT 4).
    Fir(Fir<'a>),
    /// Receiver estimated maximum bitrate (PT 206, FMT 15, "REMB").
    Remb(Remb<'a>),
    /// Any other packet type or feedback format, carried through as is.
    Unknown(UnknownPacket<'a>),
}

impl<'a> RtcpPacket<'a> {
    /// Parses one packet from the header fields and its body (padding already removed).
    fn from_parts(count: u8, pt: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        Ok(match (pt, count) {
            (PT_SR, _) => RtcpPacket::SenderReport(SenderReport::parse_body(count, body)?),
            (PT_RR, _) => RtcpPacket::ReceiverReport(ReceiverReport::parse_body(count, body)?),
            (PT_SDES, _) => RtcpPacket::Sdes(Sdes::parse_body(count, body)?),
            (PT_BYE, _) => RtcpPacket::Bye(Bye::parse_body(count, body)?),
            (PT_APP, _) => RtcpPacket::App(App::parse_body(count, body)?),
            (PT_RTPFB, nack::FMT) => RtcpPacket::Nack(Nack::parse_body(body)?),
            (PT_RTPFB, twcc::FMT) => {
                RtcpPacket::TransportFeedback(TransportFeedback::parse_body(body)?)
            }
            (PT_PSFB, pli::FMT) => RtcpPacket::Pli(Pli::parse_body(body)?),
            (PT_PSFB, fir::FMT) => RtcpPacket::Fir(Fir::parse_body(body)?),
            (PT_PSFB, remb::FMT) if Remb::is_remb(body) => {
                RtcpPacket::Remb(Remb::parse_body(body)?)
            }
            _ => RtcpPacket::Unknown(UnknownPacket {
                packet_type: pt,
                count,
                body,
            }),
        })
    }

    /// Bytes this packet takes when written.
    pub fn wire_len(&self) -> usize {
        match self {
            RtcpPacket::SenderReport(p) => p.wire_len(),
            RtcpPacket::ReceiverReport(p) => p.wire_len(),
            RtcpPacket::Sdes(p) => p.wire_len(),
            RtcpPacket::Bye(p) => p.wire_len(),
            RtcpPacket::App(p) => p.wire_len(),
            RtcpPacket::Nack(p) => p.wire_len(),
            RtcpPacket::TransportFeedback(p) => p.wire_len(),
            RtcpPacket::Pli(p) => p.wire_len(),
            RtcpPacket::Fir(p) => p.wire_len(),
            RtcpPacket::Remb(p) => p.wire_len(),
            RtcpPacket::Unknown(p) => p.wire_len(),
        }
    }

    /// Writes this packet at the start of `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        match self {
            RtcpPacket::SenderReport(p) => p.write(out),
            RtcpPacket::ReceiverReport(p) => p.write(out),
            RtcpPacket::Sdes(p) => p.write(out),
            RtcpPacket::Bye(p) => p.write(out),
            RtcpPacket::App(p) => p.write(out),
            RtcpPacket::Nack(p) => p.write(out),
            RtcpPacket::TransportFeedback(p) => p.write(out),
            RtcpPacket::Pli(p) => p.write(out),
            RtcpPacket::Fir(p) => p.write(out),
            RtcpPacket::Remb(p) => p.write(out),
            RtcpPacket::Unknown(p) => p.write(out),
        }
    }
}

/// Iterator over the packets of a compound RTCP datagram; see [`RtcpCompound::parse`].
#[derive(Debug, Clone)]
pub struct RtcpCompound<'a> {
    rest: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Iterates over the packets of `buf`. Each item is a parsed packet or the error that
    /// stopped the walk (the iterator ends after an error). Compound rules are not checked
    /// here; see [`validate_compound`].
    pub fn parse(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

/// `(padding bit, count, pt, body, rest)` of one packet split off a datagram.
type Split<'a> = (bool, u8, u8, &'a [u8], &'a [u8]);

/// Splits the next packet off `buf`.
#[inline]
fn split_packet(buf: &[u8]) -> Result<Split<'_>, RtcpError> {
    if buf.len() < HEADER_LEN {
        return Err(RtcpError::TooShort);
    }
    let b0 = buf[0];
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    let len = (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1) * 4;
    if len > buf.len() {
        return Err(RtcpError::LengthOverrun);
    }
    let (pkt, rest) = buf.split_at(len);
    let padded = b0 & 0x20 != 0;
    let mut body = &pkt[HEADER_LEN..];
    if padded {
        let pad = pkt[len - 1] as usize;
        if pad == 0 || pad > body.len() {
            return Err(RtcpError::BadPadding);
        }
        body = &body[..body.len() - pad];
    }
    Ok((padded, b0 & 0x1f, buf[1], body, rest))
}

impl<'a> Iterator for RtcpCompound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_packet(self.rest) {
            Ok((_, count, pt, body, rest)) => {
                self.rest = rest;
                let r = RtcpPacket::from_parts(count, pt, body);
                if r.is_err() {
                    self.rest = &[];
                }
                Some(r)
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Checks RFC 3550 §6.1's rules for a compound datagram: not empty, every packet version 2
/// with a length that fits, the lengths add up to the datagram, the first packet is SR or RR,
/// only the last packet padded, and every packet parses.
pub fn validate_compound(buf: &[u8]) -> Result<(), RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut rest = buf;
    let mut first = true;
    while !rest.is_empty() {
        let (padded, count, pt, body, next) = split_packet(rest)?;
        if first && pt != PT_SR && pt != PT_RR {
            return Err(RtcpError::FirstNotReport);
        }
        if padded && !next.is_empty() {
            return Err(RtcpError::PaddingNotLast);
        }
        RtcpPacket::from_parts(count, pt, body)?;
        first = false;
        rest = next;
    }
    Ok(())
}

/// Writes `packets` one after another into `out`; returns the total length.
pub fn write_compound(packets: &[RtcpPacket<'_>], out: &mut [u8]) -> Result<usize, RtcpError> {
    let mut at = 0;
    for p in packets {
        at += p.write(&mut out[at..])?;
    }
    Ok(at)
}

/// Writes a common header for a packet of `total` bytes (a multiple of 4) and checks `out`.
fn write_header(out: &mut [u8], count: u8, pt: u8, total: usize) -> Result<(), RtcpError> {
    if count > 31 {
        return Err(RtcpError::TooMany);
    }
    debug_assert!(total.is_multiple_of(4) && total >= HEADER_LEN);
    let words = total / 4 - 1;
    if words > u16::MAX as usize {
        return Err(RtcpError::TooMany);
    }
    if out.len() < total {
        return Err(RtcpError::BufferTooSmall);
    }
    out[0] = 0x80 | count;
    out[1] = pt;
    out[2..4].copy_from_slice(&(words as u16).to_be_bytes());
    Ok(())
}

#[inline]
fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_compound() -> Vec<u8> {
        let blocks = [ReportBlock {
            ssrc: Ssrc(2),
            fraction_lost: 3,
            cumulative_lost: -4,
            extended_highest_seq: 70_000,
            jitter: 5,
            last_sr: 6,
            delay_since_last_sr: 7,
        }];
        let sr = SenderReport {
            ssrc: Ssrc(1),
            ntp_time: 0x0102_0304_0506_0708,
            rtp_time: 9,
            packet_count: 10,
            octet_count: 11,
            reports: WireList::Items(&blocks),
            profile_extension: &[],
        };
        let chunk = [SdesChunk {
            ssrc: Ssrc(1),
            items: SdesItems::Items(&[SdesItem {
                kind: 1,
                text: b"cname",
            }]),
        }];
        let sdes = Sdes {
            chunks: SdesChunks::Items(&chunk),
        };
        let mut buf = vec![0u8; 256];
        let n = write_compound(
            &[RtcpPacket::SenderReport(sr), RtcpPacket::Sdes(sdes)],
            &mut buf,
        )
        .unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn compound_round_trip_and_rules() {
        let buf = sample_compound();
        validate_compound(&buf).unwrap();
        let pkts: Vec<_> = RtcpCompound::parse(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(pkts.len(), 2);
        assert!(matches!(pkts[0], RtcpPacket::SenderReport(sr) if sr.reports.len() == 1));
        // Second packet first: not a report.
        let sr_len = pkts[0].wire_len();
        let mut swapped = buf[sr_len..].to_vec();
        swapped.extend_from_slice(&buf[..sr_len]);
        assert_eq!(validate_compound(&swapped), Err(RtcpError::FirstNotReport));
        // Padding bit on the first packet.
        let mut padded = buf.clone();
        padded[0] |= 0x20;
        padded[sr_len - 1] = 4;
        assert!(matches!(
            validate_compound(&padded),
            Err(RtcpError::PaddingNotLast | RtcpError::Malformed(_))
        ));
        // Length overrun and truncation.
        assert_eq!(
            validate_compound(&buf[..buf.len() - 4]),
            Err(RtcpError::LengthOverrun)
        );
        assert_eq!(validate_compound(&[]), Err(RtcpError::Empty));
        assert_eq!(validate_compound(&buf[..2]), Err(RtcpError::TooShort));
    }

    #[test]
    fn unknown_types_are_carried() {
        let raw = [0x83, 210, 0, 1, 1, 2, 3, 4];
        let pkts: Vec<_> = RtcpCompound::parse(&raw).collect::<Result<_, _>>().unwrap();
        let RtcpPacket::Unknown(u) = pkts[0] else {
            panic!("not unknown")
        };
        assert_eq!(
            (u.packet_type, u.count, u.body),
            (210, 3, &[1u8, 2, 3, 4][..])
        );
        let mut out = [0u8; 8];
        assert_eq!(pkts[0].write(&mut out), Ok(8));
        assert_eq!(out, raw);
    }

    #[test]
    fn iterator_stops_after_error() {
        let mut buf = sample_compound();
        buf.extend_from_slice(&[0x40, 200, 0, 0]);
        buf.extend_from_slice(&sample_compound());
        let items: Vec<_> = RtcpCompound::parse(&buf).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2], Err(RtcpError::BadVersion(1)));
    }
}
