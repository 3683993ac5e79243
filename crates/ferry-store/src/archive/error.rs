//! [`ArchiveError`]: what can be wrong with a docker-save, podman or OCI archive, each message
//! naming the archive, the entry or image concerned, and what to do about it.

use std::path::PathBuf;

use ferry_oci::digest::Digest;

/// Why an archive cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or spooling failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The gzip stream ends early.
    #[error(
        "{} is a truncated gzip file: it ends before its compressed data does ({detail}); copy it again",
        path.display()
    )]
    TruncatedGzip {
        /// The archive.
        path: PathBuf,
        /// What the decompressor said.
        detail: String,
    },
    /// The tar stream ends early or is malformed.
    #[error(
        "{} is not a readable tar archive ({detail}); copy it again, or check that it is a `docker save` or `podman save` archive",
        path.display()
    )]
    BadTar {
        /// The archive.
        path: PathBuf,
        /// What the tar reader said.
        detail: String,
    },
    /// A tar, but not an image archive.
    #[error(
        "{} is not an image archive: {what}; ferry imports ferry bundles, `docker save` / `podman save` archives (gzip-compressed or not) and OCI archives",
        path.display()
    )]
    NotAnArchive {
        /// The archive.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// An entry name or link that would leave the archive, or a link loop.
    #[error("{} holds an unsafe entry {entry:?}: {why}; it is not imported", path.display())]
    Unsafe {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// Why it is refused.
        why: String,
    },
    /// A file the archive's index names is not in it.
    #[error(
        "{} names {entry:?} for {image}, but the archive has no such file (cut short, or not the whole `docker save` output)",
        path.display()
    )]
    Missing {
        /// The archive.
        path: PathBuf,
        /// The missing entry.
        entry: String,
        /// The image that needs it.
        image: String,
    },
    /// A metadata file that does not parse.
    #[error("{entry} in {} is not valid: {detail}", path.display())]
    BadJson {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// What the parser said.
        detail: String,
    },
    /// An image with no name to push it under.
    #[error(
        "image {config} in {} has no name (no RepoTags): save it by name (`docker save NAME:TAG`, not by ID), or tag it before saving",
        path.display()
    )]
    NoName {
        /// The archive.
        path: PathBuf,
        /// Its config (image ID).
        config: String,
    },
    /// A layer whose content is not what the image config says: the archive's only
    /// integrity check failed.
    #[error(
        "layer {layer} of {image} in {} does not match its config: its content hashes to {got}, the config's rootfs.diff_ids says {want}; the archive is corrupt, save it again",
        path.display()
    )]
    DiffId {
        /// The archive.
        path: PathBuf,
        /// The image.
        image: String,
        /// The layer's entry name.
        layer: String,
        /// What the config says.
        want: String,
        /// What the bytes hash to.
        got: Digest,
    },
    /// A content-addressed file whose bytes are not its name.
    #[error(
        "{entry} in {} hashes to {got}, not to the digest it is named after; the archive is corrupt, save it again",
        path.display()
    )]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// What its bytes hash to.
        got: Digest,
    },
    /// The temporary space for layers that must be read twice ran out.
    #[error(
        "the import needs more than {limit} bytes of temporary space in {} for the layers of {} (a gzip-compressed archive is read once, so its layers are kept there until the images are known); free some space, point --spool-dir elsewhere, raise --spool-limit, or gunzip the archive first",
        dir.display(),
        path.display()
    )]
    SpoolFull {
        /// The archive.
        path: PathBuf,
        /// The spool directory.
        dir: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A metadata file too big to be one.
    #[error(
        "{entry} in {} is {size} bytes, more than the {limit} a metadata file may have; the archive is not one ferry reads",
        path.display()
    )]
    TooLarge {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A tar extension header (GNU long name or link, PAX) too big to read.
    #[error(
        "{} holds a {what} header {entry:?} of {size} bytes, more than the {limit} bytes ferry reads for one (such a header carries one entry's name or attributes; `docker save` and `podman save` write small ones); the archive is damaged or hostile and is not imported",
        path.display()
    )]
    ExtensionTooLarge {
        /// The archive.
        path: PathBuf,
        /// The extension header's own name.
        entry: String,
        /// Which kind of header.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// More entries (names, links, metadata) than any image archive has.
    #[error(
        "{} holds more than ferry keeps track of: at entry {entry:?}, its names, link targets and metadata files (counting 1 KiB an entry) pass {limit} bytes, more than any image archive needs; the archive is not imported",
        path.display()
    )]
    TooManyEntries {
        /// The archive.
        path: PathBuf,
        /// The entry at which the limit was passed.
        entry: String,
        /// The limit.
        limit: u64,
    },
}
