//! One pass over an image archive, plain or gzip-compressed ([`scan`]). A gzip stream cannot
//! be read twice and `docker save` writes its index (`manifest.json`) last, so every layer is
//! handled as it streams by: hashed (its `diff_id`, checked later against the image config),
//! gzip-compressed when it is an uncompressed tar (flate2 on zlib-rs), and kept in a spool
//! directory (bounded) until the images are known. Several layers are compressed at once on
//! worker threads while the reader goes on. From a plain tar, a layer that needs no
//! compression is not copied: it is read in place later.
//!
//! The archive is untrusted: names and link targets must stay inside it, metadata files are
//! bounded, and links are followed a bounded number of times.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, MultiGzDecoder};

use super::error::ArchiveError;
use crate::oci::digest::{Digest, Hasher};

/// Metadata files (manifest.json, configs, indexes) larger than this are refused.
pub const MAX_METADATA: u64 = 16 * 1024 * 1024;
/// All metadata files together may not exceed this.
pub const MAX_METADATA_TOTAL: u64 = 256 * 1024 * 1024;
/// Bytes handed from the reader to a layer's worker at a time.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight per layer.
const CHANNEL: usize = 4;
/// Links followed to find an entry.
const MAX_LINKS: usize = 16;

/// Where a layer's pushable bytes are.
#[derive(Debug, Clone)]
pub enum Where {
    /// In the (plain) archive file, from this offset.
    InPlace(u64),
    /// In this spool file.
    Spooled(PathBuf),
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

/// Hashes and counts what goes through.
struct Hashing<W> {
    inner: W,
    hasher: Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where nothing is kept: only hashed.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A spool file that counts against the limit.
struct Spool {
    file: BufWriter<File>,
    used: Arc<AtomicU64>,
    limit: u64,
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let total = self.used.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
        if total > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "spool limit reached",
            ));
        }
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
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

/// What a layer's bytes are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LayerKind {
    Tar,
    Gzip,
}

/// What a worker gets: the layer's chunks, in order.
type Chunks = mpsc::Receiver<Vec<u8>>;

struct Job {
    entry: String,
    kind: LayerKind,
    /// Where the layer starts in a plain archive (in-place reading), if it may stay there.
    in_place: Option<u64>,
    spool: PathBuf,
}

/// Handles one layer: hashes, compresses or copies, spools.
fn work(job: Job, chunks: Chunks, opts: &Options, used: &Arc<AtomicU64>) -> io::Result<Blob> {
    let spool = || -> io::Result<Spool> {
        Ok(Spool {
            file: BufWriter::with_capacity(CHUNK, File::create(&job.spool)?),
            used: used.clone(),
            limit: opts.spool_limit,
        })
    };
    let mut raw = Hasher::sha256();
    match (job.kind, opts.compress) {
        (LayerKind::Tar, Some(level)) => {
            let out = Hashing {
                inner: spool()?,
                hasher: Hasher::sha256(),
                len: 0,
            };
            let mut gz = GzEncoder::new(out, Compression::new(level.min(9)));
            for c in chunks {
                raw.update(&c);
                gz.write_all(&c)?;
            }
            let mut out = gz.finish()?;
            out.flush()?;
            let diff_id = raw.finish();
            Ok(Blob {
                entry: job.entry,
                digest: out.hasher.finish(),
                size: out.len,
                gzip: true,
                diff_id: diff_id.clone(),
                raw: diff_id,
                at: Where::Spooled(job.spool),
            })
        }
        (kind, _) => {
            // Kept as it is: in place, or copied to the spool; a gzip layer is also
            // decompressed (to nowhere) for its diff_id.
            let mut copy = match job.in_place {
                Some(_) => None,
                None => Some(spool()?),
            };
            let mut unzip = (kind == LayerKind::Gzip).then(|| {
                MultiGzDecoder::new(Hashing {
                    inner: Sink,
                    hasher: Hasher::sha256(),
                    len: 0,
                })
            });
            let mut size = 0u64;
            for c in chunks {
                raw.update(&c);
                size += c.len() as u64;
                if let Some(f) = &mut copy {
                    f.write_all(&c)?;
                }
                if let Some(u) = &mut unzip {
                    u.write_all(&c)?;
                }
            }
            if let Some(f) = &mut copy {
                f.flush()?;
            }
            let raw = raw.finish();
            let diff_id = match unzip {
                Some(u) => u.finish()?.hasher.finish(),
                None => raw.clone(),
            };
            Ok(Blob {
                entry: job.entry,
                digest: raw.clone(),
                size,
                gzip: kind == LayerKind::Gzip,
                diff_id,
                raw,
                at: match job.in_place {
                    Some(at) => Where::InPlace(at),
                    None => Where::Spooled(job.spool),
                },
            })
        }
    }
}

/// Reads the whole archive once. Runs on the calling thread (a blocking one) plus up to
/// `opts.parallel` workers.
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
    let gzip = got == 2 && magic == [0x1f, 0x8b];
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
    let stream_err = |e: io::Error| -> ArchiveError {
        if gzip && is_gzip_error(&e) {
            ArchiveError::TruncatedGzip {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        } else {
            ArchiveError::BadTar {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }
        }
    };
    let used = Arc::new(AtomicU64::new(0));
    let (token_tx, token_rx) = mpsc::sync_channel::<()>(opts.parallel.max(1));
    for _ in 0..opts.parallel.max(1) {
        let _ = token_tx.send(());
    }
    let mut workers: Vec<std::thread::JoinHandle<io::Result<Blob>>> = Vec::new();
    let mut metadata_total = 0u64;
    let mut archive = tar::Archive::new(reader);
    let outcome = (|| -> Result<(), ArchiveError> {
        let entries = archive.entries().map_err(stream_err)?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.map_err(stream_err)?;
            let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = normalize(&shown) else {
                if shown.trim_matches(|c| c == '.' || c == '/').is_empty() {
                    continue; // "./" itself
                }
                return Err(
                    scanned.unsafe_entry(&shown, "is not a relative path inside the archive")
                );
            };
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                // A symbolic link is relative to its directory, a hard link to the root.
                let joined = match (kind.is_symlink(), name.rsplit_once('/')) {
                    (true, Some((dir, _))) => format!("{dir}/{target}"),
                    _ => target.clone(),
                };
                let Some(to) = normalize(&joined) else {
                    return Err(scanned.unsafe_entry(
                        &shown,
                        &format!("links to {target:?}, outside the archive"),
                    ));
                };
                scanned.links.insert(name, to);
                continue;
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                tracing::debug!("{shown}: not a file, skipped");
                continue;
            }
            let size = entry.size();
            let offset = entry.raw_file_position();
            let mut head = vec![0u8; usize::try_from(size.min(512)).unwrap_or(512)];
            entry.read_exact(&mut head).map_err(stream_err)?;
            if is_metadata(&name, size, &head) {
                metadata_total += size;
                if metadata_total > MAX_METADATA_TOTAL {
                    return Err(ArchiveError::TooLarge {
                        path: path.to_path_buf(),
                        entry: shown,
                        size: metadata_total,
                        limit: MAX_METADATA_TOTAL,
                    });
                }
                let mut all = head;
                entry.read_to_end(&mut all).map_err(stream_err)?;
                scanned.files.insert(name, Bytes::from(all));
                continue;
            }
            let layer = match head.as_slice() {
                [0x1f, 0x8b, ..] => LayerKind::Gzip,
                [0x28, 0xb5, 0x2f, 0xfd, ..] => {
                    return Err(ArchiveError::NotAnArchive {
                        path: path.to_path_buf(),
                        what: format!(
                            "{shown} is zstd-compressed; ferry checks every layer against its diff_id and reads gzip or uncompressed layers only"
                        ),
                    });
                }
                _ => LayerKind::Tar,
            };
            // The worker takes a turn, then the layer's chunks.
            token_rx
                .recv()
                .map_err(|_| stream_err(io::Error::other("workers stopped")))?;
            let in_place =
                (!gzip && (layer == LayerKind::Gzip || opts.compress.is_none())).then_some(offset);
            let job = Job {
                entry: name.clone(),
                kind: layer,
                in_place,
                spool: opts.spool_dir.join(format!("{n}.blob")),
            };
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHANNEL);
            let (o, u, t) = (opts.clone(), used.clone(), token_tx.clone());
            workers.push(std::thread::spawn(move || {
                let r = work(job, rx, &o, &u);
                let _ = t.send(());
                r
            }));
            let mut chunk = head;
            let mut sent = 0u64;
            loop {
                while chunk.len() < CHUNK {
                    let filled = chunk.len();
                    chunk.resize(CHUNK, 0);
                    let n = read_some(&mut entry, &mut chunk[filled..]).map_err(stream_err)?;
                    chunk.truncate(filled + n);
                    if n == 0 {
                        break;
                    }
                }
                let done = chunk.len() < CHUNK;
                sent += chunk.len() as u64;
                if !chunk.is_empty() && tx.send(std::mem::take(&mut chunk)).is_err() {
                    // The worker failed: its error is collected below and wins.
                    return Err(stream_err(io::Error::other("a layer worker stopped")));
                }
                if done {
                    if sent < size {
                        return Err(stream_err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("entry {shown} is cut short ({sent} of {size} bytes)"),
                        )));
                    }
                    break;
                }
            }
        }
        // The rest of the stream: a gzip trailer (its CRC covers every byte).
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(stream_err)?;
        Ok(())
    })();
    // Every worker is joined, also after a failure, so none outlives the scan. A worker's
    // error is the cause of a stopped scan, so it wins.
    let mut worker_err = None;
    for w in workers {
        match w.join() {
            Ok(Ok(blob)) => {
                scanned.blobs.insert(blob.entry.clone(), Arc::new(blob));
            }
            Ok(Err(e)) => {
                worker_err.get_or_insert_with(|| worker_error(path, opts, e));
            }
            Err(_) => {
                worker_err.get_or_insert_with(|| ArchiveError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source: io::Error::other("a layer worker stopped"),
                });
            }
        }
    }
    let first_err = worker_err.or(outcome.err());
    scanned.spooled = used.load(Ordering::Relaxed);
    match first_err {
        Some(e) => Err(e),
        None => Ok(scanned),
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
    ) || e.to_string().contains("corrupt deflate stream")
        || e.to_string().contains("unexpected EOF")
        || e.to_string().contains("failed to fill whole buffer")
}

#[cfg(test)]
mod tests;
