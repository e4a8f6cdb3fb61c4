//! `rewind-fuzz`: fuzz targets for every input rewind does not trust (docs/security.md):
//! traces, snapshot files, the recording's snapshot file (sidecar), machine-state restore,
//! packs, ELF images, virtqueue descriptors a guest driver wrote, QMP and gdb clients.
//!
//! Each target is a `fn(&[u8])` that must never panic, hang or allocate without bound,
//! whatever the bytes. They run two ways:
//! - on stable Rust, as a seeded mutation test (`tests/mutation.rs`, part of `cargo test`):
//!   the committed corpus (`fuzz/corpus/TARGET/`) and a few thousand inputs mutated from it
//!   and from valid seeds ([`seeds`]), structure-aware where a checksum would otherwise
//!   reject every mutation (a trace block or snapshot payload is re-framed after mutating);
//! - with `cargo fuzz` where a nightly toolchain exists (`fuzz/`, outside the workspace), on
//!   the same functions.

pub mod mutate;
pub mod targets;

pub use mutate::Rng;

/// A fuzz target.
pub type Target = fn(&[u8]);

/// A structure-aware mutator: a mutated copy with valid framing, or `None` if the input has
/// no structure to keep.
pub type Reframe = fn(&mut Rng, &[u8]) -> Option<Vec<u8>>;

/// Every target: its name (the corpus directory and cargo-fuzz target), the function, valid
/// inputs to mutate from, and a structure-aware mutator (or `None`: bytes only).
pub struct TargetInfo {
    /// Name.
    pub name: &'static str,
    /// The target.
    pub run: Target,
    /// Valid inputs.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Mutate while keeping the framing (checksums, lengths) valid.
    pub reframe: Option<Reframe>,
}

/// The targets, in a fixed order.
pub fn all() -> Vec<TargetInfo> {
    use targets::*;
    vec![
        TargetInfo {
            name: "trace",
            run: trace,
            seeds: seeds::trace,
            reframe: Some(mutate::reframe_trace_block),
        },
        TargetInfo {
            name: "snapshot",
            run: snapshot,
            seeds: seeds::snapshot,
            reframe: Some(mutate::reframe_snapshot),
        },
        TargetInfo {
            name: "sidecar",
            run: sidecar,
            seeds: seeds::sidecar,
            reframe: None,
        },
        TargetInfo {
            name: "pack",
            run: pack,
            seeds: seeds::pack,
            reframe: Some(mutate::reframe_pack_index),
        },
        TargetInfo {
            name: "elf",
            run: elf,
            seeds: seeds::elf,
            reframe: None,
        },
        TargetInfo {
            name: "virtq",
            run: virtq,
            seeds: seeds::virtq,
            reframe: None,
        },
        TargetInfo {
            name: "qmp",
            run: qmp,
            seeds: seeds::qmp,
            reframe: None,
        },
        TargetInfo {
            name: "gdb",
            run: gdb,
            seeds: seeds::gdb,
            reframe: Some(mutate::reframe_gdb_packets),
        },
    ]
}

pub use targets::seeds;
