//! # supernode-benches
//!
//! Criterion benchmarks (`cargo bench -p supernode-benches`) for every hot loop of the
//! workspace, the `loadgen` packet-rate harness and `jitterbench`, and their helpers:
//! [`wav`] files, the committed [`speech`] clip and [`pesq`] scoring.
#![forbid(unsafe_code)]

pub mod pesq;
pub mod speech;
pub use supernode_media::wav;
