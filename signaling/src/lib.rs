//! # supernode-signaling
//!
//! Partners' servers create anonymous accounts and short-lived login credentials through a
//! REST API; clients (edge processes, browser tabs) log in over a WebSocket with such a
//! credential and set calls up. This crate holds all of it except the relay, which it reaches
//! only through the [`RelayAccess`] trait that the host binary implements (a non-blocking
//! `submit` of relay operations, answered over a oneshot).
//!
//! ## How to drive it
//!
//! 1. Open the storage: [`Store::connect`] with a `sqlite://…` (default) or `postgres://…`
//!    URL; the embedded migrations run on connect.
//! 2. Make partners and signing secrets with [`admin`] (what `supernode admin` calls).
//! 3. Build the HTTP service with [`Signaling::new`] and take its [`axum::Router`] with
//!    [`Signaling::router`]: `/v1/accounts…` (REST), `/v1/openapi.json`, `/v1/ws`
//!    (WebSocket). Serve it with `axum::serve`.
//!
//! The pieces underneath can be used alone:
//!
//! * [`calls::CallCore`] — the sans-IO conference core (endpoints, ringing, first accept
//!   wins, busy, disconnects). It takes `now: Instant`, inputs and relay results, and gives
//!   [`calls::Outgoing`] messages and relay operations out; it never reads the clock or
//!   calls the relay. [`calls::hub::Hub`] runs it for a supernode and executes its relay
//!   operations through [`RelayAccess::submit`] outside its lock.
//! * [`state::AppState`] — what the REST and WebSocket handlers share.
//! * [`token`] — TURN-REST-like credentials (expiry, account id, key id, HMAC-SHA256) and the
//!   rotating [`token::Keyring`].
//! * [`protocol`] and [`ids`] — the typed, versioned WebSocket messages and the globally
//!   unique ids (see `docs/protocol.md`); they live in `supernode-proto` (which the edge
//!   client shares without linking this crate) and are re-exported here.
//! * [`directory`] — which endpoints of which account are attached to which supernode
//!   ([`directory::InMemoryDirectory`] for one supernode; a shared one comes later).
//! * [`ratelimit::RateLimiter`] — per-API-key token buckets.
//! * [`turn`] — TURN-REST credentials (coturn's `use-auth-secret`) for the `ice_servers`
//!   of every login credential, when [`SignalingConfig::turn`] is set.
//! * [`sdp`] — the SDP answerer for browsers and WHIP/WHEP tools (sans-IO): parse an offer,
//!   answer it for a relay transport, reject what cannot be served with port 0.
//!
//! * [`network_access`] — how the hub reaches other supernodes of a network (cross-node
//!   messages and answer claims), implemented by `supernode-network` on NATS.
//!
//! Calls between endpoints on different supernodes are set up through [`NetworkAccess`]:
//! the caller's node rings the callee's other nodes, the first answer wins by a
//! network-wide claim. Their media is anchored on the caller's node (no trunk yet).
#![forbid(unsafe_code)]

pub mod admin;
pub mod apikey;
pub mod calls;
pub mod config;
pub mod directory;
pub mod error;
pub mod http;
pub mod network_access;
pub mod placement;
pub mod ratelimit;
pub mod relay_access;
pub mod sdp;
pub mod state;
pub mod storage;
pub mod timefmt;
pub mod token;
pub mod turn;
pub mod ws;

/// The wire ids, from [`supernode_proto`] (re-exported: `crate::ids` inside this crate).
pub use supernode_proto::ids;
/// The WebSocket protocol, from [`supernode_proto`] (re-exported: `crate::protocol`).
pub use supernode_proto::protocol;

pub use config::SignalingConfig;
pub use error::{SignalingError, StorageError};
pub use http::Signaling;
pub use network_access::{NetFailure, NetworkAccess};
pub use placement::Placement;
pub use relay_access::{RelayAccess, RelayReply};
pub use storage::Store;
