//! STUN (RFC 8489) with what ICE (RFC 8445) and address latching need.
//!
//! Parse a datagram with [`StunMessage::parse`]: it checks the header (leading zero bits,
//! magic cookie, length), every attribute's length, the value layout of the attributes this
//! module knows, and that FINGERPRINT comes last. Then read attributes with
//! [`StunMessage::attributes`] (or the typed getters such as [`StunMessage::username`]) and
//! check credentials with [`StunMessage::verify_integrity`] /
//! [`StunMessage::verify_integrity_sha256`] (short-term credentials: the key is the
//! password) and [`StunMessage::verify_fingerprint`]. Attributes after MESSAGE-INTEGRITY,
//! other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, are ignored as RFC 8489 §14.5 says.
//!
//! Build messages with [`StunWriter`]: add attributes, then integrity, then the fingerprint;
//! the writer keeps the header's length field right at every step, as the HMAC and CRC need.
//!
//! ```
//! use supernode_media::packet::stun::*;
//!
//! let tid = TransactionId([7; 12]);
//! let mut buf = [0u8; 256];
//! let mut w = StunWriter::new(&mut buf, Class::Request, Method::BINDING, tid).unwrap();
//! w.add(&StunAttr::Username(b"peer:me")).unwrap();
//! w.add(&StunAttr::Priority(0x6e0001ff)).unwrap();
//! w.add_message_integrity(b"password").unwrap();
//! w.add_fingerprint().unwrap();
//! let n = w.finish();
//! let msg = StunMessage::parse(&buf[..n]).unwrap();
//! assert_eq!(msg.username(), Some(&b"peer:me"[..]));
//! msg.verify_integrity(b"password").unwrap();
//! msg.verify_fingerprint().unwrap();
//! ```

mod attr;
mod message;
mod writer;

pub use attr::{StunAttr, attr_type};
pub use message::{StunAttributes, StunMessage};
pub use writer::StunWriter;

/// The magic cookie of every RFC 5389/8489 message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;
/// XORed into the CRC-32 of FINGERPRINT ("STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// Why a STUN message was rejected, failed verification, or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("STUN message shorter than its header")]
    TooShort,
    /// The two leading bits are not zero.
    #[error("not a STUN message (leading bits)")]
    NotStun,
    /// The magic cookie is wrong.
    #[error("STUN magic cookie mismatch")]
    BadMagic,
    /// The length field is not a multiple of 4 or disagrees with the datagram.
    #[error("STUN length field inconsistent with the datagram")]
    BadLength,
    /// An attribute header or value runs past the message.
    #[error("STUN attribute overruns the message")]
    AttributeOverrun,
    /// A known attribute has a value of the wrong length or layout (attribute type given).
    #[error("STUN attribute {0:#06x} malformed")]
    BadAttribute(u16),
    /// An attribute follows FINGERPRINT.
    #[error("STUN attribute after FINGERPRINT")]
    FingerprintNotLast,
    /// The message has no MESSAGE-INTEGRITY (or -SHA256) to verify.
    #[error("STUN message without the integrity attribute")]
    NoIntegrity,
    /// The HMAC does not match.
    #[error("STUN message integrity check failed")]
    IntegrityMismatch,
    /// The message has no FINGERPRINT.
    #[error("STUN message without FINGERPRINT")]
    NoFingerprint,
    /// The CRC does not match.
    #[error("STUN fingerprint mismatch")]
    FingerprintMismatch,
    /// The output buffer is too small.
    #[error("output buffer too small for the STUN message")]
    BufferTooSmall,
    /// A value given to the writer cannot be encoded (too long, out of range).
    #[error("value not representable in STUN")]
    BadValue,
}

/// STUN message class (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Request (C1C0 = 00).
    Request,
    /// Indication (01).
    Indication,
    /// Success response (10).
    SuccessResponse,
    /// Error response (11).
    ErrorResponse,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0x000,
            Class::Indication => 0x010,
            Class::SuccessResponse => 0x100,
            Class::ErrorResponse => 0x110,
        }
    }
}

/// STUN method, 12 bits (Binding = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// The Binding method.
    pub const BINDING: Method = Method(0x001);
}

/// The 96-bit transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransactionId(pub [u8; 12]);

/// Encodes class and method into the 14-bit message type.
pub fn message_type(class: Class, method: Method) -> u16 {
    let m = method.0 & 0x0fff;
    (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | class.bits()
}

/// Splits a message type into class and method.
pub fn split_message_type(t: u16) -> (Class, Method) {
    let class = match t & 0x0110 {
        0x000 => Class::Request,
        0x010 => Class::Indication,
        0x100 => Class::SuccessResponse,
        _ => Class::ErrorResponse,
    };
    let m = (t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2);
    (class, Method(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_bits() {
        assert_eq!(message_type(Class::Request, Method::BINDING), 0x0001);
        assert_eq!(
            message_type(Class::SuccessResponse, Method::BINDING),
            0x0101
        );
        assert_eq!(message_type(Class::ErrorResponse, Method::BINDING), 0x0111);
        assert_eq!(message_type(Class::Indication, Method::BINDING), 0x0011);
        for m in [0u16, 1, 0x0abc, 0x0fff] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::SuccessResponse,
                Class::ErrorResponse,
            ] {
                assert_eq!(
                    split_message_type(message_type(c, Method(m))),
                    (c, Method(m))
                );
            }
        }
    }
}
