//! RFC 7983 demultiplexing: what a datagram on a shared port is, from its first bytes.
//!
//! Call [`classify`] on each received datagram before parsing it further. RTP and RTCP are
//! told apart by the second byte (RFC 5761 §4: RTCP packet types 192–223 fall where RTP
//! payload types 64–95 with the marker bit would be, which RTP must not use).
//!
//! ```
//! use supernode_media::packet::demux::{classify, PacketKind};
//! assert_eq!(classify(&[0x80, 0x60, 0, 1]), PacketKind::Rtp);
//! assert_eq!(classify(&[0x80, 200, 0, 6]), PacketKind::Rtcp);
//! assert_eq!(classify(&[0x00, 0x01, 0, 0]), PacketKind::Stun);
//! ```

/// What a datagram is, by RFC 7983's first-byte ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    /// First byte 0–3: STUN.
    Stun,
    /// First byte 16–19: ZRTP.
    Zrtp,
    /// First byte 20–63: DTLS.
    Dtls,
    /// First byte 64–79: TURN ChannelData.
    TurnChannel,
    /// First byte 128–191, second byte outside 192–223: RTP.
    Rtp,
    /// First byte 128–191, second byte 192–223: RTCP.
    Rtcp,
    /// Anything else, including empty datagrams and a lone RTP/RTCP byte.
    Unknown,
}

/// Classifies a datagram by its first byte (and, for RTP/RTCP, its second). Never fails;
/// a datagram too short to tell is [`PacketKind::Unknown`].
#[inline]
pub fn classify(buf: &[u8]) -> PacketKind {
    let Some(&b0) = buf.first() else {
        return PacketKind::Unknown;
    };
    match b0 {
        0..=3 => PacketKind::Stun,
        16..=19 => PacketKind::Zrtp,
        20..=63 => PacketKind::Dtls,
        64..=79 => PacketKind::TurnChannel,
        128..=191 => match buf.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_its_range() {
        for b in 0..=255u8 {
            let k = classify(&[b, 0x60]);
            let want = match b {
                0..=3 => PacketKind::Stun,
                16..=19 => PacketKind::Zrtp,
                20..=63 => PacketKind::Dtls,
                64..=79 => PacketKind::TurnChannel,
                128..=191 => PacketKind::Rtp,
                _ => PacketKind::Unknown,
            };
            assert_eq!(k, want, "first byte {b}");
        }
    }

    #[test]
    fn rtcp_by_second_byte() {
        for pt in 0..=255u8 {
            let want = if (192..=223).contains(&pt) {
                PacketKind::Rtcp
            } else {
                PacketKind::Rtp
            };
            assert_eq!(classify(&[0x81, pt]), want, "second byte {pt}");
        }
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
    }
}
