//! SRTP/SRTCP on a leg, through the webrtc-rs stack's `rtc-srtp` (no crypto is written
//! here). Two profiles: `AES_CM_128_HMAC_SHA1_80` (RFC 3711) and `AEAD_AES_128_GCM`
//! (RFC 7714). A leg has one context for what its peer sends (unprotect, with replay
//! protection) and one for what the relay sends to it (protect).
//!
//! `rtc-srtp` returns each processed packet in a fresh `BytesMut`: an SRTP leg costs one
//! allocation per packet per direction. Plain legs never come here.

use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// The SRTP protection profiles the relay offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// AES-128 counter mode with an 80-bit HMAC-SHA1 tag (RFC 3711); 16-byte key, 14-byte salt.
    Aes128CmHmacSha1_80,
    /// AES-128 GCM (RFC 7714); 16-byte key, 12-byte salt.
    AeadAes128Gcm,
}

impl SrtpProfile {
    fn to_rtc(self) -> ProtectionProfile {
        match self {
            Self::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 14,
            Self::AeadAes128Gcm => 12,
        }
    }
}

/// One direction's master key and salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    /// Protection profile.
    pub profile: SrtpProfile,
    /// Master key.
    pub master_key: Vec<u8>,
    /// Master salt.
    pub master_salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SrtpKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The keys of one leg: what its peer protects with, and what the relay protects with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSrtpKeys {
    /// Key of the packets the peer sends to the relay.
    pub inbound: SrtpKey,
    /// Key of the packets the relay sends to the peer.
    pub outbound: SrtpKey,
}

/// Why SRTP processing failed. Small and `Copy` for the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Authentication failed, the packet is a replay, or it is malformed.
    #[error("SRTP authentication or decryption failed")]
    Unprotect,
    /// Protection failed (packet too large, key exhausted).
    #[error("SRTP protection failed")]
    Protect,
}

/// Builds an SRTP context for one direction. `inbound` turns on replay protection.
fn context(key: &SrtpKey, inbound: bool) -> Result<Context, String> {
    let provider = RingProvider::new();
    let (rtp_opt, rtcp_opt) = if inbound {
        (
            Some(srtp_replay_protection(1024)),
            Some(srtcp_replay_protection(1024)),
        )
    } else {
        (None, None)
    };
    Context::new(
        &key.master_key,
        &key.master_salt,
        key.profile.to_rtc(),
        rtp_opt,
        rtcp_opt,
        provider.crypto(),
    )
    .map_err(|e| e.to_string())
}

/// The SRTP state of one leg.
pub struct LegSrtp {
    rx: Context,
    tx: Context,
}

impl std::fmt::Debug for LegSrtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LegSrtp")
    }
}

impl LegSrtp {
    /// Keys a leg. Fails on wrong key or salt lengths.
    pub fn new(keys: &LegSrtpKeys) -> Result<Self, String> {
        Ok(Self {
            rx: context(&keys.inbound, true)?,
            tx: context(&keys.outbound, false)?,
        })
    }

    /// Authenticates and decrypts an SRTP packet from the peer.
    pub fn unprotect_rtp(&mut self, pkt: &[u8]) -> Result<bytes::BytesMut, SrtpError> {
        self.rx.decrypt_rtp(pkt).map_err(|_| SrtpError::Unprotect)
    }

    /// Authenticates and decrypts an SRTCP packet from the peer.
    pub fn unprotect_rtcp(&mut self, pkt: &[u8]) -> Result<bytes::BytesMut, SrtpError> {
        self.rx.decrypt_rtcp(pkt).map_err(|_| SrtpError::Unprotect)
    }

    /// Encrypts and authenticates an RTP packet toward the peer.
    pub fn protect_rtp(&mut self, pkt: &[u8]) -> Result<bytes::BytesMut, SrtpError> {
        self.tx.encrypt_rtp(pkt).map_err(|_| SrtpError::Protect)
    }

    /// Encrypts and authenticates an RTCP packet toward the peer.
    pub fn protect_rtcp(&mut self, pkt: &[u8]) -> Result<bytes::BytesMut, SrtpError> {
        self.tx.encrypt_rtcp(pkt).map_err(|_| SrtpError::Protect)
    }
}
