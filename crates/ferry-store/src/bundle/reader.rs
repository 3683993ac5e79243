//! Reads a bundle ([`BundleReader`]) without extracting it: one pass over the tar headers
//! builds an offset table (digest → offset, size), blob data is never read during the pass,
//! and blobs are then read with positioned reads ([`BlobReader`]), many at a time from one
//! shared file — or from the parts of a split bundle, read in place as one ([`Volume`]):
//! opening `NAME.parts` (or `NAME.001` beside it) checks that every part is there at its
//! size and names the one that is not.
//!
//! The bundle is untrusted input. Every entry must be one of the names in `names.rs` with
//! the right type (regular file or directory); links, devices, FIFOs, duplicates, unknown
//! names, GNU long-name/long-link and sparse entries, and PAX headers that would change an
//! entry's name or size are refused. The archive is walked in raw mode, so the tar crate
//! applies no extension on its own: what is checked is what every tar reader sees. Entries
//! that extend past the end of the file are reported as truncation, naming the entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tar::{EntryType, PaxExtensions};

use super::names::{self, EntryName, quote};
use super::parts::{PartsFile, parts_file_for};
use super::volume::{Cursor, Volume};
use super::{BLOCK, BundleError, MAX_METADATA_SIZE, padded};
use ferry_oci::digest::{Digest, Verifier};

/// PAX extension headers larger than this are refused (they are read into memory).
const MAX_PAX_SIZE: u64 = 64 * 1024;

/// Where a blob's bytes are in the bundle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub size: u64,
}

/// An opened, checked bundle. Cheap to share: blob readers hold their own handle.
#[derive(Debug)]
pub struct BundleReader {
    path: PathBuf,
    file: Arc<Volume>,
    parts: Option<PartsFile>,
    metadata: BTreeMap<&'static str, Vec<u8>>,
    /// By SHA-256 (a bundle holds `blobs/sha256/` only): 48 bytes a blob, not a digest's text.
    blobs: BTreeMap<[u8; 32], BlobLocation>,
    truncated: Option<BundleError>,
}

impl BundleReader {
    /// Opens `path` and checks its tar structure (one pass over the headers). `path` is a
    /// bundle file, or a split bundle's `.parts` file or one of its parts.
    pub fn open(path: &Path) -> Result<BundleReader, BundleError> {
        let io_err = |action: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| BundleError::Io {
                action,
                path: p,
                source,
            }
        };
        let (path, file, parts) = match parts_file_for(path) {
            Some(parts_path) => {
                let (volume, parts) = open_parts(&parts_path)?;
                (parts_path, volume, Some(parts))
            }
            None => {
                let file = File::open(path).map_err(io_err("open the bundle", path))?;
                let len = file
                    .metadata()
                    .map_err(io_err("inspect the bundle", path))?
                    .len();
                (path.to_path_buf(), Volume::single(path, file, len), None)
            }
        };
        let path = path.as_path();
        let len = file.len();
        if let Some(what) = not_a_tar(&file, len) {
            return Err(BundleError::NotABundle {
                path: path.to_path_buf(),
                what,
            });
        }
        let (table, truncated) = Scan::new(path, &file, len).run()?;
        if let Some(t) = &truncated {
            tracing::warn!("{t}; the entries before the cut are still used");
        }
        let mut metadata = BTreeMap::new();
        for (name, loc) in table.metadata {
            let size = usize::try_from(loc.size).map_err(|_| BundleError::MetadataTooLarge {
                path: path.to_path_buf(),
                entry: name.to_owned(),
                size: loc.size,
                limit: MAX_METADATA_SIZE,
            })?;
            let mut buf = vec![0; size];
            file.read_exact_at(&mut buf, loc.offset)
                .map_err(|source| BundleError::Io {
                    action: "read the bundle",
                    path: path.to_path_buf(),
                    source,
                })?;
            metadata.insert(name, buf);
        }
        Ok(BundleReader {
            path: path.to_path_buf(),
            file: Arc::new(file),
            parts,
            metadata,
            blobs: table.blobs,
            truncated,
        })
    }

    /// Why the bundle ends early, when it does. A truncated bundle is still read up to the
    /// cut: entries wholly before it are usable, the rest is missing (and the images that
    /// need it are named by whoever reads them).
    pub fn truncated(&self) -> Option<&BundleError> {
        self.truncated.as_ref()
    }

    /// The bundle file (for a split bundle, its `.parts` file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parts of a split bundle, as its `.parts` file lists them.
    pub fn parts(&self) -> Option<&PartsFile> {
        self.parts.as_ref()
    }

    /// The bytes of the bundle (one file, or the parts read as one).
    pub fn volume(&self) -> &Arc<Volume> {
        &self.file
    }

    /// The contents of metadata file `name` (`oci-layout`, `index.json`, `images.lock`,
    /// `manifest.json`), if the bundle has it.
    pub fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.get(name).map(Vec::as_slice)
    }

    /// Lets the metadata files' contents go, for a caller that has read all it needs of them
    /// (an import of thousands of images keeps ~1.4 KiB per image less for the rest of its
    /// run); [`BundleReader::metadata`] finds none afterwards.
    pub fn release_metadata(&mut self) {
        self.metadata = BTreeMap::new();
    }

    /// Where blob `digest` is, if the bundle has it.
    pub fn blob(&self, digest: &Digest) -> Option<BlobLocation> {
        self.blobs.get(&digest.sha256_bytes()?).copied()
    }

    /// Every blob, sorted by digest.
    pub fn blobs(&self) -> impl Iterator<Item = (Digest, BlobLocation)> + '_ {
        self.blobs
            .iter()
            .map(|(d, loc)| (Digest::from_sha256_bytes(d), *loc))
    }

    /// A reader over blob `digest`'s bytes (positioned reads; any number may be open at
    /// once, on any threads). The bytes are not verified: use a
    /// [`Verifier`] or [`BundleReader::verify_blob`].
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader, BundleError> {
        let loc = self.blob(digest).ok_or_else(|| BundleError::MissingBlob {
            path: self.path.clone(),
            digest: digest.clone(),
        })?;
        Ok(BlobReader::new(
            Arc::clone(&self.file),
            loc.offset,
            loc.size,
        ))
    }

    /// A reader over `len` bytes of the blob at `loc`, starting `offset` bytes into it.
    pub fn read_at(&self, loc: BlobLocation, offset: u64, len: u64) -> BlobReader {
        BlobReader::new(
            Arc::clone(&self.file),
            loc.offset.saturating_add(offset),
            len.min(loc.size.saturating_sub(offset)),
        )
    }

    /// Re-hashes blob `digest` and checks it against its name.
    pub fn verify_blob(&self, digest: &Digest) -> Result<(), BundleError> {
        let mut reader = self.open_blob(digest)?;
        let mut verifier = Verifier::new(digest.clone(), Some(reader.remaining()));
        let mut buf = vec![0u8; 1024 * 1024];
        let corrupt = |source| BundleError::CorruptBlob {
            path: self.path.clone(),
            digest: digest.clone(),
            source,
        };
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(BundleError::Io {
                        action: "read the bundle",
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            verifier
                .update(buf.get(..n).unwrap_or_default())
                .map_err(corrupt)?;
        }
        verifier.finish().map_err(corrupt)
    }
}

/// Reads a byte range of a shared file with positioned reads (no shared cursor).
#[derive(Debug)]
pub struct BlobReader {
    file: Arc<Volume>,
    pos: u64,
    end: u64,
}

impl BlobReader {
    /// Reads `len` bytes of `file` starting at `offset`.
    pub(crate) fn new(file: Arc<Volume>, offset: u64, len: u64) -> BlobReader {
        BlobReader {
            file,
            pos: offset,
            end: offset.saturating_add(len),
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.remaining())
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let Some(buf) = buf.get_mut(..want) else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.file.read_at(buf, self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the bundle file ended inside a blob (was it truncated after it was opened?)",
            ));
        }
        self.pos += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }
}

/// The offset table one pass over the headers produces.
struct Table {
    metadata: BTreeMap<&'static str, BlobLocation>,
    blobs: BTreeMap<[u8; 32], BlobLocation>,
}

/// One pass over an untrusted tar's headers.
struct Scan<'a> {
    path: &'a Path,
    file: &'a Volume,
    len: u64,
    seen: BTreeSet<Vec<u8>>,
    table: Table,
    /// Where the next header is expected: the end of the last entry.
    next_header: u64,
    /// A PAX header that must be followed by the entry it describes.
    pending_pax: Option<String>,
}

impl<'a> Scan<'a> {
    fn new(path: &'a Path, file: &'a Volume, len: u64) -> Scan<'a> {
        Scan {
            path,
            file,
            len,
            seen: BTreeSet::new(),
            table: Table {
                metadata: BTreeMap::new(),
                blobs: BTreeMap::new(),
            },
            next_header: 0,
            pending_pax: None,
        }
    }

    /// Scans every header. Truncation is not an error here: the table of the entries
    /// before the cut comes back with the reason.
    fn run(mut self) -> Result<(Table, Option<BundleError>), BundleError> {
        let mut archive = tar::Archive::new(self.file.cursor());
        let entries = archive
            .entries_with_seek()
            .map_err(|e| self.malformed(e.to_string()))?;
        for entry in entries.raw(true) {
            let checked = entry
                .map_err(|e| self.parse_error(e))
                .and_then(|mut entry| self.check(&mut entry));
            match checked {
                Ok(()) => {}
                Err(e @ (BundleError::Truncated { .. } | BundleError::TruncatedEnd { .. })) => {
                    return Ok((self.table, Some(e)));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(entry) = self.pending_pax.take() {
            return Err(self.unexpected(&entry, "is a PAX header describing no entry"));
        }
        // Two zero blocks must end the archive.
        let end = self.next_header.saturating_add(2 * BLOCK);
        if end > self.len {
            let e = BundleError::TruncatedEnd {
                path: self.path.to_path_buf(),
                missing: end - self.len,
            };
            return Ok((self.table, Some(e)));
        }
        Ok((self.table, None))
    }

    fn check(&mut self, entry: &mut tar::Entry<'_, Cursor<'_>>) -> Result<(), BundleError> {
        let raw_name = entry.path_bytes().into_owned();
        let shown = quote(&raw_name);
        let entry_type = entry.header().entry_type();
        let is_pax = entry_type.is_pax_local_extensions() || entry_type.is_pax_global_extensions();
        if entry_type.is_gnu_longname() || entry_type.is_gnu_longlink() {
            return Err(self.unexpected(&shown, "is a GNU long-name header that renames an entry"));
        }
        // The name is checked (a blob name's digest validated) before anything else. PAX
        // headers have arbitrary names; their contents are checked instead.
        let name = if is_pax {
            None
        } else {
            Some(
                names::classify(&raw_name)
                    .map_err(|reason| self.unexpected(&shown, &reason.to_string()))?,
            )
        };
        let offset = entry.raw_file_position();
        let size = entry.size();
        let end = offset
            .checked_add(size)
            .ok_or_else(|| self.malformed(format!("entry {shown} has an impossible size")))?;
        if end > self.len {
            return Err(BundleError::Truncated {
                path: self.path.to_path_buf(),
                entry: shown,
                missing: end - self.len,
            });
        }
        self.next_header = padded(size)
            .and_then(|s| s.checked_add(offset))
            .ok_or_else(|| self.malformed(format!("entry {shown} has an impossible size")))?;
        let Some(name) = name else {
            return self.check_pax(entry, &shown, size);
        };
        // A PAX header before this entry was checked to change neither its name nor its size.
        self.pending_pax = None;
        if let Some(kind) = type_problem(entry_type, &name) {
            return Err(self.unexpected(&shown, kind));
        }
        if !self.seen.insert(raw_name) {
            return Err(BundleError::DuplicateEntry {
                path: self.path.to_path_buf(),
                entry: shown,
            });
        }
        let loc = BlobLocation { offset, size };
        match name {
            EntryName::Metadata(n) => {
                if size > MAX_METADATA_SIZE {
                    return Err(BundleError::MetadataTooLarge {
                        path: self.path.to_path_buf(),
                        entry: n.to_owned(),
                        size,
                        limit: MAX_METADATA_SIZE,
                    });
                }
                self.table.metadata.insert(n, loc);
            }
            EntryName::Directory(_) if size != 0 => {
                return Err(self.unexpected(&shown, "is a directory with data"));
            }
            EntryName::Directory(_) => {}
            EntryName::Blob(digest) => {
                // Always a SHA-256: the names accepted are `blobs/sha256/<hex>` only.
                let Some(key) = digest.sha256_bytes() else {
                    return Err(self.unexpected(&shown, "is not a sha256 blob"));
                };
                self.table.blobs.insert(key, loc);
            }
        }
        Ok(())
    }

    /// Accepts a PAX header only if it is small, well-formed, and changes neither the name
    /// nor the size of the entry it describes (mtime, uid and the like are harmless).
    fn check_pax(
        &mut self,
        entry: &mut tar::Entry<'_, Cursor<'_>>,
        shown: &str,
        size: u64,
    ) -> Result<(), BundleError> {
        if self.pending_pax.is_some() {
            return Err(self.unexpected(shown, "is a second PAX header for the same entry"));
        }
        if size > MAX_PAX_SIZE {
            return Err(self.unexpected(shown, "is an oversized PAX header"));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| self.malformed(format!("PAX header {shown}: {e}")))?;
        for record in PaxExtensions::new(&data) {
            let Ok(record) = record else {
                return Err(self.unexpected(shown, "is a malformed PAX header"));
            };
            let key = record.key_bytes();
            if matches!(key, b"path" | b"linkpath" | b"size") || key.starts_with(b"GNU.sparse.") {
                let what = String::from_utf8_lossy(key);
                let reason = format!("is a PAX header that overrides {what:?}");
                return Err(self.unexpected(shown, &reason));
            }
        }
        self.pending_pax = Some(shown.to_owned());
        Ok(())
    }

    /// Maps a tar parser error: past the end of the file it is truncation.
    fn parse_error(&self, e: io::Error) -> BundleError {
        let header_end = self.next_header.saturating_add(BLOCK);
        if header_end > self.len {
            BundleError::TruncatedEnd {
                path: self.path.to_path_buf(),
                missing: header_end - self.len,
            }
        } else {
            self.malformed(e.to_string())
        }
    }

    fn malformed(&self, detail: String) -> BundleError {
        BundleError::Malformed {
            path: self.path.to_path_buf(),
            detail,
        }
    }

    fn unexpected(&self, entry: &str, reason: &str) -> BundleError {
        BundleError::UnexpectedEntry {
            path: self.path.to_path_buf(),
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Opens every part a `.parts` file lists, beside it; a missing part, or one of the wrong
/// size, is named.
fn open_parts(parts_path: &Path) -> Result<(Volume, PartsFile), BundleError> {
    let parts = PartsFile::read(parts_path)?;
    let mut files = Vec::new();
    for (i, p) in parts.parts.iter().enumerate() {
        let path = parts_path.with_file_name(&p.name);
        let part_err = |detail: String| BundleError::Part {
            parts: parts_path.to_path_buf(),
            part: path.clone(),
            index: i + 1,
            count: parts.parts.len(),
            detail,
        };
        let file = File::open(&path).map_err(|e| {
            part_err(if e.kind() == io::ErrorKind::NotFound {
                "is missing".into()
            } else {
                format!("cannot be opened ({e})")
            })
        })?;
        let len = file
            .metadata()
            .map_err(|e| part_err(format!("cannot be inspected ({e})")))?
            .len();
        if len != p.size {
            return Err(part_err(format!(
                "is {len} bytes, the parts file says {} (cut short or not this bundle's part)",
                p.size
            )));
        }
        files.push((path, file, len));
    }
    Ok((Volume::from_parts(files), parts))
}

/// What the file is, when it is plainly not a tar archive: empty, compressed, or its first
/// block not a tar header (checksum). A tar that is only cut short is not caught here: it
/// is read up to the cut.
fn not_a_tar(file: &Volume, len: u64) -> Option<String> {
    if len == 0 {
        return Some("it is empty (0 bytes)".into());
    }
    let mut first = [0u8; 512];
    let n = usize::try_from(len.min(512)).unwrap_or(512);
    if file.read_exact_at(&mut first[..n], 0).is_err() {
        return None;
    }
    let kind = ferry_oci::compression::Compression::sniff(&first[..n]).map(|c| c.name());
    if let Some(kind) = kind {
        return Some(format!(
            "it is {kind}-compressed (decompress it first if it holds a bundle; a `docker save` archive is not a ferry bundle)"
        ));
    }
    if first.iter().all(|&b| b == 0) {
        return (len <= 1024 * 10).then(|| "it is an empty tar archive".into());
    }
    if n < 512 {
        return Some(format!(
            "it is only {len} bytes, less than one tar header (cut short, or not a bundle; copy it again)"
        ));
    }
    if !crate::tar_header::checksum_ok(&first) {
        return Some(format!(
            "it does not start with a tar header ({len} bytes, beginning {:?})",
            String::from_utf8_lossy(&first[..n.min(16)])
        ));
    }
    None
}

/// Why an entry of this type cannot carry this name, if it cannot.
fn type_problem(entry_type: EntryType, name: &EntryName) -> Option<&'static str> {
    let want_dir = matches!(name, EntryName::Directory(_));
    match entry_type {
        EntryType::Regular if !want_dir => None,
        EntryType::Directory if want_dir => None,
        EntryType::Regular => Some("is a regular file where a directory belongs"),
        EntryType::Directory => Some("is a directory where a file belongs"),
        EntryType::Symlink => Some("is a symbolic link"),
        EntryType::Link => Some("is a hard link"),
        EntryType::Char => Some("is a character device"),
        EntryType::Block => Some("is a block device"),
        EntryType::Fifo => Some("is a FIFO"),
        EntryType::GNUSparse => Some("is a GNU sparse file"),
        _ => Some("has an entry type ferry does not accept"),
    }
}

#[cfg(test)]
mod tests;
