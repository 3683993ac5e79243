//! OCI 1.1 referrers on a registry: `GET /v2/<name>/referrers/<digest>` (the API, where the
//! registry has it), and the referrers tag schema (`sha256-<hex>`, an index) read whole and
//! capped, for the destination to keep up to date where the registry has no API. Both answers
//! are untrusted: read up to [`MAX_LIST_SIZE`] bytes, never more.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Method, Response, StatusCode};

use super::Registry;
use super::auth::Scope;
use super::error::RegistryError;
use super::request::{Req, flatten};
use ferry_oci::digest::Digest;
use ferry_oci::media_types::{MANIFEST_ACCEPT, OCI_INDEX};
use ferry_oci::referrers::{Entry, MAX_LIST_SIZE};

/// The answers that say "this registry has no referrers API": no such route (distribution
/// 2.8 answers 404), a method or request it does not know, or not implemented.
fn no_api(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::BAD_REQUEST
            | StatusCode::NOT_IMPLEMENTED
    )
}

impl Registry {
    /// The referrers of `subject` in `repository` through the referrers API; `None` when the
    /// registry has no such API. Only the first page is read (a registry may paginate with a
    /// `Link` header; ferry takes at most `ferry_plan`'s per-image bound anyway).
    pub async fn get_referrers(
        &self,
        repository: &str,
        subject: &Digest,
    ) -> Result<Option<Vec<Entry>>, RegistryError> {
        let what = format!("referrers of {repository}@{subject}");
        let url = self
            .base
            .join(&format!("v2/{repository}/referrers/{subject}"))
            .map_err(|e| RegistryError::Protocol {
                registry: self.name.clone(),
                what: what.clone(),
                detail: e.to_string(),
            })?;
        let scopes = [Scope::pull(repository)];
        let req =
            Req::new(Method::GET, url, &scopes).header(ACCEPT, HeaderValue::from_static(OCI_INDEX));
        let (resp, _permit) = self.send(&req).await?;
        if no_api(resp.status()) {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .unexpected(resp, &Method::GET, repository, "pull")
                .await);
        }
        let body = self.capped_body(resp, &what).await?;
        ferry_oci::referrers::entries(&body)
            .map(Some)
            .map_err(|e| RegistryError::Protocol {
                registry: self.name.clone(),
                what,
                detail: e.to_string(),
            })
    }

    /// The bytes and digest of what `repository`'s tag `tag` serves, under push access (the
    /// destination's token), read up to [`MAX_LIST_SIZE`] bytes; `None` when there is no
    /// such tag.
    pub async fn get_tag_for_push(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<(String, Bytes)>, RegistryError> {
        let what = format!("{repository}:{tag}");
        let scopes = [Scope::push(repository)];
        let req = Req::new(Method::GET, self.manifest_url(repository, tag)?, &scopes)
            .header(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        let (resp, _permit) = self.send(&req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .unexpected(resp, &Method::GET, repository, "push to")
                .await);
        }
        let media_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| ferry_oci::media_types::strip_params(v).to_string())
            .unwrap_or_default();
        Ok(Some((media_type, self.capped_body(resp, &what).await?)))
    }

    /// A body of at most [`MAX_LIST_SIZE`] bytes; a longer one is refused as soon as it is.
    async fn capped_body(&self, resp: Response, what: &str) -> Result<Bytes, RegistryError> {
        let too_large = || RegistryError::TooLarge {
            registry: self.name.clone(),
            what: what.to_string(),
            limit: MAX_LIST_SIZE,
        };
        if resp.content_length().is_some_and(|n| n > MAX_LIST_SIZE) {
            return Err(too_large());
        }
        let mut buf = BytesMut::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Transfer {
                registry: self.name.clone(),
                what: what.to_string(),
                attempts: 1,
                detail: flatten(&e.without_url()),
            })?;
            if (buf.len() + chunk.len()) as u64 > MAX_LIST_SIZE {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}
