//! Errors of the relay's control API. The hot path never returns these: a bad packet is a
//! counted drop ([`crate::core::DropReason`]), not an error.
#![forbid(unsafe_code)]

use std::io;

use crate::core::CoreError;

/// What went wrong on a control-plane call of the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// No leg with this id is live (never created, released, or freed as idle).
    #[error("unknown leg {0}")]
    UnknownLeg(u64),
    /// No session with this id is live.
    #[error("unknown session {0}")]
    UnknownSession(u64),
    /// The two legs belong to different sessions; routes never cross sessions.
    #[error("legs {0} and {1} are not in the same session")]
    CrossSession(u64, u64),
    /// A leg cannot be routed to itself.
    #[error("a leg cannot be connected to itself")]
    SelfRoute,
    /// A leg already has the maximum number of destinations.
    #[error("leg {0} already has {1} destinations, the maximum")]
    TooManyDestinations(u64, usize),
    /// Every port of the configured range is in use.
    #[error("no free port in the relay's port range")]
    PortsExhausted,
    /// A shared-port leg needs a way to be told apart before it latches: an explicit remote,
    /// an expected SSRC, or ICE credentials.
    #[error("a shared-port leg needs a remote address, an SSRC or ICE credentials")]
    SharedLegUnidentifiable,
    /// The SRTP keys were refused (wrong length for the profile, or unsupported profile).
    #[error("SRTP keys refused: {0}")]
    Srtp(String),
    /// A socket could not be created or bound.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
    /// The worker owning this leg has stopped, or did not answer in time.
    #[error("relay worker unavailable")]
    WorkerGone,
    /// The forwarding core refused the call for another reason.
    #[error(transparent)]
    Core(CoreError),
}

impl From<CoreError> for RelayError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::UnknownLeg(l) => Self::UnknownLeg(l),
            CoreError::UnknownSession(s) => Self::UnknownSession(s),
            CoreError::CrossSession(a, b) => Self::CrossSession(a, b),
            CoreError::SelfRoute => Self::SelfRoute,
            CoreError::TooManyDestinations(l, n) => Self::TooManyDestinations(l, n),
            CoreError::SharedLegUnidentifiable => Self::SharedLegUnidentifiable,
            CoreError::Srtp(m) => Self::Srtp(m),
            other => Self::Core(other),
        }
    }
}
