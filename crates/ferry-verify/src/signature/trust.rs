//! sigstore's `trusted_root.json` (protobuf-specs `TrustedRoot`, in protobuf's JSON form): the
//! certificate authorities a keyless signing certificate must chain to
//! (`certificateAuthorities[].certChain.certificates[].rawBytes`, the root last, with the
//! window `validFor` in which the CA issued), the transparency logs whose signed entry
//! timestamps are believed (`tlogs[]`: `publicKey.rawBytes` as DER SubjectPublicKeyInfo, its
//! `validFor`, and `logId.keyId`, the sha256 of that DER, which entries name), and the
//! certificate transparency logs whose SCTs are believed (`ctlogs[]`, the same shape). A
//! site with its own Fulcio and Rekor writes one (`cosign trusted-root create`) and hands it
//! to ferry; nothing here touches the network.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls_pki_types::CertificateDer;
use serde::Deserialize;

use super::PublicKey;

/// The largest trusted root read (sigstore's public one is about 8 KiB).
pub const MAX_TRUSTED_ROOT: u64 = 1024 * 1024;

/// The most CAs, and the most logs of each kind, read from one root.
pub const MAX_ENTRIES: usize = 64;

/// The most certificates of one CA's chain.
pub const MAX_CHAIN: usize = 8;

/// Why a trusted root cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// Unreadable or too large.
    #[error(
        "cannot read trusted root {path}: {detail}; give sigstore's trusted_root.json for your Fulcio CA and Rekor log with --trusted-root"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Not a trusted root.
    #[error(
        "{path} is not a usable sigstore trusted_root.json: {detail}; write it with `cosign trusted-root create` (or take the one your sigstore publishes)"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawWindow {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

/// A validity window in Unix seconds; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// From (inclusive).
    pub start: Option<i64>,
    /// Until (inclusive).
    pub end: Option<i64>,
}

impl Window {
    /// True when `t` (Unix seconds) is inside.
    pub fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |t: Option<i64>| t.map(rfc3339).unwrap_or_else(|| "…".into());
        write!(f, "{} to {}", show(self.start), show(self.end))
    }
}

/// Unix seconds as RFC 3339 (UTC), for messages.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{t} (Unix time)"))
}

/// A certificate authority: its chain (the root last) and when it issued.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Its URI, for messages.
    pub uri: String,
    /// Its certificates, DER, the root last.
    pub certificates: Vec<CertificateDer<'static>>,
    /// When it issued certificates.
    pub valid: Window,
}

/// A transparency log (Rekor) or a certificate transparency log.
#[derive(Debug, Clone)]
pub struct Log {
    /// Its URL, for messages.
    pub url: String,
    /// Its key.
    pub key: PublicKey,
    /// The id entries and SCTs name it by (sha256 of the key's DER).
    pub key_id: Vec<u8>,
    /// When its key signed.
    pub valid: Window,
}

/// A parsed `trusted_root.json`.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Where it was read from.
    pub path: PathBuf,
    /// The certificate authorities.
    pub authorities: Vec<Authority>,
    /// The Rekor logs.
    pub tlogs: Vec<Log>,
    /// The CT logs (none: SCTs are not checked).
    pub ctlogs: Vec<Log>,
}

fn time_of(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))
}

fn window(raw: Option<RawWindow>) -> Result<Window, String> {
    let Some(raw) = raw else {
        return Ok(Window::default());
    };
    Ok(Window {
        start: raw.start.as_deref().map(time_of).transpose()?,
        end: raw.end.as_deref().map(time_of).transpose()?,
    })
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{what} is not base64"))
}

fn logs(raw: Vec<RawLog>, what: &str) -> Result<Vec<Log>, String> {
    if raw.len() > MAX_ENTRIES {
        return Err(format!(
            "it lists {} {what}s; ferry reads at most {MAX_ENTRIES}",
            raw.len()
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let label = format!("{what} {i} ({})", l.base_url);
            let der = b64(
                &l.public_key.raw_bytes,
                &format!("{label}'s publicKey.rawBytes"),
            )?;
            Ok(Log {
                key: PublicKey::from_spki_der(&der, &label)?,
                key_id: b64(&l.log_id.key_id, &format!("{label}'s logId.keyId"))?,
                valid: window(l.public_key.valid_for)
                    .map_err(|e| format!("{label}'s validFor: {e}"))?,
                url: l.base_url,
            })
        })
        .collect()
}

impl TrustedRoot {
    /// Reads a `trusted_root.json`.
    pub fn load(path: &Path) -> Result<TrustedRoot, RootError> {
        let bytes =
            ferry_base::bounded::read(path, MAX_TRUSTED_ROOT).map_err(|e| RootError::Read {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        TrustedRoot::parse(&bytes, path)
    }

    /// Parses the JSON; `path` names it in messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<TrustedRoot, RootError> {
        let format = |detail: String| RootError::Format {
            path: path.to_path_buf(),
            detail,
        };
        let raw: RawRoot = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
        if raw.certificate_authorities.len() > MAX_ENTRIES {
            return Err(format(format!(
                "it lists {} certificate authorities; ferry reads at most {MAX_ENTRIES}",
                raw.certificate_authorities.len()
            )));
        }
        let authorities = raw
            .certificate_authorities
            .into_iter()
            .enumerate()
            .map(|(i, ca)| {
                let label = format!("certificate authority {i} ({})", ca.uri);
                if ca.cert_chain.certificates.is_empty()
                    || ca.cert_chain.certificates.len() > MAX_CHAIN
                {
                    return Err(format!(
                        "{label} has {} certificates (1 to {MAX_CHAIN} expected)",
                        ca.cert_chain.certificates.len()
                    ));
                }
                let certificates = ca
                    .cert_chain
                    .certificates
                    .iter()
                    .map(|c| b64(&c.raw_bytes, &format!("{label}'s rawBytes")).map(Into::into))
                    .collect::<Result<Vec<CertificateDer<'static>>, String>>()?;
                Ok(Authority {
                    valid: window(ca.valid_for).map_err(|e| format!("{label}'s validFor: {e}"))?,
                    uri: ca.uri,
                    certificates,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(format)?;
        let tlogs = logs(raw.tlogs, "tlog").map_err(format)?;
        let ctlogs = logs(raw.ctlogs, "ctlog").map_err(format)?;
        if authorities.is_empty() {
            return Err(format(
                "it names no certificate authority, so no keyless signature can chain to it".into(),
            ));
        }
        if tlogs.is_empty() {
            return Err(format(
                "it names no transparency log (tlogs), so no signing time can be proved".into(),
            ));
        }
        Ok(TrustedRoot {
            path: path.to_path_buf(),
            authorities,
            tlogs,
            ctlogs,
        })
    }
}
