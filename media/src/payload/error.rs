//! [`PayloadError`]: why an RTP payload could not be read.

/// A malformed or unsupported RTP payload (Opus per RFC 7587, H.264 per RFC 6184).
///
/// `Copy` and allocation-free: a bad packet on the receive path costs nothing but a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload is empty.
    #[error("empty payload")]
    Empty,
    /// The payload ends before a length or header it announces.
    #[error("payload truncated")]
    Truncated,
    /// An Opus packet breaks a rule of RFC 6716 §3.2 (frame count, frame length, padding).
    #[error("malformed Opus packet: {0}")]
    OpusMalformed(&'static str),
    /// An H.264 NAL unit header has the forbidden bit set or a type this payload format
    /// does not carry (STAP-B, MTAP, FU-B: interleaved mode only).
    #[error("unsupported or invalid NAL unit type {0}")]
    NalType(u8),
    /// An FU-A fragment has both the start and end bits set, which RFC 6184 §5.8 forbids.
    #[error("FU-A fragment with both start and end bits")]
    FuStartAndEnd,
    /// The configured MTU is too small to carry even one byte of a fragment.
    #[error("MTU {0} too small for FU-A fragmentation")]
    MtuTooSmall(usize),
    /// An H.264 payload breaks RFC 6184 framing (forbidden bit, bad STAP-A size, empty
    /// NAL unit).
    #[error("malformed H.264 payload: {0}")]
    H264Malformed(&'static str),
    /// A fragmented NAL unit lacks fragments: FU-A without its start or end, or fragments
    /// of different NAL units mixed. The access unit cannot be rebuilt.
    #[error("FU-A fragments missing")]
    MissingFragment,
    /// The packets of an access unit have a hole in their sequence numbers.
    #[error("packets missing from the access unit")]
    SequenceGap,
    /// An access unit exceeds the depacketizer's size limit.
    #[error("access unit larger than the {0}-byte limit")]
    TooLarge(usize),
}
