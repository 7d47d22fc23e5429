//! Fuzz target: WAV parsing (the edge's `--audio-in` files and the benchmarks' clips). A file
//! that parses re-encodes and parses again to the same samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::wav::{encode, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = parse(data) {
        let again = parse(&encode(w.rate, &w.samples)).expect("our own encoding parses");
        assert_eq!(again, w);
    }
});
