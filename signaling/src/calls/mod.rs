//! Calls across many endpoints: the sans-IO [`CallCore`].
//!
//! Feed it endpoints attaching and detaching and the endpoints' call messages, each with
//! `now`; call [`CallCore::handle_timeout`] when [`CallCore::poll_timeout`] says; drain
//! [`CallCore::poll_output`] for the messages to deliver. It never reads the clock or touches
//! a socket. The relay is reached through the [`crate::RelayAccess`] passed into the
//! methods that may allocate or release legs.
//!
//! Rules it keeps:
//! * an account takes part in at most one call at a time; a second invite to it gets `busy`;
//! * an invite rings every endpoint of the callee (and endpoints that attach while it rings);
//! * the first `accept` wins, the other ringing endpoints get `answered_elsewhere`;
//! * the caller's (and callee's) other endpoints get `call_notice`s and take no part;
//! * legs are allocated on accept and released whenever the call ends;
//! * a disconnecting endpoint ends only the calls it takes part in (a ringing endpoint that
//!   leaves just stops ringing; when the last one leaves, the call ends `unavailable`).

mod core;

pub use self::core::{CallConfig, CallCore, CallError, Outgoing};
