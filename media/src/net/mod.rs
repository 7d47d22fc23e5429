//! A seeded, sans-IO network emulator for tests and benchmarks.
//!
//! [`NetEmulator`] models one direction of a network path: base delay, jitter (uniform,
//! normal or heavy-tailed Pareto), bursty delay spikes (a link that stalls and then releases
//! its queue), Gilbert–Elliott bursty loss, reordering, duplication, clock drift between
//! sender and receiver and a bandwidth cap with a bounded queue. Everything it decides comes
//! from a `ChaCha8Rng` seeded by the caller, and it never reads the clock: the same seed and
//! the same sequence of calls give the same deliveries, so tests run faster than real time.
//!
//! Drive it like this:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use supernode_media::net::{NetEmulator, NetProfile};
//!
//! let start = Instant::now();
//! let mut net = NetEmulator::new(NetProfile::wired(), 7);
//! net.send(start, Bytes::from_static(b"rtp"));
//! assert!(net.poll(start).is_none()); // still in flight
//! let due = net.next_delivery().unwrap();
//! assert!(due >= start + Duration::from_millis(18));
//! assert_eq!(net.poll(due).unwrap(), Bytes::from_static(b"rtp"));
//! ```
//!
//! [`NetProfile`] carries the parameters and has presets: [`NetProfile::perfect`],
//! [`NetProfile::wired`], [`NetProfile::wifi`], [`NetProfile::mobile`], [`NetProfile::drift`].

mod emulator;
mod profile;
mod sample;

pub use emulator::{NetEmulator, NetStats};
pub use profile::{Bandwidth, DelaySpikes, GilbertElliott, Jitter, NetProfile};
