//! The `edge` CLI (see the `supernode_edge` crate docs).
#![forbid(unsafe_code)]
fn main() {}
