//! STUN attributes: decoding a value by its type, and encoding one.

use super::{MAGIC_COOKIE, StunError, TransactionId};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Attribute type codes.
pub mod attr_type {
    /// MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (RFC 8445).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (RFC 8445).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (RFC 8445).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (RFC 8445).
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

use attr_type::*;

/// Longest USERNAME value (RFC 8489 §14.3: less than 513 bytes).
pub const MAX_USERNAME: usize = 512;
/// Longest SOFTWARE value and ERROR-CODE reason phrase (763 bytes).
pub const MAX_TEXT: usize = 763;

/// One STUN attribute, borrowing the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunAttr<'a> {
    /// MAPPED-ADDRESS.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS, already un-XORed.
    XorMappedAddress(SocketAddr),
    /// USERNAME (UTF-8 by the RFC; bytes here).
    Username(&'a [u8]),
    /// MESSAGE-INTEGRITY: the 20-byte HMAC-SHA1.
    MessageIntegrity(&'a [u8]),
    /// MESSAGE-INTEGRITY-SHA256: 16 to 32 bytes (a multiple of 4) of HMAC-SHA256.
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT: CRC-32 XOR 0x5354554e.
    Fingerprint(u32),
    /// ERROR-CODE: code 300–699 and reason phrase.
    ErrorCode {
        /// Class × 100 + number.
        code: u16,
        /// Reason phrase (UTF-8 by the RFC; bytes here).
        reason: &'a [u8],
    },
    /// PRIORITY.
    Priority(u32),
    /// USE-CANDIDATE (no value).
    UseCandidate,
    /// ICE-CONTROLLED with its tie-breaker.
    IceControlled(u64),
    /// ICE-CONTROLLING with its tie-breaker.
    IceControlling(u64),
    /// SOFTWARE.
    Software(&'a [u8]),
    /// Any other attribute, kept as is.
    Unknown {
        /// Attribute type.
        typ: u16,
        /// Value, without padding.
        value: &'a [u8],
    },
}

fn u32_of(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}

fn u64_of(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&v[..8]);
    u64::from_be_bytes(b)
}

fn read_address(typ: u16, v: &[u8], xor: Option<&TransactionId>) -> Result<SocketAddr, StunError> {
    let bad = StunError::BadAttribute(typ);
    if v.len() < 4 {
        return Err(bad);
    }
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (v[1], v.len()) {
        (1, 8) => {
            let mut a = [v[4], v[5], v[6], v[7]];
            if xor.is_some() {
                for (x, c) in a.iter_mut().zip(cookie) {
                    *x ^= c;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (2, 20) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&v[4..20]);
            if let Some(tid) = xor {
                for (i, x) in a.iter_mut().enumerate() {
                    *x ^= if i < 4 { cookie[i] } else { tid.0[i - 4] };
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(bad),
    };
    Ok(SocketAddr::new(ip, port))
}

impl<'a> StunAttr<'a> {
    /// Decodes the value of an attribute of type `typ`.
    pub fn decode(typ: u16, v: &'a [u8], tid: &TransactionId) -> Result<Self, StunError> {
        let bad = StunError::BadAttribute(typ);
        Ok(match typ {
            MAPPED_ADDRESS => StunAttr::MappedAddress(read_address(typ, v, None)?),
            XOR_MAPPED_ADDRESS => StunAttr::XorMappedAddress(read_address(typ, v, Some(tid))?),
            USERNAME if v.len() <= MAX_USERNAME => StunAttr::Username(v),
            MESSAGE_INTEGRITY if v.len() == 20 => StunAttr::MessageIntegrity(v),
            MESSAGE_INTEGRITY_SHA256
                if (16..=32).contains(&v.len()) && v.len().is_multiple_of(4) =>
            {
                StunAttr::MessageIntegritySha256(v)
            }
            FINGERPRINT if v.len() == 4 => StunAttr::Fingerprint(u32_of(v)),
            ERROR_CODE if v.len() >= 4 && v.len() - 4 <= MAX_TEXT => {
                let class = (v[2] & 0x07) as u16;
                let number = v[3] as u16;
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(bad);
                }
                StunAttr::ErrorCode {
                    code: class * 100 + number,
                    reason: &v[4..],
                }
            }
            PRIORITY if v.len() == 4 => StunAttr::Priority(u32_of(v)),
            USE_CANDIDATE if v.is_empty() => StunAttr::UseCandidate,
            ICE_CONTROLLED if v.len() == 8 => StunAttr::IceControlled(u64_of(v)),
            ICE_CONTROLLING if v.len() == 8 => StunAttr::IceControlling(u64_of(v)),
            SOFTWARE if v.len() <= MAX_TEXT => StunAttr::Software(v),
            USERNAME
            | MESSAGE_INTEGRITY
            | MESSAGE_INTEGRITY_SHA256
            | FINGERPRINT
            | ERROR_CODE
            | PRIORITY
            | USE_CANDIDATE
            | ICE_CONTROLLED
            | ICE_CONTROLLING
            | SOFTWARE => return Err(bad),
            _ => StunAttr::Unknown { typ, value: v },
        })
    }

    /// The attribute's type code.
    pub fn typ(&self) -> u16 {
        match self {
            StunAttr::MappedAddress(_) => MAPPED_ADDRESS,
            StunAttr::XorMappedAddress(_) => XOR_MAPPED_ADDRESS,
            StunAttr::Username(_) => USERNAME,
            StunAttr::MessageIntegrity(_) => MESSAGE_INTEGRITY,
            StunAttr::MessageIntegritySha256(_) => MESSAGE_INTEGRITY_SHA256,
            StunAttr::Fingerprint(_) => FINGERPRINT,
            StunAttr::ErrorCode { .. } => ERROR_CODE,
            StunAttr::Priority(_) => PRIORITY,
            StunAttr::UseCandidate => USE_CANDIDATE,
            StunAttr::IceControlled(_) => ICE_CONTROLLED,
            StunAttr::IceControlling(_) => ICE_CONTROLLING,
            StunAttr::Software(_) => SOFTWARE,
            StunAttr::Unknown { typ, .. } => *typ,
        }
    }

    /// Length of the encoded value (without the 4-byte attribute header and padding).
    pub fn value_len(&self) -> usize {
        match self {
            StunAttr::MappedAddress(a) | StunAttr::XorMappedAddress(a) => {
                if a.is_ipv4() {
                    8
                } else {
                    20
                }
            }
            StunAttr::Username(v)
            | StunAttr::MessageIntegrity(v)
            | StunAttr::MessageIntegritySha256(v)
            | StunAttr::Software(v)
            | StunAttr::Unknown { value: v, .. } => v.len(),
            StunAttr::ErrorCode { reason, .. } => 4 + reason.len(),
            StunAttr::Fingerprint(_) | StunAttr::Priority(_) => 4,
            StunAttr::UseCandidate => 0,
            StunAttr::IceControlled(_) | StunAttr::IceControlling(_) => 8,
        }
    }

    /// Checks that the value can be encoded (the decoder's length and range rules).
    pub fn check(&self) -> Result<(), StunError> {
        let ok = match self {
            StunAttr::Username(v) => v.len() <= MAX_USERNAME,
            StunAttr::MessageIntegrity(v) => v.len() == 20,
            StunAttr::MessageIntegritySha256(v) => {
                (16..=32).contains(&v.len()) && v.len().is_multiple_of(4)
            }
            StunAttr::Software(v) => v.len() <= MAX_TEXT,
            StunAttr::ErrorCode { code, reason } => {
                (300..=699).contains(code) && reason.len() <= MAX_TEXT
            }
            StunAttr::Unknown { typ, value } => {
                value.len() <= u16::MAX as usize
                    && StunAttr::decode(*typ, value, &TransactionId::default())
                        .is_ok_and(|a| matches!(a, StunAttr::Unknown { .. }))
            }
            _ => true,
        };
        if ok { Ok(()) } else { Err(StunError::BadValue) }
    }

    /// Writes the value into `out` (exactly [`StunAttr::value_len`] bytes).
    pub(super) fn encode_value(&self, out: &mut [u8], tid: &TransactionId) {
        match self {
            StunAttr::MappedAddress(a) => write_address(out, a, None),
            StunAttr::XorMappedAddress(a) => write_address(out, a, Some(tid)),
            StunAttr::Username(v)
            | StunAttr::MessageIntegrity(v)
            | StunAttr::MessageIntegritySha256(v)
            | StunAttr::Software(v)
            | StunAttr::Unknown { value: v, .. } => out.copy_from_slice(v),
            StunAttr::ErrorCode { code, reason } => {
                out[0] = 0;
                out[1] = 0;
                out[2] = (code / 100) as u8;
                out[3] = (code % 100) as u8;
                out[4..].copy_from_slice(reason);
            }
            StunAttr::Fingerprint(v) | StunAttr::Priority(v) => {
                out.copy_from_slice(&v.to_be_bytes())
            }
            StunAttr::UseCandidate => {}
            StunAttr::IceControlled(v) | StunAttr::IceControlling(v) => {
                out.copy_from_slice(&v.to_be_bytes())
            }
        }
    }
}

fn write_address(out: &mut [u8], a: &SocketAddr, xor: Option<&TransactionId>) {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    out[0] = 0;
    let port = if xor.is_some() {
        a.port() ^ (MAGIC_COOKIE >> 16) as u16
    } else {
        a.port()
    };
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match a.ip() {
        IpAddr::V4(ip) => {
            out[1] = 1;
            let mut o = ip.octets();
            if xor.is_some() {
                for (x, c) in o.iter_mut().zip(cookie) {
                    *x ^= c;
                }
            }
            out[4..8].copy_from_slice(&o);
        }
        IpAddr::V6(ip) => {
            out[1] = 2;
            let mut o = ip.octets();
            if let Some(tid) = xor {
                for (i, x) in o.iter_mut().enumerate() {
                    *x ^= if i < 4 { cookie[i] } else { tid.0[i - 4] };
                }
            }
            out[4..20].copy_from_slice(&o);
        }
    }
}
