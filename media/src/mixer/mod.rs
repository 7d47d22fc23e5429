//! The audio mixer for group calls, sans-IO.
//!
//! A [`Mixer`] holds N participants, each behind its own [`crate::jitter::JitterBuffer`] and
//! decoder. Feed it packets with [`Mixer::insert`]; every 10 ms call [`Mixer::mix`]`(now)`,
//! then read [`Mixer::output`]`(id)` for each participant: the sum of everyone else (N−1, so
//! nobody hears their own voice), passed through a [`SoftLimiter`] (a gain limiter plus a
//! soft knee: a loud mix is turned down smoothly and never hard-clips). Each input's level is
//! measured as RFC 6464 [`AudioLevel`] (−dBov 0..=127 with a voice flag) and
//! [`Mixer::active_speaker`] follows the loudest participant with hysteresis (a margin and a
//! hold time, see [`SpeakerConfig`]). Mono, 48 kHz; encoding the outputs is the caller's.
//!
//! ```
//! use std::time::Instant;
//! use supernode_media::codec::opus::{Channels, OpusDecoder};
//! use supernode_media::ids::Ssrc;
//! use supernode_media::mixer::{Mixer, MixerConfig};
//!
//! let mut mixer = Mixer::new(MixerConfig::default());
//! for id in [1, 2, 3] {
//!     mixer.add(Ssrc(id), OpusDecoder::new(48_000, Channels::Mono).unwrap()).unwrap();
//! }
//! mixer.mix(Instant::now()).unwrap(); // nothing received yet: silence
//! assert_eq!(mixer.output(Ssrc(2)).unwrap().len(), 480);
//! assert_eq!(mixer.active_speaker(), None);
//! ```

mod error;
mod level;
mod limiter;
#[allow(clippy::module_inception)]
mod mixer;
mod speaker;

pub use error::MixerError;
pub use level::{AudioLevel, VOICE_MAX_LEVEL};
pub use limiter::SoftLimiter;
pub use mixer::{Mixer, MixerConfig};
pub use speaker::{SpeakerConfig, SpeakerDetector};
