//! Pushing to a registry: blob existence checks, cross-repository mounts, monolithic
//! streaming uploads (the default: one PUT per blob, no per-chunk round trips), chunked
//! uploads for registries with body limits (resumed from the upload status after a break),
//! and manifest PUTs whose `Docker-Content-Digest` must equal ours. Abandoned upload
//! sessions are cancelled.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, RANGE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::Registry;
use super::auth::Scope;
use super::error::{RegistryError, redact};
use super::request::Req;
use crate::stream::{ByteStream, take, verified};
use crate::{BlobRead, StoreError};
use ferry_oci::digest::{Digest, Verifier, VerifyError};

/// Where the typed error of a failed request body lands (reqwest keeps only its text).
type Slot = Arc<Mutex<Option<StoreError>>>;

/// `s` with its failure kept in `slot`, typed, as it goes into a request body.
fn watched(s: ByteStream, slot: &Slot) -> ByteStream {
    let slot = slot.clone();
    s.map(move |item| {
        item.map_err(|e| {
            let store = StoreError::from_stream(e, || "reading the blob to push".into());
            let text = store.to_string();
            if let Ok(mut g) = slot.lock() {
                g.get_or_insert(store);
            }
            std::io::Error::other(text)
        })
    })
    .boxed()
}

/// The source's failure, if the body failed: it explains a broken request better.
fn source_failure(slot: &Slot) -> Option<StoreError> {
    slot.lock().ok().and_then(|mut g| g.take())
}

/// What a mount attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// The registry linked the blob from the other repository: nothing to upload.
    Mounted,
    /// Not mounted; the registry opened an upload session at this location instead.
    Session(Url),
}

fn header_value(s: &str) -> Result<HeaderValue, RegistryError> {
    HeaderValue::from_str(s).map_err(|e| RegistryError::Protocol {
        registry: String::new(),
        what: "a request header".into(),
        detail: e.to_string(),
    })
}

/// Appends `digest=<d>` to an upload location, keeping its existing query.
fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut u = location.clone();
    u.query_pairs_mut().append_pair("digest", digest.as_str());
    u
}

/// Parses an upload status `Range: 0-<end>` (no `bytes=`), returning the next offset.
///
/// CNCF distribution answers `0-0` both for an empty upload and for one holding one byte;
/// reading it as "nothing yet" is the safe side: resending byte 0 of a one-byte upload gets a
/// 416 and a fresh session, while skipping a byte would corrupt the blob.
fn next_offset(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(RANGE)?.to_str().ok()?;
    parse_range_end(v)
}

fn parse_range_end(v: &str) -> Option<u64> {
    let (start, end) = v.trim().trim_start_matches("bytes=").split_once('-')?;
    let (start, end) = (
        start.trim().parse::<u64>().ok()?,
        end.trim().parse::<u64>().ok()?,
    );
    if start != 0 {
        return None;
    }
    Some(if end == 0 { 0 } else { end + 1 })
}

impl Registry {
    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.base.join(path).map_err(|e| RegistryError::Protocol {
            registry: self.name.clone(),
            what: path.into(),
            detail: e.to_string(),
        })
    }

    /// The `Location` of an upload answer, resolved against the request URL.
    fn location(&self, resp: &Response) -> Result<Url, RegistryError> {
        let raw = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.name.clone(),
                what: format!("upload to {}", redact(resp.url())),
                detail: "no Location header".into(),
            })?;
        resp.url().join(raw).map_err(|e| RegistryError::Protocol {
            registry: self.name.clone(),
            what: "upload Location".into(),
            detail: e.to_string(),
        })
    }

    /// HEAD a blob with push access to `repository` (one token serves the whole push).
    pub async fn blob_exists_for_push(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let scopes = [Scope::push(repository)];
        let req = Req::new(Method::HEAD, self.blob_url(repository, digest)?, &scopes);
        let (resp, _permit) = self.send(&req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(self
                .unexpected(resp, &Method::HEAD, repository, "push to")
                .await),
        }
    }

    /// HEAD a manifest with push access: its digest when the tag or digest exists.
    pub async fn manifest_digest_for_push(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let scopes = [Scope::push(repository)];
        let req = Req::new(
            Method::HEAD,
            self.manifest_url(repository, reference)?,
            &scopes,
        )
        .header(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(ferry_oci::media_types::MANIFEST_ACCEPT),
        );
        let (resp, _permit) = self.send(&req).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|d| Digest::parse(d.trim()).ok())),
            _ => Err(self
                .unexpected(resp, &Method::HEAD, repository, "push to")
                .await),
        }
    }

    /// Tries to mount `digest` from `from` into `repository` (token covering both).
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let scopes = [Scope::push(repository), Scope::pull(from)];
        let mut url = self.url(&format!("v2/{repository}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let req = Req::new(Method::POST, url, &scopes)
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let (resp, _permit) = self.send(&req).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Session(self.location(&resp)?)),
            _ => Err(self
                .unexpected(resp, &Method::POST, repository, "push to")
                .await),
        }
    }

    async fn start_upload(&self, repository: &str, scopes: &[Scope]) -> Result<Url, RegistryError> {
        let req = Req::new(
            Method::POST,
            self.url(&format!("v2/{repository}/blobs/uploads/"))?,
            scopes,
        )
        .header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let (resp, _permit) = self.send(&req).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .unexpected(resp, &Method::POST, repository, "push to")
                .await);
        }
        self.location(&resp)
    }

    /// Cancels an upload session; failures only matter to the registry's garbage collector.
    async fn cancel_upload(&self, location: &Url, scopes: &[Scope]) {
        let mut req = Req::new(Method::DELETE, location.clone(), scopes);
        req.retry = false;
        if let Err(e) = self.send(&req).await.map(|_| ()) {
            tracing::debug!("cancelling upload {} failed: {e}", redact(location));
        }
    }

    /// Uploads blob `digest` of `size` bytes read from `from`. Monolithic (one streaming
    /// PUT) unless `chunk_size` is given. `session` is an upload already opened (by a mount
    /// answered 202). A broken monolithic upload restarts with a new session; a broken
    /// chunked one resumes from the registry's upload status. Either way the whole blob is
    /// hashed on its way out and only a match is committed.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        from: &dyn BlobRead,
        chunk_size: Option<u64>,
        session: Option<Url>,
    ) -> Result<(), StoreError> {
        let scopes = [Scope::push(repository)];
        let mut session = session;
        let mut delays = self.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let location = match session.take() {
                Some(l) => l,
                None => self.start_upload(repository, &scopes).await?,
            };
            let up = Upload {
                repository,
                digest,
                size,
                from,
                location: &location,
                scopes: &scopes,
            };
            let result = match chunk_size {
                Some(chunk) if chunk < size => self.upload_chunked(&up, chunk).await,
                _ => self.upload_monolithic(&up).await,
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Failure::Fatal(e)) => {
                    self.cancel_upload(&location, &scopes).await;
                    return Err(e);
                }
                Err(Failure::Retry(detail, retry_after)) => {
                    self.cancel_upload(&location, &scopes).await;
                    if let Some(ra) = retry_after
                        && ra > self.opts.max_retry_after
                    {
                        return Err(RegistryError::RateLimited {
                            registry: self.name.clone(),
                            retry_after: Some(ra.as_secs()),
                            errors: Vec::new(),
                        }
                        .into());
                    }
                    if attempt >= self.opts.attempts {
                        return Err(RegistryError::Transfer {
                            registry: self.name.clone(),
                            what: format!("blob {digest} to {repository}"),
                            attempts: attempt,
                            detail,
                        }
                        .into());
                    }
                    // Honour the registry's Retry-After when it asks for longer than our backoff.
                    let backoff = delays.next().unwrap_or(self.opts.backoff);
                    let wait = retry_after.map_or(backoff, |ra| ra.max(backoff));
                    tracing::info!(
                        "upload of {digest} to {repository} broke off ({detail}); starting again in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn finish_put(
        &self,
        resp: Response,
        repository: &str,
        digest: &Digest,
    ) -> Result<(), Failure> {
        let status = resp.status();
        if status == StatusCode::CREATED
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::OK
        {
            if let Some(h) = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                && h.trim() != digest.as_str()
            {
                return Err(Failure::Fatal(
                    RegistryError::DigestHeader {
                        registry: self.name.clone(),
                        what: format!("blob pushed to {repository}"),
                        header: h.trim().to_string(),
                        actual: digest.clone(),
                    }
                    .into(),
                ));
            }
            return Ok(());
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            let after = super::request::parse_retry_after(resp.headers());
            return Err(Failure::Retry(
                format!("the registry answered {status}"),
                after,
            ));
        }
        Err(Failure::Fatal(
            self.unexpected(resp, &Method::PUT, repository, "push to")
                .await
                .into(),
        ))
    }

    async fn upload_monolithic(&self, up: &Upload<'_>) -> Result<(), Failure> {
        let slot: Slot = Arc::default();
        // Hashed while it streams; a blob that does not match never completes the PUT.
        let body = || {
            let whole = verified(
                up.from.open(0),
                up.digest.clone(),
                up.size,
                &up.from.origin(),
            );
            reqwest::Body::wrap_stream(watched(whole, &slot))
        };
        let mut req = Req::new(Method::PUT, with_digest(up.location, up.digest), up.scopes)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .header(
                CONTENT_LENGTH,
                header_value(&up.size.to_string()).map_err(fatal)?,
            );
        req.body = Some(&body);
        req.retry = false;
        let answer = self.send(&req).await;
        if let Some(e) = source_failure(&slot) {
            return Err(Failure::Fatal(e));
        }
        match answer {
            Ok((resp, _permit)) => self.finish_put(resp, up.repository, up.digest).await,
            Err(e) if e.is_retryable() => Err(Failure::Retry(e.to_string(), e.retry_after())),
            Err(e) => Err(fatal(e)),
        }
    }

    /// Feeds `len` bytes of the blob from `offset` into `verifier` (positioned reads): the
    /// part of the hash a resumed chunked upload has not seen go by.
    async fn hash_range(
        &self,
        up: &Upload<'_>,
        verifier: &mut Verifier,
        offset: u64,
        len: u64,
    ) -> Result<(), Failure> {
        let mut s = take(up.from.open(offset), len);
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(|e| {
                Failure::Fatal(StoreError::from_stream(e, || {
                    format!("reading blob {} from {}", up.digest, up.from.origin())
                }))
            })?;
            verifier.update(&chunk).map_err(|e| corrupt(up, e))?;
        }
        Ok(())
    }

    /// PATCHes bytes [`start`, `end`) of the blob to `location`, hashing them on the way into
    /// a copy of `hash`. `Some((location, registry's next offset, hash after the chunk))` when
    /// the registry took it; `None` when the chunk broke off and the upload status should say
    /// where to go on.
    async fn send_chunk(
        &self,
        up: &Upload<'_>,
        location: &Url,
        start: u64,
        end: u64,
        hash: &Verifier,
    ) -> Result<Option<(Url, Option<u64>, Option<Verifier>)>, Failure> {
        let tentative = Arc::new(Mutex::new(Some(hash.clone())));
        let slot: Slot = Arc::default();
        let origin = up.from.origin();
        let body = || {
            let t = tentative.clone();
            if let Ok(mut g) = t.lock() {
                *g = Some(hash.clone());
            }
            let origin = origin.clone();
            let s = take(up.from.open(start), end - start).map(move |item| {
                let b = item?;
                let mut g = t
                    .lock()
                    .map_err(|_| std::io::Error::other("hash poisoned"))?;
                if let Some(v) = g.as_mut()
                    && let Err(e) = v.update(&b)
                {
                    let expected = v.expected().clone();
                    *g = None;
                    return Err(StoreError::Corrupt {
                        what: "blob",
                        digest: expected,
                        origin: origin.clone(),
                        source: e,
                    }
                    .into_io());
                }
                Ok(b)
            });
            reqwest::Body::wrap_stream(watched(s.boxed(), &slot))
        };
        let mut req = Req::new(Method::PATCH, location.clone(), up.scopes)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )
            .header(
                CONTENT_LENGTH,
                header_value(&(end - start).to_string()).map_err(fatal)?,
            )
            .header(
                reqwest::header::CONTENT_RANGE,
                header_value(&format!("{start}-{}", end - 1)).map_err(fatal)?,
            );
        req.body = Some(&body);
        req.retry = false;
        let answer = self.send(&req).await;
        if let Some(e) = source_failure(&slot) {
            return Err(Failure::Fatal(e));
        }
        match answer {
            Ok((resp, _permit))
                if resp.status() == StatusCode::ACCEPTED
                    || resp.status() == StatusCode::CREATED
                    || resp.status() == StatusCode::NO_CONTENT =>
            {
                let next = self.location(&resp).unwrap_or_else(|_| location.clone());
                let sent = tentative.lock().ok().and_then(|mut g| g.take());
                Ok(Some((next, next_offset(&resp), sent)))
            }
            Ok((resp, _permit))
                if resp.status().is_client_error()
                    && resp.status() != StatusCode::RANGE_NOT_SATISFIABLE =>
            {
                Err(fatal(
                    self.unexpected(resp, &Method::PATCH, up.repository, "push to")
                        .await,
                ))
            }
            Ok(_) => Ok(None),
            Err(e) if e.is_retryable() => Ok(None),
            Err(e) => Err(fatal(e)),
        }
    }

    /// A chunked upload: one PATCH per chunk, each read from the source at its offset, every
    /// byte hashed in order so the whole blob is checked against its digest before the final
    /// PUT commits it. After a failed chunk it resumes from the registry's upload status.
    async fn upload_chunked(&self, up: &Upload<'_>, chunk: u64) -> Result<(), Failure> {
        let (size, digest, scopes) = (up.size, up.digest, up.scopes);
        let mut location = up.location.clone();
        let mut offset = 0u64;
        let mut stalls = 0;
        // The hash of bytes [0, hashed) as they went out.
        let mut hash = Verifier::new(digest.clone(), Some(size));
        let mut hashed = 0u64;
        while offset < size {
            if offset != hashed {
                // The registry holds another prefix than we hashed: re-hash up to it.
                if offset < hashed {
                    hash = Verifier::new(digest.clone(), Some(size));
                    hashed = 0;
                }
                self.hash_range(up, &mut hash, hashed, offset - hashed)
                    .await?;
                hashed = offset;
            }
            let end = offset.saturating_add(chunk).min(size);
            let ok = match self.send_chunk(up, &location, offset, end, &hash).await? {
                Some((next_location, next_offset, sent)) => {
                    location = next_location;
                    let start = offset;
                    offset = next_offset.filter(|o| *o > start).unwrap_or(end);
                    if let Some(v) = sent.filter(|v| v.bytes_seen() == end) {
                        hash = v;
                        hashed = end;
                    }
                    true
                }
                None => false,
            };
            if !ok {
                // Ask the registry how much it has, and continue from there.
                stalls += 1;
                if stalls > self.opts.attempts {
                    return Err(Failure::Retry("chunked upload keeps failing".into(), None));
                }
                let (status, _permit) = self
                    .send(&Req::new(Method::GET, location.clone(), scopes))
                    .await
                    .map_err(|e| Failure::Retry(e.to_string(), None))?;
                if status.status() != StatusCode::NO_CONTENT {
                    return Err(Failure::Retry(
                        format!("upload status answered {}", status.status()),
                        None,
                    ));
                }
                location = self.location(&status).unwrap_or(location);
                offset = next_offset(&status).unwrap_or(0).min(size);
                tracing::info!("chunked upload of {digest}: resuming at byte {offset}");
            }
        }
        if hashed != size {
            self.hash_range(up, &mut hash, hashed, size - hashed)
                .await?;
        }
        // Every byte the registry holds was hashed on its way out: commit only a match.
        let checked = hash.clone();
        checked.finish().map_err(|e| corrupt(up, e))?;
        let mut req = Req::new(Method::PUT, with_digest(&location, digest), scopes)
            .header(CONTENT_LENGTH, HeaderValue::from_static("0"));
        req.retry = false;
        match self.send(&req).await {
            Ok((resp, _permit)) => self.finish_put(resp, up.repository, digest).await,
            Err(e) if e.is_retryable() => Err(Failure::Retry(e.to_string(), e.retry_after())),
            Err(e) => Err(fatal(e)),
        }
    }

    /// PUTs manifest `bytes` as `reference` (a tag, or its digest for children); the
    /// registry's `Docker-Content-Digest` must equal `digest`.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<PutManifest, RegistryError> {
        let scopes = [Scope::push(repository)];
        let body = move || reqwest::Body::from(bytes.clone());
        let mut req = Req::new(
            Method::PUT,
            self.manifest_url(repository, reference)?,
            &scopes,
        )
        .header(CONTENT_TYPE, header_value(media_type)?);
        req.body = Some(&body);
        let (resp, _permit) = self.send(&req).await?;
        if !resp.status().is_success() {
            return Err(self
                .unexpected(resp, &Method::PUT, repository, "push to")
                .await);
        }
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && h.trim() != digest.as_str()
        {
            return Err(RegistryError::DigestHeader {
                registry: self.name.clone(),
                what: format!("manifest {repository}:{reference}"),
                header: h.trim().to_string(),
                actual: digest.clone(),
            });
        }
        Ok(PutManifest {
            oci_subject: resp.headers().contains_key("oci-subject"),
        })
    }
}

/// What the registry answered to a manifest PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutManifest {
    /// It sent `OCI-Subject`: it has the referrers API and indexed the manifest's `subject`
    /// itself (OCI distribution 1.1). Registries without the API never send it.
    pub oci_subject: bool,
}

/// One upload session of one blob.
struct Upload<'a> {
    repository: &'a str,
    digest: &'a Digest,
    size: u64,
    from: &'a dyn BlobRead,
    location: &'a Url,
    scopes: &'a [Scope],
}

/// The blob the source gave does not match its digest: nothing is committed.
fn corrupt(up: &Upload<'_>, e: VerifyError) -> Failure {
    Failure::Fatal(StoreError::Corrupt {
        what: "blob",
        digest: up.digest.clone(),
        origin: up.from.origin(),
        source: e,
    })
}

fn fatal(e: RegistryError) -> Failure {
    Failure::Fatal(e.into())
}

enum Failure {
    /// Start again with a new session, after at least the given `Retry-After`.
    Retry(String, Option<std::time::Duration>),
    Fatal(StoreError),
}

#[cfg(test)]
mod tests;
