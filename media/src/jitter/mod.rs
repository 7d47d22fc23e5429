//! Audio jitter buffers in the spirit of WebRTC's NetEQ, sans-IO.
//!
//! A [`JitterBuffer`] owns a decoder (any [`AudioDecoder`]; Opus is implemented) and is
//! driven by two calls:
//!
//! - [`JitterBuffer::insert`]`(now, seq, timestamp, payload)` for every received RTP packet
//!   (timestamps at 48 kHz, the Opus RTP clock). Duplicates and packets whose time has been
//!   played are dropped and counted; malformed payloads are a typed error.
//! - [`JitterBuffer::pull`]`(now, out)` every 10 ms of the playout clock, which writes 10 ms
//!   of audio and returns the [`Operation`] that made it: normal decode, expand (Opus PLC),
//!   FEC (the lost packet rebuilt from the next one's in-band FEC), accelerate or preemptive
//!   expand (one pitch period removed or repeated, see `time_scale`), or merge (new audio
//!   cross-faded in after concealment).
//!
//! With [`Policy::Adaptive`] the target level follows a quantile of each packet's *relative*
//! delay (against the fastest packet of the last 2 s) with arrival times counted in playout
//! ticks, kept in a histogram with a forget factor; so clock drift between sender and
//! receiver moves the reference, not the target. When the packet due is missing and the
//! buffer is short, the adaptive buffer conceals *and waits* (the delay grows, the packet is
//! merged when it comes, and accelerate later shrinks the delay again) rather than dropping
//! the packet as late. It gives the packet up (FEC or concealment) only once the target
//! level of later audio is buffered, and then when a later packet has been there for 100 ms
//! (the reordering horizon, NetEQ's ten expands) or after concealing max(target, 60 ms) for
//! it; or, while the stream keeps flowing past the hole (two later packets buffered, the
//! latest not overdue), once its successor has been there for 40 ms (a reordered packet
//! trails its successor by its extra delay). With less than the target level buffered and
//! nothing coming the path is stalled rather than losing (on a FIFO link one reordered
//! packet can overtake a stall), so it keeps waiting, at most 1 s (a stream that ended). The concealment played while waiting then stands in for the
//! given-up audio (except a packet the next one carries FEC for), as NetEQ's expand does, so
//! a loss costs its wait once rather than its wait plus its own length.
//! [`Policy::Fixed`] is the classic static buffer for comparison.
//!
//! Stalls (a Wi-Fi retry burst, a cellular queue behind one slow packet) are too rare to move
//! the quantile, yet each costs its length less the buffered audio in concealment. So the
//! delay manager also remembers the stalls of the last 60 s (`peaks`: a gap in arrivals
//! ended by a late packet) and holds the slack that rides them out within a concealment
//! budget (0.4 % of the time by default, [`DelayConfig::stall_budget`]); the slack falls
//! back to the quantile once stalls stop. Once a stall is seen (nothing has come for a
//! packet interval plus the jitter quantile plus 5 ms), each packet decoded while less than
//! the target is left is stretched to up to twice its length by repeating pitch periods,
//! and a packet decoded just before a hole whose successor came only just now is stretched
//! by the rest of the reordering wait: real audio rather than concealment fills the wait.
//!
//! Decoding happens on the 10 ms pull grid, so the quantity the adaptive buffer steers is the
//! *slack*: how long the fastest recent packet waits at the pull that decodes it (each
//! packet's wait plus its relative delay, smoothed). It keeps the slack at the quantile plus
//! 2 ms: above that by more than 12 ms it removes about 10 ms (a pitch-synchronous cut that
//! also realigns the queued audio to the pull grid), below it repeats a period; leftover
//! samples that would only delay the next packet are cut in silent frames. On a stationary
//! path with little jitter a static buffer tuned in hindsight sits on the same grid point, so
//! the two then tie; the adaptive buffer wins where the path changes (stalls, heavy tails,
//! clock drift). `benches/src/bin/jitterbench.rs` measures both.
//!
//! Statistics ([`JitterStats`], [`DelayHistogram`]): added delay per packet (arrival to
//! playout), late loss, concealment ratio, counts per operation and per drop reason.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use supernode_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
//! use supernode_media::jitter::{JitterBuffer, JitterConfig, Operation};
//!
//! let cfg = OpusConfig::default();
//! let mut enc = OpusEncoder::new(&cfg).unwrap();
//! let dec = OpusDecoder::new(48_000, cfg.channels).unwrap();
//! let mut jb = JitterBuffer::new(dec, JitterConfig::default()).unwrap();
//! let t0 = Instant::now();
//! let pcm = vec![0i16; 960];
//! let mut buf = [0u8; 1500];
//! let mut out = vec![0i16; jb.frame_len()];
//! for i in 0..20u32 {
//!     let n = enc.encode(&pcm, &mut buf).unwrap();
//!     let now = t0 + Duration::from_millis(20 * i as u64);
//!     jb.insert(now, i as u16, i * 960, Bytes::copy_from_slice(&buf[..n])).unwrap();
//!     jb.pull(now, &mut out).unwrap();
//!     jb.pull(now + Duration::from_millis(10), &mut out).unwrap();
//! }
//! assert!(jb.stats().ops.normal > 0);
//! ```

mod buffer;
mod decoder;
mod delay_manager;
mod error;
mod histogram;
mod packet_buffer;
mod peaks;
pub mod sim;
mod stats;
mod time_scale;

pub use buffer::{FRAME_SAMPLES, InsertOutcome, JitterBuffer, JitterConfig, Operation, Policy};
pub use decoder::AudioDecoder;
pub use delay_manager::DelayConfig;
pub use error::JitterError;
pub use stats::{DelayHistogram, JitterStats, OperationCounts};
