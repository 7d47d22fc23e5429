//! [`ConferenceError`]: what the audio conference refuses.

use crate::codec::CodecError;
use crate::ids::Pt;
use crate::jitter::JitterError;
use crate::mixer::MixerError;
use crate::packet::rtp::RtpError;

use super::ParticipantId;

/// An error from [`super::AudioConference`]. Cheap, `Copy`, no heap data: a participant
/// that sends garbage gets one of these per packet (and a counted drop), never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConferenceError {
    /// No participant with that id.
    #[error("unknown participant {0}")]
    UnknownParticipant(ParticipantId),
    /// A participant with that id is already in the conference.
    #[error("participant {0} already present")]
    DuplicateParticipant(ParticipantId),
    /// The conference holds its maximum number of participants.
    #[error("conference is full ({0} participants)")]
    Full(usize),
    /// The datagram is not an RTP packet.
    #[error("not an RTP packet: {0}")]
    Malformed(RtpError),
    /// The packet's payload type is not the conference's Opus payload type.
    #[error("payload type {0} is not the conference's audio")]
    WrongPayloadType(Pt),
    /// The participant sends faster than its rate cap; the packet was dropped.
    #[error("participant {0} is over its packet rate")]
    RateLimited(ParticipantId),
    /// The participant's jitter buffer refused the packet (not Opus, empty).
    #[error(transparent)]
    Jitter(#[from] JitterError),
    /// The Opus encoder failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The mixer failed.
    #[error(transparent)]
    Mixer(#[from] MixerError),
}
