//! The planned layout of a bundle file ([`Plan`]): every entry's tar header, where its
//! header and data start, and the total size — all computed before a byte is written, so
//! blobs can be written straight into their final place, concurrently, and the same inputs
//! always give a byte-identical file.
//!
//! Headers are GNU format with deterministic fields: mode 0644 (directories 0755), mtime 0,
//! uid and gid 0, empty user and group names. Sizes of 8 GiB and more use the GNU base-256
//! size field (`tar::Header::set_size` does that on GNU headers).

use std::collections::BTreeMap;

use tar::{EntryType, Header};

use super::names;
use super::{BLOCK, BundleError, DIRECTORIES, MAX_METADATA_SIZE, METADATA_FILES, padded};
use crate::oci::digest::{Algorithm, Digest, Hasher};

/// File mode of regular entries.
const FILE_MODE: u32 = 0o644;
/// File mode of directory entries.
const DIR_MODE: u32 = 0o755;

/// What a planned entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A metadata file with these (small) contents, written when the bundle is created.
    Metadata(Vec<u8>),
    /// A directory entry (`blobs/`, `blobs/sha256/`).
    Directory,
    /// A blob, filled in later.
    Blob(Digest),
}

/// One entry of a planned bundle.
#[derive(Debug, Clone)]
pub struct PlannedEntry {
    name: String,
    kind: EntryKind,
    header_offset: u64,
    size: u64,
    header: Header,
}

impl PlannedEntry {
    /// The entry name inside the tar.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the entry holds.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// The blob digest, for blob entries.
    pub fn digest(&self) -> Option<&Digest> {
        match &self.kind {
            EntryKind::Blob(d) => Some(d),
            _ => None,
        }
    }

    /// Where the entry's 512-byte header starts in the file.
    pub fn header_offset(&self) -> u64 {
        self.header_offset
    }

    /// Where the entry's data starts in the file (right after its header).
    pub fn data_offset(&self) -> u64 {
        self.header_offset + BLOCK
    }

    /// The data size in bytes (0 for directories).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The rendered header block.
    pub fn header_bytes(&self) -> &[u8; 512] {
        self.header.as_bytes()
    }
}

/// The complete layout of a bundle file, computed from its metadata files and blob list.
#[derive(Debug, Clone)]
pub struct Plan {
    entries: Vec<PlannedEntry>,
    blobs: BTreeMap<Digest, usize>,
    total_size: u64,
    fingerprint: Digest,
}

impl Plan {
    /// Plans a bundle holding `metadata` (name → contents; names from
    /// [`METADATA_FILES`], each at most once, written in that fixed order whatever the input
    /// order) and `blobs` (digest and size; duplicates are merged, the blobs are written
    /// sorted by digest).
    ///
    /// Fails on an unknown or repeated metadata name, metadata over
    /// [`MAX_METADATA_SIZE`], a non-sha256 digest, one digest listed with two sizes, or a
    /// total size that overflows.
    pub fn new<N: AsRef<str>>(
        metadata: impl IntoIterator<Item = (N, Vec<u8>)>,
        blobs: impl IntoIterator<Item = (Digest, u64)>,
    ) -> Result<Plan, BundleError> {
        let invalid = |detail: String| BundleError::InvalidPlan { detail };
        let mut files: BTreeMap<usize, (&'static str, Vec<u8>)> = BTreeMap::new();
        for (name, contents) in metadata {
            let name = name.as_ref();
            let Some((pos, &known)) = METADATA_FILES.iter().enumerate().find(|(_, m)| **m == name)
            else {
                return Err(invalid(format!(
                    "{name:?} is not a bundle metadata file (expected one of {METADATA_FILES:?})"
                )));
            };
            let size = len_u64(&contents);
            if size > MAX_METADATA_SIZE {
                return Err(BundleError::MetadataTooLarge {
                    path: "(planned bundle)".into(),
                    entry: name.to_owned(),
                    size,
                    limit: MAX_METADATA_SIZE,
                });
            }
            if files.insert(pos, (known, contents)).is_some() {
                return Err(invalid(format!("metadata file {name} is given twice")));
            }
        }
        let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
        for (digest, size) in blobs {
            if digest.kind() != Algorithm::Sha256 {
                return Err(invalid(format!(
                    "blob {digest} is not a sha256 blob; bundles hold blobs/sha256/ only"
                )));
            }
            if let Some(&other) = sizes.get(&digest)
                && other != size
            {
                return Err(invalid(format!(
                    "blob {digest} is listed with two sizes, {other} and {size} bytes"
                )));
            }
            sizes.insert(digest, size);
        }

        let mut planner = Planner::default();
        for (name, contents) in files.into_values() {
            let size = len_u64(&contents);
            planner.push(name.to_owned(), EntryKind::Metadata(contents), size)?;
        }
        for dir in DIRECTORIES {
            planner.push(dir.to_owned(), EntryKind::Directory, 0)?;
        }
        let mut blob_index = BTreeMap::new();
        for (digest, size) in sizes {
            blob_index.insert(digest.clone(), planner.entries.len());
            planner.push(digest.blob_path(), EntryKind::Blob(digest), size)?;
        }
        let total_size = planner
            .next
            .checked_add(2 * BLOCK)
            .ok_or_else(|| invalid("the bundle would exceed 2^64 bytes".to_owned()))?;
        let mut hasher = Hasher::sha256();
        for entry in &planner.entries {
            hasher.update(entry.header_bytes());
        }
        hasher.update(&total_size.to_le_bytes());
        Ok(Plan {
            entries: planner.entries,
            blobs: blob_index,
            total_size,
            fingerprint: hasher.finish(),
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[PlannedEntry] {
        &self.entries
    }

    /// The entry of blob `digest`, if planned.
    pub fn blob(&self, digest: &Digest) -> Option<&PlannedEntry> {
        self.blobs.get(digest).and_then(|&i| self.entries.get(i))
    }

    /// The blob entries, sorted by digest.
    pub fn blobs(&self) -> impl Iterator<Item = &PlannedEntry> + '_ {
        self.blobs.values().filter_map(|&i| self.entries.get(i))
    }

    /// How many distinct blobs the bundle holds.
    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    /// The size of the finished file, end-of-archive blocks included.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// The SHA-256 of every planned header block (and the total size): equal fingerprints
    /// mean equal layouts, so an interrupted file can be resumed.
    pub fn fingerprint(&self) -> &Digest {
        &self.fingerprint
    }
}

/// Lays entries out one after the other.
#[derive(Default)]
struct Planner {
    entries: Vec<PlannedEntry>,
    next: u64,
}

impl Planner {
    fn push(&mut self, name: String, kind: EntryKind, size: u64) -> Result<(), BundleError> {
        let overflow = || BundleError::InvalidPlan {
            detail: format!("entry {name} of {size} bytes does not fit below 2^64 bytes"),
        };
        let header = render_header(&name, &kind, size)?;
        let header_offset = self.next;
        self.next = padded(size)
            .and_then(|s| s.checked_add(BLOCK))
            .and_then(|s| s.checked_add(header_offset))
            .ok_or_else(overflow)?;
        self.entries.push(PlannedEntry {
            name,
            kind,
            header_offset,
            size,
            header,
        });
        Ok(())
    }
}

/// Renders the deterministic GNU header of one entry.
fn render_header(name: &str, kind: &EntryKind, size: u64) -> Result<Header, BundleError> {
    // Every planned name is a name the reader accepts; check it once more here so the
    // writer can never produce a bundle that its own reader refuses.
    names::classify(name.as_bytes()).map_err(|reason| BundleError::InvalidPlan {
        detail: format!("entry name {name:?} {reason}"),
    })?;
    let mut header = Header::new_gnu();
    let field = &mut header.as_old_mut().name;
    let Some(slot) = field.get_mut(..name.len()) else {
        return Err(BundleError::InvalidPlan {
            detail: format!("entry name {name:?} is longer than 100 bytes"),
        });
    };
    // Written raw (not with `set_path`) so that directory names keep their trailing `/`.
    slot.copy_from_slice(name.as_bytes());
    let (entry_type, mode) = match kind {
        EntryKind::Directory => (EntryType::Directory, DIR_MODE),
        EntryKind::Metadata(_) | EntryKind::Blob(_) => (EntryType::Regular, FILE_MODE),
    };
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    Ok(header)
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
