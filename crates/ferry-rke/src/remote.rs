//! Live KDM metadata: `--metadata URL` (or `RANCHER_METADATA_URL=https://…`, which RKE itself
//! fetches when the value starts with `http`) downloaded once and kept in the user's cache.
//!
//! What this module owns, and nothing else: turning a metadata URL into the text of a
//! `data.json`, by this policy:
//!
//! - online, the download sends the cached copy's `ETag` (`If-None-Match`) or `Last-Modified`
//!   (`If-Modified-Since`); `304 Not Modified` means the cached copy is used;
//! - a new answer is parsed before it is cached, so a proxy's error page never replaces good
//!   data; the cache is written atomically ([`cache`]);
//! - a failed download falls back to the cached copy with a warning naming its age, and is an
//!   error naming the URL, the cause and the fix when there is none;
//! - `--offline` reads only the cache;
//! - an `https://` URL that redirects to `http://` is an error, never a fallback: the http URL
//!   is not requested and nothing is cached.
//!
//! The download honours the proxy variables (`HTTPS_PROXY`, `NO_PROXY`, …), trusts the system
//! roots plus `--metadata-ca-file`, gives up after [`TIMEOUT`] and refuses more than
//! [`MAX_BYTES`]. Credentials a URL carries (`https://user:password@host/…`) are sent as Basic
//! auth and never shown: every message names the URL without userinfo or query.

pub mod cache;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use url::Url;

use cache::{Cache, Entry, Meta};
use ferry_base::secret::Secret;

/// How long one download may take, connecting included (RKE uses 30 s too).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The largest metadata answer accepted (KDM's data.json is a few MiB).
pub const MAX_BYTES: u64 = 64 << 20;

/// True when `location` names a remote URL rather than a file (`http://` or `https://`).
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// How a metadata URL is fetched.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Extra CA certificates (PEM) for the metadata server, on top of the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Use only the cache; never download.
    pub offline: bool,
    /// The cache directory (`…/ferry/metadata`); `None` when no home or cache dir is known.
    pub cache_dir: Option<PathBuf>,
    /// Connect and total time limit of the download.
    pub timeout: Duration,
    /// The largest answer accepted.
    pub max_bytes: u64,
}

impl RemoteOptions {
    /// The defaults: the user's cache directory ([`cache::default_dir`]), [`TIMEOUT`],
    /// [`MAX_BYTES`].
    pub fn new(ca_files: Vec<PathBuf>, offline: bool) -> RemoteOptions {
        RemoteOptions {
            ca_files,
            offline,
            cache_dir: cache::default_dir(),
            timeout: TIMEOUT,
            max_bytes: MAX_BYTES,
        }
    }
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions::new(Vec::new(), false)
    }
}

/// Why metadata could not be had from a URL. Every message names the URL without credentials.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not a usable URL.
    #[error(
        "invalid metadata URL {url}: {problem}; give an http:// or https:// URL such as https://releases.rancher.com/kontainer-driver-metadata/release-v2.9/data.json, or a local file"
    )]
    BadUrl {
        /// The URL as given, userinfo removed.
        url: String,
        /// What is wrong.
        problem: UrlProblem,
    },
    /// A `--metadata-ca-file` cannot be used.
    #[error(
        "cannot use --metadata-ca-file {path}: {problem}; give a PEM file holding the CA certificate of the metadata server",
        path = path.display()
    )]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: CaFileProblem,
    },
    /// The download failed and nothing is cached.
    #[error(
        "cannot download KDM metadata from {url}: {cause}; there is no cached copy to fall back on. Check the URL, the network and the proxy variables (HTTPS_PROXY, NO_PROXY), and pass --metadata-ca-file if the server uses a private CA; or download data.json where you can and pass the file with --metadata data.json (or run with --offline once a copy is cached)"
    )]
    Download {
        /// The URL, redacted.
        url: String,
        /// What went wrong.
        cause: FetchError,
    },
    /// An `https://` URL redirected to `http://`.
    #[error(
        "refusing the KDM metadata at {url}: the server redirected to the plain-HTTP URL {to}, and ferry never follows a redirect from https:// to http://, because the metadata decides which images get mirrored and anyone on the network path could change it; nothing was downloaded or cached. Give the final https:// URL, or have the server redirect to https://; if you do trust plain HTTP on that network, pass the http:// URL itself with --metadata"
    )]
    InsecureRedirect {
        /// The URL asked for, redacted.
        url: String,
        /// Where it redirected, redacted.
        to: String,
    },
    /// `--offline` and nothing cached.
    #[error(
        "--offline: there is no cached copy of the KDM metadata at {url} ({where_}); run the same command once without --offline on a host that can reach the URL, or pass a local file with --metadata data.json"
    )]
    NotCached {
        /// The URL, redacted.
        url: String,
        /// Where the cache was looked for.
        where_: String,
    },
}

/// What is wrong with a metadata URL.
#[derive(Debug, thiserror::Error)]
pub enum UrlProblem {
    /// Not a URL at all.
    #[error(transparent)]
    Parse(#[from] url::ParseError),
    /// Another scheme than http or https.
    #[error("scheme {scheme:?} is not http or https")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// No host.
    #[error("it names no host")]
    NoHost,
}

/// What is wrong with a `--metadata-ca-file`.
#[derive(Debug, thiserror::Error)]
pub enum CaFileProblem {
    /// It cannot be read (or is too large to be one).
    #[error(transparent)]
    Read(#[from] ferry_base::bounded::ReadError),
    /// It is not PEM.
    #[error("{}", ferry_base::chain::flatten(.0))]
    Pem(reqwest::Error),
    /// It is PEM, but holds no certificate.
    #[error("no PEM certificate found in it")]
    Empty,
}

/// Why one download of metadata gave no usable answer, as one clause (the policy falls back
/// to the cached copy on any of these).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client cannot be built.
    #[error("cannot set up the HTTP client: {}", ferry_base::chain::flatten(.0))]
    Client(reqwest::Error),
    /// The download's own runtime cannot be started.
    #[error("cannot start the download's runtime: {0}")]
    Runtime(std::io::Error),
    /// The download's thread panicked.
    #[error("the download thread stopped unexpectedly")]
    Thread,
    /// No complete answer within the time limit.
    #[error(
        "no complete answer within {} s (ferry's time limit for the metadata download)",
        limit.as_secs()
    )]
    TimedOut {
        /// The limit.
        limit: Duration,
    },
    /// The request failed (connection, TLS, redirects); the error carries no URL.
    #[error("{}", ferry_base::chain::flatten(.0))]
    Request(reqwest::Error),
    /// Another status than 200 or 304.
    #[error("the server answered {status}{}", login_hint(*status))]
    Status {
        /// The status.
        status: reqwest::StatusCode,
    },
    /// More than the size limit.
    #[error(
        "the answer is larger than {} MiB, ferry's limit for metadata (KDM's data.json is a few MiB); check that the URL names a data.json",
        limit >> 20
    )]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// `304 Not Modified` to a request that was not conditional.
    #[error("the server answered 304 Not Modified to a request that named no cached copy")]
    UnaskedNotModified,
    /// `304 Not Modified`, but the cached copy does not parse.
    #[error("the cached copy is unusable ({0})")]
    CachedUnusable(Box<dyn std::error::Error + Send + Sync>),
    /// An answer that is not text.
    #[error("the answer is not UTF-8 text, so not a KDM data.json")]
    NotText,
    /// An answer that does not parse as metadata (a proxy's login page).
    #[error("the answer is not RKE metadata: {0}")]
    NotMetadata(Box<dyn std::error::Error + Send + Sync>),
}

/// What to add to a 401 or 403.
fn login_hint(status: reqwest::StatusCode) -> &'static str {
    if matches!(
        status,
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN
    ) {
        " (if it needs a login, put it in the URL: https://USER:PASSWORD@HOST/…)"
    } else {
        ""
    }
}

/// A metadata URL with its credentials kept apart from it.
#[derive(Debug, Clone)]
pub struct MetadataUrl {
    /// The URL without userinfo (what is requested and what the cache key is made of).
    url: Url,
    /// Basic-auth credentials from the userinfo, if any.
    user: Option<(String, Secret)>,
}

impl MetadataUrl {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(location: &str) -> Result<MetadataUrl, RemoteError> {
        let bad = |problem: UrlProblem| RemoteError::BadUrl {
            url: redact_text(location),
            problem,
        };
        let mut url = Url::parse(location.trim()).map_err(|e| bad(e.into()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(UrlProblem::Scheme {
                scheme: url.scheme().to_string(),
            }));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad(UrlProblem::NoHost));
        }
        let user = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let name = percent_decode(url.username());
            let password = Secret::new(url.password().map(percent_decode).unwrap_or_default());
            // Cannot fail for a URL with a host (checked above).
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((name, password))
        };
        Ok(MetadataUrl { url, user })
    }

    /// The URL to print: scheme, host, port and path (no userinfo, query or fragment).
    pub fn shown(&self) -> String {
        shown_url(&self.url)
    }

    /// The cache key: sha256 of the URL without userinfo.
    pub fn cache_key(&self) -> String {
        hex::encode(Sha256::digest(self.url.as_str().as_bytes()))
    }
}

/// `url` to print: scheme, host, port and path (no userinfo, query or fragment).
pub(crate) fn shown_url(url: &Url) -> String {
    ferry_base::secret::redact_url(url)
}

/// Decodes `%XX` escapes (userinfo in a URL is percent-encoded); anything else is kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    // Bounded: the userinfo of a URL the user gave (argv or environment), and the output is
    // never longer than the input.
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A location that may be a URL, for messages: any `user:password@` removed.
pub fn redact_text(location: &str) -> String {
    let Some(start) = location.find("://").map(|i| i + 3) else {
        return location.to_string();
    };
    let rest = &location[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &location[..start], &rest[at + 1..]),
        None => location.to_string(),
    }
}

/// What the server said.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `304 Not Modified`: the cached copy is current.
    NotModified,
    /// A redirect from `https://` to this `http://` URL, not followed.
    InsecureRedirect {
        /// The http URL.
        to: Url,
    },
    /// A full answer.
    Fresh {
        /// The body.
        body: Vec<u8>,
        /// Its `ETag`.
        etag: Option<String>,
        /// Its `Last-Modified`.
        last_modified: Option<String>,
    },
}

/// One conditional GET; `Err` is the cause of a failure.
pub(crate) trait Transport {
    fn get(
        &self,
        url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, FetchError>;
}

/// What `parse` gives: the value, or what is wrong with the text.
pub type Parsed<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Fetches the metadata at `location` by the module's policy; `parse` checks (and converts)
/// the text, and its error says what is wrong with it. Returns the parsed value and the URL
/// to show.
pub fn load<T, E>(
    location: &str,
    opts: &RemoteOptions,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<(T, String), RemoteError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let parse = |text: &str| parse(text).map_err(Into::into);
    let url = MetadataUrl::parse(location)?;
    let transport = if opts.offline {
        None
    } else {
        Some(http::HttpTransport::new(opts)?)
    };
    let now = unix_now();
    let value = load_with(
        &url,
        opts,
        transport.as_ref().map(|t| t as &dyn Transport),
        now,
        &parse,
    )?;
    Ok((value, url.shown()))
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The policy, over any transport (`None`: offline) and clock.
pub(crate) fn load_with<T>(
    url: &MetadataUrl,
    opts: &RemoteOptions,
    transport: Option<&dyn Transport>,
    now: u64,
    parse: &dyn Fn(&str) -> Parsed<T>,
) -> Result<T, RemoteError> {
    let shown = url.shown();
    let key = url.cache_key();
    let cache = opts.cache_dir.as_deref().map(Cache::new);
    let cached = cache.as_ref().and_then(|c| c.read(&key));

    let Some(transport) = transport else {
        let not_cached = || RemoteError::NotCached {
            url: shown.clone(),
            where_: match &opts.cache_dir {
                Some(d) => format!("looked in {}", d.display()),
                None => "no cache directory: neither XDG_CACHE_HOME nor HOME is set".into(),
            },
        };
        let entry = cached.ok_or_else(not_cached)?;
        let value = parse(&entry.body).map_err(|_| not_cached())?;
        tracing::info!(
            "--offline: using the copy of {shown} cached {}",
            cache::age_text(entry.meta.downloaded_at, now)
        );
        return Ok(value);
    };

    let (etag, last_modified) = match &cached {
        Some(e) => (e.meta.etag.as_deref(), e.meta.last_modified.as_deref()),
        None => (None, None),
    };
    match (etag, last_modified) {
        (Some(tag), _) => tracing::debug!("GET {shown} with If-None-Match: {tag}"),
        (None, Some(date)) => tracing::debug!("GET {shown} with If-Modified-Since: {date}"),
        (None, None) => tracing::debug!("GET {shown}"),
    }
    let cause = match transport.get(url, etag, last_modified) {
        Ok(Answer::InsecureRedirect { to }) => {
            return Err(RemoteError::InsecureRedirect {
                url: shown,
                to: shown_url(&to),
            });
        }
        Ok(Answer::NotModified) => match (&cached, &cache) {
            (Some(entry), Some(dir)) => match parse(&entry.body) {
                Ok(value) => {
                    tracing::info!(
                        "{shown} is not modified: using the copy cached {}",
                        cache::age_text(entry.meta.downloaded_at, now)
                    );
                    let mut meta = entry.meta.clone();
                    meta.checked_at = now;
                    if let Err(e) = dir.write_meta(&key, &meta) {
                        tracing::warn!("{}", ferry_base::chain::flatten(&*e));
                    }
                    return Ok(value);
                }
                Err(detail) => FetchError::CachedUnusable(detail),
            },
            _ => FetchError::UnaskedNotModified,
        },
        Ok(Answer::Fresh {
            body,
            etag,
            last_modified,
        }) => match String::from_utf8(body) {
            Err(_) => FetchError::NotText,
            Ok(text) => match parse(&text) {
                Ok(value) => {
                    tracing::info!("downloaded {shown} ({} bytes)", text.len());
                    tracing::debug!(
                        "sha256 of the metadata: {}",
                        hex::encode(Sha256::digest(text.as_bytes()))
                    );
                    if let Some(dir) = &cache {
                        let meta = Meta::new(&shown, etag, last_modified, now, &text);
                        if let Err(e) = dir.store(&key, &meta, &text) {
                            tracing::warn!(
                                "{}; the download is used but not cached",
                                ferry_base::chain::flatten(&*e)
                            );
                        }
                    }
                    return Ok(value);
                }
                Err(detail) => FetchError::NotMetadata(detail),
            },
        },
        Err(cause) => cause,
    };
    fallback(&shown, cause, cached, now, parse)
}

/// After a failed download: the cached copy with a warning, else the error.
fn fallback<T>(
    shown: &str,
    cause: FetchError,
    cached: Option<Entry>,
    now: u64,
    parse: &dyn Fn(&str) -> Parsed<T>,
) -> Result<T, RemoteError> {
    if let Some(entry) = cached
        && let Ok(value) = parse(&entry.body)
    {
        let mut also = String::new();
        if entry.meta.checked_at > entry.meta.downloaded_at.saturating_add(60) {
            also = format!(
                ", last confirmed current {}",
                cache::age_text(entry.meta.checked_at, now)
            );
        }
        tracing::warn!(
            "cannot download KDM metadata from {shown}: {cause}; using the copy cached {} ({}{also}), which may be out of date",
            cache::age_text(entry.meta.downloaded_at, now),
            cache::http_date(entry.meta.downloaded_at),
        );
        return Ok(value);
    }
    Err(RemoteError::Download {
        url: shown.to_string(),
        cause,
    })
}

mod http;

#[cfg(test)]
mod tests;
