//! # supernode-edge
//!
//! The native edge client: logs in to a supernode with a credential, places or answers a
//! call, and sends and plays real media — Opus audio and H.264 video over (S)RTP legs of the
//! relay — then reports what the call looked like.
//!
//! Modules, bottom up:
//!
//! - [`synth`]: the speech-like test signal with timing marks, a pure function of a seed and
//!   the wall clock; [`marks`] finds the marks in played-out audio (mouth-to-ear delay);
//!   [`similarity`] compares played-out audio with the regenerated signal.
//! - [`srtp`]: SRTP keying (the SRTP is `supernode_media::srtp`).
//! - [`engine`]: [`engine::MediaEngine`], the sans-IO media engine of one call.
//! - [`runner`]: the I/O shell that runs an engine on a UDP socket for a duration.
//! - [`signaling`]: the WebSocket signaling client (login, invite/accept, media legs).
//! - [`call`]: one signaled call from login to report (what `edge call`/`edge answer` run).
//! - [`conference`]: one conference from login to report (what `edge conference` runs).
//! - [`report`]: the call report (human text and JSON).
//! - [`wav`], [`y4m`]: media files.
//!
//! ## Driving the library
//!
//! ```no_run
//! use std::time::Duration;
//! use supernode_edge::engine::EngineConfig;
//! use supernode_edge::runner::{MediaOptions, run_media};
//!
//! let remote = "127.0.0.1:40000".parse().unwrap();
//! let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! let cfg = EngineConfig::new(Duration::ZERO, remote); // wall_at_start is set by run_media
//! let outcome = run_media(socket, cfg, MediaOptions::for_duration(Duration::from_secs(10))).unwrap();
//! println!("{}", outcome.report.to_human());
//! ```
//!
//! ## The CLI
//!
//! ```text
//! edge --server http://127.0.0.1:8080 --token T call ACCOUNT_ID --duration 10s [--report-json]
//! edge --server http://127.0.0.1:8080 --token T answer --auto-accept --duration 10s
//! edge media --local 127.0.0.1:0 --remote-audio IP:PORT --remote-video IP:PORT \
//!      [--no-srtp | --srtp-key B64] --duration 10s
//! ```
//!
//! Every mode accepts `--audio-in f.wav`, `--video-in f.y4m`, `--audio-out f.wav`,
//! `--video-out f.y4m`, `--report-json`; `edge --help` lists everything. The exit status is
//! non-zero when the call failed (no media received, or signaling failed).
//!
//! ## Clocks
//!
//! Mouth-to-ear delay and audio similarity rely on the synthetic signal being tied to the
//! wall clock (see [`synth`]): on one host (the tests, `supernode demo`) the two ends share
//! it; across hosts they need synchronised clocks, and the mouth-to-ear figure is off by
//! the clock offset.
//!
//! ## Limits, stated plainly
//!
//! - **One relay leg, audio and video.** Through a supernode an endpoint sends audio and
//!   video to its one relay leg (the `LegInfo` of the `media` message) and receives the far
//!   end's streams from it; they are told apart by payload type
//!   ([`engine::EngineConfig::audio_pt`], [`engine::EngineConfig::video_pt`]).
//! - `rtt_ms` is the round trip to the next RTCP hop: the relay terminates RTCP, so through
//!   a relay it is edge↔relay, not edge↔edge.
//! - Mouth-to-ear is measured at the jitter buffer's playout instant (there is no sound
//!   card), and needs one shared wall clock (see above).
//! - WAV input must be 16-bit 48 kHz (mono or stereo); played-out audio is kept for at most
//!   10 minutes; Y4M input must be 4:2:0.
#![forbid(unsafe_code)]

pub mod call;
pub mod conference;
pub mod engine;
mod error;
pub mod failover;
pub mod marks;
pub mod report;
pub mod runner;
pub mod signaling;
pub mod similarity;
pub mod srtp;
pub mod synth;
pub mod wav;
pub mod y4m;

pub use error::EdgeError;
