//! The planned layout of a bundle file ([`Plan`]): every entry's tar header, where its
//! header and data start, and the total size — all computed before a byte is written, so
//! blobs can be written straight into their final place, concurrently, and the same inputs
//! always give a byte-identical file. A blob's slot is kept as its SHA-256 bytes, offset and
//! size; its name and header are rendered again when asked for.
//!
//! Headers are GNU format with deterministic fields: mode 0644 (directories 0755), mtime 0,
//! uid and gid 0, empty user and group names. Sizes of 8 GiB and more use the GNU base-256
//! size field (`tar::Header::set_size` does that on GNU headers).

use std::borrow::Cow;
use std::collections::BTreeMap;

use tar::{EntryType, Header};

use super::names;
use super::{BLOCK, BundleError, DIRECTORIES, MAX_METADATA_SIZE, METADATA_FILES, padded};
use ferry_oci::digest::{Digest, Hasher};

/// File mode of regular entries.
const FILE_MODE: u32 = 0o644;
/// File mode of directory entries.
const DIR_MODE: u32 = 0o755;

/// What a planned entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind<'p> {
    /// A metadata file with these (small) contents, written when the bundle is created
    /// (empty once [`Plan::release_metadata`] let them go).
    Metadata(&'p [u8]),
    /// A directory entry (`blobs/`, `blobs/sha256/`).
    Directory,
    /// A blob, filled in later.
    Blob(Digest),
}

/// One entry of a planned bundle, as [`Plan`] hands it out: its header is rendered when
/// asked for, not kept (a bundle of many small images has thousands of entries).
#[derive(Debug, Clone)]
pub struct PlannedEntry<'p> {
    name: Cow<'static, str>,
    kind: EntryKind<'p>,
    header_offset: u64,
    size: u64,
}

impl PlannedEntry<'_> {
    /// The entry name inside the tar.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the entry holds.
    pub fn kind(&self) -> &EntryKind<'_> {
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

    /// The header block (the name was checked when the plan was made).
    pub fn header_bytes(&self) -> [u8; 512] {
        *render_header(
            &self.name,
            matches!(self.kind, EntryKind::Directory),
            self.size,
        )
        .as_bytes()
    }
}

/// A metadata file or directory of the plan: the entries before the blobs.
#[derive(Debug, Clone)]
struct Head {
    name: &'static str,
    /// The contents of a metadata file; `None` for a directory.
    contents: Option<Vec<u8>>,
    header_offset: u64,
    size: u64,
}

/// A blob's slot: its SHA-256 (the bundle holds `blobs/sha256/` only), where its header
/// starts and its size. 48 bytes, whatever the name and header it stands for.
#[derive(Debug, Clone)]
struct Slot {
    sha256: [u8; 32],
    header_offset: u64,
    size: u64,
}

/// The complete layout of a bundle file, computed from its metadata files and blob list.
#[derive(Debug, Clone)]
pub struct Plan {
    head: Vec<Head>,
    /// Sorted by digest, which is also their order in the file.
    blobs: Vec<Slot>,
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
        let mut sizes: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for (digest, size) in blobs {
            let Some(key) = digest.sha256_bytes() else {
                return Err(invalid(format!(
                    "blob {digest} is not a sha256 blob; bundles hold blobs/sha256/ only"
                )));
            };
            if let Some(&other) = sizes.get(&key)
                && other != size
            {
                return Err(invalid(format!(
                    "blob {digest} is listed with two sizes, {other} and {size} bytes"
                )));
            }
            sizes.insert(key, size);
        }

        let mut planner = Planner {
            next: 0,
            hasher: Hasher::sha256(),
        };
        let mut head = Vec::new();
        for (name, contents) in files.into_values() {
            let size = len_u64(&contents);
            let header_offset = planner.push(name, false, size)?;
            head.push(Head {
                name,
                contents: Some(contents),
                header_offset,
                size,
            });
        }
        for dir in DIRECTORIES {
            let header_offset = planner.push(dir, true, 0)?;
            head.push(Head {
                name: dir,
                contents: None,
                header_offset,
                size: 0,
            });
        }
        let mut slots = Vec::with_capacity(sizes.len());
        for (sha256, size) in sizes {
            let name = Digest::from_sha256_bytes(&sha256).blob_path();
            let header_offset = planner.push(&name, false, size)?;
            slots.push(Slot {
                sha256,
                header_offset,
                size,
            });
        }
        let total_size = planner
            .next
            .checked_add(2 * BLOCK)
            .ok_or_else(|| invalid("the bundle would exceed 2^64 bytes".to_owned()))?;
        let mut hasher = planner.hasher;
        hasher.update(&total_size.to_le_bytes());
        Ok(Plan {
            head,
            blobs: slots,
            total_size,
            fingerprint: hasher.finish(),
        })
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = PlannedEntry<'_>> + '_ {
        self.head
            .iter()
            .map(|h| PlannedEntry {
                name: Cow::Borrowed(h.name),
                kind: match &h.contents {
                    Some(c) => EntryKind::Metadata(c),
                    None => EntryKind::Directory,
                },
                header_offset: h.header_offset,
                size: h.size,
            })
            .chain(self.blobs.iter().map(Slot::entry))
    }

    /// The entry of blob `digest`, if planned.
    pub fn blob(&self, digest: &Digest) -> Option<PlannedEntry<'_>> {
        let key = digest.sha256_bytes()?;
        let i = self.blobs.binary_search_by(|s| s.sha256.cmp(&key)).ok()?;
        self.blobs.get(i).map(Slot::entry)
    }

    /// The blob entries, sorted by digest.
    pub fn blobs(&self) -> impl Iterator<Item = PlannedEntry<'_>> + '_ {
        self.blobs.iter().map(Slot::entry)
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

    /// Lets the metadata files' contents go once they are written: a writer needs only the
    /// layout from then on. Their entries keep name, offsets and size, and read as empty.
    pub fn release_metadata(&mut self) {
        for h in &mut self.head {
            if let Some(c) = &mut h.contents {
                *c = Vec::new();
            }
        }
    }
}

impl Slot {
    fn entry<'p>(&self) -> PlannedEntry<'p> {
        let digest = Digest::from_sha256_bytes(&self.sha256);
        PlannedEntry {
            name: Cow::Owned(digest.blob_path()),
            kind: EntryKind::Blob(digest),
            header_offset: self.header_offset,
            size: self.size,
        }
    }
}

/// Lays entries out one after the other, hashing every header into the fingerprint.
struct Planner {
    next: u64,
    hasher: Hasher,
}

impl Planner {
    /// Places an entry: checks its name, hashes its header, and returns where the header
    /// starts.
    fn push(&mut self, name: &str, directory: bool, size: u64) -> Result<u64, BundleError> {
        let overflow = || BundleError::InvalidPlan {
            detail: format!("entry {name} of {size} bytes does not fit below 2^64 bytes"),
        };
        check_name(name)?;
        self.hasher
            .update(render_header(name, directory, size).as_bytes());
        let header_offset = self.next;
        self.next = padded(size)
            .and_then(|s| s.checked_add(BLOCK))
            .and_then(|s| s.checked_add(header_offset))
            .ok_or_else(overflow)?;
        Ok(header_offset)
    }
}

/// Checks that `name` fits a header's name field and is a name the reader accepts, so the
/// writer can never produce a bundle that its own reader refuses.
fn check_name(name: &str) -> Result<(), BundleError> {
    names::classify(name.as_bytes()).map_err(|reason| BundleError::InvalidPlan {
        detail: format!("entry name {name:?} {reason}"),
    })?;
    if name.len() > 100 {
        return Err(BundleError::InvalidPlan {
            detail: format!("entry name {name:?} is longer than 100 bytes"),
        });
    }
    Ok(())
}

/// Renders the deterministic GNU header of one entry whose name [`check_name`] accepted.
fn render_header(name: &str, directory: bool, size: u64) -> Header {
    let mut header = Header::new_gnu();
    // Written raw (not with `set_path`) so that directory names keep their trailing `/`.
    for (slot, byte) in header.as_old_mut().name.iter_mut().zip(name.as_bytes()) {
        *slot = *byte;
    }
    let (entry_type, mode) = if directory {
        (EntryType::Directory, DIR_MODE)
    } else {
        (EntryType::Regular, FILE_MODE)
    };
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header.set_cksum();
    header
}

fn len_u64(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
