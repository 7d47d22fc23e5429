//! What the audio conference tells its driver: [`ConferenceEvent`]s and [`Transmit`]s.

use super::ParticipantId;

/// A change the roster shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConferenceEvent {
    /// A participant started or stopped speaking (voice in its input, held for the
    /// conference's `speaking_hangover` after the last voiced frame).
    Speaking {
        /// Who.
        participant: ParticipantId,
        /// Whether they speak now.
        speaking: bool,
    },
    /// The active speaker changed (the loudest participant, with hysteresis), or nobody
    /// speaks any more (`None`).
    ActiveSpeaker(Option<ParticipantId>),
}

/// One RTP packet (not yet SRTP-protected) for one participant: its mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Whose mix this is.
    pub to: ParticipantId,
    /// The RTP packet.
    pub packet: &'a [u8],
}
