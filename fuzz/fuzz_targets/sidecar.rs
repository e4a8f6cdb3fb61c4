//! cargo-fuzz target: `rewind_fuzz::targets::sidecar` (see crates/fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewind_fuzz::targets::sidecar(data));
