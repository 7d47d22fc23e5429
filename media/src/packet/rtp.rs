//! RTP packets (RFC 3550 §5.1) with RFC 8285 header extensions, parsed without copying.
//!
//! Parse a datagram with [`RtpPacket::parse`]; every accessor then reads straight from the
//! borrowed bytes. Parsing checks everything a forwarder relies on — version 2, the CSRC
//! list, the extension block and each of its RFC 8285 elements, and the padding count — so
//! that later accessors cannot fail. Build packets with [`RtpHeader::write`]. On the relay's
//! hot path, rewrite a received datagram in place with [`set_ssrc`], [`set_sequence_number`],
//! [`set_timestamp`], [`set_payload_type`] and [`set_marker`].
//!
//! ```
//! use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
//! use supernode_media::ids::{Pt, Ssrc};
//!
//! let header = RtpHeader {
//!     payload_type: Pt(111),
//!     sequence_number: 7,
//!     timestamp: 960,
//!     ssrc: Ssrc(0x1234),
//!     extensions: vec![(1, vec![0x30])],
//!     ..RtpHeader::default()
//! };
//! let mut buf = [0u8; 1500];
//! let n = header.write(b"opus", &mut buf).unwrap();
//! let pkt = RtpPacket::parse(&buf[..n]).unwrap();
//! assert_eq!(pkt.payload(), b"opus");
//! assert_eq!(pkt.extensions().next(), Some((1, &[0x30][..])));
//! ```

use crate::ids::{Pt, Ssrc};

/// Size of the fixed RTP header.
pub const FIXED_HEADER_LEN: usize = 12;
/// Extension profile of RFC 8285 one-byte header elements.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Extension profile of RFC 8285 two-byte header elements (the low 4 bits are "appbits").
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Why an RTP datagram was rejected. Small and `Copy`, for the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet shorter than the 12-byte fixed header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC count runs past the end of the datagram.
    #[error("RTP CSRC list overruns the packet")]
    CsrcOverrun,
    /// The extension header or its declared length runs past the end of the datagram.
    #[error("RTP header extension overruns the packet")]
    ExtensionOverrun,
    /// An RFC 8285 element inside the extension block runs past the block.
    #[error("RTP header extension element overruns its block")]
    ExtensionElementOverrun,
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding count is zero or exceeds the payload")]
    BadPadding,
    /// An extension element cannot be written (id or length out of range for any form).
    #[error("RTP header extension element not representable")]
    BadExtension,
    /// The output buffer is too small for the packet being written.
    #[error("output buffer too small for the RTP packet")]
    BufferTooSmall,
    /// More than 15 CSRCs were given to a writer.
    #[error("more than 15 CSRCs")]
    TooManyCsrcs,
}

/// A parsed, borrowed RTP packet. All checks happen in [`RtpPacket::parse`]; accessors are
/// infallible and read directly from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses and validates `buf` as one RTP packet.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let mut header_len = FIXED_HEADER_LEN + 4 * (b0 & 0x0f) as usize;
        if header_len > buf.len() {
            return Err(RtpError::CsrcOverrun);
        }
        if b0 & 0x10 != 0 {
            if header_len + 4 > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
            let profile = u16::from_be_bytes([buf[header_len], buf[header_len + 1]]);
            let words = u16::from_be_bytes([buf[header_len + 2], buf[header_len + 3]]) as usize;
            let start = header_len + 4;
            let end = start + 4 * words;
            if end > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
            validate_elements(profile, &buf[start..end])?;
            header_len = end;
        }
        let mut payload_end = buf.len();
        if b0 & 0x20 != 0 {
            let pad = buf[buf.len() - 1] as usize;
            if pad == 0 || pad > buf.len() - header_len {
                return Err(RtpError::BadPadding);
            }
            payload_end -= pad;
        }
        Ok(Self {
            buf,
            header_len,
            payload_end,
        })
    }

    /// The whole datagram this packet was parsed from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The version field (always 2 after a successful parse).
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }

    /// Whether the padding bit is set.
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Whether the extension bit is set.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> Pt {
        Pt(self.buf[1] & 0x7f)
    }

    /// The 16-bit sequence number as carried on the wire.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// The 32-bit RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(u32::from_be_bytes([
            self.buf[8],
            self.buf[9],
            self.buf[10],
            self.buf[11],
        ]))
    }

    /// The number of CSRCs.
    pub fn csrc_count(&self) -> usize {
        (self.buf[0] & 0x0f) as usize
    }

    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = Ssrc> + 'a {
        let n = self.csrc_count();
        self.buf[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * n]
            .chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The extension block's profile (`0xBEDE`, `0x100X`, or anything else) and its data,
    /// if the extension bit is set.
    pub fn extension_block(&self) -> Option<(u16, &'a [u8])> {
        if !self.has_extension() {
            return None;
        }
        let at = FIXED_HEADER_LEN + 4 * self.csrc_count();
        let profile = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]);
        Some((profile, &self.buf[at + 4..self.header_len]))
    }

    /// The RFC 8285 header extension elements, `(id, data)`, in wire order. Padding bytes are
    /// skipped. Yields nothing when there is no extension or its profile is not RFC 8285.
    pub fn extensions(&self) -> Extensions<'a> {
        match self.extension_block() {
            Some((profile, data)) => Extensions::new(profile, data),
            None => Extensions {
                data: &[],
                form: Form::None,
            },
        }
    }

    /// Length of the header: fixed part, CSRCs and extension block.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Number of padding bytes at the end (0 without the padding bit).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.payload_end]
    }

    /// Byte offset of the payload within the datagram.
    pub fn payload_offset(&self) -> usize {
        self.header_len
    }
}

/// Which RFC 8285 form an extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    None,
    OneByte,
    TwoByte,
}

fn form_of(profile: u16) -> Form {
    if profile == ONE_BYTE_PROFILE {
        Form::OneByte
    } else if profile & 0xfff0 == TWO_BYTE_PROFILE {
        Form::TwoByte
    } else {
        Form::None
    }
}

/// Checks that every RFC 8285 element fits in its block.
fn validate_elements(profile: u16, data: &[u8]) -> Result<(), RtpError> {
    let mut it = Extensions::new(profile, data);
    while it.next_checked()?.is_some() {}
    Ok(())
}

/// Iterator over RFC 8285 header extension elements, from [`RtpPacket::extensions`].
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    form: Form,
}

impl<'a> Extensions<'a> {
    fn new(profile: u16, data: &'a [u8]) -> Self {
        Self {
            data,
            form: form_of(profile),
        }
    }

    fn next_checked(&mut self) -> Result<Option<(u8, &'a [u8])>, RtpError> {
        loop {
            match self.form {
                Form::None => return Ok(None),
                Form::OneByte => {
                    let Some((&b, rest)) = self.data.split_first() else {
                        return Ok(None);
                    };
                    let id = b >> 4;
                    if id == 0 {
                        // Padding byte.
                        self.data = rest;
                        continue;
                    }
                    if id == 15 {
                        // Reserved: processing of the block stops here (RFC 8285 §4.2).
                        self.data = &[];
                        return Ok(None);
                    }
                    let len = (b & 0x0f) as usize + 1;
                    if len > rest.len() {
                        self.data = &[];
                        return Err(RtpError::ExtensionElementOverrun);
                    }
                    let (value, rest) = rest.split_at(len);
                    self.data = rest;
                    return Ok(Some((id, value)));
                }
                Form::TwoByte => {
                    let Some((&id, rest)) = self.data.split_first() else {
                        return Ok(None);
                    };
                    if id == 0 {
                        self.data = rest;
                        continue;
                    }
                    let Some((&len, rest)) = rest.split_first() else {
                        self.data = &[];
                        return Err(RtpError::ExtensionElementOverrun);
                    };
                    let len = len as usize;
                    if len > rest.len() {
                        self.data = &[];
                        return Err(RtpError::ExtensionElementOverrun);
                    }
                    let (value, rest) = rest.split_at(len);
                    self.data = rest;
                    return Ok(Some((id, value)));
                }
            }
        }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.next_checked().ok().flatten()
    }
}

/// Which form [`RtpHeader::write`] uses for extension elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtensionForm {
    /// One-byte form when every element fits it (id 1–14, 1–16 bytes), two-byte otherwise.
    #[default]
    Auto,
    /// Always the one-byte form (fails with [`RtpError::BadExtension`] if an element does not fit).
    OneByte,
    /// Always the two-byte form (id 1–255, 0–255 bytes).
    TwoByte,
}

/// An owned RTP header, for building packets. Not for the hot path (it owns `Vec`s); the
/// relay rewrites received datagrams in place instead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits; the high bit is ignored).
    pub payload_type: Pt,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: Ssrc,
    /// Contributing sources (at most 15).
    pub csrcs: Vec<Ssrc>,
    /// RFC 8285 header extension elements `(id, data)`; empty means no extension block.
    pub extensions: Vec<(u8, Vec<u8>)>,
    /// The form used to write `extensions`.
    pub extension_form: ExtensionForm,
    /// Number of padding bytes to append (0 = no padding; the last byte holds the count).
    pub padding: u8,
}

impl RtpHeader {
    /// An owned copy of a parsed packet's header. Extension elements are copied when the
    /// block uses an RFC 8285 form; any other extension profile is dropped.
    pub fn from_packet(pkt: &RtpPacket<'_>) -> Self {
        let extensions: Vec<(u8, Vec<u8>)> =
            pkt.extensions().map(|(i, d)| (i, d.to_vec())).collect();
        // Keep the two-byte form when the packet used it (and had elements to write).
        let form = match pkt.extension_block().map(|(p, _)| form_of(p)) {
            Some(Form::TwoByte) if !extensions.is_empty() => ExtensionForm::TwoByte,
            _ => ExtensionForm::Auto,
        };
        Self {
            marker: pkt.marker(),
            payload_type: pkt.payload_type(),
            sequence_number: pkt.sequence_number(),
            timestamp: pkt.timestamp(),
            ssrc: pkt.ssrc(),
            csrcs: pkt.csrcs().collect(),
            extensions,
            extension_form: form,
            padding: pkt.padding_len() as u8,
        }
    }

    fn resolved_form(&self) -> Result<Form, RtpError> {
        if self.extensions.is_empty() {
            return Ok(Form::None);
        }
        let fits_one =
            |(id, d): &(u8, Vec<u8>)| (1..=14).contains(id) && (1..=16).contains(&d.len());
        let fits_two = |(id, d): &(u8, Vec<u8>)| *id != 0 && d.len() <= 255;
        match self.extension_form {
            ExtensionForm::Auto if self.extensions.iter().all(fits_one) => Ok(Form::OneByte),
            ExtensionForm::Auto | ExtensionForm::TwoByte => {
                if self.extensions.iter().all(fits_two) {
                    Ok(Form::TwoByte)
                } else {
                    Err(RtpError::BadExtension)
                }
            }
            ExtensionForm::OneByte => {
                if self.extensions.iter().all(fits_one) {
                    Ok(Form::OneByte)
                } else {
                    Err(RtpError::BadExtension)
                }
            }
        }
    }

    /// Length of the header this value writes (fixed part, CSRCs and extension block).
    pub fn header_len(&self) -> Result<usize, RtpError> {
        if self.csrcs.len() > 15 {
            return Err(RtpError::TooManyCsrcs);
        }
        let ext = match self.resolved_form()? {
            Form::None => 0,
            Form::OneByte => {
                4 + self
                    .extensions
                    .iter()
                    .map(|(_, d)| 1 + d.len())
                    .sum::<usize>()
                    .div_ceil(4)
                    * 4
            }
            Form::TwoByte => {
                4 + self
                    .extensions
                    .iter()
                    .map(|(_, d)| 2 + d.len())
                    .sum::<usize>()
                    .div_ceil(4)
                    * 4
            }
        };
        Ok(FIXED_HEADER_LEN + 4 * self.csrcs.len() + ext)
    }

    /// Writes header, `payload` and padding into `out`; returns the packet length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        let form = self.resolved_form()?;
        let header_len = self.header_len()?;
        let total = header_len + payload.len() + self.padding as usize;
        if out.len() < total {
            return Err(RtpError::BufferTooSmall);
        }
        let mut b0 = 0x80 | self.csrcs.len() as u8;
        if self.padding > 0 {
            b0 |= 0x20;
        }
        if form != Form::None {
            b0 |= 0x10;
        }
        out[0] = b0;
        out[1] = (self.payload_type.0 & 0x7f) | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let mut at = FIXED_HEADER_LEN;
        for c in &self.csrcs {
            out[at..at + 4].copy_from_slice(&c.0.to_be_bytes());
            at += 4;
        }
        if form != Form::None {
            let profile = if form == Form::OneByte {
                ONE_BYTE_PROFILE
            } else {
                TWO_BYTE_PROFILE
            };
            let words = ((header_len - at - 4) / 4) as u16;
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
            at += 4;
            for (id, d) in &self.extensions {
                if form == Form::OneByte {
                    out[at] = (id << 4) | (d.len() as u8 - 1);
                    at += 1;
                } else {
                    out[at] = *id;
                    out[at + 1] = d.len() as u8;
                    at += 2;
                }
                out[at..at + d.len()].copy_from_slice(d);
                at += d.len();
            }
            out[at..header_len].fill(0);
        }
        out[header_len..header_len + payload.len()].copy_from_slice(payload);
        if self.padding > 0 {
            let start = header_len + payload.len();
            out[start..total - 1].fill(0);
            out[total - 1] = self.padding;
        }
        Ok(total)
    }

    /// Appends the packet to `out` (a convenience over [`RtpHeader::write`]).
    pub fn write_to_bytes(
        &self,
        payload: &[u8],
        out: &mut bytes::BytesMut,
    ) -> Result<usize, RtpError> {
        let n = self.header_len()? + payload.len() + self.padding as usize;
        let start = out.len();
        out.resize(start + n, 0);
        self.write(payload, &mut out[start..])
    }
}

/// Rewrites the SSRC of an RTP datagram in place. Errors with [`RtpError::TooShort`] (and
/// leaves `buf` untouched) when `buf` is shorter than the fixed header.
#[inline]
pub fn set_ssrc(buf: &mut [u8], ssrc: Ssrc) -> Result<(), RtpError> {
    let b = buf.get_mut(8..12).ok_or(RtpError::TooShort)?;
    b.copy_from_slice(&ssrc.0.to_be_bytes());
    Ok(())
}

/// Rewrites the sequence number in place; [`RtpError::TooShort`] on a short buffer.
#[inline]
pub fn set_sequence_number(buf: &mut [u8], seq: u16) -> Result<(), RtpError> {
    let b = buf.get_mut(2..4).ok_or(RtpError::TooShort)?;
    b.copy_from_slice(&seq.to_be_bytes());
    Ok(())
}

/// Rewrites the timestamp in place; [`RtpError::TooShort`] on a short buffer.
#[inline]
pub fn set_timestamp(buf: &mut [u8], ts: u32) -> Result<(), RtpError> {
    let b = buf.get_mut(4..8).ok_or(RtpError::TooShort)?;
    b.copy_from_slice(&ts.to_be_bytes());
    Ok(())
}

/// Rewrites the payload type in place, keeping the marker bit; [`RtpError::TooShort`] on a
/// buffer shorter than the fixed header.
#[inline]
pub fn set_payload_type(buf: &mut [u8], pt: Pt) -> Result<(), RtpError> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    buf[1] = (buf[1] & 0x80) | (pt.0 & 0x7f);
    Ok(())
}

/// Sets or clears the marker bit in place; [`RtpError::TooShort`] on a short buffer.
#[inline]
pub fn set_marker(buf: &mut [u8], marker: bool) -> Result<(), RtpError> {
    if buf.len() < FIXED_HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    buf[1] = (buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RTP packet with one CSRC, a one-byte extension block (id 1, 1 byte; id 2, 2 bytes;
    // one padding byte), payload "abc" and 2 bytes of padding.
    const SAMPLE: &[u8] = &[
        0xb1, 0xe0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x01, // fixed
        0x00, 0x00, 0x00, 0x02, // csrc
        0xbe, 0xde, 0x00, 0x02, // ext header, 2 words
        0x10, 0xaa, 0x21, 0xbb, 0xcc, 0x00, 0x00, 0x00, // elements + padding
        b'a', b'b', b'c', 0x00, 0x02,
    ];

    #[test]
    fn parses_all_fields() {
        let p = RtpPacket::parse(SAMPLE).unwrap();
        assert_eq!(p.version(), 2);
        assert!(p.padding());
        assert!(p.marker());
        assert_eq!(p.payload_type(), Pt(96));
        assert_eq!(p.sequence_number(), 0x1234);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), Ssrc(1));
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![Ssrc(2)]);
        let ext: Vec<_> = p.extensions().collect();
        assert_eq!(ext, vec![(1, &[0xaa][..]), (2, &[0xbb, 0xcc][..])]);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.padding_len(), 2);
        assert_eq!(p.payload(), b"abc");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpPacket::parse(&SAMPLE[..11]), Err(RtpError::TooShort));
        let mut v = SAMPLE.to_vec();
        v[0] = 0x40 | (v[0] & 0x3f);
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadVersion(1)));
        assert_eq!(RtpPacket::parse(&SAMPLE[..14]), Err(RtpError::CsrcOverrun));
        assert_eq!(
            RtpPacket::parse(&SAMPLE[..18]),
            Err(RtpError::ExtensionOverrun)
        );
        assert_eq!(
            RtpPacket::parse(&SAMPLE[..27]),
            Err(RtpError::ExtensionOverrun)
        );
        let mut v = SAMPLE.to_vec();
        *v.last_mut().unwrap() = 6;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding));
        *v.last_mut().unwrap() = 0;
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::BadPadding));
        let mut v = SAMPLE.to_vec();
        v[22] = 0x2f; // id 2 claims 16 bytes
        assert_eq!(RtpPacket::parse(&v), Err(RtpError::ExtensionElementOverrun));
    }

    #[test]
    fn write_reproduces_sample() {
        let p = RtpPacket::parse(SAMPLE).unwrap();
        let h = RtpHeader::from_packet(&p);
        let mut out = [0u8; 64];
        let n = h.write(p.payload(), &mut out).unwrap();
        assert_eq!(&out[..n], SAMPLE);
        assert_eq!(
            h.write(p.payload(), &mut out[..n - 1]),
            Err(RtpError::BufferTooSmall)
        );
    }

    #[test]
    fn two_byte_form_and_reserved_id() {
        let h = RtpHeader {
            extensions: vec![(200, vec![]), (3, vec![9; 20])],
            ..RtpHeader::default()
        };
        let mut out = [0u8; 64];
        let n = h.write(&[], &mut out).unwrap();
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert_eq!(p.extension_block().unwrap().0, TWO_BYTE_PROFILE);
        let ext: Vec<_> = p.extensions().collect();
        assert_eq!(ext, vec![(200, &[][..]), (3, &[9u8; 20][..])]);
        let one = RtpHeader {
            extensions: vec![(15, vec![1])],
            extension_form: ExtensionForm::OneByte,
            ..RtpHeader::default()
        };
        assert_eq!(one.write(&[], &mut out), Err(RtpError::BadExtension));
        // Id 15 in a received one-byte block stops processing without error.
        let raw = [
            0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 1, 0x10, 0x01, 0xf0, 0xff,
        ];
        let p = RtpPacket::parse(&raw).unwrap();
        assert_eq!(p.extensions().collect::<Vec<_>>(), vec![(1, &[1u8][..])]);
    }

    #[test]
    fn in_place_rewrites() {
        let mut v = SAMPLE.to_vec();
        set_ssrc(&mut v, Ssrc(9)).unwrap();
        set_sequence_number(&mut v, 65535).unwrap();
        set_timestamp(&mut v, 42).unwrap();
        set_payload_type(&mut v, Pt(0)).unwrap();
        let p = RtpPacket::parse(&v).unwrap();
        assert_eq!(
            (p.ssrc(), p.sequence_number(), p.timestamp()),
            (Ssrc(9), 65535, 42)
        );
        assert_eq!(p.payload_type(), Pt(0));
        assert!(p.marker());
        set_marker(&mut v, false).unwrap();
        assert!(!RtpPacket::parse(&v).unwrap().marker());
        let mut short = [0u8; 11];
        assert_eq!(set_ssrc(&mut short, Ssrc(1)), Err(RtpError::TooShort));
        assert_eq!(set_payload_type(&mut short, Pt(1)), Err(RtpError::TooShort));
        assert_eq!(short, [0u8; 11]);
    }
}
