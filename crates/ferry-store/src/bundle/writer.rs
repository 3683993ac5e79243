//! Writes a planned bundle ([`BundleWriter`]): the file is created at its final size as
//! `BUNDLE.partial`, headers and metadata are written at once, and every blob is then
//! written straight into its slot through a [`SlotSink`] — many at a time, from different
//! threads, with positioned writes on one shared file.
//!
//! Split (`--split`): the same tar in consecutive parts `BUNDLE.001`, `.002`, … (written as
//! `BUNDLE.001.partial`, …), a blob spanning two parts written across them in place
//! ([`Volume`]); on finish every part is hashed, renamed, and `BUNDLE.parts` written last.
//!
//! Crash safety: `BUNDLE.journal` (format in `journal.rs`) records, after an `fdatasync`,
//! which slots are complete (`done`) and how far incomplete ones got (`progress`, every
//! [`CHECKPOINT_INTERVAL`] bytes). Creating a writer for the same plan again resumes from
//! there; a different plan starts over. The final name appears only in
//! [`BundleWriter::finish`], by an atomic rename after every blob is done and synced, so a
//! crash leaves either no bundle or a complete one.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

mod group_sync;

use self::group_sync::GroupSync;
use super::BundleError;
use super::journal::{self, Record, State};
use super::layout::{EntryKind, Plan};
use super::parts::{MAX_PARTS, PartEntry, PartsFile, part_name, parts_path, split_sizes};
use super::reader::BlobReader;
use super::volume::Volume;
use ferry_oci::digest::{Digest, Hasher};

/// Bytes written to a slot between two durable progress checkpoints.
pub const CHECKPOINT_INTERVAL: u64 = 64 * 1024 * 1024;

/// A bundle being written. See the module documentation.
pub struct BundleWriter {
    final_path: PathBuf,
    journal_path: PathBuf,
    /// Where each file is written, and the name it gets when the bundle is complete.
    files: Vec<(PathBuf, PathBuf)>,
    /// Bytes per part, when split.
    split: Option<u64>,
    plan: Plan,
    file: Arc<Volume>,
    shared: Arc<Shared>,
    checkpoint_interval: u64,
    resumed: bool,
    /// Layers a delta bundle leaves out: present elsewhere, never written.
    left_out: BTreeSet<Digest>,
}

/// State shared by the writer and its slot sinks.
struct Shared {
    /// The final bundle path, for messages.
    path: PathBuf,
    inner: Mutex<Inner>,
    /// `fdatasync`s before journal lines, shared by the slots that need one at once.
    syncs: GroupSync,
}

struct Inner {
    journal: File,
    journal_len: u64,
    state: State,
    /// Blobs with a live [`SlotSink`].
    open: BTreeSet<Digest>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent across a panic elsewhere: every update is one call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `record` to the journal and applies it. A failed append is cut off again so
    /// the journal never holds a torn line in its middle.
    fn record(&self, record: Record) -> io::Result<()> {
        let mut inner = self.lock();
        let line = record.line();
        if let Err(e) = inner.journal.write_all(line.as_bytes()) {
            let _ = inner.journal.set_len(inner.journal_len);
            return Err(e);
        }
        inner.journal_len += u64::try_from(line.len()).unwrap_or(0);
        inner.state.apply(&record);
        Ok(())
    }

    /// Forgets any progress of `digest` (journals `progress <digest> 0` if there was any).
    fn forget(&self, digest: &Digest) -> io::Result<()> {
        let known = {
            let inner = self.lock();
            inner.state.is_done(digest) || inner.state.progress_of(digest).is_some()
        };
        if known {
            self.record(Record::Progress(digest.clone(), 0))?;
        }
        Ok(())
    }
}

impl BundleWriter {
    /// Creates (or resumes) the bundle `final_path` laid out by `plan`: `FINAL.partial` at its
    /// full size with every header and metadata file written, and `FINAL.journal`. An
    /// existing `.partial` + `.journal` of the same plan is resumed (see
    /// [`BundleWriter::resumed`]); anything else there is replaced.
    pub fn create(final_path: &Path, plan: Plan) -> Result<BundleWriter, BundleError> {
        BundleWriter::create_split(final_path, plan, None)
    }

    /// Like [`BundleWriter::create`], split every `split` bytes into `FINAL.001`, `.002`, …
    /// when `split` is given (at most [`MAX_PARTS`] parts).
    pub fn create_split(
        final_path: &Path,
        mut plan: Plan,
        split: Option<u64>,
    ) -> Result<BundleWriter, BundleError> {
        let journal_path = with_suffix(final_path, ".journal");
        let files = planned_files(final_path, &plan, split)?;
        let (file, journal, journal_len, state, resumed) =
            match resume(&files, &journal_path, &plan, split)? {
                Some((file, journal, len, state)) => (file, journal, len, state, true),
                None => {
                    let (file, journal, len) = start_over(&files, &journal_path, &plan, split)?;
                    (file, journal, len, State::default(), false)
                }
            };
        let shown = files.first().map(|f| f.0.clone()).unwrap_or_default();
        write_planned(&file, &plan).map_err(io_err("write", &shown))?;
        plan.release_metadata();
        let shared = Shared {
            syncs: GroupSync::default(),
            path: final_path.to_path_buf(),
            inner: Mutex::new(Inner {
                journal,
                journal_len,
                state,
                open: BTreeSet::new(),
            }),
        };
        Ok(BundleWriter {
            final_path: final_path.to_path_buf(),
            journal_path,
            files: files
                .into_iter()
                .map(|(partial, done, _)| (partial, done))
                .collect(),
            split,
            plan,
            file: Arc::new(file),
            shared: Arc::new(shared),
            checkpoint_interval: CHECKPOINT_INTERVAL,
            resumed,
            left_out: BTreeSet::new(),
        })
    }

    /// Marks layers as carried elsewhere (a delta bundle's base): the copy engine finds
    /// them present and never fetches them.
    pub fn leave_out(&mut self, digests: impl IntoIterator<Item = Digest>) {
        self.left_out.extend(digests);
    }

    /// Whether `digest` is a left-out layer.
    pub fn is_left_out(&self, digest: &Digest) -> bool {
        self.left_out.contains(digest)
    }

    /// Changes how many bytes a slot sink writes between progress checkpoints (for sinks
    /// created afterwards; at least 1).
    pub fn set_checkpoint_interval(&mut self, bytes: u64) {
        self.checkpoint_interval = bytes.max(1);
    }

    /// Whether an interrupted run of the same plan was picked up.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The final bundle path.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// A sink writing blob `digest` into its slot. It starts at the blob's last durable
    /// checkpoint ([`SlotSink::written`]); only one sink per blob may be open at a time.
    pub fn blob_sink(&self, digest: &Digest) -> Result<SlotSink, BundleError> {
        let Some(entry) = self.plan.blob(digest) else {
            return Err(BundleError::NotPlanned {
                path: self.final_path.clone(),
                digest: digest.clone(),
            });
        };
        let mut inner = self.shared.lock();
        if !inner.open.insert(digest.clone()) {
            return Err(BundleError::SlotBusy {
                path: self.final_path.clone(),
                digest: digest.clone(),
            });
        }
        let written = if inner.state.is_done(digest) {
            entry.size()
        } else {
            inner.state.progress_of(digest).unwrap_or(0)
        };
        Ok(SlotSink {
            shared: Arc::clone(&self.shared),
            file: Arc::clone(&self.file),
            digest: digest.clone(),
            offset: entry.data_offset(),
            size: entry.size(),
            written,
            checkpointed: written,
            interval: self.checkpoint_interval,
        })
    }

    /// Whether blob `digest` is completely written.
    pub fn is_done(&self, digest: &Digest) -> bool {
        self.shared.lock().state.is_done(digest)
    }

    /// The blobs not yet completely written, with their sizes, sorted by digest.
    pub fn missing(&self) -> Vec<(Digest, u64)> {
        let inner = self.shared.lock();
        self.plan
            .blobs()
            .filter_map(|e| match e.kind() {
                EntryKind::Blob(d) if !inner.state.is_done(d) => Some((d.clone(), e.size())),
                _ => None,
            })
            .collect()
    }

    /// Completes the bundle: with every blob done and no sink open, syncs the file, renames
    /// `.partial` to the final path (atomically) and removes the journal. Otherwise fails
    /// and leaves everything in place for a resume. A split bundle's parts are hashed and
    /// renamed, then `FINAL.parts` is written (last: it is what marks the parts complete),
    /// and parts of an earlier, longer split are removed; their list comes back.
    pub fn finish(self) -> Result<Option<PartsFile>, BundleError> {
        let missing = self.missing().len();
        if missing > 0 {
            return Err(BundleError::Incomplete {
                path: self.final_path,
                missing,
                total: self.plan.blob_count(),
            });
        }
        let open = self.shared.lock().open.len();
        if open > 0 {
            return Err(BundleError::StillWriting {
                path: self.final_path,
                open,
            });
        }
        tracing::debug!(
            "{} blobs made durable with {} fdatasync(s)",
            self.plan.blob_count(),
            self.shared.syncs.runs()
        );
        let shown = self.files.first().map(|f| f.0.clone()).unwrap_or_default();
        self.file.sync_all().map_err(io_err("flush", &shown))?;
        let parts = match self.split {
            None => None,
            Some(_) => Some(self.sum_parts()?),
        };
        for (partial, done) in &self.files {
            if partial.exists() || !done.exists() {
                fs::rename(partial, done).map_err(io_err("move into place", done))?;
            }
        }
        if let Some(parts) = &parts {
            let path = parts_path(&self.final_path);
            ferry_base::fsutil::write_atomic(&path, parts.render().as_bytes()).map_err(|e| {
                BundleError::Io {
                    action: "write",
                    path: path.clone(),
                    source: io::Error::other(e.to_string()),
                }
            })?;
            remove_stale_parts(&self.final_path, self.files.len());
        }
        if let Err(e) = sync_parent(&self.final_path) {
            tracing::warn!(path = %self.final_path.display(), "cannot sync the bundle's directory: {e}");
        }
        if let Err(e) = fs::remove_file(&self.journal_path) {
            tracing::warn!(path = %self.journal_path.display(), "cannot remove the journal: {e}");
        }
        Ok(parts)
    }

    /// The SHA-256 of every part and of the whole, in one sequential read.
    fn sum_parts(&self) -> Result<PartsFile, BundleError> {
        let mut whole = Hasher::sha256();
        let mut entries = Vec::new();
        let mut buf = vec![0u8; 1024 * 1024];
        let name = self
            .final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, part) in self.file.parts().iter().enumerate() {
            let mut h = Hasher::sha256();
            let mut at = part.start;
            let end = part.start + part.len;
            while at < end {
                let n = usize::try_from(end - at)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let chunk = &mut buf[..n];
                self.file
                    .read_exact_at(chunk, at)
                    .map_err(io_err("read back", &part.path))?;
                h.update(chunk);
                whole.update(chunk);
                at += n as u64;
            }
            entries.push(PartEntry {
                name: part_name(&name, i),
                size: part.len,
                sha256: h.finish(),
            });
        }
        Ok(PartsFile {
            bundle: name,
            size: self.file.len(),
            sha256: whole.finish(),
            parts: entries,
        })
    }
}

/// Removes `FINAL.NNN` files past the last part (left by an earlier export split finer), so
/// that `cat FINAL.0*` joins exactly this bundle.
fn remove_stale_parts(final_path: &Path, count: usize) {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for i in count..usize::try_from(MAX_PARTS).unwrap_or(999) {
        let stale = final_path.with_file_name(part_name(&name, i));
        if fs::remove_file(&stale).is_err() {
            break;
        }
        tracing::info!("removed {}, a part of an earlier split", stale.display());
    }
}

/// `(where it is written, its final name, its size)` of each file of the bundle.
fn planned_files(
    final_path: &Path,
    plan: &Plan,
    split: Option<u64>,
) -> Result<Vec<(PathBuf, PathBuf, u64)>, BundleError> {
    let Some(size) = split else {
        return Ok(vec![(
            with_suffix(final_path, ".partial"),
            final_path.to_path_buf(),
            plan.total_size(),
        )]);
    };
    let sizes = split_sizes(plan.total_size(), size);
    if sizes.len() as u64 > MAX_PARTS {
        return Err(BundleError::TooManyParts {
            path: final_path.to_path_buf(),
            total: plan.total_size(),
            split: size,
            parts: sizes.len(),
        });
    }
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(sizes
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            let done = final_path.with_file_name(part_name(&name, i));
            (with_suffix(&done, ".partial"), done, len)
        })
        .collect())
}

/// Writes one blob into its slot of a [`BundleWriter`]'s file.
pub struct SlotSink {
    shared: Arc<Shared>,
    file: Arc<Volume>,
    digest: Digest,
    offset: u64,
    size: u64,
    written: u64,
    checkpointed: u64,
    interval: u64,
}

impl SlotSink {
    /// The blob this sink writes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    fn checkpoint(&mut self) -> io::Result<()> {
        self.shared.syncs.sync(|| self.file.sync_data())?;
        self.shared
            .record(Record::Progress(self.digest.clone(), self.written))?;
        self.checkpointed = self.written;
        Ok(())
    }
}

impl SlotSink {
    /// How many bytes of the blob an earlier, interrupted run left durable in the slot.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// A reader over those bytes (they are re-hashed before the write resumes).
    pub fn prefix_reader(&self) -> BlobReader {
        BlobReader::new(Arc::clone(&self.file), self.offset, self.written)
    }

    /// Appends bytes checked so far; a durable checkpoint every [`CHECKPOINT_INTERVAL`].
    pub fn append(&mut self, chunk: &[u8]) -> io::Result<()> {
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        let Some(end) = self.written.checked_add(len).filter(|&e| e <= self.size) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "blob {} would grow past its planned {} bytes in bundle {}",
                    self.digest,
                    self.size,
                    self.shared.path.display()
                ),
            ));
        };
        self.file.write_all_at(chunk, self.offset + self.written)?;
        self.written = end;
        if end < self.size && end - self.checkpointed >= self.interval {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Drops everything written; the blob starts over.
    pub fn reset(&mut self) -> io::Result<()> {
        self.written = 0;
        self.checkpointed = 0;
        self.shared.forget(&self.digest)
    }

    /// All bytes arrived and matched the digest: make them durable and journal the slot done.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.written != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} has {} of its {} bytes; refusing to mark it complete in bundle {}",
                    self.digest,
                    self.written,
                    self.size,
                    self.shared.path.display()
                ),
            ));
        }
        if self.shared.lock().state.is_done(&self.digest) {
            return Ok(());
        }
        self.shared.syncs.sync(|| self.file.sync_data())?;
        self.shared.record(Record::Done(self.digest.clone()))
    }

    /// The bytes did not verify: forget them.
    pub fn abort(&mut self) {
        self.written = 0;
        self.checkpointed = 0;
        if let Err(e) = self.shared.forget(&self.digest) {
            tracing::warn!(digest = %self.digest, "cannot journal the discarded blob: {e}");
        }
    }
}

impl Drop for SlotSink {
    fn drop(&mut self) {
        self.shared.lock().open.remove(&self.digest);
    }
}

/// Reopens an interrupted run of the same plan (and split), if there is one. A part may
/// already carry its final name (a crash during [`BundleWriter::finish`]'s renames).
fn resume(
    files: &[(PathBuf, PathBuf, u64)],
    journal_path: &Path,
    plan: &Plan,
    split: Option<u64>,
) -> Result<Option<(Volume, File, u64, State)>, BundleError> {
    // Unbounded on purpose: the journal is ferry's own file beside the output it is writing,
    // one short line per blob of the plan, never something a peer sent.
    let text = match fs::read(journal_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", journal_path)(e)),
    };
    let Some((state, valid_len)) = journal::replay(&text, plan, split) else {
        tracing::info!(path = %journal_path.display(), "journal of another plan; starting over");
        return Ok(None);
    };
    let mut opened = Vec::new();
    for (partial, done, size) in files {
        let candidates = if split.is_some() {
            vec![partial, done]
        } else {
            vec![partial]
        };
        let mut found = None;
        for path in candidates {
            match OpenOptions::new().read(true).write(true).open(path) {
                Ok(file) => {
                    found = Some((path.clone(), file));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("open", path)(e)),
            }
        }
        let Some((path, file)) = found else {
            return Ok(None);
        };
        let len = file.metadata().map_err(io_err("inspect", &path))?.len();
        if len != *size {
            return Ok(None);
        }
        opened.push((path, file, len));
    }
    let journal = OpenOptions::new()
        .append(true)
        .open(journal_path)
        .map_err(io_err("open", journal_path))?;
    // Cut off a torn last line, so appended lines start on a line of their own.
    journal
        .set_len(valid_len)
        .map_err(io_err("repair", journal_path))?;
    Ok(Some((
        Volume::from_parts(opened),
        journal,
        valid_len,
        state,
    )))
}

/// Creates fresh files at their full (sparse) sizes and a fresh journal.
fn start_over(
    files: &[(PathBuf, PathBuf, u64)],
    journal_path: &Path,
    plan: &Plan,
    split: Option<u64>,
) -> Result<(Volume, File, u64), BundleError> {
    // The journal goes first: a journal must never describe a file it did not see written.
    match fs::remove_file(journal_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove", journal_path)(e)),
    }
    let mut opened = Vec::new();
    for (partial, _, size) in files {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(partial)
            .map_err(io_err("create", partial))?;
        file.set_len(*size).map_err(io_err("size", partial))?;
        opened.push((partial.clone(), file, *size));
    }
    let mut journal = OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal_path)
        .map_err(io_err("create", journal_path))?;
    let header = journal::header_line(plan, split);
    journal
        .write_all(header.as_bytes())
        .map_err(io_err("write", journal_path))?;
    Ok((
        Volume::from_parts(opened),
        journal,
        u64::try_from(header.len()).unwrap_or(0),
    ))
}

/// Writes every header block and the metadata files at their planned offsets.
fn write_planned(file: &Volume, plan: &Plan) -> io::Result<()> {
    for entry in plan.entries() {
        file.write_all_at(&entry.header_bytes(), entry.header_offset())?;
        if let EntryKind::Metadata(contents) = entry.kind() {
            file.write_all_at(contents, entry.data_offset())?;
        }
    }
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl Fn(io::Error) -> BundleError + 'a {
    move |source| BundleError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
