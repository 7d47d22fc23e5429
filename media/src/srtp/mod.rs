//! SRTP and SRTCP (RFC 3711), protecting and unprotecting **in place** on the caller's
//! buffer, with no allocation per packet.
//!
//! Three profiles ([`SrtpProfile`], the one table in `supernode-proto`):
//! `AES_CM_128_HMAC_SHA1_80` (RFC 3711: AES-128 counter mode, 80-bit HMAC-SHA1 tag),
//! `AEAD_AES_128_GCM` and `AEAD_AES_256_GCM` (RFC 7714; the 256-bit one is what browsers
//! negotiate first in DTLS-SRTP). The primitives come from maintained crates: RustCrypto's
//! `aes`, `ctr`, `hmac` + `sha1` for AES-CM/HMAC-SHA1 (its SHA-1 uses the SHA extensions,
//! faster than `ring`'s), `ring` for AES-GCM (5x faster than RustCrypto's `aes-gcm`); this
//! module only forms IVs, derives session keys (RFC 3711 §4.3, key derivation rate 0),
//! tracks rollover counters (§3.3.1) and replay windows (§3.3.2).
//!
//! # How to drive it
//!
//! One [`SrtpSession`] per direction and master key: a peer that sends and receives has two
//! (one protects what it sends, the other unprotects what it receives), because each
//! direction has its own rollover and replay state.
//!
//! ```
//! use supernode_media::srtp::{SrtpKey, SrtpProfile, SrtpSession};
//!
//! let key = SrtpKey::new(SrtpProfile::Aes128CmHmacSha1_80, &[7; 16], &[9; 14]).unwrap();
//! let mut tx = SrtpSession::new(&key).unwrap();
//! let mut rx = SrtpSession::new(&key).unwrap();
//! // An RTP packet in a buffer with room for the tag.
//! let rtp = [0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2, 3, 4];
//! let mut buf = [0u8; 64];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let n = tx.protect_rtp(&mut buf, rtp.len()).unwrap();
//! assert_eq!(n, rtp.len() + SrtpProfile::Aes128CmHmacSha1_80.rtp_overhead());
//! let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
//! assert_eq!(&buf[..m], &rtp);
//! ```
//!
//! Per SSRC a session keeps a small record (rollover counter and 1024-packet replay window
//! for SRTP; the SRTCP index and its replay window). Records are created on the first
//! packet of an SSRC that protects, or that authenticates when unprotecting; at most
//! [`MAX_STREAMS`] are kept (the least recently used is forgotten).

mod error;
mod kdf;
mod key;
mod replay;
mod session;
mod transform;

pub use error::{SrtpError, SrtpKeyError};
pub use key::SrtpKey;
pub use session::{MAX_STREAMS, SrtpSession};
pub use supernode_proto::srtp::SrtpProfile;

/// Replay window length in packets (per SSRC, SRTP and SRTCP alike).
pub const REPLAY_WINDOW: u64 = replay::WINDOW;
