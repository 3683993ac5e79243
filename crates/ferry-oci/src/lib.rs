//! The pure OCI model: image references, digests, media types, descriptors, manifests,
//! platforms and the distribution API's error codes. No I/O happens here.

#![deny(missing_docs)]

pub mod archive;
pub mod compression;
pub mod cosign;
pub mod digest;
pub mod error_code;
pub mod filter;
pub mod manifest;
pub mod media_types;
pub mod platform;
pub mod reference;
pub mod referrers;

pub use error_code::ErrorCode;
