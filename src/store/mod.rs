//! Where images live: registries and bundles. The engine and the planners talk to stores
//! through the small traits here; only `commands` picks a concrete store.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub mod registry;

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
