//! # supernode-testkit
//!
//! Helpers that several crates' tests share, so each lives in one place. It is a
//! `[dev-dependencies]` entry of the product crates (never a dependency of one; the
//! `benches` harness, which ships nothing, uses its `/proc/net/udp` reader) and depends on
//! nothing but `std` (feature `rest` adds `reqwest` and `serde_json`), so every crate, `supernode-media` included, can use it without a cycle.
//!
//! * `coturn` (feature `coturn`) — a real TURN server (Debian's `coturn`) on loopback with
//!   TURN-REST authentication, killed and removed on drop, for the browsers' relay-only tests.
//! * [`external`] — the one rule for tests that need a tool a fresh machine may lack: print
//!   `SKIP: <why>` and pass, unless `SUPERNODE_REQUIRE_EXTERNAL=1` (CI), which fails instead.
//! * [`gstreamer`] — whether `gst-launch-1.0` and the needed elements are installed, running
//!   pipelines (killed on drop), the audio+video send/receive pipelines of the interop tests
//!   and how much the receiving one decoded.
//! * [`net`] — free loopback UDP ports and waiting until another process has bound one.
//! * `nats` (feature `nats`) — a real 3-server NATS cluster with JetStream on loopback ports
//!   (Debian's `nats-server`), killed and removed on drop, for the network tests.
//! * `rest` (feature `rest`) — accounts and login tokens through the partner REST API.
//!
//! Drive it from a test:
//!
//! ```no_run
//! use supernode_testkit::{gstreamer, net};
//!
//! if !gstreamer::available("H.264 interop", &["udpsrc", "rtph264depay", "avdec_h264"]) {
//!     return; // printed `SKIP: …` (or panicked under SUPERNODE_REQUIRE_EXTERNAL=1)
//! }
//! let port = net::free_udp_port();
//! let mut gst = gstreamer::Pipeline::spawn(&format!("udpsrc port={port} ! fakesink"));
//! assert!(net::wait_udp_bound(port, std::time::Duration::from_secs(10)));
//! // … send to `port` …
//! gst.stop();
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "coturn")]
pub mod coturn;
pub mod external;
pub mod gstreamer;
#[cfg(feature = "nats")]
pub mod nats;
pub mod net;
#[cfg(feature = "rest")]
pub mod rest;
