//! A parsed STUN message and its integrity and fingerprint checks.

use super::attr::{StunAttr, attr_type};
use super::{
    Class, FINGERPRINT_XOR, HEADER_LEN, MAGIC_COOKIE, Method, StunError, TransactionId,
    split_message_type,
};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use std::net::SocketAddr;

/// A validated STUN message borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    buf: &'a [u8],
    class: Class,
    method: Method,
    tid: TransactionId,
    /// Offset of the MESSAGE-INTEGRITY attribute header, if any.
    integrity: Option<usize>,
    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header, if any.
    integrity_sha256: Option<usize>,
    /// Offset of the FINGERPRINT attribute header, if any.
    fingerprint: Option<usize>,
}

/// Which attributes still count after an integrity attribute (RFC 8489 §14.5, §14.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    AfterSha1,
    AfterSha256,
}

impl Phase {
    fn considers(self, typ: u16) -> bool {
        match self {
            Phase::Open => true,
            Phase::AfterSha1 => {
                typ == attr_type::MESSAGE_INTEGRITY_SHA256 || typ == attr_type::FINGERPRINT
            }
            Phase::AfterSha256 => typ == attr_type::FINGERPRINT,
        }
    }

    fn after(self, typ: u16) -> Self {
        match typ {
            attr_type::MESSAGE_INTEGRITY => Phase::AfterSha1,
            attr_type::MESSAGE_INTEGRITY_SHA256 => Phase::AfterSha256,
            _ => self,
        }
    }
}

/// Splits the next raw attribute off `b`: `(type, value, bytes taken with padding)`.
fn next_raw(b: &[u8]) -> Result<(u16, &[u8], usize), StunError> {
    if b.len() < 4 {
        return Err(StunError::AttributeOverrun);
    }
    let typ = u16::from_be_bytes([b[0], b[1]]);
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let padded = 4 + len.div_ceil(4) * 4;
    if padded > b.len() {
        return Err(StunError::AttributeOverrun);
    }
    Ok((typ, &b[4..4 + len], padded))
}

impl<'a> StunMessage<'a> {
    /// Parses and validates `buf` as one STUN message.
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::TooShort);
        }
        if buf[0] & 0xc0 != 0 {
            return Err(StunError::NotStun);
        }
        if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE {
            return Err(StunError::BadMagic);
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if !len.is_multiple_of(4) || HEADER_LEN + len != buf.len() {
            return Err(StunError::BadLength);
        }
        let (class, method) = split_message_type(u16::from_be_bytes([buf[0], buf[1]]));
        let mut tid = TransactionId::default();
        tid.0.copy_from_slice(&buf[8..20]);
        let mut msg = Self {
            buf,
            class,
            method,
            tid,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut at = HEADER_LEN;
        let mut phase = Phase::Open;
        while at < buf.len() {
            if msg.fingerprint.is_some() {
                return Err(StunError::FingerprintNotLast);
            }
            let (typ, value, taken) = next_raw(&buf[at..])?;
            if phase.considers(typ) {
                StunAttr::decode(typ, value, &msg.tid)?;
                match typ {
                    attr_type::MESSAGE_INTEGRITY => msg.integrity = Some(at),
                    attr_type::MESSAGE_INTEGRITY_SHA256 => msg.integrity_sha256 = Some(at),
                    attr_type::FINGERPRINT => msg.fingerprint = Some(at),
                    _ => {}
                }
                phase = phase.after(typ);
            }
            at += taken;
        }
        Ok(msg)
    }

    /// The whole datagram.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Message class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Message method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The attributes that count, in order (those after MESSAGE-INTEGRITY other than
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are skipped).
    pub fn attributes(&self) -> StunAttributes<'a> {
        StunAttributes {
            rest: &self.buf[HEADER_LEN..],
            tid: self.tid,
            phase: Phase::Open,
        }
    }

    /// The first attribute of type `typ` that counts.
    pub fn attribute(&self, typ: u16) -> Option<StunAttr<'a>> {
        self.attributes().find(|a| a.typ() == typ)
    }

    /// USERNAME, if present.
    pub fn username(&self) -> Option<&'a [u8]> {
        match self.attribute(attr_type::USERNAME)? {
            StunAttr::Username(u) => Some(u),
            _ => None,
        }
    }

    /// PRIORITY, if present.
    pub fn priority(&self) -> Option<u32> {
        match self.attribute(attr_type::PRIORITY)? {
            StunAttr::Priority(p) => Some(p),
            _ => None,
        }
    }

    /// Whether USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.attribute(attr_type::USE_CANDIDATE).is_some()
    }

    /// XOR-MAPPED-ADDRESS, if present.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        match self.attribute(attr_type::XOR_MAPPED_ADDRESS)? {
            StunAttr::XorMappedAddress(a) => Some(a),
            _ => None,
        }
    }

    /// ERROR-CODE `(code, reason)`, if present.
    pub fn error_code(&self) -> Option<(u16, &'a [u8])> {
        match self.attribute(attr_type::ERROR_CODE)? {
            StunAttr::ErrorCode { code, reason } => Some((code, reason)),
            _ => None,
        }
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// Whether MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// Whether FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Feeds the message up to `end` into `mac`, with the length field set as if the
    /// message ended right after an attribute of `attr_len` bytes starting at `end`.
    fn feed(&self, mac: &mut impl Mac, end: usize, attr_len: usize) {
        let len = (end + attr_len - HEADER_LEN) as u16;
        mac.update(&self.buf[0..2]);
        mac.update(&len.to_be_bytes());
        mac.update(&self.buf[4..end]);
    }

    /// Verifies MESSAGE-INTEGRITY (HMAC-SHA1) with `key` (for short-term credentials, the
    /// password), in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity.ok_or(StunError::NoIntegrity)?;
        let mut mac = Hmac::<Sha1>::new_from_slice(key).map_err(|_| StunError::BadValue)?;
        self.feed(&mut mac, at, 24);
        mac.verify_slice(&self.buf[at + 4..at + 24])
            .map_err(|_| StunError::IntegrityMismatch)
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 (possibly truncated to 16–28 bytes) with `key`, in
    /// constant time.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity_sha256.ok_or(StunError::NoIntegrity)?;
        let len = u16::from_be_bytes([self.buf[at + 2], self.buf[at + 3]]) as usize;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| StunError::BadValue)?;
        self.feed(&mut mac, at, 4 + len);
        mac.verify_truncated_left(&self.buf[at + 4..at + 4 + len])
            .map_err(|_| StunError::IntegrityMismatch)
    }

    /// Verifies FINGERPRINT.
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let at = self.fingerprint.ok_or(StunError::NoFingerprint)?;
        let want = crc32fast::hash(&self.buf[..at]) ^ FINGERPRINT_XOR;
        let got = u32::from_be_bytes([
            self.buf[at + 4],
            self.buf[at + 5],
            self.buf[at + 6],
            self.buf[at + 7],
        ]);
        if want == got {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }
}

/// Iterator over the attributes of a parsed [`StunMessage`].
#[derive(Debug, Clone)]
pub struct StunAttributes<'a> {
    rest: &'a [u8],
    tid: TransactionId,
    phase: Phase,
}

impl<'a> Iterator for StunAttributes<'a> {
    type Item = StunAttr<'a>;

    fn next(&mut self) -> Option<StunAttr<'a>> {
        loop {
            let (typ, value, taken) = next_raw(self.rest).ok()?;
            self.rest = &self.rest[taken..];
            if !self.phase.considers(typ) {
                continue;
            }
            self.phase = self.phase.after(typ);
            return StunAttr::decode(typ, value, &self.tid).ok();
        }
    }
}
