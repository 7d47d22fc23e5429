//! RFC 3550 bookkeeping shared by the relay and the edge: receive statistics of one RTP
//! stream ([`ReceiveStats`]: extended sequence numbers, loss, duplicates, interarrival
//! jitter, the reception report block), NTP time ([`ntp`]) and the round-trip time from a
//! report block's LSR/DLSR ([`rtt`]).
//!
//! # How to drive it
//!
//! Feed every RTP packet of one SSRC to [`ReceiveStats::on_packet`] with the `now` it
//! arrived, and the sender reports of that SSRC to [`ReceiveStats::on_sender_report`]; when a
//! report is due, [`ReceiveStats::report_block`] gives the block (and starts the next
//! fraction-lost interval). When a report block about your own stream comes back, pass its
//! LSR and DLSR with the NTP time of its arrival to [`rtt::from_report`].
//!
//! Representation, chosen once: jitter is kept in the RFC 3550 A.8 integer form (timestamp
//! units scaled by 16), arrival times are converted to the stream's RTP clock on a per-stream
//! anchor, duplicates are detected over the last 1024 sequence numbers (an inline ring
//! bitmap: no allocation), and cumulative loss is expected − received, never negative
//! (duplicates are not counted as received).

pub mod ntp;
mod receive;
pub mod rtt;

pub use receive::{ReceiveStats, SeqVerdict};
