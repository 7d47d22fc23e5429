//! # supernode-benches
//!
//! Criterion benchmarks (`cargo bench -p supernode-benches`) for every hot loop of the
//! workspace, and (later) the `loadgen` packet-rate harness and `jitterbench`.
#![forbid(unsafe_code)]
