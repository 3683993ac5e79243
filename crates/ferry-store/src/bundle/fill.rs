//! The bundle as a [`Destination`]: the target of an export. A blob goes straight into its
//! planned slot: what an interrupted run already wrote there is re-hashed and kept, the rest
//! is read from the source from that offset and streams through a channel bounded in bytes to
//! a blocking writer that hashes it, gathers small chunks into large writes (large chunks are
//! written as they come, uncopied) and commits the slot only when size and digest match.
//! Memory stays flat whatever the size of a layer, and whatever size of chunk the connection
//! hands over: an HTTP/1.1 connection's are up to its read buffer (hundreds of KiB), an HTTP/2
//! stream's a frame (16 KiB).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::reader::BlobReader;
use super::writer::{BundleWriter, SlotSink};
use crate::{BlobRead, Destination, FetchedManifest, ObjectKind, StoreError};
use ferry_oci::digest::{Digest, Verifier, VerifyError};
use ferry_oci::reference::Reference;

/// Bytes gathered before one write to the slot.
const WRITE_SIZE: usize = 512 * 1024;
/// A chunk at least this big is written as it is, not copied into the gathering buffer.
const DIRECT_WRITE: usize = 64 * 1024;
/// Bytes in flight between a download and its writer. With 16 chunks instead, an HTTP/1.1
/// export peaked at 105 MiB RSS (8 transfers × 16 chunks of up to ~400 KiB).
const CHANNEL_BYTES: usize = 1024 * 1024;
/// Chunks in flight (the byte bound is the one that matters).
const CHANNEL_CHUNKS: usize = 64;

enum Cmd {
    /// A chunk, with its share of the channel's byte budget (released once written).
    Data(Bytes, OwnedSemaphorePermit),
    Finish,
}

enum Failed {
    Io(std::io::Error),
    Verify(VerifyError),
    /// The source failed before sending everything: not the writer's fault.
    Stopped,
}

/// Re-hashes the part of the slot an earlier run wrote; starts over when it does not read
/// back. Returns the verifier that has seen it and its length.
fn prefix(sink: &mut SlotSink, digest: &Digest, size: u64) -> std::io::Result<(Verifier, u64)> {
    use std::io::Read as _;
    let have = sink.written().min(size);
    if have > 0 {
        let reader: BlobReader = sink.prefix_reader();
        if let Ok(v) = Verifier::with_prefix(digest.clone(), Some(size), reader.take(have))
            && v.bytes_seen() == have
        {
            return Ok((v, have));
        }
    }
    sink.reset()?;
    Ok((Verifier::new(digest.clone(), Some(size)), 0))
}

/// The blocking side: hashes, gathers and writes every chunk; commits on `Finish` when the
/// digest matches. When the source stops early, what arrived (checked so far) stays for the
/// next run to resume from.
fn write(
    mut sink: SlotSink,
    mut verifier: Verifier,
    mut rx: mpsc::Receiver<Cmd>,
    left: u64,
) -> Result<(), Failed> {
    // No bigger than what is left of the blob: most blobs of a large run are small.
    let gather = usize::try_from(left).map_or(WRITE_SIZE, |n| n.min(WRITE_SIZE));
    let mut pending: Vec<u8> = Vec::with_capacity(gather);
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Data(b, _budget) => {
                if let Err(e) = verifier.update(&b) {
                    sink.abort();
                    return Err(Failed::Verify(e));
                }
                if pending.is_empty() && b.len() >= DIRECT_WRITE {
                    sink.append(&b).map_err(Failed::Io)?;
                    continue;
                }
                pending.extend_from_slice(&b);
                if pending.len() >= gather {
                    sink.append(&pending).map_err(Failed::Io)?;
                    pending.clear();
                }
            }
            Cmd::Finish => {
                if let Err(e) = verifier.finish() {
                    sink.abort();
                    return Err(Failed::Verify(e));
                }
                if !pending.is_empty() {
                    sink.append(&pending).map_err(Failed::Io)?;
                }
                return sink.commit().map_err(Failed::Io);
            }
        }
    }
    if !pending.is_empty() {
        let _ = sink.append(&pending);
    }
    Err(Failed::Stopped)
}

impl BundleWriter {
    fn write_error(&self, digest: &Digest, source: std::io::Error) -> StoreError {
        StoreError::Io {
            what: format!(
                "cannot write blob {digest} into bundle {}",
                self.path().display()
            ),
            source,
        }
    }

    /// Fills blob `digest`'s slot from `from`, resuming after what an earlier run wrote.
    async fn fill(
        &self,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        let mut sink = self.blob_sink(digest)?;
        let d = digest.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let r = prefix(&mut sink, &d, size);
            (sink, r)
        })
        .await
        .map_err(|e| self.write_error(digest, std::io::Error::other(e)))?;
        let (sink, started) = joined;
        let (verifier, have) = started.map_err(|e| self.write_error(digest, e))?;
        if have > 0 {
            tracing::debug!("blob {digest}: resuming at byte {have}");
            progress(have);
        }
        let (tx, rx) = mpsc::channel::<Cmd>(CHANNEL_CHUNKS);
        let budget = Arc::new(Semaphore::new(CHANNEL_BYTES));
        let left = size.saturating_sub(have);
        let writer = tokio::task::spawn_blocking(move || write(sink, verifier, rx, left));
        let mut stream = from.open(have);
        let mut failed = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(b) => {
                    let n = b.len() as u64;
                    // A chunk bigger than the whole budget takes all of it.
                    let share = u32::try_from(b.len().min(CHANNEL_BYTES)).unwrap_or(u32::MAX);
                    let Ok(permit) = Arc::clone(&budget).acquire_many_owned(share).await else {
                        break;
                    };
                    if tx.send(Cmd::Data(b, permit)).await.is_err() {
                        break;
                    }
                    progress(n);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(stream);
        let finished = failed.is_none() && tx.send(Cmd::Finish).await.is_ok();
        drop(tx);
        let written = writer
            .await
            .map_err(|e| self.write_error(digest, std::io::Error::other(e)))?;
        let corrupt = |source| StoreError::Corrupt {
            what: "blob",
            digest: digest.clone(),
            origin: from.origin(),
            source,
        };
        match (failed, written) {
            // The writer's own failure (a full disk, corrupt bytes) explains a stopped
            // transfer better than the transfer's "the writer went away".
            (_, Err(Failed::Io(e))) => Err(self.write_error(digest, e)),
            (_, Err(Failed::Verify(e))) => Err(corrupt(e)),
            (Some(e), _) => Err(StoreError::from_stream(e, || {
                format!("reading blob {digest} from {}", from.origin())
            })),
            (None, Ok(())) if finished => Ok(()),
            (None, _) => Err(self.write_error(
                digest,
                std::io::Error::other("the writer stopped before the blob was complete"),
            )),
        }
    }
}

impl Destination for BundleWriter {
    /// A bundle has one namespace: no mounts, no upload sessions.
    type Session = ();

    fn origin(&self, _image: &Reference) -> String {
        format!("bundle {}", self.path().display())
    }

    fn scope(&self, _image: &Reference) -> String {
        String::new()
    }

    async fn tag_digest(&self, _image: &Reference) -> Result<Option<Digest>, StoreError> {
        // Names are in the planned index.json, written before any blob.
        Ok(None)
    }

    async fn exists(
        &self,
        _image: &Reference,
        digest: &Digest,
        _size: u64,
        _kind: ObjectKind,
    ) -> Result<bool, StoreError> {
        Ok(self.is_done(digest) || self.is_left_out(digest))
    }

    async fn push_blob(
        &self,
        _image: &Reference,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        _session: Option<()>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), StoreError> {
        self.fill(digest, size, from, progress).await
    }

    async fn push_manifest(
        &self,
        _image: &Reference,
        manifest: &FetchedManifest,
        _tag: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.is_done(&manifest.digest) {
            return Ok(());
        }
        let mut sink = self.blob_sink(&manifest.digest)?;
        let bytes = manifest.bytes.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            sink.reset()?;
            sink.append(&bytes)?;
            sink.commit()
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|e| self.write_error(&manifest.digest, e))
    }
}
