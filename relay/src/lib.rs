//! # supernode-relay
//!
//! The hot-path forwarder of a supernode: a sans-IO forwarding core (sessions, legs, routes,
//! latching, rewriting, per-leg statistics and RTCP) and a thin I/O shell of worker threads
//! with batched UDP. Not built yet: this crate holds only this description until the relay
//! issue lands.
#![deny(unsafe_code)]
