//! Wire types of supernode, shared by signaling, the edge client, the web client and the
//! trunks between supernodes. Serde only: no I/O, no runtime, no crypto.
//!
//! - [`srtp`]: the one table of SRTP protection profiles (names on the wire, key and salt
//!   lengths, tag lengths). The media crate's SRTP sessions and signaling's keying both
//!   read it.
//!
//! Drive it by value: construct a type, serialize it with serde (JSON on the WebSocket),
//! parse what a peer sent with `serde_json::from_str` and match on the result.
#![forbid(unsafe_code)]

pub mod srtp;

pub use srtp::{SrtpProfile, UnknownSrtpProfile};
