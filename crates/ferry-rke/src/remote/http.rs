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

use super::{
    Answer, CaFileProblem, FetchError, MetadataUrl, RemoteError, RemoteOptions, Transport,
};

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
            let bad = |problem: CaFileProblem| RemoteError::CaFile {
                path: path.clone(),
                problem,
            };
            let pem =
                ferry_base::bounded::read(path, MAX_CA_FILE_BYTES).map_err(|e| bad(e.into()))?;
            let found = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(CaFileProblem::Pem(e)))?;
            if found.is_empty() {
                return Err(bad(CaFileProblem::Empty));
            }
            certs.extend(found);
        }
        Ok(HttpTransport {
            certs,
            timeout: opts.timeout,
            max_bytes: opts.max_bytes,
        })
    }

    fn client(&self) -> Result<reqwest::Client, FetchError> {
        ferry_base::tls::install();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .redirect(Policy::custom(redirect_policy));
        if !self.certs.is_empty() {
            b = b.tls_certs_merge(self.certs.clone());
        }
        b.build().map_err(|e| FetchError::Client(e.without_url()))
    }

    async fn fetch(
        &self,
        url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, FetchError> {
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
        let fail = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::TimedOut {
                    limit: self.timeout,
                }
            } else {
                // Without its URL, which may carry a query with a token.
                FetchError::Request(e.without_url())
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
            return Err(FetchError::Status { status });
        }
        let too_large = || FetchError::TooLarge {
            limit: self.max_bytes,
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

impl Transport for HttpTransport {
    fn get(
        &self,
        url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, FetchError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(FetchError::Runtime)?;
                rt.block_on(self.fetch(url, etag, last_modified))
            })
            .join()
            .unwrap_or(Err(FetchError::Thread))
        })
    }
}
