//! Session key derivation (RFC 3711 §4.3, key derivation rate 0): the AES-CM PRF keyed with
//! the master key, over (master salt XOR label) as the counter block. A 32-byte master key
//! (AEAD_AES_256_GCM) keys AES-256 (RFC 7714 §11, RFC 6188 §3).

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Aes256Enc};

/// Labels of RFC 3711 §4.3.2 (and RFC 7714 §11 for GCM, which uses the same ones).
pub(crate) mod label {
    /// SRTP encryption key.
    pub const RTP_ENCRYPTION: u8 = 0x00;
    /// SRTP authentication key.
    pub const RTP_AUTH: u8 = 0x01;
    /// SRTP salt.
    pub const RTP_SALT: u8 = 0x02;
    /// SRTCP encryption key.
    pub const RTCP_ENCRYPTION: u8 = 0x03;
    /// SRTCP authentication key.
    pub const RTCP_AUTH: u8 = 0x04;
    /// SRTCP salt.
    pub const RTCP_SALT: u8 = 0x05;
}

/// A key derivation function keyed with one master key and salt.
pub(crate) struct Kdf {
    aes: KdfCipher,
    /// The master salt, left-aligned in 14 bytes (a 12-byte GCM salt is padded with zeros,
    /// as RFC 7714 §11 and libsrtp do).
    salt: [u8; 14],
}

// Lives only while a session derives its keys: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum KdfCipher {
    Aes128(Aes128Enc),
    Aes256(Aes256Enc),
}

impl Kdf {
    /// `master_key` is 16 or 32 bytes and `master_salt` at most 14 (checked by the caller).
    pub(crate) fn new(master_key: &[u8], master_salt: &[u8]) -> Self {
        let mut salt = [0u8; 14];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        let aes = if master_key.len() == 32 {
            KdfCipher::Aes256(Aes256Enc::new(master_key.into()))
        } else {
            KdfCipher::Aes128(Aes128Enc::new(master_key.into()))
        };
        Self { aes, salt }
    }

    /// Fills `out` with the session key for `label`: AES(master key, x·2^16 + i) for
    /// i = 0, 1, …, where x = (label·2^48) XOR master salt (the key id sits in the low 56
    /// bits of the 112-bit salt; with rate 0 the index part is zero).
    pub(crate) fn derive(&self, label: u8, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(16).enumerate() {
            let mut block = [0u8; 16];
            block[..14].copy_from_slice(&self.salt);
            block[7] ^= label;
            block[14..].copy_from_slice(&(i as u16).to_be_bytes());
            let mut b = block.into();
            match &self.aes {
                KdfCipher::Aes128(a) => a.encrypt_block(&mut b),
                KdfCipher::Aes256(a) => a.encrypt_block(&mut b),
            }
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::transform::tests::hex;

    /// RFC 3711 B.3: key derivation test vectors.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let kdf = Kdf::new(
            &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex("0EC675AD498AFEEBB6960B3AABE6"),
        );
        let mut k = [0u8; 16];
        kdf.derive(label::RTP_ENCRYPTION, &mut k);
        assert_eq!(
            k.to_vec(),
            hex("C61E7A93744F39EE10734AFE3FF7A087"),
            "cipher key"
        );
        let mut s = [0u8; 14];
        kdf.derive(label::RTP_SALT, &mut s);
        assert_eq!(
            s.to_vec(),
            hex("30CBBC08863D8C85D49DB34A9AE1"),
            "cipher salt"
        );
        let mut a = [0u8; 20];
        kdf.derive(label::RTP_AUTH, &mut a);
        assert_eq!(
            a.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"),
            "auth key"
        );
    }
}
