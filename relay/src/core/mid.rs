//! The MID header extension toward a browser (RFC 8843 `urn:ietf:params:rtp-hdrext:sdes:mid`,
//! carried as an RFC 8285 element).
//!
//! A browser that negotiated the extension binds an incoming stream to an m-line by the MID
//! in its packets (the answers announce no SSRCs). The source numbers the extension and
//! names its m-lines its own way (a WHIP publisher's answer, another browser's offer), so
//! each send stream toward such a browser carries a [`MidRewrite`]: the source's MID element
//! is removed, as is any element under the receiver's MID id (it would be misread), and the
//! receiver's MID is written under the receiver's id. Every other element passes unchanged.
//!
//! The rewrite rebuilds the extension block (one-byte form) while the packet is copied into
//! the transmit batch ([`MidRewrite::write`]): no allocation, one pass over the header.

/// A MID value: 1 to 16 bytes (the longest value of an RFC 8285 one-byte element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidValue {
    bytes: [u8; 16],
    len: u8,
}

impl MidValue {
    /// `mid` if it has 1 to 16 bytes.
    pub fn new(mid: &str) -> Option<Self> {
        let b = mid.as_bytes();
        if b.is_empty() || b.len() > 16 {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// How the packets of one send stream get the receiver's MID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidRewrite {
    /// The source's MID extension id (its elements are removed), if it has one.
    pub from_id: Option<u8>,
    /// The receiver's MID extension id (1 to 14).
    pub to_id: u8,
    /// The MID of the receiver's m-line for this stream.
    pub mid: MidValue,
    /// The receiver's transport-wide sequence number extension id, when the relay numbers
    /// what it sends there ([`super::bwe`]): elements under it are removed and a 2-byte
    /// element under it is written first, right after the block header (at
    /// [`MidRewrite::twcc_offset`]), for the egress to fill in.
    pub twcc_id: Option<u8>,
    /// More source elements removed (a simulcast source's RID and repaired-RID ids; 0:
    /// none): they name the source's layers, which mean nothing to the receiver.
    pub strip: [u8; 2],
}

use supernode_media::packet::rtp::RtpPacket;

/// RFC 8285 one-byte header profile.
const ONE_BYTE: u16 = 0xBEDE;

impl MidRewrite {
    /// The rewrite toward a receiver with MID extension `to_id` (1 to 14) and m-line `mid`,
    /// of a source whose MID extension id is `from_id`.
    pub fn new(from_id: Option<u8>, to_id: u8, mid: &str) -> Option<Self> {
        if !(1..=14).contains(&to_id) {
            return None;
        }
        Some(Self {
            from_id,
            to_id,
            mid: MidValue::new(mid)?,
            twcc_id: None,
            strip: [0; 2],
        })
    }

    /// Where [`MidRewrite::write`] put the transport-wide sequence number's 2 bytes in a
    /// packet it wrote (`buf`), when it reserved one.
    #[inline]
    pub fn twcc_offset(&self, buf: &[u8]) -> Option<usize> {
        self.twcc_id?;
        let at = 12 + 4 * usize::from(buf.first()? & 0x0f) + 5;
        (buf.len() >= at + 2).then_some(at)
    }

    /// Writes the RTP packet `pkt` into `out` with its header extension rebuilt in the
    /// one-byte form (see the module docs; the elements come from `supernode-media`'s RTP
    /// parser); returns the length written, or 0 when `pkt` is not a valid RTP packet, has
    /// an element that does not fit the one-byte form (empty, or over 16 bytes, from a
    /// two-byte block), or `out` is too small. The caller then sends the packet as it came.
    pub fn write(&self, pkt: &[u8], out: &mut [u8]) -> usize {
        let Ok(p) = RtpPacket::parse(pkt) else {
            return 0;
        };
        let fixed = 12 + 4 * p.csrc_count();
        // Fixed header and CSRCs, then the block header (length filled in below).
        let Some(o) = out.get_mut(..fixed + 4) else {
            return 0;
        };
        o[..fixed].copy_from_slice(&pkt[..fixed]);
        o[0] |= 0x10;
        o[fixed..fixed + 2].copy_from_slice(&ONE_BYTE.to_be_bytes());
        let mut w = fixed + 4;
        let mid = self.mid.as_bytes();
        let kept = p.extensions().filter(|&(id, _)| {
            Some(id) != self.from_id
                && id != self.to_id
                && Some(id) != self.twcc_id
                && !self.strip.contains(&id)
        });
        let twcc = self.twcc_id.map(|id| (id, &[0u8, 0][..]));
        for (id, value) in twcc
            .into_iter()
            .chain(kept)
            .chain(std::iter::once((self.to_id, mid)))
        {
            if !(1..=14).contains(&id) || value.is_empty() || value.len() > 16 {
                return 0;
            }
            let Some(dst) = out.get_mut(w..w + 1 + value.len()) else {
                return 0;
            };
            dst[0] = (id << 4) | (value.len() as u8 - 1);
            dst[1..].copy_from_slice(value);
            w += 1 + value.len();
        }
        let pad = (4 - (w - fixed) % 4) % 4;
        let Some(dst) = out.get_mut(w..w + pad) else {
            return 0;
        };
        dst.fill(0);
        w += pad;
        let words = (w - fixed - 4) / 4;
        out[fixed + 2..fixed + 4].copy_from_slice(&(words as u16).to_be_bytes());
        // Payload and padding as they came.
        let rest = &pkt[p.payload_offset()..];
        let Some(dst) = out.get_mut(w..w + rest.len()) else {
            return 0;
        };
        dst.copy_from_slice(rest);
        w + rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::ids::{Pt, Ssrc};
    use supernode_media::packet::rtp::RtpHeader;

    /// An RTP packet with one-byte extension elements `ext` (id, value) and `payload`.
    fn packet(ext: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
        let h = RtpHeader {
            payload_type: Pt(102),
            sequence_number: 7,
            timestamp: 9,
            ssrc: Ssrc(0xAABB_CCDD),
            extensions: ext.iter().map(|(id, v)| (*id, v.to_vec())).collect(),
            ..RtpHeader::default()
        };
        let mut buf = [0u8; 1500];
        let n = h.write(payload, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn rewrite(rw: &MidRewrite, pkt: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1500];
        let n = rw.write(pkt, &mut out);
        out[..n].to_vec()
    }

    #[test]
    fn the_sources_mid_becomes_the_receivers() {
        // Publisher: MID "0" under id 4, transport-cc under id 3; viewer: MID "video" under 9.
        let rw = MidRewrite::new(Some(4), 9, "video").unwrap();
        let pkt = packet(&[(3, &[0, 42]), (4, b"0")], b"frame");
        let out = rewrite(&rw, &pkt);
        assert_eq!(out, packet(&[(3, &[0, 42]), (9, b"video")], b"frame"));
    }

    #[test]
    fn a_packet_without_extensions_gets_one() {
        let rw = MidRewrite::new(None, 1, "a").unwrap();
        let out = rewrite(&rw, &packet(&[], b"opus"));
        assert_eq!(out, packet(&[(1, b"a")], b"opus"));
    }

    #[test]
    fn an_element_under_the_receivers_id_is_removed() {
        // The source used id 9 for something else (abs-send-time): it would be read as MID.
        let rw = MidRewrite::new(Some(4), 9, "1").unwrap();
        let out = rewrite(&rw, &packet(&[(9, &[1, 2, 3]), (4, b"xyz")], b"p"));
        assert_eq!(out, packet(&[(9, b"1")], b"p"));
    }

    #[test]
    fn csrcs_and_padding_elements_are_kept() {
        let rw = MidRewrite::new(Some(2), 2, "m1").unwrap();
        let mut pkt = packet(&[(5, &[7]), (2, b"old-mid")], b"payload");
        // One CSRC: insert it after the fixed header, and count it.
        pkt[0] |= 1;
        pkt.splice(12..12, [1, 2, 3, 4]);
        let out = rewrite(&rw, &pkt);
        let mut want = packet(&[(5, &[7]), (2, b"m1")], b"payload");
        want[0] |= 1;
        want.splice(12..12, [1, 2, 3, 4]);
        assert_eq!(out, want);
    }

    #[test]
    fn malformed_or_unsupported_packets_are_not_rewritten() {
        let rw = MidRewrite::new(Some(4), 9, "0").unwrap();
        // An element running past its block.
        let mut bad = packet(&[(3, &[1, 2])], b"x");
        bad[16] = 0x3f; // id 3, 16 bytes
        assert!(rewrite(&rw, &bad).is_empty());
        // A two-byte header block: converted when its elements fit the one-byte form, not
        // rewritten when one does not (an empty value).
        let two = |els: &[u8]| {
            let mut p = vec![
                0x90, 102, 0, 7, 0, 0, 0, 9, 0xAA, 0xBB, 0xCC, 0xDD, 0x10, 0x00,
            ];
            p.extend_from_slice(&((els.len() / 4) as u16).to_be_bytes());
            p.extend_from_slice(els);
            p.extend_from_slice(b"x");
            p
        };
        assert_eq!(
            rewrite(&rw, &two(&[3, 2, 1, 2, 4, 1, b'9', 0])),
            packet(&[(3, &[1, 2]), (9, b"0")], b"x")
        );
        assert!(rewrite(&rw, &two(&[3, 0, 0, 0])).is_empty());
        // Too short, and not RTP version 2.
        assert!(rewrite(&rw, &[0x80, 0, 0]).is_empty());
        assert!(rewrite(&rw, &[0u8; 20]).is_empty());
        // No room in `out`.
        let pkt = packet(&[(4, b"0")], &[0u8; 100]);
        assert_eq!(rw.write(&pkt, &mut [0u8; 50]), 0);
    }

    #[test]
    fn ids_and_values_out_of_range_are_refused() {
        assert!(MidRewrite::new(None, 0, "0").is_none());
        assert!(MidRewrite::new(None, 15, "0").is_none());
        assert!(MidRewrite::new(None, 1, "").is_none());
        assert!(MidRewrite::new(None, 1, "0123456789abcdefg").is_none());
        assert!(MidRewrite::new(None, 14, "0123456789abcdef").is_some());
    }
}
