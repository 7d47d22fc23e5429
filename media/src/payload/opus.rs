//! Opus RTP payload format (RFC 7587) and Opus packet inspection (RFC 6716 §3).
//!
//! An RTP payload is exactly one Opus packet; the RTP clock always runs at 48 kHz whatever
//! the codec's internal rate; the marker bit flags the first packet of a talkspurt (after
//! DTX silence). Drive the send side with [`OpusRtpClock`]:
//!
//! ```
//! use supernode_media::payload::opus::{OpusRtpClock, parse};
//! let mut clock = OpusRtpClock::new(1000);
//! let packet = [0x78u8, 0xAA, 0xBB]; // TOC: config 15 (hybrid FB 20 ms), mono, code 0
//! let (ts, marker) = clock.next(&packet).unwrap();
//! assert_eq!((ts, marker), (1000, true));
//! assert_eq!(clock.next(&packet).unwrap(), (1960, false));
//! assert_eq!(parse(&packet).unwrap().duration_48k, 960);
//! ```
//!
//! On the receive side [`parse`] validates a payload (frame count, lengths, padding) and
//! gives its duration in 48 kHz ticks, so a jitter buffer knows how much audio a packet holds
//! before decoding it, and [`has_fec`] says whether it can rebuild the previous frame.

use super::PayloadError;

/// The RTP clock rate of Opus (RFC 7587 §4.1): always 48 kHz.
pub const OPUS_RTP_CLOCK_HZ: u32 = 48_000;

/// Longest frame payload RFC 6716 allows.
const MAX_FRAME_LEN: usize = 1275;
/// Longest packet duration: 120 ms at 48 kHz.
const MAX_PACKET_48K: u32 = 5760;

/// Which coding layer a packet uses (RFC 6716 §3.1, Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpusMode {
    /// SILK only (speech, configs 0–11).
    Silk,
    /// SILK + CELT (configs 12–15).
    Hybrid,
    /// CELT only (music / low delay, configs 16–31).
    Celt,
}

/// Audio bandwidth of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpusBandwidth {
    /// 4 kHz.
    Narrow,
    /// 6 kHz.
    Medium,
    /// 8 kHz.
    Wide,
    /// 12 kHz.
    SuperWide,
    /// 20 kHz.
    Full,
}

/// The table-of-contents byte that starts every Opus packet (RFC 6716 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Toc(pub u8);

impl Toc {
    /// The configuration number, 0..=31.
    pub fn config(self) -> u8 {
        self.0 >> 3
    }

    /// Whether the packet is coded stereo.
    pub fn stereo(self) -> bool {
        self.0 & 0x04 != 0
    }

    /// Frame count code c: 0 = one frame, 1 = two equal frames, 2 = two frames of
    /// different sizes, 3 = an arbitrary number of frames.
    pub fn code(self) -> u8 {
        self.0 & 0x03
    }

    /// The coding mode.
    pub fn mode(self) -> OpusMode {
        match self.config() {
            0..=11 => OpusMode::Silk,
            12..=15 => OpusMode::Hybrid,
            _ => OpusMode::Celt,
        }
    }

    /// The audio bandwidth.
    pub fn bandwidth(self) -> OpusBandwidth {
        use OpusBandwidth::*;
        match self.config() {
            0..=3 => Narrow,
            4..=7 => Medium,
            8..=11 => Wide,
            12 | 13 => SuperWide,
            14 | 15 => Full,
            16..=19 => Narrow,
            20..=23 => Wide,
            24..=27 => SuperWide,
            _ => Full,
        }
    }

    /// Duration of each frame in 48 kHz samples (120, 240, 480, 960, 1920 or 2880).
    pub fn frame_samples_48k(self) -> u32 {
        let c = self.config();
        match c {
            // SILK: 10, 20, 40, 60 ms
            0..=11 => [480, 960, 1920, 2880][(c % 4) as usize],
            // Hybrid: 10, 20 ms
            12..=15 => [480, 960][(c % 2) as usize],
            // CELT: 2.5, 5, 10, 20 ms
            _ => [120, 240, 480, 960][(c % 4) as usize],
        }
    }
}

/// What [`parse`] learns from an Opus packet without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusPacketInfo {
    /// The TOC byte.
    pub toc: Toc,
    /// Number of frames (1..=48).
    pub frame_count: u8,
    /// Total duration in 48 kHz ticks (the RTP timestamp increment).
    pub duration_48k: u32,
    /// Offset of the first frame's data in the packet.
    pub first_frame_offset: usize,
    /// Length of the first frame's data (0 for a DTX / lost frame).
    pub first_frame_len: usize,
}

impl OpusPacketInfo {
    /// Duration in milliseconds (may be fractional for CELT 2.5 ms frames; rounded down).
    pub fn duration_ms(&self) -> u32 {
        self.duration_48k / 48
    }
}

/// Reads a 1- or 2-byte frame length (RFC 6716 §3.2.1). Returns (length, bytes used).
fn frame_len(data: &[u8]) -> Result<(usize, usize), PayloadError> {
    match data {
        [] => Err(PayloadError::Truncated),
        [b0, ..] if *b0 < 252 => Ok((usize::from(*b0), 1)),
        [_] => Err(PayloadError::Truncated),
        [b0, b1, ..] => Ok((usize::from(*b1) * 4 + usize::from(*b0), 2)),
    }
}

/// Validates an Opus packet's framing (RFC 6716 §3.2, rules R1–R7) and returns what it
/// holds. Does not decode audio.
pub fn parse(packet: &[u8]) -> Result<OpusPacketInfo, PayloadError> {
    let (&toc_byte, rest) = packet.split_first().ok_or(PayloadError::Empty)?;
    let toc = Toc(toc_byte);
    let frame = toc.frame_samples_48k();
    let (count, first_off, first_len) = match toc.code() {
        0 => {
            if rest.len() > MAX_FRAME_LEN {
                return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
            }
            (1u8, 1, rest.len())
        }
        1 => {
            if !rest.len().is_multiple_of(2) {
                return Err(PayloadError::OpusMalformed(
                    "code 1 with odd payload length",
                ));
            }
            if rest.len() / 2 > MAX_FRAME_LEN {
                return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
            }
            (2, 1, rest.len() / 2)
        }
        2 => {
            let (len1, used) = frame_len(rest)?;
            let remaining = rest.len() - used;
            if len1 > remaining {
                return Err(PayloadError::Truncated);
            }
            if remaining - len1 > MAX_FRAME_LEN {
                return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
            }
            (2, 1 + used, len1)
        }
        _ => {
            let (&fc, mut body) = rest.split_first().ok_or(PayloadError::Truncated)?;
            let vbr = fc & 0x80 != 0;
            let padded = fc & 0x40 != 0;
            let m = fc & 0x3f;
            if m == 0 {
                return Err(PayloadError::OpusMalformed("code 3 with zero frames"));
            }
            if u32::from(m) * frame > MAX_PACKET_48K {
                return Err(PayloadError::OpusMalformed("packet longer than 120 ms"));
            }
            let mut header = 2usize;
            let mut padding = 0usize;
            if padded {
                loop {
                    let (&p, tail) = body.split_first().ok_or(PayloadError::Truncated)?;
                    body = tail;
                    header += 1;
                    if p == 255 {
                        padding += 254;
                    } else {
                        padding += usize::from(p);
                        break;
                    }
                }
            }
            if padding > body.len() {
                return Err(PayloadError::OpusMalformed(
                    "padding longer than the packet",
                ));
            }
            let mut data = &body[..body.len() - padding];
            if vbr {
                let mut total = 0usize;
                let mut first = None;
                for _ in 0..m - 1 {
                    let (len, used) = frame_len(data)?;
                    data = &data[used..];
                    header += used;
                    total += len;
                    if len > MAX_FRAME_LEN {
                        return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
                    }
                    first.get_or_insert(len);
                }
                if total > data.len() {
                    return Err(PayloadError::Truncated);
                }
                let last = data.len() - total;
                if last > MAX_FRAME_LEN {
                    return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
                }
                (m, header, first.unwrap_or(last))
            } else {
                if !data.len().is_multiple_of(usize::from(m)) {
                    return Err(PayloadError::OpusMalformed(
                        "CBR frames do not divide the payload",
                    ));
                }
                let each = data.len() / usize::from(m);
                if each > MAX_FRAME_LEN {
                    return Err(PayloadError::OpusMalformed("frame longer than 1275 bytes"));
                }
                (m, header, each)
            }
        }
    };
    Ok(OpusPacketInfo {
        toc,
        frame_count: count,
        duration_48k: u32::from(count) * frame,
        first_frame_offset: first_off,
        first_frame_len: first_len,
    })
}

/// Duration of an Opus packet in 48 kHz ticks (its RTP timestamp increment).
pub fn duration_48k(packet: &[u8]) -> Result<u32, PayloadError> {
    parse(packet).map(|i| i.duration_48k)
}

/// Whether the packet carries in-band FEC (SILK LBRR data) for the frame before it, so that
/// a lost previous packet can be rebuilt with `OpusDecoder::decode_fec`.
///
/// CELT-only packets never do. For SILK and hybrid packets the LBRR flag is among the first
/// range-coded bits of the first frame, each coded with probability ½, so they are the
/// leading bits of its first byte: per channel, one VAD flag per 20 ms SILK frame and then
/// the LBRR flag (RFC 6716 §4.2.3–4.2.4).
pub fn has_fec(packet: &[u8]) -> bool {
    let Ok(info) = parse(packet) else {
        return false;
    };
    if info.toc.mode() == OpusMode::Celt || info.first_frame_len == 0 {
        return false;
    }
    let Some(&b0) = packet.get(info.first_frame_offset) else {
        return false;
    };
    let silk_frames = (info.toc.frame_samples_48k() / 960).max(1);
    let mid = (b0 >> (7 - silk_frames)) & 1 == 1;
    let side = info.toc.stereo() && (b0 >> (6 - 2 * silk_frames)) & 1 == 1;
    mid || side
}

/// Send-side RTP timing for an Opus stream (RFC 7587 §4.1–4.2): the timestamp advances by
/// each packet's duration at 48 kHz, and the marker bit is set on the first packet and on
/// the first packet after DTX (a packet of at most 2 bytes is DTX comfort noise/silence).
#[derive(Debug, Clone)]
pub struct OpusRtpClock {
    next_ts: u32,
    talkspurt_start: bool,
}

impl OpusRtpClock {
    /// A clock whose first packet gets timestamp `initial_ts` (choose it at random).
    pub fn new(initial_ts: u32) -> Self {
        Self {
            next_ts: initial_ts,
            talkspurt_start: true,
        }
    }

    /// The RTP timestamp and marker bit for `packet`, which is sent next.
    pub fn next(&mut self, packet: &[u8]) -> Result<(u32, bool), PayloadError> {
        let dur = duration_48k(packet)?;
        let ts = self.next_ts;
        self.next_ts = self.next_ts.wrapping_add(dur);
        let dtx = packet.len() <= 2;
        let marker = self.talkspurt_start && !dtx;
        self.talkspurt_start = dtx;
        Ok((ts, marker))
    }

    /// Advances the clock by `ticks` (48 kHz) for audio that was not sent at all.
    pub fn skip(&mut self, ticks: u32) {
        self.next_ts = self.next_ts.wrapping_add(ticks);
        self.talkspurt_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_fields() {
        // config 1 = SILK NB 20 ms
        let t = Toc(1 << 3);
        assert_eq!(t.mode(), OpusMode::Silk);
        assert_eq!(t.frame_samples_48k(), 960);
        assert_eq!(t.bandwidth(), OpusBandwidth::Narrow);
        // config 31 = CELT FB 20 ms, stereo, code 3
        let t = Toc(31 << 3 | 0x04 | 3);
        assert_eq!(t.mode(), OpusMode::Celt);
        assert!(t.stereo());
        assert_eq!(t.code(), 3);
        assert_eq!(t.bandwidth(), OpusBandwidth::Full);
        // config 16 = CELT NB 2.5 ms
        assert_eq!(Toc(16 << 3).frame_samples_48k(), 120);
        // config 11 = SILK WB 60 ms
        assert_eq!(Toc(11 << 3).frame_samples_48k(), 2880);
    }

    #[test]
    fn frame_counts_and_durations() {
        let silk20 = 1u8 << 3;
        assert_eq!(parse(&[silk20, 1, 2, 3]).unwrap().frame_count, 1);
        let two = parse(&[silk20 | 1, 1, 2, 3, 4]).unwrap();
        assert_eq!((two.frame_count, two.duration_48k), (2, 1920));
        assert!(parse(&[silk20 | 1, 1, 2, 3]).is_err()); // odd
        // code 2: first frame 2 bytes, second 1 byte
        let c2 = parse(&[silk20 | 2, 2, 9, 9, 7]).unwrap();
        assert_eq!((c2.first_frame_offset, c2.first_frame_len), (2, 2));
        assert_eq!(parse(&[silk20 | 2, 5, 9]), Err(PayloadError::Truncated));
        // code 3 CBR, 3 frames of 2 bytes
        let c3 = parse(&[silk20 | 3, 3, 1, 1, 2, 2, 3, 3]).unwrap();
        assert_eq!((c3.frame_count, c3.duration_48k), (3, 2880));
        // code 3 VBR with padding: 2 frames, first len 1, padding 2
        let c3v = parse(&[silk20 | 3, 0x80 | 0x40 | 2, 2, 1, 0xAA, 0xBB, 0xBB, 0, 0]).unwrap();
        assert_eq!((c3v.frame_count, c3v.first_frame_len), (2, 1));
        // code 3: 7 frames of 20 ms is 140 ms, over the limit
        assert!(parse(&[silk20 | 3, 7]).is_err());
        assert!(parse(&[silk20 | 3, 0]).is_err());
        // padding longer than the packet
        assert!(parse(&[silk20 | 3, 0x40 | 1, 200]).is_err());
        assert_eq!(parse(&[]), Err(PayloadError::Empty));
    }

    #[test]
    fn rtp_clock_marks_talkspurts() {
        let mut c = OpusRtpClock::new(u32::MAX - 100);
        let p = [1u8 << 3, 1, 2, 3];
        assert_eq!(c.next(&p).unwrap(), (u32::MAX - 100, true));
        assert_eq!(c.next(&p).unwrap(), (859, false)); // wrapped
        assert!(!c.next(&[1u8 << 3]).unwrap().1); // DTX
        assert!(c.next(&p).unwrap().1); // talkspurt again
    }
}
