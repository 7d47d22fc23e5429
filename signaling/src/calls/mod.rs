//! Calls across many endpoints: the sans-IO conference core [`CallCore`] (a 1:1 call is a
//! conference of two) and the [`hub`] that runs it for a supernode.
//!
//! Feed the core endpoints attaching and detaching and the endpoints' call messages, each
//! with `now`; call [`CallCore::handle_timeout`] when [`CallCore::poll_timeout`] says; drain
//! [`CallCore::poll_output`] for the messages to deliver and [`CallCore::poll_relay`] for the
//! batches of relay operations ([`supernode_proto::relay_ops`]) to execute; feed each
//! operation's result back with [`CallCore::handle_relay_result`], in any order, whenever it
//! comes. It never reads the clock, touches a socket or calls the relay. It reads where the
//! endpoints of an account are from the [`crate::directory::Directory`] it is given (and
//! records the endpoints of this node there).
//!
//! Rules it keeps:
//! * an account takes part in at most one call at a time; a second invite to it gets `busy`;
//! * an invite rings every endpoint of the callee (and endpoints that attach while it rings);
//! * the first `accept` wins, the other ringing endpoints get `answered_elsewhere` at once
//!   (not when the relay has answered);
//! * a browser endpoint (`login` with `client: browser`) sends its SDP offer with `invite` /
//!   `accept`; its transport is `AddTransport{Browser}` with what the offer says
//!   ([`browser`]), and its `media` message carries the supernode's SDP answer;
//! * the caller's (and callee's) other endpoints get `call_notice`s and take no part;
//! * transports are asked for on accept (one session, a client transport per endpoint, a
//!   subscription each way); the call is answered (`accepted`, `media`) when every result is
//!   in, and ends `relay_failure` when one fails or none comes within the relay timeout;
//! * a session is released whenever its call ends — once every operation of it has been
//!   answered, so a late, failed or half-done allocation is released too;
//! * a disconnecting endpoint ends only the calls it takes part in (a ringing endpoint that
//!   leaves just stops ringing; when the last one leaves, the call ends `unavailable`).

pub mod browser;
mod core;
pub mod hub;

pub use self::core::{
    CallConfig, CallCore, CallError, NodeOut, Outgoing, RelayBooks, SPEECH_ROSTER_EVERY,
    SpeechEvent,
};
