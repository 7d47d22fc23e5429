//! Tests that need an external tool (GStreamer, PostgreSQL, …): skip or fail.
//!
//! A test that finds its tool missing calls [`unavailable`] and returns when it gives
//! `false`: on a developer's machine it prints `SKIP: <why>` to stderr and the test passes;
//! with `SUPERNODE_REQUIRE_EXTERNAL=1` (what CI sets) it panics, so a missing tool cannot
//! pass unnoticed.

use std::fmt::Display;

/// The environment variable that turns a missing external tool into a failure.
pub const REQUIRE_EXTERNAL_VAR: &str = "SUPERNODE_REQUIRE_EXTERNAL";

/// Whether external tools are required (`SUPERNODE_REQUIRE_EXTERNAL=1`) rather than
/// skippable.
pub fn require_external() -> bool {
    std::env::var(REQUIRE_EXTERNAL_VAR).as_deref() == Ok("1")
}

/// Reports a missing tool: panics with `why` under `SUPERNODE_REQUIRE_EXTERNAL=1`, else
/// prints `SKIP: <why>` to stderr. Returns `false` (the tool is not available), so a test
/// can write `if !have_it() { return unavailable("…"); }` or `return`.
pub fn unavailable(why: impl Display) -> bool {
    if require_external() {
        panic!("{why} (and {REQUIRE_EXTERNAL_VAR}=1)");
    }
    eprintln!("SKIP: {why}");
    false
}
