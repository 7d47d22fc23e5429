//! [`SrtpSession`]: one direction's SRTP/SRTCP context (session keys and per-SSRC state).

use super::kdf::Kdf;
use super::replay::ReplayWindow;
use super::transform::Transform;
use super::{SrtpError, SrtpKey, SrtpKeyError, SrtpProfile};

/// Most SSRCs one session keeps state for; past it, the least recently used is forgotten
/// (its next packet starts over, with rollover counter 0).
pub const MAX_STREAMS: usize = 64;
/// Streams a session has room for without growing.
const INITIAL_STREAMS: usize = 4;
/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Per-SSRC state (its SSRC is kept apart, in [`SrtpSession::ssrcs`]).
#[derive(Debug, Clone)]
struct Stream {
    last_used: u64,
    /// SRTP: highest index (the rollover counter is its top 32 bits) and replay window.
    rtp: Option<ReplayWindow>,
    /// SRTCP received: highest index and replay window.
    rtcp: Option<ReplayWindow>,
    /// SRTCP sent: the next index to use.
    rtcp_next: u32,
}

impl Stream {
    fn new() -> Self {
        Self {
            last_used: 0,
            rtp: None,
            rtcp: None,
            rtcp_next: 1,
        }
    }
}

/// SRTP and SRTCP of one direction under one master key: protects what is sent with it, or
/// unprotects what is received with it, in place. See the [module docs](super).
///
/// The SSRCs are a compact array of their own, beside the per-SSRC state: finding a
/// packet's stream reads one cache line however many streams the session has (a `Stream`
/// holds two replay windows, several lines each).
pub struct SrtpSession {
    /// The SSRC of `streams[i]` is `ssrcs[i]`.
    ssrcs: Vec<u32>,
    streams: Vec<Stream>,
    clock: u64,
    profile: SrtpProfile,
    rtp: Transform,
    rtcp: Transform,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("profile", &self.profile)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// A session keyed with `key` (session keys derived per RFC 3711 §4.3, rate 0).
    pub fn new(key: &SrtpKey) -> Result<Self, SrtpKeyError> {
        key.check()?;
        let kdf = Kdf::new(&key.master_key, &key.master_salt);
        let gcm = matches!(
            key.profile,
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm
        );
        let key_len = key.profile.key_len();
        Ok(Self {
            profile: key.profile,
            rtp: Transform::derive(&kdf, gcm, key_len, false),
            rtcp: Transform::derive(&kdf, gcm, key_len, true),
            ssrcs: Vec::with_capacity(INITIAL_STREAMS),
            streams: Vec::with_capacity(INITIAL_STREAMS),
            clock: 0,
        })
    }

    /// The memory that protecting or unprotecting an RTP packet of `ssrc` reads besides
    /// the session itself, as (address, bytes): its SSRC array, its stream's replay state and
    /// the RTP keys. For cache prefetch hints ahead of a batch (the relay's worker); nothing is
    /// read here but the session's own fields.
    pub fn rtp_regions(&self) -> [(*const u8, usize); 3] {
        [
            (self.ssrcs.as_ptr().cast(), self.ssrcs.len() * 4),
            (
                self.streams.as_ptr().cast(),
                self.streams.len().min(1) * std::mem::size_of::<Stream>(),
            ),
            self.rtp.key_region(),
        ]
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Protects the RTP packet in `buf[..len]` in place and returns the SRTP length
    /// (`len` + [`SrtpProfile::rtp_overhead`]); `buf` must have room for the tag.
    #[inline]
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let hdr = rtp_header_len(pkt)?;
        let (seq, ssrc) = rtp_seq_ssrc(pkt);
        if buf.len() < len + self.profile.rtp_overhead() {
            return Err(SrtpError::NoRoom);
        }
        let s = self.stream(ssrc);
        let w = s
            .rtp
            .get_or_insert_with(|| ReplayWindow::starting_at(u64::from(seq)));
        // A sequence number that looks like the cycle before ROC 0 keeps ROC 0.
        let index = w.estimate_rtp(seq).unwrap_or(u64::from(seq));
        w.advance(index);
        self.rtp.protect_rtp(buf, len, hdr, ssrc, index)
    }

    /// Authenticates, replay-checks and decrypts the SRTP packet that is all of `buf`, in
    /// place; returns the RTP length (the packet is then `buf[..n]`).
    #[inline]
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let hdr = rtp_header_len(buf)?;
        let (seq, ssrc) = rtp_seq_ssrc(buf);
        let found = self.find(ssrc);
        let index = match found.and_then(|i| self.streams[i].rtp.as_ref()) {
            Some(w) => {
                let index = w.estimate_rtp(seq).ok_or(SrtpError::Replay)?;
                if !w.check(index) {
                    return Err(SrtpError::Replay);
                }
                index
            }
            None => u64::from(seq),
        };
        let n = self.rtp.unprotect_rtp(buf, hdr, ssrc, index)?;
        // Authentic: only now does the packet change any state.
        let i = match found {
            Some(i) => i,
            None => self.insert(ssrc),
        };
        self.touch(i);
        self.streams[i]
            .rtp
            .get_or_insert_with(|| ReplayWindow::starting_at(index))
            .accept(index);
        Ok(n)
    }

    /// Protects the RTCP compound in `buf[..len]` in place (encrypted, with the next SRTCP
    /// index of its sender SSRC) and returns the SRTCP length (`len` +
    /// [`SrtpProfile::rtcp_overhead`]).
    #[inline]
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let ssrc = rtcp_ssrc(pkt)?;
        if buf.len() < len + self.profile.rtcp_overhead() {
            return Err(SrtpError::NoRoom);
        }
        let s = self.stream(ssrc);
        let index = s.rtcp_next;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        s.rtcp_next += 1;
        self.rtcp.protect_rtcp(buf, len, ssrc, index)
    }

    /// Authenticates, replay-checks and (if its E flag says so) decrypts the SRTCP packet
    /// that is all of `buf`, in place; returns the RTCP length.
    #[inline]
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let ssrc = rtcp_ssrc(buf)?;
        let (index, encrypted) = self.rtcp.rtcp_trailer(buf)?;
        let found = self.find(ssrc);
        if let Some(w) = found.and_then(|i| self.streams[i].rtcp.as_ref())
            && !w.check(u64::from(index))
        {
            return Err(SrtpError::Replay);
        }
        let n = self.rtcp.unprotect_rtcp(buf, ssrc, index, encrypted)?;
        let i = match found {
            Some(i) => i,
            None => self.insert(ssrc),
        };
        self.touch(i);
        self.streams[i]
            .rtcp
            .get_or_insert_with(|| ReplayWindow::starting_at(u64::from(index)))
            .accept(u64::from(index));
        Ok(n)
    }

    /// The rollover counter of `ssrc`'s SRTP stream, if it has one.
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        let i = self.find(ssrc)?;
        self.streams[i]
            .rtp
            .as_ref()
            .map(|w| (w.highest() >> 16) as u32)
    }

    /// SSRCs with state.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    #[inline]
    fn find(&self, ssrc: u32) -> Option<usize> {
        self.ssrcs.iter().position(|&s| s == ssrc)
    }

    /// The stream of `ssrc`, created if new; marked used.
    #[inline]
    fn stream(&mut self, ssrc: u32) -> &mut Stream {
        let i = match self.find(ssrc) {
            Some(i) => i,
            None => self.insert(ssrc),
        };
        self.touch(i);
        &mut self.streams[i]
    }

    #[inline]
    fn touch(&mut self, i: usize) {
        self.clock += 1;
        self.streams[i].last_used = self.clock;
    }

    /// Adds a stream (or reuses the least recently used one when full); returns its slot.
    fn insert(&mut self, ssrc: u32) -> usize {
        if self.streams.len() < MAX_STREAMS {
            self.ssrcs.push(ssrc);
            self.streams.push(Stream::new());
            return self.streams.len() - 1;
        }
        let (i, _) = self
            .streams
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last_used)
            .expect("MAX_STREAMS > 0");
        self.ssrcs[i] = ssrc;
        self.streams[i] = Stream::new();
        i
    }
}

/// Length of the RTP header (fixed part, CSRCs, extension) of `pkt`; checks version 2 and
/// that the header fits.
#[inline]
fn rtp_header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut n = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        if pkt.len() < n + 4 {
            return Err(SrtpError::Malformed);
        }
        n += 4 + 4 * usize::from(u16::from_be_bytes([pkt[n + 2], pkt[n + 3]]));
    }
    if pkt.len() < n {
        return Err(SrtpError::Malformed);
    }
    Ok(n)
}

/// Sequence number and SSRC of an RTP packet of at least 12 bytes.
#[inline]
fn rtp_seq_ssrc(pkt: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([pkt[2], pkt[3]]),
        u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
    )
}

/// Sender SSRC of an RTCP packet; checks version 2 and the 8-byte header.
#[inline]
fn rtcp_ssrc(pkt: &[u8]) -> Result<u32, SrtpError> {
    if pkt.len() < 8 || pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::transform::tests::hex;

    const B3_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
    const B3_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

    fn b3() -> SrtpKey {
        SrtpKey::new(
            SrtpProfile::Aes128CmHmacSha1_80,
            &hex(B3_KEY),
            &hex(B3_SALT),
        )
        .unwrap()
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn protect(s: &mut SrtpSession, pkt: &[u8]) -> Vec<u8> {
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + 32, 0);
        let n = s.protect_rtp(&mut buf, pkt.len()).unwrap();
        buf.truncate(n);
        buf
    }

    /// The reference packets of libsrtp's validation under the RFC 3711 B.3 master key
    /// (AES_CM_128_HMAC_SHA1_80), SRTP and SRTCP, both ways.
    #[test]
    fn libsrtp_reference_packets() {
        let mut tx = SrtpSession::new(&b3()).unwrap();
        let mut rx = SrtpSession::new(&b3()).unwrap();
        let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
        let cipher =
            hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
        assert_eq!(protect(&mut tx, &plain), cipher);
        let mut buf = cipher.clone();
        let n = rx.unprotect_rtp(&mut buf).unwrap();
        assert_eq!(buf[..n].to_vec(), plain);
        let mut again = cipher.clone();
        assert_eq!(rx.unprotect_rtp(&mut again), Err(SrtpError::Replay));
        let mut tampered = cipher.clone();
        tampered[20] ^= 1;
        let mut fresh = SrtpSession::new(&b3()).unwrap();
        assert_eq!(fresh.unprotect_rtp(&mut tampered), Err(SrtpError::Auth));

        let rtcp_plain = hex("81c8000bcafebabe abababababababababababababababab");
        let srtcp =
            hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
        let mut buf = rtcp_plain.clone();
        buf.resize(rtcp_plain.len() + 14, 0);
        assert_eq!(tx.protect_rtcp(&mut buf, rtcp_plain.len()), Ok(srtcp.len()));
        assert_eq!(buf, srtcp, "first SRTCP index is 1, as libsrtp's");
        let n = rx.unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n].to_vec(), rtcp_plain);
        let mut again = srtcp.clone();
        assert_eq!(rx.unprotect_rtcp(&mut again), Err(SrtpError::Replay));
    }

    #[test]
    fn rollover_is_tracked_across_the_wrap_and_late_packets() {
        for profile in SrtpProfile::ALL {
            let key = SrtpKey::new(
                profile,
                &vec![3; profile.key_len()],
                &vec![4; profile.salt_len()],
            )
            .unwrap();
            let mut tx = SrtpSession::new(&key).unwrap();
            let mut rx = SrtpSession::new(&key).unwrap();
            let mut sent = Vec::new();
            for k in 0..40u16 {
                sent.push(protect(
                    &mut tx,
                    &rtp(65_520u16.wrapping_add(k), 7, &[k as u8; 20]),
                ));
            }
            assert_eq!(tx.roc(7), Some(1));
            // Deliver out of order around the wrap: 0..20, then 30..40, then the late 20..30.
            for k in (0..20).chain(30..40).chain(20..30) {
                let mut b = sent[k].clone();
                let n = rx
                    .unprotect_rtp(&mut b)
                    .unwrap_or_else(|e| panic!("{profile} {k}: {e}"));
                assert_eq!(
                    b[..n],
                    rtp(65_520u16.wrapping_add(k as u16), 7, &[k as u8; 20])[..]
                );
            }
            assert_eq!(rx.roc(7), Some(1));
            let mut b = sent[25].clone();
            assert_eq!(rx.unprotect_rtp(&mut b), Err(SrtpError::Replay));
        }
    }

    #[test]
    fn malformed_short_and_no_room_are_typed() {
        let mut s = SrtpSession::new(&b3()).unwrap();
        assert_eq!(s.unprotect_rtp(&mut [0x80; 11]), Err(SrtpError::Malformed));
        assert_eq!(s.unprotect_rtp(&mut [0x40; 40]), Err(SrtpError::Malformed));
        // A header with a CSRC count longer than the packet.
        let mut p = rtp(1, 1, &[0; 4]);
        p[0] |= 0x0f;
        assert_eq!(s.unprotect_rtp(&mut p), Err(SrtpError::Malformed));
        // Header only, no room for the tag.
        assert_eq!(
            s.unprotect_rtp(&mut rtp(1, 1, &[0; 9])),
            Err(SrtpError::Malformed)
        );
        let p = rtp(1, 1, &[0; 4]);
        let mut buf = p.clone();
        buf.resize(p.len() + 9, 0);
        assert_eq!(s.protect_rtp(&mut buf, p.len()), Err(SrtpError::NoRoom));
        assert_eq!(s.protect_rtp(&mut buf, 100), Err(SrtpError::Malformed));
        assert_eq!(s.unprotect_rtcp(&mut [0x81; 20]), Err(SrtpError::Malformed));
        assert_eq!(
            s.protect_rtcp(&mut [0x81, 200, 0, 1, 0, 0, 0, 1], 8),
            Err(SrtpError::NoRoom)
        );
        // Nothing authenticated or was protected, so nothing made state.
        assert_eq!(s.stream_count(), 0);
    }

    #[test]
    fn streams_are_bounded() {
        let mut s = SrtpSession::new(&b3()).unwrap();
        for ssrc in 0..(MAX_STREAMS as u32 + 10) {
            protect(&mut s, &rtp(1, ssrc, &[1]));
        }
        assert_eq!(s.stream_count(), MAX_STREAMS);
        assert_eq!(s.roc(0), None, "the oldest was forgotten");
        assert!(s.roc(MAX_STREAMS as u32 + 9).is_some());
    }
}
