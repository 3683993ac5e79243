//! One pass over an image archive, plain or gzip-compressed ([`scan`]). A gzip stream cannot
//! be read twice and `docker save` writes its index (`manifest.json`) last, so every layer is
//! handled as it streams by: hashed (its `diff_id`, checked later against the image config),
//! gzip-compressed when it is an uncompressed tar (flate2 on zlib-rs), and kept in a spool
//! directory (bounded) until the images are known. Several layers are compressed at once on
//! a fixed pool of worker threads ([`pool`]) while the reader goes on. From a plain tar, a
//! layer that needs no compression is not copied: it is read in place later.
//!
//! The archive is untrusted: the tar stream is read raw ([`stream`]), extension headers
//! capped; names and link targets must stay inside it; metadata files, and what is kept
//! per entry, are bounded; links are followed a bounded number of times.

use ferry_oci::compression::Compression;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::error::ArchiveError;
use ferry_oci::digest::Digest;

mod gz;
mod pool;
pub mod stream;

use pool::{Job, LayerKind, Pool};
use stream::{StreamError, TarStream};

/// Metadata files (manifest.json, configs, indexes) larger than this are refused.
pub const MAX_METADATA: u64 = 16 * 1024 * 1024;
/// All metadata files together may not exceed this, nor what is kept per entry: its name,
/// its link target, and [`ENTRY_COST`].
pub const MAX_METADATA_TOTAL: u64 = 256 * 1024 * 1024;
/// What one kept entry (a layer, a link, a file) is counted as, besides its name.
pub const ENTRY_COST: u64 = 1024;
/// Bytes handed from the reader to a layer's worker at a time.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight per layer.
const CHANNEL: usize = 4;
/// Links followed to find an entry.
const MAX_LINKS: usize = 16;
/// Characters of an entry name shown in a message.
const SHOWN: usize = 200;

/// Where a layer's pushable bytes are.
#[derive(Debug)]
pub enum Where {
    /// In the (plain) archive file, from this offset.
    InPlace(u64),
    /// In this spool file, removed when this is dropped.
    Spooled(tempfile::TempPath),
}

/// A layer (or any large file) of the archive, ready to push.
#[derive(Debug)]
pub struct Blob {
    /// Its entry name.
    pub entry: String,
    /// Digest of the bytes pushed.
    pub digest: Digest,
    /// Their size.
    pub size: u64,
    /// Whether the bytes pushed are gzip-compressed.
    pub gzip: bool,
    /// SHA-256 of the uncompressed tar: what the config's `rootfs.diff_ids` must say.
    pub diff_id: Digest,
    /// SHA-256 of the bytes as the archive stores them.
    pub raw: Digest,
    /// Where the bytes pushed are.
    pub at: Where,
}

/// What one pass found.
#[derive(Debug)]
pub struct Scanned {
    /// The archive.
    pub path: PathBuf,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Metadata files by entry name.
    pub files: BTreeMap<String, Bytes>,
    /// Links: entry name → the entry it points at.
    pub links: BTreeMap<String, String>,
    /// Layers by entry name.
    pub blobs: BTreeMap<String, Arc<Blob>>,
    /// Bytes written to the spool.
    pub spooled: u64,
}

impl Scanned {
    /// The entry `name` names, links followed.
    pub fn resolve(&self, name: &str) -> Result<String, ArchiveError> {
        let mut at = normalize(name)
            .ok_or_else(|| self.unsafe_entry(name, "is not a relative path inside the archive"))?;
        for _ in 0..MAX_LINKS {
            match self.links.get(&at) {
                Some(next) => at = next.clone(),
                None => return Ok(at),
            }
        }
        Err(self.unsafe_entry(name, "is a chain of links that does not end"))
    }

    /// A metadata file, links followed.
    pub fn file(&self, name: &str) -> Result<Option<&Bytes>, ArchiveError> {
        Ok(self.files.get(&self.resolve(name)?))
    }

    /// A layer, links followed.
    pub fn blob(&self, name: &str) -> Result<Option<&Arc<Blob>>, ArchiveError> {
        Ok(self.blobs.get(&self.resolve(name)?))
    }

    fn unsafe_entry(&self, entry: &str, why: &str) -> ArchiveError {
        ArchiveError::Unsafe {
            path: self.path.clone(),
            entry: entry.to_string(),
            why: why.to_string(),
        }
    }
}

/// How layers are handled.
#[derive(Debug, Clone)]
pub struct Options {
    /// gzip level for uncompressed layers; `None` keeps them uncompressed.
    pub compress: Option<u32>,
    /// A directory of the caller's for spooled layers.
    pub spool_dir: PathBuf,
    /// Most bytes written there.
    pub spool_limit: u64,
    /// Layers handled at once.
    pub parallel: usize,
    /// Bytes of the archive file read so far (for a progress bar).
    pub progress: Arc<AtomicU64>,
}

/// Counts the bytes read from the archive file.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `a/./b`, `./a` → `a/b`, `a`; `None` for absolute names or names that climb out.
pub fn normalize(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\0') || name.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Whether an entry is a metadata file (kept in memory), from its name and first bytes.
fn is_metadata(name: &str, size: u64, head: &[u8]) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    let named = matches!(
        base,
        "manifest.json" | "repositories" | "index.json" | "oci-layout" | "json" | "VERSION"
    ) || base.ends_with(".json");
    size <= MAX_METADATA && (named || head.first() == Some(&b'{'))
}

/// An entry name for messages: lossy UTF-8, cut short.
fn shown(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], raw.len()),
        None => text.into_owned(),
    }
}

/// Reads the whole archive once. Runs on the calling thread (a blocking one) plus
/// `opts.parallel` workers, all joined before it returns.
pub fn scan(path: &Path, opts: &Options) -> Result<Scanned, ArchiveError> {
    let io_err = |action: &'static str| {
        move |source| ArchiveError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = File::open(path).map_err(io_err("open"))?;
    let mut magic = [0u8; 2];
    let got = file.read(&mut magic).map_err(io_err("read"))?;
    file.rewind().map_err(io_err("read"))?;
    let gzip = Compression::sniff(&magic[..got]) == Some(Compression::Gzip);
    let counted = Counting {
        inner: BufReader::with_capacity(1024 * 1024, file),
        count: opts.progress.clone(),
    };
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(counted))
    } else {
        Box::new(counted)
    };
    let mut scanned = Scanned {
        path: path.to_path_buf(),
        gzip,
        files: BTreeMap::new(),
        links: BTreeMap::new(),
        blobs: BTreeMap::new(),
        spooled: 0,
    };
    let used = Arc::new(AtomicU64::new(0));
    std::thread::scope(|scope| {
        let pool =
            Pool::start(scope, opts, &used).map_err(io_err("start the layer workers for"))?;
        let mut failed = None;
        let outcome = Reader {
            path,
            gzip,
            opts,
            pool: &pool,
            scanned: &mut scanned,
            failed: &mut failed,
        }
        .run(TarStream::new(reader));
        // Every result is collected; the scope joins every worker. A worker's error is the
        // cause of a stopped scan, so it wins.
        for r in pool.finish() {
            collect(&mut scanned.blobs, &mut failed, r);
        }
        scanned.spooled = used.load(Ordering::Relaxed);
        match (failed, outcome) {
            (Some(e), _) => Err(worker_error(path, opts, e)),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        }
    })?;
    Ok(scanned)
}

/// Keeps a worker's layer, or its error (the first).
fn collect(
    blobs: &mut BTreeMap<String, Arc<Blob>>,
    failed: &mut Option<io::Error>,
    r: io::Result<Blob>,
) {
    match r {
        Ok(blob) => {
            blobs.insert(blob.entry.clone(), Arc::new(blob));
        }
        Err(e) => {
            failed.get_or_insert(e);
        }
    }
}

/// The reading side of one scan.
struct Reader<'a> {
    path: &'a Path,
    gzip: bool,
    opts: &'a Options,
    pool: &'a Pool,
    scanned: &'a mut Scanned,
    failed: &'a mut Option<io::Error>,
}

impl Reader<'_> {
    fn stream_err(&self, e: io::Error) -> ArchiveError {
        if self.gzip && is_gzip_error(&e) {
            ArchiveError::TruncatedGzip {
                path: self.path.to_path_buf(),
                detail: e.to_string(),
            }
        } else {
            ArchiveError::BadTar {
                path: self.path.to_path_buf(),
                detail: e.to_string(),
            }
        }
    }

    fn entry_err(&self, e: StreamError) -> ArchiveError {
        match e {
            StreamError::Io(e) => self.stream_err(e),
            StreamError::Malformed(detail) => ArchiveError::BadTar {
                path: self.path.to_path_buf(),
                detail,
            },
            StreamError::Extension { entry, what, size } => ArchiveError::ExtensionTooLarge {
                path: self.path.to_path_buf(),
                entry: shown(&entry),
                what,
                size,
                limit: stream::MAX_EXTENSION,
            },
        }
    }

    /// A worker stopped: the scan stops too (the worker's error is reported).
    fn stopped(&self) -> ArchiveError {
        self.stream_err(io::Error::other("a layer worker stopped"))
    }

    fn run<R: Read>(self, mut tar: TarStream<R>) -> Result<(), ArchiveError> {
        let mut kept = 0u64;
        while let Some(entry) = tar.next_entry().map_err(|e| self.entry_err(e))? {
            for r in self.pool.finished() {
                collect(&mut self.scanned.blobs, self.failed, r);
            }
            if self.failed.is_some() {
                return Err(self.stopped());
            }
            let shown = shown(&entry.name);
            let Some(name) = normalize(&String::from_utf8_lossy(&entry.name)) else {
                if shown.trim_matches(|c| c == '.' || c == '/').is_empty() {
                    continue; // "./" itself
                }
                return Err(self
                    .scanned
                    .unsafe_entry(&shown, "is not a relative path inside the archive"));
            };
            let kind = entry.kind;
            if kind.is_dir() {
                continue;
            }
            if !(kind.is_symlink()
                || kind.is_hard_link()
                || kind.is_file()
                || kind == tar::EntryType::Continuous)
            {
                tracing::debug!("{shown}: not a file, skipped");
                continue;
            }
            // Everything kept counts: names, link targets, metadata, and a fixed cost.
            let is_link = kind.is_symlink() || kind.is_hard_link();
            kept += ENTRY_COST + name.len() as u64 + entry.link.len() as u64;
            let head_len = if is_link { 0 } else { entry.size.min(512) };
            if kept + head_len > MAX_METADATA_TOTAL {
                return Err(ArchiveError::TooManyEntries {
                    path: self.path.to_path_buf(),
                    entry: shown,
                    limit: MAX_METADATA_TOTAL,
                });
            }
            if is_link {
                let target = String::from_utf8_lossy(&entry.link).into_owned();
                // A symbolic link is relative to its directory, a hard link to the root.
                let joined = match (kind.is_symlink(), name.rsplit_once('/')) {
                    (true, Some((dir, _))) => format!("{dir}/{target}"),
                    _ => target.clone(),
                };
                let Some(to) = normalize(&joined) else {
                    return Err(self.scanned.unsafe_entry(
                        &shown,
                        &format!(
                            "links to {:?}, outside the archive",
                            self::shown(&entry.link)
                        ),
                    ));
                };
                self.scanned.links.insert(name, to);
                continue;
            }
            let size = entry.size;
            // Bounded: at most 512 bytes.
            let mut head = vec![0u8; usize::try_from(head_len).unwrap_or(512)];
            tar.read_exact(&mut head).map_err(|e| self.stream_err(e))?;
            if is_metadata(&name, size, &head) {
                kept += size;
                if kept > MAX_METADATA_TOTAL {
                    return Err(ArchiveError::TooManyEntries {
                        path: self.path.to_path_buf(),
                        entry: shown,
                        limit: MAX_METADATA_TOTAL,
                    });
                }
                // Bounded: is_metadata checked size <= MAX_METADATA, and the stream reads no
                // further than the entry's end.
                let mut all = head;
                tar.read_to_end(&mut all).map_err(|e| self.stream_err(e))?;
                if (all.len() as u64) < size {
                    return Err(self.cut_short(&shown, all.len() as u64, size));
                }
                self.scanned.files.insert(name, Bytes::from(all));
                continue;
            }
            let layer = match Compression::sniff(&head) {
                Some(Compression::Gzip) => LayerKind::Gzip,
                Some(Compression::Zstd) => {
                    return Err(ArchiveError::NotAnArchive {
                        path: self.path.to_path_buf(),
                        what: format!(
                            "{shown} is zstd-compressed; ferry checks every layer against its diff_id and reads gzip or uncompressed layers only"
                        ),
                    });
                }
                _ => LayerKind::Tar,
            };
            let in_place = (!self.gzip
                && (layer == LayerKind::Gzip || self.opts.compress.is_none()))
            .then_some(entry.offset);
            let job = Job {
                entry: name,
                kind: layer,
                size,
                in_place,
            };
            // Waits for a free worker, then streams the layer's chunks to it.
            let tx = self.pool.submit(job).ok_or_else(|| self.stopped())?;
            let mut chunk = head;
            let mut sent = 0u64;
            loop {
                // No bigger than what is left of the entry: a small one allocates little.
                let want = usize::try_from((size - sent).min(CHUNK as u64)).unwrap_or(CHUNK);
                while chunk.len() < want {
                    let filled = chunk.len();
                    chunk.resize(want, 0);
                    let n = read_some(&mut tar, &mut chunk[filled..])
                        .map_err(|e| self.stream_err(e))?;
                    chunk.truncate(filled + n);
                    if n == 0 {
                        break;
                    }
                }
                let got = chunk.len();
                sent += got as u64;
                if got > 0 && tx.send(std::mem::take(&mut chunk)).is_err() {
                    // The worker failed: its error is collected and wins.
                    return Err(self.stopped());
                }
                if sent >= size {
                    break;
                }
                if got < want {
                    return Err(self.cut_short(&shown, sent, size));
                }
            }
        }
        // The rest of the stream: a gzip trailer (its CRC covers every byte).
        let mut rest = tar.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| self.stream_err(e))?;
        Ok(())
    }

    fn cut_short(&self, shown: &str, got: u64, size: u64) -> ArchiveError {
        self.stream_err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("entry {shown} is cut short ({got} of {size} bytes)"),
        ))
    }
}

fn worker_error(path: &Path, opts: &Options, e: io::Error) -> ArchiveError {
    match e.kind() {
        io::ErrorKind::StorageFull => ArchiveError::SpoolFull {
            path: path.to_path_buf(),
            dir: opts.spool_dir.clone(),
            limit: opts.spool_limit,
        },
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ArchiveError::BadTar {
            path: path.to_path_buf(),
            detail: format!("a gzip-compressed layer is corrupt: {e}"),
        },
        _ => ArchiveError::Io {
            action: "spool a layer of",
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// Reads what is there (at least one byte unless at the end), retrying interruptions.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Whether an error of the stream is the gzip decoder's (truncation or corruption).
fn is_gzip_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
    )
}

#[cfg(test)]
mod tests;
