//! Instruction decoding into a pre-decoded form, cached per physical page.
//!
//! CONTRACT (interpreter work owns this file): `DecodedPage` is what `Ram` caches per page.

/// Decoded instructions of one 4 KiB physical page (one slot per 2-byte parcel).
#[derive(Debug)]
pub struct DecodedPage {}
