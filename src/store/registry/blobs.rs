//! Blob downloads that stream: chunks go from the HTTP body through a small bounded channel to
//! a blocking writer that hashes and writes them, so memory stays flat whatever the layer size.
//! A body that breaks off is resumed with `Range` from the last byte written; a 200 instead
//! of a 206 starts over. Nothing is committed unless size and digest match.

use std::io::Read;

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{CONTENT_RANGE, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use super::Registry;
use super::auth::Scope;
use super::error::RegistryError;
use super::request::{Req, flatten};
use crate::oci::digest::{Digest, Verifier, VerifyError};
use crate::store::BlobSink;

/// Bytes gathered before one write to the sink.
const WRITE_SIZE: usize = 512 * 1024;
/// Network chunks in flight between a download and its writer (a few hundred KiB).
const CHANNEL_CHUNKS: usize = 16;

enum Cmd {
    Data(Bytes),
    Reset,
    Finish,
}

enum WriterError {
    Io(std::io::Error),
    Verify(VerifyError),
    /// The download ended (failed) before sending everything: not the writer's fault.
    Stopped,
}

/// Parses `Content-Range: bytes START-END/TOTAL`, returning START.
fn content_range_start(v: &HeaderValue) -> Option<u64> {
    let s = v.to_str().ok()?.trim();
    let rest = s.strip_prefix("bytes ")?;
    let (range, _) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    start.parse().ok()
}

/// Parses `Content-Range: bytes START-END/TOTAL`, returning TOTAL (when not `*`).
fn content_range_total(v: &HeaderValue) -> Option<u64> {
    let (_, total) = v.to_str().ok()?.trim().rsplit_once('/')?;
    total.trim().parse().ok()
}

fn run_writer<S: BlobSink>(
    mut sink: S,
    digest: Digest,
    size: Option<u64>,
    mut rx: mpsc::Receiver<Cmd>,
    ready: tokio::sync::oneshot::Sender<u64>,
) -> Result<S, (S, WriterError)> {
    let io = |sink: S, e: std::io::Error| Err((sink, WriterError::Io(e)));
    let mut have = match sink.existing_len() {
        Ok(n) => n,
        Err(e) => return io(sink, e),
    };
    if size.is_some_and(|s| have > s) {
        if let Err(e) = sink.reset() {
            return io(sink, e);
        }
        have = 0;
    }
    let prefix: Result<Verifier, std::io::Error> = match sink.prefix_reader() {
        Ok(r) => Verifier::with_prefix(digest.clone(), size, r.take(have)),
        Err(e) => Err(e),
    };
    let mut verifier = match prefix {
        Ok(v) if v.bytes_seen() == have => v,
        // The earlier bytes are shorter than recorded or unreadable: start over.
        _ => {
            if let Err(e) = sink.reset() {
                return io(sink, e);
            }
            have = 0;
            Verifier::new(digest.clone(), size)
        }
    };
    let _ = ready.send(have);
    // Network chunks are small (a TLS record, ~16 KiB); writing each one is a syscall and a
    // partial page. Gather them into large writes.
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_SIZE);
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            Cmd::Data(b) => {
                if let Err(e) = verifier.update(&b) {
                    sink.abort();
                    return Err((sink, WriterError::Verify(e)));
                }
                pending.extend_from_slice(&b);
                if pending.len() >= WRITE_SIZE {
                    if let Err(e) = sink.append(&pending) {
                        return io(sink, e);
                    }
                    pending.clear();
                }
            }
            Cmd::Reset => {
                pending.clear();
                if let Err(e) = sink.reset() {
                    return io(sink, e);
                }
                verifier = Verifier::new(digest.clone(), size);
            }
            Cmd::Finish => {
                if let Err(e) = verifier.finish() {
                    sink.abort();
                    return Err((sink, WriterError::Verify(e)));
                }
                if !pending.is_empty()
                    && let Err(e) = sink.append(&pending)
                {
                    return io(sink, e);
                }
                return match sink.commit() {
                    Ok(()) => Ok(sink),
                    Err(e) => io(sink, e),
                };
            }
        }
    }
    // The download failed: keep what arrived (verified so far) for the next attempt's resume.
    if !pending.is_empty() {
        let _ = sink.append(&pending);
    }
    Err((sink, WriterError::Stopped))
}

impl Registry {
    fn blob_url(&self, repository: &str, digest: &Digest) -> Result<url::Url, RegistryError> {
        self.base
            .join(&format!("v2/{repository}/blobs/{digest}"))
            .map_err(|e| RegistryError::Protocol {
                registry: self.name.clone(),
                what: format!("blob {digest}"),
                detail: e.to_string(),
            })
    }

    /// HEAD a blob: its size when present, `None` when absent.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let req = Req {
            method: Method::HEAD,
            url: self.blob_url(repository, digest)?,
            scopes: &scopes,
            headers: vec![],
            body: None,
            retry: true,
        };
        let (resp, _permit) = self.send(&req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(resp.content_length().unwrap_or(0))),
            _ => Err(self
                .unexpected(resp, &Method::HEAD, repository, "pull")
                .await),
        }
    }

    /// Proves a blob can be served, at about the cost of a HEAD: a `GET` of its first byte
    /// (`Range: bytes=0-0`), which the registry answers from storage. A HEAD is not enough:
    /// distribution answers it from its blob-descriptor cache after the data is gone, and
    /// every pull of the image then fails. Returns the blob's size, `None` when it is absent
    /// or its data cannot be read.
    pub async fn probe_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<u64>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let mut req = Req::new(Method::GET, self.blob_url(repository, digest)?, &scopes);
        if size > 0 {
            req = req.header(RANGE, HeaderValue::from_static("bytes=0-0"));
        }
        let (resp, _permit) = self.send(&req).await?;
        let total = match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::PARTIAL_CONTENT => resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(content_range_total)
                .unwrap_or(size),
            // A registry that ignores Range sends the whole blob: one chunk is enough.
            StatusCode::OK => resp.content_length().unwrap_or(size),
            _ => {
                return Err(self
                    .unexpected(resp, &Method::GET, repository, "pull")
                    .await);
            }
        };
        let mut body = resp.bytes_stream();
        match body.next().await {
            Some(Ok(b)) if !b.is_empty() || size == 0 => Ok(Some(total)),
            None if size == 0 => Ok(Some(total)),
            Some(Err(e)) => {
                tracing::debug!(
                    "blob {digest} of {repository}: its first byte cannot be read: {}",
                    flatten(&e.without_url())
                );
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Downloads blob `digest` (of `size` bytes when known) of `repository` into `sink`,
    /// verifying while streaming and resuming after breaks. `progress` is called with the
    /// number of new bytes as they arrive. Returns the committed sink.
    pub async fn download_blob<S: BlobSink>(
        &self,
        repository: &str,
        digest: &Digest,
        size: Option<u64>,
        sink: S,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<S, RegistryError> {
        let what = format!("blob {digest} of {repository}");
        let (tx, rx) = mpsc::channel::<Cmd>(CHANNEL_CHUNKS);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let writer_digest = digest.clone();
        let writer = tokio::task::spawn_blocking(move || {
            run_writer(sink, writer_digest, size, rx, ready_tx)
        });
        let result = self
            .stream_into(repository, digest, size, &what, &tx, ready_rx, progress)
            .await;
        let send_result = match &result {
            Ok(()) => tx.send(Cmd::Finish).await.is_ok(),
            Err(_) => false,
        };
        drop(tx);
        let written = writer.await.map_err(|e| RegistryError::Io {
            what: what.clone(),
            source: std::io::Error::other(e),
        })?;
        match (result, written) {
            // The writer's own failure (a full disk, corrupt bytes) explains a stopped
            // download better than the download's "the local writer failed".
            (Err(_), Err((_, WriterError::Io(source)))) => Err(RegistryError::Io { what, source }),
            (Err(_), Err((_, WriterError::Verify(source)))) => Err(RegistryError::Integrity {
                registry: self.name.clone(),
                what,
                source,
            }),
            (Err(e), _) => Err(e),
            (Ok(()), Ok(sink)) if send_result => Ok(sink),
            (Ok(()), Ok(_)) => Err(RegistryError::Io {
                what,
                source: std::io::Error::other("the writer stopped early"),
            }),
            (Ok(()), Err((_, WriterError::Verify(source)))) => Err(RegistryError::Integrity {
                registry: self.name.clone(),
                what,
                source,
            }),
            (Ok(()), Err((_, WriterError::Io(source)))) => Err(RegistryError::Io { what, source }),
            (Ok(()), Err((_, WriterError::Stopped))) => Err(RegistryError::Io {
                what,
                source: std::io::Error::other("the writer stopped before the blob was complete"),
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn stream_into(
        &self,
        repository: &str,
        digest: &Digest,
        size: Option<u64>,
        what: &str,
        tx: &mpsc::Sender<Cmd>,
        ready: tokio::sync::oneshot::Receiver<u64>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let writer_gone = || RegistryError::Io {
            what: what.to_string(),
            source: std::io::Error::other("the local writer failed"),
        };
        let mut offset = ready.await.map_err(|_| writer_gone())?;
        if offset > 0 {
            progress(offset);
            tracing::debug!("{what}: resuming at byte {offset}");
        }
        if size.is_some_and(|s| offset == s) {
            return Ok(());
        }
        let scopes = [Scope::pull(repository)];
        let url = self.blob_url(repository, digest)?;
        let mut delays = self.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers = vec![];
            if offset > 0 {
                let v = HeaderValue::from_str(&format!("bytes={offset}-")).map_err(|e| {
                    RegistryError::Protocol {
                        registry: self.name.clone(),
                        what: what.into(),
                        detail: e.to_string(),
                    }
                })?;
                headers.push((RANGE, v));
            }
            let req = Req {
                method: Method::GET,
                url: url.clone(),
                scopes: &scopes,
                headers,
                body: None,
                retry: true,
            };
            let (resp, _permit) = self.send(&req).await?;
            match resp.status() {
                StatusCode::OK => {
                    if offset > 0 {
                        tracing::debug!("{what}: the server ignored Range; starting over");
                        tx.send(Cmd::Reset).await.map_err(|_| writer_gone())?;
                        offset = 0;
                    }
                }
                StatusCode::PARTIAL_CONTENT => {
                    let start = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(content_range_start);
                    if start != Some(offset) {
                        return Err(RegistryError::Protocol {
                            registry: self.name.clone(),
                            what: what.into(),
                            detail: format!(
                                "asked for bytes from {offset}, got a range starting at {start:?}"
                            ),
                        });
                    }
                }
                StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                    tx.send(Cmd::Reset).await.map_err(|_| writer_gone())?;
                    offset = 0;
                    continue;
                }
                _ => {
                    return Err(self
                        .unexpected(resp, &Method::GET, repository, "pull")
                        .await);
                }
            }
            let mut body = resp.bytes_stream();
            let mut broke = None;
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(b) => {
                        let n = b.len() as u64;
                        if size.is_some_and(|s| offset + n > s) {
                            return Err(RegistryError::Integrity {
                                registry: self.name.clone(),
                                what: what.into(),
                                source: VerifyError::TooLarge {
                                    expected: size.unwrap_or(0),
                                },
                            });
                        }
                        tx.send(Cmd::Data(b)).await.map_err(|_| writer_gone())?;
                        offset += n;
                        progress(n);
                    }
                    Err(e) => {
                        broke = Some(flatten(&e.without_url()));
                        break;
                    }
                }
            }
            let short = size.is_some_and(|s| offset < s);
            let detail = match (broke, short) {
                (None, false) => return Ok(()),
                (Some(d), _) => d,
                (None, true) => format!(
                    "the body ended after {offset} of {} bytes",
                    size.unwrap_or(0)
                ),
            };
            if attempt >= self.opts.attempts {
                return Err(RegistryError::Transfer {
                    registry: self.name.clone(),
                    what: what.into(),
                    attempts: attempt,
                    detail,
                });
            }
            let wait = delays.next().unwrap_or(self.opts.backoff);
            tracing::info!(
                "{what}: transfer broke off at byte {offset} ({detail}); resuming in {:.1} s",
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            content_range_start(&HeaderValue::from_static("bytes 100-199/200")),
            Some(100)
        );
        assert_eq!(
            content_range_start(&HeaderValue::from_static("bytes 0-0/*")),
            Some(0)
        );
        assert_eq!(
            content_range_start(&HeaderValue::from_static("100-199")),
            None
        );
        assert_eq!(
            content_range_total(&HeaderValue::from_static("bytes 0-0/5143")),
            Some(5143)
        );
        assert_eq!(
            content_range_total(&HeaderValue::from_static("bytes 0-0/*")),
            None
        );
    }
}
