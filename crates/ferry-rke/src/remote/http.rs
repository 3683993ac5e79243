//! The one conditional GET of a metadata URL: system roots plus `--metadata-ca-file`, proxies
//! from the environment, a total time limit and a size limit. Redirects are followed (10 at
//! most) except from `https://` to `http://`: that one is not requested and is answered as
//! [`Answer::InsecureRedirect`], since the catalog decides what gets mirrored and must not
//! come over plaintext when the user asked for TLS. Callers are synchronous (and
//! `lock`/`export` call from inside their runtime), so the request runs on a thread of its own
//! with a small runtime.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use reqwest::redirect::{Attempt, Policy};

use super::{Answer, MetadataUrl, RemoteError, RemoteOptions, Transport};

/// The most redirects followed (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// The largest `--metadata-ca-file` read (a system bundle of every public root is ~200 KiB).
const MAX_CA_FILE_BYTES: u64 = 16 << 20;

/// Follows redirects, but stops at one from https to http: the 3xx answer is then returned
/// to [`HttpTransport::fetch`], which refuses it without requesting the http URL.
fn redirect_policy(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
    }
    let downgrade = attempt.url().scheme() == "http"
        && attempt.previous().iter().any(|u| u.scheme() == "https");
    if downgrade {
        attempt.stop()
    } else {
        attempt.follow()
    }
}

/// The transport over reqwest.
pub(crate) struct HttpTransport {
    certs: Vec<reqwest::Certificate>,
    timeout: Duration,
    max_bytes: u64,
}

impl HttpTransport {
    /// Reads the CA files now, so a bad one is an error even when a cached copy exists.
    pub(crate) fn new(opts: &RemoteOptions) -> Result<HttpTransport, RemoteError> {
        let mut certs = Vec::new();
        for path in &opts.ca_files {
            let bad = |detail: String| RemoteError::CaFile {
                path: path.clone(),
                detail,
            };
            let pem = ferry_base::bounded::read(path, MAX_CA_FILE_BYTES)
                .map_err(|e| bad(e.to_string()))?;
            let found = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(ferry_base::chain::flatten(&e)))?;
            if found.is_empty() {
                return Err(bad("no PEM certificate found in it".into()));
            }
            certs.extend(found);
        }
        Ok(HttpTransport {
            certs,
            timeout: opts.timeout,
            max_bytes: opts.max_bytes,
        })
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        ferry_base::tls::install();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .redirect(Policy::custom(redirect_policy));
        if !self.certs.is_empty() {
            b = b.tls_certs_merge(self.certs.clone());
        }
        b.build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", describe(e)))
    }

    async fn fetch(
        &self,
        url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, String> {
        let client = self.client()?;
        let mut req = client.get(url.url.clone());
        if let Some((user, password)) = &url.user {
            req = req.basic_auth(user, Some(password.expose()));
        }
        if let Some(tag) = etag {
            req = req.header(IF_NONE_MATCH, tag);
        } else if let Some(date) = last_modified {
            req = req.header(IF_MODIFIED_SINCE, date);
        }
        let timed_out = || {
            format!(
                "no complete answer within {} s (ferry's time limit for the metadata download)",
                self.timeout.as_secs()
            )
        };
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                timed_out()
            } else {
                describe(e)
            }
        };
        let mut resp = req.send().await.map_err(fail)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Answer::NotModified);
        }
        if status.is_redirection()
            && resp.url().scheme() == "https"
            && let Some(to) = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
                .filter(|u| u.scheme() == "http")
        {
            // Only the downgrade stops the policy; every other 3xx was followed.
            return Ok(Answer::InsecureRedirect { to });
        }
        if status != StatusCode::OK {
            let mut cause = format!("the server answered {status}");
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                cause.push_str(
                    " (if it needs a login, put it in the URL: https://USER:PASSWORD@HOST/…)",
                );
            }
            return Err(cause);
        }
        let too_large = || {
            format!(
                "the answer is larger than {} MiB, ferry's limit for metadata (KDM's data.json is a few MiB); check that the URL names a data.json",
                self.max_bytes >> 20
            )
        };
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(too_large());
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(ETAG);
        let last_modified = header(LAST_MODIFIED);
        // Reserved once when the length is announced (at most max_bytes, checked above) so
        // the buffer is not doubled past the body; a lying length is still caught below.
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer::Fresh {
            body,
            etag,
            last_modified,
        })
    }
}

/// A reqwest error as one clause, without its URL (which may carry a query with a token).
fn describe(e: reqwest::Error) -> String {
    ferry_base::chain::flatten(&e.without_url())
}

impl Transport for HttpTransport {
    fn get(
        &self,
        url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the download's runtime: {e}"))?;
                rt.block_on(self.fetch(url, etag, last_modified))
            })
            .join()
            .unwrap_or_else(|_| Err("the download thread stopped unexpectedly".into()))
        })
    }
}
