//! The profiles' packet transforms over session keys: AES-CM + HMAC-SHA1-80
//! (RFC 3711 §4.1.1, §4.2.1) and AES-GCM with 128- or 256-bit keys (RFC 7714 §8, §9), for
//! SRTP and SRTCP. In place:
//! each takes the caller's buffer and the packet's length in it.
//!
//! Index bookkeeping (rollover counters, SRTCP indices, replay) is the session's; here an
//! index is given.

use aes::Aes128Enc;
use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use hmac::{Hmac, Mac};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha1::Sha1;

use super::SrtpError;
use super::kdf::{Kdf, label};

type Ctr = ctr::Ctr128BE<Aes128Enc>;
type HmacSha1 = Hmac<Sha1>;

/// HMAC-SHA1-80 tag length.
pub(crate) const CM_TAG: usize = 10;
/// AES-GCM tag length.
pub(crate) const GCM_TAG: usize = 16;
/// The SRTCP trailer: E flag and 31-bit index.
pub(crate) const SRTCP_TRAILER: usize = 4;
/// The fixed RTCP header that stays in clear (V/P/RC, PT, length, sender SSRC).
const RTCP_HEADER: usize = 8;
const E_FLAG: u32 = 0x8000_0000;

/// One direction's session keys for one of SRTP or SRTCP.
pub(crate) enum Transform {
    /// AES-128 counter mode with HMAC-SHA1-80.
    Cm(Box<Cm>),
    /// AES-GCM (128- or 256-bit key).
    Gcm(Box<Gcm>),
}

/// AES-CM + HMAC-SHA1 session keys.
pub(crate) struct Cm {
    aes: Aes128Enc,
    salt: [u8; 14],
    /// HMAC keyed with the session auth key (cloned per packet: the key pads are hashed once).
    mac: HmacSha1,
}

/// AES-GCM session key and salt. `ring`'s AES-GCM (AES-NI/VAES and carry-less multiply
/// in assembly): about 5x faster per packet than the RustCrypto `aes-gcm` crate on the
/// same machine (`media/benches/srtp.rs`, docs/design-notes.md).
pub(crate) struct Gcm {
    aead: LessSafeKey,
    salt: [u8; 12],
}

impl Transform {
    /// Where its keys are (address, bytes): every packet reads them.
    pub(crate) fn key_region(&self) -> (*const u8, usize) {
        match self {
            Self::Cm(c) => (
                std::ptr::from_ref::<Cm>(c).cast(),
                std::mem::size_of::<Cm>(),
            ),
            Self::Gcm(g) => (
                std::ptr::from_ref::<Gcm>(g).cast(),
                std::mem::size_of::<Gcm>(),
            ),
        }
    }

    /// Derives the SRTP (`rtcp == false`) or SRTCP session keys of `gcm` or AES-CM;
    /// `key_len` is the session encryption key's length (32 for AEAD_AES_256_GCM, else 16).
    pub(crate) fn derive(kdf: &Kdf, gcm: bool, key_len: usize, rtcp: bool) -> Self {
        let (enc, auth, salt) = if rtcp {
            (label::RTCP_ENCRYPTION, label::RTCP_AUTH, label::RTCP_SALT)
        } else {
            (label::RTP_ENCRYPTION, label::RTP_AUTH, label::RTP_SALT)
        };
        let mut k = [0u8; 16];
        kdf.derive(enc, &mut k);
        if gcm {
            let mut s = [0u8; 12];
            kdf.derive(salt, &mut s);
            if key_len == 32 {
                let mut k = [0u8; 32];
                kdf.derive(enc, &mut k);
                return Self::Gcm(Box::new(Gcm::new_256(&k, &s)));
            }
            Self::Gcm(Box::new(Gcm::new(&k, &s)))
        } else {
            let mut s = [0u8; 14];
            kdf.derive(salt, &mut s);
            let mut a = [0u8; 20];
            kdf.derive(auth, &mut a);
            Self::Cm(Box::new(Cm::new(&k, &s, &a)))
        }
    }

    /// Protects the RTP packet `buf[..len]` (header `hdr` bytes) with packet index `index`
    /// (ROC·2^16 + SEQ); returns the SRTP length.
    #[inline]
    pub(crate) fn protect_rtp(
        &self,
        buf: &mut [u8],
        len: usize,
        hdr: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        match self {
            Self::Cm(c) => {
                let out = len + CM_TAG;
                if buf.len() < out {
                    return Err(SrtpError::NoRoom);
                }
                c.crypt(ssrc, index, &mut buf[hdr..len]);
                let roc = ((index >> 16) as u32).to_be_bytes();
                let mut mac = c.mac.clone();
                mac.update(&buf[..len]);
                mac.update(&roc);
                let tag = mac.finalize().into_bytes();
                buf[len..out].copy_from_slice(&tag[..CM_TAG]);
                Ok(out)
            }
            Self::Gcm(g) => {
                let out = len + GCM_TAG;
                if buf.len() < out {
                    return Err(SrtpError::NoRoom);
                }
                let (aad, rest) = buf.split_at_mut(hdr);
                let (body, tail) = rest.split_at_mut(len - hdr);
                let tag = g
                    .aead
                    .seal_in_place_separate_tag(g.nonce(ssrc, index), Aad::from(&*aad), body)
                    .map_err(|_| SrtpError::NoRoom)?;
                tail[..GCM_TAG].copy_from_slice(tag.as_ref());
                Ok(out)
            }
        }
    }

    /// Authenticates and decrypts the SRTP packet `buf` (header `hdr` bytes) as packet
    /// index `index`; returns the RTP length.
    #[inline]
    pub(crate) fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        hdr: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let len = buf.len();
        match self {
            Self::Cm(c) => {
                let plain = len
                    .checked_sub(CM_TAG)
                    .filter(|&p| p >= hdr)
                    .ok_or(SrtpError::Malformed)?;
                let roc = ((index >> 16) as u32).to_be_bytes();
                let mut mac = c.mac.clone();
                mac.update(&buf[..plain]);
                mac.update(&roc);
                mac.verify_truncated_left(&buf[plain..])
                    .map_err(|_| SrtpError::Auth)?;
                c.crypt(ssrc, index, &mut buf[hdr..plain]);
                Ok(plain)
            }
            Self::Gcm(g) => {
                let plain = len
                    .checked_sub(GCM_TAG)
                    .filter(|&p| p >= hdr)
                    .ok_or(SrtpError::Malformed)?;
                let (aad, rest) = buf.split_at_mut(hdr);
                let (body, tag) = rest.split_at_mut(plain - hdr);
                let tag = Tag::try_from(&*tag).map_err(|_| SrtpError::Malformed)?;
                g.aead
                    .open_in_place_separate_tag(
                        g.nonce(ssrc, index),
                        Aad::from(&*aad),
                        tag,
                        body,
                        0..,
                    )
                    .map_err(|_| SrtpError::Auth)?;
                Ok(plain)
            }
        }
    }

    /// Protects the RTCP compound `buf[..len]` (at least 8 bytes) with SRTCP index `index`
    /// (encrypted, E = 1); returns the SRTCP length.
    #[inline]
    pub(crate) fn protect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
    ) -> Result<usize, SrtpError> {
        let trailer = (E_FLAG | index).to_be_bytes();
        match self {
            Self::Cm(c) => {
                let out = len + SRTCP_TRAILER + CM_TAG;
                if buf.len() < out {
                    return Err(SrtpError::NoRoom);
                }
                c.crypt(ssrc, u64::from(index), &mut buf[RTCP_HEADER..len]);
                buf[len..len + SRTCP_TRAILER].copy_from_slice(&trailer);
                let mut mac = c.mac.clone();
                mac.update(&buf[..len + SRTCP_TRAILER]);
                let tag = mac.finalize().into_bytes();
                buf[len + SRTCP_TRAILER..out].copy_from_slice(&tag[..CM_TAG]);
                Ok(out)
            }
            Self::Gcm(g) => {
                // RFC 7714 §9.1: header ‖ ciphertext ‖ tag ‖ E‖index; AAD = header ‖ E‖index.
                let out = len + GCM_TAG + SRTCP_TRAILER;
                if buf.len() < out {
                    return Err(SrtpError::NoRoom);
                }
                let mut aad = [0u8; RTCP_HEADER + SRTCP_TRAILER];
                aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                aad[RTCP_HEADER..].copy_from_slice(&trailer);
                let tag = g
                    .aead
                    .seal_in_place_separate_tag(
                        g.nonce(ssrc, u64::from(index)),
                        Aad::from(&aad),
                        &mut buf[RTCP_HEADER..len],
                    )
                    .map_err(|_| SrtpError::NoRoom)?;
                buf[len..len + GCM_TAG].copy_from_slice(tag.as_ref());
                buf[len + GCM_TAG..out].copy_from_slice(&trailer);
                Ok(out)
            }
        }
    }

    /// The SRTCP index and E flag of the SRTCP packet `buf`, checking its length.
    pub(crate) fn rtcp_trailer(&self, buf: &[u8]) -> Result<(u32, bool), SrtpError> {
        let len = buf.len();
        let (min, at) = match self {
            Self::Cm(_) => (
                RTCP_HEADER + SRTCP_TRAILER + CM_TAG,
                len.wrapping_sub(CM_TAG + SRTCP_TRAILER),
            ),
            Self::Gcm(_) => (
                RTCP_HEADER + SRTCP_TRAILER + GCM_TAG,
                len.wrapping_sub(SRTCP_TRAILER),
            ),
        };
        if len < min {
            return Err(SrtpError::Malformed);
        }
        let word = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        Ok((word & !E_FLAG, word & E_FLAG != 0))
    }

    /// Authenticates and (if `encrypted`) decrypts the SRTCP packet `buf` with `index`
    /// (from [`Transform::rtcp_trailer`]); returns the RTCP length.
    #[inline]
    pub(crate) fn unprotect_rtcp(
        &self,
        buf: &mut [u8],
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, SrtpError> {
        let len = buf.len();
        match self {
            Self::Cm(c) => {
                let authed = len - CM_TAG;
                let plain = authed - SRTCP_TRAILER;
                let mut mac = c.mac.clone();
                mac.update(&buf[..authed]);
                mac.verify_truncated_left(&buf[authed..])
                    .map_err(|_| SrtpError::Auth)?;
                if encrypted {
                    c.crypt(ssrc, u64::from(index), &mut buf[RTCP_HEADER..plain]);
                }
                Ok(plain)
            }
            Self::Gcm(g) => {
                let plain = len - GCM_TAG - SRTCP_TRAILER;
                let mut trailer = [0u8; SRTCP_TRAILER];
                trailer.copy_from_slice(&buf[len - SRTCP_TRAILER..]);
                let mut tag = [0u8; GCM_TAG];
                tag.copy_from_slice(&buf[plain..plain + GCM_TAG]);
                let nonce = g.nonce(ssrc, u64::from(index));
                let tag = Tag::from(tag);
                if encrypted {
                    let mut aad = [0u8; RTCP_HEADER + SRTCP_TRAILER];
                    aad[..RTCP_HEADER].copy_from_slice(&buf[..RTCP_HEADER]);
                    aad[RTCP_HEADER..].copy_from_slice(&trailer);
                    g.aead
                        .open_in_place_separate_tag(
                            nonce,
                            Aad::from(&aad),
                            tag,
                            &mut buf[RTCP_HEADER..plain],
                            0..,
                        )
                        .map_err(|_| SrtpError::Auth)?;
                } else {
                    // RFC 7714 §9.2 without encryption: AAD = the whole packet ‖ E‖index.
                    // Move the trailer over the tag (saved above) so the AAD is contiguous.
                    buf[plain..plain + SRTCP_TRAILER].copy_from_slice(&trailer);
                    g.aead
                        .open_in_place_separate_tag(
                            nonce,
                            Aad::from(&buf[..plain + SRTCP_TRAILER]),
                            tag,
                            &mut [],
                            0..,
                        )
                        .map_err(|_| SrtpError::Auth)?;
                }
                Ok(plain)
            }
        }
    }
}

impl Cm {
    pub(crate) fn new(key: &[u8; 16], salt: &[u8; 14], auth: &[u8; 20]) -> Self {
        Self {
            aes: Aes128Enc::new(key.into()),
            salt: *salt,
            mac: <HmacSha1 as Mac>::new_from_slice(auth).expect("HMAC takes any key length"),
        }
    }

    /// RFC 3711 §4.1.1: IV = (k_s·2^16) XOR (SSRC·2^64) XOR (i·2^16); XORs the keystream
    /// into `data`.
    #[inline]
    fn crypt(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let mut ctr = Ctr::from_core(ctr::CtrCore::inner_iv_init(self.aes.clone(), &iv.into()));
        ctr.apply_keystream(data);
    }
}

impl Gcm {
    pub(crate) fn new(key: &[u8; 16], salt: &[u8; 12]) -> Self {
        Self {
            aead: LessSafeKey::new(
                UnboundKey::new(&AES_128_GCM, key).expect("AES-128-GCM takes a 16-byte key"),
            ),
            salt: *salt,
        }
    }

    pub(crate) fn new_256(key: &[u8; 32], salt: &[u8; 12]) -> Self {
        Self {
            aead: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM takes a 32-byte key"),
            ),
            salt: *salt,
        }
    }

    /// The GCM nonce of a packet (the IV below; unique per key by the packet index).
    #[inline]
    fn nonce(&self, ssrc: u32, index: u64) -> Nonce {
        Nonce::assume_unique_for_key(self.iv(ssrc, index))
    }

    /// RFC 7714 §8.1 / §9.1: IV = (0x0000 ‖ SSRC ‖ 48-bit index) XOR salt, where the index
    /// is ROC ‖ SEQ for SRTP and 0x0000 ‖ SRTCP index for SRTCP.
    #[inline]
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 12] {
        let mut iv = self.salt;
        for (b, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[6..12].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 B.2: the AES-CM keystream for SSRC 0, index 0.
    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
        let cm = Cm::new(&key, &salt, &[0; 20]);
        let mut ks = [0u8; 48];
        cm.crypt(0, 0, &mut ks);
        assert_eq!(
            ks.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    const GCM_PLAIN: &str = "8040f17b8041f8d35501a0b2 \
        47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";

    /// RFC 7714 §16.1.1: IV formation and the sealed packet (AEAD_AES_128_GCM), then open.
    #[test]
    fn rfc7714_aead_aes_128_gcm_rtp_vector() {
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
        let t = Transform::Gcm(Box::new(Gcm::new(&key, &salt)));
        let Transform::Gcm(g) = &t else {
            unreachable!()
        };
        assert_eq!(
            g.iv(0x5501_a0b2, 0xf17b).to_vec(),
            hex("51753c6580c2726f20718414")
        );
        let plain = hex(GCM_PLAIN);
        let mut buf = plain.clone();
        buf.resize(plain.len() + GCM_TAG, 0);
        let n = t
            .protect_rtp(&mut buf, plain.len(), 12, 0x5501_a0b2, 0xf17b)
            .unwrap();
        assert_eq!(
            buf[..n].to_vec(),
            hex("8040f17b8041f8d35501a0b2 \
                 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833 \
                 899d7f27beb16a9152cf765ee4390cce")
        );
        let m = t
            .unprotect_rtp(&mut buf[..n], 12, 0x5501_a0b2, 0xf17b)
            .unwrap();
        assert_eq!(buf[..m].to_vec(), plain);
        // The same bytes under another index (a wrong rollover guess) do not open.
        let n = t
            .protect_rtp(&mut buf, plain.len(), 12, 0x5501_a0b2, 0xf17b)
            .unwrap();
        assert_eq!(
            t.unprotect_rtp(&mut buf[..n], 12, 0x5501_a0b2, 0x1_f17b),
            Err(SrtpError::Auth)
        );
    }

    /// SRTCP with AES-GCM (RFC 7714 §9): header ‖ ciphertext ‖ tag ‖ E‖index, and an
    /// unencrypted (E = 0) packet authenticates with the whole packet as AAD.
    #[test]
    fn gcm_srtcp_layout_and_unencrypted_form() {
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let salt: [u8; 12] = hex("517569642070726f2071756f").try_into().unwrap();
        let t = Transform::Gcm(Box::new(Gcm::new(&key, &salt)));
        let rtcp = hex("81c8000d4d617273 4e54504c53544e5052535452535452535452535452535452");
        let mut buf = rtcp.clone();
        buf.resize(rtcp.len() + 20, 0);
        let n = t
            .protect_rtcp(&mut buf, rtcp.len(), 0x4d61_7273, 0x5d4)
            .unwrap();
        assert_eq!(n, rtcp.len() + 20);
        assert_eq!(&buf[..8], &rtcp[..8], "header in clear");
        assert_eq!(
            &buf[n - 4..n],
            &[0x80, 0, 0x05, 0xd4],
            "E flag and index last"
        );
        assert_eq!(t.rtcp_trailer(&buf[..n]), Ok((0x5d4, true)));
        let m = t
            .unprotect_rtcp(&mut buf[..n], 0x4d61_7273, 0x5d4, true)
            .unwrap();
        assert_eq!(buf[..m].to_vec(), rtcp);
        // E = 0: seal nothing, authenticate header ‖ payload ‖ E‖index.
        let Transform::Gcm(g) = &t else {
            unreachable!()
        };
        let trailer = 0x5d5u32.to_be_bytes();
        let mut aad = rtcp.clone();
        aad.extend_from_slice(&trailer);
        let tag = g
            .aead
            .seal_in_place_separate_tag(g.nonce(0x4d61_7273, 0x5d5), Aad::from(&aad), &mut [])
            .unwrap();
        let mut pkt = rtcp.clone();
        pkt.extend_from_slice(tag.as_ref());
        pkt.extend_from_slice(&trailer);
        assert_eq!(t.rtcp_trailer(&pkt), Ok((0x5d5, false)));
        let m = t
            .unprotect_rtcp(&mut pkt, 0x4d61_7273, 0x5d5, false)
            .unwrap();
        assert_eq!(pkt[..m].to_vec(), rtcp);
    }
}
