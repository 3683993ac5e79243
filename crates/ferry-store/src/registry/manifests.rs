//! Manifests: HEAD (free on Docker Hub: it does not count against the rate limit) and GET
//! with the full `Accept` list. The bytes are kept exactly as received, bounded in size,
//! hashed, and checked against the digest asked for and the `Docker-Content-Digest` header.

use bytes::BytesMut;
use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};

use super::Registry;
use super::auth::Scope;
use super::error::RegistryError;
use super::request::{Req, flatten};
use ferry_oci::digest::{Digest, Hasher};
use ferry_oci::manifest::MAX_MANIFEST_SIZE;
use ferry_oci::media_types::{self, MANIFEST_ACCEPT};

pub use crate::{FetchedManifest, ManifestHead};

fn accept() -> (reqwest::header::HeaderName, HeaderValue) {
    (ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT))
}

impl Registry {
    pub(crate) fn manifest_url(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<url::Url, RegistryError> {
        self.base
            .join(&format!("v2/{repository}/manifests/{reference}"))
            .map_err(|e| RegistryError::Protocol {
                registry: self.name.clone(),
                what: format!("{repository}:{reference}"),
                detail: e.to_string(),
            })
    }

    /// HEAD a manifest by tag or digest; `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let scopes = [Scope::pull(repository)];
        let req = Req {
            method: Method::HEAD,
            url: self.manifest_url(repository, reference)?,
            scopes: &scopes,
            headers: vec![accept()],
            body: None,
            retry: true,
        };
        let (resp, _permit) = self.send(&req).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .unexpected(resp, &Method::HEAD, repository, "pull")
                .await);
        }
        let h = resp.headers();
        let media_type = h
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| media_types::strip_params(v).to_string())
            .unwrap_or_default();
        let digest = match h.get("docker-content-digest").and_then(|v| v.to_str().ok()) {
            Some(d) => Some(
                Digest::parse(d.trim()).map_err(|e| RegistryError::Protocol {
                    registry: self.name.clone(),
                    what: format!("HEAD {repository}:{reference}"),
                    detail: format!("invalid Docker-Content-Digest: {e}"),
                })?,
            ),
            None => None,
        };
        let size = h
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        if media_types::is_schema1(&media_type) {
            return Err(RegistryError::Schema1 {
                registry: self.name.clone(),
                what: format!("{repository}:{reference}"),
                media_type,
            });
        }
        Ok(Some(ManifestHead {
            digest,
            media_type,
            size,
        }))
    }

    /// GET a manifest by tag or digest. Retries a body that breaks off; refuses schema 1,
    /// oversized bodies, and bytes that do not match the digest asked for or announced.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let what = format!("manifest {repository}:{reference}");
        let expected = Digest::parse(reference).ok();
        let mut delays = self.backoff();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .get_manifest_once(repository, reference, &what, expected.as_ref())
                .await
            {
                Err(BodyError::Broken(detail)) if attempt < self.opts.attempts => {
                    let wait = delays.next().unwrap_or(self.opts.backoff);
                    tracing::info!(
                        "{what}: body broke off ({detail}); retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(BodyError::Broken(detail)) => {
                    return Err(RegistryError::Transfer {
                        registry: self.name.clone(),
                        what,
                        attempts: attempt,
                        detail,
                    });
                }
                Err(BodyError::Fatal(e)) => return Err(e),
                Ok(m) => return Ok(m),
            }
        }
    }

    async fn get_manifest_once(
        &self,
        repository: &str,
        reference: &str,
        what: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest, BodyError> {
        let scopes = [Scope::pull(repository)];
        let req = Req {
            method: Method::GET,
            url: self.manifest_url(repository, reference)?,
            scopes: &scopes,
            headers: vec![accept()],
            body: None,
            retry: true,
        };
        let (resp, _permit) = self.send(&req).await?;
        if !resp.status().is_success() {
            return Err(self
                .unexpected(resp, &Method::GET, repository, "pull")
                .await
                .into());
        }
        let fatal = |e: RegistryError| BodyError::Fatal(e);
        let h = resp.headers().clone();
        let header_type = h
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| media_types::strip_params(v).to_string())
            .unwrap_or_default();
        if media_types::is_schema1(&header_type) {
            return Err(fatal(RegistryError::Schema1 {
                registry: self.name.clone(),
                what: what.into(),
                media_type: header_type,
            }));
        }
        if let Some(len) = resp.content_length()
            && len > MAX_MANIFEST_SIZE
        {
            return Err(fatal(RegistryError::TooLarge {
                registry: self.name.clone(),
                what: what.into(),
                limit: MAX_MANIFEST_SIZE,
            }));
        }
        let mut hasher = match expected {
            Some(d) => Hasher::new(d.kind()),
            None => Hasher::sha256(),
        };
        let mut buf = BytesMut::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BodyError::Broken(flatten(&e.without_url())))?;
            if (buf.len() + chunk.len()) as u64 > MAX_MANIFEST_SIZE {
                return Err(fatal(RegistryError::TooLarge {
                    registry: self.name.clone(),
                    what: what.into(),
                    limit: MAX_MANIFEST_SIZE,
                }));
            }
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
        }
        let actual = hasher.finish();
        if let Some(exp) = expected
            && *exp != actual
        {
            return Err(fatal(RegistryError::Integrity {
                registry: self.name.clone(),
                what: what.into(),
                source: ferry_oci::digest::VerifyError::DigestMismatch {
                    expected: exp.clone(),
                    actual,
                },
            }));
        }
        if let Some(header) = h
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            && let Ok(hd) = Digest::parse(header)
            && hd.kind() == actual.kind()
            && hd != actual
        {
            return Err(fatal(RegistryError::DigestHeader {
                registry: self.name.clone(),
                what: what.into(),
                header: header.into(),
                actual,
            }));
        }
        let bytes = buf.freeze();
        let media_type = if media_types::manifest_kind(&header_type).is_some() {
            header_type
        } else {
            // Some registries send a generic Content-Type; the body's mediaType decides then.
            body_media_type(&bytes).unwrap_or(header_type)
        };
        if media_types::is_schema1(&media_type) {
            return Err(fatal(RegistryError::Schema1 {
                registry: self.name.clone(),
                what: what.into(),
                media_type,
            }));
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest: actual,
        })
    }
}

fn body_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let p: Probe = serde_json::from_slice(bytes).ok()?;
    match (p.media_type, p.schema_version) {
        (Some(m), _) => Some(m),
        (None, Some(1)) => Some(media_types::DOCKER_SCHEMA1_SIGNED.to_string()),
        _ => None,
    }
}

enum BodyError {
    Broken(String),
    Fatal(RegistryError),
}

impl From<RegistryError> for BodyError {
    fn from(e: RegistryError) -> Self {
        BodyError::Fatal(e)
    }
}
