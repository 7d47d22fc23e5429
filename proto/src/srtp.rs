//! The SRTP protection profiles supernode speaks, and their one name table.

use serde::{Deserialize, Serialize};

/// An SRTP protection profile.
///
/// On the wire (signaling JSON, SDP `a=crypto`) a profile is its RFC name, e.g.
/// `AES_CM_128_HMAC_SHA1_80`; [`SrtpProfile::from_name`] also takes the `SRTP_`-prefixed
/// DTLS-SRTP spelling (RFC 5764) and the libsrtp spelling `AES128_CM_SHA1_80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// AES-128 counter mode with an 80-bit HMAC-SHA1 tag (RFC 3711); 16-byte key,
    /// 14-byte salt. The default.
    #[default]
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    Aes128CmHmacSha1_80,
    /// AES-128 GCM (RFC 7714); 16-byte key, 12-byte salt, 16-byte tag.
    #[serde(rename = "AEAD_AES_128_GCM")]
    AeadAes128Gcm,
    /// AES-256 GCM (RFC 7714); 32-byte key, 12-byte salt, 16-byte tag. What browsers
    /// negotiate first in DTLS-SRTP.
    #[serde(rename = "AEAD_AES_256_GCM")]
    AeadAes256Gcm,
}

/// A profile name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported SRTP profile {0:?}")]
pub struct UnknownSrtpProfile(pub String);

impl SrtpProfile {
    /// Every profile, preferred first.
    pub const ALL: [SrtpProfile; 3] = [
        Self::Aes128CmHmacSha1_80,
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
    ];

    /// Parses a profile name (RFC spelling, `SRTP_`-prefixed or libsrtp spelling).
    pub fn from_name(name: &str) -> Result<Self, UnknownSrtpProfile> {
        match name.trim_start_matches("SRTP_") {
            "AES_CM_128_HMAC_SHA1_80" | "AES128_CM_HMAC_SHA1_80" | "AES128_CM_SHA1_80" => {
                Ok(Self::Aes128CmHmacSha1_80)
            }
            "AEAD_AES_128_GCM" => Ok(Self::AeadAes128Gcm),
            "AEAD_AES_256_GCM" => Ok(Self::AeadAes256Gcm),
            _ => Err(UnknownSrtpProfile(name.to_owned())),
        }
    }

    /// The RFC name of the profile (what signaling sends).
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// Length of master key and salt together (what signaling carries, base64).
    pub fn key_and_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }

    /// Bytes an SRTP packet grows by over the RTP packet (authentication tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Bytes an SRTCP packet grows by over the RTCP packet (E flag + index, and the tag).
    pub fn rtcp_overhead(self) -> usize {
        4 + self.rtp_overhead()
    }
}

impl std::fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SrtpProfile {
    type Err = UnknownSrtpProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_spellings_parse() {
        for p in SrtpProfile::ALL {
            assert_eq!(SrtpProfile::from_name(p.name()), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()));
            assert_eq!(serde_json::from_str::<SrtpProfile>(&json).unwrap(), p);
        }
        assert_eq!(
            SrtpProfile::from_name("SRTP_AES128_CM_SHA1_80"),
            Ok(SrtpProfile::Aes128CmHmacSha1_80)
        );
        assert_eq!(
            SrtpProfile::from_name("SRTP_AEAD_AES_128_GCM"),
            Ok(SrtpProfile::AeadAes128Gcm)
        );
        assert!(SrtpProfile::from_name("NULL_HMAC_SHA1_80").is_err());
    }

    #[test]
    fn lengths_follow_the_rfcs() {
        let p = SrtpProfile::Aes128CmHmacSha1_80;
        assert_eq!((p.key_len(), p.salt_len(), p.rtp_overhead()), (16, 14, 10));
        let g = SrtpProfile::AeadAes128Gcm;
        assert_eq!((g.key_len(), g.salt_len(), g.rtp_overhead()), (16, 12, 16));
        assert_eq!(g.rtcp_overhead(), 20);
        let g = SrtpProfile::AeadAes256Gcm;
        assert_eq!((g.key_len(), g.salt_len(), g.rtp_overhead()), (32, 12, 16));
    }
}
