//! The layer workers of one scan ([`Pool`]): a fixed number of threads, started once and
//! scoped to the scan (so every one is joined whatever ends it), each taking one layer at
//! a time from the reader — its chunks through a bounded channel — to hash it, gzip it
//! when it is an uncompressed tar, and spool it. However many entries the archive has, the
//! threads are these few; a finished layer's result is collected as soon as it is sent.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::Scope;

use flate2::write::MultiGzDecoder;
use tempfile::TempPath;

use super::gz::Gz;
use super::{Blob, CHUNK, Options, Where};
use crate::archive::spool;
use ferry_oci::digest::Hasher;

/// What a layer's bytes are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerKind {
    Tar,
    Gzip,
}

/// What a worker gets: the layer's chunks, in order.
pub(super) type Chunks = mpsc::Receiver<Vec<u8>>;

/// One layer to handle.
pub(super) struct Job {
    pub entry: String,
    pub kind: LayerKind,
    /// Its size in the archive.
    pub size: u64,
    /// Where the layer starts in a plain archive (in-place reading), if it may stay there.
    pub in_place: Option<u64>,
}

/// The workers, and what they send back.
pub(super) struct Pool {
    jobs: mpsc::SyncSender<(Job, Chunks)>,
    results: mpsc::Receiver<io::Result<Blob>>,
}

impl Pool {
    /// Starts `opts.parallel` workers in `scope`.
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        opts: &'scope Options,
        used: &'scope Arc<AtomicU64>,
    ) -> io::Result<Pool> {
        // No queue: a job is handed over only when a worker is free to take it.
        let (jobs, queue) = mpsc::sync_channel::<(Job, Chunks)>(0);
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel();
        for i in 0..opts.parallel.max(1) {
            let (queue, done) = (queue.clone(), done.clone());
            std::thread::Builder::new()
                .name(format!("archive-layer-{i}"))
                .spawn_scoped(scope, move || {
                    // Made once, reset for every layer.
                    let mut gz = opts.compress.map(|level| Gz::new(level, CHUNK));
                    loop {
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok((job, chunks)) = next else { return };
                        if done
                            .send(work(job, chunks, opts, used, gz.as_mut()))
                            .is_err()
                        {
                            return;
                        }
                    }
                })?;
        }
        Ok(Pool { jobs, results })
    }

    /// Hands `job` to the next free worker (waiting for one) and returns where its chunks
    /// go; `None` when the workers are gone.
    pub fn submit(&self, job: Job) -> Option<mpsc::SyncSender<Vec<u8>>> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(super::CHANNEL);
        self.jobs.send((job, rx)).ok()?;
        Some(tx)
    }

    /// The results sent so far.
    pub fn finished(&self) -> impl Iterator<Item = io::Result<Blob>> + '_ {
        self.results.try_iter()
    }

    /// Stops taking jobs and returns every result still to come.
    pub fn finish(self) -> impl Iterator<Item = io::Result<Blob>> {
        drop(self.jobs);
        self.results.into_iter()
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

/// A spool file for a layer of `size` bytes.
fn spool_file(size: u64, opts: &Options, used: &Arc<AtomicU64>) -> io::Result<(Spool, TempPath)> {
    // The path is a guard: a failed layer's file is removed as soon as it is dropped.
    let (file, path) = spool::create_file(&opts.spool_dir)?;
    // A small layer gets a small buffer (gzip adds a few bytes at most).
    let buffer = usize::try_from(size.saturating_add(1024)).map_or(CHUNK, |s| s.min(CHUNK));
    let spool = Spool {
        file: BufWriter::with_capacity(buffer, file),
        used: used.clone(),
        limit: opts.spool_limit,
    };
    Ok((spool, path))
}

/// Where a layer kept as it is goes.
enum Keep {
    InPlace(u64),
    Copy(Spool, TempPath),
}

/// Handles one layer: hashes, compresses or copies, spools.
fn work(
    job: Job,
    chunks: Chunks,
    opts: &Options,
    used: &Arc<AtomicU64>,
    gz: Option<&mut Gz>,
) -> io::Result<Blob> {
    let mut raw = Hasher::sha256();
    match (job.kind, gz) {
        (LayerKind::Tar, Some(gz)) => {
            let (file, path) = spool_file(job.size, opts, used)?;
            let mut out = Hashing {
                inner: file,
                hasher: Hasher::sha256(),
                len: 0,
            };
            gz.member(&mut out, chunks, |c| raw.update(c))?;
            out.flush()?;
            let diff_id = raw.finish();
            Ok(Blob {
                entry: job.entry,
                digest: out.hasher.finish(),
                size: out.len,
                gzip: true,
                diff_id: diff_id.clone(),
                raw: diff_id,
                at: Where::Spooled(path),
            })
        }
        (kind, _) => {
            // Kept as it is: in place, or copied to the spool; a gzip layer is also
            // decompressed (to nowhere) for its diff_id.
            let mut keep = match job.in_place {
                Some(at) => Keep::InPlace(at),
                None => {
                    let (f, p) = spool_file(job.size, opts, used)?;
                    Keep::Copy(f, p)
                }
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
                if let Keep::Copy(f, _) = &mut keep {
                    f.write_all(&c)?;
                }
                if let Some(u) = &mut unzip {
                    u.write_all(&c)?;
                }
            }
            let at = match keep {
                Keep::InPlace(at) => Where::InPlace(at),
                Keep::Copy(mut f, p) => {
                    f.flush()?;
                    Where::Spooled(p)
                }
            };
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
                at,
            })
        }
    }
}
