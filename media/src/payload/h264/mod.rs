//! H.264 RTP payload format, RFC 6184 packetization-mode 1 (non-interleaved): single NAL
//! unit packets, STAP-A aggregation and FU-A fragmentation.
//!
//! - Send: [`H264Packetizer`] splits one Annex B access unit (as `crate::codec::h264`
//!   encodes it) into RTP payloads no larger than a configured MTU, and says which one
//!   carries the marker bit (the last of the access unit).
//! - Receive: the video frame buffer (`crate::video::FrameBuffer`) puts packets back in
//!   order and groups them into frames, using [`inspect`] to learn, from each payload,
//!   whether it starts a picture and whether it belongs to a keyframe. Once a frame is
//!   complete, [`H264Depacketizer`] turns its payloads into an Annex B access unit for the
//!   decoder: it rejoins FU-A fragments (a missing fragment is an error, never a corrupt
//!   picture), unpacks STAP-A, remembers the last SPS/PPS and puts them in front of an IDR
//!   that arrives without them.
//!
//! Interleaved mode (STAP-B, MTAP, FU-B) is not supported: those payloads are errors.

mod depacketizer;
mod packetizer;

pub use depacketizer::{AccessUnitInfo, H264Depacketizer};
pub use packetizer::H264Packetizer;

use super::PayloadError;

/// NAL unit type: coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type: coded slice of an IDR picture (a keyframe).
pub const NAL_IDR: u8 = 5;
/// NAL unit type: supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type: sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type: picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type: access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// RTP payload type: single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// RTP payload type: fragmentation unit (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// The `nal_unit_type` of a NAL unit header byte.
pub fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Iterator over the NAL units of an Annex B byte stream (start codes `00 00 01` or
/// `00 00 00 01`), without their start codes. Bytes before the first start code and empty
/// NAL units are skipped.
#[derive(Debug, Clone)]
pub struct AnnexB<'a> {
    rest: &'a [u8],
}

/// Iterates over the NAL units of an Annex B stream.
pub fn annex_b(stream: &[u8]) -> AnnexB<'_> {
    let start = find_start_code(stream).map_or(stream.len(), |(_, end)| end);
    AnnexB {
        rest: &stream[start..],
    }
}

/// Finds the first start code: (its first byte, the byte after it).
fn find_start_code(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 2 < data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let begin = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            return Some((begin, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

impl<'a> Iterator for AnnexB<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start_code(self.rest) {
                Some((begin, end)) => (&self.rest[..begin], &self.rest[end..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // Trailing zero bytes belong to the next start code, not this NAL unit.
            let mut len = nal.len();
            while len > 0 && nal[len - 1] == 0 {
                len -= 1;
            }
            if len > 0 {
                return Some(&nal[..len]);
            }
        }
    }
}

/// What a single RTP payload tells about the frame it belongs to, without reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadHints {
    /// The payload starts a new picture: it begins with SPS, PPS, SEI or an access unit
    /// delimiter, or with the first slice of a picture (`first_mb_in_slice` = 0).
    pub frame_start: bool,
    /// The payload carries part of an IDR picture or a sequence parameter set.
    pub keyframe: bool,
}

/// Whether a NAL unit (header + at least one byte) starts a picture.
fn nal_starts_picture(nal_header: u8, first_body_byte: Option<u8>) -> bool {
    match nal_type(nal_header) {
        NAL_SEI | NAL_SPS | NAL_PPS | NAL_AUD => true,
        // first_mb_in_slice is ue(v) and comes first: the value 0 is the single bit `1`.
        1..=5 => first_body_byte.is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

/// Reads an RTP payload's framing hints (see [`PayloadHints`]).
pub fn inspect(payload: &[u8]) -> Result<PayloadHints, PayloadError> {
    let (&hdr, body) = payload.split_first().ok_or(PayloadError::Empty)?;
    if hdr & 0x80 != 0 {
        return Err(PayloadError::H264Malformed("forbidden_zero_bit set"));
    }
    match nal_type(hdr) {
        t @ 1..=23 => Ok(PayloadHints {
            frame_start: nal_starts_picture(hdr, body.first().copied()),
            keyframe: t == NAL_IDR || t == NAL_SPS,
        }),
        STAP_A => {
            let mut hints = PayloadHints::default();
            let mut rest = body;
            let mut first = true;
            while !rest.is_empty() {
                let [a, b, tail @ ..] = rest else {
                    return Err(PayloadError::Truncated);
                };
                let len = usize::from(u16::from_be_bytes([*a, *b]));
                if len == 0 || len > tail.len() {
                    return Err(PayloadError::H264Malformed("STAP-A unit size"));
                }
                let nal = &tail[..len];
                if first {
                    hints.frame_start = nal_starts_picture(nal[0], nal.get(1).copied());
                    first = false;
                }
                let t = nal_type(nal[0]);
                hints.keyframe |= t == NAL_IDR || t == NAL_SPS;
                rest = &tail[len..];
            }
            if first {
                return Err(PayloadError::H264Malformed("empty STAP-A"));
            }
            Ok(hints)
        }
        FU_A => {
            let [fu, data @ ..] = body else {
                return Err(PayloadError::Truncated);
            };
            let start = fu & 0x80 != 0;
            let t = nal_type(*fu);
            Ok(PayloadHints {
                frame_start: start && nal_starts_picture(t, data.first().copied()),
                keyframe: t == NAL_IDR || t == NAL_SPS,
            })
        }
        t => Err(PayloadError::NalType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_both_start_codes() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ];
        let nals: Vec<&[u8]> = annex_b(&s).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        assert_eq!(annex_b(&[1, 2, 3]).count(), 0);
        assert_eq!(annex_b(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn hints() {
        // IDR slice, first_mb_in_slice = 0
        let h = inspect(&[0x65, 0x88, 0x80]).unwrap();
        assert!(h.frame_start && h.keyframe);
        // P slice, first_mb_in_slice != 0 (second slice of a picture)
        let h = inspect(&[0x41, 0x40]).unwrap();
        assert!(!h.frame_start && !h.keyframe);
        // STAP-A with SPS + PPS
        let h = inspect(&[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2]).unwrap();
        assert!(h.frame_start && h.keyframe);
        assert!(inspect(&[0x78, 0, 9, 0x67]).is_err());
        assert!(inspect(&[0x78]).is_err());
        // FU-A start of an IDR / middle fragment
        let h = inspect(&[0x7c, 0x85, 0x88]).unwrap();
        assert!(h.frame_start && h.keyframe);
        let h = inspect(&[0x7c, 0x05, 0x11]).unwrap();
        assert!(!h.frame_start && h.keyframe);
        assert_eq!(inspect(&[0x79, 0]), Err(PayloadError::NalType(25)));
        assert!(inspect(&[0xe5, 0]).is_err());
        assert_eq!(inspect(&[]), Err(PayloadError::Empty));
    }
}
