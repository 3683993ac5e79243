//! The on-disk cache of downloaded metadata: `$XDG_CACHE_HOME/ferry/metadata/` (or
//! `~/.cache/ferry/metadata/`), two files per URL, named by the sha256 of the URL without
//! credentials:
//!
//! - `KEY.json`: the body exactly as downloaded;
//! - `KEY.meta.json`: the URL (redacted), `ETag`, `Last-Modified`, when it was downloaded and
//!   last confirmed current, and the body's size and sha256.
//!
//! Each file is written atomically (temp file, then rename), the body first. The meta file
//! names the body's sha256, so a body and meta from different downloads (a crash between the
//! two renames, or two ferry runs at once) are never taken for a pair: such an entry reads as
//! absent, and the next run downloads afresh.
//!
//! Reads are bounded like every other input: a meta file past [`MAX_META_BYTES`] or a body
//! past [`super::MAX_BYTES`] (or past the size its meta names) reads as absent without being
//! read whole.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use ferry_base::bounded;
use ferry_base::env_vars::EnvVars;

/// The largest meta file read. Ferry writes a few hundred bytes (URL, ETag, dates, sha256);
/// this leaves room for a long URL and ETag.
pub const MAX_META_BYTES: u64 = 1 << 20;

/// `$XDG_CACHE_HOME/ferry/metadata`, else `$HOME/.cache/ferry/metadata`; `None` when neither
/// is set.
pub fn default_dir() -> Option<PathBuf> {
    dir_from(
        EnvVars::var_os(EnvVars::XDG_CACHE_HOME),
        EnvVars::var_os(EnvVars::HOME),
    )
}

/// [`default_dir`] from given values. `XDG_CACHE_HOME` counts only when absolute (the XDG
/// base directory rules), `HOME` only when not empty.
pub fn dir_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = match xdg_cache_home.map(PathBuf::from) {
        Some(x) if x.is_absolute() => x,
        _ => {
            let home = home.filter(|h| !h.is_empty())?;
            PathBuf::from(home).join(".cache")
        }
    };
    Some(base.join("ferry").join("metadata"))
}

/// What is known about a cached body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The URL, without credentials or query (for people reading the cache).
    pub url: String,
    /// The server's `ETag`, sent back as `If-None-Match`.
    #[serde(default)]
    pub etag: Option<String>,
    /// The server's `Last-Modified`, sent back as `If-Modified-Since` when there is no ETag.
    #[serde(default)]
    pub last_modified: Option<String>,
    /// When the body was downloaded (seconds since the epoch).
    pub downloaded_at: u64,
    /// When the server last confirmed it current (a 304, or the download itself).
    pub checked_at: u64,
    /// The body's size in bytes.
    pub size: u64,
    /// The body's sha256, lowercase hex.
    pub sha256: String,
}

impl Meta {
    /// The meta of `body`, downloaded from `url` at `now`.
    pub fn new(
        url: &str,
        etag: Option<String>,
        last_modified: Option<String>,
        now: u64,
        body: &str,
    ) -> Meta {
        Meta {
            url: url.to_string(),
            etag,
            last_modified,
            downloaded_at: now,
            checked_at: now,
            size: body.len() as u64,
            sha256: hex::encode(Sha256::digest(body.as_bytes())),
        }
    }
}

/// A cached body with its meta.
#[derive(Debug, Clone)]
pub struct Entry {
    /// What is known about it.
    pub meta: Meta,
    /// The body.
    pub body: String,
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created when first written).
    pub fn new(dir: &Path) -> Cache {
        Cache {
            dir: dir.to_path_buf(),
        }
    }

    /// The body file of `key`.
    pub fn body_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The meta file of `key`.
    pub fn meta_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.meta.json"))
    }

    /// The entry of `key`, if there is a complete, consistent one. Anything else (absent,
    /// unreadable, a body that does not match its meta) reads as no entry: the cache is only
    /// ever a convenience, so a problem with it is logged, not fatal.
    pub fn read(&self, key: &str) -> Option<Entry> {
        let meta_path = self.meta_path(key);
        let meta: Meta = match bounded::read(&meta_path, MAX_META_BYTES) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(
                        "ignoring the damaged cache entry {}: {e}",
                        meta_path.display()
                    );
                    return None;
                }
            },
            Err(bounded::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return None;
            }
            Err(e) => {
                tracing::warn!("cannot read the cache entry {}: {e}", meta_path.display());
                return None;
            }
        };
        let body_path = self.body_path(key);
        // Never more than the meta names (a longer body does not match it anyway), and never
        // more than a download may be.
        let cap = meta.size.min(super::MAX_BYTES);
        if meta.size > cap {
            tracing::warn!(
                "ignoring the cache entry {}: it names a body of {} bytes, more than ferry's limit for metadata",
                meta_path.display(),
                meta.size
            );
            return None;
        }
        let body = match bounded::read(&body_path, cap) {
            Ok(b) => b,
            Err(bounded::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return None;
            }
            Err(bounded::ReadError::TooLarge { .. }) => {
                tracing::debug!(
                    "cached copy {} is larger than its meta file says; ignored",
                    body_path.display()
                );
                return None;
            }
            Err(e) => {
                tracing::warn!("cannot read the cached copy {}: {e}", body_path.display());
                return None;
            }
        };
        if body.len() as u64 != meta.size || hex::encode(Sha256::digest(&body)) != meta.sha256 {
            tracing::debug!(
                "cached copy {} does not match its meta file; ignored",
                body_path.display()
            );
            return None;
        }
        let body = String::from_utf8(body).ok()?;
        Some(Entry { meta, body })
    }

    /// Stores a new body and its meta (body first; each atomically).
    pub fn store(&self, key: &str, meta: &Meta, body: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| {
            format!(
                "cannot create the metadata cache directory {}",
                self.dir.display()
            )
        })?;
        ferry_base::fsutil::write_atomic(&self.body_path(key), body.as_bytes())?;
        self.write_meta(key, meta)
    }

    /// Replaces the meta of an existing body (after a 304).
    pub fn write_meta(&self, key: &str, meta: &Meta) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(meta)?;
        text.push('\n');
        ferry_base::fsutil::write_atomic(&self.meta_path(key), text.as_bytes())
    }
}

/// How long ago `then` was, from `now` (seconds since the epoch): `3 days ago`.
pub fn age_text(then: u64, now: u64) -> String {
    let secs = now.saturating_sub(then);
    let (n, unit) = match secs {
        0..60 => return "less than a minute ago".into(),
        60..3_600 => (secs / 60, "minute"),
        3_600..86_400 => (secs / 3_600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    let s = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{s} ago")
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) for seconds since the epoch.
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}
