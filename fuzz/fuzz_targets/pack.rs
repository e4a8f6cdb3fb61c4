//! cargo-fuzz target: `rewind_fuzz::targets::pack` (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewind_fuzz::targets::pack(data));
