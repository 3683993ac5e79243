//! [`BundleError`]: everything that can go wrong planning, writing or reading a bundle. Each
//! message names the bundle file, the entry or blob concerned, and what to do about it.

use std::io;
use std::path::PathBuf;

use ferry_oci::digest::{Digest, VerifyError};

/// Why a bundle cannot be planned, written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file-system operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "open the bundle".
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A part of a split bundle is missing, of the wrong size, or corrupt.
    #[error(
        "part {index} of {count} of the split bundle {}, {}, {detail}; copy that file again (the other parts are fine as they are)",
        parts.display(),
        part.display()
    )]
    Part {
        /// The `.parts` file.
        parts: PathBuf,
        /// The part.
        part: PathBuf,
        /// Its number, from 1.
        index: usize,
        /// How many parts there are.
        count: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// `--split` would make more parts than a three-digit suffix names.
    #[error(
        "cannot split {} ({total} bytes) every {split} bytes: that makes {parts} parts, and at most 999 are written; choose a larger --split",
        path.display()
    )]
    TooManyParts {
        /// The bundle.
        path: PathBuf,
        /// Its size.
        total: u64,
        /// The part size asked for.
        split: u64,
        /// How many parts that makes.
        parts: usize,
    },
    /// The `.parts` file itself cannot be used.
    #[error(transparent)]
    Parts(#[from] super::parts::PartsError),
    /// The file is not a tar archive at all (empty, compressed, or something else).
    #[error(
        "{} is not a ferry bundle: {what}; a bundle is the uncompressed .tar that `ferry export -o` writes",
        path.display()
    )]
    NotABundle {
        /// The file.
        path: PathBuf,
        /// What it is instead ("it is empty", "it is gzip-compressed …").
        what: String,
    },
    /// The tar structure itself is broken (bad header checksum, unreadable numbers, …).
    #[error(
        "the bundle {} is not a readable tar archive: {detail}; copy it again, or export it again if the copy is good",
        path.display()
    )]
    Malformed {
        /// The bundle file.
        path: PathBuf,
        /// What the tar parser found.
        detail: String,
    },
    /// An entry's data extends past the end of the file.
    #[error(
        "the bundle {} is truncated: entry {entry} needs {missing} bytes past the end of the file; copy it again",
        path.display()
    )]
    Truncated {
        /// The bundle file.
        path: PathBuf,
        /// The entry that does not fit.
        entry: String,
        /// How many of its bytes are missing.
        missing: u64,
    },
    /// The file ends before the tar end-of-archive marker.
    #[error(
        "the bundle {} is truncated: it ends {missing} bytes short of the tar end-of-archive marker; copy it again",
        path.display()
    )]
    TruncatedEnd {
        /// The bundle file.
        path: PathBuf,
        /// How many bytes are missing.
        missing: u64,
    },
    /// An entry a ferry bundle never holds: unknown or unsafe name, wrong type, extension
    /// header tricks.
    #[error(
        "the bundle {} holds the entry {entry:?}, which {reason}; a bundle written by ferry never does, so the file was altered or is not a ferry bundle — refusing it (export it again)",
        path.display()
    )]
    UnexpectedEntry {
        /// The bundle file.
        path: PathBuf,
        /// The entry name as stored (lossy UTF-8, shortened).
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same name appears twice.
    #[error(
        "the bundle {} holds the entry {entry} twice; tar readers disagree about which copy wins, so it is refused (export it again)",
        path.display()
    )]
    DuplicateEntry {
        /// The bundle file.
        path: PathBuf,
        /// The repeated name.
        entry: String,
    },
    /// A metadata file is larger than [`MAX_METADATA_SIZE`](super::MAX_METADATA_SIZE).
    #[error(
        "the bundle {} holds {entry} of {size} bytes, more than the {limit}-byte limit for metadata files; refusing it (export it again)",
        path.display()
    )]
    MetadataTooLarge {
        /// The bundle file (or the planned bundle).
        path: PathBuf,
        /// The metadata file name.
        entry: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A blob asked for is not in the bundle.
    #[error(
        "the bundle {} has no blob {digest}; export it again from a lock that includes it",
        path.display()
    )]
    MissingBlob {
        /// The bundle file.
        path: PathBuf,
        /// The blob asked for.
        digest: Digest,
    },
    /// A blob's bytes do not match its name.
    #[error(
        "blob {digest} in the bundle {} is corrupt: {source}; copy the bundle again, or export it again if the copy is good",
        path.display()
    )]
    CorruptBlob {
        /// The bundle file.
        path: PathBuf,
        /// The blob's name.
        digest: Digest,
        /// What the re-hash found.
        #[source]
        source: VerifyError,
    },
    /// The inputs of a plan are inconsistent (a caller bug, not a user error).
    #[error("cannot plan the bundle: {detail}")]
    InvalidPlan {
        /// What is inconsistent.
        detail: String,
    },
    /// A blob that is not in the plan was asked for while writing.
    #[error("blob {digest} is not part of the planned bundle {}", path.display())]
    NotPlanned {
        /// The bundle being written.
        path: PathBuf,
        /// The blob asked for.
        digest: Digest,
    },
    /// A second writer was asked for a blob that is still being written.
    #[error(
        "blob {digest} of the bundle {} is already being written by another transfer",
        path.display()
    )]
    SlotBusy {
        /// The bundle being written.
        path: PathBuf,
        /// The blob asked for.
        digest: Digest,
    },
    /// `finish` was called before every blob was written.
    #[error(
        "the bundle {} is incomplete: {missing} of {total} blobs are still missing; run the export again to fetch them (the finished ones are kept)",
        path.display()
    )]
    Incomplete {
        /// The bundle being written.
        path: PathBuf,
        /// How many blobs are not written.
        missing: usize,
        /// How many blobs the plan has.
        total: usize,
    },
    /// `finish` was called while blob writers were still open.
    #[error(
        "the bundle {} cannot be finished while {open} blob writers are still open",
        path.display()
    )]
    StillWriting {
        /// The bundle being written.
        path: PathBuf,
        /// How many blob writers are open.
        open: usize,
    },
}
