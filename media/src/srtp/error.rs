//! SRTP errors: [`SrtpError`] for the packet path (small, `Copy`), [`SrtpKeyError`] for keying.

use super::SrtpProfile;

/// Why a packet could not be protected or unprotected. Small and `Copy`: the hot path
/// counts it and drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Too short, or not an RTP/RTCP packet (version, header length).
    #[error("malformed SRTP/SRTCP packet")]
    Malformed,
    /// The authentication tag does not verify (wrong key, tampering, wrong rollover guess).
    #[error("SRTP authentication failed")]
    Auth,
    /// The packet index was already received, or is older than the replay window.
    #[error("replayed SRTP packet")]
    Replay,
    /// The buffer has no room for the authentication tag (and SRTCP trailer).
    #[error("no room in the buffer for the SRTP tag")]
    NoRoom,
    /// The SRTCP index space (2^31 packets) of an SSRC is used up: the key must change.
    #[error("SRTCP index exhausted")]
    IndexExhausted,
}

/// Why master key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpKeyError {
    /// The master key has the wrong length for the profile.
    #[error("{profile} needs a {want}-byte master key, got {got}")]
    KeyLength {
        /// The profile.
        profile: SrtpProfile,
        /// The length it needs.
        want: usize,
        /// The length given.
        got: usize,
    },
    /// The master salt has the wrong length for the profile.
    #[error("{profile} needs a {want}-byte master salt, got {got}")]
    SaltLength {
        /// The profile.
        profile: SrtpProfile,
        /// The length it needs.
        want: usize,
        /// The length given.
        got: usize,
    },
}
