//! Building STUN messages into a caller's buffer.

use super::attr::StunAttr;
use super::{
    Class, FINGERPRINT_XOR, HEADER_LEN, MAGIC_COOKIE, Method, StunError, TransactionId,
    message_type,
};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Writes a STUN message attribute by attribute into a borrowed buffer. The header's
/// length field is kept current after every step, so integrity and fingerprint are computed
/// the way RFC 8489 §14.5–14.7 say. Add MESSAGE-INTEGRITY after the other attributes,
/// MESSAGE-INTEGRITY-SHA256 after that, and FINGERPRINT last.
#[derive(Debug)]
pub struct StunWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
    pad: u8,
}

impl<'b> StunWriter<'b> {
    /// Starts a message of `class` and `method` with transaction id `tid` in `buf`.
    pub fn new(
        buf: &'b mut [u8],
        class: Class,
        method: Method,
        tid: TransactionId,
    ) -> Result<Self, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::BufferTooSmall);
        }
        if method.0 > 0x0fff {
            return Err(StunError::BadValue);
        }
        buf[0..2].copy_from_slice(&message_type(class, method).to_be_bytes());
        buf[2..4].fill(0);
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf[8..20].copy_from_slice(&tid.0);
        Ok(Self {
            buf,
            len: HEADER_LEN,
            tid,
            pad: 0,
        })
    }

    /// Sets the byte used to pad attribute values to 4 bytes (0 by default; any value is
    /// valid, RFC 5769's vectors use 0x20).
    pub fn set_padding_byte(&mut self, pad: u8) {
        self.pad = pad;
    }

    fn set_length(&mut self) {
        let l = (self.len - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&l.to_be_bytes());
    }

    /// Reserves an attribute of `typ` with a `len`-byte value; returns the value's offset.
    fn reserve(&mut self, typ: u16, len: usize) -> Result<usize, StunError> {
        let padded = 4 + len.div_ceil(4) * 4;
        if self.len + padded > self.buf.len() {
            return Err(StunError::BufferTooSmall);
        }
        if self.len + padded - HEADER_LEN > u16::MAX as usize {
            return Err(StunError::BadValue);
        }
        let at = self.len;
        self.buf[at..at + 2].copy_from_slice(&typ.to_be_bytes());
        self.buf[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());
        let pad = self.pad;
        self.buf[at + 4 + len..at + padded].fill(pad);
        self.len += padded;
        self.set_length();
        Ok(at + 4)
    }

    /// Appends `attr` as given (integrity and fingerprint values are written verbatim; use
    /// the `add_message_integrity*` and [`StunWriter::add_fingerprint`] methods to compute
    /// them).
    pub fn add(&mut self, attr: &StunAttr<'_>) -> Result<(), StunError> {
        attr.check()?;
        let n = attr.value_len();
        let at = self.reserve(attr.typ(), n)?;
        let tid = self.tid;
        attr.encode_value(&mut self.buf[at..at + n], &tid);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 with `key` over the message so far.
    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).map_err(|_| StunError::BadValue)?;
        let start = self.len;
        let at = self.reserve(super::attr_type::MESSAGE_INTEGRITY, 20)?;
        mac.update(&self.buf[..start]);
        let tag = mac.finalize().into_bytes();
        self.buf[at..at + 20].copy_from_slice(&tag);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (full 32 bytes): HMAC-SHA256 with `key`.
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), StunError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| StunError::BadValue)?;
        let start = self.len;
        let at = self.reserve(super::attr_type::MESSAGE_INTEGRITY_SHA256, 32)?;
        mac.update(&self.buf[..start]);
        let tag = mac.finalize().into_bytes();
        self.buf[at..at + 32].copy_from_slice(&tag);
        Ok(())
    }

    /// Appends FINGERPRINT: CRC-32 of the message so far XOR 0x5354554e. Add it last.
    pub fn add_fingerprint(&mut self) -> Result<(), StunError> {
        let start = self.len;
        let at = self.reserve(super::attr_type::FINGERPRINT, 4)?;
        let crc = crc32fast::hash(&self.buf[..start]) ^ FINGERPRINT_XOR;
        self.buf[at..at + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Length written so far (header included).
    pub fn written_len(&self) -> usize {
        self.len
    }

    /// Ends the message; returns its length.
    pub fn finish(self) -> usize {
        self.len
    }
}
