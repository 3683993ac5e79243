//! Sending one registry request: authentication (learn the challenge from a 401, retry with
//! credentials, a fresh token or a renewed login), the one retry policy (`with_retries`: exponential
//! backoff with jitter on the errors [`RegistryError::is_retryable`] names, honouring
//! `Retry-After`), the `RateLimit-*` headers, and error bodies read only up to a bound.
//!
//! Redirects are followed by reqwest, which drops `Authorization` when the host, port or
//! scheme changes (Docker Hub sends blob GETs to a CDN that must not see the token).

use std::time::Duration;

use backon::BackoffBuilder as _;
use reqwest::header::{
    AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::Registry;
use super::auth::Scope;
use super::config::ClientOptions;
use super::error::{RegistryError, redact, spec_errors};

/// Docker Hub's rate-limit state, from the last answer that carried it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: Option<u64>,
    /// Window length in seconds.
    pub window_seconds: Option<u64>,
    /// `docker-ratelimit-source`: the IP or account counted.
    pub source: Option<String>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Reads `ratelimit-limit: 100;w=21600` and friends.
pub fn parse_rate_limit(h: &HeaderMap) -> Option<RateLimit> {
    let first_number = |s: &str| {
        s.split(';')
            .next()
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    let limit_header = header_str(h, "ratelimit-limit")?;
    let limit = first_number(limit_header)?;
    let window_seconds = limit_header
        .split(';')
        .skip(1)
        .find_map(|p| p.trim().strip_prefix("w=").and_then(|w| w.parse().ok()));
    Some(RateLimit {
        limit,
        remaining: header_str(h, "ratelimit-remaining").and_then(first_number),
        window_seconds,
        source: header_str(h, "docker-ratelimit-source").map(String::from),
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = header_str(h, RETRY_AFTER.as_str())?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

pub use ferry_base::chain::flatten;

/// True when a TLS failure (handshake, certificate) is behind `e`: a rustls error somewhere
/// in its chain, bare or inside an I/O error.
fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Classifies a failure of a request to `url` of `registry` to get any answer: TLS, no
/// connection at all, or a transport failure on the way (reset, timeout).
pub(crate) fn transport_error(registry: &str, e: &reqwest::Error, url: &Url) -> RegistryError {
    let detail = flatten(e);
    if is_tls_error(e) {
        return RegistryError::Tls {
            registry: registry.to_string(),
            url: redact(url),
            detail,
        };
    }
    let mut origin = url.clone();
    origin.set_path("/");
    if e.is_connect() {
        return RegistryError::Unreachable {
            registry: registry.to_string(),
            url: redact(&origin),
            attempts: 1,
            detail,
        };
    }
    RegistryError::Connect {
        registry: registry.to_string(),
        url: redact(url),
        attempts: 1,
        detail,
    }
}

/// One request to send: method, URL, the scopes its token needs, extra headers.
pub struct Req<'a> {
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Token scopes.
    pub scopes: &'a [Scope],
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Makes a fresh request body for each attempt (uploads); `None` for no body.
    pub body: Option<&'a (dyn Fn() -> reqwest::Body + Sync)>,
    /// Retry transport errors, 5xx and 429 here. Uploads say no: a half-sent body leaves the
    /// upload session in an unknown state, so the upload logic retries with a new session.
    pub retry: bool,
}

impl<'a> Req<'a> {
    /// A request without body, retried on transient failures.
    pub fn new(method: Method, url: Url, scopes: &'a [Scope]) -> Req<'a> {
        Req {
            method,
            url,
            scopes,
            headers: Vec::new(),
            body: None,
            retry: true,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// True when `a` and `b` share scheme, host and port: only then may credentials go along.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Error bodies read into memory are cut here: they only carry a message for people, and a
/// hostile registry can send one that never ends.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// Attempts for a request whose connection cannot even be opened (name not found,
/// connection refused): that does not heal in a minute, so ferry gives up on the registry
/// quickly and once, instead of once per image after a minute of backoff.
const CONNECT_ATTEMPTS: u32 = 3;

/// Reads at most `limit` bytes of a body; `Ok(None)` when it is longer (the rest is not read).
pub(crate) async fn read_capped(
    resp: Response,
    limit: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    use futures_util::StreamExt as _;
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut buf = bytes::BytesMut::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// The spec errors of an error answer, reading at most [`MAX_ERROR_BODY`] bytes of it.
pub(crate) async fn error_body(resp: Response) -> Vec<super::error::SpecError> {
    match read_capped(resp, MAX_ERROR_BODY).await {
        Ok(Some(body)) => spec_errors(&body),
        _ => Vec::new(),
    }
}

/// The backoff delays of one operation under `opts`: exponential, with jitter.
pub(crate) fn backoff(opts: &ClientOptions) -> impl Iterator<Item = Duration> + Send + use<> {
    backon::ExponentialBuilder::default()
        .with_min_delay(opts.backoff)
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .with_max_times(usize::MAX)
        .build()
}

/// Runs `attempt` (given its number, from 1) until it succeeds, or fails with an error that
/// is not [retryable](RegistryError::is_retryable), or the attempts run out. Waits between
/// attempts with backoff, or as long as the registry's `Retry-After` asks (up to
/// `--max-retry-after`). The one retry policy of every registry request, token requests
/// included.
pub(crate) async fn with_retries<T, F, Fut>(
    opts: &ClientOptions,
    what: &(dyn Fn() -> String + Sync),
    mut attempt: F,
) -> Result<T, RegistryError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let mut delays = backoff(opts);
    let mut n: u32 = 0;
    loop {
        n += 1;
        let e = match attempt(n).await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let limit = match e {
            RegistryError::Unreachable { .. } => opts.attempts.min(CONNECT_ATTEMPTS),
            _ => opts.attempts,
        };
        if !e.is_retryable() || n >= limit {
            return Err(e.after_attempts(n));
        }
        let wait = match (&e, e.retry_after()) {
            (_, Some(ra)) if ra > opts.max_retry_after => return Err(e.after_attempts(n)),
            (_, Some(ra)) => ra,
            (RegistryError::Unreachable { .. }, None) => Duration::from_millis(250 * u64::from(n)),
            (_, None) => delays.next().unwrap_or(opts.backoff),
        };
        tracing::info!(
            "{} failed ({e}); retrying in {:.1} s",
            what(),
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
}

impl Registry {
    /// The backoff delays for one operation.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        backoff(&self.opts)
    }

    /// The error every request gets once the registry proved unreachable in this run.
    fn known_down(&self) -> Option<RegistryError> {
        let down = self.down.lock().ok()?;
        down.as_ref()
            .map(|(attempts, detail)| RegistryError::Unreachable {
                registry: self.name.clone(),
                url: redact(&self.base),
                attempts: *attempts,
                detail: detail.clone(),
            })
    }

    /// Sends `req` with authentication and retries; returns the first answer that is not a
    /// 401, a 429 or a 5xx (those become errors once retries are exhausted; a request that
    /// is not retried gets them as answers), with the transfer permits it was sent under:
    /// hold them while reading the body. No permit is held while waiting out a backoff or a
    /// `Retry-After`. A registry that cannot be connected to at all is given up on for the
    /// rest of the run: every later request fails at once with the same error.
    pub(crate) async fn send(
        &self,
        req: &Req<'_>,
    ) -> Result<(Response, super::TransferPermit), RegistryError> {
        if let Some(e) = self.known_down() {
            return Err(e);
        }
        let what = || format!("{} {}", req.method, redact(&req.url));
        let mut once = |_n: u32| self.attempt(req);
        let result = if req.retry {
            with_retries(&self.opts, &what, &mut once).await
        } else {
            once(1).await
        };
        if let Err(RegistryError::Unreachable {
            attempts, detail, ..
        }) = &result
            && req.retry
            && let Ok(mut down) = self.down.lock()
            && down.is_none()
        {
            *down = Some((*attempts, detail.clone()));
        }
        result
    }

    /// One attempt of `req` (and up to two more after a 401 that new credentials can answer).
    async fn attempt(
        &self,
        req: &Req<'_>,
    ) -> Result<(Response, super::TransferPermit), RegistryError> {
        let mut auth_rounds = 0;
        loop {
            // The permit first, then the request and the token: a request waiting for a
            // permit holds no headers or body yet (thousands may wait at once), and a token
            // taken before a long wait for a permit could expire on the way.
            let permit = self.permits().await;
            let mut b = self.http.request(req.method.clone(), req.url.clone());
            for (k, v) in &req.headers {
                b = b.header(k, v);
            }
            if let Some(make) = req.body {
                b = b.body(make());
            }
            // An upload Location may point at another host (signed storage URL): never send
            // our credentials there.
            let auth = if same_origin(&req.url, &self.base) {
                self.auth.header(&self.http, &self.opts, req.scopes).await?
            } else {
                None
            };
            if let Some(a) = &auth {
                b = b.header(AUTHORIZATION, a.value.clone());
            }
            tracing::trace!("{} {}", req.method, redact(&req.url));
            let resp = match b.send().await {
                Ok(r) => r,
                // reqwest puts the URL (with its query: upload state, signed URLs) in its
                // message; ours names the redacted URL instead.
                Err(e) => return Err(self.transport_error(&e.without_url(), &req.url)),
            };
            if let Some(rl) = parse_rate_limit(resp.headers())
                && let Ok(mut slot) = self.rate_limit.lock()
            {
                *slot = Some(rl);
            }
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                if auth_rounds < 2
                    && self
                        .auth
                        .on_unauthorized(challenge.as_deref(), req.scopes, auth.as_ref())
                        .await
                {
                    auth_rounds += 1;
                    continue;
                }
                return Err(RegistryError::Unauthorized {
                    registry: self.name.clone(),
                    user: self.auth.user_label(),
                    errors: error_body(resp).await,
                });
            }
            if req.retry && status == StatusCode::TOO_MANY_REQUESTS {
                return Err(RegistryError::RateLimited {
                    registry: self.name.clone(),
                    retry_after: parse_retry_after(resp.headers()).map(|d| d.as_secs()),
                    errors: error_body(resp).await,
                });
            }
            if req.retry && matches!(status.as_u16(), 500 | 502 | 503 | 504) {
                return Err(RegistryError::Status {
                    registry: self.name.clone(),
                    method: req.method.to_string(),
                    url: redact(resp.url()),
                    status,
                    retry_after: parse_retry_after(resp.headers()).map(|d| d.as_secs()),
                    errors: error_body(resp).await,
                });
            }
            return Ok((resp, permit));
        }
    }

    /// Classifies a failure to get any answer (see [`transport_error`]).
    pub(crate) fn transport_error(&self, e: &reqwest::Error, url: &Url) -> RegistryError {
        transport_error(&self.name, e, url)
    }

    /// Turns an unexpected answer into a typed error (reads at most [`MAX_ERROR_BODY`] bytes
    /// of the spec error body).
    pub(crate) async fn unexpected(
        &self,
        resp: Response,
        method: &Method,
        repository: &str,
        action: &'static str,
    ) -> RegistryError {
        let status = resp.status();
        let url = redact(resp.url());
        let retry_after = parse_retry_after(resp.headers()).map(|d| d.as_secs());
        let errors = error_body(resp).await;
        if status == StatusCode::FORBIDDEN
            || errors
                .iter()
                .any(|e| e.code == ferry_oci::ErrorCode::Denied)
        {
            return RegistryError::Denied {
                registry: self.name.clone(),
                repository: repository.to_string(),
                action,
                errors,
            };
        }
        RegistryError::Status {
            registry: self.name.clone(),
            method: method.to_string(),
            url,
            status,
            retry_after,
            errors,
        }
    }
}

#[cfg(test)]
mod tests;
