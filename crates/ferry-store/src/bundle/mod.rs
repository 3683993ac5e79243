//! The bundle store: ONE uncompressed, deterministic tar holding an OCI image layout plus a
//! docker-archive `manifest.json` and `images.lock` (ARCHITECTURE.md, "Formats").
//!
//! - [`layout`] plans the whole file up front ([`Plan`]): every tar header, every offset, the
//!   total size. Pure; same inputs give the same bytes.
//! - [`writer`] fills a planned file ([`BundleWriter`]): blobs are written straight into their
//!   final slots, concurrently, through a [`SlotSink`] each; an append-only journal makes an
//!   interrupted export resumable; the final name appears only when every blob is in place.
//!   `fill.rs` makes the writer a [`Destination`](super::Destination): a blob streamed from
//!   any source is hashed on its way into its slot.
//! - [`index`] builds the metadata files (`oci-layout`, `index.json`, `manifest.json`).
//! - [`reader`] opens an untrusted bundle ([`BundleReader`]): one pass over the tar headers
//!   builds an offset table, every entry name and type is checked, blobs are then read with
//!   positioned reads (concurrently, no extraction). [`source`] makes it a
//!   [`Source`](super::Source).
//!
//! On-disk layout of a bundle, in this order: `oci-layout`, `index.json`, `images.lock`,
//! `manifest.json`, the directories `blobs/` and `blobs/sha256/`, then `blobs/sha256/<hex>`
//! for every blob sorted by digest, each once, then the two zero blocks that end a tar.

pub mod delta;
mod error;
mod fill;
pub mod index;
mod journal;
pub mod layout;
mod names;
pub mod parts;
pub mod reader;
pub mod set;
pub mod source;
pub mod volume;
pub mod writer;

/// Test helpers, also for the serve crate's tests (feature `testutil`).
#[cfg(any(test, feature = "testutil"))]
#[doc(hidden)]
pub mod testutil;

pub use delta::{DELTA_FORMAT, DeltaInfo, LeftOut};
pub use error::BundleError;
pub use index::{DockerEntry, docker_manifest_json, index_json, oci_layout_bytes, plan};
pub use index::{IndexEntry, IndexError, read_index};
pub use layout::{EntryKind, Plan, PlannedEntry};
pub use parts::FAT32_MAX_FILE;
pub use parts::{MAX_PARTS, PartsFile, part_name};
pub use reader::{BlobLocation, BlobReader, BundleReader};
pub use writer::{BundleWriter, SlotSink};
pub use {parts::parts_file_for, parts::parts_path, set::BundleSet, source::BundleSource};

/// The `oci-layout` marker file.
pub const OCI_LAYOUT: &str = "oci-layout";
/// The OCI index of the bundle's images.
pub const INDEX_JSON: &str = "index.json";
/// The lock the bundle was exported from.
pub const IMAGES_LOCK: &str = "images.lock";
/// The docker-archive view, for classic `docker load`.
pub const MANIFEST_JSON: &str = "manifest.json";

/// The metadata files a bundle may hold, in the order they are written (the last only in a
/// delta bundle, see [`delta`]).
pub const METADATA_FILES: [&str; 5] = [
    OCI_LAYOUT,
    INDEX_JSON,
    IMAGES_LOCK,
    MANIFEST_JSON,
    delta::DELTA_JSON,
];

/// The directory entries a bundle holds, in the order they are written.
pub const DIRECTORIES: [&str; 2] = ["blobs/", "blobs/sha256/"];

/// Metadata files larger than this are refused, by the planner and by the reader (they are
/// read into memory).
pub const MAX_METADATA_SIZE: u64 = 64 * 1024 * 1024;

/// The size of a tar block: headers are one block, data is padded to whole blocks.
pub(crate) const BLOCK: u64 = 512;

/// `len` rounded up to whole tar blocks, or `None` on overflow.
pub(crate) fn padded(len: u64) -> Option<u64> {
    len.checked_add(BLOCK - 1).map(|n| n / BLOCK * BLOCK)
}
