//! Image archives people already have, as a [`crate::Source`]: `docker save` output
//! (gzip-compressed or not, as `rancher-save-images.sh` writes `rancher-images.tar.gz`), in
//! Docker's legacy layout or Docker 25's OCI layout, `podman save` (also
//! `--multi-image-archive`) and OCI archives. The kind is told from the content, never the
//! file name.
//!
//! - [`scan`] reads the archive once (a gzip stream cannot be read twice), checks names,
//!   hashes every layer and gzips the uncompressed ones on a few worker threads, spooling
//!   them in a [`spool`] directory that nothing outlives;
//! - [`images`] builds the images from `manifest.json` or `index.json`, checking every layer
//!   against its config's `diff_ids`;
//! - [`source`] serves them to the copy engine.

pub mod error;
pub mod images;
pub mod scan;
pub mod source;
pub mod spool;

pub use error::ArchiveError;
pub use images::{Contents, Format};
pub use scan::{Options, Scanned};
pub use source::ArchiveSource;
pub use spool::{SpoolDir, remove_all_now};

/// Whether the file at `path` starts with gzip's magic bytes.
pub fn is_gzip(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read as _;
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut magic)?;
    Ok(ferry_oci::compression::Compression::sniff(&magic[..n])
        == Some(ferry_oci::compression::Compression::Gzip))
}
