//! The audio MCU of a group call, sans-IO: an [`AudioConference`] takes RTP packets of
//! Opus from each participant and gives each participant one RTP stream of the others'
//! voices, mixed.
//!
//! Per participant it keeps an adaptive jitter buffer (the [`crate::jitter`] buffer: Opus
//! decode with FEC and concealment) inside a [`crate::mixer::Mixer`], which sums everyone
//! every 10 ms and gives each participant the sum minus its own voice (N−1) through a soft
//! limiter. Each Opus frame (20 ms by default) the conference encodes:
//!
//! - for each participant who is **speaking** (voice in its input, RFC 6464 level −50 dBov
//!   or louder, held for `speaking_hangover`), its own N−1 mix with its own encoder, so it
//!   never hears itself;
//! - for everyone else **one shared encode of the full mix**: their own input is silence,
//!   so the full mix is their N−1 mix, and a conference where two of thirty people talk
//!   costs three encodes, not thirty.
//!
//! Every packet carries the RFC 6464 level of its mix (one-byte extension, id
//! [`ConferenceConfig::audio_level_ext`]). Roster changes come out as
//! [`ConferenceEvent`]s: who is speaking, and the active speaker (the mixer's detector:
//! the loudest participant with a margin and a hold time).
//!
//! Drive it like every sans-IO core here:
//!
//! - [`AudioConference::handle_rtp`]`(now, from, datagram)` for each packet (SRTP already
//!   removed). Garbage, a foreign payload type or a participant over its packet rate is a
//!   typed [`ConferenceError`] and a counted drop in that participant's
//!   [`ParticipantStats`]; nobody else's mix notices.
//! - [`AudioConference::poll_timeout`] says when to call
//!   [`AudioConference::handle_timeout`]`(now)`, which runs the 10 ms mixes due (a driver
//!   that falls behind gets at most `max_catch_up_ticks` of them, the rest are skipped and
//!   counted); then drain [`AudioConference::poll_transmit`] and
//!   [`AudioConference::poll_event`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use supernode_media::conference::{AudioConference, ConferenceConfig, ParticipantId};
//! use supernode_media::ids::Ssrc;
//!
//! let mut conf = AudioConference::new(ConferenceConfig::default()).unwrap();
//! let t0 = Instant::now();
//! for id in 1..=3 {
//!     conf.add(t0, ParticipantId(id), Ssrc(1000 + id)).unwrap();
//! }
//! conf.handle_timeout(t0 + Duration::from_millis(20)); // two 10 ms mixes: one Opus frame
//! let mut sent = 0;
//! while let Some(tx) = conf.poll_transmit() {
//!     assert!(tx.packet.len() > 12);
//!     sent += 1;
//! }
//! assert_eq!(sent, 3); // nobody speaks: one shared encode, three packets
//! assert_eq!(conf.stats().shared_encodes, 1);
//! ```

#[allow(clippy::module_inception)]
mod conference;
mod error;
mod event;
mod out_stream;
mod rate;

pub use conference::{AudioConference, ConferenceConfig, ConferenceStats, ParticipantStats, TICK};
pub use error::ConferenceError;
pub use event::{ConferenceEvent, Transmit};

/// A participant of an [`AudioConference`], as its driver numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u32);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}
