//! Blob reads: a HEAD, a first-byte probe, and [`Registry::blob_stream`], a stream of a
//! blob's bytes from any offset that resumes by itself: a body that breaks off is asked for
//! again with `Range` from the last byte it gave, after a backoff during which no transfer
//! permit is held. The stream does not verify (its consumer hashes what it gets); it only
//! refuses more bytes than the blob's size.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{CONTENT_RANGE, HeaderValue, RANGE};
use reqwest::{Method, StatusCode};

use super::auth::Scope;
use super::error::RegistryError;
use super::request::{Req, flatten};
use super::{Registry, TransferPermit};
use crate::{ByteStream, StoreError};
use ferry_oci::digest::{Digest, VerifyError};

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

/// A body being read, with the permits it was sent under.
struct Body {
    chunks: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    _permit: TransferPermit,
}

/// The state of one [`Registry::blob_stream`].
struct Reading {
    registry: Arc<Registry>,
    repository: String,
    digest: Digest,
    size: u64,
    /// The next byte to hand out.
    offset: u64,
    /// Bytes at the start of the current body to drop (a registry that ignored `Range`).
    skip: u64,
    body: Option<Body>,
    attempt: u32,
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    done: bool,
}

impl Reading {
    fn what(&self) -> String {
        format!("blob {} of {}", self.digest, self.repository)
    }

    /// Opens a body at `self.offset`.
    async fn open(&mut self) -> Result<(), RegistryError> {
        let r = self.registry.clone();
        let scopes = [Scope::pull(&self.repository)];
        let mut req = Req::new(
            Method::GET,
            r.blob_url(&self.repository, &self.digest)?,
            &scopes,
        );
        if self.offset > 0 {
            let v = HeaderValue::from_str(&format!("bytes={}-", self.offset)).map_err(|e| {
                RegistryError::Protocol {
                    registry: r.name.clone(),
                    what: self.what(),
                    detail: e.to_string(),
                }
            })?;
            req = req.header(RANGE, v);
        }
        let (resp, permit) = r.send(&req).await?;
        self.skip = 0;
        match resp.status() {
            StatusCode::OK => {
                if self.offset > 0 {
                    tracing::debug!(
                        "{}: the server ignored Range; skipping {} bytes",
                        self.what(),
                        self.offset
                    );
                    self.skip = self.offset;
                }
            }
            StatusCode::PARTIAL_CONTENT => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(content_range_start);
                if start != Some(self.offset) {
                    return Err(RegistryError::Protocol {
                        registry: r.name.clone(),
                        what: self.what(),
                        detail: format!(
                            "asked for bytes from {}, got a range starting at {start:?}",
                            self.offset
                        ),
                    });
                }
            }
            _ => {
                return Err(r
                    .unexpected(resp, &Method::GET, &self.repository, "pull")
                    .await);
            }
        }
        self.body = Some(Body {
            chunks: resp.bytes_stream().boxed(),
            _permit: permit,
        });
        Ok(())
    }

    /// The next chunk: `Ok(None)` at the end of the blob.
    async fn next(&mut self) -> Result<Option<Bytes>, RegistryError> {
        loop {
            if self.offset == self.size && self.skip == 0 {
                return Ok(None);
            }
            if self.body.is_none() {
                self.open().await?;
            }
            let next = match self.body.as_mut() {
                Some(b) => b.chunks.next().await,
                None => continue,
            };
            let broke = match next {
                Some(Ok(mut chunk)) => {
                    if self.skip > 0 {
                        let drop = usize::try_from(self.skip)
                            .unwrap_or(usize::MAX)
                            .min(chunk.len());
                        let _ = chunk.split_to(drop);
                        self.skip -= drop as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    let n = chunk.len() as u64;
                    if self.offset + n > self.size {
                        return Err(RegistryError::Integrity {
                            registry: self.registry.name.clone(),
                            what: self.what(),
                            source: VerifyError::TooLarge {
                                expected: self.size,
                            },
                        });
                    }
                    self.offset += n;
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => flatten(&e.without_url()),
                None => format!(
                    "the body ended after {} of {} bytes",
                    self.offset, self.size
                ),
            };
            // The body broke off: drop it (and its permits), wait, resume where it stopped.
            self.body = None;
            self.attempt += 1;
            if self.attempt >= self.registry.opts.attempts {
                return Err(RegistryError::Transfer {
                    registry: self.registry.name.clone(),
                    what: self.what(),
                    attempts: self.attempt,
                    detail: broke,
                });
            }
            let wait = self.delays.next().unwrap_or(self.registry.opts.backoff);
            tracing::info!(
                "{}: transfer broke off at byte {} ({broke}); resuming in {:.1} s",
                self.what(),
                self.offset,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
        }
    }
}

impl Registry {
    pub(crate) fn blob_url(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<url::Url, RegistryError> {
        self.base
            .join(&format!("v2/{repository}/blobs/{digest}"))
            .map_err(|e| RegistryError::Protocol {
                registry: self.name.clone(),
                what: format!("blob {digest}"),
                detail: e.to_string(),
            })
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

    /// The bytes of blob `digest` (`size` bytes) of `repository` from `offset` on, as a
    /// stream that resumes after a break (up to `--retries` attempts). Nothing is sent before
    /// it is first polled. Errors carry a [`StoreError::Registry`].
    pub fn blob_stream(
        self: &Arc<Self>,
        repository: &str,
        digest: &Digest,
        size: u64,
        offset: u64,
    ) -> ByteStream {
        let state = Reading {
            registry: self.clone(),
            repository: repository.to_string(),
            digest: digest.clone(),
            size,
            offset: offset.min(size),
            skip: 0,
            body: None,
            attempt: 0,
            delays: Box::new(self.backoff()),
            done: false,
        };
        Box::pin(
            futures_util::stream::unfold(state, |mut st| async move {
                if st.done {
                    return None;
                }
                match st.next().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), st)),
                    Ok(None) => None,
                    Err(e) => {
                        st.done = true;
                        st.body = None;
                        Some((Err(StoreError::Registry(e).into_io()), st))
                    }
                }
            })
            .fuse(),
        )
    }
}

#[cfg(test)]
mod tests;
