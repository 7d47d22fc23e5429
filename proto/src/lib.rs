//! Wire types of supernode, shared by signaling, the edge client, the web client and the
//! trunks between supernodes. Serde only: no I/O, no runtime, no crypto.
//!
//! - [`ids`]: globally unique ids (128 random bits, prefixed strings on the wire).
//! - [`protocol`]: the typed, versioned WebSocket messages of `GET /v1/ws` (version 2).
//! - [`network`]: messages between the supernodes of a network (cross-node signaling).
//! - [`relay_ops`]: the operations a control plane asks of a relay, and their results.
//! - [`srtp`]: the one table of SRTP protection profiles (names on the wire, key and salt
//!   lengths, tag lengths). The media crate's SRTP sessions and signaling's keying both
//!   read it.
//!
//! Drive it by value: construct a type, serialize it with serde (JSON on the WebSocket),
//! parse what a peer sent with [`protocol::decode_client`] / [`protocol::decode_server`]
//! (or `serde_json::from_str`) and match on the result. The feature `rand` adds `random()`
//! constructors to the ids (signaling makes ids; clients only read them). See
//! `examples/round_trip.rs`.
#![forbid(unsafe_code)]

pub mod ids;
pub mod network;
pub mod protocol;
pub mod relay_ops;
pub mod srtp;

pub use srtp::{SrtpProfile, UnknownSrtpProfile};
