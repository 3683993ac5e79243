//! The pure OCI model: image references, digests, media types, descriptors, manifests and
//! platforms. No I/O happens here.

#![deny(missing_docs)]

pub mod archive;
pub mod compression;
pub mod digest;
pub mod filter;
pub mod manifest;
pub mod media_types;
pub mod platform;
pub mod reference;
