//! Where images live: registries and bundles. The engine and the planners talk to stores
//! through the small traits here; only `commands` picks a concrete store.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub mod bundle;
pub mod registry;
pub mod stream;

use bytes::Bytes;

use crate::oci::digest::Digest;
use crate::oci::manifest::Descriptor;
use crate::oci::reference::Reference;

/// Configs larger than this are not read into memory.
pub const MAX_SMALL_BLOB: u64 = 4 * 1024 * 1024;

/// What a HEAD tells about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when the store says it.
    pub digest: Option<Digest>,
    /// Media type without parameters.
    pub media_type: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
}

/// A manifest as fetched: exact bytes, media type, verified digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes, untouched.
    pub bytes: Bytes,
    /// Media type.
    pub media_type: String,
    /// Digest of the bytes (verified against the one asked for).
    pub digest: Digest,
}

/// Read access to manifests and small blobs, addressed by image reference: what planning
/// (`ferry lock`) needs. Implemented by the registry client.
pub trait ManifestSource: Send + Sync {
    /// The error type, displayed per image.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Resolves the reference's tag without reading the manifest; `None` when it does not exist.
    fn head(
        &self,
        image: &Reference,
    ) -> impl Future<Output = Result<Option<ManifestHead>, Self::Error>> + Send;

    /// Fetches a manifest of the image's repository by digest, or by the image's own tag
    /// when `digest` is `None`.
    fn manifest(
        &self,
        image: &Reference,
        digest: Option<&Digest>,
    ) -> impl Future<Output = Result<FetchedManifest, Self::Error>> + Send;

    /// Fetches a small blob (a config) into memory, verified.
    fn small_blob(
        &self,
        image: &Reference,
        blob: &Descriptor,
    ) -> impl Future<Output = Result<Bytes, Self::Error>> + Send;
}

/// A blob kept in memory (configs only: bounded by the descriptor size).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// The bytes received.
    pub bytes: Vec<u8>,
}

impl BlobSink for MemorySink {
    fn existing_len(&mut self) -> io::Result<u64> {
        Ok(0)
    }

    fn prefix_reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::empty()))
    }

    fn append(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.bytes.clear();
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        self.bytes.clear();
    }
}

/// Where downloaded blob bytes go. Called from a blocking thread, one call at a time.
pub trait BlobSink: Send + 'static {
    /// How many bytes of the blob are already present from an earlier, interrupted attempt.
    fn existing_len(&mut self) -> io::Result<u64>;
    /// A reader over the bytes already present (they are re-hashed before resuming).
    fn prefix_reader(&mut self) -> io::Result<Box<dyn Read + '_>>;
    /// Appends verified-so-far bytes.
    fn append(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Drops everything written; the download starts over.
    fn reset(&mut self) -> io::Result<()>;
    /// All bytes arrived and matched the digest: make them durable and visible.
    fn commit(&mut self) -> io::Result<()>;
    /// The bytes did not verify: discard them.
    fn abort(&mut self);
}

#[derive(Debug)]
/// A blob downloaded to a file: written as `NAME.partial`, renamed on commit. A re-run with
/// the same path resumes from the partial file.
pub struct FileSink {
    path: PathBuf,
    partial: PathBuf,
    file: Option<File>,
}

impl FileSink {
    /// A sink that will produce `path`.
    pub fn new(path: &Path) -> FileSink {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        FileSink {
            path: path.to_path_buf(),
            partial: PathBuf::from(partial),
            file: None,
        }
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(&self.partial)?;
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("file vanished"))
    }
}

impl BlobSink for FileSink {
    fn existing_len(&mut self) -> io::Result<u64> {
        Ok(self.file()?.metadata()?.len())
    }

    fn prefix_reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        let f = self.file()?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Box::new(f))
    }

    fn append(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file()?.write_all(chunk)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.file()?.set_len(0)
    }

    fn commit(&mut self) -> io::Result<()> {
        let f = self.file()?;
        f.sync_all()?;
        self.file = None;
        std::fs::rename(&self.partial, &self.path)
    }

    fn abort(&mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.partial);
    }
}
