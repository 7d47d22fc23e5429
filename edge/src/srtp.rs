//! SRTP keying for the edge's media. The SRTP itself is `supernode_media::srtp` (the one
//! implementation, shared with the relay): the engine keeps one [`SrtpSession`] that
//! protects what it sends and one that unprotects what it receives (separate rollover and
//! replay state), both under the leg's key.
//!
//! A relay leg has one master key and salt, shared by the relay and the endpoint
//! ([`supernode_proto::protocol::SrtpKeying`]: a profile and base64 key‖salt);
//! [`SrtpKeyB64`] reads and writes that form.

use base64::Engine as _;
use supernode_proto::protocol::SrtpKeying;

pub use supernode_media::srtp::{SrtpError, SrtpKey, SrtpProfile, SrtpSession};

use crate::EdgeError;

/// The signaling form of an [`SrtpKey`]: a profile name and base64 master key ‖ salt.
pub trait SrtpKeyB64: Sized {
    /// From a profile name and base64 key‖salt; checks the lengths.
    fn from_b64(profile: &str, key_b64: &str) -> Result<Self, EdgeError>;
    /// From the keying of a signaling `media` message.
    fn from_keying(k: &SrtpKeying) -> Result<Self, EdgeError>;
    /// Base64 key‖salt.
    fn to_b64(&self) -> String;
}

impl SrtpKeyB64 for SrtpKey {
    fn from_b64(profile: &str, key_b64: &str) -> Result<Self, EdgeError> {
        let profile =
            SrtpProfile::from_name(profile).map_err(|e| EdgeError::Srtp(e.to_string()))?;
        let key_and_salt = base64::engine::general_purpose::STANDARD
            .decode(key_b64.trim())
            .map_err(|e| EdgeError::Srtp(format!("SRTP key is not base64: {e}")))?;
        SrtpKey::from_key_and_salt(profile, &key_and_salt)
            .map_err(|e| EdgeError::Srtp(e.to_string()))
    }

    fn from_keying(k: &SrtpKeying) -> Result<Self, EdgeError> {
        Self::from_b64(k.profile.name(), &k.key_b64)
    }

    fn to_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key_and_salt())
    }
}

/// A session for `key`, with the edge's error type.
pub fn session(key: &SrtpKey) -> Result<SrtpSession, EdgeError> {
    SrtpSession::new(key).map_err(|e| EdgeError::Srtp(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protect(s: &mut SrtpSession, rtp: &[u8]) -> Vec<u8> {
        let mut v = rtp.to_vec();
        v.resize(rtp.len() + 16, 0);
        let n = s.protect_rtp(&mut v, rtp.len()).unwrap();
        v.truncate(n);
        v
    }

    fn unprotect(s: &mut SrtpSession, pkt: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let mut v = pkt.to_vec();
        let n = s.unprotect_rtp(&mut v)?;
        v.truncate(n);
        Ok(v)
    }

    #[test]
    fn keys_parse_and_protect_round_trip() {
        let key = SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &base64_of(&[7u8; 30])).unwrap();
        assert!(format!("{key:?}").contains("Aes128"));
        assert_eq!(key.to_b64(), base64_of(&[7u8; 30]));
        let mut a = session(&key).unwrap();
        let mut b = session(&key).unwrap();
        let rtp = [0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4];
        let p = protect(&mut a, &rtp);
        assert_ne!(&p[12..16], &rtp[12..]);
        assert_eq!(unprotect(&mut b, &p).unwrap(), rtp);
        // A replay is refused, as a replay.
        assert_eq!(unprotect(&mut b, &p), Err(SrtpError::Replay));
        // Another key is refused.
        let other = SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &base64_of(&[8u8; 30])).unwrap();
        let mut c = session(&other).unwrap();
        assert_eq!(
            unprotect(&mut c, &protect(&mut a, &rtp)),
            Err(SrtpError::Auth)
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
