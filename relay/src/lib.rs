//! # supernode-relay
//!
//! The hot-path forwarder of a supernode: a sans-IO forwarding [`core`] (sessions, legs,
//! routes, latching, rewriting, per-leg statistics and RTCP, retransmission cache, rate caps,
//! idle timeouts, SRTP through `rtc-srtp`) and a thin I/O shell ([`udp`], [`worker`]) of
//! worker threads with batched UDP, controlled through a [`handle::Relay`] handle.
#![deny(unsafe_code)]

pub mod core;
pub mod error;
pub mod handle;
pub mod udp;
pub mod worker;

pub use core::{LegId, SessionId};
pub use error::RelayError;
pub use handle::{Addressing, LegInfo, LegRequest, Relay, RelayConfig, RelayEvent};
