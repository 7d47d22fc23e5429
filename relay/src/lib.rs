//! # supernode-relay
//!
//! The hot-path forwarder of a supernode: RTP and RTCP between the legs of calls, with the
//! least added delay and the most packets per second per core, and never a packet that does
//! not belong to a call.
//!
//! ## Parts
//!
//! - [`core`]: the sans-IO forwarding core. Sessions of transports (the control API's legs:
//!   one 5-tuple or shared-port peer each) carrying streams: a receive stream per SSRC a
//!   transport sends (declared, or learned up to a bound), a send stream per (receiving
//!   transport, source stream) with its own rewriter (SSRC, sequence number and timestamp
//!   continuity, also across a source switch), cache entries and sender-report state.
//!   Subscriptions route streams, so N senders reach a receiver as N streams. Latching
//!   (symmetric RTP; a later address change needs SRTP authentication or a STUN binding
//!   request with the transport's ICE credentials), statistics (RFC 3550 loss and jitter per
//!   stream, reordering, duplicates, drops by reason), RTCP per transport (one compound: a
//!   report block per receive stream, an SR per send stream carrying its source's NTP↔RTP
//!   mapping through the rewrite; NACK answered from a bounded retransmission cache and
//!   PLI/FIR forwarded to the right source, both keyed by media SSRC; RTT from the
//!   reports), rate caps and idle timeouts, SRTP (AES_CM_128_HMAC_SHA1_80 and
//!   AEAD_AES_128_GCM). One egress path; timers in a heap. Driven with `now` and datagrams;
//!   returns transmits in a preallocated [`core::TxBatch`].
//! - [`udp`]: the only `unsafe` code of the project: `recvmmsg`/`sendmmsg` batches, UDP GSO
//!   when one destination gets several datagrams, `SO_REUSEPORT` sockets sending with the
//!   don't-fragment bit, `epoll`, `eventfd`, and a portable fallback.
//! - [`worker`]: one OS thread per core by default, each owning a core, its sockets and its
//!   batches; control commands arrive over `crossbeam-channel` and are applied between
//!   batches. Its policies are sans-IO modules of their own: [`idle`] (when to spin) and
//!   [`backlog`] (cutting the shared port's buffer while its queue stands full under
//!   overload, CoDel's test).
//! - [`handle`]: the control API ([`Relay`]): create a session with legs (latching, or an
//!   explicit remote for trusted callers), connect legs (subscribe one to every stream of
//!   another), set SRTP keys, release, read stats.
//!
//! ## Leg addressing
//!
//! A leg either has a port of its own from the configured range (what plain RTP tools and
//! SIP phones expect: the socket says which leg a datagram is for, an array index), or lives
//! on its worker's shared port, where legs are told apart by source address once latched,
//! and before that by STUN username or SSRC (one hash probe).
//!
//! ## Sharding
//!
//! Each session lives in exactly one worker (chosen when it is created): its own-port
//! sockets are registered only there, and a shared-port leg uses the shared port of that
//! worker (`shared_port + worker index`). No state is shared between workers, so nothing on
//! the packet path locks; `SO_REUSEPORT` is set on every socket so that a restarted relay
//! rebinds at once and several relay processes can share a port range.
//!
//! ## Idle policy and timers
//!
//! When a worker is loaded (it spent 60 % or more of the last millisecond working rather
//! than waiting) and a round was busy (one `recvmmsg` filled a quarter of its batch or
//! more), it keeps polling without blocking for up to [`RelayConfig::spin`] (200 µs by default) before it
//! sleeps in `epoll_wait`: under heavy traffic this saves a sleep and a wake-up (two context
//! switches, and in a virtual machine an IPI and a vCPU halt/resume) per few packets, which
//! at 200,000 packets/s was the difference between a 20 µs and a 3 ms median. Under light
//! traffic it sleeps at once, and a spin that keeps running out is shortened (the
//! [`idle`] module: spin only as long as it pays). RTCP reports are spread over time (each
//! leg's interval is drawn from 0.5–1.5× the configured one, RFC 3550 §6.3.1, each leg's
//! timer its own entry in a heap), so a thousand legs created together never write a
//! thousand reports in one go, and no timer work visits legs that are not due.
//!
//! ## Costs
//!
//! Nothing allocates per packet: one clock read per receive batch, a scan of the transport's
//! few receive streams, a copy into the transmit batch per send stream (and into the
//! receiver's retransmission cache), an in-place rewrite. SRTP is unprotected in place in
//! one scratch buffer of the core (the datagram is copied there once) and protected in place
//! in the transmit batch (`supernode_media::srtp`). New streams and subscriptions allocate,
//! between packets of a new SSRC or in control calls.
#![deny(unsafe_code)]

pub mod backlog;
pub mod core;
pub mod error;
pub mod handle;
pub mod idle;
pub mod processor_link;
pub mod udp;
pub mod worker;

pub use core::{LegId, SessionId};
pub use error::RelayError;
pub use handle::{Addressing, LegInfo, LegRequest, Relay, RelayConfig, RelayEvent};
pub use processor_link::ProcessorReturn;
