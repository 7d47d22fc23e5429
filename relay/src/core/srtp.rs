//! SRTP/SRTCP on a leg: two [`SrtpSession`]s of `supernode-media` (the one SRTP
//! implementation), one for what the leg's peer sends (unprotect, with replay protection)
//! and one for what the relay sends to it (protect). Profiles: `AES_CM_128_HMAC_SHA1_80`
//! (RFC 3711) and `AEAD_AES_128_GCM` (RFC 7714).
//!
//! Nothing allocates per packet: protection happens in place in the transmit batch (which
//! leaves room for the tag), unprotection in place in a buffer the core owns (the datagram
//! arrives as `&[u8]`, so it is copied there once). Plain legs never come here.

use supernode_media::srtp::SrtpSession;
pub use supernode_media::srtp::{SrtpError, SrtpKey, SrtpKeyError, SrtpProfile};

/// The keys of one leg: what its peer protects with, and what the relay protects with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSrtpKeys {
    /// Key of the packets the peer sends to the relay.
    pub inbound: SrtpKey,
    /// Key of the packets the relay sends to the peer.
    pub outbound: SrtpKey,
}

/// The SRTP state of one leg.
#[derive(Debug)]
pub struct LegSrtp {
    rx: SrtpSession,
    tx: SrtpSession,
}

impl LegSrtp {
    /// Keys a leg. Fails on wrong key or salt lengths.
    pub fn new(keys: &LegSrtpKeys) -> Result<Self, SrtpKeyError> {
        Ok(Self {
            rx: SrtpSession::new(&keys.inbound)?,
            tx: SrtpSession::new(&keys.outbound)?,
        })
    }

    /// The memory that unprotecting (`inbound`) or protecting an RTP packet reads besides
    /// this struct (see [`SrtpSession::rtp_regions`]).
    pub fn rtp_regions(&self, inbound: bool) -> [(*const u8, usize); 3] {
        if inbound {
            self.rx.rtp_regions()
        } else {
            self.tx.rtp_regions()
        }
    }

    /// Copies the SRTP packet `pkt` from the peer into `out` and authenticates and decrypts
    /// it there; returns the RTP length (`out[..n]`).
    #[inline]
    pub fn unprotect_rtp(&mut self, pkt: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let buf = out.get_mut(..pkt.len()).ok_or(SrtpError::NoRoom)?;
        buf.copy_from_slice(pkt);
        self.rx.unprotect_rtp(buf)
    }

    /// Copies the SRTCP packet `pkt` from the peer into `out` and authenticates and
    /// decrypts it there; returns the RTCP length (`out[..n]`).
    #[inline]
    pub fn unprotect_rtcp(&mut self, pkt: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let buf = out.get_mut(..pkt.len()).ok_or(SrtpError::NoRoom)?;
        buf.copy_from_slice(pkt);
        self.rx.unprotect_rtcp(buf)
    }

    /// Encrypts and authenticates the RTP packet `buf[..len]` toward the peer in place;
    /// returns the SRTP length (`buf` needs room for the tag).
    #[inline]
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.tx.protect_rtp(buf, len)
    }

    /// Encrypts and authenticates the RTCP compound `buf[..len]` toward the peer in place;
    /// returns the SRTCP length.
    #[inline]
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        self.tx.protect_rtcp(buf, len)
    }
}
