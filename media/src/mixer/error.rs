//! [`MixerError`]: what the mixer refuses.

use crate::ids::Ssrc;
use crate::jitter::JitterError;

/// An error from [`crate::mixer::Mixer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixerError {
    /// No participant with that id.
    #[error("unknown participant {0}")]
    UnknownParticipant(Ssrc),
    /// A participant with that id is already mixed.
    #[error("participant {0} already present")]
    DuplicateParticipant(Ssrc),
    /// The mixer holds its maximum number of participants.
    #[error("mixer is full ({0} participants)")]
    Full(usize),
    /// The mixer mixes mono only.
    #[error("the mixer takes mono decoders only")]
    NotMono,
    /// The participant's jitter buffer refused the packet or the decoder.
    #[error(transparent)]
    Jitter(#[from] JitterError),
}
