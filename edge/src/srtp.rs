//! SRTP for the edge's media, through the webrtc-rs stack's `rtc-srtp` (no crypto here).
//!
//! A relay leg has one master key and salt, shared by the relay and the endpoint
//! ([`supernode_proto::protocol::SrtpKeying`]: a profile name and base64 key‖salt). The
//! edge protects what it sends with it and unprotects what it receives with it; the two
//! directions have separate contexts (and so separate rollover and replay state), and the
//! receive side has replay protection on.

use base64::Engine as _;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use supernode_proto::protocol::SrtpKeying;

use crate::EdgeError;

/// The SRTP protection profiles the edge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 3711): 16-byte key, 14-byte salt. The default.
    #[default]
    Aes128CmHmacSha1_80,
    /// `AEAD_AES_128_GCM` (RFC 7714): 16-byte key, 12-byte salt.
    AeadAes128Gcm,
}

impl SrtpProfile {
    /// Parses the profile names used in signaling (`AES_CM_128_HMAC_SHA1_80`,
    /// `AEAD_AES_128_GCM`; the `SRTP_` prefixed forms too).
    pub fn from_name(name: &str) -> Result<Self, EdgeError> {
        match name.trim_start_matches("SRTP_") {
            "AES_CM_128_HMAC_SHA1_80" | "AES128_CM_HMAC_SHA1_80" | "AES128_CM_SHA1_80" => {
                Ok(Self::Aes128CmHmacSha1_80)
            }
            "AEAD_AES_128_GCM" => Ok(Self::AeadAes128Gcm),
            _ => Err(EdgeError::Srtp(format!(
                "unsupported SRTP profile {name:?}"
            ))),
        }
    }

    /// The signaling name of the profile.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
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

    fn to_rtc(self) -> ProtectionProfile {
        match self {
            Self::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Self::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }
}

/// Master key material of a leg: profile, key and salt.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    /// Protection profile.
    pub profile: SrtpProfile,
    /// Master key followed by master salt.
    pub key_and_salt: Vec<u8>,
}

impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SrtpKey")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpKey {
    /// From a profile and base64 key‖salt (the signaling form); checks the lengths.
    pub fn from_b64(profile: &str, key_b64: &str) -> Result<Self, EdgeError> {
        let profile = SrtpProfile::from_name(profile)?;
        let key_and_salt = base64::engine::general_purpose::STANDARD
            .decode(key_b64.trim())
            .map_err(|e| EdgeError::Srtp(format!("SRTP key is not base64: {e}")))?;
        let key = Self {
            profile,
            key_and_salt,
        };
        key.check()?;
        Ok(key)
    }

    /// From the keying of a signaling `media` message.
    pub fn from_keying(k: &SrtpKeying) -> Result<Self, EdgeError> {
        Self::from_b64(k.profile.name(), &k.key_b64)
    }

    /// Base64 key‖salt.
    pub fn to_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.key_and_salt)
    }

    fn check(&self) -> Result<(), EdgeError> {
        let want = self.profile.key_len() + self.profile.salt_len();
        if self.key_and_salt.len() != want {
            return Err(EdgeError::Srtp(format!(
                "{} needs {want} bytes of key and salt, got {}",
                self.profile.name(),
                self.key_and_salt.len()
            )));
        }
        Ok(())
    }

    fn context(&self, inbound: bool) -> Result<Context, EdgeError> {
        self.check()?;
        let provider = RingProvider::new();
        let (rtp, rtcp) = if inbound {
            (
                Some(srtp_replay_protection(1024)),
                Some(srtcp_replay_protection(1024)),
            )
        } else {
            (None, None)
        };
        let kl = self.profile.key_len();
        Context::new(
            &self.key_and_salt[..kl],
            &self.key_and_salt[kl..],
            self.profile.to_rtc(),
            rtp,
            rtcp,
            provider.crypto(),
        )
        .map_err(|e| EdgeError::Srtp(e.to_string()))
    }
}

/// Why an SRTP/SRTCP packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnprotectError {
    /// Already received (a retransmission of a packet that did arrive, or a replay).
    #[error("replayed SRTP packet")]
    Replay,
    /// Authentication failed (wrong key, tampering) or the packet is malformed.
    #[error("SRTP authentication failed")]
    Auth,
}

fn unprotect_error(e: rtc_shared::error::Error) -> UnprotectError {
    use rtc_shared::error::Error as E;
    match e {
        E::SrtpSsrcDuplicated(..) | E::SrtcpSsrcDuplicated(..) => UnprotectError::Replay,
        _ => UnprotectError::Auth,
    }
}

/// Protect/unprotect state of one leg (both directions).
pub struct SrtpSession {
    tx: Context,
    rx: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpSession")
    }
}

impl SrtpSession {
    /// A session protecting with `tx` and unprotecting with `rx` (for a relay leg both are
    /// the leg's one key).
    pub fn new(tx: &SrtpKey, rx: &SrtpKey) -> Result<Self, EdgeError> {
        Ok(Self {
            tx: tx.context(false)?,
            rx: rx.context(true)?,
        })
    }

    /// Encrypts and authenticates an RTP packet.
    pub fn protect_rtp(&mut self, pkt: &[u8]) -> Option<Vec<u8>> {
        self.tx.encrypt_rtp(pkt).ok().map(|b| b.to_vec())
    }

    /// Encrypts and authenticates an RTCP compound packet.
    pub fn protect_rtcp(&mut self, pkt: &[u8]) -> Option<Vec<u8>> {
        self.tx.encrypt_rtcp(pkt).ok().map(|b| b.to_vec())
    }

    /// Authenticates and decrypts an SRTP packet.
    pub fn unprotect_rtp(&mut self, pkt: &[u8]) -> Result<Vec<u8>, UnprotectError> {
        self.rx
            .decrypt_rtp(pkt)
            .map(|b| b.to_vec())
            .map_err(unprotect_error)
    }

    /// Authenticates and decrypts an SRTCP packet.
    pub fn unprotect_rtcp(&mut self, pkt: &[u8]) -> Result<Vec<u8>, UnprotectError> {
        self.rx
            .decrypt_rtcp(pkt)
            .map(|b| b.to_vec())
            .map_err(unprotect_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_protect_round_trip() {
        let key = SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &base64_of(&[7u8; 30])).unwrap();
        assert!(format!("{key:?}").contains("Aes128"));
        let mut a = SrtpSession::new(&key, &key).unwrap();
        let mut b = SrtpSession::new(&key, &key).unwrap();
        let rtp = [0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4];
        let p = a.protect_rtp(&rtp).unwrap();
        assert_ne!(&p[12..16], &rtp[12..]);
        assert_eq!(b.unprotect_rtp(&p).unwrap(), rtp);
        // A replay is refused, as a replay.
        assert_eq!(b.unprotect_rtp(&p), Err(UnprotectError::Replay));
        // Another key is refused.
        let other = SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &base64_of(&[8u8; 30])).unwrap();
        let mut c = SrtpSession::new(&other, &other).unwrap();
        assert_eq!(
            c.unprotect_rtp(&a.protect_rtp(&rtp).unwrap()),
            Err(UnprotectError::Auth)
        );
    }

    #[test]
    fn bad_keying_is_a_typed_error() {
        assert!(SrtpKey::from_b64("NULL", &base64_of(&[0; 30])).is_err());
        assert!(SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", "!!").is_err());
        assert!(SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &base64_of(&[0; 20])).is_err());
        assert!(SrtpKey::from_b64("AEAD_AES_128_GCM", &base64_of(&[0; 28])).is_ok());
    }

    fn base64_of(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }
}
