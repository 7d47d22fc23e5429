//! The core's own errors: what a control call of [`super::Core`] can refuse. The packet path
//! never returns these (a bad packet is a counted [`super::DropReason`]).

/// Why the core refused a control call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// No transport (leg) with this id is live.
    #[error("unknown leg {0}")]
    UnknownLeg(u64),
    /// A transport with this id is already live.
    #[error("leg {0} already exists")]
    DuplicateLeg(u64),
    /// No session with this id is live.
    #[error("unknown session {0}")]
    UnknownSession(u64),
    /// The two transports belong to different sessions; subscriptions never cross sessions.
    #[error("legs {0} and {1} are not in the same session")]
    CrossSession(u64, u64),
    /// A transport cannot be subscribed to itself.
    #[error("a leg cannot be connected to itself")]
    SelfRoute,
    /// A transport already has the maximum number of subscribers.
    #[error("leg {0} already has {1} destinations, the maximum")]
    TooManyDestinations(u64, usize),
    /// A shared-port transport needs a way to be told apart before it latches: an explicit
    /// remote, a declared SSRC, or ICE credentials.
    #[error("a shared-port leg needs a remote address, an SSRC or ICE credentials")]
    SharedLegUnidentifiable,
    /// Two declared streams of one transport share an SSRC, or too many are declared.
    #[error("bad stream declaration: {0}")]
    BadStreams(&'static str),
    /// A browser transport needs ICE credentials and no SRTP keys (DTLS makes them).
    #[error("a browser leg needs ICE credentials and no SRTP keys")]
    BadBrowser,
    /// The SRTP keys were refused (wrong length for the profile, or unsupported profile).
    #[error("SRTP keys refused: {0}")]
    Srtp(String),
    /// The transport has no stream of this SSRC.
    #[error("leg {0} has no stream with SSRC {1:#010x}")]
    UnknownStream(u64, u32),
    /// A processor-only call on a transport that is not a processor.
    #[error("leg {0} is not a processor transport")]
    NotAProcessor(u64),
}
